/* test_apply.c: APPLY_EVENT (PROTOCOL.md §4.8, §8.2, §8.3, §8.5): result
 * shape, ctx merge, guard on the pre-merge ctx, optimistic concurrency and its
 * check order, idempotent replays, event_id echo.
 */
#include "conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* s0 -GO-> s1 -GO-> s2 -BACK-> s0; s0 -SET-> s0; s0 -SHIP-> s2 if ctx.ready. */
#define APPLY_DEF                                                                                \
    "{\"states\":[\"s0\",\"s1\",\"s2\"],\"initial\":\"s0\",\"transitions\":["                    \
    "{\"from\":\"s0\",\"event\":\"GO\",\"to\":\"s1\"},{\"from\":\"s1\",\"event\":\"GO\",\"to\":" \
    "\"s2\"},"                                                                                   \
    "{\"from\":\"s2\",\"event\":\"BACK\",\"to\":\"s0\"},{\"from\":\"s0\",\"event\":\"SET\","     \
    "\"to\":\"s0\"},"                                                                            \
    "{\"from\":\"s0\",\"event\":\"SHIP\",\"to\":\"s2\",\"guard\":\"ctx.ready\"}]}"

static void setup(void)
{
    cf_setup(0);
}

static const char *ap(const char *id, const char *rest)
{
    return cf_fmt("{\"instance_id\":\"%s\"%s%s}", id, rest[0] ? "," : "", rest);
}

START_TEST(worked_example_and_replay)
{
    cf_conn *k = CF_OPEN();
    char m[96], id[96], off[256];
    cf_uniq(m, sizeof m, "order");
    cf_uniq(id, sizeof id, "o");
    CF_PUT_MACHINE(k, m, CF_ORDER_DEF);
    CF_CREATE(k, id, m, "{\"zeta\":1}");
    cf_caps c;
    CF_OKC(
        k, "APPLY_EVENT",
        ap(id, "\"event\":\"PAY\",\"payload\":{\"amount\":99.99,\"alpha\":5},\"event_id\":\"e1\","
               "\"idempotency_key\":\"pay1\""),
        "{\"applied\":true,\"ctx\":{\"alpha\":5,\"amount\":99.99,\"zeta\":1},\"event_id\":\"e1\","
        "\"from_state\":\"created\",\"to_state\":\"paid\",\"wal_offset\":$O}",
        &c);
    snprintf(off, sizeof off, "%s", c.v[0]);
    /* Replay with a different payload: the cached result, applied stays true,
     * no event_id unless this request carries one. */
    const char *cached =
        cf_fmt("{\"applied\":true,\"ctx\":{\"alpha\":5,\"amount\":99.99,\"zeta\":1},"
               "\"from_state\":\"created\",\"to_state\":\"paid\",\"wal_offset\":%s}",
               off);
    char cached_s[512];
    snprintf(cached_s, sizeof cached_s, "%s", cached);
    CF_OK(k, "APPLY_EVENT",
          ap(id, "\"event\":\"PAY\",\"payload\":{\"amount\":1},\"idempotency_key\":\"pay1\""),
          cached_s);
    /* The event name is not compared either. */
    CF_OK(k, "APPLY_EVENT", ap(id, "\"event\":\"SHIP\",\"idempotency_key\":\"pay1\""), cached_s);
    CF_OK(k, "APPLY_EVENT",
          ap(id, "\"event\":\"PAY\",\"idempotency_key\":\"pay1\",\"event_id\":\"e9\""),
          cf_fmt("{\"applied\":true,\"ctx\":{\"alpha\":5,\"amount\":99.99,\"zeta\":1},\"event_id\":"
                 "\"e9\","
                 "\"from_state\":\"created\",\"to_state\":\"paid\",\"wal_offset\":%s}",
                 off));
    /* No state change from the replays. */
    CF_OK(k, "GET_INSTANCE", ap(id, ""),
          cf_fmt("{\"ctx\":{\"alpha\":5,\"amount\":99.99,\"zeta\":1},\"last_event_id\":\"e1\","
                 "\"last_wal_offset\":%s,"
                 "\"machine\":\"%s\",\"state\":\"paid\",\"version\":1}",
                 off, m));
    /* expected_state is not checked on a cache hit (the cache comes first). */
    CF_OK(k, "APPLY_EVENT",
          ap(id, "\"event\":\"PAY\",\"idempotency_key\":\"pay1\",\"expected_state\":\"zzz\""),
          cached_s);
    cf_close(k);
}
END_TEST

START_TEST(idempotency_scope_and_errors_not_cached)
{
    cf_conn *k = CF_OPEN();
    char m[96], a[96], b[96];
    cf_uniq(m, sizeof m, "ap");
    cf_uniq(a, sizeof a, "a");
    cf_uniq(b, sizeof b, "b");
    CF_PUT_MACHINE(k, m, APPLY_DEF);
    CF_CREATE(k, a, m, "{}");
    CF_CREATE(k, b, m, "{}");
    /* A failure is not cached: the same key works afterwards. */
    CF_ERR(k, "APPLY_EVENT", ap(a, "\"event\":\"BACK\",\"idempotency_key\":\"k\""),
           "INVALID_TRANSITION",
           "core error: invalid transition: cannot apply 'BACK' in state 's0'", false);
    CF_ERR(k, "APPLY_EVENT", ap(a, "\"event\":\"SHIP\",\"idempotency_key\":\"k\""), "GUARD_FAILED",
           "core error: guard failed: guard failed for transition 's0' -> 's2' on event 'SHIP'",
           false);
    CF_OK(k, "APPLY_EVENT", ap(a, "\"event\":\"GO\",\"idempotency_key\":\"k\""),
          "{\"applied\":true,\"ctx\":{},\"from_state\":\"s0\",\"to_state\":\"s1\",\"wal_offset\":$"
          "O}");
    /* The same key on another instance is independent. */
    CF_OK(k, "APPLY_EVENT",
          ap(b, "\"event\":\"SET\",\"idempotency_key\":\"k\",\"payload\":{\"x\":1}"),
          "{\"applied\":true,\"ctx\":{\"x\":1},\"from_state\":\"s0\",\"to_state\":\"s0\",\"wal_"
          "offset\":$O}");
    /* INSTANCE_NOT_FOUND comes before the cache. */
    CF_ERR(k, "APPLY_EVENT", ap(cf_fmt("%s-no", a), "\"event\":\"GO\",\"idempotency_key\":\"k\""),
           "INSTANCE_NOT_FOUND", cf_fmt("core error: instance not found: %s-no", a), false);
    /* Keys are strings compared exactly. */
    CF_OK(k, "APPLY_EVENT", ap(a, "\"event\":\"GO\",\"idempotency_key\":\"K\""),
          "{\"applied\":true,\"ctx\":{},\"from_state\":\"s1\",\"to_state\":\"s2\",\"wal_offset\":$"
          "O}");
    cf_close(k);
}
END_TEST

START_TEST(ctx_merge_rules)
{
    cf_conn *k = CF_OPEN();
    char m[96], o[96], n[96], r[96];
    cf_uniq(m, sizeof m, "ap");
    cf_uniq(o, sizeof o, "obj");
    cf_uniq(n, sizeof n, "null");
    cf_uniq(r, sizeof r, "arr");
    CF_PUT_MACHINE(k, m, APPLY_DEF);
    CF_CREATE(k, o, m, "{\"a\":{\"x\":1,\"y\":1},\"b\":1}");
    CF_CREATE(k, n, m, NULL);
    CF_CREATE(k, r, m, "[1]");
    const char *set = "\"event\":\"SET\",\"payload\":";
    /* Shallow: nested objects replaced whole, top-level keys added or overwritten. */
    CF_OK(k, "APPLY_EVENT", ap(o, cf_fmt("%s{\"a\":{\"z\":2},\"c\":[1],\"b\":null}", set)),
          "{\"applied\":true,\"ctx\":{\"a\":{\"z\":2},\"b\":null,\"c\":[1]},\"from_state\":\"s0\","
          "\"to_state\":\"s0\","
          "\"wal_offset\":$O}");
    /* Payload null, array or scalar: unchanged. */
    CF_OK(k, "APPLY_EVENT", ap(o, "\"event\":\"SET\""),
          "{\"applied\":true,\"ctx\":{\"a\":{\"z\":2},\"b\":null,\"c\":[1]},\"from_state\":\"s0\","
          "\"to_state\":\"s0\","
          "\"wal_offset\":$O}");
    CF_OK(k, "APPLY_EVENT", ap(o, cf_fmt("%s[{\"a\":1}]", set)),
          "{\"applied\":true,\"ctx\":{\"a\":{\"z\":2},\"b\":null,\"c\":[1]},\"from_state\":\"s0\","
          "\"to_state\":\"s0\","
          "\"wal_offset\":$O}");
    CF_OK(k, "APPLY_EVENT", ap(o, cf_fmt("%s\"str\"", set)),
          "{\"applied\":true,\"ctx\":{\"a\":{\"z\":2},\"b\":null,\"c\":[1]},\"from_state\":\"s0\","
          "\"to_state\":\"s0\","
          "\"wal_offset\":$O}");
    CF_OK(k, "APPLY_EVENT", ap(o, cf_fmt("%s{}", set)),
          "{\"applied\":true,\"ctx\":{\"a\":{\"z\":2},\"b\":null,\"c\":[1]},\"from_state\":\"s0\","
          "\"to_state\":\"s0\","
          "\"wal_offset\":$O}");
    /* Null ctx: payloads are never merged. */
    CF_OK(k, "APPLY_EVENT", ap(n, cf_fmt("%s{\"a\":1}", set)),
          "{\"applied\":true,\"ctx\":null,\"from_state\":\"s0\",\"to_state\":\"s0\",\"wal_offset\":"
          "$O}");
    CF_OK(k, "GET_INSTANCE", ap(n, ""),
          cf_fmt("{\"ctx\":null,\"last_wal_offset\":$O,\"machine\":\"%s\","
                 "\"state\":\"s0\",\"version\":1}",
                 m));
    /* Array ctx: unchanged. */
    CF_OK(k, "APPLY_EVENT", ap(r, cf_fmt("%s{\"a\":1}", set)),
          "{\"applied\":true,\"ctx\":[1],\"from_state\":\"s0\",\"to_state\":\"s0\",\"wal_offset\":$"
          "O}");
    cf_close(k);
}
END_TEST

START_TEST(guard_on_pre_merge_ctx)
{
    cf_conn *k = CF_OPEN();
    char m[96], id[96];
    cf_uniq(m, sizeof m, "ap");
    cf_uniq(id, sizeof id, "g");
    CF_PUT_MACHINE(k, m, APPLY_DEF);
    CF_CREATE(k, id, m, "{}");
    /* The payload would satisfy the guard, but the guard sees the old ctx. */
    CF_ERR(k, "APPLY_EVENT", ap(id, "\"event\":\"SHIP\",\"payload\":{\"ready\":true}"),
           "GUARD_FAILED",
           "core error: guard failed: guard failed for transition 's0' -> 's2' on event 'SHIP'",
           false);
    /* The failure merged nothing. */
    CF_OK(k, "GET_INSTANCE", ap(id, ""),
          cf_fmt("{\"ctx\":{},\"last_wal_offset\":$O,\"machine\":\"%s\","
                 "\"state\":\"s0\",\"version\":1}",
                 m));
    CF_OK(k, "APPLY_EVENT", ap(id, "\"event\":\"SET\",\"payload\":{\"ready\":true}"),
          "{\"applied\":true,\"ctx\":{\"ready\":true},\"from_state\":\"s0\",\"to_state\":\"s0\","
          "\"wal_offset\":$O}");
    /* Now ready; a payload that would make it false does not matter either. */
    CF_OK(k, "APPLY_EVENT", ap(id, "\"event\":\"SHIP\",\"payload\":{\"ready\":false}"),
          "{\"applied\":true,\"ctx\":{\"ready\":false},\"from_state\":\"s0\",\"to_state\":\"s2\","
          "\"wal_offset\":$O}");
    cf_close(k);
}
END_TEST

START_TEST(optimistic_concurrency)
{
    cf_conn *k = CF_OPEN();
    char m[96], id[96], last[32];
    cf_uniq(m, sizeof m, "ap");
    cf_uniq(id, sizeof id, "cc");
    CF_PUT_MACHINE(k, m, APPLY_DEF);
    uint64_t oc = CF_CREATE(k, id, m, "{}");
    snprintf(last, sizeof last, "%llu", (unsigned long long)oc);
    CF_ERR(k, "APPLY_EVENT", ap(id, "\"event\":\"GO\",\"expected_state\":\"s1\""), "CONFLICT",
           "core error: state conflict: expected 's1', actual 's0'", false);
    CF_ERR(k, "APPLY_EVENT", ap(id, "\"event\":\"GO\",\"expected_wal_offset\":5"), "CONFLICT",
           cf_fmt("core error: WAL offset conflict: expected 5, actual %s", last), false);
    CF_ERR(k, "APPLY_EVENT", ap(id, "\"event\":\"GO\",\"expected_wal_offset\":0"), "CONFLICT",
           cf_fmt("core error: WAL offset conflict: expected 0, actual %s", last), false);
    /* Order: state before offset, both before the transition lookup and the guard. */
    CF_ERR(k, "APPLY_EVENT",
           ap(id, "\"event\":\"NOPE\",\"expected_state\":\"x\",\"expected_wal_offset\":1"),
           "CONFLICT", "core error: state conflict: expected 'x', actual 's0'", false);
    CF_ERR(k, "APPLY_EVENT",
           ap(id, "\"event\":\"NOPE\",\"expected_state\":\"s0\",\"expected_wal_offset\":1"),
           "CONFLICT", cf_fmt("core error: WAL offset conflict: expected 1, actual %s", last),
           false);
    CF_ERR(k, "APPLY_EVENT", ap(id, cf_fmt("\"event\":\"SHIP\",\"expected_wal_offset\":%s", last)),
           "GUARD_FAILED",
           "core error: guard failed: guard failed for transition 's0' -> 's2' on event 'SHIP'",
           false);
    CF_ERR(k, "APPLY_EVENT", ap(id, "\"event\":\"NOPE\",\"expected_state\":\"s0\""),
           "INVALID_TRANSITION",
           "core error: invalid transition: cannot apply 'NOPE' in state 's0'", false);
    /* Matching values succeed. */
    cf_caps c;
    CF_OKC(
        k, "APPLY_EVENT",
        ap(id,
           cf_fmt("\"event\":\"GO\",\"expected_state\":\"s0\",\"expected_wal_offset\":%s", last)),
        "{\"applied\":true,\"ctx\":{},\"from_state\":\"s0\",\"to_state\":\"s1\",\"wal_offset\":$O}",
        &c);
    ck_assert(cf_u64(c.v[0]) > oc);
    CF_ERR(k, "APPLY_EVENT", ap(id, cf_fmt("\"event\":\"GO\",\"expected_wal_offset\":%s", last)),
           "CONFLICT",
           cf_fmt("core error: WAL offset conflict: expected %s, actual %s", last, c.v[0]), false);
    CF_OK(k, "APPLY_EVENT", ap(id, cf_fmt("\"event\":\"GO\",\"expected_wal_offset\":%s", c.v[0])),
          "{\"applied\":true,\"ctx\":{},\"from_state\":\"s1\",\"to_state\":\"s2\",\"wal_offset\":$"
          "O}");
    cf_close(k);
}
END_TEST

START_TEST(apply_errors)
{
    cf_conn *k = CF_OPEN();
    char m[96], id[96];
    cf_uniq(m, sizeof m, "ap");
    cf_uniq(id, sizeof id, "e");
    CF_PUT_MACHINE(k, m, APPLY_DEF);
    CF_CREATE(k, id, m, "{}");
    CF_ERR(k, "APPLY_EVENT", ap(id, "\"event\":\"go\""), "INVALID_TRANSITION",
           "core error: invalid transition: cannot apply 'go' in state 's0'", false);
    CF_ERR(k, "APPLY_EVENT", ap(cf_fmt("%s-none", id), "\"event\":\"GO\""), "INSTANCE_NOT_FOUND",
           cf_fmt("core error: instance not found: %s-none", id), false);
    CF_ERR(k, "APPLY_EVENT", NULL, "BAD_REQUEST",
           "invalid request: invalid type: null, expected struct ApplyEventParams", false);
    CF_ERR(k, "APPLY_EVENT", ap(id, ""), "BAD_REQUEST", "invalid request: missing field `event`",
           false);
    CF_ERR(k, "APPLY_EVENT", "{\"event\":\"GO\"}", "BAD_REQUEST",
           "invalid request: missing field `instance_id`", false);
    CF_ERR(k, "APPLY_EVENT", ap(id, "\"event\":\"GO\",\"expected_wal_offset\":\"5\""),
           "BAD_REQUEST", "invalid request: invalid type: string \"5\", expected u64", false);
    CF_ERR(k, "APPLY_EVENT", ap(id, "\"event\":\"GO\",\"expected_wal_offset\":-5"), "BAD_REQUEST",
           "invalid request: invalid value: integer `-5`, expected u64", false);
    CF_ERR(k, "APPLY_EVENT", ap(id, "\"event\":\"GO\",\"expected_state\":1"), "BAD_REQUEST",
           "invalid request: invalid type: integer `1`, expected a string", false);
    /* Nothing was applied by the failures. */
    CF_OK(k, "APPLY_EVENT", ap(id, "\"event\":\"GO\",\"unknown\":[1]"),
          "{\"applied\":true,\"ctx\":{},\"from_state\":\"s0\",\"to_state\":\"s1\",\"wal_offset\":$"
          "O}");
    cf_close(k);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conformance_apply");
    TCase *tc = cf_tcase("apply");
    tcase_add_unchecked_fixture(tc, setup, cf_teardown);
    tcase_add_test(tc, worked_example_and_replay);
    tcase_add_test(tc, idempotency_scope_and_errors_not_cached);
    tcase_add_test(tc, ctx_merge_rules);
    tcase_add_test(tc, guard_on_pre_merge_ctx);
    tcase_add_test(tc, optimistic_concurrency);
    tcase_add_test(tc, apply_errors);
    suite_add_tcase(s, tc);
    return cf_run(s);
}
