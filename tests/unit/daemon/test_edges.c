/* test_edges.c: the daemon's small modules that had no unit test: bearer
 * auth and its cookie parser, CORS decisions (credentials included), the /metrics text (counters
 * from struct metrics, gauges from their owners) and the sd_notify datagram. */
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

static bool allowed(const auth *a, const char *authorization)
{
    auth_request r = {.authorization = authorization, .peer = "127.0.0.1"};
    auth_caller c;
    char why[200];
    bool ok = auth_identify(a, &r, 0, &c, why, sizeof why) == AUTH_OK;
    auth_caller_deinit(&c);
    return ok;
}

START_TEST(test_auth)
{
    auth *a = NULL;
    char why[200];
    auth_config none = {0};
    ck_assert_int_eq(auth_new(&a, &none, why, sizeof why), 0);
    ck_assert(!auth_enabled(a));
    ck_assert(allowed(a, NULL)); /* no tokens: everything passes */
    auth_free(a);
    const char *toks[] = {"s3cret", "other"};
    auth_config two = {.tokens = toks, .ntokens = 2};
    ck_assert_int_eq(auth_new(&a, &two, why, sizeof why), 0);
    ck_assert(auth_enabled(a) && !auth_jwt_enabled(a));
    ck_assert(allowed(a, "Bearer s3cret"));
    ck_assert(allowed(a, "Bearer other"));
    ck_assert(allowed(a, "bearer other")); /* the scheme is case-insensitive */
    static const char *const bad[] = {
        NULL, "", "Bearer", "Bearer ", "Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "s3cret"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!allowed(a, bad[i]), "accepted %s", bad[i] ? bad[i] : "(none)");
    /* A service's rate-limit key is a digest prefix, never the token. */
    auth_request r = {.authorization = "Bearer s3cret"};
    auth_caller c;
    ck_assert_int_eq(auth_identify(a, &r, 0, &c, why, sizeof why), AUTH_OK);
    ck_assert_int_eq(c.kind, CALLER_SERVICE);
    ck_assert_ptr_null(strstr(c.key, "s3cret"));
    ck_assert_int_eq(strncmp(c.key, "token:", 6), 0);
    auth_caller_deinit(&c);
    /* access_token is for the two SSE routes only. */
    auth_request q = {.authorization = "Bearer s3cret", .has_access_token = true};
    ck_assert_int_eq(auth_identify(a, &q, 0, &c, why, sizeof why), AUTH_QUERY_NOT_HERE);
    auth_caller_deinit(&c);
    auth_free(a);
}
END_TEST

START_TEST(test_cookie)
{
    char v[16];
    ck_assert_int_eq(auth_cookie_value("a=1; rstmdb_token=xyz; b=2", "rstmdb_token", v, sizeof v),
                     3);
    ck_assert_str_eq(v, "xyz");
    ck_assert_int_eq(auth_cookie_value("rstmdb_token=\"q\"", "rstmdb_token", v, sizeof v), 1);
    ck_assert_str_eq(v, "q");
    ck_assert_int_eq(auth_cookie_value("x_rstmdb_token=1", "rstmdb_token", v, sizeof v), -1);
    ck_assert_int_eq(auth_cookie_value("rstmdb_token2=1", "rstmdb_token", v, sizeof v), -1);
    ck_assert_int_eq(auth_cookie_value("", "rstmdb_token", v, sizeof v), -1);
    ck_assert_int_eq(auth_cookie_value("t=0123456789abcdefXYZ", "t", v, sizeof v), -2);
    ck_assert_int_eq(auth_cookie_value(";;t=;", "t", v, sizeof v), 0);
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
    ck_assert(cors_credentials(c, "https://a.example"));
    ck_assert(!cors_credentials(c, "https://b.example"));
    cors_free(c);
    const char *any[] = {"*"};
    ck_assert_int_eq(cors_new(&c, any, 1), 0);
    ck_assert_str_eq(cors_allow(c, "https://b.example"), "https://b.example");
    ck_assert_ptr_null(cors_allow(c, NULL));
    ck_assert(!cors_credentials(c, "https://b.example")); /* "*" never with credentials */
    cors_free(c);
    const char *both[] = {"*", "https://a.example"};
    ck_assert_int_eq(cors_new(&c, both, 2), 0);
    ck_assert(cors_credentials(c, "https://a.example"));
    ck_assert(!cors_credentials(c, "https://b.example"));
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
    tcase_add_test(tc, test_cookie);
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
