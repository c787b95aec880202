/* harness.c: event-loop, testd and pool plumbing for the upstream
 * integration tests (see harness.h). Test code only. */
#include "harness.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* testd children of tests still running: a failed assertion jumps out of
 * the test, and up_teardown() (a checked fixture) kills what it left, so
 * no orphan keeps ctest's output pipe open. */
#define UP_MAX_CHILDREN 8
static spawned *children[UP_MAX_CHILDREN];

static void child_track(spawned *p, bool on)
{
    for (int i = 0; i < UP_MAX_CHILDREN; i++) {
        if (on && !children[i]) {
            children[i] = p;
            return;
        }
        if (!on && children[i] == p)
            children[i] = NULL;
    }
}

void up_teardown(void)
{
    for (int i = 0; i < UP_MAX_CHILDREN; i++) {
        if (children[i]) {
            spawn_kill(children[i]);
            children[i] = NULL;
        }
    }
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

bool up_run_until(up_env *e, up_pred pred, void *arg, int limit_ms)
{
    /* A periodic no-op timer keeps EVLOOP_ONCE from sleeping past checks. */
    struct event *tick = event_new(e->base, -1, EV_PERSIST, wake_cb, NULL);
    struct timeval tv = {0, 20000};
    event_add(tick, &tv);
    bool ok = false;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (pred && pred(arg)) {
            ok = true;
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        long ms = (long)(t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (ms >= limit_ms)
            break;
        event_base_loop(e->base, EVLOOP_ONCE);
    }
    event_free(tick);
    return ok;
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

void up_run_for(up_env *e, int ms)
{
    up_run_until(e, never, NULL, ms);
}

static bool pool_all_ready(void *arg)
{
    up_env *e = arg;
    pool_stats st;
    pool_get_stats(e->pool, &st);
    return st.ready == st.connections;
}

static void start_testd(up_env *e, const char *const extra[], int port)
{
    const char *argv[32];
    char listen[64];
    size_t n = 0;
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    argv[n++] = spawn_testd_path();
    argv[n++] = "--listen";
    argv[n++] = listen;
    argv[n++] = "--control";
    argv[n++] = "127.0.0.1:0";
    for (size_t i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    /* The same port right after a kill may briefly be busy: retry a little. */
    for (int attempt = 0; attempt < 20; attempt++) {
        if (spawn_start(&e->testd, argv, NULL, 3000) == 0 &&
            spawn_read_control(&e->testd, 5000) == 0) {
            e->testd_up = true;
            child_track(&e->testd, true);
            return;
        }
        spawn_kill(&e->testd);
        up_run_for(e, 100);
    }
    ck_abort_msg("rstmdb-testd did not start on %s", listen);
}

void up_start_testd(up_env *e, unsigned size, const char *const extra[])
{
    memset(e, 0, sizeof *e);
    e->base = event_base_new();
    ck_assert_ptr_nonnull(e->base);
    start_testd(e, extra, 0);
    e->cfg.address = e->testd.addr;
    e->cfg.size = size;
    e->cfg.connect_timeout_ms = 2000;
    e->cfg.request_timeout_ms = 5000;
    e->cfg.backoff_initial_ms = 20;
    e->cfg.backoff_max_ms = 200;
    e->cfg.jitter_seed = 12345;
}

void up_start(up_env *e, unsigned size, const char *const extra[])
{
    up_start_testd(e, size, extra);
    rstmdb_error *err = NULL;
    ck_assert_int_eq(pool_new(&e->pool, e->base, &e->cfg, &err), RSTMDB_OK);
    ck_assert_msg(up_run_until(e, pool_all_ready, e, 5000), "pool never became ready");
}

void up_stop(up_env *e)
{
    pool_free(e->pool);
    e->pool = NULL;
    if (e->testd_up)
        spawn_stop(&e->testd, 2000);
    child_track(&e->testd, false);
    e->testd_up = false;
    event_base_free(e->base);
}

void up_kill_testd(up_env *e)
{
    spawn_kill(&e->testd);
    child_track(&e->testd, false);
    e->testd_up = false;
}

void up_restart_testd(up_env *e, const char *const extra[])
{
    int port = e->testd.port;
    start_testd(e, extra, port);
    ck_assert_int_eq(e->testd.port, port);
}

void up_control(up_env *e, const char *cmd)
{
    char reply[256];
    ck_assert_msg(spawn_control(&e->testd, cmd, reply, sizeof reply) == 0, "control %s: %s", cmd,
                  reply);
}

typedef struct call_box {
    bool done;
    int status;
    char *result;
} call_box;

static void box_cb(const rstmdb_reply *r, void *arg)
{
    call_box *b = arg;
    b->done = true;
    b->status = rstmdb_reply_status(r);
    size_t len = 0;
    const char *raw = rstmdb_reply_result_raw(r, &len);
    if (raw) {
        b->result = malloc(len + 1);
        memcpy(b->result, raw, len);
        b->result[len] = '\0';
    }
}

static bool box_done(void *arg)
{
    return ((call_box *)arg)->done;
}

int up_call(up_env *e, pool *p, const char *op, const char *params, char **result)
{
    call_box b = {false, 0, NULL};
    int rc = pool_call_json(p, op, params, strlen(params), true, box_cb, &b, NULL);
    if (rc != RSTMDB_OK)
        return rc;
    ck_assert_msg(up_run_until(e, box_done, &b, 10000), "%s never answered", op);
    if (result)
        *result = b.result;
    else
        free(b.result);
    return b.status;
}

char *up_call_ok(up_env *e, pool *p, const char *op, const char *params)
{
    char *res = NULL;
    int st = up_call(e, p, op, params, &res);
    ck_assert_msg(st == RSTMDB_OK, "%s %s failed: %s", op, params, rstmdb_strerror(st));
    return res;
}

uint64_t up_json_u64(const char *json, const char *key)
{
    /* Offsets exceed 2^32 but stay below 2^53: a double holds them exactly. */
    cJSON *doc = cJSON_Parse(json);
    ck_assert_ptr_nonnull(doc);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);
    ck_assert_msg(cJSON_IsNumber(v), "no %s in %s", key, json);
    uint64_t out = (uint64_t)v->valuedouble;
    cJSON_Delete(doc);
    return out;
}

void up_seed_machines(up_env *e, pool *p)
{
    static const char def[] =
        "\"definition\":{\"states\":[\"s0\",\"s1\"],\"initial\":\"s0\",\"transitions\":["
        "{\"from\":[\"s0\",\"s1\"],\"event\":\"GO\",\"to\":\"s1\"},"
        "{\"from\":[\"s0\",\"s1\"],\"event\":\"BACK\",\"to\":\"s0\"}]}";
    char params[512];
    snprintf(params, sizeof params, "{\"machine\":\"m\",\"version\":1,%s}", def);
    free(up_call_ok(e, p, "PUT_MACHINE", params));
    snprintf(params, sizeof params, "{\"machine\":\"n\",\"version\":2,%s}", def);
    free(up_call_ok(e, p, "PUT_MACHINE", params));
}

uint64_t up_apply(up_env *e, pool *p, const char *id, const char *event, const char *extra_json)
{
    char params[1024];
    snprintf(params, sizeof params, "{\"instance_id\":\"%s\",\"event\":\"%s\"%s%s}", id, event,
             extra_json ? "," : "", extra_json ? extra_json : "");
    char *res = up_call_ok(e, p, "APPLY_EVENT", params);
    uint64_t off = up_json_u64(res, "wal_offset");
    free(res);
    return off;
}
