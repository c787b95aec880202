/* test_client_fake.c: the async client against a server played by the test
 * itself over a real loopback socket with raw RCPX frames (or JSON lines).
 * This lets a test answer out of order, withhold answers, interleave
 * events, or send garbage: things rstmdb-testd (strictly in order) cannot.
 * The library under test is not mocked; only its peer is scripted. */
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cJSON.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "rstmdb/client.h"
#include "rstmdb/frame.h"

#define FAKE_MAX_REQS 4096

typedef struct fake {
    struct event_base *base;
    evutil_socket_t lfd;
    struct event *accept_ev;
    struct bufferevent *bev;
    rstmdb_frame_decoder *dec;
    char addr[64];
    bool jsonl_out;         /* write JSON lines (after a HELLO asking for jsonl) */
    bool auto_ping;         /* answer PING at once */
    bool hang_hello;        /* never answer HELLO */
    const char *auth_error; /* AUTH answer: NULL ok, else this code */
    cJSON *reqs[FAKE_MAX_REQS];
    size_t nreqs;
    size_t accepted;
} fake;

static void fake_send(fake *f, const char *json)
{
    size_t n = strlen(json);
    struct evbuffer *out = bufferevent_get_output(f->bev);
    if (f->jsonl_out) {
        evbuffer_add(out, json, n);
        evbuffer_add(out, "\n", 1);
        return;
    }
    uint8_t h[RSTMDB_FRAME_HEADER_LEN];
    ck_assert_int_eq(rstmdb_frame_header(h, RSTMDB_FLAG_CRC_PRESENT, json, n), RSTMDB_OK);
    evbuffer_add(out, h, sizeof(h));
    evbuffer_add(out, json, n);
}

static void fake_reply_ok(fake *f, const char *id, const char *result)
{
    char buf[1024];
    snprintf(buf, sizeof(buf),
             "{\"type\":\"response\",\"id\":\"%s\",\"status\":\"ok\",\"result\":%s}", id, result);
    fake_send(f, buf);
}

static void fake_handle(fake *f, cJSON *req)
{
    const char *op = cJSON_GetObjectItem(req, "op")->valuestring;
    const char *id = cJSON_GetObjectItem(req, "id")->valuestring;
    if (strcmp(op, "HELLO") == 0) {
        if (f->hang_hello) {
            cJSON_Delete(req);
            return;
        }
        const cJSON *modes = cJSON_GetObjectItem(cJSON_GetObjectItem(req, "params"), "wire_modes");
        const char *mode = cJSON_GetArrayItem(modes, 0)->valuestring;
        f->jsonl_out = strcmp(mode, "jsonl") == 0; /* the HELLO answer is already in the new mode */
        char res[256];
        snprintf(res, sizeof(res),
                 "{\"features\":[],\"protocol_version\":1,\"server_name\":\"fake\","
                 "\"server_version\":\"0\",\"wire_mode\":\"%s\"}",
                 mode);
        fake_reply_ok(f, id, res);
        cJSON_Delete(req);
        return;
    }
    if (strcmp(op, "AUTH") == 0) {
        if (f->auth_error) {
            char buf[512];
            snprintf(
                buf, sizeof(buf),
                "{\"type\":\"response\",\"id\":\"%s\",\"status\":\"error\",\"error\":{\"code\":"
                "\"%s\",\"message\":\"authentication failed: invalid token\",\"retryable\":false}}",
                id, f->auth_error);
            fake_send(f, buf);
        } else {
            fake_reply_ok(f, id, "{\"authenticated\":true}");
        }
        cJSON_Delete(req);
        return;
    }
    if (strcmp(op, "PING") == 0 && f->auto_ping) {
        fake_reply_ok(f, id, "{\"pong\":true}");
        cJSON_Delete(req);
        return;
    }
    ck_assert_uint_lt(f->nreqs, FAKE_MAX_REQS);
    f->reqs[f->nreqs++] = req;
}

static void fake_read(struct bufferevent *bev, void *arg)
{
    fake *f = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (evbuffer_get_length(in) > 0) {
        size_t n = evbuffer_get_length(in);
        uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)n);
        size_t used = 0;
        rstmdb_frame fr;
        int rc = rstmdb_frame_decoder_feed(f->dec, p, n, &used, &fr);
        ck_assert_int_ge(rc, 0);
        if (rc == 1) {
            cJSON *req = cJSON_ParseWithLength((const char *)fr.payload, fr.payload_len);
            ck_assert_ptr_nonnull(req);
            fake_handle(f, req);
        }
        evbuffer_drain(in, used);
    }
}

static void fake_event(struct bufferevent *bev, short what, void *arg)
{
    fake *f = arg;
    (void)what;
    bufferevent_free(bev);
    f->bev = NULL;
}

static void fake_accept(evutil_socket_t lfd, short what, void *arg)
{
    fake *f = arg;
    (void)what;
    evutil_socket_t fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        return;
    evutil_make_socket_nonblocking(fd);
    ck_assert_ptr_null(f->bev);
    f->bev = bufferevent_socket_new(f->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(f->bev, fake_read, NULL, fake_event, f);
    bufferevent_enable(f->bev, EV_READ | EV_WRITE);
    f->accepted++;
}

static void fake_init(fake *f, struct event_base *base)
{
    memset(f, 0, sizeof(*f));
    f->base = base;
    f->auto_ping = true;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(f->lfd, 16), 0);
    socklen_t len = sizeof(sa);
    getsockname(f->lfd, (struct sockaddr *)&sa, &len);
    snprintf(f->addr, sizeof(f->addr), "127.0.0.1:%d", ntohs(sa.sin_port));
    evutil_make_socket_nonblocking(f->lfd);
    f->accept_ev = event_new(base, f->lfd, EV_READ | EV_PERSIST, fake_accept, f);
    event_add(f->accept_ev, NULL);
    ck_assert_int_eq(rstmdb_frame_decoder_new(&f->dec, 0), RSTMDB_OK);
}

static void fake_close_conn(fake *f)
{
    if (f->bev) {
        bufferevent_free(f->bev);
        f->bev = NULL;
    }
}

static void fake_deinit(fake *f)
{
    fake_close_conn(f);
    for (size_t i = 0; i < f->nreqs; i++)
        cJSON_Delete(f->reqs[i]);
    event_free(f->accept_ev);
    close(f->lfd);
    rstmdb_frame_decoder_free(f->dec);
}

/* Run the loop until *flag or 5 s pass (a safety net, not a timing assertion). */
static void run_until(struct event_base *base, const bool *flag)
{
    for (int i = 0; i < 5000 && !*flag; i++) {
        struct timeval tv = {0, 1000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
}

static void run_for(struct event_base *base, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

/* ---- shared callbacks ---- */

typedef struct st {
    bool ready, closed;
    int closed_status;
    char why[256];
    char code[64];
} st;

static void on_state(rstmdb_client *c, rstmdb_conn_state s, const rstmdb_error *why, void *arg)
{
    st *x = arg;
    (void)c;
    if (s == RSTMDB_CONN_READY)
        x->ready = true;
    if (s == RSTMDB_CONN_CLOSED) {
        x->closed = true;
        x->closed_status = rstmdb_error_status(why);
        snprintf(x->why, sizeof(x->why), "%s", rstmdb_error_message(why));
        snprintf(x->code, sizeof(x->code), "%s", rstmdb_error_code_str(why));
    }
}

typedef struct got {
    bool done;
    int status;
    bool was_sent;
    char result[256];
    char code[64];
    size_t count;
} got;

static void on_reply(rstmdb_client *c, const rstmdb_reply *r, void *arg)
{
    got *g = arg;
    (void)c;
    g->done = true;
    g->count++;
    g->status = rstmdb_reply_status(r);
    g->was_sent = rstmdb_reply_was_sent(r);
    size_t n = 0;
    const char *raw = rstmdb_reply_result_raw(r, &n);
    snprintf(g->result, sizeof(g->result), "%.*s", raw ? (int)n : 0, raw ? raw : "");
    if (rstmdb_reply_error(r))
        snprintf(g->code, sizeof(g->code), "%s", rstmdb_error_code_str(rstmdb_reply_error(r)));
}

typedef struct setup {
    struct event_base *base;
    fake f;
    rstmdb_client *c;
    st s;
} setup;

static void setup_start(setup *x, rstmdb_options *o)
{
    memset(x, 0, sizeof(*x));
    x->base = event_base_new();
    fake_init(&x->f, x->base);
    rstmdb_error *err = NULL;
    ck_assert_int_eq(rstmdb_client_new(&x->c, x->base, x->f.addr, o, &err), RSTMDB_OK);
    rstmdb_client_set_state_cb(x->c, on_state, &x->s);
}

static void setup_end(setup *x)
{
    rstmdb_client_free(x->c);
    fake_deinit(&x->f);
    run_for(x->base, 5);
    event_base_free(x->base);
}

/* Run the loop until the fake has received n requests (5 s safety net). */
static void wait_reqs(setup *x, size_t n)
{
    for (int k = 0; k < 5000 && x->f.nreqs < n; k++)
        run_for(x->base, 1);
}

/* The id of request i as the fake received it, to answer it. */
static const char *req_id(const setup *x, size_t i)
{
    return cJSON_GetObjectItem(x->f.reqs[i], "id")->valuestring;
}

START_TEST(test_ping_and_queue_before_ready)
{
    setup x;
    setup_start(&x, NULL);
    got g = {0};
    /* Issued while CONNECTING: queued, sent after HELLO. */
    ck_assert_int_eq(rstmdb_call_json(x.c, "PING", NULL, 0, on_reply, &g, NULL), RSTMDB_OK);
    ck_assert_uint_eq(rstmdb_client_inflight(x.c), 1);
    run_until(x.base, &g.done);
    ck_assert(x.s.ready);
    ck_assert_int_eq(g.status, RSTMDB_OK);
    ck_assert_str_eq(g.result, "{\"pong\":true}");
    ck_assert(g.was_sent);
    ck_assert_uint_eq(rstmdb_client_inflight(x.c), 0);
    const cJSON *hello = rstmdb_client_hello(x.c);
    ck_assert_str_eq(cJSON_GetObjectItem(hello, "server_name")->valuestring, "fake");
    setup_end(&x);
}
END_TEST

/* Responses in reverse order of the requests: each lands on its own callback. */
typedef struct ooo {
    size_t ok, bad;
} ooo;

typedef struct ooo_arg {
    ooo *o;
    int index;
} ooo_arg;

static void on_ooo(rstmdb_client *c, const rstmdb_reply *r, void *arg)
{
    ooo_arg *a = arg;
    (void)c;
    const cJSON *res = rstmdb_reply_result(r);
    const cJSON *echo = cJSON_GetObjectItem(res, "echo");
    if (rstmdb_reply_status(r) == RSTMDB_OK && cJSON_IsNumber(echo) && echo->valueint == a->index)
        a->o->ok++;
    else
        a->o->bad++;
}

START_TEST(test_thousand_out_of_order)
{
    enum { N = 1000 };
    setup x;
    setup_start(&x, NULL);
    ooo o = {0, 0};
    static ooo_arg args[N];
    for (int i = 0; i < N; i++) {
        char params[64];
        args[i].o = &o;
        args[i].index = i;
        snprintf(params, sizeof(params), "{\"i\":%d}", i);
        ck_assert_int_eq(
            rstmdb_call_json(x.c, "ECHO", params, strlen(params), on_ooo, &args[i], NULL),
            RSTMDB_OK);
    }
    bool all = false;
    wait_reqs(&x, N);
    ck_assert_uint_eq(x.f.nreqs, N);
    ck_assert_uint_eq(rstmdb_client_inflight(x.c), N);
    for (size_t i = N; i-- > 0;) {
        cJSON *req = x.f.reqs[i];
        const cJSON *p = cJSON_GetObjectItem(req, "params");
        char res[64];
        snprintf(res, sizeof(res), "{\"echo\":%d}", cJSON_GetObjectItem(p, "i")->valueint);
        fake_reply_ok(&x.f, cJSON_GetObjectItem(req, "id")->valuestring, res);
    }
    for (int k = 0; k < 5000 && o.ok + o.bad < N; k++)
        run_for(x.base, 1);
    all = o.ok == N;
    ck_assert_uint_eq(o.bad, 0);
    ck_assert(all);
    ck_assert_uint_eq(rstmdb_client_inflight(x.c), 0);
    setup_end(&x);
}
END_TEST

START_TEST(test_eof_fails_pending_and_was_sent)
{
    setup x;
    setup_start(&x, NULL);
    got g = {0};
    ck_assert_int_eq(rstmdb_call_json(x.c, "SLOW", "{}", 2, on_reply, &g, NULL), RSTMDB_OK);
    wait_reqs(&x, 1);
    fake_close_conn(&x.f);
    run_until(x.base, &g.done);
    ck_assert_int_eq(g.status, RSTMDB_ERR_CLOSED);
    ck_assert(g.was_sent);
    ck_assert(x.s.closed);
    ck_assert_int_eq(x.s.closed_status, RSTMDB_ERR_CLOSED);
    ck_assert_int_eq(rstmdb_client_state(x.c), RSTMDB_CONN_CLOSED);
    got g2 = {0};
    ck_assert_int_eq(rstmdb_call_json(x.c, "PING", NULL, 0, on_reply, &g2, NULL),
                     RSTMDB_ERR_CLOSED);
    setup_end(&x);
}
END_TEST

START_TEST(test_queued_never_sent_on_connect_timeout)
{
    rstmdb_options *o;
    ck_assert_int_eq(rstmdb_options_new(&o), RSTMDB_OK);
    rstmdb_options_set_connect_timeout_ms(o, 100);
    setup x;
    x.f.hang_hello = true;
    setup_start(&x, o);
    x.f.hang_hello = true;
    rstmdb_options_free(o);
    got g = {0};
    ck_assert_int_eq(rstmdb_call_json(x.c, "PING", NULL, 0, on_reply, &g, NULL), RSTMDB_OK);
    run_until(x.base, &g.done);
    ck_assert_int_eq(g.status, RSTMDB_ERR_TIMEOUT);
    ck_assert(!g.was_sent);
    ck_assert(x.s.closed);
    ck_assert(!x.s.ready);
    setup_end(&x);
}
END_TEST

START_TEST(test_request_timeout_and_late_reply)
{
    setup x;
    setup_start(&x, NULL);
    got g = {0};
    rstmdb_request *req = NULL;
    ck_assert_int_eq(rstmdb_call_json(x.c, "SLOW", "{}", 2, on_reply, &g, &req), RSTMDB_OK);
    rstmdb_request_set_timeout_ms(req, 50);
    run_until(x.base, &g.done);
    ck_assert_int_eq(g.status, RSTMDB_ERR_TIMEOUT);
    ck_assert_uint_eq(g.count, 1);
    /* The late answer is dropped; the connection stays up. */
    fake_reply_ok(&x.f, req_id(&x, 0), "{}");
    got g2 = {0};
    ck_assert_int_eq(rstmdb_call_json(x.c, "PING", NULL, 0, on_reply, &g2, NULL), RSTMDB_OK);
    run_until(x.base, &g2.done);
    ck_assert_int_eq(g2.status, RSTMDB_OK);
    ck_assert_uint_eq(g.count, 1);
    ck_assert_int_eq(rstmdb_client_state(x.c), RSTMDB_CONN_READY);
    setup_end(&x);
}
END_TEST

START_TEST(test_cancel_drops_callback)
{
    setup x;
    setup_start(&x, NULL);
    got g = {0}, g2 = {0}, g3 = {0};
    rstmdb_request *req = NULL;
    /* Cancelled while queued (never sent) ... */
    ck_assert_int_eq(rstmdb_call_json(x.c, "QUEUED", "{}", 2, on_reply, &g3, &req), RSTMDB_OK);
    rstmdb_request_cancel(req);
    run_until(x.base, &x.s.ready);
    /* ... and after it was written. */
    ck_assert_int_eq(rstmdb_call_json(x.c, "SLOW", "{}", 2, on_reply, &g, &req), RSTMDB_OK);
    rstmdb_request_cancel(req);
    ck_assert_uint_eq(rstmdb_client_inflight(x.c), 0);
    ck_assert_int_eq(rstmdb_call_json(x.c, "PING", NULL, 0, on_reply, &g2, NULL), RSTMDB_OK);
    run_until(x.base, &g2.done);
    wait_reqs(&x, 1);
    fake_reply_ok(&x.f, req_id(&x, 0), "{}");
    run_for(x.base, 20);
    ck_assert(!g.done);
    ck_assert(!g3.done);
    ck_assert_uint_eq(x.f.nreqs, 1);
    ck_assert_str_eq(cJSON_GetObjectItem(x.f.reqs[0], "op")->valuestring, "SLOW");
    setup_end(&x);
}
END_TEST

START_TEST(test_server_error_kept_unknown_code)
{
    setup x;
    setup_start(&x, NULL);
    got g = {0};
    ck_assert_int_eq(rstmdb_call_json(x.c, "APPLY_EVENT", "{}", 2, on_reply, &g, NULL), RSTMDB_OK);
    wait_reqs(&x, 1);
    char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"type\":\"response\",\"id\":\"%s\",\"status\":\"error\",\"error\":{\"code\":"
             "\"BRAND_NEW_CODE\",\"message\":\"m\",\"retryable\":true}}",
             req_id(&x, 0));
    fake_send(&x.f, buf);
    run_until(x.base, &g.done);
    ck_assert_int_eq(g.status, RSTMDB_ERR_SERVER);
    ck_assert_str_eq(g.code, "BRAND_NEW_CODE");
    setup_end(&x);
}
END_TEST

START_TEST(test_garbage_is_protocol_error)
{
    setup x;
    setup_start(&x, NULL);
    got g = {0};
    ck_assert_int_eq(rstmdb_call_json(x.c, "SLOW", "{}", 2, on_reply, &g, NULL), RSTMDB_OK);
    wait_reqs(&x, 1);
    evbuffer_add(bufferevent_get_output(x.f.bev), "XXXXXXXXXXXXXXXXXXXXXXXX", 24);
    run_until(x.base, &g.done);
    ck_assert_int_eq(g.status, RSTMDB_ERR_PROTOCOL);
    ck_assert(x.s.closed);
    ck_assert_int_eq(x.s.closed_status, RSTMDB_ERR_PROTOCOL);
    setup_end(&x);
}
END_TEST

START_TEST(test_auth_failure_closes)
{
    rstmdb_options *o;
    ck_assert_int_eq(rstmdb_options_new(&o), RSTMDB_OK);
    rstmdb_options_set_auth(o, "wrong");
    setup x;
    setup_start(&x, o);
    x.f.auth_error = "AUTH_FAILED";
    rstmdb_options_free(o);
    got g = {0};
    ck_assert_int_eq(rstmdb_call_json(x.c, "PING", NULL, 0, on_reply, &g, NULL), RSTMDB_OK);
    run_until(x.base, &g.done);
    ck_assert(x.s.closed);
    ck_assert_int_eq(x.s.closed_status, RSTMDB_ERR_SERVER);
    ck_assert_str_eq(x.s.code, "AUTH_FAILED");
    ck_assert_int_eq(g.status, RSTMDB_ERR_CLOSED);
    ck_assert(!g.was_sent);
    setup_end(&x);
}
END_TEST

/* ---- subscriptions ---- */

typedef struct subt {
    bool replied, ended;
    int reply_status;
    size_t events;
    char last_body[512];
    uint64_t last_offset;
    int end_status;
    bool end_null;
} subt;

static void on_sub_reply(rstmdb_client *c, const rstmdb_reply *r, void *arg)
{
    subt *s = arg;
    (void)c;
    s->replied = true;
    s->reply_status = rstmdb_reply_status(r);
}

static void on_sub_event(rstmdb_sub *sub, const rstmdb_event *ev, void *arg)
{
    subt *s = arg;
    size_t n = 0;
    const char *body = rstmdb_event_body(ev, &n);
    ck_assert_str_eq(rstmdb_event_subscription_id(ev), rstmdb_sub_id(sub));
    snprintf(s->last_body, sizeof(s->last_body), "%.*s", (int)n, body);
    s->last_offset = rstmdb_event_wal_offset(ev);
    s->events++;
}

static void on_sub_end(rstmdb_sub *sub, const rstmdb_error *why, void *arg)
{
    subt *s = arg;
    (void)sub;
    s->ended = true;
    s->end_null = why == NULL;
    s->end_status = why ? rstmdb_error_status(why) : 0;
}

static const char EV1[] =
    "{\"type\":\"event\",\"subscription_id\":\"sub-1\",\"instance_id\":\"w-1\",\"machine\":\"w\","
    "\"version\":1,\"wal_offset\":1099511630658,\"from_state\":\"s0\",\"to_state\":\"s1\","
    "\"event\":\"GO\",\"payload\":{\"p\":1},\"ctx\":{\"a\":2}}";

START_TEST(test_watch_events_unwatch_and_close)
{
    setup x;
    setup_start(&x, NULL);
    subt s = {0};
    rstmdb_sub *sub = NULL;
    ck_assert_int_eq(rstmdb_watch_json(x.c, "WATCH_ALL", "{}", 2, on_sub_reply, on_sub_event,
                                       on_sub_end, &s, &sub),
                     RSTMDB_OK);
    wait_reqs(&x, 1);
    fake_reply_ok(&x.f, req_id(&x, 0), "{\"subscription_id\":\"sub-1\",\"wal_offset\":5}");
    fake_send(&x.f, EV1);
    /* An event for someone else is dropped. */
    fake_send(&x.f, "{\"type\":\"event\",\"subscription_id\":\"sub-9\",\"wal_offset\":1}");
    for (int k = 0; k < 5000 && s.events < 1; k++)
        run_for(x.base, 1);
    ck_assert(s.replied);
    ck_assert_int_eq(s.reply_status, RSTMDB_OK);
    ck_assert_str_eq(rstmdb_sub_id(sub), "sub-1");
    ck_assert_uint_eq(s.events, 1);
    ck_assert_uint_eq(s.last_offset, 1099511630658ull);
    ck_assert_str_eq(s.last_body,
                     "{\"instance_id\":\"w-1\",\"machine\":\"w\",\"version\":1,\"wal_offset\":"
                     "1099511630658,\"from_state\":\"s0\",\"to_state\":\"s1\",\"event\":\"GO\","
                     "\"payload\":{\"p\":1},\"ctx\":{\"a\":2}}");
    /* A second subscription ends when the connection drops. */
    subt s2 = {0};
    ck_assert_int_eq(rstmdb_watch_json(x.c, "WATCH_INSTANCE", "{\"instance_id\":\"w-1\"}", 21,
                                       on_sub_reply, on_sub_event, on_sub_end, &s2, NULL),
                     RSTMDB_OK);
    wait_reqs(&x, 2);
    fake_reply_ok(&x.f, req_id(&x, 1), "{\"subscription_id\":\"sub-2\"}");
    run_until(x.base, &s2.replied);
    ck_assert_int_eq(rstmdb_unwatch(sub), RSTMDB_OK);
    wait_reqs(&x, 3);
    ck_assert_str_eq(cJSON_GetObjectItem(x.f.reqs[2], "op")->valuestring, "UNWATCH");
    fake_send(&x.f, EV1); /* after unwatch: dropped */
    fake_reply_ok(&x.f, req_id(&x, 2), "{\"removed\":true,\"subscription_id\":\"sub-1\"}");
    run_until(x.base, &s.ended);
    ck_assert(s.end_null);
    ck_assert_uint_eq(s.events, 1);
    fake_close_conn(&x.f);
    run_until(x.base, &s2.ended);
    ck_assert(!s2.end_null);
    ck_assert_int_eq(s2.end_status, RSTMDB_ERR_CLOSED);
    setup_end(&x);
}
END_TEST

/* Unwatch from inside on_event, cancel a sibling request from inside a reply
 * callback, then free the client from inside on_end: nothing after any of
 * these touches released memory (ASan) and each callback runs at most once. */
typedef struct reentry {
    rstmdb_client *c;
    rstmdb_sub *sub;
    rstmdb_request *sibling;
    size_t events, ends, replies;
    bool freed;
} reentry;

static void re_event(rstmdb_sub *sub, const rstmdb_event *ev, void *arg)
{
    reentry *r = arg;
    (void)ev;
    r->events++;
    ck_assert_int_eq(rstmdb_unwatch(sub), RSTMDB_OK);
    ck_assert_int_eq(rstmdb_unwatch(sub), RSTMDB_OK); /* idempotent */
}

static void re_end(rstmdb_sub *sub, const rstmdb_error *why, void *arg)
{
    reentry *r = arg;
    (void)sub;
    ck_assert_ptr_null(why);
    r->ends++;
    rstmdb_client_free(r->c);
    r->freed = true;
}

static void re_reply(rstmdb_client *c, const rstmdb_reply *rep, void *arg)
{
    reentry *r = arg;
    (void)c;
    (void)rep;
    r->replies++;
    rstmdb_request_cancel(r->sibling);
    r->sibling = NULL;
}

START_TEST(test_reentrant_unwatch_cancel_free)
{
    setup x;
    setup_start(&x, NULL);
    reentry r = {x.c, NULL, NULL, 0, 0, 0, false};
    ck_assert_int_eq(
        rstmdb_watch_json(x.c, "WATCH_ALL", NULL, 0, NULL, re_event, re_end, &r, &r.sub),
        RSTMDB_OK);
    ck_assert_int_eq(rstmdb_call_json(x.c, "FIRST", NULL, 0, re_reply, &r, NULL), RSTMDB_OK);
    ck_assert_int_eq(rstmdb_call_json(x.c, "SECOND", NULL, 0, re_reply, &r, &r.sibling), RSTMDB_OK);
    wait_reqs(&x, 3);
    fake_reply_ok(&x.f, req_id(&x, 0), "{\"subscription_id\":\"sub-1\"}");
    /* Answer FIRST and SECOND in one write: SECOND is cancelled by FIRST's callback. */
    fake_reply_ok(&x.f, req_id(&x, 1), "{}");
    fake_reply_ok(&x.f, req_id(&x, 2), "{}");
    /* Two events in one write: the second arrives after the unwatch. */
    fake_send(&x.f, EV1);
    fake_send(&x.f, EV1);
    wait_reqs(&x, 4);
    ck_assert_str_eq(cJSON_GetObjectItem(x.f.reqs[3], "op")->valuestring, "UNWATCH");
    ck_assert_uint_eq(r.replies, 1);
    ck_assert_uint_eq(r.events, 1);
    fake_reply_ok(&x.f, req_id(&x, 3), "{\"removed\":true,\"subscription_id\":\"sub-1\"}");
    run_until(x.base, &r.freed);
    ck_assert_uint_eq(r.ends, 1);
    run_for(x.base, 20);
    x.c = NULL;
    setup_end(&x);
}
END_TEST

START_TEST(test_jsonl_mode)
{
    rstmdb_options *o;
    ck_assert_int_eq(rstmdb_options_new(&o), RSTMDB_OK);
    rstmdb_options_set_wire_mode(o, RSTMDB_WIRE_JSONL);
    setup x;
    setup_start(&x, o);
    rstmdb_options_free(o);
    got g = {0};
    ck_assert_int_eq(rstmdb_call_json(x.c, "PING", NULL, 0, on_reply, &g, NULL), RSTMDB_OK);
    run_until(x.base, &g.done);
    ck_assert(x.f.jsonl_out);
    ck_assert_int_eq(g.status, RSTMDB_OK);
    ck_assert_str_eq(g.result, "{\"pong\":true}");
    /* Now strict: a binary frame in JSONL mode is a protocol error. */
    x.f.jsonl_out = false;
    x.f.auto_ping = false;
    got g2 = {0};
    ck_assert_int_eq(rstmdb_call_json(x.c, "PING", NULL, 0, on_reply, &g2, NULL), RSTMDB_OK);
    wait_reqs(&x, 1);
    fake_reply_ok(&x.f, req_id(&x, 0), "{\"pong\":true}");
    evbuffer_add(bufferevent_get_output(x.f.bev), "\n", 1);
    run_until(x.base, &g2.done);
    ck_assert_int_eq(g2.status, RSTMDB_ERR_PROTOCOL);
    setup_end(&x);
}
END_TEST

/* Free the client from inside a reply callback: the other pending callback
 * must not run, and nothing may be touched after the free. */
typedef struct freer {
    rstmdb_client *c;
    size_t calls;
} freer;

static void on_reply_free(rstmdb_client *c, const rstmdb_reply *r, void *arg)
{
    freer *fr = arg;
    (void)r;
    fr->calls++;
    rstmdb_client_free(c);
}

START_TEST(test_free_inside_callback)
{
    setup x;
    setup_start(&x, NULL);
    freer fr = {x.c, 0};
    ck_assert_int_eq(rstmdb_call_json(x.c, "PING", NULL, 0, on_reply_free, &fr, NULL), RSTMDB_OK);
    ck_assert_int_eq(rstmdb_call_json(x.c, "PING", NULL, 0, on_reply_free, &fr, NULL), RSTMDB_OK);
    for (int k = 0; k < 200 && fr.calls == 0; k++)
        run_for(x.base, 1);
    run_for(x.base, 20);
    ck_assert_uint_eq(fr.calls, 1);
    x.c = NULL;
    setup_end(&x);
}
END_TEST

static void on_reply_close(rstmdb_client *c, const rstmdb_reply *r, void *arg)
{
    freer *fr = arg;
    (void)r;
    fr->calls++;
    rstmdb_client_close(c);
}

START_TEST(test_close_sends_bye)
{
    setup x;
    setup_start(&x, NULL);
    x.f.auto_ping = false;
    freer fr = {x.c, 0};
    got g = {0};
    ck_assert_int_eq(rstmdb_call_json(x.c, "PING", NULL, 0, on_reply_close, &fr, NULL), RSTMDB_OK);
    ck_assert_int_eq(rstmdb_call_json(x.c, "SLOW", NULL, 0, on_reply, &g, NULL), RSTMDB_OK);
    wait_reqs(&x, 2);
    fake_reply_ok(&x.f, req_id(&x, 0), "{\"pong\":true}");
    run_until(x.base, &g.done);
    ck_assert_uint_eq(fr.calls, 1);
    ck_assert_int_eq(g.status, RSTMDB_ERR_CLOSED);
    wait_reqs(&x, 3);
    ck_assert_str_eq(cJSON_GetObjectItem(x.f.reqs[2], "op")->valuestring, "BYE");
    setup_end(&x);
}
END_TEST

START_TEST(test_bad_arguments)
{
    struct event_base *base = event_base_new();
    rstmdb_client *c = NULL;
    rstmdb_error *err = NULL;
    ck_assert_int_eq(rstmdb_client_new(&c, base, "nocolon", NULL, &err), RSTMDB_ERR_INVALID);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_null(c);
    rstmdb_error_free(err);
    ck_assert_int_eq(rstmdb_client_new(&c, base, "127.0.0.1:99999", NULL, NULL),
                     RSTMDB_ERR_INVALID);
    /* Bound but not listening: the connect is refused. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
    ck_assert_int_eq(rstmdb_client_new(&c, base, addr, NULL, NULL), RSTMDB_OK);
    got g = {0};
    ck_assert_int_eq(rstmdb_call_json(c, "PING", "[1]", 3, on_reply, &g, NULL), RSTMDB_ERR_JSON);
    ck_assert_int_eq(rstmdb_call_json(c, "PING", "{", 1, on_reply, &g, NULL), RSTMDB_ERR_JSON);
    ck_assert_int_eq(rstmdb_call_json(c, "bad op", "{}", 2, on_reply, &g, NULL),
                     RSTMDB_ERR_INVALID);
    st s = {0};
    rstmdb_client_set_state_cb(c, on_state, &s);
    ck_assert_int_eq(rstmdb_call_json(c, "PING", NULL, 0, on_reply, &g, NULL), RSTMDB_OK);
    run_until(base, &g.done);
    ck_assert_int_eq(g.status, RSTMDB_ERR_IO); /* refused */
    close(fd);
    ck_assert(s.closed);
    ck_assert_int_eq(s.closed_status, RSTMDB_ERR_IO);
    rstmdb_client_free(c);
    event_base_free(base);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("client_fake");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_ping_and_queue_before_ready);
    tcase_add_test(tc, test_thousand_out_of_order);
    tcase_add_test(tc, test_eof_fails_pending_and_was_sent);
    tcase_add_test(tc, test_queued_never_sent_on_connect_timeout);
    tcase_add_test(tc, test_request_timeout_and_late_reply);
    tcase_add_test(tc, test_cancel_drops_callback);
    tcase_add_test(tc, test_server_error_kept_unknown_code);
    tcase_add_test(tc, test_garbage_is_protocol_error);
    tcase_add_test(tc, test_auth_failure_closes);
    tcase_add_test(tc, test_watch_events_unwatch_and_close);
    tcase_add_test(tc, test_reentrant_unwatch_cancel_free);
    tcase_add_test(tc, test_jsonl_mode);
    tcase_add_test(tc, test_free_inside_callback);
    tcase_add_test(tc, test_close_sends_bye);
    tcase_add_test(tc, test_bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
