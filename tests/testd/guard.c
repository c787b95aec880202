/* guard.c: guard expressions, byte-faithful to rstmdb-core's guard.rs.
 * The real parser advances a byte index one at a time even over multi-byte
 * characters, then slices the &str there; Rust panics on a slice inside a
 * character. We detect the same positions and report GUARD_EPANIC. */
#include "guard.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef enum gkind { G_TRUTHY, G_EQ, G_NE, G_GT, G_GE, G_LT, G_LE, G_AND, G_OR, G_NOT } gkind;

struct guard {
    gkind k;
    char *field;
    size_t flen;
    jval *val;  /* G_EQ/G_NE literal */
    double num; /* G_GT..G_LE literal */
    guard *l, *r;
};

void guard_free(guard *g)
{
    if (!g)
        return;
    free(g->field);
    jval_free(g->val);
    guard_free(g->l);
    guard_free(g->r);
    free(g);
}

typedef struct gp {
    const char *s;
    size_t len, pos;
    int err; /* 0, GUARD_EPARSE, GUARD_EPANIC, GUARD_ENOMEM */
    const char *reason;
    char *reason_dyn;
    int nest;     /* current '(' / '!' depth */
    size_t nodes; /* nodes allocated so far */
} gp;

/* Decode the char at byte i: -1 = end, -2 = not a char boundary / past end
 * (a Rust slice panic), else the code point; *n gets its byte length. */
static long char_at(const char *s, size_t len, size_t i, size_t *n)
{
    if (i == len)
        return -1;
    if (i > len)
        return -2;
    unsigned char c = (unsigned char)s[i];
    if (c < 0x80) {
        *n = 1;
        return c;
    }
    if ((c & 0xC0) == 0x80)
        return -2;
    size_t k = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    uint32_t cp = c & (k == 2 ? 0x1F : k == 3 ? 0x0F : 0x07);
    for (size_t j = 1; j < k && i + j < len; j++)
        cp = (cp << 6) | ((unsigned char)s[i + j] & 0x3F);
    *n = k;
    return (long)cp;
}

static bool is_ws(long c)
{
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* Rust's char::is_alphanumeric. Exact for ASCII; for other code points an
 * approximation that treats letters/digits of every script as alphanumeric
 * and the common punctuation, symbol, space and emoji blocks as not. */
static bool is_alnum(long c)
{
    if (c < 0x80)
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (is_ws(c))
        return false;
    if ((c >= 0x80 && c <= 0xBF && c != 0xAA && c != 0xB2 && c != 0xB3 && c != 0xB5 && c != 0xB9 &&
         c != 0xBA && c != 0xBC && c != 0xBD && c != 0xBE) ||
        c == 0xD7 || c == 0xF7)
        return false;
    if ((c >= 0x2000 && c <= 0x206F) || (c >= 0x20A0 && c <= 0x20CF) ||
        (c >= 0x2190 && c <= 0x245F) || (c >= 0x2500 && c <= 0x2775) ||
        (c >= 0x2794 && c <= 0x2BFF) || (c >= 0x3000 && c <= 0x3004) ||
        (c >= 0x3008 && c <= 0x3020) || (c >= 0xFE30 && c <= 0xFE4F) ||
        (c >= 0xFF00 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF20) ||
        (c >= 0xE000 && c <= 0xF8FF) || (c >= 0x1F000 && c <= 0x1FAFF) ||
        (c >= 0x300 && c <= 0x36F))
        return false;
    return true;
}

/* peek_char(): the char at pos, or -1 at end; sets a panic for mid-char. */
static long peek(gp *p, size_t *n)
{
    size_t dummy;
    long c = char_at(p->s, p->len, p->pos, n ? n : &dummy);
    if (c == -2) {
        p->err = GUARD_EPANIC;
        return -1;
    }
    return c;
}

/* peek_str(): starts_with on input[pos..]; slicing may panic. */
static bool peek_str(gp *p, const char *w)
{
    size_t n;
    if (char_at(p->s, p->len, p->pos, &n) == -2) {
        p->err = GUARD_EPANIC;
        return false;
    }
    size_t wl = strlen(w);
    return p->len - p->pos >= wl && memcmp(p->s + p->pos, w, wl) == 0;
}

static void skip_ws(gp *p)
{
    for (;;) {
        long c = peek(p, NULL);
        if (p->err || c < 0 || !is_ws(c))
            return;
        p->pos += 1; /* one byte, as the real parser does */
    }
}

static void fail(gp *p, const char *reason)
{
    if (!p->err) {
        p->err = GUARD_EPARSE;
        p->reason = reason;
    }
}

static guard *node(gp *p, gkind k)
{
    if (++p->nodes > GUARD_MAX_NODES) {
        p->err = GUARD_EPANIC; /* the real server overflows its stack long before */
        return NULL;
    }
    guard *g = calloc(1, sizeof(*g));
    if (!g)
        p->err = GUARD_ENOMEM;
    else
        g->k = k;
    return g;
}

static guard *parse_or(gp *p);

static bool parse_field(gp *p, char **field, size_t *flen)
{
    size_t start = p->pos;
    if (!peek_str(p, "ctx.")) {
        fail(p, "field must start with 'ctx.'");
        return false;
    }
    p->pos += 4;
    for (;;) {
        long c = peek(p, NULL);
        if (p->err)
            return false;
        if (c >= 0 && (is_alnum(c) || c == '_' || c == '.'))
            p->pos += 1;
        else
            break;
    }
    /* &input[start+4..pos] is a valid slice here (peek checked pos). */
    size_t n = p->pos - (start + 4);
    if (n == 0) {
        fail(p, "empty field name");
        return false;
    }
    *field = malloc(n + 1);
    if (!*field) {
        p->err = GUARD_ENOMEM;
        return false;
    }
    memcpy(*field, p->s + start + 4, n);
    (*field)[n] = '\0';
    *flen = n;
    return true;
}

static bool parse_number(gp *p, double *out)
{
    skip_ws(p);
    if (p->err)
        return false;
    size_t start = p->pos;
    if (peek(p, NULL) == '-')
        p->pos++;
    bool digits = false;
    long c;
    while (!p->err && (c = peek(p, NULL)) >= '0' && c <= '9') {
        p->pos++;
        digits = true;
    }
    if (!p->err && peek(p, NULL) == '.') {
        p->pos++;
        while (!p->err && (c = peek(p, NULL)) >= '0' && c <= '9') {
            p->pos++;
            digits = true;
        }
    }
    if (p->err)
        return false;
    size_t n = p->pos - start;
    if (!digits) {
        /* "invalid number: '<text>'" */
        char *r = malloc(n + 20);
        if (!r) {
            p->err = GUARD_ENOMEM;
            return false;
        }
        memcpy(r, "invalid number: '", 17);
        memcpy(r + 17, p->s + start, n);
        r[17 + n] = '\'';
        r[18 + n] = '\0';
        p->err = GUARD_EPARSE;
        p->reason_dyn = r;
        return false;
    }
    char tmp[64];
    char *t = n < sizeof(tmp) ? tmp : malloc(n + 1);
    if (!t) {
        p->err = GUARD_ENOMEM;
        return false;
    }
    memcpy(t, p->s + start, n);
    t[n] = '\0';
    *out = strtod(t, NULL);
    if (t != tmp)
        free(t);
    return true;
}

static jval *parse_value(gp *p)
{
    skip_ws(p);
    if (p->err)
        return NULL;
    jval *v = NULL;
    if (peek_str(p, "true")) {
        p->pos += 4;
        v = jval_bool(true);
    } else if (!p->err && peek_str(p, "false")) {
        p->pos += 5;
        v = jval_bool(false);
    } else if (!p->err && peek_str(p, "null")) {
        p->pos += 4;
        v = jval_null();
    } else if (!p->err && peek_str(p, "\"")) {
        p->pos += 1;
        size_t start = p->pos;
        for (;;) {
            long c = peek(p, NULL);
            if (p->err)
                return NULL;
            if (c < 0) {
                fail(p, "unterminated string");
                return NULL;
            }
            if (c == '"') {
                v = jval_str(p->s + start, p->pos - start);
                p->pos += 1;
                break;
            }
            p->pos += c == '\\' ? 2 : 1;
        }
    } else {
        if (p->err)
            return NULL;
        double d;
        if (!parse_number(p, &d))
            return NULL;
        if (!isfinite(d)) {
            /* serde_json::Number::from_f64(inf).unwrap() panics. */
            p->err = GUARD_EPANIC;
            return NULL;
        }
        v = jval_double(d);
    }
    if (!v && !p->err)
        p->err = GUARD_ENOMEM;
    return v;
}

static guard *parse_comparison(gp *p)
{
    skip_ws(p);
    char *field = NULL;
    size_t flen = 0;
    if (p->err || !parse_field(p, &field, &flen))
        return NULL;
    skip_ws(p);
    static const struct {
        const char *op;
        gkind k;
    } ops[] = {{"==", G_EQ}, {"!=", G_NE}, {">=", G_GE}, {"<=", G_LE}, {">", G_GT}, {"<", G_LT}};
    gkind k = G_TRUTHY;
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]) && !p->err; i++) {
        if (peek_str(p, ops[i].op)) {
            p->pos += strlen(ops[i].op);
            k = ops[i].k;
            break;
        }
    }
    if (p->err) {
        free(field);
        return NULL;
    }
    guard *g = node(p, k);
    if (!g) {
        free(field);
        return NULL;
    }
    g->field = field;
    g->flen = flen;
    if (k == G_EQ || k == G_NE) {
        skip_ws(p);
        g->val = p->err ? NULL : parse_value(p);
        if (!g->val) {
            guard_free(g);
            return NULL;
        }
    } else if (k != G_TRUTHY) {
        skip_ws(p);
        if (p->err || !parse_number(p, &g->num)) {
            guard_free(g);
            return NULL;
        }
    }
    return g;
}

static guard *parse_primary(gp *p)
{
    skip_ws(p);
    if (p->err)
        return NULL;
    if (peek(p, NULL) == '(') {
        p->pos++;
        if (++p->nest > GUARD_MAX_NEST) {
            p->err = GUARD_EPANIC;
            return NULL;
        }
        guard *g = parse_or(p);
        p->nest--;
        if (!g)
            return NULL;
        skip_ws(p);
        long c = p->err ? -1 : peek(p, NULL);
        if (p->err || c != ')') {
            fail(p, "expected ')'");
            guard_free(g);
            return NULL;
        }
        p->pos++;
        return g;
    }
    if (p->err)
        return NULL;
    return parse_comparison(p);
}

static guard *parse_unary(gp *p)
{
    skip_ws(p);
    if (p->err)
        return NULL;
    if (peek(p, NULL) == '!') {
        p->pos++;
        if (++p->nest > GUARD_MAX_NEST) {
            p->err = GUARD_EPANIC;
            return NULL;
        }
        skip_ws(p);
        guard *inner = p->err ? NULL : parse_unary(p);
        p->nest--;
        if (!inner)
            return NULL;
        guard *g = node(p, G_NOT);
        if (!g) {
            guard_free(inner);
            return NULL;
        }
        g->l = inner;
        return g;
    }
    if (p->err)
        return NULL;
    return parse_primary(p);
}

static guard *parse_binary(gp *p, bool is_or)
{
    guard *left = is_or ? parse_binary(p, false) : parse_unary(p);
    if (!left)
        return NULL;
    skip_ws(p);
    while (!p->err && peek_str(p, is_or ? "||" : "&&")) {
        p->pos += 2;
        skip_ws(p);
        guard *right = p->err ? NULL : (is_or ? parse_binary(p, false) : parse_unary(p));
        if (!right) {
            guard_free(left);
            return NULL;
        }
        guard *g = node(p, is_or ? G_OR : G_AND);
        if (!g) {
            guard_free(left);
            guard_free(right);
            return NULL;
        }
        g->l = left;
        g->r = right;
        left = g;
        skip_ws(p);
    }
    if (p->err) {
        guard_free(left);
        return NULL;
    }
    return left;
}

static guard *parse_or(gp *p)
{
    return parse_binary(p, true);
}

int guard_parse(const char *text, size_t len, guard **out, char **reason)
{
    *reason = NULL;
    /* str::trim(): Unicode whitespace at both ends. */
    size_t b = 0, e = len, n;
    for (;;) {
        long c = char_at(text, len, b, &n);
        if (c < 0 || !is_ws(c))
            break;
        b += n;
    }
    while (e > b) {
        size_t s = e - 1;
        while (s > b && ((unsigned char)text[s] & 0xC0) == 0x80)
            s--;
        long c = char_at(text, len, s, &n);
        if (c < 0 || !is_ws(c))
            break;
        e = s;
    }
    if (e == b) {
        *reason = strdup("empty guard expression");
        return *reason ? GUARD_EPARSE : GUARD_ENOMEM;
    }
    gp p = {.s = text + b, .len = e - b, .pos = 0, .err = 0, .reason = NULL, .reason_dyn = NULL};
    guard *g = parse_or(&p);
    if (g) {
        *out = g;
        return GUARD_OK;
    }
    if (p.err == GUARD_EPARSE) {
        if (p.reason_dyn)
            *reason = p.reason_dyn;
        else
            *reason = strdup(p.reason ? p.reason : "invalid");
        return *reason ? GUARD_EPARSE : GUARD_ENOMEM;
    }
    free(p.reason_dyn);
    return p.err ? p.err : GUARD_ENOMEM;
}

/* ------------------------------------------------------------ evaluation */

static const jval *get_field(const jval *ctx, const char *field, size_t flen)
{
    const jval *cur = ctx;
    size_t i = 0;
    for (;;) {
        size_t j = i;
        while (j < flen && field[j] != '.')
            j++;
        if (!cur || cur->t != JV_OBJECT)
            return NULL;
        /* Lookup of the segment [i, j). */
        const jval *next = NULL;
        for (size_t m = 0; m < cur->v.obj.n; m++) {
            const jmember *mm = &cur->v.obj.m[m];
            if (mm->klen == j - i && memcmp(mm->key, field + i, j - i) == 0)
                next = mm->val; /* last duplicate wins if unsorted */
        }
        cur = next;
        if (j >= flen)
            return cur;
        i = j + 1;
    }
}

static bool truthy(const jval *v)
{
    if (!v)
        return false;
    switch (v->t) {
    case JV_NULL:
        return false;
    case JV_BOOL:
        return v->v.b;
    case JV_INT:
    case JV_UINT:
    case JV_DOUBLE:
        return jval_as_double(v) != 0.0;
    case JV_STRING:
    case JV_ARRAY:
    case JV_OBJECT:
        return jval_len(v) != 0;
    }
    return false;
}

static bool equal(const jval *a, const jval *b)
{
    jtype ta = a ? a->t : JV_NULL, tb = b ? b->t : JV_NULL;
    if (ta == JV_NULL && tb == JV_NULL)
        return true;
    if (ta == JV_BOOL && tb == JV_BOOL)
        return a->v.b == b->v.b;
    if (jval_is_number(a) && jval_is_number(b))
        return fabs(jval_as_double(a) - jval_as_double(b)) < DBL_EPSILON;
    if (ta == JV_STRING && tb == JV_STRING)
        return a->v.str.len == b->v.str.len && memcmp(a->v.str.s, b->v.str.s, a->v.str.len) == 0;
    return false;
}

bool guard_eval(const guard *g, const jval *ctx)
{
    if (!g)
        return true;
    switch (g->k) {
    case G_AND:
        return guard_eval(g->l, ctx) && guard_eval(g->r, ctx);
    case G_OR:
        return guard_eval(g->l, ctx) || guard_eval(g->r, ctx);
    case G_NOT:
        return !guard_eval(g->l, ctx);
    default:
        break;
    }
    const jval *v = get_field(ctx, g->field, g->flen);
    switch (g->k) {
    case G_TRUTHY:
        return truthy(v);
    case G_EQ:
        return equal(v, g->val);
    case G_NE:
        return !equal(v, g->val);
    case G_GT:
        return jval_is_number(v) && jval_as_double(v) > g->num;
    case G_GE:
        return jval_is_number(v) && jval_as_double(v) >= g->num;
    case G_LT:
        return jval_is_number(v) && jval_as_double(v) < g->num;
    case G_LE:
        return jval_is_number(v) && jval_as_double(v) <= g->num;
    default:
        return false;
    }
}
