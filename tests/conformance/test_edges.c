/* test_edges.c: edge cases observed on the real server (rstmdb e0a6a66,
 * built from source and driven by this suite) that follow from the sheet's
 * rules but are not spelled out in it: envelope arrays of the wrong length,
 * whitespace around the JSON, the 128-level nesting limit, explicit nulls in
 * optional params, duplicate keys inside params, u64 bounds.
 */
#include "conf.h"

#include <rstmdb/frame.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void setup(void)
{
    cf_setup(0);
}

static void send_payload(cf_conn *k, const char *payload)
{
    ck_assert_int_eq(rcpx_send_json(k->rc, payload), 0);
}

static void expect_text(cf_conn *k, const char *want)
{
    rcpx_msg m;
    ck_assert_msg(rcpx_read(k->rc, CF_TIMEOUT_MS, &m) == RCPX_OK, "no response: %s",
                  rcpx_errstr(k->rc));
    ck_assert_str_eq(m.text, want);
    rcpx_msg_clear(&m);
}

static void expect_close(const char *payload)
{
    cf_conn *k = CF_OPEN_RAW();
    send_payload(k, payload);
    ck_assert_msg(rcpx_silent_close(k->rc, CF_CLOSE_TIMEOUT_MS, NULL), "%.200s: %s", payload,
                  rcpx_errstr(k->rc));
    cf_close(k);
}

START_TEST(envelope_edges)
{
    /* Positional envelopes need type, id and op; params is optional; no more. */
    expect_close("[\"request\",\"a1\"]");
    expect_close("[\"request\",5,\"PING\"]");
    expect_close("[\"request\",\"a\",\"PING\",null,\"extra\"]");
    expect_close("[]");
    /* Leading zeros are not JSON; a byte-order mark is not JSON either. */
    expect_close("{\"type\":\"request\",\"id\":\"1\",\"op\":\"PING\",\"params\":01}");
    expect_close("\xef\xbb\xbf{\"type\":\"request\",\"id\":\"1\",\"op\":\"PING\"}");
    cf_conn *k = CF_OPEN_RAW();
    send_payload(k, "[\"request\",\"a\",\"PING\",null]");
    expect_text(
        k, "{\"type\":\"response\",\"id\":\"a\",\"status\":\"ok\",\"result\":{\"pong\":true}}");
    /* Whitespace around the document is fine. */
    send_payload(k, " \n\t{\"type\":\"request\",\"id\":\"ws\",\"op\":\"PING\"} \r\n");
    expect_text(
        k, "{\"type\":\"response\",\"id\":\"ws\",\"status\":\"ok\",\"result\":{\"pong\":true}}");
    /* The id is echoed re-serialized, not byte-copied. */
    send_payload(k, "{\"type\":\"request\",\"id\":\"\\u0041\\n\\/\",\"op\":\"PING\"}");
    expect_text(
        k, "{\"type\":\"response\",\"id\":\"A\\n/\",\"status\":\"ok\",\"result\":{\"pong\":true}}");
    /* Duplicate keys below the envelope are not an envelope error. */
    send_payload(
        k, "{\"type\":\"request\",\"id\":\"d\",\"op\":\"PING\",\"params\":{\"a\":1,\"a\":2}}");
    expect_text(
        k, "{\"type\":\"response\",\"id\":\"d\",\"status\":\"ok\",\"result\":{\"pong\":true}}");
    cf_close(k);
}
END_TEST

/* serde_json's recursion limit: 127 nested levels parse, 128 do not, and a
 * payload that does not parse closes the connection. */
START_TEST(nesting_limit)
{
    char m[96];
    cf_uniq(m, sizeof m, "deep");
    char *p = malloc(4096);
    ck_assert_ptr_nonnull(p);
    for (int depth = 124; depth <= 125; depth++) {
        /* envelope, params and definition are 3 levels; meta adds `depth`. */
        int n = snprintf(
            p, 4096,
            "{\"type\":\"request\",\"id\":\"n\",\"op\":\"PUT_MACHINE\",\"params\":{\"machine\":"
            "\"%s-%d\",\"version\":1,\"definition\":{\"states\":[\"a\"],\"initial\":\"a\","
            "\"transitions\":[],\"meta\":",
            m, depth);
        for (int i = 0; i < depth; i++)
            p[n++] = '[';
        for (int i = 0; i < depth; i++)
            p[n++] = ']';
        strcpy(p + n, "}}}");
        if (depth == 124) {
            cf_conn *k = CF_OPEN();
            send_payload(k, p);
            rcpx_msg msg;
            ck_assert_int_eq(rcpx_read(k->rc, CF_TIMEOUT_MS, &msg), RCPX_OK);
            ck_assert_msg(
                cf_match(msg.text,
                         "{\"type\":\"response\",\"id\":\"n\",\"status\":\"ok\",\"result\":"
                         "{\"created\":true,$*",
                         NULL),
                "%s", msg.text);
            rcpx_msg_clear(&msg);
            cf_close(k);
        } else {
            expect_close(p);
        }
    }
    free(p);
}
END_TEST

START_TEST(explicit_nulls_in_optional_params)
{
    cf_conn *k = CF_OPEN();
    /* #[serde(default)] fields still reject an explicit null. */
    CF_ERR(k, "HELLO", "{\"protocol_version\":1,\"features\":null}", "BAD_REQUEST",
           "invalid request: invalid type: null, expected a sequence", false);
    CF_ERR(k, "WATCH_ALL", "{\"machines\":null}", "BAD_REQUEST",
           "invalid request: invalid type: null, expected a sequence", false);
    CF_ERR(k, "WATCH_ALL", "{\"include_ctx\":null}", "BAD_REQUEST",
           "invalid request: invalid type: null, expected a boolean", false);
    CF_ERR(k, "HELLO", "{\"protocol_version\":65536}", "BAD_REQUEST",
           "invalid request: invalid value: integer `65536`, expected u16", false);
    CF_ERR(k, "HELLO", "{\"protocol_version\":1,\"wire_modes\":[1]}", "BAD_REQUEST",
           "invalid request: invalid type: integer `1`, expected a string", false);
    CF_ERR(k, "WATCH_ALL", "[]", "BAD_REQUEST",
           "invalid request: invalid length 1, expected struct WatchAllParams with 6 elements",
           false);
    CF_ERR(k, "UNWATCH", "{\"subscription_id\":5}", "BAD_REQUEST",
           "invalid request: invalid type: integer `5`, expected a string", false);
    CF_OK(k, "UNWATCH", "[\"x\"]", "{\"removed\":false,\"subscription_id\":\"x\"}");
    /* Option fields: null means absent. */
    char m[96], id[96];
    cf_uniq(m, sizeof m, "nul");
    cf_uniq(id, sizeof id, "n");
    CF_PUT_MACHINE(k, m,
                   "{\"states\":[\"a\",\"b\"],\"initial\":\"a\",\"transitions\":[{\"from\":\"a\","
                   "\"event\":\"E\",\"to\":\"b\"}]}");
    CF_OK(k, "CREATE_INSTANCE",
          cf_fmt("{\"instance_id\":\"%s\",\"machine\":\"%s\",\"version\":1,\"initial_ctx\":null,"
                 "\"idempotency_key\":null}",
                 id, m),
          cf_fmt("{\"instance_id\":\"%s\",\"state\":\"a\",\"wal_offset\":$O}", id));
    CF_OK(k, "APPLY_EVENT",
          cf_fmt("{\"instance_id\":\"%s\",\"event\":\"E\",\"expected_state\":null,\"expected_wal_"
                 "offset\":"
                 "null,\"event_id\":null,\"idempotency_key\":null,\"payload\":null}",
                 id),
          "{\"applied\":true,\"ctx\":null,\"from_state\":\"a\",\"to_state\":\"b\",\"wal_offset\":$"
          "O}");
    /* Duplicate keys inside params: the last one wins. */
    CF_OK(k, "GET_INSTANCE",
          cf_fmt("{\"instance_id\":\"%s-not-there\",\"instance_id\":\"%s\"}", id, id),
          cf_fmt("{\"ctx\":null,\"last_wal_offset\":$O,\"machine\":\"%s\",\"state\":\"b\","
                 "\"version\":1}",
                 m));
    char id2[96];
    cf_uniq(id2, sizeof id2, "n");
    CF_CREATE(k, id2, m, "{\"a\":1,\"a\":2}");
    CF_OK(k, "GET_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id2),
          cf_fmt("{\"ctx\":{\"a\":2},\"last_wal_offset\":$O,\"machine\":\"%s\",\"state\":\"a\","
                 "\"version\":1}",
                 m));
    cf_close(k);
}
END_TEST

START_TEST(definition_shape_messages)
{
    cf_conn *k = CF_OPEN();
    char m[96];
    cf_uniq(m, sizeof m, "shape");
    static const struct {
        const char *def, *msg;
    } rows[] = {
        {"{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[{\"from\":5,\"event\":\"E\","
         "\"to\":\"a\"}]}",
         "core error: JSON error: invalid type: integer `5`, expected a string or array of "
         "strings"},
        {"{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[{\"from\":null,\"event\":\"E\","
         "\"to\":\"a\"}]}",
         "core error: JSON error: invalid type: null, expected a string or array of strings"},
        {"{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[{\"from\":[5],\"event\":\"E\","
         "\"to\":\"a\"}]}",
         "core error: JSON error: invalid type: integer `5`, expected a string"},
        {"{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[{\"from\":\"a\",\"event\":\"E\","
         "\"to\":\"a\",\"guard\":5}]}",
         "core error: JSON error: invalid type: integer `5`, expected a string"},
        {"{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":{}}",
         "core error: JSON error: invalid type: map, expected a sequence"},
        {"{\"states\":[\"a\",1],\"initial\":\"a\",\"transitions\":[]}",
         "core error: JSON error: invalid type: integer `1`, expected a string"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        CF_ERR(k, "PUT_MACHINE",
               cf_fmt("{\"machine\":\"%s\",\"version\":1,\"definition\":%s}", m, rows[i].def),
               "INTERNAL_ERROR", rows[i].msg, true);
    /* meta: explicit nulls inside are kept, a null meta is absent. */
    CF_OK(
        k, "PUT_MACHINE",
        cf_fmt("{\"machine\":\"%s\",\"version\":1,\"definition\":{\"states\":[\"a\"],\"initial\":"
               "\"a\","
               "\"transitions\":[],\"meta\":{\"z\":1,\"a\":null}}}",
               m),
        cf_fmt(
            "{\"created\":true,\"machine\":\"%s\",\"stored_checksum\":\"10f1fe18\",\"version\":1}",
            m));
    CF_OK(k, "GET_MACHINE", cf_fmt("{\"machine\":\"%s\",\"version\":1}", m),
          "{\"checksum\":\"10f1fe18\",\"definition\":{\"initial\":\"a\",\"meta\":{\"a\":null,\"z\":"
          "1},\"states\":[\"a\"],"
          "\"transitions\":[]}}");
    CF_OK(
        k, "PUT_MACHINE",
        cf_fmt("{\"machine\":\"%s\",\"version\":2,\"definition\":{\"states\":[\"a\"],\"initial\":"
               "\"a\","
               "\"transitions\":[],\"meta\":null}}",
               m),
        cf_fmt(
            "{\"created\":true,\"machine\":\"%s\",\"stored_checksum\":\"6b16bc3e\",\"version\":2}",
            m));
    cf_close(k);
}
END_TEST

START_TEST(u64_bounds)
{
    cf_conn *k = CF_OPEN();
    CF_OK(k, "WAL_READ", "{\"from_offset\":18446744073709551615}",
          "{\"next_offset\":null,\"records\":[]}");
    CF_ERR(k, "WAL_READ", "{\"from_offset\":18446744073709551616}", "BAD_REQUEST",
           "invalid request: missing from_offset", false);
    CF_ERR(k, "GET_MACHINE", "{\"machine\":\"no-such-machine-u32\",\"version\":4294967295}",
           "MACHINE_NOT_FOUND",
           "core error: machine version not found: no-such-machine-u32 v4294967295", false);
    CF_OK(k, "LIST_INSTANCES",
          "{\"machine\":\"no-such-machine-u32\",\"limit\":4294967295,\"offset\":4294967295}",
          "{\"has_more\":false,\"instances\":[],\"total\":0}");
    cf_close(k);
}
END_TEST

/* §1.5 last row: a response above 16 MiB closes the connection silently;
 * exactly 16 MiB is sent. A GET_INSTANCE response is sized to the byte by
 * the ctx string's length. */
/* A short unique instance id (10 hex digits), so that both the CREATE
 * request and its WAL entry stay shorter than the GET response. */
static void short_id(char out[11])
{
    char u[96];
    cf_uniq(u, sizeof u, "s");
    uint64_t h = 1469598103934665603ull;
    for (const char *q = u; *q; q++)
        h = (h ^ (uint8_t)*q) * 1099511628211ull;
    snprintf(out, 11, "%010llx", (unsigned long long)(h & 0xffffffffffull));
}

/* Send CREATE_INSTANCE for `id` (NULL: the server makes one) with ctx
 * {"p":"xxx..."} of `pad` x's; returns the response text (malloc'd). */
static char *big_ctx_create(cf_conn *k, const char *m, const char *id, size_t pad)
{
    size_t cap = pad + 1024;
    char *p = malloc(cap);
    ck_assert_ptr_nonnull(p);
    int n = snprintf(p, cap,
                     "{\"type\":\"request\",\"id\":\"c\",\"op\":\"CREATE_INSTANCE\",\"params\":{"
                     "%s%s%s\"machine\":\"%s\",\"version\":1,\"initial_ctx\":{\"p\":\"",
                     id ? "\"instance_id\":\"" : "", id ? id : "", id ? "\"," : "", m);
    memset(p + n, 'x', pad);
    strcpy(p + n + pad, "\"}}}");
    ck_assert_uint_le(strlen(p), RSTMDB_FRAME_MAX_PAYLOAD);
    ck_assert_int_eq(rcpx_send_json(k->rc, p), 0);
    free(p);
    rcpx_msg msg;
    ck_assert_msg(rcpx_read(k->rc, 20000, &msg) == RCPX_OK, "create: %s", rcpx_errstr(k->rc));
    return msg.text;
}

static char *big_ok_create(cf_conn *k, const char *m, const char *id, size_t pad)
{
    char *t = big_ctx_create(k, m, id, pad);
    cf_caps c;
    CF_MATCH(
        t,
        cf_fmt("{\"type\":\"response\",\"id\":\"c\",\"status\":\"ok\",\"result\":{\"instance_id\":"
               "\"%s\",\"state\":\"s0\",\"wal_offset\":$O}}",
               id),
        &c);
    free(t);
    return strdup(c.v[0]);
}

START_TEST(response_size_limit)
{
    if (cf_v03()) {
        /* 0.3's WAL refuses the 16 MiB CREATE this test needs (its limit is
         * 16 MiB - 64 KiB, checked by wal_record_too_large). */
        fprintf(stderr, "SKIP: response_size_limit needs a 16 MiB WAL record (0.1 only)\n");
        return;
    }
    cf_conn *k = CF_OPEN();
    char m[96], a[11], b[11];
    cf_uniq(m, sizeof m, "big");
    short_id(a);
    short_id(b);
    CF_PUT_MACHINE(k, m, "{\"states\":[\"s0\"],\"initial\":\"s0\",\"transitions\":[]}");
    /* The GET response around the ctx string; offsets have 13 digits in
     * segments 1-9, checked below. */
    size_t over =
        strlen(cf_fmt("{\"type\":\"response\",\"id\":\"g\",\"status\":\"ok\",\"result\":{\"ctx\":"
                      "{\"p\":\"\"},\"last_wal_offset\":1099511627776,\"machine\":\"%s\","
                      "\"state\":\"s0\",\"version\":1}}",
                      m));
    size_t pad = RSTMDB_FRAME_MAX_PAYLOAD - over;
    char *oa = big_ok_create(k, m, a, pad);
    char *ob = big_ok_create(k, m, b, pad + 1);
    ck_assert_uint_eq(strlen(oa), 13);
    ck_assert_uint_eq(strlen(ob), 13);
    cf_conn *g = CF_OPEN();
    ck_assert_int_eq(
        rcpx_send_json(g->rc, cf_fmt("{\"type\":\"request\",\"id\":\"g\",\"op\":\"GET_INSTANCE\","
                                     "\"params\":{\"instance_id\":\"%s\"}}",
                                     a)),
        0);
    rcpx_msg msg;
    ck_assert_msg(rcpx_read(g->rc, 20000, &msg) == RCPX_OK, "16 MiB GET: %s", rcpx_errstr(g->rc));
    ck_assert_uint_eq(msg.len, RSTMDB_FRAME_MAX_PAYLOAD);
    const char *head =
        "{\"type\":\"response\",\"id\":\"g\",\"status\":\"ok\",\"result\":{\"ctx\":{\"p\":\"xxx";
    ck_assert(strncmp(msg.text, head, strlen(head)) == 0);
    const char *tail = cf_fmt(
        "\"},\"last_wal_offset\":%s,\"machine\":\"%s\",\"state\":\"s0\",\"version\":1}}", oa, m);
    ck_assert_str_eq(msg.text + msg.len - strlen(tail), tail);
    rcpx_msg_clear(&msg);
    /* One byte more: nothing at all, then the close. */
    ck_assert_int_eq(
        rcpx_send_json(g->rc, cf_fmt("{\"type\":\"request\",\"id\":\"g\",\"op\":\"GET_INSTANCE\","
                                     "\"params\":{\"instance_id\":\"%s\"}}",
                                     b)),
        0);
    ck_assert_msg(rcpx_silent_close(g->rc, 20000, NULL), "16 MiB + 1 GET: %s", rcpx_errstr(g->rc));
    cf_close(g);
    /* WAL_READ of the big record: also above the limit. */
    g = CF_OPEN();
    ck_assert_int_eq(
        rcpx_send_json(g->rc, cf_fmt("{\"type\":\"request\",\"id\":\"w\",\"op\":\"WAL_READ\","
                                     "\"params\":{\"from_offset\":%s,\"limit\":1}}",
                                     ob)),
        0);
    ck_assert_msg(rcpx_silent_close(g->rc, 20000, NULL), "big WAL_READ: %s", rcpx_errstr(g->rc));
    cf_close(g);
    free(oa);
    free(ob);
    cf_close(k);
}
END_TEST

/* A WAL entry above 16 MiB (0.3: 16 MiB - 64 KiB) cannot be written:
 * WAL_IO_ERROR, retryable, with the entry's size. Here a 16 MiB CREATE whose
 * server-made 36-character id makes the create_instance entry longer than the
 * request. */
START_TEST(wal_record_too_large)
{
    cf_conn *k = CF_OPEN();
    char m[96];
    cf_uniq(m, sizeof m, "big");
    CF_PUT_MACHINE(k, m, "{\"states\":[\"s0\"],\"initial\":\"s0\",\"transitions\":[]}");
    size_t req_over =
        strlen(cf_fmt("{\"type\":\"request\",\"id\":\"c\",\"op\":\"CREATE_INSTANCE\",\"params\":{"
                      "\"machine\":\"%s\",\"version\":1,\"initial_ctx\":{\"p\":\"\"}}}",
                      m));
    size_t pad = RSTMDB_FRAME_MAX_PAYLOAD - req_over;
    size_t entry =
        strlen(cf_fmt("{\"type\":\"create_instance\",\"instance_id\":\"%36s\",\"machine\":\"%s\","
                      "\"version\":1,\"initial_state\":\"s0\",\"initial_ctx\":{\"p\":\"\"}}",
                      "", m)) +
        pad;
    char *t = big_ctx_create(k, m, NULL, pad);
    CF_MATCH(
        t,
        cf_fmt("{\"type\":\"response\",\"id\":\"c\",\"status\":\"error\",\"error\":{\"code\":"
               "\"WAL_IO_ERROR\",\"message\":\"core error: WAL error: record too large: %zu bytes "
               "(max %u)\",\"retryable\":true}}",
               entry, cf_v03() ? 16711680u : 16777216u),
        NULL);
    free(t);
    /* Nothing was created. */
    CF_OK(k, "LIST_INSTANCES", cf_fmt("{\"machine\":\"%s\"}", m),
          "{\"has_more\":false,\"instances\":[],\"total\":0}");
    cf_close(k);
}
END_TEST

/* serde's length message: "with 1 element", singular, for one-field structs. */
START_TEST(positional_length_messages)
{
    cf_conn *k = CF_OPEN();
    CF_ERR(k, "GET_INSTANCE", "[]", "BAD_REQUEST",
           "invalid request: invalid length 0, expected struct GetInstanceParams with 1 element",
           false);
    CF_ERR(k, "UNWATCH", "[]", "BAD_REQUEST",
           "invalid request: invalid length 0, expected struct UnwatchParams with 1 element",
           false);
    CF_ERR(k, "GET_MACHINE", "[]", "BAD_REQUEST",
           "invalid request: invalid length 0, expected struct GetMachineParams with 2 elements",
           false);
    CF_ERR(k, "WATCH_INSTANCE", "[]", "BAD_REQUEST",
           "invalid request: invalid length 0, expected struct WatchInstanceParams with 3 elements",
           false);
    cf_close(k);
}
END_TEST

/* The real server parses WATCH params positionally, but reads include_ctx
 * for the event forwarder as params["include_ctx"] (true when absent): with
 * an array, events carry ctx even though include_ctx was false. */
START_TEST(watch_positional_include_ctx)
{
    cf_conn *k = CF_OPEN();
    char m[96], id[96], sub[300], sub2[300];
    cf_uniq(m, sizeof m, "wp");
    cf_uniq(id, sizeof id, "wp");
    CF_PUT_MACHINE(k, m,
                   "{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[{\"from\":\"a\","
                   "\"event\":\"E\",\"to\":\"a\"}]}");
    CF_CREATE(k, id, m, "{\"n\":1}");
    cf_caps c;
    CF_OKC(k, "WATCH_INSTANCE", cf_fmt("[\"%s\",false,null]", id), "{$*\"subscription_id\":\"$S\"}",
           &c);
    snprintf(sub, sizeof sub, "%s", c.v[0]);
    CF_OKC(k, "WATCH_ALL", cf_fmt("[false,null,[\"%s\"],[],[],[]]", m),
           "{\"subscription_id\":\"$S\",$*", &c);
    snprintf(sub2, sizeof sub2, "%s", c.v[0]);
    CF_OKC(k, "APPLY_EVENT", cf_fmt("{\"instance_id\":\"%s\",\"event\":\"E\"}", id),
           "{\"applied\":true,$*\"wal_offset\":$O}", &c);
    for (int i = 0; i < 2; i++) {
        char *t = CF_EVENT(k);
        const char *s = strstr(t, sub) ? sub : sub2;
        CF_MATCH(
            t,
            cf_fmt(
                "{\"type\":\"event\",\"subscription_id\":\"%s\",\"instance_id\":\"%s\",\"machine\":"
                "\"%s\",\"version\":1,\"wal_offset\":%s,\"from_state\":\"a\",\"to_state\":\"a\","
                "\"event\":\"E\",\"payload\":null,\"ctx\":{\"n\":1}}",
                s, id, m, c.v[0]),
            NULL);
        free(t);
    }
    cf_close(k);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conformance_edges");
    TCase *tc = cf_tcase("edges");
    tcase_add_unchecked_fixture(tc, setup, cf_teardown);
    tcase_add_test(tc, envelope_edges);
    tcase_add_test(tc, nesting_limit);
    tcase_add_test(tc, explicit_nulls_in_optional_params);
    tcase_add_test(tc, definition_shape_messages);
    tcase_add_test(tc, u64_bounds);
    tcase_add_test(tc, response_size_limit);
    tcase_add_test(tc, wal_record_too_large);
    tcase_add_test(tc, positional_length_messages);
    tcase_add_test(tc, watch_positional_include_ctx);
    suite_add_tcase(s, tc);
    return cf_run(s);
}
