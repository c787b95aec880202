/* test_sse_scale.c: SSE streams served outside libmicrohttpd: a stream on
 * a keep-alive connection after REST requests, a stream opened before its
 * upstream exists, heartbeat spacing, 1,000 streams beside REST requests,
 * SIGTERM with 1,000 streams, and bad input on the SSE path (oversized and
 * slowloris heads, a reader that never reads, half-closed sockets). Streams
 * are read over raw sockets, so every byte the proxy writes is seen. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "phelp.h"

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A raw client: everything received is kept in buf. */
typedef struct raw {
    int fd;
    char *buf;
    size_t len, cap;
    bool eof;
} raw;

static int raw_connect_port(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    ck_assert_msg(connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0, "connect: %s",
                  strerror(errno));
    return fd;
}

static void raw_open(raw *r, penv *e, int rcvbuf)
{
    memset(r, 0, sizeof *r);
    r->fd = raw_connect_port(e->proxy.port, rcvbuf);
    r->cap = 1 << 16;
    r->buf = calloc(1, r->cap);
}

static void raw_send(raw *r, const char *s)
{
    ck_assert_int_eq(write(r->fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* Read what is there within `ms`; returns bytes read (0 on timeout/EOF). */
static size_t raw_pump(raw *r, int ms)
{
    struct pollfd p = {r->fd, POLLIN, 0};
    if (r->eof || poll(&p, 1, ms) <= 0)
        return 0;
    if (r->len + 65536 + 1 > r->cap) {
        r->cap *= 2;
        r->buf = realloc(r->buf, r->cap);
    }
    ssize_t k = read(r->fd, r->buf + r->len, 65536);
    if (k <= 0) {
        r->eof = true;
        return 0;
    }
    r->len += (size_t)k;
    r->buf[r->len] = '\0';
    return (size_t)k;
}

static bool raw_wait_for(raw *r, const char *needle, int ms)
{
    long end = now_ms() + ms;
    while (strstr(r->buf, needle) == NULL && !r->eof && now_ms() < end)
        raw_pump(r, 20);
    return strstr(r->buf, needle) != NULL;
}

static bool raw_wait_eof(raw *r, int ms)
{
    long end = now_ms() + ms;
    while (!r->eof && now_ms() < end)
        raw_pump(r, 20);
    return r->eof;
}

static void raw_close(raw *r)
{
    if (r->fd >= 0)
        close(r->fd);
    free(r->buf);
    r->fd = -1;
    r->buf = NULL;
}

static void raw_stream(raw *r, penv *e, const char *path)
{
    char req[256];
    raw_open(r, e, 0);
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n",
             path);
    raw_send(r, req);
}

static uint64_t metric(penv *e, const char *name)
{
    hresp r;
    http_req(e, NULL, "GET", "/metrics", NULL, NULL, &r);
    char want[128];
    snprintf(want, sizeof want, "\n%s ", name);
    const char *p = strstr(r.body, want);
    ck_assert_msg(p != NULL, "no %s in /metrics", name);
    uint64_t v = strtoull(p + strlen(want), NULL, 10);
    hresp_free(&r);
    return v;
}

static bool wait_metric(penv *e, const char *name, uint64_t want, int ms)
{
    long end = now_ms() + ms;
    while (metric(e, name) != want && now_ms() < end)
        usleep(20000);
    return metric(e, name) == want;
}

static void raise_nofile(rlim_t want)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

START_TEST(stream_after_rest_on_keepalive)
{
    penv e;
    penv_start(&e, NULL, NULL);
    seed_machines(&e);
    create_instance(&e, "m", "k1");
    raw r;
    raw_open(&r, &e, 0);
    /* Two REST requests first, on this very connection. */
    for (int i = 0; i < 2; i++) {
        size_t before = r.len;
        raw_send(&r, "GET /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n");
        long end = now_ms() + 5000;
        while (now_ms() < end) {
            const char *h = strstr(r.buf + before, "\r\n\r\n");
            const char *cl = strstr(r.buf + before, "Content-Length: ");
            if (h != NULL && cl != NULL &&
                r.len >= (size_t)(h + 4 - r.buf) + strtoul(cl + 16, NULL, 10))
                break;
            raw_pump(&r, 20);
        }
        ck_assert_msg(strncmp(r.buf + before, "HTTP/1.1 200", 12) == 0, "%s", r.buf + before);
        ck_assert(!r.eof);
    }
    size_t mark = r.len;
    raw_send(&r, "GET /v1/instances/k1/watch HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_msg(raw_wait_for(&r, "retry: ", 5000), "no stream: %s", r.buf + mark);
    ck_assert_int_eq(strncmp(r.buf + mark, "HTTP/1.1 200 OK\r\n", 17), 0);
    ck_assert_ptr_nonnull(strstr(r.buf + mark, "Content-Type: text/event-stream\r\n"));
    ck_assert_ptr_nonnull(strstr(r.buf + mark, "Cache-Control: no-cache\r\n"));
    ck_assert_ptr_nonnull(strstr(r.buf + mark, "X-Request-Id: "));
    ck_assert_ptr_nonnull(strstr(r.buf + mark, "Transfer-Encoding: chunked\r\n"));
    uint64_t off = apply_event(&e, "k1", "GO", NULL);
    char id[48];
    snprintf(id, sizeof id, "id: %llu\n", (unsigned long long)off);
    ck_assert_msg(raw_wait_for(&r, id, 5000), "event %s not seen: %s", id, r.buf + mark);
    raw_close(&r);
    ck_assert_int_eq(penv_stop(&e), 0);
}
END_TEST

/* HTTP/1.0 has no chunked coding: the stream is the raw event text until
 * the connection ends. */
START_TEST(stream_on_http10)
{
    penv e;
    penv_start(&e, NULL, NULL);
    seed_machines(&e);
    create_instance(&e, "m", "v1");
    raw r;
    raw_open(&r, &e, 0);
    raw_send(&r, "GET /v1/instances/v1/watch HTTP/1.0\r\nHost: x\r\n\r\n");
    ck_assert(raw_wait_for(&r, "\r\n\r\nretry: ", 5000));
    ck_assert_int_eq(strncmp(r.buf, "HTTP/1.1 200 OK\r\n", 17), 0);
    ck_assert_ptr_null(strstr(r.buf, "Transfer-Encoding"));
    uint64_t off = apply_event(&e, "v1", "GO", NULL);
    char id[64];
    snprintf(id, sizeof id, "\n\nid: %llu\ndata: {", (unsigned long long)off);
    ck_assert_msg(raw_wait_for(&r, id, 5000), "no raw event: %s", r.buf);
    raw_close(&r);
    ck_assert_int_eq(penv_stop(&e), 0);
}
END_TEST

/* A free loopback port, released for the test's upstream to take. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    socklen_t len = sizeof sin;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

START_TEST(stream_before_upstream)
{
    penv e;
    memset(&e, 0, sizeof e);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char up[64];
    snprintf(up, sizeof up, "127.0.0.1:%d", free_port());
    const char *pargs[] = {"--backoff-initial-ms", "20", "--backoff-max-ms", "100", NULL};
    penv_start_proxy(&e, up, pargs);
    /* No upstream at all: answered at once, kept open. */
    raw all, missing;
    raw_stream(&all, &e, "/v1/watch");
    raw_stream(&missing, &e, "/v1/instances/never/watch");
    ck_assert_msg(raw_wait_for(&all, "retry: ", 2000), "no early answer: %s", all.buf);
    ck_assert_int_eq(strncmp(all.buf, "HTTP/1.1 200", 12), 0);
    ck_assert(raw_wait_for(&missing, "retry: ", 2000));
    usleep(300000);
    ck_assert(!all.eof); /* kept open with no upstream */

    /* The upstream starts; the instance is made after the streams opened. */
    const char *targs[] = {spawn_testd_path(), "--listen", up, NULL};
    ck_assert_int_eq(spawn_start(&e.testd, targs, NULL, 5000), 0);
    hresp r;
    long end = now_ms() + 5000;
    do {
        http_req(&e, NULL, "GET", "/readyz", NULL, NULL, &r);
        long st = r.status;
        hresp_free(&r);
        if (st == 200)
            break;
        usleep(20000);
    } while (now_ms() < end);
    /* A subscribe error found now ends the answered stream with its code. */
    ck_assert_msg(raw_wait_for(&missing, "event: error\n", 5000), "%s", missing.buf);
    ck_assert_ptr_nonnull(strstr(missing.buf, "INSTANCE_NOT_FOUND"));
    ck_assert(raw_wait_eof(&missing, 5000));
    /* The WATCH_ALL feed is up (and this stream kept): events flow. */
    ck_assert(wait_metric(&e, "rstmdb_proxy_upstream_subscriptions", 1, 5000));
    ck_assert_uint_eq(metric(&e, "rstmdb_proxy_sse_streams"), 1);
    seed_machines(&e);
    create_instance(&e, "m", "late-1");
    uint64_t off = apply_event(&e, "late-1", "GO", NULL);
    char id[48];
    snprintf(id, sizeof id, "id: %llu\n", (unsigned long long)off);
    ck_assert_msg(raw_wait_for(&all, id, 5000), "event not delivered: %s", all.buf);
    ck_assert_ptr_nonnull(strstr(all.buf, "\"event\":\"GO\""));
    raw_close(&all);
    raw_close(&missing);
    ck_assert_int_eq(penv_stop(&e), 0);
}
END_TEST

START_TEST(heartbeat_spacing)
{
    penv e;
    const char *pargs[] = {"--sse-heartbeat-ms", "200", NULL};
    penv_start(&e, NULL, pargs);
    seed_machines(&e);
    create_instance(&e, "m", "h1");
    raw r;
    raw_stream(&r, &e, "/v1/watch");
    ck_assert(raw_wait_for(&r, "retry: ", 3000));
    /* Arrival times of every write; the gap between two never exceeds the
     * heartbeat interval (plus scheduling on this machine). */
    long last = now_ms(), worst = 0, start = last;
    int beats = 0, events = 0;
    while (now_ms() - start < 3000) {
        if (events < 3 && now_ms() - start > 700 * (events + 1)) {
            apply_event(&e, "h1", events % 2 ? "BACK" : "GO", NULL);
            events++;
        }
        size_t before = r.len;
        if (raw_pump(&r, 10) == 0)
            continue;
        long t = now_ms();
        if (t - last > worst)
            worst = t - last;
        last = t;
        for (const char *p = r.buf + before; (p = strstr(p, ": keepalive\n")) != NULL; p++)
            beats++;
    }
    /* Twice the interval (the old timer) would be 400 ms. */
    ck_assert_msg(worst <= 200 + 100, "%ld ms without a byte (heartbeat 200 ms)", worst);
    ck_assert_msg(beats >= 8, "only %d heartbeats in 3 s", beats);
    ck_assert_int_eq(events, 3);
    raw_close(&r);
    ck_assert_int_eq(penv_stop(&e), 0);
}
END_TEST

#define NSTREAMS 1000

static void open_many(penv *e, raw *rs, size_t n, const char *path)
{
    for (size_t i = 0; i < n; i++)
        raw_stream(&rs[i], e, path);
}

/* Wait until every stream's buffer holds `needle`. */
static void wait_all(raw *rs, size_t n, const char *needle, int ms)
{
    long end = now_ms() + ms;
    size_t done = 0;
    struct pollfd *p = calloc(n, sizeof *p);
    while (now_ms() < end) {
        done = 0;
        size_t np = 0;
        for (size_t i = 0; i < n; i++) {
            if (strstr(rs[i].buf, needle) != NULL) {
                done++;
                continue;
            }
            p[np].fd = rs[i].fd;
            p[np].events = POLLIN;
            np++;
        }
        if (done == n)
            break;
        if (poll(p, np, 50) <= 0)
            continue;
        for (size_t i = 0; i < n; i++)
            if (strstr(rs[i].buf, needle) == NULL)
                raw_pump(&rs[i], 0);
    }
    free(p);
    ck_assert_msg(done == n, "%zu of %zu streams saw %s", done, n, needle);
}

START_TEST(thousand_streams_beside_rest)
{
    raise_nofile(4096);
    penv e;
    penv_start(&e, NULL, NULL);
    seed_machines(&e);
    create_instance(&e, "m", "t1");
    raw *rs = calloc(NSTREAMS, sizeof *rs);
    /* REST requests answered while the streams open and while they idle. */
    open_many(&e, rs, NSTREAMS / 2, "/v1/watch");
    for (int i = 0; i < 50; i++) {
        hresp r;
        http_req(&e, NULL, "GET", "/v1/ping", NULL, NULL, &r);
        ck_assert_int_eq(r.status, 200);
        hresp_free(&r);
    }
    open_many(&e, rs + NSTREAMS / 2, NSTREAMS / 2, "/v1/instances/t1/watch");
    wait_all(rs, NSTREAMS, "retry: ", 20000);
    ck_assert_uint_eq(metric(&e, "rstmdb_proxy_sse_streams"), NSTREAMS);
    for (int i = 0; i < 100; i++) {
        hresp r;
        http_req(&e, NULL, "GET", "/v1/ping", NULL, NULL, &r);
        ck_assert_int_eq(r.status, 200);
        hresp_free(&r);
    }
    uint64_t off = apply_event(&e, "t1", "GO", NULL);
    char id[48];
    snprintf(id, sizeof id, "id: %llu\n", (unsigned long long)off);
    wait_all(rs, NSTREAMS, id, 20000);
    for (size_t i = 0; i < NSTREAMS; i++)
        raw_close(&rs[i]);
    free(rs);
    ck_assert(wait_metric(&e, "rstmdb_proxy_sse_streams", 0, 5000));
    ck_assert_int_eq(penv_stop(&e), 0);
}
END_TEST

START_TEST(sigterm_with_thousand_streams)
{
    raise_nofile(4096);
    penv e;
    penv_start(&e, NULL, NULL);
    raw *rs = calloc(NSTREAMS, sizeof *rs);
    open_many(&e, rs, NSTREAMS, "/v1/watch");
    wait_all(rs, NSTREAMS, "retry: ", 20000);
    kill(e.proxy.pid, SIGTERM);
    wait_all(rs, NSTREAMS, "event: error\ndata: {\"code\":\"SHUTDOWN\"", 20000);
    /* ... then the end of the chunked body, then the end of the connection. */
    wait_all(rs, NSTREAMS, "\r\n0\r\n\r\n", 20000);
    for (size_t i = 0; i < NSTREAMS; i++) {
        ck_assert(raw_wait_eof(&rs[i], 5000));
        raw_close(&rs[i]);
    }
    free(rs);
    int st = spawn_stop(&e.proxy, 10000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
    e.proxy.pid = -1;
    penv_stop(&e);
}
END_TEST

START_TEST(bad_input_on_the_sse_path)
{
    penv e;
    const char *pargs[] = {
        "--idle-timeout-s", "1", "--sse-buffer-bytes", "8192", "--sse-heartbeat-ms", "500", NULL};
    penv_start(&e, NULL, pargs);
    seed_machines(&e);
    create_instance(&e, "m", "b1");
    raw healthy;
    raw_stream(&healthy, &e, "/v1/instances/b1/watch");
    ck_assert(raw_wait_for(&healthy, "retry: ", 3000));

    /* An oversized head: refused, the connection ends. */
    raw big;
    raw_open(&big, &e, 0);
    raw_send(&big, "GET /v1/watch HTTP/1.1\r\nHost: x\r\nX-Pad: ");
    char pad[4096];
    memset(pad, 'a', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 0; i < 16; i++)
        if (write(big.fd, pad, strlen(pad)) < 0)
            break;
    (void)!write(big.fd, "\r\n\r\n", 4);
    ck_assert(raw_wait_eof(&big, 5000));
    ck_assert_msg(big.len == 0 || strncmp(big.buf, "HTTP/1.1 4", 10) == 0, "%s", big.buf);
    raw_close(&big);

    /* A slowloris head: one byte at a time, never finished: closed after
     * the idle timeout, never a stream. */
    raw slow;
    raw_open(&slow, &e, 0);
    const char *partial = "GET /v1/watch HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    raw_send(&slow, partial);
    long end = now_ms() + 6000;
    while (!slow.eof && now_ms() < end) {
        (void)!write(slow.fd, "z", 1);
        raw_pump(&slow, 300);
    }
    ck_assert_msg(slow.eof, "a head that never ends kept its connection");
    ck_assert_ptr_null(strstr(slow.buf, "text/event-stream"));
    raw_close(&slow);

    /* Half-closed: the request, then no more from the client: the stream
     * ends (and its slot is released) rather than lingering. */
    raw half;
    raw_stream(&half, &e, "/v1/watch");
    ck_assert(raw_wait_for(&half, "retry: ", 3000));
    shutdown(half.fd, SHUT_WR);
    ck_assert_msg(raw_wait_eof(&half, 5000), "a half-closed stream stayed open");
    raw_close(&half);
    ck_assert(wait_metric(&e, "rstmdb_proxy_sse_streams", 1, 5000));

    /* A reader that never reads: cut off at sse_buffer_bytes, then closed
     * when it does not take its final bytes in time. */
    raw deaf;
    raw_open(&deaf, &e, 4096);
    raw_send(&deaf, "GET /v1/instances/b1/watch HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert(wait_metric(&e, "rstmdb_proxy_sse_streams", 2, 5000));
    char *payload = malloc(16 * 1024 + 1);
    memset(payload, 'x', 16 * 1024);
    payload[0] = '"';
    payload[16 * 1024 - 1] = '"';
    payload[16 * 1024] = '\0';
    uint64_t last = 0;
    /* ~13 MB: more than the kernel's socket buffers can hide. */
    for (int i = 0; i < 800; i++) {
        last = apply_event(&e, "b1", i % 2 ? "BACK" : "GO", payload);
        while (raw_pump(&healthy, 0) > 0) /* the healthy reader keeps up */
            ;
    }
    free(payload);
    if (!wait_metric(&e, "rstmdb_proxy_sse_slow_readers_total", 1, 10000)) {
        hresp m;
        http_req(&e, NULL, "GET", "/metrics", NULL, NULL, &m);
        ck_abort_msg("no cut-off: %s", strstr(m.body, "rstmdb_proxy_sse_streams"));
    }
    ck_assert(wait_metric(&e, "rstmdb_proxy_sse_streams", 1, 10000));
    close(deaf.fd);
    deaf.fd = -1;
    raw_close(&deaf);

    /* The healthy stream got everything, and the proxy still answers. */
    char id[48];
    snprintf(id, sizeof id, "id: %llu\n", (unsigned long long)last);
    ck_assert_msg(raw_wait_for(&healthy, id, 10000), "the healthy stream fell behind");
    ck_assert_ptr_null(strstr(healthy.buf, "event: error"));
    raw_close(&healthy);
    hresp r;
    http_req(&e, NULL, "GET", "/v1/ping", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    hresp_free(&r);
    ck_assert_int_eq(penv_stop(&e), 0);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("sse_scale");
    TCase *tc = tcase_create("sse_scale");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, stream_after_rest_on_keepalive);
    tcase_add_test(tc, stream_on_http10);
    tcase_add_test(tc, stream_before_upstream);
    tcase_add_test(tc, heartbeat_spacing);
    tcase_add_test(tc, thousand_streams_beside_rest);
    tcase_add_test(tc, sigterm_with_thousand_streams);
    tcase_add_test(tc, bad_input_on_the_sse_path);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
