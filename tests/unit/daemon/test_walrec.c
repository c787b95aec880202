/* test_walrec.c: WAL_READ pages -> replayed SSE event data, filtering of WAL
 * entries like a stream, compaction detection and the dedup rule, all on
 * captured-shape bytes without sockets. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "subfilter.h"
#include "walrec.h"

/* A page shaped like the real server's (keys sorted, compact). */
static const char PAGE[] =
    "{\"next_offset\":1099511629342,\"records\":["
    "{\"entry\":{\"checksum\":\"x\",\"definition\":{\"initial\":\"s0\"},\"machine\":\"w\","
    "\"type\":\"put_machine\",\"version\":1},\"offset\":1099511627776,\"sequence\":1},"
    "{\"entry\":{\"initial_ctx\":{\"a\":1},\"initial_state\":\"s0\",\"instance_id\":\"w-1\","
    "\"machine\":\"w\",\"type\":\"create_instance\",\"version\":1},\"offset\":1099511628100,"
    "\"sequence\":2},"
    "{\"entry\":{\"ctx\":{\"a\":2,\"b\":1.0,\"s\":\"x\\\"y\"},\"event\":\"GO\",\"from_state\":"
    "\"s0\","
    "\"instance_id\":\"w-1\",\"payload\":{\"a\":2,\"b\":1.0},\"to_state\":\"s1\",\"type\":"
    "\"apply_event\"},\"offset\":1099511628300,\"sequence\":3},"
    "{\"entry\":{\"ctx\":null,\"event\":\"LOOP\",\"event_id\":\"e1\",\"from_state\":\"s1\","
    "\"idempotency_key\":\"k\",\"instance_id\":\"o-9\",\"payload\":null,\"to_state\":\"s2\","
    "\"type\":\"apply_event\"},\"offset\":1099511629000,\"sequence\":4},"
    "{\"entry\":{\"instance_id\":\"w-1\",\"type\":\"delete_instance\"},\"offset\":1099511629341,"
    "\"sequence\":5}]}";

START_TEST(test_page_parse)
{
    walrec_page pg;
    ck_assert_int_eq(walrec_page_parse(PAGE, strlen(PAGE), 100, &pg), 0);
    ck_assert_uint_eq(pg.n, 5);
    ck_assert(pg.has_next);
    ck_assert_uint_eq(pg.next_offset, 1099511629342ull);
    ck_assert_int_eq(pg.recs[0].type, WALREC_OTHER);
    ck_assert_int_eq(pg.recs[1].type, WALREC_CREATE_INSTANCE);
    ck_assert_str_eq(pg.recs[1].machine_name, "w");
    ck_assert_uint_eq(pg.recs[1].version, 1);
    ck_assert_int_eq(pg.recs[2].type, WALREC_APPLY_EVENT);
    ck_assert_uint_eq(pg.recs[2].offset, 1099511628300ull);
    ck_assert_str_eq(pg.recs[2].instance_id, "w-1");
    ck_assert_str_eq(pg.recs[2].event_name, "GO");
    ck_assert_str_eq(pg.recs[2].from, "s0");
    ck_assert_str_eq(pg.recs[2].to, "s1");
    ck_assert_int_eq(pg.recs[4].type, WALREC_OTHER);
    walrec_page_deinit(&pg);

    /* the cap on records is enforced, not truncated silently */
    ck_assert_int_eq(walrec_page_parse(PAGE, strlen(PAGE), 4, &pg), -1);
    ck_assert_uint_eq(pg.n, 0);

    const char empty[] = "{\"next_offset\":null,\"records\":[]}";
    ck_assert_int_eq(walrec_page_parse(empty, strlen(empty), 10, &pg), 0);
    ck_assert_uint_eq(pg.n, 0);
    ck_assert(!pg.has_next);
    walrec_page_deinit(&pg);

    const char bad[] = "{\"records\":[{\"offset\":1}]}"; /* no entry */
    ck_assert_int_eq(walrec_page_parse(bad, strlen(bad), 10, &pg), -1);
    const char notjson[] = "{\"records\":[";
    ck_assert_int_eq(walrec_page_parse(notjson, strlen(notjson), 10, &pg), -1);
}
END_TEST

START_TEST(test_event_data_shape)
{
    walrec_page pg;
    strbuf b;
    strbuf_init(&b, 1 << 20);
    ck_assert_int_eq(walrec_page_parse(PAGE, strlen(PAGE), 100, &pg), 0);
    ck_assert_int_eq(walrec_event_data(&pg.recs[2], "\"w\"", 3, 1, true, &b), 0);
    /* PROTOCOL.md 2.3 field order minus type/subscription_id; raw bytes kept (1.0). */
    ck_assert_str_eq(b.data,
                     "{\"instance_id\":\"w-1\",\"machine\":\"w\",\"version\":1,"
                     "\"wal_offset\":1099511628300,\"from_state\":\"s0\",\"to_state\":\"s1\","
                     "\"event\":\"GO\",\"payload\":{\"a\":2,\"b\":1.0},"
                     "\"ctx\":{\"a\":2,\"b\":1.0,\"s\":\"x\\\"y\"}}");
    strbuf_reset(&b);
    ck_assert_int_eq(walrec_event_data(&pg.recs[3], "\"m\"", 3, 7, false, &b), 0);
    ck_assert_str_eq(b.data,
                     "{\"instance_id\":\"o-9\",\"machine\":\"m\",\"version\":7,"
                     "\"wal_offset\":1099511629000,\"from_state\":\"s1\",\"to_state\":\"s2\","
                     "\"event\":\"LOOP\",\"payload\":null}");
    strbuf_reset(&b);
    ck_assert_int_eq(walrec_event_data(&pg.recs[1], "\"w\"", 3, 1, true, &b), -1);
    walrec_page_deinit(&pg);
    strbuf_deinit(&b);
}
END_TEST

START_TEST(test_filter_entries)
{
    walrec_page pg;
    ck_assert_int_eq(walrec_page_parse(PAGE, strlen(PAGE), 100, &pg), 0);
    const char *to[] = {"s2"};
    hub_filter f;
    memset(&f, 0, sizeof f);
    f.to_states = to;
    f.nto_states = 1;
    subfilter sf;
    ck_assert_int_eq(subfilter_init(&sf, &f), 0);
    const walrec *go = &pg.recs[2], *loop = &pg.recs[3];
    ck_assert(!subfilter_match(&sf, go->instance_id, "w", go->event_name, go->from, go->to));
    ck_assert(subfilter_match(&sf, loop->instance_id, "m", loop->event_name, loop->from, loop->to));
    subfilter_deinit(&sf);

    memset(&f, 0, sizeof f);
    f.instance_id = "w-1";
    ck_assert_int_eq(subfilter_init(&sf, &f), 0);
    ck_assert(subfilter_match(&sf, go->instance_id, NULL, go->event_name, go->from, go->to));
    ck_assert(
        !subfilter_match(&sf, loop->instance_id, NULL, loop->event_name, loop->from, loop->to));
    subfilter_deinit(&sf);
    walrec_page_deinit(&pg);
}
END_TEST

START_TEST(test_instance_info_and_u64)
{
    const char gi[] =
        "{\"ctx\":{\"a\":1},\"last_wal_offset\":1099511629341,\"machine\":\"or\\u0064er\","
        "\"state\":\"paid\",\"version\":3}";
    char *tok = NULL, *name = NULL;
    uint64_t v = 0;
    ck_assert_int_eq(walrec_instance_info(gi, strlen(gi), &tok, &name, &v), 0);
    ck_assert_str_eq(tok, "\"or\\u0064er\""); /* raw token, as the server wrote it */
    ck_assert_str_eq(name, "order");
    ck_assert_uint_eq(v, 3);
    free(tok);
    free(name);
    const char nover[] = "{\"machine\":\"m\"}";
    ck_assert_int_eq(walrec_instance_info(nover, strlen(nover), &tok, &name, &v), -1);

    const char w[] = "{\"subscription_id\":\"sub-1\",\"wal_offset\":1099511630658}";
    uint64_t off = 0;
    ck_assert_int_eq(walrec_result_u64(w, strlen(w), "wal_offset", &off), 0);
    ck_assert_uint_eq(off, 1099511630658ull);
    ck_assert_int_eq(walrec_result_u64(w, strlen(w), "current_wal_offset", &off), -1);
}
END_TEST

START_TEST(test_compaction_detection)
{
    const uint64_t S1 = 1ull << 40, S2 = 2ull << 40, S3 = 3ull << 40;
    /* Same segment as the cursor: that segment exists, nothing can be missing. */
    ck_assert(!walrec_needs_probe(S1 + 500, S1 + 900));
    /* First record in a later segment: maybe rollover, maybe deleted: probe. */
    ck_assert(walrec_needs_probe(S1 + 500, S2 + 10));
    ck_assert(walrec_needs_probe(0, S1)); /* from_offset 0 */
    /* Nothing ever deleted (oldest record in segment 1): a rollover, not a gap. */
    ck_assert(!walrec_compacted(S1 + 500, 1));
    ck_assert(!walrec_compacted(0, 1));
    ck_assert(!walrec_compacted(S1 + 500, 0)); /* empty WAL */
    /* The cursor's segment is gone: events may be lost, say so. */
    ck_assert(walrec_compacted(S1 + 500, 2));
    ck_assert(walrec_compacted(0, 3));
    ck_assert(walrec_compacted(S2 + 1, 3));
    /* Cursor inside a retained segment: fine. */
    ck_assert(!walrec_compacted(S2 + 1, 2));
    ck_assert(!walrec_compacted(S3, 2));
}
END_TEST

START_TEST(test_dedup_rule)
{
    uint64_t cur = 0;
    /* live stream: 10, a duplicate 10 (idempotent replay), 20, an old 15 */
    ck_assert(walrec_cursor_take(&cur, 10));
    ck_assert(!walrec_cursor_take(&cur, 10));
    ck_assert(walrec_cursor_take(&cur, 20));
    ck_assert(!walrec_cursor_take(&cur, 15));
    ck_assert_uint_eq(cur, 21);
    /* resume from Last-Event-ID 20 => from 21: 20 is not sent again, 21 is */
    uint64_t r = 21;
    ck_assert(!walrec_cursor_take(&r, 20));
    ck_assert(walrec_cursor_take(&r, 21));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("walrec");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_page_parse);
    tcase_add_test(tc, test_event_data_shape);
    tcase_add_test(tc, test_filter_entries);
    tcase_add_test(tc, test_instance_info_and_u64);
    tcase_add_test(tc, test_compaction_detection);
    tcase_add_test(tc, test_dedup_rule);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
