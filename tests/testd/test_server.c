/* test_server.c: rstmdb-testd's network layer over real loopback sockets, the
 * server in-process on its own thread (framing, ordering, silent closes, JSONL,
 * faults, limits, TLS, slow consumers); the test thread only touches sockets. */
#include "engine.h"
#include "fault.h"
#include "rawexpect.h"
#include "rawnet.h"
#include "server.h"

#include <check.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rstmdb/error.h>
#include <rstmdb/frame.h>

#define WAIT_MS 10000 /* upper bound for anything that must arrive */

/* ---- an in-process server on a thread ---------------------------------- */

typedef struct testsrv {
    struct event_base *base;
    engine *eng;
    server *srv;
    struct event *stop_ev;
    int stop_pipe[2];
    pthread_t th;
    char addr[80];
    char ctl[128];
} testsrv;

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static void *loop_main(void *arg)
{
    testsrv *t = arg;
    event_base_dispatch(t->base);
    return NULL;
}

/* Start with `cfg` (listen and control default to free loopback ports). */
static void ts_start(testsrv *t, server_config *cfg)
{
    engine_config ecfg;
    char err[256];
    int rc;

    memset(t, 0, sizeof *t);
    memset(&ecfg, 0, sizeof ecfg);
    if (cfg->listen == NULL)
        cfg->listen = "127.0.0.1:0";
    if (cfg->control == NULL)
        cfg->control = "127.0.0.1:0";
    t->base = event_base_new();
    ck_assert_ptr_nonnull(t->base);
    ck_assert_int_eq(engine_new(&t->eng, &ecfg), 0);
    rc = server_new(&t->srv, t->base, t->eng, cfg, err, sizeof err);
    ck_assert_msg(rc == 0, "server_new: %s", err);
    snprintf(t->addr, sizeof t->addr, "%s", server_address(t->srv));
    snprintf(t->ctl, sizeof t->ctl, "%s", server_control_address(t->srv));
    ck_assert_int_eq(pipe(t->stop_pipe), 0);
    t->stop_ev = event_new(t->base, t->stop_pipe[0], EV_READ, stop_cb, t->base);
    event_add(t->stop_ev, NULL);
    ck_assert_int_eq(pthread_create(&t->th, NULL, loop_main, t), 0);
}

static void ts_start_default(testsrv *t)
{
    server_config cfg;
    memset(&cfg, 0, sizeof cfg);
    ts_start(t, &cfg);
}

static void ts_stop(testsrv *t)
{
    ck_assert_int_eq((int)write(t->stop_pipe[1], "x", 1), 1);
    pthread_join(t->th, NULL);
    server_free(t->srv);
    event_free(t->stop_ev);
    engine_free(t->eng);
    event_base_free(t->base);
    close(t->stop_pipe[0]);
    close(t->stop_pipe[1]);
}

static void ctl_ok(testsrv *t, const char *cmd, char *reply, size_t cap)
{
    char buf[512];
    if (reply == NULL) {
        reply = buf;
        cap = sizeof buf;
    }
    ck_assert_msg(rawnet_control(t->ctl, cmd, reply, cap) == 0, "control '%s': %s", cmd, reply);
}

/* A counter out of the `stats` line, e.g. counter(t, "garbled"). */
static unsigned long long counter(testsrv *t, const char *name)
{
    char reply[1024];
    char key[64];
    const char *p;

    ctl_ok(t, "stats", reply, sizeof reply);
    snprintf(key, sizeof key, " %s=", name);
    p = strstr(reply, key);
    ck_assert_msg(p != NULL, "no %s in '%s'", name, reply);
    return strtoull(p + strlen(key), NULL, 10);
}

static void conn(rawnet *c, testsrv *t)
{
    ck_assert_int_eq(rawnet_connect(c, t->addr, 0), 0);
}

static void expect_silence(rawnet *c, int ms)
{
    char *got = NULL;
    int rc = rawnet_recv(c, &got, ms);
    ck_assert_msg(rc == RAWNET_TIMEOUT, "expected no answer, got rc %d (%s)", rc, got ? got : "");
}

static void ping(rawnet *c, const char *id)
{
    char req[128];
    char want[160];
    snprintf(req, sizeof req, "{\"type\":\"request\",\"id\":\"%s\",\"op\":\"PING\"}", id);
    snprintf(want, sizeof want,
             "{\"type\":\"response\",\"id\":\"%s\",\"status\":\"ok\",\"result\":{\"pong\":true}}",
             id);
    ck_assert_int_eq(rawnet_req(c, req), 0);
    rawexpect_doc(c, want);
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define PING_REQ(id) "{\"type\":\"request\",\"id\":\"" id "\",\"op\":\"PING\"}"
#define PONG(id) \
    "{\"type\":\"response\",\"id\":\"" id "\",\"status\":\"ok\",\"result\":{\"pong\":true}}"

/* ---- framing ------------------------------------------------------------ */

/* PROTOCOL.md §1.4: the worked request gets exactly the worked response bytes. */
START_TEST(worked_ping_bytes)
{
    static const uint8_t req_hdr[18] = {0x52, 0x43, 0x50, 0x58, 0x00, 0x01, 0x00, 0x01, 0x00,
                                        0x00, 0x00, 0x00, 0x00, 0x27, 0x15, 0xf1, 0x93, 0xb1};
    static const uint8_t resp_hdr[18] = {0x52, 0x43, 0x50, 0x58, 0x00, 0x01, 0x00, 0x01, 0x00,
                                         0x00, 0x00, 0x00, 0x00, 0x41, 0x4b, 0x7b, 0x43, 0x2f};
    const char *req = "{\"type\":\"request\",\"id\":\"1\",\"op\":\"PING\"}";
    const char *resp =
        "{\"type\":\"response\",\"id\":\"1\",\"status\":\"ok\",\"result\":{\"pong\":true}}";
    uint8_t want[18 + 65];
    uint8_t got[18 + 65 + 1];
    testsrv t;
    rawnet c;

    ck_assert_uint_eq(strlen(req), 39);
    ck_assert_uint_eq(strlen(resp), 65);
    memcpy(want, resp_hdr, 18);
    memcpy(want + 18, resp, 65);
    ts_start_default(&t);
    conn(&c, &t);
    ck_assert_int_eq(rawnet_send(&c, req_hdr, 18), 0);
    ck_assert_int_eq(rawnet_send(&c, req, 39), 0);
    ck_assert_uint_eq(rawnet_read_exact(&c, got, sizeof want, WAIT_MS), sizeof want);
    ck_assert_mem_eq(got, want, sizeof want);
    /* Nothing more follows the response. */
    ck_assert_uint_eq(rawnet_read_exact(&c, got, 1, 200), 0);
    rawnet_close(&c);
    ts_stop(&t);
}
END_TEST

/* Pipelined requests in one write are answered strictly in order, also when
 * the frames arrive one byte at a time. */
START_TEST(pipelined_in_order)
{
    uint8_t buf[64 * 200];
    size_t n = 0;
    testsrv t;
    rawnet c;
    int i;

    ts_start_default(&t);
    conn(&c, &t);
    for (i = 0; i < 50; i++) {
        char req[96];
        snprintf(req, sizeof req, "{\"type\":\"request\",\"id\":\"p%d\",\"op\":\"PING\"}", i);
        n += rawnet_frame(buf + n, RSTMDB_FLAG_CRC_PRESENT, req);
    }
    ck_assert_int_eq(rawnet_send(&c, buf, n), 0);
    for (i = 0; i < 50; i++) {
        char want[128];
        snprintf(
            want, sizeof want,
            "{\"type\":\"response\",\"id\":\"p%d\",\"status\":\"ok\",\"result\":{\"pong\":true}}",
            i);
        rawexpect_doc(&c, want);
    }
    /* Split across writes: byte by byte. */
    n = rawnet_frame(buf, RSTMDB_FLAG_CRC_PRESENT, PING_REQ("split"));
    for (i = 0; i < (int)n; i++)
        ck_assert_int_eq(rawnet_send(&c, buf + i, 1), 0);
    rawexpect_doc(&c, PONG("split"));
    rawnet_close(&c);
    ts_stop(&t);
}
END_TEST

/* A frame with no CRC flag is accepted whatever its CRC field says; a
 * header extension is skipped. */
START_TEST(no_crc_and_extension_accepted)
{
    uint8_t buf[256];
    size_t n;
    testsrv t;
    rawnet c;

    ts_start_default(&t);
    conn(&c, &t);
    n = rawnet_frame(buf, 0, PING_REQ("nocrc"));
    buf[14] ^= 0x5a; /* arbitrary CRC field */
    ck_assert_int_eq(rawnet_send(&c, buf, n), 0);
    rawexpect_doc(&c, PONG("nocrc"));

    /* header_len = 3, then 3 extension bytes, then the payload. */
    n = rawnet_frame(buf, RSTMDB_FLAG_CRC_PRESENT | RSTMDB_FLAG_COMPRESSED, PING_REQ("ext"));
    memmove(buf + 21, buf + 18, n - 18);
    buf[9] = 3;
    memcpy(buf + 18, "xyz", 3);
    ck_assert_int_eq(rawnet_send(&c, buf, n + 3), 0);
    rawexpect_doc(&c, PONG("ext"));
    rawnet_close(&c);
    ts_stop(&t);
}
END_TEST

/* Each malformed frame closes the connection without a byte about it; the
 * request before it is answered, the one after it in the same write is not. */
START_TEST(bad_frames_close_silently)
{
    static const char *const names[] = {"magic", "version", "flags", "crc", "too large"};
    server_config cfg;
    testsrv t;
    int k;

    memset(&cfg, 0, sizeof cfg);
    cfg.max_frame_bytes = 1024;
    ts_start(&t, &cfg);
    for (k = 0; k < 5; k++) {
        uint8_t buf[512];
        size_t n = 0, bad;
        rawnet c;

        n += rawnet_frame(buf, RSTMDB_FLAG_CRC_PRESENT, PING_REQ("before"));
        bad = n;
        n += rawnet_frame(buf + n, RSTMDB_FLAG_CRC_PRESENT, PING_REQ("bad"));
        switch (k) {
        case 0:
            buf[bad] = 'X';
            break;
        case 1:
            buf[bad + 5] = 2;
            break;
        case 2:
            buf[bad + 7] |= 0x10;
            break;
        case 3:
            buf[bad + 17] ^= 0x01;
            break;
        default:
            buf[bad + 12] = 0x08; /* payload_len 2048+ > 1024 */
            break;
        }
        n += rawnet_frame(buf + n, RSTMDB_FLAG_CRC_PRESENT, PING_REQ("after"));
        conn(&c, &t);
        ck_assert_int_eq(rawnet_send(&c, buf, n), 0);
        rawexpect_doc(&c, PONG("before"));
        {
            char *got = NULL;
            int rc = rawnet_recv(&c, &got, WAIT_MS);
            ck_assert_msg(rc == 0, "bad %s: expected EOF, got rc %d (%s)", names[k], rc,
                          got ? got : "");
        }
        rawnet_close(&c);
    }
    ck_assert_uint_eq(counter(&t, "bad_frames"), 5);
    ts_stop(&t);
}
END_TEST

/* An envelope the engine rejects (unknown op) closes silently too. */
START_TEST(bad_envelope_closes_silently)
{
    testsrv t;
    rawnet c;
    uint8_t buf[512];
    size_t n = 0;

    ts_start_default(&t);
    conn(&c, &t);
    n += rawnet_frame(buf, RSTMDB_FLAG_CRC_PRESENT, PING_REQ("a"));
    n += rawnet_frame(buf + n, RSTMDB_FLAG_CRC_PRESENT,
                      "{\"type\":\"request\",\"id\":\"b\",\"op\":\"NOPE\"}");
    n += rawnet_frame(buf + n, RSTMDB_FLAG_CRC_PRESENT, PING_REQ("c"));
    ck_assert_int_eq(rawnet_send(&c, buf, n), 0);
    rawexpect_doc(&c, PONG("a"));
    rawexpect_eof(&c);
    rawnet_close(&c);
    ts_stop(&t);
}
END_TEST

/* BYE: the goodbye is written, then the close; requests after it are dropped. */
START_TEST(bye_closes_after_reply)
{
    testsrv t;
    rawnet c;
    uint8_t buf[512];
    size_t n = 0;

    ts_start_default(&t);
    conn(&c, &t);
    n += rawnet_frame(buf, RSTMDB_FLAG_CRC_PRESENT,
                      "{\"type\":\"request\",\"id\":\"b\",\"op\":\"BYE\"}");
    n += rawnet_frame(buf + n, RSTMDB_FLAG_CRC_PRESENT, PING_REQ("late"));
    ck_assert_int_eq(rawnet_send(&c, buf, n), 0);
    rawexpect_doc(
        &c, "{\"type\":\"response\",\"id\":\"b\",\"status\":\"ok\",\"result\":{\"goodbye\":true}}");
    rawexpect_eof(&c);
    rawnet_close(&c);
    ts_stop(&t);
}
END_TEST

/* A client that half-closes after sending still gets its answers. */
START_TEST(half_close_answers_then_closes)
{
    testsrv t;
    rawnet c;

    ts_start_default(&t);
    conn(&c, &t);
    ck_assert_int_eq(rawnet_req(&c, PING_REQ("h")), 0);
    shutdown(c.fd, SHUT_WR);
    rawexpect_doc(&c, PONG("h"));
    rawexpect_eof(&c);
    rawnet_close(&c);
    ts_stop(&t);
}
END_TEST

/* HELLO with wire_modes ["jsonl"]: from its response on, output is one JSON
 * line per document, no header; input stays binary. */
START_TEST(jsonl_output)
{
    uint8_t raw[256];
    const char *pong = PONG("2") "\n";
    testsrv t;
    rawnet c;
    size_t got;

    ts_start_default(&t);
    conn(&c, &t);
    ck_assert_int_eq(rawnet_req(&c,
                                "{\"type\":\"request\",\"id\":\"1\",\"op\":\"HELLO\",\"params\":"
                                "{\"protocol_version\":1,\"wire_modes\":[\"jsonl\"]}}"),
                     0);
    c.jsonl = true;
    rawexpect_contains(&c, "\"wire_mode\":\"jsonl\"");
    ck_assert_int_eq(rawnet_req(&c, PING_REQ("2")), 0);
    got = rawnet_read_exact(&c, raw, strlen(pong), WAIT_MS);
    ck_assert_uint_eq(got, strlen(pong));
    ck_assert_mem_eq(raw, pong, strlen(pong));
    rawnet_close(&c);
    ts_stop(&t);
}
END_TEST

/* ---- faults ------------------------------------------------------------- */

START_TEST(fault_delay)
{
    testsrv t;
    rawnet c;
    long long t0;

    ts_start_default(&t);
    conn(&c, &t);
    ping(&c, "fast");
    ctl_ok(&t, "delay 300", NULL, 0);
    t0 = mono_ms();
    ck_assert_int_eq(rawnet_req(&c, PING_REQ("d1")), 0);
    ck_assert_int_eq(rawnet_req(&c, PING_REQ("d2")), 0);
    rawexpect_doc(&c, PONG("d1"));
    rawexpect_doc(&c, PONG("d2"));
    /* A lower bound only: each of the two answers was held 300 ms. */
    ck_assert_int_ge(mono_ms() - t0, 2 * 300 - 20);
    ctl_ok(&t, "delay 0", NULL, 0);
    ping(&c, "fast2");
    rawnet_close(&c);
    ts_stop(&t);
}
END_TEST

START_TEST(fault_close_after)
{
    testsrv t;
    rawnet c;
    uint8_t buf[512];
    size_t n = 0;

    ts_start_default(&t);
    ctl_ok(&t, "close-after 2", NULL, 0);
    conn(&c, &t);
    n += rawnet_frame(buf, RSTMDB_FLAG_CRC_PRESENT, PING_REQ("1"));
    n += rawnet_frame(buf + n, RSTMDB_FLAG_CRC_PRESENT, PING_REQ("2"));
    n += rawnet_frame(buf + n, RSTMDB_FLAG_CRC_PRESENT, PING_REQ("3"));
    ck_assert_int_eq(rawnet_send(&c, buf, n), 0);
    rawexpect_doc(&c, PONG("1"));
    rawexpect_doc(&c, PONG("2"));
    rawexpect_eof(&c);
    rawnet_close(&c);
    ctl_ok(&t, "close-after 0", NULL, 0);
    conn(&c, &t);
    ping(&c, "a");
    ping(&c, "b");
    ping(&c, "c");
    rawnet_close(&c);
    ts_stop(&t);
}
END_TEST

START_TEST(fault_garble_once)
{
    testsrv t;
    rawnet c;
    char *got = NULL;

    ts_start_default(&t);
    conn(&c, &t);
    ctl_ok(&t, "garble", NULL, 0);
    ck_assert_int_eq(rawnet_req(&c, PING_REQ("g")), 0);
    ck_assert_int_eq(rawnet_recv(&c, &got, WAIT_MS), RSTMDB_ERR_FRAME_CRC);
    rawnet_close(&c);
    /* One-shot: the next response is clean. */
    conn(&c, &t);
    ping(&c, "clean");
    rawnet_close(&c);
    ck_assert_uint_eq(counter(&t, "garbled"), 1);
    ts_stop(&t);
}
END_TEST

START_TEST(fault_garble_every_flag)
{
    server_config cfg;
    testsrv t;
    rawnet c;
    char *got = NULL;

    memset(&cfg, 0, sizeof cfg);
    cfg.faults.garble_every = 2;
    ts_start(&t, &cfg);
    conn(&c, &t);
    ping(&c, "1");
    ck_assert_int_eq(rawnet_req(&c, PING_REQ("2")), 0);
    ck_assert_int_eq(rawnet_recv(&c, &got, WAIT_MS), RSTMDB_ERR_FRAME_CRC);
    rawnet_close(&c);
    ts_stop(&t);
}
END_TEST

START_TEST(fault_hang)
{
    testsrv t;
    rawnet c;

    ts_start_default(&t);
    conn(&c, &t);
    ping(&c, "before");
    ctl_ok(&t, "hang on", NULL, 0);
    ck_assert_int_eq(rawnet_req(&c, PING_REQ("lost")), 0);
    expect_silence(&c, 300);
    ck_assert_uint_eq(counter(&t, "hung"), 1);
    ctl_ok(&t, "hang off", NULL, 0);
    /* The hung request was discarded; the connection works again. */
    ping(&c, "after");
    rawnet_close(&c);
    ts_stop(&t);
}
END_TEST

START_TEST(fault_refuse)
{
    testsrv t;
    rawnet c, old;

    ts_start_default(&t);
    conn(&old, &t);
    ping(&old, "old");
    ctl_ok(&t, "refuse on", NULL, 0);
    conn(&c, &t);                        /* the TCP connect succeeds; the server closes at once */
    (void)rawnet_req(&c, PING_REQ("x")); /* may already meet the close */
    rawexpect_eof(&c);
    rawnet_close(&c);
    ping(&old, "still"); /* existing connections are untouched */
    ck_assert_uint_eq(counter(&t, "refused"), 1);
    ctl_ok(&t, "refuse off", NULL, 0);
    conn(&c, &t);
    ping(&c, "new");
    rawnet_close(&c);
    rawnet_close(&old);
    ts_stop(&t);
}
END_TEST

START_TEST(fault_drop_all)
{
    testsrv t;
    rawnet a, b;
    char reply[256];

    ts_start_default(&t);
    conn(&a, &t);
    conn(&b, &t);
    ping(&a, "a");
    ping(&b, "b");
    ctl_ok(&t, "drop-all", reply, sizeof reply);
    ck_assert_str_eq(reply, "ok dropped=2");
    rawexpect_eof(&a);
    rawexpect_eof(&b);
    rawnet_close(&a);
    rawnet_close(&b);
    ck_assert_uint_eq(counter(&t, "active"), 0);
    ts_stop(&t);
}
END_TEST

START_TEST(control_errors)
{
    testsrv t;
    char reply[256];

    ts_start_default(&t);
    ck_assert_int_eq(rawnet_control(t.ctl, "bogus", reply, sizeof reply), -1);
    ck_assert_str_eq(reply, "err unknown command 'bogus' (try help)");
    ck_assert_int_eq(rawnet_control(t.ctl, "delay soon", reply, sizeof reply), -1);
    ck_assert_int_eq(strncmp(reply, "err delay:", 10), 0);
    ck_assert_int_eq(rawnet_control(t.ctl, "hang maybe", reply, sizeof reply), -1);
    ctl_ok(&t, "delay 5", NULL, 0);
    ctl_ok(&t, "show", reply, sizeof reply);
    ck_assert_ptr_nonnull(strstr(reply, "delay=5"));
    ctl_ok(&t, "reset", NULL, 0);
    ctl_ok(&t, "show", reply, sizeof reply);
    ck_assert_ptr_nonnull(strstr(reply, "delay=0"));
    ts_stop(&t);
}
END_TEST

/* ---- limits ------------------------------------------------------------- */

START_TEST(connection_limit)
{
    server_config cfg;
    testsrv t;
    rawnet a, b, c;

    memset(&cfg, 0, sizeof cfg);
    cfg.max_connections = 2;
    ts_start(&t, &cfg);
    conn(&a, &t);
    conn(&b, &t);
    ping(&a, "a");
    ping(&b, "b");
    conn(&c, &t);
    rawexpect_eof(&c); /* accepted, closed, no bytes */
    rawnet_close(&c);
    ck_assert_uint_eq(counter(&t, "over_limit"), 1);
    rawnet_close(&b);
    /* Once b is gone (active drops to 1) a new connection is served. */
    while (counter(&t, "active") != 1)
        usleep(10000);
    conn(&c, &t);
    ping(&c, "c");
    rawnet_close(&c);
    rawnet_close(&a);
    ts_stop(&t);
}
END_TEST

START_TEST(idle_timeout)
{
    server_config cfg;
    testsrv t;
    rawnet c;

    memset(&cfg, 0, sizeof cfg);
    cfg.idle_timeout_secs = 1;
    ts_start(&t, &cfg);
    conn(&c, &t);
    ping(&c, "x");
    rawexpect_eof(&c); /* about a second later, silently */
    rawnet_close(&c);
    ts_stop(&t);
}
END_TEST

START_TEST(ipv6_listen)
{
    server_config cfg;
    testsrv t;
    rawnet c;
    int fd = socket(AF_INET6, SOCK_STREAM, 0);

    if (fd < 0)
        return; /* no IPv6 on this machine */
    close(fd);
    memset(&cfg, 0, sizeof cfg);
    cfg.listen = "[::1]:0";
    ts_start(&t, &cfg);
    ck_assert_int_eq(strncmp(t.addr, "[::1]:", 6), 0);
    ck_assert_int_eq(rawnet_connect(&c, t.addr, 0), 0);
    ping(&c, "v6");
    rawnet_close(&c);
    ts_stop(&t);
}
END_TEST

/* A watcher that stops reading loses its OLDEST queued events, keeps the
 * newest, and the producer's responses are never dropped. With a 4 KiB
 * receive window, an 8 KiB kernel send buffer (socket_sndbuf), the 64 KiB
 * output threshold and a 16-event queue, 400 events of 2 KiB must overflow. */
START_TEST(slow_consumer_drops_oldest)
{
    enum { PAD = 2000, BATCH = 100 };
    server_config cfg;
    testsrv t;
    rawnet w, p;
    static char req[PAD + 512];
    char pad[PAD + 1];
    char last[64];
    char *doc = NULL;
    int nevents = 400;
    int i, k, received = 0;
    bool saw_last = false;

    memset(pad, 'x', PAD);
    pad[PAD] = '\0';
    memset(&cfg, 0, sizeof cfg);
    cfg.event_queue_max = 16;
    cfg.socket_sndbuf = 4096;
    ts_start(&t, &cfg);
    ck_assert_int_eq(rawnet_connect(&w, t.addr, 4096), 0);
    conn(&p, &t);
    ck_assert_int_eq(
        rawnet_req(&p, "{\"type\":\"request\",\"id\":\"m\",\"op\":\"PUT_MACHINE\",\"params\":"
                       "{\"machine\":\"sw\",\"version\":1,\"definition\":{\"states\":[\"on\","
                       "\"off\"],\"initial\":\"off\",\"transitions\":[{\"from\":\"off\","
                       "\"event\":\"T\",\"to\":\"on\"},{\"from\":\"on\",\"event\":\"T\","
                       "\"to\":\"off\"}]}}}"),
        0);
    rawexpect_contains(&p, "\"status\":\"ok\"");
    ck_assert_int_eq(
        rawnet_req(&p, "{\"type\":\"request\",\"id\":\"c\",\"op\":\"CREATE_INSTANCE\","
                       "\"params\":{\"instance_id\":\"i1\",\"machine\":\"sw\",\"version\":1}}"),
        0);
    rawexpect_contains(&p, "\"status\":\"ok\"");
    ck_assert_int_eq(
        rawnet_req(&w, "{\"type\":\"request\",\"id\":\"w\",\"op\":\"WATCH_ALL\",\"params\":{}}"),
        0);
    rawexpect_contains(&w, "\"subscription_id\"");
    /* Now w stops reading; p applies the events and reads every answer. */
    for (i = 0; i < nevents; i += BATCH) {
        for (k = i; k < i + BATCH; k++) {
            snprintf(
                req, sizeof req,
                "{\"type\":\"request\",\"id\":\"a%d\",\"op\":\"APPLY_EVENT\",\"params\":{"
                "\"instance_id\":\"i1\",\"event\":\"T\",\"payload\":{\"n\":%d,\"pad\":\"%s\"}}}",
                k, k, pad);
            ck_assert_int_eq(rawnet_req(&p, req), 0);
        }
        for (k = i; k < i + BATCH; k++)
            rawexpect_contains(&p, "\"applied\":true");
    }
    {
        char st[1024];
        ctl_ok(&t, "stats", st, sizeof st);
        ck_assert_msg(counter(&t, "events_dropped") > 0, "nothing dropped: %s", st);
    }
    /* w drains: it sees fewer events than were applied, the newest among them. */
    snprintf(last, sizeof last, "\"n\":%d,", nevents - 1);
    while (!saw_last) {
        int rc = rawnet_recv(&w, &doc, WAIT_MS);
        ck_assert_msg(rc == 1, "watcher: rc %d after %d events", rc, received);
        ck_assert_ptr_nonnull(strstr(doc, "\"type\":\"event\""));
        received++;
        saw_last = strstr(doc, last) != NULL;
        free(doc);
    }
    ck_assert_int_lt(received, nevents);
    rawnet_close(&w);
    rawnet_close(&p);
    ts_stop(&t);
}
END_TEST

/* Random junk, truncated and valid frames in random chunks from many
 * clients at once, closed at random points: the server survives (ASan
 * checks the memory side) and still answers a fresh client. */
START_TEST(random_input_survives)
{
    static const char *const docs[] = {
        PING_REQ("r"),
        ("{\"type\":\"request\",\"id\":\"h\",\"op\":\"HELLO\",\"params\":{\"protocol_version\":1,"
         "\"wire_modes\":[\"jsonl\"]}}"),
        "{\"type\":\"request\",\"id\":\"w\",\"op\":\"WATCH_ALL\",\"params\":{}}",
        "{\"type\":\"request\",\"id\":\"b\",\"op\":\"BYE\"}",
        "not json",
        "[\"request\",\"a\",\"PING\"]",
    };
    enum { NCLI = 40, ROUNDS = 1500 };
    rawnet c[NCLI];
    bool open[NCLI];
    unsigned seed = 12345;
    testsrv t;
    int i, r;

    ts_start_default(&t);
    for (i = 0; i < NCLI; i++)
        open[i] = false;
    for (r = 0; r < ROUNDS; r++) {
        uint8_t buf[1024];
        size_t n;
        unsigned x = rand_r(&seed);
        i = (int)(x % NCLI);
        if (!open[i]) {
            open[i] = rawnet_connect(&c[i], t.addr, 0) == 0;
            continue;
        }
        switch ((x >> 8) % 8) {
        case 0: /* close */
            rawnet_close(&c[i]);
            open[i] = false;
            break;
        case 1: /* junk */
            n = 1 + (size_t)(rand_r(&seed) % sizeof buf);
            for (size_t k = 0; k < n; k++)
                buf[k] = (uint8_t)rand_r(&seed);
            (void)rawnet_send(&c[i], buf, n);
            break;
        case 2: /* a truncated frame */
            n = rawnet_frame(buf, RSTMDB_FLAG_CRC_PRESENT, docs[(x >> 12) % 6]);
            (void)rawnet_send(&c[i], buf, (size_t)rand_r(&seed) % n);
            break;
        case 3: /* read whatever is there */
            rawnet_read_exact(&c[i], buf, sizeof buf, 0);
            break;
        default: /* a valid frame, maybe split */
            n = rawnet_frame(buf, RSTMDB_FLAG_CRC_PRESENT, docs[(x >> 12) % 6]);
            (void)rawnet_send(&c[i], buf, n / 2);
            (void)rawnet_send(&c[i], buf + n / 2, n - n / 2);
            break;
        }
    }
    for (i = 0; i < NCLI; i++)
        if (open[i])
            rawnet_close(&c[i]);
    {
        rawnet fresh;
        conn(&fresh, &t);
        ping(&fresh, "alive");
        rawnet_close(&fresh);
    }
    ts_stop(&t);
}
END_TEST

/* ---- TLS ---------------------------------------------------------------- */

typedef struct certs {
    char dir[64];
    char ca[96], srv_crt[96], srv_key[96], cli_crt[96], cli_key[96], bad_crt[96], bad_key[96];
} certs;

/* CA, a server cert for IP 127.0.0.1, a client cert from the CA, and a
 * client cert from another CA, all made with the openssl CLI. */
static bool make_certs(certs *k)
{
    char cmd[4096];
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

    snprintf(k->dir, sizeof k->dir, "/tmp/testd-tls-XXXXXX");
    if (mkdtemp(k->dir) == NULL)
        return false;
    snprintf(cmd, sizeof cmd,
             "cd %s && "
             "openssl req -x509 %s -keyout ca.key -out ca.crt -days 2 -subj /CN=testd-ca && "
             "openssl req -x509 %s -keyout ca2.key -out ca2.crt -days 2 -subj /CN=other-ca && "
             "printf 'subjectAltName=IP:127.0.0.1\\n' > srv.ext && "
             "openssl req %s -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 && "
             "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
             "-extfile srv.ext -out srv.crt && "
             "openssl req %s -keyout cli.key -out cli.csr -subj /CN=client && "
             "openssl x509 -req -in cli.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
             "-out cli.crt && "
             "openssl req %s -keyout bad.key -out bad.csr -subj /CN=intruder && "
             "openssl x509 -req -in bad.csr -CA ca2.crt -CAkey ca2.key -CAcreateserial -days 2 "
             "-out bad.crt",
             k->dir, ec, ec, ec, ec, ec);
    {
        char full[4200];
        snprintf(full, sizeof full, "( %s ) >/dev/null 2>&1", cmd);
        if (system(full) != 0)
            return false;
    }
#define P(field, name) snprintf(k->field, sizeof k->field, "%s/%s", k->dir, name)
    P(ca, "ca.crt");
    P(srv_crt, "srv.crt");
    P(srv_key, "srv.key");
    P(cli_crt, "cli.crt");
    P(cli_key, "cli.key");
    P(bad_crt, "bad.crt");
    P(bad_key, "bad.key");
#undef P
    return true;
}

static void drop_certs(certs *k)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", k->dir);
    ck_assert_int_eq(system(cmd), 0);
}

static SSL_CTX *client_ctx(const certs *k, const char *crt, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(SSL_CTX_load_verify_locations(ctx, k->ca, NULL), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (crt != NULL) {
        ck_assert_int_eq(SSL_CTX_use_certificate_file(ctx, crt, SSL_FILETYPE_PEM), 1);
        ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
    }
    return ctx;
}

/* The handshake may "succeed" on the client before the server rejects its
 * certificate (TLS 1.3), so the proof of rejection is: no answer, EOF. */
static void expect_tls_rejected(testsrv *t, SSL_CTX *ctx)
{
    rawnet c;
    char *got = NULL;

    conn(&c, t);
    if (rawnet_tls(&c, ctx) == 1 && rawnet_req(&c, PING_REQ("no")) == 0) {
        int rc = rawnet_recv(&c, &got, WAIT_MS);
        ck_assert_msg(rc == 0 || rc == RSTMDB_ERR_FRAME_MAGIC, "rejected client got rc %d (%s)", rc,
                      got ? got : "");
        free(got);
    }
    rawnet_close(&c);
}

START_TEST(tls_serves_and_rejects_plaintext)
{
    server_config cfg;
    certs k;
    testsrv t;
    rawnet c;
    SSL_CTX *ctx;

    ck_assert_msg(make_certs(&k), "openssl CLI failed to make certificates");
    memset(&cfg, 0, sizeof cfg);
    cfg.tls_cert = k.srv_crt;
    cfg.tls_key = k.srv_key;
    ts_start(&t, &cfg);
    ctx = client_ctx(&k, NULL, NULL);
    conn(&c, &t);
    ck_assert_int_eq(rawnet_tls(&c, ctx), 1);
    ping(&c, "tls");
    rawnet_close(&c);
    /* Plain RCPX on the TLS port: the handshake fails, the server drops it. */
    conn(&c, &t);
    ck_assert_int_eq(rawnet_req(&c, PING_REQ("plain")), 0);
    {
        char *got = NULL;
        int rc = rawnet_recv(&c, &got, WAIT_MS);
        ck_assert_msg(rc != 1, "plaintext client was answered: %s", got);
        free(got);
    }
    rawnet_close(&c);
    while (counter(&t, "tls_failures") < 1)
        usleep(10000);
    SSL_CTX_free(ctx);
    ts_stop(&t);
    drop_certs(&k);
}
END_TEST

START_TEST(mtls_requires_client_cert)
{
    server_config cfg;
    certs k;
    testsrv t;
    rawnet c;
    SSL_CTX *good, *none, *bad;

    ck_assert_msg(make_certs(&k), "openssl CLI failed to make certificates");
    memset(&cfg, 0, sizeof cfg);
    cfg.tls_cert = k.srv_crt;
    cfg.tls_key = k.srv_key;
    cfg.tls_client_ca = k.ca;
    ts_start(&t, &cfg);
    good = client_ctx(&k, k.cli_crt, k.cli_key);
    none = client_ctx(&k, NULL, NULL);
    bad = client_ctx(&k, k.bad_crt, k.bad_key);
    conn(&c, &t);
    ck_assert_int_eq(rawnet_tls(&c, good), 1);
    ping(&c, "mtls");
    rawnet_close(&c);
    expect_tls_rejected(&t, none);
    expect_tls_rejected(&t, bad);
    while (counter(&t, "tls_failures") < 2)
        usleep(10000);
    SSL_CTX_free(good);
    SSL_CTX_free(none);
    SSL_CTX_free(bad);
    ts_stop(&t);
    drop_certs(&k);
}
END_TEST

START_TEST(tls_bad_files_are_config_errors)
{
    server_config cfg;
    struct event_base *base = event_base_new();
    engine *eng = NULL;
    server *srv = NULL;
    engine_config ecfg;
    char err[256];

    memset(&ecfg, 0, sizeof ecfg);
    ck_assert_int_eq(engine_new(&eng, &ecfg), 0);
    memset(&cfg, 0, sizeof cfg);
    cfg.listen = "127.0.0.1:0";
    cfg.tls_cert = "/nonexistent/cert.pem";
    cfg.tls_key = "/nonexistent/key.pem";
    ck_assert_int_eq(server_new(&srv, base, eng, &cfg, err, sizeof err), SERVER_ERR_CONFIG);
    ck_assert_ptr_null(srv);
    ck_assert_ptr_nonnull(strstr(err, "--tls-cert"));
    cfg.tls_key = NULL;
    ck_assert_int_eq(server_new(&srv, base, eng, &cfg, err, sizeof err), SERVER_ERR_CONFIG);
    cfg.tls_cert = NULL;
    cfg.listen = "nowhere";
    ck_assert_int_eq(server_new(&srv, base, eng, &cfg, err, sizeof err), SERVER_ERR_CONFIG);
    engine_free(eng);
    event_base_free(base);
}
END_TEST

/* ---- fault.c on its own ------------------------------------------------- */

START_TEST(fault_parser)
{
    fault f;
    char reply[256];

    memset(&f, 0, sizeof f);
    ck_assert_int_eq(fault_command(&f, "delay 250", reply, sizeof reply), FAULT_CMD_DONE);
    ck_assert_uint_eq(f.delay_ms, 250);
    ck_assert_str_eq(reply, "ok delay=250");
    ck_assert_int_eq(fault_command(&f, "close-after 3", reply, sizeof reply), FAULT_CMD_DONE);
    ck_assert_uint_eq(f.close_after, 3);
    ck_assert_int_eq(fault_command(&f, "hang on", reply, sizeof reply), FAULT_CMD_DONE);
    ck_assert(f.hang);
    ck_assert_int_eq(fault_command(&f, "refuse on", reply, sizeof reply), FAULT_CMD_DONE);
    ck_assert(f.refuse);
    ck_assert_int_eq(fault_command(&f, "garble-every 3", reply, sizeof reply), FAULT_CMD_DONE);
    ck_assert(!fault_take_garble(&f));
    ck_assert(!fault_take_garble(&f));
    ck_assert(fault_take_garble(&f));
    ck_assert_int_eq(fault_command(&f, "garble", reply, sizeof reply), FAULT_CMD_DONE);
    ck_assert(fault_take_garble(&f));
    ck_assert_int_eq(fault_command(&f, "reset", reply, sizeof reply), FAULT_CMD_DONE);
    ck_assert(!f.hang && !f.refuse && f.delay_ms == 0 && f.garble_every == 0);
    ck_assert(!fault_take_garble(&f));
    ck_assert_int_eq(fault_command(&f, "drop-all", reply, sizeof reply), FAULT_CMD_DROP_ALL);
    ck_assert_int_eq(fault_command(&f, "stats", reply, sizeof reply), FAULT_CMD_STATS);
    ck_assert_int_eq(fault_command(&f, "delay", reply, sizeof reply), FAULT_CMD_ERR);
    ck_assert_int_eq(fault_command(&f, "delay -1", reply, sizeof reply), FAULT_CMD_ERR);
    ck_assert_int_eq(fault_command(&f, "delay 1 2", reply, sizeof reply), FAULT_CMD_ERR);
    ck_assert_int_eq(fault_command(&f, "", reply, sizeof reply), FAULT_CMD_ERR);
    ck_assert_int_eq(fault_command(&f, "hang yes", reply, sizeof reply), FAULT_CMD_ERR);
}
END_TEST

static Suite *server_suite(void)
{
    Suite *s = suite_create("testd_server");
    TCase *tc = tcase_create("net");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, fault_parser);
    tcase_add_test(tc, worked_ping_bytes);
    tcase_add_test(tc, pipelined_in_order);
    tcase_add_test(tc, no_crc_and_extension_accepted);
    tcase_add_test(tc, bad_frames_close_silently);
    tcase_add_test(tc, bad_envelope_closes_silently);
    tcase_add_test(tc, bye_closes_after_reply);
    tcase_add_test(tc, half_close_answers_then_closes);
    tcase_add_test(tc, jsonl_output);
    tcase_add_test(tc, fault_delay);
    tcase_add_test(tc, fault_close_after);
    tcase_add_test(tc, fault_garble_once);
    tcase_add_test(tc, fault_garble_every_flag);
    tcase_add_test(tc, fault_hang);
    tcase_add_test(tc, fault_refuse);
    tcase_add_test(tc, fault_drop_all);
    tcase_add_test(tc, control_errors);
    tcase_add_test(tc, connection_limit);
    tcase_add_test(tc, idle_timeout);
    tcase_add_test(tc, ipv6_listen);
    tcase_add_test(tc, slow_consumer_drops_oldest);
    tcase_add_test(tc, random_input_survives);
    tcase_add_test(tc, tls_serves_and_rejects_plaintext);
    tcase_add_test(tc, mtls_requires_client_cert);
    tcase_add_test(tc, tls_bad_files_are_config_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(server_suite());
    int failed;

    /* A peer that vanished must be EPIPE for the in-process server, not a kill. */
    signal(SIGPIPE, SIG_IGN);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
