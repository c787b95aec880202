/* jval.h: the JSON value model of rstmdb-testd, faithful to serde_json::Value.
 *
 * Integers stay exact (u64 for non-negative, i64 for negative; "-0" becomes
 * the double -0.0 as in serde_json), everything else is a double printed the
 * way Rust prints f64 (shortest round trip, "1.0", "1e300"). Objects keep
 * duplicates and input order after parsing; jval_normalize() sorts them by
 * key bytes and keeps the last duplicate, which is what serde_json's
 * BTreeMap-backed Value does. Strings carry a length (may hold NUL). */
#ifndef TESTD_JVAL_H
#define TESTD_JVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

/* The cap on any text rstmdb-testd builds: the real server closes the
 * connection rather than send a frame over 16 MiB, so nothing needs more
 * (a WAL_READ of everything is the usual case that hits it). */
#define TESTD_TEXT_MAX ((size_t)64 * 1024 * 1024)

/* serde_json's recursion limit: 128 levels (the 128th nested level fails). */
#define JVAL_MAX_DEPTH 127

typedef enum jtype {
    JV_NULL = 0,
    JV_BOOL,
    JV_INT,    /* negative integer that fits i64 */
    JV_UINT,   /* non-negative integer that fits u64 */
    JV_DOUBLE, /* anything else numeric */
    JV_STRING,
    JV_ARRAY,
    JV_OBJECT
} jtype;

typedef struct jval jval;

typedef struct jmember {
    char *key;
    size_t klen;
    jval *val;
} jmember;

struct jval {
    jtype t;
    bool sorted; /* objects: members sorted by key, no duplicates */
    union {
        bool b;
        int64_t i;
        uint64_t u;
        double d;
        struct {
            char *s;
            size_t len;
        } str;
        struct {
            jval **items;
            size_t n, cap;
        } arr;
        struct {
            jmember *m;
            size_t n, cap;
        } obj;
    } v;
};

jval *jval_null(void);
jval *jval_bool(bool b);
jval *jval_uint(uint64_t u);
jval *jval_int(int64_t i); /* stored as JV_UINT when i >= 0 */
jval *jval_double(double d);
jval *jval_str(const char *s, size_t len);
jval *jval_cstr(const char *s);
jval *jval_array(void);
jval *jval_object(void); /* empty, sorted */
void jval_free(jval *v);
jval *jval_copy(const jval *v);

/* Append to an array; takes ownership of `item` (freed on failure). 0 / -1. */
int jval_push(jval *arr, jval *item);
/* Set a key in a sorted object (replace or insert in order); takes ownership
 * of `val` (freed on failure). 0 / -1. */
int jval_set(jval *obj, const char *key, size_t klen, jval *val);
int jval_setc(jval *obj, const char *key, jval *val);
/* Lookup; for unsorted objects the last duplicate wins. NULL if absent or
 * `obj` is not an object. */
const jval *jval_get(const jval *obj, const char *key);
/* Sort every object at every depth and drop earlier duplicates. 0 / -1. */
int jval_normalize(jval *v);

/* Parse exactly one JSON document (surrounding whitespace allowed). The text
 * must already be valid UTF-8. Returns 0, JVAL_ESYNTAX (bad JSON, trailing
 * bytes, depth over JVAL_MAX_DEPTH, number out of f64 range, lone
 * surrogate), or JVAL_ENOMEM. */
#define JVAL_ESYNTAX (-1)
#define JVAL_ENOMEM  (-2)
int jval_parse(const char *text, size_t len, jval **out);

/* True if the bytes are valid UTF-8 (no surrogates, no overlongs). */
bool jval_utf8_valid(const char *s, size_t len);

/* Compact JSON in stored member order. */
void jval_print(strbuf *b, const jval *v);
/* Rust/ryu formatting of an f64: "1.0", "0.5", "1e300", "1.8446744073709552e19". */
void jval_print_double(strbuf *b, double d);
/* Rust's Display ("{}") of an f64, as serde's Unexpected::Float prints it in
 * the real server's serde: no exponent, no ".0" ("1", "0.0000001", "1" and
 * 300 zeros for 1e300). */
void jval_print_double_display(strbuf *b, double d);
/* Malloc'd compact text of v (NUL-terminated); NULL on OOM. */
char *jval_to_string(const jval *v, size_t *len);

bool jval_is_number(const jval *v);
double jval_as_double(const jval *v);
size_t jval_len(const jval *v); /* array items / object members / string bytes */

#endif
