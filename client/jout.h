/* jout.h: a small JSON text writer for request params (private).
 *
 * Typed operations build their params as text so that u64 values (WAL
 * offsets above 2^53) go out exactly, which a cJSON number (a double)
 * cannot promise. Errors are sticky: check once at the end.
 */
#ifndef RSTMDB_JOUT_H
#define RSTMDB_JOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "strbuf.h"

typedef struct jout {
    strbuf b; /* the text, capped at max */
    bool need_comma;
} jout;

/* 0 or the rstmdb_status of the first failure (NOMEM, FRAME_TOO_LARGE). */
int jout_status(const jout *j);
/* Hand the text over (malloc'd), or the status of the failure. */
int jout_take(jout *j, char **out, size_t *len);

void jout_init(jout *j, size_t max);
void jout_deinit(jout *j);
void jout_begin(jout *j);                               /* "{" (after a comma inside an array) */
void jout_end(jout *j);                                 /* "}" */
void jout_arr_begin(jout *j, const char *key);          /* "key":[ */
void jout_arr_end(jout *j);                             /* "]" */
void jout_key(jout *j, const char *key);                /* "key": (with a comma when needed) */
void jout_str(jout *j, const char *key, const char *v); /* skipped when v is NULL */
void jout_u64(jout *j, const char *key, uint64_t v);
void jout_bool(jout *j, const char *key, bool v);
/* A cJSON value printed compactly; skipped when v is NULL. */
void jout_json(jout *j, const char *key, const cJSON *v);
/* Raw JSON text already validated by the caller. */
void jout_raw(jout *j, const char *key, const char *text, size_t len);
/* An array of strings (n may be 0: "[]"). */
void jout_strs(jout *j, const char *key, const char *const *v, size_t n);

#endif
