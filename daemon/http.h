/* http.h: the proxy's HTTP front: libmicrohttpd daemons driven by the
 * daemon's single libevent loop (no MHD threads), requests suspended while
 * the upstream answers and resumed from the pool's reply callback.
 */
#ifndef PROXY_HTTP_H
#define PROXY_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "config.h"
#include "cors.h"
#include "hub.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "sse.h"

struct event_base;

typedef struct http http;
typedef struct http_req http_req;

typedef struct http_deps {
    struct event_base *base;
    const proxy_config *cfg; /* borrowed; must outlive http */
    const plog *log;
    metrics *m;
    pool *upstream;
    hub *hub; /* for /metrics */
    sse_ctx *sse;
    const char *openapi; /* the OpenAPI document served at /v1/openapi.json */
    size_t openapi_len;
    ratelimit *rl; /* per-caller request limits (may be NULL) */
} http_deps;

/* Start MHD on pre-bound listening sockets (tcp_fd and/or unix_fd; -1 = none).
 * Takes ownership of `a` and `c` (may be NULL = open, no CORS). */
int http_new(http **out, const http_deps *deps, int tcp_fd, int unix_fd, auth *a, cors *c);
/* Resumes every suspended connection, cancels upstream calls, stops MHD. */
void http_free(http *h);

/* SIGHUP: swap credentials and CORS origins (ownership taken; old ones
 * freed). Requests and streams already admitted keep what they were given. */
void http_reload(http *h, auth *a, cors *c);

/* SIGTERM: stop accepting and call `idle(arg)` (from the event loop, once)
 * when no request is in flight. SSE streams are sse.c's (sse_drain). */
void http_drain(http *h, void (*idle)(void *arg), void *arg);
size_t http_inflight(const http *h);

#endif
