/* fuzz_line.c: libFuzzer target for the JSONL line decoder. Decodes the
 * input whole and in fuzzer-chosen chunks and demands the same lines and the
 * same verdict both ways; checks the cap, terminators and poisoning. */
#include <string.h>

#include "fuzz.h"
#include "rstmdb/error.h"
#include "rstmdb/frame.h"

typedef struct run_result {
    size_t lines;
    uint32_t digest; /* CRC32C over every line and its length, in order */
    int status;
} run_result;

static run_result run(const uint8_t *in, size_t len, size_t max, const uint8_t *pattern,
                      size_t npattern)
{
    run_result r = {0, 0, 0};
    rstmdb_line_decoder *d = NULL;
    size_t pos = 0;
    size_t k = 0;

    if (rstmdb_line_decoder_new(&d, max) != RSTMDB_OK)
        abort();
    while (pos < len) {
        size_t chunk = fuzz_chunk_next(len - pos, pattern, npattern, &k);
        size_t at = 0;

        for (;;) {
            rstmdb_frame f;
            size_t used = (size_t)-1;
            int rc = rstmdb_line_decoder_feed(d, in + pos + at, chunk - at, &used, &f);
            FUZZ_CHECK(used <= chunk - at);
            at += used;
            if (rc < 0) {
                size_t again = 1;
                FUZZ_CHECK(rc == RSTMDB_ERR_LINE_TOO_LONG || rc == RSTMDB_ERR_LINE_EMPTY);
                r.status = rc;
                FUZZ_CHECK(rstmdb_line_decoder_feed(d, in, len, &again, &f) == rc);
                FUZZ_CHECK(again == 0);
                rstmdb_line_decoder_free(d);
                return r;
            }
            if (rc == 0) {
                FUZZ_CHECK(at == chunk);
                break;
            }
            FUZZ_CHECK(rc == 1);
            FUZZ_CHECK(f.flags == 0);
            FUZZ_CHECK(f.payload_len > 0 && f.payload_len <= max);
            FUZZ_CHECK(memchr(f.payload, '\n', f.payload_len) == NULL);
            r.lines++;
            uint8_t n[4] = {(uint8_t)(f.payload_len >> 24), (uint8_t)(f.payload_len >> 16),
                            (uint8_t)(f.payload_len >> 8), (uint8_t)f.payload_len};
            r.digest = rstmdb_crc32c_update(r.digest, n, 4);
            r.digest = rstmdb_crc32c_update(r.digest, f.payload, f.payload_len);
        }
        pos += chunk;
    }
    rstmdb_line_decoder_free(d);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t caps[4] = {1, 16, 300, 65536};
    size_t max;
    run_result whole, chunked;
    fuzz_chunked fc;

    if (!fuzz_chunked_split(data, size, &fc))
        return 0;
    max = caps[fc.cap_index];
    const uint8_t *in = fc.in;
    size_t len = fc.len;

    whole = run(in, len, max, NULL, 0);
    chunked = run(in, len, max, fc.pattern, fc.npattern);
    FUZZ_CHECK(whole.lines == chunked.lines);
    FUZZ_CHECK(whole.digest == chunked.digest);
    FUZZ_CHECK(whole.status == chunked.status);
    return 0;
}
