/* fuzz.h: the libFuzzer entry point every fuzz_<name>.c defines, declared once
 * so the picky warnings (-Wmissing-prototypes) hold in fuzz targets too. */
#ifndef RSTMDB_FUZZ_H
#define RSTMDB_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fuzz invariant: unlike assert(), never compiled out (Release builds). */
#define FUZZ_CHECK(cond)                          \
    do {                                          \
        if (!(cond))                              \
            fuzz_fail(#cond, __FILE__, __LINE__); \
    } while (0)

#include <stdio.h>
#include <stdlib.h>

static inline void fuzz_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", file, line, what);
    abort();
}

/* The input layout of the chunked decoder targets (fuzz_frame, fuzz_line):
 * data[0] low 2 bits pick a cap, high 4 bits say how many chunk sizes follow;
 * the rest is the stream. Returns 0 when the input is too short to use. */
typedef struct fuzz_chunked {
    unsigned cap_index;     /* 0..3 */
    const uint8_t *pattern; /* chunk sizes minus one, cycled */
    size_t npattern;
    const uint8_t *in; /* the stream to decode */
    size_t len;
} fuzz_chunked;

static inline int fuzz_chunked_split(const uint8_t *data, size_t size, fuzz_chunked *out)
{
    if (size < 2)
        return 0;
    out->cap_index = data[0] & 3u;
    out->npattern = (size_t)(data[0] >> 4);
    if (size < 1 + out->npattern)
        return 0;
    out->pattern = data + 1;
    out->in = data + 1 + out->npattern;
    out->len = size - 1 - out->npattern;
    return 1;
}

/* The next chunk: all that is `left`, or the next size from `pattern` (step
 * *k) when that is smaller. npattern == 0 feeds everything at once. */
static inline size_t fuzz_chunk_next(size_t left, const uint8_t *pattern, size_t npattern,
                                     size_t *k)
{
    if (npattern > 0) {
        size_t want = (size_t)pattern[(*k)++ % npattern] + 1;
        if (want < left)
            return want;
    }
    return left;
}

#endif
