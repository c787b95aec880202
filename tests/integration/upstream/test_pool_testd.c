/* test_pool_testd.c: the upstream pool against a real rstmdb-testd: calls,
 * fail-fast while the server is gone, recovery after a restart on the same
 * port, the re-send rule for calls on a dying connection, timeouts, cancel. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

START_TEST(test_calls_succeed)
{
    up_env e;
    up_start(&e, 2, NULL);
    ck_assert(pool_ready(e.pool));
    char *res = up_call_ok(&e, e.pool, "PING", "{}");
    ck_assert_str_eq(res, "{\"pong\":true}");
    free(res);
    up_seed_machines(&e, e.pool);
    free(up_call_ok(&e, e.pool, "CREATE_INSTANCE",
                    "{\"machine\":\"m\",\"version\":1,\"instance_id\":\"a\",\"initial_ctx\":{}}"));
    uint64_t o1 = up_apply(&e, e.pool, "a", "GO", NULL);
    uint64_t o2 = up_apply(&e, e.pool, "a", "BACK", NULL);
    ck_assert_uint_gt(o2, o1);
    /* an upstream error answer is a reply, not a pool failure */
    char *r = NULL;
    ck_assert_int_eq(up_call(&e, e.pool, "GET_INSTANCE", "{\"instance_id\":\"nope\"}", &r),
                     RSTMDB_ERR_SERVER);
    free(r);
    pool_stats st;
    pool_get_stats(e.pool, &st);
    ck_assert_uint_eq(st.connections, 2);
    ck_assert_uint_eq(st.ready, 2);
    ck_assert_uint_eq(st.inflight, 0);
    ck_assert_uint_eq(st.reconnects, 0);
    up_stop(&e);
}
END_TEST

static bool pool_down(void *arg)
{
    return !pool_ready(((up_env *)arg)->pool);
}

static bool pool_up(void *arg)
{
    return pool_ready(((up_env *)arg)->pool);
}

static int cb_calls;
static void count_cb(const rstmdb_reply *r, void *arg)
{
    (void)r;
    (void)arg;
    cb_calls++;
}

START_TEST(test_fail_fast_and_recover)
{
    up_env e;
    up_start(&e, 2, NULL);
    up_kill_testd(&e);
    ck_assert(up_run_until(&e, pool_down, &e, 5000));
    /* Nothing READY: the call is refused at once and its callback never runs. */
    cb_calls = 0;
    pool_call *c = NULL;
    ck_assert_int_eq(pool_call_json(e.pool, "PING", "{}", 2, true, count_cb, NULL, &c),
                     RSTMDB_ERR_CLOSED);
    ck_assert_uint_ge(pool_retry_after_s(e.pool), 1);
    up_run_for(&e, 300); /* reconnect attempts keep failing meanwhile */
    ck_assert(!pool_ready(e.pool));
    ck_assert_int_eq(cb_calls, 0);
    pool_stats st;
    pool_get_stats(e.pool, &st);
    ck_assert_uint_ge(st.connect_failures, 1);
    ck_assert_uint_eq(st.conn_losses, 2);

    up_restart_testd(&e, NULL);
    ck_assert_msg(up_run_until(&e, pool_up, &e, 5000), "pool did not recover");
    char *res = up_call_ok(&e, e.pool, "PING", "{}");
    free(res);
    pool_get_stats(e.pool, &st);
    ck_assert_uint_ge(st.reconnects, 1);
    up_stop(&e);
}
END_TEST

typedef struct outcome {
    bool done;
    int status;
    bool was_sent;
} outcome;

static void outcome_cb(const rstmdb_reply *r, void *arg)
{
    outcome *o = arg;
    o->done = true;
    o->status = rstmdb_reply_status(r);
    o->was_sent = rstmdb_reply_was_sent(r);
}

#define NCALLS 16
static outcome outs[NCALLS];
static bool all_done(void *arg)
{
    (void)arg;
    for (int i = 0; i < NCALLS; i++)
        if (!outs[i].done)
            return false;
    return true;
}

START_TEST(test_inflight_on_dying_connection)
{
    up_env e;
    up_start(&e, 2, NULL);
    /* Hold every answer 300 ms, then corrupt the first one: the connection
     * that receives it fails (bad CRC) with the rest of its calls in flight,
     * while the other connection stays READY. */
    up_control(&e, "delay 300");
    up_control(&e, "garble");
    memset(outs, 0, sizeof outs);
    /* Least-loaded routing alternates between the two connections, so the
     * pattern U U S S puts both kinds on both connections. */
    for (int i = 0; i < NCALLS; i++) {
        bool safe = (i / 2) % 2 == 1;
        ck_assert_int_eq(pool_call_json(e.pool, "PING", "{}", 2, safe, outcome_cb, &outs[i], NULL),
                         RSTMDB_OK);
    }
    ck_assert(up_run_until(&e, all_done, NULL, 10000));
    int unsafe_failed = 0;
    for (int i = 0; i < NCALLS; i++) {
        if ((i / 2) % 2 == 1) {
            /* resend_safe: re-sent on the surviving connection, answered */
            ck_assert_msg(outs[i].status == RSTMDB_OK, "safe call %d: %s", i,
                          rstmdb_strerror(outs[i].status));
        } else if (outs[i].status != RSTMDB_OK) {
            /* not resend_safe and already written: reported, never re-sent */
            ck_assert(outs[i].was_sent);
            ck_assert_int_ne(outs[i].status, RSTMDB_ERR_SERVER);
            ck_assert_int_ne(outs[i].status, RSTMDB_ERR_TIMEOUT);
            unsafe_failed++;
        }
    }
    ck_assert_int_ge(unsafe_failed, 1);
    pool_stats st;
    pool_get_stats(e.pool, &st);
    ck_assert_uint_ge(st.resent, 1);
    ck_assert_uint_eq(st.conn_losses, 1);
    ck_assert_uint_eq(st.inflight, 0);
    up_control(&e, "delay 0");
    ck_assert(up_run_until(&e, pool_up, &e, 5000));
    up_stop(&e);
}
END_TEST

static bool all_done_one(void *arg)
{
    return ((outcome *)arg)->done;
}

START_TEST(test_timeout_and_cancel)
{
    up_env e;
    up_start(&e, 1, NULL);
    up_control(&e, "delay 400");
    /* cancel: the callback never runs, even when the answer arrives */
    cb_calls = 0;
    pool_call *c = NULL;
    ck_assert_int_eq(pool_call_json(e.pool, "PING", "{}", 2, true, count_cb, NULL, &c), RSTMDB_OK);
    pool_call_cancel(c);
    up_run_for(&e, 700);
    ck_assert_int_eq(cb_calls, 0);
    pool_stats st;
    pool_get_stats(e.pool, &st);
    ck_assert_uint_eq(st.inflight, 0);
    pool_free(e.pool);

    /* request timeout -> RSTMDB_ERR_TIMEOUT reply */
    e.cfg.request_timeout_ms = 150;
    e.cfg.size = 1;
    rstmdb_error *err = NULL;
    ck_assert_int_eq(pool_new(&e.pool, e.base, &e.cfg, &err), RSTMDB_OK);
    ck_assert(up_run_until(&e, pool_up, &e, 5000));
    up_control(&e, "hang on");
    outcome o = {false, 0, false};
    ck_assert_int_eq(pool_call_json(e.pool, "PING", "{}", 2, true, outcome_cb, &o, NULL),
                     RSTMDB_OK);
    ck_assert(up_run_until(&e, all_done_one, &o, 5000));
    ck_assert_int_eq(o.status, RSTMDB_ERR_TIMEOUT);
    up_control(&e, "hang off");
    up_stop(&e);
}
END_TEST

static bool some_loss(void *arg)
{
    pool_stats st;
    pool_get_stats(((up_env *)arg)->pool, &st);
    return st.conn_losses > 0;
}

START_TEST(test_keepalive)
{
    /* testd closes connections idle for 1 s: PINGs every ~200 ms keep the
     * pool's connections up through 2.5 s of silence. */
    const char *extra[] = {"--idle-timeout-secs", "1", NULL};
    up_env e;
    up_start(&e, 2, extra);
    pool_free(e.pool);
    e.cfg.keepalive_ms = 200;
    ck_assert_int_eq(pool_new(&e.pool, e.base, &e.cfg, NULL), RSTMDB_OK);
    ck_assert(up_run_until(&e, pool_up, &e, 5000));
    up_run_for(&e, 2500);
    pool_stats st;
    pool_get_stats(e.pool, &st);
    ck_assert_uint_eq(st.conn_losses, 0);
    ck_assert_uint_eq(st.ready, 2);

    /* Without keepalive the same server drops them: the knob is what matters. */
    pool_free(e.pool);
    e.cfg.keepalive_ms = 600000;
    ck_assert_int_eq(pool_new(&e.pool, e.base, &e.cfg, NULL), RSTMDB_OK);
    ck_assert(up_run_until(&e, pool_up, &e, 5000));
    ck_assert(up_run_until(&e, some_loss, &e, 5000));

    /* A hung server: the keepalive PING times out and the pool cuts the
     * connection itself instead of leaving it READY. */
    pool_free(e.pool);
    e.cfg.keepalive_ms = 100;
    e.cfg.request_timeout_ms = 200;
    ck_assert_int_eq(pool_new(&e.pool, e.base, &e.cfg, NULL), RSTMDB_OK);
    ck_assert(up_run_until(&e, pool_up, &e, 5000));
    up_control(&e, "hang on");
    ck_assert(up_run_until(&e, some_loss, &e, 5000));
    up_control(&e, "hang off");
    up_run_for(&e, 200); /* the BYE of the closed connections drains from the loop */
    up_stop(&e);
}
END_TEST

static bool pool_all_ready_t(void *arg)
{
    pool_stats st;
    pool_get_stats(((up_env *)arg)->pool, &st);
    return st.ready == st.connections;
}

static bool some_failures(void *arg)
{
    pool_stats st;
    pool_get_stats(((up_env *)arg)->pool, &st);
    return st.connect_failures >= 3;
}

/* One pool per `tls`/`token`, checked for READY + an INFO (auth-gated). */
static void expect_pool(up_env *e, rstmdb_tls *tls, const char *token, bool works, const char *why)
{
    e->cfg.tls = tls;
    e->cfg.token = token;
    e->cfg.size = 2;
    ck_assert_int_eq(pool_new(&e->pool, e->base, &e->cfg, NULL), RSTMDB_OK);
    if (works) {
        ck_assert(up_run_until(e, pool_all_ready_t, e, 5000));
        free(up_call_ok(e, e->pool, "INFO", "{}"));
        ck_assert_ptr_null(pool_last_failure(e->pool)); /* READY clears it */
    } else {
        /* refused every time, retried with backoff, never READY */
        ck_assert(up_run_until(e, some_failures, e, 5000));
        ck_assert(!pool_ready(e->pool));
        /* pool_last_failure says why, for the HTTP side's 502/503. */
        const rstmdb_error *last = pool_last_failure(e->pool);
        ck_assert_ptr_nonnull(last);
        if (why != NULL) {
            ck_assert_str_eq(rstmdb_error_code_str(last), why);
            ck_assert(pool_failure_is_definitive(last));
        }
    }
    pool_free(e->pool);
    e->pool = NULL;
}

static void sh(const char *dir, const char *cmd)
{
    char full[2048];
    snprintf(full, sizeof full, "cd %s && (%s) >/dev/null 2>&1", dir, cmd);
    ck_assert_msg(system(full) == 0, "failed: %s", cmd);
}

START_TEST(test_auth_and_mtls)
{
    /* bearer token: right one works, wrong one is retried and never READY */
    const char *auth[] = {"--token", "secret", NULL};
    up_env e;
    up_start_testd(&e, 2, auth);
    expect_pool(&e, NULL, "secret", true, NULL);
    expect_pool(&e, NULL, "wrong", false, "AUTH_FAILED");
    up_stop(&e);

    /* mTLS + token, with certificates made for this test */
    char dir[] = "/tmp/rstmdb-up-tls-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
#define EC "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    sh(dir, "openssl req -x509 " EC " -keyout ca.key -out ca.pem -days 2 -subj /CN=up-ca");
    sh(dir, "printf 'subjectAltName=IP:127.0.0.1\\n' > s.ext && openssl req " EC
            " -keyout s.key -out s.csr -subj /CN=127.0.0.1 && openssl x509 -req -in s.csr -CA "
            "ca.pem -CAkey ca.key -CAcreateserial -out s.pem -days 2 -extfile s.ext");
    sh(dir, "openssl req " EC " -keyout c.key -out c.csr -subj /CN=proxy && openssl x509 -req "
            "-in c.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out c.pem -days 2");
#undef EC
    char ca[128], scert[128], skey[128], ccert[128], ckey[128];
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(scert, sizeof scert, "%s/s.pem", dir);
    snprintf(skey, sizeof skey, "%s/s.key", dir);
    snprintf(ccert, sizeof ccert, "%s/c.pem", dir);
    snprintf(ckey, sizeof ckey, "%s/c.key", dir);
    const char *tls_args[] = {"--tls-cert", scert,     "--tls-key", skey, "--tls-client-ca",
                              ca,           "--token", "secret",    NULL};
    up_start_testd(&e, 2, tls_args);
    rstmdb_tls *mtls = NULL, *no_cert = NULL;
    ck_assert_int_eq(rstmdb_tls_from_files(&mtls, ca, ccert, ckey, NULL), RSTMDB_OK);
    ck_assert_int_eq(rstmdb_tls_from_files(&no_cert, ca, NULL, NULL, NULL), RSTMDB_OK);
    expect_pool(&e, mtls, "secret", true, NULL);
    expect_pool(&e, no_cert, "secret", false, NULL); /* the server wants a client certificate */
    expect_pool(&e, NULL, "secret", false, NULL);    /* plain TCP to a TLS server */
    up_stop(&e);
    rstmdb_tls_free(mtls);
    rstmdb_tls_free(no_cert);
    char rm[160];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    ck_assert_int_eq(system(rm), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("upstream_pool");
    TCase *tc = tcase_create("testd");
    tcase_add_checked_fixture(tc, NULL, up_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_calls_succeed);
    tcase_add_test(tc, test_fail_fast_and_recover);
    tcase_add_test(tc, test_inflight_on_dying_connection);
    tcase_add_test(tc, test_timeout_and_cancel);
    tcase_add_test(tc, test_keepalive);
    tcase_add_test(tc, test_auth_and_mtls);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
