/* test_edges.c: the daemon's small modules that had no unit test: bearer
 * auth, CORS decisions, the /metrics text (counters from struct metrics,
 * gauges from their owners) and the sd_notify datagram. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "auth.h"
#include "cors.h"
#include "metrics.h"
#include "notify.h"
#include "route.h"

START_TEST(test_auth)
{
    auth *a = NULL;
    ck_assert_int_eq(auth_new(&a, NULL, 0), 0);
    ck_assert(!auth_enabled(a));
    ck_assert(auth_check(a, NULL)); /* no tokens: everything passes */
    auth_free(a);
    const char *toks[] = {"s3cret", "other"};
    ck_assert_int_eq(auth_new(&a, toks, 2), 0);
    ck_assert(auth_enabled(a));
    ck_assert(auth_check(a, "Bearer s3cret"));
    ck_assert(auth_check(a, "Bearer other"));
    static const char *const bad[] = {
        NULL, "", "Bearer", "Bearer ", "Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "s3cret"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!auth_check(a, bad[i]), "accepted %s", bad[i] ? bad[i] : "(none)");
    auth_free(a);
}
END_TEST

START_TEST(test_cors)
{
    cors *c = NULL;
    ck_assert_int_eq(cors_new(&c, NULL, 0), 0);
    ck_assert(!cors_enabled(c));
    ck_assert_ptr_null(cors_allow(c, "https://a.example"));
    cors_free(c);
    const char *one[] = {"https://a.example"};
    ck_assert_int_eq(cors_new(&c, one, 1), 0);
    ck_assert(cors_enabled(c));
    ck_assert_str_eq(cors_allow(c, "https://a.example"), "https://a.example");
    ck_assert_ptr_null(cors_allow(c, "https://a.example.evil"));
    ck_assert_ptr_null(cors_allow(c, "http://a.example"));
    ck_assert_ptr_null(cors_allow(c, NULL));
    cors_free(c);
    const char *any[] = {"*"};
    ck_assert_int_eq(cors_new(&c, any, 1), 0);
    ck_assert_str_eq(cors_allow(c, "https://b.example"), "https://b.example");
    ck_assert_ptr_null(cors_allow(c, NULL));
    cors_free(c);
}
END_TEST

START_TEST(test_metrics_gauges_from_owners)
{
    metrics m;
    metrics_init(&m);
    metrics_observe(&m, route_get(R_PING), 200, 0.002);
    metrics_observe(&m, route_get(R_PING), 503, 0.5);
    metrics_observe(&m, NULL, 404, 0.0001);
    metrics_gauges g = {.http_inflight = 7,
                        .http_connections = 11,
                        .sse_streams = 13,
                        .configured = 2,
                        .ready = 1,
                        .upstream_inflight = 5};
    size_t len = 0;
    char *t = metrics_render(&m, &g, &len);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(len, strlen(t));
    ck_assert_ptr_nonnull(strstr(t, "\nrstmdb_proxy_http_inflight_requests 7\n"));
    ck_assert_ptr_nonnull(strstr(t, "\nrstmdb_proxy_http_connections 11\n"));
    ck_assert_ptr_nonnull(strstr(t, "\nrstmdb_proxy_sse_streams 13\n"));
    ck_assert_ptr_nonnull(strstr(t, "rstmdb_proxy_upstream_connections{state=\"ready\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "route=\"ping\",status=\"200\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "route=\"ping\",status=\"503\"} 1\n"));
    ck_assert_ptr_nonnull(
        strstr(t, "rstmdb_proxy_http_request_duration_seconds_count{route=\"ping\"} 2\n"));
    free(t);
}
END_TEST

START_TEST(test_notify)
{
    ck_assert_int_eq(notify_send(NULL, "READY=1"), 0); /* not under systemd */
    char dir[] = "/tmp/rstmdb-notify-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/sock", dir);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(notify_send(path, "READY=1\nSTATUS=serving"), 0);
    char buf[64] = {0};
    ck_assert_int_eq(recv(fd, buf, sizeof buf - 1, 0), 22);
    ck_assert_str_eq(buf, "READY=1\nSTATUS=serving");
    close(fd);
    unlink(path);
    rmdir(dir);
    ck_assert_int_eq(notify_send(path, "READY=1"), -1); /* nobody there */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("edges");
    TCase *tc = tcase_create("edges");
    tcase_add_test(tc, test_auth);
    tcase_add_test(tc, test_cors);
    tcase_add_test(tc, test_metrics_gauges_from_owners);
    tcase_add_test(tc, test_notify);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
