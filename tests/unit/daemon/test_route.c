/* test_route.c: route matching (404/405/400), percent-decoding and strict
 * query parsing, every rejection. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"

START_TEST(match_every_route)
{
    size_t n;
    const route *rt = route_table(&n);
    ck_assert_uint_eq(n, R_COUNT);
    for (size_t i = 0; i < n; i++) {
        /* Replace captures by sample values. */
        char path[256] = "";
        const char *p = rt[i].pattern;
        while (*p) {
            if (*p == '{') {
                strcat(path, strchr(p, ':') && strchr(p, ':') < strchr(p, '}') ? "7" : "x%20y");
                p = strchr(p, '}') + 1;
            } else {
                strncat(path, p, 1);
                p++;
            }
        }
        route_match m;
        ck_assert_int_eq(route_match_path(rt[i].method, path, &m), ROUTE_OK);
        ck_assert_int_eq(m.r->id, rt[i].id);
    }
}
END_TEST

START_TEST(captures_are_decoded)
{
    route_match m;
    ck_assert_int_eq(route_match_path("PUT", "/v1/machines/or%C3%A9der/versions/42", &m), ROUTE_OK);
    ck_assert_int_eq(m.r->id, R_PUT_MACHINE);
    ck_assert_uint_eq(m.ncaps, 2);
    ck_assert_str_eq(m.caps[0].name, "machine");
    ck_assert_str_eq(m.caps[0].value, "or\xC3\xA9"
                                      "der");
    ck_assert_str_eq(m.caps[1].name, "version");
    ck_assert(m.caps[1].is_u32);
    ck_assert_uint_eq(m.caps[1].num, 42);
    ck_assert_int_eq(route_match_path("GET", "/v1/instances/a%2Bb/watch", &m), ROUTE_OK);
    ck_assert_int_eq(m.r->id, R_WATCH_INSTANCE);
    ck_assert_str_eq(m.caps[0].name, "instance_id");
    ck_assert_str_eq(m.caps[0].value, "a+b");
    /* HEAD is GET without a body */
    ck_assert_int_eq(route_match_path("HEAD", "/v1/ping", &m), ROUTE_OK);
}
END_TEST

START_TEST(rejections)
{
    route_match m;
    ck_assert_int_eq(route_match_path("GET", "/v1/nope", &m), ROUTE_NOT_FOUND);
    ck_assert_int_eq(route_match_path("GET", "/v1/ping/", &m), ROUTE_NOT_FOUND);
    ck_assert_int_eq(route_match_path("GET", "/v1//ping", &m), ROUTE_NOT_FOUND);
    ck_assert_int_eq(route_match_path("GET", "/v1/instances//events", &m), ROUTE_NOT_FOUND);
    ck_assert_int_eq(route_match_path("GET", "", &m), ROUTE_NOT_FOUND);
    /* an encoded slash cannot create or hide a segment: it stays inside
     * the id (any string is an id), as do CR and LF */
    ck_assert_int_eq(route_match_path("GET", "/v1/instances/a%2Fb", &m), ROUTE_OK);
    ck_assert_int_eq(m.r->id, R_GET_INSTANCE);
    ck_assert_str_eq(m.caps[0].value, "a/b");
    ck_assert_int_eq(route_match_path("POST", "/v1/instances/a%2Fb/events", &m), ROUTE_OK);
    ck_assert_int_eq(m.r->id, R_APPLY_EVENT);
    ck_assert_str_eq(m.caps[0].value, "a/b");
    ck_assert_int_eq(route_match_path("GET", "/v1/instances%2Fa", &m), ROUTE_NOT_FOUND);
    ck_assert_int_eq(route_match_path("GET", "/v1/instances/a%0Db", &m), ROUTE_OK);
    ck_assert_str_eq(m.caps[0].value, "a\rb");
    ck_assert_int_eq(route_match_path("GET", "/v1/instances/x%0D%0Ay", &m), ROUTE_OK);
    ck_assert_str_eq(m.caps[0].value, "x\r\ny");
    ck_assert_int_eq(route_match_path("GET", "/v1/instances/%2E%2E", &m), ROUTE_OK);
    ck_assert_str_eq(m.caps[0].value, "..");
    ck_assert_int_eq(route_match_path("GET", "/v1/instances/%C3%A9", &m), ROUTE_OK);
    ck_assert_str_eq(m.caps[0].value, "\xc3\xa9");
    /* refused: NUL, invalid UTF-8, raw dot-segments */
    ck_assert_int_eq(route_match_path("GET", "/v1/instances/a%00b", &m), ROUTE_BAD_PATH);
    ck_assert_int_eq(route_match_path("GET", "/v1/instances/%FF%FE", &m), ROUTE_BAD_PATH);
    ck_assert_int_eq(route_match_path("GET", "/v1/instances/%C3", &m), ROUTE_BAD_PATH);
    ck_assert_int_eq(route_match_path("GET", "/v1/instances/..", &m), ROUTE_BAD_PATH);
    ck_assert_int_eq(route_match_path("GET", "/v1/instances/.", &m), ROUTE_BAD_PATH);
    ck_assert_int_eq(route_match_path("GET", "/v1/instances/a%zzb", &m), ROUTE_BAD_PATH);
    ck_assert_int_eq(route_match_path("GET", "/v1/instances/a%2", &m), ROUTE_BAD_PATH);
    ck_assert_int_eq(route_match_path("GET", "/v1/machines/m/versions/-1", &m), ROUTE_BAD_PATH);
    ck_assert_int_eq(route_match_path("GET", "/v1/machines/m/versions/4294967296", &m),
                     ROUTE_BAD_PATH);
    ck_assert_int_eq(route_match_path("GET", "/v1/machines/m/versions/1x", &m), ROUTE_BAD_PATH);
    ck_assert_ptr_nonnull(strstr(m.why, "version"));
    /* 405 with Allow */
    ck_assert_int_eq(route_match_path("DELETE", "/v1/ping", &m), ROUTE_METHOD_NOT_ALLOWED);
    ck_assert_str_eq(m.allow, "GET, HEAD, OPTIONS");
    ck_assert_int_eq(route_match_path("POST", "/v1/instances/x", &m), ROUTE_METHOD_NOT_ALLOWED);
    ck_assert_str_eq(m.allow, "GET, DELETE, HEAD, OPTIONS");
    ck_assert_int_eq(route_match_path("PATCH", "/v1/machines/m/versions/1", &m),
                     ROUTE_METHOD_NOT_ALLOWED);
    ck_assert_str_eq(m.allow, "PUT, GET, HEAD, OPTIONS");
    char allow[96];
    ck_assert_int_eq(route_allowed_methods("/v1/instances", allow, sizeof allow), 0);
    ck_assert_str_eq(allow, "POST, GET, HEAD, OPTIONS");
    ck_assert_int_eq(route_allowed_methods("/nope", allow, sizeof allow), -1);
}
END_TEST

START_TEST(pct_decode)
{
    char out[16];
    ck_assert_int_eq(route_pct_decode("a%41%62", 7, out, sizeof out, 0), 3);
    ck_assert_str_eq(out, "aAb");
    ck_assert_int_eq(route_pct_decode("a+b", 3, out, sizeof out, 0), 3);
    ck_assert_str_eq(out, "a+b");
    ck_assert_int_eq(route_pct_decode("%2f", 3, out, sizeof out, 0), 1);
    ck_assert_int_eq(route_pct_decode("%2f", 3, out, sizeof out, PCT_REJECT_SLASH), -1);
    ck_assert_int_eq(route_pct_decode("/", 1, out, sizeof out, PCT_REJECT_SLASH), -1);
    ck_assert_int_eq(route_pct_decode("%0d", 3, out, sizeof out, PCT_REJECT_CTL), -1);
    ck_assert_int_eq(route_pct_decode("%0A", 3, out, sizeof out, PCT_REJECT_CTL), -1);
    ck_assert_int_eq(route_pct_decode("%0A", 3, out, sizeof out, 0), 1);
    ck_assert_int_eq(route_pct_decode("%00", 3, out, sizeof out, 0), -1);
    ck_assert_int_eq(route_pct_decode("%", 1, out, sizeof out, 0), -1);
    ck_assert_int_eq(route_pct_decode("%4", 2, out, sizeof out, 0), -1);
    ck_assert_int_eq(route_pct_decode("%g0", 3, out, sizeof out, 0), -1);
    ck_assert_int_eq(route_pct_decode("0123456789abcdef", 16, out, sizeof out, 0), -1);
}
END_TEST

/* No parameter, no allocation: out stays NULL until the first one. */
START_TEST(query_empty)
{
    route_query q;
    const route *li = route_get(R_LIST_INSTANCES);
    ck_assert_int_eq(route_query_init(&q, li), 0);
    ck_assert_ptr_null(q.out);
    ck_assert_int_eq(route_query_add(&q, "bogus", "1"), -1);
    ck_assert_ptr_null(q.out);
    ck_assert_int_eq(route_query_add(&q, "limit", "3"), 0);
    ck_assert_ptr_nonnull(q.out);
    route_query_deinit(&q);
    ck_assert_ptr_null(q.out);
}
END_TEST

static int q1(const route *r, const char *k, const char *v, char *why, size_t cap)
{
    route_query q;
    route_query_init(&q, r);
    int rc = route_query_add(&q, k, v);
    snprintf(why, cap, "%s", q.why);
    route_query_deinit(&q);
    return rc;
}

START_TEST(query_typed)
{
    const route *li = route_get(R_LIST_INSTANCES);
    route_query q;
    route_query_init(&q, li);
    ck_assert_int_eq(route_query_add(&q, "limit", "10"), 0);
    ck_assert_int_eq(route_query_add(&q, "offset", "0"), 0);
    ck_assert_int_eq(route_query_add(&q, "machine", "or%20der"), 0);
    ck_assert_int_eq(route_query_add(&q, "state", ""), 0);
    char *s = cJSON_PrintUnformatted(q.out);
    ck_assert_str_eq(s, "{\"limit\":10,\"offset\":0,\"machine\":\"or der\",\"state\":\"\"}");
    free(s);
    route_query_deinit(&q);

    char why[160];
    ck_assert_int_eq(q1(li, "limit", "-1", why, sizeof why), -1);
    ck_assert_ptr_nonnull(strstr(why, "limit"));
    ck_assert_int_eq(q1(li, "limit", "", why, sizeof why), -1);
    ck_assert_int_eq(q1(li, "limit", NULL, why, sizeof why), -1);
    ck_assert_int_eq(q1(li, "limit", "1.5", why, sizeof why), -1);
    ck_assert_int_eq(q1(li, "limit", "+1", why, sizeof why), -1);
    ck_assert_int_eq(q1(li, "limit", "4294967296", why, sizeof why), -1);
    ck_assert_int_eq(q1(li, "limit", "4294967295", why, sizeof why), 0);
    ck_assert_int_eq(q1(li, "version", "1", why, sizeof why), -1);
    ck_assert_ptr_nonnull(strstr(why, "unknown parameter"));
    ck_assert_int_eq(q1(li, "machine", "a%00", why, sizeof why), -1);
    ck_assert_int_eq(q1(li, "machine", "a%zz", why, sizeof why), -1);
    ck_assert_int_eq(q1(route_get(R_PING), "x", "1", why, sizeof why), -1);

    /* repeated scalar */
    route_query_init(&q, li);
    ck_assert_int_eq(route_query_add(&q, "limit", "1"), 0);
    ck_assert_int_eq(route_query_add(&q, "limit", "1"), -1);
    ck_assert_ptr_nonnull(strstr(q.why, "more than once"));
    route_query_deinit(&q);

    /* u64 stays exact above 2^53 */
    const route *wal = route_get(R_WAL_READ);
    route_query_init(&q, wal);
    ck_assert_int_eq(route_query_add(&q, "from_offset", "18446744073709551615"), 0);
    s = cJSON_PrintUnformatted(q.out);
    ck_assert_str_eq(s, "{\"from_offset\":18446744073709551615}");
    free(s);
    route_query_deinit(&q);
    ck_assert_int_eq(q1(wal, "from_offset", "18446744073709551616", why, sizeof why), -1);
}
END_TEST

START_TEST(query_bool_and_lists)
{
    const route *wa = route_get(R_WATCH_ALL);
    char why[160];
    ck_assert_int_eq(q1(wa, "include_ctx", "true", why, sizeof why), 0);
    ck_assert_int_eq(q1(wa, "include_ctx", "false", why, sizeof why), 0);
    ck_assert_int_eq(q1(wa, "include_ctx", "1", why, sizeof why), -1);
    ck_assert_int_eq(q1(wa, "include_ctx", "yes", why, sizeof why), -1);
    ck_assert_int_eq(q1(wa, "include_ctx", "True", why, sizeof why), -1);
    ck_assert_int_eq(q1(wa, "include_ctx", "", why, sizeof why), -1);
    ck_assert_int_eq(q1(wa, "machines", "a,,b", why, sizeof why), -1);
    ck_assert_int_eq(q1(wa, "machines", "", why, sizeof why), -1);

    route_query q;
    route_query_init(&q, wa);
    ck_assert_int_eq(route_query_add(&q, "machines", "a,b"), 0);
    ck_assert_int_eq(route_query_add(&q, "machines", "c"), 0);
    ck_assert_int_eq(route_query_add(&q, "events", "GO%2CSTOP"), 0); /* encoded comma splits too */
    char *s = cJSON_PrintUnformatted(q.out);
    ck_assert_str_eq(s, "{\"machines\":[\"a\",\"b\",\"c\"],\"events\":[\"GO\",\"STOP\"]}");
    free(s);
    route_query_deinit(&q);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("route");
    TCase *tc = tcase_create("route");
    tcase_add_test(tc, match_every_route);
    tcase_add_test(tc, captures_are_decoded);
    tcase_add_test(tc, rejections);
    tcase_add_test(tc, pct_decode);
    tcase_add_test(tc, query_typed);
    tcase_add_test(tc, query_bool_and_lists);
    tcase_add_test(tc, query_empty);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
