/* bench_codec.c: throughput of the RCPX codec. CRC32C through the hardware
 * and the portable paths next to a memcpy of the same bytes, and frames/s for
 * encoding and decoding typical payloads. Prints figures; asserts nothing.
 *
 *   build/bench/bench_codec [seconds-per-case, default 0.3]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crc32c.h"
#include "rstmdb/error.h"
#include "rstmdb/frame.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Results go here so the compiler cannot drop the work. */
static volatile uint32_t bench_sink;

typedef enum { CASE_MEMCPY, CASE_PORTABLE, CASE_HW } crc_case;

/* Repeats one case on a `len`-byte buffer for about `secs`; returns GB/s. */
static double crc_rate(crc_case c, const uint8_t *src, uint8_t *dst, size_t len, double secs)
{
    size_t iters = 0;
    size_t batch = (size_t)(1u << 24) / len + 1; /* ~16 MB between clock reads */
    double t0 = now(), t;
    uint32_t acc = 0;

    do {
        for (size_t i = 0; i < batch; i++) {
            switch (c) {
            case CASE_MEMCPY:
                memcpy(dst, src, len);
                acc += dst[i % len];
                break;
            case CASE_PORTABLE:
                acc += crc32c_portable(0, src, len);
                break;
            case CASE_HW:
                acc += crc32c_hw(0, src, len);
                break;
            }
        }
        iters += batch;
        t = now() - t0;
    } while (t < secs);
    bench_sink = acc;
    return (double)iters * (double)len / t / 1e9;
}

static void bench_crc(double secs)
{
    static const size_t sizes[] = {64, 1024, 65536, 1u << 20};
    uint8_t *src = malloc(1u << 20);
    uint8_t *dst = malloc(1u << 20);

    if (src == NULL || dst == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < (1u << 20); i++)
        src[i] = (uint8_t)(i * 131u + 7u);

    printf("CRC32C throughput, GB/s (hardware path %s)\n",
           crc32c_hw_available() ? "available" : "NOT available: falls back to portable");
    printf("  %10s %10s %10s %10s\n", "bytes", "memcpy", "hardware", "portable");
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        printf("  %10zu %10.2f %10.2f %10.2f\n", n, crc_rate(CASE_MEMCPY, src, dst, n, secs),
               crc_rate(CASE_HW, src, dst, n, secs), crc_rate(CASE_PORTABLE, src, dst, n, secs));
        fflush(stdout);
    }
    free(src);
    free(dst);
}

/* A response-sized JSON payload of about `len` bytes. */
static char *make_payload(size_t len)
{
    char *p = malloc(len + 1);
    static const char head[] =
        "{\"type\":\"response\",\"id\":\"42\",\"status\":\"ok\",\"result\":{\"x\":\"";
    size_t h = sizeof head - 1;

    if (p == NULL)
        exit(1);
    memcpy(p, head, h);
    memset(p + h, 'a', len - h - 3);
    memcpy(p + len - 3, "\"}}", 3);
    p[len] = '\0';
    return p;
}

static void bench_frames(double secs)
{
    static const size_t sizes[] = {64, 512, 4096, 65536};
    enum { NFRAMES = 256 };

    printf("\nFrames per second (CRC on), millions\n");
    printf("  %10s %12s %12s %12s\n", "payload", "encode", "decode", "decode/1500B");
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t plen = sizes[s];
        size_t flen = RSTMDB_FRAME_HEADER_LEN + plen;
        char *payload = make_payload(plen);
        uint8_t *stream = malloc(flen * NFRAMES);
        rstmdb_frame_decoder *d = NULL;
        double t0, t, enc, dec, decc;
        size_t n;

        if (stream == NULL || rstmdb_frame_decoder_new(&d, 0) != RSTMDB_OK)
            exit(1);

        /* encode: header (with CRC) plus copying the payload behind it */
        n = 0;
        t0 = now();
        do {
            for (size_t i = 0; i < NFRAMES; i++) {
                uint8_t *f = stream + i * flen;
                if (rstmdb_frame_header(f, RSTMDB_FLAG_CRC_PRESENT, payload, plen) != RSTMDB_OK)
                    exit(1);
                memcpy(f + RSTMDB_FRAME_HEADER_LEN, payload, plen);
            }
            n += NFRAMES;
            t = now() - t0;
        } while (t < secs);
        enc = (double)n / t / 1e6;

        /* decode: the whole stream in one buffer (zero-copy path) */
        n = 0;
        t0 = now();
        do {
            size_t pos = 0, total = flen * NFRAMES;
            while (pos < total) {
                rstmdb_frame fr;
                size_t used;
                if (rstmdb_frame_decoder_feed(d, stream + pos, total - pos, &used, &fr) != 1)
                    exit(1);
                pos += used;
                bench_sink = fr.payload[0];
                n++;
            }
            t = now() - t0;
        } while (t < secs);
        dec = (double)n / t / 1e6;

        /* decode: the same stream arriving in 1500-byte reads (copying path) */
        n = 0;
        t0 = now();
        do {
            size_t total = flen * NFRAMES;
            for (size_t at = 0; at < total; at += 1500) {
                size_t chunk = total - at < 1500 ? total - at : 1500;
                size_t off = 0;
                while (off < chunk) {
                    rstmdb_frame fr;
                    size_t used;
                    int rc =
                        rstmdb_frame_decoder_feed(d, stream + at + off, chunk - off, &used, &fr);
                    if (rc < 0)
                        exit(1);
                    off += used;
                    if (rc == 1) {
                        bench_sink = fr.payload[0];
                        n++;
                    }
                }
            }
            t = now() - t0;
        } while (t < secs);
        decc = (double)n / t / 1e6;

        printf("  %10zu %12.3f %12.3f %12.3f\n", plen, enc, dec, decc);
        fflush(stdout);
        rstmdb_frame_decoder_free(d);
        free(stream);
        free(payload);
    }
}

int main(int argc, char **argv)
{
    double secs = 0.3;

    if (argc > 1) {
        secs = atof(argv[1]);
        if (secs <= 0) {
            fprintf(stderr, "usage: %s [seconds-per-case]\n", argv[0]);
            return 2;
        }
    }
    bench_crc(secs);
    bench_frames(secs);
    return 0;
}
