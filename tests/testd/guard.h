/* guard.h: the rstmdb guard expression language, parsed and evaluated with
 * every quirk of the real recursive-descent parser (PROTOCOL.md §7):
 * trailing input ignored, keywords matched by prefix, strings kept with
 * their backslashes, and the byte-index panics on non-ASCII text. */
#ifndef TESTD_GUARD_H
#define TESTD_GUARD_H

#include <stdbool.h>
#include <stddef.h>

#include "jval.h"

typedef struct guard guard;

#define GUARD_OK     0
#define GUARD_EPARSE 1 /* *reason set: "empty guard expression", "expected ')'", ... */
#define GUARD_EPANIC 2 /* the real parser panics here: drop the connection */
#define GUARD_ENOMEM (-1)

/* Parse `len` bytes of UTF-8. On GUARD_EPARSE *reason is malloc'd (the text
 * after "invalid guard expression: "). */
int guard_parse(const char *text, size_t len, guard **out, char **reason);
void guard_free(guard *g);
/* Evaluate against ctx (the pre-merge instance context). */
bool guard_eval(const guard *g, const jval *ctx);

#endif
