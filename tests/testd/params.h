/* params.h: request params decoded the way serde derive decodes them from a
 * serde_json::Value, with serde's exact error texts ("invalid type: string
 * \"1\", expected u32", "missing field `machine`"). Nothing else: the ops
 * decide what the fields mean. */
#ifndef TESTD_PARAMS_H
#define TESTD_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jval.h"

typedef enum ptype {
    PT_STRING,         /* String (required) */
    PT_OPT_STRING,     /* Option<String>: absent or null -> not present */
    PT_OPT_STRING_DEF, /* #[serde(default)] Option<String>: may also be missing from an array */
    PT_U16,            /* u16 (required) */
    PT_U32,            /* u32 (required) */
    PT_OPT_U32,        /* Option<u32> */
    PT_OPT_U64,        /* Option<u64> */
    PT_BOOL_TRUE,      /* #[serde(default = "default_true")] bool */
    PT_BOOL_FALSE,     /* #[serde(default)] bool */
    PT_STRVEC,         /* #[serde(default)] Vec<String> */
    PT_ANY,            /* #[serde(default)] Value (absent -> null) */
    PT_ANY_REQ         /* Value (required) */
} ptype;

typedef struct pfield {
    const char *name;
    ptype type;
} pfield;

typedef struct pval {
    bool present;  /* the key was given with a non-null value (options) */
    const char *s; /* strings */
    size_t slen;
    uint64_t u;    /* integers */
    bool b;        /* bools */
    const jval *v; /* PT_ANY/PT_ANY_REQ value (NULL = null), PT_STRVEC array */
} pval;

/* Decode `params` (NULL means JSON null) into out[nf]. On failure returns -1
 * and sets *err to a malloc'd serde message without the "invalid request: "
 * prefix (NULL on OOM). `out` points into `params`. */
int params_struct(const jval *params, const char *struct_name, const pfield *fields, size_t nf,
                  pval *out, char **err);
/* params_struct, except that null (or absent) params give every field its
 * default when `null_ok`: 0.3's LIST_INSTANCES and WATCH_ALL check
 * params.is_null() before decoding. */
int params_struct_nullable(const jval *params, bool null_ok, const char *struct_name,
                           const pfield *fields, size_t nf, pval *out, char **err);

/* serde's rendering of an unexpected value: "null", "boolean `true`",
 * "integer `5`", "floating point `1.5`", "string \"x\"", "sequence", "map". */
void params_unexpected(strbuf *b, const jval *v);

/* params["key"].as_str() / .as_u64() / .as_bool() of serde_json::Value. */
const char *params_str(const jval *params, const char *key, size_t *len);
bool params_u64(const jval *params, const char *key, uint64_t *out);
bool params_bool(const jval *params, const char *key, bool *out);

#endif
