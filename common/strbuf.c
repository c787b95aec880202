/* strbuf.c: bounded growable buffer (see strbuf.h). It must never write
 * past `max` nor leave a half-written append unnoticed. */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strbuf_init(strbuf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
    b->err = STRBUF_OK;
}

void strbuf_deinit(strbuf *b)
{
    free(b->data);
    strbuf_init(b, b->max);
}

void strbuf_reset(strbuf *b)
{
    b->len = 0;
    b->err = STRBUF_OK;
    if (b->data)
        b->data[0] = '\0';
}

static int fail(strbuf *b, strbuf_err e)
{
    if (b->err == STRBUF_OK)
        b->err = e;
    return -1;
}

int strbuf_reserve(strbuf *b, size_t n)
{
    if (b->err != STRBUF_OK)
        return -1;
    if (n > b->max - b->len)
        return fail(b, STRBUF_TOO_BIG);
    if (b->len + n + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (d == NULL)
        return fail(b, STRBUF_NOMEM);
    b->data = d;
    b->cap = cap;
    return 0;
}

int strbuf_add(strbuf *b, const void *p, size_t n)
{
    if (strbuf_reserve(b, n) != 0)
        return -1;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int strbuf_puts(strbuf *b, const char *s)
{
    return strbuf_add(b, s, strlen(s));
}

int strbuf_putc(strbuf *b, char c)
{
    return strbuf_add(b, &c, 1);
}

int strbuf_u64(strbuf *b, uint64_t v)
{
    char d[20];
    size_t n = sizeof d;
    do {
        d[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    return strbuf_add(b, d + n, sizeof d - n);
}

int strbuf_i64(strbuf *b, int64_t v)
{
    if (v >= 0)
        return strbuf_u64(b, (uint64_t)v);
    if (strbuf_putc(b, '-') != 0)
        return -1;
    return strbuf_u64(b, (uint64_t)(-(v + 1)) + 1u);
}

int strbuf_printf(strbuf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return fail(b, STRBUF_NOMEM);
    if ((size_t)n < sizeof small)
        return strbuf_add(b, small, (size_t)n);
    if (strbuf_reserve(b, (size_t)n) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int strbuf_jstr(strbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (strbuf_putc(b, '"') != 0)
        return -1;
    size_t run = 0; /* start of the bytes that need no escape */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        char e[6] = {'\\', 0, 0, 0, 0, 0};
        size_t el = 2;
        switch (c) {
        case '"':
        case '\\':
            e[1] = (char)c;
            break;
        case '\n':
            e[1] = 'n';
            break;
        case '\r':
            e[1] = 'r';
            break;
        case '\t':
            e[1] = 't';
            break;
        case '\b':
            e[1] = 'b';
            break;
        case '\f':
            e[1] = 'f';
            break;
        default:
            e[1] = 'u';
            e[2] = '0';
            e[3] = '0';
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            el = 6;
        }
        strbuf_add(b, s + run, i - run);
        strbuf_add(b, e, el);
        run = i + 1;
    }
    strbuf_add(b, s + run, n - run);
    return strbuf_putc(b, '"');
}

char *strbuf_take(strbuf *b, size_t *len)
{
    if (b->err != STRBUF_OK) {
        strbuf_deinit(b);
        return NULL;
    }
    if (b->data == NULL && strbuf_reserve(b, 0) != 0)
        return NULL;
    char *out = b->data;
    out[b->len] = '\0';
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return out;
}
