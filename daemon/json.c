/* json.c: a strict validating scanner (no tree, no allocation) and a raw
 * member finder. It must not build or re-serialise JSON: cJSON does that. */
#include "json.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct scan {
    const unsigned char *p, *end;
    const char *why;
    unsigned depth, max_depth;
} scan;

static void ws(scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int utf8_seq(const unsigned char *p, const unsigned char *end)
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

bool json_utf8_valid(const char *str, size_t len)
{
    const unsigned char *p = (const unsigned char *)str, *end = p + len;
    while (p < end) {
        int n = utf8_seq(p, end);
        if (n < 0)
            return false;
        p += n;
    }
    return true;
}

void json_utf8_sanitize(char *str, size_t len)
{
    unsigned char *p = (unsigned char *)str, *end = p + len;
    while (p < end) {
        int n = utf8_seq(p, end);
        if (n < 0) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

static int hex4(const unsigned char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    *out = v;
    return 0;
}

static int str(scan *s)
{
    s->p++; /* opening quote */
    while (s->p < s->end) {
        unsigned c = *s->p;
        if (c == '"') {
            s->p++;
            return 0;
        }
        if (c < 0x20) {
            s->why = "control character in a string";
            return -1;
        }
        if (c == '\\') {
            if (s->end - s->p < 2)
                break;
            unsigned e = s->p[1];
            if (e == 'u') {
                unsigned u, u2;
                if (s->end - s->p < 6 || hex4(s->p + 2, &u) != 0) {
                    s->why = "bad \\u escape";
                    return -1;
                }
                s->p += 6;
                if (u >= 0xDC00 && u <= 0xDFFF) {
                    s->why = "lone low surrogate";
                    return -1;
                }
                if (u >= 0xD800 && u <= 0xDBFF) {
                    if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' ||
                        hex4(s->p + 2, &u2) != 0 || u2 < 0xDC00 || u2 > 0xDFFF) {
                        s->why = "lone high surrogate";
                        return -1;
                    }
                    s->p += 6;
                }
                continue;
            }
            if (!strchr("\"\\/bfnrt", (int)e) || e == 0) {
                s->why = "bad escape";
                return -1;
            }
            s->p += 2;
            continue;
        }
        int n = utf8_seq(s->p, s->end);
        if (n < 0) {
            s->why = "invalid UTF-8";
            return -1;
        }
        s->p += n;
    }
    s->why = "unterminated string";
    return -1;
}

static int num(scan *s)
{
    const unsigned char *start = s->p;
    if (*s->p == '-')
        s->p++;
    if (s->p >= s->end)
        goto bad;
    if (*s->p == '0') {
        s->p++;
    } else if (*s->p >= '1' && *s->p <= '9') {
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    } else {
        goto bad;
    }
    bool intg = true;
    if (s->p < s->end && *s->p == '.') {
        intg = false;
        s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9')
            goto bad;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        intg = false;
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9')
            goto bad;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    }
    /* serde_json refuses numbers that overflow an f64 ("number out of range"). */
    size_t n = (size_t)(s->p - start);
    if (!intg || n > 19) {
        char tmp[512];
        if (n >= sizeof tmp) {
            s->why = "number too long";
            return -1;
        }
        memcpy(tmp, start, n);
        tmp[n] = '\0';
        if (isinf(strtod(tmp, NULL))) {
            s->why = "number out of range";
            return -1;
        }
    }
    return 0;
bad:
    s->why = "bad number";
    return -1;
}

static int value(scan *s);

static int lit(scan *s, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0) {
        s->why = "unexpected token";
        return -1;
    }
    s->p += n;
    return 0;
}

static int container(scan *s, unsigned char close)
{
    if (++s->depth > s->max_depth) {
        s->why = "nested too deeply";
        return -1;
    }
    s->p++;
    ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        s->depth--;
        return 0;
    }
    for (;;) {
        ws(s);
        if (close == '}') {
            if (s->p >= s->end || *s->p != '"') {
                s->why = "expected a string key";
                return -1;
            }
            if (str(s) != 0)
                return -1;
            ws(s);
            if (s->p >= s->end || *s->p != ':') {
                s->why = "expected ':'";
                return -1;
            }
            s->p++;
            ws(s);
        }
        if (value(s) != 0)
            return -1;
        ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == close) {
            s->p++;
            s->depth--;
            return 0;
        }
        s->why = close == '}' ? "expected ',' or '}'" : "expected ',' or ']'";
        return -1;
    }
}

static int value(scan *s)
{
    if (s->p >= s->end) {
        s->why = "unexpected end";
        return -1;
    }
    switch (*s->p) {
    case '{':
        return container(s, '}');
    case '[':
        return container(s, ']');
    case '"':
        return str(s);
    case 't':
        return lit(s, "true");
    case 'f':
        return lit(s, "false");
    case 'n':
        return lit(s, "null");
    default:
        return num(s);
    }
}

int json_validate(const char *text, size_t len, unsigned max_depth, const char **why)
{
    scan s = {(const unsigned char *)text, (const unsigned char *)text + len, NULL, 0, max_depth};
    ws(&s);
    if (value(&s) != 0) {
        if (why)
            *why = s.why;
        return -1;
    }
    ws(&s);
    if (s.p != s.end) {
        if (why)
            *why = "trailing data after the JSON value";
        return -1;
    }
    return 0;
}

int json_member(const char *json, size_t len, const char *key, size_t *vstart, size_t *vlen)
{
    scan s = {(const unsigned char *)json, (const unsigned char *)json + len, NULL, 0, 10000};
    size_t klen = strlen(key);
    ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return -1;
    s.p++;
    for (;;) {
        ws(&s);
        if (s.p >= s.end || *s.p != '"')
            return -1;
        const unsigned char *k0 = s.p + 1;
        if (str(&s) != 0)
            return -1;
        size_t kl = (size_t)(s.p - 1 - k0);
        ws(&s);
        if (s.p >= s.end || *s.p != ':')
            return -1;
        s.p++;
        ws(&s);
        const unsigned char *v0 = s.p;
        if (value(&s) != 0)
            return -1;
        if (kl == klen && memcmp(k0, key, klen) == 0) {
            *vstart = (size_t)(v0 - (const unsigned char *)json);
            *vlen = (size_t)(s.p - v0);
            return 0;
        }
        ws(&s);
        if (s.p < s.end && *s.p == ',') {
            s.p++;
            continue;
        }
        return -1;
    }
}
