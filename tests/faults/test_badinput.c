/* test_badinput.c: hostile and malformed HTTP input against the real proxy
 * (in front of a real testd). Each case must get a clear 4xx (problem+json
 * where the proxy answers), must never echo raw bytes into a header, and must
 * not disturb anyone else: a pinger thread runs through every test and must
 * see only 200s, /healthz must answer after, and the upstream must never have
 * dropped a pool connection (testd's accepted count does not move). */
#include "echo.h"
#include "fx.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define T_MS 5000 /* client-side bound of every request: a hang fails the test */

static spawned g_testd, g_proxy;
static char g_dir[256];
static unsigned long long g_accepted0;

typedef struct pinger {
    pthread_t th;
    volatile bool stop;
    unsigned ok, failed;
    long last_bad_status;
} pinger;
static pinger g_ping;

static void *pinger_main(void *arg)
{
    pinger *p = arg;
    while (!p->stop) {
        fx_resp r;
        fx_http(g_proxy.addr, "GET", "/v1/ping", NULL, 0, NULL, T_MS, &r);
        if (r.status == 200) {
            p->ok++;
        } else {
            p->failed++;
            p->last_bad_status = r.status;
        }
        fx_resp_free(&r);
        fx_sleep_ms(20);
    }
    return NULL;
}

static unsigned long long testd_accepted(void)
{
    char reply[512];
    const char *p;
    if (spawn_control(&g_testd, "stats", reply, sizeof reply) != 0)
        return 0;
    p = strstr(reply, " accepted=");
    return p != NULL ? strtoull(p + 10, NULL, 10) : 0;
}

static void suite_setup(void)
{
    static const char *const extra[] = {"--idle-timeout-s", "2", NULL};
    char log[300];

    signal(SIGPIPE, SIG_IGN);
    fx_tmpdir(g_dir, sizeof g_dir, "badinput");
    snprintf(log, sizeof log, "%s/proxy.log", g_dir);
    if (fx_testd(&g_testd, NULL) != 0 || fx_proxy(&g_proxy, NULL, g_testd.addr, extra, log) != 0 ||
        fx_wait_ready(g_proxy.addr, 200, 10000) != 0) {
        fprintf(stderr, "badinput: cannot start testd + proxy (log %s)\n", log);
        exit(1);
    }
}

static void suite_teardown(void)
{
    spawn_stop(&g_proxy, 5000);
    spawn_stop(&g_testd, 5000);
}

static void setup(void)
{
    g_accepted0 = testd_accepted();
    memset(&g_ping, 0, sizeof g_ping);
    ck_assert_int_eq(pthread_create(&g_ping.th, NULL, pinger_main, &g_ping), 0);
}

static void teardown(void)
{
    fx_resp r;
    int status;

    g_ping.stop = true;
    pthread_join(g_ping.th, NULL);
    ck_assert_int_eq(waitpid(g_proxy.pid, &status, WNOHANG), 0); /* still running */
    ck_assert_msg(g_ping.failed == 0, "%u pings failed during the test (last status %ld), %u ok",
                  g_ping.failed, g_ping.last_bad_status, g_ping.ok);
    ck_assert_int_eq(fx_http(g_proxy.addr, "GET", "/healthz", NULL, 0, NULL, T_MS, &r), 0);
    ck_assert_int_eq(r.status, 200);
    fx_resp_free(&r);
    ck_assert_msg(testd_accepted() == g_accepted0,
                  "the upstream saw %llu new connections: a pool connection was dropped",
                  testd_accepted() - g_accepted0);
}

static fx_resp req(const char *method, const char *path, const char *body, long len)
{
    static const char *const json[] = {"Content-Type: application/json", NULL};
    fx_resp r;
    int rc = fx_http(g_proxy.addr, method, path, body, len, json, T_MS, &r);
    ck_assert_msg(!r.hung, "%s %s hung past %d ms", method, path, T_MS);
    ck_assert_msg(rc == 0, "%s %s: no response (curl %d)", method, path, r.curl_rc);
    return r;
}

static void expect_problem(const char *method, const char *path, const char *body, long len,
                           long status, const char *code)
{
    fx_resp r = req(method, path, body, len);
    ck_assert_msg(fx_is_problem(&r, status, code), "%s %s -> %ld, want %ld %s: %.300s", method,
                  path, r.status, status, code != NULL ? code : "", r.body);
    fx_resp_free(&r);
}

/* No header of the response may carry the injected text, and no raw CR or
 * LF may appear inside any header value (curl splits lines for us). */
static void assert_no_injection(const fx_resp *r, const char *marker)
{
    const char *p = r->headers;
    while (*p != '\0') {
        const char *eol = strstr(p, "\r\n");
        size_t ll = eol != NULL ? (size_t)(eol - p) : strlen(p);
        ck_assert_msg(!(ll >= strlen(marker) && strncasecmp(p, marker, strlen(marker)) == 0),
                      "injected header line: %.*s", (int)ll, p);
        ck_assert_msg(memchr(p, '\r', ll) == NULL && memchr(p, '\n', ll) == NULL,
                      "raw CR/LF in a header");
        if (eol == NULL)
            break;
        p = eol + 2;
    }
}

static void put_machine(void)
{
    fx_resp r = req("PUT", "/v1/machines/bad/versions/1",
                    "{\"definition\":{\"states\":[\"a\",\"b\"],\"initial\":\"a\","
                    "\"transitions\":[{\"from\":\"a\",\"event\":\"GO\",\"to\":\"b\"}]}}",
                    -1);
    ck_assert_msg(r.status == 200 || r.status == 201, "PUT machine: %ld %s", r.status, r.body);
    fx_resp_free(&r);
}

START_TEST(malformed_json)
{
    static const char *const bodies[] = {"{bad",      "{\"machine\":", "nul", "{\"a\":1,}",
                                         "{\"a\" 1}", "\"\\ud800\"",   "{}{}"};
    size_t i;
    for (i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        expect_problem("POST", "/v1/instances", bodies[i], -1, 400, "BAD_REQUEST");
}
END_TEST

START_TEST(body_not_an_object)
{
    static const char *const bodies[] = {"[1,2]", "42", "\"str\"", "null", "true"};
    size_t i;
    for (i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        expect_problem("POST", "/v1/instances", bodies[i], -1, 400, "BAD_REQUEST");
}
END_TEST

START_TEST(wrong_types)
{
    put_machine();
    expect_problem("POST", "/v1/instances", "{\"machine\":5,\"version\":1}", -1, 400,
                   "BAD_REQUEST");
    expect_problem("POST", "/v1/instances", "{\"machine\":\"bad\",\"version\":\"one\"}", -1, 400,
                   "BAD_REQUEST");
    expect_problem("GET", "/v1/instances?limit=abc", NULL, 0, 400, "BAD_REQUEST");
    expect_problem("GET", "/v1/instances?limit=-1", NULL, 0, 400, "BAD_REQUEST");
    expect_problem("GET", "/v1/instances?limit=99999999999999999999999", NULL, 0, 400,
                   "BAD_REQUEST");
    expect_problem("GET", "/v1/wal?from_offset=1e3", NULL, 0, 400, "BAD_REQUEST");
    expect_problem("GET", "/v1/watch?include_ctx=maybe", NULL, 0, 400, "BAD_REQUEST");
    expect_problem("GET", "/v1/machines/bad/versions/x", NULL, 0, 400, NULL);
}
END_TEST

START_TEST(unknown_query_parameters)
{
    expect_problem("GET", "/v1/instances?bogus=1", NULL, 0, 400, "BAD_REQUEST");
    expect_problem("GET", "/v1/ping?x", NULL, 0, 400, "BAD_REQUEST");
    expect_problem("GET", "/v1/wal?from_offset=0&from_offset=1", NULL, 0, 400, "BAD_REQUEST");
}
END_TEST

START_TEST(huge_body_413)
{
    size_t n = 2u << 20; /* default max_body_bytes is 1 MiB */
    char *big = malloc(n + 1);
    char raw[4096];
    char hdr[256];
    int st;

    ck_assert_ptr_nonnull(big);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    expect_problem("POST", "/v1/instances", big, (long)n, 413, "PAYLOAD_TOO_LARGE");
    free(big);
    /* The same announced by Content-Length but never sent: the proxy must
     * refuse from the header alone rather than wait for 64 MiB. */
    snprintf(hdr, sizeof hdr,
             "POST /v1/instances HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: 67108864\r\nConnection: close\r\n\r\n{");
    st = fx_raw(g_proxy.addr, hdr, strlen(hdr), T_MS, raw, sizeof raw);
    ck_assert_msg(st == 413, "announced 64 MiB body -> %d: %.200s", st, raw);
}
END_TEST

START_TEST(huge_chunked_body_413)
{
    /* Chunked: no length up front; the limit must still hold. */
    char *req_buf;
    size_t cap = (3u << 20) + 4096, off = 0;
    char raw[4096];
    int st, i;

    req_buf = malloc(cap);
    ck_assert_ptr_nonnull(req_buf);
    off += (size_t)snprintf(req_buf, cap,
                            "POST /v1/instances HTTP/1.1\r\nHost: x\r\nContent-Type: "
                            "application/json\r\nTransfer-Encoding: chunked\r\nConnection: "
                            "close\r\n\r\n");
    for (i = 0; i < 32; i++) { /* 32 x 64 KiB = 2 MiB */
        off += (size_t)snprintf(req_buf + off, cap - off, "10000\r\n");
        memset(req_buf + off, ' ', 65536);
        off += 65536;
        off += (size_t)snprintf(req_buf + off, cap - off, "\r\n");
    }
    off += (size_t)snprintf(req_buf + off, cap - off, "0\r\n\r\n");
    st = fx_raw(g_proxy.addr, req_buf, off, T_MS, raw, sizeof raw);
    free(req_buf);
    ck_assert_msg(st == 413, "2 MiB chunked body -> %d: %.200s", st, raw);
}
END_TEST

START_TEST(huge_headers)
{
    size_t n = 256u * 1024u;
    char *h = malloc(n + 64);
    char raw[2048];
    int st;

    ck_assert_ptr_nonnull(h);
    memcpy(h, "GET /v1/ping HTTP/1.1\r\nHost: x\r\nX-Big: ", 39);
    memset(h + 39, 'a', n);
    memcpy(h + 39 + n, "\r\nConnection: close\r\n\r\n", 23);
    st = fx_raw(g_proxy.addr, h, 39 + n + 23, T_MS, raw, sizeof raw);
    free(h);
    /* libmicrohttpd answers 431 (or closes) itself; never a 2xx. */
    ck_assert_msg(st == 0 || (st >= 400 && st < 500), "256 KiB header -> %d", st);
}
END_TEST

/* Clients that send a request one byte at a time, very slowly, must not
 * hold up anyone else; a connection that goes quiet mid-request is closed
 * by the connection timeout (idle_timeout_s = 2 here). */
typedef struct drip {
    pthread_t th;
    int fd;
    volatile bool stop;
} drip;

static void *drip_main(void *arg)
{
    drip *d = arg;
    const char *req_text = "GET /v1/ping HTTP/1.1\r\nHost: x\r\nX-Slow: 0123456789abcdef\r\n";
    size_t i;
    for (i = 0; !d->stop && req_text[i] != '\0'; i++) {
        if (send(d->fd, req_text + i, 1, MSG_NOSIGNAL) != 1)
            break;
        fx_sleep_ms(100);
    }
    return NULL;
}

START_TEST(slowloris)
{
    enum { N = 24 };
    drip d[N];
    int i, quiet;
    long long t0;

    for (i = 0; i < N; i++) {
        d[i].fd = tcp_connect(g_proxy.addr);
        ck_assert_int_ge(d[i].fd, 0);
        d[i].stop = false;
        ck_assert_int_eq(pthread_create(&d[i].th, NULL, drip_main, &d[i]), 0);
    }
    /* While they drip, normal requests are served (the pinger checks too). */
    t0 = fx_now_ms();
    while (fx_now_ms() - t0 < 1500) {
        fx_resp r = req("GET", "/v1/ping", NULL, 0);
        ck_assert_int_eq(r.status, 200);
        fx_resp_free(&r);
    }
    for (i = 0; i < N; i++) {
        d[i].stop = true;
        pthread_join(d[i].th, NULL);
    }
    /* Now quiet with a half-sent request: the proxy must hang up. */
    for (i = 0; i < N; i++) {
        quiet = wait_eof(d[i].fd, 15000);
        ck_assert_msg(quiet == 1, "a silent half-request connection was never closed");
        close(d[i].fd);
    }
}
END_TEST

START_TEST(invalid_utf8)
{
    char raw[4096];
    int st;
    fx_resp r;

    put_machine();
    expect_problem("POST", "/v1/instances", "{\"machine\":\"b\xff\xfe\",\"version\":1}", -1, 400,
                   "BAD_REQUEST");
    expect_problem("POST", "/v1/instances",
                   "{\"machine\":\"bad\",\"version\":1,\"initial_ctx\":{\"k\":\"\xc3\x28\"}}", -1,
                   400, "BAD_REQUEST");
    /* Encoded in the path: decoded bytes that are not UTF-8. */
    r = req("GET", "/v1/instances/%FF%FE", NULL, 0);
    ck_assert_msg(fx_is_problem(&r, 400, NULL) || fx_is_problem(&r, 404, NULL),
                  "invalid UTF-8 id -> %ld %.200s", r.status, r.body);
    fx_resp_free(&r);
    /* Raw bytes in the request line. */
    {
        static const char line[] =
            "GET /v1/instances/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        st = fx_raw(g_proxy.addr, line, sizeof line - 1, T_MS, raw, sizeof raw);
    }
    ck_assert_msg(st == 0 || st == 400 || st == 404, "raw 0xFF in path -> %d", st);
}
END_TEST

START_TEST(slash_in_id_is_encoded)
{
    char loc[512];
    fx_resp r;
    cJSON *j;

    put_machine();
    r = req("POST", "/v1/instances", "{\"machine\":\"bad\",\"version\":1,\"instance_id\":\"a/b\"}",
            -1);
    ck_assert_msg(r.status == 201, "create a/b: %ld %s", r.status, r.body);
    ck_assert_ptr_nonnull(fx_header(&r, "Location", loc, sizeof loc));
    ck_assert_str_eq(loc, "/v1/instances/a%2Fb");
    fx_resp_free(&r);
    r = req("GET", "/v1/instances/a%2Fb", NULL, 0);
    ck_assert_msg(r.status == 200, "GET a%%2Fb -> %ld %s", r.status, r.body);
    fx_resp_free(&r);
    /* GET_INSTANCE's result carries no id; SNAPSHOT_INSTANCE's does, which
     * shows the decoded "a/b" is what reached the server. */
    r = req("POST", "/v1/instances/a%2Fb/snapshot", NULL, 0);
    ck_assert_msg(r.status == 200, "snapshot a%%2Fb -> %ld %s", r.status, r.body);
    j = cJSON_Parse(r.body);
    ck_assert_ptr_nonnull(j);
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(j, "instance_id"));
    ck_assert_str_eq(cJSON_GetObjectItem(j, "instance_id")->valuestring, "a/b");
    cJSON_Delete(j);
    fx_resp_free(&r);
    /* The raw slash is a different path: no route or no such instance. */
    r = req("GET", "/v1/instances/a/b", NULL, 0);
    ck_assert_msg(r.status == 404, "/v1/instances/a/b -> %ld", r.status);
    fx_resp_free(&r);
    /* %2F must not climb into another route either. */
    r = req("GET", "/v1/instances%2Fa", NULL, 0);
    ck_assert_msg(r.status == 404, "/v1/instances%%2Fa -> %ld", r.status);
    fx_resp_free(&r);
}
END_TEST

START_TEST(dot_segments)
{
    static const char *const paths[] = {"/v1/instances/..",        "/v1/instances/../machines",
                                        "/v1/instances/%2E%2E",    "/v1/../v1/ping/..",
                                        "/v1/instances/./x/../..", "/v1/machines/../../healthz"};
    size_t i;
    for (i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        fx_resp r = req("GET", paths[i], NULL, 0);
        ck_assert_msg(r.status == 400 || r.status == 404, "%s -> %ld %.200s", paths[i], r.status,
                      r.body);
        ck_assert_msg(fx_is_problem(&r, r.status, NULL), "%s: not problem+json", paths[i]);
        fx_resp_free(&r);
    }
}
END_TEST

START_TEST(crlf_never_echoed_into_headers)
{
    char loc[512];
    fx_resp r;
    cJSON *j;

    put_machine();
    /* An id holding CR LF and a header line, created through the body. */
    r = req("POST", "/v1/instances",
            "{\"machine\":\"bad\",\"version\":1,\"instance_id\":\"x\\r\\nSet-Cookie: evil=1\"}",
            -1);
    assert_no_injection(&r, "Set-Cookie");
    if (r.status == 201) {
        ck_assert_ptr_nonnull(fx_header(&r, "Location", loc, sizeof loc));
        ck_assert_msg(strstr(loc, "%0D%0A") != NULL || strstr(loc, "%0d%0a") != NULL,
                      "Location not encoded: %s", loc);
    } else {
        ck_assert_msg(fx_is_problem(&r, 400, NULL), "CRLF id -> %ld %.200s", r.status, r.body);
    }
    fx_resp_free(&r);
    /* The same through the path. */
    r = req("GET", "/v1/instances/x%0D%0ASet-Cookie:%20evil=1", NULL, 0);
    assert_no_injection(&r, "Set-Cookie");
    /* Any string is an instance id, so this reaches the one created above
     * (200); what matters is that no header and no body carries a raw CR. */
    ck_assert_msg(r.status == 200 || r.status == 400 || r.status == 404, "CRLF path -> %ld",
                  r.status);
    j = cJSON_Parse(r.body);
    ck_assert_msg(j != NULL, "body is not JSON: %.200s", r.body);
    cJSON_Delete(j);
    ck_assert_msg(strchr(r.body, '\r') == NULL, "raw CR in the body");
    fx_resp_free(&r);
    /* And through Idempotency-Key, which the proxy copies into params. */
    {
        static const char *const h[] = {"Content-Type: application/json",
                                        "Idempotency-Key: k%0D%0AX-Evil: 1", NULL};
        fx_http(g_proxy.addr, "POST", "/v1/instances", "{\"machine\":\"bad\",\"version\":1}", -1, h,
                T_MS, &r);
        ck_assert(!r.hung);
        assert_no_injection(&r, "X-Evil");
        fx_resp_free(&r);
    }
}
END_TEST

START_TEST(bad_percent_encoding)
{
    static const char *const paths[] = {"/v1/instances/%zz", "/v1/instances/abc%",
                                        "/v1/instances/%4", "/v1/instances/a%00b"};
    size_t i;
    for (i = 0; i < sizeof paths / sizeof paths[0]; i++)
        expect_problem("GET", paths[i], NULL, 0, 400, "BAD_REQUEST");
    expect_problem("GET", "/v1/instances?machine=%zz", NULL, 0, 400, "BAD_REQUEST");
}
END_TEST

START_TEST(deep_nesting)
{
    size_t n = 100000;
    char *b = malloc(2 * n + 32);
    size_t i;

    ck_assert_ptr_nonnull(b);
    for (i = 0; i < n; i++)
        b[i] = '[';
    b[n] = '\0';
    expect_problem("POST", "/v1/instances", b, (long)n, 400, "BAD_REQUEST");
    /* Nesting inside an otherwise valid object (initial_ctx). */
    strcpy(b, "{\"machine\":\"bad\",\"version\":1,\"initial_ctx\":");
    {
        size_t off = strlen(b);
        for (i = 0; i < n / 2; i++)
            b[off++] = '[';
        for (i = 0; i < n / 2; i++)
            b[off++] = ']';
        b[off++] = '}';
        b[off] = '\0';
        expect_problem("POST", "/v1/instances", b, (long)off, 400, NULL);
    }
    free(b);
}
END_TEST

START_TEST(routing_errors)
{
    char allow[128];
    fx_resp r;

    expect_problem("GET", "/v1/nope", NULL, 0, 404, NULL);
    expect_problem("GET", "/", NULL, 0, 404, NULL);
    r = req("DELETE", "/v1/machines", NULL, 0);
    ck_assert_msg(fx_is_problem(&r, 405, NULL), "DELETE /v1/machines -> %ld", r.status);
    ck_assert_ptr_nonnull(fx_header(&r, "Allow", allow, sizeof allow));
    ck_assert_ptr_nonnull(strstr(allow, "GET"));
    fx_resp_free(&r);
    /* A request line that is not HTTP at all. */
    {
        char raw[1024];
        int st =
            fx_raw(g_proxy.addr, "\x16\x03\x01\x02\x00\x01\x00\r\n\r\n", 11, T_MS, raw, sizeof raw);
        ck_assert_msg(st == 0 || st == 400, "TLS hello to the HTTP port -> %d", st);
    }
}
END_TEST

static Suite *badinput_suite(void)
{
    Suite *s = suite_create("badinput");
    TCase *tc = tcase_create("badinput");

    tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, malformed_json);
    tcase_add_test(tc, body_not_an_object);
    tcase_add_test(tc, wrong_types);
    tcase_add_test(tc, unknown_query_parameters);
    tcase_add_test(tc, huge_body_413);
    tcase_add_test(tc, huge_chunked_body_413);
    tcase_add_test(tc, huge_headers);
    tcase_add_test(tc, slowloris);
    tcase_add_test(tc, invalid_utf8);
    tcase_add_test(tc, slash_in_id_is_encoded);
    tcase_add_test(tc, dot_segments);
    tcase_add_test(tc, crlf_never_echoed_into_headers);
    tcase_add_test(tc, bad_percent_encoding);
    tcase_add_test(tc, deep_nesting);
    tcase_add_test(tc, routing_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    curl_global_init(CURL_GLOBAL_ALL);
    sr = srunner_create(badinput_suite());
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
