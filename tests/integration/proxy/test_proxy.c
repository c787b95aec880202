/* test_proxy.c: rstmdb-proxy end to end: every endpoint through libcurl
 * against a real rstmdb-testd, the error mappings, the contract's headers,
 * keep-alive, limits, auth, CORS, the unix socket and the command line. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "phelp.h"

#define H(x) (x)

static void expect(penv *e, const char *method, const char *path, const char *body, long status,
                   const char *code)
{
    hresp r;
    http_req(e, NULL, method, path, body, NULL, &r);
    ck_assert_msg(r.status == status, "%s %s: %ld, want %ld: %s", method, path, r.status, status,
                  r.body);
    if (code != NULL) {
        char ct[128], c[64];
        ck_assert(hresp_header(&r, "Content-Type", ct, sizeof ct));
        ck_assert_str_eq(ct, "application/problem+json");
        ck_assert_msg(hresp_json(&r, "code", c, sizeof c), "%s", r.body);
        ck_assert_str_eq(c, code);
        char st[16];
        snprintf(st, sizeof st, "%ld", status);
        char got[16];
        ck_assert(hresp_json(&r, "status", got, sizeof got));
        ck_assert_str_eq(got, st);
        ck_assert(hresp_json(&r, "type", got, sizeof got));
        ck_assert(hresp_json(&r, "title", got, sizeof got));
        ck_assert(hresp_json(&r, "detail", got, sizeof got));
        ck_assert(hresp_json(&r, "retryable", got, sizeof got));
        ck_assert(hresp_json(&r, "details", got, sizeof got));
    }
    hresp_free(&r);
}

START_TEST(every_endpoint)
{
    penv e;
    penv_start(&e, NULL, NULL);
    hresp r;
    char v[256];

    http_req(&e, NULL, "GET", "/v1/ping", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"pong\":true}");
    ck_assert(hresp_header(&r, "Content-Type", v, sizeof v));
    ck_assert_str_eq(v, "application/json");
    hresp_free(&r);

    http_req(&e, NULL, "GET", "/v1/info", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(hresp_json(&r, "server_name", v, sizeof v));
    hresp_free(&r);

    /* PUT machine: 201 + Location, then 200 for the identical definition.
     * The definition's bytes pass through: 1.0 stays 1.0 in meta. */
    const char *def =
        "{\"definition\":{\"states\":[\"a\",\"b\"],\"initial\":\"a\",\"meta\":{\"x\":1.0},"
        "\"transitions\":[{\"from\":\"a\",\"event\":\"GO\",\"to\":\"b\"}]}}";
    http_req(&e, NULL, "PUT", "/v1/machines/order/versions/1", def, NULL, &r);
    ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
    ck_assert(hresp_header(&r, "Location", v, sizeof v));
    ck_assert_str_eq(v, "/v1/machines/order/versions/1");
    ck_assert(hresp_json(&r, "created", v, sizeof v));
    ck_assert_str_eq(v, "true");
    hresp_free(&r);
    http_req(&e, NULL, "PUT", "/v1/machines/order/versions/1", def, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(!hresp_header(&r, "Location", v, sizeof v));
    hresp_free(&r);

    http_req(&e, NULL, "GET", "/v1/machines/order/versions/1", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strstr(r.body, "\"meta\":{\"x\":1.0}") != NULL, "%s", r.body);
    hresp_free(&r);

    http_req(&e, NULL, "GET", "/v1/machines", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"items\":[{\"machine\":\"order\",\"versions\":[1]}]}");
    hresp_free(&r);

    /* POST instance: 201 + Location (percent-encoded id) */
    http_req(
        &e, NULL, "POST", "/v1/instances",
        "{\"machine\":\"order\",\"version\":1,\"instance_id\":\"o 1\",\"initial_ctx\":{\"n\":1}}",
        NULL, &r);
    ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
    ck_assert(hresp_header(&r, "Location", v, sizeof v));
    ck_assert_str_eq(v, "/v1/instances/o%201");
    uint64_t created_at = hresp_u64(&r, "wal_offset");
    hresp_free(&r);

    /* GET instance: ETag "<last_wal_offset>" */
    http_req(&e, NULL, "GET", "/v1/instances/o%201", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(hresp_header(&r, "ETag", v, sizeof v));
    char want[64];
    snprintf(want, sizeof want, "\"%llu\"", (unsigned long long)created_at);
    ck_assert_str_eq(v, want);
    hresp_free(&r);

    /* If-Match: a stale ETag is 412, the current one applies */
    const char *stale[] = {"If-Match: \"1\"", NULL};
    http_req(&e, NULL, "POST", "/v1/instances/o%201/events", "{\"event\":\"GO\"}", stale, &r);
    ck_assert_msg(r.status == 412, "%ld %s", r.status, r.body);
    ck_assert(hresp_json(&r, "code", v, sizeof v));
    ck_assert_str_eq(v, "CONFLICT");
    hresp_free(&r);
    char im[96];
    snprintf(im, sizeof im, "If-Match: %s", want);
    const char *cur[] = {im, "Idempotency-Key: pay-1", NULL};
    http_req(&e, NULL, "POST", "/v1/instances/o%201/events",
             "{\"event\":\"GO\",\"payload\":{\"p\":2}}", cur, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    uint64_t applied_at = hresp_u64(&r, "wal_offset");
    ck_assert_uint_gt(applied_at, created_at);
    hresp_free(&r);
    /* Idempotency-Key replay: the cached result (same wal_offset) */
    const char *again[] = {"Idempotency-Key: pay-1", NULL};
    http_req(&e, NULL, "POST", "/v1/instances/o%201/events", "{\"event\":\"GO\"}", again, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_uint_eq(hresp_u64(&r, "wal_offset"), applied_at);
    hresp_free(&r);

    http_req(&e, NULL, "GET", "/v1/instances?machine=order&limit=10&offset=0", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(hresp_json(&r, "total", v, sizeof v));
    ck_assert_str_eq(v, "1");
    hresp_free(&r);

    http_req(&e, NULL, "POST", "/v1/instances/o%201/snapshot", NULL, NULL, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert(hresp_json(&r, "snapshot_id", v, sizeof v));
    hresp_free(&r);

    http_req(&e, NULL, "POST", "/v1/batch",
             "{\"mode\":\"best_effort\",\"ops\":[{\"op\":\"GET_INSTANCE\",\"params\":{\"instance_"
             "id\":\"o 1\"}}]}",
             NULL, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert(hresp_json(&r, "results", v, sizeof v));
    hresp_free(&r);

    http_req(&e, NULL, "GET", "/v1/wal", NULL, NULL, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert(hresp_json(&r, "records", v, sizeof v));
    hresp_free(&r);
    http_req(&e, NULL, "GET", "/v1/wal?from_offset=0&limit=1", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    hresp_free(&r);
    http_req(&e, NULL, "GET", "/v1/wal/stats", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(hresp_json(&r, "latest_offset", v, sizeof v));
    hresp_free(&r);
    http_req(&e, NULL, "POST", "/v1/wal/compact", "{\"force_snapshot\":false}", NULL, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    hresp_free(&r);

    /* /v1/rpc: the raw response object */
    http_req(&e, NULL, "POST", "/v1/rpc", "{\"op\":\"PING\",\"params\":{}}", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(hresp_json(&r, "type", v, sizeof v));
    ck_assert_str_eq(v, "response");
    ck_assert(hresp_json(&r, "result", v, sizeof v));
    ck_assert_str_eq(v, "{\"pong\":true}");
    hresp_free(&r);
    expect(&e, "POST", "/v1/rpc", "{\"op\":\"HELLO\"}", 400, "BAD_REQUEST");
    expect(&e, "POST", "/v1/rpc", "{\"op\":\"WATCH_ALL\",\"params\":{}}", 400, "BAD_REQUEST");
    expect(&e, "POST", "/v1/rpc", "{\"op\":\"FLUSH_ALL\",\"params\":{}}", 403, "FORBIDDEN");
    expect(&e, "POST", "/v1/admin/flush-all", NULL, 403, "FORBIDDEN");

    http_req(&e, NULL, "DELETE", "/v1/instances/o%201", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(hresp_json(&r, "deleted", v, sizeof v));
    ck_assert_str_eq(v, "true");
    hresp_free(&r);

    /* local endpoints */
    expect(&e, "GET", "/healthz", NULL, 200, NULL);
    expect(&e, "GET", "/readyz", NULL, 200, NULL);
    http_req(&e, NULL, "GET", "/v1/openapi.json", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(hresp_json(&r, "openapi", v, sizeof v));
    ck_assert_str_eq(v, "3.1.0");
    hresp_free(&r);
    http_req(&e, NULL, "GET", "/metrics", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(
        strstr(r.body, "rstmdb_proxy_http_requests_total{route=\"ping\",status=\"200\"} 1"));
    ck_assert_ptr_nonnull(strstr(r.body, "rstmdb_proxy_http_request_duration_seconds_bucket"));
    ck_assert_ptr_nonnull(strstr(r.body, "rstmdb_proxy_upstream_connections{state=\"ready\"} 2"));
    ck_assert_ptr_nonnull(strstr(r.body, "rstmdb_proxy_sse_streams 0"));
    hresp_free(&r);

    ck_assert_int_eq(penv_stop(&e), 0); /* SIGTERM: graceful, exit 0 */
}
END_TEST

START_TEST(error_mappings)
{
    penv e;
    const char *targs[] = {"--max-machine-versions", "1", NULL};
    penv_start(&e, targs, NULL);
    seed_machines(&e);
    create_instance(&e, "m", "i1");
    create_instance(&e, "g", "gi");
    /* upstream codes */
    expect(&e, "GET", "/v1/instances/nope", NULL, 404, "INSTANCE_NOT_FOUND");
    expect(&e, "GET", "/v1/machines/zz/versions/1", NULL, 404, "MACHINE_NOT_FOUND");
    expect(&e, "POST", "/v1/instances", "{\"machine\":\"m\",\"version\":1,\"instance_id\":\"i1\"}",
           409, "INSTANCE_EXISTS");
    expect(&e, "POST", "/v1/instances/i1/events", "{\"event\":\"BACK\"}", 409,
           "INVALID_TRANSITION");
    expect(&e, "POST", "/v1/instances/i1/events", "{\"event\":\"GO\",\"expected_state\":\"s1\"}",
           409, "CONFLICT");
    expect(&e, "POST", "/v1/instances/gi/events", "{\"event\":\"GO\"}", 422, "GUARD_FAILED");
    expect(&e, "PUT", "/v1/machines/m/versions/1",
           "{\"definition\":{\"states\":[\"x\"],\"initial\":\"x\",\"transitions\":[]}}", 409,
           "MACHINE_VERSION_EXISTS");
    expect(&e, "PUT", "/v1/machines/m/versions/2",
           "{\"definition\":{\"states\":[\"x\"],\"initial\":\"x\",\"transitions\":[]}}", 409,
           "MACHINE_VERSION_LIMIT_EXCEEDED");
    expect(&e, "PUT", "/v1/machines/bad/versions/1",
           "{\"definition\":{\"states\":[],\"initial\":\"x\",\"transitions\":[]}}", 500,
           "INTERNAL_ERROR");
    expect(&e, "POST", "/v1/instances/i1/events", "{\"event\":5}", 400, "BAD_REQUEST");
    /* the proxy's own */
    expect(&e, "GET", "/v1/nope", NULL, 404, "NOT_FOUND");
    expect(&e, "POST", "/v1/ping", "{}", 405, "METHOD_NOT_ALLOWED");
    hresp r;
    char v[128];
    http_req(&e, NULL, "DELETE", "/v1/machines", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 405);
    ck_assert(hresp_header(&r, "Allow", v, sizeof v));
    ck_assert_str_eq(v, "GET, HEAD, OPTIONS");
    hresp_free(&r);
    expect(&e, "POST", "/v1/instances", "{\"machine\":", 400, "BAD_REQUEST");
    expect(&e, "POST", "/v1/instances", "[1,2]", 400, "BAD_REQUEST");
    expect(&e, "POST", "/v1/instances", "{\"a\":\"\\ud800\"}", 400, "BAD_REQUEST");
    expect(&e, "GET", "/v1/instances?limit=-1", NULL, 400, "BAD_REQUEST");
    expect(&e, "GET", "/v1/instances?limit=1&limit=2", NULL, 400, "BAD_REQUEST");
    expect(&e, "GET", "/v1/instances?bogus=1", NULL, 400, "BAD_REQUEST");
    expect(&e, "GET", "/v1/instances/a%2Fb", NULL, 404, "INSTANCE_NOT_FOUND"); /* id "a/b" */
    expect(&e, "GET", "/v1/machines/m/versions/x", NULL, 400, "BAD_REQUEST");
    expect(&e, "PUT", "/v1/machines/m/versions/1", "{\"machine\":\"other\",\"definition\":{}}", 400,
           "BAD_REQUEST");
    /* the proxy still works after all of that (no upstream connection was lost) */
    expect(&e, "GET", "/v1/instances/i1", NULL, 200, NULL);
    ck_assert_int_eq(penv_stop(&e), 0);
}
END_TEST

START_TEST(body_limit)
{
    penv e;
    const char *pargs[] = {"--max-body-bytes", "1000", NULL};
    penv_start(&e, NULL, pargs);
    char *big = malloc(4000);
    memset(big, ' ', 3999);
    big[0] = '{';
    big[3998] = '}';
    big[3999] = '\0';
    expect(&e, "POST", "/v1/instances", big, 413, "PAYLOAD_TOO_LARGE");
    big[990] = '}';
    big[991] = '\0';
    /* just under the limit: parsed (and refused upstream for missing fields) */
    expect(&e, "POST", "/v1/instances", big, 400, "BAD_REQUEST");
    free(big);
    ck_assert_int_eq(penv_stop(&e), 0);
}
END_TEST

START_TEST(keep_alive)
{
    penv e;
    penv_start(&e, NULL, NULL);
    seed_machines(&e);
    CURL *c = curl_easy_init();
    for (int i = 0; i < 40; i++) {
        hresp r;
        char id[32], b[128], path[64];
        snprintf(id, sizeof id, "k%d", i);
        snprintf(b, sizeof b, "{\"machine\":\"m\",\"version\":1,\"instance_id\":\"%s\"}", id);
        http_req(&e, c, "POST", "/v1/instances", b, NULL, &r);
        ck_assert_int_eq(r.status, 201);
        hresp_free(&r);
        snprintf(path, sizeof path, "/v1/instances/%s/events", id);
        http_req(&e, c, "POST", path, "{\"event\":\"GO\"}", NULL, &r);
        ck_assert_int_eq(r.status, 200);
        hresp_free(&r);
        snprintf(path, sizeof path, "/v1/instances/%s", id);
        http_req(&e, c, "GET", path, NULL, NULL, &r);
        ck_assert_int_eq(r.status, 200);
        char conn[32];
        ck_assert(!hresp_header(&r, "Connection", conn, sizeof conn) || strcmp(conn, "close"));
        hresp_free(&r);
        http_req(&e, c, "GET", "/v1/nope", NULL, NULL, &r); /* errors keep it too */
        ck_assert_int_eq(r.status, 404);
        hresp_free(&r);
        long nc = -1;
        curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &nc);
        ck_assert_msg(i == 0 || nc == 0, "request %d opened a new connection", i);
    }
    curl_easy_cleanup(c);
    ck_assert_int_eq(penv_stop(&e), 0);
}
END_TEST

START_TEST(local_auth)
{
    penv e;
    memset(&e, 0, sizeof e);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    ck_assert_int_eq(spawn_testd(&e.testd, NULL), 0);
    const char *pargs[] = {"--token", "s3cret", "--token", "other", NULL};
    penv_start_proxy(&e, e.testd.addr, pargs);
    usleep(200000);
    expect(&e, "GET", "/v1/ping", NULL, 401, "UNAUTHORIZED");
    hresp r;
    char v[128];
    http_req(&e, NULL, "GET", "/v1/ping", NULL, NULL, &r);
    ck_assert(hresp_header(&r, "WWW-Authenticate", v, sizeof v));
    ck_assert_int_eq(strncmp(v, "Bearer", 6), 0);
    hresp_free(&r);
    const char *wrong[] = {"Authorization: Bearer s3cre", NULL};
    http_req(&e, NULL, "GET", "/v1/ping", NULL, wrong, &r);
    ck_assert_int_eq(r.status, 401);
    hresp_free(&r);
    const char *good[] = {"Authorization: Bearer s3cret", NULL};
    http_req(&e, NULL, "GET", "/v1/ping", NULL, good, &r);
    ck_assert_int_eq(r.status, 200);
    hresp_free(&r);
    const char *good2[] = {"Authorization: Bearer other", NULL};
    http_req(&e, NULL, "GET", "/v1/info", NULL, good2, &r);
    ck_assert_int_eq(r.status, 200);
    hresp_free(&r);
    expect(&e, "GET", "/healthz", NULL, 200, NULL); /* probes stay open */
    expect(&e, "GET", "/readyz", NULL, 200, NULL);
    ck_assert_int_eq(penv_stop(&e), 0);
}
END_TEST

START_TEST(cors)
{
    penv e;
    const char *pargs[] = {"--cors-origin", "https://app.example", NULL};
    penv_start(&e, NULL, pargs);
    hresp r;
    char v[256];
    const char *pre[] = {"Origin: https://app.example", "Access-Control-Request-Method: POST",
                         "Access-Control-Request-Headers: content-type, idempotency-key", NULL};
    http_req(&e, NULL, "OPTIONS", "/v1/instances/x/events", NULL, pre, &r);
    ck_assert_int_eq(r.status, 204);
    ck_assert(hresp_header(&r, "Access-Control-Allow-Origin", v, sizeof v));
    ck_assert_str_eq(v, "https://app.example");
    ck_assert(hresp_header(&r, "Access-Control-Allow-Methods", v, sizeof v));
    ck_assert_ptr_nonnull(strstr(v, "POST"));
    ck_assert(hresp_header(&r, "Access-Control-Allow-Headers", v, sizeof v));
    ck_assert_ptr_nonnull(strstr(v, "Idempotency-Key"));
    ck_assert_ptr_nonnull(strstr(v, "Last-Event-ID"));
    ck_assert_ptr_nonnull(strstr(v, "If-Match"));
    ck_assert_ptr_nonnull(strstr(v, "Authorization"));
    ck_assert(hresp_header(&r, "Vary", v, sizeof v));
    ck_assert_str_eq(v, "Origin");
    hresp_free(&r);
    const char *evil[] = {"Origin: https://evil.example", "Access-Control-Request-Method: POST",
                          NULL};
    http_req(&e, NULL, "OPTIONS", "/v1/instances", NULL, evil, &r);
    ck_assert(!hresp_header(&r, "Access-Control-Allow-Origin", v, sizeof v));
    hresp_free(&r);
    const char *simple[] = {"Origin: https://app.example", NULL};
    http_req(&e, NULL, "GET", "/v1/ping", NULL, simple, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(hresp_header(&r, "Access-Control-Allow-Origin", v, sizeof v));
    ck_assert(hresp_header(&r, "Access-Control-Expose-Headers", v, sizeof v));
    ck_assert_ptr_nonnull(strstr(v, "ETag"));
    ck_assert_ptr_nonnull(strstr(v, "Location"));
    ck_assert_ptr_nonnull(strstr(v, "RSTMDB-WAL-Offset"));
    hresp_free(&r);
    ck_assert_int_eq(penv_stop(&e), 0);
}
END_TEST

START_TEST(unix_socket)
{
    char path[108];
    snprintf(path, sizeof path, "/tmp/rstmdb-proxy-it-%d.sock", (int)getpid());
    penv e;
    const char *pargs[] = {"--listen-unix", path, NULL};
    penv_start(&e, NULL, pargs);
    snprintf(e.unix_path, sizeof e.unix_path, "%s", path);
    CURL *c = curl_easy_init();
    for (int i = 0; i < 5; i++) {
        hresp r;
        http_req(&e, c, "GET", "/v1/ping", NULL, NULL, &r);
        ck_assert_msg(r.status == 200, "%ld", r.status);
        ck_assert_str_eq(r.body, "{\"pong\":true}");
        hresp_free(&r);
    }
    curl_easy_cleanup(c);
    ck_assert_int_eq(penv_stop(&e), 0);
    ck_assert_int_ne(access(path, F_OK), 0); /* removed on exit */
}
END_TEST

static long status_of(penv *e, const char *path, char *retry_after, size_t cap)
{
    hresp r;
    http_req(e, NULL, "GET", path, NULL, NULL, &r);
    long st = r.status;
    if (retry_after) {
        retry_after[0] = '\0';
        hresp_header(&r, "Retry-After", retry_after, cap);
    }
    hresp_free(&r);
    return st;
}

START_TEST(reconnect)
{
    penv e;
    const char *pargs[] = {"--backoff-initial-ms", "20", "--backoff-max-ms", "200", NULL};
    penv_start(&e, NULL, pargs);
    char addr[80];
    snprintf(addr, sizeof addr, "%s", e.testd.addr);
    ck_assert_int_eq(status_of(&e, "/v1/ping", NULL, 0), 200);
    spawn_kill(&e.testd);
    e.testd.pid = -1;
    /* fail fast with 503 + Retry-After while nothing is up */
    long st = 0;
    char ra[16];
    for (int i = 0; i < 100; i++) {
        st = status_of(&e, "/v1/ping", ra, sizeof ra);
        if (st == 503)
            break;
        usleep(20000);
    }
    ck_assert_int_eq(st, 503);
    ck_assert_msg(atoi(ra) >= 1, "Retry-After \"%s\"", ra);
    hresp r;
    http_req(&e, NULL, "GET", "/v1/info", NULL, NULL, &r);
    char v[64];
    ck_assert_int_eq(r.status, 503);
    ck_assert(hresp_json(&r, "code", v, sizeof v));
    ck_assert_str_eq(v, "UPSTREAM_UNAVAILABLE");
    ck_assert(hresp_json(&r, "retryable", v, sizeof v));
    ck_assert_str_eq(v, "true");
    hresp_free(&r);
    ck_assert_int_eq(status_of(&e, "/readyz", NULL, 0), 503);
    ck_assert_int_eq(status_of(&e, "/healthz", NULL, 0), 200);
    /* restart testd on the same port: the proxy recovers by itself */
    const char *argv[] = {spawn_testd_path(), "--listen", addr, NULL};
    ck_assert_int_eq(spawn_start(&e.testd, argv, NULL, 10000), 0);
    for (int i = 0; i < 250 && status_of(&e, "/readyz", NULL, 0) != 200; i++)
        usleep(20000);
    ck_assert_int_eq(status_of(&e, "/readyz", NULL, 0), 200);
    ck_assert_int_eq(status_of(&e, "/v1/ping", NULL, 0), 200);
    http_req(&e, NULL, "GET", "/metrics", NULL, NULL, &r);
    ck_assert_ptr_null(strstr(r.body, "rstmdb_proxy_upstream_reconnects_total 0\n"));
    hresp_free(&r);
    ck_assert_int_eq(penv_stop(&e), 0);
}
END_TEST

START_TEST(upstream_timeout)
{
    penv e;
    const char *targs[] = {"--fault-delay-ms", "1500", NULL};
    const char *pargs[] = {"--request-timeout-ms", "200", NULL};
    penv_start(&e, targs, pargs);
    expect(&e, "GET", "/v1/info", NULL, 504, "UPSTREAM_TIMEOUT");
    ck_assert_int_eq(penv_stop(&e), 0);
}
END_TEST

START_TEST(command_line)
{
    char out[8192];
    const char *help[] = {"--help", NULL};
    ck_assert_int_eq(run_proxy_once(help, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "--listen-unix"));
    ck_assert_ptr_nonnull(strstr(out, "RSTMDB_PROXY_UPSTREAM"));
    const char *ver[] = {"--version", NULL};
    ck_assert_int_eq(run_proxy_once(ver, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "rstmdb-proxy"));
    const char *chk[] = {"--check-config", "--token", "hush", "--pool-size", "3", NULL};
    ck_assert_int_eq(run_proxy_once(chk, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "pool_size = 3"));
    ck_assert_ptr_null(strstr(out, "hush"));
    const char *bad[] = {"--pool-size", "zero", NULL};
    ck_assert_int_eq(run_proxy_once(bad, out, sizeof out), 2);
    const char *bad2[] = {"--check-config", "--listen", "nowhere", NULL};
    ck_assert_int_eq(run_proxy_once(bad2, out, sizeof out), 2);
}
END_TEST

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(sighup_reloads_tokens_cors_level)
{
    char conf[128];
    snprintf(conf, sizeof conf, "/tmp/rstmdb-proxy-it-%d.conf", (int)getpid());
    write_file(conf, "token = first\n");
    penv e;
    memset(&e, 0, sizeof e);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    ck_assert_int_eq(spawn_testd(&e.testd, NULL), 0);
    const char *pargs[] = {"--config", conf, NULL};
    penv_start_proxy(&e, e.testd.addr, pargs);
    usleep(200000);
    const char *t1[] = {"Authorization: Bearer first", "Origin: https://new.example", NULL};
    const char *t2[] = {"Authorization: Bearer second", "Origin: https://new.example", NULL};
    hresp r;
    char v[128];
    http_req(&e, NULL, "GET", "/v1/ping", NULL, t1, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(!hresp_header(&r, "Access-Control-Allow-Origin", v, sizeof v));
    hresp_free(&r);
    write_file(conf, "token = second\ncors_origin = https://new.example\nlog_level = debug\n");
    kill(e.proxy.pid, SIGHUP);
    long st = 0;
    for (int i = 0; i < 100; i++) {
        http_req(&e, NULL, "GET", "/v1/ping", NULL, t2, &r);
        st = r.status;
        hresp_free(&r);
        if (st == 200)
            break;
        usleep(20000);
    }
    ck_assert_int_eq(st, 200);
    http_req(&e, NULL, "GET", "/v1/ping", NULL, t2, &r);
    ck_assert(hresp_header(&r, "Access-Control-Allow-Origin", v, sizeof v));
    ck_assert_str_eq(v, "https://new.example");
    hresp_free(&r);
    http_req(&e, NULL, "GET", "/v1/ping", NULL, t1, &r);
    ck_assert_int_eq(r.status, 401); /* the old token is gone */
    hresp_free(&r);
    /* a broken file is refused and the running configuration stays */
    write_file(conf, "token = third\npool_size = many\n");
    kill(e.proxy.pid, SIGHUP);
    usleep(300000);
    http_req(&e, NULL, "GET", "/v1/ping", NULL, t2, &r);
    ck_assert_int_eq(r.status, 200);
    hresp_free(&r);
    ck_assert_int_eq(penv_stop(&e), 0);
    unlink(conf);
}
END_TEST

START_TEST(sd_notify)
{
    char path[108];
    snprintf(path, sizeof path, "/tmp/rstmdb-proxy-notify-%d", (int)getpid());
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
    setenv("NOTIFY_SOCKET", path, 1);
    penv e;
    penv_start(&e, NULL, NULL);
    unsetenv("NOTIFY_SOCKET");
    char msg[256];
    ssize_t n = recv(fd, msg, sizeof msg - 1, MSG_DONTWAIT);
    ck_assert_int_gt(n, 0);
    msg[n] = '\0';
    ck_assert_msg(strncmp(msg, "READY=1", 7) == 0, "%s", msg);
    kill(e.proxy.pid, SIGHUP);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    n = recv(fd, msg, sizeof msg - 1, 0);
    ck_assert_int_gt(n, 0);
    msg[n] = '\0';
    ck_assert_msg(strncmp(msg, "RELOADING=1", 11) == 0, "%s", msg);
    n = recv(fd, msg, sizeof msg - 1, 0);
    ck_assert_int_gt(n, 0);
    msg[n] = '\0';
    ck_assert_msg(strncmp(msg, "READY=1", 7) == 0, "%s", msg);
    kill(e.proxy.pid, SIGTERM);
    n = recv(fd, msg, sizeof msg - 1, 0);
    ck_assert_int_gt(n, 0);
    msg[n] = '\0';
    ck_assert_msg(strncmp(msg, "STOPPING=1", 10) == 0, "%s", msg);
    ck_assert_int_eq(penv_stop(&e), 0);
    close(fd);
    unlink(path);
}
END_TEST

START_TEST(sigterm_finishes_in_flight_requests)
{
    penv e;
    const char *targs[] = {"--fault-delay-ms", "400", NULL};
    penv_start(&e, targs, NULL);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)e.proxy.port);
    inet_pton(AF_INET, e.proxy.host, &sin.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    const char *req = "GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    usleep(100000); /* the request is now waiting for the (delayed) upstream */
    kill(e.proxy.pid, SIGTERM);
    char buf[4096];
    size_t len = 0;
    for (int i = 0; i < 100 && len + 1 < sizeof buf; i++) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t k = read(fd, buf + len, sizeof buf - 1 - len);
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    buf[len] = '\0';
    close(fd);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "in-flight request got: %.200s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "server_name"));
    /* new connections are refused while draining / after exit */
    int st = spawn_stop(&e.proxy, 5000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
    e.proxy.pid = -1;
    penv_stop(&e);
}
END_TEST

START_TEST(upstream_auth_errors_are_502)
{
    /* The server wants a token and the proxy has none: the session is up
     * (HELLO needs no auth) but every op is UNAUTHORIZED: the proxy's own
     * credentials are wrong, which the HTTP client cannot fix: 502. */
    penv e;
    memset(&e, 0, sizeof e);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *targs[] = {"--token", "upstream-secret", NULL};
    ck_assert_int_eq(spawn_testd(&e.testd, targs), 0);
    penv_start_proxy(&e, e.testd.addr, NULL);
    long st = 0;
    for (int i = 0; i < 100 && st != 502; i++) {
        hresp r;
        http_req(&e, NULL, "GET", "/v1/info", NULL, NULL, &r);
        st = r.status;
        hresp_free(&r);
        if (st != 502)
            usleep(20000);
    }
    expect(&e, "GET", "/v1/info", NULL, 502, "UNAUTHORIZED");
    penv_stop(&e);
    /* With the right token everything works. */
    memset(&e, 0, sizeof e);
    ck_assert_int_eq(spawn_testd(&e.testd, targs), 0);
    const char *pargs[] = {"--upstream-token", "upstream-secret", NULL};
    penv_start_proxy(&e, e.testd.addr, pargs);
    for (int i = 0; i < 100; i++) {
        hresp r;
        http_req(&e, NULL, "GET", "/v1/info", NULL, NULL, &r);
        st = r.status;
        hresp_free(&r);
        if (st == 200)
            break;
        usleep(20000);
    }
    ck_assert_int_eq(st, 200);
    ck_assert_int_eq(penv_stop(&e), 0);
}
END_TEST

/* Poll until GET path answers `status` (the pool needs a few attempts). */
static long wait_status(penv *e, const char *path, long status)
{
    long st = 0;
    for (int i = 0; i < 200 && st != status; i++) {
        hresp r;
        http_req(e, NULL, "GET", path, NULL, NULL, &r);
        st = r.status;
        hresp_free(&r);
        if (st != status)
            usleep(20000);
    }
    return st;
}

/* /readyz is 503 with `code`, and its detail names `why` (NULL: any). */
static void expect_readyz_why(penv *e, const char *code, const char *why)
{
    hresp r;
    http_req(e, NULL, "GET", "/readyz", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 503);
    char v[512];
    ck_assert_msg(hresp_json(&r, "code", v, sizeof v), "readyz body: %s", r.body);
    ck_assert_str_eq(v, code);
    ck_assert(hresp_json(&r, "detail", v, sizeof v));
    ck_assert_msg(why == NULL || strstr(v, why) != NULL, "no \"%s\" in the detail: %s", why, v);
    hresp_free(&r);
}

static void expect_readyz_says(penv *e, const char *code)
{
    expect_readyz_why(e, code, NULL);
}

/* A request's 502 problem names `why` in its detail. */
static void expect_detail(penv *e, const char *path, int status, const char *why)
{
    hresp r;
    http_req(e, NULL, "GET", path, NULL, NULL, &r);
    ck_assert_int_eq(r.status, status);
    char v[512];
    ck_assert_msg(hresp_json(&r, "detail", v, sizeof v), "body: %s", r.body);
    ck_assert_msg(strstr(v, why) != NULL, "no \"%s\" in the detail: %s", why, v);
    ck_assert_msg(strstr(v, "lib(0)") == NULL, "OpenSSL's bare code in the detail: %s", v);
    hresp_free(&r);
}

START_TEST(upstream_refusing_the_proxy_is_502)
{
    /* The server refuses the proxy's token at AUTH: no connection is ever
     * READY, and the HTTP side must say why (502 AUTH_FAILED: the proxy's
     * own credentials are wrong), not 503 as for an upstream that is down. */
    penv e;
    memset(&e, 0, sizeof e);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *targs[] = {"--token", "right-token", NULL};
    ck_assert_int_eq(spawn_testd(&e.testd, targs), 0);
    const char *pargs[] = {"--upstream-token",
                           "wrong-token",
                           "--backoff-initial-ms",
                           "20",
                           "--backoff-max-ms",
                           "200",
                           NULL};
    penv_start_proxy(&e, e.testd.addr, pargs);
    ck_assert_int_eq(wait_status(&e, "/v1/ping", 502), 502);
    expect(&e, "GET", "/v1/ping", NULL, 502, "AUTH_FAILED");
    expect(&e, "POST", "/v1/instances", "{\"machine\":\"m\",\"version\":1}", 502, "AUTH_FAILED");
    /* SSE answers the same before any stream starts. */
    expect(&e, "GET", "/v1/watch", NULL, 502, "AUTH_FAILED");
    {
        hresp r;
        http_req(&e, NULL, "GET", "/v1/ping", NULL, NULL, &r);
        char v[512];
        ck_assert(hresp_json(&r, "retryable", v, sizeof v));
        ck_assert_str_eq(v, "false");
        ck_assert(!hresp_header(&r, "Retry-After", v, sizeof v));
        ck_assert(hresp_json(&r, "detail", v, sizeof v));
        ck_assert_msg(strstr(v, "refused") != NULL, "detail: %s", v);
        hresp_free(&r);
    }
    expect_readyz_says(&e, "AUTH_FAILED");
    ck_assert_int_eq(penv_stop(&e), 0);

    /* An upstream that is simply not there stays 503 + Retry-After. */
    memset(&e, 0, sizeof e);
    ck_assert_int_eq(spawn_testd(&e.testd, NULL), 0);
    char gone[96];
    snprintf(gone, sizeof gone, "%s", e.testd.addr);
    spawn_stop(&e.testd, 5000);
    e.testd.pid = -1;
    penv_start_proxy(&e, gone, pargs + 2);
    ck_assert_int_eq(wait_status(&e, "/v1/ping", 503), 503);
    {
        hresp r;
        http_req(&e, NULL, "GET", "/v1/ping", NULL, NULL, &r);
        char v[512];
        ck_assert_int_eq(r.status, 503);
        ck_assert(hresp_json(&r, "code", v, sizeof v));
        ck_assert_str_eq(v, "UPSTREAM_UNAVAILABLE");
        ck_assert(hresp_header(&r, "Retry-After", v, sizeof v));
        hresp_free(&r);
    }
    expect_readyz_says(&e, "UPSTREAM_UNAVAILABLE");
    ck_assert_int_eq(penv_stop(&e), 0);
}
END_TEST

START_TEST(any_string_is_an_id)
{
    /* The server accepts any string as an instance id: the proxy must reach
     * "a/b", "x\r\ny" and ".." through their percent-encoded paths, and
     * never put their raw bytes into a header. */
    static const struct {
        const char *json_id, *id, *path;
    } ids[] = {
        {"a/b", "a/b", "a%2Fb"},
        {"x\\r\\ny", "x\r\ny", "x%0D%0Ay"},
        {"..", "..", "%2E%2E"},
        {"sp ace?#%", "sp ace?#%", "sp%20ace%3F%23%25"},
    };
    penv e;
    /* At info, every request also goes through the access-log line (run
     * under ASan, that caught an unterminated buffer). */
    const char *pargs[] = {"--log-level", "info", NULL};
    penv_start(&e, NULL, pargs);
    seed_machines(&e);
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char body[256], loc[256], want[256], path[256], v[256];
        snprintf(body, sizeof body, "{\"machine\":\"m\",\"version\":1,\"instance_id\":\"%s\"}",
                 ids[i].json_id);
        hresp r;
        http_req(&e, NULL, "POST", "/v1/instances", body, NULL, &r);
        ck_assert_msg(r.status == 201, "create %s: %ld %s", ids[i].path, r.status, r.body);
        ck_assert(hresp_header(&r, "Location", loc, sizeof loc));
        snprintf(want, sizeof want, "/v1/instances/%s", ids[i].path);
        ck_assert_str_eq(loc, want);
        /* every header line ends with CRLF and holds no stray CR or LF */
        for (const char *h = r.headers; *h; h++)
            if (*h == '\r')
                ck_assert_msg(h[1] == '\n', "bare CR in headers: %s", r.headers);
            else if (*h == '\n')
                ck_assert_msg(h > r.headers && h[-1] == '\r', "bare LF in headers: %s", r.headers);
        hresp_free(&r);
        snprintf(path, sizeof path, "/v1/instances/%s", ids[i].path);
        http_req(&e, NULL, "GET", path, NULL, NULL, &r);
        ck_assert_msg(r.status == 200, "GET %s: %ld %s", path, r.status, r.body);
        ck_assert(hresp_json(&r, "state", v, sizeof v));
        ck_assert_str_eq(v, "s0");
        hresp_free(&r);
        /* GET_INSTANCE's result names no id: SNAPSHOT_INSTANCE's does. */
        snprintf(path, sizeof path, "/v1/instances/%s/snapshot", ids[i].path);
        http_req(&e, NULL, "POST", path, NULL, NULL, &r);
        ck_assert_msg(r.status == 200, "POST %s: %ld %s", path, r.status, r.body);
        ck_assert(hresp_json(&r, "instance_id", v, sizeof v));
        ck_assert_str_eq(v, ids[i].id);
        hresp_free(&r);
        snprintf(path, sizeof path, "/v1/instances/%s/events", ids[i].path);
        http_req(&e, NULL, "POST", path, "{\"event\":\"GO\"}", NULL, &r);
        ck_assert_msg(r.status == 200, "POST %s: %ld %s", path, r.status, r.body);
        hresp_free(&r);
    }
    /* A raw slash is another path; NUL and invalid UTF-8 are refused. */
    expect(&e, "GET", "/v1/instances/a/b", NULL, 404, "NOT_FOUND");
    expect(&e, "GET", "/v1/instances/a%00b", NULL, 400, "BAD_REQUEST");
    expect(&e, "GET", "/v1/instances/%FF%FE", NULL, 400, "BAD_REQUEST");
    expect(&e, "GET", "/v1/instances/..", NULL, 400, "BAD_REQUEST");
    ck_assert_int_eq(penv_stop(&e), 0);
}
END_TEST

static void sh(const char *dir, const char *cmd)
{
    char full[2048];
    snprintf(full, sizeof full, "cd %s && (%s) >/dev/null 2>&1", dir, cmd);
    ck_assert_msg(system(full) == 0, "failed: %s", cmd);
}

START_TEST(upstream_tls_failure_is_502)
{
    /* The upstream's certificate is not signed by the CA the proxy trusts:
     * 502 UPSTREAM_TLS, and the right CA works. */
    char dir[] = "/tmp/rstmdb-px-tls-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
#define EC "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
    sh(dir, "openssl req -x509 " EC " -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
            "-keyout good.key -out good.pem");
    sh(dir, "openssl req -x509 " EC " -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
            "-keyout wrong.key -out wrong.pem");
#undef EC
    char good_pem[128], good_key[128], wrong_pem[128];
    snprintf(good_pem, sizeof good_pem, "%s/good.pem", dir);
    snprintf(good_key, sizeof good_key, "%s/good.key", dir);
    snprintf(wrong_pem, sizeof wrong_pem, "%s/wrong.pem", dir);
    penv e;
    memset(&e, 0, sizeof e);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *targs[] = {"--tls-cert", good_pem, "--tls-key", good_key, NULL};
    ck_assert_int_eq(spawn_testd(&e.testd, targs), 0);
    const char *bad[] = {
        "--upstream-tls",   "--upstream-ca", wrong_pem, "--backoff-initial-ms", "20",
        "--backoff-max-ms", "200",           NULL};
    penv_start_proxy(&e, e.testd.addr, bad);
    ck_assert_int_eq(wait_status(&e, "/v1/ping", 502), 502);
    expect(&e, "GET", "/v1/info", NULL, 502, "UPSTREAM_TLS");
    /* The detail says what failed, where and why, in words. */
    expect_readyz_why(&e, "UPSTREAM_TLS", "TLS handshake with 127.0.0.1:");
    expect_detail(&e, "/v1/info", 502, "certificate verification failed: self-signed certificate");
    spawn_stop(&e.proxy, 5000);
    e.proxy.pid = -1;
    const char *ok[] = {"--upstream-tls", "--upstream-ca", good_pem, NULL};
    penv_start_proxy(&e, e.testd.addr, ok);
    ck_assert_int_eq(wait_status(&e, "/v1/ping", 200), 200);
    ck_assert_int_eq(penv_stop(&e), 0);
    /* An mTLS upstream refusing a proxy that has no client certificate. */
    const char *mtls[] = {"--tls-cert",      good_pem, "--tls-key", good_key,
                          "--tls-client-ca", good_pem, NULL};
    ck_assert_int_eq(spawn_testd(&e.testd, mtls), 0);
    const char *nocert[] = {
        "--upstream-tls",   "--upstream-ca", good_pem, "--backoff-initial-ms", "20",
        "--backoff-max-ms", "200",           NULL};
    penv_start_proxy(&e, e.testd.addr, nocert);
    ck_assert_int_eq(wait_status(&e, "/v1/ping", 502), 502);
    expect_readyz_why(&e, "UPSTREAM_TLS", "asked for a client certificate and none is configured");
    ck_assert_int_eq(penv_stop(&e), 0);
    char rm[160];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    ck_assert_int_eq(system(rm), 0);
}
END_TEST

START_TEST(bye_on_each_pooled_connection)
{
    /* SIGTERM: after the drain, each pooled connection says BYE, which
     * testd logs as the reason it closed. */
    char log[] = "/tmp/rstmdb-px-bye-XXXXXX";
    int fd = mkstemp(log);
    ck_assert_int_ge(fd, 0);
    close(fd);
    penv e;
    memset(&e, 0, sizeof e);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *targv[] = {spawn_testd_path(), "--listen", "127.0.0.1:0", NULL};
    ck_assert_int_eq(spawn_start(&e.testd, targv, log, 10000), 0);
    const char *args[] = {"--pool-size", "3", NULL};
    penv_start_proxy(&e, e.testd.addr, args);
    ck_assert_int_eq(wait_status(&e, "/readyz", 200), 200);
    for (int i = 0; i < 100; i++) { /* all three handshaken */
        hresp r;
        http_req(&e, NULL, "GET", "/metrics", NULL, NULL, &r);
        bool all = strstr(r.body, "rstmdb_proxy_upstream_connections{state=\"ready\"} 3") != NULL;
        hresp_free(&r);
        if (all)
            break;
        usleep(20000);
    }
    int st = spawn_stop(&e.proxy, 5000);
    e.proxy.pid = -1;
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    spawn_stop(&e.testd, 2000);
    FILE *f = fopen(log, "r");
    ck_assert_ptr_nonnull(f);
    char line[1024];
    int byes = 0, others = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, " closed: BYE "))
            byes++;
        else if (strstr(line, " closed: "))
            others++;
    }
    fclose(f);
    unlink(log);
    ck_assert_int_eq(byes, 3);
    ck_assert_int_eq(others, 0);
    penv_stop(&e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("proxy");
    TCase *tc = tcase_create("proxy");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, every_endpoint);
    tcase_add_test(tc, error_mappings);
    tcase_add_test(tc, body_limit);
    tcase_add_test(tc, keep_alive);
    tcase_add_test(tc, local_auth);
    tcase_add_test(tc, cors);
    tcase_add_test(tc, unix_socket);
    tcase_add_test(tc, reconnect);
    tcase_add_test(tc, upstream_timeout);
    tcase_add_test(tc, command_line);
    tcase_add_test(tc, sighup_reloads_tokens_cors_level);
    tcase_add_test(tc, sd_notify);
    tcase_add_test(tc, upstream_auth_errors_are_502);
    tcase_add_test(tc, upstream_refusing_the_proxy_is_502);
    tcase_add_test(tc, upstream_tls_failure_is_502);
    tcase_add_test(tc, any_string_is_an_id);
    tcase_add_test(tc, sigterm_finishes_in_flight_requests);
    tcase_add_test(tc, bye_on_each_pooled_connection);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
