/* test_failmalloc.c: a client scenario (connect, machine, instance, watch,
 * apply, event, unwatch, close) run once per allocation it makes, with
 * exactly that allocation failing: no crash, no hang, and no leak.
 *
 * The library's malloc/calloc/realloc/free/strdup/strndup are wrapped at
 * link time (-Wl,--wrap=..., see CMakeLists.txt); cJSON is routed through
 * the same wrappers with its hooks, libevent only for leak tracking. Leaks are
 * checked here by a set of live blocks (back to its baseline after every
 * run), and by LeakSanitizer in an ASan build. */
#include <check.h>
#include <execinfo.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <event2/event.h>

#include "rstmdb/rstmdb.h"
#include "spawn.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

/* The allocator's switchboard: the one piece of global state a link-time
 * wrapper cannot avoid. */
static struct {
    bool armed;
    long count;   /* allocations seen while armed */
    long fail_at; /* fail the allocation with this count (1-based); 0 = none */
    long failed;
} fm;

/* Live blocks from the wrappers: open addressing with tombstones. */
#define LIVE_CAP  (1u << 18)
#define LIVE_TOMB ((uintptr_t)1)
static uintptr_t live[LIVE_CAP];
static long live_count;

static size_t live_slot(uintptr_t p)
{
    return (size_t)((p >> 4) * 2654435761u) & (LIVE_CAP - 1);
}

static void live_add(void *ptr)
{
    uintptr_t p = (uintptr_t)ptr;
    if (!p)
        return;
    for (size_t i = live_slot(p), k = 0; k < LIVE_CAP; i = (i + 1) & (LIVE_CAP - 1), k++) {
        if (live[i] == 0 || live[i] == LIVE_TOMB) {
            live[i] = p;
            live_count++;
            return;
        }
    }
    abort(); /* the test's own table is full */
}

static void live_del(void *ptr)
{
    uintptr_t p = (uintptr_t)ptr;
    if (!p)
        return;
    for (size_t i = live_slot(p), k = 0; k < LIVE_CAP; i = (i + 1) & (LIVE_CAP - 1), k++) {
        if (live[i] == 0)
            return; /* not ours (allocated before wrapping took over) */
        if (live[i] == p) {
            live[i] = LIVE_TOMB;
            live_count--;
            return;
        }
    }
}

static bool fm_fail(void)
{
    if (!fm.armed)
        return false;
    if (++fm.count == fm.fail_at) {
        fm.failed++;
        /* FAILMALLOC_BT=N prints where allocation N is made (debugging aid). */
        const char *bt = getenv("FAILMALLOC_BT");
        if (bt && atol(bt) == fm.fail_at) {
            void *frames[32];
            int n = backtrace(frames, 32);
            fm.armed = false;
            backtrace_symbols_fd(frames, n, 2);
            fm.armed = true;
        }
        return true;
    }
    return false;
}

void *__wrap_malloc(size_t n)
{
    if (fm_fail())
        return NULL;
    void *p = __real_malloc(n);
    live_add(p);
    return p;
}

void *__wrap_calloc(size_t n, size_t m)
{
    if (fm_fail())
        return NULL;
    void *p = __real_calloc(n, m);
    live_add(p);
    return p;
}

void *__wrap_realloc(void *old, size_t n)
{
    if (fm_fail())
        return NULL;
    void *p = __real_realloc(old, n);
    if (p) {
        live_del(old);
        live_add(p);
    }
    return p;
}

void __wrap_free(void *p)
{
    live_del(p);
    __real_free(p);
}

char *__wrap_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = __wrap_malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

char *__wrap_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = __wrap_malloc(len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

/* libevent's allocations are tracked for leaks but never failed: its own
 * OOM paths are not under test (bufferevent_socket_new leaks when an
 * internal calloc fails), only that librstmdb copes when libevent reports
 * a failure through its API. */
static void *ev_malloc(size_t n)
{
    void *p = __real_malloc(n);
    live_add(p);
    return p;
}

static void *ev_realloc(void *old, size_t n)
{
    void *p = __real_realloc(old, n);
    if (p) {
        live_del(old);
        live_add(p);
    }
    return p;
}

static void *hook_malloc(size_t n)
{
    return __wrap_malloc(n);
}

static void hook_free(void *p)
{
    __wrap_free(p);
}

static spawned srv;
static rstmdb_options *opts;

/* The scenario; every step may fail, and then it cleans up and returns. */
static void scenario(int iteration)
{
    rstmdb_sync *s = NULL;
    rstmdb_reply *r = NULL;
    if (rstmdb_sync_connect(&s, srv.addr, opts, NULL) != RSTMDB_OK)
        return;
    cJSON *def = cJSON_Parse("{\"states\":[\"a\",\"b\"],\"initial\":\"a\",\"transitions\":["
                             "{\"from\":\"a\",\"event\":\"GO\",\"to\":\"b\"}]}");
    rstmdb_put_machine_req pm = {.machine = "fm", .version = 1, .definition = def};
    if (def && rstmdb_sync_put_machine(s, &pm, &r) == RSTMDB_OK) {
        rstmdb_put_machine_result pr;
        (void)rstmdb_reply_put_machine(r, &pr);
    }
    rstmdb_reply_free(r);
    r = NULL;
    cJSON_Delete(def);
    char id[32];
    snprintf(id, sizeof(id), "fm-%d", iteration);
    rstmdb_create_instance_req ci = {.machine = "fm", .version = 1, .instance_id = id};
    (void)rstmdb_sync_create_instance(s, &ci, NULL);
    rstmdb_watch_instance_req wi = {.instance_id = id};
    rstmdb_sync_sub *sub = NULL;
    if (rstmdb_sync_watch_instance(s, &wi, &sub, &r) == RSTMDB_OK) {
        rstmdb_watch_instance_result wr;
        (void)rstmdb_reply_watch_instance(r, &wr);
    }
    rstmdb_reply_free(r);
    r = NULL;
    cJSON *payload = cJSON_Parse("{\"k\":\"v\"}");
    rstmdb_apply_event_req ae = {.instance_id = id, .event = "GO", .payload = payload};
    if (rstmdb_sync_apply_event(s, &ae, &r) == RSTMDB_OK) {
        rstmdb_apply_result ar;
        (void)rstmdb_reply_apply_event(r, &ar);
    }
    rstmdb_reply_free(r);
    r = NULL;
    cJSON_Delete(payload);
    if (sub) {
        rstmdb_event *ev = NULL;
        if (rstmdb_sync_next_event(s, sub, 2000, &ev) == RSTMDB_OK) {
            size_t n = 0;
            (void)rstmdb_event_body(ev, &n);
            (void)rstmdb_event_name(ev);
            (void)rstmdb_event_wal_offset(ev);
            rstmdb_event_free(ev);
        }
        (void)rstmdb_sync_unwatch(s, sub);
    }
    (void)rstmdb_sync_call_json(s, "GET_INSTANCE", "{\"instance_id\":\"nope\"}", 22, &r);
    if (r) {
        const rstmdb_error *e = rstmdb_reply_error(r);
        (void)rstmdb_is_not_found(e);
    }
    rstmdb_reply_free(r);
    rstmdb_sync_close(s);
}

START_TEST(test_every_allocation_fails_once)
{
    ck_assert_int_eq(spawn_testd(&srv, NULL), 0);
    ck_assert_int_eq(rstmdb_options_new(&opts), RSTMDB_OK);
    rstmdb_options_set_connect_timeout_ms(opts, 3000);
    rstmdb_options_set_request_timeout_ms(opts, 3000);
    /* Warm-up: one-time allocations (libevent's globals, lazily made
     * tables) happen here and are not counted as leaks. */
    scenario(0);
    long baseline = live_count;
    fm.armed = true;
    fm.count = 0;
    fm.fail_at = 0;
    scenario(1);
    fm.armed = false;
    long total = fm.count;
    ck_assert_int_eq(live_count, baseline);
    ck_assert_int_gt(total, 50);
    fprintf(stderr, "failmalloc: scenario makes %ld allocations\n", total);
    for (long i = 1; i <= total; i++) {
        fm.count = 0;
        fm.fail_at = i;
        fm.armed = true;
        scenario((int)i + 1);
        fm.armed = false;
        ck_assert_msg(live_count == baseline, "allocation %ld failing leaks %ld block(s)", i,
                      live_count - baseline);
    }
    /* Timing may shift a late allocation past the end of a shorter run. */
    ck_assert_int_ge(fm.failed, total * 9 / 10);
    fprintf(stderr, "failmalloc: %ld of %ld injected failures hit\n", fm.failed, total);
    rstmdb_options_free(opts);
    spawn_stop(&srv, 5000);
}
END_TEST

/* Runs after a failed test too (CK_FORK=no): no server outlives its test. */
static void teardown(void)
{
    if (srv.pid > 0)
        spawn_stop(&srv, 2000);
}

int main(void)
{
    /* Before any allocation of either library. */
    cJSON_Hooks hooks = {hook_malloc, hook_free};
    cJSON_InitHooks(&hooks);
    event_set_mem_functions(ev_malloc, ev_realloc, __wrap_free);
    Suite *s = suite_create("client_failmalloc");
    TCase *tc = tcase_create("failmalloc");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 170);
    tcase_add_test(tc, test_every_allocation_fails_once);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
