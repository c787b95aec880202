/* test_serial.c: serialization facts (PROTOCOL.md §2.4) and params handling
 * (§2.1): sorted keys at every depth, number spellings, string escapes,
 * null/array/wrong-typed params, extra keys ignored.
 */
#include "conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MINI_DEF                                                                                  \
    "{\"states\":[\"s0\",\"s1\"],\"initial\":\"s0\",\"transitions\":[{\"from\":\"s0\",\"event\":" \
    "\"GO\",\"to\":\"s1\"}]}"

static void setup(void)
{
    cf_setup(0);
}

/* Store `ctx` as initial_ctx and assert GET_INSTANCE returns `want` for it. */
static void roundtrip(cf_conn *k, const char *m, const char *ctx, const char *want)
{
    char id[96];
    cf_uniq(id, sizeof id, "s");
    CF_CREATE(k, id, m, ctx);
    CF_OK(
        k, "GET_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id),
        cf_fmt(
            "{\"ctx\":%s,\"last_wal_offset\":$O,\"machine\":\"%s\",\"state\":\"s0\",\"version\":1}",
            want, m));
}

START_TEST(keys_sorted_at_every_depth)
{
    cf_conn *k = CF_OPEN();
    char m[96];
    cf_uniq(m, sizeof m, "ser");
    CF_PUT_MACHINE(k, m, MINI_DEF);
    roundtrip(k, m, "{\"zeta\":1,\"alpha\":{\"k\":\"v\"}}", "{\"alpha\":{\"k\":\"v\"},\"zeta\":1}");
    /* Byte order: 'Z' < '_' < 'a' < "alpha" < "zeta" < "\xc3\xa9" (UTF-8 bytes). */
    roundtrip(k, m,
              "{\"zeta\":1,\"alpha\":{\"k\":\"v\",\"b\":[{\"z\":1,\"a\":[{\"y\":0,\"x\":{\"d\":1,"
              "\"c\":2}}]}]},"
              "\"\xc3\xa9\":2,\"a\":3,\"_\":1,\"Z\":0}",
              "{\"Z\":0,\"_\":1,\"a\":3,\"alpha\":{\"b\":[{\"a\":[{\"x\":{\"c\":2,\"d\":1},\"y\":0}"
              "],\"z\":1}],\"k\":\"v\"},"
              "\"zeta\":1,\"\xc3\xa9\":2}");
    roundtrip(k, m, "{\"b\":{},\"a\":[]}", "{\"a\":[],\"b\":{}}");
    /* Payloads and event ctx too: result ctx and the event text. */
    char id[96], sub[300];
    cf_uniq(id, sizeof id, "s");
    uint64_t oc = CF_CREATE(k, id, m, "{\"y\":{\"b\":1,\"a\":2}}");
    (void)oc;
    cf_caps c;
    CF_OKC(k, "WATCH_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id),
           "{$*\"subscription_id\":\"$S\"}", &c);
    snprintf(sub, sizeof sub, "%s", c.v[0]);
    CF_OKC(k, "APPLY_EVENT",
           cf_fmt("{\"instance_id\":\"%s\",\"event\":\"GO\",\"payload\":{\"z\":1,\"c\":{\"f\":1,"
                  "\"e\":2}}}",
                  id),
           "{\"applied\":true,\"ctx\":{\"c\":{\"e\":2,\"f\":1},\"y\":{\"a\":2,\"b\":1},\"z\":1},"
           "\"from_state\":\"s0\","
           "\"to_state\":\"s1\",\"wal_offset\":$O}",
           &c);
    CF_EVENT_MATCH(k,
                   cf_fmt("{\"type\":\"event\",\"subscription_id\":\"%s\",\"instance_id\":\"%s\","
                          "\"machine\":\"%s\","
                          "\"version\":1,\"wal_offset\":%s,\"from_state\":\"s0\",\"to_state\":"
                          "\"s1\",\"event\":\"GO\","
                          "\"payload\":{\"c\":{\"e\":2,\"f\":1},\"z\":1},\"ctx\":{\"c\":{\"e\":2,"
                          "\"f\":1},\"y\":{\"a\":2,"
                          "\"b\":1},\"z\":1}}",
                          sub, id, m, c.v[0]),
                   NULL);
    cf_close(k);
}
END_TEST

START_TEST(number_spellings)
{
    cf_conn *k = CF_OPEN();
    char m[96];
    cf_uniq(m, sizeof m, "ser");
    CF_PUT_MACHINE(k, m, MINI_DEF);
    roundtrip(k, m, "{\"a\":1.0}", "{\"a\":1.0}");
    roundtrip(k, m, "{\"a\":1E2}", "{\"a\":100.0}");
    roundtrip(k, m, "{\"a\":1e300}", "{\"a\":1e300}");
    roundtrip(k, m, "{\"a\":18446744073709551616}", "{\"a\":1.8446744073709552e19}");
    roundtrip(k, m, "{\"a\":-0.0}", "{\"a\":-0.0}");
    roundtrip(k, m, "{\"a\":18446744073709551615,\"b\":-9223372036854775808,\"c\":0,\"d\":-5}",
              "{\"a\":18446744073709551615,\"b\":-9223372036854775808,\"c\":0,\"d\":-5}");
    roundtrip(k, m, "{\"a\":0.1,\"b\":99.99,\"c\":-1.5,\"d\":2.50}",
              "{\"a\":0.1,\"b\":99.99,\"c\":-1.5,\"d\":2.5}");
    roundtrip(k, m, "[1.0,1E2,10,1e300]", "[1.0,100.0,10,1e300]");
    cf_close(k);
}
END_TEST

START_TEST(string_escapes)
{
    cf_conn *k = CF_OPEN();
    char m[96];
    cf_uniq(m, sizeof m, "ser");
    CF_PUT_MACHINE(k, m, MINI_DEF);
    /* '/' not escaped; non-ASCII raw (also from \u escapes and surrogate
     * pairs); '"', '\\' and control characters escaped; DEL raw. */
    roundtrip(k, m, "{\"s\":\"a/b\\/c\\u00e9\xc3\xa9\\ud83d\\ude00\\u2028\"}",
              "{\"s\":\"a/b/c\xc3\xa9\xc3\xa9\xf0\x9f\x98\x80\xe2\x80\xa8\"}");
    roundtrip(k, m, "{\"s\":\"\\t\\n\\r\\b\\f\\u0001\\u001f\\\"\\\\\\u007f\"}",
              "{\"s\":\"\\t\\n\\r\\b\\f\\u0001\\u001f\\\"\\\\\x7f\"}");
    cf_close(k);
}
END_TEST

/* §2.1: ops that ignore params; null params for struct ops; positional
 * arrays; wrong types; extra keys. */
START_TEST(params_handling)
{
    cf_conn *k = CF_OPEN();
    char m[96], id[96];
    cf_uniq(m, sizeof m, "par");
    cf_uniq(id, sizeof id, "p");
    CF_PUT_MACHINE(k, m, MINI_DEF);
    CF_CREATE(k, id, m, "{}");
    CF_OK(k, "LIST_MACHINES", "null", "{\"items\":$*");
    CF_OK(k, "WAL_STATS", "[1,2,3]", "{\"entry_count\":$*");
    CF_OK(k, "COMPACT", NULL, "{\"bytes_reclaimed\":$*");
    if (cf_v03()) {
        /* 0.3 takes null params as no filter (test_watch subscribes that way). */
        CF_OK(k, "LIST_INSTANCES", NULL, "{\"has_more\":$*");
        CF_OK(k, "LIST_INSTANCES", "null", "{\"has_more\":$*");
    } else {
        CF_ERR(k, "LIST_INSTANCES", NULL, "BAD_REQUEST",
               "invalid request: invalid type: null, expected struct ListInstancesParams", false);
        CF_ERR(k, "WATCH_ALL", NULL, "BAD_REQUEST",
               "invalid request: invalid type: null, expected struct WatchAllParams", false);
    }
    CF_ERR(k, "HELLO", NULL, "BAD_REQUEST",
           "invalid request: invalid type: null, expected struct HelloParams", false);
    CF_ERR(k, "GET_INSTANCE", "\"x\"", "BAD_REQUEST",
           "invalid request: invalid type: string \"x\", expected struct GetInstanceParams", false);
    CF_ERR(k, "GET_INSTANCE", "5", "BAD_REQUEST",
           "invalid request: invalid type: integer `5`, expected struct GetInstanceParams", false);
    CF_ERR(k, "GET_INSTANCE", "true", "BAD_REQUEST",
           "invalid request: invalid type: boolean `true`, expected struct GetInstanceParams",
           false);
    /* Positional: fields in declaration order. */
    CF_OK(k, "GET_INSTANCE", cf_fmt("[\"%s\"]", id), "{\"ctx\":{},$*");
    CF_OK(k, "LIST_INSTANCES", cf_fmt("[\"%s\",\"s0\",5,0]", m),
          "{\"has_more\":false,\"instances\":[$*],\"total\":1}");
    CF_OK(k, "APPLY_EVENT", cf_fmt("[\"%s\",\"GO\",{\"q\":1},null,null,null,null]", id),
          "{\"applied\":true,\"ctx\":{\"q\":1},\"from_state\":\"s0\",\"to_state\":\"s1\",\"wal_"
          "offset\":$O}");
    /* Extra keys ignored; no coercion. */
    CF_OK(k, "LIST_INSTANCES", cf_fmt("{\"machine\":\"%s\",\"bogus\":{\"x\":1},\"limit\":10}", m),
          "{\"has_more\":false,\"instances\":[$*],\"total\":1}");
    CF_ERR(k, "LIST_INSTANCES", "{\"offset\":\"1\"}", "BAD_REQUEST",
           "invalid request: invalid type: string \"1\", expected u32", false);
    CF_ERR(k, "LIST_INSTANCES", "{\"limit\":2.5}", "BAD_REQUEST",
           "invalid request: invalid type: floating point `2.5`, expected u32", false);
    CF_ERR(k, "LIST_INSTANCES", "{\"limit\":true}", "BAD_REQUEST",
           "invalid request: invalid type: boolean `true`, expected u32", false);
    cf_close(k);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conformance_serial");
    TCase *tc = cf_tcase("serial");
    tcase_add_unchecked_fixture(tc, setup, cf_teardown);
    tcase_add_test(tc, keys_sorted_at_every_depth);
    tcase_add_test(tc, number_spellings);
    tcase_add_test(tc, string_escapes);
    tcase_add_test(tc, params_handling);
    suite_add_tcase(s, tc);
    return cf_run(s);
}
