/* jscan.c: strict JSON validation and top-level member spans, no tree.
 * The one JSON scanner of the client, the daemon and rstmdb-testd. Owns
 * nothing and allocates only in jscan_string_dup(); it must never accept
 * what serde_json (the server) or cJSON (used lazily on the same bytes)
 * would reject. */
#include "jscan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

typedef struct scanner {
    const unsigned char *s;
    size_t len;
    size_t pos;
    unsigned depth;
    unsigned max_depth;
    const char *why; /* static text, set by the first failure */
} scanner;

static int fail(scanner *sc, const char *why)
{
    if (sc->why == NULL)
        sc->why = why;
    return -1;
}

static void skip_ws(scanner *sc)
{
    while (sc->pos < sc->len) {
        unsigned char ch = sc->s[sc->pos];
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
            break;
        sc->pos++;
    }
}

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* The code unit of a "\uXXXX" escape starting at `at`, or -1 when the
 * bytes there are not one. */
static long scan_u_escape(const scanner *sc, size_t at)
{
    long v = 0;
    if (at + 6 > sc->len || sc->s[at] != '\\' || sc->s[at + 1] != 'u')
        return -1;
    for (size_t i = 2; i < 6; i++) {
        int h = hexval(sc->s[at + i]);
        if (h < 0)
            return -1;
        v = (v << 4) | h;
    }
    return v;
}

static int scan_string(scanner *sc)
{
    sc->pos++; /* opening quote */
    while (sc->pos < sc->len) {
        unsigned char ch = sc->s[sc->pos];
        if (ch == '"') {
            sc->pos++;
            return 0;
        }
        if (ch < 0x20)
            return fail(sc, "control character in a string");
        if (ch == '\\') {
            if (sc->pos + 1 >= sc->len)
                break;
            unsigned char e = sc->s[sc->pos + 1];
            if (e == 'u') {
                long unit = scan_u_escape(sc, sc->pos);
                if (unit < 0)
                    return fail(sc, "bad \\u escape");
                if (unit >= 0xDC00 && unit <= 0xDFFF)
                    return fail(sc, "lone low surrogate");
                sc->pos += 6;
                /* serde_json (the server) and cJSON refuse an unpaired
                 * surrogate, so a high one must be followed by a low one. */
                if (unit >= 0xD800 && unit <= 0xDBFF) {
                    long low = scan_u_escape(sc, sc->pos);
                    if (low < 0xDC00 || low > 0xDFFF)
                        return fail(sc, "lone high surrogate");
                    sc->pos += 6;
                }
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                       e == 'r' || e == 't') {
                sc->pos += 2;
            } else {
                return fail(sc, "bad escape");
            }
        } else if (ch >= 0x80) {
            int n = utf8_seq(sc->s + sc->pos, sc->s + sc->len);
            if (n < 0)
                return fail(sc, "invalid UTF-8");
            sc->pos += (size_t)n;
        } else {
            sc->pos++;
        }
    }
    return fail(sc, "unterminated string");
}

static int scan_digits(scanner *sc)
{
    size_t start = sc->pos;
    while (sc->pos < sc->len && sc->s[sc->pos] >= '0' && sc->s[sc->pos] <= '9')
        sc->pos++;
    return sc->pos > start ? 0 : -1;
}

static int scan_number(scanner *sc)
{
    size_t start = sc->pos;
    bool integer = true;
    if (sc->s[sc->pos] == '-')
        sc->pos++;
    if (sc->pos >= sc->len)
        return fail(sc, "bad number");
    if (sc->s[sc->pos] == '0') {
        sc->pos++;
    } else if (scan_digits(sc) != 0) {
        return fail(sc, "bad number");
    }
    if (sc->pos < sc->len && sc->s[sc->pos] == '.') {
        integer = false;
        sc->pos++;
        if (scan_digits(sc) != 0)
            return fail(sc, "bad number");
    }
    if (sc->pos < sc->len && (sc->s[sc->pos] == 'e' || sc->s[sc->pos] == 'E')) {
        integer = false;
        sc->pos++;
        if (sc->pos < sc->len && (sc->s[sc->pos] == '+' || sc->s[sc->pos] == '-'))
            sc->pos++;
        if (scan_digits(sc) != 0)
            return fail(sc, "bad number");
    }
    /* serde_json refuses numbers that overflow an f64 ("number out of
     * range"); an integer of up to 19 digits cannot. */
    size_t n = sc->pos - start;
    if (!integer || n > 19) {
        char tmp[512];
        if (n >= sizeof tmp)
            return fail(sc, "number too long");
        memcpy(tmp, sc->s + start, n);
        tmp[n] = '\0';
        if (isinf(strtod(tmp, NULL)))
            return fail(sc, "number out of range");
    }
    return 0;
}

static int scan_literal(scanner *sc, const char *lit)
{
    size_t n = strlen(lit);
    if (sc->len - sc->pos < n || memcmp(sc->s + sc->pos, lit, n) != 0)
        return fail(sc, "syntax error");
    sc->pos += n;
    return 0;
}

static int scan_value(scanner *sc, jscan_type *type);

static int scan_array(scanner *sc)
{
    sc->pos++;
    skip_ws(sc);
    if (sc->pos < sc->len && sc->s[sc->pos] == ']') {
        sc->pos++;
        return 0;
    }
    for (;;) {
        jscan_type t;
        if (scan_value(sc, &t) != 0)
            return -1;
        skip_ws(sc);
        if (sc->pos >= sc->len)
            return fail(sc, "unterminated array");
        if (sc->s[sc->pos] == ',') {
            sc->pos++;
            continue;
        }
        if (sc->s[sc->pos] == ']') {
            sc->pos++;
            return 0;
        }
        return fail(sc, "expected ',' or ']'");
    }
}

/* Scan an object; when `m` is non-NULL record members (top level only).
 * With `stop_at`, return 1 as soon as a member with that raw key has been
 * scanned (recorded in m[0]): the rest of the object is not looked at. */
static int scan_object(scanner *sc, jscan_member *m, size_t max, size_t *count, const char *stop_at)
{
    size_t stop_len = stop_at ? strlen(stop_at) : 0;
    size_t n = 0;
    sc->pos++;
    skip_ws(sc);
    if (sc->pos < sc->len && sc->s[sc->pos] == '}') {
        sc->pos++;
        if (count)
            *count = 0;
        return 0;
    }
    for (;;) {
        skip_ws(sc);
        if (sc->pos >= sc->len || sc->s[sc->pos] != '"')
            return fail(sc, "expected a member name");
        size_t kstart = sc->pos;
        if (scan_string(sc) != 0)
            return -1;
        size_t kend = sc->pos;
        skip_ws(sc);
        if (sc->pos >= sc->len || sc->s[sc->pos] != ':')
            return fail(sc, "expected ':'");
        sc->pos++;
        skip_ws(sc);
        size_t vstart = sc->pos;
        jscan_type t;
        if (scan_value(sc, &t) != 0)
            return -1;
        size_t klen = kend - kstart - 2;
        bool stop = stop_at && klen == stop_len && memcmp(sc->s + kstart + 1, stop_at, klen) == 0;
        if (m && (n < max || stop)) {
            jscan_member *rec = stop ? m : &m[n];
            rec->key_off = kstart + 1;
            rec->key_len = klen;
            rec->val_off = vstart;
            rec->val_len = sc->pos - vstart;
            rec->type = t;
        }
        if (stop)
            return 1;
        n++;
        skip_ws(sc);
        if (sc->pos >= sc->len)
            return fail(sc, "unterminated object");
        if (sc->s[sc->pos] == ',') {
            sc->pos++;
            continue;
        }
        if (sc->s[sc->pos] == '}') {
            sc->pos++;
            if (count)
                *count = n;
            return 0;
        }
        return fail(sc, "expected ',' or '}'");
    }
}

static int scan_value(scanner *sc, jscan_type *type)
{
    skip_ws(sc);
    if (sc->pos >= sc->len)
        return fail(sc, "unexpected end of text");
    unsigned char ch = sc->s[sc->pos];
    switch (ch) {
    case '{':
    case '[': {
        int rc;
        if (++sc->depth > sc->max_depth)
            return fail(sc, "nested too deeply");
        if (ch == '{') {
            *type = JSCAN_OBJECT;
            rc = scan_object(sc, NULL, 0, NULL, NULL);
        } else {
            *type = JSCAN_ARRAY;
            rc = scan_array(sc);
        }
        sc->depth--;
        return rc;
    }
    case '"':
        *type = JSCAN_STRING;
        return scan_string(sc);
    case 't':
        *type = JSCAN_TRUE;
        return scan_literal(sc, "true");
    case 'f':
        *type = JSCAN_FALSE;
        return scan_literal(sc, "false");
    case 'n':
        *type = JSCAN_NULL;
        return scan_literal(sc, "null");
    default:
        if (ch == '-' || (ch >= '0' && ch <= '9')) {
            *type = JSCAN_NUMBER;
            return scan_number(sc);
        }
        return fail(sc, "syntax error");
    }
}

static void scanner_init(scanner *sc, const char *s, size_t len, unsigned max_depth)
{
    sc->s = (const unsigned char *)s;
    sc->len = len;
    sc->pos = 0;
    sc->depth = 0;
    sc->max_depth = max_depth ? max_depth : JSCAN_MAX_DEPTH;
    sc->why = NULL;
}

static int value_of(const char *s, size_t len, unsigned max_depth, jscan_type *type, size_t *off,
                    size_t *vlen, const char **why)
{
    scanner sc;
    jscan_type t;
    if (!s)
        return -1;
    scanner_init(&sc, s, len, max_depth);
    skip_ws(&sc);
    size_t start = sc.pos;
    if (scan_value(&sc, &t) != 0) {
        if (why)
            *why = sc.why ? sc.why : "syntax error";
        return -1;
    }
    size_t end = sc.pos;
    skip_ws(&sc);
    if (sc.pos != len) {
        if (why)
            *why = "trailing data after the JSON value";
        return -1;
    }
    if (type)
        *type = t;
    if (off)
        *off = start;
    if (vlen)
        *vlen = end - start;
    return 0;
}

int jscan_value(const char *s, size_t len, unsigned max_depth, jscan_type *type, size_t *off,
                size_t *vlen)
{
    return value_of(s, len, max_depth, type, off, vlen, NULL);
}

int jscan_validate(const char *s, size_t len, unsigned max_depth, jscan_type *type,
                   const char **why)
{
    return value_of(s, len, max_depth, type, NULL, NULL, why);
}

int jscan_object_why(const char *s, size_t len, unsigned max_depth, jscan_member *m, size_t max,
                     size_t *count, const char **why)
{
    scanner sc;
    size_t n = 0;
    if (!s)
        return -1;
    scanner_init(&sc, s, len, max_depth);
    skip_ws(&sc);
    if (sc.pos >= len || sc.s[sc.pos] != '{') {
        if (why)
            *why = "not an object";
        return -1;
    }
    sc.depth = 1;
    if (scan_object(&sc, m, max, &n, NULL) != 0) {
        if (why)
            *why = sc.why ? sc.why : "syntax error";
        return -1;
    }
    skip_ws(&sc);
    if (sc.pos != len) {
        if (why)
            *why = "trailing data after the JSON value";
        return -1;
    }
    if (count)
        *count = n;
    return 0;
}

int jscan_object(const char *s, size_t len, unsigned max_depth, jscan_member *m, size_t max,
                 size_t *count)
{
    return jscan_object_why(s, len, max_depth, m, max, count, NULL);
}

int jscan_get(const char *s, size_t len, const char *key, jscan_member *out)
{
    scanner sc;
    if (!s)
        return -1;
    scanner_init(&sc, s, len, 0);
    skip_ws(&sc);
    if (sc.pos >= len || sc.s[sc.pos] != '{')
        return -1;
    sc.depth = 1;
    jscan_member m;
    if (scan_object(&sc, &m, 0, NULL, key) != 1)
        return -1;
    if (out)
        *out = m;
    return 0;
}

const jscan_member *jscan_find(const char *s, const jscan_member *m, size_t n, const char *key)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < n; i++)
        if (m[i].key_len == klen && memcmp(s + m[i].key_off, key, klen) == 0)
            return &m[i];
    return NULL;
}

bool jscan_string_is(const char *s, const jscan_member *m, const char *lit)
{
    size_t n = strlen(lit);
    return m && m->type == JSCAN_STRING && m->val_len == n + 2 &&
           memcmp(s + m->val_off + 1, lit, n) == 0;
}

static size_t put_utf8(char *out, unsigned long cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static unsigned long hex4(const char *p)
{
    unsigned long v = 0;
    for (int i = 0; i < 4; i++)
        v = (v << 4) | (unsigned long)hexval((unsigned char)p[i]);
    return v;
}

int jscan_string_dup(const char *s, size_t len, char **out, size_t *out_len)
{
    if (len < 2 || s[0] != '"' || s[len - 1] != '"')
        return -1;
    /* Decoded text is never longer than the escaped text. */
    char *buf = malloc(len);
    if (!buf)
        return -1;
    size_t o = 0;
    for (size_t i = 1; i < len - 1;) {
        char ch = s[i];
        if (ch != '\\') {
            buf[o++] = ch;
            i++;
            continue;
        }
        char e = s[i + 1];
        i += 2;
        switch (e) {
        case 'b':
            buf[o++] = '\b';
            break;
        case 'f':
            buf[o++] = '\f';
            break;
        case 'n':
            buf[o++] = '\n';
            break;
        case 'r':
            buf[o++] = '\r';
            break;
        case 't':
            buf[o++] = '\t';
            break;
        case 'u': {
            unsigned long cp = hex4(s + i);
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 <= len - 1 && s[i] == '\\' &&
                s[i + 1] == 'u') {
                unsigned long lo = hex4(s + i + 2);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
            }
            if (cp == 0) {
                free(buf);
                return -1;
            }
            if (cp >= 0xD800 && cp <= 0xDFFF)
                cp = 0xFFFD; /* lone surrogate */
            o += put_utf8(buf + o, cp);
            break;
        }
        default:
            buf[o++] = e;
            break; /* '"', '\\', '/' */
        }
    }
    buf[o] = '\0';
    *out = buf;
    if (out_len)
        *out_len = o;
    return 0;
}

int jscan_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 20)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}
