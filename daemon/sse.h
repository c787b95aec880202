/* sse.h: Server-Sent Events streams, served on sockets of their own.
 *
 * The HTTP side (http.c) lets libmicrohttpd parse an SSE request, validates
 * it with sse_stream_open, then takes the socket away from libmicrohttpd and
 * hands it to sse_stream_attach. From there the stream is this module's: it
 * answers (200 with the stream's head, or a problem+json when the
 * subscription fails before any event), writes events, heartbeats and the
 * final `event: error`, and closes the socket. Idle streams cost libmicrohttpd
 * nothing, so REST requests do not slow down with the number of streams.
 *
 * Per stream: a small struct, one socket, and a bounded queue of references
 * to shared, reference-counted event bytes: an event is formatted once per
 * delivery (hub_event.seq) whatever the number of streams, and an idle
 * stream whose socket takes the bytes at once queues nothing. A reader that
 * falls more than sse_buffer_bytes behind is cut off with a final
 * `event: error` (SLOW_READER). Heartbeats come from one timer wheel, at
 * most heartbeat_ms after the stream's last bytes, spread over the last
 * quarter of that interval.
 */
#ifndef PROXY_SSE_H
#define PROXY_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "hub.h"
#include "jwt.h"
#include "log.h"
#include "metrics.h"
#include "problem.h"
#include "route.h"
#include "sse_format.h"

struct event_base;

typedef struct sse_ctx sse_ctx;
typedef struct sse_stream sse_stream;

typedef struct sse_config {
    unsigned heartbeat_ms;
    unsigned retry_ms;
    size_t buffer_bytes; /* hard cap of one stream's queued bytes */
    size_t max_streams;
} sse_config;

typedef struct ratelimit ratelimit;

/* `rl` (may be NULL) caps the streams per caller. */
int sse_ctx_new(sse_ctx **out, struct event_base *base, hub *h, pool *p, metrics *m,
                const plog *log, ratelimit *rl, const sse_config *cfg);
/* Closes whatever streams are left, at once. */
void sse_ctx_free(sse_ctx *c);
size_t sse_count(const sse_ctx *c);
/* Shutdown: every stream gets its final bytes (`event: error` SHUTDOWN, or
 * a 503 problem when it was not answered yet); `done` runs once every
 * stream has been flushed and closed (or at once when there are none). A
 * reader that does not take its final bytes within heartbeat_ms is closed
 * anyway. */
void sse_drain(sse_ctx *c, void (*done)(void *arg), void *arg);

/* Validate an SSE request and subscribe. 0: *out is a stream waiting for
 * its socket (sse_stream_attach, or sse_stream_abort when the socket cannot
 * be taken). -1: *p set (400 bad parameters, 503 too many streams, 502 the
 * upstream refuses the proxy, 429 sse_max_streams_per_caller). A stream
 * opened while no upstream is ready
 * is answered 200 at once and subscribed when one is. */
/* What the caller's credential means for a stream (NULL = nothing). */
typedef struct sse_auth {
    int64_t expires_at;        /* a JWT's exp (Unix seconds): TOKEN_EXPIRED then; 0 = never */
    const jwt_list *instances; /* WATCH_ALL under an instances limit (copied); NULL = none */
    const char *caller_key;    /* counted against sse_max_streams_per_caller; NULL = not */
} sse_auth;

int sse_stream_open(sse_ctx *c, const route_match *m, const cJSON *query, const char *last_event_id,
                    const sse_auth *auth, sse_stream **out, problem *p);

/* What the HTTP side knows of the connection and the request. */
typedef struct sse_conn {
    int fd;              /* taken from libmicrohttpd: now the stream's */
    bool chunked;        /* HTTP/1.1: chunked transfer coding; 1.0: until close */
    uint64_t request_id; /* X-Request-Id and the access log */
    const char *headers; /* extra response header lines, each ending CRLF (copied) */
    uint64_t t0_us;      /* clock_mono_us() at the request's start */
    const char *method, *path;
} sse_conn;

void sse_stream_attach(sse_stream *s, const sse_conn *conn);
void sse_stream_abort(sse_stream *s);

#endif
