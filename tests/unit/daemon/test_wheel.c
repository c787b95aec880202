/* test_wheel.c: the timer wheel behind SSE heartbeats: a timer never fires
 * before its due time and at most about a tick after it, in due order;
 * removed timers never fire; a timer re-added from its own callback keeps
 * beating; delays longer than the wheel's span still come on time. */
#include <check.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "wheel.h"
#include "clock.h"

#define TICK 10

typedef struct timer {
    wheel_node n;
    uint64_t due, fired_at;
    int fires;
    int again; /* re-add this many more times, every `period` ms */
    unsigned period;
} timer;

typedef struct env {
    wheel *w;
    struct event_base *base;
    int order[8];
    int norder;
    timer *t;
} env;

static void fire(wheel_node *n, void *arg)
{
    env *e = arg;
    timer *t = (timer *)n;
    t->fired_at = clock_mono_ms();
    t->fires++;
    if (e->norder < 8)
        e->order[e->norder++] = (int)(t - e->t);
    if (t->again-- > 0) {
        t->due = t->fired_at + t->period;
        wheel_add(e->w, &t->n, t->due);
    }
}

static void run_ms(struct event_base *base, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

static void setup(env *e, timer *t)
{
    e->base = event_base_new();
    e->w = wheel_new(e->base, TICK, 500, fire, e);
    ck_assert_ptr_nonnull(e->w);
    e->norder = 0;
    e->t = t;
}

static void teardown(env *e)
{
    wheel_free(e->w);
    event_base_free(e->base);
}

static void expect_on_time(const timer *t)
{
    ck_assert_int_eq(t->fires >= 1, 1);
    ck_assert_msg(t->fired_at >= t->due, "fired %llu ms early",
                  (unsigned long long)(t->due - t->fired_at));
    ck_assert_msg(t->fired_at <= t->due + 2 * TICK + 15, "fired %llu ms late",
                  (unsigned long long)(t->fired_at - t->due));
}

START_TEST(fires_in_due_order_never_early)
{
    timer t[4];
    memset(t, 0, sizeof t);
    env e;
    setup(&e, t);
    uint64_t now = clock_mono_ms();
    unsigned delays[4] = {120, 30, 75, 2000}; /* the last is beyond the span */
    for (int i = 0; i < 4; i++) {
        t[i].due = now + delays[i];
        wheel_add(e.w, &t[i].n, t[i].due);
    }
    ck_assert_uint_eq(wheel_count(e.w), 4);
    run_ms(e.base, 2100);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(t[i].fires, 1);
        expect_on_time(&t[i]);
    }
    ck_assert_int_eq(e.norder, 4);
    ck_assert_int_eq(e.order[0], 1);
    ck_assert_int_eq(e.order[1], 2);
    ck_assert_int_eq(e.order[2], 0);
    ck_assert_int_eq(e.order[3], 3);
    ck_assert_uint_eq(wheel_count(e.w), 0);
    teardown(&e);
}
END_TEST

START_TEST(removed_and_moved_timers)
{
    timer t[3];
    memset(t, 0, sizeof t);
    env e;
    setup(&e, t);
    uint64_t now = clock_mono_ms();
    for (int i = 0; i < 3; i++) {
        t[i].due = now + 50;
        wheel_add(e.w, &t[i].n, t[i].due);
    }
    wheel_del(e.w, &t[1].n);
    wheel_del(e.w, &t[1].n); /* twice is harmless */
    t[2].due = now + 200;    /* moved later: fires once, at the new time */
    wheel_add(e.w, &t[2].n, t[2].due);
    ck_assert_uint_eq(wheel_count(e.w), 2);
    run_ms(e.base, 300);
    ck_assert_int_eq(t[0].fires, 1);
    ck_assert_int_eq(t[1].fires, 0);
    ck_assert_int_eq(t[2].fires, 1);
    expect_on_time(&t[2]);
    teardown(&e);
}
END_TEST

START_TEST(readded_from_its_callback)
{
    timer t[1];
    memset(t, 0, sizeof t);
    env e;
    setup(&e, t);
    t[0].period = 40;
    t[0].again = 9;
    t[0].due = clock_mono_ms() + t[0].period;
    wheel_add(e.w, &t[0].n, t[0].due);
    run_ms(e.base, 600);
    ck_assert_int_eq(t[0].fires, 10);
    expect_on_time(&t[0]);
    /* A due time already past fires on the next tick, not in the past one. */
    t[0].again = 0;
    t[0].due = clock_mono_ms() - 100;
    wheel_add(e.w, &t[0].n, t[0].due);
    run_ms(e.base, 3 * TICK + 20);
    ck_assert_int_eq(t[0].fires, 11);
    teardown(&e);
}
END_TEST

/* Many timers in one slot, some due a turn of the wheel later (the same
 * slot index): each fires once, on time. */
START_TEST(crowded_slot)
{
    enum { N = 60 };
    timer t[N];
    memset(t, 0, sizeof t);
    env e;
    setup(&e, t);
    uint64_t now = clock_mono_ms(), span = 52 * TICK; /* the wheel's slots x tick */
    for (int i = 0; i < N; i++) {
        t[i].due = now + 40 + (i % 3 == 0 ? span : 0) + (uint64_t)(i % 2);
        wheel_add(e.w, &t[i].n, t[i].due);
    }
    run_ms(e.base, (int)(span + 200));
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(t[i].fires, 1);
        expect_on_time(&t[i]);
    }
    ck_assert_uint_eq(wheel_count(e.w), 0);
    teardown(&e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wheel");
    TCase *tc = tcase_create("wheel");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, fires_in_due_order_never_early);
    tcase_add_test(tc, removed_and_moved_timers);
    tcase_add_test(tc, readded_from_its_callback);
    tcase_add_test(tc, crowded_slot);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
