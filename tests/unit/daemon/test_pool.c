/* test_pool.c: the pool and hub with an upstream that refuses connections
 * (a loopback port nobody listens on): fail fast, Retry-After, reconnect
 * attempts with backoff, argument checks, clean release. No server needed. */
#include <arpa/inet.h>
#include <check.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hub.h"
#include "pool.h"

/* A loopback port that was free a moment ago: connecting to it is refused. */
static void dead_address(char *buf, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    snprintf(buf, cap, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    close(fd);
}

static int cb_calls;
static void count_cb(const rstmdb_reply *r, void *arg)
{
    (void)r;
    (void)arg;
    cb_calls++;
}

static void run_ms(struct event_base *base, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

START_TEST(test_refused_upstream_fails_fast)
{
    char addr[64];
    dead_address(addr, sizeof addr);
    struct event_base *base = event_base_new();
    pool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.address = addr;
    cfg.size = 2;
    cfg.backoff_initial_ms = 10;
    cfg.backoff_max_ms = 40;
    cfg.jitter_seed = 1;
    pool *p = NULL;
    ck_assert_int_eq(pool_new(&p, base, &cfg, NULL), RSTMDB_OK);
    ck_assert(!pool_ready(p));
    cb_calls = 0;
    pool_call *c = NULL;
    ck_assert_int_eq(pool_call_json(p, "PING", "{}", 2, true, count_cb, NULL, &c),
                     RSTMDB_ERR_CLOSED);
    ck_assert_uint_ge(pool_retry_after_s(p), 1);

    run_ms(base, 300); /* attempts every <= 40 ms per connection, all refused */
    pool_stats st;
    pool_get_stats(p, &st);
    ck_assert_uint_eq(st.connections, 2);
    ck_assert_uint_eq(st.ready, 0);
    ck_assert_uint_ge(st.connect_failures, 6);
    ck_assert_uint_eq(st.reconnects, 0);
    ck_assert_uint_eq(st.inflight, 0);
    ck_assert_uint_ge(pool_retry_after_s(p), 1);
    ck_assert_int_eq(cb_calls, 0);

    /* a subscription without callbacks is refused */
    hub *h = NULL;
    ck_assert_int_eq(hub_new(&h, base, p, NULL), RSTMDB_OK);
    hub_filter f;
    memset(&f, 0, sizeof f);
    hub_sub *s = NULL;
    static const hub_sub_ops ops = {NULL, NULL, NULL, NULL};
    ck_assert_int_eq(hub_subscribe(h, &f, false, 0, &ops, NULL, &s), RSTMDB_ERR_INVALID);
    hub_stats hst;
    hub_get_stats(h, &hst);
    ck_assert_uint_eq(hst.streams, 0);
    hub_free(h);
    pool_free(p);
    event_base_free(base);
}
END_TEST

typedef struct waiter {
    int ready, waiting, errors;
} waiter;

static void nop_ready(void *arg, const rstmdb_error *err)
{
    (void)err;
    ((waiter *)arg)->ready++;
}
static void count_waiting(void *arg)
{
    ((waiter *)arg)->waiting++;
}
static void nop_event(void *arg, const hub_event *ev)
{
    (void)arg;
    (void)ev;
}
static void nop_error(void *arg, const char *code, const char *msg)
{
    (void)code;
    (void)msg;
    ((waiter *)arg)->errors++;
}

/* Without any READY upstream connection a subscription is accepted and
 * told once, from the loop, that it waits (an SSE stream then answers 200
 * and keeps its client); it is neither ready nor failed. */
START_TEST(test_hub_waits_without_upstream)
{
    char addr[64];
    dead_address(addr, sizeof addr);
    struct event_base *base = event_base_new();
    pool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.address = addr;
    cfg.size = 1;
    pool *p = NULL;
    ck_assert_int_eq(pool_new(&p, base, &cfg, NULL), RSTMDB_OK);
    hub *h = NULL;
    ck_assert_int_eq(hub_new(&h, base, p, NULL), RSTMDB_OK);
    static const hub_sub_ops ops = {nop_ready, nop_event, nop_error, count_waiting};
    hub_filter f;
    memset(&f, 0, sizeof f);
    f.include_ctx = true;
    hub_sub *s = NULL;
    waiter w = {0, 0, 0};
    ck_assert_int_eq(hub_subscribe(h, &f, true, 5, &ops, &w, &s), RSTMDB_OK);
    ck_assert_int_eq(w.waiting, 0); /* never from inside hub_subscribe */
    run_ms(base, 200);
    ck_assert_int_eq(w.waiting, 1);
    ck_assert_int_eq(w.ready, 0);
    ck_assert_int_eq(w.errors, 0);
    hub_stats st;
    hub_get_stats(h, &st);
    ck_assert_uint_eq(st.streams, 1);
    ck_assert_uint_eq(st.upstream_subs, 0);
    hub_free(h); /* ends it with SHUTDOWN */
    ck_assert_int_eq(w.errors, 1);
    pool_free(p);
    event_base_free(base);
}
END_TEST

START_TEST(test_arguments)
{
    struct event_base *base = event_base_new();
    pool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    pool *p = NULL;
    rstmdb_error *err = NULL;
    ck_assert_int_eq(pool_new(&p, base, &cfg, &err), RSTMDB_ERR_INVALID); /* no address */
    ck_assert_ptr_null(p);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(rstmdb_error_status(err), RSTMDB_ERR_INVALID);
    rstmdb_error_free(err);
    err = NULL;
    cfg.address = "127.0.0.1:1";
    cfg.size = 65; /* above the hard cap */
    ck_assert_int_eq(pool_new(&p, base, &cfg, &err), RSTMDB_ERR_INVALID);
    ck_assert_ptr_null(p);
    rstmdb_error_free(err);
    pool_free(NULL);
    hub_free(NULL);
    pool_call_cancel(NULL);
    pool_watch_cancel(NULL);
    hub_unsubscribe(NULL);
    ck_assert(!pool_status_is_conn_loss(RSTMDB_OK));
    ck_assert(!pool_status_is_conn_loss(RSTMDB_ERR_SERVER));
    ck_assert(!pool_status_is_conn_loss(RSTMDB_ERR_TIMEOUT));
    ck_assert(pool_status_is_conn_loss(RSTMDB_ERR_CLOSED));
    ck_assert(pool_status_is_conn_loss(RSTMDB_ERR_IO));
    ck_assert(pool_status_is_conn_loss(RSTMDB_ERR_FRAME_CRC));
    event_base_free(base);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("refused");
    tcase_add_test(tc, test_refused_upstream_fails_fast);
    tcase_add_test(tc, test_hub_waits_without_upstream);
    tcase_add_test(tc, test_arguments);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
