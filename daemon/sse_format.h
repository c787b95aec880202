/* sse_format.h: the text/event-stream wire format. Each function returns
 * the bytes written to out, or 0 when cap is too small. */
#ifndef PROXY_SSE_FORMAT_H
#define PROXY_SSE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

/* "retry: <ms>" and an opening comment: a client sees the stream is live. */
size_t sse_format_open(char *out, size_t cap, unsigned retry_ms);
/* One event: "id: <id>", one "data: " line per line of data (CR, LF and
 * CRLF all end a line: data can never end the event early or add a field). */
size_t sse_format_event(char *out, size_t cap, uint64_t id, const char *data, size_t len);
/* The final "event: error" with {"code","message"} (message cut to fit). */
size_t sse_format_error(char *out, size_t cap, const char *code, const char *message);
#define SSE_KEEPALIVE ": keepalive\n\n"

#endif
