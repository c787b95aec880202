/* sse.c: SSE streams on their own sockets (see sse.h): the shared event
 * chunks, each stream's bounded queue, its answer (200 head or problem),
 * heartbeats on the timer wheel, the slow-reader cut-off, drain and close.
 * It must not talk to the upstream (hub.c does) nor know libmicrohttpd
 * (http.c hands over the socket). */
#include "sse.h"
#include "clock.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "jscan.h"
#include "ratelimit.h"
#include "utf8.h"
#include "wheel.h"

/* Room always kept free for the final `event: error`, so a full queue can
 * still tell its reader why it is being closed. */
#define SSE_RESERVE    320
#define SSE_FILTER_MAX 256
#define SSE_MAX_INPUT  65536 /* bytes a client may send after its request */
#define CHUNK_ROOM     18    /* room before an event for its chunk-size line */

/* Bytes shared by every stream that sends them. `framed`: the bytes carry
 * HTTP/1.1 chunk framing [start, end) around the raw text [body, body+len);
 * an HTTP/1.0 stream sends only the raw text. */
typedef struct chunk {
    unsigned refs;
    bool framed;
    uint32_t start, end, body, body_len;
    char b[];
} chunk;

typedef struct qnode {
    chunk *c;
    struct qnode *next;
} qnode;

typedef enum stream_state {
    ST_NEW,     /* validated and subscribed; no socket yet */
    ST_PENDING, /* socket attached; waiting for the hub before answering */
    ST_LIVE,    /* answered 200: events, heartbeats */
    ST_CLOSING  /* final bytes queued: closed once they are written */
} stream_state;

struct sse_ctx {
    struct event_base *base;
    hub *hub;
    pool *upstream;
    metrics *m;
    const plog *log;
    ratelimit *rl; /* per-caller stream cap; may be NULL */
    sse_config cfg;
    wheel *wheel;
    unsigned slack_ms; /* a heartbeat is sent this much before its deadline */
    uint64_t rng;
    chunk *open, *keepalive, *eos; /* constant chunks, one ref held here */
    uint64_t memo_seq;             /* hub_event.seq of memo */
    chunk *memo;                   /* the last event, formatted once for all */
    uint64_t memo_now;             /* clock_mono_ms() when memo was made */
    sse_stream *head;
    size_t count;
    bool draining;
    void (*drained)(void *);
    void *drained_arg;
    struct event *drained_ev;
};

struct sse_stream {
    sse_stream *prev, *next; /* every stream of the ctx */
    sse_ctx *c;
    stream_state st;
    int fd;
    bool chunked;
    bool writing; /* EV_WRITE is part of the event */
    bool answered;
    bool torn;    /* an event went out in part and its rest could not be queued */
    hub_sub *sub; /* NULL once released */
    qnode *qhead, *qtail;
    uint32_t qoff; /* bytes of qhead already written */
    size_t queued; /* bytes not written yet */
    size_t input;  /* bytes received after the request */
    uint64_t last_id;
    uint64_t last_write_ms;
    wheel_node wn; /* heartbeat, or the CLOSING deadline */
    struct event ev;
    const route *r;
    uint64_t request_id;
    char *headers; /* until answered */
    uint64_t t0_us;
    char method[8];
    char path[320];
    /* Opened with a JWT: it ends at the token's exp (TOKEN_EXPIRED), and
     * under an instances limit only the allowed instances' events pass. */
    struct event *expiry;
    jwt_list instances;
    char *caller_key; /* counted in c->rl while the stream lives */
};

/* ---- chunks -------------------------------------------------------------- */

static chunk *chunk_alloc(size_t room)
{
    chunk *c = malloc(sizeof *c + room);
    if (c != NULL) {
        c->refs = 1;
        c->framed = false;
    }
    return c;
}

static void chunk_unref(chunk *c)
{
    if (c != NULL && --c->refs == 0)
        free(c);
}

/* Frame the text at c->b[CHUNK_ROOM .. + n) as one HTTP/1.1 chunk. */
static void chunk_frame(chunk *c, size_t n)
{
    char hdr[CHUNK_ROOM + 1];
    int hl = snprintf(hdr, sizeof hdr, "%zx\r\n", n);
    c->start = (uint32_t)(CHUNK_ROOM - (size_t)hl);
    memcpy(c->b + c->start, hdr, (size_t)hl);
    c->body = CHUNK_ROOM;
    c->body_len = (uint32_t)n;
    memcpy(c->b + CHUNK_ROOM + n, "\r\n", 2);
    c->end = (uint32_t)(CHUNK_ROOM + n + 2);
    c->framed = true;
}

/* Bytes sent as they are (a head, a problem): `a` then `b` (bn may be 0). */
static chunk *chunk_raw(const char *a, size_t an, const char *b, size_t bn)
{
    chunk *c = chunk_alloc(CHUNK_ROOM + an + bn);
    if (c == NULL)
        return NULL;
    memcpy(c->b + CHUNK_ROOM, a, an);
    if (bn > 0)
        memcpy(c->b + CHUNK_ROOM + an, b, bn);
    c->start = c->body = CHUNK_ROOM;
    c->body_len = (uint32_t)(an + bn);
    c->end = c->body + c->body_len;
    return c;
}

/* Event-stream text: chunk-framed for HTTP/1.1 streams. */
static chunk *chunk_text(const char *s, size_t n)
{
    chunk *c = chunk_alloc(CHUNK_ROOM + n + 2);
    if (c == NULL)
        return NULL;
    memcpy(c->b + CHUNK_ROOM, s, n);
    chunk_frame(c, n);
    return c;
}

static chunk *chunk_event(uint64_t id, const char *data, size_t len)
{
    size_t need = 32 + len + 8 * (memchr(data, '\n', len) || memchr(data, '\r', len) ? len : 1);
    chunk *c = chunk_alloc(CHUNK_ROOM + need + 2);
    if (c == NULL)
        return NULL;
    size_t n = sse_format_event(c->b + CHUNK_ROOM, need, id, data, len);
    if (n == 0) {
        free(c);
        return NULL;
    }
    chunk_frame(c, n);
    return c;
}

static void chunk_view(const chunk *c, bool chunked, const char **p, size_t *n)
{
    if (chunked && c->framed) {
        *p = c->b + c->start;
        *n = c->end - c->start;
    } else {
        *p = c->b + c->body;
        *n = c->body_len;
    }
}

/* ---- the socket ---------------------------------------------------------------- */

static void on_io(evutil_socket_t fd, short what, void *arg);
static void stream_close(sse_stream *s, const char *why);

static uint64_t jitter(sse_ctx *c, uint64_t range)
{
    /* xorshift64: spreading heartbeats needs no more than this */
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    return range ? c->rng % range : 0;
}

/* When the next heartbeat is due: at most heartbeat_ms after the last
 * bytes (less the wheel's slack), anywhere in the last quarter of that
 * interval so that streams written together do not all beat in the same
 * tick. */
static uint64_t heartbeat_due(sse_stream *s)
{
    sse_ctx *c = s->c;
    uint64_t hb = c->cfg.heartbeat_ms, late = hb - c->slack_ms;
    return s->last_write_ms + late - jitter(c, hb / 4 < late ? hb / 4 : 0);
}

static void schedule_heartbeat(sse_stream *s)
{
    wheel_add(s->c->wheel, &s->wn, heartbeat_due(s));
}

static void set_writing(sse_stream *s, bool on)
{
    if (s->writing == on)
        return;
    event_del(&s->ev);
    event_assign(&s->ev, s->c->base, s->fd, EV_READ | EV_PERSIST | (on ? EV_WRITE : 0), on_io, s);
    event_add(&s->ev, NULL);
    s->writing = on;
}

static void queue_drop(sse_stream *s)
{
    while (s->qhead) {
        qnode *q = s->qhead;
        s->qhead = q->next;
        chunk_unref(q->c);
        free(q);
    }
    s->qtail = NULL;
    s->qoff = 0;
    s->queued = 0;
}

/* Queue c (a reference) after what is there, or before it (`first`). */
static int queue_put(sse_stream *s, chunk *c, bool first)
{
    qnode *q = malloc(sizeof *q);
    if (q == NULL)
        return -1;
    const char *p;
    size_t n;
    chunk_view(c, s->chunked, &p, &n);
    c->refs++;
    q->c = c;
    if (first) {
        q->next = s->qhead;
        s->qhead = q;
        if (s->qtail == NULL)
            s->qtail = q;
    } else {
        q->next = NULL;
        if (s->qtail)
            s->qtail->next = q;
        else
            s->qhead = q;
        s->qtail = q;
    }
    s->queued += n;
    return 0;
}

/* Write what the socket takes. Returns -1 when the stream was closed. */
static int flush(sse_stream *s)
{
    if (!s->answered || s->fd < 0)
        return 0;
    while (s->qhead) {
        const char *p;
        size_t n;
        chunk_view(s->qhead->c, s->chunked, &p, &n);
        ssize_t k = send(s->fd, p + s->qoff, n - s->qoff, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0) {
            if (errno == EAGAIN) {
                set_writing(s, true);
                return 0;
            }
            if (errno == EINTR)
                continue;
            stream_close(s, "write failed");
            return -1;
        }
        s->queued -= (size_t)k;
        s->qoff += (uint32_t)k;
        if (s->qoff < n) {
            set_writing(s, true);
            return 0;
        }
        qnode *q = s->qhead;
        s->qhead = q->next;
        if (s->qhead == NULL)
            s->qtail = NULL;
        s->qoff = 0;
        chunk_unref(q->c);
        free(q);
    }
    set_writing(s, false);
    if (s->st == ST_CLOSING) {
        stream_close(s, NULL);
        return -1;
    }
    return 0;
}

/* Send c: straight to the socket when nothing waits before it (an idle
 * stream queues nothing), the rest queued. The limit bounds what the proxy
 * holds, not the size of an event the socket takes at once. `force`: may
 * use the reserve. -1: over the limit (the rest not queued), or OOM. */
static int stream_send(sse_stream *s, chunk *c, bool force, uint64_t now)
{
    const char *p;
    size_t n;
    chunk_view(c, s->chunked, &p, &n);
    size_t done = 0;
    if (s->answered && s->qhead == NULL && s->fd >= 0) {
        ssize_t k = send(s->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0)
            done = (size_t)k;
        else if (k < 0 && errno != EAGAIN && errno != EINTR)
            return 0; /* the peer is gone: on_io sees it and closes */
        s->last_write_ms = now;
        if (done == n)
            return 0;
    }
    size_t limit = s->c->cfg.buffer_bytes;
    size_t soft = limit > SSE_RESERVE ? limit - SSE_RESERVE : 0;
    bool over = s->queued + (n - done) > (force ? limit : soft);
    /* Part of it is on the wire already: the rest must follow, over the
     * limit or not, or the reader would see a torn event. */
    if (over && done == 0)
        return -1;
    if (queue_put(s, c, false) != 0) {
        s->torn = done > 0;
        return -1;
    }
    if (s->qhead == s->qtail)
        s->qoff = (uint32_t)done;
    s->queued -= done;
    if (s->answered) /* before the answer nothing may be written */
        set_writing(s, true);
    return over ? -1 : 0;
}

static void release_sub(sse_stream *s)
{
    if (s->sub != NULL) {
        hub_sub *sub = s->sub;
        s->sub = NULL;
        hub_unsubscribe(sub);
    }
}

static void on_drained(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sse_ctx *c = arg;
    if (c->drained != NULL && c->count == 0) {
        void (*cb)(void *) = c->drained;
        c->drained = NULL;
        cb(c->drained_arg);
    }
}

static void unlink_stream(sse_stream *s)
{
    sse_ctx *c = s->c;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    c->count--;
    if (c->draining && c->count == 0 && c->drained_ev != NULL)
        event_active(c->drained_ev, EV_TIMEOUT, 1);
}

static void stream_free(sse_stream *s)
{
    release_sub(s);
    queue_drop(s);
    wheel_del(s->c->wheel, &s->wn);
    if (s->fd >= 0) {
        event_del(&s->ev);
        close(s->fd);
    }
    unlink_stream(s);
    if (s->expiry)
        event_free(s->expiry);
    for (size_t i = 0; i < s->instances.n; i++)
        free(s->instances.v[i]);
    free(s->instances.v);
    if (s->caller_key) {
        ratelimit_stream_close(s->c->rl, s->caller_key);
        free(s->caller_key);
    }
    free(s->headers);
    free(s);
}

static void stream_close(sse_stream *s, const char *why)
{
    if (why != NULL)
        log_msg(s->c->log, LOG_DEBUG, NULL, "sse stream id=%llu closed: %s",
                (unsigned long long)s->request_id, why);
    if (s->fd >= 0)
        shutdown(s->fd, SHUT_WR);
    stream_free(s);
}

/* ---- answers ---------------------------------------------------------------------- */

static void log_answer(sse_stream *s, int status)
{
    uint64_t us = clock_mono_us() - s->t0_us;
    metrics_observe(s->c->m, s->r, status, (double)us / 1e6);
    log_access(s->c->log, s->request_id, s->method, s->path, s->r ? s->r->metric_name : "-", status,
               (long long)us);
}

/* Append to a head being built in b[cap]; a head that does not fit
 * leaves n == cap (the caller then has no head to send). */
static size_t head_put(char *b, size_t n, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t head_put(char *b, size_t n, size_t cap, const char *fmt, ...)
{
    if (n >= cap)
        return cap;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b + n, cap - n, fmt, ap);
    va_end(ap);
    return k < 0 || (size_t)k >= cap - n ? cap : n + (size_t)k;
}

static size_t head_common(sse_stream *s, char *b, size_t cap, int status, const char *ctype)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    int n = snprintf(b, cap,
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\n"
                     "X-Request-Id: %llu\r\nConnection: close\r\n%s",
                     status, status == 200 ? "OK" : problem_title(status), date, ctype,
                     (unsigned long long)s->request_id, s->headers ? s->headers : "");
    return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

/* 200: the head, then the opening lines, before whatever events came. */
static void answer_ok(sse_stream *s)
{
    char b[2048];
    size_t n = head_common(s, b, sizeof b, 200, "text/event-stream");
    n = head_put(b, n, sizeof b, "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n%s\r\n",
                 s->chunked ? "Transfer-Encoding: chunked\r\n" : "");
    chunk *head = n < sizeof b ? chunk_raw(b, n, NULL, 0) : NULL;
    free(s->headers);
    s->headers = NULL;
    if (head == NULL || queue_put(s, s->c->open, true) != 0 || queue_put(s, head, true) != 0) {
        chunk_unref(head);
        stream_close(s, "out of memory");
        return;
    }
    chunk_unref(head);
    s->st = ST_LIVE;
    s->answered = true;
    s->last_write_ms = clock_mono_ms();
    log_answer(s, 200);
    if (flush(s) == 0)
        schedule_heartbeat(s);
}

static void close_later(sse_stream *s)
{
    s->st = ST_CLOSING;
    wheel_add(s->c->wheel, &s->wn, clock_mono_ms() + s->c->cfg.heartbeat_ms);
    flush(s);
}

/* Not answered yet: a problem+json, then the end. */
static void answer_problem(sse_stream *s, problem *p)
{
    release_sub(s);
    queue_drop(s);
    char *body = problem_render(p);
    char b[2560];
    size_t blen = body ? strlen(body) : 0;
    size_t n = head_common(s, b, sizeof b, p->status, "application/problem+json");
    if (p->retry_after_s > 0)
        n = head_put(b, n, sizeof b, "Retry-After: %u\r\n", p->retry_after_s);
    n = head_put(b, n, sizeof b, "Content-Length: %zu\r\n\r\n", blen);
    chunk *c = n < sizeof b ? chunk_raw(b, n, body, blen) : NULL;
    int status = p->status;
    problem_deinit(p);
    free(body);
    free(s->headers);
    s->headers = NULL;
    if (c == NULL) {
        stream_close(s, "out of memory");
        return;
    }
    int rc = queue_put(s, c, false);
    chunk_unref(c);
    s->answered = true;
    log_answer(s, status);
    if (rc != 0) {
        stream_close(s, "out of memory");
        return;
    }
    close_later(s);
}

/* Answered: the final `event: error`, then the end of the stream. */
static void finish(sse_stream *s, const char *code, const char *message)
{
    release_sub(s);
    if (s->torn) { /* nothing more can be framed after a torn event */
        stream_close(s, "out of memory in the middle of an event");
        return;
    }
    char ev[SSE_RESERVE];
    size_t n = sse_format_error(ev, sizeof ev, code, message);
    chunk *c = n > 0 ? chunk_text(ev, n) : NULL;
    uint64_t now = clock_mono_ms();
    if (c != NULL)
        (void)stream_send(s, c, true, now);
    chunk_unref(c);
    if (s->chunked && stream_send(s, s->c->eos, true, now) != 0) {
        stream_close(s, "no room for the end of the stream");
        return;
    }
    close_later(s);
}

/* A terminal condition, whatever the stream's stage. */
static void end_stream(sse_stream *s, int status, const char *code, const char *message)
{
    if (s->st == ST_CLOSING)
        return;
    if (s->answered) {
        finish(s, code, message);
    } else {
        problem p;
        problem_local(&p, status, code, message);
        answer_problem(s, &p);
    }
}

/* ---- hub callbacks -------------------------------------------------------------------- */

static void on_ready(void *arg, const rstmdb_error *err)
{
    sse_stream *s = arg;
    if (err == NULL) {
        if (!s->answered && s->st == ST_PENDING)
            answer_ok(s);
        return;
    }
    s->sub = NULL; /* released by the hub */
    if (s->answered) {
        finish(s, rstmdb_error_code_str(err), rstmdb_error_message(err));
        return;
    }
    problem p;
    problem_from_error(&p, err, false, pool_retry_after_s(s->c->upstream));
    answer_problem(s, &p);
}

static void on_waiting(void *arg)
{
    sse_stream *s = arg;
    if (!s->answered && s->st == ST_PENDING) {
        log_msg(s->c->log, LOG_INFO, NULL,
                "sse stream id=%llu: no upstream connection yet; answered, subscribes when one "
                "is ready",
                (unsigned long long)s->request_id);
        answer_ok(s);
    }
}

static void cut_off(sse_stream *s)
{
    s->c->m->sse_dropped++;
    log_msg(s->c->log, LOG_WARN, NULL,
            "sse stream id=%llu cut off: reader fell more than %zu bytes behind",
            (unsigned long long)s->request_id, s->c->cfg.buffer_bytes);
    end_stream(s, 503, "SLOW_READER",
               "the client read slower than events arrived; the per-stream buffer "
               "(sse_buffer_bytes) overflowed. Reconnect with Last-Event-ID to resume.");
}

/* Under an instances limit: does the event's instance pass? */
static bool instance_allowed(const sse_stream *s, const hub_event *ev)
{
    jscan_member m;
    char *id = NULL;
    size_t n = 0;
    if (jscan_get(ev->data, ev->len, "instance_id", &m) != 0 ||
        jscan_string_dup(ev->data + m.val_off, m.val_len, &id, &n) != 0)
        return false;
    jwt_claims c;
    memset(&c, 0, sizeof c);
    c.instances = s->instances;
    bool ok = jwt_allows_instance(&c, id);
    free(id);
    return ok;
}

static void on_event(void *arg, const hub_event *ev)
{
    sse_stream *s = arg;
    sse_ctx *c = s->c;
    if (s->st == ST_CLOSING)
        return;
    if (s->last_id != 0 && ev->wal_offset <= s->last_id)
        return; /* the hub promises increasing ids; never forward one twice anyway */
    if (s->instances.present && !instance_allowed(s, ev))
        return;
    if (c->memo == NULL || c->memo_seq != ev->seq) {
        chunk_unref(c->memo);
        c->memo = chunk_event(ev->wal_offset, ev->data, ev->len);
        c->memo_seq = ev->seq;
        c->memo_now = clock_mono_ms();
        if (c->memo == NULL) {
            end_stream(s, 503, "INTERNAL_ERROR", "out of memory formatting an event");
            return;
        }
    }
    if (stream_send(s, c->memo, false, c->memo_now) != 0) {
        cut_off(s);
        return;
    }
    s->last_id = ev->wal_offset;
    c->m->sse_events++;
}

static void on_error(void *arg, const char *code, const char *message)
{
    sse_stream *s = arg;
    s->sub = NULL; /* released by the hub when this returns */
    end_stream(s, 503, code, message);
}

static const hub_sub_ops sse_ops = {on_ready, on_event, on_error, on_waiting};

/* ---- socket and timer events ------------------------------------------------------------ */

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    sse_stream *s = arg;
    if (what & EV_READ) {
        /* A client has nothing to say after its request: what it sends is
         * read and dropped (bounded); end of file means it went away. */
        char scratch[4096];
        for (;;) {
            ssize_t k = recv(fd, scratch, sizeof scratch, MSG_DONTWAIT);
            if (k > 0) {
                s->input += (size_t)k;
                if (s->input > SSE_MAX_INPUT) {
                    stream_close(s, "the client sent too much after its request");
                    return;
                }
                continue;
            }
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0 && (errno == EAGAIN))
                break;
            stream_close(s, k == 0 ? "the client closed the connection" : "read failed");
            return;
        }
    }
    if (what & EV_WRITE)
        flush(s);
}

static void on_timer(wheel_node *n, void *arg)
{
    sse_ctx *c = arg;
    sse_stream *s = (sse_stream *)((char *)n - offsetof(sse_stream, wn));
    uint64_t now = clock_mono_ms();
    switch (s->st) {
    case ST_CLOSING:
        stream_close(s, "the final bytes were not read in time");
        return;
    case ST_LIVE: {
        /* Written since this timer was set: the deadline moved with it. */
        uint64_t due = heartbeat_due(s);
        if (due > now) {
            wheel_add(c->wheel, &s->wn, due);
            return;
        }
        if (stream_send(s, c->keepalive, false, now) != 0) {
            cut_off(s);
            return;
        }
        schedule_heartbeat(s);
        return;
    }
    case ST_NEW:
    case ST_PENDING:
        return;
    }
}

/* ---- public ----------------------------------------------------------------------------- */

int sse_ctx_new(sse_ctx **out, struct event_base *base, hub *h, pool *p, metrics *m,
                const plog *log, ratelimit *rl, const sse_config *cfg)
{
    sse_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -1;
    c->base = base;
    c->rl = rl;
    c->hub = h;
    c->upstream = p;
    c->m = m;
    c->log = log;
    c->cfg = *cfg;
    if (c->cfg.heartbeat_ms < 10)
        c->cfg.heartbeat_ms = 10;
    unsigned tick = c->cfg.heartbeat_ms / 50;
    tick = tick < 1 ? 1 : tick > 500 ? 500 : tick;
    c->slack_ms = 2 * tick;
    c->rng = (uint64_t)(uintptr_t)c ^ 0x9e3779b97f4a7c15ULL;
    c->wheel = wheel_new(base, tick, c->cfg.heartbeat_ms, on_timer, c);
    char open[96];
    size_t on = sse_format_open(open, sizeof open, c->cfg.retry_ms);
    c->open = chunk_text(open, on);
    c->keepalive = chunk_text(SSE_KEEPALIVE, sizeof SSE_KEEPALIVE - 1);
    c->eos = chunk_raw("0\r\n\r\n", 5, NULL, 0);
    c->drained_ev = event_new(base, -1, 0, on_drained, c);
    if (c->wheel == NULL || c->open == NULL || c->keepalive == NULL || c->eos == NULL ||
        c->drained_ev == NULL) {
        sse_ctx_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

void sse_ctx_free(sse_ctx *c)
{
    if (c == NULL)
        return;
    while (c->head)
        stream_close(c->head, "the proxy stopped");
    chunk_unref(c->open);
    chunk_unref(c->keepalive);
    chunk_unref(c->eos);
    chunk_unref(c->memo);
    if (c->drained_ev)
        event_free(c->drained_ev);
    wheel_free(c->wheel);
    free(c);
}

size_t sse_count(const sse_ctx *c)
{
    return c->count;
}

void sse_drain(sse_ctx *c, void (*done)(void *arg), void *arg)
{
    c->draining = true;
    c->drained = done;
    c->drained_arg = arg;
    for (sse_stream *s = c->head, *nx; s != NULL; s = nx) {
        nx = s->next;
        if (s->st == ST_PENDING || s->st == ST_LIVE)
            end_stream(s, 503, "SHUTDOWN", "the proxy is shutting down; reconnect elsewhere");
    }
    if (c->count == 0)
        event_active(c->drained_ev, EV_TIMEOUT, 1);
}

static int get_u64(const cJSON *q, const char *name, bool *has, uint64_t *v)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(q, name);
    *has = false;
    if (j == NULL)
        return 0;
    const char *txt = cJSON_IsRaw(j) ? j->valuestring : NULL;
    if (txt == NULL || route_parse_uint(txt, UINT64_MAX, v) != 0)
        return -1;
    *has = true;
    return 0;
}

/* Collect a list filter into a borrowed array of C strings (valid for the call). */
static int get_list(const cJSON *q, const char *name, const char ***out, size_t *n)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(q, name);
    *out = NULL;
    *n = 0;
    if (a == NULL)
        return 0;
    int cnt = cJSON_GetArraySize(a);
    if (cnt <= 0 || cnt > SSE_FILTER_MAX)
        return -1;
    const char **v = calloc((size_t)cnt, sizeof *v);
    if (v == NULL)
        return -1;
    size_t i = 0;
    for (const cJSON *e = a->child; e != NULL; e = e->next) {
        if (!cJSON_IsString(e) || !utf8_valid(e->valuestring, strlen(e->valuestring))) {
            free(v);
            return -1;
        }
        v[i++] = e->valuestring;
    }
    *out = v;
    *n = i;
    return 0;
}

/* The resume point: Last-Event-ID (header or parameter) wins over
 * from_offset, since a browser's EventSource reconnects to the same URL
 * (with its original from_offset) and adds the id of the last event it saw. */
static int resume_point(const cJSON *query, const char *last_event_id, bool *has_from,
                        uint64_t *from, problem *p)
{
    bool has_q = false, has_h = false;
    uint64_t qid = 0, hid = 0;
    *has_from = false;
    *from = 0;
    if (query != NULL && (get_u64(query, "from_offset", has_from, from) != 0 ||
                          get_u64(query, "last_event_id", &has_q, &qid) != 0)) {
        problem_local(p, 400, "BAD_REQUEST", "from_offset/last_event_id must be integers");
        return -1;
    }
    if (last_event_id != NULL) {
        if (route_parse_uint(last_event_id, UINT64_MAX, &hid) != 0) {
            problem_local(p, 400, "BAD_REQUEST",
                          "Last-Event-ID must be a non-negative integer (an event id)");
            return -1;
        }
        has_h = true;
    }
    if (has_h && has_q && hid != qid) {
        problem_local(p, 400, "BAD_REQUEST",
                      "Last-Event-ID header and last_event_id parameter disagree");
        return -1;
    }
    if (has_h || has_q) {
        uint64_t id = has_h ? hid : qid;
        if (id == UINT64_MAX) {
            problem_local(p, 400, "BAD_REQUEST", "Last-Event-ID is out of range");
            return -1;
        }
        *has_from = true;
        *from = id + 1;
    }
    return 0;
}

static void on_expiry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sse_stream *s = arg;
    log_msg(s->c->log, LOG_INFO, NULL, "sse stream id=%llu: its token expired",
            (unsigned long long)s->request_id);
    end_stream(s, 401, "TOKEN_EXPIRED",
               "the token expired; reconnect with a fresh one (a browser sends its cookie again)");
}

/* What the caller's credential adds to a stream (see sse_auth). */
static int stream_auth(sse_stream *s, const sse_auth *a, problem *p)
{
    if (a == NULL)
        return 0;
    if (a->instances != NULL && a->instances->present) {
        s->instances.present = true;
        if (a->instances->n > 0 &&
            (s->instances.v = calloc(a->instances->n, sizeof *s->instances.v)) == NULL)
            goto oom;
        for (size_t i = 0; i < a->instances->n; i++) {
            if ((s->instances.v[i] = strdup(a->instances->v[i])) == NULL)
                goto oom;
            s->instances.n++;
        }
    }
    if (a->expires_at > 0) {
        int64_t left = a->expires_at - (int64_t)time(NULL);
        struct timeval tv = clock_tv_ms(left > 0 ? (uint64_t)left * 1000u : 0);
        s->expiry = evtimer_new(s->c->base, on_expiry, s);
        if (s->expiry == NULL || evtimer_add(s->expiry, &tv) != 0)
            goto oom;
    }
    return 0;
oom:
    problem_local(p, 500, "INTERNAL_ERROR", "out of memory");
    return -1;
}

int sse_stream_open(sse_ctx *c, const route_match *m, const cJSON *query, const char *last_event_id,
                    const sse_auth *auth, sse_stream **out, problem *p)
{
    if (c->draining) {
        problem_local(p, 503, "SHUTTING_DOWN", "the proxy is shutting down");
        return -1;
    }
    if (c->count >= c->cfg.max_streams) {
        problem_local(p, 503, "TOO_MANY_STREAMS", "sse_max_streams reached");
        return -1;
    }
    const rstmdb_error *last = pool_last_failure(c->upstream);
    if (!pool_ready(c->upstream) && last != NULL && pool_failure_is_definitive(last)) {
        /* The upstream refuses the proxy itself: only a configuration
         * change helps, so say it now rather than hold the stream open. */
        problem_upstream_down(p, last, 0);
        return -1;
    }
    hub_filter f;
    memset(&f, 0, sizeof f);
    f.include_ctx = true;
    const cJSON *ic = query ? cJSON_GetObjectItemCaseSensitive(query, "include_ctx") : NULL;
    if (ic != NULL)
        f.include_ctx = cJSON_IsTrue(ic);
    bool has_from;
    uint64_t from;
    if (resume_point(query, last_event_id, &has_from, &from, p) != 0)
        return -1;

    const char **lists[4] = {NULL, NULL, NULL, NULL};
    if (m->r->id == R_WATCH_INSTANCE) {
        if (m->ncaps < 1 || !utf8_valid(m->caps[0].value, strlen(m->caps[0].value))) {
            problem_local(p, 400, "BAD_REQUEST", "instance_id is not valid UTF-8");
            return -1;
        }
        f.instance_id = m->caps[0].value;
    } else if (query != NULL) {
        if (get_list(query, "machines", &lists[0], &f.nmachines) != 0 ||
            get_list(query, "events", &lists[1], &f.nevents) != 0 ||
            get_list(query, "from_states", &lists[2], &f.nfrom_states) != 0 ||
            get_list(query, "to_states", &lists[3], &f.nto_states) != 0) {
            for (int i = 0; i < 4; i++)
                free(lists[i]);
            problem_local(p, 400, "BAD_REQUEST", "bad filter list");
            return -1;
        }
        f.machines = lists[0];
        f.events = lists[1];
        f.from_states = lists[2];
        f.to_states = lists[3];
    }

    int rc = -1;
    sse_stream *s = calloc(1, sizeof *s);
    if (s == NULL) {
        problem_local(p, 500, "INTERNAL_ERROR", "out of memory");
        goto out;
    }
    s->c = c;
    s->fd = -1;
    s->r = m->r;
    s->st = ST_NEW;
    if (auth != NULL && auth->caller_key != NULL && ratelimit_enabled(c->rl)) {
        if (!ratelimit_stream_open(c->rl, auth->caller_key)) {
            problem_local(p, 429, "RATE_LIMITED", "sse_max_streams_per_caller reached");
            free(s);
            goto out;
        }
        if ((s->caller_key = strdup(auth->caller_key)) == NULL) {
            ratelimit_stream_close(c->rl, auth->caller_key);
            problem_local(p, 500, "INTERNAL_ERROR", "out of memory");
            free(s);
            goto out;
        }
    }
    int hrc = hub_subscribe(c->hub, &f, has_from, from, &sse_ops, s, &s->sub);
    if (hrc != RSTMDB_OK) {
        if (hrc == RSTMDB_ERR_INVALID)
            problem_local(p, 400, "BAD_REQUEST", "the subscription filter is not valid");
        else if (hrc == RSTMDB_ERR_CLOSED)
            problem_local(p, 503, "SHUTTING_DOWN", "the proxy is shutting down");
        else
            problem_local(p, 500, "INTERNAL_ERROR", rstmdb_strerror(hrc));
        if (s->caller_key) {
            ratelimit_stream_close(c->rl, s->caller_key);
            free(s->caller_key);
        }
        free(s);
        goto out;
    }
    s->next = c->head;
    if (c->head)
        c->head->prev = s;
    c->head = s;
    c->count++;
    c->m->sse_total++;
    if (stream_auth(s, auth, p) != 0) {
        stream_free(s);
        goto out;
    }
    *out = s;
    rc = 0;
out:
    for (int i = 0; i < 4; i++)
        free(lists[i]);
    return rc;
}

void sse_stream_attach(sse_stream *s, const sse_conn *conn)
{
    s->fd = conn->fd;
    s->chunked = conn->chunked;
    s->request_id = conn->request_id;
    s->t0_us = conn->t0_us;
    snprintf(s->method, sizeof s->method, "%s", conn->method ? conn->method : "GET");
    snprintf(s->path, sizeof s->path, "%s", conn->path ? conn->path : "");
    s->headers = strdup(conn->headers ? conn->headers : "");
    event_assign(&s->ev, s->c->base, s->fd, EV_READ | EV_PERSIST, on_io, s);
    s->st = ST_PENDING;
    if (s->headers == NULL || event_add(&s->ev, NULL) != 0) {
        stream_close(s, "out of memory");
        return;
    }
    /* The hub answers from its kick, never from here: on_ready, or
     * on_waiting when no upstream connection is ready. */
}

void sse_stream_abort(sse_stream *s)
{
    stream_free(s);
}
