/* test_sse.c: Server-Sent Events end to end: order and ids, filters,
 * resume by Last-Event-ID, heartbeats on an idle stream, a slow reader cut
 * off, subscribe errors as problem+json, and the final event on shutdown. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "phelp.h"

/* ---- a streaming client on curl's multi interface ------------------------ */

typedef struct sse_cli {
    CURLM *m;
    CURL *c;
    struct curl_slist *hdrs;
    char *buf;
    size_t len;
    char *head;
    size_t hlen;
    bool done;
    char path[512];
} sse_cli;

static size_t cli_body(char *p, size_t sz, size_t n, void *arg)
{
    sse_cli *s = arg;
    size_t k = sz * n;
    s->buf = realloc(s->buf, s->len + k + 1);
    memcpy(s->buf + s->len, p, k);
    s->len += k;
    s->buf[s->len] = '\0';
    return k;
}

static size_t cli_head(char *p, size_t sz, size_t n, void *arg)
{
    sse_cli *s = arg;
    size_t k = sz * n;
    s->head = realloc(s->head, s->hlen + k + 1);
    memcpy(s->head + s->hlen, p, k);
    s->hlen += k;
    s->head[s->hlen] = '\0';
    return k;
}

static long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void cli_pump(sse_cli *s, int ms)
{
    long end = now_ms() + ms;
    while (!s->done && now_ms() < end) {
        int running = 0;
        curl_multi_perform(s->m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(s->m, &left)) != NULL)
            if (msg->msg == CURLMSG_DONE)
                s->done = true;
        if (s->done)
            break;
        curl_multi_poll(s->m, NULL, 0, 20, NULL);
    }
}

static void cli_open(sse_cli *s, penv *e, const char *path, const char *const hdrs[])
{
    memset(s, 0, sizeof *s);
    s->buf = calloc(1, 1);
    s->head = calloc(1, 1);
    s->m = curl_multi_init();
    s->c = curl_easy_init();
    char url[512];
    snprintf(url, sizeof url, "%s%s", e->base, path);
    snprintf(s->path, sizeof s->path, "%s", path);
    curl_easy_setopt(s->c, CURLOPT_URL, url);
    for (size_t i = 0; hdrs && hdrs[i]; i++)
        s->hdrs = curl_slist_append(s->hdrs, hdrs[i]);
    curl_easy_setopt(s->c, CURLOPT_HTTPHEADER, s->hdrs);
    curl_easy_setopt(s->c, CURLOPT_WRITEFUNCTION, cli_body);
    curl_easy_setopt(s->c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(s->c, CURLOPT_HEADERFUNCTION, cli_head);
    curl_easy_setopt(s->c, CURLOPT_HEADERDATA, s);
    curl_multi_add_handle(s->m, s->c);
}

static long cli_status(sse_cli *s)
{
    long st = 0;
    curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE, &st);
    return st;
}

static void cli_close(sse_cli *s)
{
    phelp_record("GET", s->path, cli_status(s), s->head, s->buf, s->len);
    curl_multi_remove_handle(s->m, s->c);
    curl_easy_cleanup(s->c);
    curl_multi_cleanup(s->m);
    curl_slist_free_all(s->hdrs);
    free(s->buf);
    free(s->head);
}

/* Open and wait until the stream is live (its opening comment arrived). */
static void cli_open_live(sse_cli *s, penv *e, const char *path, const char *const hdrs[])
{
    cli_open(s, e, path, hdrs);
    long end = now_ms() + 5000;
    while (strstr(s->buf, "\n\n") == NULL && !s->done && now_ms() < end)
        cli_pump(s, 20);
    ck_assert_msg(cli_status(s) == 200, "%s: status %ld %s", path, cli_status(s), s->buf);
    ck_assert_msg(strncmp(s->buf, "retry: ", 7) == 0, "stream opened with %s", s->buf);
}

typedef struct sse_ev {
    uint64_t id;
    char event[32];
    char data[8192];
} sse_ev;

/* Parse complete events (id/data/event lines; comments skipped). */
static size_t parse_events(const char *buf, sse_ev *out, size_t max)
{
    size_t n = 0;
    const char *p = buf;
    for (;;) {
        const char *end = strstr(p, "\n\n");
        if (end == NULL || n >= max)
            break;
        sse_ev ev;
        memset(&ev, 0, sizeof ev);
        bool any = false;
        for (const char *l = p; l < end;) {
            const char *nl = memchr(l, '\n', (size_t)(end - l));
            size_t ll = nl ? (size_t)(nl - l) : (size_t)(end - l);
            if (ll > 4 && strncmp(l, "id: ", 4) == 0) {
                ev.id = strtoull(l + 4, NULL, 10);
                any = true;
            } else if (ll > 6 && strncmp(l, "data: ", 6) == 0) {
                snprintf(ev.data, sizeof ev.data, "%.*s", (int)(ll - 6), l + 6);
                any = true;
            } else if (ll > 7 && strncmp(l, "event: ", 7) == 0) {
                snprintf(ev.event, sizeof ev.event, "%.*s", (int)(ll - 7), l + 7);
                any = true;
            }
            l = nl ? nl + 1 : end;
        }
        if (any && (ev.id || ev.event[0]))
            out[n++] = ev;
        p = end + 2;
    }
    return n;
}

static size_t wait_events(sse_cli *s, size_t want, sse_ev *out, size_t max, int limit_ms)
{
    long end = now_ms() + limit_ms;
    size_t n = 0;
    while ((n = parse_events(s->buf, out, max)) < want && !s->done && now_ms() < end)
        cli_pump(s, 20);
    return n;
}

static sse_ev evs[512];
static sse_ev evs2[512];

START_TEST(order_ids_filters)
{
    penv e;
    penv_start(&e, NULL, NULL);
    seed_machines(&e);
    create_instance(&e, "m", "i1");
    create_instance(&e, "n", "j1");
    sse_cli all, onlym, inst, gos, noctx;
    cli_open_live(&all, &e, "/v1/watch", NULL);
    char v[128];
    ck_assert_ptr_nonnull(strstr(all.head, "text/event-stream"));
    ck_assert_ptr_nonnull(strstr(all.head, "Cache-Control: no-cache"));
    ck_assert_ptr_nonnull(strstr(all.head, "X-Accel-Buffering: no"));
    (void)v;
    cli_open_live(&onlym, &e, "/v1/watch?machines=m", NULL);
    cli_open_live(&inst, &e, "/v1/instances/i1/watch", NULL);
    cli_open_live(&gos, &e, "/v1/watch?events=GO&machines=m,n", NULL);
    cli_open_live(&noctx, &e, "/v1/instances/i1/watch?include_ctx=false", NULL);

    uint64_t offs[30];
    const char *ids[30];
    size_t n = 0;
    for (int i = 0; i < 10; i++) {
        const char *ev = i % 2 ? "BACK" : "GO";
        ids[n] = "i1";
        offs[n++] = apply_event(&e, "i1", ev, "{\"k\":1}");
        if (i < 5) {
            ids[n] = "j1";
            offs[n++] = apply_event(&e, "j1", ev, NULL);
        }
    }
    size_t got = wait_events(&all, n, evs, 512, 5000);
    ck_assert_uint_eq(got, n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(evs[i].id, offs[i]); /* id = wal_offset, in order */
        char want[64];
        snprintf(want, sizeof want, "\"instance_id\":\"%s\"", ids[i]);
        ck_assert_msg(strstr(evs[i].data, want), "%s", evs[i].data);
        char w2[64];
        snprintf(w2, sizeof w2, "\"wal_offset\":%llu", (unsigned long long)offs[i]);
        ck_assert_ptr_nonnull(strstr(evs[i].data, w2));
        ck_assert_ptr_null(strstr(evs[i].data, "subscription_id"));
    }
    got = wait_events(&onlym, 10, evs2, 512, 5000);
    ck_assert_uint_eq(got, 10);
    for (size_t i = 0; i < got; i++) {
        ck_assert_ptr_nonnull(strstr(evs2[i].data, "\"machine\":\"m\""));
        ck_assert_ptr_nonnull(strstr(evs2[i].data, "\"ctx\":"));
    }
    got = wait_events(&inst, 10, evs2, 512, 5000);
    ck_assert_uint_eq(got, 10);
    got = wait_events(&gos, 8, evs2, 512, 5000);
    ck_assert_uint_eq(got, 8); /* 5 GO on i1 + 3 GO on j1 */
    for (size_t i = 0; i < got; i++)
        ck_assert_ptr_nonnull(strstr(evs2[i].data, "\"event\":\"GO\""));
    got = wait_events(&noctx, 10, evs2, 512, 5000);
    ck_assert_uint_eq(got, 10);
    for (size_t i = 0; i < got; i++)
        ck_assert_ptr_null(strstr(evs2[i].data, "\"ctx\""));
    /* nothing more arrives (no duplicates) */
    cli_pump(&all, 300);
    ck_assert_uint_eq(parse_events(all.buf, evs, 512), n);

    hresp r;
    http_req(&e, NULL, "GET", "/metrics", NULL, NULL, &r);
    ck_assert_ptr_nonnull(strstr(r.body, "rstmdb_proxy_sse_streams 5"));
    hresp_free(&r);
    cli_close(&all);
    cli_close(&onlym);
    cli_close(&inst);
    cli_close(&gos);
    cli_close(&noctx);
    ck_assert_int_eq(penv_stop(&e), 0);
}
END_TEST

START_TEST(resume_by_last_event_id)
{
    penv e;
    penv_start(&e, NULL, NULL);
    seed_machines(&e);
    create_instance(&e, "m", "r1");
    sse_cli s;
    cli_open_live(&s, &e, "/v1/instances/r1/watch", NULL);
    uint64_t off[6];
    off[0] = apply_event(&e, "r1", "GO", NULL);
    off[1] = apply_event(&e, "r1", "BACK", NULL);
    off[2] = apply_event(&e, "r1", "GO", NULL);
    ck_assert_uint_eq(wait_events(&s, 3, evs, 512, 5000), 3);
    cli_close(&s);
    off[3] = apply_event(&e, "r1", "BACK", NULL);
    off[4] = apply_event(&e, "r1", "GO", NULL);

    /* the browser's reconnect: Last-Event-ID = the second event */
    char h[64];
    snprintf(h, sizeof h, "Last-Event-ID: %llu", (unsigned long long)off[1]);
    const char *hdrs[] = {h, NULL};
    cli_open_live(&s, &e, "/v1/instances/r1/watch", hdrs);
    size_t got = wait_events(&s, 3, evs, 512, 5000);
    ck_assert_uint_eq(got, 3);
    ck_assert_uint_eq(evs[0].id, off[2]);
    ck_assert_uint_eq(evs[1].id, off[3]);
    ck_assert_uint_eq(evs[2].id, off[4]);
    /* then live, without a gap or a duplicate */
    off[5] = apply_event(&e, "r1", "BACK", NULL);
    ck_assert_uint_eq(wait_events(&s, 4, evs, 512, 5000), 4);
    ck_assert_uint_eq(evs[3].id, off[5]);
    cli_pump(&s, 200);
    ck_assert_uint_eq(parse_events(s.buf, evs, 512), 4);
    cli_close(&s);

    /* the same through the query parameter, on WATCH_ALL */
    char path[128];
    snprintf(path, sizeof path, "/v1/watch?last_event_id=%llu", (unsigned long long)off[3]);
    cli_open_live(&s, &e, path, NULL);
    ck_assert_uint_eq(wait_events(&s, 2, evs, 512, 5000), 2);
    ck_assert_uint_eq(evs[0].id, off[4]);
    ck_assert_uint_eq(evs[1].id, off[5]);
    cli_close(&s);

    /* from_offset is inclusive */
    snprintf(path, sizeof path, "/v1/instances/r1/watch?from_offset=%llu",
             (unsigned long long)off[5]);
    cli_open_live(&s, &e, path, NULL);
    ck_assert_uint_eq(wait_events(&s, 1, evs, 512, 5000), 1);
    ck_assert_uint_eq(evs[0].id, off[5]);
    cli_close(&s);
    ck_assert_int_eq(penv_stop(&e), 0);
}
END_TEST

START_TEST(heartbeat_on_idle_stream)
{
    penv e;
    const char *pargs[] = {"--sse-heartbeat-ms", "100", "--sse-retry-ms", "1234", NULL};
    penv_start(&e, NULL, pargs);
    sse_cli s;
    cli_open_live(&s, &e, "/v1/watch", NULL);
    ck_assert_int_eq(strncmp(s.buf, "retry: 1234\n:", 13), 0);
    long end = now_ms() + 3000;
    while (strstr(s.buf, ": keepalive\n\n") == NULL && now_ms() < end)
        cli_pump(&s, 20);
    ck_assert_msg(strstr(s.buf, ": keepalive\n\n") != NULL, "no heartbeat in %s", s.buf);
    cli_close(&s);
    ck_assert_int_eq(penv_stop(&e), 0);
}
END_TEST

/* Read a chunked HTTP response from a raw socket until EOF; returns the
 * de-chunked body (malloc'd). */
static char *read_all_dechunked(int fd, int limit_ms)
{
    size_t cap = 1 << 20, len = 0;
    char *raw = malloc(cap);
    long end = now_ms() + limit_ms;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) > 0) {
            if (len + 65536 > cap)
                raw = realloc(raw, cap *= 2);
            ssize_t k = read(fd, raw + len, 65536);
            if (k <= 0)
                break;
            len += (size_t)k;
        }
        if (now_ms() > end)
            break;
    }
    raw[len] = '\0';
    char *body = strstr(raw, "\r\n\r\n");
    char *out = calloc(1, len + 1);
    size_t o = 0;
    for (char *p = body ? body + 4 : raw + len; p < raw + len;) {
        unsigned long sz = strtoul(p, NULL, 16);
        char *nl = strstr(p, "\r\n");
        if (nl == NULL || sz == 0)
            break;
        p = nl + 2;
        if (p + sz > raw + len)
            sz = (unsigned long)(raw + len - p);
        memcpy(out + o, p, sz);
        o += sz;
        p += sz + 2;
    }
    free(raw);
    return out;
}

START_TEST(slow_reader_cut_off)
{
    penv e;
    const char *pargs[] = {"--sse-buffer-bytes", "8192", NULL};
    penv_start(&e, NULL, pargs);
    seed_machines(&e);
    create_instance(&e, "m", "s1");
    /* A reader that does not read: tiny receive buffer, never read() until the end. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)e.proxy.port);
    inet_pton(AF_INET, e.proxy.host, &sin.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    const char *req = "GET /v1/instances/s1/watch HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    usleep(200000);
    /* ~12 MB of events: more than the kernel's socket buffers can hide. */
    char *payload = malloc(16 * 1024 + 16);
    memset(payload, 'x', 16 * 1024);
    payload[0] = '"';
    payload[16 * 1024 - 1] = '"';
    payload[16 * 1024] = '\0';
    for (int i = 0; i < 760; i++)
        apply_event(&e, "s1", i % 2 ? "BACK" : "GO", payload);
    free(payload);
    char *body = read_all_dechunked(fd, 10000);
    close(fd);
    const char *last = strstr(body, "event: error\n");
    ck_assert_msg(last != NULL, "no final error event (%zu bytes read)", strlen(body));
    ck_assert_ptr_nonnull(strstr(last, "SLOW_READER"));
    ck_assert_msg(strcmp(body + strlen(body) - 2, "\n\n") == 0, "the error event ends the stream");
    free(body);
    hresp r;
    http_req(&e, NULL, "GET", "/metrics", NULL, NULL, &r);
    ck_assert_ptr_nonnull(strstr(r.body, "rstmdb_proxy_sse_slow_readers_total 1"));
    ck_assert_ptr_nonnull(strstr(r.body, "rstmdb_proxy_sse_streams 0"));
    hresp_free(&r);
    ck_assert_int_eq(penv_stop(&e), 0);
}
END_TEST

static void expect_problem(penv *e, const char *path, const char *const hdrs[], long status,
                           const char *code)
{
    sse_cli s;
    cli_open(&s, e, path, hdrs);
    cli_pump(&s, 3000);
    ck_assert_msg(s.done, "%s did not end", path);
    ck_assert_msg(cli_status(&s) == status, "%s: %ld %s", path, cli_status(&s), s.buf);
    ck_assert_ptr_nonnull(strstr(s.head, "application/problem+json"));
    char want[64];
    snprintf(want, sizeof want, "\"code\":\"%s\"", code);
    ck_assert_msg(strstr(s.buf, want) != NULL, "%s", s.buf);
    cli_close(&s);
}

START_TEST(subscribe_errors)
{
    penv e;
    penv_start(&e, NULL, NULL);
    seed_machines(&e);
    create_instance(&e, "m", "x1");
    expect_problem(&e, "/v1/instances/nope/watch", NULL, 404, "INSTANCE_NOT_FOUND");
    expect_problem(&e, "/v1/watch?include_ctx=maybe", NULL, 400, "BAD_REQUEST");
    expect_problem(&e, "/v1/watch?machine=m", NULL, 400, "BAD_REQUEST");
    expect_problem(&e, "/v1/watch?from_offset=-5", NULL, 400, "BAD_REQUEST");
    const char *bad[] = {"Last-Event-ID: abc", NULL};
    expect_problem(&e, "/v1/watch", bad, 400, "BAD_REQUEST");
    const char *h[] = {"Last-Event-ID: 5", NULL};
    expect_problem(&e, "/v1/watch?last_event_id=6", h, 400, "BAD_REQUEST");
    /* the proxy is still fine */
    sse_cli s;
    cli_open_live(&s, &e, "/v1/instances/x1/watch", NULL);
    cli_close(&s);
    ck_assert_int_eq(penv_stop(&e), 0);
}
END_TEST

START_TEST(final_event_on_shutdown)
{
    penv e;
    penv_start(&e, NULL, NULL);
    sse_cli s;
    cli_open_live(&s, &e, "/v1/watch", NULL);
    kill(e.proxy.pid, SIGTERM);
    long end = now_ms() + 5000;
    while (!s.done && now_ms() < end)
        cli_pump(&s, 50);
    ck_assert_msg(s.done, "stream did not end on SIGTERM");
    ck_assert_msg(strstr(s.buf, "event: error\ndata: {\"code\":\"SHUTDOWN\"") != NULL, "%s", s.buf);
    cli_close(&s);
    int st = spawn_stop(&e.proxy, 5000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
    e.proxy.pid = -1;
    penv_stop(&e);
}
END_TEST

START_TEST(stream_limit)
{
    penv e;
    const char *pargs[] = {"--sse-max-streams", "2", NULL};
    penv_start(&e, NULL, pargs);
    sse_cli a, b;
    cli_open_live(&a, &e, "/v1/watch", NULL);
    cli_open_live(&b, &e, "/v1/watch", NULL);
    expect_problem(&e, "/v1/watch", NULL, 503, "TOO_MANY_STREAMS");
    cli_close(&a);
    /* the slot is released when the client goes away (seen on the next write) */
    cli_close(&b);
    ck_assert_int_eq(penv_stop(&e), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sse");
    TCase *tc = tcase_create("sse");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, order_ids_filters);
    tcase_add_test(tc, resume_by_last_event_id);
    tcase_add_test(tc, heartbeat_on_idle_stream);
    tcase_add_test(tc, slow_reader_cut_off);
    tcase_add_test(tc, subscribe_errors);
    tcase_add_test(tc, final_event_on_shutdown);
    tcase_add_test(tc, stream_limit);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
