/* jscan.h: the validating JSON scanner that builds no tree (internal,
 * shared by librstmdb, the daemon and rstmdb-testd).
 *
 * It checks that bytes are one strict RFC 8259 document that serde_json (the
 * server) also takes: valid UTF-8, paired surrogates, numbers within an
 * f64's range, nesting capped. It returns the byte spans of an object's
 * top-level members, so the client routes a response by "type"/"id" and
 * hands "result" on as the exact bytes the server sent, and the daemon finds
 * a body's keys, without parsing anything into cJSON.
 */
#ifndef RSTMDB_JSCAN_H
#define RSTMDB_JSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Default nesting cap: deeper documents are rejected (a stack-free scanner
 * could go deeper, but cJSON, parsed lazily on the same bytes, recurses). */
#define JSCAN_MAX_DEPTH 512
/* For text that will be sent to the server inside an envelope: serde_json's
 * recursion limit is 128, and the envelope and /v1/rpc add levels. */
#define JSCAN_SERDE_DEPTH 100

typedef enum jscan_type {
    JSCAN_NULL = 0,
    JSCAN_FALSE,
    JSCAN_TRUE,
    JSCAN_NUMBER,
    JSCAN_STRING,
    JSCAN_ARRAY,
    JSCAN_OBJECT
} jscan_type;

/* One top-level member. Offsets are into the scanned text. The key span is
 * the bytes between the quotes with escapes NOT decoded; the value span is
 * the whole value (quotes included for a string). */
typedef struct jscan_member {
    size_t key_off, key_len;
    size_t val_off, val_len;
    jscan_type type;
} jscan_member;

/* Validate `s[0..len)` as one JSON value (surrounding whitespace allowed).
 * Sets *type and the value's span. Returns 0, or -1 when it is not valid JSON
 * or is nested deeper than max_depth (0 = JSCAN_MAX_DEPTH). */
int jscan_value(const char *s, size_t len, unsigned max_depth, jscan_type *type, size_t *off,
                size_t *vlen);

/* The same, saying why (static text: "invalid UTF-8", "nested too deeply",
 * "trailing data after the JSON value", ...) when it fails. */
int jscan_validate(const char *s, size_t len, unsigned max_depth, jscan_type *type,
                   const char **why);

/* Validate `s[0..len)` as one JSON object and record its top-level members,
 * in document order, into m[0..max). *count gets the total number of members
 * (it may exceed max: then only the first max are recorded). Returns 0, or -1
 * when the text is not valid JSON or not an object. */
int jscan_object(const char *s, size_t len, unsigned max_depth, jscan_member *m, size_t max,
                 size_t *count);

/* The same, saying why it failed ("not an object" when the text does not
 * start with '{'; otherwise as jscan_validate). */
int jscan_object_why(const char *s, size_t len, unsigned max_depth, jscan_member *m, size_t max,
                     size_t *count, const char **why);

/* The first top-level member of the object `s[0..len)` whose raw key equals
 * `key`, without recording the others: 0 and *out set, or -1 (absent, or
 * not an object). It scans only up to that member, so it is meant for text
 * validated before. */
int jscan_get(const char *s, size_t len, const char *key, jscan_member *out);

/* The first member whose raw key equals `key` (no escape decoding: keys the
 * server writes are plain ASCII), or NULL. */
const jscan_member *jscan_find(const char *s, const jscan_member *m, size_t n, const char *key);

/* True when the raw string value span (with quotes) equals `lit` exactly. */
bool jscan_string_is(const char *s, const jscan_member *m, const char *lit);

/* Decode a string value span (with quotes, already validated) into a new
 * NUL-terminated malloc'd buffer. Returns 0 or -1 (OOM, or an embedded NUL
 * which a C string cannot carry). */
int jscan_string_dup(const char *s, size_t len, char **out, size_t *out_len);

/* Parse an unsigned integer literal span ("123", no sign, fraction or
 * exponent) that fits u64. Returns 0 or -1. */
int jscan_u64(const char *s, size_t len, uint64_t *out);

#endif
