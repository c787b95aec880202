/* params.c: serde-derive-compatible decoding of request params and serde's
 * error wording. Reads values only; never allocates besides error text. */
#include "params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void params_unexpected(strbuf *b, const jval *v)
{
    if (!v) {
        strbuf_puts(b, "null");
        return;
    }
    switch (v->t) {
    case JV_NULL:
        strbuf_puts(b, "null");
        break;
    case JV_BOOL:
        strbuf_puts(b, v->v.b ? "boolean `true`" : "boolean `false`");
        break;
    case JV_INT:
        strbuf_puts(b, "integer `");
        strbuf_i64(b, v->v.i);
        strbuf_putc(b, '`');
        break;
    case JV_UINT:
        strbuf_puts(b, "integer `");
        strbuf_u64(b, v->v.u);
        strbuf_putc(b, '`');
        break;
    case JV_DOUBLE:
        strbuf_puts(b, "floating point `");
        jval_print_double_display(b, v->v.d);
        strbuf_putc(b, '`');
        break;
    case JV_STRING: {
        /* Rust's {:?} of a str. */
        strbuf_puts(b, "string \"");
        for (size_t i = 0; i < v->v.str.len; i++) {
            unsigned char c = (unsigned char)v->v.str.s[i];
            if (c == '"')
                strbuf_puts(b, "\\\"");
            else if (c == '\\')
                strbuf_puts(b, "\\\\");
            else if (c == '\n')
                strbuf_puts(b, "\\n");
            else if (c == '\r')
                strbuf_puts(b, "\\r");
            else if (c == '\t')
                strbuf_puts(b, "\\t");
            else if (c == 0)
                strbuf_puts(b, "\\0");
            else if (c < 0x20 || c == 0x7f)
                strbuf_printf(b, "\\u{%x}", c);
            else
                strbuf_putc(b, (char)c);
        }
        strbuf_putc(b, '"');
        break;
    }
    case JV_ARRAY:
        strbuf_puts(b, "sequence");
        break;
    case JV_OBJECT:
        strbuf_puts(b, "map");
        break;
    }
}

static char *finish(strbuf *b)
{
    return strbuf_take(b, NULL);
}

static char *invalid_type(const jval *v, const char *expected)
{
    strbuf b;
    strbuf_init(&b, TESTD_TEXT_MAX);
    strbuf_puts(&b, "invalid type: ");
    params_unexpected(&b, v);
    strbuf_puts(&b, ", expected ");
    strbuf_puts(&b, expected);
    return finish(&b);
}

static char *invalid_value(const jval *v, const char *expected)
{
    strbuf b;
    strbuf_init(&b, TESTD_TEXT_MAX);
    strbuf_puts(&b, "invalid value: ");
    params_unexpected(&b, v);
    strbuf_puts(&b, ", expected ");
    strbuf_puts(&b, expected);
    return finish(&b);
}

static int decode_uint(const jval *v, uint64_t max, const char *name, uint64_t *out, char **err)
{
    if (v && v->t == JV_UINT) {
        if (v->v.u > max) {
            *err = invalid_value(v, name);
            return -1;
        }
        *out = v->v.u;
        return 0;
    }
    if (v && v->t == JV_INT) {
        *err = invalid_value(v, name);
        return -1;
    }
    *err = invalid_type(v, name);
    return -1;
}

static int decode_field(const jval *v, ptype t, pval *o, char **err)
{
    bool isnull = !v || v->t == JV_NULL;
    switch (t) {
    case PT_OPT_STRING:
    case PT_OPT_STRING_DEF:
        if (isnull)
            return 0;
        __attribute__((fallthrough)); /* an optional field, present: decode it */
    case PT_STRING:
        if (!v || v->t != JV_STRING) {
            *err = invalid_type(v, "a string");
            return -1;
        }
        o->present = true;
        o->s = v->v.str.s;
        o->slen = v->v.str.len;
        return 0;
    case PT_U16:
        o->present = true;
        return decode_uint(v, UINT16_MAX, "u16", &o->u, err);
    case PT_OPT_U32:
        if (isnull)
            return 0;
        __attribute__((fallthrough)); /* an optional field, present: decode it */
    case PT_U32:
        o->present = true;
        return decode_uint(v, UINT32_MAX, "u32", &o->u, err);
    case PT_OPT_U64:
        if (isnull)
            return 0;
        o->present = true;
        return decode_uint(v, UINT64_MAX, "u64", &o->u, err);
    case PT_BOOL_TRUE:
    case PT_BOOL_FALSE:
        if (!v || v->t != JV_BOOL) {
            *err = invalid_type(v, "a boolean");
            return -1;
        }
        o->present = true;
        o->b = v->v.b;
        return 0;
    case PT_STRVEC:
        if (!v || v->t != JV_ARRAY) {
            *err = invalid_type(v, "a sequence");
            return -1;
        }
        for (size_t i = 0; i < v->v.arr.n; i++) {
            if (v->v.arr.items[i]->t != JV_STRING) {
                *err = invalid_type(v->v.arr.items[i], "a string");
                return -1;
            }
        }
        o->present = true;
        o->v = v;
        return 0;
    case PT_ANY:
    case PT_ANY_REQ:
        o->present = true;
        o->v = isnull ? NULL : v;
        return 0;
    }
    return 0;
}

static void set_default(ptype t, pval *o)
{
    memset(o, 0, sizeof(*o));
    if (t == PT_BOOL_TRUE)
        o->b = true;
}

int params_struct_nullable(const jval *params, bool null_ok, const char *struct_name,
                           const pfield *fields, size_t nf, pval *out, char **err)
{
    if (null_ok && (params == NULL || params->t == JV_NULL)) {
        *err = NULL;
        for (size_t i = 0; i < nf; i++)
            set_default(fields[i].type, &out[i]);
        return 0;
    }
    return params_struct(params, struct_name, fields, nf, out, err);
}

static bool has_default(ptype t)
{
    return t != PT_STRING && t != PT_U16 && t != PT_U32 && t != PT_ANY_REQ;
}

int params_struct(const jval *params, const char *struct_name, const pfield *fields, size_t nf,
                  pval *out, char **err)
{
    *err = NULL;
    for (size_t i = 0; i < nf; i++)
        set_default(fields[i].type, &out[i]);
    if (params && params->t == JV_ARRAY) {
        size_t n = params->v.arr.n;
        for (size_t i = 0; i < nf; i++) {
            if (i >= n) {
                /* serde derive's visit_seq: only #[serde(default)] fields may
                 * be missing; Option without default is an error too. */
                ptype t = fields[i].type;
                if (t == PT_ANY || t == PT_STRVEC || t == PT_BOOL_TRUE || t == PT_BOOL_FALSE ||
                    t == PT_OPT_STRING_DEF)
                    continue;
                /* serde reports the index of the first missing field that has
                 * no default: ["o-1","E"] for APPLY_EVENT says "invalid
                 * length 3" (payload, index 2, defaults). */
                strbuf b;
                strbuf_init(&b, TESTD_TEXT_MAX);
                strbuf_printf(&b, "invalid length %zu, expected struct %s with %zu element%s", i,
                              struct_name, nf, nf == 1 ? "" : "s");
                *err = finish(&b);
                return -1;
            }
            if (decode_field(params->v.arr.items[i], fields[i].type, &out[i], err) != 0)
                return -1;
        }
        if (n > nf) {
            strbuf b;
            strbuf_init(&b, TESTD_TEXT_MAX);
            strbuf_printf(&b, "invalid length %zu, expected fewer elements in array", n);
            *err = finish(&b);
            return -1;
        }
        return 0;
    }
    if (!params || params->t != JV_OBJECT) {
        strbuf b;
        strbuf_init(&b, TESTD_TEXT_MAX);
        strbuf_puts(&b, "struct ");
        strbuf_puts(&b, struct_name);
        char *exp = finish(&b);
        if (!exp)
            return -1;
        *err = invalid_type(params, exp);
        free(exp);
        return -1;
    }
    /* serde visits the map in key order (BTreeMap), so the first bad field
     * in sorted order is the one reported; then missing fields in
     * declaration order. */
    bool seen[32] = {false};
    for (size_t m = 0; m < params->v.obj.n; m++) {
        const jmember *mem = &params->v.obj.m[m];
        for (size_t i = 0; i < nf && i < 32; i++) {
            if (strlen(fields[i].name) == mem->klen &&
                memcmp(fields[i].name, mem->key, mem->klen) == 0) {
                seen[i] = true;
                if (decode_field(mem->val, fields[i].type, &out[i], err) != 0)
                    return -1;
                break;
            }
        }
    }
    for (size_t i = 0; i < nf && i < 32; i++) {
        if (!seen[i] && !has_default(fields[i].type) == true) {
            strbuf b;
            strbuf_init(&b, TESTD_TEXT_MAX);
            strbuf_printf(&b, "missing field `%s`", fields[i].name);
            *err = finish(&b);
            return -1;
        }
    }
    return 0;
}

const char *params_str(const jval *params, const char *key, size_t *len)
{
    const jval *v = jval_get(params, key);
    if (!v || v->t != JV_STRING)
        return NULL;
    if (len)
        *len = v->v.str.len;
    return v->v.str.s;
}

bool params_u64(const jval *params, const char *key, uint64_t *out)
{
    const jval *v = jval_get(params, key);
    if (!v || v->t != JV_UINT)
        return false;
    *out = v->v.u;
    return true;
}

bool params_bool(const jval *params, const char *key, bool *out)
{
    const jval *v = jval_get(params, key);
    if (!v || v->t != JV_BOOL)
        return false;
    *out = v->v.b;
    return true;
}
