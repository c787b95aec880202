/* test_backoff.c: growth, cap, jitter bounds and determinism of the reconnect
 * backoff, driven by an injected random source. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "backoff.h"

/* A scripted random source: returns the values of `seq` in turn. */
typedef struct script {
    const uint32_t *seq;
    size_t n, i;
} script;

static uint32_t script_rand(void *state)
{
    script *s = state;
    uint32_t v = s->seq[s->i % s->n];
    s->i++;
    return v;
}

static uint32_t max_rand(void *state)
{
    (void)state;
    return UINT32_MAX;
}

START_TEST(test_growth_and_cap)
{
    backoff b;
    backoff_init(&b, 100, 1000, NULL, NULL); /* no jitter: the ceilings themselves */
    ck_assert_uint_eq(backoff_next_ms(&b), 100);
    ck_assert_uint_eq(backoff_next_ms(&b), 200);
    ck_assert_uint_eq(backoff_next_ms(&b), 400);
    ck_assert_uint_eq(backoff_next_ms(&b), 800);
    ck_assert_uint_eq(backoff_next_ms(&b), 1000);
    ck_assert_uint_eq(backoff_next_ms(&b), 1000);
    for (int i = 0; i < 200; i++) /* many failures: no overflow past the cap */
        ck_assert_uint_eq(backoff_next_ms(&b), 1000);
    backoff_reset(&b);
    ck_assert_uint_eq(backoff_next_ms(&b), 100);
}
END_TEST

START_TEST(test_defaults)
{
    backoff b;
    backoff_init(&b, 0, 0, NULL, NULL);
    ck_assert_uint_eq(backoff_ceiling_ms(&b), 100);
    ck_assert_uint_eq(b.max_ms, 5000);
    backoff_init(&b, 800, 10, NULL, NULL); /* cap below initial is raised */
    ck_assert_uint_eq(backoff_next_ms(&b), 800);
    ck_assert_uint_eq(backoff_next_ms(&b), 800);
}
END_TEST

START_TEST(test_jitter_bounds)
{
    uint64_t seed = 42;
    backoff b;
    backoff_init(&b, 50, 3000, backoff_xorshift, &seed);
    unsigned seen_low = 0;
    for (int round = 0; round < 2000; round++) {
        unsigned ceiling = backoff_ceiling_ms(&b);
        unsigned d = backoff_next_ms(&b);
        ck_assert_uint_le(d, ceiling);
        if (d < ceiling / 2)
            seen_low++;
        if (round % 10 == 9)
            backoff_reset(&b);
    }
    /* Full jitter: about half the delays fall under half the ceiling. */
    ck_assert_uint_gt(seen_low, 500);
    ck_assert_uint_lt(seen_low, 1500);
}
END_TEST

START_TEST(test_jitter_extremes_and_determinism)
{
    backoff b;
    backoff_init(&b, 100, 5000, max_rand, NULL);
    /* rand = 2^32-1 maps into [0, ceiling] without exceeding it */
    for (int i = 0; i < 10; i++)
        ck_assert_uint_le(backoff_next_ms(&b), 5000);

    const uint32_t seq[] = {0, 7, 1000};
    script s = {seq, 3, 0};
    backoff_init(&b, 100, 5000, script_rand, &s);
    ck_assert_uint_eq(backoff_next_ms(&b), 0); /* 0 % 101 */
    ck_assert_uint_eq(backoff_next_ms(&b), 7); /* 7 % 201 */
    ck_assert_uint_eq(backoff_next_ms(&b), 1000 % 401);

    /* Two sources with the same seed give the same sequence. */
    uint64_t s1 = 7, s2 = 7;
    backoff a, c;
    backoff_init(&a, 10, 10000, backoff_xorshift, &s1);
    backoff_init(&c, 10, 10000, backoff_xorshift, &s2);
    for (int i = 0; i < 50; i++)
        ck_assert_uint_eq(backoff_next_ms(&a), backoff_next_ms(&c));
}
END_TEST

static Suite *backoff_suite(void)
{
    Suite *s = suite_create("backoff");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_growth_and_cap);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_jitter_bounds);
    tcase_add_test(tc, test_jitter_extremes_and_determinism);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(backoff_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
