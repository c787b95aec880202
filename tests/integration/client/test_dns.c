/* test_dns.c: librstmdb resolving a host name through the resolver given with
 * rstmdb_options_set_dns (a libevent evdns_base aimed at the test DNS server
 * in tests/support/dnsd): the connect goes to the answered address after a
 * dead one, a failed lookup names the name, and a client closed or freed
 * while its lookup is unanswered is never reached by the late answer. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "dnsd.h"
#include "rstmdb/rstmdb.h"
#include "spawn.h"

static spawned srv;
static dnsd *dns;
static struct event_base *base;
static struct evdns_base *resolver;
static rstmdb_options *opts;

typedef struct outcome {
    bool done;
    rstmdb_conn_state state;
    char why[512];
} outcome;

static void on_state(rstmdb_client *c, rstmdb_conn_state s, const rstmdb_error *why, void *arg)
{
    (void)c;
    outcome *o = arg;
    if (s == RSTMDB_CONN_CONNECTING)
        return;
    o->done = true;
    o->state = s;
    snprintf(o->why, sizeof o->why, "%s", why ? rstmdb_error_message(why) : "");
}

static void run_for_ms(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

static void run_until(const outcome *o)
{
    for (int i = 0; i < 500 && !o->done; i++)
        run_for_ms(10);
    ck_assert_msg(o->done, "no outcome within 5 s");
}

static void setup(void)
{
    char addr[64];
    ck_assert_int_eq(dnsd_start(&dns, addr, sizeof addr), 0);
    ck_assert_int_eq(spawn_testd(&srv, NULL), 0);
    base = event_base_new();
    resolver = evdns_base_new(base, 0);
    ck_assert_ptr_nonnull(resolver);
    ck_assert_int_eq(evdns_base_nameserver_ip_add(resolver, addr), 0);
    ck_assert_int_eq(rstmdb_options_new(&opts), RSTMDB_OK);
    rstmdb_options_set_dns(opts, resolver);
    rstmdb_options_set_connect_timeout_ms(opts, 5000);
}

static void teardown(void)
{
    rstmdb_options_free(opts);
    run_for_ms(50); /* lookups cut short complete on the loop */
    evdns_base_free(resolver, 0);
    event_base_free(base);
    spawn_stop(&srv, 2000);
    dnsd_stop(dns);
}

static rstmdb_client *connect_name(outcome *o)
{
    char addr[128];
    snprintf(addr, sizeof addr, "db.test:%d", srv.port);
    rstmdb_client *c = NULL;
    ck_assert_int_eq(rstmdb_client_new(&c, base, addr, opts, NULL), RSTMDB_OK);
    rstmdb_client_set_state_cb(c, on_state, o);
    return c;
}

START_TEST(name_resolves_and_every_address_is_tried)
{
    dnsd_answer(dns, "127.0.0.3,127.0.0.1"); /* nothing listens on the first */
    outcome o = {0};
    rstmdb_client *c = connect_name(&o);
    run_until(&o);
    ck_assert_msg(o.state == RSTMDB_CONN_READY, "%s", o.why);
    ck_assert_uint_ge(dnsd_queries(dns), 1);
    rstmdb_client_close(c);
    rstmdb_client_free(c);
}
END_TEST

START_TEST(failed_lookup_names_the_name)
{
    dnsd_fail(dns, 3);
    outcome o = {0};
    rstmdb_client *c = connect_name(&o);
    run_until(&o);
    ck_assert_int_eq(o.state, RSTMDB_CONN_CLOSED);
    ck_assert_msg(strstr(o.why, "resolve db.test: ") != NULL, "%s", o.why);
    ck_assert_int_eq(rstmdb_error_status(rstmdb_client_error(c)), RSTMDB_ERR_IO);
    rstmdb_client_free(c);
}
END_TEST

START_TEST(closed_or_freed_during_lookup)
{
    dnsd_answer(dns, "127.0.0.1");
    dnsd_hold(dns, true);
    outcome o1 = {0}, o2 = {0};
    rstmdb_client *c1 = connect_name(&o1);
    rstmdb_client *c2 = connect_name(&o2);
    for (int i = 0; i < 200 && dnsd_waiting(dns) < 2; i++)
        run_for_ms(10);
    ck_assert_uint_ge(dnsd_waiting(dns), 2);
    /* One closed, one freed while their lookups wait; then the answers
     * come: neither client may be touched by them (ASan watches). */
    rstmdb_client_close(c1);
    ck_assert_int_eq(o1.state, RSTMDB_CONN_CLOSED);
    rstmdb_client_free(c2);
    dnsd_hold(dns, false);
    run_for_ms(200);
    ck_assert_int_eq(rstmdb_client_state(c1), RSTMDB_CONN_CLOSED);
    rstmdb_client_free(c1);
    ck_assert(!o2.done);
}
END_TEST

START_TEST(connect_timeout_covers_the_lookup)
{
    dnsd_hold(dns, true);
    rstmdb_options_set_connect_timeout_ms(opts, 200);
    outcome o = {0};
    rstmdb_client *c = connect_name(&o);
    run_until(&o);
    ck_assert_int_eq(o.state, RSTMDB_CONN_CLOSED);
    ck_assert_msg(strstr(o.why, "during resolve") != NULL, "%s", o.why);
    rstmdb_client_free(c);
    dnsd_hold(dns, false);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_dns");
    TCase *tc = tcase_create("dns");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, name_resolves_and_every_address_is_tried);
    tcase_add_test(tc, failed_lookup_names_the_name);
    tcase_add_test(tc, closed_or_freed_during_lookup);
    tcase_add_test(tc, connect_timeout_covers_the_lookup);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
