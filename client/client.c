/* client.c: rstmdb_client, one RCPX connection on libevent: connect (TCP or
 * TLS), HELLO/AUTH, request ids and the pending map, timeouts, routing of
 * responses and events to requests and subscriptions, and teardown. Framing
 * is frame.c's and line.c's; JSON on this path is only scanned (jscan.c),
 * never parsed into a tree unless a caller asks for one.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "addr.h"
#include "client_int.h"
#include "clock.h"
#include "error_int.h"
#include "hmap.h"
#include "jscan.h"
#include "rstmdb/frame.h"
#include "text.h"

/* How long a BYE may take to leave the socket after close/free before the
 * connection is cut anyway (a server that stopped reading must not keep a
 * closed client's socket open forever). */
#define CLIENT_BYE_DRAIN_MS 1000
/* Finished requests kept per client for the next ones (each holds a timer). */
#define CLIENT_SPARE_REQS 64
/* Envelope members kept on the stack; a document with more is rescanned
 * into a heap array (a future server adding keys must still be routed). */
#define CLIENT_STACK_MEMBERS 16

typedef enum req_kind {
    REQ_USER = 0, /* rstmdb_call / rstmdb_call_json / typed ops */
    REQ_HELLO,    /* the handshake's HELLO */
    REQ_AUTH,     /* the handshake's AUTH */
    REQ_WATCH,    /* WATCH_* of a subscription */
    REQ_UNWATCH   /* UNWATCH of a subscription */
} req_kind;

typedef enum req_state {
    REQ_QUEUED = 0, /* waiting in the pre-READY queue; not written: the server never saw it */
    REQ_WRITTEN,    /* in the output buffer or on the wire; awaiting its response */
    REQ_COMPLETING  /* out of the map; its callback runs now (skipped if cancelled) */
} req_state;

struct rstmdb_request {
    rstmdb_client *c;
    hmap_node node;                /* c->reqs, key = id */
    rstmdb_request *prev, *next;   /* c->req_head: every request in the map */
    rstmdb_request *qprev, *qnext; /* the pre-READY queue while QUEUED */
    char id[24];
    char op[40];
    req_kind kind;
    req_state state;
    bool cancelled;
    bool was_written; /* set at teardown: fully handed to the kernel */
    uint8_t *frame;   /* the encoded frame while QUEUED */
    size_t frame_len;
    uint64_t out_end; /* c->out_total once its last byte was handed to the output buffer */
    struct event *timer;
    unsigned timeout_ms;
    rstmdb_reply_cb cb;
    void *arg;
    rstmdb_sub *sub;
};

typedef enum sub_state {
    SUB_WATCHING = 0, /* WATCH sent, not answered yet */
    SUB_ACTIVE,       /* subscribed: routed by id, events delivered */
    SUB_UNWATCHING,   /* UNWATCH sent or due; events dropped; on_end pending */
    SUB_ENDING        /* to be ended from the deferred callback with `end_why` */
} sub_state;

struct rstmdb_sub {
    rstmdb_client *c;
    hmap_node node; /* c->subs, key = id, while ACTIVE */
    bool in_map;
    rstmdb_sub *prev, *next; /* c->sub_head: every live subscription */
    char *id;
    sub_state state;
    bool unwatch_requested; /* rstmdb_unwatch while WATCHING */
    rstmdb_reply_cb on_reply;
    rstmdb_event_cb on_event;
    rstmdb_sub_end_cb on_end;
    void *arg;
    rstmdb_request *req;   /* WATCH or UNWATCH in flight */
    rstmdb_error *end_why; /* SUB_ENDING: the reason to report */
};

typedef enum client_stage {
    STAGE_START = 0,  /* created; the connect starts from the event loop */
    STAGE_RESOLVING,  /* the host name is being looked up */
    STAGE_CONNECTING, /* TCP (and TLS) connect under way */
    STAGE_HELLO,      /* HELLO sent */
    STAGE_AUTH,       /* AUTH sent */
    STAGE_READY,      /* requests flow */
    STAGE_CLOSED      /* terminal */
} client_stage;

/* One lookup's link back to its client. The resolver owns it until its
 * callback runs, which for a cancelled lookup is later, from the loop: the
 * client clears `c` instead of being reached after it is gone. */
typedef struct resolve_ticket {
    rstmdb_client *c;
} resolve_ticket;

typedef enum in_mode {
    IN_NONE = 0, /* between documents */
    IN_BINARY,   /* RCPX frames */
    IN_LINES     /* JSON lines (HELLO negotiated "jsonl") */
} in_mode;

struct rstmdb_client {
    struct event_base *base;
    rstmdb_request *spare; /* finished requests kept for reuse, timers and all */
    size_t nspare;
    /* Plain TCP: frames wait here for one writev at the end of the loop
     * turn (flush_ev), instead of the bufferevent's enable/disable of
     * EV_WRITE (two epoll_ctl) around every write. What one writev cannot
     * take moves on to the bufferevent's output. NULL with TLS. */
    struct evbuffer *wq;
    struct event *flush_ev;
    rstmdb_options *opts;
    char *address;
    char *host;
    char *port;
    struct evutil_addrinfo *ai_list; /* this connect's addresses (evutil_freeaddrinfo) */
    struct evutil_addrinfo *ai_next;
    resolve_ticket *ticket;                /* a lookup in flight */
    struct evdns_getaddrinfo_request *dns; /* its handle, once evdns_getaddrinfo returned */
    int last_errno;
    struct bufferevent *bev;
    rstmdb_conn_state state;
    client_stage stage;
    struct event *connect_timer;
    struct event *later; /* deferred work: the first connect, ending subscriptions */
    uint64_t next_id;
    hmap reqs;
    rstmdb_request *req_head;
    size_t nuser;
    rstmdb_request *q_head, *q_tail;
    size_t nqueued;
    hmap subs;
    rstmdb_sub *sub_head;
    rstmdb_frame_decoder *fdec;
    rstmdb_line_decoder *ldec;
    in_mode mode;    /* the server's current output mode */
    in_mode cur;     /* the decoder holding a partial document, or IN_NONE */
    unsigned hellos; /* HELLOs in flight: the mode may switch at a document boundary */
    uint64_t out_total;
    cJSON *hello;
    rstmdb_error *why;
    rstmdb_error *nomem; /* preallocated: reported when building an error fails */
    rstmdb_state_cb state_cb;
    void *state_arg;
    unsigned depth;
    bool free_requested;
    char peer[320]; /* the address tried, for messages (note_peer) */
    tls_notes tls;  /* what the SSL saw (tls_watch) */
};

static void client_fail(rstmdb_client *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void client_close_with(rstmdb_client *c, rstmdb_error *why, bool graceful);
static int client_submit(rstmdb_client *c, req_kind kind, const char *op, const char *params,
                         size_t params_len, rstmdb_reply_cb cb, void *arg, rstmdb_sub *sub,
                         rstmdb_request **out);
static void sub_finish(rstmdb_sub *sub, const rstmdb_error *why, bool call_end);

/* ---- re-entrancy ----------------------------------------------------------
 * Every entry from libevent and every API function that may run user
 * callbacks brackets itself with enter/leave. rstmdb_client_free inside a
 * callback only sets free_requested; the outermost leave destroys. */

static void client_destroy(rstmdb_client *c);

static void client_enter(rstmdb_client *c)
{
    c->depth++;
}

static void client_leave(rstmdb_client *c)
{
    if (--c->depth == 0 && c->free_requested)
        client_destroy(c);
}

/* ---- requests --------------------------------------------------------------- */

static void req_link(rstmdb_client *c, rstmdb_request *r)
{
    r->prev = NULL;
    r->next = c->req_head;
    if (c->req_head)
        c->req_head->prev = r;
    c->req_head = r;
}

static void req_unlink(rstmdb_client *c, rstmdb_request *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else if (c->req_head == r)
        c->req_head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void queue_push(rstmdb_client *c, rstmdb_request *r)
{
    r->qnext = NULL;
    r->qprev = c->q_tail;
    if (c->q_tail)
        c->q_tail->qnext = r;
    else
        c->q_head = r;
    c->q_tail = r;
    c->nqueued++;
}

static void queue_remove(rstmdb_client *c, rstmdb_request *r)
{
    if (r->qprev)
        r->qprev->qnext = r->qnext;
    else
        c->q_head = r->qnext;
    if (r->qnext)
        r->qnext->qprev = r->qprev;
    else
        c->q_tail = r->qprev;
    r->qprev = r->qnext = NULL;
    c->nqueued--;
}

/* Take a request out of every index; it becomes COMPLETING and the caller
 * finishes it. */
static void req_detach(rstmdb_client *c, rstmdb_request *r)
{
    if (r->state == REQ_COMPLETING)
        return;
    if (r->state == REQ_QUEUED)
        queue_remove(c, r);
    hmap_remove(&c->reqs, &r->node);
    req_unlink(c, r);
    if (r->kind == REQ_USER)
        c->nuser--;
    if (r->timer)
        evtimer_del(r->timer);
    r->state = REQ_COMPLETING;
}

static void req_free(rstmdb_request *r)
{
    if (!r)
        return;
    free(r->frame);
    r->frame = NULL;
    rstmdb_client *c = r->c;
    if (c && !c->free_requested && c->nspare < CLIENT_SPARE_REQS) {
        if (r->timer)
            evtimer_del(r->timer);
        r->next = c->spare;
        c->spare = r;
        c->nspare++;
        return;
    }
    if (r->timer)
        event_free(r->timer);
    free(r);
}

/* Bytes handed to the connection and not yet to the kernel. */
static uint64_t client_pending(const rstmdb_client *c)
{
    uint64_t n = c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
    return n + (c->wq ? evbuffer_get_length(c->wq) : 0);
}

static bool client_flushed(const rstmdb_client *c, uint64_t out_end)
{
    return out_end != 0 && out_end + client_pending(c) <= c->out_total;
}

/* Where a frame goes: the write queue (plain TCP) or the bufferevent. */
static struct evbuffer *client_out(rstmdb_client *c)
{
    if (c->wq == NULL)
        return bufferevent_get_output(c->bev);
    if (evbuffer_get_length(c->wq) == 0)
        event_active(c->flush_ev, EV_WRITE, 0);
    return c->wq;
}

/* The queued frames to the bufferevent, in order (before a BYE, a drain). */
static void client_wq_to_bev(rstmdb_client *c)
{
    if (c->wq != NULL && c->bev != NULL && evbuffer_get_length(c->wq) > 0)
        evbuffer_add_buffer(bufferevent_get_output(c->bev), c->wq);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rstmdb_client *c = arg;
    if (c->bev == NULL) {
        /* Closed since: nothing can carry these bytes any more, and a
         * non-empty queue would never be armed again. */
        evbuffer_drain(c->wq, evbuffer_get_length(c->wq));
        return;
    }
    if (evbuffer_get_length(c->wq) == 0)
        return;
    /* Straight to the socket unless the bufferevent still holds bytes
     * (order) or is not connected yet; errors and what is left are the
     * bufferevent's to handle. */
    evutil_socket_t s = bufferevent_getfd(c->bev);
    if (s >= 0 && c->stage != STAGE_CONNECTING &&
        evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        evbuffer_write(c->wq, s);
    client_wq_to_bev(c);
}

/* Handlers of internal requests, by kind. */
static void on_hello_reply(rstmdb_client *c, const rstmdb_reply *reply);
static void on_auth_reply(rstmdb_client *c, const rstmdb_reply *reply);
static void on_watch_reply(rstmdb_client *c, rstmdb_sub *sub, const rstmdb_reply *reply);
static void on_unwatch_reply(rstmdb_client *c, rstmdb_sub *sub, const rstmdb_reply *reply);

/* Deliver `reply` for a detached request, then free it. */
static void req_complete(rstmdb_client *c, rstmdb_request *r, const rstmdb_reply *reply)
{
    switch (r->kind) {
    case REQ_USER:
        if (!r->cancelled && !c->free_requested && r->cb)
            r->cb(c, reply, r->arg);
        break;
    case REQ_HELLO:
        c->hellos--;
        if (!c->free_requested && c->stage == STAGE_HELLO)
            on_hello_reply(c, reply);
        break;
    case REQ_AUTH:
        if (!c->free_requested && c->stage == STAGE_AUTH)
            on_auth_reply(c, reply);
        break;
    case REQ_WATCH:
        r->sub->req = NULL;
        on_watch_reply(c, r->sub, reply);
        break;
    case REQ_UNWATCH:
        r->sub->req = NULL;
        on_unwatch_reply(c, r->sub, reply);
        break;
    }
    req_free(r);
}

static void req_fail(rstmdb_client *c, rstmdb_request *r, const rstmdb_error *why, bool was_sent)
{
    rstmdb_reply reply;
    reply_cache cache;
    reply_init_failure(&reply, &cache, why, was_sent);
    req_complete(c, r, &reply);
    reply_deinit(&reply);
}

static void req_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    rstmdb_request *r = arg;
    rstmdb_client *c = r->c;
    (void)fd;
    (void)what;
    client_enter(c);
    bool was_queued = r->state == REQ_QUEUED;
    bool sent = !was_queued && client_flushed(c, r->out_end);
    req_detach(c, r);
    rstmdb_error *why = error_newf(RSTMDB_ERR_TIMEOUT, "request %s (id %s) timed out after %u ms",
                                   r->op, r->id, r->timeout_ms);
    req_fail(c, r, why ? why : c->nomem, sent);
    rstmdb_error_free(why);
    client_leave(c);
}

static int req_arm_timer(rstmdb_request *r, unsigned ms)
{
    r->timeout_ms = ms;
    if (ms == 0) {
        if (r->timer)
            evtimer_del(r->timer);
        return RSTMDB_OK;
    }
    if (!r->timer) {
        r->timer = evtimer_new(r->c->base, req_timeout_cb, r);
        if (!r->timer)
            return RSTMDB_ERR_NOMEM;
    }
    struct timeval tv = clock_tv_ms(ms);
    return evtimer_add(r->timer, &tv) == 0 ? RSTMDB_OK : RSTMDB_ERR_NOMEM;
}

/* Op names go into the envelope unescaped: accept the protocol's alphabet
 * (upper-case identifiers today) plus anything printable that needs no JSON
 * escaping, so newer servers' ops work through the raw call. */
static bool op_valid(const char *op)
{
    size_t n = op ? strlen(op) : 0;
    if (n == 0 || n >= sizeof(((rstmdb_request *)0)->op))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)op[i];
        if (ch < 0x21 || ch > 0x7E || ch == '"' || ch == '\\')
            return false;
    }
    return true;
}

/* Build the whole frame: header + {"type":"request","id":..,"op":..,"params":..}. */
static const char env_p1[] = "{\"type\":\"request\",\"id\":\"";
static const char env_p2[] = "\",\"op\":\"";
static const char env_p3[] = "\",\"params\":";

/* The payload length of a request's frame, or 0 when it is over max_frame. */
static size_t req_payload_len(const rstmdb_client *c, const rstmdb_request *r, size_t params_len)
{
    size_t plen = (sizeof(env_p1) - 1) + strlen(r->id) + (sizeof(env_p2) - 1) + strlen(r->op) +
                  (sizeof(env_p3) - 1) + params_len + 1;
    return plen > c->opts->max_frame ? 0 : plen;
}

/* Write the frame (header + envelope) into buf[0..HEADER_LEN + plen). */
static int req_fill(const rstmdb_request *r, uint8_t *buf, size_t plen, const char *params,
                    size_t params_len)
{
    size_t idl = strlen(r->id), opl = strlen(r->op);
    char *p = (char *)buf + RSTMDB_FRAME_HEADER_LEN;
    memcpy(p, env_p1, sizeof(env_p1) - 1);
    p += sizeof(env_p1) - 1;
    memcpy(p, r->id, idl);
    p += idl;
    memcpy(p, env_p2, sizeof(env_p2) - 1);
    p += sizeof(env_p2) - 1;
    memcpy(p, r->op, opl);
    p += opl;
    memcpy(p, env_p3, sizeof(env_p3) - 1);
    p += sizeof(env_p3) - 1;
    memcpy(p, params, params_len);
    p += params_len;
    *p = '}';
    return rstmdb_frame_header(buf, RSTMDB_FLAG_CRC_PRESENT, buf + RSTMDB_FRAME_HEADER_LEN, plen);
}

/* Encode into a malloc'd frame, for a request that waits in the queue. */
static int req_encode(rstmdb_client *c, rstmdb_request *r, const char *params, size_t params_len)
{
    size_t plen = req_payload_len(c, r, params_len);
    if (plen == 0)
        return RSTMDB_ERR_FRAME_TOO_LARGE;
    uint8_t *buf = malloc(RSTMDB_FRAME_HEADER_LEN + plen);
    if (!buf)
        return RSTMDB_ERR_NOMEM;
    int rc = req_fill(r, buf, plen, params, params_len);
    if (rc != RSTMDB_OK) {
        free(buf);
        return rc;
    }
    r->frame = buf;
    r->frame_len = RSTMDB_FRAME_HEADER_LEN + plen;
    return RSTMDB_OK;
}

static void req_sent(rstmdb_client *c, rstmdb_request *r, size_t len)
{
    c->out_total += len;
    r->out_end = c->out_total;
    r->state = REQ_WRITTEN;
}

/* Hand a queued request's frame to the output buffer. */
static int req_write(rstmdb_client *c, rstmdb_request *r)
{
    if (evbuffer_add(client_out(c), r->frame, r->frame_len) != 0)
        return RSTMDB_ERR_NOMEM;
    req_sent(c, r, r->frame_len);
    free(r->frame);
    r->frame = NULL;
    return RSTMDB_OK;
}

/* Encode straight into the connection's output buffer: no frame of its own. */
static int req_write_direct(rstmdb_client *c, rstmdb_request *r, const char *params,
                            size_t params_len)
{
    size_t plen = req_payload_len(c, r, params_len);
    if (plen == 0)
        return RSTMDB_ERR_FRAME_TOO_LARGE;
    struct evbuffer *out = client_out(c);
    struct evbuffer_iovec v;
    size_t len = RSTMDB_FRAME_HEADER_LEN + plen;
    if (evbuffer_reserve_space(out, (ev_ssize_t)len, &v, 1) != 1 || v.iov_len < len)
        return RSTMDB_ERR_NOMEM;
    int rc = req_fill(r, v.iov_base, plen, params, params_len);
    if (rc != RSTMDB_OK)
        return rc; /* nothing committed: the reservation is dropped */
    v.iov_len = len;
    if (evbuffer_commit_space(out, &v, 1) != 0)
        return RSTMDB_ERR_NOMEM;
    req_sent(c, r, len);
    return RSTMDB_OK;
}

/* A request object: a recycled one (its timer kept) or a new one. */
static rstmdb_request *req_new(rstmdb_client *c)
{
    rstmdb_request *r = c->spare;
    if (r == NULL)
        return calloc(1, sizeof(*r));
    c->spare = r->next;
    c->nspare--;
    struct event *timer = r->timer;
    memset(r, 0, sizeof(*r));
    r->timer = timer;
    return r;
}

static int client_submit(rstmdb_client *c, req_kind kind, const char *op, const char *params,
                         size_t params_len, rstmdb_reply_cb cb, void *arg, rstmdb_sub *sub,
                         rstmdb_request **out)
{
    if (c->state == RSTMDB_CONN_CLOSED || c->free_requested)
        return RSTMDB_ERR_CLOSED;
    if (!op_valid(op))
        return RSTMDB_ERR_INVALID;
    bool internal = kind == REQ_HELLO || kind == REQ_AUTH;
    bool direct = internal || c->stage == STAGE_READY;
    if (c->reqs.count >= c->opts->max_inflight || (!direct && c->nqueued >= c->opts->max_queued))
        return RSTMDB_ERR_NOMEM; /* documented: the caps act like memory exhaustion */
    rstmdb_request *r = req_new(c);
    if (!r)
        return RSTMDB_ERR_NOMEM;
    r->c = c;
    r->kind = kind;
    r->cb = cb;
    r->arg = arg;
    r->sub = sub;
    text_u64(r->id, c->next_id);
    text_copy(r->op, sizeof(r->op), op);
    int rc = RSTMDB_ERR_FRAME_TOO_LARGE;
    if (req_payload_len(c, r, params_len) == 0 ||
        (!direct && (rc = req_encode(c, r, params, params_len)) != RSTMDB_OK))
        goto fail;
    r->node.key = r->id;
    r->node.key_len = strlen(r->id);
    if (!internal && c->opts->request_timeout_ms &&
        (rc = req_arm_timer(r, c->opts->request_timeout_ms)) != RSTMDB_OK)
        goto fail;
    if (hmap_insert(&c->reqs, &r->node) != 0) {
        rc = RSTMDB_ERR_NOMEM;
        goto fail;
    }
    if (direct) {
        if ((rc = req_write_direct(c, r, params, params_len)) != RSTMDB_OK) {
            hmap_remove(&c->reqs, &r->node);
            goto fail;
        }
    } else {
        r->state = REQ_QUEUED;
        queue_push(c, r);
    }
    c->next_id++;
    req_link(c, r);
    if (kind == REQ_USER)
        c->nuser++;
    if (out)
        *out = r;
    return RSTMDB_OK;
fail:
    req_free(r);
    return rc;
}

/* ---- state ------------------------------------------------------------------ */

static void client_notify(rstmdb_client *c, rstmdb_conn_state st, const rstmdb_error *why)
{
    if (c->state_cb && !c->free_requested)
        c->state_cb(c, st, why, c->state_arg);
}

static void client_fail(rstmdb_client *c, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    if (c->state == RSTMDB_CONN_CLOSED)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    client_close_with(c, error_newf(status, "%s", msg), false);
}

static void client_become_ready(rstmdb_client *c)
{
    c->stage = STAGE_READY;
    c->state = RSTMDB_CONN_READY;
    evtimer_del(c->connect_timer);
    while (c->q_head) {
        rstmdb_request *r = c->q_head;
        queue_remove(c, r);
        if (req_write(c, r) != RSTMDB_OK) {
            client_fail(c, RSTMDB_ERR_NOMEM, "out of memory while sending queued requests");
            return;
        }
    }
    client_notify(c, RSTMDB_CONN_READY, NULL);
}

static void send_auth(rstmdb_client *c)
{
    cJSON *p = cJSON_CreateObject();
    char *text = NULL;
    if (p && cJSON_AddStringToObject(p, "method", "bearer") &&
        cJSON_AddStringToObject(p, "token", c->opts->auth))
        text = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
    if (!text) {
        client_fail(c, RSTMDB_ERR_NOMEM, "out of memory building AUTH");
        return;
    }
    c->stage = STAGE_AUTH;
    int rc = client_submit(c, REQ_AUTH, "AUTH", text, strlen(text), NULL, NULL, NULL, NULL);
    cJSON_free(text);
    if (rc != RSTMDB_OK)
        client_fail(c, rc, "cannot send AUTH: %s", rstmdb_strerror(rc));
}

static void send_hello(rstmdb_client *c)
{
    const rstmdb_options *o = c->opts;
    cJSON *p = cJSON_CreateObject();
    char *text = NULL;
    if (!p)
        goto oom;
    cJSON *modes = cJSON_AddArrayToObject(p, "wire_modes");
    cJSON *feats = NULL;
    if (!cJSON_AddNumberToObject(p, "protocol_version", 1) ||
        !cJSON_AddStringToObject(p, "client_name", o->client_name ? o->client_name : "librstmdb") ||
        !modes || (feats = cJSON_AddArrayToObject(p, "features")) == NULL)
        goto oom;
    cJSON *m = cJSON_CreateString(o->wire_mode == RSTMDB_WIRE_JSONL ? "jsonl" : "binary_json");
    if (!m || !cJSON_AddItemToArray(modes, m)) {
        cJSON_Delete(m);
        goto oom;
    }
    for (size_t i = 0; i < o->nfeatures; i++) {
        cJSON *f = cJSON_CreateString(o->features[i]);
        if (!f || !cJSON_AddItemToArray(feats, f)) {
            cJSON_Delete(f);
            goto oom;
        }
    }
    text = cJSON_PrintUnformatted(p);
    if (!text)
        goto oom;
    cJSON_Delete(p);
    c->stage = STAGE_HELLO;
    int rc = client_submit(c, REQ_HELLO, "HELLO", text, strlen(text), NULL, NULL, NULL, NULL);
    cJSON_free(text);
    if (rc != RSTMDB_OK)
        client_fail(c, rc, "cannot send HELLO: %s", rstmdb_strerror(rc));
    else
        c->hellos++;
    return;
oom:
    cJSON_Delete(p);
    client_fail(c, RSTMDB_ERR_NOMEM, "out of memory building HELLO");
}

/* A failed handshake step closes the connection with the server's error. */
static void handshake_failed(rstmdb_client *c, const char *step, const rstmdb_reply *reply)
{
    const rstmdb_error *e = reply->err;
    if (reply->status == RSTMDB_ERR_SERVER) {
        rstmdb_error *why = rstmdb_error_dup(e);
        client_close_with(c, why, false);
        return;
    }
    client_fail(c, reply->status, "%s failed: %s", step, e ? rstmdb_error_message(e) : "?");
}

static void on_hello_reply(rstmdb_client *c, const rstmdb_reply *reply)
{
    if (reply->status != RSTMDB_OK) {
        handshake_failed(c, "HELLO", reply);
        return;
    }
    const cJSON *res = rstmdb_reply_result(reply);
    if (!cJSON_IsObject(res)) {
        client_fail(c, RSTMDB_ERR_PROTOCOL, "HELLO answered without a result object");
        return;
    }
    const cJSON *pv = cJSON_GetObjectItemCaseSensitive(res, "protocol_version");
    if (pv && (!cJSON_IsNumber(pv) || pv->valuedouble != 1.0)) {
        client_fail(c, RSTMDB_ERR_PROTOCOL, "server speaks protocol version %g, not 1",
                    cJSON_IsNumber(pv) ? pv->valuedouble : -1.0);
        return;
    }
    cJSON_Delete(c->hello);
    c->hello = cJSON_Duplicate(res, 1);
    if (!c->hello) {
        client_fail(c, RSTMDB_ERR_NOMEM, "out of memory keeping the HELLO result");
        return;
    }
    if (c->opts->auth)
        send_auth(c);
    else
        client_become_ready(c);
}

static void on_auth_reply(rstmdb_client *c, const rstmdb_reply *reply)
{
    if (reply->status != RSTMDB_OK) {
        handshake_failed(c, "AUTH", reply);
        return;
    }
    client_become_ready(c);
}

/* ---- subscriptions -------------------------------------------------------------- */

static void sub_link(rstmdb_client *c, rstmdb_sub *s)
{
    s->prev = NULL;
    s->next = c->sub_head;
    if (c->sub_head)
        c->sub_head->prev = s;
    c->sub_head = s;
}

static void sub_unlink(rstmdb_client *c, rstmdb_sub *s)
{
    if (s->in_map) {
        hmap_remove(&c->subs, &s->node);
        s->in_map = false;
    }
    if (s->prev)
        s->prev->next = s->next;
    else if (c->sub_head == s)
        c->sub_head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

/* End a subscription: on_end (when asked and allowed), then release it. */
static void sub_finish(rstmdb_sub *sub, const rstmdb_error *why, bool call_end)
{
    rstmdb_client *c = sub->c;
    sub_unlink(c, sub);
    if (call_end && sub->on_end && !c->free_requested)
        sub->on_end(sub, why, sub->arg);
    rstmdb_error_free(sub->end_why);
    free(sub->id);
    free(sub);
}

/* End later, from the event loop: never inside a caller's own callback. */
static void sub_end_later(rstmdb_sub *sub, rstmdb_error *why)
{
    rstmdb_client *c = sub->c;
    if (sub->in_map) {
        hmap_remove(&c->subs, &sub->node);
        sub->in_map = false;
    }
    sub->state = SUB_ENDING;
    rstmdb_error_free(sub->end_why);
    sub->end_why = why;
    event_active(c->later, EV_TIMEOUT, 0);
}

static void sub_send_unwatch(rstmdb_sub *sub)
{
    rstmdb_client *c = sub->c;
    if (sub->in_map) {
        hmap_remove(&c->subs, &sub->node);
        sub->in_map = false;
    }
    sub->state = SUB_UNWATCHING;
    if (c->state == RSTMDB_CONN_CLOSED)
        return; /* the teardown ends it with the close reason */
    cJSON *p = cJSON_CreateObject();
    char *text = NULL;
    if (p && cJSON_AddStringToObject(p, "subscription_id", sub->id))
        text = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
    int rc = RSTMDB_ERR_NOMEM;
    if (text)
        rc = client_submit(c, REQ_UNWATCH, "UNWATCH", text, strlen(text), NULL, NULL, sub,
                           &sub->req);
    cJSON_free(text);
    if (rc != RSTMDB_OK)
        sub_end_later(sub, error_newf(rc, "cannot send UNWATCH: %s", rstmdb_strerror(rc)));
}

/* The subscription id from a WATCH result. */
static char *watch_result_id(const rstmdb_reply *reply)
{
    jscan_member m[CLIENT_STACK_MEMBERS];
    size_t n = 0;
    const char *res = reply->raw + reply->result_off;
    char *id = NULL;
    if (!reply->has_result ||
        jscan_object(res, reply->result_len, 0, m, CLIENT_STACK_MEMBERS, &n) != 0)
        return NULL;
    if (n > CLIENT_STACK_MEMBERS)
        n = CLIENT_STACK_MEMBERS;
    const jscan_member *s = jscan_find(res, m, n, "subscription_id");
    if (!s || s->type != JSCAN_STRING || jscan_string_dup(res + s->val_off, s->val_len, &id, NULL))
        return NULL;
    return id;
}

static void on_watch_reply(rstmdb_client *c, rstmdb_sub *sub, const rstmdb_reply *reply)
{
    if (reply->status != RSTMDB_OK) {
        if (sub->unwatch_requested) {
            sub_finish(sub, reply->err, true);
        } else {
            if (sub->on_reply && !c->free_requested)
                sub->on_reply(c, reply, sub->arg);
            sub_finish(sub, NULL, false);
        }
        return;
    }
    sub->id = watch_result_id(reply);
    if (sub->id) {
        sub->node.key = sub->id;
        sub->node.key_len = strlen(sub->id);
    }
    if (!sub->id || hmap_insert(&c->subs, &sub->node) != 0) {
        rstmdb_error *why = error_newf(sub->id ? RSTMDB_ERR_NOMEM : RSTMDB_ERR_PROTOCOL, "%s",
                                       sub->id ? "out of memory registering the subscription"
                                               : "WATCH answered without a subscription_id");
        const rstmdb_error *w = why ? why : c->nomem;
        if (sub->unwatch_requested) {
            sub_finish(sub, w, true);
        } else {
            rstmdb_reply failed;
            reply_cache cache;
            reply_init_failure(&failed, &cache, w, true);
            if (sub->on_reply && !c->free_requested)
                sub->on_reply(c, &failed, sub->arg);
            reply_deinit(&failed);
            sub_finish(sub, NULL, false);
        }
        rstmdb_error_free(why);
        return;
    }
    sub->in_map = true;
    sub->state = SUB_ACTIVE;
    if (sub->unwatch_requested) {
        sub_send_unwatch(sub);
        return;
    }
    if (sub->on_reply && !c->free_requested)
        sub->on_reply(c, reply, sub->arg);
}

static void on_unwatch_reply(rstmdb_client *c, rstmdb_sub *sub, const rstmdb_reply *reply)
{
    (void)c;
    /* removed:false (already gone on the server) is still the end. */
    sub_finish(sub, reply->status == RSTMDB_OK ? NULL : reply->err, true);
}

/* ---- inbound ------------------------------------------------------------------- */

static void route_response(rstmdb_client *c, const char *doc, size_t len, const jscan_member *m,
                           size_t n)
{
    const jscan_member *id = jscan_find(doc, m, n, "id");
    if (!id || id->type != JSCAN_STRING)
        return; /* cannot be ours (we send string ids): drop */
    hmap_node *node = hmap_find(&c->reqs, doc + id->val_off + 1, id->val_len - 2);
    if (!node)
        return; /* timed out, cancelled, or not ours: a late answer is dropped */
    rstmdb_request *r = (rstmdb_request *)(void *)((char *)node - offsetof(rstmdb_request, node));
    req_detach(c, r);
    rstmdb_reply reply;
    reply_cache cache;
    if (reply_from_doc(&reply, &cache, doc, len, m, n) != RSTMDB_OK) {
        reply_deinit(&reply);
        reply_init_failure(&reply, &cache, c->nomem, true);
    }
    req_complete(c, r, &reply);
    reply_deinit(&reply);
}

static void route_event(rstmdb_client *c, const char *doc, size_t len, const jscan_member *m,
                        size_t n)
{
    const jscan_member *sid = jscan_find(doc, m, n, "subscription_id");
    char *decoded = NULL;
    size_t dlen = 0;
    hmap_node *node;
    if (!sid || sid->type != JSCAN_STRING)
        return;
    if (memchr(doc + sid->val_off, '\\', sid->val_len)) {
        if (jscan_string_dup(doc + sid->val_off, sid->val_len, &decoded, &dlen) != 0)
            return;
        node = hmap_find(&c->subs, decoded, dlen);
    } else {
        node = hmap_find(&c->subs, doc + sid->val_off + 1, sid->val_len - 2);
    }
    free(decoded);
    if (!node)
        return; /* unwatched already, or a subscription we never made */
    rstmdb_sub *sub = (rstmdb_sub *)(void *)((char *)node - offsetof(rstmdb_sub, node));
    if (sub->state != SUB_ACTIVE || !sub->on_event || c->free_requested)
        return;
    rstmdb_event ev;
    event_cache cache;
    event_init(&ev, &cache, doc, len, sub->id);
    sub->on_event(sub, &ev, sub->arg);
    event_deinit(&ev);
}

/* One complete document from the server. */
static void client_dispatch(rstmdb_client *c, const char *doc, size_t len)
{
    jscan_member stack[CLIENT_STACK_MEMBERS];
    jscan_member *m = stack;
    size_t n = 0;
    if (jscan_object(doc, len, 0, m, CLIENT_STACK_MEMBERS, &n) != 0) {
        client_fail(c, RSTMDB_ERR_PROTOCOL, "server sent a document that is not a JSON object");
        return;
    }
    if (n > CLIENT_STACK_MEMBERS) {
        m = malloc(n * sizeof(*m));
        if (!m) {
            client_fail(c, RSTMDB_ERR_NOMEM, "out of memory routing a document");
            return;
        }
        jscan_object(doc, len, 0, m, n, &n);
    }
    const jscan_member *type = jscan_find(doc, m, n, "type");
    if (jscan_string_is(doc, type, "response"))
        route_response(c, doc, len, m, n);
    else if (jscan_string_is(doc, type, "event"))
        route_event(c, doc, len, m, n);
    /* any other type: ignored, as the reference clients do */
    if (m != stack)
        free(m);
}

/* Feed bytes to the decoder for the current position in the stream. While a
 * HELLO is in flight the server may switch its output mode with the HELLO
 * response, so at a document boundary the first byte decides: 'R' starts an
 * RCPX frame, anything else a JSON line. Otherwise the mode is strict. */
static int client_feed(rstmdb_client *c, const uint8_t *p, size_t n, size_t *used, rstmdb_frame *fr)
{
    in_mode use = c->cur;
    if (use == IN_NONE) {
        use = c->mode;
        if (c->hellos > 0)
            use = p[0] == 'R' ? IN_BINARY : IN_LINES;
    }
    if (use == IN_LINES && !c->ldec) {
        int rc = rstmdb_line_decoder_new(&c->ldec, c->opts->max_frame);
        if (rc != RSTMDB_OK)
            return rc;
    }
    int rc = use == IN_BINARY ? rstmdb_frame_decoder_feed(c->fdec, p, n, used, fr)
                              : rstmdb_line_decoder_feed(c->ldec, p, n, used, fr);
    if (rc == 0)
        c->cur = use;
    else if (rc == 1) {
        c->cur = IN_NONE;
        c->mode = use;
    }
    return rc;
}

static void on_bev_read(struct bufferevent *bev, void *arg)
{
    rstmdb_client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    client_enter(c);
    while (c->state != RSTMDB_CONN_CLOSED && !c->free_requested && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            break;
        size_t used = 0;
        rstmdb_frame fr;
        int rc = client_feed(c, v.iov_base, v.iov_len, &used, &fr);
        if (rc < 0) {
            client_fail(c, RSTMDB_ERR_PROTOCOL, "bad data from the server: %s",
                        rstmdb_strerror(rc));
            break;
        }
        if (rc == 1)
            client_dispatch(c, (const char *)fr.payload, fr.payload_len);
        /* The bufferevent outlives this callback even if freed inside it. */
        evbuffer_drain(in, used);
    }
    client_leave(c);
}

/* ---- connect ----------------------------------------------------------------- */

static void on_bev_event(struct bufferevent *bev, short what, void *arg);

static void drain_done(struct bufferevent *bev, void *arg)
{
    (void)arg;
    bufferevent_free(bev);
}

static void drain_event(struct bufferevent *bev, short what, void *arg)
{
    (void)what;
    (void)arg;
    bufferevent_free(bev);
}

/* The address being tried, as "ADDRESS" or "ADDRESS (IP)" when the
 * address is a name, for failure messages. */
static void note_peer(rstmdb_client *c, const struct evutil_addrinfo *ai)
{
    char ip[64];
    if (getnameinfo(ai->ai_addr, ai->ai_addrlen, ip, sizeof(ip), NULL, 0, NI_NUMERICHOST) != 0 ||
        strcmp(ip, c->host) == 0)
        snprintf(c->peer, sizeof(c->peer), "%s", c->address);
    else
        snprintf(c->peer, sizeof(c->peer), "%s (%s)", c->address, ip);
}

/* Start a connect to the next resolved address. 0 or -1 (none left). */
static int connect_next(rstmdb_client *c)
{
    while (c->ai_next) {
        struct evutil_addrinfo *ai = c->ai_next;
        struct bufferevent *bev;
        c->ai_next = ai->ai_next;
        if (c->opts->tls) {
            rstmdb_error *e = NULL;
            SSL *ssl = tls_new_ssl(c->opts->tls, c->host, &e);
            if (!ssl) {
                client_close_with(c, e ? e : error_newf(RSTMDB_ERR_TLS, "tls setup failed"), false);
                return 0;
            }
            tls_watch(ssl, &c->tls);
            bev = bufferevent_openssl_socket_new(c->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                 BEV_OPT_CLOSE_ON_FREE);
            if (!bev)
                SSL_free(ssl);
            else
                bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        } else {
            bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
        }
        if (!bev) {
            c->last_errno = ENOMEM;
            continue;
        }
        bufferevent_setcb(bev, on_bev_read, NULL, on_bev_event, c);
        if (bufferevent_enable(bev, EV_READ | EV_WRITE) != 0 ||
            bufferevent_socket_connect(bev, ai->ai_addr, (int)ai->ai_addrlen) != 0) {
            c->last_errno = errno ? errno : ECONNREFUSED;
            bufferevent_free(bev);
            continue;
        }
        note_peer(c, ai);
        c->bev = bev;
        return 0;
    }
    return -1;
}

static void connect_failed(rstmdb_client *c)
{
    client_fail(c, RSTMDB_ERR_IO, "connect to %s: %s", c->address,
                strerror(c->last_errno ? c->last_errno : ECONNREFUSED));
}

static const char *const stage_names[] = {"start", "resolve", "connect", "HELLO",
                                          "AUTH",  "ready",   "closed"};

/* TLS failed on the connection (`errs`: libevent's codes for it): name
 * the stage, the peer and why. With no reason at all, a TLS connection that
 * ends before its handshake is likely a port that does not speak TLS; that
 * stays a plain CLOSED/IO failure, since a busy server closes the same way. */
static void client_tls_failed(rstmdb_client *c, struct bufferevent *bev, short what,
                              const unsigned long *errs, size_t n)
{
    char why[320];
    int status = RSTMDB_ERR_TLS;
    if (!tls_describe_failure(bufferevent_openssl_get_ssl(bev), errs, n, &c->tls, why,
                              sizeof(why))) {
        status = (what & BEV_EVENT_EOF) ? RSTMDB_ERR_CLOSED : RSTMDB_ERR_IO;
        snprintf(why, sizeof(why), "%s%s",
                 (what & BEV_EVENT_EOF) ? "the server closed the connection" : "connection reset",
                 c->stage == STAGE_CONNECTING ? " (is it a TLS port?)" : "");
    }
    if (c->stage == STAGE_CONNECTING)
        client_fail(c, status, "TLS handshake with %s failed: %s", c->peer, why);
    else
        client_fail(c, status, "TLS with %s failed after the handshake (during %s): %s", c->peer,
                    stage_names[c->stage], why);
}

static void on_bev_event(struct bufferevent *bev, short what, void *arg)
{
    rstmdb_client *c = arg;
    client_enter(c);
    if (what & BEV_EVENT_CONNECTED) {
        evutil_socket_t fd = bufferevent_getfd(bev);
        int one = 1;
        /* Requests are small and latency-bound: no Nagle delay. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        send_hello(c);
    } else if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
        int e = EVUTIL_SOCKET_ERROR();
        unsigned long errs[8];
        size_t nerr = c->opts->tls ? tls_take_errors(bev, errs, sizeof(errs) / sizeof(errs[0])) : 0;
        bool tls_trouble = nerr > 0 || c->tls.alert != 0;
        if (c->stage == STAGE_CONNECTING && !tls_trouble && (what & BEV_EVENT_ERROR)) {
            /* TCP never connected: try the next address. */
            c->last_errno = e;
            bufferevent_free(bev);
            c->bev = NULL;
            if (connect_next(c) != 0)
                connect_failed(c);
        } else if (c->opts->tls && (tls_trouble || c->stage == STAGE_CONNECTING)) {
            client_tls_failed(c, bev, what, errs, nerr);
        } else if (what & BEV_EVENT_EOF) {
            client_fail(c, RSTMDB_ERR_CLOSED, "connection to %s closed by the server%s", c->peer,
                        c->stage < STAGE_READY ? " during the handshake" : "");
        } else {
            client_fail(c, RSTMDB_ERR_IO, "connection to %s: %s%s", c->peer,
                        e ? evutil_socket_error_to_string(e) : "I/O error",
                        c->stage < STAGE_READY ? " during the handshake" : "");
        }
    }
    client_leave(c);
}

static void connect_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    rstmdb_client *c = arg;
    (void)fd;
    (void)what;
    client_enter(c);
    client_fail(c, RSTMDB_ERR_TIMEOUT, "connect to %s timed out after %u ms (during %s)",
                c->address, c->opts->connect_timeout_ms, stage_names[c->stage]);
    client_leave(c);
}

/* The lookup's outcome: connect to the first address, or fail naming the
 * name and the resolver's error. */
static void resolved(rstmdb_client *c, int err, struct evutil_addrinfo *res)
{
    if (err != 0) {
        client_fail(c, err == EVUTIL_EAI_MEMORY ? RSTMDB_ERR_NOMEM : RSTMDB_ERR_IO,
                    "resolve %s: %s", c->host, evutil_gai_strerror(err));
        return;
    }
    c->ai_list = c->ai_next = res;
    c->stage = STAGE_CONNECTING;
    if (connect_next(c) != 0)
        connect_failed(c);
}

static void on_resolved(int err, struct evutil_addrinfo *res, void *arg)
{
    resolve_ticket *t = arg;
    rstmdb_client *c = t->c;
    free(t);
    if (!c) { /* cancelled: the client is closed or gone */
        if (res)
            evutil_freeaddrinfo(res);
        return;
    }
    c->ticket = NULL;
    c->dns = NULL;
    client_enter(c);
    resolved(c, err, res);
    client_leave(c);
}

bool client_is_address_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return evutil_inet_pton(AF_INET, host, buf) == 1 || evutil_inet_pton(AF_INET6, host, buf) == 1;
}

/* Look the host up for this connect: a literal at once, a name through the
 * options' resolver (or, without one, the blocking system resolver). */
static void resolve_start(rstmdb_client *c)
{
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = EVUTIL_AI_NUMERICSERV;
    c->stage = STAGE_RESOLVING;
    bool literal = client_is_address_literal(c->host);
    if (literal || !c->opts->dns) {
        struct evutil_addrinfo *res = NULL;
        if (literal)
            hints.ai_flags |= EVUTIL_AI_NUMERICHOST;
        int err = evutil_getaddrinfo(c->host, c->port, &hints, &res);
        resolved(c, err, err == 0 ? res : NULL);
        return;
    }
    resolve_ticket *t = calloc(1, sizeof(*t));
    if (!t) {
        client_fail(c, RSTMDB_ERR_NOMEM, "out of memory resolving %s", c->host);
        return;
    }
    t->c = c;
    c->ticket = t;
    /* The callback may run inside this call (a name in /etc/hosts). */
    struct evdns_getaddrinfo_request *r =
        evdns_getaddrinfo(c->opts->dns, c->host, c->port, &hints, on_resolved, t);
    if (c->ticket == t)
        c->dns = r;
}

/* Forget a lookup in flight; its callback still runs, later, and frees the
 * ticket. */
static void resolve_cancel(rstmdb_client *c)
{
    if (!c->ticket)
        return;
    c->ticket->c = NULL;
    c->ticket = NULL;
    struct evdns_getaddrinfo_request *r = c->dns;
    c->dns = NULL;
    if (r)
        evdns_getaddrinfo_cancel(r);
}

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
    rstmdb_client *c = arg;
    (void)fd;
    (void)what;
    client_enter(c);
    if (c->stage == STAGE_START)
        resolve_start(c);
    /* Subscriptions whose end was decided inside a caller's callback. */
    for (rstmdb_sub *s = c->sub_head, *next; s && !c->free_requested; s = next) {
        next = s->next;
        if (s->state == SUB_ENDING) {
            sub_finish(s, s->end_why, true);
            next = c->sub_head; /* the list may have changed under the callback */
        }
    }
    client_leave(c);
}

/* Split "host:port" / "[v6]:port" (port 1-65535) into new strings. */
static int parse_address(const char *addr, char **host, char **port)
{
    char h[256];
    unsigned pn;
    if (!addr || addr_split(addr, h, sizeof h, &pn) != 0 || pn == 0)
        return -1;
    char ps[12];
    snprintf(ps, sizeof ps, "%u", pn);
    *host = strdup(h);
    *port = strdup(ps);
    if (!*host || !*port) {
        free(*host);
        free(*port);
        *host = *port = NULL;
        return -2;
    }
    return 0;
}

int rstmdb_client_new(rstmdb_client **out, struct event_base *base, const char *address,
                      const rstmdb_options *opts, rstmdb_error **err)
{
    if (!out || !base || !address)
        return error_set(err, RSTMDB_ERR_INVALID,
                         "rstmdb_client_new: out, base and address are required");
    rstmdb_client *c = calloc(1, sizeof(*c));
    if (!c)
        return error_set(err, RSTMDB_ERR_NOMEM, "out of memory");
    int rc;
    c->base = base;
    c->state = RSTMDB_CONN_CONNECTING;
    c->mode = IN_BINARY;
    c->next_id = 1;
    hmap_init(&c->reqs);
    hmap_init(&c->subs);
    int prc = parse_address(address, &c->host, &c->port);
    if (prc != 0) {
        rc = prc == -2 ? error_set(err, RSTMDB_ERR_NOMEM, "out of memory")
                       : error_set(err, RSTMDB_ERR_INVALID,
                                   "bad address \"%s\": expected host:port or [v6]:port", address);
        goto fail;
    }
    if (!(c->address = strdup(address)) || !(c->opts = options_dup(opts)) ||
        !(c->nomem = error_newf(RSTMDB_ERR_NOMEM, "out of memory"))) {
        rc = error_set(err, RSTMDB_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((rc = rstmdb_frame_decoder_new(&c->fdec, c->opts->max_frame)) != RSTMDB_OK) {
        error_set(err, rc, "out of memory");
        goto fail;
    }
    c->connect_timer = evtimer_new(base, connect_timeout_cb, c);
    c->later = event_new(base, -1, 0, later_cb, c);
    if (!c->opts->tls) {
        c->wq = evbuffer_new();
        c->flush_ev = event_new(base, -1, 0, flush_cb, c);
    }
    if (!c->connect_timer || !c->later || (!c->opts->tls && (!c->wq || !c->flush_ev))) {
        rc = error_set(err, RSTMDB_ERR_NOMEM, "out of memory");
        goto fail;
    }
    struct timeval tv = clock_tv_ms(c->opts->connect_timeout_ms);
    if (evtimer_add(c->connect_timer, &tv) != 0) {
        rc = error_set(err, RSTMDB_ERR_NOMEM, "out of memory");
        goto fail;
    }
    /* Connect from the loop, so that every outcome, even an immediate
     * refusal, reaches the state callback set after this returns. */
    event_active(c->later, EV_TIMEOUT, 0);
    *out = c;
    return RSTMDB_OK;
fail:
    client_destroy(c);
    return rc;
}

void rstmdb_client_set_state_cb(rstmdb_client *c, rstmdb_state_cb cb, void *arg)
{
    if (!c)
        return;
    c->state_cb = cb;
    c->state_arg = arg;
}

rstmdb_conn_state rstmdb_client_state(const rstmdb_client *c)
{
    return c ? c->state : RSTMDB_CONN_CLOSED;
}

size_t rstmdb_client_inflight(const rstmdb_client *c)
{
    return c ? c->nuser : 0;
}

const cJSON *rstmdb_client_hello(const rstmdb_client *c)
{
    return c && c->state == RSTMDB_CONN_READY ? c->hello : NULL;
}

const rstmdb_error *rstmdb_client_error(const rstmdb_client *c)
{
    return c ? c->why : NULL;
}

struct event_base *rstmdb_client_base(const rstmdb_client *c)
{
    return c ? c->base : NULL;
}

/* ---- teardown ------------------------------------------------------------------ */

/* Hand the socket over to a self-releasing drain so a BYE still leaves after
 * the client is gone; it is cut after CLIENT_BYE_DRAIN_MS. */
static void client_drain_bev(rstmdb_client *c)
{
    struct bufferevent *bev = c->bev;
    struct timeval tv = clock_tv_ms(CLIENT_BYE_DRAIN_MS);
    c->bev = NULL;
    tls_unwatch(bufferevent_openssl_get_ssl(bev)); /* the notes go with c */
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        bufferevent_free(bev);
        return;
    }
    bufferevent_disable(bev, EV_READ);
    bufferevent_setcb(bev, NULL, drain_done, drain_event, NULL);
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    bufferevent_set_timeouts(bev, NULL, &tv);
}

/* Enter CLOSED with `why` (owned; NULL on OOM uses a generic reason): fail
 * every pending request, end every subscription, report the state. */
static void client_close_with(rstmdb_client *c, rstmdb_error *why, bool graceful)
{
    if (c->state == RSTMDB_CONN_CLOSED) {
        rstmdb_error_free(why);
        return;
    }
    if (!why)
        why = error_newf(RSTMDB_ERR_NOMEM, "connection lost (out of memory describing why)");
    c->state = RSTMDB_CONN_CLOSED;
    c->stage = STAGE_CLOSED;
    c->why = why;
    const rstmdb_error *w = why ? why : c->nomem;
    if (c->connect_timer)
        evtimer_del(c->connect_timer);
    resolve_cancel(c);
    /* Which requests reached the socket: decided before the buffer goes. */
    uint64_t pending = client_pending(c);
    uint64_t flushed = c->out_total - pending;
    if (c->wq != NULL) {
        if (graceful)
            client_wq_to_bev(c);
        evbuffer_drain(c->wq, evbuffer_get_length(c->wq));
    }
    if (c->bev) {
        if (graceful) {
            client_drain_bev(c);
        } else {
            bufferevent_free(c->bev);
            c->bev = NULL;
        }
    }
    /* Requests fail with the connection's status; a server error that closed
     * the handshake (AUTH_FAILED) is reported to them as CLOSED, since the
     * server never answered them. */
    rstmdb_error *req_why = NULL;
    if (w && rstmdb_error_status(w) == RSTMDB_ERR_SERVER)
        req_why = error_newf(RSTMDB_ERR_CLOSED, "connection closed: %s: %s",
                             rstmdb_error_code_str(w), rstmdb_error_message(w));
    const rstmdb_error *rw = req_why ? req_why : w;

    rstmdb_request *list = c->req_head;
    c->req_head = NULL;
    c->q_head = c->q_tail = NULL;
    c->nqueued = 0;
    c->nuser = 0;
    hmap_deinit(&c->reqs);
    for (rstmdb_request *r = list; r; r = r->next) {
        if (r->timer)
            evtimer_del(r->timer);
        r->was_written = r->state == REQ_WRITTEN && r->out_end <= flushed;
        r->state = REQ_COMPLETING;
    }
    client_notify(c, RSTMDB_CONN_CLOSED, w);
    while (list) {
        rstmdb_request *r = list;
        list = r->next;
        req_fail(c, r, rw, r->was_written);
    }
    rstmdb_error_free(req_why);
    /* What is left: active, unwatching and ending subscriptions. */
    while (c->sub_head) {
        rstmdb_sub *s = c->sub_head;
        sub_finish(s, s->state == SUB_ENDING && s->end_why ? s->end_why : w, true);
    }
}

static void client_destroy(rstmdb_client *c)
{
    c->free_requested = true; /* no callback runs from here on */
    if (c->state != RSTMDB_CONN_CLOSED)
        client_close_with(c, error_newf(RSTMDB_ERR_CLOSED, "client freed"), false);
    if (c->bev)
        bufferevent_free(c->bev);
    while (c->sub_head)
        sub_finish(c->sub_head, NULL, false);
    if (c->connect_timer)
        event_free(c->connect_timer);
    if (c->later)
        event_free(c->later);
    if (c->flush_ev)
        event_free(c->flush_ev);
    if (c->wq)
        evbuffer_free(c->wq);
    if (c->ai_list)
        evutil_freeaddrinfo(c->ai_list);
    while (c->spare) {
        rstmdb_request *r = c->spare;
        c->spare = r->next;
        if (r->timer)
            event_free(r->timer);
        free(r);
    }
    rstmdb_frame_decoder_free(c->fdec);
    rstmdb_line_decoder_free(c->ldec);
    hmap_deinit(&c->reqs);
    hmap_deinit(&c->subs);
    cJSON_Delete(c->hello);
    rstmdb_error_free(c->why);
    rstmdb_error_free(c->nomem);
    rstmdb_options_free(c->opts);
    free(c->address);
    free(c->host);
    free(c->port);
    free(c);
}

void rstmdb_client_close(rstmdb_client *c)
{
    if (!c || c->state == RSTMDB_CONN_CLOSED)
        return;
    client_enter(c);
    bool graceful = false;
    if (c->state == RSTMDB_CONN_READY && c->bev) {
        /* BYE is fire-and-forget: its answer is not awaited. */
        rstmdb_request bye;
        memset(&bye, 0, sizeof(bye));
        snprintf(bye.id, sizeof(bye.id), "%llu", (unsigned long long)c->next_id++);
        snprintf(bye.op, sizeof(bye.op), "BYE");
        if (req_encode(c, &bye, "{}", 2) == RSTMDB_OK) {
            client_wq_to_bev(c);
            graceful = evbuffer_add(bufferevent_get_output(c->bev), bye.frame, bye.frame_len) == 0;
            free(bye.frame);
        }
    }
    client_close_with(c, error_newf(RSTMDB_ERR_CLOSED, "closed by the client"), graceful);
    client_leave(c);
}

void rstmdb_client_free(rstmdb_client *c)
{
    if (!c)
        return;
    if (c->depth > 0) {
        c->free_requested = true;
        return;
    }
    client_destroy(c);
}

/* ---- public requests ------------------------------------------------------------ */

int rstmdb_call_json(rstmdb_client *c, const char *op, const char *params, size_t params_len,
                     rstmdb_reply_cb cb, void *arg, rstmdb_request **req_out)
{
    jscan_type t;
    if (!c || !cb)
        return RSTMDB_ERR_INVALID;
    if (!params) {
        params = "{}";
        params_len = 2;
    } else if (jscan_value(params, params_len, 0, &t, NULL, NULL) != 0 || t != JSCAN_OBJECT) {
        return RSTMDB_ERR_JSON;
    }
    return client_submit(c, REQ_USER, op, params, params_len, cb, arg, NULL, req_out);
}

int rstmdb_call_json_trusted(rstmdb_client *c, const char *op, const char *params,
                             size_t params_len, rstmdb_reply_cb cb, void *arg,
                             rstmdb_request **req_out)
{
    if (!c || !cb || !params || params_len < 2)
        return RSTMDB_ERR_INVALID;
    return client_submit(c, REQ_USER, op, params, params_len, cb, arg, NULL, req_out);
}

int rstmdb_call(rstmdb_client *c, const char *op, const cJSON *params, rstmdb_reply_cb cb,
                void *arg, rstmdb_request **req_out)
{
    if (!c || !cb || (params && !cJSON_IsObject(params)))
        return RSTMDB_ERR_INVALID;
    if (!params)
        return client_submit(c, REQ_USER, op, "{}", 2, cb, arg, NULL, req_out);
    char *text = cJSON_PrintUnformatted(params);
    if (!text)
        return RSTMDB_ERR_NOMEM;
    int rc = client_submit(c, REQ_USER, op, text, strlen(text), cb, arg, NULL, req_out);
    cJSON_free(text);
    return rc;
}

void rstmdb_request_cancel(rstmdb_request *req)
{
    if (!req)
        return;
    rstmdb_client *c = req->c;
    if (req->state == REQ_COMPLETING) {
        req->cancelled = true;
        return;
    }
    if (req->kind != REQ_USER)
        return; /* internal requests are not the caller's to cancel */
    req_detach(c, req);
    req_free(req);
}

void rstmdb_request_set_timeout_ms(rstmdb_request *req, unsigned ms)
{
    if (!req || req->state == REQ_COMPLETING)
        return;
    req_arm_timer(req, ms);
}

const char *rstmdb_request_id(const rstmdb_request *req)
{
    return req ? req->id : NULL;
}

/* ---- public subscriptions --------------------------------------------------------- */

int rstmdb_watch_json(rstmdb_client *c, const char *op, const char *params, size_t params_len,
                      rstmdb_reply_cb on_reply, rstmdb_event_cb on_event, rstmdb_sub_end_cb on_end,
                      void *arg, rstmdb_sub **sub_out)
{
    jscan_type t;
    if (!c || !op)
        return RSTMDB_ERR_INVALID;
    if (!params) {
        params = "{}";
        params_len = 2;
    } else if (jscan_value(params, params_len, 0, &t, NULL, NULL) != 0 || t != JSCAN_OBJECT) {
        return RSTMDB_ERR_JSON;
    }
    rstmdb_sub *sub = calloc(1, sizeof(*sub));
    if (!sub)
        return RSTMDB_ERR_NOMEM;
    sub->c = c;
    sub->on_reply = on_reply;
    sub->on_event = on_event;
    sub->on_end = on_end;
    sub->arg = arg;
    sub->state = SUB_WATCHING;
    int rc = client_submit(c, REQ_WATCH, op, params, params_len, NULL, NULL, sub, &sub->req);
    if (rc != RSTMDB_OK) {
        free(sub);
        return rc;
    }
    sub_link(c, sub);
    if (sub_out)
        *sub_out = sub;
    return RSTMDB_OK;
}

int rstmdb_unwatch(rstmdb_sub *sub)
{
    if (!sub)
        return RSTMDB_ERR_INVALID;
    switch (sub->state) {
    case SUB_WATCHING:
        sub->unwatch_requested = true;
        break;
    case SUB_ACTIVE:
        sub_send_unwatch(sub);
        break;
    case SUB_UNWATCHING:
    case SUB_ENDING:
        break;
    }
    return RSTMDB_OK;
}

const char *rstmdb_sub_id(const rstmdb_sub *sub)
{
    return sub ? sub->id : NULL;
}

rstmdb_client *rstmdb_sub_client(const rstmdb_sub *sub)
{
    return sub ? sub->c : NULL;
}
