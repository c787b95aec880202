/* test_instances.c: CREATE_INSTANCE, GET_INSTANCE, LIST_INSTANCES,
 * DELETE_INSTANCE and SNAPSHOT_INSTANCE (PROTOCOL.md §4.4-4.7, §4.10, §8.4).
 */
#include "conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* s0 -GO-> s1 -GO-> s2, s2 -BACK-> s0. */
#define LOOP_DEF                                                                               \
    "{\"states\":[\"s0\",\"s1\",\"s2\"],\"initial\":\"s0\",\"transitions\":[{\"from\":\"s0\"," \
    "\"event\":\"GO\",\"to\":\"s1\"},{\"from\":\"s1\",\"event\":\"GO\",\"to\":\"s2\"},"        \
    "{\"from\":\"s2\",\"event\":\"BACK\",\"to\":\"s0\"}]}"

static void setup(void)
{
    cf_setup(0);
}

START_TEST(create_with_id_and_get)
{
    cf_conn *k = CF_OPEN();
    char m[96], id[96];
    cf_uniq(m, sizeof m, "order");
    cf_uniq(id, sizeof id, "o");
    CF_PUT_MACHINE(k, m, CF_ORDER_DEF);
    cf_caps c;
    CF_OKC(k, "CREATE_INSTANCE",
           cf_fmt("{\"instance_id\":\"%s\",\"machine\":\"%s\",\"version\":1,\"initial_ctx\":"
                  "{\"zeta\":1,\"alpha\":{\"k\":\"v\"}},\"idempotency_key\":\"k1\"}",
                  id, m),
           cf_fmt("{\"instance_id\":\"%s\",\"state\":\"created\",\"wal_offset\":$O}", id), &c);
    char off[256];
    snprintf(off, sizeof off, "%s", c.v[0]);
    /* No instance_id, no timestamps, no last_event_id; keys sorted at every depth. */
    CF_OK(k, "GET_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id),
          cf_fmt("{\"ctx\":{\"alpha\":{\"k\":\"v\"},\"zeta\":1},\"last_wal_offset\":%s,\"machine\":"
                 "\"%s\","
                 "\"state\":\"created\",\"version\":1}",
                 off, m));
    CF_OK(k, "GET_INSTANCE", cf_fmt("[\"%s\"]", id), "{\"ctx\":{$*");
    CF_OK(k, "GET_INSTANCE", cf_fmt("{\"instance_id\":\"%s\",\"extra\":1}", id), "{\"ctx\":{$*");
    cf_close(k);
}
END_TEST

START_TEST(create_without_id_uuid_and_null_ctx)
{
    cf_conn *k = CF_OPEN();
    char m[96];
    cf_uniq(m, sizeof m, "order");
    CF_PUT_MACHINE(k, m, CF_ORDER_DEF);
    cf_caps a, b;
    /* Keys on CREATE do nothing: the same key twice makes two instances. */
    const char *p = cf_fmt("{\"machine\":\"%s\",\"version\":1,\"idempotency_key\":\"same\"}", m);
    CF_OKC(k, "CREATE_INSTANCE", p,
           "{\"instance_id\":\"$U\",\"state\":\"created\",\"wal_offset\":$O}", &a);
    CF_OKC(k, "CREATE_INSTANCE", p,
           "{\"instance_id\":\"$U\",\"state\":\"created\",\"wal_offset\":$O}", &b);
    ck_assert_str_ne(a.v[0], b.v[0]);
    ck_assert_msg(cf_u64(b.v[1]) > cf_u64(a.v[1]), "offsets must increase: %s then %s", a.v[1],
                  b.v[1]);
    /* instance_id null counts as omitted. */
    CF_OK(k, "CREATE_INSTANCE",
          cf_fmt("{\"instance_id\":null,\"machine\":\"%s\",\"version\":1}", m),
          "{\"instance_id\":\"$U\",\"state\":\"created\",\"wal_offset\":$O}");
    /* Omitted initial_ctx is stored as null. */
    CF_OK(k, "GET_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", a.v[0]),
          cf_fmt("{\"ctx\":null,\"last_wal_offset\":%s,\"machine\":\"%s\",\"state\":\"created\","
                 "\"version\":1}",
                 a.v[1], m));
    cf_close(k);
}
END_TEST

START_TEST(create_any_json_ctx)
{
    cf_conn *k = CF_OPEN();
    char m[96], id1[96], id2[96];
    cf_uniq(m, sizeof m, "order");
    cf_uniq(id1, sizeof id1, "arr");
    cf_uniq(id2, sizeof id2, "str");
    CF_PUT_MACHINE(k, m, CF_ORDER_DEF);
    CF_CREATE(k, id1, m, "[1,{\"b\":2,\"a\":1}]");
    CF_CREATE(k, id2, m, "\"text\"");
    CF_OK(k, "GET_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id1),
          cf_fmt("{\"ctx\":[1,{\"a\":1,\"b\":2}],\"last_wal_offset\":$O,\"machine\":\"%s\","
                 "\"state\":\"created\","
                 "\"version\":1}",
                 m));
    CF_OK(
        k, "GET_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id2),
        cf_fmt("{\"ctx\":\"text\",\"last_wal_offset\":$O,\"machine\":\"%s\",\"state\":\"created\","
               "\"version\":1}",
               m));
    cf_close(k);
}
END_TEST

START_TEST(create_errors_in_order)
{
    cf_conn *k = CF_OPEN();
    char m[96], id[96];
    cf_uniq(m, sizeof m, "order");
    cf_uniq(id, sizeof id, "dup");
    CF_PUT_MACHINE(k, m, CF_ORDER_DEF);
    CF_CREATE(k, id, m, "{}");
    CF_ERR(k, "CREATE_INSTANCE",
           cf_fmt("{\"instance_id\":\"%s\",\"machine\":\"%s\",\"version\":1}", id, m),
           "INSTANCE_EXISTS", cf_fmt("core error: instance already exists: %s", id), false);
    /* INSTANCE_EXISTS wins over an unknown machine. */
    CF_ERR(k, "CREATE_INSTANCE",
           cf_fmt("{\"instance_id\":\"%s\",\"machine\":\"%s-no\",\"version\":7}", id, m),
           "INSTANCE_EXISTS", cf_fmt("core error: instance already exists: %s", id), false);
    CF_ERR(k, "CREATE_INSTANCE", cf_fmt("{\"machine\":\"%s\",\"version\":2}", m),
           "MACHINE_NOT_FOUND", cf_fmt("core error: machine version not found: %s v2", m), false);
    CF_ERR(k, "CREATE_INSTANCE",
           cf_fmt("{\"instance_id\":\"%s-x\",\"machine\":\"%s-no\",\"version\":1}", id, m),
           "MACHINE_NOT_FOUND", cf_fmt("core error: machine version not found: %s-no v1", m),
           false);
    CF_ERR(k, "CREATE_INSTANCE", NULL, "BAD_REQUEST",
           "invalid request: invalid type: null, expected struct CreateInstanceParams", false);
    CF_ERR(k, "CREATE_INSTANCE", "{\"version\":1}", "BAD_REQUEST",
           "invalid request: missing field `machine`", false);
    CF_ERR(k, "CREATE_INSTANCE", cf_fmt("{\"machine\":\"%s\"}", m), "BAD_REQUEST",
           "invalid request: missing field `version`", false);
    CF_ERR(k, "CREATE_INSTANCE", cf_fmt("{\"machine\":\"%s\",\"version\":\"1\"}", m), "BAD_REQUEST",
           "invalid request: invalid type: string \"1\", expected u32", false);
    CF_ERR(k, "CREATE_INSTANCE", cf_fmt("{\"instance_id\":5,\"machine\":\"%s\",\"version\":1}", m),
           "BAD_REQUEST", "invalid request: invalid type: integer `5`, expected a string", false);
    /* The failed attempt with "-x" created nothing. */
    CF_ERR(k, "GET_INSTANCE", cf_fmt("{\"instance_id\":\"%s-x\"}", id), "INSTANCE_NOT_FOUND",
           cf_fmt("core error: instance not found: %s-x", id), false);
    cf_close(k);
}
END_TEST

START_TEST(get_errors_and_last_event_id)
{
    cf_conn *k = CF_OPEN();
    char m[96], id[96];
    cf_uniq(m, sizeof m, "loop");
    cf_uniq(id, sizeof id, "g");
    CF_PUT_MACHINE(k, m, LOOP_DEF);
    CF_CREATE(k, id, m, "{}");
    CF_ERR(k, "GET_INSTANCE", cf_fmt("{\"instance_id\":\"%s-nope\"}", id), "INSTANCE_NOT_FOUND",
           cf_fmt("core error: instance not found: %s-nope", id), false);
    CF_ERR(k, "GET_INSTANCE", NULL, "BAD_REQUEST",
           "invalid request: invalid type: null, expected struct GetInstanceParams", false);
    CF_ERR(k, "GET_INSTANCE", "{}", "BAD_REQUEST", "invalid request: missing field `instance_id`",
           false);
    cf_caps c;
    CF_OKC(k, "APPLY_EVENT",
           cf_fmt("{\"instance_id\":\"%s\",\"event\":\"GO\",\"event_id\":\"e1\"}", id),
           "{\"applied\":true,\"ctx\":{},\"event_id\":\"e1\",\"from_state\":\"s0\",\"to_state\":"
           "\"s1\","
           "\"wal_offset\":$O}",
           &c);
    CF_OK(k, "GET_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id),
          cf_fmt("{\"ctx\":{},\"last_event_id\":\"e1\",\"last_wal_offset\":%s,\"machine\":\"%s\","
                 "\"state\":\"s1\",\"version\":1}",
                 c.v[0], m));
    /* An apply without event_id clears it. */
    CF_OKC(
        k, "APPLY_EVENT", cf_fmt("{\"instance_id\":\"%s\",\"event\":\"GO\"}", id),
        "{\"applied\":true,\"ctx\":{},\"from_state\":\"s1\",\"to_state\":\"s2\",\"wal_offset\":$O}",
        &c);
    CF_OK(
        k, "GET_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id),
        cf_fmt(
            "{\"ctx\":{},\"last_wal_offset\":%s,\"machine\":\"%s\",\"state\":\"s2\",\"version\":1}",
            c.v[0], m));
    cf_close(k);
}
END_TEST

/* Compare one LIST_INSTANCES item (text) with what we know. */
static void check_item(const cJSON *it, const char *id, const char *m, const char *state,
                       uint64_t last)
{
    char *t = cJSON_PrintUnformatted(it);
    cf_caps c;
    CF_MATCH(t,
             cf_fmt("{\"created_at\":$N,\"id\":\"%s\",\"last_wal_offset\":%llu,\"machine\":\"%s\","
                    "\"state\":\"%s\",\"updated_at\":$N,\"version\":1}",
                    id, (unsigned long long)last, m, state),
             &c);
    uint64_t created = cf_u64(c.v[0]), updated = cf_u64(c.v[1]);
    ck_assert_msg(created > 1500000000000ull && created < 4000000000000ull,
                  "created_at %s is not Unix ms", c.v[0]);
    ck_assert_msg(updated >= created, "updated_at %s < created_at %s", c.v[1], c.v[0]);
    cJSON_free(t);
}

static const cJSON *find_item(const cJSON *arr, const char *id)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const cJSON *i = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (cJSON_IsString(i) && strcmp(i->valuestring, id) == 0)
            return it;
    }
    return NULL;
}

/* LIST_INSTANCES result text without the instances array, which has no order. */
static cJSON *list(cf_conn *k, const char *params, const char *head_pat, int want_n)
{
    cJSON *j = CF_CALLJ(k, "LIST_INSTANCES", params);
    cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "result");
    ck_assert_msg(r != NULL, "LIST_INSTANCES %s failed", params);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(r, "instances");
    ck_assert_msg(cJSON_IsArray(arr), "no instances array");
    ck_assert_int_eq(cJSON_GetArraySize(arr), want_n);
    cJSON *copy = cJSON_Duplicate(r, 1);
    cJSON_ReplaceItemInObject(copy, "instances", cJSON_CreateArray());
    char *t = cJSON_PrintUnformatted(copy);
    CF_MATCH(t, head_pat, NULL);
    cJSON_free(t);
    cJSON_Delete(copy);
    return j;
}

START_TEST(list_filters_and_paging)
{
    cf_conn *k = CF_OPEN();
    char m[96], m2[96], a[96], b[96], c[96], d[96], x[96];
    cf_uniq(m, sizeof m, "lst");
    cf_uniq(m2, sizeof m2, "lst");
    cf_uniq(a, sizeof a, "a");
    cf_uniq(b, sizeof b, "b");
    cf_uniq(c, sizeof c, "c");
    cf_uniq(d, sizeof d, "d");
    cf_uniq(x, sizeof x, "x");
    CF_PUT_MACHINE(k, m, LOOP_DEF);
    CF_PUT_MACHINE(k, m2, LOOP_DEF);
    uint64_t oa = CF_CREATE(k, a, m, "{}");
    uint64_t ob = CF_CREATE(k, b, m, NULL);
    CF_CREATE(k, c, m, "{}");
    CF_CREATE(k, d, m, "{}");
    CF_CREATE(k, x, m2, "{}");
    cf_caps cc;
    CF_OKC(k, "APPLY_EVENT", cf_fmt("{\"instance_id\":\"%s\",\"event\":\"GO\"}", b),
           "{\"applied\":true,\"ctx\":null,\"from_state\":\"s0\",\"to_state\":\"s1\",\"wal_"
           "offset\":$O}",
           &cc);
    uint64_t ob2 = cf_u64(cc.v[0]);
    ck_assert(ob2 > ob);
    /* Deleted instances are excluded. */
    CF_OK(k, "DELETE_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", d),
          cf_fmt("{\"deleted\":true,\"instance_id\":\"%s\",\"wal_offset\":$O}", d));

    cJSON *j = list(k, cf_fmt("{\"machine\":\"%s\"}", m),
                    "{\"has_more\":false,\"instances\":[],\"total\":3}", 3);
    const cJSON *arr = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "result"), "instances");
    ck_assert_ptr_null(find_item(arr, d));
    check_item(find_item(arr, a), a, m, "s0", oa);
    check_item(find_item(arr, b), b, m, "s1", ob2);
    ck_assert_ptr_nonnull(find_item(arr, c));
    cJSON_Delete(j);

    cJSON_Delete(list(k, cf_fmt("{\"machine\":\"%s\",\"state\":\"s1\"}", m),
                      "{\"has_more\":false,\"instances\":[],\"total\":1}", 1));
    cJSON_Delete(list(k, cf_fmt("{\"machine\":\"%s\",\"state\":\"s2\"}", m),
                      "{\"has_more\":false,\"instances\":[],\"total\":0}", 0));
    cJSON_Delete(list(k, cf_fmt("{\"machine\":\"%s\",\"limit\":0}", m),
                      "{\"has_more\":true,\"instances\":[],\"total\":3}", 0));
    cJSON_Delete(list(k, cf_fmt("{\"machine\":\"%s\",\"limit\":2}", m),
                      "{\"has_more\":true,\"instances\":[],\"total\":3}", 2));
    cJSON_Delete(list(k, cf_fmt("{\"machine\":\"%s\",\"limit\":2,\"offset\":1}", m),
                      "{\"has_more\":false,\"instances\":[],\"total\":3}", 2));
    cJSON_Delete(list(k, cf_fmt("{\"machine\":\"%s\",\"offset\":2}", m),
                      "{\"has_more\":false,\"instances\":[],\"total\":3}", 1));
    cJSON_Delete(list(k, cf_fmt("{\"machine\":\"%s\",\"offset\":9}", m),
                      "{\"has_more\":false,\"instances\":[],\"total\":3}", 0));
    cJSON_Delete(list(k, cf_fmt("{\"machine\":\"%s\",\"version\":7}", m), /* no version filter */
                      "{\"has_more\":false,\"instances\":[],\"total\":3}", 3));
    /* Pages of one cover all three exactly once (nothing changes meanwhile). */
    int seen = 0;
    for (int off = 0; off < 3; off++) {
        j = list(k, cf_fmt("{\"machine\":\"%s\",\"limit\":1,\"offset\":%d}", m, off),
                 off < 2 ? "{\"has_more\":true,\"instances\":[],\"total\":3}"
                         : "{\"has_more\":false,\"instances\":[],\"total\":3}",
                 1);
        arr = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "result"), "instances");
        seen |=
            (find_item(arr, a) ? 1 : 0) | (find_item(arr, b) ? 2 : 0) | (find_item(arr, c) ? 4 : 0);
        cJSON_Delete(j);
    }
    ck_assert_int_eq(seen, 7);
    cf_close(k);
}
END_TEST

START_TEST(list_errors)
{
    cf_conn *k = CF_OPEN();
    if (cf_v03()) /* 0.3 lists without params */
        CF_OK(k, "LIST_INSTANCES", NULL, "{\"has_more\":$*}");
    else
        CF_ERR(k, "LIST_INSTANCES", NULL, "BAD_REQUEST",
               "invalid request: invalid type: null, expected struct ListInstancesParams", false);
    CF_ERR(k, "LIST_INSTANCES", "{\"limit\":-1}", "BAD_REQUEST",
           "invalid request: invalid value: integer `-1`, expected u32", false);
    CF_ERR(k, "LIST_INSTANCES", "{\"limit\":\"5\"}", "BAD_REQUEST",
           "invalid request: invalid type: string \"5\", expected u32", false);
    CF_ERR(k, "LIST_INSTANCES", "{\"machine\":5}", "BAD_REQUEST",
           "invalid request: invalid type: integer `5`, expected a string", false);
    cf_close(k);
}
END_TEST

START_TEST(delete_soft)
{
    cf_conn *k = CF_OPEN();
    char m[96], id[96];
    cf_uniq(m, sizeof m, "loop");
    cf_uniq(id, sizeof id, "del");
    CF_PUT_MACHINE(k, m, LOOP_DEF);
    uint64_t oc = CF_CREATE(k, id, m, "{\"n\":1}");
    cf_caps c;
    const char *p = cf_fmt("{\"instance_id\":\"%s\",\"idempotency_key\":\"d1\"}", id);
    CF_OKC(k, "DELETE_INSTANCE", p,
           cf_fmt("{\"deleted\":true,\"instance_id\":\"%s\",\"wal_offset\":$O}", id), &c);
    char od[256];
    snprintf(od, sizeof od, "%s", c.v[0]);
    ck_assert(cf_u64(od) > oc);
    if (cf_v03()) {
        /* 0.3 removes the instance: not found, not listed, and the id is free. */
        CF_ERR(k, "GET_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id), "INSTANCE_NOT_FOUND",
               cf_fmt("core error: instance not found: %s", id), false);
        CF_OK(k, "LIST_INSTANCES", cf_fmt("{\"machine\":\"%s\"}", m),
              "{\"has_more\":false,\"instances\":[],\"total\":0}");
        CF_ERR(k, "DELETE_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id), "INSTANCE_NOT_FOUND",
               cf_fmt("core error: instance not found: %s", id), false);
        uint64_t again = CF_CREATE(k, id, m, "{\"n\":3}");
        ck_assert(again > cf_u64(od));
        CF_OK(k, "GET_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id),
              cf_fmt("{\"ctx\":{\"n\":3},\"last_wal_offset\":%llu,\"machine\":\"%s\","
                     "\"state\":\"s0\",\"version\":1}",
                     (unsigned long long)again, m));
        cf_close(k);
        return;
    }
    /* 0.1: a soft delete. Repeats return the same offset (no new WAL record). */
    CF_OK(k, "DELETE_INSTANCE", p,
          cf_fmt("{\"deleted\":true,\"instance_id\":\"%s\",\"wal_offset\":%s}", id, od));
    CF_OK(k, "DELETE_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id),
          cf_fmt("{\"deleted\":true,\"instance_id\":\"%s\",\"wal_offset\":%s}", id, od));
    /* Still GETtable, looking normal, with the delete's offset. */
    CF_OK(k, "GET_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id),
          cf_fmt("{\"ctx\":{\"n\":1},\"last_wal_offset\":%s,\"machine\":\"%s\",\"state\":\"s0\","
                 "\"version\":1}",
                 od, m));
    /* expected_wal_offset sees the delete record. */
    CF_OKC(k, "APPLY_EVENT",
           cf_fmt("{\"instance_id\":\"%s\",\"event\":\"GO\",\"expected_wal_offset\":%s,"
                  "\"payload\":{\"n\":2}}",
                  id, od),
           "{\"applied\":true,\"ctx\":{\"n\":2},\"from_state\":\"s0\",\"to_state\":\"s1\",\"wal_"
           "offset\":$O}",
           &c);
    ck_assert(cf_u64(c.v[0]) > cf_u64(od));
    /* Still deleted: not listed, CREATE with the same id refused. */
    CF_OK(k, "LIST_INSTANCES", cf_fmt("{\"machine\":\"%s\"}", m),
          "{\"has_more\":false,\"instances\":[],\"total\":0}");
    CF_ERR(k, "CREATE_INSTANCE",
           cf_fmt("{\"instance_id\":\"%s\",\"machine\":\"%s\",\"version\":1}", id, m),
           "INSTANCE_EXISTS", cf_fmt("core error: instance already exists: %s", id), false);
    /* A repeated delete answers the instance's last_wal_offset, now the apply's. */
    CF_OK(k, "DELETE_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id),
          cf_fmt("{\"deleted\":true,\"instance_id\":\"%s\",\"wal_offset\":%s}", id, c.v[0]));
    cf_close(k);
}
END_TEST

START_TEST(delete_errors)
{
    cf_conn *k = CF_OPEN();
    CF_ERR(k, "DELETE_INSTANCE", "{\"instance_id\":\"no-such-instance-del\"}", "INSTANCE_NOT_FOUND",
           "core error: instance not found: no-such-instance-del", false);
    CF_ERR(k, "DELETE_INSTANCE", NULL, "BAD_REQUEST", "invalid request: missing instance_id",
           false);
    CF_ERR(k, "DELETE_INSTANCE", "{}", "BAD_REQUEST", "invalid request: missing instance_id",
           false);
    CF_ERR(k, "DELETE_INSTANCE", "{\"instance_id\":5}", "BAD_REQUEST",
           "invalid request: missing instance_id", false);
    CF_ERR(k, "DELETE_INSTANCE", "[\"x\"]", "BAD_REQUEST", "invalid request: missing instance_id",
           false);
    cf_close(k);
}
END_TEST

START_TEST(snapshot_instance)
{
    cf_conn *k = CF_OPEN();
    char m[96], id[96];
    cf_uniq(m, sizeof m, "loop");
    cf_uniq(id, sizeof id, "snap");
    CF_PUT_MACHINE(k, m, LOOP_DEF);
    uint64_t oc = CF_CREATE(k, id, m, "{\"a\":1}");
    cf_caps c;
    CF_OKC(k, "SNAPSHOT_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id),
           cf_fmt("{\"checksum\":\"$H\",\"instance_id\":\"%s\",\"size_bytes\":$N,\"snapshot_id\":"
                  "\"snap-$U\","
                  "\"wal_offset\":%llu}",
                  id, (unsigned long long)oc),
           &c);
    ck_assert_msg(cf_u64(c.v[1]) > 0, "size_bytes 0");
    char first[256];
    snprintf(first, sizeof first, "%s", c.v[2]);
    /* No WAL record: the instance's offset is unchanged; a new snapshot id each time. */
    CF_OKC(k, "SNAPSHOT_INSTANCE", cf_fmt("{\"instance_id\":\"%s\",\"x\":1}", id),
           cf_fmt("{\"checksum\":\"$H\",\"instance_id\":\"%s\",\"size_bytes\":$N,\"snapshot_id\":"
                  "\"snap-$U\","
                  "\"wal_offset\":%llu}",
                  id, (unsigned long long)oc),
           &c);
    ck_assert_str_ne(first, c.v[2]);
    /* Deleted instances can be snapshotted (0.1); 0.3 removed them. */
    CF_OKC(k, "DELETE_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id),
           cf_fmt("{\"deleted\":true,\"instance_id\":\"%s\",\"wal_offset\":$O}", id), &c);
    if (cf_v03())
        CF_ERR(k, "SNAPSHOT_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id), "INSTANCE_NOT_FOUND",
               cf_fmt("core error: instance not found: %s", id), false);
    else
        CF_OK(k, "SNAPSHOT_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id),
              cf_fmt("{\"checksum\":\"$H\",\"instance_id\":\"%s\",\"size_bytes\":$N,"
                     "\"snapshot_id\":\"snap-$U\",\"wal_offset\":%s}",
                     id, c.v[0]));
    CF_ERR(k, "SNAPSHOT_INSTANCE", cf_fmt("{\"instance_id\":\"%s-no\"}", id), "INSTANCE_NOT_FOUND",
           cf_fmt("core error: instance not found: %s-no", id), false);
    CF_ERR(k, "SNAPSHOT_INSTANCE", NULL, "BAD_REQUEST", "invalid request: missing instance_id",
           false);
    CF_ERR(k, "SNAPSHOT_INSTANCE", "{\"instance_id\":1}", "BAD_REQUEST",
           "invalid request: missing instance_id", false);
    cf_close(k);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conformance_instances");
    TCase *tc = cf_tcase("instances");
    tcase_add_unchecked_fixture(tc, setup, cf_teardown);
    tcase_add_test(tc, create_with_id_and_get);
    tcase_add_test(tc, create_without_id_uuid_and_null_ctx);
    tcase_add_test(tc, create_any_json_ctx);
    tcase_add_test(tc, create_errors_in_order);
    tcase_add_test(tc, get_errors_and_last_event_id);
    tcase_add_test(tc, list_filters_and_paging);
    tcase_add_test(tc, list_errors);
    tcase_add_test(tc, delete_soft);
    tcase_add_test(tc, delete_errors);
    tcase_add_test(tc, snapshot_instance);
    suite_add_tcase(s, tc);
    return cf_run(s);
}
