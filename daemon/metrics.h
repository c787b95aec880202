/* metrics.h: the proxy's counters and their Prometheus text exposition.
 * Plain counters updated from the event loop; no labels carry user data
 * (route names come from the route table, never from the request path). */
#ifndef PROXY_METRICS_H
#define PROXY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "route.h"

#define METRICS_NSTATUS  18
#define METRICS_NBUCKETS 14
#define METRICS_NROUTES  (R_COUNT + 1) /* + "unmatched" (404, bad path) */

typedef struct metrics {
    uint64_t requests[METRICS_NROUTES][METRICS_NSTATUS];
    uint64_t latency_buckets[METRICS_NROUTES][METRICS_NBUCKETS]; /* cumulative at render */
    double latency_sum[METRICS_NROUTES];
    uint64_t latency_count[METRICS_NROUTES];
    uint64_t sse_events;  /* events written to streams */
    uint64_t sse_dropped; /* streams cut off for reading too slowly */
    uint64_t sse_total;   /* streams ever opened */
} metrics;

/* Gauges, read from their owners at render time (never kept here). */
typedef struct metrics_gauges {
    size_t http_inflight;    /* http: requests waiting for the upstream */
    size_t http_connections; /* http: open connections */
    size_t sse_streams;      /* sse: open streams */
    unsigned configured, ready;
    uint64_t reconnects, connect_failures;
    size_t upstream_inflight;
    size_t upstream_subs;
    uint64_t events_in, replayed;
} metrics_gauges;

void metrics_init(metrics *m);
/* `r` NULL = unmatched. */
void metrics_observe(metrics *m, const route *r, int status, double seconds);
/* malloc'd text; NULL on OOM. */
char *metrics_render(const metrics *m, const metrics_gauges *u, size_t *len);

#endif
