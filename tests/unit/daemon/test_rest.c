/* test_rest.c: params built from body + path + query + headers (spliced,
 * never re-serialised), every 400/403 rule, strict JSON, and the answer
 * rules (201 + Location, ETag). */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jscan.h"
#include "rest.h"
#include "utf8.h"

typedef struct tcall {
    route_query q;
    rest_call call;
    problem p;
    int rc;
} tcall;

static void run(tcall *t, const char *method, const char *path, const char *query_kv[],
                const char *body, const char *idem, const char *ifm, bool allow_flush)
{
    memset(t, 0, sizeof *t);
    ck_assert_int_eq(rest_call_match(&t->call, method, path), ROUTE_OK);
    route_query_init(&t->q, t->call.m.r);
    for (size_t i = 0; query_kv && query_kv[i]; i += 2)
        ck_assert_int_eq(route_query_add(&t->q, query_kv[i], query_kv[i + 1]), 0);
    rest_input in = {t->q.out, body, body ? strlen(body) : 0, idem, ifm, allow_flush};
    t->rc = rest_call_build(&t->call, &in, &t->p);
}

static void done(tcall *t)
{
    route_query_deinit(&t->q);
    rest_call_deinit(&t->call);
    problem_deinit(&t->p);
}

static void expect_params(const char *method, const char *path, const char *query_kv[],
                          const char *body, const char *idem, const char *ifm, const char *op,
                          const char *want)
{
    tcall t;
    run(&t, method, path, query_kv, body, idem, ifm, false);
    ck_assert_msg(t.rc == 0, "%s %s: %s", method, path, t.p.detail);
    ck_assert_str_eq(t.call.op, op);
    ck_assert_str_eq(t.call.params, want);
    ck_assert_uint_eq(t.call.params_len, strlen(want));
    done(&t);
}

static void expect_problem(const char *method, const char *path, const char *body, const char *idem,
                           const char *ifm, int status, const char *code, const char *in_detail)
{
    tcall t;
    run(&t, method, path, NULL, body, idem, ifm, false);
    ck_assert_int_eq(t.rc, -1);
    ck_assert_int_eq(t.p.status, status);
    ck_assert_str_eq(t.p.code, code);
    if (in_detail)
        ck_assert_msg(strstr(t.p.detail, in_detail) != NULL, "\"%s\" lacks \"%s\"", t.p.detail,
                      in_detail);
    done(&t);
}

START_TEST(params_every_endpoint)
{
    expect_params("GET", "/v1/ping", NULL, NULL, NULL, NULL, "PING", "{}");
    expect_params("GET", "/v1/info", NULL, NULL, NULL, NULL, "INFO", "{}");
    expect_params("GET", "/v1/machines", NULL, NULL, NULL, NULL, "LIST_MACHINES", "{}");
    /* body bytes go through untouched: 1.0 and a 2^64 integer keep their spelling */
    expect_params("PUT", "/v1/machines/m/versions/3", NULL,
                  " {\"definition\": {\"meta\": {\"x\": 1.0, \"y\": 18446744073709551616}}} ", NULL,
                  NULL, "PUT_MACHINE",
                  "{\"machine\":\"m\",\"version\":3,\"definition\": {\"meta\": {\"x\": 1.0, \"y\": "
                  "18446744073709551616}}}");
    /* path values equal to the body's are not repeated */
    expect_params("PUT", "/v1/machines/m/versions/3", NULL,
                  "{\"machine\":\"m\",\"version\":3,\"definition\":{}}", NULL, NULL, "PUT_MACHINE",
                  "{\"machine\":\"m\",\"version\":3,\"definition\":{}}");
    expect_params("GET", "/v1/machines/a%20b/versions/0", NULL, NULL, NULL, NULL, "GET_MACHINE",
                  "{\"machine\":\"a b\",\"version\":0}");
    expect_params("POST", "/v1/instances", NULL, "{\"machine\":\"m\",\"version\":1}", "k1", NULL,
                  "CREATE_INSTANCE",
                  "{\"idempotency_key\":\"k1\",\"machine\":\"m\",\"version\":1}");
    const char *lq[] = {"machine", "m", "limit", "5", "offset", "10", "state", "s", NULL};
    expect_params("GET", "/v1/instances", lq, NULL, NULL, NULL, "LIST_INSTANCES",
                  "{\"machine\":\"m\",\"limit\":5,\"offset\":10,\"state\":\"s\"}");
    expect_params("GET", "/v1/instances/i-1", NULL, NULL, NULL, NULL, "GET_INSTANCE",
                  "{\"instance_id\":\"i-1\"}");
    expect_params("DELETE", "/v1/instances/i-1", NULL, NULL, "d1", NULL, "DELETE_INSTANCE",
                  "{\"instance_id\":\"i-1\",\"idempotency_key\":\"d1\"}");
    expect_params("POST", "/v1/instances/i-1/events", NULL, "{\"event\":\"GO\"}", "e1",
                  "\"1099511627776\"", "APPLY_EVENT",
                  "{\"instance_id\":\"i-1\",\"idempotency_key\":\"e1\",\"expected_wal_offset\":"
                  "1099511627776,\"event\":\"GO\"}");
    expect_params("POST", "/v1/instances/i-1/snapshot", NULL, "", NULL, NULL, "SNAPSHOT_INSTANCE",
                  "{\"instance_id\":\"i-1\"}");
    expect_params("POST", "/v1/batch", NULL, "{\"mode\":\"atomic\",\"ops\":[]}", NULL, NULL,
                  "BATCH", "{\"mode\":\"atomic\",\"ops\":[]}");
    expect_params("GET", "/v1/wal", NULL, NULL, NULL, NULL, "WAL_READ", "{\"from_offset\":0}");
    const char *wq[] = {"from_offset", "1099511627776", "limit", "2", NULL};
    expect_params("GET", "/v1/wal", wq, NULL, NULL, NULL, "WAL_READ",
                  "{\"from_offset\":1099511627776,\"limit\":2}");
    expect_params("GET", "/v1/wal/stats", NULL, NULL, NULL, NULL, "WAL_STATS", "{}");
    expect_params("POST", "/v1/wal/compact", NULL, "{\"force_snapshot\":true}", NULL, NULL,
                  "COMPACT", "{\"force_snapshot\":true}");
    expect_params("POST", "/v1/wal/compact", NULL, NULL, NULL, NULL, "COMPACT", "{}");
    expect_params("POST", "/v1/rpc", NULL,
                  "{\"op\":\"GET_INSTANCE\",\"params\": {\"instance_id\" : \"x\"}}", NULL, NULL,
                  "GET_INSTANCE", "{\"instance_id\" : \"x\"}");
    expect_params("POST", "/v1/rpc", NULL, "{\"op\":\"PING\"}", NULL, NULL, "PING", "{}");
}
END_TEST

START_TEST(flush_all_gate)
{
    tcall t;
    run(&t, "POST", "/v1/admin/flush-all", NULL, NULL, NULL, NULL, false);
    ck_assert_int_eq(t.rc, -1);
    ck_assert_int_eq(t.p.status, 403);
    ck_assert_str_eq(t.p.code, "FORBIDDEN");
    done(&t);
    run(&t, "POST", "/v1/admin/flush-all", NULL, NULL, NULL, NULL, true);
    ck_assert_int_eq(t.rc, 0);
    ck_assert_str_eq(t.call.op, "FLUSH_ALL");
    ck_assert_str_eq(t.call.params, "{}");
    done(&t);
    run(&t, "POST", "/v1/rpc", NULL, "{\"op\":\"FLUSH_ALL\"}", NULL, NULL, false);
    ck_assert_int_eq(t.p.status, 403);
    done(&t);
    run(&t, "POST", "/v1/rpc", NULL, "{\"op\":\"FLUSH_ALL\",\"params\":{}}", NULL, NULL, true);
    ck_assert_int_eq(t.rc, 0);
    ck_assert(t.call.raw_envelope);
    done(&t);
}
END_TEST

START_TEST(rejections)
{
    expect_problem("PUT", "/v1/machines/m/versions/3", "{\"machine\":\"n\",\"definition\":{}}",
                   NULL, NULL, 400, "BAD_REQUEST", "disagrees");
    expect_problem("PUT", "/v1/machines/m/versions/3", "{\"version\":4,\"definition\":{}}", NULL,
                   NULL, 400, "BAD_REQUEST", "version");
    expect_problem("PUT", "/v1/machines/m/versions/3", "{\"version\":\"3\"}", NULL, NULL, 400,
                   "BAD_REQUEST", "version");
    expect_problem("POST", "/v1/instances/a/events", "{\"instance_id\":\"b\",\"event\":\"E\"}",
                   NULL, NULL, 400, "BAD_REQUEST", "instance_id");
    expect_problem("POST", "/v1/instances/a/events", "{\"event\":\"E\",\"idempotency_key\":\"x\"}",
                   "y", NULL, 400, "BAD_REQUEST", "Idempotency-Key");
    expect_problem("POST", "/v1/instances/a/events", "{\"event\":\"E\",\"expected_wal_offset\":5}",
                   NULL, "\"6\"", 400, "BAD_REQUEST", "If-Match");
    expect_problem("POST", "/v1/instances/a/events", "{\"event\":\"E\"}", NULL, "W/\"6\"", 400,
                   "BAD_REQUEST", "If-Match");
    expect_problem("POST", "/v1/instances/a/events", "{\"event\":\"E\"}", NULL, "6", 400,
                   "BAD_REQUEST", "If-Match");
    /* not an object / not JSON / JSON the upstream would choke on */
    const char *bad[] = {"[1]",
                         "\"s\"",
                         "1",
                         "null",
                         "{",
                         "{\"a\":1,}",
                         "{\"a\":01}",
                         "{\"a\":+1}",
                         "{\"a\":1e999}",
                         "{\"a\":\"\\ud800\"}",
                         "{\"a\":\"\xff\"}",
                         "{\"a\":\"x\ty\"}",
                         "{\"a\":NaN}",
                         "{} {}",
                         "{'a':1}",
                         NULL};
    for (size_t i = 0; bad[i]; i++)
        expect_problem("POST", "/v1/instances", bad[i], NULL, NULL, 400, "BAD_REQUEST", NULL);
    expect_problem("POST", "/v1/instances", NULL, NULL, NULL, 400, "BAD_REQUEST", "object");
    expect_problem("POST", "/v1/instances", "  ", NULL, NULL, 400, "BAD_REQUEST", "object");
    /* nesting deeper than serde's limit */
    char deep[512] = "{\"a\":";
    for (int i = 0; i < 120; i++)
        strcat(deep, "[");
    for (int i = 0; i < 120; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    expect_problem("POST", "/v1/instances", deep, NULL, NULL, 400, "BAD_REQUEST", "deep");
    /* /v1/rpc rules */
    const char *refused[] = {"HELLO",          "AUTH",    "BYE", "WATCH_ALL",
                             "WATCH_INSTANCE", "UNWATCH", NULL};
    for (size_t i = 0; refused[i]; i++) {
        char b[64];
        snprintf(b, sizeof b, "{\"op\":\"%s\"}", refused[i]);
        expect_problem("POST", "/v1/rpc", b, NULL, NULL, 400, "BAD_REQUEST", NULL);
    }
    expect_problem("POST", "/v1/rpc", "{\"params\":{}}", NULL, NULL, 400, "BAD_REQUEST", "op");
    expect_problem("POST", "/v1/rpc", "{\"op\":\"ping\"}", NULL, NULL, 400, "BAD_REQUEST", "op");
    expect_problem("POST", "/v1/rpc", "{\"op\":\"PING\",\"params\":[]}", NULL, NULL, 400,
                   "BAD_REQUEST", "params");
    /* path capture not valid UTF-8: refused by the route match (400) */
    {
        route_match m;
        ck_assert_int_eq(route_match_path("GET", "/v1/instances/%FF", &m), ROUTE_BAD_PATH);
        ck_assert_ptr_nonnull(strstr(m.why, "UTF-8"));
    }
}
END_TEST

START_TEST(resend_safety)
{
    tcall t;
    run(&t, "GET", "/v1/instances/a", NULL, NULL, NULL, NULL, false);
    ck_assert(t.call.resend_safe);
    done(&t);
    run(&t, "POST", "/v1/instances/a/events", NULL, "{\"event\":\"E\"}", NULL, NULL, false);
    ck_assert(!t.call.resend_safe);
    done(&t);
    run(&t, "POST", "/v1/instances/a/events", NULL, "{\"event\":\"E\"}", "k", NULL, false);
    ck_assert(t.call.resend_safe);
    done(&t);
    /* CREATE_INSTANCE keys do not deduplicate upstream: never re-sent */
    run(&t, "POST", "/v1/instances", NULL, "{\"machine\":\"m\",\"version\":1}", "k", NULL, false);
    ck_assert(!t.call.resend_safe);
    done(&t);
}
END_TEST

START_TEST(answers)
{
    route_match m;
    rest_answer a;
    ck_assert_int_eq(route_match_path("PUT", "/v1/machines/a%20b/versions/2", &m), ROUTE_OK);
    const char *r1 =
        "{\"created\":true,\"machine\":\"a b\",\"stored_checksum\":\"x\",\"version\":2}";
    rest_answer_for(&m, r1, strlen(r1), &a);
    ck_assert_int_eq(a.status, 201);
    ck_assert_str_eq(a.location, "/v1/machines/a%20b/versions/2");
    const char *r2 = "{\"created\":false,\"machine\":\"a b\"}";
    rest_answer_for(&m, r2, strlen(r2), &a);
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(a.location, "");

    ck_assert_int_eq(route_match_path("POST", "/v1/instances", &m), ROUTE_OK);
    const char *r3 = "{\"instance_id\":\"o/1 \\u00e9\",\"state\":\"s\",\"wal_offset\":1}";
    rest_answer_for(&m, r3, strlen(r3), &a);
    ck_assert_int_eq(a.status, 201);
    ck_assert_str_eq(a.location, "/v1/instances/o%2F1%20%C3%A9");
    /* Never a raw CR/LF in a header; dot-only ids are encoded so that a
     * client does not resolve them away. */
    static const struct {
        const char *result, *location;
    } ids[] = {
        {"{\"instance_id\":\"x\\r\\ny\"}", "/v1/instances/x%0D%0Ay"},
        {"{\"instance_id\":\"..\"}", "/v1/instances/%2E%2E"},
        {"{\"instance_id\":\".\"}", "/v1/instances/%2E"},
        {"{\"instance_id\":\"a..b\"}", "/v1/instances/a..b"},
        {"{\"instance_id\":\"a b?#%\"}", "/v1/instances/a%20b%3F%23%25"},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        rest_answer_for(&m, ids[i].result, strlen(ids[i].result), &a);
        ck_assert_str_eq(a.location, ids[i].location);
    }

    ck_assert_int_eq(route_match_path("GET", "/v1/instances/x", &m), ROUTE_OK);
    const char *r4 = "{\"ctx\":{\"last_wal_offset\":1},\"last_wal_offset\":18446744073709551615,"
                     "\"machine\":\"m\",\"state\":\"s\",\"version\":1}";
    rest_answer_for(&m, r4, strlen(r4), &a);
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(a.etag, "\"18446744073709551615\"");
}
END_TEST

START_TEST(json_checks)
{
    const char *why;
    const char *good[] = {"{}",
                          " {\"a\" : [1, -0, 0.5e-3, true, false, null, \"\\u00e9\\n\"]} ",
                          "{\"s\":\"\\ud83d\\ude00\"}",
                          "{\"x\":\"\xc3\xa9\xf0\x9f\x98\x80\"}",
                          "[]",
                          "0",
                          NULL};
    for (size_t i = 0; good[i]; i++)
        ck_assert_msg(jscan_validate(good[i], strlen(good[i]), 100, NULL, &why) == 0, "%s: %s",
                      good[i], why);
    const char *bad[] = {"",
                         "{",
                         "}",
                         "{\"a\"}",
                         "{\"a\":}",
                         "[1,]",
                         "01",
                         "-",
                         "1.",
                         ".5",
                         "1e",
                         "tru",
                         "\"\\x\"",
                         "\"\\u12\"",
                         "\"\\udc00\"",
                         "\"\xc0\xaf\"",
                         "\"\xed\xa0\x80\"",
                         "\"\xf4\x90\x80\x80\"",
                         "{\"a\":1}x",
                         NULL};
    for (size_t i = 0; bad[i]; i++)
        ck_assert_msg(jscan_validate(bad[i], strlen(bad[i]), 100, NULL, &why) == -1, "accepted %s",
                      bad[i]);
    jscan_member jm;
    const char *o = "{\"a\":{\"params\":1},\"params\" : {\"k\":[1,2]} , \"z\":2}";
    ck_assert_int_eq(jscan_get(o, strlen(o), "params", &jm), 0);
    ck_assert_int_eq((int)jm.val_len, 11);
    ck_assert_int_eq(strncmp(o + jm.val_off, "{\"k\":[1,2]}", jm.val_len), 0);
    ck_assert_int_eq(jscan_get(o, strlen(o), "nope", &jm), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rest");
    TCase *tc = tcase_create("rest");
    tcase_add_test(tc, params_every_endpoint);
    tcase_add_test(tc, flush_all_gate);
    tcase_add_test(tc, rejections);
    tcase_add_test(tc, resend_safety);
    tcase_add_test(tc, answers);
    tcase_add_test(tc, json_checks);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
