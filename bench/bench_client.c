/* bench_client.c: the direct-client baseline of issue #4 and #7. Calls one
 * RCP op straight at an rstmdb server with librstmdb, blocking (the sync API,
 * concurrency 1) or pipelined (the async API on one connection, C requests
 * always in flight), and prints requests/s and exact latency percentiles in
 * loadgen's key=value format so bench/run can subtract one from the other.
 * It must not do anything per request beyond what a user's program would.
 *   bench_client --addr 127.0.0.1:7401 --op PING -c 1 -d 2
 *   bench_client --addr ... --op APPLY_EVENT \
 *                --params '{"instance_id":"b{c}","event":"tick"}' -c 64 -d 2
 * In params, {n} is the request's sequence number and {c} its slot (0..C-1).
 * --conns N spreads the C slots over N connections: with N = C each
 * connection has one request in flight, like C keep-alive HTTP clients. */
#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rstmdb/client.h"
#include "rstmdb/sync.h"

#define MAX_SAMPLES (16u * 1024 * 1024)
#define PARAMS_CAP  4096

typedef struct bench {
    const char *addr, *op, *params, *label;
    unsigned conc;
    double secs, warmup;
    double elapsed; /* seconds of the recorded phase */
    uint64_t seq, done, errors;
    bool recording;
    uint64_t t_end;
    uint32_t *lat;
    size_t nlat, caplat;
    /* async mode */
    struct event_base *base;
    rstmdb_client **cli; /* nconns connections; slot i uses cli[i % nconns] */
    unsigned nconns, nready;
    unsigned busy;
    bool failed;
} bench;

typedef struct slot {
    bench *b;
    unsigned idx;
    uint64_t t0;
} slot;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t expand(char *out, size_t cap, const char *tpl, uint64_t n, unsigned c)
{
    size_t o = 0;
    for (const char *p = tpl; *p; p++) {
        if (p[0] == '{' && (p[1] == 'n' || p[1] == 'c') && p[2] == '}') {
            int w = snprintf(out + o, cap - o, "%llu",
                             p[1] == 'n' ? (unsigned long long)n : (unsigned long long)c);
            if (w < 0 || (size_t)w >= cap - o)
                return 0;
            o += (size_t)w;
            p += 2;
        } else {
            if (o + 1 >= cap)
                return 0;
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    return o;
}

static void record(bench *b, uint64_t t0, int status)
{
    if (!b->recording)
        return;
    b->done++;
    if (status != RSTMDB_OK && b->errors++ == 0)
        fprintf(stderr, "bench_client[%s]: %s\n", b->label, rstmdb_strerror(status));
    if (b->nlat == b->caplat) {
        if (b->caplat >= MAX_SAMPLES)
            return;
        size_t ncap = b->caplat ? b->caplat * 2 : 65536;
        uint32_t *nl = realloc(b->lat, ncap * sizeof *nl);
        if (nl == NULL)
            return;
        b->lat = nl;
        b->caplat = ncap;
    }
    uint64_t d = now_ns() - t0;
    b->lat[b->nlat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

/* ---- blocking, one request at a time ------------------------------------ */

static int run_sync(bench *b, double secs)
{
    rstmdb_sync *s = NULL;
    rstmdb_error *err = NULL;
    if (rstmdb_sync_connect(&s, b->addr, NULL, &err) != RSTMDB_OK) {
        fprintf(stderr, "bench_client: connect %s: %s\n", b->addr,
                err ? rstmdb_error_message(err) : "?");
        rstmdb_error_free(err);
        return -1;
    }
    char params[PARAMS_CAP];
    uint64_t end = now_ns() + (uint64_t)(b->warmup * 1e9);
    for (int phase = 0; phase < 2; phase++) {
        b->recording = phase == 1;
        uint64_t p0 = now_ns();
        if (phase == 1)
            end = p0 + (uint64_t)(secs * 1e9);
        while (now_ns() < end) {
            size_t len = expand(params, sizeof params, b->params, b->seq++, 0);
            uint64_t t0 = now_ns();
            int st = rstmdb_sync_call_json(s, b->op, params, len, NULL);
            record(b, t0, st);
            if (rstmdb_sync_state(s) == RSTMDB_CONN_CLOSED) {
                rstmdb_sync_close(s);
                return -1;
            }
        }
        b->elapsed = (double)(now_ns() - p0) / 1e9;
    }
    rstmdb_sync_close(s);
    return 0;
}

/* ---- pipelined on one connection ----------------------------------------- */

static void issue(slot *sl);

static void on_reply(rstmdb_client *c, const rstmdb_reply *reply, void *arg)
{
    (void)c;
    slot *sl = arg;
    bench *b = sl->b;
    b->busy--;
    record(b, sl->t0, rstmdb_reply_status(reply));
    if (now_ns() < b->t_end && !b->failed)
        issue(sl);
    if (b->busy == 0)
        event_base_loopbreak(b->base);
}

static void issue(slot *sl)
{
    bench *b = sl->b;
    char params[PARAMS_CAP];
    size_t len = expand(params, sizeof params, b->params, b->seq++, sl->idx);
    sl->t0 = now_ns();
    if (rstmdb_call_json(b->cli[sl->idx % b->nconns], b->op, params, len, on_reply, sl, NULL) !=
        RSTMDB_OK) {
        b->failed = true;
        return;
    }
    b->busy++;
}

static void on_state(rstmdb_client *c, rstmdb_conn_state st, const rstmdb_error *why, void *arg)
{
    (void)c;
    bench *b = arg;
    if (st == RSTMDB_CONN_READY) {
        if (++b->nready == b->nconns)
            event_base_loopbreak(b->base);
    } else if (st == RSTMDB_CONN_CLOSED) {
        fprintf(stderr, "bench_client: connection closed: %s\n",
                why ? rstmdb_error_message(why) : "?");
        b->failed = true;
        event_base_loopbreak(b->base);
    }
}

static int run_async(bench *b, double secs)
{
    b->base = event_base_new();
    b->cli = calloc(b->nconns, sizeof *b->cli);
    if (b->base == NULL || b->cli == NULL)
        return -1;
    for (unsigned i = 0; i < b->nconns; i++) {
        rstmdb_error *err = NULL;
        if (rstmdb_client_new(&b->cli[i], b->base, b->addr, NULL, &err) != 0) {
            fprintf(stderr, "bench_client: %s\n", err ? rstmdb_error_message(err) : "no memory");
            rstmdb_error_free(err);
            return -1;
        }
        rstmdb_client_set_state_cb(b->cli[i], on_state, b);
    }
    event_base_dispatch(b->base);
    if (b->failed)
        return -1;
    slot *slots = calloc(b->conc, sizeof *slots);
    if (slots == NULL)
        return -1;
    for (int phase = 0; phase < 2 && !b->failed; phase++) {
        b->recording = phase == 1;
        uint64_t p0 = now_ns();
        b->t_end = p0 + (uint64_t)((phase ? secs : b->warmup) * 1e9);
        for (unsigned i = 0; i < b->conc; i++) {
            slots[i] = (slot){b, i, 0};
            issue(&slots[i]);
        }
        if (b->busy > 0)
            event_base_dispatch(b->base);
        b->elapsed = (double)(now_ns() - p0) / 1e9;
    }
    for (unsigned i = 0; i < b->nconns; i++)
        rstmdb_client_free(b->cli[i]);
    free(b->cli);
    event_base_free(b->base);
    free(slots);
    return b->failed ? -1 : 0;
}

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, c = *(const uint32_t *)y;
    return a < c ? -1 : a > c;
}

static double pct_us(const uint32_t *v, size_t n, double p)
{
    return n ? (double)v[(size_t)(p / 100.0 * (double)(n - 1) + 0.5)] / 1000.0 : 0;
}

int main(int argc, char **argv)
{
    bench b = {.addr = "127.0.0.1:7401",
               .op = "PING",
               .params = "{}",
               .label = "direct",
               .conc = 1,
               .secs = 2};
    bool force_async = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--async") == 0) {
            force_async = true;
            continue;
        }
        const char *v = i + 1 < argc ? argv[++i] : NULL;
        if (v == NULL)
            goto usage;
        if (strcmp(a, "--addr") == 0)
            b.addr = v;
        else if (strcmp(a, "--op") == 0)
            b.op = v;
        else if (strcmp(a, "--params") == 0)
            b.params = v;
        else if (strcmp(a, "--label") == 0)
            b.label = v;
        else if (strcmp(a, "-c") == 0)
            b.conc = (unsigned)atoi(v);
        else if (strcmp(a, "--conns") == 0)
            b.nconns = (unsigned)atoi(v);
        else if (strcmp(a, "-d") == 0)
            b.secs = atof(v);
        else if (strcmp(a, "--warmup") == 0)
            b.warmup = atof(v);
        else
            goto usage;
    }
    if (b.nconns == 0)
        b.nconns = 1;
    if (b.conc == 0 || b.nconns > b.conc)
        goto usage;
    /* Blocking at concurrency 1 (one call, one round trip, like a simple
     * program); the async core with C requests in flight otherwise. */
    int rc = (b.conc == 1 && !force_async) ? run_sync(&b, b.secs) : run_async(&b, b.secs);
    if (rc != 0)
        return 1;
    qsort(b.lat, b.nlat, sizeof *b.lat, cmp_u32);
    double mean = 0;
    for (size_t i = 0; i < b.nlat; i++)
        mean += (double)b.lat[i];
    mean = b.nlat ? mean / (double)b.nlat / 1000.0 : 0;
    printf("label=%s conc=%u requests=%llu errors=%llu non2xx=0 reconnects=0 secs=%.3f "
           "rps=%.0f mean_us=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f\n",
           b.label, b.conc, (unsigned long long)b.done, (unsigned long long)b.errors, b.elapsed,
           b.elapsed > 0 ? (double)b.done / b.elapsed : 0, mean, pct_us(b.lat, b.nlat, 50),
           pct_us(b.lat, b.nlat, 90), pct_us(b.lat, b.nlat, 99),
           b.nlat ? (double)b.lat[b.nlat - 1] / 1000.0 : 0);
    free(b.lat);
    return b.errors > 0 ? 1 : 0;
usage:
    fprintf(stderr,
            "usage: bench_client --addr HOST:PORT [--op OP] [--params JSON] [-c CONC]\n"
            "                    [-d SECONDS] [--warmup SECONDS] [--async] [--label L]\n"
            "                    [--conns N]   (spread the C requests over N connections)\n");
    return 2;
}
