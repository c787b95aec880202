/* sse.h: the HTTP side of Server-Sent Events streams.
 *
 * A stream turns one hub subscription into text/event-stream bytes kept in a
 * bounded per-stream buffer, drained by MHD's content reader. When the buffer
 * is empty the connection is suspended (no busy loop); new data or a
 * heartbeat resumes it. A reader that falls behind the buffer is cut off with
 * a final `event: error`.
 */
#ifndef PROXY_SSE_H
#define PROXY_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub.h"
#include "log.h"
#include "metrics.h"
#include "problem.h"
#include "route.h"

struct event_base;
struct MHD_Response;
typedef struct http_req http_req;

typedef struct sse_ctx sse_ctx;
typedef struct sse_stream sse_stream;

typedef struct sse_config {
    unsigned heartbeat_ms;
    unsigned retry_ms;
    size_t buffer_bytes; /* hard cap of one stream's buffer */
    size_t max_streams;
} sse_config;

int sse_ctx_new(sse_ctx **out, struct event_base *base, hub *h, pool *p, metrics *m,
                const plog *log, const sse_config *cfg);
/* All streams must have been detached (http_free does). */
void sse_ctx_free(sse_ctx *c);
size_t sse_count(const sse_ctx *c);
/* Shutdown: every stream gets a final `event: error` (code) and ends. */
void sse_close_all(sse_ctx *c, const char *code, const char *message);

/* Parse the stream's query/headers and subscribe. 0: subscribing (the caller
 * suspends the connection; sse resumes it when the hub answers). -1: *p set
 * (400 bad parameters, 503 too many streams or no upstream). */
int sse_stream_open(sse_ctx *c, http_req *req, const route_match *m, const cJSON *query,
                    const char *last_event_id, sse_stream **out, problem *p);

typedef enum sse_state {
    SSE_SUBSCRIBING, /* waiting for the hub's on_ready; connection suspended */
    SSE_FAILED,      /* on_ready said no: answer the problem, no stream */
    SSE_LIVE,        /* events flow into the buffer */
    SSE_CLOSING      /* final bytes in the buffer, then end of stream */
} sse_state;

sse_state sse_stream_state(const sse_stream *s);
/* For SSE_FAILED: move the problem out (caller owns it afterwards). */
void sse_stream_take_problem(sse_stream *s, problem *out);
/* For SSE_LIVE: the streaming response (MHD_SIZE_UNKNOWN, content reader);
 * the response shares ownership of the stream until MHD frees it. */
struct MHD_Response *sse_stream_response(sse_stream *s);
/* The request is over (completed, or failed before streaming): no more
 * resumes; the hub subscription is released. Frees the stream once the
 * response (if any) is gone too. */
void sse_stream_detach(sse_stream *s);

/* Formatting (pure; unit-tested). Each returns the bytes written to out, or
 * 0 when cap is too small. */
size_t sse_format_open(char *out, size_t cap, unsigned retry_ms);
size_t sse_format_event(char *out, size_t cap, uint64_t id, const char *data, size_t len);
size_t sse_format_error(char *out, size_t cap, const char *code, const char *message);
#define SSE_KEEPALIVE ": keepalive\n\n"

#endif
