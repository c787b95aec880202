/* problem.h: errors as application/problem+json (RFC 9457).
 *
 * Maps rstmdb error codes (upstream) and the proxy's own codes to HTTP
 * statuses per REST-API.md, and renders the body
 * {"type","title","status","detail","code","retryable","details"}.
 */
#ifndef PROXY_PROBLEM_H
#define PROXY_PROBLEM_H

#include <stdbool.h>
#include <stddef.h>

#include "rstmdb/error.h"

typedef struct problem {
    int status;
    char code[64];
    char detail[512];
    bool retryable;
    cJSON *details;               /* owned; NULL = {} */
    unsigned retry_after_s;       /* > 0: send Retry-After */
    const char *www_authenticate; /* static; NULL = none (401s get "Bearer") */
} problem;

/* HTTP status for an rstmdb/proxy error code. `if_match`: the request carried
 * If-Match and `message` is the upstream message (a WAL offset CONFLICT then
 * becomes 412). Unknown codes give 502. */
int problem_status_for_code(const char *code, bool if_match, const char *message);

/* A proxy-made problem. `detail` may be NULL (then the title). */
void problem_local(problem *p, int status, const char *code, const char *detail);
/* From an upstream error code (the fields the server sent). `details` is
 * copied (may be NULL). */
void problem_from_code(problem *p, const char *code, const char *message, bool retryable,
                       const cJSON *details, bool if_match, unsigned retry_after_s);
/* From a librstmdb error: RSTMDB_ERR_SERVER uses the server's code; TIMEOUT is
 * 504 UPSTREAM_TIMEOUT; connection failures are 503 UPSTREAM_UNAVAILABLE with
 * Retry-After `retry_after_s`. */
void problem_from_error(problem *p, const rstmdb_error *e, bool if_match, unsigned retry_after_s);
/* No upstream connection is READY (pool_call_json/hub_subscribe said
 * RSTMDB_ERR_CLOSED); `last` is pool_last_failure() (may be NULL). When the
 * upstream refused the proxy (AUTH_FAILED, UNAUTHORIZED, UNSUPPORTED_PROTOCOL:
 * the server's code) or TLS failed (UPSTREAM_TLS): 502, not retryable, since
 * only a configuration change helps. Otherwise 503 UPSTREAM_UNAVAILABLE,
 * retryable, Retry-After `retry_after_s`, the last failure in the detail. */
void problem_upstream_down(problem *p, const rstmdb_error *last, unsigned retry_after_s);
void problem_deinit(problem *p);

/* WWW-Authenticate values (RFC 6750 §3). */
#define PROBLEM_BEARER               "Bearer"
#define PROBLEM_BEARER_INVALID_TOKEN "Bearer error=\"invalid_token\""
#define PROBLEM_BEARER_SCOPE         "Bearer error=\"insufficient_scope\""

/* The body; malloc'd NUL-terminated JSON, NULL on OOM. */
char *problem_render(const problem *p);
const char *problem_title(int status);

#endif
