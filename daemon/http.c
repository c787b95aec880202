/* http.c: libmicrohttpd on the daemon's libevent loop. Owns the request
 * lifecycle (enum req_state), body limits, auth/CORS headers, local
 * endpoints, the suspend/resume dance with the pool, and taking an SSE
 * request's socket away from libmicrohttpd for sse.c. It must not parse
 * RCP params (rest.c) nor write SSE (sse.c), and it never blocks. */
#include "http.h"
#include "clock.h"
#include "list.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "authz.h"
#include "problem.h"
#include "ratelimit.h"
#include "rest.h"
#include "route.h"
#include "scope.h"
#include "strbuf.h"
#include "text.h"

/* Request lifecycle; every transition is in this file. */
typedef enum req_state {
    REQ_RECEIVING, /* headers seen; body (if any) arriving; nothing queued yet */
    REQ_UPSTREAM,  /* upstream call in flight; connection suspended */
    REQ_AUTHZ,     /* instance lookups for authorization in flight; suspended */
    REQ_CONTINUE,  /* lookups done: the next handler call goes on with the request */
    REQ_READY,     /* a response is prepared; the next handler call queues it */
    REQ_QUEUED,    /* a plain response is queued; MHD is sending it */
    REQ_TAKEN      /* SSE: the socket is sse.c's; MHD only closes its stand-in */
} req_state;

typedef struct mhd_slot {
    http *h;
    struct MHD_Daemon *d;
    struct event *ev_io;    /* MHD's epoll fd readable */
    struct event *ev_timer; /* MHD_get_timeout */
    int listen_fd;          /* owned until handed to MHD; -1 after quiesce */
    const char *name;
} mhd_slot;

struct http_req {
    http *h;
    struct MHD_Connection *conn;
    list_node link; /* h->reqs */
    http_req *next; /* h->spare while recycled */
    req_state state;
    const route *r; /* NULL unless the route matched */
    char *body;
    size_t body_len, body_cap;
    uint64_t received; /* body bytes seen, stored or not */
    bool too_large;
    bool suspended;
    pool_call *call;
    struct MHD_Response *resp; /* REQ_READY: to queue */
    int resp_status;
    uint64_t id;
    uint64_t t0_us; /* clock_mono_us() at the request's start */
    char method[8];
    char path[320];     /* for the access log only: path?query, access_token redacted (truncated) */
    auth_caller caller; /* who is calling (auth.h) */
    struct authz_wait *wait; /* REQ_AUTHZ: the lookups in flight */
    char *params;            /* an op's params, held while its lookups run */
    size_t params_len;
    route_query rq; /* a stream's query, likewise */
    bool rq_live;
    rest_call rest; /* last: the REST side of the request, for its whole life */
};

/* Instance lookups (GET_INSTANCE) a request waits for before it can be
 * authorized: the instance's machine is never taken from the request. */
typedef struct lookup {
    http_req *q;
    pool_call *call;
    char *id;
} lookup;

typedef struct authz_wait {
    size_t n, pending;
    bool failed;
    problem fail; /* the first lookup's error (an unknown instance is its 404) */
    lookup l[];
} authz_wait;

/* One libmicrohttpd connection, for the head deadline: its idle timeout is
 * reset by every byte, so a client sending a head one byte at a time
 * (slowloris) would hold its connection forever. A request head must be
 * complete within idle_timeout_s of the connection's start or of the end of
 * its previous request. */
typedef struct http_conn {
    list_node link; /* h->conns */
    struct MHD_Connection *conn;
    uint64_t deadline_ms; /* 0 while a request is being served */
} http_conn;

struct http {
    http_deps d;
    auth *auth;
    cors *cors;
    mhd_slot slots[2];
    size_t nslots;
    list_node reqs; /* every live request (for shutdown) */
    size_t nreqs;
    uint64_t next_id;
    bool draining;
    struct event *kick_ev; /* runs every daemon once, soon: after a resume */
    void (*idle_cb)(void *);
    void *idle_arg;
    struct event *idle_ev;
    list_node conns;        /* every connection, for the head deadline */
    struct event *sweep_ev; /* every second: heads past their deadline */
    http_req *spare;        /* finished requests kept for the next ones (at most HTTP_SPARE) */
    size_t nspare;
    struct body_block *spare_bodies; /* response bodies likewise */
    size_t nwaiting;                 /* requests waiting for the upstream (a gauge of /metrics) */
    size_t nconns;                   /* open connections (likewise) */
    size_t nspare_bodies;
};

/* Requests kept allocated: a request is ~5 KiB (its route match holds the
 * decoded captures), and keep-alive traffic would allocate one each time. */
#define HTTP_SPARE 64

/* ---- event loop glue ------------------------------------------------------ */

static void slot_run(mhd_slot *s)
{
    MHD_UNSIGNED_LONG_LONG to;
    /* After a resumed connection's response MHD asks for an immediate pass
     * (timeout 0) twice: run them here rather than through two more loop
     * turns (4 epoll_wait). Bounded so one slot cannot starve the loop. */
    int passes = 0;
    do {
        MHD_run(s->d);
    } while (++passes < 4 && MHD_get_timeout(s->d, &to) == MHD_YES && to == 0);
    if (MHD_get_timeout(s->d, &to) == MHD_YES) {
        struct timeval tv = clock_tv_ms(to);
        evtimer_add(s->ev_timer, &tv);
    } else {
        evtimer_del(s->ev_timer);
    }
}

static void on_slot_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    slot_run(arg);
}

static void check_idle(http *h)
{
    if (h->draining && h->nreqs == 0 && h->idle_cb != NULL && h->idle_ev != NULL)
        event_active(h->idle_ev, EV_TIMEOUT, 1);
}

static void on_idle_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    http *h = arg;
    if (h->idle_cb != NULL && h->nreqs == 0) {
        void (*cb)(void *) = h->idle_cb;
        h->idle_cb = NULL;
        cb(h->idle_arg);
    }
}

/* Each is a no-op when the connection is already in that state. */
static void http_req_suspend(http_req *r)
{
    if (r != NULL && !r->suspended) {
        MHD_suspend_connection(r->conn);
        r->suspended = true;
    }
}

static void http_req_resume(http_req *r)
{
    if (r != NULL && r->suspended) {
        r->suspended = false;
        MHD_resume_connection(r->conn);
        /* In external-poll mode MHD only picks resumed connections up on its
         * next MHD_run: make sure there is one this loop turn. */
        if (r->h->kick_ev != NULL)
            event_active(r->h->kick_ev, EV_TIMEOUT, 1);
    }
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    http *h = arg;
    for (size_t i = 0; i < h->nslots; i++)
        slot_run(&h->slots[i]);
}

/* ---- responses ------------------------------------------------------------- */

static void add_common_headers(http_req *q, struct MHD_Response *resp)
{
    http *h = q->h;
    char rid[24];
    text_u64(rid, q->id);
    MHD_add_response_header(resp, "X-Request-Id", rid);
    const char *origin = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Origin");
    const char *allow = cors_allow(h->cors, origin);
    if (allow != NULL) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", allow);
        MHD_add_response_header(resp, "Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS);
        if (cors_credentials(h->cors, origin))
            MHD_add_response_header(resp, "Access-Control-Allow-Credentials", "true");
    }
    if (cors_enabled(h->cors))
        MHD_add_response_header(resp, "Vary", "Origin");
    if (h->draining)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
}

/* Response bodies up to this size are copied into recycled blocks. */
#define HTTP_BODY_BLOCK 4096

typedef struct body_block {
    struct body_block *next; /* on h->spare_bodies */
    http *h;
    char data[HTTP_BODY_BLOCK];
} body_block;

static void body_release(void *cls)
{
    body_block *b = cls;
    http *h = b->h;
    if (h->nspare_bodies >= HTTP_SPARE) {
        free(b);
        return;
    }
    b->next = h->spare_bodies;
    h->spare_bodies = b;
    h->nspare_bodies++;
}

static void add_content_type(struct MHD_Response *resp, const char *ctype)
{
    if (resp != NULL && ctype != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
}

/* A response with a copy of text[0..len): the one copy of an upstream
 * result on its way out, into a recycled block when it is small. */
static struct MHD_Response *make_copy(http_req *q, const char *ctype, const char *text, size_t len)
{
    http *h = q->h;
    struct MHD_Response *resp;
    if (len > HTTP_BODY_BLOCK) {
        resp = MHD_create_response_from_buffer(len, (void *)(uintptr_t)text, MHD_RESPMEM_MUST_COPY);
    } else {
        body_block *b = h->spare_bodies;
        if (b != NULL) {
            h->spare_bodies = b->next;
            h->nspare_bodies--;
        } else if ((b = malloc(sizeof *b)) == NULL) {
            return NULL;
        }
        b->h = h;
        memcpy(b->data, text, len);
        resp =
            MHD_create_response_from_buffer_with_free_callback_cls(len, b->data, body_release, b);
        if (resp == NULL)
            body_release(b);
    }
    add_content_type(resp, ctype);
    if (resp != NULL)
        add_common_headers(q, resp);
    return resp;
}

/* A response on text that outlives it (static, or the daemon's own). */
static struct MHD_Response *make_static(http_req *q, const char *ctype, const char *text,
                                        size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)text, MHD_RESPMEM_PERSISTENT);
    add_content_type(resp, ctype);
    if (resp != NULL)
        add_common_headers(q, resp);
    return resp;
}

static struct MHD_Response *make_buffer(http_req *q, const char *ctype, char *body, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, body, body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        free(body);
        return NULL;
    }
    add_content_type(resp, ctype);
    add_common_headers(q, resp);
    return resp;
}

static void log_request(http_req *q, int status)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    long long us = (long long)(clock_mono_us() - q->t0_us);
    log_access(q->h->d.log, q->id, q->method, q->path, q->r ? q->r->metric_name : "-", status, us);
}

/* Queue now (only from the access handler). */
static enum MHD_Result queue(http_req *q, int status, struct MHD_Response *resp)
{
    if (resp == NULL)
        return MHD_NO;
    enum MHD_Result rc = MHD_queue_response(q->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    metrics_observe(q->h->d.m, q->r, status, (double)(clock_mono_us() - q->t0_us) / 1e6);
    log_request(q, status);
    q->state = REQ_QUEUED;
    return rc;
}

static struct MHD_Response *problem_response(http_req *q, problem *p)
{
    char *body = problem_render(p);
    struct MHD_Response *resp =
        make_buffer(q, "application/problem+json", body, body ? strlen(body) : 0);
    if (resp != NULL) {
        if (p->retry_after_s > 0) {
            char ra[16];
            snprintf(ra, sizeof ra, "%u", p->retry_after_s);
            MHD_add_response_header(resp, "Retry-After", ra);
        }
        if (p->www_authenticate)
            MHD_add_response_header(resp, "WWW-Authenticate", p->www_authenticate);
        if (p->status == 405 && q->rest.m.allow[0])
            MHD_add_response_header(resp, "Allow", q->rest.m.allow);
    }
    return resp;
}

static enum MHD_Result queue_problem(http_req *q, problem *p)
{
    int status = p->status;
    struct MHD_Response *resp = problem_response(q, p);
    problem_deinit(p);
    return queue(q, status, resp);
}

static enum MHD_Result queue_local_problem(http_req *q, int status, const char *code,
                                           const char *detail)
{
    problem p;
    problem_local(&p, status, code, detail);
    return queue_problem(q, &p);
}

/* Prepare (not queue) a response and resume the connection: called from the
 * pool's callback, outside MHD; the handler queues it on its next call. */
static void ready(http_req *q, int status, struct MHD_Response *resp)
{
    q->resp = resp;
    q->resp_status = status;
    q->state = REQ_READY;
    http_req_resume(q);
}

static void on_reply(const rstmdb_reply *reply, void *arg)
{
    http_req *q = arg;
    http *h = q->h;
    q->call = NULL;
    h->nwaiting--;
    log_msg(h->d.log, LOG_DEBUG, NULL, "request id=%llu upstream status=%d",
            (unsigned long long)q->id, rstmdb_reply_status(reply));
    rest_answer a;
    rest_call_answer(&q->rest, reply, pool_retry_after_s(h->d.upstream), &a);
    struct MHD_Response *resp;
    if (a.is_problem) {
        resp = problem_response(q, &a.problem);
    } else {
        resp = make_copy(q, "application/json", a.body, a.body_len);
        if (resp != NULL && a.location[0])
            MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, a.location);
        if (resp != NULL && a.etag[0])
            MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, a.etag);
        if (resp != NULL && a.has_wal_offset) {
            char v[24];
            snprintf(v, sizeof v, "%llu", (unsigned long long)a.wal_offset);
            MHD_add_response_header(resp, "RSTMDB-WAL-Offset", v);
        }
    }
    int status = a.status;
    rest_answer_deinit(&a);
    ready(q, status, resp);
}

/* ---- local endpoints --------------------------------------------------------- */

/* /readyz while nothing is READY: say why, as the request endpoints would
 * ({"ready":false,"status":502,"code":"AUTH_FAILED","detail":...}), so an
 * operator reading the probe tells bad credentials from a dead upstream. */
static char *readyz_why(http *h)
{
    problem p;
    problem_upstream_down(&p, pool_last_failure(h->d.upstream), 1);
    cJSON *o = cJSON_CreateObject();
    char *s = NULL;
    if (o != NULL && cJSON_AddFalseToObject(o, "ready") &&
        cJSON_AddNumberToObject(o, "status", p.status) &&
        cJSON_AddStringToObject(o, "code", p.code) &&
        cJSON_AddStringToObject(o, "detail", p.detail))
        s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    problem_deinit(&p);
    return s;
}

static enum MHD_Result serve_local(http_req *q)
{
    http *h = q->h;
    switch (q->r->id) {
    case R_HEALTHZ:
        return queue(q, 200, make_static(q, "application/json", "{\"status\":\"ok\"}", 15));
    case R_READYZ: {
        bool ok = pool_ready(h->d.upstream);
        char *b = ok ? strdup("{\"ready\":true}") : readyz_why(h);
        struct MHD_Response *resp = make_buffer(q, "application/json", b, b ? strlen(b) : 0);
        if (resp != NULL && !ok)
            MHD_add_response_header(resp, "Retry-After", "1");
        return queue(q, ok ? 200 : 503, resp);
    }
    case R_METRICS: {
        pool_stats ps;
        pool_get_stats(h->d.upstream, &ps);
        hub_stats hs;
        memset(&hs, 0, sizeof hs);
        if (h->d.hub != NULL)
            hub_get_stats(h->d.hub, &hs);
        metrics_gauges u = {
            .http_inflight = h->nwaiting,
            .http_connections = h->nconns,
            .sse_streams = h->d.sse ? sse_count(h->d.sse) : 0,
            .configured = ps.connections,
            .ready = ps.ready,
            .reconnects = ps.reconnects,
            .connect_failures = ps.connect_failures,
            .upstream_inflight = ps.inflight,
            .upstream_subs = hs.upstream_subs,
            .events_in = hs.events_in,
            .replayed = hs.replayed,
        };
        size_t len = 0;
        char *text = metrics_render(h->d.m, &u, &len);
        return queue(q, text ? 200 : 500,
                     make_buffer(q, "text/plain; version=0.0.4; charset=utf-8", text, len));
    }
    case R_OPENAPI:
        return queue(q, 200, make_static(q, "application/json", h->d.openapi, h->d.openapi_len));
    default:
        return queue_local_problem(q, 404, "NOT_FOUND", "no such endpoint");
    }
}

/* OPTIONS: CORS preflight, or a plain Allow answer. */
static enum MHD_Result serve_options(http_req *q, const char *path)
{
    char allow[96];
    if (route_allowed_methods(path, allow, sizeof allow) != 0)
        return queue_local_problem(q, 404, "NOT_FOUND", "no such endpoint");
    struct MHD_Response *resp = make_buffer(q, NULL, NULL, 0);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Allow", allow);
    const char *origin = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Origin");
    if (cors_allow(q->h->cors, origin) != NULL) {
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", allow);
        MHD_add_response_header(resp, "Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
        MHD_add_response_header(resp, "Access-Control-Max-Age", CORS_MAX_AGE);
    }
    return queue(q, 204, resp);
}

/* ---- request dispatch -------------------------------------------------------- */

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    route_query *rq = cls;
    if (rq->why[0])
        return MHD_NO;
    if (strcmp(key, "access_token") == 0)
        return MHD_YES; /* a credential (auth.c), not a parameter of the operation */
    return route_query_add(rq, key, value) == 0 ? MHD_YES : MHD_NO;
}

/* Take the connection's socket away from libmicrohttpd before it wrote
 * anything. libmicrohttpd ends a connection with shutdown(SHUT_WR) and
 * close() on its descriptor number, and shutdown acts on the socket itself,
 * so a plain dup() would see its stream cut. Instead the socket moves to a
 * new descriptor, and libmicrohttpd's number is pointed at one end of a
 * socketpair whose other end is closed: what libmicrohttpd then does to
 * "its" socket (epoll, a read that sees end of file, shutdown, close)
 * happens to that stand-in, and the connection ends there. The swap is
 * made while the connection is suspended, that is out of libmicrohttpd's
 * epoll set. Returns the socket (non-blocking, close-on-exec) or -1. */
static int take_socket(http_req *q)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(q->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci == NULL)
        return -1;
    int fd = ci->connect_fd, sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0)
        return -1;
    int ours = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    http_req_suspend(q);
    if (ours < 0 || dup3(sv[0], fd, O_CLOEXEC) < 0) {
        if (ours >= 0)
            close(ours);
        ours = -1;
    }
    close(sv[0]);
    close(sv[1]);
    http_req_resume(q);
    return ours;
}

/* The response headers every answer carries, as header lines for sse.c. */
static void common_header_lines(http_req *q, char *b, size_t cap)
{
    const char *origin = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Origin");
    const char *allow = cors_allow(q->h->cors, origin);
    int n = 0;
    if (allow != NULL)
        n = snprintf(
            b, cap, "Access-Control-Allow-Origin: %s\r\nAccess-Control-Expose-Headers: %s\r\n%s",
            allow, CORS_EXPOSE_HEADERS,
            cors_credentials(q->h->cors, origin) ? "Access-Control-Allow-Credentials: true\r\n"
                                                 : "");
    if (n < 0 || (size_t)n >= cap)
        n = 0;
    snprintf(b + n, cap - (size_t)n, "%s", cors_enabled(q->h->cors) ? "Vary: Origin\r\n" : "");
}

static enum MHD_Result start_lookups(http_req *q, authz_lookups *need);

static const char *cached_machine(void *arg, const char *instance_id)
{
    return hub_instance_machine(arg, instance_id);
}

static enum MHD_Result queue_forbidden(http_req *q, const char *why)
{
    problem p;
    problem_local(&p, 403, "FORBIDDEN", why);
    p.www_authenticate = PROBLEM_BEARER_SCOPE;
    return queue_problem(q, &p);
}

/* A stream: authorized (after its lookups, if any), opened, and its socket
 * handed to sse.c. The query is q->rq, released by the caller. */
static enum MHD_Result start_sse(http_req *q, const char *version)
{
    http *h = q->h;
    problem p;
    char why[300];
    authz_lookups need = {0};
    const char *iid =
        q->r->id == R_WATCH_INSTANCE && q->rest.m.ncaps > 0 ? q->rest.m.caps[0].value : NULL;
    switch (authz_stream(&q->caller, iid, q->rq.out, cached_machine, h->d.hub, &need, why,
                         sizeof why)) {
    case AUTHZ_DENY:
        return queue_forbidden(q, why);
    case AUTHZ_LOOKUP:
        q->rq_live = true; /* kept until the lookups are done */
        return start_lookups(q, &need);
    case AUTHZ_ALLOW:
        break;
    }
    const char *leid = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Last-Event-ID");
    bool jwt = q->caller.kind == CALLER_JWT;
    sse_auth sa = {
        .expires_at = jwt ? q->caller.claims.exp : 0,
        .instances = jwt && iid == NULL ? &q->caller.claims.instances : NULL,
        .caller_key = q->caller.key,
    };
    sse_stream *s = NULL;
    if (sse_stream_open(h->d.sse, &q->rest.m, q->rq.out, leid, &sa, &s, &p) != 0) {
        if (p.status == 429 && p.retry_after_s == 0)
            p.retry_after_s = 1;
        return queue_problem(q, &p);
    }
    int fd = take_socket(q);
    if (fd < 0) {
        sse_stream_abort(s);
        log_msg(h->d.log, LOG_WARN, NULL, "request id=%llu: cannot take the SSE socket: %s",
                (unsigned long long)q->id, strerror(errno));
        return queue_local_problem(q, 503, "TOO_MANY_STREAMS", "no descriptor for the stream");
    }
    char headers[512];
    common_header_lines(q, headers, sizeof headers);
    sse_conn conn = {
        .fd = fd,
        .chunked = strcmp(version, MHD_HTTP_VERSION_1_0) != 0,
        .request_id = q->id,
        .headers = headers,
        .t0_us = q->t0_us,
        .method = q->method,
        .path = q->path,
    };
    sse_stream_attach(s, &conn);
    q->state = REQ_TAKEN;
    return MHD_YES;
}

/* An operation whose params are built (q->params): authorized (after its
 * lookups, if any), then the pool takes the params and the connection
 * waits suspended for the reply. */
static enum MHD_Result send_op(http_req *q)
{
    http *h = q->h;
    problem p;
    char why[300];
    authz_lookups need = {0};
    switch (authz_op(&q->caller, q->rest.op, q->params, q->params_len, cached_machine, h->d.hub,
                     &need, why, sizeof why)) {
    case AUTHZ_DENY:
        return queue_forbidden(q, why);
    case AUTHZ_LOOKUP:
        return start_lookups(q, &need);
    case AUTHZ_ALLOW:
        break;
    }
    log_msg(h->d.log, LOG_DEBUG, NULL, "request id=%llu op=%s", (unsigned long long)q->id,
            q->rest.op);
    char *params = q->params;
    q->params = NULL;
    int rc = pool_call_take(h->d.upstream, q->rest.op, params, q->params_len, q->rest.resend_safe,
                            on_reply, q, &q->call);
    if (rc != RSTMDB_OK) {
        q->call = NULL;
        if (rc == RSTMDB_ERR_CLOSED)
            problem_upstream_down(&p, pool_last_failure(h->d.upstream),
                                  pool_retry_after_s(h->d.upstream));
        else
            problem_local(&p, 500, "INTERNAL_ERROR", rstmdb_strerror(rc));
        return queue_problem(q, &p);
    }
    h->nwaiting++;
    q->state = REQ_UPSTREAM;
    http_req_suspend(q);
    return MHD_YES;
}

/* An operation: rest.c builds it from path, query, headers and body. */
static enum MHD_Result call_upstream(http_req *q, const rest_input *in)
{
    problem p;
    if (rest_call_build(&q->rest, in, &p) != 0)
        return queue_problem(q, &p);
    q->params = rest_call_take_params(&q->rest, &q->params_len);
    return send_op(q);
}

/* ---- authorization lookups ------------------------------------------------------- */

static void wait_free(authz_wait *w)
{
    for (size_t i = 0; i < w->n; i++) {
        if (w->l[i].call != NULL)
            pool_call_cancel(w->l[i].call);
        free(w->l[i].id);
    }
    if (w->failed)
        problem_deinit(&w->fail);
    free(w);
}

static void on_lookup(const rstmdb_reply *reply, void *arg)
{
    lookup *l = arg;
    http_req *q = l->q;
    http *h = q->h;
    authz_wait *w = q->wait;
    l->call = NULL;
    int st = rstmdb_reply_status(reply);
    size_t len = 0;
    const char *raw = st == RSTMDB_OK ? rstmdb_reply_result_raw(reply, &len) : NULL;
    if (!w->failed) {
        if (st != RSTMDB_OK) {
            const rstmdb_error *e = rstmdb_reply_error(reply);
            if (e != NULL)
                problem_from_error(&w->fail, e, false, pool_retry_after_s(h->d.upstream));
            else
                problem_local(&w->fail, 503, "UPSTREAM_UNAVAILABLE", rstmdb_strerror(st));
            w->failed = true;
        } else if (raw == NULL || hub_instance_learn(h->d.hub, l->id, raw, len) != 0) {
            problem_local(&w->fail, 502, "UPSTREAM_ERROR",
                          "GET_INSTANCE answered without machine and version");
            w->failed = true;
        }
    }
    if (--w->pending > 0)
        return;
    h->nwaiting--;
    q->wait = NULL;
    if (w->failed) {
        int status = w->fail.status;
        struct MHD_Response *resp = problem_response(q, &w->fail);
        wait_free(w);
        ready(q, status, resp);
        return;
    }
    wait_free(w);
    q->state = REQ_CONTINUE;
    http_req_resume(q);
}

/* Ask the upstream for the machine of every instance in `need` (taken);
 * the request goes on (REQ_CONTINUE) when all have answered. */
static enum MHD_Result start_lookups(http_req *q, authz_lookups *need)
{
    http *h = q->h;
    authz_wait *w = calloc(1, sizeof *w + need->n * sizeof w->l[0]);
    if (w == NULL) {
        authz_lookups_clear(need);
        return queue_local_problem(q, 500, "INTERNAL_ERROR", "out of memory");
    }
    q->wait = w;
    int rc = RSTMDB_OK;
    for (size_t i = 0; i < need->n && rc == RSTMDB_OK; i++) {
        lookup *l = &w->l[w->n++];
        l->q = q;
        l->id = need->ids[i];
        need->ids[i] = NULL;
        strbuf b;
        strbuf_init(&b, 64 * 1024);
        strbuf_puts(&b, "{\"instance_id\":");
        strbuf_jstr(&b, l->id, strlen(l->id));
        strbuf_putc(&b, '}');
        size_t plen = 0;
        char *params = strbuf_take(&b, &plen);
        strbuf_deinit(&b);
        rc = params ? pool_call_take(h->d.upstream, "GET_INSTANCE", params, plen, true, on_lookup,
                                     l, &l->call)
                    : RSTMDB_ERR_NOMEM;
        if (rc == RSTMDB_OK)
            w->pending++;
        else
            l->call = NULL;
    }
    authz_lookups_clear(need);
    if (rc != RSTMDB_OK) {
        q->wait = NULL;
        wait_free(w);
        problem p;
        if (rc == RSTMDB_ERR_CLOSED)
            problem_upstream_down(&p, pool_last_failure(h->d.upstream),
                                  pool_retry_after_s(h->d.upstream));
        else
            problem_local(&p, 500, "INTERNAL_ERROR", rstmdb_strerror(rc));
        return queue_problem(q, &p);
    }
    log_msg(h->d.log, LOG_DEBUG, NULL, "request id=%llu: %zu instance lookup(s) to authorize it",
            (unsigned long long)q->id, w->n);
    h->nwaiting++;
    q->state = REQ_AUTHZ;
    http_req_suspend(q);
    return MHD_YES;
}

/* Lookups done: go on where the request stopped. */
static enum MHD_Result continue_request(http_req *q, const char *version)
{
    if (q->r->kind == ROUTE_SSE) {
        enum MHD_Result ret = start_sse(q, version);
        if (q->state != REQ_AUTHZ) {
            route_query_deinit(&q->rq);
            q->rq_live = false;
        }
        return ret;
    }
    return send_op(q);
}

/* The client's address, for the rate-limit key of open callers. */
static void peer_of(http_req *q, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(q->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    text_copy(out, cap, "unix");
    if (sa != NULL && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)cap);
    else if (sa != NULL && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)cap);
}

/* Who is calling (401 and 400 before routing's 404), and how often (429).
 * 0, or -1 with *ret the answer queued. */
static int admit(http_req *q, enum MHD_Result *ret)
{
    http *h = q->h;
    const char *raw = NULL;
    size_t raw_len = 0;
    bool has_at = MHD_lookup_connection_value_n(q->conn, MHD_GET_ARGUMENT_KIND, "access_token", 12,
                                                &raw, &raw_len) == MHD_YES;
    char at[JWT_MAX_BYTES + 1];
    at[0] = '\0';
    if (has_at && raw != NULL && route_pct_decode(raw, raw_len, at, sizeof at, 0) < 0)
        text_copy(at, sizeof at, "-"); /* undecodable or oversized: invalid, never a token */
    /* The client's address is only a rate-limit key: not looked up otherwise. */
    char peer[64] = "-";
    if (ratelimit_enabled(h->d.rl))
        peer_of(q, peer, sizeof peer);
    bool exempt = q->r != NULL && q->r->auth_exempt;
    auth_request ar = {
        .authorization =
            MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
        .cookie = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_COOKIE),
        .access_token = at,
        .has_access_token = has_at,
        .stream_route = q->r != NULL && q->r->kind == ROUTE_SSE,
        .peer = peer,
    };
    char why[300];
    problem p;
    switch (auth_identify(exempt ? NULL : h->auth, &ar, (int64_t)time(NULL), &q->caller, why,
                          sizeof why)) {
    case AUTH_OK:
        break;
    case AUTH_QUERY_NOT_HERE:
        *ret = queue_local_problem(q, 400, "BAD_REQUEST", why);
        return -1;
    case AUTH_NO_CREDENTIALS:
        *ret = queue_local_problem(q, 401, "UNAUTHORIZED", why);
        return -1;
    case AUTH_INVALID:
        problem_local(&p, 401, "AUTH_FAILED", why);
        p.www_authenticate = PROBLEM_BEARER_INVALID_TOKEN;
        *ret = queue_problem(q, &p);
        return -1;
    }
    OPENSSL_cleanse(at, sizeof at);
    bool unlimited = q->r != NULL && (q->r->id == R_HEALTHZ || q->r->id == R_READYZ);
    unsigned retry = 0;
    if (!unlimited && !ratelimit_take(h->d.rl, q->caller.key, clock_mono_ms(), &retry)) {
        problem_local(&p, 429, "RATE_LIMITED", "rate_limit_rps reached for this caller");
        p.retry_after_s = retry;
        *ret = queue_problem(q, &p);
        return -1;
    }
    return 0;
}

static enum MHD_Result dispatch(http_req *q, const char *path, const char *version)
{
    http *h = q->h;
    if (strcmp(q->method, "OPTIONS") == 0)
        return serve_options(q, path);
    enum MHD_Result ret;
    if (admit(q, &ret) != 0)
        return ret;
    switch (q->rest.rs) {
    case ROUTE_NOT_FOUND:
        return queue_local_problem(q, 404, "NOT_FOUND", "no such endpoint");
    case ROUTE_METHOD_NOT_ALLOWED: {
        char d[160];
        snprintf(d, sizeof d, "%s is not allowed here; allowed: %s", q->method, q->rest.m.allow);
        return queue_local_problem(q, 405, "METHOD_NOT_ALLOWED", d);
    }
    case ROUTE_BAD_PATH:
        return queue_local_problem(q, 400, "BAD_REQUEST", q->rest.m.why);
    case ROUTE_OK:
        break;
    }
    if (q->caller.kind == CALLER_JWT && q->r->scope != SCOPE_NONE &&
        !scope_grants(q->caller.claims.scopes, q->r->scope)) {
        char why[160];
        snprintf(why, sizeof why, "the token lacks %s, needed by %s %s", scope_name(q->r->scope),
                 q->r->method, q->r->pattern);
        return queue_forbidden(q, why);
    }
    if (q->too_large) {
        char d[96];
        snprintf(d, sizeof d, "request body larger than %llu bytes",
                 (unsigned long long)h->d.cfg->max_body_bytes);
        return queue_local_problem(q, 413, "PAYLOAD_TOO_LARGE", d);
    }

    route_query *rq = &q->rq;
    if (route_query_init(rq, q->r) != 0)
        return queue_local_problem(q, 500, "INTERNAL_ERROR", "out of memory");
    MHD_get_connection_values(q->conn, MHD_GET_ARGUMENT_KIND, collect_query, rq);
    if (rq->why[0]) {
        problem p;
        problem_local(&p, 400, "BAD_REQUEST", rq->why);
        route_query_deinit(rq);
        return queue_problem(q, &p);
    }
    if (q->r->kind == ROUTE_LOCAL) {
        ret = serve_local(q);
    } else if (q->r->kind == ROUTE_SSE) {
        ret = start_sse(q, version);
    } else {
        rest_input in = {
            .query = rq->out,
            .body = q->body,
            .body_len = q->body_len,
            .idempotency_key =
                MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Idempotency-Key"),
            .if_match =
                MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_MATCH),
            .allow_flush_all = h->d.cfg->allow_flush_all,
        };
        ret = call_upstream(q, &in);
    }
    if (!q->rq_live)
        route_query_deinit(rq); /* a stream waiting for its lookups keeps it */
    /* The body is not needed any more; the REST call is kept for the answer. */
    free(q->body);
    q->body = NULL;
    q->body_len = q->body_cap = 0;
    return ret;
}

static int body_append(http_req *q, const char *data, size_t n, uint64_t max)
{
    if (q->too_large || q->received > max) {
        q->too_large = true;
        return -1;
    }
    if (q->r == NULL || q->r->body == BODY_NONE)
        return 0; /* GET/HEAD bodies are read and dropped */
    if (q->body_len + n + 1 > q->body_cap) {
        size_t ncap = q->body_cap ? q->body_cap : 1024;
        while (ncap < q->body_len + n + 1)
            ncap *= 2;
        char *nb = realloc(q->body, ncap);
        if (nb == NULL) {
            q->too_large = true;
            return -1;
        }
        q->body = nb;
        q->body_cap = ncap;
    }
    memcpy(q->body + q->body_len, data, n);
    q->body_len += n;
    q->body[q->body_len] = '\0';
    return 0;
}

static http_conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void conn_expect_head(http *h, http_conn *c)
{
    if (c != NULL)
        c->deadline_ms = clock_mono_ms() + h->d.cfg->idle_timeout_s * 1000u;
}

static http_req *req_new(http *h)
{
    http_req *q = h->spare;
    if (q != NULL) {
        h->spare = q->next;
        h->nspare--;
    } else if ((q = malloc(sizeof *q)) == NULL) {
        return NULL;
    }
    /* Everything but the REST call, which rest_call_match initialises. */
    memset(q, 0, offsetof(http_req, rest));
    return q;
}

static void req_release(http *h, http_req *q)
{
    if (h->nspare >= HTTP_SPARE) {
        free(q);
        return;
    }
    q->next = h->spare;
    h->spare = q;
    h->nspare++;
}

static void req_link(http *h, http_req *q)
{
    list_push_front(&h->reqs, &q->link);
    h->nreqs++;
}

static void req_unlink(http *h, http_req *q)
{
    list_remove(&q->link);
    h->nreqs--;
}

/* The access log's path: the URL's path and its query (still encoded, as
 * sent), with the access_token value replaced, so that a credential never
 * reaches a log line. Cut at the buffer's size. */
typedef struct log_query {
    char *out;
    size_t n, cap;
} log_query;

static void lq_put(log_query *l, const char *s)
{
    size_t k = strlen(s);
    if (l->n + k >= l->cap)
        k = l->cap - 1 - l->n;
    memcpy(l->out + l->n, s, k);
    l->n += k;
    l->out[l->n] = '\0';
}

static enum MHD_Result log_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    log_query *l = cls;
    lq_put(l, l->out[l->n - 1] == '?' ? "" : "&");
    lq_put(l, key);
    if (value != NULL) {
        lq_put(l, "=");
        lq_put(l, strcmp(key, "access_token") == 0 ? "[redacted]" : value);
    }
    return MHD_YES;
}

static void log_path(http_req *q, const char *url)
{
    text_copy(q->path, sizeof q->path, url);
    if (MHD_get_connection_values(q->conn, MHD_GET_ARGUMENT_KIND, NULL, NULL) <= 0)
        return;
    log_query l = {q->path, strlen(q->path), sizeof q->path};
    lq_put(&l, "?");
    MHD_get_connection_values(q->conn, MHD_GET_ARGUMENT_KIND, log_query_arg, &l);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    http *h = cls;
    http_req *q = *con_cls;
    if (q == NULL) {
        q = req_new(h);
        if (q == NULL)
            return MHD_NO;
        q->h = h;
        q->conn = conn;
        q->id = ++h->next_id;
        q->t0_us = clock_mono_us();
        text_copy(q->method, sizeof q->method, method);
        log_path(q, url);
        q->r = rest_call_match(&q->rest, method, url) == ROUTE_OK ? q->rest.m.r : NULL;
        q->state = REQ_RECEIVING;
        req_link(h, q);
        *con_cls = q;
        http_conn *hc = conn_of(conn);
        if (hc != NULL)
            hc->deadline_ms = 0; /* the head is complete */
        /* A declared body over the limit is refused before it is read; MHD
         * then closes the connection, which is right for a 413. */
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        uint64_t n;
        if (cl != NULL && route_parse_uint(cl, UINT64_MAX, &n) == 0 &&
            n > h->d.cfg->max_body_bytes) {
            char d[96];
            snprintf(d, sizeof d, "request body larger than %llu bytes",
                     (unsigned long long)h->d.cfg->max_body_bytes);
            return queue_local_problem(q, 413, "PAYLOAD_TOO_LARGE", d);
        }
        /* Never queue on the first call: MHD would answer Connection: close
         * for a request with a body. */
        return MHD_YES;
    }

    switch (q->state) {
    case REQ_RECEIVING:
        if (*upload_data_size > 0) {
            /* MHD 0.9.75 refuses a response queued while the body is still
             * arriving, so an oversized body (chunked: no length up front)
             * is read and dropped and the 413 goes out on the final call.
             * Past a hard cap the connection is closed instead. */
            size_t n = *upload_data_size;
            *upload_data_size = 0;
            q->received += n;
            if (q->received > h->d.cfg->max_body_bytes * 4 + (1u << 20)) {
                log_msg(h->d.log, LOG_INFO, NULL,
                        "request id=%llu: body far over the limit, closing the connection",
                        (unsigned long long)q->id);
                return MHD_NO;
            }
            if (body_append(q, upload_data, n, h->d.cfg->max_body_bytes) != 0 && q->body) {
                free(q->body);
                q->body = NULL;
                q->body_len = q->body_cap = 0;
            }
            return MHD_YES;
        }
        return dispatch(q, url, version);
    case REQ_READY: {
        struct MHD_Response *resp = q->resp;
        q->resp = NULL;
        return queue(q, q->resp_status, resp);
    }
    case REQ_TAKEN:
        /* Only the stand-in is left: end it without a word. */
        return MHD_NO;
    case REQ_UPSTREAM:
    case REQ_AUTHZ:
        http_req_suspend(q); /* resumed before the reply: keep waiting */
        return MHD_YES;
    case REQ_CONTINUE:
        return continue_request(q, version);
    case REQ_QUEUED:
        *upload_data_size = 0;
        return MHD_YES;
    }
    return MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http *h = cls;
    http_req *q = *con_cls;
    if (q == NULL)
        return;
    *con_cls = NULL;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        log_msg(h->d.log, LOG_DEBUG, NULL, "request id=%llu ended early (reason %d)",
                (unsigned long long)q->id, (int)toe);
    if (q->call != NULL) {
        pool_call_cancel(q->call);
        q->call = NULL;
        h->nwaiting--;
    }
    if (q->wait != NULL) {
        wait_free(q->wait);
        q->wait = NULL;
        h->nwaiting--;
    }
    if (q->resp != NULL)
        MHD_destroy_response(q->resp);
    req_unlink(h, q);
    rest_call_deinit(&q->rest);
    free(q->body);
    free(q->params);
    if (q->rq_live)
        route_query_deinit(&q->rq);
    auth_caller_deinit(&q->caller);
    req_release(h, q);
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        conn_expect_head(h, conn_of(conn)); /* the next request's head, if any */
    check_idle(h);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    http *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        h->nconns++;
        http_conn *c = calloc(1, sizeof *c);
        *socket_context = c;
        if (c == NULL)
            return; /* no deadline for this one: the idle timeout still applies */
        c->conn = conn;
        conn_expect_head(h, c);
        list_push_front(&h->conns, &c->link);
        return;
    }
    h->nconns--;
    http_conn *c = *socket_context;
    if (c != NULL) {
        list_remove(&c->link);
        free(c);
        *socket_context = NULL;
    }
}

/* Shut the socket of every connection whose head is late: libmicrohttpd
 * then sees the end of the connection and closes it as usual. */
static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    http *h = arg;
    uint64_t now = clock_mono_ms();
    list_node *pos, *tmp;
    list_each_safe(pos, tmp, &h->conns)
    {
        http_conn *c = list_entry(pos, http_conn, link);
        if (c->deadline_ms == 0 || now < c->deadline_ms)
            continue;
        c->deadline_ms = 0;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci != NULL) {
            log_msg(h->d.log, LOG_INFO, NULL,
                    "closing a connection whose request head did not arrive within "
                    "idle_timeout_s (%llu s)",
                    (unsigned long long)h->d.cfg->idle_timeout_s);
            shutdown(ci->connect_fd, SHUT_RDWR);
        }
    }
}

/* Keep the path percent-encoded: route.c matches on raw segments so that
 * %2F inside an instance id cannot change the route, then decodes captures.
 * Query keys and values also arrive raw and are decoded strictly there. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    http *h = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    /* Mostly clients going away mid-response: routine, not a warning. */
    log_msg(h->d.log, LOG_INFO, NULL, "libmicrohttpd: %s", msg);
}

static int slot_start(http *h, mhd_slot *s, int fd, const char *name)
{
    const proxy_config *cfg = h->d.cfg;
    s->h = h;
    s->name = name;
    s->listen_fd = fd;
    s->d = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_access, h,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, h, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        h, MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->connection_memory_bytes,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->idle_timeout_s, MHD_OPTION_UNESCAPE_CALLBACK,
        no_unescape, NULL, MHD_OPTION_END);
    if (s->d == NULL)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD);
    if (info == NULL)
        return -1;
    s->ev_io = event_new(h->d.base, info->epoll_fd, EV_READ | EV_PERSIST, on_slot_event, s);
    s->ev_timer = evtimer_new(h->d.base, on_slot_event, s);
    if (s->ev_io == NULL || s->ev_timer == NULL || event_add(s->ev_io, NULL) != 0)
        return -1;
    slot_run(s);
    return 0;
}

static void slot_stop(mhd_slot *s)
{
    if (s->ev_io)
        event_free(s->ev_io);
    if (s->ev_timer)
        event_free(s->ev_timer);
    if (s->d)
        MHD_stop_daemon(s->d);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    memset(s, 0, sizeof *s);
    s->listen_fd = -1;
}

int http_new(http **out, const http_deps *deps, int tcp_fd, int unix_fd, auth *a, cors *c)
{
    http *h = calloc(1, sizeof *h);
    if (h != NULL) {
        list_init(&h->reqs);
        list_init(&h->conns);
    }
    if (h == NULL)
        return -1;
    h->d = *deps;
    h->auth = a;
    h->cors = c;
    h->idle_ev = event_new(deps->base, -1, 0, on_idle_event, h);
    h->kick_ev = event_new(deps->base, -1, 0, on_kick, h);
    h->sweep_ev = event_new(deps->base, -1, EV_PERSIST, on_sweep, h);
    struct timeval sweep = {1, 0};
    if (h->sweep_ev == NULL || event_add(h->sweep_ev, &sweep) != 0) {
        http_free(h);
        return -1;
    }
    int fds[2] = {tcp_fd, unix_fd};
    const char *names[2] = {"tcp", "unix"};
    for (int i = 0; i < 2; i++) {
        if (fds[i] < 0)
            continue;
        mhd_slot *s = &h->slots[h->nslots++];
        if (slot_start(h, s, fds[i], names[i]) != 0) {
            log_msg(deps->log, LOG_ERROR, NULL, "cannot start the %s HTTP listener", names[i]);
            s->listen_fd = -1; /* the caller still owns the fd */
            http_free(h);
            return -1;
        }
    }
    *out = h;
    return 0;
}

void http_free(http *h)
{
    if (h == NULL)
        return;
    /* MHD_stop_daemon must not meet suspended connections: answer the ones
     * waiting for the upstream, then resume everything. */
    list_node *pos, *tmp;
    list_each_safe(pos, tmp, &h->reqs)
    {
        http_req *q = list_entry(pos, http_req, link);
        bool waiting = q->call != NULL || q->wait != NULL;
        if (q->wait != NULL) {
            wait_free(q->wait);
            q->wait = NULL;
        }
        if (waiting) {
            if (q->call != NULL)
                pool_call_cancel(q->call);
            q->call = NULL;
            h->nwaiting--;
            problem p;
            problem_local(&p, 503, "SHUTTING_DOWN", "the proxy is shutting down");
            struct MHD_Response *resp = problem_response(q, &p);
            problem_deinit(&p);
            q->resp = resp;
            q->resp_status = 503;
            q->state = REQ_READY;
        }
        http_req_resume(q);
    }
    /* A few passes so MHD takes the resumed connections back and writes
     * what is ready before stopping. */
    for (int pass = 0; pass < 3; pass++)
        for (size_t i = 0; i < h->nslots; i++)
            if (h->slots[i].d != NULL)
                MHD_run(h->slots[i].d);
    for (size_t i = 0; i < h->nslots; i++)
        slot_stop(&h->slots[i]);
    if (h->idle_ev)
        event_free(h->idle_ev);
    if (h->kick_ev)
        event_free(h->kick_ev);
    if (h->sweep_ev)
        event_free(h->sweep_ev);
    while (h->spare != NULL) {
        http_req *q = h->spare;
        h->spare = q->next;
        free(q);
    }
    while (h->spare_bodies != NULL) {
        struct body_block *b = h->spare_bodies;
        h->spare_bodies = b->next;
        free(b);
    }
    auth_free(h->auth);
    cors_free(h->cors);
    free(h);
}

void http_reload(http *h, auth *a, cors *c)
{
    auth_free(h->auth);
    cors_free(h->cors);
    h->auth = a;
    h->cors = c;
}

void http_drain(http *h, void (*idle)(void *arg), void *arg)
{
    h->draining = true;
    h->idle_cb = idle;
    h->idle_arg = arg;
    for (size_t i = 0; i < h->nslots; i++) {
        mhd_slot *s = &h->slots[i];
        MHD_socket fd = MHD_quiesce_daemon(s->d);
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
        s->listen_fd = -1;
    }
    check_idle(h);
}

size_t http_inflight(const http *h)
{
    return h->nreqs;
}
