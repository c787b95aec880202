/* test_tls.c: TLS and mTLS against rstmdb-testd with certificates the test
 * makes with the openssl CLI in a temporary directory: verification, the
 * hostname/IP check, SNI override, the insecure mode, client certificates. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rstmdb/rstmdb.h"
#include "spawn.h"

static char dir[64];
static char path_buf[16][256];
static int path_n;

static const char *P(const char *name)
{
    char *p = path_buf[path_n++ % 16];
    snprintf(p, 256, "%s/%s", dir, name);
    return p;
}

static void sh(const char *cmd)
{
    char full[2200];
    snprintf(full, sizeof(full), "cd %s && (%s) >/dev/null 2>&1", dir, cmd);
    ck_assert_msg(system(full) == 0, "failed: %s", cmd);
}

#define EC "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

/* A CA, a server certificate for localhost/127.0.0.1, a client
 * certificate, and an unrelated second CA. EC keys: fast to make. */
static void make_certs(void)
{
    snprintf(dir, sizeof(dir), "/tmp/rstmdb-tls-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    sh("openssl req -x509 " EC " -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca");
    sh("openssl req -x509 " EC " -keyout other.key -out other.pem -days 2 -subj /CN=other-ca");
    sh("printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > "
       "srv.ext && openssl req " EC " -keyout srv.key -out srv.csr -subj /CN=localhost && "
       "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem "
       "-days 2 -extfile srv.ext");
    sh("printf 'extendedKeyUsage=clientAuth\\n' > cli.ext && openssl req " EC " -keyout cli.key "
       "-out cli.csr -subj /CN=client && openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key "
       "-CAcreateserial -out cli.pem -days 2 -extfile cli.ext");
}

static void remove_certs(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static spawned srv;

static void start_tls(bool mtls)
{
    const char *args[] = {
        "--tls-cert", P("srv.pem"), "--tls-key", P("srv.key"), mtls ? "--tls-client-ca" : NULL,
        P("ca.pem"),  NULL};
    ck_assert_int_eq(spawn_testd(&srv, args), 0);
}

/* Connect with `tls`; returns the status (and the error message in buf). */
static int try_connect(rstmdb_tls *tls, char *buf, size_t cap)
{
    rstmdb_options *o;
    ck_assert_int_eq(rstmdb_options_new(&o), RSTMDB_OK);
    rstmdb_options_set_tls(o, tls);
    rstmdb_options_set_connect_timeout_ms(o, 5000);
    rstmdb_sync *s = NULL;
    rstmdb_error *err = NULL;
    int rc = rstmdb_sync_connect(&s, srv.addr, o, &err);
    rstmdb_options_free(o);
    snprintf(buf, cap, "%s", err ? rstmdb_error_message(err) : "");
    rstmdb_error_free(err);
    if (rc == RSTMDB_OK) {
        rstmdb_reply *r = NULL;
        rc = rstmdb_sync_ping(s, &r);
        rstmdb_reply_free(r);
        rstmdb_sync_close(s);
    }
    return rc;
}

START_TEST(test_tls_verified)
{
    char msg[512];
    make_certs();
    start_tls(false);
    rstmdb_tls *tls = NULL;
    ck_assert_int_eq(rstmdb_tls_from_files(&tls, P("ca.pem"), NULL, NULL, NULL), RSTMDB_OK);
    /* 127.0.0.1 matches the certificate's IP SAN. */
    ck_assert_msg(try_connect(tls, msg, sizeof(msg)) == RSTMDB_OK, "%s", msg);
    /* SNI/hostname override that matches the DNS SAN. */
    ck_assert_int_eq(rstmdb_tls_set_server_name(tls, "localhost"), RSTMDB_OK);
    ck_assert_msg(try_connect(tls, msg, sizeof(msg)) == RSTMDB_OK, "%s", msg);
    /* A name the certificate does not carry. */
    ck_assert_int_eq(rstmdb_tls_set_server_name(tls, "wrong.example"), RSTMDB_OK);
    ck_assert_int_eq(try_connect(tls, msg, sizeof(msg)), RSTMDB_ERR_TLS);
    ck_assert_msg(strstr(msg, "verif") != NULL, "%s", msg);
    rstmdb_tls_free(tls);
    /* An unrelated CA: verification fails. */
    ck_assert_int_eq(rstmdb_tls_from_files(&tls, P("other.pem"), NULL, NULL, NULL), RSTMDB_OK);
    ck_assert_int_eq(try_connect(tls, msg, sizeof(msg)), RSTMDB_ERR_TLS);
    rstmdb_tls_free(tls);
    /* Insecure mode accepts it. */
    ck_assert_int_eq(rstmdb_tls_insecure(&tls, NULL), RSTMDB_OK);
    ck_assert_msg(try_connect(tls, msg, sizeof(msg)) == RSTMDB_OK, "%s", msg);
    rstmdb_tls_free(tls);
    /* Plain TCP to a TLS port never gets READY. */
    rstmdb_options *o;
    ck_assert_int_eq(rstmdb_options_new(&o), RSTMDB_OK);
    rstmdb_options_set_connect_timeout_ms(o, 1000);
    rstmdb_sync *s = NULL;
    ck_assert_int_ne(rstmdb_sync_connect(&s, srv.addr, o, NULL), RSTMDB_OK);
    rstmdb_options_free(o);
    spawn_stop(&srv, 5000);
    remove_certs();
}
END_TEST

START_TEST(test_mtls)
{
    char msg[512];
    make_certs();
    start_tls(true);
    rstmdb_tls *tls = NULL;
    ck_assert_int_eq(rstmdb_tls_from_files(&tls, P("ca.pem"), P("cli.pem"), P("cli.key"), NULL),
                     RSTMDB_OK);
    ck_assert_msg(try_connect(tls, msg, sizeof(msg)) == RSTMDB_OK, "%s", msg);
    rstmdb_tls_free(tls);
    /* Without a client certificate the server drops the handshake. */
    ck_assert_int_eq(rstmdb_tls_from_files(&tls, P("ca.pem"), NULL, NULL, NULL), RSTMDB_OK);
    int rc = try_connect(tls, msg, sizeof(msg));
    ck_assert_msg(rc == RSTMDB_ERR_TLS || rc == RSTMDB_ERR_CLOSED || rc == RSTMDB_ERR_IO,
                  "rc %d: %s", rc, msg);
    rstmdb_tls_free(tls);
    spawn_stop(&srv, 5000);
    remove_certs();
}
END_TEST

START_TEST(test_tls_config_errors)
{
    rstmdb_tls *tls = NULL;
    rstmdb_error *err = NULL;
    ck_assert_int_eq(rstmdb_tls_from_files(&tls, "/nonexistent/ca.pem", NULL, NULL, &err),
                     RSTMDB_ERR_TLS);
    ck_assert_ptr_null(tls);
    ck_assert(strstr(rstmdb_error_message(err), "/nonexistent/ca.pem") != NULL);
    rstmdb_error_free(err);
    err = NULL;
    ck_assert_int_eq(rstmdb_tls_from_files(&tls, NULL, "cert.pem", NULL, &err), RSTMDB_ERR_INVALID);
    rstmdb_error_free(err);
    /* System trust store (may be empty here, but it loads). */
    ck_assert_int_eq(rstmdb_tls_from_files(&tls, NULL, NULL, NULL, NULL), RSTMDB_OK);
    rstmdb_tls_free(tls);
    rstmdb_tls_free(NULL);
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
    Suite *s = suite_create("client_tls");
    TCase *tc = tcase_create("tls");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_tls_verified);
    tcase_add_test(tc, test_mtls);
    tcase_add_test(tc, test_tls_config_errors);
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
