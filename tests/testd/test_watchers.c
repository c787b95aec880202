/* test_watchers.c: 10,000 watchers and 100,000 events against rstmdb-testd
 * (issue #3's acceptance): readers get every event of theirs; non-readers lose
 * events instead of growing the server's memory past the per-connection caps. */
#include "rawnet.h"
#include "spawn.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define WAIT_MS  20000
#define NCONN    100 /* watcher connections */
#define PER_CONN 100 /* instances watched per connection: 10,000 watchers */
#define NINST    (NCONN * PER_CONN)
#define NEVENTS  100000 /* spread evenly: NEVENTS / NINST per instance */
#define BATCH    500    /* pipelined requests per round trip */
#define EVQ_CAP  64     /* --event-queue */
#define PAD      300    /* payload bytes per event, so slow consumers fill up quickly */

static void send_req(rawnet *c, const char *json)
{
    ck_assert_int_eq(rawnet_req(c, json), 0);
}

static void expect_ok(rawnet *c)
{
    char *doc = NULL;
    int rc = rawnet_recv(c, &doc, WAIT_MS);
    ck_assert_msg(rc == 1, "no answer (rc %d)", rc);
    ck_assert_msg(strstr(doc, "\"status\":\"ok\"") != NULL, "not ok: %.300s", doc);
    free(doc);
}

/* A counter out of the control channel's `stats` line. */
static unsigned long long counter(const char *stats, const char *name)
{
    char key[64];
    const char *p;
    snprintf(key, sizeof key, " %s=", name);
    p = strstr(stats, key);
    ck_assert_msg(p != NULL, "no %s in '%s'", name, stats);
    return strtoull(p + strlen(key), NULL, 10);
}

/* Peak resident memory of `pid` in KiB (VmHWM), or 0 if unknown. */
static unsigned long peak_rss_kib(pid_t pid)
{
    char path[64];
    char line[256];
    unsigned long kib = 0;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmHWM: %lu kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* Read every event already waiting on `c` without blocking; returns how many. */
static int drain(rawnet *c)
{
    int n = 0;
    char *doc = NULL;
    while (rawnet_recv(c, &doc, 0) == 1) {
        ck_assert_msg(strstr(doc, "\"type\":\"event\"") != NULL, "not an event: %.200s", doc);
        free(doc);
        n++;
    }
    return n;
}

START_TEST(ten_thousand_watchers)
{
    const char *args[] = {"--event-queue", "64", "--socket-sndbuf", "65536", NULL};
    static rawnet w[NCONN];
    static int got[NCONN];
    static char req[PAD + 512];
    char pad[PAD + 1];
    char stats[1024];
    spawned p;
    rawnet prod;
    int i, k, n;

    memset(pad, 'x', PAD);
    pad[PAD] = '\0';
    ck_assert_int_eq(spawn_testd_control(&p, args), 0);
    ck_assert_int_eq(rawnet_connect(&prod, p.addr, 0), 0);
    send_req(&prod,
             "{\"type\":\"request\",\"id\":\"m\",\"op\":\"PUT_MACHINE\",\"params\":{\"machine\":"
             "\"sw\",\"version\":1,\"definition\":{\"states\":[\"on\",\"off\"],\"initial\":"
             "\"off\",\"transitions\":[{\"from\":\"off\",\"event\":\"T\",\"to\":\"on\"},"
             "{\"from\":\"on\",\"event\":\"T\",\"to\":\"off\"}]}}}");
    expect_ok(&prod);
    for (i = 0; i < NINST; i += BATCH) {
        for (k = i; k < i + BATCH; k++) {
            snprintf(req, sizeof req,
                     "{\"type\":\"request\",\"id\":\"c%d\",\"op\":\"CREATE_INSTANCE\",\"params\":{"
                     "\"instance_id\":\"i%d\",\"machine\":\"sw\",\"version\":1}}",
                     k, k);
            send_req(&prod, req);
        }
        for (k = i; k < i + BATCH; k++)
            expect_ok(&prod);
    }
    /* Connection j watches instances j*PER_CONN .. j*PER_CONN+PER_CONN-1.
     * Odd connections get a 4 KiB receive window and never read again. */
    for (i = 0; i < NCONN; i++) {
        ck_assert_int_eq(rawnet_connect(&w[i], p.addr, i % 2 ? 4096 : 0), 0);
        for (k = 0; k < PER_CONN; k++) {
            snprintf(req, sizeof req,
                     "{\"type\":\"request\",\"id\":\"w%d\",\"op\":\"WATCH_INSTANCE\",\"params\":{"
                     "\"instance_id\":\"i%d\",\"include_ctx\":false}}",
                     k, i * PER_CONN + k);
            send_req(&w[i], req);
        }
        for (k = 0; k < PER_CONN; k++)
            expect_ok(&w[i]);
    }
    /* The events, round-robin over the instances; readers read as they come. */
    for (i = 0; i < NEVENTS; i += BATCH) {
        for (k = i; k < i + BATCH; k++) {
            snprintf(req, sizeof req,
                     "{\"type\":\"request\",\"id\":\"a%d\",\"op\":\"APPLY_EVENT\",\"params\":{"
                     "\"instance_id\":\"i%d\",\"event\":\"T\",\"payload\":{\"pad\":\"%s\"}}}",
                     k, k % NINST, pad);
            send_req(&prod, req);
        }
        for (k = i; k < i + BATCH; k++)
            expect_ok(&prod); /* responses are never dropped */
        for (n = 0; n < NCONN; n += 2)
            got[n] += drain(&w[n]);
    }
    ck_assert_int_eq(spawn_control(&p, "stats", stats, sizeof stats), 0);
    fprintf(stderr, "after %d events: peak RSS %lu KiB; %s\n", NEVENTS, peak_rss_kib(p.pid), stats);
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TESTD_ASAN 1
#endif
#endif
#if !defined(__SANITIZE_ADDRESS__) && !defined(TESTD_ASAN)
    /* Whole process, engine and its in-memory WAL included; the sanitizer
     * build is exempt (its quarantine alone holds 256 MiB of freed memory). */
    ck_assert_uint_lt(peak_rss_kib(p.pid), 512ul * 1024ul);
#endif
    ck_assert_uint_eq(counter(stats, "events"), NEVENTS);
    ck_assert_uint_gt(counter(stats, "events_dropped"), 0);
    /* The bound: at most EVQ_CAP queued events per connection, and output
     * buffers near their 64 KiB event threshold. */
    ck_assert_uint_le(counter(stats, "queued_events"), (unsigned long long)NCONN * EVQ_CAP);
    ck_assert_uint_le(counter(stats, "queued_bytes"),
                      (unsigned long long)NCONN * EVQ_CAP * (PAD + 400));
    ck_assert_uint_le(counter(stats, "out_bytes"),
                      (unsigned long long)NCONN * (64 * 1024 + PAD + 400));
    /* Readers get every one of their events (NEVENTS / NINST per instance). */
    for (n = 0; n < NCONN; n += 2) {
        int want = PER_CONN * (NEVENTS / NINST);
        while (got[n] < want) {
            char *doc = NULL;
            int rc = rawnet_recv(&w[n], &doc, WAIT_MS);
            ck_assert_msg(rc == 1, "reader %d: %d of %d events, then rc %d", n, got[n], want, rc);
            free(doc);
            got[n]++;
        }
    }
    for (i = 0; i < NCONN; i++)
        rawnet_close(&w[i]);
    rawnet_close(&prod);
    {
        int st = spawn_stop(&p, 20000);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("testd_watchers");
    TCase *tc = tcase_create("watchers");
    SRunner *sr;
    int failed;

    signal(SIGPIPE, SIG_IGN);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, ten_thousand_watchers);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
