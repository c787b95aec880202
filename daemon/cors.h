/* cors.h: Cross-Origin Resource Sharing for browsers (EventSource, fetch).
 * Decides whether an Origin is allowed and which headers answer it. */
#ifndef PROXY_CORS_H
#define PROXY_CORS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct cors cors;

/* Origins exactly as the browser sends them ("https://app.example"); "*" = any. */
int cors_new(cors **out, const char *const *origins, size_t n);
void cors_free(cors *c);
/* At least one origin configured (then answers vary by Origin). */
bool cors_enabled(const cors *c);
/* The value for Access-Control-Allow-Origin (the origin itself), or NULL when
 * the origin is absent or not allowed. */
const char *cors_allow(const cors *c, const char *origin);
/* Send Access-Control-Allow-Credentials: true (cookies, EventSource
 * withCredentials): only for an origin configured by name, never through "*". */
bool cors_credentials(const cors *c, const char *origin);

#define CORS_ALLOW_HEADERS \
    "Authorization, Content-Type, Idempotency-Key, If-Match, Last-Event-ID, Cache-Control"
#define CORS_EXPOSE_HEADERS "ETag, Location, RSTMDB-WAL-Offset, Retry-After, WWW-Authenticate"
#define CORS_MAX_AGE        "600"

#endif
