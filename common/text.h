/* text.h: the two string helpers the request path needs without printf
 * (snprintf was ~3.7k instructions of a proxied ping): a bounded copy and
 * a u64 in decimal. Header-only; no allocation. */
#ifndef RSTMDB_COMMON_TEXT_H
#define RSTMDB_COMMON_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Copy src into dst[cap] (cap > 0), cut to cap - 1 bytes, NUL-terminated.
 * Returns the length written. */
static inline size_t text_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}

/* v in decimal into dst (at least 21 bytes), NUL-terminated; the length. */
static inline size_t text_u64(char *dst, uint64_t v)
{
    char d[20];
    size_t n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    for (size_t i = 0; i < n; i++)
        dst[i] = d[n - 1 - i];
    dst[n] = '\0';
    return n;
}

#endif
