/* metrics.c: counters and the Prometheus text format. It must not hold
 * secrets or per-request strings: every label value is from a fixed table. */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int statuses[METRICS_NSTATUS] = {200, 201, 204, 400, 401, 403, 404, 405, 409,
                                              412, 413, 422, 429, 500, 502, 503, 504, 0};
static const double buckets[METRICS_NBUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                 0.25,  0.5,    1.0,   2.5,  5.0,   10.0, 30.0};

void metrics_init(metrics *m)
{
    memset(m, 0, sizeof *m);
}

static size_t route_slot(const route *r)
{
    return r ? (size_t)r->id : (size_t)R_COUNT;
}

void metrics_observe(metrics *m, const route *r, int status, double seconds)
{
    size_t ri = route_slot(r), si = METRICS_NSTATUS - 1;
    for (size_t i = 0; i + 1 < METRICS_NSTATUS; i++)
        if (statuses[i] == status) {
            si = i;
            break;
        }
    m->requests[ri][si]++;
    for (size_t b = 0; b < METRICS_NBUCKETS; b++)
        if (seconds <= buckets[b]) {
            m->latency_buckets[ri][b]++;
            break;
        }
    m->latency_sum[ri] += seconds;
    m->latency_count[ri]++;
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap * 2 + (size_t)n;
        char *np = realloc(b->p, ncap);
        if (np == NULL) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

static const char *route_label(size_t ri)
{
    if (ri == R_COUNT)
        return "unmatched";
    const route *r = route_get((route_id)ri);
    return r ? r->metric_name : "unknown";
}

char *metrics_render(const metrics *m, const metrics_gauges *u, size_t *len)
{
    sbuf b = {malloc(16384), 0, 16384, 0};
    if (b.p == NULL)
        return NULL;
    put(&b, "# HELP rstmdb_proxy_http_requests_total HTTP requests answered, by route and status.\n"
            "# TYPE rstmdb_proxy_http_requests_total counter\n");
    for (size_t r = 0; r < METRICS_NROUTES; r++)
        for (size_t s = 0; s < METRICS_NSTATUS; s++)
            if (m->requests[r][s])
                put(&b, "rstmdb_proxy_http_requests_total{route=\"%s\",status=\"%s%d\"} %llu\n",
                    route_label(r), statuses[s] ? "" : "other", statuses[s] ? statuses[s] : 0,
                    (unsigned long long)m->requests[r][s]);
    put(&b, "# HELP rstmdb_proxy_http_request_duration_seconds Time from request to response.\n"
            "# TYPE rstmdb_proxy_http_request_duration_seconds histogram\n");
    for (size_t r = 0; r < METRICS_NROUTES; r++) {
        if (!m->latency_count[r])
            continue;
        uint64_t cum = 0;
        for (size_t i = 0; i < METRICS_NBUCKETS; i++) {
            cum += m->latency_buckets[r][i];
            put(&b,
                "rstmdb_proxy_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                route_label(r), buckets[i], (unsigned long long)cum);
        }
        put(&b,
            "rstmdb_proxy_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
            "rstmdb_proxy_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
            "rstmdb_proxy_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
            route_label(r), (unsigned long long)m->latency_count[r], route_label(r),
            m->latency_sum[r], route_label(r), (unsigned long long)m->latency_count[r]);
    }
    put(&b,
        "# HELP rstmdb_proxy_http_inflight_requests Requests waiting for their answer.\n"
        "# TYPE rstmdb_proxy_http_inflight_requests gauge\n"
        "rstmdb_proxy_http_inflight_requests %llu\n"
        "# HELP rstmdb_proxy_http_connections Open HTTP connections.\n"
        "# TYPE rstmdb_proxy_http_connections gauge\n"
        "rstmdb_proxy_http_connections %llu\n"
        "# HELP rstmdb_proxy_sse_streams Open Server-Sent Events streams.\n"
        "# TYPE rstmdb_proxy_sse_streams gauge\n"
        "rstmdb_proxy_sse_streams %llu\n"
        "# HELP rstmdb_proxy_sse_streams_total Streams opened since start.\n"
        "# TYPE rstmdb_proxy_sse_streams_total counter\n"
        "rstmdb_proxy_sse_streams_total %llu\n"
        "# HELP rstmdb_proxy_sse_events_total Events written to streams.\n"
        "# TYPE rstmdb_proxy_sse_events_total counter\n"
        "rstmdb_proxy_sse_events_total %llu\n"
        "# HELP rstmdb_proxy_sse_slow_readers_total Streams closed because the reader fell "
        "behind.\n"
        "# TYPE rstmdb_proxy_sse_slow_readers_total counter\n"
        "rstmdb_proxy_sse_slow_readers_total %llu\n",
        (unsigned long long)(u ? u->http_inflight : 0),
        (unsigned long long)(u ? u->http_connections : 0),
        (unsigned long long)(u ? u->sse_streams : 0), (unsigned long long)m->sse_total,
        (unsigned long long)m->sse_events, (unsigned long long)m->sse_dropped);
    if (u != NULL)
        put(&b,
            "# HELP rstmdb_proxy_upstream_connections Upstream connections by state.\n"
            "# TYPE rstmdb_proxy_upstream_connections gauge\n"
            "rstmdb_proxy_upstream_connections{state=\"configured\"} %u\n"
            "rstmdb_proxy_upstream_connections{state=\"ready\"} %u\n"
            "# HELP rstmdb_proxy_upstream_reconnects_total Re-handshakes after a lost connection.\n"
            "# TYPE rstmdb_proxy_upstream_reconnects_total counter\n"
            "rstmdb_proxy_upstream_reconnects_total %llu\n"
            "# HELP rstmdb_proxy_upstream_connect_failures_total Failed connect attempts.\n"
            "# TYPE rstmdb_proxy_upstream_connect_failures_total counter\n"
            "rstmdb_proxy_upstream_connect_failures_total %llu\n"
            "# HELP rstmdb_proxy_upstream_inflight_requests Requests sent upstream, not answered.\n"
            "# TYPE rstmdb_proxy_upstream_inflight_requests gauge\n"
            "rstmdb_proxy_upstream_inflight_requests %zu\n"
            "# HELP rstmdb_proxy_upstream_subscriptions Upstream WATCH subscriptions held.\n"
            "# TYPE rstmdb_proxy_upstream_subscriptions gauge\n"
            "rstmdb_proxy_upstream_subscriptions %zu\n"
            "# HELP rstmdb_proxy_upstream_events_total Events received from the upstream.\n"
            "# TYPE rstmdb_proxy_upstream_events_total counter\n"
            "rstmdb_proxy_upstream_events_total %llu\n"
            "# HELP rstmdb_proxy_replayed_events_total Events replayed from WAL_READ on resume.\n"
            "# TYPE rstmdb_proxy_replayed_events_total counter\n"
            "rstmdb_proxy_replayed_events_total %llu\n",
            u->configured, u->ready, (unsigned long long)u->reconnects,
            (unsigned long long)u->connect_failures, u->upstream_inflight, u->upstream_subs,
            (unsigned long long)u->events_in, (unsigned long long)u->replayed);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
