/* test_async.c: the async client against rstmdb-testd: 1,000 requests in
 * flight on one connection, request and connect timeouts (the delay and
 * hang knobs), disconnects failing pending requests and ending
 * subscriptions, garbled frames, JSONL mode, and BYE on close. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <event2/event.h>

#include "rstmdb/rstmdb.h"
#include "spawn.h"

static spawned srv;
static struct event_base *base;

static void start(const char *const extra[], bool control)
{
    int rc = control ? spawn_testd_control(&srv, extra) : spawn_testd(&srv, extra);
    ck_assert_msg(rc == 0, "cannot start %s", spawn_testd_path());
    base = event_base_new();
}

static void stop(void)
{
    spawn_stop(&srv, 5000);
    /* let sockets handed to the BYE drain finish */
    event_base_dispatch(base);
    event_base_free(base);
}

static void ctl(const char *cmd)
{
    char reply[256];
    ck_assert_msg(spawn_control(&srv, cmd, reply, sizeof(reply)) == 0, "control %s: %s", cmd,
                  reply);
}

/* Run until *flag; 10 s is a safety net for a broken build, not a timing check. */
static void run_until(const bool *flag)
{
    for (int i = 0; i < 1000 && !*flag; i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
}

typedef struct st {
    bool ready, closed;
    int why_status;
} st;

static void on_state(rstmdb_client *c, rstmdb_conn_state s, const rstmdb_error *why, void *arg)
{
    st *x = arg;
    (void)c;
    if (s == RSTMDB_CONN_READY)
        x->ready = true;
    if (s == RSTMDB_CONN_CLOSED) {
        x->closed = true;
        x->why_status = rstmdb_error_status(why);
    }
}

static rstmdb_client *client(const rstmdb_options *o, st *s)
{
    rstmdb_client *c = NULL;
    rstmdb_error *err = NULL;
    ck_assert_int_eq(rstmdb_client_new(&c, base, srv.addr, o, &err), RSTMDB_OK);
    rstmdb_client_set_state_cb(c, on_state, s);
    return c;
}

typedef struct got {
    bool done;
    int status;
    bool was_sent;
    char code[64];
} got;

static void on_reply(rstmdb_client *c, const rstmdb_reply *r, void *arg)
{
    got *g = arg;
    (void)c;
    g->done = true;
    g->status = rstmdb_reply_status(r);
    g->was_sent = rstmdb_reply_was_sent(r);
    const rstmdb_error *e = rstmdb_reply_error(r);
    snprintf(g->code, sizeof(g->code), "%s", e ? rstmdb_error_code_str(e) : "");
}

static void put_machine(rstmdb_client *c)
{
    cJSON *def = cJSON_Parse("{\"states\":[\"a\",\"b\"],\"initial\":\"a\",\"transitions\":["
                             "{\"from\":\"a\",\"event\":\"GO\",\"to\":\"b\"},"
                             "{\"from\":\"b\",\"event\":\"BACK\",\"to\":\"a\"}]}");
    rstmdb_put_machine_req pm = {.machine = "m", .version = 1, .definition = def};
    got g = {0};
    ck_assert_int_eq(rstmdb_put_machine(c, &pm, on_reply, &g, NULL), RSTMDB_OK);
    cJSON_Delete(def);
    run_until(&g.done);
    ck_assert_int_eq(g.status, RSTMDB_OK);
}

/* ---- 1,000 in flight ---- */

typedef struct many {
    size_t ok, bad;
} many;

typedef struct one {
    many *m;
    char id[32];
} one;

static void on_created(rstmdb_client *c, const rstmdb_reply *r, void *arg)
{
    one *o = arg;
    rstmdb_create_instance_result res;
    (void)c;
    if (rstmdb_reply_create_instance(r, &res) == RSTMDB_OK && strcmp(res.instance_id, o->id) == 0)
        o->m->ok++;
    else
        o->m->bad++;
}

START_TEST(test_thousand_in_flight)
{
    enum { N = 1000 };
    start(NULL, false);
    st s = {0};
    rstmdb_client *c = client(NULL, &s);
    put_machine(c);
    static one args[N];
    many m = {0, 0};
    for (int i = 0; i < N; i++) {
        args[i].m = &m;
        snprintf(args[i].id, sizeof(args[i].id), "i-%d", i);
        rstmdb_create_instance_req ci = {.machine = "m", .version = 1, .instance_id = args[i].id};
        ck_assert_int_eq(rstmdb_create_instance(c, &ci, on_created, &args[i], NULL), RSTMDB_OK);
    }
    ck_assert_uint_eq(rstmdb_client_inflight(c), N);
    for (int k = 0; k < 1000 && m.ok + m.bad < N; k++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    ck_assert_uint_eq(m.bad, 0);
    ck_assert_uint_eq(m.ok, N);
    ck_assert_uint_eq(rstmdb_client_inflight(c), 0);
    rstmdb_client_close(c);
    rstmdb_client_free(c);
    stop();
}
END_TEST

START_TEST(test_request_timeout_with_delay)
{
    start((const char *const[]){"--fault-delay-ms", "300", NULL}, false);
    rstmdb_options *o;
    ck_assert_int_eq(rstmdb_options_new(&o), RSTMDB_OK);
    rstmdb_options_set_request_timeout_ms(o, 100);
    st s = {0};
    rstmdb_client *c = client(o, &s);
    rstmdb_options_free(o);
    run_until(&s.ready); /* HELLO is delayed too; it has the connect timeout */
    ck_assert(s.ready);
    got g = {0}, g2 = {0};
    ck_assert_int_eq(rstmdb_ping(c, on_reply, &g, NULL), RSTMDB_OK);
    run_until(&g.done);
    ck_assert_int_eq(g.status, RSTMDB_ERR_TIMEOUT);
    ck_assert(g.was_sent);
    /* A longer per-request timeout succeeds; the late answer to the first
     * is dropped on the way. */
    rstmdb_request *req = NULL;
    ck_assert_int_eq(rstmdb_ping(c, on_reply, &g2, &req), RSTMDB_OK);
    rstmdb_request_set_timeout_ms(req, 5000);
    run_until(&g2.done);
    ck_assert_int_eq(g2.status, RSTMDB_OK);
    ck_assert_int_eq(rstmdb_client_state(c), RSTMDB_CONN_READY);
    rstmdb_client_free(c);
    stop();
}
END_TEST

START_TEST(test_connect_timeout_when_server_hangs)
{
    start((const char *const[]){"--fault-hang", NULL}, false);
    rstmdb_options *o;
    ck_assert_int_eq(rstmdb_options_new(&o), RSTMDB_OK);
    rstmdb_options_set_connect_timeout_ms(o, 200);
    st s = {0};
    rstmdb_client *c = client(o, &s);
    rstmdb_options_free(o);
    got g = {0};
    ck_assert_int_eq(rstmdb_ping(c, on_reply, &g, NULL), RSTMDB_OK);
    run_until(&s.closed);
    ck_assert_int_eq(s.why_status, RSTMDB_ERR_TIMEOUT);
    ck_assert(!s.ready);
    ck_assert(g.done);
    ck_assert_int_eq(g.status, RSTMDB_ERR_TIMEOUT);
    ck_assert(!g.was_sent); /* queued behind the handshake: never written */
    rstmdb_client_free(c);
    stop();
}
END_TEST

typedef struct subt {
    bool replied, ended;
    size_t events;
    int end_status;
} subt;

static void sub_reply(rstmdb_client *c, const rstmdb_reply *r, void *arg)
{
    subt *t = arg;
    (void)c;
    (void)r;
    t->replied = true;
}

static void sub_event(rstmdb_sub *sub, const rstmdb_event *ev, void *arg)
{
    subt *t = arg;
    (void)sub;
    (void)ev;
    t->events++;
}

static void sub_end(rstmdb_sub *sub, const rstmdb_error *why, void *arg)
{
    subt *t = arg;
    (void)sub;
    t->ended = true;
    t->end_status = why ? rstmdb_error_status(why) : 0;
}

START_TEST(test_disconnect_fails_pending_and_ends_subs)
{
    start(NULL, true);
    st s = {0};
    rstmdb_client *c = client(NULL, &s);
    subt t = {0};
    ck_assert_int_eq(
        rstmdb_watch_json(c, "WATCH_ALL", "{}", 2, sub_reply, sub_event, sub_end, &t, NULL),
        RSTMDB_OK);
    run_until(&t.replied);
    ctl("hang on");
    got g = {0};
    ck_assert_int_eq(rstmdb_ping(c, on_reply, &g, NULL), RSTMDB_OK);
    /* Wait until the PING was surely written and read by the server. */
    for (int i = 0; i < 100; i++) {
        char reply[256];
        spawn_control(&srv, "stats", reply, sizeof(reply));
        if (strstr(reply, "hung=1"))
            break;
        struct timeval tv = {0, 10000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    ctl("drop-all");
    run_until(&s.closed);
    ck_assert(g.done);
    ck_assert_int_eq(g.status, RSTMDB_ERR_CLOSED);
    ck_assert(g.was_sent);
    ck_assert(rstmdb_is_retryable(rstmdb_client_error(c)));
    ck_assert(t.ended);
    ck_assert_int_eq(t.end_status, RSTMDB_ERR_CLOSED);
    ck_assert_int_eq(rstmdb_ping(c, on_reply, &g, NULL), RSTMDB_ERR_CLOSED);
    rstmdb_client_free(c);
    stop();
}
END_TEST

START_TEST(test_garbled_frame_is_protocol_error)
{
    start(NULL, true);
    st s = {0};
    rstmdb_client *c = client(NULL, &s);
    run_until(&s.ready);
    ctl("garble");
    got g = {0};
    ck_assert_int_eq(rstmdb_ping(c, on_reply, &g, NULL), RSTMDB_OK);
    run_until(&s.closed);
    ck_assert_int_eq(s.why_status, RSTMDB_ERR_PROTOCOL);
    ck_assert_int_eq(g.status, RSTMDB_ERR_PROTOCOL);
    ck_assert(strstr(rstmdb_error_message(rstmdb_client_error(c)), "CRC") != NULL);
    rstmdb_client_free(c);
    stop();
}
END_TEST

START_TEST(test_refused_during_handshake)
{
    start((const char *const[]){"--fault-refuse", NULL}, false);
    st s = {0};
    rstmdb_client *c = client(NULL, &s);
    run_until(&s.closed);
    /* EOF, or a reset when the HELLO was already on its way. */
    ck_assert(s.why_status == RSTMDB_ERR_CLOSED || s.why_status == RSTMDB_ERR_IO);
    ck_assert(strstr(rstmdb_error_message(rstmdb_client_error(c)), "handshake") != NULL);
    rstmdb_client_free(c);
    stop();
}
END_TEST

/* JSONL: the server writes lines from the HELLO answer on; events too. */
START_TEST(test_jsonl_mode)
{
    start(NULL, false);
    rstmdb_options *o;
    ck_assert_int_eq(rstmdb_options_new(&o), RSTMDB_OK);
    rstmdb_options_set_wire_mode(o, RSTMDB_WIRE_JSONL);
    rstmdb_options_set_client_name(o, "jsonl-test");
    rstmdb_options_add_feature(o, "batch");
    st s = {0};
    rstmdb_client *c = client(o, &s);
    rstmdb_options_free(o);
    run_until(&s.ready);
    const cJSON *hello = rstmdb_client_hello(c);
    ck_assert_str_eq(cJSON_GetObjectItem(hello, "wire_mode")->valuestring, "jsonl");
    put_machine(c);
    rstmdb_create_instance_req ci = {.machine = "m", .version = 1, .instance_id = "j-1"};
    got g = {0};
    ck_assert_int_eq(rstmdb_create_instance(c, &ci, on_reply, &g, NULL), RSTMDB_OK);
    run_until(&g.done);
    ck_assert_int_eq(g.status, RSTMDB_OK);
    subt t = {0};
    rstmdb_watch_instance_req wi = {.instance_id = "j-1"};
    ck_assert_int_eq(rstmdb_watch_instance(c, &wi, sub_reply, sub_event, sub_end, &t, NULL),
                     RSTMDB_OK);
    run_until(&t.replied);
    for (int i = 0; i < 10; i++) {
        rstmdb_apply_event_req ae = {.instance_id = "j-1", .event = i % 2 ? "BACK" : "GO"};
        got ga = {0};
        ck_assert_int_eq(rstmdb_apply_event(c, &ae, on_reply, &ga, NULL), RSTMDB_OK);
        run_until(&ga.done);
        ck_assert_int_eq(ga.status, RSTMDB_OK);
    }
    for (int k = 0; k < 100 && t.events < 10; k++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    ck_assert_uint_eq(t.events, 10);
    got g2 = {0};
    ck_assert_int_eq(
        rstmdb_call_json(c, "GET_INSTANCE", "{\"instance_id\":\"nope\"}", 22, on_reply, &g2, NULL),
        RSTMDB_OK);
    run_until(&g2.done);
    ck_assert_int_eq(g2.status, RSTMDB_ERR_SERVER);
    ck_assert_str_eq(g2.code, "INSTANCE_NOT_FOUND");
    rstmdb_client_close(c);
    ck_assert(t.ended);
    ck_assert_int_eq(t.end_status, RSTMDB_ERR_CLOSED);
    rstmdb_client_free(c);
    stop();
}
END_TEST

/* rstmdb_client_close sends BYE: the server logs and counts it. */
START_TEST(test_close_sends_bye)
{
    start(NULL, true);
    st s = {0};
    rstmdb_client *c = client(NULL, &s);
    run_until(&s.ready);
    rstmdb_client_close(c);
    ck_assert(s.closed);
    rstmdb_client_free(c);
    event_base_dispatch(base); /* the BYE drains */
    char reply[256] = "";
    for (int i = 0; i < 100; i++) {
        spawn_control(&srv, "stats", reply, sizeof(reply));
        if (strstr(reply, "active=0"))
            break;
        struct timeval tv = {0, 10000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    /* HELLO and BYE: two requests, two responses, and the server closed it. */
    ck_assert_msg(strstr(reply, "active=0") && strstr(reply, "requests=2"), "%s", reply);
    stop();
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
    Suite *s = suite_create("client_async");
    TCase *tc = tcase_create("async");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_thousand_in_flight);
    tcase_add_test(tc, test_request_timeout_with_delay);
    tcase_add_test(tc, test_connect_timeout_when_server_hangs);
    tcase_add_test(tc, test_disconnect_fails_pending_and_ends_subs);
    tcase_add_test(tc, test_garbled_frame_is_protocol_error);
    tcase_add_test(tc, test_refused_during_handshake);
    tcase_add_test(tc, test_jsonl_mode);
    tcase_add_test(tc, test_close_sends_bye);
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
