/* sync.c: the blocking API: one async client on a private event_base, run
 * until the awaited answer arrives. Owns that base and the per-subscription
 * bounded event queues; it adds no protocol logic of its own.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "client_int.h"
#include "clock.h"
#include "error_int.h"
#include "ops_int.h"
#include "rstmdb/sync.h"

struct rstmdb_sync_sub {
    rstmdb_sync *s;
    rstmdb_sync_sub *prev, *next; /* s->subs */
    rstmdb_sub *sub;              /* NULL once ended */
    rstmdb_event **q;             /* ring of owned events */
    size_t cap, head, count;
    bool ended;
    bool overflowed;
    rstmdb_error *why; /* why it ended (owned), NULL after UNWATCH */
    /* the WATCH answer */
    bool replied;
    bool watch_ok; /* the server accepted the WATCH (the async sub is live) */
    rstmdb_reply *reply;
    int reply_status;
};

struct rstmdb_sync {
    struct event_base *base;
    rstmdb_client *c;
    rstmdb_sync_sub *subs;
    size_t max_events;
};

typedef struct sync_wait {
    bool done;
    int status;
    rstmdb_reply *reply;
} sync_wait;

static void sync_on_reply(rstmdb_client *c, const rstmdb_reply *r, void *arg)
{
    sync_wait *w = arg;
    (void)c;
    w->done = true;
    w->status = rstmdb_reply_status(r);
    w->reply = rstmdb_reply_dup(r);
    if (!w->reply)
        w->status = RSTMDB_ERR_NOMEM;
}

/* Run the private loop until *flag. Every wait ends: requests carry a
 * timeout and the connection fails them when it dies. */
static void sync_run_until(rstmdb_sync *s, const bool *flag)
{
    while (!*flag)
        if (event_base_loop(s->base, EVLOOP_ONCE) < 0)
            break;
}

typedef struct sync_state {
    bool settled;
} sync_state;

static void sync_on_state(rstmdb_client *c, rstmdb_conn_state st, const rstmdb_error *why,
                          void *arg)
{
    sync_state *x = arg;
    (void)c;
    (void)why;
    if (st != RSTMDB_CONN_CONNECTING)
        x->settled = true;
}

int rstmdb_sync_connect(rstmdb_sync **out, const char *address, const rstmdb_options *opts,
                        rstmdb_error **err)
{
    if (!out || !address)
        return error_set(err, RSTMDB_ERR_INVALID,
                         "rstmdb_sync_connect: out and address are required");
    rstmdb_sync *s = calloc(1, sizeof(*s));
    if (!s)
        return error_set(err, RSTMDB_ERR_NOMEM, "out of memory");
    s->max_events = opts ? opts->max_events : 4096;
    s->base = event_base_new();
    if (!s->base) {
        free(s);
        return error_set(err, RSTMDB_ERR_NOMEM, "event_base_new failed");
    }
    int rc = rstmdb_client_new(&s->c, s->base, address, opts, err);
    if (rc != RSTMDB_OK) {
        event_base_free(s->base);
        free(s);
        return rc;
    }
    sync_state st = {false};
    rstmdb_client_set_state_cb(s->c, sync_on_state, &st);
    sync_run_until(s, &st.settled);
    rstmdb_client_set_state_cb(s->c, NULL, NULL);
    if (rstmdb_client_state(s->c) != RSTMDB_CONN_READY) {
        const rstmdb_error *why = rstmdb_client_error(s->c);
        rc = why ? rstmdb_error_status(why) : RSTMDB_ERR_CLOSED;
        if (err && !*err)
            *err = why ? rstmdb_error_dup(why) : NULL;
        rstmdb_sync_close(s);
        return rc;
    }
    *out = s;
    return RSTMDB_OK;
}

static void sync_sub_drop(rstmdb_sync_sub *ss);

void rstmdb_sync_close(rstmdb_sync *s)
{
    if (!s)
        return;
    rstmdb_client_close(s->c);
    rstmdb_client_free(s->c);
    s->c = NULL;
    /* Let the BYE drain: the socket frees itself when written or after its
     * write timeout, and then nothing is left on this base. */
    event_base_dispatch(s->base);
    while (s->subs)
        sync_sub_drop(s->subs);
    event_base_free(s->base);
    free(s);
}

rstmdb_conn_state rstmdb_sync_state(const rstmdb_sync *s)
{
    return s ? rstmdb_client_state(s->c) : RSTMDB_CONN_CLOSED;
}

rstmdb_client *rstmdb_sync_client(rstmdb_sync *s)
{
    return s ? s->c : NULL;
}

static int sync_finish(sync_wait *w, rstmdb_reply **reply)
{
    if (reply)
        *reply = w->reply;
    else
        rstmdb_reply_free(w->reply);
    return w->status;
}

int rstmdb_sync_call_json(rstmdb_sync *s, const char *op, const char *params, size_t params_len,
                          rstmdb_reply **reply)
{
    sync_wait w = {false, 0, NULL};
    if (reply)
        *reply = NULL;
    if (!s)
        return RSTMDB_ERR_INVALID;
    int rc = rstmdb_call_json(s->c, op, params, params_len, sync_on_reply, &w, NULL);
    if (rc != RSTMDB_OK)
        return rc;
    sync_run_until(s, &w.done);
    return sync_finish(&w, reply);
}

int rstmdb_sync_call(rstmdb_sync *s, const char *op, const cJSON *params, rstmdb_reply **reply)
{
    sync_wait w = {false, 0, NULL};
    if (reply)
        *reply = NULL;
    if (!s)
        return RSTMDB_ERR_INVALID;
    int rc = rstmdb_call(s->c, op, params, sync_on_reply, &w, NULL);
    if (rc != RSTMDB_OK)
        return rc;
    sync_run_until(s, &w.done);
    return sync_finish(&w, reply);
}

static int sync_text_call(rstmdb_sync *s, const char *op, int rc, char *text, size_t len,
                          rstmdb_reply **reply)
{
    if (rc != RSTMDB_OK) {
        if (reply)
            *reply = NULL;
        return rc;
    }
    rc = rstmdb_sync_call_json(s, op, text, len, reply);
    free(text);
    return rc;
}

#define SYNC_OP(fn, OP, type, enc)                                \
    int fn(rstmdb_sync *s, const type *req, rstmdb_reply **reply) \
    {                                                             \
        char *t = NULL;                                           \
        size_t n = 0;                                             \
        int rc = enc(req, &t, &n);                                \
        return sync_text_call(s, OP, rc, t, n, reply);            \
    }

SYNC_OP(rstmdb_sync_put_machine, "PUT_MACHINE", rstmdb_put_machine_req, ops_text_put_machine)
SYNC_OP(rstmdb_sync_get_machine, "GET_MACHINE", rstmdb_get_machine_req, ops_text_get_machine)
SYNC_OP(rstmdb_sync_create_instance, "CREATE_INSTANCE", rstmdb_create_instance_req,
        ops_text_create_instance)
SYNC_OP(rstmdb_sync_get_instance, "GET_INSTANCE", rstmdb_get_instance_req, ops_text_get_instance)
SYNC_OP(rstmdb_sync_list_instances, "LIST_INSTANCES", rstmdb_list_instances_req,
        ops_text_list_instances)
SYNC_OP(rstmdb_sync_delete_instance, "DELETE_INSTANCE", rstmdb_delete_instance_req,
        ops_text_delete_instance)
SYNC_OP(rstmdb_sync_apply_event, "APPLY_EVENT", rstmdb_apply_event_req, ops_text_apply_event)
SYNC_OP(rstmdb_sync_batch, "BATCH", rstmdb_batch_req, ops_text_batch)
SYNC_OP(rstmdb_sync_snapshot_instance, "SNAPSHOT_INSTANCE", rstmdb_snapshot_instance_req,
        ops_text_snapshot_instance)
SYNC_OP(rstmdb_sync_wal_read, "WAL_READ", rstmdb_wal_read_req, ops_text_wal_read)
SYNC_OP(rstmdb_sync_compact, "COMPACT", rstmdb_compact_req, ops_text_compact)

int rstmdb_sync_ping(rstmdb_sync *s, rstmdb_reply **reply)
{
    return rstmdb_sync_call_json(s, "PING", "{}", 2, reply);
}

int rstmdb_sync_info(rstmdb_sync *s, rstmdb_reply **reply)
{
    return rstmdb_sync_call_json(s, "INFO", "{}", 2, reply);
}

int rstmdb_sync_list_machines(rstmdb_sync *s, rstmdb_reply **reply)
{
    return rstmdb_sync_call_json(s, "LIST_MACHINES", "{}", 2, reply);
}

int rstmdb_sync_wal_stats(rstmdb_sync *s, rstmdb_reply **reply)
{
    return rstmdb_sync_call_json(s, "WAL_STATS", "{}", 2, reply);
}

int rstmdb_sync_flush_all(rstmdb_sync *s, rstmdb_reply **reply)
{
    return rstmdb_sync_call_json(s, "FLUSH_ALL", "{}", 2, reply);
}

/* ---- subscriptions ---- */

static void sync_sub_on_reply(rstmdb_client *c, const rstmdb_reply *r, void *arg)
{
    rstmdb_sync_sub *ss = arg;
    (void)c;
    ss->replied = true;
    ss->reply_status = rstmdb_reply_status(r);
    ss->watch_ok = ss->reply_status == RSTMDB_OK;
    ss->reply = rstmdb_reply_dup(r);
    if (!ss->reply && ss->reply_status == RSTMDB_OK)
        ss->reply_status = RSTMDB_ERR_NOMEM;
}

static void sync_sub_overflow(rstmdb_sync_sub *ss, int status, const char *msg)
{
    if (ss->overflowed)
        return;
    ss->overflowed = true;
    ss->why = error_newf(status, "%s", msg);
    rstmdb_unwatch(ss->sub);
}

static void sync_sub_on_event(rstmdb_sub *sub, const rstmdb_event *ev, void *arg)
{
    rstmdb_sync_sub *ss = arg;
    (void)sub;
    if (ss->overflowed)
        return;
    if (ss->count == ss->cap) {
        sync_sub_overflow(ss, RSTMDB_ERR_PROTOCOL, "event buffer full: the consumer fell behind");
        return;
    }
    rstmdb_event *copy = rstmdb_event_dup(ev);
    if (!copy) {
        sync_sub_overflow(ss, RSTMDB_ERR_NOMEM, "out of memory buffering an event");
        return;
    }
    ss->q[(ss->head + ss->count) % ss->cap] = copy;
    ss->count++;
}

static void sync_sub_on_end(rstmdb_sub *sub, const rstmdb_error *why, void *arg)
{
    rstmdb_sync_sub *ss = arg;
    (void)sub;
    ss->ended = true;
    ss->sub = NULL;
    if (!ss->why && why)
        ss->why = rstmdb_error_dup(why);
}

static void sync_sub_unlink(rstmdb_sync_sub *ss)
{
    rstmdb_sync *s = ss->s;
    if (ss->prev)
        ss->prev->next = ss->next;
    else if (s->subs == ss)
        s->subs = ss->next;
    if (ss->next)
        ss->next->prev = ss->prev;
}

/* Free a handle; its async subscription must be over (or the client gone). */
static void sync_sub_drop(rstmdb_sync_sub *ss)
{
    sync_sub_unlink(ss);
    while (ss->count) {
        rstmdb_event_free(ss->q[ss->head]);
        ss->head = (ss->head + 1) % ss->cap;
        ss->count--;
    }
    free(ss->q);
    rstmdb_error_free(ss->why);
    rstmdb_reply_free(ss->reply);
    free(ss);
}

int rstmdb_sync_watch_json(rstmdb_sync *s, const char *op, const char *params, size_t params_len,
                           rstmdb_sync_sub **sub, rstmdb_reply **reply)
{
    if (reply)
        *reply = NULL;
    if (!s || !sub)
        return RSTMDB_ERR_INVALID;
    *sub = NULL;
    rstmdb_sync_sub *ss = calloc(1, sizeof(*ss));
    if (!ss)
        return RSTMDB_ERR_NOMEM;
    ss->s = s;
    ss->cap = s->max_events;
    ss->q = calloc(ss->cap, sizeof(*ss->q));
    if (!ss->q) {
        free(ss);
        return RSTMDB_ERR_NOMEM;
    }
    int rc = rstmdb_watch_json(s->c, op, params, params_len, sync_sub_on_reply, sync_sub_on_event,
                               sync_sub_on_end, ss, &ss->sub);
    if (rc != RSTMDB_OK) {
        free(ss->q);
        free(ss);
        return rc;
    }
    ss->next = s->subs;
    if (s->subs)
        s->subs->prev = ss;
    s->subs = ss;
    sync_run_until(s, &ss->replied);
    rc = ss->reply_status;
    if (reply) {
        *reply = ss->reply;
        ss->reply = NULL;
    }
    if (rc != RSTMDB_OK) {
        if (ss->watch_ok && ss->sub) {
            /* Subscribed, but keeping the answer failed (OOM): undo it. */
            rstmdb_unwatch(ss->sub);
            sync_run_until(s, &ss->ended);
        }
        ss->sub = NULL; /* released by the async side */
        sync_sub_drop(ss);
        return rc;
    }
    *sub = ss;
    return RSTMDB_OK;
}

/* sync_text_call for the typed WATCH_*: takes `text`; a request that failed
 * to encode still leaves *sub and *reply NULL, as sync.h promises. */
static int sync_watch_text(rstmdb_sync *s, const char *op, int rc, char *text, size_t len,
                           rstmdb_sync_sub **sub, rstmdb_reply **reply)
{
    if (rc != RSTMDB_OK) {
        if (reply)
            *reply = NULL;
        if (sub)
            *sub = NULL;
        return rc;
    }
    rc = rstmdb_sync_watch_json(s, op, text, len, sub, reply);
    free(text);
    return rc;
}

int rstmdb_sync_watch_instance(rstmdb_sync *s, const rstmdb_watch_instance_req *req,
                               rstmdb_sync_sub **sub, rstmdb_reply **reply)
{
    char *t = NULL;
    size_t n = 0;
    int rc = ops_text_watch_instance(req, &t, &n);
    return sync_watch_text(s, "WATCH_INSTANCE", rc, t, n, sub, reply);
}

int rstmdb_sync_watch_all(rstmdb_sync *s, const rstmdb_watch_all_req *req, rstmdb_sync_sub **sub,
                          rstmdb_reply **reply)
{
    char *t = NULL;
    size_t n = 0;
    int rc = ops_text_watch_all(req, &t, &n);
    return sync_watch_text(s, "WATCH_ALL", rc, t, n, sub, reply);
}

const char *rstmdb_sync_sub_id(const rstmdb_sync_sub *sub)
{
    return sub && sub->sub ? rstmdb_sub_id(sub->sub) : NULL;
}

const rstmdb_error *rstmdb_sync_sub_error(const rstmdb_sync_sub *sub)
{
    return sub ? sub->why : NULL;
}

static void sync_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    bool *fired = arg;
    (void)fd;
    (void)what;
    *fired = true;
}

int rstmdb_sync_next_event(rstmdb_sync *s, rstmdb_sync_sub *sub, int timeout_ms,
                           rstmdb_event **event)
{
    if (!s || !sub || !event)
        return RSTMDB_ERR_INVALID;
    *event = NULL;
    /* Take in what already arrived. */
    event_base_loop(s->base, EVLOOP_NONBLOCK);
    bool fired = false;
    struct event *timer = NULL;
    if (sub->count == 0 && !sub->ended && timeout_ms != 0) {
        if (timeout_ms > 0) {
            timer = evtimer_new(s->base, sync_timer_cb, &fired);
            if (!timer)
                return RSTMDB_ERR_NOMEM;
            struct timeval tv = clock_tv_ms(timeout_ms);
            evtimer_add(timer, &tv);
        }
        while (sub->count == 0 && !sub->ended && !fired)
            if (event_base_loop(s->base, EVLOOP_ONCE) < 0)
                break;
        if (timer)
            event_free(timer);
    }
    if (sub->count > 0) {
        *event = sub->q[sub->head];
        sub->head = (sub->head + 1) % sub->cap;
        sub->count--;
        return RSTMDB_OK;
    }
    if (sub->ended)
        return sub->why ? rstmdb_error_status(sub->why) : RSTMDB_ERR_CANCELLED;
    return RSTMDB_ERR_TIMEOUT;
}

int rstmdb_sync_unwatch(rstmdb_sync *s, rstmdb_sync_sub *sub)
{
    if (!s || !sub)
        return RSTMDB_ERR_INVALID;
    int rc = RSTMDB_OK;
    if (!sub->ended && sub->sub) {
        rstmdb_unwatch(sub->sub);
        sync_run_until(s, &sub->ended);
        if (sub->why && !sub->overflowed)
            rc = rstmdb_error_status(sub->why);
    }
    sync_sub_drop(sub);
    return rc;
}
