/* test_scenarios.c: fault scenarios against the real proxy and testd, with
 * the relay between them, each repeated FAULT_CYCLES times (default 20).
 * After each: no request hung past its bound (curl's timeout is the hang
 * detector), every write answered 2xx is in the upstream's WAL, every SSE
 * stream's ids match the WAL's events with no gap and no duplicate, and the
 * proxy's RSS is back near its baseline (a generous bound: leaks, not timing).
 */
#include "fx.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define REQ_TIMEOUT_MS 1500 /* the proxy's --request-timeout-ms (fx_proxy) */
#define MARGIN_MS      3000
#define BOUND_MS       (REQ_TIMEOUT_MS + MARGIN_MS) /* past this a request "hung" */
#define RSS_SLACK_KB   (64L * 1024L)

/* Under AddressSanitizer freed memory sits in a quarantine (256 MiB by
 * default), so RSS says nothing about leaks there: LeakSanitizer does that
 * job instead, and the figures are only reported. */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_ASSERT 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RSS_ASSERT 0
#endif
#endif
#ifndef RSS_ASSERT
#define RSS_ASSERT 1
#endif

#define MACHINE_BODY                                                         \
    "{\"definition\":{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":" \
    "[{\"from\":\"a\",\"event\":\"T\",\"to\":\"a\"}]}}"

typedef struct stack {
    spawned testd, relay, proxy;
    bool has_relay;
    char dir[256];
    char log[300];
} stack;

static stack S;
static atomic_int g_epoch;
/* Whatever a scenario runs lives here, not on its stack: after a failed
 * assertion (no fork) the teardown stops it all. */
enum { NW = 2 };
typedef struct writer writer;
static writer *g_w_live;
static int g_nw_live;
static fx_sse g_all, g_one;
static spawned g_x[3]; /* bumped when the upstream loses its memory (SIGKILL) */

/* ---- the stack ------------------------------------------------------------- */

static void stack_up(bool relay, const char *const *testd_extra, const char *const *proxy_extra)
{
    fx_tmpdir(S.dir, sizeof S.dir, "scen");
    snprintf(S.log, sizeof S.log, "%s/proxy.log", S.dir);
    ck_assert_int_eq(fx_testd(&S.testd, testd_extra), 0);
    S.has_relay = relay;
    if (relay)
        ck_assert_int_eq(fx_relay(&S.relay, S.testd.addr), 0);
    ck_assert_msg(
        fx_proxy(&S.proxy, NULL, relay ? S.relay.addr : S.testd.addr, proxy_extra, S.log) == 0,
        "proxy did not start (log %s)", S.log);
}

static void stack_down(void)
{
    if (S.proxy.pid > 0)
        spawn_stop(&S.proxy, 5000);
    if (S.relay.pid > 0)
        spawn_stop(&S.relay, 5000);
    if (S.testd.pid > 0)
        spawn_stop(&S.testd, 5000);
}

static void relay_cmd(const char *cmd)
{
    char reply[512];
    ck_assert_msg(spawn_control(&S.relay, cmd, reply, sizeof reply) == 0, "relay %s: %s", cmd,
                  reply);
}

static unsigned long long relay_stat(const char *key)
{
    char reply[512], pat[64];
    const char *p;
    relay_cmd("stats");
    spawn_control(&S.relay, "stats", reply, sizeof reply);
    snprintf(pat, sizeof pat, " %s=", key);
    p = strstr(reply, pat);
    return p != NULL ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

/* One bounded request; fails the test if it hung. */
static fx_resp call(const char *method, const char *path, const char *body)
{
    static const char *const json[] = {"Content-Type: application/json", NULL};
    fx_resp r;
    fx_http(S.proxy.addr, method, path, body, -1, json, BOUND_MS, &r);
    ck_assert_msg(!r.hung, "%s %s hung past %d ms", method, path, BOUND_MS);
    return r;
}

/* Retry until 2xx, bounded (the upstream may still be coming back). */
static void call_until_ok(const char *method, const char *path, const char *body)
{
    long long deadline = fx_now_ms() + 15000;
    for (;;) {
        fx_resp r = call(method, path, body);
        long st = r.status;
        fx_resp_free(&r);
        if (st >= 200 && st < 300)
            return;
        ck_assert_msg(fx_now_ms() < deadline, "%s %s never succeeded (last %ld)", method, path, st);
        fx_sleep_ms(20);
    }
}

static void put_machine(void)
{
    call_until_ok("PUT", "/v1/machines/m/versions/1", MACHINE_BODY);
}

static void create_instance(const char *id)
{
    char body[256];
    snprintf(body, sizeof body, "{\"machine\":\"m\",\"version\":1,\"instance_id\":\"%s\"}", id);
    call_until_ok("POST", "/v1/instances", body);
}

static long rss_now(void)
{
    return fx_rss_kb(S.proxy.pid);
}

static void rss_check(const char *name, long base)
{
    long now;
    fx_sleep_ms(200);
    now = rss_now();
    fprintf(stderr, "[%s] proxy RSS: baseline %ld kB, after %ld kB (%+ld kB)\n", name, base, now,
            now - base);
    ck_assert_int_gt(now, 0);
    if (RSS_ASSERT)
        ck_assert_msg(now < base + RSS_SLACK_KB, "[%s] RSS grew from %ld to %ld kB", name, base,
                      now);
}

/* ---- writers --------------------------------------------------------------- */

typedef struct wop {
    char id[48];
    bool is_event;
    uint64_t wal;
    int e0, e1; /* epoch at start and at end */
    long status;
} wop;

typedef enum wmode {
    W_CREATE_TICK, /* create w<k>-<n>, then one event on it */
    W_TICK         /* events on the fixed instance hot-<k> */
} wmode;

struct writer {
    pthread_t th;
    int k;
    wmode mode;
    volatile bool stop;
    bool joined;
    bool raw; /* use fx_http_raw */
    pthread_mutex_t mu;
    wop *ops;
    size_t n, cap;
    unsigned hung, bad;
    long bad_status;
    char bad_body[200];
    char hung_desc[900];
    unsigned by_status[6]; /* 2xx..5xx by first digit; [0] no response */
};

static long long g_t0; /* test start, for the timeline in failure messages */

static void writer_record(writer *w, const wop *op, const fx_resp *r)
{
    pthread_mutex_lock(&w->mu);
    if (r->hung && w->hung++ == 0)
        snprintf(w->hung_desc, sizeof w->hung_desc,
                 "%s %s: started at +%lld ms, gave up after %lld ms (curl %d, status %ld, "
                 "connected after %ld us from port %ld); curl said: %s",
                 op->is_event ? "event" : "create", op->id, fx_now_ms() - r->ms - g_t0, r->ms,
                 r->curl_rc, r->status, r->connect_us, r->local_port, r->trace);
    if (r->status >= 200 && r->status < 600)
        w->by_status[r->status / 100]++;
    else
        w->by_status[0]++;
    /* What a fault may produce: success, the proxy's 502/503/504, a 404
     * for state the restarted (empty) upstream lost, or no connection at
     * all while the proxy itself restarts. Anything else is a bug. */
    if (!(r->status == 200 || r->status == 201 || r->status == 404 || r->status == 502 ||
          r->status == 503 || r->status == 504 || (r->status == 0 && !r->hung))) {
        if (w->bad++ == 0) {
            w->bad_status = r->status;
            snprintf(w->bad_body, sizeof w->bad_body, "%.150s", r->body);
        }
    }
    if (r->status >= 200 && r->status < 300) {
        if (w->n == w->cap) {
            size_t nc = w->cap ? w->cap * 2 : 1024;
            wop *nv = realloc(w->ops, nc * sizeof *nv);
            if (nv != NULL) {
                w->ops = nv;
                w->cap = nc;
            }
        }
        if (w->n < w->cap)
            w->ops[w->n++] = *op;
    }
    pthread_mutex_unlock(&w->mu);
}

static uint64_t result_wal(const char *body)
{
    cJSON *j = cJSON_Parse(body);
    cJSON *o = j != NULL ? cJSON_GetObjectItemCaseSensitive(j, "wal_offset") : NULL;
    uint64_t v = cJSON_IsNumber(o) ? (uint64_t)o->valuedouble : 0;
    cJSON_Delete(j);
    return v;
}

static const char *g_proxy_addr_for_writers(void)
{
    return S.proxy.addr;
}

/* Kept-alive curl by default; the raw client (a fresh connection each
 * time) where the test forks processes under load, because libcurl's
 * threaded resolver has been seen stalling there for seconds. */
static void writer_http(writer *w, void **h, const char *path, const char *body, fx_resp *r)
{
    static const char *const json[] = {"Content-Type: application/json", NULL};
    if (w->raw)
        fx_http_raw(g_proxy_addr_for_writers(), "POST", path, body, BOUND_MS, r);
    else
        fx_http_keep(h, g_proxy_addr_for_writers(), "POST", path, body, -1, json, BOUND_MS, r);
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    unsigned long seq = 0;
    void *h = NULL; /* one kept-alive connection per writer, as real clients do */

    while (!w->stop) {
        wop op;
        fx_resp r;
        char path[128], body[256];

        memset(&op, 0, sizeof op);
        if (w->mode == W_CREATE_TICK) {
            snprintf(op.id, sizeof op.id, "w%d-%lu", w->k, seq++);
            snprintf(body, sizeof body, "{\"machine\":\"m\",\"version\":1,\"instance_id\":\"%s\"}",
                     op.id);
            op.e0 = atomic_load(&g_epoch);
            writer_http(w, &h, "/v1/instances", body, &r);
            op.e1 = atomic_load(&g_epoch);
            op.status = r.status;
            writer_record(w, &op, &r);
            fx_resp_free(&r);
            if (op.status != 201) {
                fx_sleep_ms(5);
                continue;
            }
        } else {
            snprintf(op.id, sizeof op.id, "hot-%d", w->k);
        }
        op.is_event = true;
        fx_sleep_ms(1); /* a steady load, not a flood: ~500 writes/s per writer */
        snprintf(path, sizeof path, "/v1/instances/%s/events", op.id);
        op.e0 = atomic_load(&g_epoch);
        writer_http(w, &h, path, "{\"event\":\"T\"}", &r);
        op.e1 = atomic_load(&g_epoch);
        op.status = r.status;
        op.wal = r.status == 200 ? result_wal(r.body) : 0;
        writer_record(w, &op, &r);
        fx_resp_free(&r);
        if (r.status != 200)
            fx_sleep_ms(5);
    }
    fx_http_handle_free(h);
    return NULL;
}

static void writers_start(writer *w, int n, wmode mode, bool raw)
{
    int i;
    for (i = 0; i < n; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].k = i;
        w[i].mode = mode;
        w[i].raw = raw;
        pthread_mutex_init(&w[i].mu, NULL);
        ck_assert_int_eq(pthread_create(&w[i].th, NULL, writer_main, &w[i]), 0);
        g_w_live = w;
        g_nw_live = i + 1;
    }
}

static void writers_stop(writer *w, int n)
{
    int i;
    for (i = 0; i < n; i++)
        w[i].stop = true;
    for (i = 0; i < n; i++) {
        if (w[i].joined)
            continue;
        pthread_join(w[i].th, NULL);
        w[i].joined = true;
    }
}

static void writers_free(writer *w, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        free(w[i].ops);
        w[i].ops = NULL;
        pthread_mutex_destroy(&w[i].mu);
    }
    g_w_live = NULL;
}

static void writers_assert_sane(const char *name, writer *w, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        pthread_mutex_lock(&w[i].mu);
        fprintf(stderr,
                "[%s] writer %d: %zu acked; responses 2xx=%u 4xx=%u 5xx=%u none=%u; hung=%u "
                "bad=%u\n",
                name, i, w[i].n, w[i].by_status[2], w[i].by_status[4], w[i].by_status[5],
                w[i].by_status[0], w[i].hung, w[i].bad);
        pthread_mutex_unlock(&w[i].mu);
        ck_assert_msg(w[i].hung == 0, "[%s] %u writes hung past %d ms; first: %s", name, w[i].hung,
                      BOUND_MS, w[i].hung_desc);
        ck_assert_msg(w[i].bad == 0, "[%s] unexpected status %ld: %s", name, w[i].bad_status,
                      w[i].bad_body);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every write acked 2xx within epoch `e` (start and end), among the first
 * upto[i] ops of each writer, is in the WAL read now. Returns how many were
 * checked. */
static size_t verify_acked(const char *name, writer *w, int n, int e, const size_t *upto)
{
    fx_wal wal;
    char why[512];
    const char **creates;
    size_t ncreates = 0, i, checked = 0;
    int k;

    ck_assert_msg(fx_wal_read(S.proxy.addr, &wal, why, sizeof why) == 0, "[%s] WAL: %s", name, why);
    creates = malloc((wal.n + 1) * sizeof *creates);
    ck_assert_ptr_nonnull(creates);
    for (i = 0; i < wal.n; i++)
        if (strcmp(wal.v[i].type, "create_instance") == 0)
            creates[ncreates++] = wal.v[i].instance_id;
    qsort(creates, ncreates, sizeof *creates, cmp_str);
    why[0] = '\0';
    for (k = 0; k < n && why[0] == '\0'; k++) {
        pthread_mutex_lock(&w[k].mu); /* no assertion while held: teardown joins the writers */
        for (i = 0; i < upto[k] && i < w[k].n && why[0] == '\0'; i++) {
            const wop *op = &w[k].ops[i];
            if (op->e0 != e || op->e1 != e)
                continue;
            checked++;
            if (op->is_event) {
                const fx_walrec *rec = fx_wal_find(&wal, op->wal);
                if (rec == NULL || strcmp(rec->type, "apply_event") != 0 ||
                    strcmp(rec->instance_id, op->id) != 0)
                    snprintf(why, sizeof why,
                             "event on %s acked at offset %" PRIu64 " is not in the WAL", op->id,
                             op->wal);
            } else {
                const char *key = op->id;
                if (bsearch(&key, creates, ncreates, sizeof *creates, cmp_str) == NULL)
                    snprintf(why, sizeof why, "create of %s acked 201 but not in the WAL", op->id);
            }
        }
        pthread_mutex_unlock(&w[k].mu);
    }
    if (why[0] != '\0') {
        free(creates);
        fx_wal_free(&wal);
        ck_abort_msg("[%s] %s", name, why);
    }
    free(creates);
    fx_wal_free(&wal);
    return checked;
}

static void snapshot_counts(writer *w, int n, size_t *upto)
{
    int k;
    for (k = 0; k < n; k++) {
        pthread_mutex_lock(&w[k].mu);
        upto[k] = w[k].n;
        pthread_mutex_unlock(&w[k].mu);
    }
}

/* ---- scenarios ------------------------------------------------------------- */

static writer g_w[NW];

static void setup(void)
{
    int i;
    g_t0 = fx_now_ms();
    memset(&S, 0, sizeof S);
    S.testd.pid = S.relay.pid = S.proxy.pid = -1;
    S.testd.out_fd = S.relay.out_fd = S.proxy.out_fd = -1;
    for (i = 0; i < 3; i++) {
        memset(&g_x[i], 0, sizeof g_x[i]);
        g_x[i].pid = -1;
        g_x[i].out_fd = -1;
    }
}

static void teardown(void)
{
    int i;
    if (g_w_live != NULL) {
        writers_stop(g_w_live, g_nw_live);
        writers_free(g_w_live, g_nw_live);
    }
    fx_sse_stop(&g_all);
    fx_sse_stop(&g_one);
    for (i = 0; i < 3; i++)
        if (g_x[i].pid > 0)
            spawn_kill(&g_x[i]);
    stack_down();
}

START_TEST(upstream_sigkill_restart_under_load)
{
    writer *w = g_w;
    size_t upto[NW];
    int cycles = fx_cycles(), c;
    size_t checked = 0;
    long base;

    atomic_store(&g_epoch, 0);
    stack_up(true, NULL, NULL);
    ck_assert_int_eq(fx_wait_ready(S.proxy.addr, 200, 10000), 0);
    put_machine();
    writers_start(w, NW, W_CREATE_TICK, false);
    fx_sleep_ms(300);
    base = rss_now();
    for (c = 0; c < cycles; c++) {
        const char *const *none = NULL;
        char cmd[128];
        fx_sleep_ms(150);
        ck_assert_int_eq(fx_wait_ready(S.proxy.addr, 200, 10000), 0);
        snapshot_counts(w, NW, upto);
        checked += verify_acked("sigkill", w, NW, atomic_load(&g_epoch), upto);
        /* The upstream dies mid-write and comes back empty on a new port. */
        spawn_kill(&S.testd);
        atomic_fetch_add(&g_epoch, 1);
        ck_assert_int_eq(fx_testd(&S.testd, none), 0);
        snprintf(cmd, sizeof cmd, "upstream %s", S.testd.addr);
        relay_cmd(cmd);
        ck_assert_msg(fx_wait_ready(S.proxy.addr, 200, 15000) == 0,
                      "cycle %d: proxy not ready again after the upstream restart", c);
        put_machine();
    }
    fx_sleep_ms(150);
    writers_stop(w, NW);
    snapshot_counts(w, NW, upto);
    checked += verify_acked("sigkill", w, NW, atomic_load(&g_epoch), upto);
    fprintf(stderr, "[sigkill] %d cycles, %zu acked writes verified in the upstream WAL\n", cycles,
            checked);
    writers_assert_sane("sigkill", w, NW);
    ck_assert_uint_gt(checked, 0);
    rss_check("sigkill", base);
    writers_free(w, NW);
    stack_down();
}
END_TEST

static void check_sse_against_wal(const char *name, fx_sse *all, fx_sse *one, const char *inst)
{
    fx_wal wal;
    char why[512];
    uint64_t last_all = 0, last_one = 0;
    size_t i;

    ck_assert_int_eq(fx_wait_ready(S.proxy.addr, 200, 15000), 0);
    ck_assert_msg(fx_wal_read(S.proxy.addr, &wal, why, sizeof why) == 0, "[%s] WAL: %s", name, why);
    for (i = 0; i < wal.n; i++) {
        if (strcmp(wal.v[i].type, "apply_event") != 0)
            continue;
        last_all = wal.v[i].offset;
        if (strcmp(wal.v[i].instance_id, inst) == 0)
            last_one = wal.v[i].offset;
    }
    ck_assert_uint_gt(last_all, 0);
    ck_assert_msg(fx_sse_wait_id(all, last_all, 20000) == 0,
                  "[%s] WATCH_ALL stream never reached the last event %" PRIu64 " (%zu ids)", name,
                  last_all, all->n);
    ck_assert_msg(fx_sse_wait_id(one, last_one, 20000) == 0,
                  "[%s] WATCH_INSTANCE stream never reached %" PRIu64, name, last_one);
    {
        int rc_all, rc_one;
        char why_one[512];
        pthread_mutex_lock(&all->mu); /* no assertion while held: the follower would block */
        fprintf(stderr, "[%s] WATCH_ALL: %zu events, %u opens, %u ends, %u error events (%s)\n",
                name, all->n, all->opens, all->ends, all->errors_seen, all->last_error);
        rc_all = fx_sse_check(all, &wal, NULL, last_all, why, sizeof why);
        pthread_mutex_unlock(&all->mu);
        pthread_mutex_lock(&one->mu);
        fprintf(stderr,
                "[%s] WATCH_INSTANCE: %zu events, %u opens, %u ends, %u error events (%s)\n", name,
                one->n, one->opens, one->ends, one->errors_seen, one->last_error);
        rc_one = fx_sse_check(one, &wal, inst, last_one, why_one, sizeof why_one);
        pthread_mutex_unlock(&one->mu);
        fx_wal_free(&wal);
        ck_assert_msg(rc_all == 0, "[%s] WATCH_ALL: %s", name, why);
        ck_assert_msg(rc_one == 0, "[%s] WATCH_INSTANCE: %s", name, why_one);
    }
}

START_TEST(relay_cut_during_sse)
{
    writer *w = g_w;
    size_t upto[NW];
    fx_sse *all = &g_all, *one = &g_one;
    int cycles = fx_cycles(), c;
    long base;
    size_t checked;

    atomic_store(&g_epoch, 0);
    stack_up(true, NULL, NULL);
    ck_assert_int_eq(fx_wait_ready(S.proxy.addr, 200, 10000), 0);
    put_machine();
    create_instance("hot-0");
    create_instance("hot-1");
    ck_assert_int_eq(fx_sse_start(all, S.proxy.addr, "/v1/watch", true), 0);
    ck_assert_int_eq(fx_sse_start(one, S.proxy.addr, "/v1/instances/hot-0/watch", true), 0);
    ck_assert_int_eq(fx_sse_wait_open(all, 1, 10000), 0);
    ck_assert_int_eq(fx_sse_wait_open(one, 1, 10000), 0);
    writers_start(w, NW, W_TICK, false);
    fx_sleep_ms(300);
    base = rss_now();
    for (c = 0; c < cycles; c++) {
        fx_sleep_ms(150);
        relay_cmd("cut");
    }
    fx_sleep_ms(300);
    writers_stop(w, NW);
    check_sse_against_wal("cut-sse", all, one, "hot-0");
    snapshot_counts(w, NW, upto);
    checked = verify_acked("cut-sse", w, NW, 0, upto);
    fprintf(stderr, "[cut-sse] %d cuts, %zu acked writes verified\n", cycles, checked);
    writers_assert_sane("cut-sse", w, NW);
    fx_sse_stop(all);
    fx_sse_stop(one);
    rss_check("cut-sse", base);
    writers_free(w, NW);
    stack_down();
}
END_TEST

START_TEST(upstream_stalled_past_timeout)
{
    int cycles = fx_cycles(), c;
    long base;
    unsigned n504 = 0, n503 = 0;

    stack_up(true, NULL, NULL);
    ck_assert_int_eq(fx_wait_ready(S.proxy.addr, 200, 10000), 0);
    put_machine();
    create_instance("hot-0");
    base = rss_now();
    for (c = 0; c < cycles; c++) {
        fx_resp r;
        relay_cmd("stall on");
        r = call("GET", "/v1/ping", NULL);
        /* Answered within the timeout + margin (call() fails on a hang). */
        ck_assert_msg(fx_is_problem(&r, 504, "UPSTREAM_TIMEOUT") ||
                          fx_is_problem(&r, 503, "UPSTREAM_UNAVAILABLE"),
                      "cycle %d: stalled ping -> %ld %.200s", c, r.status, r.body);
        if (r.status == 504)
            n504++;
        else
            n503++;
        fx_resp_free(&r);
        r = call("POST", "/v1/instances/hot-0/events", "{\"event\":\"T\"}");
        ck_assert_msg(r.status == 504 || r.status == 503, "cycle %d: stalled write -> %ld", c,
                      r.status);
        fx_resp_free(&r);
        relay_cmd("stall off");
        call_until_ok("GET", "/v1/ping", NULL);
    }
    fprintf(stderr, "[stall] %d cycles: %u x 504, %u x 503\n", cycles, n504, n503);
    ck_assert_uint_gt(n504, 0); /* the request timeout itself fired at least once */
    ck_assert_int_eq(fx_wait_ready(S.proxy.addr, 200, 10000), 0);
    rss_check("stall", base);
    stack_down();
}
END_TEST

/* The upstream refuses every connection: requests fail fast with 503 and
 * Retry-After (never wait for the request timeout), /readyz follows, and
 * the pool recovers by itself once connections are accepted again. */
START_TEST(upstream_refuses_connections)
{
    int cycles = fx_cycles(), c;
    long base;
    long long slowest = 0;
    char ra[32];

    stack_up(true, NULL, NULL);
    ck_assert_int_eq(fx_wait_ready(S.proxy.addr, 200, 10000), 0);
    base = rss_now();
    for (c = 0; c < cycles; c++) {
        fx_resp r;
        relay_cmd("refuse on");
        relay_cmd("cut");
        ck_assert_msg(fx_wait_ready(S.proxy.addr, 503, 10000) == 0,
                      "cycle %d: readyz stayed 200 with no upstream", c);
        r = call("GET", "/v1/ping", NULL);
        ck_assert_msg(fx_is_problem(&r, 503, "UPSTREAM_UNAVAILABLE"),
                      "cycle %d: ping with the upstream refusing -> %ld %.200s", c, r.status,
                      r.body);
        ck_assert_msg(fx_header(&r, "Retry-After", ra, sizeof ra) != NULL,
                      "cycle %d: 503 without Retry-After", c);
        /* Fail fast is reported, not asserted (no timing assertions): the
         * hang bound in call() is the only limit enforced. */
        if (r.ms > slowest)
            slowest = r.ms;
        fx_resp_free(&r);
        relay_cmd("refuse off");
        ck_assert_msg(fx_wait_ready(S.proxy.addr, 200, 10000) == 0,
                      "cycle %d: the pool did not recover", c);
        call_until_ok("GET", "/v1/ping", NULL);
    }
    fprintf(stderr, "[refuse] %d cycles; slowest 503 while refused: %lld ms (request timeout %d)\n",
            cycles, slowest, REQ_TIMEOUT_MS);
    rss_check("refuse", base);
    stack_down();
}
END_TEST

START_TEST(garbled_frame_from_upstream)
{
    int cycles = fx_cycles(), c;
    long base;
    unsigned failed_ok = 0;

    stack_up(true, NULL, NULL);
    ck_assert_int_eq(fx_wait_ready(S.proxy.addr, 200, 10000), 0);
    put_machine();
    create_instance("hot-0");
    base = rss_now();
    for (c = 0; c < cycles; c++) {
        unsigned long long before = relay_stat("garbled");
        int i;
        relay_cmd("garble");
        for (i = 0; i < 200 && relay_stat("garbled") == before; i++) {
            fx_resp r = call("GET", "/v1/instances/hot-0", NULL);
            if (r.status == 200) {
                /* A 200 must carry the right, intact object: never garbage. */
                cJSON *j = cJSON_Parse(r.body);
                cJSON *m = j != NULL ? cJSON_GetObjectItemCaseSensitive(j, "machine") : NULL;
                cJSON *st = j != NULL ? cJSON_GetObjectItemCaseSensitive(j, "state") : NULL;
                ck_assert_msg(cJSON_IsString(m) && strcmp(m->valuestring, "m") == 0 &&
                                  cJSON_IsString(st) && strcmp(st->valuestring, "a") == 0,
                              "cycle %d: 200 with a wrong body: %.200s", c, r.body);
                cJSON_Delete(j);
            } else {
                ck_assert_msg(fx_is_problem(&r, 502, NULL) || fx_is_problem(&r, 503, NULL) ||
                                  fx_is_problem(&r, 504, NULL),
                              "cycle %d: garbled answer -> %ld %.200s", c, r.status, r.body);
                failed_ok++;
            }
            fx_resp_free(&r);
        }
        ck_assert_msg(relay_stat("garbled") > before, "cycle %d: the garble never fired", c);
        call_until_ok("GET", "/v1/ping", NULL);
    }
    fprintf(stderr, "[garble] %d cycles, %u requests failed cleanly with 5xx\n", cycles, failed_ok);
    rss_check("garble", base);
    stack_down();
}
END_TEST

START_TEST(upstream_refuses_auth)
{
    static const char *const td[] = {"--token", "right-token", NULL};
    static const char *const px[] = {"--upstream-token", "wrong-token", NULL};
    int cycles = fx_cycles(), c;
    unsigned n502 = 0, n503 = 0;
    long base;
    spawned *good = &g_x[0];
    char log2[300];

    stack_up(true, td, px);
    fx_sleep_ms(300);
    base = rss_now();
    for (c = 0; c < cycles; c++) {
        fx_resp r = call("GET", "/v1/ping", NULL);
        /* REST-API.md: UNAUTHORIZED / AUTH_FAILED from the upstream (the
         * proxy's own credentials are wrong) is a 502, so an operator can
         * tell bad credentials from an upstream that is down (503). */
        ck_assert_msg(fx_is_problem(&r, 502, "AUTH_FAILED") ||
                          fx_is_problem(&r, 502, "UNAUTHORIZED"),
                      "cycle %d: ping with refused auth -> %ld %.200s (want 502 AUTH_FAILED)", c,
                      r.status, r.body);
        if (r.status == 502)
            n502++;
        else
            n503++;
        fx_resp_free(&r);
        r = call("GET", "/readyz", NULL);
        ck_assert_msg(r.status == 503, "cycle %d: readyz %ld with no authenticated upstream", c,
                      r.status);
        fx_resp_free(&r);
        relay_cmd("cut");
    }
    fprintf(stderr, "[auth] %d cycles: %u x 502, %u x 503\n", cycles, n502, n503);
    rss_check("auth", base);
    /* Control: the right token works through the same relay. */
    {
        static const char *const ok[] = {"--upstream-token", "right-token", NULL};
        fx_resp r;
        snprintf(log2, sizeof log2, "%s/proxy-good.log", S.dir);
        ck_assert_int_eq(fx_proxy(good, NULL, S.relay.addr, ok, log2), 0);
        ck_assert_int_eq(fx_wait_ready(good->addr, 200, 10000), 0);
        fx_http(good->addr, "GET", "/v1/ping", NULL, 0, NULL, BOUND_MS, &r);
        ck_assert_int_eq(r.status, 200);
        fx_resp_free(&r);
        spawn_stop(good, 5000);
    }
    stack_down();
}
END_TEST

/* A self-signed certificate for 127.0.0.1 (its own CA) in dir/NAME.pem and
 * dir/NAME.key, made with the openssl command line tool. */
static void make_cert(const char *dir, const char *name)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
             "-keyout %s/%s.key -out %s/%s.pem >/dev/null 2>&1",
             dir, name, dir, name);
    ck_assert_msg(system(cmd) == 0, "openssl failed: %s", cmd);
}

static void expect_unavailable(const char *addr, int cycles, const char *name)
{
    int c;
    for (c = 0; c < cycles; c++) {
        fx_resp r;
        fx_http(addr, "GET", "/v1/ping", NULL, 0, NULL, BOUND_MS, &r);
        ck_assert_msg(!r.hung, "[%s] ping hung", name);
        ck_assert_msg(fx_is_problem(&r, 503, NULL) || fx_is_problem(&r, 502, NULL),
                      "[%s] cycle %d: ping -> %ld %.200s", name, c, r.status, r.body);
        fx_resp_free(&r);
        fx_http(addr, "GET", "/readyz", NULL, 0, NULL, BOUND_MS, &r);
        ck_assert_msg(r.status == 503, "[%s] readyz %ld", name, r.status);
        fx_resp_free(&r);
        if (S.has_relay)
            relay_cmd("cut");
        fx_sleep_ms(20);
    }
}

START_TEST(tls_handshake_failure)
{
    char good_pem[300], good_key[300], wrong_pem[300], log2[300];
    spawned *tls_td = &g_x[1], *p2 = &g_x[2];
    int cycles = fx_cycles();
    long base;

    /* 1. --upstream-tls against a plain testd (through the relay). */
    {
        static const char *const px[] = {"--upstream-tls", "--upstream-insecure", NULL};
        stack_up(true, NULL, px);
        fx_sleep_ms(300);
        base = rss_now();
        expect_unavailable(S.proxy.addr, cycles, "tls-to-plain");
        rss_check("tls-to-plain", base);
    }
    /* 2. A TLS testd whose certificate the proxy's CA does not sign. */
    make_cert(S.dir, "good");
    make_cert(S.dir, "wrong");
    snprintf(good_pem, sizeof good_pem, "%s/good.pem", S.dir);
    snprintf(good_key, sizeof good_key, "%s/good.key", S.dir);
    snprintf(wrong_pem, sizeof wrong_pem, "%s/wrong.pem", S.dir);
    {
        const char *const td[] = {"--tls-cert", good_pem, "--tls-key", good_key, NULL};
        const char *const bad[] = {"--upstream-tls", "--upstream-ca", wrong_pem, NULL};
        const char *const ok[] = {"--upstream-tls", "--upstream-ca", good_pem, NULL};
        fx_resp r;

        ck_assert_int_eq(fx_testd(tls_td, td), 0);
        snprintf(log2, sizeof log2, "%s/proxy-wrongca.log", S.dir);
        ck_assert_int_eq(fx_proxy(p2, NULL, tls_td->addr, bad, log2), 0);
        fx_sleep_ms(300);
        base = fx_rss_kb(p2->pid);
        S.has_relay = false; /* no relay in front of this testd */
        expect_unavailable(p2->addr, cycles, "wrong-ca");
        {
            long now = fx_rss_kb(p2->pid);
            fprintf(stderr, "[wrong-ca] proxy RSS: baseline %ld kB, after %ld kB\n", base, now);
            if (RSS_ASSERT)
                ck_assert_int_lt(now, base + RSS_SLACK_KB);
        }
        spawn_stop(p2, 5000);
        /* Control: the right CA connects. */
        snprintf(log2, sizeof log2, "%s/proxy-goodca.log", S.dir);
        ck_assert_int_eq(fx_proxy(p2, NULL, tls_td->addr, ok, log2), 0);
        ck_assert_msg(fx_wait_ready(p2->addr, 200, 10000) == 0, "TLS with the right CA: not ready");
        fx_http(p2->addr, "GET", "/v1/ping", NULL, 0, NULL, BOUND_MS, &r);
        ck_assert_int_eq(r.status, 200);
        fx_resp_free(&r);
        spawn_stop(p2, 5000);
        spawn_stop(tls_td, 5000);
    }
    stack_down();
}
END_TEST

START_TEST(proxy_restart_with_open_streams)
{
    writer *w = g_w;
    size_t upto[NW];
    fx_sse *all = &g_all, *one = &g_one;
    int cycles = fx_cycles(), c;
    char listen[80];
    unsigned clean_exits = 0;

    atomic_store(&g_epoch, 0);
    stack_up(false, NULL, NULL);
    snprintf(listen, sizeof listen, "%s", S.proxy.addr);
    ck_assert_int_eq(fx_wait_ready(S.proxy.addr, 200, 10000), 0);
    put_machine();
    create_instance("hot-0");
    create_instance("hot-1");
    ck_assert_int_eq(fx_sse_start(all, S.proxy.addr, "/v1/watch", true), 0);
    ck_assert_int_eq(fx_sse_start(one, S.proxy.addr, "/v1/instances/hot-0/watch", true), 0);
    ck_assert_int_eq(fx_sse_wait_open(all, 1, 10000), 0);
    ck_assert_int_eq(fx_sse_wait_open(one, 1, 10000), 0);
    writers_start(w, NW, W_TICK, true);
    for (c = 0; c < cycles; c++) {
        int tries;
        fx_sleep_ms(150);
        /* Streams really open on this proxy before it goes away. */
        ck_assert_msg(fx_sse_wait_open(all, (unsigned)c + 1, 10000) == 0 &&
                          fx_sse_wait_open(one, (unsigned)c + 1, 10000) == 0,
                      "cycle %d: the SSE clients did not get a stream again", c);
        fprintf(stderr, "[proxy-restart] +%lld ms: %s\n", fx_now_ms() - g_t0,
                c % 2 == 0 ? "SIGTERM" : "SIGKILL");
        if (c % 2 == 0) {
            int st = spawn_stop(&S.proxy, 10000); /* SIGTERM: drain, exit 0 */
            ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                          "cycle %d: proxy exit status %d on SIGTERM", c, st);
            clean_exits++;
        } else {
            spawn_kill(&S.proxy);
        }
        fprintf(stderr, "[proxy-restart] +%lld ms: exited\n", fx_now_ms() - g_t0);
        /* Same address again, so the SSE clients reconnect to it. */
        for (tries = 0; tries < 50; tries++) {
            if (fx_proxy(&S.proxy, listen, S.testd.addr, NULL, S.log) == 0)
                break;
            fx_sleep_ms(100);
        }
        ck_assert_msg(S.proxy.pid > 0, "cycle %d: the proxy could not restart on %s", c, listen);
        ck_assert_int_eq(fx_wait_ready(S.proxy.addr, 200, 10000), 0);
        fprintf(stderr, "[proxy-restart] +%lld ms: ready again\n", fx_now_ms() - g_t0);
    }
    fx_sleep_ms(300);
    writers_stop(w, NW);
    check_sse_against_wal("proxy-restart", all, one, "hot-0");
    ck_assert_uint_ge(all->opens, (unsigned)cycles); /* it really reconnected each time */
    ck_assert_uint_ge(one->opens, (unsigned)cycles);
    snapshot_counts(w, NW, upto);
    fprintf(stderr, "[proxy-restart] %d restarts (%u SIGTERM), %zu acked writes verified\n", cycles,
            clean_exits, verify_acked("proxy-restart", w, NW, 0, upto));
    writers_assert_sane("proxy-restart", w, NW);
    fx_sse_stop(all);
    fx_sse_stop(one);
    fprintf(stderr, "[proxy-restart] final proxy RSS %ld kB\n", rss_now());
    writers_free(w, NW);
    stack_down();
}
END_TEST

static Suite *scenarios_suite(void)
{
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("scenarios");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, upstream_sigkill_restart_under_load);
    tcase_add_test(tc, relay_cut_during_sse);
    tcase_add_test(tc, upstream_stalled_past_timeout);
    tcase_add_test(tc, upstream_refuses_connections);
    tcase_add_test(tc, garbled_frame_from_upstream);
    tcase_add_test(tc, upstream_refuses_auth);
    tcase_add_test(tc, tls_handshake_failure);
    tcase_add_test(tc, proxy_restart_with_open_streams);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_ALL);
    sr = srunner_create(scenarios_suite());
    /* No fork: the teardown runs after a failed assertion too, and stops
     * the threads and processes the scenario left. */
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
