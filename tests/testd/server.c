/* server.c: rstmdb-testd's connections on libevent: accept (TCP or TLS),
 * RCPX framing, engine dispatch, outbound queues, idle timeout, fault knobs.
 * It must not interpret request JSON: every protocol decision is the engine's. */
#include "server.h"
#include "clock.h"

#include "addr.h"
#include "control.h"
#include "logmsg.h"

#include <rstmdb/error.h>
#include <rstmdb/frame.h>

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Buckets of the conn_id -> connection map used to route events. Ids are
 * sequential, so id % buckets spreads the (at most ~1000) live connections
 * evenly. */
#define CONN_BUCKETS 4096u
/* Output-buffer thresholds per connection. Queued events move to the socket
 * only while fewer than OUT_LOW bytes wait, so a watcher that stops reading
 * holds at most OUT_LOW bytes of events plus its capped event queue. Above
 * OUT_HIGH we stop taking requests from that connection (a client that
 * pipelines without reading blocks itself, as on the real server), and
 * libevent stops reading once READ_HIGH unprocessed bytes wait. */
#define OUT_LOW   (64u * 1024u)
#define OUT_HIGH  (1024u * 1024u)
#define READ_HIGH (256u * 1024u)

#define DEFAULT_MAX_CONNECTIONS   1000u
#define DEFAULT_EVENT_QUEUE_MAX   256u
#define DEFAULT_EVENT_QUEUE_BYTES (1024u * 1024u)

/* Connection state; every transition is in this file. */
typedef enum conn_state {
    CONN_HANDSHAKE, /* TLS accepted, handshake running: nothing is read yet */
    CONN_OPEN,      /* taking requests */
    CONN_DRAINING, /* no more requests (BYE, close-after, peer EOF): close once output is flushed */
    CONN_DEAD      /* closed and unlinked; the reaper frees it outside its own callbacks */
} conn_state;

/* One encoded event frame (or JSON line) waiting for a slow consumer. */
typedef struct outmsg {
    struct outmsg *next;
    size_t len;
    uint8_t data[];
} outmsg;

typedef struct conn {
    server *srv;
    uint64_t id;
    conn_state state;
    struct bufferevent *bev;
    rstmdb_frame_decoder *dec;
    char peer[80];
    bool tls;
    bool peer_eof;           /* client half-closed: answer what it sent, then close */
    bool dropping;           /* inside a slow-consumer episode (warning already logged) */
    char drain_reason[128];  /* why DRAINING; logged at close */
    uint64_t requests;       /* frames decoded */
    uint64_t answered;       /* requests answered (drives close-after) */
    uint64_t last_active_ms; /* last read or write, for the idle timeout */
    struct event *idle_timer;
    struct event *delay_timer;
    uint8_t *held; /* the request waiting out the delay fault (copy), or NULL */
    size_t held_len;
    outmsg *evq_head, *evq_tail; /* events waiting for the output buffer to drain */
    unsigned evq_len;
    size_t evq_bytes;
    uint64_t dropped_episode; /* events dropped since the queue was last empty */
    uint64_t dropped_total;
    struct conn *prev, *next; /* server's live list, or its dead list */
    struct conn *hnext;       /* id bucket chain (live connections only) */
} conn;

struct server {
    struct event_base *base;
    engine *eng;
    struct evconnlistener *lst;
    struct event *accept_retry; /* re-enables accepting after EMFILE and friends */
    struct event *reaper;       /* frees dead connections after their callbacks returned */
    SSL_CTX *ssl_ctx;
    control *ctl;
    char addr[80];
    size_t max_frame;
    unsigned max_conns;
    unsigned idle_secs;
    unsigned evq_max;
    size_t evq_bytes_max;
    unsigned sndbuf;
    uint64_t next_id;
    conn *live;
    conn *dead;
    conn *buckets[CONN_BUCKETS];
    fault faults;
    server_stats st;
};

static void conn_process(conn *c);

/* ---- helpers ---------------------------------------------------------- */

static uint64_t now_ms(struct event_base *base)
{
    struct timeval tv;
    event_base_gettimeofday_cached(base, &tv);
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

static void ssl_error_text(unsigned long e, char *buf, size_t cap)
{
    if (e == 0) {
        snprintf(buf, cap, "unknown error");
        return;
    }
    ERR_error_string_n(e, buf, cap);
}

static conn *conn_find(server *s, uint64_t id)
{
    conn *c;
    for (c = s->buckets[id % CONN_BUCKETS]; c != NULL; c = c->hnext)
        if (c->id == id)
            return c;
    return NULL;
}

static void list_unlink(conn **head, conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void list_push(conn **head, conn *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head != NULL)
        (*head)->prev = c;
    *head = c;
}

/* The event queue: every change goes through these two, which keep the
 * per-connection and server-wide totals right. */
static void evq_push(conn *c, outmsg *m)
{
    m->next = NULL;
    if (c->evq_tail != NULL)
        c->evq_tail->next = m;
    else
        c->evq_head = m;
    c->evq_tail = m;
    c->evq_len++;
    c->evq_bytes += m->len;
    c->srv->st.queued_events++;
    c->srv->st.queued_bytes += m->len;
}

static outmsg *evq_pop(conn *c)
{
    outmsg *m = c->evq_head;
    c->evq_head = m->next;
    if (c->evq_head == NULL)
        c->evq_tail = NULL;
    c->evq_len--;
    c->evq_bytes -= m->len;
    c->srv->st.queued_events--;
    c->srv->st.queued_bytes -= m->len;
    return m;
}

static void evq_clear(conn *c)
{
    while (c->evq_head != NULL)
        free(evq_pop(c));
}

/* ---- lifecycle -------------------------------------------------------- */

static void conn_free(conn *c)
{
    if (c->bev != NULL)
        bufferevent_free(c->bev); /* closes the socket, frees the SSL */
    if (c->idle_timer != NULL)
        event_free(c->idle_timer);
    if (c->delay_timer != NULL)
        event_free(c->delay_timer);
    rstmdb_frame_decoder_free(c->dec);
    free(c->held);
    evq_clear(c);
    free(c);
}

/* Close now, silently (nothing more is written). Safe inside any callback
 * of `c`: the memory is freed later by the reaper. */
static void conn_close(conn *c, const char *reason)
{
    server *s = c->srv;
    conn **pp;

    if (c->state == CONN_DEAD)
        return;
    logmsg(LOGMSG_INFO, "conn %llu closed: %s (peer %s, requests %llu, events dropped %llu)",
           (unsigned long long)c->id, reason, c->peer, (unsigned long long)c->requests,
           (unsigned long long)c->dropped_total);
    engine_conn_close(s->eng, c->id);
    c->state = CONN_DEAD;
    evq_clear(c);
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
    event_del(c->idle_timer);
    if (c->delay_timer != NULL)
        event_del(c->delay_timer);
    for (pp = &s->buckets[c->id % CONN_BUCKETS]; *pp != NULL; pp = &(*pp)->hnext) {
        if (*pp == c) {
            *pp = c->hnext;
            break;
        }
    }
    list_unlink(&s->live, c);
    list_push(&s->dead, c);
    s->st.active--;
    event_active(s->reaper, 0, 0);
}

static void reaper_cb(evutil_socket_t fd, short what, void *arg)
{
    server *s = arg;
    (void)fd;
    (void)what;
    while (s->dead != NULL) {
        conn *c = s->dead;
        list_unlink(&s->dead, c);
        conn_free(c);
    }
}

/* Stop taking requests; close once everything written so far is flushed. */
static void conn_drain(conn *c, const char *reason)
{
    if (c->state != CONN_OPEN && c->state != CONN_HANDSHAKE)
        return;
    c->state = CONN_DRAINING;
    snprintf(c->drain_reason, sizeof c->drain_reason, "%s", reason);
    evq_clear(c); /* events after the last answer are not owed to anyone */
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        conn_close(c, reason);
}

/* A half-closed client gets answers to everything it sent, then the close. */
static void conn_maybe_finish(conn *c)
{
    if (c->state == CONN_OPEN && c->peer_eof && c->held == NULL &&
        evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
        conn_drain(c, "peer closed");
}

/* ---- output ----------------------------------------------------------- */

/* Move queued events to the socket while the output buffer is short. */
static void conn_flush_events(conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    while (c->evq_head != NULL && evbuffer_get_length(out) < OUT_LOW) {
        if (evbuffer_add(out, c->evq_head->data, c->evq_head->len) != 0)
            break; /* retried on the next write callback */
        free(evq_pop(c));
    }
    if (c->evq_head == NULL && c->dropping) {
        logmsg(LOGMSG_INFO, "conn %llu: slow consumer caught up after %llu dropped events",
               (unsigned long long)c->id, (unsigned long long)c->dropped_episode);
        c->dropping = false;
        c->dropped_episode = 0;
    }
}

/* Encode one document for `c` (binary frame with CRC, or JSON line) onto
 * `out`. Returns false if it exceeds the 16 MiB frame limit or on OOM. */
static bool encode_to(struct evbuffer *out, bool jsonl, bool garble, const char *doc, size_t len)
{
    if (len > RSTMDB_FRAME_MAX_PAYLOAD)
        return false;
    if (jsonl) {
        /* A garbled line starts with '~' instead of '{': not JSON. */
        if (garble && len > 0)
            return evbuffer_add(out, "~", 1) == 0 && evbuffer_add(out, doc + 1, len - 1) == 0 &&
                   evbuffer_add(out, "\n", 1) == 0;
        return evbuffer_add(out, doc, len) == 0 && evbuffer_add(out, "\n", 1) == 0;
    }
    uint8_t hdr[RSTMDB_FRAME_HEADER_LEN];
    if (rstmdb_frame_header(hdr, RSTMDB_FLAG_CRC_PRESENT, doc, len) != RSTMDB_OK)
        return false;
    if (garble)
        hdr[RSTMDB_FRAME_HEADER_LEN - 1] ^= 0x01u; /* the CRC no longer matches */
    return evbuffer_add(out, hdr, sizeof hdr) == 0 && evbuffer_add(out, doc, len) == 0;
}

/* Responses always go out (never dropped). Returns false if `c` is closing. */
static bool conn_write_response(conn *c, const char *doc, size_t len)
{
    server *s = c->srv;
    bool garble = fault_take_garble(&s->faults);
    bool jsonl = engine_conn_jsonl(s->eng, c->id);

    if (!encode_to(bufferevent_get_output(c->bev), jsonl, garble, doc, len)) {
        /* Nothing of it is written; earlier answers still go out first. */
        conn_drain(c, len > RSTMDB_FRAME_MAX_PAYLOAD ? "response exceeds 16 MiB"
                                                     : "out of memory writing a response");
        return false;
    }
    s->st.responses++;
    if (garble) {
        s->st.garbled++;
        logmsg(LOGMSG_WARN, "conn %llu: fault garble: response %s corrupted",
               (unsigned long long)c->id, jsonl ? "line" : "CRC");
    }
    return true;
}

static void conn_drop_event(conn *c)
{
    free(evq_pop(c));
    c->dropped_episode++;
    c->dropped_total++;
    c->srv->st.events_dropped++;
}

/* Events may be dropped: like the real server's per-subscriber rings, a
 * consumer that cannot keep up silently loses its OLDEST queued events (no
 * gap marker), and only a warning is logged. */
static void conn_push_event(conn *c, const char *doc, size_t len)
{
    server *s = c->srv;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    bool jsonl = engine_conn_jsonl(s->eng, c->id);
    size_t n = jsonl ? len + 1 : RSTMDB_FRAME_HEADER_LEN + len;
    outmsg *m;

    if (len > RSTMDB_FRAME_MAX_PAYLOAD) {
        /* The real server fails to encode it and drops that connection. */
        conn_close(c, "event exceeds 16 MiB");
        return;
    }
    s->st.events++;
    if (c->evq_head == NULL && evbuffer_get_length(out) < OUT_LOW) {
        if (encode_to(out, jsonl, false, doc, len))
            return;
    }
    m = malloc(sizeof *m + n);
    if (m == NULL) {
        s->st.events_dropped++;
        c->dropped_total++;
        return;
    }
    m->len = n;
    if (jsonl) {
        memcpy(m->data, doc, len);
        m->data[len] = '\n';
    } else {
        rstmdb_frame_header(m->data, RSTMDB_FLAG_CRC_PRESENT, doc, len);
        memcpy(m->data + RSTMDB_FRAME_HEADER_LEN, doc, len);
    }
    evq_push(c, m);
    while (c->evq_head != NULL && (c->evq_len > s->evq_max || c->evq_bytes > s->evq_bytes_max)) {
        if (!c->dropping) {
            logmsg(LOGMSG_WARN,
                   "conn %llu: slow consumer: event queue full (cap %u events / %zu bytes), "
                   "dropping the oldest events",
                   (unsigned long long)c->id, s->evq_max, s->evq_bytes_max);
            c->dropping = true;
        }
        conn_drop_event(c);
    }
}

/* ---- requests --------------------------------------------------------- */

/* Run one request through the engine and write what it says. */
static void conn_answer(conn *c, const uint8_t *payload, size_t len)
{
    server *s = c->srv;
    engine_out out;
    size_t i;

    memset(&out, 0, sizeof out);
    if (engine_request(s->eng, c->id, payload, len, &out) != 0) {
        conn_close(c, "engine out of memory");
        return;
    }
    if (out.action == ENGINE_CLOSE) {
        /* Nothing is written for this request; earlier answers still reach
         * the client (the real server awaits each write before decoding on). */
        conn_drain(c, "protocol violation: the request envelope was rejected");
        engine_out_deinit(&out);
        return;
    }
    if (out.reply != NULL && !conn_write_response(c, out.reply, out.reply_len)) {
        /* c is closing; the events (if any) still reach the others below. */
    }
    /* Deliveries after the reply: the response precedes the events it caused. */
    for (i = 0; i < out.ndeliveries; i++) {
        conn *t = conn_find(s, out.deliveries[i].conn_id);
        if (t != NULL && t->state == CONN_OPEN)
            conn_push_event(t, out.deliveries[i].payload, out.deliveries[i].len);
    }
    c->answered++;
    if (out.action == ENGINE_REPLY_CLOSE) {
        conn_drain(c, "BYE");
    } else if (s->faults.close_after != 0 && c->answered >= s->faults.close_after &&
               c->state == CONN_OPEN) {
        logmsg(LOGMSG_WARN, "conn %llu: fault close-after: closing after %llu answers",
               (unsigned long long)c->id, (unsigned long long)c->answered);
        conn_drain(c, "fault close-after");
    }
    engine_out_deinit(&out);
}

static void delay_cb(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    uint8_t *p = c->held;
    size_t n = c->held_len;

    (void)fd;
    (void)what;
    c->held = NULL;
    c->held_len = 0;
    if (c->state == CONN_OPEN)
        conn_answer(c, p, n);
    free(p);
    if (c->state == CONN_OPEN)
        conn_process(c); /* requests pipelined behind the delayed one */
}

static void conn_request(conn *c, const uint8_t *payload, size_t len)
{
    server *s = c->srv;

    s->st.requests++;
    c->requests++;
    if (s->faults.hang) {
        if (s->st.hung++ == 0 || c->requests == 1)
            logmsg(LOGMSG_WARN, "conn %llu: fault hang: request discarded unanswered",
                   (unsigned long long)c->id);
        return;
    }
    if (s->faults.delay_ms != 0) {
        struct timeval tv;
        if (c->delay_timer == NULL)
            c->delay_timer = evtimer_new(s->base, delay_cb, c);
        c->held = malloc(len ? len : 1);
        if (c->delay_timer == NULL || c->held == NULL) {
            conn_close(c, "out of memory holding a delayed request");
            return;
        }
        memcpy(c->held, payload, len);
        c->held_len = len;
        tv = clock_tv_ms(s->faults.delay_ms);
        evtimer_add(c->delay_timer, &tv);
        return;
    }
    conn_answer(c, payload, len);
}

/* Decode and answer buffered requests, strictly in order, until the input
 * is empty, a request is held by the delay fault, or the output is full. */
static void conn_process(conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer *out = bufferevent_get_output(c->bev);

    while (c->state == CONN_OPEN && c->held == NULL && evbuffer_get_length(out) <= OUT_HIGH) {
        struct evbuffer_iovec v;
        rstmdb_frame fr;
        size_t used = 0;
        int rc;

        if (evbuffer_get_length(in) == 0 || evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        rc = rstmdb_frame_decoder_feed(c->dec, v.iov_base, v.iov_len, &used, &fr);
        if (rc < 0) {
            char reason[96];
            /* The real server closes without a word about this frame and
             * never answers requests that followed it in the same read;
             * answers to requests before it were already written. */
            c->srv->st.bad_frames++;
            snprintf(reason, sizeof reason, "framing error: %s", rstmdb_strerror(rc));
            conn_drain(c, reason);
            return;
        }
        if (rc == 1)
            conn_request(c, fr.payload, fr.payload_len); /* payload may point into `in` */
        evbuffer_drain(in, used);
        if (rc == 0 && used == 0)
            break; /* defensive: a decoder that takes nothing would spin */
    }
    conn_maybe_finish(c);
}

/* ---- libevent callbacks ----------------------------------------------- */

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    (void)bev;
    c->last_active_ms = now_ms(c->srv->base);
    conn_process(c);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    (void)bev;
    c->last_active_ms = now_ms(c->srv->base);
    if (c->state == CONN_DRAINING) {
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            conn_close(c, c->drain_reason);
        return;
    }
    conn_flush_events(c);
    conn_process(c); /* resumes a connection paused on a full output buffer */
}

static void conn_event_cb(struct bufferevent *bev, short events, void *arg)
{
    conn *c = arg;
    char reason[256];

    if (events & BEV_EVENT_CONNECTED) {
        SSL *ssl = bufferevent_openssl_get_ssl(bev);
        c->state = CONN_OPEN;
        logmsg(LOGMSG_INFO, "conn %llu: tls handshake ok (%s)", (unsigned long long)c->id,
               ssl != NULL ? SSL_get_version(ssl) : "?");
        conn_process(c);
        return;
    }
    if (events & BEV_EVENT_ERROR) {
        int err = EVUTIL_SOCKET_ERROR();
        unsigned long e = c->tls ? bufferevent_get_openssl_error(bev) : 0;
        char text[200];
        if (e != 0)
            ssl_error_text(e, text, sizeof text);
        else
            snprintf(text, sizeof text, "%s",
                     err != 0 ? evutil_socket_error_to_string(err) : "connection error");
        while (c->tls && bufferevent_get_openssl_error(bev) != 0) {
            /* keep the error queue empty for the next connection */
        }
        if (c->state == CONN_HANDSHAKE) {
            c->srv->st.tls_failures++;
            snprintf(reason, sizeof reason, "tls handshake failed: %s", text);
        } else {
            snprintf(reason, sizeof reason, "socket error: %s", text);
        }
        conn_close(c, reason);
        return;
    }
    if (events & BEV_EVENT_EOF) {
        if (c->state == CONN_HANDSHAKE) {
            c->srv->st.tls_failures++;
            conn_close(c, "tls handshake failed: peer closed");
            return;
        }
        c->peer_eof = true;
        if (c->state == CONN_OPEN)
            conn_process(c);
        else
            conn_close(c, c->drain_reason[0] != '\0' ? c->drain_reason : "peer closed");
    }
}

static void idle_cb(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    uint64_t idle_ms = (uint64_t)c->srv->idle_secs * 1000u;
    uint64_t quiet = now_ms(c->srv->base) - c->last_active_ms;
    struct timeval tv;

    (void)fd;
    (void)what;
    if (quiet >= idle_ms) {
        conn_close(c, "idle timeout");
        return;
    }
    tv = clock_tv_ms(idle_ms - quiet);
    evtimer_add(c->idle_timer, &tv);
}

/* ---- accepting -------------------------------------------------------- */

static void accept_cb(struct evconnlistener *lst, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    server *s = arg;
    char peer[80];
    conn *c;
    int one = 1;

    (void)lst;
    addr_format(sa, (socklen_t)salen, peer, sizeof peer);
    if (s->faults.refuse) {
        s->st.refused++;
        logmsg(LOGMSG_WARN, "refused connection from %s (fault refuse)", peer);
        evutil_closesocket(fd);
        return;
    }
    if (s->st.active >= s->max_conns) {
        s->st.over_limit++;
        logmsg(LOGMSG_WARN, "refused connection from %s: connection limit %u reached", peer,
               s->max_conns);
        evutil_closesocket(fd);
        return;
    }
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (s->sndbuf != 0) {
        /* A small fixed send buffer makes a non-reading client a slow
         * consumer after kilobytes instead of the megabytes autotuning allows. */
        int v = (int)s->sndbuf;
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
    }

    c = calloc(1, sizeof *c);
    if (c == NULL || rstmdb_frame_decoder_new(&c->dec, s->max_frame) != RSTMDB_OK)
        goto oom;
    c->srv = s;
    c->id = ++s->next_id;
    memcpy(c->peer, peer, sizeof peer);
    c->idle_timer = evtimer_new(s->base, idle_cb, c);
    if (c->idle_timer == NULL)
        goto oom;
    if (s->ssl_ctx != NULL) {
        SSL *ssl = SSL_new(s->ssl_ctx);
        if (ssl == NULL)
            goto oom;
        c->bev = bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE);
        if (c->bev == NULL) {
            SSL_free(ssl);
            goto oom;
        }
        /* A client that drops TCP without close_notify is an EOF, not an error. */
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        c->tls = true;
        c->state = CONN_HANDSHAKE;
    } else {
        c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (c->bev == NULL)
            goto oom;
        c->state = CONN_OPEN;
    }
    fd = -1; /* owned by the bufferevent now */
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, READ_HIGH);
    bufferevent_setwatermark(c->bev, EV_WRITE, OUT_LOW, 0);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->last_active_ms = now_ms(s->base);
    if (s->idle_secs != 0) {
        struct timeval tv = {(time_t)s->idle_secs, 0};
        evtimer_add(c->idle_timer, &tv);
    }
    list_push(&s->live, c);
    c->hnext = s->buckets[c->id % CONN_BUCKETS];
    s->buckets[c->id % CONN_BUCKETS] = c;
    s->st.active++;
    s->st.accepted++;
    engine_conn_open(s->eng, c->id);
    logmsg(LOGMSG_INFO, "conn %llu open from %s%s", (unsigned long long)c->id, peer,
           c->tls ? " (tls)" : "");
    return;

oom:
    logmsg(LOGMSG_ERROR, "dropping connection from %s: out of memory", peer);
    if (c != NULL) {
        if (c->bev == NULL && fd >= 0)
            evutil_closesocket(fd);
        conn_free(c);
    } else {
        evutil_closesocket(fd);
    }
}

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    server *s = arg;
    (void)fd;
    (void)what;
    evconnlistener_enable(s->lst);
}

/* EMFILE and friends: libevent would retry at once and spin; back off 100 ms. */
static void accept_error_cb(struct evconnlistener *lst, void *arg)
{
    server *s = arg;
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval tv = {0, 100 * 1000};

    logmsg(LOGMSG_ERROR, "accept failed: %s; pausing 100 ms", evutil_socket_error_to_string(err));
    evconnlistener_disable(lst);
    evtimer_add(s->accept_retry, &tv);
}

/* ---- setup ------------------------------------------------------------ */

static int tls_setup(server *s, const server_config *cfg, char *err, size_t errcap)
{
    char text[200];
    const char *flag = "--tls-cert";
    const char *file = cfg->tls_cert;

    ERR_clear_error();
    s->ssl_ctx = SSL_CTX_new(TLS_server_method());
    if (s->ssl_ctx == NULL) {
        snprintf(err, errcap, "TLS: cannot create a context");
        return SERVER_ERR_IO;
    }
    SSL_CTX_set_min_proto_version(s->ssl_ctx, TLS1_2_VERSION);
    /* Idle TLS connections keep no 34 KiB read/write buffers around. */
    SSL_CTX_set_mode(s->ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    /* OpenSSL 3 reports a TCP close without close_notify as an error; for
     * us (and for the real server) that is a client hanging up: an EOF. */
    SSL_CTX_set_options(s->ssl_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
    if (SSL_CTX_use_certificate_chain_file(s->ssl_ctx, cfg->tls_cert) != 1)
        goto fail;
    flag = "--tls-key";
    file = cfg->tls_key;
    if (SSL_CTX_use_PrivateKey_file(s->ssl_ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(s->ssl_ctx) != 1)
        goto fail;
    if (cfg->tls_client_ca != NULL) {
        STACK_OF(X509_NAME) * names;
        flag = "--tls-client-ca";
        file = cfg->tls_client_ca;
        if (SSL_CTX_load_verify_locations(s->ssl_ctx, cfg->tls_client_ca, NULL) != 1)
            goto fail;
        names = SSL_load_client_CA_file(cfg->tls_client_ca);
        if (names != NULL)
            SSL_CTX_set_client_CA_list(s->ssl_ctx, names);
        SSL_CTX_set_verify(s->ssl_ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return 0;
fail:
    ssl_error_text(ERR_get_error(), text, sizeof text);
    ERR_clear_error();
    snprintf(err, errcap, "%s %s: %s", flag, file, text);
    return SERVER_ERR_CONFIG;
}

int server_new(server **out, struct event_base *base, engine *eng, const server_config *cfg,
               char *err, size_t errcap)
{
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    struct sockaddr_storage bound;
    socklen_t blen = (socklen_t)sizeof bound;
    server *s;
    char text[200];
    int rc;

    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
        snprintf(err, errcap, "%s",
                 cfg->tls_cert == NULL ? "--tls-key needs --tls-cert"
                                       : "--tls-cert needs --tls-key");
        return SERVER_ERR_CONFIG;
    }
    if (cfg->tls_client_ca != NULL && cfg->tls_cert == NULL) {
        snprintf(err, errcap, "--tls-client-ca needs --tls-cert and --tls-key");
        return SERVER_ERR_CONFIG;
    }
    if (addr_parse(cfg->listen != NULL ? cfg->listen : "127.0.0.1:7401", &ss, &sslen, text,
                   sizeof text) != 0) {
        snprintf(err, errcap, "--listen %s", text);
        return SERVER_ERR_CONFIG;
    }

    s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errcap, "out of memory");
        return SERVER_ERR_IO;
    }
    s->base = base;
    s->eng = eng;
    s->max_frame = cfg->max_frame_bytes;
    s->max_conns = cfg->max_connections ? cfg->max_connections : DEFAULT_MAX_CONNECTIONS;
    s->idle_secs = cfg->idle_timeout_secs;
    s->evq_max = cfg->event_queue_max ? cfg->event_queue_max : DEFAULT_EVENT_QUEUE_MAX;
    s->evq_bytes_max = cfg->event_queue_bytes ? cfg->event_queue_bytes : DEFAULT_EVENT_QUEUE_BYTES;
    s->sndbuf = cfg->socket_sndbuf;
    s->faults = cfg->faults;

    if (cfg->tls_cert != NULL && (rc = tls_setup(s, cfg, err, errcap)) != 0)
        goto fail;
    rc = SERVER_ERR_IO;
    s->reaper = event_new(base, -1, 0, reaper_cb, s);
    s->accept_retry = evtimer_new(base, accept_retry_cb, s);
    if (s->reaper == NULL || s->accept_retry == NULL) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    s->lst = evconnlistener_new_bind(
        base, accept_cb, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 511,
        (struct sockaddr *)&ss, (int)sslen);
    if (s->lst == NULL) {
        int e = EVUTIL_SOCKET_ERROR();
        snprintf(err, errcap, "cannot listen on %s: %s",
                 cfg->listen ? cfg->listen : "127.0.0.1:7401", evutil_socket_error_to_string(e));
        goto fail;
    }
    evconnlistener_set_error_cb(s->lst, accept_error_cb);
    if (getsockname(evconnlistener_get_fd(s->lst), (struct sockaddr *)&bound, &blen) != 0) {
        snprintf(err, errcap, "getsockname: %s", strerror(errno));
        goto fail;
    }
    addr_format((struct sockaddr *)&bound, blen, s->addr, sizeof s->addr);
    if (cfg->control != NULL &&
        (rc = control_new(&s->ctl, base, s, cfg->control, err, errcap)) != 0)
        goto fail;
    logmsg(LOGMSG_INFO, "listening on %s%s%s", s->addr, s->ssl_ctx ? " (tls" : "",
           s->ssl_ctx ? (cfg->tls_client_ca ? ", client certificates required)" : ")") : "");
    *out = s;
    return 0;
fail:
    server_free(s);
    return rc;
}

void server_free(server *s)
{
    if (s == NULL)
        return;
    while (s->live != NULL)
        conn_close(s->live, "server shutdown");
    while (s->dead != NULL) {
        conn *c = s->dead;
        list_unlink(&s->dead, c);
        conn_free(c);
    }
    control_free(s->ctl);
    if (s->lst != NULL)
        evconnlistener_free(s->lst);
    if (s->accept_retry != NULL)
        event_free(s->accept_retry);
    if (s->reaper != NULL)
        event_free(s->reaper);
    SSL_CTX_free(s->ssl_ctx);
    free(s);
}

const char *server_address(const server *s)
{
    return s->addr;
}

const char *server_control_address(const server *s)
{
    return s->ctl != NULL ? control_address(s->ctl) : NULL;
}

void server_get_stats(const server *s, server_stats *out)
{
    const conn *c;

    *out = s->st;
    out->out_bytes = 0;
    for (c = s->live; c != NULL; c = c->next)
        out->out_bytes += evbuffer_get_length(bufferevent_get_output(c->bev));
}

fault *server_faults(server *s)
{
    return &s->faults;
}

unsigned server_drop_all(server *s)
{
    unsigned n = 0;
    while (s->live != NULL) {
        conn_close(s->live, "dropped by the control channel (drop-all)");
        n++;
    }
    return n;
}

void server_control(server *s, const char *line, char *reply, size_t cap)
{
    server_stats stv;
    const server_stats *st = &stv;
    unsigned n;

    switch (fault_command(&s->faults, line, reply, cap)) {
    case FAULT_CMD_DROP_ALL:
        n = server_drop_all(s);
        snprintf(reply, cap, "ok dropped=%u", n);
        break;
    case FAULT_CMD_STATS:
        server_get_stats(s, &stv);
        snprintf(reply, cap,
                 "ok active=%llu accepted=%llu refused=%llu over_limit=%llu requests=%llu "
                 "responses=%llu events=%llu events_dropped=%llu garbled=%llu hung=%llu "
                 "bad_frames=%llu tls_failures=%llu queued_events=%llu queued_bytes=%llu "
                 "out_bytes=%llu",
                 (unsigned long long)st->active, (unsigned long long)st->accepted,
                 (unsigned long long)st->refused, (unsigned long long)st->over_limit,
                 (unsigned long long)st->requests, (unsigned long long)st->responses,
                 (unsigned long long)st->events, (unsigned long long)st->events_dropped,
                 (unsigned long long)st->garbled, (unsigned long long)st->hung,
                 (unsigned long long)st->bad_frames, (unsigned long long)st->tls_failures,
                 (unsigned long long)st->queued_events, (unsigned long long)st->queued_bytes,
                 (unsigned long long)st->out_bytes);
        return; /* not logged: tests poll it */
    case FAULT_CMD_DONE:
    case FAULT_CMD_ERR:
        break;
    }
    logmsg(LOGMSG_INFO, "control: '%s' -> %s", line, reply);
}
