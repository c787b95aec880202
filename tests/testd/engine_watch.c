/* engine_watch.c: WATCH_INSTANCE / WATCH_ALL / UNWATCH and the event
 * fan-out. Subscriptions are indexed by instance (a watcher list hanging
 * off the instance) and in one WATCH_ALL list, so an event costs one walk
 * of its instance's watchers plus the WATCH_ALL list; each delivery is the
 * shared event text with the subscription id spliced in (no re-rendering
 * per subscriber). Never touches sockets. */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "params.h"

void sub_free(sub *s)
{
    if (!s)
        return;
    jval_free(s->f_machines);
    jval_free(s->f_from);
    jval_free(s->f_to);
    jval_free(s->f_events);
    free(s);
}

static void list_unlink(engine *e, sub *s)
{
    if (!s->delivers)
        return;
    sub **head = s->is_all ? &e->all_subs : (s->inst ? &s->inst->watchers : NULL);
    if (s->list_prev)
        s->list_prev->list_next = s->list_next;
    else if (head && *head == s)
        *head = s->list_next;
    if (s->list_next)
        s->list_next->list_prev = s->list_prev;
    s->list_next = s->list_prev = NULL;
    s->delivers = false;
}

static void conn_unlink(conn *c, sub *s)
{
    if (s->conn_prev)
        s->conn_prev->conn_next = s->conn_next;
    else if (c->subs == s)
        c->subs = s->conn_next;
    if (s->conn_next)
        s->conn_next->conn_prev = s->conn_prev;
    s->conn_next = s->conn_prev = NULL;
}

static void sub_destroy(engine *e, conn *c, sub *s)
{
    list_unlink(e, s);
    conn_unlink(c, s);
    smap_del(&e->subs, s->id, strlen(s->id));
    sub_free(s);
}

void watch_drop_conn(engine *e, conn *c)
{
    while (c->subs)
        sub_destroy(e, c, c->subs);
}

void watch_detach_instance(engine *e, instance *in)
{
    (void)e;
    sub *s = in->watchers;
    while (s) {
        sub *n = s->list_next;
        s->list_next = s->list_prev = NULL;
        s->delivers = false;
        s->inst = NULL;
        s = n;
    }
    in->watchers = NULL;
}

/* Register a new subscription on x's connection. Inside a BATCH the real
 * server registers it in the session but drops the receiver, so it is
 * never fed: we keep it out of the delivery lists. */
static sub *sub_create(opctx *x, bool is_all, bool include_ctx, instance *in)
{
    sub *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    char uuid[37];
    engine_uuid4(uuid);
    memcpy(s->id, "sub-", 4);
    memcpy(s->id + 4, uuid, 37);
    s->conn_id = x->c->id;
    s->is_all = is_all;
    s->include_ctx = include_ctx;
    s->in_session = true;
    s->inst = in;
    if (smap_put(&x->e->subs, s->id, strlen(s->id), s) != 0) {
        free(s);
        return NULL;
    }
    s->conn_next = x->c->subs;
    if (x->c->subs)
        x->c->subs->conn_prev = s;
    x->c->subs = s;
    if (!x->in_batch) {
        s->delivers = true;
        sub **head = is_all ? &x->e->all_subs : &in->watchers;
        s->list_next = *head;
        if (*head)
            (*head)->list_prev = s;
        *head = s;
    }
    return s;
}

/* The real server decodes WATCH params as a struct (so an array works
 * positionally), but its event forwarder reads params["include_ctx"] again,
 * true when missing: with ["w-1", false] the events still carry ctx. */
static bool forwarder_include_ctx(const jval *params, bool parsed)
{
    return params && params->t == JV_ARRAY ? true : parsed;
}

int op_watch_instance(opctx *x, const jval *params)
{
    static const pfield f[] = {
        {"instance_id", PT_STRING}, {"include_ctx", PT_BOOL_TRUE}, {"from_offset", PT_OPT_U64}};
    pval v[3];
    char *err;
    if (params_struct(params, "WatchInstanceParams", f, 3, v, &err) != 0)
        return op_bad_request(x, err);
    instance *in = smap_get(&x->e->instances, v[0].s, v[0].slen);
    if (!in)
        return op_fail(x, EC_INSTANCE_NOT_FOUND, "core error: instance not found: %s", v[0].s);
    /* from_offset is type-checked above and then ignored: no replay. */
    sub *s = sub_create(x, false, forwarder_include_ctx(params, v[1].b), in);
    if (!s)
        return OP_NOMEM;
    strbuf *b = &x->res;
    strbuf_puts(b, "{\"current_state\":");
    strbuf_jstr(b, in->state, strlen(in->state));
    strbuf_puts(b, ",\"current_wal_offset\":");
    strbuf_u64(b, in->last_wal_offset);
    strbuf_puts(b, ",\"instance_id\":");
    strbuf_jstr(b, in->id, in->idlen);
    strbuf_printf(b, ",\"subscription_id\":\"%s\"}", s->id);
    return OP_OK;
}

int op_watch_all(opctx *x, const jval *params)
{
    static const pfield f[] = {{"include_ctx", PT_BOOL_TRUE}, {"from_offset", PT_OPT_U64},
                               {"machines", PT_STRVEC},       {"from_states", PT_STRVEC},
                               {"to_states", PT_STRVEC},      {"events", PT_STRVEC}};
    pval v[6];
    char *err;
    if (params_struct_nullable(params, x->e->compat == ENGINE_COMPAT_0_3, "WatchAllParams", f, 6, v,
                               &err) != 0)
        return op_bad_request(x, err);
    jval *filters[4] = {NULL, NULL, NULL, NULL};
    for (int i = 0; i < 4; i++) {
        const jval *a = v[2 + i].v;
        if (a && a->v.arr.n > 0 && !(filters[i] = jval_copy(a))) {
            for (int k = 0; k < i; k++)
                jval_free(filters[k]);
            return OP_NOMEM;
        }
    }
    sub *s = sub_create(x, true, forwarder_include_ctx(params, v[0].b), NULL);
    if (!s) {
        for (int k = 0; k < 4; k++)
            jval_free(filters[k]);
        return OP_NOMEM;
    }
    s->f_machines = filters[0];
    s->f_from = filters[1];
    s->f_to = filters[2];
    s->f_events = filters[3];
    strbuf_printf(&x->res, "{\"subscription_id\":\"%s\",\"wal_offset\":", s->id);
    strbuf_u64(&x->res, wal_next_offset(x->e->wal));
    strbuf_putc(&x->res, '}');
    return OP_OK;
}

int op_unwatch(opctx *x, const jval *params)
{
    static const pfield f[] = {{"subscription_id", PT_STRING}};
    pval v[1];
    char *err;
    if (params_struct(params, "UnwatchParams", f, 1, v, &err) != 0)
        return op_bad_request(x, err);
    sub *s = smap_get(&x->e->subs, v[0].s, v[0].slen);
    bool own = s && s->conn_id == x->c->id;
    bool removed = own && s->in_session;
    /* The real server stops the forwarder only for a top-level UNWATCH,
     * finding the id with params["subscription_id"]: inside BATCH, or with
     * array params (["sub-..."]), the session forgets the subscription
     * (removed:true) but its events keep flowing. */
    bool stops_forwarder = !x->in_batch && !(params && params->t == JV_ARRAY);
    if (own) {
        if (stops_forwarder || !s->delivers)
            sub_destroy(x->e, x->c, s);
        else
            s->in_session = false;
    }
    strbuf_puts(&x->res, "{\"removed\":");
    strbuf_puts(&x->res, removed ? "true" : "false");
    strbuf_puts(&x->res, ",\"subscription_id\":");
    strbuf_jstr(&x->res, v[0].s, v[0].slen);
    strbuf_putc(&x->res, '}');
    return OP_OK;
}

static bool filter_ok(const jval *list, const char *s, size_t n)
{
    if (!list)
        return true;
    for (size_t i = 0; i < list->v.arr.n; i++) {
        const jval *it = list->v.arr.items[i];
        if (it->v.str.len == n && memcmp(it->v.str.s, s, n) == 0)
            return true;
    }
    return false;
}

static const char event_prefix[] = "{\"type\":\"event\",\"subscription_id\":\"";

static int deliver(opctx *x, const sub *s, const strbuf *with_ctx, const strbuf *without_ctx)
{
    engine_out *out = x->out;
    if (out->ndeliveries >= x->e->max_deliveries)
        return 0; /* lagging subscriber: dropped silently, as the real rings do */
    const strbuf *tail = s->include_ctx ? with_ctx : without_ctx;
    size_t plen = sizeof(event_prefix) - 1, idlen = strlen(s->id);
    size_t len = plen + idlen + tail->len;
    char *p = malloc(len + 1);
    if (!p)
        return -1;
    memcpy(p, event_prefix, plen);
    memcpy(p + plen, s->id, idlen);
    memcpy(p + plen + idlen, tail->data, tail->len);
    p[len] = '\0';
    if ((out->ndeliveries & (out->ndeliveries - 1)) == 0 || out->ndeliveries == 0) {
        /* grow at powers of two */
        size_t nc = out->ndeliveries ? out->ndeliveries * 2 : 8;
        engine_delivery *d = realloc(out->deliveries, nc * sizeof(*d));
        if (!d) {
            free(p);
            return -1;
        }
        out->deliveries = d;
    }
    out->deliveries[out->ndeliveries].conn_id = s->conn_id;
    out->deliveries[out->ndeliveries].payload = p;
    out->deliveries[out->ndeliveries].len = len;
    out->ndeliveries++;
    return 0;
}

int watch_broadcast(opctx *x, const instance *in, uint64_t wal_offset, const char *from_state,
                    const char *to_state, const char *event, size_t evlen, const jval *payload,
                    const jval *ctx)
{
    engine *e = x->e;
    if (!in->watchers && !e->all_subs)
        return OP_OK;
    strbuf with, without;
    strbuf_init(&with, TESTD_TEXT_MAX);
    strbuf_init(&without, TESTD_TEXT_MAX);
    strbuf_puts(&without, "\",\"instance_id\":");
    strbuf_jstr(&without, in->id, in->idlen);
    strbuf_puts(&without, ",\"machine\":");
    strbuf_jstr(&without, in->machine, strlen(in->machine));
    strbuf_printf(&without, ",\"version\":%u,\"wal_offset\":", in->version);
    strbuf_u64(&without, wal_offset);
    strbuf_puts(&without, ",\"from_state\":");
    strbuf_jstr(&without, from_state, strlen(from_state));
    strbuf_puts(&without, ",\"to_state\":");
    strbuf_jstr(&without, to_state, strlen(to_state));
    strbuf_puts(&without, ",\"event\":");
    strbuf_jstr(&without, event, evlen);
    strbuf_puts(&without, ",\"payload\":");
    if (payload)
        jval_print(&without, payload);
    else
        strbuf_puts(&without, "null");
    strbuf_add(&with, without.data, without.len);
    strbuf_puts(&with, ",\"ctx\":");
    jval_print(&with, ctx);
    strbuf_putc(&with, '}');
    strbuf_putc(&without, '}');
    int rc = OP_OK;
    if (strbuf_failed(&with) || strbuf_failed(&without))
        rc = OP_NOMEM;
    for (const sub *s = in->watchers; s && rc == OP_OK; s = s->list_next)
        if (deliver(x, s, &with, &without) != 0)
            rc = OP_NOMEM;
    size_t mlen = strlen(in->machine), flen = strlen(from_state), tlen = strlen(to_state);
    for (const sub *s = e->all_subs; s && rc == OP_OK; s = s->list_next) {
        if (!filter_ok(s->f_machines, in->machine, mlen) ||
            !filter_ok(s->f_from, from_state, flen) || !filter_ok(s->f_to, to_state, tlen) ||
            !filter_ok(s->f_events, event, evlen))
            continue;
        if (deliver(x, s, &with, &without) != 0)
            rc = OP_NOMEM;
    }
    strbuf_deinit(&with);
    strbuf_deinit(&without);
    return rc;
}
