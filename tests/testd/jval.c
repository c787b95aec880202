/* jval.c: JSON values, a strict serde_json-compatible parser and a compact
 * printer with Rust's float formatting. Owns value memory only; it knows
 * nothing about the protocol (envelope rules live in engine.c). */
#include "jval.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static jval *jval_alloc(jtype t)
{
    jval *v = calloc(1, sizeof(*v));
    if (v)
        v->t = t;
    return v;
}

jval *jval_null(void) { return jval_alloc(JV_NULL); }

jval *jval_bool(bool b)
{
    jval *v = jval_alloc(JV_BOOL);
    if (v)
        v->v.b = b;
    return v;
}

jval *jval_uint(uint64_t u)
{
    jval *v = jval_alloc(JV_UINT);
    if (v)
        v->v.u = u;
    return v;
}

jval *jval_int(int64_t i)
{
    if (i >= 0)
        return jval_uint((uint64_t)i);
    jval *v = jval_alloc(JV_INT);
    if (v)
        v->v.i = i;
    return v;
}

jval *jval_double(double d)
{
    jval *v = jval_alloc(JV_DOUBLE);
    if (v)
        v->v.d = d;
    return v;
}

jval *jval_str(const char *s, size_t len)
{
    jval *v = jval_alloc(JV_STRING);
    if (!v)
        return NULL;
    v->v.str.s = malloc(len + 1);
    if (!v->v.str.s) {
        free(v);
        return NULL;
    }
    if (len)
        memcpy(v->v.str.s, s, len);
    v->v.str.s[len] = '\0';
    v->v.str.len = len;
    return v;
}

jval *jval_cstr(const char *s) { return jval_str(s, strlen(s)); }

jval *jval_array(void) { return jval_alloc(JV_ARRAY); }

jval *jval_object(void)
{
    jval *v = jval_alloc(JV_OBJECT);
    if (v)
        v->sorted = true;
    return v;
}

void jval_free(jval *v)
{
    if (!v)
        return;
    switch (v->t) {
    case JV_STRING:
        free(v->v.str.s);
        break;
    case JV_ARRAY:
        for (size_t i = 0; i < v->v.arr.n; i++)
            jval_free(v->v.arr.items[i]);
        free(v->v.arr.items);
        break;
    case JV_OBJECT:
        for (size_t i = 0; i < v->v.obj.n; i++) {
            free(v->v.obj.m[i].key);
            jval_free(v->v.obj.m[i].val);
        }
        free(v->v.obj.m);
        break;
    default:
        break;
    }
    free(v);
}

jval *jval_copy(const jval *v)
{
    if (!v)
        return NULL;
    switch (v->t) {
    case JV_NULL:
        return jval_null();
    case JV_BOOL:
        return jval_bool(v->v.b);
    case JV_INT:
        return jval_int(v->v.i);
    case JV_UINT:
        return jval_uint(v->v.u);
    case JV_DOUBLE:
        return jval_double(v->v.d);
    case JV_STRING:
        return jval_str(v->v.str.s, v->v.str.len);
    case JV_ARRAY: {
        jval *a = jval_array();
        if (!a)
            return NULL;
        a->v.arr.items = calloc(v->v.arr.n ? v->v.arr.n : 1, sizeof(jval *));
        if (!a->v.arr.items) {
            free(a);
            return NULL;
        }
        a->v.arr.cap = v->v.arr.n ? v->v.arr.n : 1;
        for (size_t i = 0; i < v->v.arr.n; i++) {
            jval *c = jval_copy(v->v.arr.items[i]);
            if (!c) {
                jval_free(a);
                return NULL;
            }
            a->v.arr.items[a->v.arr.n++] = c;
        }
        return a;
    }
    case JV_OBJECT: {
        jval *o = jval_alloc(JV_OBJECT);
        if (!o)
            return NULL;
        o->sorted = v->sorted;
        o->v.obj.m = calloc(v->v.obj.n ? v->v.obj.n : 1, sizeof(jmember));
        if (!o->v.obj.m) {
            free(o);
            return NULL;
        }
        o->v.obj.cap = v->v.obj.n ? v->v.obj.n : 1;
        for (size_t i = 0; i < v->v.obj.n; i++) {
            const jmember *m = &v->v.obj.m[i];
            char *k = malloc(m->klen + 1);
            jval *c = jval_copy(m->val);
            if (!k || !c) {
                free(k);
                jval_free(c);
                jval_free(o);
                return NULL;
            }
            memcpy(k, m->key, m->klen + 1);
            o->v.obj.m[o->v.obj.n].key = k;
            o->v.obj.m[o->v.obj.n].klen = m->klen;
            o->v.obj.m[o->v.obj.n].val = c;
            o->v.obj.n++;
        }
        return o;
    }
    }
    return NULL;
}

int jval_push(jval *arr, jval *item)
{
    if (!item)
        return -1;
    if (arr->v.arr.n == arr->v.arr.cap) {
        size_t nc = arr->v.arr.cap ? arr->v.arr.cap * 2 : 4;
        jval **p = realloc(arr->v.arr.items, nc * sizeof(*p));
        if (!p) {
            jval_free(item);
            return -1;
        }
        arr->v.arr.items = p;
        arr->v.arr.cap = nc;
    }
    arr->v.arr.items[arr->v.arr.n++] = item;
    return 0;
}

static int key_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return al < bl ? -1 : (al > bl ? 1 : 0);
}

/* Binary search in a sorted object: index of key, or -(insertion point)-1. */
static long obj_find(const jval *o, const char *key, size_t klen)
{
    size_t lo = 0, hi = o->v.obj.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const jmember *m = &o->v.obj.m[mid];
        int c = key_cmp(m->key, m->klen, key, klen);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

static int obj_reserve(jval *o)
{
    if (o->v.obj.n < o->v.obj.cap)
        return 0;
    size_t nc = o->v.obj.cap ? o->v.obj.cap * 2 : 4;
    jmember *p = realloc(o->v.obj.m, nc * sizeof(*p));
    if (!p)
        return -1;
    o->v.obj.m = p;
    o->v.obj.cap = nc;
    return 0;
}

int jval_set(jval *obj, const char *key, size_t klen, jval *val)
{
    if (!val)
        return -1;
    long at = obj_find(obj, key, klen);
    if (at >= 0) {
        jval_free(obj->v.obj.m[at].val);
        obj->v.obj.m[at].val = val;
        return 0;
    }
    size_t pos = (size_t)(-(at + 1));
    char *k = malloc(klen + 1);
    if (!k || obj_reserve(obj) != 0) {
        free(k);
        jval_free(val);
        return -1;
    }
    memcpy(k, key, klen);
    k[klen] = '\0';
    memmove(&obj->v.obj.m[pos + 1], &obj->v.obj.m[pos], (obj->v.obj.n - pos) * sizeof(jmember));
    obj->v.obj.m[pos].key = k;
    obj->v.obj.m[pos].klen = klen;
    obj->v.obj.m[pos].val = val;
    obj->v.obj.n++;
    return 0;
}

int jval_setc(jval *obj, const char *key, jval *val) { return jval_set(obj, key, strlen(key), val); }

const jval *jval_get(const jval *obj, const char *key)
{
    if (!obj || obj->t != JV_OBJECT)
        return NULL;
    size_t klen = strlen(key);
    if (obj->sorted) {
        long at = obj_find(obj, key, klen);
        return at >= 0 ? obj->v.obj.m[at].val : NULL;
    }
    for (size_t i = obj->v.obj.n; i-- > 0;) {
        const jmember *m = &obj->v.obj.m[i];
        if (m->klen == klen && memcmp(m->key, key, klen) == 0)
            return m->val;
    }
    return NULL;
}

/* Stable merge sort of members by key, so that among duplicates the input
 * order survives and the last one can be kept. */
static void members_sort(jmember *m, jmember *tmp, size_t n)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    members_sort(m, tmp, h);
    members_sort(m + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        if (key_cmp(m[j].key, m[j].klen, m[i].key, m[i].klen) < 0)
            tmp[k++] = m[j++];
        else
            tmp[k++] = m[i++];
    }
    while (i < h)
        tmp[k++] = m[i++];
    while (j < n)
        tmp[k++] = m[j++];
    memcpy(m, tmp, n * sizeof(*m));
}

int jval_normalize(jval *v)
{
    if (!v)
        return 0;
    if (v->t == JV_ARRAY) {
        for (size_t i = 0; i < v->v.arr.n; i++)
            if (jval_normalize(v->v.arr.items[i]) != 0)
                return -1;
        return 0;
    }
    if (v->t != JV_OBJECT)
        return 0;
    for (size_t i = 0; i < v->v.obj.n; i++)
        if (jval_normalize(v->v.obj.m[i].val) != 0)
            return -1;
    if (v->sorted)
        return 0;
    size_t n = v->v.obj.n;
    if (n > 1) {
        jmember *tmp = malloc(n * sizeof(*tmp));
        if (!tmp)
            return -1;
        members_sort(v->v.obj.m, tmp, n);
        free(tmp);
        /* Keep the last of each run of equal keys. */
        size_t w = 0;
        for (size_t r = 0; r < n; r++) {
            jmember *m = &v->v.obj.m[r];
            if (r + 1 < n && key_cmp(m->key, m->klen, v->v.obj.m[r + 1].key, v->v.obj.m[r + 1].klen) == 0) {
                free(m->key);
                jval_free(m->val);
                continue;
            }
            v->v.obj.m[w++] = *m;
        }
        v->v.obj.n = w;
    }
    v->sorted = true;
    return 0;
}

/* ---------------------------------------------------------------- UTF-8 */

bool jval_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else
            return false;
        if (i + n >= len)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        if (cp >= 0xD800 && cp <= 0xDFFF)
            return false;
        i += n + 1;
    }
    return true;
}

/* --------------------------------------------------------------- parser */

typedef struct parser {
    const char *s;
    size_t len, pos;
    int depth;
    int err;
} parser;

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            p->pos++;
        else
            break;
    }
}

static jval *parse_value(parser *p);

static int hex4(parser *p, uint32_t *out)
{
    if (p->len - p->pos < 4)
        return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static void put_utf8(jbuf *b, uint32_t cp)
{
    char t[4];
    size_t n;
    if (cp < 0x80) {
        t[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        t[0] = (char)(0xC0 | (cp >> 6));
        t[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        t[0] = (char)(0xE0 | (cp >> 12));
        t[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        t[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        t[0] = (char)(0xF0 | (cp >> 18));
        t[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        t[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        t[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    jbuf_append(b, t, n);
}

/* Parses a string literal (p->pos at the opening quote) into b. */
static int parse_string_raw(parser *p, jbuf *b)
{
    p->pos++;
    size_t run = p->pos;
    while (p->pos < p->len) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            jbuf_append(b, p->s + run, p->pos - run);
            p->pos++;
            return jbuf_failed(b) ? JVAL_ENOMEM : 0;
        }
        if (c < 0x20)
            return JVAL_ESYNTAX;
        if (c != '\\') {
            p->pos++;
            continue;
        }
        jbuf_append(b, p->s + run, p->pos - run);
        p->pos++;
        if (p->pos >= p->len)
            return JVAL_ESYNTAX;
        char e = p->s[p->pos++];
        switch (e) {
        case '"':
            jbuf_putc(b, '"');
            break;
        case '\\':
            jbuf_putc(b, '\\');
            break;
        case '/':
            jbuf_putc(b, '/');
            break;
        case 'b':
            jbuf_putc(b, '\b');
            break;
        case 'f':
            jbuf_putc(b, '\f');
            break;
        case 'n':
            jbuf_putc(b, '\n');
            break;
        case 'r':
            jbuf_putc(b, '\r');
            break;
        case 't':
            jbuf_putc(b, '\t');
            break;
        case 'u': {
            uint32_t cp;
            if (hex4(p, &cp) != 0)
                return JVAL_ESYNTAX;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return JVAL_ESYNTAX; /* lone trailing surrogate */
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
                    return JVAL_ESYNTAX;
                p->pos += 2;
                if (hex4(p, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
                    return JVAL_ESYNTAX;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            put_utf8(b, cp);
            break;
        }
        default:
            return JVAL_ESYNTAX;
        }
        run = p->pos;
    }
    return JVAL_ESYNTAX;
}

static jval *parse_string(parser *p)
{
    jbuf b;
    jbuf_init(&b);
    int rc = parse_string_raw(p, &b);
    if (rc != 0) {
        p->err = rc;
        jbuf_deinit(&b);
        return NULL;
    }
    jval *v = jval_alloc(JV_STRING);
    size_t n = 0;
    char *s = jbuf_steal(&b, &n);
    if (!v || !s) {
        free(v);
        free(s);
        p->err = JVAL_ENOMEM;
        return NULL;
    }
    v->v.str.s = s;
    v->v.str.len = n;
    return v;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static jval *parse_number(parser *p)
{
    size_t start = p->pos;
    bool neg = false;
    if (p->s[p->pos] == '-') {
        neg = true;
        p->pos++;
    }
    if (p->pos >= p->len || !is_digit(p->s[p->pos])) {
        p->err = JVAL_ESYNTAX;
        return NULL;
    }
    if (p->s[p->pos] == '0') {
        p->pos++;
        if (p->pos < p->len && is_digit(p->s[p->pos])) {
            p->err = JVAL_ESYNTAX; /* leading zero */
            return NULL;
        }
    } else {
        while (p->pos < p->len && is_digit(p->s[p->pos]))
            p->pos++;
    }
    size_t int_end = p->pos;
    bool is_float = false;
    if (p->pos < p->len && p->s[p->pos] == '.') {
        is_float = true;
        p->pos++;
        if (p->pos >= p->len || !is_digit(p->s[p->pos])) {
            p->err = JVAL_ESYNTAX;
            return NULL;
        }
        while (p->pos < p->len && is_digit(p->s[p->pos]))
            p->pos++;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        is_float = true;
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (p->pos >= p->len || !is_digit(p->s[p->pos])) {
            p->err = JVAL_ESYNTAX;
            return NULL;
        }
        while (p->pos < p->len && is_digit(p->s[p->pos]))
            p->pos++;
    }
    if (!is_float) {
        /* Integer: u64 if it fits; negative: i64 unless -0 or below i64::MIN. */
        uint64_t sig = 0;
        bool overflow = false;
        for (size_t i = start + (neg ? 1 : 0); i < int_end; i++) {
            unsigned d = (unsigned)(p->s[i] - '0');
            if (sig > (UINT64_MAX - d) / 10) {
                overflow = true;
                break;
            }
            sig = sig * 10 + d;
        }
        if (!overflow) {
            if (!neg)
                return jval_uint(sig);
            if (sig == 0)
                return jval_double(-0.0);
            if (sig <= (uint64_t)INT64_MAX + 1)
                return jval_int(sig == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)sig);
        }
    }
    char tmp[64];
    char *heap = NULL;
    size_t n = p->pos - start;
    char *t = tmp;
    if (n >= sizeof(tmp)) {
        heap = malloc(n + 1);
        if (!heap) {
            p->err = JVAL_ENOMEM;
            return NULL;
        }
        t = heap;
    }
    memcpy(t, p->s + start, n);
    t[n] = '\0';
    errno = 0;
    double d = strtod(t, NULL);
    free(heap);
    if (isinf(d)) {
        p->err = JVAL_ESYNTAX; /* serde_json: "number out of range" */
        return NULL;
    }
    jval *v = jval_double(d);
    if (!v)
        p->err = JVAL_ENOMEM;
    return v;
}

static bool match_word(parser *p, const char *w)
{
    size_t n = strlen(w);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, w, n) != 0)
        return false;
    p->pos += n;
    return true;
}

static jval *parse_array(parser *p)
{
    p->pos++;
    jval *a = jval_array();
    if (!a) {
        p->err = JVAL_ENOMEM;
        return NULL;
    }
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
        return a;
    }
    for (;;) {
        jval *item = parse_value(p);
        if (!item || jval_push(a, item) != 0) {
            if (!p->err)
                p->err = JVAL_ENOMEM;
            jval_free(a);
            return NULL;
        }
        skip_ws(p);
        if (p->pos >= p->len)
            break;
        char c = p->s[p->pos++];
        if (c == ']')
            return a;
        if (c != ',')
            break;
    }
    p->err = JVAL_ESYNTAX;
    jval_free(a);
    return NULL;
}

static jval *parse_object(parser *p)
{
    p->pos++;
    jval *o = jval_alloc(JV_OBJECT);
    if (!o) {
        p->err = JVAL_ENOMEM;
        return NULL;
    }
    o->sorted = false;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
        o->sorted = true;
        return o;
    }
    for (;;) {
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != '"')
            goto syntax;
        jbuf kb;
        jbuf_init(&kb);
        int rc = parse_string_raw(p, &kb);
        if (rc != 0) {
            jbuf_deinit(&kb);
            p->err = rc;
            goto fail;
        }
        size_t klen = 0;
        char *key = jbuf_steal(&kb, &klen);
        if (!key) {
            p->err = JVAL_ENOMEM;
            goto fail;
        }
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':') {
            free(key);
            goto syntax;
        }
        p->pos++;
        jval *val = parse_value(p);
        if (!val || obj_reserve(o) != 0) {
            free(key);
            jval_free(val);
            if (!p->err)
                p->err = JVAL_ENOMEM;
            goto fail;
        }
        o->v.obj.m[o->v.obj.n].key = key;
        o->v.obj.m[o->v.obj.n].klen = klen;
        o->v.obj.m[o->v.obj.n].val = val;
        o->v.obj.n++;
        skip_ws(p);
        if (p->pos >= p->len)
            goto syntax;
        char c = p->s[p->pos++];
        if (c == '}')
            return o;
        if (c != ',')
            goto syntax;
    }
syntax:
    p->err = JVAL_ESYNTAX;
fail:
    jval_free(o);
    return NULL;
}

static jval *parse_value(parser *p)
{
    skip_ws(p);
    if (p->pos >= p->len) {
        p->err = JVAL_ESYNTAX;
        return NULL;
    }
    char c = p->s[p->pos];
    jval *v = NULL;
    switch (c) {
    case '{':
    case '[':
        if (++p->depth > JVAL_MAX_DEPTH) {
            p->err = JVAL_ESYNTAX;
            return NULL;
        }
        v = c == '{' ? parse_object(p) : parse_array(p);
        p->depth--;
        return v;
    case '"':
        return parse_string(p);
    case 't':
        if (match_word(p, "true"))
            v = jval_bool(true);
        else {
            p->err = JVAL_ESYNTAX;
            return NULL;
        }
        break;
    case 'f':
        if (match_word(p, "false"))
            v = jval_bool(false);
        else {
            p->err = JVAL_ESYNTAX;
            return NULL;
        }
        break;
    case 'n':
        if (match_word(p, "null"))
            v = jval_null();
        else {
            p->err = JVAL_ESYNTAX;
            return NULL;
        }
        break;
    default:
        if (c == '-' || is_digit(c))
            return parse_number(p);
        p->err = JVAL_ESYNTAX;
        return NULL;
    }
    if (!v)
        p->err = JVAL_ENOMEM;
    return v;
}

int jval_parse(const char *text, size_t len, jval **out)
{
    parser p = {.s = text, .len = len, .pos = 0, .depth = 0, .err = 0};
    jval *v = parse_value(&p);
    if (!v)
        return p.err ? p.err : JVAL_ESYNTAX;
    skip_ws(&p);
    if (p.pos != p.len) {
        jval_free(v);
        return JVAL_ESYNTAX; /* serde_json: "trailing characters" */
    }
    *out = v;
    return 0;
}

/* -------------------------------------------------------------- printer */

void jval_print_double(jbuf *b, double d)
{
    if (!isfinite(d)) {
        jbuf_puts(b, "null"); /* serde_json writes non-finite floats as null */
        return;
    }
    if (d == 0.0) {
        jbuf_puts(b, signbit(d) ? "-0.0" : "0.0");
        return;
    }
    /* Shortest digits that round-trip: what ryu finds, by trial. */
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    const char *q = tmp;
    if (*q == '-') {
        jbuf_putc(b, '-');
        q++;
    }
    char digits[24];
    int nd = 0;
    while (*q && *q != 'e') {
        if (*q != '.')
            digits[nd++] = *q;
        q++;
    }
    int e10 = *q == 'e' ? atoi(q + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    int kk = e10 + 1; /* 10^(kk-1) <= |d| < 10^kk */
    if (nd <= kk && kk <= 16) {
        jbuf_append(b, digits, (size_t)nd);
        for (int i = nd; i < kk; i++)
            jbuf_putc(b, '0');
        jbuf_puts(b, ".0");
    } else if (0 < kk && kk <= 16) {
        jbuf_append(b, digits, (size_t)kk);
        jbuf_putc(b, '.');
        jbuf_append(b, digits + kk, (size_t)(nd - kk));
    } else if (-5 < kk && kk <= 0) {
        jbuf_puts(b, "0.");
        for (int i = kk; i < 0; i++)
            jbuf_putc(b, '0');
        jbuf_append(b, digits, (size_t)nd);
    } else {
        jbuf_putc(b, digits[0]);
        if (nd > 1) {
            jbuf_putc(b, '.');
            jbuf_append(b, digits + 1, (size_t)(nd - 1));
        }
        jbuf_printf(b, "e%d", kk - 1);
    }
}

void jval_print(jbuf *b, const jval *v)
{
    switch (v->t) {
    case JV_NULL:
        jbuf_puts(b, "null");
        break;
    case JV_BOOL:
        jbuf_puts(b, v->v.b ? "true" : "false");
        break;
    case JV_INT:
        jbuf_i64(b, v->v.i);
        break;
    case JV_UINT:
        jbuf_u64(b, v->v.u);
        break;
    case JV_DOUBLE:
        jval_print_double(b, v->v.d);
        break;
    case JV_STRING:
        jbuf_jstr(b, v->v.str.s, v->v.str.len);
        break;
    case JV_ARRAY:
        jbuf_putc(b, '[');
        for (size_t i = 0; i < v->v.arr.n; i++) {
            if (i)
                jbuf_putc(b, ',');
            jval_print(b, v->v.arr.items[i]);
        }
        jbuf_putc(b, ']');
        break;
    case JV_OBJECT:
        jbuf_putc(b, '{');
        for (size_t i = 0; i < v->v.obj.n; i++) {
            if (i)
                jbuf_putc(b, ',');
            jbuf_jstr(b, v->v.obj.m[i].key, v->v.obj.m[i].klen);
            jbuf_putc(b, ':');
            jval_print(b, v->v.obj.m[i].val);
        }
        jbuf_putc(b, '}');
        break;
    }
}

char *jval_to_string(const jval *v, size_t *len)
{
    jbuf b;
    jbuf_init(&b);
    jval_print(&b, v);
    return jbuf_steal(&b, len);
}

bool jval_is_number(const jval *v)
{
    return v && (v->t == JV_INT || v->t == JV_UINT || v->t == JV_DOUBLE);
}

double jval_as_double(const jval *v)
{
    switch (v->t) {
    case JV_INT:
        return (double)v->v.i;
    case JV_UINT:
        return (double)v->v.u;
    case JV_DOUBLE:
        return v->v.d;
    default:
        return 0.0;
    }
}

size_t jval_len(const jval *v)
{
    switch (v->t) {
    case JV_STRING:
        return v->v.str.len;
    case JV_ARRAY:
        return v->v.arr.n;
    case JV_OBJECT:
        return v->v.obj.n;
    default:
        return 0;
    }
}
