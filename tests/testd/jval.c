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

jval *jval_null(void)
{
    return jval_alloc(JV_NULL);
}

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

jval *jval_cstr(const char *s)
{
    return jval_str(s, strlen(s));
}

jval *jval_array(void)
{
    return jval_alloc(JV_ARRAY);
}

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

int jval_setc(jval *obj, const char *key, jval *val)
{
    return jval_set(obj, key, strlen(key), val);
}

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
            if (r + 1 < n &&
                key_cmp(m->key, m->klen, v->v.obj.m[r + 1].key, v->v.obj.m[r + 1].klen) == 0) {
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

static void put_utf8(strbuf *b, uint32_t cp)
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
    strbuf_add(b, t, n);
}

/* Parses a string literal (p->pos at the opening quote) into b. */
static int parse_string_raw(parser *p, strbuf *b)
{
    p->pos++;
    size_t run = p->pos;
    while (p->pos < p->len) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            strbuf_add(b, p->s + run, p->pos - run);
            p->pos++;
            return strbuf_failed(b) ? JVAL_ENOMEM : 0;
        }
        if (c < 0x20)
            return JVAL_ESYNTAX;
        if (c != '\\') {
            p->pos++;
            continue;
        }
        strbuf_add(b, p->s + run, p->pos - run);
        p->pos++;
        if (p->pos >= p->len)
            return JVAL_ESYNTAX;
        char e = p->s[p->pos++];
        /* The one-letter escapes, each beside the byte it stands for. */
        static const char esc_from[] = "\"\\/bfnrt";
        static const char esc_to[] = "\"\\/\b\f\n\r\t";
        const char *hit = e != '\0' ? strchr(esc_from, e) : NULL;
        if (hit) {
            strbuf_putc(b, esc_to[hit - esc_from]);
            run = p->pos;
            continue;
        }
        if (e != 'u')
            return JVAL_ESYNTAX;
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
        run = p->pos;
    }
    return JVAL_ESYNTAX;
}

static jval *parse_string(parser *p)
{
    strbuf b;
    strbuf_init(&b, TESTD_TEXT_MAX);
    int rc = parse_string_raw(p, &b);
    if (rc != 0) {
        p->err = rc;
        strbuf_deinit(&b);
        return NULL;
    }
    jval *v = jval_alloc(JV_STRING);
    size_t n = 0;
    char *s = strbuf_take(&b, &n);
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

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* serde_json's default (non-"float_roundtrip") float parsing, which the
 * real server uses: the significand is gathered into a u64 (digits past
 * u64 are dropped), then scaled by one multiply or divide by a power of
 * ten. It is not always correctly rounded, and the server echoes those
 * values: "2.5e-308" reads as 2.5000000000000003e-308 there, so it must
 * here too. The text is already known to be valid JSON number syntax. */
static const double pow10_tab[309] = {
    1e0,   1e1,   1e2,   1e3,   1e4,   1e5,   1e6,   1e7,   1e8,   1e9,   1e10,  1e11,  1e12,
    1e13,  1e14,  1e15,  1e16,  1e17,  1e18,  1e19,  1e20,  1e21,  1e22,  1e23,  1e24,  1e25,
    1e26,  1e27,  1e28,  1e29,  1e30,  1e31,  1e32,  1e33,  1e34,  1e35,  1e36,  1e37,  1e38,
    1e39,  1e40,  1e41,  1e42,  1e43,  1e44,  1e45,  1e46,  1e47,  1e48,  1e49,  1e50,  1e51,
    1e52,  1e53,  1e54,  1e55,  1e56,  1e57,  1e58,  1e59,  1e60,  1e61,  1e62,  1e63,  1e64,
    1e65,  1e66,  1e67,  1e68,  1e69,  1e70,  1e71,  1e72,  1e73,  1e74,  1e75,  1e76,  1e77,
    1e78,  1e79,  1e80,  1e81,  1e82,  1e83,  1e84,  1e85,  1e86,  1e87,  1e88,  1e89,  1e90,
    1e91,  1e92,  1e93,  1e94,  1e95,  1e96,  1e97,  1e98,  1e99,  1e100, 1e101, 1e102, 1e103,
    1e104, 1e105, 1e106, 1e107, 1e108, 1e109, 1e110, 1e111, 1e112, 1e113, 1e114, 1e115, 1e116,
    1e117, 1e118, 1e119, 1e120, 1e121, 1e122, 1e123, 1e124, 1e125, 1e126, 1e127, 1e128, 1e129,
    1e130, 1e131, 1e132, 1e133, 1e134, 1e135, 1e136, 1e137, 1e138, 1e139, 1e140, 1e141, 1e142,
    1e143, 1e144, 1e145, 1e146, 1e147, 1e148, 1e149, 1e150, 1e151, 1e152, 1e153, 1e154, 1e155,
    1e156, 1e157, 1e158, 1e159, 1e160, 1e161, 1e162, 1e163, 1e164, 1e165, 1e166, 1e167, 1e168,
    1e169, 1e170, 1e171, 1e172, 1e173, 1e174, 1e175, 1e176, 1e177, 1e178, 1e179, 1e180, 1e181,
    1e182, 1e183, 1e184, 1e185, 1e186, 1e187, 1e188, 1e189, 1e190, 1e191, 1e192, 1e193, 1e194,
    1e195, 1e196, 1e197, 1e198, 1e199, 1e200, 1e201, 1e202, 1e203, 1e204, 1e205, 1e206, 1e207,
    1e208, 1e209, 1e210, 1e211, 1e212, 1e213, 1e214, 1e215, 1e216, 1e217, 1e218, 1e219, 1e220,
    1e221, 1e222, 1e223, 1e224, 1e225, 1e226, 1e227, 1e228, 1e229, 1e230, 1e231, 1e232, 1e233,
    1e234, 1e235, 1e236, 1e237, 1e238, 1e239, 1e240, 1e241, 1e242, 1e243, 1e244, 1e245, 1e246,
    1e247, 1e248, 1e249, 1e250, 1e251, 1e252, 1e253, 1e254, 1e255, 1e256, 1e257, 1e258, 1e259,
    1e260, 1e261, 1e262, 1e263, 1e264, 1e265, 1e266, 1e267, 1e268, 1e269, 1e270, 1e271, 1e272,
    1e273, 1e274, 1e275, 1e276, 1e277, 1e278, 1e279, 1e280, 1e281, 1e282, 1e283, 1e284, 1e285,
    1e286, 1e287, 1e288, 1e289, 1e290, 1e291, 1e292, 1e293, 1e294, 1e295, 1e296, 1e297, 1e298,
    1e299, 1e300, 1e301, 1e302, 1e303, 1e304, 1e305, 1e306, 1e307, 1e308};

static bool u64_mul10_overflows(uint64_t sig, unsigned digit)
{
    return sig >= UINT64_MAX / 10 && (sig > UINT64_MAX / 10 || digit > UINT64_MAX % 10);
}

/* Returns 0 and *out, or -1 for serde_json's "number out of range". */
static int serde_f64_from_parts(bool positive, uint64_t sig, int32_t exponent, double *out)
{
    double f = (double)sig;
    for (;;) {
        uint32_t mag = exponent < 0 ? (uint32_t)0 - (uint32_t)exponent : (uint32_t)exponent;
        if (mag < 309) {
            if (exponent >= 0) {
                f *= pow10_tab[mag];
                if (isinf(f))
                    return -1;
            } else {
                f /= pow10_tab[mag];
            }
            break;
        }
        if (f == 0.0)
            break;
        if (exponent >= 0)
            return -1;
        f /= 1e308;
        exponent += 308;
    }
    *out = positive ? f : -f;
    return 0;
}

static int serde_f64(const char *s, size_t n, double *out)
{
    size_t i = 0;
    bool positive = true;
    if (s[i] == '-') {
        positive = false;
        i++;
    }
    uint64_t sig = 0;
    int32_t exponent = 0;
    bool dropping = false;
    /* integer part; once the u64 would overflow, digits only raise the exponent */
    while (i < n && is_digit(s[i])) {
        unsigned d = (unsigned)(s[i] - '0');
        if (!dropping && u64_mul10_overflows(sig, d))
            dropping = true;
        if (dropping)
            exponent++;
        else
            sig = sig * 10 + d;
        i++;
    }
    if (i < n && s[i] == '.') {
        i++;
        bool ignore = false;
        while (i < n && is_digit(s[i])) {
            unsigned d = (unsigned)(s[i] - '0');
            if (!ignore && u64_mul10_overflows(sig, d))
                ignore = true; /* parse_decimal_overflow: the rest is ignored */
            if (!ignore) {
                sig = sig * 10 + d;
                exponent--;
            }
            i++;
        }
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool pos_exp = true;
        if (s[i] == '+') {
            i++;
        } else if (s[i] == '-') {
            pos_exp = false;
            i++;
        }
        int32_t e = 0;
        while (i < n && is_digit(s[i])) {
            int32_t d = s[i] - '0';
            if (e >= INT32_MAX / 10 && (e > INT32_MAX / 10 || d > INT32_MAX % 10)) {
                /* parse_exponent_overflow: +inf is an error, else a signed zero */
                if (sig != 0 && pos_exp)
                    return -1;
                *out = positive ? 0.0 : -0.0;
                return 0;
            }
            e = e * 10 + d;
            i++;
        }
        int64_t fe = pos_exp ? (int64_t)exponent + e : (int64_t)exponent - e;
        exponent = fe > INT32_MAX ? INT32_MAX : fe < INT32_MIN ? INT32_MIN : (int32_t)fe;
    }
    return serde_f64_from_parts(positive, sig, exponent, out);
}

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
    double d = 0.0;
    if (serde_f64(p->s + start, p->pos - start, &d) != 0) {
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
        strbuf kb;
        strbuf_init(&kb, TESTD_TEXT_MAX);
        int rc = parse_string_raw(p, &kb);
        if (rc != 0) {
            strbuf_deinit(&kb);
            p->err = rc;
            goto fail;
        }
        size_t klen = 0;
        char *key = strbuf_take(&kb, &klen);
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

/* Shortest digits that round-trip (what ryu finds, by trial), without sign:
 * digits[0..nd) and kk such that 10^(kk-1) <= |d| < 10^kk. d is finite, != 0. */
static int shortest_digits(double d, char digits[24], int *kk)
{
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    const char *q = tmp;
    if (*q == '-')
        q++;
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
    *kk = e10 + 1;
    return nd;
}

void jval_print_double(strbuf *b, double d)
{
    if (!isfinite(d)) {
        strbuf_puts(b, "null"); /* serde_json writes non-finite floats as null */
        return;
    }
    if (d == 0.0) {
        strbuf_puts(b, signbit(d) ? "-0.0" : "0.0");
        return;
    }
    if (signbit(d))
        strbuf_putc(b, '-');
    char digits[24];
    int kk;
    int nd = shortest_digits(d, digits, &kk);
    if (nd <= kk && kk <= 16) {
        strbuf_add(b, digits, (size_t)nd);
        for (int i = nd; i < kk; i++)
            strbuf_putc(b, '0');
        strbuf_puts(b, ".0");
    } else if (0 < kk && kk <= 16) {
        strbuf_add(b, digits, (size_t)kk);
        strbuf_putc(b, '.');
        strbuf_add(b, digits + kk, (size_t)(nd - kk));
    } else if (-5 < kk && kk <= 0) {
        strbuf_puts(b, "0.");
        for (int i = kk; i < 0; i++)
            strbuf_putc(b, '0');
        strbuf_add(b, digits, (size_t)nd);
    } else {
        strbuf_putc(b, digits[0]);
        if (nd > 1) {
            strbuf_putc(b, '.');
            strbuf_add(b, digits + 1, (size_t)(nd - 1));
        }
        strbuf_printf(b, "e%d", kk - 1);
    }
}

void jval_print_double_display(strbuf *b, double d)
{
    if (isnan(d)) {
        strbuf_puts(b, "NaN");
        return;
    }
    if (signbit(d))
        strbuf_putc(b, '-');
    if (isinf(d)) {
        strbuf_puts(b, "inf");
        return;
    }
    if (d == 0.0) {
        strbuf_putc(b, '0');
        return;
    }
    char digits[24];
    int kk;
    int nd = shortest_digits(d, digits, &kk);
    if (kk <= 0) {
        strbuf_puts(b, "0.");
        for (int i = kk; i < 0; i++)
            strbuf_putc(b, '0');
        strbuf_add(b, digits, (size_t)nd);
    } else if (nd <= kk) {
        strbuf_add(b, digits, (size_t)nd);
        for (int i = nd; i < kk; i++)
            strbuf_putc(b, '0');
    } else {
        strbuf_add(b, digits, (size_t)kk);
        strbuf_putc(b, '.');
        strbuf_add(b, digits + kk, (size_t)(nd - kk));
    }
}

void jval_print(strbuf *b, const jval *v)
{
    switch (v->t) {
    case JV_NULL:
        strbuf_puts(b, "null");
        break;
    case JV_BOOL:
        strbuf_puts(b, v->v.b ? "true" : "false");
        break;
    case JV_INT:
        strbuf_i64(b, v->v.i);
        break;
    case JV_UINT:
        strbuf_u64(b, v->v.u);
        break;
    case JV_DOUBLE:
        jval_print_double(b, v->v.d);
        break;
    case JV_STRING:
        strbuf_jstr(b, v->v.str.s, v->v.str.len);
        break;
    case JV_ARRAY:
        strbuf_putc(b, '[');
        for (size_t i = 0; i < v->v.arr.n; i++) {
            if (i)
                strbuf_putc(b, ',');
            jval_print(b, v->v.arr.items[i]);
        }
        strbuf_putc(b, ']');
        break;
    case JV_OBJECT:
        strbuf_putc(b, '{');
        for (size_t i = 0; i < v->v.obj.n; i++) {
            if (i)
                strbuf_putc(b, ',');
            strbuf_jstr(b, v->v.obj.m[i].key, v->v.obj.m[i].klen);
            strbuf_putc(b, ':');
            jval_print(b, v->v.obj.m[i].val);
        }
        strbuf_putc(b, '}');
        break;
    }
}

char *jval_to_string(const jval *v, size_t *len)
{
    strbuf b;
    strbuf_init(&b, TESTD_TEXT_MAX);
    jval_print(&b, v);
    return strbuf_take(&b, len);
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
