/* test_cli.c: the rstmdb-testd program as a child process (spawn.h): the
 * "listening on" line, SIGTERM exit 0, flag errors (exit 2), --help, auth
 * tokens, the fault flags and the control channel seen from outside. */
#include "rawexpect.h"
#include "rawnet.h"
#include "spawn.h"

#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rstmdb/error.h>
#include <rstmdb/frame.h>

#define WAIT_MS 10000

#define PING_REQ(id) "{\"type\":\"request\",\"id\":\"" id "\",\"op\":\"PING\"}"
#define PONG(id) \
    "{\"type\":\"response\",\"id\":\"" id "\",\"status\":\"ok\",\"result\":{\"pong\":true}}"

static void conn(rawnet *c, const spawned *p)
{
    ck_assert_int_eq(rawnet_connect(c, p->addr, 0), 0);
}

static void stop_clean(spawned *p)
{
    int st = spawn_stop(p, 10000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "testd did not exit 0 on SIGTERM (status %d)", st);
}

/* Run testd with `args` to completion (it must exit by itself); stdout and
 * stderr are captured into `out`. Returns the exit status, or -1. */
static int run_to_exit(const char *const args[], char *out, size_t cap)
{
    char path[] = "/tmp/testd-cli-XXXXXX";
    const char *argv[32];
    int fd = mkstemp(path);
    size_t n = 0;
    pid_t pid;
    int st = -1;
    ssize_t r;

    ck_assert_int_ge(fd, 0);
    argv[n++] = spawn_testd_path();
    while (*args != NULL && n < 31)
        argv[n++] = *args++;
    argv[n] = NULL;
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        execv(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    {
        int i;
        /* Bounded wait: a testd that does not exit is killed (and fails the check). */
        for (i = 0; i < 1000 && waitpid(pid, &st, WNOHANG) == 0; i++)
            usleep(10000);
        if (i == 1000) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            st = -1;
        }
    }
    lseek(fd, 0, SEEK_SET);
    r = read(fd, out, cap - 1);
    out[r > 0 ? r : 0] = '\0';
    close(fd);
    unlink(path);
    return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(listening_line_and_sigterm)
{
    spawned p;
    rawnet c;

    ck_assert_int_eq(spawn_testd(&p, NULL), 0);
    ck_assert_str_eq(p.host, "127.0.0.1");
    ck_assert_int_gt(p.port, 0);
    conn(&c, &p);
    ck_assert_int_eq(rawnet_req(&c, PING_REQ("1")), 0);
    rawexpect_doc(&c, PONG("1"));
    /* SIGTERM with a client still connected: it is closed, exit 0. */
    stop_clean(&p);
    rawexpect_eof(&c);
    rawnet_close(&c);
    ck_assert_int_eq(spawn_stop(&p, 100), -1); /* second stop is harmless */
}
END_TEST

START_TEST(ipv6_listening_line)
{
    const char *args[] = {spawn_testd_path(), "--listen", "[::1]:0", NULL};
    spawned p;

    if (spawn_start(&p, args, NULL, 10000) != 0)
        return; /* no IPv6 loopback here */
    ck_assert_str_eq(p.host, "::1");
    ck_assert_int_eq(strncmp(p.addr, "[::1]:", 6), 0);
    stop_clean(&p);
}
END_TEST

START_TEST(bad_flags_exit_2)
{
    static const char *const cases[][4] = {
        {"--bogus", NULL, NULL, NULL},
        {"--max-frame-bytes", "0", NULL, NULL},
        {"--max-frame-bytes", "lots", NULL, NULL},
        {"--max-frame-bytes", "16777217", NULL, NULL},
        {"--listen", NULL, NULL, NULL},
        {"--listen", "nowhere", NULL, NULL},
        {"--token-hash", "abc", NULL, NULL},
        {"--tls-cert", "/nonexistent.pem", NULL, NULL},
        {"--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"},
        {"--fault-hang=yes", NULL, NULL, NULL},
        {"--compat", "0.2", NULL, NULL},
    };
    static const char *const names[] = {
        "--bogus",    "--max-frame-bytes", "--max-frame-bytes", "--max-frame-bytes",
        "--listen",   "--listen",          "--token-hash",      "--tls-key",
        "--tls-cert", "--fault-hang",      "--compat"};
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[4096];
        const char *args[5] = {cases[i][0], cases[i][1], cases[i][2], cases[i][3], NULL};
        int st = run_to_exit(args, out, sizeof out);
        ck_assert_msg(st == 2, "case %zu (%s): exit %d, output: %s", i, cases[i][0], st, out);
        ck_assert_msg(strstr(out, names[i]) != NULL, "case %zu: message does not name %s: %s", i,
                      names[i], out);
        ck_assert_msg(strstr(out, "listening on") == NULL, "case %zu started anyway", i);
    }
}
END_TEST

/* A port already taken is not a configuration error: exit 1, naming it. */
START_TEST(port_in_use_exits_1)
{
    spawned p;
    char out[4096];
    const char *args[] = {"--listen", NULL, NULL};

    ck_assert_int_eq(spawn_testd(&p, NULL), 0);
    args[1] = p.addr;
    ck_assert_int_eq(run_to_exit(args, out, sizeof out), 1);
    ck_assert_msg(strstr(out, "cannot listen on") != NULL, "%s", out);
    stop_clean(&p);
}
END_TEST

START_TEST(help_and_version)
{
    static const char *const flags[] = {
        "--listen",          "--control",           "--token",
        "--token-hash",      "--tls-cert",          "--tls-key",
        "--tls-client-ca",   "--max-frame-bytes",   "--max-machine-versions",
        "--allow-flush-all", "--idle-timeout-secs", "--max-connections",
        "--fault-delay-ms",  "--fault-close-after", "--fault-garble-every",
        "--fault-hang",      "--fault-refuse",      "--compat",
        "--version"};
    const char *help[] = {"--help", NULL};
    const char *version[] = {"--version", NULL};
    char out[8192];
    size_t i;

    ck_assert_int_eq(run_to_exit(help, out, sizeof out), 0);
    for (i = 0; i < sizeof flags / sizeof flags[0]; i++)
        ck_assert_msg(strstr(out, flags[i]) != NULL, "--help lacks %s", flags[i]);
    ck_assert_int_eq(run_to_exit(version, out, sizeof out), 0);
    ck_assert_int_eq(strncmp(out, "rstmdb-testd ", 13), 0);
    /* It answers as 0.3.0 unless told --compat 0.1. */
    ck_assert_msg(strstr(out, "server_version 0.3.0") != NULL, "%s", out);
    const char *v01[] = {"--compat", "0.1", "--version", NULL};
    ck_assert_int_eq(run_to_exit(v01, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "server_version 0.1.1") != NULL, "%s", out);
}
END_TEST

/* --token turns auth on with the token's SHA-256; --token-hash adds a hash. */
START_TEST(tokens_turn_auth_on)
{
    /* SHA-256("secret") */
    const char *args[] = {"--token", "other", "--token-hash",
                          "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b", NULL};
    spawned p;
    rawnet c;

    ck_assert_int_eq(spawn_testd(&p, args), 0);
    conn(&c, &p);
    ck_assert_int_eq(rawnet_req(&c, "{\"type\":\"request\",\"id\":\"i\",\"op\":\"INFO\"}"), 0);
    rawexpect_contains(&c, "\"UNAUTHORIZED\"");
    ck_assert_int_eq(rawnet_req(&c, "{\"type\":\"request\",\"id\":\"a\",\"op\":\"AUTH\",\"params\":"
                                    "{\"method\":\"bearer\",\"token\":\"wrong\"}}"),
                     0);
    rawexpect_contains(&c, "\"AUTH_FAILED\"");
    ck_assert_int_eq(rawnet_req(&c, "{\"type\":\"request\",\"id\":\"b\",\"op\":\"AUTH\",\"params\":"
                                    "{\"method\":\"bearer\",\"token\":\"secret\"}}"),
                     0);
    rawexpect_contains(&c, "\"authenticated\":true");
    rawnet_close(&c);
    conn(&c, &p);
    ck_assert_int_eq(rawnet_req(&c, "{\"type\":\"request\",\"id\":\"b\",\"op\":\"AUTH\",\"params\":"
                                    "{\"method\":\"bearer\",\"token\":\"other\"}}"),
                     0);
    rawexpect_contains(&c, "\"authenticated\":true");
    ck_assert_int_eq(rawnet_req(&c, "{\"type\":\"request\",\"id\":\"i\",\"op\":\"INFO\"}"), 0);
    rawexpect_contains(&c, "\"max_frame_bytes\"");
    rawnet_close(&c);
    stop_clean(&p);
}
END_TEST

START_TEST(fault_flags)
{
    const char *close_after[] = {"--fault-close-after", "1", NULL};
    const char *refuse[] = {"--fault-refuse", NULL};
    const char *garble[] = {"--fault-garble-every", "1", NULL};
    spawned p;
    rawnet c;
    char *got = NULL;

    ck_assert_int_eq(spawn_testd(&p, close_after), 0);
    conn(&c, &p);
    ck_assert_int_eq(rawnet_req(&c, PING_REQ("1")), 0);
    rawexpect_doc(&c, PONG("1"));
    rawexpect_eof(&c);
    rawnet_close(&c);
    stop_clean(&p);

    ck_assert_int_eq(spawn_testd(&p, refuse), 0);
    conn(&c, &p);
    rawexpect_eof(&c);
    rawnet_close(&c);
    stop_clean(&p);

    ck_assert_int_eq(spawn_testd(&p, garble), 0);
    conn(&c, &p);
    ck_assert_int_eq(rawnet_req(&c, PING_REQ("g")), 0);
    ck_assert_int_eq(rawnet_recv(&c, &got, WAIT_MS), RSTMDB_ERR_FRAME_CRC);
    rawnet_close(&c);
    stop_clean(&p);
}
END_TEST

START_TEST(fault_hang_and_delay_flags)
{
    const char *hang[] = {"--fault-hang", NULL};
    const char *delay[] = {"--fault-delay-ms", "200", NULL};
    spawned p;
    rawnet c;
    char *got = NULL;
    char reply[256];
    struct timespec a, b;

    ck_assert_int_eq(spawn_testd_control(&p, hang), 0);
    conn(&c, &p);
    ck_assert_int_eq(rawnet_req(&c, PING_REQ("h")), 0);
    ck_assert_int_eq(rawnet_recv(&c, &got, 300), RAWNET_TIMEOUT);
    ck_assert_int_eq(spawn_control(&p, "hang off", reply, sizeof reply), 0);
    ck_assert_str_eq(reply, "ok hang=off");
    ck_assert_int_eq(rawnet_req(&c, PING_REQ("after")), 0);
    rawexpect_doc(&c, PONG("after"));
    rawnet_close(&c);
    stop_clean(&p);

    ck_assert_int_eq(spawn_testd(&p, delay), 0);
    conn(&c, &p);
    clock_gettime(CLOCK_MONOTONIC, &a);
    ck_assert_int_eq(rawnet_req(&c, PING_REQ("d")), 0);
    rawexpect_doc(&c, PONG("d"));
    clock_gettime(CLOCK_MONOTONIC, &b);
    ck_assert_int_ge((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000, 190);
    rawnet_close(&c);
    stop_clean(&p);
}
END_TEST

START_TEST(control_channel)
{
    spawned p;
    rawnet c;
    char reply[512];
    char *got = NULL;

    ck_assert_int_eq(spawn_testd_control(&p, NULL), 0);
    ck_assert_int_eq(strncmp(p.control_addr, "127.0.0.1:", 10), 0);
    ck_assert_int_eq(spawn_control(&p, "stats", reply, sizeof reply), 0);
    ck_assert_int_eq(strncmp(reply, "ok active=0 ", 12), 0);
    ck_assert_int_eq(spawn_control(&p, "bogus", reply, sizeof reply), -1);
    ck_assert_int_eq(strncmp(reply, "err ", 4), 0);
    ck_assert_int_eq(spawn_control(&p, "garble", reply, sizeof reply), 0);
    conn(&c, &p);
    ck_assert_int_eq(rawnet_req(&c, PING_REQ("g")), 0);
    ck_assert_int_eq(rawnet_recv(&c, &got, WAIT_MS), RSTMDB_ERR_FRAME_CRC);
    rawnet_close(&c);
    conn(&c, &p);
    ck_assert_int_eq(rawnet_req(&c, PING_REQ("ok")), 0);
    rawexpect_doc(&c, PONG("ok"));
    ck_assert_int_eq(spawn_control(&p, "drop-all", reply, sizeof reply), 0);
    ck_assert_str_eq(reply, "ok dropped=1");
    rawexpect_eof(&c);
    rawnet_close(&c);
    stop_clean(&p);
}
END_TEST

START_TEST(control_on_unix_socket)
{
    char path[64];
    const char *args[] = {"--control", path, NULL};
    spawned p;
    char reply[256];

    snprintf(path, sizeof path, "unix:/tmp/testd-ctl-%d.sock", (int)getpid());
    ck_assert_int_eq(spawn_testd(&p, args), 0);
    ck_assert_int_eq(spawn_read_control(&p, 10000), 0);
    ck_assert_str_eq(p.control_addr, path);
    ck_assert_int_eq(spawn_control(&p, "delay 0", reply, sizeof reply), 0);
    ck_assert_str_eq(reply, "ok delay=0");
    stop_clean(&p);
    ck_assert_int_ne(access(path + 5, F_OK), 0); /* the socket file is removed */
}
END_TEST

static Suite *cli_suite(void)
{
    Suite *s = suite_create("testd_cli");
    TCase *tc = tcase_create("cli");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, listening_line_and_sigterm);
    tcase_add_test(tc, ipv6_listening_line);
    tcase_add_test(tc, bad_flags_exit_2);
    tcase_add_test(tc, port_in_use_exits_1);
    tcase_add_test(tc, help_and_version);
    tcase_add_test(tc, tokens_turn_auth_on);
    tcase_add_test(tc, fault_flags);
    tcase_add_test(tc, fault_hang_and_delay_flags);
    tcase_add_test(tc, control_channel);
    tcase_add_test(tc, control_on_unix_socket);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cli_suite());
    int failed;

    signal(SIGPIPE, SIG_IGN);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
