/* test_tls.c: TLS and mTLS against rstmdb-testd with certificates the test
 * makes with the openssl CLI in a temporary directory: verification, the
 * hostname/IP check, SNI override, the insecure mode, client certificates,
 * and that every failure's message names its stage, peer and reason. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
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
    /* A server certificate from the same CA whose validity ended in 2020:
     * `openssl ca` is the CLI that takes explicit dates. */
    sh("printf '[ca]\\ndefault_ca=d\\n[d]\\ndatabase=index.txt\\nnew_certs_dir=.\\n"
       "serial=ca.srl\\ndefault_md=sha256\\npolicy=p\\ncopy_extensions=copy\\n"
       "unique_subject=no\\n[p]\\ncommonName=supplied\\n' > ca.cnf && : > index.txt && "
       "openssl req " EC " -keyout exp.key -out exp.csr -subj /CN=localhost "
       "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 && "
       "openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in exp.csr -out exp.pem "
       "-startdate 20200101000000Z -enddate 20200201000000Z");
}

static void remove_certs(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static spawned srv;

static void start_tls_with(const char *cert, const char *key, bool mtls)
{
    const char *args[] = {
        "--tls-cert", P(cert), "--tls-key", P(key), mtls ? "--tls-client-ca" : NULL,
        P("ca.pem"),  NULL};
    ck_assert_int_eq(spawn_testd(&srv, args), 0);
}

static void start_tls(bool mtls)
{
    start_tls_with("srv.pem", "srv.key", mtls);
}

/* The failure message names the handshake stage, the peer and `reason`. */
static void expect_reason(const char *msg, const char *stage, const char *reason)
{
    ck_assert_msg(strstr(msg, stage) != NULL, "no stage \"%s\" in: %s", stage, msg);
    ck_assert_msg(strstr(msg, srv.addr) != NULL, "no peer %s in: %s", srv.addr, msg);
    ck_assert_msg(strstr(msg, reason) != NULL, "no reason \"%s\" in: %s", reason, msg);
    ck_assert_msg(strstr(msg, "lib(0)") == NULL && strstr(msg, "reason(") == NULL,
                  "OpenSSL's bare code instead of a reason: %s", msg);
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
    expect_reason(msg, "TLS handshake with", "certificate verification failed: hostname mismatch");
    rstmdb_tls_free(tls);
    /* An unrelated CA: verification fails. */
    ck_assert_int_eq(rstmdb_tls_from_files(&tls, P("other.pem"), NULL, NULL, NULL), RSTMDB_OK);
    ck_assert_int_eq(try_connect(tls, msg, sizeof(msg)), RSTMDB_ERR_TLS);
    expect_reason(msg, "TLS handshake with",
                  "certificate verification failed: unable to get local issuer certificate");
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
    /* Without a client certificate the server refuses with a TLS alert,
     * which (TLS 1.3) arrives after the client's side of the handshake and
     * may be lost to the reset that follows: the message says what the
     * client saw the server ask for. */
    ck_assert_int_eq(rstmdb_tls_from_files(&tls, P("ca.pem"), NULL, NULL, NULL), RSTMDB_OK);
    int rc = try_connect(tls, msg, sizeof(msg));
    ck_assert_msg(rc == RSTMDB_ERR_TLS, "rc %d: %s", rc, msg);
    expect_reason(msg, "TLS with",
                  "the server asked for a client certificate and none is configured");
    rstmdb_tls_free(tls);
    spawn_stop(&srv, 5000);
    remove_certs();
}
END_TEST

START_TEST(test_tls_expired)
{
    char msg[512];
    make_certs();
    start_tls_with("exp.pem", "exp.key", false);
    rstmdb_tls *tls = NULL;
    ck_assert_int_eq(rstmdb_tls_from_files(&tls, P("ca.pem"), NULL, NULL, NULL), RSTMDB_OK);
    ck_assert_int_eq(try_connect(tls, msg, sizeof(msg)), RSTMDB_ERR_TLS);
    expect_reason(msg, "TLS handshake with",
                  "certificate verification failed: certificate has expired");
    rstmdb_tls_free(tls);
    spawn_stop(&srv, 5000);
    remove_certs();
}
END_TEST

/* A peer that is not a TLS server: it answers the ClientHello with an HTTP
 * error, as a misdirected port would. Runs in a child; killed by the test. */
static pid_t garbage_server(char *addr, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sin);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(fd, 8), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    snprintf(addr, cap, "127.0.0.1:%u", ntohs(sin.sin_port));
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        static const char answer[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        for (;;) {
            int c = accept(fd, NULL, NULL);
            if (c < 0)
                continue;
            char in[512];
            (void)!read(c, in, sizeof(in));
            (void)!write(c, answer, sizeof(answer) - 1);
            close(c);
        }
    }
    close(fd);
    return pid;
}

START_TEST(test_tls_protocol_mismatch)
{
    char msg[512];
    rstmdb_tls *tls = NULL;
    ck_assert_int_eq(rstmdb_tls_insecure(&tls, NULL), RSTMDB_OK);
    /* A server that answers something other than TLS. */
    pid_t pid = garbage_server(srv.addr, sizeof(srv.addr));
    ck_assert_int_eq(try_connect(tls, msg, sizeof(msg)), RSTMDB_ERR_TLS);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    expect_reason(msg, "TLS handshake with", "wrong version number");
    /* A plain rstmdb port: the server closes on the bytes it cannot frame. */
    ck_assert_int_eq(spawn_testd(&srv, NULL), 0);
    int rc = try_connect(tls, msg, sizeof(msg));
    ck_assert_msg(rc == RSTMDB_ERR_CLOSED || rc == RSTMDB_ERR_IO, "rc %d: %s", rc, msg);
    expect_reason(msg, "TLS handshake with", "(is it a TLS port?)");
    rstmdb_tls_free(tls);
    spawn_stop(&srv, 5000);
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
    tcase_add_test(tc, test_tls_expired);
    tcase_add_test(tc, test_tls_protocol_mismatch);
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
