/* test_batch.c: BATCH (PROTOCOL.md §10): best_effort results, atomic failure
 * without rollback and its Rust-debug message, limits and malformed ops.
 */
#include "conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOOP_DEF                                                                               \
    "{\"states\":[\"s0\",\"s1\",\"s2\"],\"initial\":\"s0\",\"transitions\":[{\"from\":\"s0\"," \
    "\"event\":\"GO\",\"to\":\"s1\"},{\"from\":\"s1\",\"event\":\"GO\",\"to\":\"s2\"}]}"

static void setup(void)
{
    cf_setup(0);
}

START_TEST(best_effort_results)
{
    cf_conn *k = CF_OPEN();
    char m[96], id[96];
    cf_uniq(m, sizeof m, "bt");
    cf_uniq(id, sizeof id, "b");
    CF_PUT_MACHINE(k, m, LOOP_DEF);
    const char *ops =
        cf_fmt("[{\"op\":\"CREATE_INSTANCE\",\"params\":{\"instance_id\":\"%s\",\"machine\":\"%s\","
               "\"version\":1}},"
               "{\"op\":\"GET_INSTANCE\",\"params\":{\"instance_id\":\"%s-nope\"}},"
               "{\"op\":\"PING\"},"
               "{\"op\":\"LIST_INSTANCES\"},"
               "{\"op\":\"APPLY_EVENT\",\"params\":{\"instance_id\":\"%s\",\"event\":\"GO\"}}]",
               id, m, id, id);
    /* LIST_INSTANCES without params: 0.1 refuses null params, 0.3 lists. */
    const char *list_null =
        cf_v03() ? "{\"error\":null,\"result\":{\"has_more\":$*},\"status\":\"ok\"},"
                 : "{\"error\":{\"code\":\"BAD_REQUEST\",\"message\":\"invalid request: invalid "
                   "type: null, expected struct ListInstancesParams\",\"retryable\":false},"
                   "\"result\":null,\"status\":\"error\"},";
    const char *want =
        cf_fmt("{\"results\":[{\"error\":null,\"result\":{\"instance_id\":\"%s\",\"state\":\"s0\","
               "\"wal_offset\":$O},\"status\":\"ok\"},"
               "{\"error\":{\"code\":\"INSTANCE_NOT_FOUND\",\"message\":\"core error: instance not "
               "found: %s-nope\",\"retryable\":false},"
               "\"result\":null,\"status\":\"error\"},"
               "{\"error\":null,\"result\":{\"pong\":true},\"status\":\"ok\"},"
               "%s"
               "{\"error\":null,\"result\":{\"applied\":true,\"ctx\":null,\"from_state\":\"s0\","
               "\"to_state\":\"s1\",\"wal_offset\":$O},"
               "\"status\":\"ok\"}]}",
               id, id, list_null);
    char wantb[4096];
    snprintf(wantb, sizeof wantb, "%s", want);
    cf_caps c;
    CF_OKC(k, "BATCH", cf_fmt("{\"mode\":\"best_effort\",\"ops\":%s}", ops), wantb, &c);
    ck_assert(cf_u64(c.v[1]) > cf_u64(c.v[0]));
    /* Missing, unknown or wrong-typed mode: best_effort too. */
    char id2[96];
    cf_uniq(id2, sizeof id2, "b");
    static const char *const modes[] = {"", "\"mode\":\"ATOMIC\",", "\"mode\":1,"};
    for (int i = 0; i < 3; i++)
        CF_OK(k, "BATCH",
              cf_fmt("{%s\"ops\":[{\"op\":\"GET_INSTANCE\",\"params\":{\"instance_id\":\"%s-z\"}},{"
                     "\"op\":\"PING\",\"params\":{}}]}",
                     modes[i], id2),
              cf_fmt("{\"results\":[{\"error\":{\"code\":\"INSTANCE_NOT_FOUND\",\"message\":\"core "
                     "error: instance not "
                     "found: "
                     "%s-z\",\"retryable\":false},\"result\":null,\"status\":\"error\"},{\"error\":"
                     "null,\"result\":"
                     "{\"pong\":true},\"status\":\"ok\"}]}",
                     id2));
    CF_OK(k, "BATCH", "{\"ops\":[]}", "{\"results\":[]}");
    CF_OK(k, "BATCH", "{\"mode\":\"atomic\",\"ops\":[]}", "{\"results\":[]}");
    cf_close(k);
}
END_TEST

START_TEST(atomic_failure_keeps_earlier_ops)
{
    cf_conn *k = CF_OPEN();
    char m[96], id[96];
    cf_uniq(m, sizeof m, "bt");
    cf_uniq(id, sizeof id, "b");
    CF_PUT_MACHINE(k, m, LOOP_DEF);
    CF_CREATE(k, id, m, "{}");
    /* All ok in atomic mode: ordinary results. */
    CF_OK(k, "BATCH",
          cf_fmt("{\"mode\":\"atomic\",\"ops\":[{\"op\":\"APPLY_EVENT\",\"params\":{\"instance_"
                 "id\":\"%s\","
                 "\"event\":\"GO\"}}]}",
                 id),
          "{\"results\":[{\"error\":null,\"result\":{\"applied\":true,\"ctx\":{},\"from_state\":"
          "\"s0\",\"to_state\":\"s1\","
          "\"wal_offset\":$O},\"status\":\"ok\"}]}");
    const char *p = cf_fmt(
        "{\"mode\":\"atomic\",\"ops\":[{\"op\":\"APPLY_EVENT\",\"params\":{\"instance_id\":\"%s\","
        "\"event\":\"GO\"}},{\"op\":\"APPLY_EVENT\",\"params\":{\"instance_id\":\"%s\",\"event\":"
        "\"GO\"}},"
        "{\"op\":\"PING\"}]}",
        id, id);
    CF_ERR(
        k, "BATCH", p, "BAD_REQUEST",
        "invalid request: atomic batch failed: Some(ResponseError { code: InvalidTransition, "
        "message: \"core error: "
        "invalid transition: cannot apply 'GO' in state 's2'\", retryable: false, details: {} })",
        false);
    /* No rollback: the first GO stayed applied. */
    CF_OK(
        k, "GET_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id),
        cf_fmt(
            "{\"ctx\":{},\"last_wal_offset\":$O,\"machine\":\"%s\",\"state\":\"s2\",\"version\":1}",
            m));
    /* A params error inside atomic mode is reported the same way. */
    CF_ERR(k, "BATCH", "{\"mode\":\"atomic\",\"ops\":[{\"op\":\"GET_INSTANCE\",\"params\":{}}]}",
           "BAD_REQUEST",
           "invalid request: atomic batch failed: Some(ResponseError { code: BadRequest, message: "
           "\"invalid request: "
           "missing field `instance_id`\", retryable: false, details: {} })",
           false);
    cf_close(k);
}
END_TEST

START_TEST(batch_limits_and_malformed_ops)
{
    cf_conn *k = CF_OPEN();
    /* 100 ops are fine, 101 are not. */
    char *ops = malloc(101 * 16 + 16);
    ck_assert_ptr_nonnull(ops);
    char *w = ops;
    *w++ = '[';
    for (int i = 0; i < 101; i++)
        w += sprintf(w, "%s{\"op\":\"PING\"}", i ? "," : "");
    *w++ = ']';
    *w = '\0';
    CF_ERR(k, "BATCH", cf_fmt("{\"ops\":%s}", ops), "BAD_REQUEST",
           "invalid request: batch size 101 exceeds limit 100", false);
    char *comma = strrchr(ops, ',');
    strcpy(comma, "]");
    cJSON *j = CF_CALLJ(k, "BATCH", cf_fmt("{\"ops\":%s}", ops));
    const cJSON *res = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "result"), "results");
    ck_assert_int_eq(cJSON_GetArraySize(res), 100);
    cJSON_Delete(j);
    free(ops);
    CF_ERR(k, "BATCH", "{\"operations\":[{\"op\":\"PING\"}]}", "BAD_REQUEST",
           "invalid request: missing ops array", false);
    CF_ERR(k, "BATCH", "{\"ops\":{\"op\":\"PING\"}}", "BAD_REQUEST",
           "invalid request: missing ops array", false);
    CF_ERR(k, "BATCH", NULL, "BAD_REQUEST", "invalid request: missing ops array", false);
    CF_ERR(k, "BATCH", "{\"ops\":[{\"op\":\"PING\"},{\"params\":{}}]}", "BAD_REQUEST",
           "invalid request: missing op type", false);
    CF_ERR(k, "BATCH", "{\"ops\":[{\"op\":5}]}", "BAD_REQUEST", "invalid request: missing op type",
           false);
    CF_ERR(k, "BATCH", "{\"ops\":[7]}", "BAD_REQUEST", "invalid request: missing op type", false);
    if (!cf_v03()) {
        static const char *const variants =
            "`HELLO`, `AUTH`, `PING`, `BYE`, `INFO`, `PUT_MACHINE`, `GET_MACHINE`, "
            "`LIST_MACHINES`, `CREATE_INSTANCE`, `GET_INSTANCE`, `LIST_INSTANCES`, "
            "`DELETE_INSTANCE`, `APPLY_EVENT`, `BATCH`, `SNAPSHOT_INSTANCE`, `WAL_READ`, "
            "`WAL_STATS`, `COMPACT`, `WATCH_INSTANCE`, `WATCH_ALL`, `UNWATCH`";
        CF_ERR(k, "BATCH", "{\"ops\":[{\"op\":\"FLUSH_ALL\",\"params\":{}}]}", "BAD_REQUEST",
               cf_fmt("invalid request: unknown variant `FLUSH_ALL`, expected one of %s", variants),
               false);
        CF_ERR(k, "BATCH", "{\"mode\":\"best_effort\",\"ops\":[{\"op\":\"ping\"}]}", "BAD_REQUEST",
               cf_fmt("invalid request: unknown variant `ping`, expected one of %s", variants),
               false);
    } else {
        /* 0.3 lists its 28 ops, or 25 in a build without hot backup. */
        static const char *const head =
            "`HELLO`, `AUTH`, `PING`, `BYE`, `INFO`, `REPLICATION_STATUS`, `PUT_MACHINE`, "
            "`GET_MACHINE`, `LIST_MACHINES`, `CREATE_INSTANCE`, `GET_INSTANCE`, `LIST_INSTANCES`, "
            "`DELETE_INSTANCE`, `APPLY_EVENT`, `BATCH`, `SNAPSHOT_INSTANCE`, `WAL_READ`, "
            "`WAL_STATS`, `COMPACT`, `WATCH_INSTANCE`, `WATCH_ALL`, `UNWATCH`, ";
        static const char *const backup = "`BACKUP_BEGIN`, `BACKUP_CHUNK`, `BACKUP_END`, ";
        static const char *const tail = "`FLUSH_ALL`, `REPLICATE`, `REPLICATE_ACK`";
        char *t = CF_CALL(k, "BATCH", "{\"mode\":\"best_effort\",\"ops\":[{\"op\":\"ping\"}]}");
        const char *with =
            cf_fmt("{\"type\":\"response\",\"id\":\"%s\",\"status\":\"error\","
                   "\"error\":{\"code\":\"BAD_REQUEST\",\"message\":\"invalid request: "
                   "unknown variant `ping`, expected one of %s%s%s\",\"retryable\":false}}",
                   k->last_id, head, backup, tail);
        const char *without = cf_fmt("{\"type\":\"response\",\"id\":\"%s\",\"status\":\"error\","
                                     "\"error\":{\"code\":\"BAD_REQUEST\",\"message\":\"invalid "
                                     "request: unknown variant `ping`, expected one of %s%s\","
                                     "\"retryable\":false}}",
                                     k->last_id, head, tail);
        ck_assert_msg(strcmp(t, with) == 0 || strcmp(t, without) == 0, "got %s", t);
        free(t);
        /* FLUSH_ALL is a known op (from 0.2), disabled by default. */
        CF_ERR(k, "FLUSH_ALL", "{}", "BAD_REQUEST",
               "invalid request: FLUSH_ALL is disabled. Set storage.allow_flush_all=true in config "
               "to enable.",
               false);
        /* REPLICATE from a client is refused. */
        CF_ERR(k, "REPLICATE", "{}", "BAD_REQUEST",
               "invalid request: replication operations are handled internally", false);
        CF_OK(k, "REPLICATION_STATUS", NULL, "{\"role\":\"standalone\"}");
    }
    /* The connection is fine afterwards. */
    CF_OK(k, "PING", NULL, "{\"pong\":true}");
    cf_close(k);
}
END_TEST

START_TEST(unknown_op_after_applied_ops)
{
    cf_conn *k = CF_OPEN();
    char m[96], id[96];
    cf_uniq(m, sizeof m, "bt");
    cf_uniq(id, sizeof id, "b");
    CF_PUT_MACHINE(k, m, LOOP_DEF);
    char p[1024];
    snprintf(p, sizeof p,
             "{\"ops\":[{\"op\":\"CREATE_INSTANCE\",\"params\":{\"instance_id\":\"%s\",\"machine\":"
             "\"%s\","
             "\"version\":1}},{\"op\":\"NOPE\"}]}",
             id, m);
    char *t = CF_CALL(k, "BATCH", p);
    ck_assert_msg(strstr(t, "\"code\":\"BAD_REQUEST\",\"message\":\"invalid request: unknown "
                            "variant `NOPE`, expected one of ") != NULL,
                  "%s", t);
    free(t);
    /* The earlier op stayed applied. */
    CF_OK(k, "GET_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id),
          cf_fmt("{\"ctx\":null,\"last_wal_offset\":$O,\"machine\":\"%s\",\"state\":\"s0\","
                 "\"version\":1}",
                 m));
    cf_close(k);
}
END_TEST

START_TEST(any_op_inside_batch)
{
    cf_conn *k = CF_OPEN();
    CF_OK(k, "BATCH",
          "{\"ops\":[{\"op\":\"HELLO\",\"params\":{\"protocol_version\":1}},{\"op\":\"INFO\"},"
          "{\"op\":\"BATCH\",\"params\":{\"ops\":[{\"op\":\"PING\"}]}},{\"op\":\"UNWATCH\","
          "\"params\":{\"subscription_id\":\"x\"}}]}",
          "{\"results\":[{\"error\":null,\"result\":{\"features\":[],\"protocol_version\":1,"
          "\"server_name\":\"rstmdb\","
          "\"server_version\":\"$V\",\"wire_mode\":\"binary_json\"},\"status\":\"ok\"},{"
          "\"error\":null,\"result\":"
          "{\"features\":[\"idempotency\",\"batch\",\"wal_read\"],\"max_batch_ops\":100,\"max_"
          "frame_bytes\":16777216,"
          "\"protocol_version\":1,\"server_name\":\"rstmdb\",\"server_version\":\"$V\"},"
          "\"status\":\"ok\"},"
          "{\"error\":null,\"result\":{\"results\":[{\"error\":null,\"result\":{\"pong\":true},"
          "\"status\":\"ok\"}]},"
          "\"status\":\"ok\"},{\"error\":null,\"result\":{\"removed\":false,\"subscription_id\":"
          "\"x\"},\"status\":\"ok\"}]}");
    /* BYE inside a batch: the BATCH response, then the close. */
    CF_OK(k, "BATCH", "{\"ops\":[{\"op\":\"BYE\"},{\"op\":\"PING\"}]}",
          "{\"results\":[{\"error\":null,\"result\":{\"goodbye\":true},\"status\":\"ok\"},{"
          "\"error\":null,\"result\":"
          "{\"pong\":true},\"status\":\"ok\"}]}");
    ck_assert_msg(rcpx_silent_close(k->rc, CF_CLOSE_TIMEOUT_MS, NULL), "after BATCH with BYE: %s",
                  rcpx_errstr(k->rc));
    cf_close(k);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conformance_batch");
    TCase *tc = cf_tcase("batch");
    tcase_add_unchecked_fixture(tc, setup, cf_teardown);
    tcase_add_test(tc, best_effort_results);
    tcase_add_test(tc, atomic_failure_keeps_earlier_ops);
    tcase_add_test(tc, batch_limits_and_malformed_ops);
    tcase_add_test(tc, unknown_op_after_applied_ops);
    tcase_add_test(tc, any_op_inside_batch);
    suite_add_tcase(s, tc);
    return cf_run(s);
}
