/* test_subfilter.c: filter normal form (sorted, deduplicated lists,
 * include_ctx in the key), the feed key = WATCH params, and matching. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "subfilter.h"

static hub_filter all_filter(void)
{
    hub_filter f;
    memset(&f, 0, sizeof f);
    f.include_ctx = true;
    return f;
}

START_TEST(test_key_sorted_dedup)
{
    const char *m1[] = {"b", "a", "a"};
    const char *m2[] = {"a", "b"};
    hub_filter f1 = all_filter(), f2 = all_filter();
    f1.machines = m1;
    f1.nmachines = 3;
    f2.machines = m2;
    f2.nmachines = 2;
    subfilter a, b;
    ck_assert_int_eq(subfilter_init(&a, &f1), 0);
    ck_assert_int_eq(subfilter_init(&b, &f2), 0);
    ck_assert_str_eq(a.key, b.key);
    ck_assert_str_eq(a.key, "{\"include_ctx\":true,\"machines\":[\"a\",\"b\"]}");
    ck_assert_uint_eq(a.machines.n, 2);
    ck_assert_str_eq(subfilter_op(&a), "WATCH_ALL");
    subfilter_deinit(&a);
    subfilter_deinit(&b);
}
END_TEST

START_TEST(test_key_distinguishes)
{
    hub_filter f1 = all_filter(), f2 = all_filter();
    f2.include_ctx = false;
    subfilter a, b, c, d;
    ck_assert_int_eq(subfilter_init(&a, &f1), 0);
    ck_assert_int_eq(subfilter_init(&b, &f2), 0);
    ck_assert_str_ne(a.key, b.key); /* include_ctx is part of the key */
    ck_assert_str_eq(a.key, "{\"include_ctx\":true}");

    /* the same value in different lists must not collide */
    const char *x[] = {"x"};
    hub_filter f3 = all_filter(), f4 = all_filter();
    f3.events = x;
    f3.nevents = 1;
    f4.to_states = x;
    f4.nto_states = 1;
    ck_assert_int_eq(subfilter_init(&c, &f3), 0);
    ck_assert_int_eq(subfilter_init(&d, &f4), 0);
    ck_assert_str_ne(c.key, d.key);
    subfilter_deinit(&a);
    subfilter_deinit(&b);
    subfilter_deinit(&c);
    subfilter_deinit(&d);
}
END_TEST

START_TEST(test_key_escapes_and_instance)
{
    hub_filter f = all_filter();
    const char *m[] = {"a\"b,c"};
    f.instance_id = "w-1\n";
    f.machines = m; /* ignored for WATCH_INSTANCE */
    f.nmachines = 1;
    subfilter a;
    ck_assert_int_eq(subfilter_init(&a, &f), 0);
    ck_assert_str_eq(a.key, "{\"include_ctx\":true,\"instance_id\":\"w-1\\n\"}");
    ck_assert_str_eq(subfilter_op(&a), "WATCH_INSTANCE");
    ck_assert(subfilter_match(&a, "w-1\n", "zz", "E", "s0", "s1"));
    ck_assert(!subfilter_match(&a, "w-1", "zz", "E", "s0", "s1"));
    subfilter_deinit(&a);

    hub_filter g = all_filter();
    g.machines = m;
    g.nmachines = 1;
    ck_assert_int_eq(subfilter_init(&a, &g), 0);
    ck_assert_str_eq(a.key, "{\"include_ctx\":true,\"machines\":[\"a\\\"b,c\"]}");
    subfilter_deinit(&a);
}
END_TEST

START_TEST(test_match_semantics)
{
    const char *ms[] = {"order", "invoice"};
    const char *ev[] = {"PAY"};
    const char *to[] = {"paid", "void"};
    hub_filter f = all_filter();
    f.machines = ms;
    f.nmachines = 2;
    f.events = ev;
    f.nevents = 1;
    f.to_states = to;
    f.nto_states = 2;
    subfilter a;
    ck_assert_int_eq(subfilter_init(&a, &f), 0);
    ck_assert(subfilter_needs_machine(&a));
    ck_assert(subfilter_match(&a, "o-1", "order", "PAY", "created", "paid")); /* OR within */
    ck_assert(subfilter_match(&a, "i-1", "invoice", "PAY", "x", "void"));
    ck_assert(!subfilter_match(&a, "o-1", "cart", "PAY", "created", "paid")); /* AND across */
    ck_assert(!subfilter_match(&a, "o-1", "order", "SHIP", "created", "paid"));
    ck_assert(!subfilter_match(&a, "o-1", "order", "PAY", "created", "shipped"));
    ck_assert(!subfilter_match(&a, "o-1", NULL, "PAY", "created", "paid"));
    subfilter_deinit(&a);

    hub_filter e = all_filter(); /* empty lists match everything */
    ck_assert_int_eq(subfilter_init(&a, &e), 0);
    ck_assert(!subfilter_needs_machine(&a));
    ck_assert(subfilter_match(&a, "x", NULL, "E", "a", "b"));
    subfilter_deinit(&a);
}
END_TEST

START_TEST(test_invalid)
{
    const char *bad[] = {"a", NULL};
    hub_filter f = all_filter();
    f.events = bad;
    f.nevents = 2;
    subfilter a;
    ck_assert_int_eq(subfilter_init(&a, &f), RSTMDB_ERR_INVALID);
    subfilter_deinit(&a); /* safe after failure */
    const char **many = calloc(SUBFILTER_MAX_VALUES + 1, sizeof *many);
    for (size_t i = 0; i <= SUBFILTER_MAX_VALUES; i++)
        many[i] = "v";
    f.events = many;
    f.nevents = SUBFILTER_MAX_VALUES + 1;
    ck_assert_int_eq(subfilter_init(&a, &f), RSTMDB_ERR_INVALID);
    f.nevents = SUBFILTER_MAX_VALUES; /* at the cap: fine, and deduplicated to one */
    ck_assert_int_eq(subfilter_init(&a, &f), 0);
    ck_assert_uint_eq(a.events.n, 1);
    subfilter_deinit(&a);
    free(many);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("subfilter");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_key_sorted_dedup);
    tcase_add_test(tc, test_key_distinguishes);
    tcase_add_test(tc, test_key_escapes_and_instance);
    tcase_add_test(tc, test_match_semantics);
    tcase_add_test(tc, test_invalid);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
