/* jbuf.c: growable byte buffer with serde_json-compatible string escaping.
 * Owns its memory only; knows nothing about JSON values (see jval.c). */
#include "jbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jbuf_init(jbuf *b)
{
    memset(b, 0, sizeof(*b));
}

void jbuf_deinit(jbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void jbuf_reset(jbuf *b)
{
    b->len = 0;
    b->failed = false;
}

static bool jbuf_grow(jbuf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra > JBUF_MAX || b->len + extra + 1 > JBUF_MAX) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < need)
        ncap *= 2;
    char *p = realloc(b->data, ncap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = ncap;
    return true;
}

void jbuf_append(jbuf *b, const void *p, size_t n)
{
    if (!jbuf_grow(b, n))
        return;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void jbuf_puts(jbuf *b, const char *s)
{
    jbuf_append(b, s, strlen(s));
}

void jbuf_putc(jbuf *b, char c)
{
    jbuf_append(b, &c, 1);
}

void jbuf_printf(jbuf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        jbuf_append(b, small, (size_t)n);
        return;
    }
    if (!jbuf_grow(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void jbuf_u64(jbuf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
    jbuf_append(b, tmp, (size_t)n);
}

void jbuf_i64(jbuf *b, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
    jbuf_append(b, tmp, (size_t)n);
}

void jbuf_jstr(jbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    jbuf_putc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[6] = {0};
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c == '\b')
            esc = "\\b";
        else if (c == '\f')
            esc = "\\f";
        else if (c < 0x20) {
            u[0] = '\\';
            u[1] = 'u';
            u[2] = '0';
            u[3] = '0';
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
        } else
            continue;
        jbuf_append(b, s + run, i - run);
        if (esc)
            jbuf_puts(b, esc);
        else
            jbuf_append(b, u, 6);
        run = i + 1;
    }
    jbuf_append(b, s + run, n - run);
    jbuf_putc(b, '"');
}

char *jbuf_steal(jbuf *b, size_t *len)
{
    if (b->failed) {
        jbuf_deinit(b);
        return NULL;
    }
    if (!b->data && !jbuf_grow(b, 0))
        return NULL;
    char *p = b->data;
    if (len)
        *len = b->len;
    memset(b, 0, sizeof(*b));
    return p;
}

bool jbuf_failed(const jbuf *b)
{
    return b->failed;
}
