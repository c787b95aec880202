/* test_session.c: HELLO, AUTH and its gating table, PING, BYE and INFO
 * (PROTOCOL.md §3), including the JSONL output mode (§1.6).
 */
#include "conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HELLO_PAT(features, mode)                                                   \
    "{\"features\":" features ",\"protocol_version\":1,\"server_name\":\"rstmdb\"," \
    "\"server_version\":\"$V\",\"wire_mode\":\"" mode "\"}"

static void setup(void)
{
    cf_setup(CF_NEED_AUTH);
}

/* Features come from a hash set: compare as a set. */
static void assert_feature_set(const char *arr, const char *const *want, int nwant)
{
    cJSON *j = cJSON_Parse(arr);
    ck_assert_msg(cJSON_IsArray(j), "features not an array: %s", arr);
    ck_assert_msg(cJSON_GetArraySize(j) == nwant, "features %s: want %d items", arr, nwant);
    for (int i = 0; i < nwant; i++) {
        bool found = false;
        const cJSON *it;
        cJSON_ArrayForEach(it, j) found |=
            cJSON_IsString(it) && strcmp(it->valuestring, want[i]) == 0;
        ck_assert_msg(found, "features %s lack %s", arr, want[i]);
    }
    cJSON_Delete(j);
}

START_TEST(hello_features_intersection)
{
    cf_conn *k = CF_OPEN_RAW();
    cf_caps caps;
    CF_OKC(k, "HELLO",
           "{\"protocol_version\":1,\"client_name\":\"t\",\"wire_modes\":[\"binary_json\"],"
           "\"features\":[\"idempotency\",\"batch\",\"watch\",\"wal_read\",\"bogus\"]}",
           HELLO_PAT("$A", "binary_json"), &caps);
    static const char *const all[] = {"idempotency", "batch", "wal_read"};
    assert_feature_set(caps.v[0], all, 3);
    CF_OKC(k, "HELLO", "{\"protocol_version\":1,\"features\":[\"batch\",\"watch\",\"batch\"]}",
           HELLO_PAT("$A", "binary_json"), &caps);
    static const char *const batch[] = {"batch"};
    assert_feature_set(caps.v[0], batch, 1);
    CF_OK(k, "HELLO", "{\"protocol_version\":1}", HELLO_PAT("[]", "binary_json"));
    /* Extra keys ignored; positional array form. */
    CF_OK(k, "HELLO", "{\"protocol_version\":1,\"nope\":true}", HELLO_PAT("[]", "binary_json"));
    CF_OK(k, "HELLO", "[1]", HELLO_PAT("[]", "binary_json"));
    cf_close(k);
}
END_TEST

START_TEST(hello_errors)
{
    cf_conn *k = CF_OPEN_RAW();
    CF_ERR(k, "HELLO", "{\"protocol_version\":2}", "BAD_REQUEST",
           "invalid request: unsupported protocol version: 2", false);
    CF_ERR(k, "HELLO", "{\"protocol_version\":0,\"wire_modes\":[\"jsonl\"]}", "BAD_REQUEST",
           "invalid request: unsupported protocol version: 0", false);
    CF_ERR(k, "HELLO", NULL, "BAD_REQUEST",
           "invalid request: invalid type: null, expected struct HelloParams", false);
    CF_ERR(k, "HELLO", "null", "BAD_REQUEST",
           "invalid request: invalid type: null, expected struct HelloParams", false);
    CF_ERR(k, "HELLO", "{}", "BAD_REQUEST", "invalid request: missing field `protocol_version`",
           false);
    CF_ERR(k, "HELLO", "{\"protocol_version\":\"1\"}", "BAD_REQUEST",
           "invalid request: invalid type: string \"1\", expected u16", false);
    /* The failed HELLOs did not switch anything: still binary. */
    CF_OK(k, "PING", NULL, "{\"pong\":true}");
    cf_close(k);
}
END_TEST

START_TEST(hello_wire_mode_negotiation)
{
    cf_conn *k = CF_OPEN_RAW();
    /* binary_json anywhere in the list wins, whatever the order. */
    CF_OK(k, "HELLO", "{\"protocol_version\":1,\"wire_modes\":[\"jsonl\",\"binary_json\"]}",
          HELLO_PAT("[]", "binary_json"));
    CF_OK(k, "HELLO", "{\"protocol_version\":1,\"wire_modes\":[\"foo\"]}",
          HELLO_PAT("[]", "binary_json"));
    CF_OK(k, "HELLO", "{\"protocol_version\":1,\"wire_modes\":[]}", HELLO_PAT("[]", "binary_json"));
    CF_OK(k, "HELLO", "{\"protocol_version\":1,\"wire_modes\":[\"JSONL\"]}",
          HELLO_PAT("[]", "binary_json"));
    /* jsonl alone: the HELLO response itself is already a JSON line. */
    rcpx_set_jsonl(k->rc, true);
    CF_OK(k, "HELLO",
          "{\"protocol_version\":1,\"wire_modes\":[\"foo\",\"jsonl\"],\"features\":[\"batch\"]}",
          HELLO_PAT("[\"batch\"]", "jsonl"));
    /* Inbound stays binary; outbound lines, one per response. */
    CF_OK(k, "PING", NULL, "{\"pong\":true}");
    CF_ERR(k, "HELLO", "{\"protocol_version\":3}", "BAD_REQUEST",
           "invalid request: unsupported protocol version: 3", false);
    CF_OK(k, "PING", "{}", "{\"pong\":true}");
    /* Switching back: that HELLO response is a binary frame again. */
    rcpx_set_jsonl(k->rc, false);
    CF_OK(k, "HELLO", "{\"protocol_version\":1,\"wire_modes\":[\"binary_json\",\"jsonl\"]}",
          HELLO_PAT("[]", "binary_json"));
    CF_OK(k, "PING", NULL, "{\"pong\":true}");
    cf_close(k);
}
END_TEST

START_TEST(jsonl_exact_line_bytes)
{
    cf_conn *k = CF_OPEN_RAW();
    rcpx_set_jsonl(k->rc, true);
    CF_OK(k, "HELLO", "{\"protocol_version\":1,\"wire_modes\":[\"jsonl\"]}",
          HELLO_PAT("[]", "jsonl"));
    /* The line reader strips only the '\n': no '\r', no header bytes. */
    ck_assert_int_eq(rcpx_send_json(k->rc, "{\"type\":\"request\",\"id\":\"L\",\"op\":\"PING\"}"),
                     0);
    rcpx_msg m;
    ck_assert_int_eq(rcpx_read(k->rc, CF_TIMEOUT_MS, &m), RCPX_OK);
    ck_assert_str_eq(
        m.text,
        "{\"type\":\"response\",\"id\":\"L\",\"status\":\"ok\",\"result\":{\"pong\":true}}");
    rcpx_msg_clear(&m);
    /* A JSONL line sent to the server is a bad magic: silent close. */
    ck_assert_int_eq(
        rcpx_send_raw(k->rc, "{\"type\":\"request\",\"id\":\"x\",\"op\":\"PING\"}\n", 40), 0);
    ck_assert_msg(rcpx_silent_close(k->rc, CF_CLOSE_TIMEOUT_MS, NULL), "%s", rcpx_errstr(k->rc));
    cf_close(k);
}
END_TEST

/* Events are JSON lines too in jsonl mode, same text as in a frame. */
START_TEST(jsonl_events)
{
    cf_conn *k = CF_OPEN();
    char m[96], id[96], sub[300];
    cf_uniq(m, sizeof m, "jl");
    cf_uniq(id, sizeof id, "jl");
    CF_PUT_MACHINE(k, m,
                   "{\"states\":[\"a\",\"b\"],\"initial\":\"a\",\"transitions\":[{\"from\":\"a\","
                   "\"event\":\"GO\",\"to\":\"b\"}]}");
    CF_CREATE(k, id, m, "{\"z\":1}");
    rcpx_set_jsonl(k->rc, true);
    CF_OK(k, "HELLO", "{\"protocol_version\":1,\"wire_modes\":[\"jsonl\"]}",
          HELLO_PAT("[]", "jsonl"));
    cf_caps c;
    CF_OKC(k, "WATCH_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id),
           "{$*\"subscription_id\":\"$S\"}", &c);
    snprintf(sub, sizeof sub, "%s", c.v[0]);
    CF_OKC(k, "APPLY_EVENT",
           cf_fmt("{\"instance_id\":\"%s\",\"event\":\"GO\",\"payload\":{\"y\":2}}", id),
           "{\"applied\":true,\"ctx\":{\"y\":2,\"z\":1},\"from_state\":\"a\",\"to_state\":\"b\","
           "\"wal_offset\":$O}",
           &c);
    CF_EVENT_MATCH(
        k,
        cf_fmt("{\"type\":\"event\",\"subscription_id\":\"%s\",\"instance_id\":\"%s\",\"machine\":"
               "\"%s\",\"version\":1,\"wal_offset\":%s,\"from_state\":\"a\",\"to_state\":\"b\","
               "\"event\":\"GO\",\"payload\":{\"y\":2},\"ctx\":{\"y\":2,\"z\":1}}",
               sub, id, m, c.v[0]),
        NULL);
    cf_close(k);
}
END_TEST

START_TEST(ping_ignores_params)
{
    cf_conn *k = CF_OPEN_RAW();
    CF_OK(k, "PING", NULL, "{\"pong\":true}");
    CF_OK(k, "PING", "null", "{\"pong\":true}");
    CF_OK(k, "PING", "\"garbage\"", "{\"pong\":true}");
    CF_OK(k, "PING", "[1,2]", "{\"pong\":true}");
    CF_OK(k, "PING", "{\"x\":1}", "{\"pong\":true}");
    cf_close(k);
}
END_TEST

START_TEST(bye_replies_then_closes_dropping_pipelined)
{
    cf_conn *k = CF_OPEN_RAW();
    uint8_t buf[256];
    const char *bye = "{\"type\":\"request\",\"id\":\"b\",\"op\":\"BYE\",\"params\":7}";
    const char *ping = "{\"type\":\"request\",\"id\":\"after\",\"op\":\"PING\"}";
    size_t n =
        rcpx_frame_build(buf, sizeof buf, "RCPX", 1, 1, 0, bye, (uint32_t)strlen(bye), true, 0);
    n += rcpx_frame_build(buf + n, sizeof buf - n, "RCPX", 1, 1, 0, ping, (uint32_t)strlen(ping),
                          true, 0);
    ck_assert_int_eq(rcpx_send_raw(k->rc, buf, n), 0);
    rcpx_msg m;
    ck_assert_int_eq(rcpx_read(k->rc, CF_TIMEOUT_MS, &m), RCPX_OK);
    ck_assert_str_eq(
        m.text,
        "{\"type\":\"response\",\"id\":\"b\",\"status\":\"ok\",\"result\":{\"goodbye\":true}}");
    rcpx_msg_clear(&m);
    ck_assert_msg(rcpx_silent_close(k->rc, CF_CLOSE_TIMEOUT_MS, NULL), "after BYE: %s",
                  rcpx_errstr(k->rc));
    cf_close(k);
}
END_TEST

START_TEST(info_literal)
{
    cf_conn *k = CF_OPEN();
    const char *info =
        "{\"features\":[\"idempotency\",\"batch\",\"wal_read\"],\"max_batch_ops\":100,"
        "\"max_frame_bytes\":16777216,\"protocol_version\":1,\"server_name\":\"rstmdb\","
        "\"server_version\":\"$V\"}";
    CF_OK(k, "INFO", NULL, info);
    CF_OK(k, "INFO", "{\"x\":[1]}", info);
    cf_close(k);
}
END_TEST

/* Rows that need a server without required auth. */
START_TEST(auth_not_required_rows)
{
    if (!cf_is_testd() && getenv("RSTMDB_TEST_TOKEN") != NULL) {
        fprintf(stderr, "SKIP auth_not_required_rows: the external server requires auth\n");
        return;
    }
    cf_conn *k = CF_OPEN_RAW();
    CF_OK(k, "AUTH", "{\"method\":\"bearer\",\"token\":\"anything-goes\"}",
          "{\"authenticated\":true}");
    CF_ERR(k, "AUTH", "{\"method\":\"bearer\",\"token\":\"\"}", "AUTH_FAILED",
           "authentication failed: empty token", false);
    CF_ERR(k, "AUTH", "{\"method\":\"basic\",\"token\":\"x\"}", "AUTH_FAILED",
           "authentication failed: unsupported auth method: basic", false);
    CF_ERR(k, "AUTH", "{\"method\":\"Bearer\",\"token\":\"x\"}", "AUTH_FAILED",
           "authentication failed: unsupported auth method: Bearer", false);
    CF_ERR(k, "AUTH", "{\"method\":\"bearer\"}", "BAD_REQUEST",
           "invalid request: missing field `token`", false);
    CF_ERR(k, "AUTH", "{\"token\":\"x\"}", "BAD_REQUEST", "invalid request: missing field `method`",
           false);
    CF_ERR(k, "AUTH", NULL, "BAD_REQUEST",
           "invalid request: invalid type: null, expected struct AuthParams", false);
    CF_ERR(k, "AUTH", "{\"method\":\"bearer\",\"token\":5}", "BAD_REQUEST",
           "invalid request: invalid type: integer `5`, expected a string", false);
    CF_OK(k, "AUTH", "[\"bearer\",\"positional\"]", "{\"authenticated\":true}");
    cf_close(k);
}
END_TEST

START_TEST(auth_required_rows)
{
    const char *token;
    cf_conn *k = cf_open_authreq(&token);
    if (k == NULL)
        return;
    char wrong[512];
    snprintf(wrong, sizeof wrong, "{\"method\":\"bearer\",\"token\":\"%s-wrong\"}", cf_esc(token));
    CF_ERR(k, "AUTH", wrong, "AUTH_FAILED", "authentication failed: invalid token", false);
    CF_ERR(k, "AUTH", "{\"method\":\"bearer\",\"token\":\"\"}", "AUTH_FAILED",
           "authentication failed: invalid token", false);
    CF_ERR(k, "AUTH", "{\"method\":\"basic\",\"token\":\"x\"}", "AUTH_FAILED",
           "authentication failed: unsupported auth method: basic", false);
    CF_ERR(k, "AUTH", "{\"method\":\"bearer\"}", "BAD_REQUEST",
           "invalid request: missing field `token`", false);
    /* A failed AUTH leaves the connection open: retry with the right token. */
    CF_ERR(k, "INFO", NULL, "UNAUTHORIZED", "authentication required", false);
    CF_OK(k, "AUTH", cf_fmt("{\"method\":\"bearer\",\"token\":\"%s\"}", cf_esc(token)),
          "{\"authenticated\":true}");
    CF_OK(k, "INFO", NULL,
          "{\"features\":[\"idempotency\",\"batch\",\"wal_read\"],\"max_batch_ops\":100,"
          "\"max_frame_bytes\":16777216,\"protocol_version\":1,\"server_name\":\"rstmdb\","
          "\"server_version\":\"$V\"}");
    /* A repeated HELLO does not reset authentication. */
    CF_OK(k, "HELLO", "{\"protocol_version\":1}", HELLO_PAT("[]", "binary_json"));
    CF_OK(k, "LIST_MACHINES", NULL, "{\"items\":[$*]}");
    /* A later failed AUTH does not de-authenticate either. */
    CF_ERR(k, "AUTH", wrong, "AUTH_FAILED", "authentication failed: invalid token", false);
    CF_OK(k, "WAL_READ", "{\"from_offset\":0,\"limit\":0}",
          "{\"next_offset\":null,\"records\":[]}");
    cf_close(k);
}
END_TEST

/* The exact UNAUTHORIZED response to request `id`. */
static const char *unauthorized_doc(const char *id)
{
    return cf_fmt("{\"type\":\"response\",\"id\":\"%s\",\"status\":\"error\",\"error\":"
                  "{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\","
                  "\"retryable\":false}}",
                  id);
}

/* The gating table of §3.3: exempt ops work, every other op (params ignored:
 * the auth check comes first) is UNAUTHORIZED. */
START_TEST(auth_gating_table)
{
    const char *token;
    cf_conn *k = cf_open_authreq(&token);
    if (k == NULL)
        return;
    CF_OK(k, "PING", NULL, "{\"pong\":true}");
    CF_OK(k, "HELLO", "{\"protocol_version\":1}", HELLO_PAT("[]", "binary_json"));
    static const char *const gated[] = {"INFO",           "PUT_MACHINE",       "GET_MACHINE",
                                        "LIST_MACHINES",  "CREATE_INSTANCE",   "GET_INSTANCE",
                                        "LIST_INSTANCES", "DELETE_INSTANCE",   "APPLY_EVENT",
                                        "BATCH",          "SNAPSHOT_INSTANCE", "WAL_READ",
                                        "WAL_STATS",      "COMPACT",           "UNWATCH"};
    for (size_t i = 0; i < sizeof gated / sizeof gated[0]; i++) {
        CF_ERR(k, gated[i], NULL, "UNAUTHORIZED", "authentication required", false);
        CF_ERR(k, gated[i], "{}", "UNAUTHORIZED", "authentication required", false);
    }
    CF_ERR(k, "BATCH", "{\"ops\":[{\"op\":\"PING\"}]}", "UNAUTHORIZED", "authentication required",
           false);
    /* WATCH_*: the real server lets them through (a bug testd does not copy). */
    char *t = CF_CALL(k, "WATCH_ALL", "{}");
    const char *unauth = unauthorized_doc(k->last_id);
    if (cf_is_testd())
        ck_assert_str_eq(t, unauth);
    else
        ck_assert_msg(
            strcmp(t, unauth) == 0 ||
                cf_match(t,
                         cf_fmt("{\"type\":\"response\",\"id\":\"%s\",\"status\":\"ok\","
                                "\"result\":{\"subscription_id\":\"sub-$U\",\"wal_offset\":$N}}",
                                k->last_id),
                         NULL),
            "WATCH_ALL unauthenticated: %s", t);
    free(t);
    t = CF_CALL(k, "WATCH_INSTANCE", "{\"instance_id\":\"no-such-instance-for-gating\"}");
    unauth = unauthorized_doc(k->last_id);
    if (cf_is_testd())
        ck_assert_str_eq(t, unauth);
    else
        ck_assert_msg(strcmp(t, unauth) == 0 || strstr(t, "\"INSTANCE_NOT_FOUND\"") != NULL,
                      "WATCH_INSTANCE unauthenticated: %s", t);
    free(t);
    /* Still not authenticated; BYE is exempt and closes. */
    CF_ERR(k, "WAL_STATS", NULL, "UNAUTHORIZED", "authentication required", false);
    CF_OK(k, "BYE", NULL, "{\"goodbye\":true}");
    ck_assert(rcpx_silent_close(k->rc, CF_CLOSE_TIMEOUT_MS, NULL));
    cf_close(k);
}
END_TEST

START_TEST(auth_before_hello)
{
    const char *token;
    cf_conn *k = cf_open_authreq(&token);
    if (k == NULL)
        return;
    CF_OK(k, "AUTH", cf_fmt("{\"method\":\"bearer\",\"token\":\"%s\"}", cf_esc(token)),
          "{\"authenticated\":true}");
    CF_OK(k, "WAL_STATS", NULL,
          "{\"entry_count\":$N,\"io_stats\":{\"bytes_read\":$N,\"bytes_written\":$N,\"fsyncs\":$N,"
          "\"reads\":$N,\"writes\":$N},\"latest_offset\":$O,\"segment_count\":$N,\"total_size_"
          "bytes\":$N}");
    cf_close(k);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conformance_session");
    TCase *tc = cf_tcase("session");
    tcase_add_unchecked_fixture(tc, setup, cf_teardown);
    tcase_add_test(tc, hello_features_intersection);
    tcase_add_test(tc, hello_errors);
    tcase_add_test(tc, hello_wire_mode_negotiation);
    tcase_add_test(tc, jsonl_exact_line_bytes);
    tcase_add_test(tc, jsonl_events);
    tcase_add_test(tc, ping_ignores_params);
    tcase_add_test(tc, bye_replies_then_closes_dropping_pipelined);
    tcase_add_test(tc, info_literal);
    tcase_add_test(tc, auth_not_required_rows);
    tcase_add_test(tc, auth_required_rows);
    tcase_add_test(tc, auth_gating_table);
    tcase_add_test(tc, auth_before_hello);
    suite_add_tcase(s, tc);
    return cf_run(s);
}
