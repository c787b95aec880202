/* rest.h: from an HTTP request to an operation's params, and from the
 * operation's result to the HTTP answer (status, Location, ETag).
 *
 * The params text is spliced, not re-serialised: the body's own bytes go
 * upstream, with the fields taken from the path, the query and the headers
 * put in front, so numbers such as 1.0 or 2^63 reach the server as written.
 * MHD-free and socket-free so that it is unit-tested on strings.
 */
#ifndef PROXY_REST_H
#define PROXY_REST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "problem.h"
#include "route.h"
#include "rstmdb/client.h"

typedef struct rest_input {
    const cJSON *query; /* from route_query (may be NULL) */
    const char *body;   /* may be NULL */
    size_t body_len;
    const char *idempotency_key; /* Idempotency-Key header or NULL */
    const char *if_match;        /* If-Match header or NULL */
    bool allow_flush_all;
} rest_input;

/* The REST side of one request, kept for its whole life: the route and its
 * captures (the Location of a 201 is made from them), the params sent, and
 * what the answer depends on (If-Match, /v1/rpc's raw envelope). */
typedef struct rest_call {
    route_status rs;
    char op[64];
    char *params; /* malloc'd JSON object text, until taken */
    size_t params_len;
    bool resend_safe;  /* may be re-sent on another upstream connection */
    bool if_match;     /* expected_wal_offset came from If-Match (CONFLICT -> 412) */
    bool raw_envelope; /* /v1/rpc: answer the whole response document */
    route_match m;     /* last: its capture buffer is large and never zeroed */
} rest_call;

/* Start a request: match method + raw path (see route_match_path). The
 * call needs no deinit until rest_call_build has run. */
route_status rest_call_match(rest_call *c, const char *method, const char *path);
/* For a matched ROUTE_OP / ROUTE_RPC route: validate the body once (a JSON
 * object that the server's serde_json takes), and build op + params. 0, or
 * -1 and *p set (400/403/500). */
int rest_call_build(rest_call *c, const rest_input *in, problem *p);
/* Hand the params over (the pool owns them from here). */
char *rest_call_take_params(rest_call *c, size_t *len);
void rest_call_deinit(rest_call *c);

typedef struct rest_answer {
    int status;       /* 200, 201, or the problem's */
    const char *body; /* borrowed from the reply (NULL for a problem) */
    size_t body_len;  /* application/json */
    bool has_wal_offset;
    uint64_t wal_offset; /* RSTMDB-WAL-Offset */
    bool is_problem;
    problem problem;     /* when is_problem: render it (application/problem+json) */
    char location[1200]; /* "" = none */
    char etag[40];       /* "" = none; with quotes */
} rest_answer;

/* Decide the whole answer to an upstream reply (borrowed: the answer's body
 * points into it). rest_answer_deinit after. */
void rest_call_answer(const rest_call *c, const rstmdb_reply *reply, unsigned retry_after_s,
                      rest_answer *a);
void rest_answer_deinit(rest_answer *a);

/* The status and headers of a successful reply's raw `result` text. */
void rest_answer_for(const route_match *m, const char *result, size_t len, rest_answer *a);

/* Percent-encode a path segment (unreserved characters stay). Returns the
 * length written or -1 when it does not fit. */
long rest_pct_encode(const char *in, char *out, size_t cap);

#endif
