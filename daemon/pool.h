/* pool.h: the proxy's upstream pool.
 *
 * N authenticated, multiplexed librstmdb connections to one rstmdb server,
 * each reconnecting on its own with exponential backoff, jitter and a cap.
 * Requests go to the least-loaded READY connection. When none is READY a call
 * fails at once (the HTTP side answers 503 + Retry-After) instead of waiting.
 * Runs on the daemon's single event_base; never blocks.
 */
#ifndef PROXY_POOL_H
#define PROXY_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rstmdb/client.h"

struct event_base;
struct plog;

typedef struct pool pool;
typedef struct pool_call pool_call;

typedef struct pool_config {
    const char *address;         /* "host:port" of the rstmdb server */
    const char *token;           /* bearer token for AUTH, NULL = none */
    rstmdb_tls *tls;             /* NULL = plain TCP; borrowed, must outlive the pool */
    unsigned size;               /* connections, default 2 (at most 64) */
    unsigned connect_timeout_ms; /* per attempt */
    unsigned request_timeout_ms; /* per request; expiry = RSTMDB_ERR_TIMEOUT */
    unsigned backoff_initial_ms; /* first retry delay, default 100 */
    unsigned backoff_max_ms;     /* cap, default 5000 */
    /* Added by the pool (all optional, 0/NULL = default): */
    const struct plog *log; /* log.h sink; NULL = info level on stderr */
    unsigned keepalive_ms;  /* PING a connection idle this long, default 60000
                             * (the server drops connections idle for 300 s) */
    uint64_t jitter_seed;   /* backoff jitter seed; 0 = from the clock and pid */
    /* "IP[:PORT]" to resolve the address's name with, instead of
     * /etc/resolv.conf's servers (/etc/hosts still applies); NULL = those. */
    const char *dns_server;
} pool_config;

typedef struct pool_stats {
    unsigned connections;      /* configured */
    unsigned ready;            /* READY now */
    uint64_t reconnects;       /* successful re-handshakes after a loss, since start */
    uint64_t connect_failures; /* failed attempts, since start */
    size_t inflight;           /* requests sent or queued, not yet answered */
    /* Added by the pool: */
    uint64_t resent;      /* calls re-sent after their connection died */
    uint64_t conn_losses; /* READY connections that went down */
    size_t watches;       /* upstream subscriptions held (pool_watch) */
} pool_stats;

/* Called exactly once per call unless cancelled. `reply` is borrowed. Its
 * status is RSTMDB_OK, RSTMDB_ERR_SERVER (upstream error answer),
 * RSTMDB_ERR_TIMEOUT, or RSTMDB_ERR_CLOSED / RSTMDB_ERR_IO (connection lost
 * with the request in flight: retryable). A connection killed by a bad frame
 * or TLS failure gives that status instead (PROTOCOL, FRAME_CRC, TLS...):
 * pool_status_is_conn_loss() tells all of these apart. */
typedef void (*pool_reply_cb)(const rstmdb_reply *reply, void *arg);
/* Added by the pool: true for the statuses meaning "the connection died
 * with the call in flight" (answer 503 retryable), false for OK, SERVER,
 * TIMEOUT and local argument errors. */
bool pool_status_is_conn_loss(int status);

int pool_new(pool **out, struct event_base *base, const pool_config *cfg, rstmdb_error **err);
/* Closes every connection at once; pending callbacks are not called after
 * this. pool_shutdown first for a goodbye. A name lookup it cuts short
 * still refers to the resolver: do not run the loop after this. */
void pool_free(pool *p);

/* Say goodbye before stopping: no more connects or calls; BYE on every
 * READY connection, and the others closed. `done(arg)` runs from the loop
 * once every BYE is answered or its connection ended. The caller bounds
 * the wait (the shutdown grace) and frees the pool after. */
void pool_shutdown(pool *p, void (*done)(void *arg), void *arg);

bool pool_ready(const pool *p);
/* Added: why nothing is READY, for the HTTP side's answer. Each connection
 * keeps the error of its latest failed attempt (cleared when it becomes
 * READY); a refusal by the upstream or TLS (pool_failure_is_definitive)
 * outranks a transport failure, then the most recent wins. NULL when no
 * failure is recorded. Borrowed: valid until the loop runs again. */
const rstmdb_error *pool_last_failure(const pool *p);
/* Added: true for failures that retrying cannot cure without a
 * configuration change: the server refused the proxy's credentials
 * (AUTH_FAILED, UNAUTHORIZED), its protocol (UNSUPPORTED_PROTOCOL), or TLS
 * failed (RSTMDB_ERR_TLS: certificate verification, or TLS to a plain
 * server). NULL-safe. */
bool pool_failure_is_definitive(const rstmdb_error *e);
void pool_get_stats(const pool *p, pool_stats *out);
/* Seconds a client should wait before retrying while nothing is READY (>= 1). */
unsigned pool_retry_after_s(const pool *p);

/* Forward one op with params as JSON object text (passed through untouched).
 * `resend_safe`: the call may be re-sent on another connection if its
 * connection dies after the request was written (true for reads and for
 * writes that carry an idempotency key). A call never written is always
 * re-sent if another connection is READY.
 * Returns RSTMDB_OK (cb will run later), or RSTMDB_ERR_CLOSED when no
 * connection is READY (cb will not run: answer 503 now). Also (added):
 * RSTMDB_ERR_JSON when params is not one JSON object, RSTMDB_ERR_INVALID,
 * RSTMDB_ERR_NOMEM; cb does not run then either. The request timeout spans
 * re-sends: a call re-sent after a loss keeps its original deadline. */
int pool_call_json(pool *p, const char *op, const char *params, size_t params_len, bool resend_safe,
                   pool_reply_cb cb, void *arg, pool_call **out);
/* The same for params the caller built and validated as one JSON object
 * the server takes (rest.c does): the pool takes ownership of `params`
 * (malloc'd), whatever the result, and neither copies nor scans it again.
 * Bytes that are not such an object would make the server close the
 * connection, failing every call multiplexed on it. */
int pool_call_take(pool *p, const char *op, char *params, size_t params_len, bool resend_safe,
                   pool_reply_cb cb, void *arg, pool_call **out);
/* The HTTP client went away: forget the call; cb will not run. Valid in any
 * state until cb has started (a cancel from inside cb is a no-op). */
void pool_call_cancel(pool_call *c);

/* ---- Added by the pool: connection changes and subscriptions (for the hub) ---- */

/* Told when connection `conn` (0..size-1) becomes READY (ready true) or stops
 * being READY (false). Runs from the event loop inside the client's callback:
 * do not free the pool from it. One listener (the hub); NULL removes it. */
typedef void (*pool_state_cb)(void *arg, unsigned conn, bool ready);
void pool_set_state_cb(pool *p, pool_state_cb cb, void *arg);

typedef struct pool_watch pool_watch;
typedef struct pool_watch_ops {
    /* The WATCH response. RSTMDB_OK: subscribed, events follow. Any other
     * status: the watch is over (no on_end) and the handle is invalid after
     * this returns. */
    void (*on_reply)(void *arg, const rstmdb_reply *reply);
    /* Each event pushed for this subscription, in arrival order (borrowed). */
    void (*on_event)(void *arg, const rstmdb_event *ev);
    /* Once, after a successful on_reply: the subscription died with its
     * connection (why set). The handle is invalid after this returns. */
    void (*on_end)(void *arg, const rstmdb_error *why);
} pool_watch_ops;

/* Subscribe ("WATCH_INSTANCE"/"WATCH_ALL", params as JSON object text) on the
 * least-loaded READY connection. Returns RSTMDB_OK (on_reply follows, never
 * from inside this call), RSTMDB_ERR_CLOSED when nothing is READY, or the
 * library's error (e.g. RSTMDB_ERR_JSON). `ops` must outlive the watch. */
int pool_watch_json(pool *p, const char *op, const char *params, size_t params_len,
                    const pool_watch_ops *ops, void *arg, pool_watch **out);
/* No more callbacks; the upstream subscription is UNWATCHed (once it is
 * established, if it is not yet). The handle is invalid after this. Safe
 * from inside any of the watch's callbacks. */
void pool_watch_cancel(pool_watch *w);

/* SIGHUP: the token sent with AUTH by the connections made from now on
 * (NULL = none); open connections keep their session. */
int pool_set_token(pool *p, const char *token);

#endif
