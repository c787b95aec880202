/* sse.c: SSE streams between the hub and MHD: formatting, the bounded
 * per-stream buffer, heartbeats, slow-reader cut-off and teardown. It must
 * not talk to the upstream (hub.c does) nor queue HTTP responses (http.c). */
#include "sse.h"

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "json.h"

/* Room always kept free for the final `event: error`, so a full buffer can
 * still tell its reader why it is being closed. */
#define SSE_RESERVE    320
#define SSE_FILTER_MAX 256

struct sse_ctx {
    struct event_base *base;
    hub *hub;
    pool *upstream;
    metrics *m;
    const plog *log;
    sse_config cfg;
    const struct timeval *hb_tv; /* libevent common timeout: O(1) for 10,000 equal timers */
    sse_stream *head;
    size_t count;
};

struct sse_stream {
    sse_stream *prev, *next;
    sse_ctx *ctx;
    http_req *req;   /* NULL once detached */
    hub_sub *sub;    /* NULL once released */
    problem *failed; /* SSE_FAILED */
    char *buf;       /* pending bytes: buf[start .. start+len) */
    size_t start, len, cap;
    uint64_t last_id;
    struct event hb; /* heartbeat, and deferred work (cut-off) */
    sse_state state;
    bool req_ref;     /* the request still refers to the stream */
    bool resp_ref;    /* an MHD response refers to the stream */
    bool wrote;       /* bytes queued since the last heartbeat tick */
    bool cut_pending; /* buffer overflowed inside a hub callback: cut at next tick */
    bool linked;
};

/* ---- formatting ------------------------------------------------------- */

size_t sse_format_open(char *out, size_t cap, unsigned retry_ms)
{
    int n = snprintf(out, cap, "retry: %u\n: rstmdb-proxy stream open\n\n", retry_ms);
    return (n < 0 || (size_t)n >= cap) ? 0 : (size_t)n;
}

size_t sse_format_event(char *out, size_t cap, uint64_t id, const char *data, size_t len)
{
    int n = snprintf(out, cap, "id: %llu\n", (unsigned long long)id);
    if (n < 0 || (size_t)n >= cap)
        return 0;
    size_t o = (size_t)n;
    /* One data: line per line of the payload (compact JSON has none, but a
     * stray newline must never end the event early). CR, LF and CRLF all end
     * a line for an SSE reader: a lone CR passed through would let data such
     * as "a\r\rid: 9" dispatch early and forge an id (fuzz_sse_format). */
    size_t i = 0;
    do {
        size_t l = 0;
        while (i + l < len && data[i + l] != '\n' && data[i + l] != '\r')
            l++;
        if (o + 6 + l + 1 >= cap)
            return 0;
        memcpy(out + o, "data: ", 6);
        o += 6;
        memcpy(out + o, data + i, l);
        o += l;
        out[o++] = '\n';
        i += l;
        if (i < len && data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
            i += 2;
        else if (i < len)
            i++;
    } while (i < len);
    if (o + 2 > cap)
        return 0;
    out[o++] = '\n';
    if (o < cap)
        out[o] = '\0';
    return o;
}

size_t sse_format_error(char *out, size_t cap, const char *code, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return 0;
    char msg[200];
    snprintf(msg, sizeof msg, "%s", message ? message : "");
    if (!json_utf8_valid(msg, strlen(msg)))
        snprintf(msg, sizeof msg, "(message not valid UTF-8)");
    cJSON_AddStringToObject(o, "code", code);
    cJSON_AddStringToObject(o, "message", msg);
    char *j = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (j == NULL)
        return 0;
    int n = snprintf(out, cap, "event: error\ndata: %s\n\n", j);
    free(j);
    return (n < 0 || (size_t)n >= cap) ? 0 : (size_t)n;
}

/* ---- buffer ------------------------------------------------------------- */

/* Append; `force` may use the reserve (final events only). -1 = over the cap. */
static int buf_append(sse_stream *s, const char *data, size_t n, bool force)
{
    size_t limit = s->ctx->cfg.buffer_bytes;
    size_t soft = limit > SSE_RESERVE ? limit - SSE_RESERVE : 0;
    if (s->len + n > (force ? limit : soft))
        return -1;
    if (s->start + s->len + n > s->cap && s->start > 0) {
        memmove(s->buf, s->buf + s->start, s->len);
        s->start = 0;
    }
    if (s->len + n > s->cap) {
        size_t ncap = s->cap ? s->cap : 256;
        while (ncap < s->len + n)
            ncap *= 2;
        if (ncap > limit)
            ncap = limit;
        char *nb = realloc(s->buf, ncap);
        if (nb == NULL)
            return -1;
        s->buf = nb;
        s->cap = ncap;
    }
    memcpy(s->buf + s->start + s->len, data, n);
    s->len += n;
    s->wrote = true;
    return 0;
}

/* Wake the connection so MHD pulls the new bytes: only once the streaming
 * response exists (before that, the request waits for on_ready). */
static void wake(sse_stream *s)
{
    if (s->req != NULL && s->resp_ref)
        http_req_resume(s->req);
}

static void release_sub(sse_stream *s)
{
    if (s->sub != NULL) {
        hub_sub *sub = s->sub;
        s->sub = NULL;
        hub_unsubscribe(sub);
    }
}

static void finish(sse_stream *s, const char *code, const char *message)
{
    char ev[SSE_RESERVE];
    size_t n = sse_format_error(ev, sizeof ev, code, message);
    if (n > 0)
        (void)buf_append(s, ev, n, true);
    s->state = SSE_CLOSING;
    wake(s);
}

static void stream_free(sse_stream *s)
{
    if (s->failed) {
        problem_deinit(s->failed);
        free(s->failed);
    }
    free(s->buf);
    free(s);
}

static void unlink_stream(sse_stream *s)
{
    if (!s->linked)
        return;
    if (s->prev)
        s->prev->next = s->next;
    else
        s->ctx->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->linked = false;
    s->ctx->count--;
    if (s->ctx->m->sse_streams)
        s->ctx->m->sse_streams--;
}

/* ---- hub callbacks ---------------------------------------------------------- */

static void on_ready(void *arg, const rstmdb_error *err)
{
    sse_stream *s = arg;
    if (err != NULL) {
        s->sub = NULL; /* released by the hub */
        s->failed = calloc(1, sizeof *s->failed);
        pool *up = s->ctx->upstream;
        if (s->failed == NULL)
            ;
        else if (rstmdb_error_status(err) == RSTMDB_ERR_CLOSED && !pool_ready(up))
            problem_upstream_down(s->failed, pool_last_failure(up), pool_retry_after_s(up));
        else
            problem_from_error(s->failed, err, false, pool_retry_after_s(up));
        s->state = SSE_FAILED;
    } else if (s->state == SSE_SUBSCRIBING) {
        s->state = SSE_LIVE;
    }
    if (s->req)
        http_req_resume(s->req);
}

static void on_event(void *arg, uint64_t wal_offset, const char *data, size_t len)
{
    sse_stream *s = arg;
    if (s->cut_pending || (s->state != SSE_LIVE && s->state != SSE_SUBSCRIBING))
        return;
    if (s->last_id != 0 && wal_offset <= s->last_id)
        return; /* the hub promises increasing ids; never forward one twice anyway */
    size_t need = 32 + len + 8 * (memchr(data, '\n', len) ? len : 1);
    char small[2048];
    char *tmp = need <= sizeof small ? small : malloc(need);
    if (tmp == NULL) {
        s->cut_pending = true;
        event_active(&s->hb, EV_TIMEOUT, 1);
        return;
    }
    size_t n = sse_format_event(tmp, need, wal_offset, data, len);
    int rc = n ? buf_append(s, tmp, n, false) : -1;
    if (tmp != small)
        free(tmp);
    if (rc != 0) {
        /* Unsubscribing from inside the hub's own callback is not allowed:
         * cut the stream at the next loop turn. */
        s->cut_pending = true;
        event_active(&s->hb, EV_TIMEOUT, 1);
        return;
    }
    s->last_id = wal_offset;
    s->ctx->m->sse_events++;
    wake(s);
}

static void on_error(void *arg, const char *code, const char *message)
{
    sse_stream *s = arg;
    s->sub = NULL; /* released by the hub when this returns */
    if (s->state == SSE_SUBSCRIBING) {
        s->failed = calloc(1, sizeof *s->failed);
        if (s->failed)
            problem_local(s->failed, 503, code, message);
        s->state = SSE_FAILED;
        if (s->req)
            http_req_resume(s->req);
        return;
    }
    if (s->state == SSE_LIVE)
        finish(s, code, message);
}

static const hub_sub_ops sse_ops = {on_ready, on_event, on_error};

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sse_stream *s = arg;
    if (s->cut_pending) {
        s->cut_pending = false;
        if (s->state == SSE_LIVE || s->state == SSE_SUBSCRIBING) {
            release_sub(s);
            s->ctx->m->sse_dropped++;
            log_msg(s->ctx->log, LOG_WARN, NULL,
                    "sse stream cut off: reader fell more than %zu bytes behind",
                    s->ctx->cfg.buffer_bytes);
            if (s->state == SSE_SUBSCRIBING) {
                s->failed = calloc(1, sizeof *s->failed);
                if (s->failed)
                    problem_local(s->failed, 503, "SLOW_READER", "stream buffer overflow");
                s->state = SSE_FAILED;
                if (s->req)
                    http_req_resume(s->req);
            } else {
                finish(s, "SLOW_READER",
                       "the client read slower than events arrived; the per-stream buffer "
                       "(sse_buffer_bytes) overflowed. Reconnect with Last-Event-ID to resume.");
            }
        }
        return;
    }
    if (s->state != SSE_LIVE)
        return;
    if (!s->wrote) {
        if (buf_append(s, SSE_KEEPALIVE, sizeof SSE_KEEPALIVE - 1, false) != 0) {
            s->cut_pending = true;
            event_active(&s->hb, EV_TIMEOUT, 1);
            return;
        }
        wake(s);
    }
    s->wrote = false;
}

/* ---- MHD content reader ------------------------------------------------------- */

static ssize_t reader(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    sse_stream *s = cls;
    if (s->len > 0) {
        size_t n = s->len < max ? s->len : max;
        memcpy(out, s->buf + s->start, n);
        s->start += n;
        s->len -= n;
        if (s->len == 0) {
            s->start = 0;
            /* An idle stream keeps no buffer at all: 10,000 idle streams
             * must stay small, and the next event allocates again. */
            free(s->buf);
            s->buf = NULL;
            s->cap = 0;
        }
        return (ssize_t)n;
    }
    if (s->state == SSE_CLOSING)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (s->req == NULL)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    /* Nothing to send: returning 0 alone would make MHD call us again on
     * every MHD_run (a busy loop in external-poll mode). Suspend instead;
     * new data or the heartbeat resumes the connection. */
    http_req_suspend(s->req);
    return 0;
}

static void reader_free(void *cls)
{
    sse_stream *s = cls;
    s->resp_ref = false;
    if (!s->req_ref)
        stream_free(s);
}

/* ---- public ------------------------------------------------------------------- */

int sse_ctx_new(sse_ctx **out, struct event_base *base, hub *h, pool *p, metrics *m,
                const plog *log, const sse_config *cfg)
{
    sse_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -1;
    c->base = base;
    c->hub = h;
    c->upstream = p;
    c->m = m;
    c->log = log;
    c->cfg = *cfg;
    struct timeval tv = {(time_t)(cfg->heartbeat_ms / 1000),
                         (suseconds_t)((cfg->heartbeat_ms % 1000) * 1000)};
    c->hb_tv = event_base_init_common_timeout(base, &tv);
    if (c->hb_tv == NULL) {
        free(c);
        return -1;
    }
    *out = c;
    return 0;
}

void sse_ctx_free(sse_ctx *c)
{
    free(c);
}

size_t sse_count(const sse_ctx *c)
{
    return c->count;
}

void sse_close_all(sse_ctx *c, const char *code, const char *message)
{
    for (sse_stream *s = c->head; s != NULL; s = s->next) {
        release_sub(s);
        if (s->state == SSE_SUBSCRIBING) {
            s->failed = calloc(1, sizeof *s->failed);
            if (s->failed)
                problem_local(s->failed, 503, code, message);
            s->state = SSE_FAILED;
            if (s->req)
                http_req_resume(s->req);
        } else if (s->state == SSE_LIVE) {
            finish(s, code, message);
        }
    }
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
        if (!cJSON_IsString(e) || !json_utf8_valid(e->valuestring, strlen(e->valuestring))) {
            free(v);
            return -1;
        }
        v[i++] = e->valuestring;
    }
    *out = v;
    *n = i;
    return 0;
}

int sse_stream_open(sse_ctx *c, http_req *req, const route_match *m, const cJSON *query,
                    const char *last_event_id, sse_stream **out, problem *p)
{
    if (c->count >= c->cfg.max_streams) {
        problem_local(p, 503, "TOO_MANY_STREAMS", "sse_max_streams reached");
        return -1;
    }
    hub_filter f;
    memset(&f, 0, sizeof f);
    f.include_ctx = true;
    const cJSON *ic = query ? cJSON_GetObjectItemCaseSensitive(query, "include_ctx") : NULL;
    if (ic != NULL)
        f.include_ctx = cJSON_IsTrue(ic);

    bool has_from = false, has_q = false, has_h = false;
    uint64_t from = 0, qid = 0, hid = 0;
    if (query != NULL && (get_u64(query, "from_offset", &has_from, &from) != 0 ||
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
        /* Resuming wins over from_offset: a browser's EventSource reconnects
         * to the same URL (with its original from_offset) and adds the id of
         * the last event it saw. */
        has_from = true;
        from = id + 1;
    }

    const char **lists[4] = {NULL, NULL, NULL, NULL};
    if (m->r->id == R_WATCH_INSTANCE) {
        if (m->ncaps < 1 || !json_utf8_valid(m->caps[0].value, strlen(m->caps[0].value))) {
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

    sse_stream *s = calloc(1, sizeof *s);
    int rc = -1;
    if (s == NULL) {
        problem_local(p, 500, "INTERNAL_ERROR", "out of memory");
        goto out;
    }
    s->ctx = c;
    s->req = req;
    s->req_ref = true;
    s->state = SSE_SUBSCRIBING;
    char open[96];
    size_t on = sse_format_open(open, sizeof open, c->cfg.retry_ms);
    if (buf_append(s, open, on, true) != 0) {
        problem_local(p, 500, "INTERNAL_ERROR", "out of memory");
        free(s->buf);
        free(s);
        goto out;
    }
    event_assign(&s->hb, c->base, -1, EV_PERSIST, on_tick, s);
    int hrc = hub_subscribe(c->hub, &f, has_from, from, &sse_ops, s, &s->sub);
    if (hrc != RSTMDB_OK) {
        if (hrc == RSTMDB_ERR_CLOSED)
            problem_upstream_down(p, pool_last_failure(c->upstream),
                                  pool_retry_after_s(c->upstream));
        else if (hrc == RSTMDB_ERR_INVALID)
            problem_local(p, 400, "BAD_REQUEST", "the subscription filter is not valid");
        else
            problem_local(p, 500, "INTERNAL_ERROR", rstmdb_strerror(hrc));
        free(s->buf);
        free(s);
        goto out;
    }
    event_add(&s->hb, c->hb_tv);
    s->next = c->head;
    if (c->head)
        c->head->prev = s;
    c->head = s;
    s->linked = true;
    c->count++;
    c->m->sse_streams++;
    c->m->sse_total++;
    *out = s;
    rc = 0;
out:
    for (int i = 0; i < 4; i++)
        free(lists[i]);
    return rc;
}

sse_state sse_stream_state(const sse_stream *s)
{
    return s->state;
}

void sse_stream_take_problem(sse_stream *s, problem *out)
{
    if (s->failed) {
        *out = *s->failed;
        free(s->failed);
        s->failed = NULL;
    } else {
        problem_local(out, 503, "UPSTREAM_UNAVAILABLE", "subscription failed");
    }
}

struct MHD_Response *sse_stream_response(sse_stream *s)
{
    /* MHD mallocs a block of this size per response: small, because 10,000
     * idle streams each hold one (events larger than a block take several
     * reader calls). */
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 512, reader, s, reader_free);
    if (r != NULL)
        s->resp_ref = true;
    return r;
}

void sse_stream_detach(sse_stream *s)
{
    if (s == NULL)
        return;
    s->req = NULL;
    s->req_ref = false;
    release_sub(s);
    event_del(&s->hb);
    unlink_stream(s);
    if (!s->resp_ref)
        stream_free(s);
}
