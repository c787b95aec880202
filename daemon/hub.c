/* hub.c: the subscription hub object. Owns the feeds' map, the kick (one
 * zero-timeout event that runs all deferred work, so that no subscriber is
 * ever called back from inside hub_subscribe or hub_unsubscribe), the retry
 * timer and the pool's state listener. Feeds and subscribers are feed.c's,
 * replay jobs replay.c's, the instance cache instcache.c's. */
#include "hub.h"
#include "clock.h"

#include <event2/event.h>
#include <stdlib.h>
#include <time.h>

#include "hub_int.h"

void hub_kick(hub *h)
{
    if (!h->freeing)
        event_active(h->kick_ev, EV_TIMEOUT, 0);
}

void hub_reap(hub *h)
{
    while (h->dead.head) {
        hub_sub *s = h->dead.head;
        h->dead.head = s->next;
        if (h->dead.head)
            h->dead.head->prev = NULL;
        else
            h->dead.tail = NULL;
        h->dead.n--;
        feed_mark(s->f);
        free(s);
    }
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    hub *h = arg;
    /* Rounds until quiet: a feed's callbacks may mark feeds again; each
     * round's work is bounded by the subscribers and feeds that exist. */
    for (int round = 0; round < 8 && (h->dead.head || h->dirty); round++) {
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
    if (h->dead.head || h->dirty)
        hub_kick(h);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    hub *h = arg;
    uint64_t now = clock_mono_ms(), next = UINT64_MAX;
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
        struct timeval tv = clock_tv_ms(ms);
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

/* ---- public API ------------------------------------------------------------ */

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
    instcache_init(&h->cache);
    h->kick_ev = event_new(base, -1, 0, kick_cb, h);
    h->timer_ev = evtimer_new(base, timer_cb, h);
    if (!h->kick_ev || !h->timer_ev) {
        if (h->kick_ev)
            event_free(h->kick_ev);
        if (h->timer_ev)
            event_free(h->timer_ev);
        instcache_deinit(&h->cache);
        hmap_deinit(&h->feed_map);
        free(h);
        return RSTMDB_ERR_NOMEM;
    }
    pool_set_state_cb(upstream, pool_state_changed, h);
    *out = h;
    return RSTMDB_OK;
}

static void end_all(sublist *l)
{
    while (l->head)
        sub_error(l->head, "SHUTDOWN", "the proxy is shutting down");
}

void hub_free(hub *h)
{
    if (!h)
        return;
    h->freeing = true;
    pool_set_state_cb(h->pool, NULL, NULL);
    /* Tell every subscriber first (callbacks may call hub_unsubscribe: a
     * no-op on a DEAD one), then release everything without callbacks. */
    for (feed *f = h->feeds; f; f = f->next) {
        end_all(&f->fresh);
        end_all(&f->starting);
        end_all(&f->live);
        end_all(&f->waiting);
        for (replay *j = f->jobs; j; j = j->next)
            end_all(&j->members);
    }
    while (h->feeds)
        feed_destroy(h->feeds);
    while (h->dead.head) {
        hub_sub *s = h->dead.head;
        h->dead.head = s->next;
        free(s);
    }
    instcache_deinit(&h->cache);
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
    subfilter sf;
    int rc = subfilter_init(&sf, flt);
    if (rc != RSTMDB_OK)
        return rc;
    hub_sub *s = calloc(1, sizeof *s);
    if (!s) {
        subfilter_deinit(&sf);
        return RSTMDB_ERR_NOMEM;
    }
    feed *f = feed_get(h, &sf);
    if (!f) {
        free(s);
        return RSTMDB_ERR_NOMEM;
    }
    s->h = h;
    s->f = f;
    s->ops = ops;
    s->arg = arg;
    s->has_cursor = has_from;
    s->cursor = has_from ? from_offset : 0;
    s->state = SUB_FRESH;
    sub_move(s, SUB_FRESH, NULL);
    f->nsubs++;
    h->stats.streams++;
    feed_mark(f); /* on_ready / on_waiting come from the kick, never from here */
    *out = s;
    return RSTMDB_OK;
}

void hub_unsubscribe(hub_sub *s)
{
    if (s)
        sub_move(s, SUB_DEAD, NULL);
}

void hub_get_stats(const hub *h, hub_stats *out)
{
    *out = h->stats;
}

const char *hub_instance_machine(const hub *h, const char *instance_id)
{
    const inst_info *ii = h ? instcache_get(&h->cache, instance_id) : NULL;
    return ii ? ii->machine : NULL;
}

int hub_instance_learn(hub *h, const char *instance_id, const char *result, size_t len)
{
    char *tok = NULL, *name = NULL;
    uint64_t version = 0;
    if (h == NULL || walrec_instance_info(result, len, &tok, &name, &version) < 0)
        return -1;
    instcache_put(&h->cache, instance_id, tok, name, version);
    return 0;
}

void hub_instance_forget(hub *h, const char *instance_id)
{
    if (h != NULL)
        instcache_forget(&h->cache, instance_id);
}
