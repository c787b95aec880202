/* ratelimit.h: per-caller limits (REST-API.md, "Rate limits"): a token
 * bucket of `rps` requests per second with room for `burst`, and a cap on
 * the streams a caller holds open. Callers are auth.h's keys. Memory is
 * bounded: buckets live in an LRU of at most `max_callers` (the least
 * recently seen caller is forgotten, which only refills its bucket);
 * stream counts exist only while a caller has a stream open. No clock of
 * its own: the caller passes `now_ms` (monotonic). */
#ifndef PROXY_RATELIMIT_H
#define PROXY_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ratelimit ratelimit;

typedef struct ratelimit_config {
    unsigned rps;         /* 0 = no request limit */
    unsigned burst;       /* bucket size (0 = rps) */
    unsigned max_streams; /* per caller, 0 = no limit */
    size_t max_callers;   /* LRU cap of buckets */
} ratelimit_config;

int ratelimit_new(ratelimit **out, const ratelimit_config *c);
void ratelimit_free(ratelimit *rl);
bool ratelimit_enabled(const ratelimit *rl);

/* Take one request from `key`'s bucket: true, or false with the whole
 * seconds (rounded up, at least 1) until a request would be allowed. */
bool ratelimit_take(ratelimit *rl, const char *key, uint64_t now_ms, unsigned *retry_after_s);
/* Count one more open stream for `key`: true, or false at the cap. Every
 * true is paired with one ratelimit_stream_close. */
bool ratelimit_stream_open(ratelimit *rl, const char *key);
void ratelimit_stream_close(ratelimit *rl, const char *key);
size_t ratelimit_callers(const ratelimit *rl); /* buckets held (for tests) */

#endif
