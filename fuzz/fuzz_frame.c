/* fuzz_frame.c: libFuzzer target for the RCPX frame decoder and encoder.
 * Decodes the input whole and in fuzzer-chosen chunks and demands the same
 * frames and the same verdict both ways; checks caps, CRCs and poisoning. */
#include <string.h>

#include "fuzz.h"
#include "rstmdb/error.h"
#include "rstmdb/frame.h"

/* What a decode run saw: compared between the whole and the chunked run. */
typedef struct run_result {
    size_t frames;
    uint32_t digest; /* CRC32C over every (flags, payload) in order */
    int status;      /* 0, or the negative code the stream ended with */
} run_result;

static void note_frame(run_result *r, const rstmdb_frame *f, size_t max)
{
    uint8_t fl[2] = {(uint8_t)(f->flags >> 8), (uint8_t)f->flags};

    FUZZ_CHECK(f->payload != NULL);
    FUZZ_CHECK(f->payload_len <= max);
    FUZZ_CHECK((f->flags & RSTMDB_FLAG_RESERVED_MASK) == 0);
    r->frames++;
    r->digest = rstmdb_crc32c_update(r->digest, fl, 2);
    /* touching every payload byte lets ASan catch a pointer past the input */
    r->digest = rstmdb_crc32c_update(r->digest, f->payload, f->payload_len);
}

/* chunk == 0: feed everything at once; else chunk sizes cycle from `pattern`. */
static run_result run(const uint8_t *in, size_t len, size_t max, const uint8_t *pattern,
                      size_t npattern)
{
    run_result r = {0, 0, 0};
    rstmdb_frame_decoder *d = NULL;
    size_t pos = 0;
    size_t k = 0;

    if (rstmdb_frame_decoder_new(&d, max) != RSTMDB_OK)
        abort();
    while (pos < len) {
        size_t chunk = fuzz_chunk_next(len - pos, pattern, npattern, &k);
        size_t at = 0;

        /* drain this chunk as a network reader would */
        for (;;) {
            rstmdb_frame f;
            size_t used = (size_t)-1;
            int rc = rstmdb_frame_decoder_feed(d, in + pos + at, chunk - at, &used, &f);
            FUZZ_CHECK(used <= chunk - at);
            at += used;
            if (rc < 0) {
                size_t again = 1;
                FUZZ_CHECK(rc != RSTMDB_ERR_NOMEM && rc != RSTMDB_ERR_INVALID);
                r.status = rc;
                /* poisoned: the same code, nothing consumed */
                FUZZ_CHECK(rstmdb_frame_decoder_feed(d, in, len, &again, &f) == rc);
                FUZZ_CHECK(again == 0);
                rstmdb_frame_decoder_free(d);
                return r;
            }
            if (rc == 0) {
                FUZZ_CHECK(at == chunk);
                break;
            }
            FUZZ_CHECK(rc == 1);
            note_frame(&r, &f, max ? max : RSTMDB_FRAME_MAX_PAYLOAD);
        }
        pos += chunk;
    }
    rstmdb_frame_decoder_free(d);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t caps[4] = {64, 1024, 65536, 0};
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
    FUZZ_CHECK(whole.frames == chunked.frames);
    FUZZ_CHECK(whole.digest == chunked.digest);
    FUZZ_CHECK(whole.status == chunked.status);

    /* encoder round trip: the input as a payload, with data[0]'s low flags */
    if (len <= 65536) {
        uint16_t flags = (uint16_t)(data[0] & 0x0F);
        uint8_t hdr[RSTMDB_FRAME_HEADER_LEN];
        uint8_t *buf = malloc(RSTMDB_FRAME_HEADER_LEN + len + 1);
        rstmdb_frame_decoder *d = NULL;
        rstmdb_frame f;
        size_t used;

        FUZZ_CHECK(buf != NULL);
        FUZZ_CHECK(rstmdb_frame_header(hdr, flags, in, len) == RSTMDB_OK);
        memcpy(buf, hdr, sizeof hdr);
        if (len > 0)
            memcpy(buf + sizeof hdr, in, len);
        FUZZ_CHECK(rstmdb_frame_decoder_new(&d, 65536) == RSTMDB_OK);
        FUZZ_CHECK(rstmdb_frame_decoder_feed(d, buf, sizeof hdr + len, &used, &f) == 1);
        FUZZ_CHECK(used == sizeof hdr + len);
        FUZZ_CHECK(f.flags == flags && f.payload_len == len);
        FUZZ_CHECK(len == 0 || memcmp(f.payload, in, len) == 0);
        rstmdb_frame_decoder_free(d);
        free(buf);
    }
    return 0;
}
