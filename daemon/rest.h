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

typedef struct rest_input {
    const route_match *m;
    const cJSON *query; /* from route_query (may be NULL) */
    const char *body;   /* may be NULL */
    size_t body_len;
    const char *idempotency_key; /* Idempotency-Key header or NULL */
    const char *if_match;        /* If-Match header or NULL */
    bool allow_flush_all;
} rest_input;

typedef struct rest_call {
    char op[64];
    char *params; /* malloc'd JSON object text */
    size_t params_len;
    bool resend_safe;  /* may be re-sent on another upstream connection */
    bool if_match;     /* expected_wal_offset came from If-Match (CONFLICT -> 412) */
    bool raw_envelope; /* /v1/rpc: answer the whole response document */
} rest_call;

/* 0 and *out filled (free with rest_call_deinit), or -1 and *p set (400/403). */
int rest_build_call(const rest_input *in, rest_call *out, problem *p);
void rest_call_deinit(rest_call *c);

typedef struct rest_answer {
    int status;          /* 200 or 201 */
    char location[1200]; /* "" = none */
    char etag[40];       /* "" = none; with quotes */
} rest_answer;

/* Decide status and headers from the raw `result` text of a successful reply. */
void rest_answer_for(const route_match *m, const char *result, size_t len, rest_answer *a);

/* Find a top-level member of a JSON object text and give the span of its raw
 * value. The text must be valid JSON (checked before). 0 or -1 (absent). */
int rest_json_member(const char *json, size_t len, const char *key, size_t *vstart, size_t *vlen);

/* Percent-encode a path segment (unreserved characters stay). Returns the
 * length written or -1 when it does not fit. */
long rest_pct_encode(const char *in, char *out, size_t cap);

#endif
