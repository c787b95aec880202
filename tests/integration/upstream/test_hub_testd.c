/* test_hub_testd.c: the subscription hub against a real rstmdb-testd: live
 * order, replay from an offset byte-identical to live data, shared upstream
 * WATCHes, late joiners, idempotent-replay duplicates, UNWATCH on the last
 * leave, WAL compaction, and zero loss / zero duplicates across upstream
 * drops (checked against WAL_READ). */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "hub.h"

#define MAXEV 4096

typedef struct rec {
    bool ready, ready_err, ended;
    char code[64];
    size_t n;
    uint64_t offs[MAXEV];
    char *data[MAXEV];
    bool out_of_order;
    hub_sub *sub;
} rec;

static void rec_ready(void *arg, const rstmdb_error *err)
{
    rec *r = arg;
    r->ready = true;
    if (err) {
        r->ready_err = true;
        snprintf(r->code, sizeof r->code, "%s", rstmdb_error_code_str(err));
    }
}

static void rec_event(void *arg, const hub_event *ev)
{
    uint64_t off = ev->wal_offset;
    const char *data = ev->data;
    size_t len = ev->len;
    rec *r = arg;
    ck_assert_uint_lt(r->n, MAXEV);
    if (r->n > 0 && off <= r->offs[r->n - 1])
        r->out_of_order = true;
    r->offs[r->n] = off;
    r->data[r->n] = strndup(data, len);
    r->n++;
}

static void rec_error(void *arg, const char *code, const char *msg)
{
    rec *r = arg;
    (void)msg;
    r->ended = true;
    snprintf(r->code, sizeof r->code, "%s", code);
}

static const hub_sub_ops rec_ops = {rec_ready, rec_event, rec_error, NULL};

static rec *rec_new(void)
{
    return calloc(1, sizeof(rec));
}

static void rec_free(rec *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->data[i]);
    free(r);
}

static bool rec_is_ready(void *arg)
{
    return ((rec *)arg)->ready;
}

static bool rec_is_ended(void *arg)
{
    return ((rec *)arg)->ended;
}

typedef struct want {
    rec *r;
    size_t n;
} want;

static bool rec_has(void *arg)
{
    want *w = arg;
    return w->r->n >= w->n;
}

static void wait_n(up_env *e, rec *r, size_t n)
{
    want w = {r, n};
    ck_assert_msg(up_run_until(e, rec_has, &w, 10000), "got %zu events, wanted %zu", r->n, n);
}

typedef struct harness {
    up_env e;
    hub *h;
} harness;

static void hs_start_cfg(harness *hs, const char *const extra[], size_t max_held)
{
    up_start(&hs->e, 2, extra);
    hub_config cfg = {0, 0};
    cfg.wal_page_limit = 7; /* small pages: replays span several WAL_READs */
    cfg.max_held_events = max_held;
    ck_assert_int_eq(hub_new(&hs->h, hs->e.base, hs->e.pool, &cfg), RSTMDB_OK);
    up_seed_machines(&hs->e, hs->e.pool);
}

static void hs_start(harness *hs, const char *const extra[])
{
    hs_start_cfg(hs, extra, 0);
}

static void hs_stop(harness *hs)
{
    hub_free(hs->h);
    up_stop(&hs->e);
}

static void create(harness *hs, const char *id, const char *machine, int version)
{
    char p[256];
    snprintf(
        p, sizeof p,
        "{\"machine\":\"%s\",\"version\":%d,\"instance_id\":\"%s\",\"initial_ctx\":{\"k\":1.0}}",
        machine, version, id);
    free(up_call_ok(&hs->e, hs->e.pool, "CREATE_INSTANCE", p));
}

static rec *sub(harness *hs, const hub_filter *f, bool has_from, uint64_t from)
{
    rec *r = rec_new();
    ck_assert_int_eq(hub_subscribe(hs->h, f, has_from, from, &rec_ops, r, &r->sub), RSTMDB_OK);
    ck_assert(!r->ready); /* never from inside hub_subscribe */
    ck_assert(up_run_until(&hs->e, rec_is_ready, r, 5000));
    ck_assert_msg(!r->ready_err, "subscribe failed: %s", r->code);
    return r;
}

static hub_filter all(bool ctx)
{
    hub_filter f;
    memset(&f, 0, sizeof f);
    f.include_ctx = ctx;
    return f;
}

static uint64_t wal_head(harness *hs, pool *p)
{
    char *res = up_call_ok(&hs->e, p, "WAL_STATS", "{}");
    uint64_t head = up_json_u64(res, "latest_offset");
    free(res);
    return head;
}

START_TEST(test_live_order)
{
    harness hs;
    hs_start(&hs, NULL);
    create(&hs, "a", "m", 1);
    hub_filter f = all(true);
    rec *r = sub(&hs, &f, false, 0);
    uint64_t offs[20];
    for (int i = 0; i < 20; i++) {
        char extra[64];
        snprintf(extra, sizeof extra, "\"payload\":{\"i\":%d}", i);
        offs[i] = up_apply(&hs.e, hs.e.pool, "a", i % 2 ? "BACK" : "GO", extra);
    }
    wait_n(&hs.e, r, 20);
    ck_assert(!r->out_of_order);
    for (int i = 0; i < 20; i++)
        ck_assert_uint_eq(r->offs[i], offs[i]);
    char head[128];
    snprintf(head, sizeof head,
             "{\"instance_id\":\"a\",\"machine\":\"m\",\"version\":1,\"wal_offset\":%llu,",
             (unsigned long long)offs[0]);
    ck_assert_msg(strncmp(r->data[0], head, strlen(head)) == 0, "%s", r->data[0]);
    hub_stats st;
    hub_get_stats(hs.h, &st);
    ck_assert_uint_eq(st.upstream_subs, 1);
    ck_assert_uint_eq(st.streams, 1);
    ck_assert_uint_ge(st.events_in, 20);
    hub_unsubscribe(r->sub);
    rec_free(r);
    hs_stop(&hs);
}
END_TEST

/* Replayed data must be byte-identical to what a live stream received. */
static void assert_same_tail(const rec *live, const rec *replayed)
{
    ck_assert_uint_le(replayed->n, live->n);
    size_t skip = live->n - replayed->n;
    for (size_t i = 0; i < replayed->n; i++) {
        ck_assert_uint_eq(replayed->offs[i], live->offs[skip + i]);
        ck_assert_str_eq(replayed->data[i], live->data[skip + i]);
    }
}

START_TEST(test_resume_replays_then_live)
{
    harness hs;
    hs_start(&hs, NULL);
    create(&hs, "a", "m", 1);
    create(&hs, "b", "n", 2);
    hub_filter fc = all(true), fn = all(false);
    rec *live = sub(&hs, &fc, false, 0), *live_n = sub(&hs, &fn, false, 0);
    uint64_t offs[30];
    for (int i = 0; i < 30; i++) {
        char extra[96];
        snprintf(extra, sizeof extra, "\"payload\":{\"f\":1.50,\"i\":%d,\"s\":\"q\\\"\"}", i);
        offs[i] = up_apply(&hs.e, hs.e.pool, i % 3 ? "a" : "b", i % 2 ? "BACK" : "GO", extra);
    }
    wait_n(&hs.e, live, 30);
    wait_n(&hs.e, live_n, 30);
    /* Last-Event-ID = offs[9] => from offs[9] + 1: events 10.. replayed (several pages) */
    rec *rc = sub(&hs, &fc, true, offs[9] + 1), *rn = sub(&hs, &fn, true, offs[9] + 1);
    wait_n(&hs.e, rc, 20);
    wait_n(&hs.e, rn, 20);
    for (int i = 30; i < 33; i++)
        up_apply(&hs.e, hs.e.pool, "a", "GO", NULL);
    wait_n(&hs.e, live, 33);
    wait_n(&hs.e, rc, 23);
    wait_n(&hs.e, live_n, 33);
    wait_n(&hs.e, rn, 23);
    up_run_for(&hs.e, 100); /* nothing more may arrive */
    ck_assert_uint_eq(rc->n, 23);
    ck_assert_uint_eq(rn->n, 23);
    ck_assert_uint_eq(rc->offs[0], offs[10]);
    assert_same_tail(live, rc);
    assert_same_tail(live_n, rn);
    ck_assert(!rc->out_of_order && !rn->out_of_order);
    hub_stats st;
    hub_get_stats(hs.h, &st);
    ck_assert_uint_ge(st.replayed, 40);
    ck_assert_uint_eq(st.upstream_subs, 2); /* include_ctx splits feeds; resumers share them */
    hub_unsubscribe(live->sub);
    hub_unsubscribe(live_n->sub);
    hub_unsubscribe(rc->sub);
    hub_unsubscribe(rn->sub);
    rec_free(live);
    rec_free(live_n);
    rec_free(rc);
    rec_free(rn);
    hs_stop(&hs);
}
END_TEST

START_TEST(test_resumers_share_one_replay)
{
    harness hs;
    hs_start(&hs, NULL);
    create(&hs, "a", "m", 1);
    hub_filter f = all(true);
    rec *live = sub(&hs, &f, false, 0);
    uint64_t offs[30];
    for (int i = 0; i < 30; i++)
        offs[i] = up_apply(&hs.e, hs.e.pool, "a", i % 2 ? "BACK" : "GO", NULL);
    wait_n(&hs.e, live, 30);
    hub_stats before, after;
    hub_get_stats(hs.h, &before);
    /* Three clients resume at once with different Last-Event-IDs. */
    const int from[3] = {3, 11, 26};
    rec *r[3];
    for (int k = 0; k < 3; k++) {
        r[k] = rec_new();
        ck_assert_int_eq(hub_subscribe(hs.h, &f, true, offs[from[k]], &rec_ops, r[k], &r[k]->sub),
                         RSTMDB_OK);
    }
    for (int k = 0; k < 3; k++)
        wait_n(&hs.e, r[k], (size_t)(30 - from[k]));
    up_apply(&hs.e, hs.e.pool, "a", "GO", NULL);
    wait_n(&hs.e, live, 31);
    for (int k = 0; k < 3; k++) {
        wait_n(&hs.e, r[k], (size_t)(31 - from[k]));
        ck_assert_uint_eq(r[k]->offs[0], offs[from[k]]); /* each from its own point */
        assert_same_tail(live, r[k]);
        ck_assert(!r[k]->out_of_order && !r[k]->ended);
    }
    hub_get_stats(hs.h, &after);
    ck_assert_uint_eq(after.replay_jobs - before.replay_jobs, 1); /* one WAL pass for all */
    for (int k = 0; k < 3; k++) {
        hub_unsubscribe(r[k]->sub);
        rec_free(r[k]);
    }
    hub_unsubscribe(live->sub);
    rec_free(live);
    hs_stop(&hs);
}
END_TEST

static bool no_watches(void *arg)
{
    harness *hs = arg;
    hub_stats h;
    pool_stats p;
    hub_get_stats(hs->h, &h);
    pool_get_stats(hs->e.pool, &p);
    return h.upstream_subs == 0 && p.watches == 0;
}

START_TEST(test_shared_watch_and_unwatch)
{
    harness hs;
    hs_start(&hs, NULL);
    create(&hs, "a", "m", 1);
    create(&hs, "b", "n", 2);
    const char *m1[] = {"n", "m"}, *m2[] = {"m", "n", "m"};
    hub_filter f1 = all(true), f2 = all(true), f3 = all(false), fi = all(true);
    f1.machines = m1;
    f1.nmachines = 2;
    f2.machines = m2;
    f2.nmachines = 3;
    f3.machines = m1;
    f3.nmachines = 2;
    fi.instance_id = "a";
    rec *a = sub(&hs, &f1, false, 0), *b = sub(&hs, &f2, false, 0);
    hub_stats st;
    hub_get_stats(hs.h, &st);
    ck_assert_uint_eq(st.upstream_subs, 1); /* same normal form: one WATCH */
    rec *c = sub(&hs, &f3, false, 0), *d = sub(&hs, &fi, false, 0);
    hub_get_stats(hs.h, &st);
    ck_assert_uint_eq(st.upstream_subs, 3);
    ck_assert_uint_eq(st.streams, 4);
    up_apply(&hs.e, hs.e.pool, "a", "GO", NULL);
    up_apply(&hs.e, hs.e.pool, "b", "GO", NULL);
    wait_n(&hs.e, a, 2);
    wait_n(&hs.e, b, 2);
    wait_n(&hs.e, c, 2);
    wait_n(&hs.e, d, 1);
    ck_assert_str_eq(a->data[0], b->data[0]);
    ck_assert_ptr_null(strstr(c->data[0], "\"ctx\""));
    hub_get_stats(hs.h, &st);
    ck_assert_uint_eq(st.events_in, 2 + 2 + 1); /* fan-out happens in the proxy */

    hub_unsubscribe(a->sub);
    up_run_for(&hs.e, 50);
    hub_get_stats(hs.h, &st);
    ck_assert_uint_eq(st.upstream_subs, 3); /* b still uses that WATCH */
    hub_unsubscribe(b->sub);
    hub_unsubscribe(c->sub);
    hub_unsubscribe(d->sub);
    ck_assert(up_run_until(&hs.e, no_watches, &hs, 5000)); /* UNWATCHed, answered */
    hub_get_stats(hs.h, &st);
    ck_assert_uint_eq(st.streams, 0);
    rec_free(a);
    rec_free(b);
    rec_free(c);
    rec_free(d);
    hs_stop(&hs);
}
END_TEST

START_TEST(test_late_joiner_and_filtered_replay)
{
    harness hs;
    hs_start(&hs, NULL);
    create(&hs, "a", "m", 1);
    create(&hs, "b", "n", 2);
    const char *ms[] = {"n"}, *evs[] = {"GO"};
    hub_filter f = all(true);
    f.machines = ms;
    f.nmachines = 1;
    f.events = evs;
    f.nevents = 1;
    uint64_t start = wal_head(&hs, hs.e.pool);
    rec *early = sub(&hs, &f, false, 0);
    for (int i = 0; i < 24; i++)
        up_apply(&hs.e, hs.e.pool, i % 2 ? "a" : "b", i % 4 < 2 ? "GO" : "BACK", NULL);
    wait_n(&hs.e, early, 6); /* b + GO: i = 0, 4, 8, ... */
    /* joins the same feed later, from before the first event: replay covers it */
    rec *late = sub(&hs, &f, true, start);
    wait_n(&hs.e, late, 6);
    up_apply(&hs.e, hs.e.pool, "b", "GO", NULL);
    wait_n(&hs.e, early, 7);
    wait_n(&hs.e, late, 7);
    up_run_for(&hs.e, 100);
    ck_assert_uint_eq(early->n, 7);
    ck_assert_uint_eq(late->n, 7);
    assert_same_tail(early, late);
    for (size_t i = 0; i < late->n; i++)
        ck_assert_ptr_nonnull(strstr(late->data[i], "\"machine\":\"n\",\"version\":2,"));
    hub_stats st;
    hub_get_stats(hs.h, &st);
    ck_assert_uint_eq(st.upstream_subs, 1);
    hub_unsubscribe(early->sub);
    hub_unsubscribe(late->sub);
    rec_free(early);
    rec_free(late);
    hs_stop(&hs);
}
END_TEST

START_TEST(test_idempotent_replay_not_forwarded)
{
    harness hs;
    hs_start(&hs, NULL);
    create(&hs, "a", "m", 1);
    hub_filter f = all(true);
    rec *r = sub(&hs, &f, false, 0);
    uint64_t o1 = up_apply(&hs.e, hs.e.pool, "a", "GO", "\"idempotency_key\":\"k1\"");
    uint64_t o2 = up_apply(&hs.e, hs.e.pool, "a", "GO", "\"idempotency_key\":\"k1\"");
    ck_assert_uint_eq(o1, o2); /* a replay: same offset, broadcast again */
    uint64_t o3 = up_apply(&hs.e, hs.e.pool, "a", "BACK", NULL);
    wait_n(&hs.e, r, 2);
    up_run_for(&hs.e, 100);
    ck_assert_uint_eq(r->n, 2);
    ck_assert_uint_eq(r->offs[0], o1);
    ck_assert_uint_eq(r->offs[1], o3);
    hub_stats st;
    hub_get_stats(hs.h, &st);
    ck_assert_uint_eq(st.events_in, 3); /* the duplicate did arrive, and was dropped */
    hub_unsubscribe(r->sub);
    rec_free(r);
    hs_stop(&hs);
}
END_TEST

START_TEST(test_subscribe_errors)
{
    harness hs;
    hs_start(&hs, NULL);
    hub_filter f = all(true);
    f.instance_id = "nope";
    rec *r = rec_new();
    ck_assert_int_eq(hub_subscribe(hs.h, &f, false, 0, &rec_ops, r, &r->sub), RSTMDB_OK);
    ck_assert(up_run_until(&hs.e, rec_is_ready, r, 5000));
    ck_assert(r->ready_err);
    ck_assert_str_eq(r->code, "INSTANCE_NOT_FOUND");
    up_run_for(&hs.e, 50);
    hub_stats st;
    hub_get_stats(hs.h, &st);
    ck_assert_uint_eq(st.streams, 0);
    ck_assert_uint_eq(st.upstream_subs, 0);
    rec_free(r);
    hs_stop(&hs);
}
END_TEST

START_TEST(test_wal_compacted)
{
    harness hs;
    const char *extra[] = {"--wal-segment-bytes", "2048", NULL};
    hs_start(&hs, extra);
    create(&hs, "a", "m", 1);
    uint64_t first = 0;
    for (int i = 0; i < 60; i++) {
        uint64_t o = up_apply(&hs.e, hs.e.pool, "a", i % 2 ? "BACK" : "GO",
                              "\"payload\":{\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}");
        if (i == 0)
            first = o;
    }
    char *res = up_call_ok(&hs.e, hs.e.pool, "COMPACT", "{\"force_snapshot\":true}");
    ck_assert_uint_ge(up_json_u64(res, "segments_deleted"), 1);
    free(res);
    hub_filter f = all(true);
    rec *r = sub(&hs, &f, true, first + 1); /* in a deleted segment */
    ck_assert(up_run_until(&hs.e, rec_is_ended, r, 5000));
    ck_assert_str_eq(r->code, "WAL_COMPACTED");
    ck_assert_uint_eq(r->n, 0);
    /* a resume point still in the WAL replays normally */
    uint64_t head = wal_head(&hs, hs.e.pool);
    uint64_t o = up_apply(&hs.e, hs.e.pool, "a", "GO", NULL);
    rec *ok = sub(&hs, &f, true, head);
    wait_n(&hs.e, ok, 1);
    ck_assert_uint_eq(ok->offs[0], o);
    ck_assert(!ok->ended);
    hub_unsubscribe(ok->sub);
    rec_free(r);
    rec_free(ok);
    hs_stop(&hs);
}
END_TEST

static bool hub_pool_ready(void *arg)
{
    return pool_ready(((harness *)arg)->e.pool);
}

START_TEST(test_upstream_reset_is_explicit)
{
    harness hs;
    hs_start(&hs, NULL);
    create(&hs, "a", "m", 1);
    hub_filter fa = all(true), fi = all(true);
    fi.instance_id = "a";
    rec *s_all = sub(&hs, &fa, false, 0), *s_inst = sub(&hs, &fi, false, 0);
    for (int i = 0; i < 5; i++)
        up_apply(&hs.e, hs.e.pool, "a", "GO", NULL);
    wait_n(&hs.e, s_all, 5);
    wait_n(&hs.e, s_inst, 5);
    /* testd keeps everything in memory: a restart is a brand-new server whose
     * WAL starts over below the ids already sent. Streams stay open while it
     * is away, then end explicitly instead of going silent or repeating ids. */
    up_kill_testd(&hs.e);
    up_run_for(&hs.e, 200);
    ck_assert(!s_all->ended && !s_inst->ended);
    up_restart_testd(&hs.e, NULL);
    ck_assert(up_run_until(&hs.e, hub_pool_ready, &hs, 5000));
    ck_assert(up_run_until(&hs.e, rec_is_ended, s_all, 5000));
    ck_assert(up_run_until(&hs.e, rec_is_ended, s_inst, 5000));
    ck_assert_str_eq(s_all->code, "OFFSET_AHEAD");
    ck_assert_str_eq(s_inst->code, "UPSTREAM_ERROR"); /* the instance is unknown now */
    ck_assert_uint_eq(s_all->n, 5);
    up_run_for(&hs.e, 50);
    hub_stats st;
    hub_get_stats(hs.h, &st);
    ck_assert_uint_eq(st.streams, 0);
    ck_assert_uint_eq(st.upstream_subs, 0);
    rec_free(s_all);
    rec_free(s_inst);
    hs_stop(&hs);
}
END_TEST

static int applied;
static void applied_cb(const rstmdb_reply *r, void *arg)
{
    (void)arg;
    ck_assert_int_eq(rstmdb_reply_status(r), RSTMDB_OK);
    applied++;
}

static bool all_applied(void *arg)
{
    return applied >= *(int *)arg;
}

START_TEST(test_replay_overflow_ends_stream)
{
    harness hs;
    hs_start_cfg(&hs, NULL, 2); /* at most 2 live events held during a replay */
    create(&hs, "a", "m", 1);
    hub_filter f = all(true);
    uint64_t start = wal_head(&hs, hs.e.pool);
    rec *live = sub(&hs, &f, false, 0);
    for (int i = 0; i < 40; i++)
        up_apply(&hs.e, hs.e.pool, "a", "GO", NULL);
    wait_n(&hs.e, live, 40);
    /* Every answer now takes 100 ms, so the replay of 40 records in pages of
     * 7 takes ~600 ms while 6 more events arrive live on the shared feed. */
    up_control(&hs.e, "delay 100");
    rec *r = rec_new();
    ck_assert_int_eq(hub_subscribe(hs.h, &f, true, start, &rec_ops, r, &r->sub), RSTMDB_OK);
    applied = 0;
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(pool_call_json(hs.e.pool, "APPLY_EVENT",
                                        "{\"instance_id\":\"a\",\"event\":\"BACK\"}", 34, false,
                                        applied_cb, NULL, NULL),
                         RSTMDB_OK);
    int six = 6;
    ck_assert(up_run_until(&hs.e, all_applied, &six, 10000));
    ck_assert(up_run_until(&hs.e, rec_is_ended, r, 10000));
    ck_assert_str_eq(r->code, "REPLAY_OVERFLOW");
    ck_assert(r->ready && !r->ready_err);
    ck_assert(!r->out_of_order);
    wait_n(&hs.e, live, 46); /* the shared feed and its other stream are unaffected */
    ck_assert(!live->ended);
    up_control(&hs.e, "delay 0");
    hub_unsubscribe(live->sub);
    rec_free(live);
    rec_free(r);
    hs_stop(&hs);
}
END_TEST

/* All apply_event offsets >= from (optionally for one instance), by WAL_READ. */
static size_t wal_events(harness *hs, uint64_t from, const char *instance, uint64_t *out,
                         size_t max)
{
    size_t n = 0;
    for (;;) {
        char params[96];
        snprintf(params, sizeof params, "{\"from_offset\":%llu,\"limit\":200}",
                 (unsigned long long)from);
        char *res = up_call_ok(&hs->e, hs->e.pool, "WAL_READ", params);
        cJSON *doc = cJSON_Parse(res);
        free(res);
        const cJSON *recs = cJSON_GetObjectItemCaseSensitive(doc, "records");
        const cJSON *it;
        int count = 0;
        cJSON_ArrayForEach(it, recs)
        {
            count++;
            const cJSON *ent = cJSON_GetObjectItemCaseSensitive(it, "entry");
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(ent, "type");
            const cJSON *inst = cJSON_GetObjectItemCaseSensitive(ent, "instance_id");
            uint64_t off = (uint64_t)cJSON_GetObjectItemCaseSensitive(it, "offset")->valuedouble;
            from = off + 1;
            if (strcmp(type->valuestring, "apply_event") != 0)
                continue;
            if (instance && strcmp(inst->valuestring, instance) != 0)
                continue;
            ck_assert_uint_lt(n, max);
            out[n++] = off;
        }
        cJSON_Delete(doc);
        if (count < 200)
            return n;
    }
}

static void assert_matches_wal(harness *hs, const rec *r, uint64_t from, const char *instance)
{
    static uint64_t expect[MAXEV];
    size_t n = wal_events(hs, from, instance, expect, MAXEV);
    ck_assert(!r->out_of_order);
    ck_assert_msg(r->n == n, "stream has %zu events, the WAL %zu", r->n, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(r->offs[i], expect[i]);
}

static bool pool_all_ready_hub(void *arg)
{
    harness *hs = arg;
    pool_stats st;
    pool_get_stats(hs->e.pool, &st);
    return st.ready == st.connections;
}

static bool writer_ready(void *arg)
{
    return pool_ready((pool *)arg);
}

START_TEST(test_upstream_drops_lose_nothing)
{
    harness hs;
    hs_start(&hs, NULL);
    create(&hs, "a", "m", 1);
    create(&hs, "b", "n", 2);
    /* A second pool writes, so writes go on while the hub's pool reconnects. */
    pool *w = NULL;
    pool_config wc = hs.e.cfg;
    wc.size = 1;
    ck_assert_int_eq(pool_new(&w, hs.e.base, &wc, NULL), RSTMDB_OK);
    ck_assert(up_run_until(&hs.e, writer_ready, w, 5000));

    uint64_t start = wal_head(&hs, hs.e.pool);
    hub_filter fa = all(true), fi = all(false);
    fi.instance_id = "a";
    rec *s_all = sub(&hs, &fa, false, 0);
    rec *s_inst = sub(&hs, &fi, false, 0);
    rec *s_from = sub(&hs, &fa, true, start);
    int drops = 0;
    for (int i = 0; i < 400; i++) {
        if (i % 50 == 25) {
            up_control(&hs.e, "drop-all");
            drops++;
        }
        char params[160];
        snprintf(params, sizeof params,
                 "{\"instance_id\":\"%s\",\"event\":\"%s\",\"payload\":{\"i\":%d}}",
                 i % 3 ? "a" : "b", i % 2 ? "BACK" : "GO", i);
        for (int attempt = 0;; attempt++) {
            ck_assert_int_lt(attempt, 100);
            if (!pool_ready(w))
                ck_assert(up_run_until(&hs.e, writer_ready, w, 5000));
            char *res = NULL;
            int st = up_call(&hs.e, w, "APPLY_EVENT", params, &res);
            free(res);
            if (st == RSTMDB_OK)
                break; /* a lost answer may mean applied twice: the WAL decides below */
        }
    }
    ck_assert_int_eq(drops, 8);
    /* wait until the streams have everything the WAL has, then compare exactly */
    static uint64_t expect[MAXEV];
    ck_assert(up_run_until(&hs.e, pool_all_ready_hub, &hs, 5000));
    size_t n_all = wal_events(&hs, start, NULL, expect, MAXEV);
    size_t n_a = wal_events(&hs, start, "a", expect, MAXEV);
    wait_n(&hs.e, s_all, n_all);
    wait_n(&hs.e, s_from, n_all);
    wait_n(&hs.e, s_inst, n_a);
    up_run_for(&hs.e, 200);
    assert_matches_wal(&hs, s_all, start, NULL);
    assert_matches_wal(&hs, s_from, start, NULL);
    assert_matches_wal(&hs, s_inst, start, "a");
    ck_assert(!s_all->ended && !s_inst->ended && !s_from->ended);
    pool_stats ps;
    pool_get_stats(hs.e.pool, &ps);
    ck_assert_uint_ge(ps.conn_losses, 8);
    hub_unsubscribe(s_all->sub);
    hub_unsubscribe(s_inst->sub);
    hub_unsubscribe(s_from->sub);
    rec_free(s_all);
    rec_free(s_inst);
    rec_free(s_from);
    hub_free(hs.h);
    pool_free(w);
    up_stop(&hs.e);
}
END_TEST

/* Cuts while replays are in flight, and cuts of one connection only (a
 * garbled frame) while the other stays READY: every stream still matches
 * the WAL exactly. */
START_TEST(test_cuts_during_replay)
{
    harness hs;
    hs_start(&hs, NULL);
    create(&hs, "a", "m", 1);
    create(&hs, "b", "n", 2);
    pool *w = NULL;
    pool_config wc = hs.e.cfg;
    wc.size = 1;
    ck_assert_int_eq(pool_new(&w, hs.e.base, &wc, NULL), RSTMDB_OK);
    ck_assert(up_run_until(&hs.e, writer_ready, w, 5000));
    uint64_t start = wal_head(&hs, hs.e.pool);
    for (int i = 0; i < 150; i++)
        up_apply(&hs.e, hs.e.pool, i % 2 ? "a" : "b", "GO", NULL);

    const char *ms[] = {"n"};
    hub_filter fa = all(true), fn = all(false), fi = all(true);
    fn.machines = ms;
    fn.nmachines = 1;
    fi.instance_id = "a";
    rec *r[4];
    r[0] = sub(&hs, &fa, true, start); /* ~22 pages of 7 to replay */
    r[1] = sub(&hs, &fn, true, start);
    r[2] = sub(&hs, &fi, true, start);
    r[3] = sub(&hs, &fa, false, 0);
    for (int i = 0; i < 240; i++) {
        if (i % 30 == 3)
            up_control(&hs.e, i % 60 == 3 ? "garble" : "drop-all");
        char params[160];
        snprintf(params, sizeof params, "{\"instance_id\":\"%s\",\"event\":\"BACK\"}",
                 i % 3 ? "a" : "b");
        for (int attempt = 0;; attempt++) {
            ck_assert_int_lt(attempt, 100);
            if (!pool_ready(w))
                ck_assert(up_run_until(&hs.e, writer_ready, w, 5000));
            int st = up_call(&hs.e, w, "APPLY_EVENT", params, NULL);
            if (st == RSTMDB_OK)
                break;
        }
    }
    ck_assert(up_run_until(&hs.e, pool_all_ready_hub, &hs, 5000));
    static uint64_t expect[MAXEV];
    size_t n_all = wal_events(&hs, start, NULL, expect, MAXEV);
    size_t n_a = wal_events(&hs, start, "a", expect, MAXEV);
    wait_n(&hs.e, r[0], n_all);
    wait_n(&hs.e, r[2], n_a);
    up_run_for(&hs.e, 200);
    assert_matches_wal(&hs, r[0], start, NULL);
    assert_matches_wal(&hs, r[2], start, "a");
    /* machine n = instance b's events only */
    size_t n_b = wal_events(&hs, start, "b", expect, MAXEV);
    ck_assert_uint_eq(r[1]->n, n_b);
    for (size_t i = 0; i < n_b; i++)
        ck_assert_uint_eq(r[1]->offs[i], expect[i]);
    /* the live-only stream saw a suffix of the WAL, with no gap after its start */
    ck_assert(!r[3]->out_of_order);
    ck_assert_uint_ge(r[3]->n, 1);
    for (size_t i = 0; i < r[3]->n; i++)
        ck_assert_uint_eq(r[3]->offs[r[3]->n - 1 - i], r[0]->offs[r[0]->n - 1 - i]);
    for (int k = 0; k < 4; k++) {
        ck_assert_msg(!r[k]->ended, "stream %d ended: %s", k, r[k]->code);
        hub_unsubscribe(r[k]->sub);
        rec_free(r[k]);
    }
    hub_free(hs.h);
    pool_free(w);
    up_stop(&hs.e);
}
END_TEST

static uint64_t wal_reads(harness *hs)
{
    char *res = up_call_ok(&hs->e, hs->e.pool, "WAL_STATS", "{}");
    cJSON *doc = cJSON_Parse(res);
    free(res);
    const cJSON *io = cJSON_GetObjectItemCaseSensitive(doc, "io_stats");
    const cJSON *reads = cJSON_GetObjectItemCaseSensitive(io, "reads");
    ck_assert(cJSON_IsNumber(reads));
    uint64_t n = (uint64_t)reads->valuedouble;
    cJSON_Delete(doc);
    return n;
}

typedef struct jobs_wait {
    harness *hs;
    uint64_t target;
} jobs_wait;

static bool jobs_reached(void *arg)
{
    jobs_wait *w = arg;
    hub_stats st;
    hub_get_stats(w->hs->h, &st);
    return st.replay_jobs >= w->target && st.upstream_subs == 2;
}

/* A quiet instance's stream resumes after a cut without scanning the WAL
 * written since it subscribed; a busy one replays exactly what it missed. */
START_TEST(test_instance_resume_is_bounded)
{
    harness hs;
    hs_start(&hs, NULL);
    create(&hs, "q", "m", 1);
    create(&hs, "a", "m", 1);
    hub_filter fq = all(true), fa = all(true);
    fq.instance_id = "q";
    fa.instance_id = "a";
    rec *quiet = sub(&hs, &fq, false, 0);
    rec *busy = sub(&hs, &fa, false, 0);
    for (int i = 0; i < 100; i++) /* ~15 pages of 7 after q's last record */
        up_apply(&hs.e, hs.e.pool, "a", "GO", NULL);
    wait_n(&hs.e, busy, 100);
    uint64_t reads0 = wal_reads(&hs);
    uint64_t jobs0;
    hub_stats st;
    hub_get_stats(hs.h, &st);
    jobs0 = st.replay_jobs;
    up_control(&hs.e, "drop-all");
    /* both streams resume (one replay each) on re-established WATCHes */
    jobs_wait jw = {&hs, jobs0 + 2};
    ck_assert(up_run_until(&hs.e, jobs_reached, &jw, 5000));
    up_run_for(&hs.e, 200);
    uint64_t q_off = up_apply(&hs.e, hs.e.pool, "q", "GO", NULL);
    uint64_t a_off = up_apply(&hs.e, hs.e.pool, "a", "BACK", NULL);
    wait_n(&hs.e, quiet, 1);
    wait_n(&hs.e, busy, 101);
    ck_assert_uint_eq(quiet->offs[0], q_off);
    ck_assert_uint_eq(busy->offs[100], a_off);
    ck_assert(!quiet->ended && !busy->ended && !quiet->out_of_order && !busy->out_of_order);
    /* the busy stream's cursor was recent (a 1-page read at most); the quiet
     * one was bounded by GET_INSTANCE: far fewer reads than 15 pages */
    uint64_t reads = wal_reads(&hs) - reads0;
    ck_assert_uint_le(reads, 3);
    hub_unsubscribe(quiet->sub);
    hub_unsubscribe(busy->sub);
    rec_free(quiet);
    rec_free(busy);
    hs_stop(&hs);
}
END_TEST

/* Many streams on one feed: fan-out, and one shared catch-up after a cut. */
typedef struct light {
    bool ready, ended;
    size_t n;
    uint64_t last;
    bool bad;
    hub_sub *sub;
} light;

static void light_ready(void *arg, const rstmdb_error *err)
{
    light *l = arg;
    l->ready = true;
    if (err)
        l->bad = true;
}

static void light_event(void *arg, const hub_event *ev)
{
    uint64_t off = ev->wal_offset;
    const char *data = ev->data;
    size_t len = ev->len;
    light *l = arg;
    (void)data;
    (void)len;
    if (l->n > 0 && off <= l->last)
        l->bad = true;
    l->last = off;
    l->n++;
}

static void light_error(void *arg, const char *code, const char *msg)
{
    light *l = arg;
    (void)code;
    (void)msg;
    l->ended = true;
}

static const hub_sub_ops light_ops = {light_ready, light_event, light_error, NULL};

#define NLIGHT 1000
typedef struct lights {
    light *v;
    size_t want;
} lights;

static bool lights_done(void *arg)
{
    lights *ls = arg;
    for (size_t i = 0; i < NLIGHT; i++)
        if (ls->v[i].n < ls->want)
            return false;
    return true;
}

static bool lights_ready(void *arg)
{
    lights *ls = arg;
    for (size_t i = 0; i < NLIGHT; i++)
        if (!ls->v[i].ready)
            return false;
    return true;
}

START_TEST(test_many_streams_one_feed)
{
    harness hs;
    hs_start(&hs, NULL);
    create(&hs, "a", "m", 1);
    pool *w = NULL;
    pool_config wc = hs.e.cfg;
    wc.size = 1;
    ck_assert_int_eq(pool_new(&w, hs.e.base, &wc, NULL), RSTMDB_OK);
    ck_assert(up_run_until(&hs.e, writer_ready, w, 5000));
    lights ls = {calloc(NLIGHT, sizeof(light)), 0};
    hub_filter f = all(true);
    for (size_t i = 0; i < NLIGHT; i++)
        ck_assert_int_eq(hub_subscribe(hs.h, &f, false, 0, &light_ops, &ls.v[i], &ls.v[i].sub),
                         RSTMDB_OK);
    ck_assert(up_run_until(&hs.e, lights_ready, &ls, 10000));
    hub_stats st;
    hub_get_stats(hs.h, &st);
    ck_assert_uint_eq(st.upstream_subs, 1);
    ck_assert_uint_eq(st.streams, NLIGHT);
    for (int i = 0; i < 5; i++)
        up_apply(&hs.e, w, "a", "GO", NULL);
    ls.want = 5;
    ck_assert(up_run_until(&hs.e, lights_done, &ls, 10000));
    hub_get_stats(hs.h, &st);
    uint64_t jobs0 = st.replay_jobs;
    up_control(&hs.e, "drop-all");
    for (int i = 0; i < 5; i++) {
        while (!pool_ready(w))
            ck_assert(up_run_until(&hs.e, writer_ready, w, 5000));
        int rc =
            up_call(&hs.e, w, "APPLY_EVENT", "{\"instance_id\":\"a\",\"event\":\"BACK\"}", NULL);
        if (rc != RSTMDB_OK)
            i--; /* cut before it was answered: write again (the WAL decides below) */
    }
    static uint64_t expect[MAXEV];
    ck_assert(up_run_until(&hs.e, pool_all_ready_hub, &hs, 5000));
    size_t n = wal_events(&hs, 0, NULL, expect, MAXEV);
    ls.want = n;
    ck_assert(up_run_until(&hs.e, lights_done, &ls, 20000));
    up_run_for(&hs.e, 100);
    for (size_t i = 0; i < NLIGHT; i++) {
        ck_assert(!ls.v[i].bad && !ls.v[i].ended);
        ck_assert_uint_eq(ls.v[i].n, n);
        ck_assert_uint_eq(ls.v[i].last, expect[n - 1]);
    }
    hub_get_stats(hs.h, &st);
    /* after the cut all 1000 resumed through one or two WAL passes, not 1000 */
    ck_assert_uint_le(st.replay_jobs - jobs0, 2);
    for (size_t i = 0; i < NLIGHT; i++)
        hub_unsubscribe(ls.v[i].sub);
    free(ls.v);
    hub_free(hs.h);
    pool_free(w);
    up_stop(&hs.e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("upstream_hub");
    TCase *tc = tcase_create("testd");
    tcase_add_checked_fixture(tc, NULL, up_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_live_order);
    tcase_add_test(tc, test_resume_replays_then_live);
    tcase_add_test(tc, test_resumers_share_one_replay);
    tcase_add_test(tc, test_shared_watch_and_unwatch);
    tcase_add_test(tc, test_late_joiner_and_filtered_replay);
    tcase_add_test(tc, test_idempotent_replay_not_forwarded);
    tcase_add_test(tc, test_subscribe_errors);
    tcase_add_test(tc, test_wal_compacted);
    tcase_add_test(tc, test_replay_overflow_ends_stream);
    tcase_add_test(tc, test_upstream_reset_is_explicit);
    tcase_add_test(tc, test_cuts_during_replay);
    tcase_add_test(tc, test_many_streams_one_feed);
    tcase_add_test(tc, test_instance_resume_is_bounded);
    tcase_add_test(tc, test_upstream_drops_lose_nothing);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
