/* hub.c: the subscription hub. Owns feeds (one upstream WATCH per distinct
 * normalized filter), the streams fanned out from them, replay jobs
 * (WAL_READ catch-up with held live events) and the instance cache that
 * names the machine of replayed events. It never buffers for a slow stream
 * (sse.c does) and never calls a stream back from inside hub_subscribe or
 * hub_unsubscribe: work is deferred to one zero-timeout "kick" event.
 *
 * Invariant per stream: `cursor` is the lowest WAL offset it may still
 * receive; every event below it was delivered or is not the stream's. Each
 * delivery sets cursor = wal_offset + 1, so ids strictly increase and a
 * duplicate (idempotent replay, a WAL record also seen live) is dropped.
 */
#include "hub.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error_int.h"
#include "hmap.h"
#include "subfilter.h"
#include "tbuf.h"
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

/* Stream state; all transitions in this file. */
typedef enum sub_state {
    SUB_STARTING = 0, /* on_ready not sent yet: waits for its feed to be LIVE */
    SUB_REPLAYING,    /* member of a replay job: live events are held by the job */
    SUB_LIVE,         /* receives the feed's live events directly */
    SUB_WAITING, /* ready, but its feed lost the upstream (or a replay failed): resumes later */
    SUB_DEAD     /* unsubscribed or ended: no callbacks; freed by the kick */
} sub_state;

/* Feed state. */
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
    bool has_cursor; /* false: a new stream without from_offset, not started yet */
    uint64_t cursor;
    const hub_sub_ops *ops;
    void *arg;
    hub_sub *prev, *next; /* in f->subs */
    hub_sub *dead_next;   /* in h->dead */
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

/* Replay job state. */
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
    size_t members;  /* streams with job == this, not DEAD */
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
    uint64_t pos;              /* start cursor for a new stream without from_offset */
    uint64_t retry_at_ms;      /* no WATCH / replay restart before this */
    size_t nsubs;              /* streams not DEAD */
    hub_sub *subs, *subs_tail; /* in arrival order */
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
    struct inst_info *next; /* in h->cache_list, to free */
} inst_info;

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
    hub_sub *dead;
    hmap cache;
    inst_info *cache_list;
    size_t cache_n;
    hub_stats stats;
    bool freeing;
};

static const pool_watch_ops feed_watch_ops;
static void hub_reap(hub *h);

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void hub_kick(hub *h)
{
    if (!h->freeing)
        event_active(h->kick_ev, EV_TIMEOUT, 0);
}

static void feed_mark(feed *f)
{
    if (!f->dirty) {
        f->dirty = true;
        f->dirty_next = f->h->dirty;
        f->h->dirty = f;
    }
    hub_kick(f->h);
}

/* Wake up after `ms` to retry something on feed f. */
static void feed_retry_later(feed *f, unsigned ms)
{
    f->retry_at_ms = now_ms() + ms;
    struct timeval tv = {(time_t)(ms / 1000u), (suseconds_t)((ms % 1000u) * 1000u)};
    if (!evtimer_pending(f->h->timer_ev, NULL))
        evtimer_add(f->h->timer_ev, &tv);
}

/* ---- instance cache ------------------------------------------------------- */

static void cache_clear(hub *h)
{
    while (h->cache_list) {
        inst_info *ii = h->cache_list;
        h->cache_list = ii->next;
        hmap_remove(&h->cache, &ii->node);
        free(ii->instance_id);
        free(ii->machine_tok);
        free(ii->machine);
        free(ii);
    }
    h->cache_n = 0;
}

static const inst_info *cache_get(const hub *h, const char *id)
{
    hmap_node *n = hmap_find(&h->cache, id, strlen(id));
    return n ? (const inst_info *)((const char *)n - offsetof(inst_info, node)) : NULL;
}

/* Takes ownership of tok/name. An instance's machine and version never
 * change, so an entry is never stale; the cap only bounds memory (when it is
 * reached the cache starts over, which costs lookups, not correctness). */
static void cache_put(hub *h, const char *id, char *tok, char *name, uint64_t version)
{
    if (cache_get(h, id)) {
        free(tok);
        free(name);
        return;
    }
    if (h->cache_n >= HUB_CACHE_MAX)
        cache_clear(h);
    inst_info *ii = calloc(1, sizeof *ii);
    if (!ii || !(ii->instance_id = strdup(id))) {
        free(ii);
        free(tok);
        free(name);
        return;
    }
    ii->machine_tok = tok;
    ii->machine = name;
    ii->version = version;
    ii->node.key = ii->instance_id;
    ii->node.key_len = strlen(ii->instance_id);
    if (hmap_insert(&h->cache, &ii->node) < 0) {
        free(ii->instance_id);
        free(tok);
        free(name);
        free(ii);
        return;
    }
    ii->next = h->cache_list;
    h->cache_list = ii;
    h->cache_n++;
}

/* ---- streams ------------------------------------------------------------------ */

/* Terminal end of a stream with a callback; the kick frees it. */
static void sub_kill(hub_sub *s)
{
    if (s->state == SUB_DEAD)
        return;
    s->state = SUB_DEAD;
    if (s->job) {
        if (s->job->members > 0)
            s->job->members--;
        s->job = NULL;
    }
    if (s->f->nsubs > 0)
        s->f->nsubs--;
    if (s->h->stats.streams > 0)
        s->h->stats.streams--;
    s->dead_next = s->h->dead;
    s->h->dead = s;
    feed_mark(s->f);
}

static void sub_fail_ready(hub_sub *s, const rstmdb_error *err)
{
    const hub_sub_ops *ops = s->ops;
    void *arg = s->arg;
    sub_kill(s);
    ops->on_ready(arg, err);
}

static void sub_error(hub_sub *s, const char *code, const char *msg)
{
    const hub_sub_ops *ops = s->ops;
    void *arg = s->arg;
    sub_kill(s);
    ops->on_error(arg, code, msg);
}

/* Deliver one event if it is above the stream's cursor. */
static void sub_deliver(hub_sub *s, uint64_t off, const char *data, size_t len)
{
    if (!walrec_cursor_take(&s->cursor, off))
        return; /* already delivered (or before the stream's start): never twice */
    s->ops->on_event(s->arg, off, data, len);
}

/* ---- replay jobs ------------------------------------------------------------ */

static void job_start_read(replay *j);
static void job_process_page(replay *j);

static void job_clear_page(replay *j)
{
    for (size_t i = 0; i < j->nlookups; i++) {
        pool_call_cancel(j->lookups[i].call);
        free(j->lookups[i].instance_id);
    }
    free(j->lookups);
    j->lookups = NULL;
    j->nlookups = j->pending = 0;
    walrec_page_deinit(&j->page);
    free(j->page_text);
    j->page_text = NULL;
}

/* Stop the job at once (calls cancelled) and unlink it; its members must have
 * been moved elsewhere by the caller. */
static void job_destroy(replay *j)
{
    feed *f = j->f;
    pool_call_cancel(j->call);
    j->call = NULL;
    job_clear_page(j);
    for (size_t i = 0; i < j->nheld; i++)
        free(j->held[i].data);
    free(j->held);
    if (j->prev)
        j->prev->next = j->next;
    else
        f->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    free(j);
}

/* The job cannot go on: its members go back to WAITING (resumed from their
 * cursor later) or end with an error when `code` is set. */
static void job_abort(replay *j, const char *code, const char *msg)
{
    feed *f = j->f;
    j->dead = true;
    pool_call_cancel(j->call);
    j->call = NULL;
    job_clear_page(j);
    for (hub_sub *s = f->subs; s; s = s->next) {
        if (s->job != j || s->state != SUB_REPLAYING)
            continue;
        if (code) {
            sub_error(s, code, msg);
        } else {
            s->job = NULL;
            s->state = SUB_WAITING;
        }
    }
    j->members = 0;
    feed_mark(f);
}

/* After a transport failure of a replay call (the pool already re-sent it
 * where it could): the members resume from their cursor a little later. */
static void job_retry(replay *j)
{
    feed *f = j->f;
    job_abort(j, NULL, NULL);
    feed_retry_later(f, HUB_RETRY_MS);
}

static bool reply_is_transport(const rstmdb_reply *r)
{
    int st = rstmdb_reply_status(r);
    return st != RSTMDB_OK && st != RSTMDB_ERR_SERVER;
}

static void job_fail_reply(replay *j, const rstmdb_reply *r, const char *what)
{
    if (reply_is_transport(r)) {
        job_retry(j);
        return;
    }
    char msg[512];
    const rstmdb_error *e = rstmdb_reply_error(r);
    snprintf(msg, sizeof msg, "%s failed during replay: %s: %s", what,
             e ? rstmdb_error_code_str(e) : "?", e ? rstmdb_error_message(e) : "?");
    job_abort(j, "UPSTREAM_ERROR", msg);
}

/* The common head of every replay step's reply callback: on an error answer
 * the job is failed here (retried after a transport loss, aborted on an
 * upstream error) and false comes back; otherwise *raw (possibly NULL) and
 * *len hold the result bytes. */
static bool job_reply_ok(replay *j, const rstmdb_reply *r, const char *what, const char **raw,
                         size_t *len)
{
    if (rstmdb_reply_status(r) != RSTMDB_OK) {
        job_fail_reply(j, r, what);
        return false;
    }
    *raw = rstmdb_reply_result_raw(r, len);
    return true;
}

/* Deliver the held live events and switch the members to LIVE. */
static void job_finish(replay *j)
{
    feed *f = j->f;
    for (size_t i = 0; i < j->nheld; i++) {
        for (hub_sub *s = f->subs; s; s = s->next)
            if (s->job == j && s->state == SUB_REPLAYING)
                sub_deliver(s, j->held[i].offset, j->held[i].data, j->held[i].len);
    }
    for (hub_sub *s = f->subs; s; s = s->next) {
        if (s->job == j && s->state == SUB_REPLAYING) {
            s->job = NULL;
            s->state = SUB_LIVE;
        }
    }
    j->members = 0;
    j->dead = true;
    feed_mark(f);
}

static void job_hold(replay *j, uint64_t off, const char *data, size_t len)
{
    if (j->dead || j->members == 0)
        return;
    if (j->nheld >= j->f->h->max_held) {
        char msg[160];
        snprintf(msg, sizeof msg, "more than %zu live events arrived while replaying the WAL",
                 j->f->h->max_held);
        job_abort(j, "REPLAY_OVERFLOW", msg);
        return;
    }
    if (j->nheld == j->capheld) {
        size_t ncap = j->capheld ? j->capheld * 2 : 16;
        if (ncap > j->f->h->max_held)
            ncap = j->f->h->max_held;
        held_event *nh = realloc(j->held, ncap * sizeof *nh);
        if (!nh) {
            job_abort(j, "INTERNAL_ERROR", "out of memory while holding live events");
            return;
        }
        j->held = nh;
        j->capheld = ncap;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        job_abort(j, "INTERNAL_ERROR", "out of memory while holding live events");
        return;
    }
    memcpy(copy, data, len);
    copy[len] = '\0';
    j->held[j->nheld].offset = off;
    j->held[j->nheld].data = copy;
    j->held[j->nheld].len = len;
    j->nheld++;
}

static void lookup_reply_cb(const rstmdb_reply *r, void *arg)
{
    lookup *lk = arg;
    replay *j = lk->job;
    lk->call = NULL;
    size_t len = 0;
    const char *raw = NULL;
    if (!job_reply_ok(j, r, "GET_INSTANCE", &raw, &len))
        return;
    char *tok = NULL, *name = NULL;
    uint64_t version = 0;
    if (!raw || walrec_instance_info(raw, len, &tok, &name, &version) < 0) {
        job_abort(j, "UPSTREAM_ERROR", "GET_INSTANCE answered without machine/version");
        return;
    }
    cache_put(j->f->h, lk->instance_id, tok, name, version);
    if (--j->pending == 0)
        job_process_page(j);
}

static bool lookup_listed(const replay *j, const char *id)
{
    for (size_t i = 0; i < j->nlookups; i++)
        if (strcmp(j->lookups[i].instance_id, id) == 0)
            return true;
    return false;
}

/* Learn machine/version for every apply_event of the page the stream could
 * want: from create_instance records on the page, else GET_INSTANCE. Returns
 * true when everything is known now. */
static bool job_resolve(replay *j)
{
    hub *h = j->f->h;
    const subfilter *sf = &j->f->sf;
    size_t want = 0;
    for (size_t i = 0; i < j->page.n; i++) {
        walrec *r = &j->page.recs[i];
        if (r->offset < j->cursor)
            continue;
        if (r->type == WALREC_CREATE_INSTANCE) {
            char *tok = strndup(r->machine.p, r->machine.len), *name = strdup(r->machine_name);
            if (tok && name) {
                cache_put(h, r->instance_id, tok, name, r->version);
            } else {
                free(tok);
                free(name);
            }
            continue;
        }
        if (r->type != WALREC_APPLY_EVENT || cache_get(h, r->instance_id))
            continue;
        /* Cheap pre-filter: skip lookups for events the stream cannot want. */
        if (!subfilter_needs_machine(sf) &&
            !subfilter_match(sf, r->instance_id, NULL, r->event_name, r->from, r->to))
            continue;
        if (!lookup_listed(j, r->instance_id)) {
            if (want == 0) {
                j->lookups = calloc(j->page.n, sizeof *j->lookups);
                if (!j->lookups) {
                    job_abort(j, "INTERNAL_ERROR", "out of memory");
                    return false;
                }
            }
            lookup *lk = &j->lookups[j->nlookups];
            lk->job = j;
            if (!(lk->instance_id = strdup(r->instance_id))) {
                job_abort(j, "INTERNAL_ERROR", "out of memory");
                return false;
            }
            j->nlookups++;
            want++;
        }
    }
    if (want == 0)
        return true;
    j->state = REPLAY_RESOLVING;
    j->pending = j->nlookups;
    for (size_t i = 0; i < j->nlookups; i++) {
        lookup *lk = &j->lookups[i];
        tbuf b;
        tbuf_init(&b, 4096 + strlen(lk->instance_id) * 6);
        tbuf_adds(&b, "{\"instance_id\":");
        tbuf_add_jstr(&b, lk->instance_id);
        tbuf_add(&b, "}", 1);
        int rc = b.failed ? RSTMDB_ERR_NOMEM
                          : pool_call_json(h->pool, "GET_INSTANCE", b.s, b.len, true,
                                           lookup_reply_cb, lk, &lk->call);
        tbuf_deinit(&b);
        if (rc != RSTMDB_OK) {
            lk->call = NULL;
            job_abort(j, NULL, NULL); /* no upstream now: resume later */
            feed_retry_later(j->f, HUB_RETRY_MS);
            return false;
        }
    }
    return false;
}

/* Send the page's matching events, advance, then read on or finish. */
static void job_process_page(replay *j)
{
    hub *h = j->f->h;
    feed *f = j->f;
    const subfilter *sf = &f->sf;
    tbuf b;
    tbuf_init(&b, HUB_MAX_EVENT_BYTES);

    for (size_t i = 0; i < j->nlookups; i++)
        free(j->lookups[i].instance_id);
    free(j->lookups);
    j->lookups = NULL;
    j->nlookups = j->pending = 0;

    for (size_t i = 0; i < j->page.n && !j->dead; i++) {
        const walrec *r = &j->page.recs[i];
        if (r->offset < j->cursor)
            continue;
        if (r->type == WALREC_APPLY_EVENT) {
            const inst_info *ii = cache_get(h, r->instance_id);
            bool cand = sf->instance_id ? strcmp(sf->instance_id, r->instance_id) == 0
                                        : subfilter_needs_machine(sf) ||
                                              subfilter_match(sf, r->instance_id, NULL,
                                                              r->event_name, r->from, r->to);
            if (cand && !ii) {
                /* Evicted between lookup and use (cache cap): resolve again. */
                if (++j->resolve_rounds > HUB_MAX_RESOLVE_ROUNDS) {
                    job_abort(j, "INTERNAL_ERROR", "cannot resolve instance machines");
                    break;
                }
                if (job_resolve(j))
                    continue; /* resolved synchronously: unreachable, kept safe */
                tbuf_deinit(&b);
                return;
            }
            if (cand &&
                subfilter_match(sf, r->instance_id, ii->machine, r->event_name, r->from, r->to)) {
                tbuf_reset(&b);
                if (walrec_event_data(r, ii->machine_tok, strlen(ii->machine_tok), ii->version,
                                      sf->include_ctx, &b) < 0) {
                    job_abort(j, "INTERNAL_ERROR", "replayed event too large");
                    break;
                }
                h->stats.replayed++;
                for (hub_sub *s = f->subs; s; s = s->next)
                    if (s->job == j && s->state == SUB_REPLAYING)
                        sub_deliver(s, r->offset, b.s, b.len);
            }
        }
        j->cursor = r->offset + 1;
    }
    tbuf_deinit(&b);
    if (j->dead)
        return;
    for (hub_sub *s = f->subs; s; s = s->next)
        if (s->job == j && s->state == SUB_REPLAYING && s->cursor < j->cursor)
            s->cursor = j->cursor;

    /* Done when the WAL had no more than this page (we reached its head as
     * of this read: later events arrive live, held or not yet), or when the
     * WAL part already covers the newest held event. */
    bool short_page = j->page.n < j->f->h->page_limit || !j->page.has_next;
    bool covered = (j->nheld > 0 && j->cursor > j->held[j->nheld - 1].offset) ||
                   (j->bounded && j->cursor > j->bound);
    if (j->page.has_next && j->page.next_offset > j->cursor)
        j->cursor = j->page.next_offset;
    job_clear_page(j);
    j->resolve_rounds = 0;
    j->read_any = true;
    if (short_page || covered)
        job_finish(j);
    else
        job_start_read(j);
}

static void probe_reply_cb(const rstmdb_reply *r, void *arg)
{
    replay *j = arg;
    j->call = NULL;
    size_t len = 0;
    const char *raw = NULL;
    if (!job_reply_ok(j, r, "WAL_READ", &raw, &len))
        return;
    walrec_page pg;
    if (!raw || walrec_page_parse(raw, len, 1, &pg) < 0) {
        job_abort(j, "UPSTREAM_ERROR", "WAL_READ answered an unreadable page");
        return;
    }
    uint64_t lowest = pg.n ? walrec_segment(pg.recs[0].offset) : 0;
    walrec_page_deinit(&pg);
    if (walrec_compacted(j->cursor, lowest)) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "the WAL no longer holds offset %llu (compacted up to segment %llu): "
                 "events may be missing; reconnect without Last-Event-ID",
                 (unsigned long long)j->cursor, (unsigned long long)lowest);
        job_abort(j, "WAL_COMPACTED", msg);
        return;
    }
    if (job_resolve(j))
        job_process_page(j);
}

static void head_reply_cb(const rstmdb_reply *r, void *arg)
{
    replay *j = arg;
    j->call = NULL;
    size_t len = 0;
    const char *raw = NULL;
    if (!job_reply_ok(j, r, "WAL_STATS", &raw, &len))
        return;
    uint64_t latest;
    if (!raw || walrec_result_u64(raw, len, "latest_offset", &latest) < 0) {
        job_abort(j, "UPSTREAM_ERROR", "WAL_STATS answered without latest_offset");
        return;
    }
    if (latest < j->cursor) {
        /* The WAL ends before where this stream stands: the server was
         * reset or replaced (an in-memory test server restarted), or the
         * client asked for a future offset. New events would carry ids
         * below ones already sent, so the stream cannot go on. */
        char msg[240];
        snprintf(msg, sizeof msg,
                 "the upstream WAL ends at offset %llu, before the resume point %llu "
                 "(server reset or replaced?): reconnect without Last-Event-ID",
                 (unsigned long long)latest, (unsigned long long)j->cursor);
        job_abort(j, "OFFSET_AHEAD", msg);
        return;
    }
    job_process_page(j);
}

static void page_reply_cb(const rstmdb_reply *r, void *arg)
{
    replay *j = arg;
    hub *h = j->f->h;
    j->call = NULL;
    size_t len = 0;
    const char *raw = NULL;
    if (!job_reply_ok(j, r, "WAL_READ", &raw, &len))
        return;
    if (!raw || !(j->page_text = malloc(len + 1))) {
        job_abort(j, "INTERNAL_ERROR", "WAL_READ result unavailable");
        return;
    }
    memcpy(j->page_text, raw, len);
    j->page_text[len] = '\0';
    if (walrec_page_parse(j->page_text, len, h->page_limit, &j->page) < 0) {
        job_abort(j, "UPSTREAM_ERROR", "WAL_READ answered an unreadable page");
        return;
    }
    /* Compaction deletes whole segments: only a first record in a later
     * segment than the cursor can hide deleted records; then ask which
     * segment is the oldest still there. */
    if (j->page.n > 0 && walrec_needs_probe(j->cursor, j->page.recs[0].offset)) {
        j->state = REPLAY_PROBING;
        static const char probe[] = "{\"from_offset\":0,\"limit\":1}";
        int rc = pool_call_json(h->pool, "WAL_READ", probe, sizeof probe - 1, true, probe_reply_cb,
                                j, &j->call);
        if (rc != RSTMDB_OK) {
            j->call = NULL;
            job_abort(j, NULL, NULL);
            feed_retry_later(j->f, HUB_RETRY_MS);
        }
        return;
    }
    /* Nothing at or after the cursor on the first read: either the stream
     * is simply up to date, or the WAL ends before the cursor. Ask once. */
    if (j->page.n == 0 && !j->read_any) {
        j->state = REPLAY_HEAD;
        int rc = pool_call_json(h->pool, "WAL_STATS", "{}", 2, true, head_reply_cb, j, &j->call);
        if (rc != RSTMDB_OK) {
            j->call = NULL;
            job_abort(j, NULL, NULL);
            feed_retry_later(j->f, HUB_RETRY_MS);
        }
        return;
    }
    if (job_resolve(j))
        job_process_page(j);
}

static void job_start_read(replay *j)
{
    hub *h = j->f->h;
    char params[96];
    int n = snprintf(params, sizeof params, "{\"from_offset\":%llu,\"limit\":%u}",
                     (unsigned long long)j->cursor, h->page_limit);
    j->state = REPLAY_READING;
    int rc =
        pool_call_json(h->pool, "WAL_READ", params, (size_t)n, true, page_reply_cb, j, &j->call);
    if (rc != RSTMDB_OK) {
        j->call = NULL;
        job_abort(j, NULL, NULL);
        feed_retry_later(j->f, HUB_RETRY_MS);
    }
}

/* The instance's last record bounds a WATCH_INSTANCE replay: GET_INSTANCE
 * is answered after the WATCH was re-established, so every event of the
 * instance is either at or below last_wal_offset or arrives live. A quiet
 * instance whose stream resumes from far back (its cursor is the
 * instance's last record at subscribe time) then needs no WAL scan at all,
 * instead of reading every record written since. */
static void bound_reply_cb(const rstmdb_reply *r, void *arg)
{
    replay *j = arg;
    hub *h = j->f->h;
    j->call = NULL;
    size_t len = 0;
    const char *raw = NULL;
    if (!job_reply_ok(j, r, "GET_INSTANCE", &raw, &len))
        return;
    uint64_t last;
    if (!raw || walrec_result_u64(raw, len, "last_wal_offset", &last) < 0) {
        job_start_read(j); /* no bound known: read to the head */
        return;
    }
    j->bounded = true;
    j->bound = last;
    if (last >= j->cursor) {
        job_start_read(j);
        return;
    }
    /* Nothing to replay, unless the WAL itself ends before the cursor
     * (a reset server): head_reply_cb checks, then finishes on an empty page. */
    j->state = REPLAY_HEAD;
    int rc = pool_call_json(h->pool, "WAL_STATS", "{}", 2, true, head_reply_cb, j, &j->call);
    if (rc != RSTMDB_OK) {
        j->call = NULL;
        job_abort(j, NULL, NULL);
        feed_retry_later(j->f, HUB_RETRY_MS);
    }
}

static void job_start(replay *j)
{
    hub *h = j->f->h;
    if (!j->f->sf.instance_id) {
        job_start_read(j);
        return;
    }
    tbuf b;
    tbuf_init(&b, 64 + strlen(j->f->sf.instance_id) * 6);
    tbuf_adds(&b, "{\"instance_id\":");
    tbuf_add_jstr(&b, j->f->sf.instance_id);
    tbuf_add(&b, "}", 1);
    j->state = REPLAY_BOUNDING;
    int rc = b.failed ? RSTMDB_ERR_NOMEM
                      : pool_call_json(h->pool, "GET_INSTANCE", b.s, b.len, true, bound_reply_cb, j,
                                       &j->call);
    tbuf_deinit(&b);
    if (rc != RSTMDB_OK) {
        j->call = NULL;
        job_abort(j, NULL, NULL);
        feed_retry_later(j->f, HUB_RETRY_MS);
    }
}

/* ---- feeds ------------------------------------------------------------------------ */

static void feed_destroy(feed *f)
{
    hub *h = f->h;
    while (f->jobs)
        job_destroy(f->jobs);
    if (f->watch) {
        pool_watch_cancel(f->watch); /* UNWATCH upstream */
        f->watch = NULL;
        if (h->stats.upstream_subs > 0)
            h->stats.upstream_subs--;
    }
    while (f->subs) {
        hub_sub *s = f->subs;
        f->subs = s->next;
        free(s);
    }
    if (f->dirty) {
        for (feed **pp = &h->dirty; *pp; pp = &(*pp)->dirty_next)
            if (*pp == f) {
                *pp = f->dirty_next;
                break;
            }
    }
    if (f->in_map)
        hmap_remove(&h->feed_map, &f->node);
    if (f->prev)
        f->prev->next = f->next;
    else
        h->feeds = f->next;
    if (f->next)
        f->next->prev = f->prev;
    subfilter_deinit(&f->sf);
    free(f);
}

/* Put every ready stream of a LIVE feed on its way: new streams get on_ready;
 * those with a cursor are replayed (one job per distinct cursor), the others
 * start at the feed's position. `just_subscribed`: the WATCH was answered
 * this instant. Events the server pushed between registering the WATCH and
 * answering it cannot be routed (their subscription id is not known yet),
 * so new streams then catch up from the WATCH's offset through one shared
 * replay instead of going LIVE blindly. Only for WATCH_ALL, whose offset is
 * the WAL head (a one-page read): WATCH_INSTANCE reports the instance's last
 * record, possibly far back, and a fresh stream there has no start to
 * honour more exactly than "around the subscription". */
static void feed_start_streams(feed *f, bool include_waiting, bool just_subscribed)
{
    for (hub_sub *s = f->subs; s && f->state == FEED_LIVE; s = s->next) {
        if (s->state == SUB_STARTING) {
            if (!s->has_cursor) {
                s->cursor = f->has_pos ? f->pos : 0;
                s->has_cursor = true;
                if (!just_subscribed || !f->has_pos || f->sf.instance_id) {
                    s->state = SUB_LIVE;
                    s->ops->on_ready(s->arg, NULL);
                    continue;
                }
            }
            s->ops->on_ready(s->arg, NULL);
            if (s->state == SUB_DEAD)
                continue;
        } else if (!(s->state == SUB_WAITING && include_waiting)) {
            continue;
        }
        /* Share a replay when one can serve this cursor: sub_deliver drops
         * what lies below each member's own cursor, so one WAL pass from the
         * lowest cursor serves them all (10,000 streams resuming after a
         * loss need not make 10,000 WAL_READ chains). A job not started yet
         * moves down to the lowest cursor; a running one takes streams at or
         * above where it reads (its held events cover them since it
         * started). Only within one WAL segment: compaction deletes whole
         * segments, so members of a job share the WAL_COMPACTED verdict. */
        replay *j = NULL;
        for (replay *k = f->jobs; k && !j; k = k->next) {
            if (k->dead || walrec_segment(k->cursor) != walrec_segment(s->cursor))
                continue;
            if (k->state == REPLAY_NEW) {
                if (s->cursor < k->cursor)
                    k->cursor = s->cursor;
                j = k;
            } else if (k->cursor <= s->cursor) {
                j = k;
            }
        }
        if (!j) {
            j = calloc(1, sizeof *j);
            if (!j) {
                sub_error(s, "INTERNAL_ERROR", "out of memory");
                continue;
            }
            j->f = f;
            j->cursor = s->cursor;
            f->h->stats.replay_jobs++;
            j->next = f->jobs;
            if (f->jobs)
                f->jobs->prev = j;
            f->jobs = j;
        }
        s->job = j;
        s->state = SUB_REPLAYING;
        j->members++;
    }
    for (replay *k = f->jobs; k; k = k->next)
        if (!k->dead && k->state == REPLAY_NEW && k->members > 0)
            job_start(k);
}

static void feed_watch_reply(void *arg, const rstmdb_reply *r)
{
    feed *f = arg;
    hub *h = f->h;
    if (rstmdb_reply_status(r) == RSTMDB_OK) {
        f->state = FEED_LIVE;
        size_t len = 0;
        const char *raw = rstmdb_reply_result_raw(r, &len);
        uint64_t pos;
        /* WATCH_ALL: wal_offset = where the next record goes. WATCH_INSTANCE:
         * current_wal_offset = the instance's last record, so start after it. */
        if (raw &&
            walrec_result_u64(raw, len, f->sf.instance_id ? "current_wal_offset" : "wal_offset",
                              &pos) == 0) {
            if (f->sf.instance_id)
                pos++;
            if (!f->has_pos || pos > f->pos) {
                f->pos = pos;
                f->has_pos = true;
            }
        }
        feed_start_streams(f, true, true);
        return;
    }
    /* The WATCH failed: the wrapper is gone. */
    f->watch = NULL;
    if (h->stats.upstream_subs > 0)
        h->stats.upstream_subs--;
    f->state = FEED_DOWN;
    const rstmdb_error *e = rstmdb_reply_error(r);
    bool transport = reply_is_transport(r);
    char msg[512];
    snprintf(msg, sizeof msg, "upstream refused the subscription: %s: %s",
             e ? rstmdb_error_code_str(e) : "?", e ? rstmdb_error_message(e) : "?");
    for (hub_sub *s = f->subs; s; s = s->next) {
        if (s->state == SUB_STARTING)
            sub_fail_ready(s, e); /* HTTP answers the error before any stream */
        else if (!transport && s->state != SUB_DEAD)
            sub_error(s, "UPSTREAM_ERROR", msg);
    }
    if (transport) /* streams already open keep waiting; try again soon */
        feed_retry_later(f, HUB_RETRY_MS);
    feed_mark(f);
}

static void feed_watch_event(void *arg, const rstmdb_event *ev)
{
    feed *f = arg;
    size_t len = 0;
    const char *data = rstmdb_event_body(ev, &len);
    uint64_t off = rstmdb_event_wal_offset(ev);
    f->h->stats.events_in++;
    if (!data) {
        /* The library could not cut the body (out of memory): never drop
         * it silently. Every stream of the feed catches up through the WAL,
         * which holds this event, exactly as after an upstream loss. */
        for (replay *j = f->jobs; j; j = j->next)
            if (!j->dead)
                job_abort(j, NULL, NULL);
        for (hub_sub *s = f->subs; s; s = s->next)
            if (s->state == SUB_LIVE)
                s->state = SUB_WAITING;
        feed_retry_later(f, HUB_RETRY_MS);
        feed_mark(f);
        return;
    }
    if (!f->has_pos || off + 1 > f->pos) {
        f->pos = off + 1;
        f->has_pos = true;
    }
    for (replay *j = f->jobs; j; j = j->next)
        if (!j->dead && j->state != REPLAY_NEW)
            job_hold(j, off, data, len);
    for (hub_sub *s = f->subs; s; s = s->next)
        if (s->state == SUB_LIVE)
            sub_deliver(s, off, data, len);
}

static void feed_watch_end(void *arg, const rstmdb_error *why)
{
    feed *f = arg;
    hub *h = f->h;
    f->watch = NULL;
    if (h->stats.upstream_subs > 0)
        h->stats.upstream_subs--;
    f->state = FEED_DOWN;
    (void)why;
    /* Every replay restarts after the resubscribe; streams keep their cursor. */
    for (replay *j = f->jobs; j; j = j->next)
        if (!j->dead)
            job_abort(j, NULL, NULL);
    for (hub_sub *s = f->subs; s; s = s->next)
        if (s->state == SUB_LIVE)
            s->state = SUB_WAITING;
    feed_mark(f);
}

static const pool_watch_ops feed_watch_ops = {feed_watch_reply, feed_watch_event, feed_watch_end};

static void feed_subscribe(feed *f)
{
    hub *h = f->h;
    int rc = pool_watch_json(h->pool, subfilter_op(&f->sf), f->sf.key, f->sf.key_len,
                             &feed_watch_ops, f, &f->watch);
    if (rc == RSTMDB_OK) {
        f->state = FEED_SUBSCRIBING;
        h->stats.upstream_subs++;
        return;
    }
    f->watch = NULL;
    if (rc != RSTMDB_ERR_CLOSED) {
        char msg[160];
        snprintf(msg, sizeof msg, "cannot subscribe upstream: %s", rstmdb_strerror(rc));
        rstmdb_error *e = error_newf(rc, "%s", msg);
        for (hub_sub *s = f->subs; s; s = s->next) {
            if (s->state == SUB_STARTING)
                sub_fail_ready(s, e);
            else if (s->state != SUB_DEAD)
                sub_error(s, "UPSTREAM_ERROR", msg);
        }
        rstmdb_error_free(e);
    }
}

/* Everything a feed needs, run from the kick (never inside a user call). */
static void feed_run(feed *f)
{
    hub *h = f->h;
    hub_reap(h); /* no DEAD stream of f may outlive f in h->dead */
    if (f->nsubs == 0) {
        feed_destroy(f);
        return;
    }
    /* Jobs left without members, or finished: free them. */
    for (replay *j = f->jobs, *nx; j; j = nx) {
        nx = j->next;
        if (j->dead || j->members == 0) {
            for (hub_sub *s = f->subs; s; s = s->next)
                if (s->job == j) {
                    s->job = NULL;
                    if (s->state == SUB_REPLAYING)
                        s->state = SUB_WAITING;
                }
            job_destroy(j);
        }
    }
    bool due = now_ms() >= f->retry_at_ms;
    switch (f->state) {
    case FEED_DOWN:
        if (!pool_ready(h->pool)) {
            /* Nothing READY: new streams fail fast (503); open ones wait. */
            rstmdb_error *e = NULL;
            for (hub_sub *s = f->subs; s; s = s->next) {
                if (s->state != SUB_STARTING)
                    continue;
                if (!e)
                    e = error_newf(RSTMDB_ERR_CLOSED, "no upstream connection is ready");
                sub_fail_ready(s, e);
            }
            rstmdb_error_free(e);
        } else if (due) {
            feed_subscribe(f);
        } else {
            feed_retry_later(f, (unsigned)(f->retry_at_ms - now_ms()));
        }
        break;
    case FEED_SUBSCRIBING:
        break;
    case FEED_LIVE:
        feed_start_streams(f, due, false);
        if (!due) {
            for (hub_sub *s = f->subs; s; s = s->next)
                if (s->state == SUB_WAITING) {
                    feed_retry_later(f, (unsigned)(f->retry_at_ms - now_ms()));
                    break;
                }
        }
        break;
    }
}

/* ---- kick and timer ---------------------------------------------------------------- */

static void hub_reap(hub *h)
{
    while (h->dead) {
        hub_sub *s = h->dead;
        h->dead = s->dead_next;
        feed *f = s->f;
        if (s->prev)
            s->prev->next = s->next;
        else
            f->subs = s->next;
        if (s->next)
            s->next->prev = s->prev;
        else
            f->subs_tail = s->prev;
        free(s);
        feed_mark(f);
    }
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    hub *h = arg;
    /* Rounds until quiet: a feed's callbacks may mark feeds again; each
     * round's work is bounded by the streams and feeds that exist. */
    for (int round = 0; round < 8 && (h->dead || h->dirty); round++) {
        hub_reap(h);
        feed *list = h->dirty;
        h->dirty = NULL;
        for (feed *f = list; f; f = f->dirty_next)
            f->dirty = false;
        while (list) {
            feed *f = list;
            list = f->dirty_next;
            feed_run(f);
        }
    }
    if (h->dead || h->dirty)
        hub_kick(h);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    hub *h = arg;
    uint64_t now = now_ms(), next = UINT64_MAX;
    for (feed *f = h->feeds; f; f = f->next) {
        if (f->retry_at_ms == 0)
            continue;
        if (f->retry_at_ms <= now) {
            f->retry_at_ms = 0;
            feed_mark(f);
        } else if (f->retry_at_ms < next) {
            next = f->retry_at_ms;
        }
    }
    if (next != UINT64_MAX) {
        uint64_t ms = next - now;
        struct timeval tv = {(time_t)(ms / 1000u), (suseconds_t)((ms % 1000u) * 1000u)};
        evtimer_add(h->timer_ev, &tv);
    }
}

static void pool_state_changed(void *arg, unsigned conn, bool ready)
{
    hub *h = arg;
    (void)conn;
    if (!ready)
        return; /* losses arrive as the watches' on_end */
    for (feed *f = h->feeds; f; f = f->next) {
        if (f->state == FEED_DOWN) {
            f->retry_at_ms = 0;
            feed_mark(f);
        }
    }
}

/* ---- public API --------------------------------------------------------------------- */

int hub_new(hub **out, struct event_base *base, pool *upstream, const hub_config *cfg)
{
    if (!out || !base || !upstream)
        return RSTMDB_ERR_INVALID;
    hub *h = calloc(1, sizeof *h);
    if (!h)
        return RSTMDB_ERR_NOMEM;
    h->base = base;
    h->pool = upstream;
    h->page_limit = cfg && cfg->wal_page_limit ? cfg->wal_page_limit : HUB_DEFAULT_PAGE;
    if (h->page_limit > HUB_MAX_PAGE)
        h->page_limit = HUB_MAX_PAGE;
    h->max_held = cfg && cfg->max_held_events ? cfg->max_held_events : HUB_DEFAULT_MAX_HELD;
    hmap_init(&h->feed_map);
    hmap_init(&h->cache);
    h->kick_ev = event_new(base, -1, 0, kick_cb, h);
    h->timer_ev = evtimer_new(base, timer_cb, h);
    if (!h->kick_ev || !h->timer_ev) {
        if (h->kick_ev)
            event_free(h->kick_ev);
        if (h->timer_ev)
            event_free(h->timer_ev);
        free(h);
        return RSTMDB_ERR_NOMEM;
    }
    pool_set_state_cb(upstream, pool_state_changed, h);
    *out = h;
    return RSTMDB_OK;
}

void hub_free(hub *h)
{
    if (!h)
        return;
    h->freeing = true;
    pool_set_state_cb(h->pool, NULL, NULL);
    /* Tell every stream first (callbacks may call hub_unsubscribe: a no-op on
     * a DEAD stream), then release everything without further callbacks. */
    for (feed *f = h->feeds; f; f = f->next)
        for (hub_sub *s = f->subs; s; s = s->next)
            if (s->state != SUB_DEAD)
                sub_error(s, "SHUTDOWN", "the proxy is shutting down");
    h->dead = NULL; /* freed with their feeds below */
    while (h->feeds)
        feed_destroy(h->feeds);
    cache_clear(h);
    hmap_deinit(&h->cache);
    hmap_deinit(&h->feed_map);
    event_free(h->kick_ev);
    event_free(h->timer_ev);
    free(h);
}

int hub_subscribe(hub *h, const hub_filter *flt, bool has_from, uint64_t from_offset,
                  const hub_sub_ops *ops, void *arg, hub_sub **out)
{
    if (!h || !flt || !ops || !ops->on_ready || !ops->on_event || !ops->on_error || !out)
        return RSTMDB_ERR_INVALID;
    if (h->freeing)
        return RSTMDB_ERR_CLOSED;
    if (!pool_ready(h->pool))
        return RSTMDB_ERR_CLOSED; /* fail fast: the HTTP side answers 503 now */
    subfilter sf;
    int rc = subfilter_init(&sf, flt);
    if (rc != RSTMDB_OK)
        return rc;
    hub_sub *s = calloc(1, sizeof *s);
    if (!s) {
        subfilter_deinit(&sf);
        return RSTMDB_ERR_NOMEM;
    }
    hmap_node *n = hmap_find(&h->feed_map, sf.key, sf.key_len);
    feed *f = n ? (feed *)((char *)n - offsetof(feed, node)) : NULL;
    if (f) {
        subfilter_deinit(&sf);
    } else {
        f = calloc(1, sizeof *f);
        if (!f) {
            subfilter_deinit(&sf);
            free(s);
            return RSTMDB_ERR_NOMEM;
        }
        f->h = h;
        f->sf = sf;
        f->node.key = f->sf.key;
        f->node.key_len = f->sf.key_len;
        if (hmap_insert(&h->feed_map, &f->node) < 0) {
            subfilter_deinit(&f->sf);
            free(f);
            free(s);
            return RSTMDB_ERR_NOMEM;
        }
        f->in_map = true;
        f->next = h->feeds;
        if (h->feeds)
            h->feeds->prev = f;
        h->feeds = f;
    }
    s->h = h;
    s->f = f;
    s->ops = ops;
    s->arg = arg;
    s->state = SUB_STARTING;
    s->has_cursor = has_from;
    s->cursor = has_from ? from_offset : 0;
    /* Append: streams are served in arrival order. */
    s->prev = f->subs_tail;
    if (f->subs_tail)
        f->subs_tail->next = s;
    else
        f->subs = s;
    f->subs_tail = s;
    f->nsubs++;
    h->stats.streams++;
    feed_mark(f); /* on_ready comes from the kick, never from here */
    *out = s;
    return RSTMDB_OK;
}

void hub_unsubscribe(hub_sub *s)
{
    if (!s || s->state == SUB_DEAD)
        return;
    sub_kill(s);
}

void hub_get_stats(const hub *h, hub_stats *out)
{
    *out = h->stats;
}
