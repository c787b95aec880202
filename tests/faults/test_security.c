/* test_security.c: the proxy's security defaults (issue 8), observed from
 * outside: secrets never appear in /metrics, /v1/info or the logs; the
 * default listen address is loopback; listening beyond loopback without a
 * token warns at start; upstream TLS verifies certificates unless told not
 * to; local bearer tokens are enforced. */
#include "fx.h"

#include <check.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_MS 5000

#define UP_SECRET    "up-secret-7c1f9e2ab44d"
#define LOCAL_SECRET "local-secret-5be03d1c9a77"
#define WRONG_SECRET "wrong-secret-19af6620e0c3"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        return strdup("");
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    if (buf != NULL && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)
        buf[0] = '\0';
    fclose(f);
    return buf;
}

static fx_resp get(const char *addr, const char *path, const char *token)
{
    char auth[128];
    const char *h[] = {auth, NULL};
    fx_resp r;

    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token != NULL ? token : "");
    fx_http(addr, "GET", path, NULL, 0, token != NULL ? h : NULL, T_MS, &r);
    ck_assert_msg(!r.hung, "GET %s hung", path);
    return r;
}

START_TEST(secrets_stay_secret)
{
    static const char *const td[] = {"--token", UP_SECRET, NULL};
    static const char *const px[] = {"--upstream-token", UP_SECRET, "--token", LOCAL_SECRET,
                                     "--log-level",      "debug",   NULL};
    spawned t, p;
    char dir[256], log[300];
    fx_resp r;
    char *text;
    char www[128];

    fx_tmpdir(dir, sizeof dir, "sec");
    snprintf(log, sizeof log, "%s/proxy.log", dir);
    ck_assert_int_eq(fx_testd(&t, td), 0);
    ck_assert_int_eq(fx_proxy(&p, NULL, t.addr, px, log), 0);
    ck_assert_int_eq(fx_wait_ready(p.addr, 200, 10000), 0);

    /* Local auth: none and wrong are 401 with a Bearer challenge. */
    r = get(p.addr, "/v1/ping", NULL);
    ck_assert_msg(fx_is_problem(&r, 401, NULL), "no token -> %ld", r.status);
    ck_assert_ptr_nonnull(fx_header(&r, "WWW-Authenticate", www, sizeof www));
    ck_assert_msg(strncmp(www, "Bearer", 6) == 0, "WWW-Authenticate: %s", www);
    ck_assert_ptr_null(strstr(r.body, LOCAL_SECRET));
    fx_resp_free(&r);
    r = get(p.addr, "/v1/ping", WRONG_SECRET);
    ck_assert_msg(fx_is_problem(&r, 401, NULL), "wrong token -> %ld", r.status);
    ck_assert_ptr_null(strstr(r.body, WRONG_SECRET));
    fx_resp_free(&r);
    r = get(p.addr, "/v1/ping", LOCAL_SECRET);
    ck_assert_int_eq(r.status, 200);
    fx_resp_free(&r);

    /* No secret in what the proxy shows. */
    r = get(p.addr, "/v1/info", LOCAL_SECRET);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_null(strstr(r.body, UP_SECRET));
    ck_assert_ptr_null(strstr(r.body, LOCAL_SECRET));
    fx_resp_free(&r);
    r = get(p.addr, "/metrics", LOCAL_SECRET);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_null(strstr(r.body, UP_SECRET));
    ck_assert_ptr_null(strstr(r.body, LOCAL_SECRET));
    ck_assert_ptr_null(strstr(r.body, WRONG_SECRET));
    fx_resp_free(&r);

    ck_assert_int_eq(spawn_stop(&p, 5000), 0);
    spawn_stop(&t, 5000);
    /* Nor in the logs, even at debug level, even the wrong one a client sent. */
    text = slurp(log);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(text[0] != '\0', "empty proxy log");
    ck_assert_msg(strstr(text, UP_SECRET) == NULL, "upstream token in the log");
    ck_assert_msg(strstr(text, LOCAL_SECRET) == NULL, "local token in the log");
    ck_assert_msg(strstr(text, WRONG_SECRET) == NULL, "a client's wrong token in the log");
    free(text);
}
END_TEST

START_TEST(check_config_redacts_and_defaults_to_loopback)
{
    char cmd[1024], dir[256], out[300];
    char *text;

    fx_tmpdir(dir, sizeof dir, "sec");
    snprintf(out, sizeof out, "%s/check.txt", dir);
    snprintf(cmd, sizeof cmd,
             "env -u RSTMDB_PROXY_CONFIG -u RSTMDB_PROXY_LISTEN %s --check-config "
             "--upstream-token %s --token %s > %s 2>&1",
             spawn_proxy_path(), UP_SECRET, LOCAL_SECRET, out);
    ck_assert_int_eq(system(cmd), 0);
    text = slurp(out);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(strstr(text, "127.0.0.1:7480") != NULL, "default listen not loopback:\n%s", text);
    ck_assert_msg(strstr(text, UP_SECRET) == NULL, "--check-config shows the upstream token");
    ck_assert_msg(strstr(text, LOCAL_SECRET) == NULL, "--check-config shows a local token");
    free(text);
}
END_TEST

static bool log_has_warn(const char *path)
{
    char *text = slurp(path);
    bool w = text != NULL && strstr(text, "\"level\":\"warn\"") != NULL &&
             strstr(text, "loopback") != NULL;
    free(text);
    return w;
}

START_TEST(open_listener_beyond_loopback_warns)
{
    spawned t, p;
    char dir[256], log1[300], log2[300];

    fx_tmpdir(dir, sizeof dir, "sec");
    snprintf(log1, sizeof log1, "%s/wide.log", dir);
    snprintf(log2, sizeof log2, "%s/local.log", dir);
    ck_assert_int_eq(fx_testd(&t, NULL), 0);
    ck_assert_int_eq(fx_proxy(&p, "0.0.0.0:0", t.addr, NULL, log1), 0);
    /* Ready first: daemon/main.c prints its listening line before it
     * handles SIGTERM, so a SIGTERM at once would kill it with status 15. */
    ck_assert_int_eq(fx_wait_ready(p.addr, 200, 10000), 0);
    ck_assert_int_eq(spawn_stop(&p, 5000), 0);
    ck_assert_msg(log_has_warn(log1), "no warning for 0.0.0.0 without a token (log %s)", log1);
    ck_assert_int_eq(fx_proxy(&p, NULL, t.addr, NULL, log2), 0);
    ck_assert_int_eq(fx_wait_ready(p.addr, 200, 10000), 0);
    ck_assert_int_eq(spawn_stop(&p, 5000), 0);
    ck_assert_msg(!log_has_warn(log2), "a loopback listener should not warn (log %s)", log2);
    spawn_stop(&t, 5000);
}
END_TEST

START_TEST(upstream_tls_verifies_by_default)
{
    spawned t, p;
    char dir[256], cmd[1024], pem[300], key[300], log[300];
    fx_resp r;

    fx_tmpdir(dir, sizeof dir, "sec");
    snprintf(pem, sizeof pem, "%s/self.pem", dir);
    snprintf(key, sizeof key, "%s/self.key", dir);
    snprintf(log, sizeof log, "%s/proxy.log", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s "
             ">/dev/null 2>&1",
             key, pem);
    ck_assert_int_eq(system(cmd), 0);
    {
        const char *const td[] = {"--tls-cert", pem, "--tls-key", key, NULL};
        const char *const px[] = {"--upstream-tls", NULL};
        ck_assert_int_eq(fx_testd(&t, td), 0);
        ck_assert_int_eq(fx_proxy(&p, NULL, t.addr, px, log), 0);
    }
    fx_sleep_ms(500);
    /* A self-signed upstream with no CA given: never trusted. */
    r = get(p.addr, "/readyz", NULL);
    ck_assert_msg(r.status == 503, "readyz %ld: an untrusted certificate was accepted", r.status);
    fx_resp_free(&r);
    r = get(p.addr, "/v1/ping", NULL);
    ck_assert_msg(r.status == 503 || r.status == 502, "ping %ld through an untrusted upstream",
                  r.status);
    fx_resp_free(&r);
    spawn_stop(&p, 5000);
    spawn_stop(&t, 5000);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("security");
    TCase *tc = tcase_create("defaults");
    SRunner *sr;
    int failed;

    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_ALL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, secrets_stay_secret);
    tcase_add_test(tc, check_config_redacts_and_defaults_to_loopback);
    tcase_add_test(tc, open_listener_beyond_loopback_warns);
    tcase_add_test(tc, upstream_tls_verifies_by_default);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    /* Forked: a failed check must not leave the next test with its processes. */
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
