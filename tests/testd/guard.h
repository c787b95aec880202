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

/* Recursion bounds. The real server has none and its whole process dies of
 * a stack overflow (measured: 3,000 nested parentheses, 20,000 '!' or a
 * 100,000-term '&&' chain abort it; 2,000 / 5,000 / 10,000 work). Beyond
 * these bounds testd drops the connection as for a parser panic instead of
 * crashing, and parse, evaluation and free recurse at most this deep. */
#define GUARD_MAX_NEST  4096  /* nested '(' plus '!' */
#define GUARD_MAX_NODES 20000 /* nodes in one expression (bounds the tree depth) */
#define GUARD_ENOMEM    (-1)

/* Parse `len` bytes of UTF-8. On GUARD_EPARSE *reason is malloc'd (the text
 * after "invalid guard expression: "). */
int guard_parse(const char *text, size_t len, guard **out, char **reason);
void guard_free(guard *g);
/* Evaluate against ctx (the pre-merge instance context). */
bool guard_eval(const guard *g, const jval *ctx);

#endif
