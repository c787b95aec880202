/* test_examples.c: the examples/ programs run against rstmdb-testd and
 * print what the Go documentation's versions print. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spawn.h"

static spawned srv;

/* Run a shell command, capture up to cap bytes of its stdout+stderr. */
static int run(const char *cmd, char *out, size_t cap)
{
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    return pclose(f);
}

START_TEST(test_examples_print_the_go_doc_output)
{
    char cmd[1024], out[4096];
    ck_assert_int_eq(spawn_testd(&srv, NULL), 0);
    snprintf(cmd, sizeof(cmd), "%s/quick_start %s 2>&1", EXAMPLES_DIR, srv.addr);
    ck_assert_int_eq(run(cmd, out, sizeof(out)), 0);
    ck_assert_msg(
        strstr(out, "Created: order-001 in state pending\nTransitioned: pending -> paid\n"), "%s",
        out);
    /* The consumer waits for one shipped order while order_processing ships one. */
    snprintf(
        cmd, sizeof(cmd),
        "(%s/event_consumer %s 1 > consumer.out 2>&1 &) ; sleep 0.5; "
        "%s/order_processing %s order-007 2>&1; sleep 0.5; cat consumer.out; rm -f consumer.out",
        EXAMPLES_DIR, srv.addr, EXAMPLES_DIR, srv.addr);
    ck_assert_int_eq(run(cmd, out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "Order order-007 is now: shipped"), "%s", out);
    ck_assert_msg(strstr(out, "Listening for shipped orders"), "%s", out);
    ck_assert_msg(strstr(out, "Order order-007 shipped!"), "%s", out);
    /* A second create of the same order is explained, and fails. */
    snprintf(cmd, sizeof(cmd), "%s/order_processing %s order-007 2>&1", EXAMPLES_DIR, srv.addr);
    ck_assert_int_ne(run(cmd, out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "already exists"), "%s", out);
    spawn_stop(&srv, 5000);
}
END_TEST

static void teardown(void)
{
    if (srv.pid > 0)
        spawn_stop(&srv, 2000);
}

int main(void)
{
    Suite *s = suite_create("client_examples");
    TCase *tc = tcase_create("examples");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_examples_print_the_go_doc_output);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
