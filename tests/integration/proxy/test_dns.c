/* test_dns.c: the proxy's upstream given as a host name, resolved through a
 * test DNS server (tests/support/dnsd) on a loopback UDP port: HTTP is served
 * while a lookup is outstanding, every returned address is tried in order, a
 * failing lookup is a counted connect failure that names the name, and a
 * name that moves is followed on reconnect. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dnsd.h"
#include "phelp.h"

#define NAME "rstmdb.upstream.test"

static dnsd *dns;
static char dns_addr[64];

static void setup(void)
{
    ck_assert_int_eq(dnsd_start(&dns, dns_addr, sizeof dns_addr), 0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void teardown(void)
{
    dnsd_stop(dns);
    dns = NULL;
}

static long get_status(penv *e, const char *path)
{
    hresp r;
    http_req(e, NULL, "GET", path, NULL, NULL, &r);
    long st = r.status;
    hresp_free(&r);
    return st;
}

static long wait_status(penv *e, const char *path, long status)
{
    long st = 0;
    for (int i = 0; i < 250 && (st = get_status(e, path)) != status; i++)
        usleep(20000);
    return st;
}

/* Start the proxy on NAME:port through the test DNS server, with
 * `pool_size` upstream connections. */
static void start_named_proxy(penv *e, int port, const char *pool_size)
{
    char upstream[128];
    snprintf(upstream, sizeof upstream, NAME ":%d", port);
    const char *args[] = {"--dns-server", dns_addr,           "--backoff-initial-ms",
                          "20",           "--backoff-max-ms", "200",
                          "--pool-size",  pool_size,          NULL};
    penv_start_proxy(e, upstream, args);
}

START_TEST(lookup_never_blocks_http)
{
    penv e;
    memset(&e, 0, sizeof e);
    ck_assert_int_eq(spawn_testd(&e.testd, NULL), 0);
    /* The first address has no server: the pool must go on to the second. */
    dnsd_answer(dns, "127.0.0.3,127.0.0.1");
    dnsd_hold(dns, true);
    start_named_proxy(&e, e.testd.port, "2");
    for (int i = 0; i < 250 && dnsd_waiting(dns) == 0; i++)
        usleep(20000);
    ck_assert_uint_gt(dnsd_waiting(dns), 0);
    /* Answered while the lookup is still unanswered: nothing waits for it. */
    ck_assert_int_eq(get_status(&e, "/healthz"), 200);
    ck_assert_int_eq(get_status(&e, "/v1/ping"), 503);
    ck_assert_int_eq(get_status(&e, "/readyz"), 503);
    ck_assert_uint_gt(dnsd_waiting(dns), 0);
    dnsd_hold(dns, false);
    ck_assert_int_eq(wait_status(&e, "/v1/ping", 200), 200);
    ck_assert_int_eq(penv_stop(&e), 0);
}
END_TEST

START_TEST(failed_lookup_is_a_connect_failure)
{
    penv e;
    memset(&e, 0, sizeof e);
    ck_assert_int_eq(spawn_testd(&e.testd, NULL), 0);
    dnsd_fail(dns, 3); /* NXDOMAIN */
    start_named_proxy(&e, e.testd.port, "2");
    hresp r;
    char detail[512] = "";
    for (int i = 0; i < 250 && !strstr(detail, "resolve " NAME); i++) {
        http_req(&e, NULL, "GET", "/readyz", NULL, NULL, &r);
        ck_assert_int_eq(r.status, 503);
        hresp_json(&r, "detail", detail, sizeof detail);
        hresp_free(&r);
        usleep(20000);
    }
    ck_assert_msg(strstr(detail, "resolve " NAME ": ") != NULL, "detail: %s", detail);
    http_req(&e, NULL, "GET", "/metrics", NULL, NULL, &r);
    const char *m = strstr(r.body, "\nrstmdb_proxy_upstream_connect_failures_total ");
    ck_assert_ptr_nonnull(m);
    ck_assert_int_gt(atoi(strchr(m + 1, ' ') + 1), 0);
    hresp_free(&r);
    /* The name starts to resolve: the pool connects on its next attempt. */
    dnsd_answer(dns, "127.0.0.1");
    ck_assert_int_eq(wait_status(&e, "/v1/ping", 200), 200);
    ck_assert_int_eq(penv_stop(&e), 0);
}
END_TEST

START_TEST(follows_a_moved_name)
{
    penv e;
    memset(&e, 0, sizeof e);
    ck_assert_int_eq(spawn_testd(&e.testd, NULL), 0);
    /* A second server on another loopback address, same port. */
    spawned b;
    char listen_b[64];
    snprintf(listen_b, sizeof listen_b, "127.0.0.2:%d", e.testd.port);
    const char *argv_b[] = {spawn_testd_path(), "--listen", listen_b, NULL};
    ck_assert_int_eq(spawn_start(&b, argv_b, NULL, 10000), 0);
    dnsd_answer(dns, "127.0.0.1");
    start_named_proxy(&e, e.testd.port, "3");
    ck_assert_int_eq(wait_status(&e, "/v1/ping", 200), 200);
    seed_machines(&e); /* on the first server only */
    hresp r;
    http_req(&e, NULL, "GET", "/v1/machines/m/versions/1", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    hresp_free(&r);
    unsigned before = dnsd_queries(dns);
    /* The name moves, then its old server goes away. */
    dnsd_answer(dns, "127.0.0.2");
    spawn_stop(&e.testd, 2000);
    e.testd.pid = -1;
    long st = 0;
    for (int i = 0; i < 250 && st != 404; i++) {
        http_req(&e, NULL, "GET", "/v1/machines/m/versions/1", NULL, NULL, &r);
        st = r.status;
        hresp_free(&r);
        usleep(20000);
    }
    /* Answered by the second server, which has never seen machine m. */
    ck_assert_int_eq(st, 404);
    ck_assert_uint_gt(dnsd_queries(dns), before);
    ck_assert_int_eq(penv_stop(&e), 0);
    spawn_stop(&b, 2000);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("proxy_dns");
    TCase *tc = tcase_create("dns");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, lookup_never_blocks_http);
    tcase_add_test(tc, failed_lookup_is_a_connect_failure);
    tcase_add_test(tc, follows_a_moved_name);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
