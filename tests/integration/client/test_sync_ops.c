/* test_sync_ops.c: every operation and every error code the server can
 * produce, through the blocking API and the typed views, against a real
 * rstmdb-testd on a free loopback port. */
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cJSON.h>

#include "rstmdb/rstmdb.h"
#include "spawn.h"

static spawned srv;

static void srv_start(const char *const extra[])
{
    ck_assert_msg(spawn_testd(&srv, extra) == 0, "cannot start rstmdb-testd at %s",
                  spawn_testd_path());
}

static void srv_stop(void)
{
    spawn_stop(&srv, 5000);
}

static rstmdb_sync *connect_ok(const rstmdb_options *o)
{
    rstmdb_sync *s = NULL;
    rstmdb_error *err = NULL;
    int rc = rstmdb_sync_connect(&s, srv.addr, o, &err);
    ck_assert_msg(rc == RSTMDB_OK, "connect: %s", err ? rstmdb_error_message(err) : "?");
    return s;
}

/* The server error code of a failed call (and frees the reply). */
/* `rp`, not the reply: the call in the first argument sets it, and argument
 * evaluation order is unspecified. */
static const char *code_of(int rc, rstmdb_reply **rp, char *buf, size_t cap)
{
    rstmdb_reply *r = *rp;
    *rp = NULL;
    ck_assert_int_eq(rc, RSTMDB_ERR_SERVER);
    const rstmdb_error *e = rstmdb_reply_error(r);
    ck_assert_ptr_nonnull(e);
    snprintf(buf, cap, "%s", rstmdb_error_code_str(e));
    rstmdb_reply_free(r);
    return buf;
}

static cJSON *order_definition(void)
{
    return cJSON_Parse(
        "{\"states\":[\"pending\",\"paid\",\"shipped\",\"delivered\"],"
        "\"initial\":\"pending\",\"transitions\":["
        "{\"from\":\"pending\",\"event\":\"PAY\",\"to\":\"paid\"},"
        "{\"from\":[\"paid\"],\"event\":\"SHIP\",\"to\":\"shipped\",\"guard\":\"ctx.ready\"},"
        "{\"from\":\"shipped\",\"event\":\"DELIVER\",\"to\":\"delivered\"}]}");
}

static void put_order(rstmdb_sync *s)
{
    cJSON *def = order_definition();
    rstmdb_put_machine_req pm = {.machine = "order", .version = 1, .definition = def};
    rstmdb_reply *r = NULL;
    ck_assert_int_eq(rstmdb_sync_put_machine(s, &pm, &r), RSTMDB_OK);
    rstmdb_reply_free(r);
    cJSON_Delete(def);
}

START_TEST(test_system_ops)
{
    srv_start(NULL);
    rstmdb_sync *s = connect_ok(NULL);
    rstmdb_reply *r = NULL;
    ck_assert_int_eq(rstmdb_sync_ping(s, &r), RSTMDB_OK);
    ck_assert_int_eq(rstmdb_reply_ping(r), RSTMDB_OK);
    rstmdb_reply_free(r);
    ck_assert_int_eq(rstmdb_sync_info(s, &r), RSTMDB_OK);
    rstmdb_info_result info;
    ck_assert_int_eq(rstmdb_reply_info(r, &info), RSTMDB_OK);
    ck_assert_uint_eq(info.protocol_version, 1);
    ck_assert_uint_eq(info.max_batch_ops, 100);
    ck_assert_uint_eq(info.max_frame_bytes, 16777216);
    ck_assert(cJSON_IsArray(info.features));
    rstmdb_reply_free(r);
    const cJSON *hello = rstmdb_client_hello(rstmdb_sync_client(s));
    ck_assert_str_eq(cJSON_GetObjectItem(hello, "wire_mode")->valuestring, "binary_json");
    /* The raw call reaches ops this library has no typed form for. */
    ck_assert_int_eq(rstmdb_sync_call_json(s, "PING", "{\"x\":[1,2]}", 11, &r), RSTMDB_OK);
    size_t n = 0;
    const char *raw = rstmdb_reply_result_raw(r, &n);
    ck_assert_int_eq((int)n, 13);
    ck_assert(memcmp(raw, "{\"pong\":true}", n) == 0);
    rstmdb_reply_free(r);
    rstmdb_sync_close(s);
    srv_stop();
}
END_TEST

START_TEST(test_machine_ops_and_errors)
{
    char code[64];
    srv_start((const char *const[]){"--max-machine-versions", "2", NULL});
    rstmdb_sync *s = connect_ok(NULL);
    cJSON *def = order_definition();
    rstmdb_put_machine_req pm = {.machine = "order", .version = 1, .definition = def};
    rstmdb_reply *r = NULL;
    ck_assert_int_eq(rstmdb_sync_put_machine(s, &pm, &r), RSTMDB_OK);
    rstmdb_put_machine_result pr;
    ck_assert_int_eq(rstmdb_reply_put_machine(r, &pr), RSTMDB_OK);
    ck_assert(pr.created);
    ck_assert_str_eq(pr.machine, "order");
    ck_assert_uint_eq(pr.version, 1);
    ck_assert_uint_eq(strlen(pr.stored_checksum), 8);
    char checksum[16];
    snprintf(checksum, sizeof(checksum), "%s", pr.stored_checksum);
    rstmdb_reply_free(r);
    /* Identical re-PUT: created false, same checksum. */
    ck_assert_int_eq(rstmdb_sync_put_machine(s, &pm, &r), RSTMDB_OK);
    ck_assert_int_eq(rstmdb_reply_put_machine(r, &pr), RSTMDB_OK);
    ck_assert(!pr.created);
    ck_assert_str_eq(pr.stored_checksum, checksum);
    rstmdb_reply_free(r);
    /* Different definition, same version. */
    cJSON *def2 = cJSON_Parse("{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[]}");
    rstmdb_put_machine_req pm2 = {.machine = "order", .version = 1, .definition = def2};
    ck_assert_str_eq(code_of(rstmdb_sync_put_machine(s, &pm2, &r), &r, code, sizeof(code)),
                     "MACHINE_VERSION_EXISTS");
    pm2.version = 2;
    ck_assert_int_eq(rstmdb_sync_put_machine(s, &pm2, &r), RSTMDB_OK);
    rstmdb_reply_free(r);
    pm2.version = 3;
    ck_assert_str_eq(code_of(rstmdb_sync_put_machine(s, &pm2, &r), &r, code, sizeof(code)),
                     "MACHINE_VERSION_LIMIT_EXCEEDED");
    /* An invalid definition is INTERNAL_ERROR, retryable (PROTOCOL.md §6.3). */
    cJSON *bad = cJSON_Parse("{\"states\":[\"a\"],\"initial\":\"b\",\"transitions\":[]}");
    rstmdb_put_machine_req pm3 = {.machine = "bad", .version = 1, .definition = bad};
    int rc = rstmdb_sync_put_machine(s, &pm3, &r);
    ck_assert(rstmdb_is_retryable(rstmdb_reply_error(r)));
    ck_assert_str_eq(code_of(rc, &r, code, sizeof(code)), "INTERNAL_ERROR");
    /* GET_MACHINE: normalised definition. */
    rstmdb_get_machine_req gm = {.machine = "order", .version = 1};
    ck_assert_int_eq(rstmdb_sync_get_machine(s, &gm, &r), RSTMDB_OK);
    rstmdb_machine_result mr;
    ck_assert_int_eq(rstmdb_reply_get_machine(r, &mr), RSTMDB_OK);
    ck_assert_str_eq(mr.checksum, checksum);
    ck_assert_str_eq(mr.initial, "pending");
    ck_assert_int_eq(cJSON_GetArraySize(mr.states), 4);
    rstmdb_reply_free(r);
    gm.version = 9;
    rc = rstmdb_sync_get_machine(s, &gm, &r);
    ck_assert(rstmdb_is_not_found(rstmdb_reply_error(r)));
    ck_assert_str_eq(code_of(rc, &r, code, sizeof(code)), "MACHINE_NOT_FOUND");
    /* LIST_MACHINES */
    ck_assert_int_eq(rstmdb_sync_list_machines(s, &r), RSTMDB_OK);
    rstmdb_machine_list_result ml;
    ck_assert_int_eq(rstmdb_reply_list_machines(r, &ml), RSTMDB_OK);
    ck_assert_uint_eq(ml.count, 1);
    const char *name = NULL;
    const cJSON *versions = NULL;
    ck_assert_int_eq(rstmdb_machine_list_item(&ml, 0, &name, &versions), RSTMDB_OK);
    ck_assert_str_eq(name, "order");
    ck_assert_int_eq(cJSON_GetArraySize(versions), 2);
    rstmdb_reply_free(r);
    /* BAD_REQUEST: missing fields through the raw call. */
    ck_assert_str_eq(
        code_of(rstmdb_sync_call_json(s, "GET_MACHINE", "{}", 2, &r), &r, code, sizeof(code)),
        "BAD_REQUEST");
    /* Typed requests refuse a missing required field before sending. */
    rstmdb_get_machine_req empty = {0};
    ck_assert_int_eq(rstmdb_sync_get_machine(s, &empty, &r), RSTMDB_ERR_INVALID);
    ck_assert_ptr_null(r);
    cJSON_Delete(def);
    cJSON_Delete(def2);
    cJSON_Delete(bad);
    rstmdb_sync_close(s);
    srv_stop();
}
END_TEST

START_TEST(test_instance_ops_and_errors)
{
    char code[64];
    srv_start(NULL);
    rstmdb_sync *s = connect_ok(NULL);
    put_order(s);
    rstmdb_reply *r = NULL;
    cJSON *ctx = cJSON_Parse("{\"customer\":\"alice\",\"total\":99.99}");
    rstmdb_create_instance_req ci = {
        .machine = "order", .version = 1, .instance_id = "order-001", .initial_ctx = ctx};
    ck_assert_int_eq(rstmdb_sync_create_instance(s, &ci, &r), RSTMDB_OK);
    rstmdb_create_instance_result cr;
    ck_assert_int_eq(rstmdb_reply_create_instance(r, &cr), RSTMDB_OK);
    ck_assert_str_eq(cr.instance_id, "order-001");
    ck_assert_str_eq(cr.state, "pending");
    ck_assert_uint_ge(cr.wal_offset, 1099511627776ull);
    uint64_t created_at = cr.wal_offset;
    rstmdb_reply_free(r);
    ck_assert_str_eq(code_of(rstmdb_sync_create_instance(s, &ci, &r), &r, code, sizeof(code)),
                     "INSTANCE_EXISTS");
    rstmdb_create_instance_req ci2 = {.machine = "nope", .version = 1, .instance_id = "x"};
    ck_assert_str_eq(code_of(rstmdb_sync_create_instance(s, &ci2, &r), &r, code, sizeof(code)),
                     "MACHINE_NOT_FOUND");
    /* No instance_id: the server makes one; NULL initial_ctx goes out as {}. */
    rstmdb_create_instance_req ci3 = {.machine = "order", .version = 1};
    ck_assert_int_eq(rstmdb_sync_create_instance(s, &ci3, &r), RSTMDB_OK);
    ck_assert_int_eq(rstmdb_reply_create_instance(r, &cr), RSTMDB_OK);
    char generated[64];
    snprintf(generated, sizeof(generated), "%s", cr.instance_id);
    ck_assert_uint_eq(strlen(generated), 36);
    rstmdb_reply_free(r);
    rstmdb_get_instance_req gi = {.instance_id = generated};
    ck_assert_int_eq(rstmdb_sync_get_instance(s, &gi, &r), RSTMDB_OK);
    rstmdb_instance_result ir;
    ck_assert_int_eq(rstmdb_reply_get_instance(r, &ir), RSTMDB_OK);
    ck_assert(cJSON_IsObject(ir.ctx));
    rstmdb_reply_free(r);

    /* APPLY_EVENT and its errors. */
    cJSON *payload = cJSON_Parse("{\"payment_id\":\"pay-123\"}");
    rstmdb_apply_event_req ae = {.instance_id = "order-001",
                                 .event = "PAY",
                                 .payload = payload,
                                 .event_id = "e1",
                                 .idempotency_key = "k1"};
    ck_assert_int_eq(rstmdb_sync_apply_event(s, &ae, &r), RSTMDB_OK);
    rstmdb_apply_result ar;
    ck_assert_int_eq(rstmdb_reply_apply_event(r, &ar), RSTMDB_OK);
    ck_assert(ar.applied);
    ck_assert_str_eq(ar.from_state, "pending");
    ck_assert_str_eq(ar.to_state, "paid");
    ck_assert_str_eq(ar.event_id, "e1");
    ck_assert_str_eq(cJSON_GetObjectItem(ar.ctx, "payment_id")->valuestring, "pay-123");
    ck_assert_uint_gt(ar.wal_offset, created_at);
    uint64_t paid_at = ar.wal_offset;
    rstmdb_reply_free(r);
    /* Idempotent replay: same result, applied stays true. */
    ck_assert_int_eq(rstmdb_sync_apply_event(s, &ae, &r), RSTMDB_OK);
    ck_assert_int_eq(rstmdb_reply_apply_event(r, &ar), RSTMDB_OK);
    ck_assert(ar.applied);
    ck_assert_uint_eq(ar.wal_offset, paid_at);
    rstmdb_reply_free(r);
    rstmdb_apply_event_req bad_ev = {.instance_id = "order-001", .event = "DELIVER"};
    int rc = rstmdb_sync_apply_event(s, &bad_ev, &r);
    ck_assert(rstmdb_is_invalid_transition(rstmdb_reply_error(r)));
    ck_assert_str_eq(code_of(rc, &r, code, sizeof(code)), "INVALID_TRANSITION");
    rstmdb_apply_event_req ship = {.instance_id = "order-001", .event = "SHIP"};
    ck_assert_str_eq(code_of(rstmdb_sync_apply_event(s, &ship, &r), &r, code, sizeof(code)),
                     "GUARD_FAILED");
    rstmdb_apply_event_req conflict = {
        .instance_id = "order-001", .event = "SHIP", .expected_state = "pending"};
    rc = rstmdb_sync_apply_event(s, &conflict, &r);
    ck_assert(rstmdb_is_conflict(rstmdb_reply_error(r)));
    ck_assert_str_eq(code_of(rc, &r, code, sizeof(code)), "CONFLICT");
    rstmdb_apply_event_req conflict2 = {.instance_id = "order-001",
                                        .event = "SHIP",
                                        .has_expected_wal_offset = true,
                                        .expected_wal_offset = paid_at + 1};
    ck_assert_str_eq(code_of(rstmdb_sync_apply_event(s, &conflict2, &r), &r, code, sizeof(code)),
                     "CONFLICT");
    rstmdb_apply_event_req ghost = {.instance_id = "ghost", .event = "PAY"};
    rc = rstmdb_sync_apply_event(s, &ghost, &r);
    ck_assert(rstmdb_is_instance_not_found(rstmdb_reply_error(r)));
    ck_assert_str_eq(code_of(rc, &r, code, sizeof(code)), "INSTANCE_NOT_FOUND");
    /* The guard passes once ctx.ready is set (payload merges after the guard). */
    cJSON *ready = cJSON_Parse("{\"ready\":true}");
    rstmdb_apply_event_req set_ready = {
        .instance_id = "order-001", .event = "SHIP", .payload = ready};
    ck_assert_str_eq(code_of(rstmdb_sync_apply_event(s, &set_ready, &r), &r, code, sizeof(code)),
                     "GUARD_FAILED");

    /* GET / LIST / DELETE / SNAPSHOT */
    rstmdb_get_instance_req g1 = {.instance_id = "order-001"};
    ck_assert_int_eq(rstmdb_sync_get_instance(s, &g1, &r), RSTMDB_OK);
    ck_assert_int_eq(rstmdb_reply_get_instance(r, &ir), RSTMDB_OK);
    ck_assert_str_eq(ir.state, "paid");
    ck_assert_str_eq(ir.machine, "order");
    ck_assert_uint_eq(ir.version, 1);
    ck_assert_str_eq(ir.last_event_id, "e1");
    ck_assert_uint_eq(ir.last_wal_offset, paid_at);
    rstmdb_reply_free(r);
    rstmdb_list_instances_req li = {
        .machine = "order", .state = "paid", .has_limit = true, .limit = 50};
    ck_assert_int_eq(rstmdb_sync_list_instances(s, &li, &r), RSTMDB_OK);
    rstmdb_instance_list_result il;
    ck_assert_int_eq(rstmdb_reply_list_instances(r, &il), RSTMDB_OK);
    ck_assert_uint_eq(il.count, 1);
    ck_assert_uint_eq(il.total, 1);
    ck_assert(!il.has_more);
    rstmdb_instance_summary sum;
    ck_assert_int_eq(rstmdb_instance_list_item(&il, 0, &sum), RSTMDB_OK);
    ck_assert_str_eq(sum.id, "order-001");
    ck_assert_str_eq(sum.state, "paid");
    ck_assert_uint_gt(sum.created_at, 0);
    rstmdb_reply_free(r);
    ck_assert_int_eq(rstmdb_sync_list_instances(s, NULL, &r), RSTMDB_OK);
    ck_assert_int_eq(rstmdb_reply_list_instances(r, &il), RSTMDB_OK);
    ck_assert_uint_eq(il.total, 2);
    rstmdb_reply_free(r);
    rstmdb_snapshot_instance_req sn = {.instance_id = "order-001"};
    ck_assert_int_eq(rstmdb_sync_snapshot_instance(s, &sn, &r), RSTMDB_OK);
    rstmdb_snapshot_result sr;
    ck_assert_int_eq(rstmdb_reply_snapshot_instance(r, &sr), RSTMDB_OK);
    ck_assert(strncmp(sr.snapshot_id, "snap-", 5) == 0);
    ck_assert_uint_eq(sr.wal_offset, paid_at);
    rstmdb_reply_free(r);
    rstmdb_delete_instance_req di = {.instance_id = "order-001"};
    ck_assert_int_eq(rstmdb_sync_delete_instance(s, &di, &r), RSTMDB_OK);
    rstmdb_delete_instance_result dr;
    ck_assert_int_eq(rstmdb_reply_delete_instance(r, &dr), RSTMDB_OK);
    ck_assert(dr.deleted);
    ck_assert_str_eq(dr.instance_id, "order-001");
    rstmdb_reply_free(r);
    rstmdb_delete_instance_req dghost = {.instance_id = "ghost"};
    ck_assert_str_eq(code_of(rstmdb_sync_delete_instance(s, &dghost, &r), &r, code, sizeof(code)),
                     "INSTANCE_NOT_FOUND");
    ck_assert_int_eq(rstmdb_sync_list_instances(s, NULL, &r), RSTMDB_OK);
    ck_assert_int_eq(rstmdb_reply_list_instances(r, &il), RSTMDB_OK);
    ck_assert_uint_eq(il.total, 1); /* deleted ones are excluded */
    rstmdb_reply_free(r);
    cJSON_Delete(ctx);
    cJSON_Delete(payload);
    cJSON_Delete(ready);
    rstmdb_sync_close(s);
    srv_stop();
}
END_TEST

START_TEST(test_batch_wal_compact)
{
    char code[64];
    srv_start(NULL);
    rstmdb_sync *s = connect_ok(NULL);
    put_order(s);
    rstmdb_reply *r = NULL;
    rstmdb_create_instance_req ci = {.machine = "order", .version = 1, .instance_id = "b-1"};
    rstmdb_apply_event_req ae = {.instance_id = "b-1", .event = "PAY"};
    rstmdb_apply_event_req bad = {.instance_id = "nope", .event = "PAY"};
    cJSON *p1 = rstmdb_params_create_instance(&ci);
    cJSON *p2 = rstmdb_params_apply_event(&ae);
    cJSON *p3 = rstmdb_params_apply_event(&bad);
    ck_assert_ptr_nonnull(p1);
    rstmdb_batch_op ops[] = {
        {"CREATE_INSTANCE", p1}, {"APPLY_EVENT", p2}, {"APPLY_EVENT", p3}, {"PING", NULL}};
    rstmdb_batch_req br = {.mode = RSTMDB_BATCH_BEST_EFFORT, .ops = ops, .nops = 4};
    ck_assert_int_eq(rstmdb_sync_batch(s, &br, &r), RSTMDB_OK);
    rstmdb_batch_result bres;
    ck_assert_int_eq(rstmdb_reply_batch(r, &bres), RSTMDB_OK);
    ck_assert_uint_eq(bres.count, 4);
    rstmdb_batch_item it;
    ck_assert_int_eq(rstmdb_batch_result_item(&bres, 0, &it), RSTMDB_OK);
    ck_assert(it.ok);
    ck_assert_str_eq(cJSON_GetObjectItem(it.result, "state")->valuestring, "pending");
    ck_assert_int_eq(rstmdb_batch_result_item(&bres, 1, &it), RSTMDB_OK);
    ck_assert_str_eq(cJSON_GetObjectItem(it.result, "to_state")->valuestring, "paid");
    ck_assert_int_eq(rstmdb_batch_result_item(&bres, 2, &it), RSTMDB_OK);
    ck_assert(!it.ok);
    ck_assert_str_eq(it.error_code, "INSTANCE_NOT_FOUND");
    ck_assert_int_eq(rstmdb_batch_result_item(&bres, 3, &it), RSTMDB_OK);
    ck_assert(it.ok);
    rstmdb_reply_free(r);
    /* Atomic: the failing op fails the whole BATCH with BAD_REQUEST. */
    rstmdb_batch_op ops2[] = {{"APPLY_EVENT", p3}};
    rstmdb_batch_req br2 = {.mode = RSTMDB_BATCH_ATOMIC, .ops = ops2, .nops = 1};
    ck_assert_str_eq(code_of(rstmdb_sync_batch(s, &br2, &r), &r, code, sizeof(code)),
                     "BAD_REQUEST");
    cJSON_Delete(p1);
    cJSON_Delete(p2);
    cJSON_Delete(p3);

    /* WAL_READ pages with limit/next_offset; offsets are packed (>= 2^40). */
    rstmdb_wal_read_req wr = {.from_offset = 0, .has_limit = true, .limit = 2};
    ck_assert_int_eq(rstmdb_sync_wal_read(s, &wr, &r), RSTMDB_OK);
    rstmdb_wal_read_result wres;
    ck_assert_int_eq(rstmdb_reply_wal_read(r, &wres), RSTMDB_OK);
    ck_assert_uint_eq(wres.count, 2);
    ck_assert(wres.has_next);
    rstmdb_wal_record rec;
    ck_assert_int_eq(rstmdb_wal_read_record(&wres, 0, &rec), RSTMDB_OK);
    ck_assert_uint_eq(rec.offset, 1099511627776ull);
    ck_assert_uint_eq(rec.sequence, 1);
    ck_assert_str_eq(cJSON_GetObjectItem(rec.entry, "type")->valuestring, "put_machine");
    uint64_t next = wres.next_offset;
    rstmdb_reply_free(r);
    wr.from_offset = next;
    wr.limit = 100;
    ck_assert_int_eq(rstmdb_sync_wal_read(s, &wr, &r), RSTMDB_OK);
    ck_assert_int_eq(rstmdb_reply_wal_read(r, &wres), RSTMDB_OK);
    ck_assert_uint_eq(wres.count, 1); /* put, create, apply */
    rstmdb_reply_free(r);
    wr.limit = 0;
    ck_assert_int_eq(rstmdb_sync_wal_read(s, &wr, &r), RSTMDB_OK);
    ck_assert_int_eq(rstmdb_reply_wal_read(r, &wres), RSTMDB_OK);
    ck_assert_uint_eq(wres.count, 0);
    ck_assert(!wres.has_next);
    rstmdb_reply_free(r);
    ck_assert_int_eq(rstmdb_sync_wal_stats(s, &r), RSTMDB_OK);
    rstmdb_wal_stats_result ws;
    ck_assert_int_eq(rstmdb_reply_wal_stats(r, &ws), RSTMDB_OK);
    ck_assert_uint_eq(ws.entry_count, 3);
    ck_assert_uint_gt(ws.latest_offset, next);
    rstmdb_reply_free(r);
    rstmdb_compact_req cq = {.force_snapshot = true};
    ck_assert_int_eq(rstmdb_sync_compact(s, &cq, &r), RSTMDB_OK);
    rstmdb_compact_result cres;
    ck_assert_int_eq(rstmdb_reply_compact(r, &cres), RSTMDB_OK);
    ck_assert_uint_ge(cres.wal_segments, 1);
    rstmdb_reply_free(r);
    ck_assert_int_eq(rstmdb_sync_compact(s, NULL, &r), RSTMDB_OK);
    rstmdb_reply_free(r);
    rstmdb_sync_close(s);
    srv_stop();
}
END_TEST

START_TEST(test_flush_all)
{
    char code[64];
    srv_start((const char *const[]){"--allow-flush-all", NULL});
    rstmdb_sync *s = connect_ok(NULL);
    put_order(s);
    rstmdb_reply *r = NULL;
    ck_assert_int_eq(rstmdb_sync_flush_all(s, &r), RSTMDB_OK);
    rstmdb_flush_all_result fr;
    ck_assert_int_eq(rstmdb_reply_flush_all(r, &fr), RSTMDB_OK);
    ck_assert(fr.flushed);
    ck_assert_uint_eq(fr.machines_removed, 1);
    rstmdb_reply_free(r);
    rstmdb_sync_close(s);
    srv_stop();
    /* 0.3 knows FLUSH_ALL: disabled, it is a BAD_REQUEST and the connection stays. */
    srv_start(NULL);
    s = connect_ok(NULL);
    ck_assert_str_eq(code_of(rstmdb_sync_flush_all(s, &r), &r, code, sizeof(code)), "BAD_REQUEST");
    ck_assert_int_eq(rstmdb_sync_ping(s, &r), RSTMDB_OK);
    rstmdb_reply_free(r);
    rstmdb_sync_close(s);
    srv_stop();
    /* The 21-op server (0.1.1) does not know FLUSH_ALL and closes the connection. */
    srv_start((const char *const[]){"--compat", "0.1", NULL});
    s = connect_ok(NULL);
    int rc = rstmdb_sync_flush_all(s, &r);
    ck_assert_int_eq(rc, RSTMDB_ERR_CLOSED);
    ck_assert(rstmdb_reply_was_sent(r));
    rstmdb_reply_free(r);
    ck_assert_int_eq(rstmdb_sync_state(s), RSTMDB_CONN_CLOSED);
    ck_assert_int_eq(rstmdb_sync_ping(s, &r), RSTMDB_ERR_CLOSED);
    ck_assert_ptr_null(r);
    rstmdb_sync_close(s);
    srv_stop();
}
END_TEST

START_TEST(test_auth)
{
    char code[64];
    srv_start((const char *const[]){"--token", "my-secret-token", NULL});
    /* No token: PING passes, INFO is UNAUTHORIZED. */
    rstmdb_sync *s = connect_ok(NULL);
    rstmdb_reply *r = NULL;
    ck_assert_int_eq(rstmdb_sync_ping(s, &r), RSTMDB_OK);
    rstmdb_reply_free(r);
    ck_assert_str_eq(code_of(rstmdb_sync_info(s, &r), &r, code, sizeof(code)), "UNAUTHORIZED");
    rstmdb_sync_close(s);
    /* The right token. */
    rstmdb_options *o;
    ck_assert_int_eq(rstmdb_options_new(&o), RSTMDB_OK);
    ck_assert_int_eq(rstmdb_options_set_auth(o, "my-secret-token"), RSTMDB_OK);
    s = connect_ok(o);
    ck_assert_int_eq(rstmdb_sync_info(s, &r), RSTMDB_OK);
    rstmdb_reply_free(r);
    rstmdb_sync_close(s);
    /* A wrong token fails the connect with the server's AUTH_FAILED. */
    ck_assert_int_eq(rstmdb_options_set_auth(o, "wrong"), RSTMDB_OK);
    rstmdb_error *err = NULL;
    s = NULL;
    ck_assert_int_eq(rstmdb_sync_connect(&s, srv.addr, o, &err), RSTMDB_ERR_SERVER);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(rstmdb_error_code(err), RSTMDB_SC_AUTH_FAILED);
    ck_assert(!rstmdb_is_retryable(err));
    rstmdb_error_free(err);
    rstmdb_options_free(o);
    srv_stop();
}
END_TEST

START_TEST(test_subscription_events_in_order)
{
    enum { N = 50 };
    srv_start(NULL);
    rstmdb_sync *s = connect_ok(NULL);
    cJSON *def = cJSON_Parse("{\"states\":[\"a\",\"b\"],\"initial\":\"a\",\"transitions\":["
                             "{\"from\":\"a\",\"event\":\"GO\",\"to\":\"b\"},"
                             "{\"from\":\"b\",\"event\":\"BACK\",\"to\":\"a\"}]}");
    rstmdb_put_machine_req pm = {.machine = "w", .version = 1, .definition = def};
    rstmdb_reply *r = NULL;
    ck_assert_int_eq(rstmdb_sync_put_machine(s, &pm, &r), RSTMDB_OK);
    rstmdb_reply_free(r);
    cJSON_Delete(def);
    rstmdb_create_instance_req ci = {.machine = "w", .version = 1, .instance_id = "w-1"};
    ck_assert_int_eq(rstmdb_sync_create_instance(s, &ci, &r), RSTMDB_OK);
    rstmdb_reply_free(r);

    const char *machines[] = {"w"};
    const char *to_states[] = {"b"};
    rstmdb_watch_all_req wa = {
        .machines = machines, .nmachines = 1, .to_states = to_states, .nto_states = 1};
    rstmdb_sync_sub *all = NULL;
    ck_assert_int_eq(rstmdb_sync_watch_all(s, &wa, &all, &r), RSTMDB_OK);
    rstmdb_watch_all_result war;
    ck_assert_int_eq(rstmdb_reply_watch_all(r, &war), RSTMDB_OK);
    ck_assert(strncmp(war.subscription_id, "sub-", 4) == 0);
    ck_assert_str_eq(rstmdb_sync_sub_id(all), war.subscription_id);
    rstmdb_reply_free(r);
    rstmdb_watch_instance_req wi = {.instance_id = "w-1", .exclude_ctx = true};
    rstmdb_sync_sub *one = NULL;
    ck_assert_int_eq(rstmdb_sync_watch_instance(s, &wi, &one, &r), RSTMDB_OK);
    rstmdb_watch_instance_result wir;
    ck_assert_int_eq(rstmdb_reply_watch_instance(r, &wir), RSTMDB_OK);
    ck_assert_str_eq(wir.current_state, "a");
    rstmdb_reply_free(r);
    rstmdb_watch_instance_req wghost = {.instance_id = "ghost"};
    rstmdb_sync_sub *none = NULL;
    ck_assert_int_eq(rstmdb_sync_watch_instance(s, &wghost, &none, &r), RSTMDB_ERR_SERVER);
    ck_assert_ptr_null(none);
    ck_assert_int_eq(rstmdb_error_code(rstmdb_reply_error(r)), RSTMDB_SC_INSTANCE_NOT_FOUND);
    rstmdb_reply_free(r);

    /* Events buffer while the caller is busy with other calls. */
    uint64_t offsets[2 * N];
    for (int i = 0; i < 2 * N; i++) {
        rstmdb_apply_event_req ae = {.instance_id = "w-1", .event = i % 2 ? "BACK" : "GO"};
        ck_assert_int_eq(rstmdb_sync_apply_event(s, &ae, &r), RSTMDB_OK);
        rstmdb_apply_result ar;
        ck_assert_int_eq(rstmdb_reply_apply_event(r, &ar), RSTMDB_OK);
        offsets[i] = ar.wal_offset;
        rstmdb_reply_free(r);
    }
    /* WATCH_ALL (to_states b): only the GO events, in order. */
    for (int i = 0; i < N; i++) {
        rstmdb_event *ev = NULL;
        ck_assert_int_eq(rstmdb_sync_next_event(s, all, 5000, &ev), RSTMDB_OK);
        ck_assert_str_eq(rstmdb_event_name(ev), "GO");
        ck_assert_uint_eq(rstmdb_event_wal_offset(ev), offsets[2 * i]);
        ck_assert_ptr_nonnull(rstmdb_event_ctx(ev));
        rstmdb_event_free(ev);
    }
    rstmdb_event *ev = NULL;
    ck_assert_int_eq(rstmdb_sync_next_event(s, all, 0, &ev), RSTMDB_ERR_TIMEOUT);
    /* WATCH_INSTANCE without ctx: every event, in order. */
    for (int i = 0; i < 2 * N; i++) {
        ck_assert_int_eq(rstmdb_sync_next_event(s, one, 5000, &ev), RSTMDB_OK);
        ck_assert_uint_eq(rstmdb_event_wal_offset(ev), offsets[i]);
        ck_assert_str_eq(rstmdb_event_instance_id(ev), "w-1");
        ck_assert_str_eq(rstmdb_event_machine(ev), "w");
        ck_assert_uint_eq(rstmdb_event_version(ev), 1);
        ck_assert_str_eq(rstmdb_event_to_state(ev), i % 2 ? "a" : "b");
        ck_assert_ptr_null(rstmdb_event_ctx(ev));
        ck_assert(cJSON_IsNull(rstmdb_event_payload(ev)));
        size_t n = 0;
        const char *body = rstmdb_event_body(ev, &n);
        ck_assert(strstr(body, "subscription_id") == NULL);
        ck_assert(strstr(body, "\"type\"") == NULL);
        ck_assert(strncmp(body, "{\"instance_id\":\"w-1\"", 20) == 0);
        rstmdb_event_free(ev);
    }
    ck_assert_int_eq(rstmdb_sync_unwatch(s, one), RSTMDB_OK);
    ck_assert_int_eq(rstmdb_sync_unwatch(s, all), RSTMDB_OK);
    rstmdb_sync_close(s);
    srv_stop();
}
END_TEST

START_TEST(test_event_buffer_overflow_ends_subscription)
{
    srv_start(NULL);
    rstmdb_options *o;
    ck_assert_int_eq(rstmdb_options_new(&o), RSTMDB_OK);
    ck_assert_int_eq(rstmdb_options_set_max_events(o, 3), RSTMDB_OK);
    rstmdb_sync *s = connect_ok(o);
    rstmdb_options_free(o);
    cJSON *def = cJSON_Parse("{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":["
                             "{\"from\":\"a\",\"event\":\"LOOP\",\"to\":\"a\"}]}");
    rstmdb_put_machine_req pm = {.machine = "l", .version = 1, .definition = def};
    rstmdb_reply *r = NULL;
    ck_assert_int_eq(rstmdb_sync_put_machine(s, &pm, &r), RSTMDB_OK);
    rstmdb_reply_free(r);
    cJSON_Delete(def);
    rstmdb_create_instance_req ci = {.machine = "l", .version = 1, .instance_id = "l-1"};
    ck_assert_int_eq(rstmdb_sync_create_instance(s, &ci, NULL), RSTMDB_OK);
    rstmdb_sync_sub *sub = NULL;
    ck_assert_int_eq(rstmdb_sync_watch_all(s, NULL, &sub, NULL), RSTMDB_OK);
    for (int i = 0; i < 6; i++) {
        rstmdb_apply_event_req ae = {.instance_id = "l-1", .event = "LOOP"};
        ck_assert_int_eq(rstmdb_sync_apply_event(s, &ae, NULL), RSTMDB_OK);
    }
    rstmdb_event *ev = NULL;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(rstmdb_sync_next_event(s, sub, 5000, &ev), RSTMDB_OK);
        rstmdb_event_free(ev);
    }
    ck_assert_int_eq(rstmdb_sync_next_event(s, sub, 5000, &ev), RSTMDB_ERR_PROTOCOL);
    ck_assert(strstr(rstmdb_error_message(rstmdb_sync_sub_error(sub)), "buffer full") != NULL);
    ck_assert_int_eq(rstmdb_sync_unwatch(s, sub), RSTMDB_OK);
    ck_assert_int_eq(rstmdb_sync_ping(s, NULL), RSTMDB_OK);
    rstmdb_sync_close(s);
    srv_stop();
}
END_TEST

START_TEST(test_connect_failures)
{
    rstmdb_sync *s = NULL;
    rstmdb_error *err = NULL;
    /* A port nobody listens on: bound, never listened, so connects are refused. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
    ck_assert_int_eq(rstmdb_sync_connect(&s, addr, NULL, &err), RSTMDB_ERR_IO);
    close(fd);
    ck_assert_ptr_nonnull(err);
    ck_assert(rstmdb_is_retryable(err));
    rstmdb_error_free(err);
    err = NULL;
    ck_assert_int_eq(rstmdb_sync_connect(&s, "bad address", NULL, &err), RSTMDB_ERR_INVALID);
    rstmdb_error_free(err);
    ck_assert_ptr_null(s);
}
END_TEST

/* Runs after a failed test too (CK_FORK=no): no server outlives its test. */
static void teardown(void)
{
    if (srv.pid > 0)
        spawn_stop(&srv, 2000);
}

static Suite *suite(void)
{
    Suite *s = suite_create("client_sync_ops");
    TCase *tc = tcase_create("ops");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_system_ops);
    tcase_add_test(tc, test_machine_ops_and_errors);
    tcase_add_test(tc, test_instance_ops_and_errors);
    tcase_add_test(tc, test_batch_wal_compact);
    tcase_add_test(tc, test_flush_all);
    tcase_add_test(tc, test_auth);
    tcase_add_test(tc, test_subscription_events_in_order);
    tcase_add_test(tc, test_event_buffer_overflow_ends_subscription);
    tcase_add_test(tc, test_connect_failures);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
