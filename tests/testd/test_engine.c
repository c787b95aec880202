/* test_engine.c: engine behaviour that the real-server captures cannot show:
 * our deliberate WATCH auth rule, FLUSH_ALL on and off, JSONL negotiation,
 * WAL segment rotation, subscriptions dying with their connection, the
 * per-request delivery cap, and a fan-out of 10,000 subscriptions and
 * 100,000 events with memory that stays bounded. */
#include <check.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_engine_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

static const char *const secret_hash[] = {
    "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"};

static const char W_DEF[] =
    "{\"states\":[\"s0\",\"s1\",\"s2\"],\"initial\":\"s0\",\"transitions\":[{\"from\":\"s0\","
    "\"event\":\"GO\",\"to\":\"s1\"},{\"from\":[\"s1\",\"s2\"],\"event\":\"LOOP\",\"to\":\"s2\"}]}";

/* Send one request; returns the reply (malloc'd, NULL on close) and keeps
 * the deliveries count. */
static char *call(engine *e, uint64_t conn, const char *req, size_t *ndeliv, engine_action *act)
{
    engine_out out;
    ck_assert_int_eq(engine_request(e, conn, (const uint8_t *)req, strlen(req), &out), 0);
    char *r = out.reply ? strndup(out.reply, out.reply_len) : NULL;
    if (ndeliv)
        *ndeliv = out.ndeliveries;
    if (act)
        *act = out.action;
    engine_out_deinit(&out);
    return r;
}

static void expect(engine *e, uint64_t conn, const char *req, const char *reply)
{
    char *r = call(e, conn, req, NULL, NULL);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r, reply);
    free(r);
}

static void put_w(engine *e)
{
    char req[512];
    snprintf(
        req, sizeof req,
        "{\"type\":\"request\",\"id\":\"m\",\"op\":\"PUT_MACHINE\",\"params\":{\"machine\":\"w\","
        "\"version\":1,\"definition\":%s}}",
        W_DEF);
    char *r = call(e, 1, req, NULL, NULL);
    ck_assert_ptr_nonnull(strstr(r, "\"created\":true"));
    free(r);
}

/* We do not copy the real server's auth bypass: WATCH_* need AUTH too. */
START_TEST(watch_requires_auth)
{
    engine_config cfg = {.auth_required = true, .token_hashes = secret_hash, .ntoken_hashes = 1};
    tx t;
    tx_init(&t, &cfg);
    static const tx_case steps[] = {
        {1,
         "{\"type\":\"request\",\"id\":\"1\",\"op\":\"WATCH_ALL\",\"params\":{}}",
         "{\"type\":\"response\",\"id\":\"1\",\"status\":\"error\",\"error\":{\"code\":"
         "\"UNAUTHORIZED\",\"message\":\"authentication required\",\"retryable\":false}}",
         false,
         {NULL}},
        {1,
         "{\"type\":\"request\",\"id\":\"2\",\"op\":\"WATCH_INSTANCE\",\"params\":{\"instance_id\":"
         "\"x\"}}",
         "{\"type\":\"response\",\"id\":\"2\",\"status\":\"error\",\"error\":{\"code\":"
         "\"UNAUTHORIZED\",\"message\":\"authentication required\",\"retryable\":false}}",
         false,
         {NULL}},
        {1,
         "{\"type\":\"request\",\"id\":\"3\",\"op\":\"AUTH\",\"params\":{\"method\":\"bearer\","
         "\"token\":\"secret\"}}",
         "{\"type\":\"response\",\"id\":\"3\",\"status\":\"ok\",\"result\":{\"authenticated\":true}"
         "}",
         false,
         {NULL}},
        {1,
         "{\"type\":\"request\",\"id\":\"4\",\"op\":\"WATCH_ALL\",\"params\":{}}",
         "{\"type\":\"response\",\"id\":\"4\",\"status\":\"ok\",\"result\":{\"subscription_id\":"
         "\"sub-<U1>\",\"wal_offset\":1099511627776}}",
         false,
         {NULL}},
        {1,
         "{\"type\":\"request\",\"id\":\"5\",\"op\":\"WATCH_INSTANCE\",\"params\":{\"instance_id\":"
         "\"x\"}}",
         "{\"type\":\"response\",\"id\":\"5\",\"status\":\"error\",\"error\":{\"code\":"
         "\"INSTANCE_NOT_FOUND\",\"message\":\"core error: instance not found: x\",\"retryable\":"
         "false}}",
         false,
         {NULL}},
        /* another connection is not authenticated by the first one's AUTH */
        {2,
         "{\"type\":\"request\",\"id\":\"6\",\"op\":\"BATCH\",\"params\":{\"ops\":[]}}",
         "{\"type\":\"response\",\"id\":\"6\",\"status\":\"error\",\"error\":{\"code\":"
         "\"UNAUTHORIZED\",\"message\":\"authentication required\",\"retryable\":false}}",
         false,
         {NULL}},
    };
    tx_run(&t, steps, sizeof steps / sizeof steps[0]);
    tx_deinit(&t);
}
END_TEST

/* Off (the 21-op server): FLUSH_ALL is an unknown op, the connection closes,
 * and inside BATCH it is an unknown variant. */
START_TEST(flush_all_disabled)
{
    engine *e;
    engine_config cfg = {0};
    ck_assert_int_eq(engine_new(&e, &cfg), 0);
    engine_action act;
    char *r = call(e, 1, "{\"type\":\"request\",\"id\":\"1\",\"op\":\"FLUSH_ALL\",\"params\":{}}",
                   NULL, &act);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(act, ENGINE_CLOSE);
    r = call(e, 2,
             "{\"type\":\"request\",\"id\":\"2\",\"op\":\"BATCH\",\"params\":{\"ops\":[{\"op\":"
             "\"FLUSH_ALL\"}]}}",
             NULL, &act);
    ck_assert_ptr_nonnull(strstr(r, "\"message\":\"invalid request: unknown variant `FLUSH_ALL`, "
                                    "expected one of `HELLO`, `AUTH`"));
    free(r);
    engine_free(e);
}
END_TEST

/* On: everything goes, counts are reported, watchers of flushed instances
 * stay registered but harmless, and ids become free again. */
START_TEST(flush_all_enabled)
{
    engine *e;
    engine_config cfg = {.allow_flush_all = true};
    ck_assert_int_eq(engine_new(&e, &cfg), 0);
    put_w(e);
    expect(
        e, 1,
        "{\"type\":\"request\",\"id\":\"2\",\"op\":\"PUT_MACHINE\",\"params\":{\"machine\":\"w\","
        "\"version\":2,\"definition\":{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[]}}}",
        "{\"type\":\"response\",\"id\":\"2\",\"status\":\"ok\",\"result\":{\"created\":true,"
        "\"machine\":\"w\",\"stored_checksum\":\"6b16bc3e\",\"version\":2}}");
    for (int i = 0; i < 3; i++) {
        char req[256];
        snprintf(req, sizeof req,
                 "{\"type\":\"request\",\"id\":\"c\",\"op\":\"CREATE_INSTANCE\",\"params\":{"
                 "\"instance_id\":\"i%d\",\"machine\":\"w\",\"version\":1}}",
                 i);
        free(call(e, 1, req, NULL, NULL));
    }
    free(call(e, 2,
              "{\"type\":\"request\",\"id\":\"w\",\"op\":\"WATCH_INSTANCE\",\"params\":{"
              "\"instance_id\":\"i0\"}}",
              NULL, NULL));
    expect(e, 1, "{\"type\":\"request\",\"id\":\"f\",\"op\":\"FLUSH_ALL\",\"params\":{}}",
           "{\"type\":\"response\",\"id\":\"f\",\"status\":\"ok\",\"result\":{\"flushed\":true,"
           "\"instances_removed\":3,\"machines_removed\":2}}");
    expect(e, 1,
           "{\"type\":\"request\",\"id\":\"g\",\"op\":\"GET_INSTANCE\",\"params\":{\"instance_id\":"
           "\"i0\"}}",
           "{\"type\":\"response\",\"id\":\"g\",\"status\":\"error\",\"error\":{\"code\":"
           "\"INSTANCE_NOT_FOUND\",\"message\":\"core error: instance not found: i0\","
           "\"retryable\":false}}");
    expect(e, 1, "{\"type\":\"request\",\"id\":\"l\",\"op\":\"LIST_MACHINES\"}",
           "{\"type\":\"response\",\"id\":\"l\",\"status\":\"ok\",\"result\":{\"items\":[]}}");
    put_w(e);
    size_t nd = 99;
    char *r = call(e, 1,
                   "{\"type\":\"request\",\"id\":\"c\",\"op\":\"CREATE_INSTANCE\",\"params\":{"
                   "\"instance_id\":\"i0\",\"machine\":\"w\",\"version\":1}}",
                   NULL, NULL);
    ck_assert_ptr_nonnull(strstr(r, "\"status\":\"ok\""));
    free(r);
    r = call(
        e, 1,
        "{\"type\":\"request\",\"id\":\"a\",\"op\":\"APPLY_EVENT\",\"params\":{\"instance_id\":"
        "\"i0\",\"event\":\"GO\"}}",
        &nd, NULL);
    ck_assert_ptr_nonnull(strstr(r, "\"applied\":true"));
    ck_assert_uint_eq(nd, 0); /* the old watcher belonged to the flushed instance */
    free(r);
    engine_conn_close(e, 2); /* its subscription is released without touching the instance */
    engine_free(e);
}
END_TEST

START_TEST(jsonl_negotiation)
{
    engine *e;
    engine_config cfg = {0};
    ck_assert_int_eq(engine_new(&e, &cfg), 0);
    engine_conn_open(e, 7);
    ck_assert(!engine_conn_jsonl(e, 7));
    free(call(
        e, 7,
        "{\"type\":\"request\",\"id\":\"1\",\"op\":\"HELLO\",\"params\":{\"protocol_version\":1,"
        "\"wire_modes\":[\"jsonl\"]}}",
        NULL, NULL));
    ck_assert(engine_conn_jsonl(e, 7));
    /* binary_json anywhere in the list wins */
    free(call(
        e, 7,
        "{\"type\":\"request\",\"id\":\"2\",\"op\":\"HELLO\",\"params\":{\"protocol_version\":1,"
        "\"wire_modes\":[\"jsonl\",\"binary_json\"]}}",
        NULL, NULL));
    ck_assert(!engine_conn_jsonl(e, 7));
    /* a failed HELLO changes nothing */
    free(call(
        e, 7,
        "{\"type\":\"request\",\"id\":\"3\",\"op\":\"HELLO\",\"params\":{\"protocol_version\":2,"
        "\"wire_modes\":[\"jsonl\"]}}",
        NULL, NULL));
    ck_assert(!engine_conn_jsonl(e, 7));
    engine_conn_close(e, 7);
    ck_assert(!engine_conn_jsonl(e, 7));
    engine_free(e);
}
END_TEST

/* Offsets are (segment << 40) | position, a record is 24 + entry bytes, and
 * a record that does not fit starts the next segment (PROTOCOL.md §9.1). */
START_TEST(wal_segment_rotation)
{
    engine *e;
    engine_config cfg = {.wal_segment_size = 1000};
    ck_assert_int_eq(engine_new(&e, &cfg), 0);
    /* The PUT_MACHINE entry of W_DEF is 232 bytes on disk: record 256. */
    put_w(e);
    uint64_t expect_off[5] = {0};
    uint64_t pos = 256;
    uint64_t seg = 1;
    for (int i = 0; i < 5; i++) {
        /* {"type":"create_instance","instance_id":"iN","machine":"w","version":1,
         *  "initial_state":"s0","initial_ctx":{"pad":"<300 x>"}}: 417 bytes, record 441 */
        char req[1024];
        char pad[301];
        memset(pad, 'x', 300);
        pad[300] = '\0';
        snprintf(req, sizeof req,
                 "{\"type\":\"request\",\"id\":\"c\",\"op\":\"CREATE_INSTANCE\",\"params\":{"
                 "\"instance_id\":\"i%d\",\"machine\":\"w\",\"version\":1,\"initial_ctx\":{\"pad\":"
                 "\"%s\"}}}",
                 i, pad);
        if (pos + 441 > 1000) {
            seg++;
            pos = 0;
        }
        expect_off[i] = (seg << 40) | pos;
        pos += 441;
        char *r = call(e, 1, req, NULL, NULL);
        char want[64];
        snprintf(want, sizeof want, "\"wal_offset\":%llu}", (unsigned long long)expect_off[i]);
        ck_assert_msg(strstr(r, want) != NULL, "%s lacks %s", r, want);
        free(r);
    }
    ck_assert_uint_eq(expect_off[0], 1099511627776ull + 256);
    ck_assert_uint_eq(expect_off[1], 2ull << 40);
    char want[256];
    snprintf(want, sizeof want,
             "{\"type\":\"response\",\"id\":\"s\",\"status\":\"ok\",\"result\":{\"entry_count\":6,"
             "\"io_stats\":{\"bytes_read\":0,\"bytes_written\":%u,\"fsyncs\":6,\"reads\":1,"
             "\"writes\":6},\"latest_offset\":%llu,\"segment_count\":%llu,\"total_size_bytes\":0}}",
             256u + 5u * 441u, (unsigned long long)((seg << 40) | pos), (unsigned long long)seg);
    expect(e, 1, "{\"type\":\"request\",\"id\":\"s\",\"op\":\"WAL_STATS\"}", want);
    engine_free(e);
}
END_TEST

/* A connection's subscriptions die with it; other connections keep theirs. */
START_TEST(subscriptions_die_with_connection)
{
    engine *e;
    engine_config cfg = {0};
    ck_assert_int_eq(engine_new(&e, &cfg), 0);
    put_w(e);
    free(call(e, 1,
              "{\"type\":\"request\",\"id\":\"c\",\"op\":\"CREATE_INSTANCE\",\"params\":{"
              "\"instance_id\":\"i\",\"machine\":\"w\",\"version\":1}}",
              NULL, NULL));
    for (uint64_t c = 2; c <= 4; c++) {
        free(call(e, c,
                  "{\"type\":\"request\",\"id\":\"w\",\"op\":\"WATCH_INSTANCE\",\"params\":{"
                  "\"instance_id\":\"i\"}}",
                  NULL, NULL));
        free(call(e, c, "{\"type\":\"request\",\"id\":\"a\",\"op\":\"WATCH_ALL\",\"params\":{}}",
                  NULL, NULL));
    }
    engine_conn_close(e, 3);
    engine_out out;
    const char *go = "{\"type\":\"request\",\"id\":\"g\",\"op\":\"APPLY_EVENT\",\"params\":{"
                     "\"instance_id\":\"i\",\"event\":\"GO\"}}";
    ck_assert_int_eq(engine_request(e, 1, (const uint8_t *)go, strlen(go), &out), 0);
    ck_assert_uint_eq(out.ndeliveries, 4);
    for (size_t i = 0; i < out.ndeliveries; i++)
        ck_assert(out.deliveries[i].conn_id == 2 || out.deliveries[i].conn_id == 4);
    engine_out_deinit(&out);
    engine_free(e); /* frees connections 2 and 4 with their subscriptions */
}
END_TEST

/* One request may not produce more than max_deliveries events: a BATCH of
 * 100 APPLY_EVENTs to an instance with 1,000 watchers would queue 100,000. */
START_TEST(delivery_cap)
{
    engine *e;
    engine_config cfg = {.max_deliveries = 5000};
    ck_assert_int_eq(engine_new(&e, &cfg), 0);
    put_w(e);
    free(call(e, 1,
              "{\"type\":\"request\",\"id\":\"c\",\"op\":\"CREATE_INSTANCE\",\"params\":{"
              "\"instance_id\":\"i\",\"machine\":\"w\",\"version\":1}}",
              NULL, NULL));
    for (int k = 0; k < 1000; k++)
        free(call(e, 2,
                  "{\"type\":\"request\",\"id\":\"w\",\"op\":\"WATCH_INSTANCE\",\"params\":{"
                  "\"instance_id\":\"i\",\"include_ctx\":false}}",
                  NULL, NULL));
    strbuf b;
    strbuf_init(&b, TESTD_TEXT_MAX);
    strbuf_puts(&b,
                "{\"type\":\"request\",\"id\":\"b\",\"op\":\"BATCH\",\"params\":{\"ops\":[{\"op\":"
                "\"APPLY_EVENT\",\"params\":{\"instance_id\":\"i\",\"event\":\"GO\"}}");
    for (int k = 1; k < 100; k++)
        strbuf_puts(
            &b, ",{\"op\":\"APPLY_EVENT\",\"params\":{\"instance_id\":\"i\",\"event\":\"LOOP\"}}");
    strbuf_puts(&b, "]}}");
    ck_assert(!strbuf_failed(&b));
    size_t nd = 0;
    char *r = call(e, 1, b.data, &nd, NULL);
    ck_assert_ptr_nonnull(strstr(r, "\"status\":\"ok\""));
    ck_assert_uint_eq(nd, 5000);
    free(r);
    strbuf_deinit(&b);
    /* the next request starts a fresh budget */
    r = call(
        e, 1,
        "{\"type\":\"request\",\"id\":\"a\",\"op\":\"APPLY_EVENT\",\"params\":{\"instance_id\":"
        "\"i\",\"event\":\"LOOP\"}}",
        &nd, NULL);
    ck_assert_uint_eq(nd, 1000);
    free(r);
    engine_free(e);
}
END_TEST

/* A guard panic inside BATCH after an APPLY_EVENT: the real server already
 * broadcast the event, then lost the requesting connection. Others get the
 * event; the requester gets nothing (reply NULL) and is closed. */
START_TEST(batch_panic_keeps_others_events)
{
    engine *e;
    engine_config cfg = {0};
    ck_assert_int_eq(engine_new(&e, &cfg), 0);
    put_w(e);
    free(call(e, 1,
              "{\"type\":\"request\",\"id\":\"c\",\"op\":\"CREATE_INSTANCE\",\"params\":{"
              "\"instance_id\":\"i\",\"machine\":\"w\",\"version\":1}}",
              NULL, NULL));
    free(call(e, 1, "{\"type\":\"request\",\"id\":\"a\",\"op\":\"WATCH_ALL\",\"params\":{}}", NULL,
              NULL));
    free(call(e, 2, "{\"type\":\"request\",\"id\":\"a\",\"op\":\"WATCH_ALL\",\"params\":{}}", NULL,
              NULL));
    const char *req =
        "{\"type\":\"request\",\"id\":\"b\",\"op\":\"BATCH\",\"params\":{\"ops\":[{\"op\":"
        "\"APPLY_EVENT\",\"params\":{\"instance_id\":\"i\",\"event\":\"GO\"}},{\"op\":"
        "\"PUT_MACHINE\",\"params\":{\"machine\":\"x\",\"version\":1,\"definition\":{"
        "\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[{\"from\":\"a\",\"event\":"
        "\"E\",\"to\":\"a\",\"guard\":\"ctx.\xc3\xbc\"}]}}}]}}";
    engine_out out;
    ck_assert_int_eq(engine_request(e, 1, (const uint8_t *)req, strlen(req), &out), 0);
    ck_assert_int_eq(out.action, ENGINE_REPLY_CLOSE);
    ck_assert_ptr_null(out.reply);
    ck_assert_uint_eq(out.ndeliveries, 1);
    ck_assert_uint_eq(out.deliveries[0].conn_id, 2);
    ck_assert_ptr_nonnull(strstr(out.deliveries[0].payload, "\"event\":\"GO\""));
    engine_out_deinit(&out);
    /* the same panic with nobody else watching: a plain silent close */
    engine_conn_close(e, 1);
    engine_conn_close(e, 2);
    ck_assert_int_eq(engine_request(e, 3, (const uint8_t *)req, strlen(req), &out), 0);
    ck_assert_int_eq(out.action, ENGINE_CLOSE);
    ck_assert_uint_eq(out.ndeliveries, 0);
    engine_out_deinit(&out);
    engine_free(e);
}
END_TEST

/* serde's positional-params wording, from the real server: the index of
 * the first missing field without a default, and "element" for one. */
START_TEST(positional_params_wording)
{
    engine *e;
    engine_config cfg = {0};
    ck_assert_int_eq(engine_new(&e, &cfg), 0);
    expect(e, 1, "{\"type\":\"request\",\"id\":\"1\",\"op\":\"GET_INSTANCE\",\"params\":[]}",
           "{\"type\":\"response\",\"id\":\"1\",\"status\":\"error\",\"error\":{\"code\":"
           "\"BAD_REQUEST\",\"message\":\"invalid request: invalid length 0, expected struct "
           "GetInstanceParams with 1 element\",\"retryable\":false}}");
    expect(e, 1,
           "{\"type\":\"request\",\"id\":\"2\",\"op\":\"APPLY_EVENT\",\"params\":[\"o-1\",\"E\"]}",
           "{\"type\":\"response\",\"id\":\"2\",\"status\":\"error\",\"error\":{\"code\":"
           "\"BAD_REQUEST\",\"message\":\"invalid request: invalid length 3, expected struct "
           "ApplyEventParams with 7 elements\",\"retryable\":false}}");
    engine_free(e);
}
END_TEST

/* The real server parses WATCH params positionally but its forwarder reads
 * params["include_ctx"] (true when absent): array params always get ctx. */
START_TEST(watch_positional_include_ctx)
{
    engine *e;
    engine_config cfg = {0};
    ck_assert_int_eq(engine_new(&e, &cfg), 0);
    put_w(e);
    free(call(e, 1,
              "{\"type\":\"request\",\"id\":\"c\",\"op\":\"CREATE_INSTANCE\",\"params\":{"
              "\"instance_id\":\"i\",\"machine\":\"w\",\"version\":1,\"initial_ctx\":{\"n\":1}}}",
              NULL, NULL));
    free(call(e, 2,
              "{\"type\":\"request\",\"id\":\"w\",\"op\":\"WATCH_INSTANCE\",\"params\":[\"i\","
              "false,null]}",
              NULL, NULL));
    free(call(
        e, 3,
        "{\"type\":\"request\",\"id\":\"w\",\"op\":\"WATCH_ALL\",\"params\":[false,null,[\"w\"]]}",
        NULL, NULL));
    free(call(e, 4,
              "{\"type\":\"request\",\"id\":\"w\",\"op\":\"WATCH_ALL\",\"params\":{\"include_ctx\":"
              "false}}",
              NULL, NULL));
    const char *go = "{\"type\":\"request\",\"id\":\"g\",\"op\":\"APPLY_EVENT\",\"params\":{"
                     "\"instance_id\":\"i\",\"event\":\"GO\"}}";
    engine_out out;
    ck_assert_int_eq(engine_request(e, 1, (const uint8_t *)go, strlen(go), &out), 0);
    ck_assert_uint_eq(out.ndeliveries, 3);
    for (size_t i = 0; i < out.ndeliveries; i++) {
        bool has_ctx = strstr(out.deliveries[i].payload, ",\"ctx\":{\"n\":1}}") != NULL;
        ck_assert_msg(has_ctx == (out.deliveries[i].conn_id != 4), "%s", out.deliveries[i].payload);
    }
    engine_out_deinit(&out);
    engine_free(e);
}
END_TEST

/* A WAL entry over 16 MiB is refused like the real WAL refuses it, and
 * still uses up a sequence number (verified on the real server). A 16 MiB
 * CREATE without instance_id: the generated 36-char id makes the entry
 * longer than the request. */
START_TEST(wal_record_too_large)
{
    engine *e;
    engine_config cfg = {0};
    ck_assert_int_eq(engine_new(&e, &cfg), 0);
    put_w(e);
    static const char head[] =
        "{\"type\":\"request\",\"id\":\"c\",\"op\":\"CREATE_INSTANCE\","
        "\"params\":{\"machine\":\"w\",\"version\":1,\"initial_ctx\":{\"p\":\"";
    static const char tail[] = "\"}}}";
    size_t pad = 16777216 - (sizeof head - 1) - (sizeof tail - 1);
    char *req = malloc(16777216 + 1);
    ck_assert_ptr_nonnull(req);
    memcpy(req, head, sizeof head - 1);
    memset(req + sizeof head - 1, 'x', pad);
    memcpy(req + sizeof head - 1 + pad, tail, sizeof tail);
    size_t entry = strlen("{\"type\":\"create_instance\",\"instance_id\":"
                          "\"123456789012345678901234567890123456\","
                          "\"machine\":\"w\",\"version\":1,\"initial_state\":\"s0\",\"initial_"
                          "ctx\":{\"p\":\"\"}}") +
                   pad;
    char want[512];
    snprintf(
        want, sizeof want,
        "{\"type\":\"response\",\"id\":\"c\",\"status\":\"error\",\"error\":{\"code\":"
        "\"WAL_IO_ERROR\",\"message\":\"core error: WAL error: record too large: %zu bytes (max "
        "16777216)\",\"retryable\":true}}",
        entry);
    expect(e, 1, req, want);
    free(req);
    expect(e, 1, "{\"type\":\"request\",\"id\":\"l\",\"op\":\"LIST_INSTANCES\",\"params\":{}}",
           "{\"type\":\"response\",\"id\":\"l\",\"status\":\"ok\",\"result\":{\"has_more\":false,"
           "\"instances\":[],\"total\":0}}");
    /* one record written (PUT_MACHINE, 256 bytes), two sequences used */
    expect(e, 1, "{\"type\":\"request\",\"id\":\"s\",\"op\":\"WAL_STATS\"}",
           "{\"type\":\"response\",\"id\":\"s\",\"status\":\"ok\",\"result\":{\"entry_count\":2,"
           "\"io_stats\":{\"bytes_read\":0,\"bytes_written\":256,\"fsyncs\":1,\"reads\":1,"
           "\"writes\":1},\"latest_offset\":1099511628032,\"segment_count\":1,\"total_size_bytes\":"
           "0}}");
    engine_free(e);
}
END_TEST

/* UNWATCH with array params: removed:true, yet events keep flowing (the
 * real server aborts the forwarder through params["subscription_id"]);
 * a later UNWATCH with an object stops them, answering removed:false. */
START_TEST(unwatch_positional_keeps_delivering)
{
    tx t;
    tx_init(&t, NULL);
    put_w(t.e);
    static const tx_case steps[] = {
        {1,
         "{\"type\":\"request\",\"id\":\"1\",\"op\":\"CREATE_INSTANCE\",\"params\":{\"instance_"
         "id\":"
         "\"i\",\"machine\":\"w\",\"version\":1}}",
         "{\"type\":\"response\",\"id\":\"1\",\"status\":\"ok\",\"result\":{\"instance_id\":\"i\","
         "\"state\":\"s0\",\"wal_offset\":1099511628032}}",
         false,
         {NULL}},
        {1,
         "{\"type\":\"request\",\"id\":\"2\",\"op\":\"WATCH_ALL\",\"params\":{\"include_ctx\":"
         "false}}",
         "{\"type\":\"response\",\"id\":\"2\",\"status\":\"ok\",\"result\":{\"subscription_id\":"
         "\"sub-<U1>\",\"wal_offset\":1099511628166}}",
         false,
         {NULL}},
        {1,
         "{\"type\":\"request\",\"id\":\"3\",\"op\":\"UNWATCH\",\"params\":[\"sub-<U1>\"]}",
         "{\"type\":\"response\",\"id\":\"3\",\"status\":\"ok\",\"result\":{\"removed\":true,"
         "\"subscription_id\":\"sub-<U1>\"}}",
         false,
         {NULL}},
        {1,
         "{\"type\":\"request\",\"id\":\"4\",\"op\":\"APPLY_EVENT\",\"params\":{\"instance_id\":"
         "\"i\",\"event\":\"GO\"}}",
         "{\"type\":\"response\",\"id\":\"4\",\"status\":\"ok\",\"result\":{\"applied\":true,"
         "\"ctx\":null,\"from_state\":\"s0\",\"to_state\":\"s1\",\"wal_offset\":1099511628166}}",
         false,
         {"c1 < {\"type\":\"event\",\"subscription_id\":\"sub-<U1>\",\"instance_id\":\"i\","
          "\"machine\":\"w\",\"version\":1,\"wal_offset\":1099511628166,\"from_state\":\"s0\","
          "\"to_state\":\"s1\",\"event\":\"GO\",\"payload\":null}",
          NULL}},
        {1,
         "{\"type\":\"request\",\"id\":\"5\",\"op\":\"UNWATCH\",\"params\":{\"subscription_id\":"
         "\"sub-<U1>\"}}",
         "{\"type\":\"response\",\"id\":\"5\",\"status\":\"ok\",\"result\":{\"removed\":false,"
         "\"subscription_id\":\"sub-<U1>\"}}",
         false,
         {NULL}},
        {1,
         "{\"type\":\"request\",\"id\":\"6\",\"op\":\"APPLY_EVENT\",\"params\":{\"instance_id\":"
         "\"i\",\"event\":\"LOOP\"}}",
         "{\"type\":\"response\",\"id\":\"6\",\"status\":\"ok\",\"result\":{\"applied\":true,"
         "\"ctx\":null,\"from_state\":\"s1\",\"to_state\":\"s2\",\"wal_offset\":1099511628303}}",
         false,
         {NULL}},
    };
    tx_run(&t, steps, sizeof steps / sizeof steps[0]);
    tx_deinit(&t);
}
END_TEST

static size_t heap_in_use(void)
{
#if defined(TEST_ASAN)
    return 0; /* ASan's allocator does not report through mallinfo2; LSan checks leaks */
#else
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
#endif
}

/* 10,000 subscriptions (100 instances x 100 WATCH_INSTANCE on 10
 * connections) and 100,000 events (1,000 APPLY_EVENTs, each seen by 100
 * watchers). Deliveries belong to the engine_out of their request and are
 * released with it, so the heap after all 100,000 is where it was after the
 * first few: no growth proportional to the events. */
START_TEST(fanout_10k_subs_100k_events)
{
    engine *e;
    engine_config cfg = {0};
    ck_assert_int_eq(engine_new(&e, &cfg), 0);
    put_w(e);
    char req[256];
    for (int i = 0; i < 100; i++) {
        snprintf(
            req, sizeof req,
            "{\"type\":\"request\",\"id\":\"c\",\"op\":\"CREATE_INSTANCE\",\"params\":{"
            "\"instance_id\":\"i%d\",\"machine\":\"w\",\"version\":1,\"initial_ctx\":{\"n\":%d}}}",
            i, i);
        free(call(e, 1, req, NULL, NULL));
    }
    size_t nsubs = 0;
    for (int i = 0; i < 100; i++) {
        for (int k = 0; k < 100; k++) {
            snprintf(req, sizeof req,
                     "{\"type\":\"request\",\"id\":\"w\",\"op\":\"WATCH_INSTANCE\",\"params\":{"
                     "\"instance_id\":\"i%d\",\"include_ctx\":%s}}",
                     i, k % 2 ? "true" : "false");
            char *r = call(e, (uint64_t)(10 + k % 10), req, NULL, NULL);
            ck_assert_ptr_nonnull(strstr(r, "\"subscription_id\":\"sub-"));
            free(r);
            nsubs++;
        }
    }
    ck_assert_uint_eq(nsubs, 10000);
    size_t total = 0, baseline = 0, peak = 0;
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 100; i++) {
            snprintf(req, sizeof req,
                     "{\"type\":\"request\",\"id\":\"a\",\"op\":\"APPLY_EVENT\",\"params\":{"
                     "\"instance_id\":\"i%d\",\"event\":\"%s\",\"payload\":{\"r\":%d}}}",
                     i, round == 0 ? "GO" : "LOOP", round);
            engine_out out;
            ck_assert_int_eq(engine_request(e, 1, (const uint8_t *)req, strlen(req), &out), 0);
            ck_assert_int_eq(out.action, ENGINE_REPLY);
            ck_assert_uint_eq(out.ndeliveries, 100);
            for (size_t d = 0; d < out.ndeliveries; d++) {
                ck_assert(out.deliveries[d].conn_id >= 10 && out.deliveries[d].conn_id < 20);
                ck_assert_ptr_nonnull(strstr(out.deliveries[d].payload, "\"payload\":{\"r\":"));
            }
            total += out.ndeliveries;
            engine_out_deinit(&out);
        }
        size_t now = heap_in_use();
        if (round == 1)
            baseline = now;
        if (now > peak)
            peak = now;
    }
    ck_assert_uint_eq(total, 100000);
#if !defined(TEST_ASAN)
    /* 100,000 deliveries of ~300 bytes would be ~30 MB if any were kept;
     * what may grow is the WAL (1,000 records of ~250 bytes). */
    ck_assert_msg(peak < baseline + 2 * 1024 * 1024, "heap grew from %zu to %zu", baseline, peak);
#else
    (void)baseline;
    (void)peak;
#endif
    for (uint64_t c = 10; c < 20; c++)
        engine_conn_close(e, c);
    /* with every watcher gone, events cost nothing */
    size_t nd = 1;
    free(call(
        e, 1,
        "{\"type\":\"request\",\"id\":\"a\",\"op\":\"APPLY_EVENT\",\"params\":{\"instance_id\":"
        "\"i0\",\"event\":\"LOOP\"}}",
        &nd, NULL));
    ck_assert_uint_eq(nd, 0);
    engine_free(e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, watch_requires_auth);
    tcase_add_test(tc, flush_all_disabled);
    tcase_add_test(tc, flush_all_enabled);
    tcase_add_test(tc, jsonl_negotiation);
    tcase_add_test(tc, wal_segment_rotation);
    tcase_add_test(tc, subscriptions_die_with_connection);
    tcase_add_test(tc, delivery_cap);
    tcase_add_test(tc, positional_params_wording);
    tcase_add_test(tc, watch_positional_include_ctx);
    tcase_add_test(tc, wal_record_too_large);
    tcase_add_test(tc, unwatch_positional_keeps_delivering);
    tcase_add_test(tc, batch_panic_keeps_others_events);
    tcase_add_test(tc, fanout_10k_subs_100k_events);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
