/* test_relay.c: the fault relay's own tests: the real rstmdb-relay binary
 * between a client socket and an in-process echo server; each control
 * command is checked by what the client observes. */
#include "echo.h"
#include "spawn.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef RSTMDB_RELAY_BIN
#define RSTMDB_RELAY_BIN "rstmdb-relay"
#endif

#define IO_MS 5000

static echo_server g_echo;
static spawned g_relay;

static const char *relay_bin(void)
{
    const char *env = getenv("RSTMDB_RELAY_BIN");
    return env != NULL && *env != '\0' ? env : RSTMDB_RELAY_BIN;
}

static void start_relay(const char *upstream, const char *buffer_bytes)
{
    const char *argv[10] = {relay_bin(),   "--upstream", upstream, "--control",
                            "127.0.0.1:0", NULL,         NULL,     NULL};
    if (buffer_bytes != NULL) {
        argv[5] = "--buffer-bytes";
        argv[6] = buffer_bytes;
    }
    ck_assert_int_eq(spawn_start(&g_relay, argv, NULL, 10000), 0);
    ck_assert_int_eq(spawn_read_control(&g_relay, 10000), 0);
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    ck_assert_int_eq(echo_start(&g_echo, ECHO_PLAIN), 0);
    start_relay(g_echo.addr, NULL);
}

static void teardown(void)
{
    ck_assert_int_eq(spawn_stop(&g_relay, 5000), 0); /* exit 0 on SIGTERM */
    echo_stop(&g_echo);
}

static void ctl_ok(const char *cmd, char *reply, size_t cap)
{
    char buf[512];
    if (reply == NULL) {
        reply = buf;
        cap = sizeof buf;
    }
    ck_assert_msg(spawn_control(&g_relay, cmd, reply, cap) == 0, "'%s' -> '%s'", cmd, reply);
}

/* The value of `key=` in a stats reply. */
static unsigned long long stat_of(const char *key)
{
    char reply[512];
    char pat[64];
    const char *p;

    ctl_ok("stats", reply, sizeof reply);
    snprintf(pat, sizeof pat, " %s=", key);
    p = strstr(reply, pat);
    ck_assert_msg(p != NULL, "no %s in '%s'", key, reply);
    return strtoull(p + strlen(pat), NULL, 10);
}

static int connect_relay(void)
{
    int fd = tcp_connect(g_relay.addr);
    ck_assert_int_ge(fd, 0);
    return fd;
}

static void roundtrip(int fd, const char *msg, const char *want)
{
    char buf[256];
    size_t n = strlen(msg);
    ck_assert_uint_lt(n, sizeof buf);
    ck_assert_int_eq(send_all(fd, msg, n), 0);
    ck_assert_int_eq(recv_exact(fd, buf, n, IO_MS), 0);
    ck_assert_mem_eq(buf, want, n);
}

START_TEST(echo_through_relay)
{
    int fd = connect_relay();
    roundtrip(fd, "hello\n", "hello\n");
    roundtrip(fd, "again\n", "again\n");
    ck_assert_uint_eq(stat_of("accepted"), 1);
    ck_assert_uint_eq(stat_of("active"), 1);
    ck_assert_uint_ge(stat_of("bytes_up"), 12);
    ck_assert_uint_ge(stat_of("bytes_down"), 12);
    close(fd);
}
END_TEST

static unsigned char pattern_byte(size_t i)
{
    return (unsigned char)((i * 7u + i / 251u) & 0xFF);
}

/* A client that stops reading must make the relay stop reading too: the
 * client's own sends then block. Without backpressure the relay would
 * swallow everything and the send loop below would never block. */
START_TEST(backpressure_bounds_buffers)
{
    const size_t limit = 256u << 20; /* the relay would have to hold this much */
    unsigned char chunk[65536];
    size_t sent = 0, got = 0, i;
    int fd, flags;
    long long deadline;

    ck_assert_int_eq(spawn_stop(&g_relay, 5000), 0);
    start_relay(g_echo.addr, "65536");
    fd = connect_relay();
    flags = fcntl(fd, F_GETFL);
    ck_assert_int_eq(fcntl(fd, F_SETFL, flags | O_NONBLOCK), 0);
    for (;;) {
        struct pollfd pfd = {fd, POLLOUT, 0};
        ssize_t n;
        for (i = 0; i < sizeof chunk; i++)
            chunk[i] = pattern_byte(sent + i);
        if (poll(&pfd, 1, 1000) == 0)
            break; /* blocked for a second: the chain is full */
        n = send(fd, chunk, sizeof chunk, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        ck_assert_int_gt(n, 0);
        sent += (size_t)n;
        ck_assert_msg(sent < limit, "the relay kept reading %zu bytes: no backpressure", sent);
    }
    ck_assert_uint_ge(stat_of("paused"), 1);
    /* Everything sent so far comes back intact once the client reads. */
    deadline = mono_ms() + 30000;
    while (got < sent && mono_ms() < deadline) {
        ssize_t n;
        if (!readable(fd, 1000))
            continue;
        n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        ck_assert_int_gt(n, 0);
        /* One check per chunk: Check's per-assertion bookkeeping is too
         * slow for millions of bytes. */
        for (i = 0; i < (size_t)n && chunk[i] == pattern_byte(got + i); i++) {
        }
        ck_assert_msg(i == (size_t)n, "byte %zu differs", got + i);
        got += (size_t)n;
    }
    if (got != sent) {
        char reply[512];
        spawn_control(&g_relay, "stats", reply, sizeof reply);
        fprintf(stderr, "backpressure: got %zu of %zu; relay %s\n", got, sent, reply);
    }
    ck_assert_uint_eq(got, sent);
    close(fd);
}
END_TEST

START_TEST(cut_closes_existing_only)
{
    char reply[128];
    int a = connect_relay();
    int b;

    roundtrip(a, "x", "x");
    ctl_ok("cut", reply, sizeof reply);
    ck_assert_str_eq(reply, "ok cut 1");
    ck_assert_int_eq(wait_eof(a, IO_MS), 1);
    b = connect_relay();
    roundtrip(b, "after cut", "after cut");
    ck_assert_uint_eq(stat_of("cut"), 1);
    close(a);
    close(b);
}
END_TEST

START_TEST(refuse_on_off)
{
    int old = connect_relay();
    int c, d;

    roundtrip(old, "1", "1");
    ctl_ok("refuse on", NULL, 0);
    c = connect_relay();
    ck_assert_int_eq(wait_eof(c, IO_MS), 1);
    roundtrip(old, "still", "still"); /* refusing new ones leaves old ones alone */
    ctl_ok("refuse off", NULL, 0);
    d = connect_relay();
    roundtrip(d, "back", "back");
    ck_assert_uint_eq(stat_of("refused"), 1);
    close(old);
    close(c);
    close(d);
}
END_TEST

START_TEST(stall_holds_then_delivers)
{
    char buf[8];
    int fd = connect_relay();

    roundtrip(fd, "0", "0");
    ctl_ok("stall on", NULL, 0);
    ck_assert_int_eq(send_all(fd, "ping", 4), 0);
    ck_assert_int_eq(readable(fd, 300), 0);  /* nothing comes back while stalled */
    ck_assert_uint_eq(stat_of("active"), 1); /* and the sockets stay open */
    ctl_ok("stall off", NULL, 0);
    ck_assert_int_eq(recv_exact(fd, buf, 4, IO_MS), 0);
    ck_assert_mem_eq(buf, "ping", 4);
    close(fd);
}
END_TEST

START_TEST(slow_limits_rate)
{
    char out[4000], in[4000];
    int fd = connect_relay();
    long long t0;

    memset(out, 'a', sizeof out);
    roundtrip(fd, "warm", "warm");
    ctl_ok("slow 2000", NULL, 0);
    t0 = mono_ms();
    ck_assert_int_eq(send_all(fd, out, sizeof out), 0);
    ck_assert_int_eq(recv_exact(fd, in, sizeof in, 20000), 0);
    /* A lower bound only: 4000 bytes at 2000 B/s cannot pass in under ~2 s
     * (a loaded machine can only make it slower, never faster). */
    ck_assert_int_ge(mono_ms() - t0, 1000);
    ck_assert_mem_eq(in, out, sizeof out);
    ctl_ok("slow 0", NULL, 0);
    roundtrip(fd, "fast again", "fast again");
    close(fd);
}
END_TEST

START_TEST(garble_flips_one_byte_once)
{
    char buf[6];
    int fd = connect_relay();

    roundtrip(fd, "clean", "clean");
    ctl_ok("garble", NULL, 0);
    ck_assert_int_eq(send_all(fd, "abcdef", 6), 0);
    ck_assert_int_eq(recv_exact(fd, buf, 6, IO_MS), 0);
    ck_assert_mem_eq(buf, "abcde", 5);
    ck_assert_int_eq((unsigned char)buf[5], (unsigned char)('f' ^ 0xFF));
    roundtrip(fd, "abcdef", "abcdef"); /* only the next chunk */
    ck_assert_uint_eq(stat_of("garbled"), 1);
    close(fd);
}
END_TEST

START_TEST(upstream_retarget)
{
    echo_server upper;
    char cmd[128];
    int a = connect_relay();
    int b;

    ck_assert_int_eq(echo_start(&upper, ECHO_UPPER), 0);
    roundtrip(a, "low", "low");
    snprintf(cmd, sizeof cmd, "upstream %s", upper.addr);
    ctl_ok(cmd, NULL, 0);
    b = connect_relay();
    roundtrip(b, "low", "LOW");
    roundtrip(a, "low", "low"); /* existing pairs keep their upstream */
    close(a);
    close(b);
    echo_stop(&upper);
}
END_TEST

START_TEST(upstream_eof_flushes_then_closes)
{
    echo_server greet;
    char cmd[128];
    char buf[4];
    int fd;

    ck_assert_int_eq(echo_start(&greet, ECHO_GREET), 0);
    snprintf(cmd, sizeof cmd, "upstream %s", greet.addr);
    ctl_ok(cmd, NULL, 0);
    fd = connect_relay();
    ck_assert_int_eq(recv_exact(fd, buf, 4, IO_MS), 0);
    ck_assert_mem_eq(buf, "bye\n", 4);
    ck_assert_int_eq(wait_eof(fd, IO_MS), 1);
    close(fd);
    echo_stop(&greet);
}
END_TEST

START_TEST(upstream_down_closes_client)
{
    echo_server gone;
    char cmd[128];
    int fd;

    ck_assert_int_eq(echo_start(&gone, ECHO_PLAIN), 0);
    snprintf(cmd, sizeof cmd, "upstream %s", gone.addr);
    echo_stop(&gone); /* nothing listens there now */
    ctl_ok(cmd, NULL, 0);
    fd = connect_relay();
    ck_assert_int_eq(wait_eof(fd, IO_MS), 1);
    ck_assert_uint_ge(stat_of("connect_failed"), 1);
    close(fd);
}
END_TEST

START_TEST(bad_commands_rejected)
{
    static const char *const bad[] = {"bogus",  "slow x",        "slow -1", "stall maybe",
                                      "refuse", "upstream nope", "cut now", ""};
    char reply[256];
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (bad[i][0] == '\0')
            continue; /* spawn_control refuses to send an empty line */
        ck_assert_int_eq(spawn_control(&g_relay, bad[i], reply, sizeof reply), -1);
        ck_assert_msg(strncmp(reply, "err ", 4) == 0, "'%s' -> '%s'", bad[i], reply);
    }
    ctl_ok("help", NULL, 0);
}
END_TEST

static Suite *relay_suite(void)
{
    Suite *s = suite_create("relay");
    TCase *tc = tcase_create("relay");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, echo_through_relay);
    tcase_add_test(tc, backpressure_bounds_buffers);
    tcase_add_test(tc, cut_closes_existing_only);
    tcase_add_test(tc, refuse_on_off);
    tcase_add_test(tc, stall_holds_then_delivers);
    tcase_add_test(tc, slow_limits_rate);
    tcase_add_test(tc, garble_flips_one_byte_once);
    tcase_add_test(tc, upstream_retarget);
    tcase_add_test(tc, upstream_eof_flushes_then_closes);
    tcase_add_test(tc, upstream_down_closes_client);
    tcase_add_test(tc, bad_commands_rejected);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(relay_suite());
    int failed;

    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
