/* hub_int.h: what the hub's three modules share, and nothing else includes.
 *
 *   hub.c       the hub object: public API, the kick, the retry timer, the
 *               pool's state listener;
 *   feed.c      feeds (one upstream WATCH each) and their subscribers, and
 *               the single function through which a subscriber changes state;
 *   replay.c    WAL replay jobs (WAL_READ catch-up with held live events);
 *   instcache.c the instance cache (machine and version of replayed events).
 *
 * Every subscriber is on exactly one list, the one of its state (sublist),
 * so that joining a feed, fanning an event out and starting waiting streams
 * each touch only the subscribers concerned: O(1) per join, O(live) per event.
 */
#ifndef PROXY_HUB_INT_H
#define PROXY_HUB_INT_H

#include <stdint.h>

#include "clock.h"
#include "hmap.h"
#include "hub.h"
#include "list.h"
#include "subfilter.h"
#include "walrec.h"

#define HUB_DEFAULT_PAGE       500u
#define HUB_MAX_PAGE           10000u
#define HUB_DEFAULT_MAX_HELD   10000u
#define HUB_CACHE_MAX          65536u      /* instances whose machine/version are remembered */
#define HUB_MAX_EVENT_BYTES    (16u << 20) /* one replayed event's data (a frame's cap) */
#define HUB_RETRY_MS           200u        /* pause before re-trying a failed WATCH or replay */
#define HUB_MAX_RESOLVE_ROUNDS 3           /* GET_INSTANCE rounds for one page */

typedef struct feed feed;
typedef struct replay replay;

/* A list of subscribers; a subscriber knows the list it is on. */
typedef struct sublist {
    hub_sub *head, *tail;
    size_t n;
} sublist;

/* Subscriber state = the list it is on. Only sub_move changes it. */
typedef enum sub_state {
    SUB_FRESH,     /* just subscribed: nothing said yet (f->fresh) */
    SUB_STARTING,  /* told on_waiting: no upstream yet; on_ready still due (f->starting) */
    SUB_REPLAYING, /* member of a replay job: live events are held by the job (job->members) */
    SUB_LIVE,      /* receives the feed's live events directly (f->live) */
    SUB_WAITING,   /* ready, but its feed lost the upstream or a replay failed (f->waiting) */
    SUB_DEAD       /* unsubscribed or ended: no callbacks; freed by the kick (h->dead) */
} sub_state;

typedef enum feed_state {
    FEED_DOWN = 0,    /* no upstream WATCH: subscribes when a connection is READY */
    FEED_SUBSCRIBING, /* WATCH sent, unanswered */
    FEED_LIVE         /* WATCH answered: events flow */
} feed_state;

struct hub_sub {
    hub *h;
    feed *f;
    replay *job; /* while REPLAYING */
    sub_state state;
    sublist *list;
    bool has_cursor; /* false: a new stream without from_offset, not started yet */
    uint64_t cursor;
    const hub_sub_ops *ops;
    void *arg;
    hub_sub *prev, *next; /* on *list */
};

typedef struct held_event {
    uint64_t offset;
    char *data;
    size_t len;
} held_event;

typedef struct lookup {
    replay *job;
    char *instance_id;
    pool_call *call;
} lookup;

typedef enum replay_state {
    REPLAY_NEW = 0,  /* created, first WAL_READ not sent */
    REPLAY_READING,  /* WAL_READ page in flight */
    REPLAY_PROBING,  /* WAL_READ of the oldest record in flight (compaction check) */
    REPLAY_HEAD,     /* WAL_STATS in flight (is the cursor beyond the WAL's end?) */
    REPLAY_BOUNDING, /* GET_INSTANCE in flight: where the instance's last record is */
    REPLAY_RESOLVING /* GET_INSTANCE lookups in flight for the current page */
} replay_state;

/* Catch-up of the streams of one feed that share one cursor. Live events of
 * the feed are held while it runs and sent after the WAL part. */
struct replay {
    feed *f;
    replay_state state;
    bool dead;
    bool read_any; /* a page has been processed: the cursor is known to be in the WAL */
    bool bounded;  /* WATCH_INSTANCE: nothing of the instance lies above `bound` */
    uint64_t bound;
    uint64_t cursor; /* next WAL offset to read; members' cursors follow it */
    sublist members; /* SUB_REPLAYING streams of this job */
    pool_call *call; /* WAL_READ in flight */
    char *page_text; /* copy of the current page's result (tokens point in) */
    walrec_page page;
    unsigned resolve_rounds;
    lookup *lookups;
    size_t nlookups, pending;
    held_event *held;
    size_t nheld, capheld;
    replay *prev, *next; /* in f->jobs */
};

struct feed {
    hub *h;
    hmap_node node; /* key = sf.key (canonical WATCH params) */
    bool in_map;
    subfilter sf;
    feed_state state;
    pool_watch *watch;
    bool has_pos;
    uint64_t pos;         /* start cursor for a new stream without from_offset */
    uint64_t retry_at_ms; /* no WATCH / replay restart before this */
    size_t nsubs;         /* streams not DEAD */
    sublist fresh, starting, live, waiting;
    replay *jobs;
    bool dirty;
    feed *dirty_next;
    feed *prev, *next; /* in h->feeds */
};

typedef struct inst_info {
    hmap_node node; /* key = instance_id */
    char *instance_id;
    char *machine_tok; /* raw JSON string token */
    char *machine;     /* decoded */
    uint64_t version;
    list_node link; /* in the cache's list, to free */
} inst_info;

typedef struct instcache {
    hmap map;
    list_node list;
    size_t n;
} instcache;

struct hub {
    struct event_base *base;
    pool *pool;
    unsigned page_limit;
    size_t max_held;
    struct event *kick_ev;
    struct event *timer_ev;
    feed *feeds;
    hmap feed_map;
    feed *dirty;
    sublist dead;
    instcache cache;
    uint64_t seq; /* hub_event.seq of the last delivery */
    hub_stats stats;
    bool freeing;
};

void hub_kick(hub *h);
void hub_reap(hub *h);

/* feed.c */
void sub_move(hub_sub *s, sub_state to, replay *job);
void sub_fail_ready(hub_sub *s, const rstmdb_error *err);
void sub_error(hub_sub *s, const char *code, const char *msg);
void sub_deliver(hub_sub *s, const hub_event *ev);
void feed_mark(feed *f);
void feed_retry_later(feed *f, unsigned ms);
feed *feed_get(hub *h, subfilter *sf); /* takes sf (found or not); NULL on OOM */
void feed_run(feed *f);
void feed_destroy(feed *f);
extern const pool_watch_ops feed_watch_ops;

/* replay.c */
replay *job_new(feed *f, uint64_t cursor);
void job_start(replay *j);
void job_hold(replay *j, uint64_t off, const char *data, size_t len);
/* Members go back to WAITING (code NULL) or end with on_error(code). */
void job_abort(replay *j, const char *code, const char *msg);
void job_destroy(replay *j);
bool reply_is_transport(const rstmdb_reply *r);

/* instcache.c */
void instcache_init(instcache *c);
void instcache_deinit(instcache *c);
const inst_info *instcache_get(const instcache *c, const char *id);
/* Takes ownership of tok/name. */
void instcache_put(instcache *c, const char *id, char *tok, char *name, uint64_t version);
void instcache_forget(instcache *c, const char *id);

#endif
