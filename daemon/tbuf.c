/* tbuf.c: bounded growable text buffer (see tbuf.h). Owns only its memory;
 * it must never write past `max` nor leave a half-escaped string unnoticed
 * (a failed append marks the whole buffer failed). */
#include "tbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tbuf_init(tbuf *b, size_t max)
{
    b->s = NULL;
    b->len = b->cap = 0;
    b->max = max;
    b->failed = false;
}

void tbuf_deinit(tbuf *b)
{
    free(b->s);
    tbuf_init(b, b->max);
}

void tbuf_reset(tbuf *b)
{
    b->len = 0;
    b->failed = false;
    if (b->s)
        b->s[0] = '\0';
}

int tbuf_add(tbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return -1;
    if (n > b->max - b->len) {
        b->failed = true;
        return -1;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->failed = true;
            return -1;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
    return 0;
}

int tbuf_adds(tbuf *b, const char *s)
{
    return tbuf_add(b, s, strlen(s));
}

int tbuf_add_u64(tbuf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    return tbuf_add(b, tmp, (size_t)n);
}

int tbuf_add_jstr(tbuf *b, const char *s)
{
    if (tbuf_add(b, "\"", 1) < 0)
        return -1;
    const char *run = s;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        const char *esc = NULL;
        char tmp[8];
        switch (*p) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        default:
            if (*p < 0x20) {
                snprintf(tmp, sizeof tmp, "\\u%04x", *p);
                esc = tmp;
            }
        }
        if (!esc)
            continue;
        if (tbuf_add(b, run, (size_t)((const char *)p - run)) < 0 || tbuf_adds(b, esc) < 0)
            return -1;
        run = (const char *)p + 1;
    }
    if (tbuf_adds(b, run) < 0)
        return -1;
    return tbuf_add(b, "\"", 1);
}

char *tbuf_take(tbuf *b, size_t *len)
{
    if (b->failed)
        return NULL;
    char *s = b->s;
    if (!s)
        s = calloc(1, 1);
    if (len && s)
        *len = b->len;
    b->s = NULL;
    b->len = b->cap = 0;
    return s;
}
