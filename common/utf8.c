/* utf8.c: UTF-8 sequence checks; owns nothing. */
#include "utf8.h"

#include <stdint.h>

int utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    int n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return -1;
    }
    if (end - p < n)
        return -1;
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    return n;
}

bool utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        int n = utf8_seq(p, end);
        if (n < 0)
            return false;
        p += n;
    }
    return true;
}

void utf8_sanitize(char *s, size_t len)
{
    unsigned char *p = (unsigned char *)s, *end = p + len;
    while (p < end) {
        int n = utf8_seq(p, end);
        p += n < 0 ? 1 : n;
        if (n < 0)
            p[-1] = '?';
    }
}
