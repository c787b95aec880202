/* feed.c: feeds and their subscribers. A feed is one upstream WATCH per
 * distinct normalized filter; its subscribers are fanned out from it. A
 * subscriber's state is the list it is on, and sub_move is the only place
 * that changes either.
 *
 * Invariant per subscriber: `cursor` is the lowest WAL offset it may still
 * receive; every event below it was delivered or is not its own. Each
 * delivery sets cursor = wal_offset + 1, so ids strictly increase and a
 * duplicate (idempotent replay, a WAL record also seen live) is dropped.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "hub_int.h"

/* ---- subscribers ---------------------------------------------------------- */

static void sublist_remove(sublist *l, hub_sub *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        l->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        l->tail = s->prev;
    s->prev = s->next = NULL;
    l->n--;
}

static void sublist_append(sublist *l, hub_sub *s)
{
    s->next = NULL;
    s->prev = l->tail;
    if (l->tail)
        l->tail->next = s;
    else
        l->head = s;
    l->tail = s;
    l->n++;
}

static sublist *sublist_of(hub_sub *s, sub_state st, replay *job)
{
    switch (st) {
    case SUB_FRESH:
        return &s->f->fresh;
    case SUB_STARTING:
        return &s->f->starting;
    case SUB_REPLAYING:
        return &job->members;
    case SUB_LIVE:
        return &s->f->live;
    case SUB_WAITING:
        return &s->f->waiting;
    case SUB_DEAD:
        break;
    }
    return &s->h->dead;
}

/* The one state transition. Entering DEAD keeps the feed's counts right and
 * schedules the free; a DEAD subscriber never moves again. */
void sub_move(hub_sub *s, sub_state to, replay *job)
{
    if (s->state == SUB_DEAD)
        return;
    if (s->list)
        sublist_remove(s->list, s);
    s->state = to;
    s->job = to == SUB_REPLAYING ? job : NULL;
    s->list = sublist_of(s, to, job);
    sublist_append(s->list, s);
    if (to == SUB_DEAD) {
        if (s->f->nsubs > 0)
            s->f->nsubs--;
        if (s->h->stats.streams > 0)
            s->h->stats.streams--;
        feed_mark(s->f);
    }
}

void sub_fail_ready(hub_sub *s, const rstmdb_error *err)
{
    const hub_sub_ops *ops = s->ops;
    void *arg = s->arg;
    sub_move(s, SUB_DEAD, NULL);
    ops->on_ready(arg, err);
}

void sub_error(hub_sub *s, const char *code, const char *msg)
{
    const hub_sub_ops *ops = s->ops;
    void *arg = s->arg;
    sub_move(s, SUB_DEAD, NULL);
    ops->on_error(arg, code, msg);
}

/* Deliver one event if it is above the subscriber's cursor. */
void sub_deliver(hub_sub *s, const hub_event *ev)
{
    if (!walrec_cursor_take(&s->cursor, ev->wal_offset))
        return; /* already delivered (or before the stream's start): never twice */
    s->ops->on_event(s->arg, ev);
}

/* ---- feeds -------------------------------------------------------------------- */

void feed_mark(feed *f)
{
    if (!f->dirty) {
        f->dirty = true;
        f->dirty_next = f->h->dirty;
        f->h->dirty = f;
    }
    hub_kick(f->h);
}

/* Wake up after `ms` to retry something on feed f. */
void feed_retry_later(feed *f, unsigned ms)
{
    f->retry_at_ms = clock_mono_ms() + ms;
    struct timeval tv = clock_tv_ms(ms);
    if (!evtimer_pending(f->h->timer_ev, NULL))
        evtimer_add(f->h->timer_ev, &tv);
}

feed *feed_get(hub *h, subfilter *sf)
{
    hmap_node *n = hmap_find(&h->feed_map, sf->key, sf->key_len);
    if (n) {
        subfilter_deinit(sf);
        return (feed *)((char *)n - offsetof(feed, node));
    }
    feed *f = calloc(1, sizeof *f);
    if (!f) {
        subfilter_deinit(sf);
        return NULL;
    }
    f->h = h;
    f->sf = *sf;
    f->node.key = f->sf.key;
    f->node.key_len = f->sf.key_len;
    if (hmap_insert(&h->feed_map, &f->node) < 0) {
        subfilter_deinit(&f->sf);
        free(f);
        return NULL;
    }
    f->in_map = true;
    f->next = h->feeds;
    if (h->feeds)
        h->feeds->prev = f;
    h->feeds = f;
    return f;
}

static void free_list(sublist *l)
{
    while (l->head) {
        hub_sub *s = l->head;
        l->head = s->next;
        free(s);
    }
    l->tail = NULL;
    l->n = 0;
}

void feed_destroy(feed *f)
{
    hub *h = f->h;
    while (f->jobs) {
        free_list(&f->jobs->members);
        job_destroy(f->jobs);
    }
    if (f->watch) {
        pool_watch_cancel(f->watch); /* UNWATCH upstream */
        f->watch = NULL;
        if (h->stats.upstream_subs > 0)
            h->stats.upstream_subs--;
    }
    free_list(&f->fresh);
    free_list(&f->starting);
    free_list(&f->live);
    free_list(&f->waiting);
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

/* A subscriber with a cursor catches up through a replay job. Jobs are
 * shared when one can serve this cursor: sub_deliver drops what lies below
 * each member's own cursor, so one WAL pass from the lowest cursor serves
 * them all (10,000 streams resuming after a loss need not make 10,000
 * WAL_READ chains). A job not started yet moves down to the lowest cursor;
 * a running one takes streams at or above where it reads (its held events
 * cover them since it started). Only within one WAL segment: compaction
 * deletes whole segments, so members of a job share the WAL_COMPACTED
 * verdict. Jobs are few (one per distinct resume point), so the walk is
 * short. */
static void sub_replay(hub_sub *s)
{
    feed *f = s->f;
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
    if (!j && !(j = job_new(f, s->cursor))) {
        sub_error(s, "INTERNAL_ERROR", "out of memory");
        return;
    }
    sub_move(s, SUB_REPLAYING, j);
}

/* Start one subscriber that has not had on_ready, on a LIVE feed.
 * `just_subscribed`: the WATCH was answered this instant. Events the server
 * pushed between registering the WATCH and answering it cannot be routed
 * (their subscription id is not known yet), so new streams then catch up
 * from the WATCH's offset through one shared replay instead of going LIVE
 * blindly. Only for WATCH_ALL, whose offset is the WAL head (a one-page
 * read): WATCH_INSTANCE reports the instance's last record, possibly far
 * back, and a fresh stream there has no start to honour more exactly than
 * "around the subscription". */
static void sub_start(hub_sub *s, bool just_subscribed)
{
    feed *f = s->f;
    if (!s->has_cursor) {
        s->cursor = f->has_pos ? f->pos : 0;
        s->has_cursor = true;
        if (!just_subscribed || !f->has_pos || f->sf.instance_id) {
            sub_move(s, SUB_LIVE, NULL);
            s->ops->on_ready(s->arg, NULL);
            return;
        }
    }
    sub_replay(s); /* moves it off the starting lists before the callback */
    if (s->state == SUB_REPLAYING)
        s->ops->on_ready(s->arg, NULL);
}

/* Put the subscribers of a LIVE feed that need it on their way: those not
 * started yet, and (`include_waiting`) those that lost the feed. Each one
 * leaves the list it is taken from, so the work is what is pending, never
 * the feed's whole audience. */
static void feed_start_streams(feed *f, bool include_waiting, bool just_subscribed)
{
    hub_sub *s;
    while (f->state == FEED_LIVE && (s = f->starting.head))
        sub_start(s, just_subscribed);
    while (f->state == FEED_LIVE && (s = f->fresh.head))
        sub_start(s, just_subscribed);
    while (include_waiting && f->state == FEED_LIVE && (s = f->waiting.head))
        sub_replay(s);
    for (replay *k = f->jobs; k; k = k->next)
        if (!k->dead && k->state == REPLAY_NEW && k->members.n > 0)
            job_start(k);
}

/* No upstream connection for this feed: subscribers not told yet hear it
 * once (an SSE stream then answers 200 and waits with heartbeats). */
static void feed_tell_waiting(feed *f)
{
    hub_sub *s;
    while ((s = f->fresh.head)) {
        sub_move(s, SUB_STARTING, NULL);
        if (s->ops->on_waiting)
            s->ops->on_waiting(s->arg);
    }
}

/* The upstream refused the feed: subscribers not ready yet fail with its
 * error (HTTP answers it before any stream), the others end with
 * UPSTREAM_ERROR and `msg`. */
static void feed_fail(feed *f, const rstmdb_error *e, const char *msg)
{
    while (f->fresh.head)
        sub_fail_ready(f->fresh.head, e);
    while (f->starting.head)
        sub_fail_ready(f->starting.head, e);
    while (f->waiting.head)
        sub_error(f->waiting.head, "UPSTREAM_ERROR", msg);
    while (f->live.head)
        sub_error(f->live.head, "UPSTREAM_ERROR", msg);
    for (replay *j = f->jobs; j; j = j->next)
        if (!j->dead)
            job_abort(j, "UPSTREAM_ERROR", msg);
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
    if (reply_is_transport(r)) {
        /* Nobody fails for a lost connection: streams wait for the next. */
        feed_retry_later(f, HUB_RETRY_MS);
        feed_mark(f);
        return;
    }
    const rstmdb_error *e = rstmdb_reply_error(r);
    char msg[512];
    snprintf(msg, sizeof msg, "upstream refused the subscription: %s: %s",
             e ? rstmdb_error_code_str(e) : "?", e ? rstmdb_error_message(e) : "?");
    feed_fail(f, e, msg);
    feed_mark(f);
}

/* Every live subscriber of the feed goes back to WAITING (it resumes from
 * its cursor through the WAL once the feed is back). */
static void feed_lose_live(feed *f)
{
    for (replay *j = f->jobs; j; j = j->next)
        if (!j->dead)
            job_abort(j, NULL, NULL);
    while (f->live.head)
        sub_move(f->live.head, SUB_WAITING, NULL);
}

static void feed_watch_event(void *arg, const rstmdb_event *ev)
{
    feed *f = arg;
    hub *h = f->h;
    size_t len = 0;
    const char *data = rstmdb_event_body(ev, &len);
    uint64_t off = rstmdb_event_wal_offset(ev);
    h->stats.events_in++;
    if (!data) {
        /* The library could not cut the body (out of memory): never drop
         * it silently. Every stream of the feed catches up through the WAL,
         * which holds this event, exactly as after an upstream loss. */
        feed_lose_live(f);
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
    hub_event he = {++h->seq, off, data, len};
    for (hub_sub *s = f->live.head, *nx; s; s = nx) {
        nx = s->next; /* a callback may end its own stream */
        sub_deliver(s, &he);
    }
}

static void feed_watch_end(void *arg, const rstmdb_error *why)
{
    feed *f = arg;
    hub *h = f->h;
    (void)why;
    f->watch = NULL;
    if (h->stats.upstream_subs > 0)
        h->stats.upstream_subs--;
    f->state = FEED_DOWN;
    feed_lose_live(f); /* replays restart after the resubscribe; cursors are kept */
    feed_mark(f);
}

const pool_watch_ops feed_watch_ops = {feed_watch_reply, feed_watch_event, feed_watch_end};

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
    if (rc == RSTMDB_ERR_CLOSED) {
        feed_tell_waiting(f);
        return;
    }
    char msg[160];
    snprintf(msg, sizeof msg, "cannot subscribe upstream: %s", rstmdb_strerror(rc));
    rstmdb_error *e = rstmdb_error_new(rc, "%s", msg);
    feed_fail(f, e, msg);
    rstmdb_error_free(e);
}

/* Everything a feed needs, run from the kick (never inside a user call). */
void feed_run(feed *f)
{
    hub *h = f->h;
    hub_reap(h); /* no DEAD subscriber of f may outlive f on h->dead */
    if (f->nsubs == 0) {
        feed_destroy(f);
        return;
    }
    /* Jobs left without members, or finished: free them. */
    for (replay *j = f->jobs, *nx; j; j = nx) {
        nx = j->next;
        if (j->dead || j->members.n == 0) {
            while (j->members.head)
                sub_move(j->members.head, SUB_WAITING, NULL);
            job_destroy(j);
        }
    }
    bool due = clock_mono_ms() >= f->retry_at_ms;
    switch (f->state) {
    case FEED_DOWN:
        if (!pool_ready(h->pool))
            feed_tell_waiting(f); /* subscribed when a connection is READY */
        else if (due)
            feed_subscribe(f);
        else
            feed_retry_later(f, (unsigned)(f->retry_at_ms - clock_mono_ms()));
        break;
    case FEED_SUBSCRIBING:
        break;
    case FEED_LIVE:
        feed_start_streams(f, due, false);
        if (!due && f->waiting.n > 0)
            feed_retry_later(f, (unsigned)(f->retry_at_ms - clock_mono_ms()));
        break;
    }
}
