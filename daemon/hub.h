/* hub.h: the proxy's subscription hub.
 *
 * Turns upstream WATCH subscriptions into gap-free, duplicate-free event
 * feeds for subscribers (SSE streams, webhooks). Streams with identical filters share one upstream
 * WATCH; a stream that resumes from an older offset (Last-Event-ID,
 * from_offset, or after an upstream loss) is served first by replay through
 * WAL_READ, then joins the live feed. The hub reads its upstream promptly no
 * matter how slow the HTTP clients are: it hands every event to the stream at
 * once and never buffers for it (the stream's own bounded buffer, in sse.c,
 * decides when a slow reader must be cut off).
 */
#ifndef PROXY_HUB_H
#define PROXY_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool.h"

typedef struct hub hub;
typedef struct hub_sub hub_sub;

/* What a stream watches. Lists: empty = match all; OR within, AND across. */
typedef struct hub_filter {
    const char *instance_id;     /* non-NULL: WATCH_INSTANCE; NULL: WATCH_ALL */
    const char *const *machines; /* WATCH_ALL filters (borrowed for the call) */
    size_t nmachines;
    const char *const *events;
    size_t nevents;
    const char *const *from_states;
    size_t nfrom_states;
    const char *const *to_states;
    size_t nto_states;
    bool include_ctx; /* default true */
} hub_filter;

/* One delivery. Every subscriber reached by the same delivery sees the same
 * `seq` (and the same bytes): work done per event, such as formatting it
 * for the wire, can be done once per seq and shared. */
typedef struct hub_event {
    uint64_t seq;
    uint64_t wal_offset;
    const char *data; /* one line of compact JSON (the SSE data), borrowed */
    size_t len;
} hub_event;

typedef struct hub_sub_ops {
    /* Once: the subscription is live (err NULL), or it failed before any event
     * (err set: e.g. INSTANCE_NOT_FOUND, BAD_REQUEST) and the sub is already
     * released when this returns. */
    void (*on_ready)(void *arg, const rstmdb_error *err);
    /* Each event, ids strictly increasing, no gap against the WAL, no duplicate. */
    void (*on_event)(void *arg, const hub_event *ev);
    /* Terminal: the feed cannot continue without a gap (code e.g.
     * "WAL_COMPACTED", "UPSTREAM_ERROR", "SHUTDOWN"); the sub is released
     * when this returns. */
    void (*on_error)(void *arg, const char *code, const char *message);
    /* Optional, at most once and before on_ready: no upstream connection is
     * ready; the sub waits and is subscribed (from its resume offset) as soon
     * as one is. */
    void (*on_waiting)(void *arg);
} hub_sub_ops;

typedef struct hub_config {
    unsigned wal_page_limit; /* records per WAL_READ page during replay, default 500 */
    size_t max_held_events;  /* live events held per sub during replay before giving up, default
                                10000 */
} hub_config;

/* Registers itself as the pool's state listener (pool_set_state_cb). The
 * pool must outlive the hub: hub_free before pool_free.
 * on_error codes used (added by the hub): "WAL_COMPACTED" (the resume point
 * was compacted away), "OFFSET_AHEAD" (the WAL ends before the resume point:
 * the server was reset or replaced), "REPLAY_OVERFLOW" (more than max_held_events live
 * events arrived during a replay), "UPSTREAM_ERROR" (the server refused a
 * re-subscribe or a replay read), "INTERNAL_ERROR" (OOM), "SHUTDOWN".
 * hub_subscribe returns RSTMDB_ERR_INVALID for a bad filter; without a
 * READY upstream connection it still succeeds and says on_waiting. */
int hub_new(hub **out, struct event_base *base, pool *upstream, const hub_config *cfg);
/* Ends every sub with on_error("SHUTDOWN", ...) and releases the hub. */
void hub_free(hub *h);

/* Subscribe. `from_offset` (when has_from) is inclusive: events with
 * wal_offset >= from_offset are replayed first (Last-Event-ID N => N + 1).
 * Returns RSTMDB_OK (on_ready or on_waiting follows, never from inside this
 * call) or a negative status (RSTMDB_ERR_CLOSED while the hub is freed). `ops`/`arg` must stay
 * valid until a terminal callback or hub_unsubscribe. */
int hub_subscribe(hub *h, const hub_filter *f, bool has_from, uint64_t from_offset,
                  const hub_sub_ops *ops, void *arg, hub_sub **out);
/* The stream is gone: no more callbacks; the upstream WATCH is UNWATCHed when
 * its last stream leaves. (Added:) safe from inside any of the hub's callbacks,
 * including on_event for that very stream: the sub is freed from the loop
 * later. Not after a terminal callback (on_ready with err, on_error): the
 * sub is already released then. */
void hub_unsubscribe(hub_sub *s);

typedef struct hub_stats {
    size_t upstream_subs; /* upstream WATCHes held */
    size_t streams;       /* hub_subs alive */
    uint64_t events_in;   /* events received from upstream */
    uint64_t replayed;    /* events delivered from WAL_READ */
    /* Added by the hub: */
    uint64_t replay_jobs; /* WAL catch-ups started (streams resuming together share one) */
} hub_stats;
void hub_get_stats(const hub *h, hub_stats *out);

/* The proxy's instance cache (instcache.c), shared with authorization: the
 * machine of an instance, or NULL when it is not known. */
const char *hub_instance_machine(const hub *h, const char *instance_id);
/* Learn an instance from its GET_INSTANCE result (raw JSON): 0, or -1 when
 * the result has no machine and version. */
int hub_instance_learn(hub *h, const char *instance_id, const char *result, size_t len);
/* A DELETE_INSTANCE went through: forget it (rstmdb 0.3 reuses ids). */
void hub_instance_forget(hub *h, const char *instance_id);

#endif
