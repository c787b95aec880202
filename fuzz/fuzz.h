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

#endif
