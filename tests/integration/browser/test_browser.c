/* test_browser.c: a real browser against the proxy's Server-Sent Events.
 * Headless Chromium loads a page from the test's own origin; the page opens
 * an EventSource on each SSE endpoint of the proxy (another origin, allowed
 * by --cors-origin) and reports every open/message/error back. The test writes events, restarts the
 * proxy on the same port (SIGTERM: the stream ends with `event: error`
 * SHUTDOWN), writes more while no proxy runs, and checks that the browser
 * reconnected by itself with Last-Event-ID and got every event exactly once,
 * in order. Skips (exit 77) when chromium is not installed. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chrome.h"
#include "harness.h"
#include "page.html.h"
#include "pagerec.h"
#include "pagesrv.h"
#include "phelp.h"

#define INST     "b-1" /* watched: machine "m" */
#define NOISE    "o-1" /* machine "n": filtered out by ?machines=m */
#define N_PHASE  5     /* events before the restart, during the gap, after */
#define N_EVENTS (3 * N_PHASE)
/* The proxy's retry: field, the browser's wait before reconnecting. Long
 * enough that the restarted proxy is up and has its upstream connection
 * before the first retry even on a loaded machine: a restarted proxy answers
 * a stream 503 for the few ms until then, and a browser never retries an
 * EventSource after a non-200 answer. */
#define RETRY_MS "2000"
#define NOCORS   "nocors" /* the page's stream on the proxy without CORS */
#define DEADLINE 50       /* s: the whole scenario; the harness kills it 5 s later */

/* The page's streams on the allowed proxy: both SSE endpoints. */
static const struct {
    const char *src;
    const char *path;
} STREAMS[] = {{"all", "/v1/watch?machines=m"}, {"one", "/v1/instances/" INST "/watch"}};
#define N_STREAMS (sizeof STREAMS / sizeof STREAMS[0])

typedef struct world {
    penv w; /* testd + a writer proxy (no CORS): the test writes through it */
    penv b; /* the proxy the browser uses (CORS allows the page's origin) */
    char b_listen[80];
    char origin[64];
    pagesrv *ps;
    chrome ch;
    const char *dir;
    uint64_t off[N_EVENTS];
    size_t nw;
    unsigned noise; /* events applied to NOISE */
} world;

#define EXPECT(w, cond, ...) EXPECT_PAGE((w)->ps, &(w)->ch, cond, __VA_ARGS__)

static bool wait_count(world *w, const char *src, const char *type, size_t n, int timeout_ms)
{
    return recs_wait(w->ps, &w->ch, src, type, n, timeout_ms);
}

/* wait_count on every stream of the allowed proxy. */
static bool wait_streams(world *w, const char *type, size_t n, int timeout_ms)
{
    for (size_t i = 0; i < N_STREAMS; i++)
        if (!wait_count(w, STREAMS[i].src, type, n, timeout_ms))
            return false;
    return true;
}

static int start_b(world *w, const char *listen)
{
    const char *argv[] = {spawn_proxy_path(), "--listen",      listen,    "--upstream",
                          w->w.testd.addr,    "--cors-origin", w->origin, "--sse-retry-ms",
                          RETRY_MS,           "--log-level",   "warn",    NULL};
    if (spawn_start(&w->b.proxy, argv, NULL, 10000) != 0)
        return -1;
    snprintf(w->b.base, sizeof w->b.base, "http://%s", w->b.proxy.addr);
    return 0;
}

static void wait_ready(penv *e)
{
    for (int i = 0; i < 500; i++) {
        hresp r;
        http_req(e, NULL, "GET", "/readyz", NULL, NULL, &r);
        long st = r.status;
        hresp_free(&r);
        if (st == 200)
            return;
        usleep(20000);
    }
    ck_abort_msg("proxy %s never became ready", e->base);
}

/* N_PHASE events on the watched instance (offsets kept) and one on the
 * filtered-out instance, all through the writer proxy. */
static void write_phase(world *w)
{
    for (int i = 0; i < N_PHASE; i++) {
        char payload[32];
        snprintf(payload, sizeof payload, "{\"n\":%zu}", w->nw);
        w->off[w->nw] = apply_event(&w->w, INST, w->nw % 2 == 0 ? "GO" : "BACK", payload);
        w->nw++;
        if (i == N_PHASE / 2)
            apply_event(&w->w, NOISE, w->noise++ % 2 == 0 ? "GO" : "BACK", NULL);
    }
}

static uint64_t metric(penv *e, const char *name)
{
    hresp r;
    http_req(e, NULL, "GET", "/metrics", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    uint64_t v = UINT64_MAX;
    size_t nl = strlen(name);
    for (const char *p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, name, nl) == 0 && p[nl] == ' ') {
            v = strtoull(p + nl + 1, NULL, 10);
            break;
        }
    }
    hresp_free(&r);
    ck_assert_msg(v != UINT64_MAX, "metric %s missing", name);
    return v;
}

/* The data of a message is the upstream event as JSON: check its fields. */
static bool event_ok(const char *data, uint64_t off, const char *event)
{
    cJSON *j = data ? cJSON_Parse(data) : NULL;
    const cJSON *inst = cJSON_GetObjectItemCaseSensitive(j, "instance_id");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "machine");
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(j, "event");
    const cJSON *wo = cJSON_GetObjectItemCaseSensitive(j, "wal_offset");
    bool ok = cJSON_IsString(inst) && strcmp(inst->valuestring, INST) == 0 && cJSON_IsString(m) &&
              strcmp(m->valuestring, "m") == 0 && cJSON_IsString(ev) &&
              strcmp(ev->valuestring, event) == 0 && cJSON_IsNumber(wo) &&
              (uint64_t)wo->valuedouble == off;
    cJSON_Delete(j);
    return ok;
}

/* One stream as the page saw it: exactly the N_EVENTS events, their ids the
 * WAL offsets of the writes, in order (so strictly increasing, none twice,
 * none lost); one open, the SHUTDOWN event after the first N_PHASE events,
 * one more open; never CLOSED. */
static void check_stream(world *w, const recs *r, const char *src)
{
    size_t msg = 0, opens = 0, shutdown_at = 0, reopen_at = 0, shutdowns = 0;
    uint64_t last = 0;
    for (size_t i = 0; i < r->n; i++) {
        const rec *x = &r->v[i];
        if (strcmp(x->src, src) != 0)
            continue;
        EXPECT(w, x->rs != 2, "%s: record %zu: the EventSource was closed (%s)", src, i, x->type);
        if (strcmp(x->type, "open") == 0) {
            opens++;
            if (opens == 2)
                reopen_at = i;
        } else if (strcmp(x->type, "server-error") == 0) {
            shutdowns++;
            shutdown_at = i;
            EXPECT(w, x->data && strstr(x->data, "\"SHUTDOWN\""),
                   "%s: final event is not SHUTDOWN: %s", src, x->data ? x->data : "(none)");
            EXPECT(w, msg == N_PHASE, "%s: SHUTDOWN after %zu events, want %d", src, msg, N_PHASE);
        } else if (strcmp(x->type, "message") == 0) {
            EXPECT(w, msg < N_EVENTS, "%s: more than %d events: a duplicate or a stray event (%s)",
                   src, N_EVENTS, x->data ? x->data : "");
            char want[32];
            snprintf(want, sizeof want, "%llu", (unsigned long long)w->off[msg]);
            EXPECT(w, x->id && strcmp(x->id, want) == 0, "%s: event %zu: id %s, want %s", src, msg,
                   x->id ? x->id : "(none)", want);
            EXPECT(w, w->off[msg] > last, "%s: ids not strictly increasing at event %zu", src, msg);
            EXPECT(w, event_ok(x->data, w->off[msg], msg % 2 == 0 ? "GO" : "BACK"),
                   "%s: event %zu: wrong data %s", src, msg, x->data ? x->data : "(none)");
            last = w->off[msg];
            msg++;
        }
    }
    EXPECT(w, msg == N_EVENTS, "%s: got %zu events, want %d", src, msg, N_EVENTS);
    EXPECT(w, opens == 2, "%s: %zu opens, want 2 (first connect, one reconnect)", src, opens);
    EXPECT(w, shutdowns == 1 && reopen_at > shutdown_at,
           "%s: want one SHUTDOWN event before the reconnect (%zu, at %zu, reopen at %zu)", src,
           shutdowns, shutdown_at, reopen_at);
}

START_TEST(eventsource_survives_proxy_restart)
{
    world W;
    world *w = &W;
    memset(w, 0, sizeof *w);
    w->ch.pid = -1;
    w->dir = browser_run_dir();
    const char *bin = browser_bin();
    ck_assert_ptr_nonnull(w->dir);
    ck_assert_ptr_nonnull(bin);

    /* The writer side: testd, a plain proxy, machines m and n, two instances. */
    penv_start(&w->w, NULL, NULL);
    seed_machines(&w->w);
    create_instance(&w->w, "m", INST);
    create_instance(&w->w, "n", NOISE);

    /* The page's origin, then the proxy that allows exactly that origin. */
    ck_assert_int_eq(pagesrv_new(&w->ps, PAGE_HTML), 0);
    snprintf(w->origin, sizeof w->origin, "http://127.0.0.1:%d", pagesrv_port(w->ps));
    w->b.testd.pid = -1;
    w->b.c = curl_easy_init();
    ck_assert_int_eq(start_b(w, "127.0.0.1:0"), 0);
    ck_assert_int_lt(snprintf(w->b_listen, sizeof w->b_listen, "%s", w->b.proxy.addr),
                     (int)sizeof w->b_listen);
    wait_ready(&w->b);

    /* The page URL: ?all=<url>&one=<url>&nocors=<url> (percent-encoded). */
    char page_url[2048], url[256];
    size_t pl = (size_t)snprintf(page_url, sizeof page_url, "%s/", w->origin);
    for (size_t i = 0; i <= N_STREAMS; i++) {
        bool nc = i == N_STREAMS; /* last: the writer proxy, which allows no origin */
        ck_assert_int_lt(snprintf(url, sizeof url, "%s%s", nc ? w->w.base : w->b.base,
                                  nc ? STREAMS[0].path : STREAMS[i].path),
                         (int)sizeof url);
        char *esc = curl_easy_escape(w->w.c, url, 0);
        ck_assert_ptr_nonnull(esc);
        int k = snprintf(page_url + pl, sizeof page_url - pl, "%c%s=%s", i == 0 ? '?' : '&',
                         nc ? NOCORS : STREAMS[i].src, esc);
        curl_free(esc);
        ck_assert(k > 0 && (size_t)k < sizeof page_url - pl);
        pl += (size_t)k;
    }
    fprintf(stderr, "[browser] page %s\n[browser] proxy %s allows origin %s\n", page_url, w->b.base,
            w->origin);

    ck_assert_int_eq(chrome_start(&w->ch, bin, w->dir, page_url), 0);
    EXPECT(w, wait_streams(w, "open", 1, 30000),
           "the page never opened its EventSources on the proxy (page fetched %u times)",
           pagesrv_page_hits(w->ps));
    EXPECT(w, wait_count(w, NOCORS, "error", 1, 10000),
           "the stream on the proxy without CORS neither failed nor opened");

    /* Phase 1: live events. */
    write_phase(w);
    EXPECT(w, wait_streams(w, "message", N_PHASE, 15000), "phase 1 events never arrived");

    /* The proxy closes the stream on purpose: SIGTERM ends every stream with
     * `event: error` SHUTDOWN; the browser starts reconnecting. */
    int st = spawn_stop(&w->b.proxy, 10000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "proxy exit status %d on SIGTERM", st);
    EXPECT(w, wait_streams(w, "server-error", 1, 10000),
           "no final event: error before the proxy closed the stream");
    EXPECT(w, wait_streams(w, "error", 1, 10000),
           "the browser did not notice the stream was closed");

    /* Phase 2: events while no proxy runs. Only a resume by Last-Event-ID
     * (a WAL replay by the next proxy) can bring them to the browser. */
    write_phase(w);

    /* A new proxy on the same address; the browser reconnects by itself
     * after retry: ms, to the same URL, sending Last-Event-ID. */
    int tries;
    for (tries = 0; tries < 50 && start_b(w, w->b_listen) != 0; tries++)
        usleep(100000);
    ck_assert_msg(tries < 50, "could not restart the proxy on %s", w->b_listen);
    wait_ready(&w->b);
    EXPECT(w, wait_streams(w, "open", 2, 20000),
           "the browser never reconnected (a CLOSED EventSource got a non-200 answer)");
    EXPECT(w, wait_streams(w, "message", 2 * N_PHASE, 15000),
           "the events written during the gap never arrived");

    /* Phase 3: live again on the new stream. */
    write_phase(w);
    EXPECT(w, wait_streams(w, "message", N_EVENTS, 15000), "phase 3 events never arrived");
    usleep(500000); /* room for a duplicate or a stray event to show up */

    /* The gap events came from the WAL: the restarted proxy replayed them.
     * It replays only for a stream that asks to resume, and the URL the
     * browser reconnects to carries no from_offset or last_event_id: so the
     * browser's reconnect carried the Last-Event-ID header. */
    uint64_t replayed = metric(&w->b, "rstmdb_proxy_replayed_events_total");
    EXPECT(w, replayed >= N_PHASE, "restarted proxy replayed %llu events, want >= %d",
           (unsigned long long)replayed, N_PHASE);

    /* What the page recorded, in the order it happened. */
    recs r;
    recs_load(w->ps, &r);
    EXPECT(w, !r.bad && pagesrv_dropped(w->ps) == 0, "page records malformed, lost or reordered");
    for (size_t i = 0; i < N_STREAMS; i++)
        check_stream(w, &r, STREAMS[i].src);
    /* Without an allowed origin the browser must refuse the stream, and not
     * retry it (readyState CLOSED). */
    for (size_t i = 0; i < r.n; i++)
        if (strcmp(r.v[i].src, NOCORS) == 0)
            EXPECT(w, strcmp(r.v[i].type, "error") == 0 && r.v[i].rs == 2,
                   "the proxy without CORS got a %s (readyState %d)", r.v[i].type, r.v[i].rs);
    EXPECT(w, recs_count(&r, NOCORS, "error") >= 1, "the stream without CORS was not refused");
    fprintf(stderr,
            "[browser] %zu streams: %d events each in order across a proxy restart, 2 opens each, "
            "%llu replayed, %zu page records\n",
            N_STREAMS, N_EVENTS, (unsigned long long)replayed, r.n);
    recs_free(&r);

    chrome_stop(&w->ch, 5000);
    spawn_stop(&w->b.proxy, 5000);
    curl_easy_cleanup(w->b.c);
    w->b.c = NULL;
    penv_stop(&w->w);
    pagesrv_free(w->ps);
    w->ps = NULL;
}
END_TEST

int main(void)
{
    return browser_main("browser", eventsource_survives_proxy_restart, DEADLINE);
}
