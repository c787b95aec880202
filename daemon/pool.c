/* pool.c: the upstream pool. Owns N librstmdb connections, their reconnect
 * timers and keepalive PINGs, the routing of calls and watches to READY
 * connections and the bounded re-send of calls whose connection died. It
 * knows nothing about HTTP or SSE and never blocks. */
#include "pool.h"
#include "clock.h"

#include <event2/dns.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "log.h"

#define POOL_DEFAULT_SIZE               2u
#define POOL_MAX_SIZE                   64u /* connections: a hard cap, like every table here */
#define POOL_DEFAULT_REQUEST_TIMEOUT_MS 30000u
#define POOL_DEFAULT_KEEPALIVE_MS       60000u

/* One connection slot. All state changes happen in conn_* functions below. */
typedef enum conn_state {
    CONN_WAITING = 0,    /* no client: the retry timer runs until the next attempt */
    CONN_CONNECTING = 1, /* client created: TCP/TLS, HELLO and AUTH under way */
    CONN_READY = 2,      /* handshaken: takes calls and watches */
    CONN_BYE = 3         /* pool_shutdown: BYE sent, awaiting its answer or the close */
} conn_state;

typedef struct pool_conn {
    pool *p;
    unsigned idx;
    conn_state state;
    rstmdb_client *client; /* NULL while WAITING */
    rstmdb_client *dead;   /* CLOSED client, freed from the loop after its callbacks */
    bool ever_ready;       /* a later READY counts as a reconnect */
    backoff bo;
    uint64_t next_attempt_ms; /* monotonic, while WAITING */
    uint64_t last_io_ms;      /* last call issued or answered, for keepalive */
    bool ping_inflight;
    size_t nwatches;        /* pool_watch wrappers created on this slot, not yet ended */
    rstmdb_error *last_err; /* why the latest attempt failed; NULL once READY */
    uint64_t last_err_seq;  /* p->failure_seq when last_err was set: "most recent" */
    struct event *retry_ev;
    struct event *reap_ev;
    struct event *keepalive_ev;
} pool_conn;

struct pool_call {
    pool *p;
    pool_conn *conn;     /* where it is in flight */
    rstmdb_request *req; /* NULL once answered or cancelled */
    char op[48];
    char *params; /* owned, kept for a re-send */
    size_t params_len;
    bool trusted; /* params validated by the caller: not scanned again */
    bool resend_safe;
    bool in_cb; /* cb is running: cancel is a no-op */
    unsigned resends;
    uint64_t deadline_ms; /* the request timeout spans re-sends */
    pool_reply_cb cb;
    void *arg;
    pool_call *prev, *next;
};

struct pool_watch {
    pool *p;
    pool_conn *conn;
    rstmdb_sub *sub;
    const pool_watch_ops *ops;
    void *arg;
    bool subscribed; /* the WATCH was answered ok */
    bool cancelled;  /* no more callbacks to ops */
    pool_watch *prev, *next;
};

/* Finished calls kept for the next ones. */
#define POOL_SPARE_CALLS 64

struct pool {
    struct event_base *base;
    pool_call *spare; /* finished calls kept for reuse (at most POOL_SPARE_CALLS) */
    size_t nspare;
    char *address;
    rstmdb_options *opts;
    unsigned size;
    unsigned request_timeout_ms;
    unsigned keepalive_ms;
    uint64_t rng; /* backoff jitter state, shared by the slots */
    plog own_log; /* used when the config gives none */
    const plog *log;
    pool_conn *conns;
    unsigned rr;         /* round-robin start among equally loaded connections */
    pool_call *calls;    /* every live call */
    pool_watch *watches; /* every live watch wrapper */
    pool_state_cb state_cb;
    void *state_arg;
    pool_stats stats;
    uint64_t failure_seq;   /* orders the slots' last_err */
    struct evdns_base *dns; /* resolves the upstream's name on every connect */
    bool closing;           /* pool_shutdown: no more connects */
    unsigned byes;          /* BYEs not answered yet */
    struct event *bye_done; /* runs `on_bye` from the loop */
    void (*on_bye)(void *arg);
    void *bye_arg;
};

static void conn_connect(pool_conn *pc);

bool pool_failure_is_definitive(const rstmdb_error *e)
{
    if (e == NULL)
        return false;
    if (rstmdb_error_status(e) == RSTMDB_ERR_TLS)
        return true;
    switch (rstmdb_error_code(e)) {
    case RSTMDB_SC_AUTH_FAILED:
    case RSTMDB_SC_UNAUTHORIZED:
    case RSTMDB_SC_UNSUPPORTED_PROTOCOL:
        return true;
    default:
        return false;
    }
}

/* Remember why an attempt (or a READY connection) failed. A transport
 * failure during a handshake does not hide an earlier refusal on the same
 * slot: with a wrong token the fault relay's `cut` lands mid-handshake now
 * and then, and the operator must still read AUTH_FAILED, not "closed". */
static void conn_note_failure(pool_conn *pc, const rstmdb_error *why, bool was_ready)
{
    if (!was_ready && !pool_failure_is_definitive(why) && pool_failure_is_definitive(pc->last_err))
        return;
    rstmdb_error *copy = why ? rstmdb_error_dup(why) : NULL;
    if (why != NULL && copy == NULL)
        return; /* OOM: keep the older reason rather than none */
    rstmdb_error_free(pc->last_err);
    pc->last_err = copy;
    pc->last_err_seq = ++pc->p->failure_seq;
}

/* ---- connection lifecycle ----------------------------------------------- */

static void conn_notify(pool_conn *pc, bool ready)
{
    if (pc->p->state_cb)
        pc->p->state_cb(pc->p->state_arg, pc->idx, ready);
}

static void conn_reap_dead(pool_conn *pc)
{
    rstmdb_client *d = pc->dead;
    pc->dead = NULL;
    rstmdb_client_free(d);
}

static void conn_reap_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_reap_dead(arg);
}

static void conn_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_connect(arg);
}

/* The client went CLOSED: keep it until its callbacks have unwound (pending
 * requests and watches are failed from inside the library's close path), then
 * free it from the loop, and schedule the next attempt. */
static void conn_lost(pool_conn *pc, rstmdb_client *c, const rstmdb_error *why)
{
    pool *p = pc->p;
    bool was_ready = pc->state == CONN_READY;
    const char *code = why ? rstmdb_error_code_str(why) : "CLOSED";
    const char *msg = why ? rstmdb_error_message(why) : "closed";

    if (p->closing) {
        if (pc->client == c) {
            if (pc->dead && pc->dead != c)
                conn_reap_dead(pc);
            pc->client = NULL;
            pc->dead = c; /* freed with the pool */
        }
        pc->state = CONN_WAITING;
        return;
    }
    conn_note_failure(pc, why, was_ready);
    if (pc->dead && pc->dead != c)
        conn_reap_dead(pc);
    pc->dead = c;
    if (pc->client == c)
        pc->client = NULL;
    pc->state = CONN_WAITING;
    pc->ping_inflight = false;
    event_del(pc->keepalive_ev);
    struct timeval zero = clock_tv_ms(0);
    event_add(pc->reap_ev, &zero);

    unsigned delay = backoff_next_ms(&pc->bo);
    pc->next_attempt_ms = clock_mono_ms() + delay;
    struct timeval tv = clock_tv_ms(delay);
    event_add(pc->retry_ev, &tv);

    if (was_ready) {
        p->stats.conn_losses++;
        if (p->stats.ready > 0)
            p->stats.ready--;
        log_warn(p->log, "upstream connection %u to %s lost: %s: %s; reconnecting in %u ms",
                 pc->idx, p->address, code, msg, delay);
        conn_notify(pc, false);
    } else {
        p->stats.connect_failures++;
        log_warn(p->log, "upstream connection %u to %s failed: %s: %s; retry in %u ms", pc->idx,
                 p->address, code, msg, delay);
    }
}

static void keepalive_reply_cb(rstmdb_client *c, const rstmdb_reply *r, void *arg)
{
    pool_conn *pc = arg;
    if (pc->client != c)
        return; /* an old client's PING failing as it closes */
    pc->ping_inflight = false;
    int st = rstmdb_reply_status(r);
    if (st == RSTMDB_ERR_TIMEOUT) {
        /* A READY connection that cannot answer PING within the request
         * timeout is hung (e.g. a server stuck mid-write): cut it so the
         * reconnect logic takes over instead of every request timing out. */
        log_warn(pc->p->log, "upstream connection %u: keepalive PING timed out; closing", pc->idx);
        rstmdb_client_close(c);
    }
}

static void conn_keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pool_conn *pc = arg;
    pool *p = pc->p;
    if (pc->state != CONN_READY || pc->ping_inflight)
        return;
    if (clock_mono_ms() - pc->last_io_ms < p->keepalive_ms)
        return;
    rstmdb_request *req = NULL;
    if (rstmdb_call_json(pc->client, "PING", "{}", 2, keepalive_reply_cb, pc, &req) == RSTMDB_OK) {
        pc->ping_inflight = true;
        pc->last_io_ms = clock_mono_ms();
    }
}

static void conn_state_cb(rstmdb_client *c, rstmdb_conn_state state, const rstmdb_error *why,
                          void *arg)
{
    pool_conn *pc = arg;
    pool *p = pc->p;
    if (c != pc->client)
        return;
    switch (state) {
    case RSTMDB_CONN_CONNECTING:
        break;
    case RSTMDB_CONN_READY: {
        if (pc->state == CONN_READY)
            break;
        pc->state = CONN_READY;
        pc->last_io_ms = clock_mono_ms();
        backoff_reset(&pc->bo);
        rstmdb_error_free(pc->last_err);
        pc->last_err = NULL;
        p->stats.ready++;
        if (pc->ever_ready)
            p->stats.reconnects++;
        log_info(p->log, "upstream connection %u to %s ready%s", pc->idx, p->address,
                 pc->ever_ready ? " (reconnected)" : "");
        pc->ever_ready = true;
        /* Check twice per period so an idle connection is PINGed at the
         * latest 1.5 periods after its last traffic: far below 300 s. */
        struct timeval tv = clock_tv_ms(p->keepalive_ms / 2 ? p->keepalive_ms / 2 : 1);
        event_add(pc->keepalive_ev, &tv);
        conn_notify(pc, true);
        break;
    }
    case RSTMDB_CONN_CLOSED:
        conn_lost(pc, c, why);
        break;
    }
}

static void conn_connect(pool_conn *pc)
{
    pool *p = pc->p;
    rstmdb_error *err = NULL;
    rstmdb_client *c = NULL;

    if (pc->dead)
        conn_reap_dead(pc);
    pc->state = CONN_CONNECTING;
    if (rstmdb_client_new(&c, p->base, p->address, p->opts, &err) != RSTMDB_OK) {
        /* Bad address or OOM: counted and retried like a refused connect. */
        pc->client = NULL;
        pc->state = CONN_WAITING;
        unsigned delay = backoff_next_ms(&pc->bo);
        pc->next_attempt_ms = clock_mono_ms() + delay;
        struct timeval tv = clock_tv_ms(delay);
        event_add(pc->retry_ev, &tv);
        p->stats.connect_failures++;
        log_warn(p->log, "upstream connection %u to %s failed: %s; retry in %u ms", pc->idx,
                 p->address, err ? rstmdb_error_message(err) : "client_new failed", delay);
        conn_note_failure(pc, err, false);
        rstmdb_error_free(err);
        return;
    }
    pc->client = c;
    rstmdb_client_set_state_cb(c, conn_state_cb, pc);
    if (rstmdb_client_state(c) == RSTMDB_CONN_READY)
        conn_state_cb(c, RSTMDB_CONN_READY, NULL, pc);
}

/* ---- pool ------------------------------------------------------------------ */

static void bye_done_cb(evutil_socket_t fd, short what, void *arg)
{
    pool *p = arg;
    (void)fd;
    (void)what;
    if (p->on_bye)
        p->on_bye(p->bye_arg);
}

/* `on_bye` from a timer, not from inside a client's callback, and after
 * what is already active (the resolver's cancelled lookups). */
static void bye_finish(pool *p)
{
    struct timeval zero = clock_tv_ms(0);
    evtimer_add(p->bye_done, &zero);
}

static void bye_reply_cb(rstmdb_client *c, const rstmdb_reply *r, void *arg)
{
    pool_conn *pc = arg;
    pool *p = pc->p;
    (void)c;
    log_debug(p->log, "upstream connection %u: BYE %s", pc->idx,
              rstmdb_reply_status(r) == RSTMDB_OK ? "answered" : "ended with the connection");
    if (p->byes > 0 && --p->byes == 0)
        bye_finish(p);
}

void pool_shutdown(pool *p, void (*done)(void *arg), void *arg)
{
    p->closing = true;
    p->on_bye = done;
    p->bye_arg = arg;
    for (unsigned i = 0; i < p->size; i++) {
        pool_conn *pc = &p->conns[i];
        event_del(pc->retry_ev);
        event_del(pc->keepalive_ev);
        if (pc->state == CONN_READY && pc->client &&
            rstmdb_call_json(pc->client, "BYE", "{}", 2, bye_reply_cb, pc, NULL) == RSTMDB_OK) {
            pc->state = CONN_BYE; /* takes no more calls */
            p->byes++;
            continue;
        }
        /* Not handshaken (or BYE could not be queued): nothing to say. */
        rstmdb_client_free(pc->client);
        pc->client = NULL;
        pc->state = CONN_WAITING;
    }
    log_info(p->log, "upstream: BYE sent on %u connection(s)", p->byes);
    if (p->byes == 0)
        bye_finish(p);
}

int pool_new(pool **out, struct event_base *base, const pool_config *cfg, rstmdb_error **err)
{
    if (!out || !base || !cfg || !cfg->address)
        return rstmdb_error_set(err, RSTMDB_ERR_INVALID,
                                "pool: base, config and address are required");
    if (cfg->size > POOL_MAX_SIZE)
        return rstmdb_error_set(err, RSTMDB_ERR_INVALID, "pool: size %u above the cap of %u",
                                cfg->size, POOL_MAX_SIZE);
    pool *p = calloc(1, sizeof *p);
    if (!p)
        return rstmdb_error_set(err, RSTMDB_ERR_NOMEM, "pool: out of memory");
    p->base = base;
    p->size = cfg->size ? cfg->size : POOL_DEFAULT_SIZE;
    p->request_timeout_ms =
        cfg->request_timeout_ms ? cfg->request_timeout_ms : POOL_DEFAULT_REQUEST_TIMEOUT_MS;
    p->keepalive_ms = cfg->keepalive_ms ? cfg->keepalive_ms : POOL_DEFAULT_KEEPALIVE_MS;
    p->rng = cfg->jitter_seed
                 ? cfg->jitter_seed
                 : ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)p;
    log_init(&p->own_log, LOG_INFO, stderr);
    p->log = cfg->log ? cfg->log : &p->own_log;
    p->stats.connections = p->size;

    const int rc = RSTMDB_ERR_NOMEM;
    p->address = strdup(cfg->address);
    p->conns = calloc(p->size, sizeof *p->conns);
    if (!p->address || !p->conns || rstmdb_options_new(&p->opts) != RSTMDB_OK)
        goto fail;
    rstmdb_options_set_client_name(p->opts, "rstmdb-proxy");
    if (cfg->token && rstmdb_options_set_auth(p->opts, cfg->token) != RSTMDB_OK)
        goto fail;
    if (cfg->tls && rstmdb_options_set_tls(p->opts, cfg->tls) != RSTMDB_OK)
        goto fail;
    if (cfg->connect_timeout_ms)
        rstmdb_options_set_connect_timeout_ms(p->opts, cfg->connect_timeout_ms);
    /* Names are looked up on the loop, never blocking it, and again on
     * every reconnect. */
    p->dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE |
                                      (cfg->dns_server ? 0 : EVDNS_BASE_INITIALIZE_NAMESERVERS));
    p->bye_done = evtimer_new(base, bye_done_cb, p);
    if (!p->dns || !p->bye_done)
        goto fail;
    if (cfg->dns_server) {
        if (evdns_base_nameserver_ip_add(p->dns, cfg->dns_server) != 0) {
            pool_free(p);
            return rstmdb_error_set(err, RSTMDB_ERR_INVALID, "pool: bad dns_server \"%s\"",
                                    cfg->dns_server);
        }
        evdns_base_load_hosts(p->dns, NULL);
    }
    rstmdb_options_set_dns(p->opts, p->dns);
    rstmdb_options_set_request_timeout_ms(p->opts, p->request_timeout_ms);

    for (unsigned i = 0; i < p->size; i++) {
        pool_conn *pc = &p->conns[i];
        pc->p = p;
        pc->idx = i;
        backoff_init(&pc->bo, cfg->backoff_initial_ms, cfg->backoff_max_ms, backoff_xorshift,
                     &p->rng);
        pc->retry_ev = evtimer_new(base, conn_retry_cb, pc);
        pc->reap_ev = evtimer_new(base, conn_reap_cb, pc);
        pc->keepalive_ev = event_new(base, -1, EV_PERSIST, conn_keepalive_cb, pc);
        if (!pc->retry_ev || !pc->reap_ev || !pc->keepalive_ev)
            goto fail;
    }
    for (unsigned i = 0; i < p->size; i++)
        conn_connect(&p->conns[i]);
    *out = p;
    return RSTMDB_OK;
fail:
    pool_free(p);
    return rstmdb_error_set(err, rc, "pool: out of memory");
}

void pool_free(pool *p)
{
    if (!p)
        return;
    /* Free the clients first: their pending callbacks are then never called,
     * so nothing below can be re-entered. */
    for (unsigned i = 0; p->conns && i < p->size; i++) {
        pool_conn *pc = &p->conns[i];
        rstmdb_client_free(pc->client);
        rstmdb_client_free(pc->dead);
        rstmdb_error_free(pc->last_err);
        if (pc->retry_ev)
            event_free(pc->retry_ev);
        if (pc->reap_ev)
            event_free(pc->reap_ev);
        if (pc->keepalive_ev)
            event_free(pc->keepalive_ev);
    }
    /* After the clients: a lookup they cancelled still refers to it. */
    if (p->dns)
        evdns_base_free(p->dns, 0);
    if (p->bye_done)
        event_free(p->bye_done);
    while (p->calls) {
        pool_call *c = p->calls;
        p->calls = c->next;
        free(c->params);
        free(c);
    }
    while (p->watches) {
        pool_watch *w = p->watches;
        p->watches = w->next;
        free(w);
    }
    rstmdb_options_free(p->opts);
    free(p->conns);
    free(p->address);
    while (p->spare != NULL) {
        pool_call *c = p->spare;
        p->spare = c->next;
        free(c);
    }
    free(p);
}

bool pool_ready(const pool *p)
{
    return p && p->stats.ready > 0;
}

const rstmdb_error *pool_last_failure(const pool *p)
{
    const pool_conn *best = NULL;
    for (unsigned i = 0; p && i < p->size; i++) {
        const pool_conn *pc = &p->conns[i];
        if (pc->last_err == NULL)
            continue;
        if (best == NULL) {
            best = pc;
            continue;
        }
        bool d = pool_failure_is_definitive(pc->last_err);
        bool bd = pool_failure_is_definitive(best->last_err);
        if (d != bd ? d : pc->last_err_seq > best->last_err_seq)
            best = pc;
    }
    return best ? best->last_err : NULL;
}

void pool_get_stats(const pool *p, pool_stats *out)
{
    *out = p->stats;
}

unsigned pool_retry_after_s(const pool *p)
{
    uint64_t now = clock_mono_ms(), best = UINT64_MAX;
    for (unsigned i = 0; i < p->size; i++) {
        const pool_conn *pc = &p->conns[i];
        uint64_t wait;
        if (pc->state == CONN_READY)
            return 1;
        if (pc->state == CONN_CONNECTING)
            wait = 0; /* an attempt is under way: its outcome is due soon */
        else
            wait = pc->next_attempt_ms > now ? pc->next_attempt_ms - now : 0;
        if (wait < best)
            best = wait;
    }
    if (best == UINT64_MAX)
        return 1;
    uint64_t s = (best + 999) / 1000;
    return s < 1 ? 1 : (unsigned)s;
}

void pool_set_state_cb(pool *p, pool_state_cb cb, void *arg)
{
    p->state_cb = cb;
    p->state_arg = arg;
}

/* The least-loaded READY connection other than `avoid`, rotating the start so
 * equal loads spread across connections; NULL when none is READY. For a
 * watch (`for_watch`) the load is first the subscriptions a connection
 * carries: the server queues at most 256 events per connection and drops
 * the overflow silently, so feeds are spread rather than stacked. */
static pool_conn *pool_pick_for(pool *p, const pool_conn *avoid, bool for_watch)
{
    pool_conn *best = NULL;
    size_t best_load = SIZE_MAX;
    for (unsigned k = 0; k < p->size; k++) {
        pool_conn *pc = &p->conns[(p->rr + k) % p->size];
        /* The client's own state too: it may be failing its requests
         * before our state callback has heard that it closed. */
        if (pc == avoid || pc->state != CONN_READY || !pc->client ||
            rstmdb_client_state(pc->client) != RSTMDB_CONN_READY)
            continue;
        size_t load = rstmdb_client_inflight(pc->client);
        if (for_watch)
            load += pc->nwatches * 1024u;
        if (load < best_load) {
            best = pc;
            best_load = load;
        }
    }
    p->rr++;
    return best;
}

static pool_conn *pool_pick(pool *p, const pool_conn *avoid)
{
    return pool_pick_for(p, avoid, false);
}

/* ---- calls ------------------------------------------------------------------- */

static void call_unlink(pool_call *c)
{
    pool *p = c->p;
    if (c->prev)
        c->prev->next = c->next;
    else
        p->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    if (p->stats.inflight > 0)
        p->stats.inflight--;
}

static void call_free(pool_call *c)
{
    free(c->params);
    c->params = NULL;
    pool *p = c->p;
    if (p->nspare < POOL_SPARE_CALLS) {
        c->next = p->spare;
        p->spare = c;
        p->nspare++;
        return;
    }
    free(c);
}

static void call_reply_cb(rstmdb_client *client, const rstmdb_reply *r, void *arg);

bool pool_status_is_conn_loss(int status)
{
    switch (status) {
    case RSTMDB_OK:
    case RSTMDB_ERR_SERVER:  /* answered */
    case RSTMDB_ERR_TIMEOUT: /* the deadline, not the connection */
    case RSTMDB_ERR_CANCELLED:
    case RSTMDB_ERR_INVALID:
    case RSTMDB_ERR_JSON:
    case RSTMDB_ERR_NOMEM:
        return false;
    default:
        return true; /* CLOSED, IO, TLS, PROTOCOL, FRAME_*: the connection died */
    }
}

/* Put `c` on the wire of `pc` with what is left of its deadline. */
static int call_issue(pool_call *c, pool_conn *pc)
{
    uint64_t now = clock_mono_ms();
    if (now >= c->deadline_ms)
        return RSTMDB_ERR_TIMEOUT;
    rstmdb_request *req = NULL;
    int rc = c->trusted ? rstmdb_call_json_trusted(pc->client, c->op, c->params, c->params_len,
                                                   call_reply_cb, c, &req)
                        : rstmdb_call_json(pc->client, c->op, c->params, c->params_len,
                                           call_reply_cb, c, &req);
    if (rc != RSTMDB_OK)
        return rc;
    rstmdb_request_set_timeout_ms(req, (unsigned)(c->deadline_ms - now));
    c->req = req;
    c->conn = pc;
    pc->last_io_ms = now;
    return RSTMDB_OK;
}

/* A call whose connection died: re-send it once on another READY connection
 * when that cannot apply a write twice (never written, or resend_safe).
 * Bounded by the pool size, so a call cannot bounce between dying
 * connections forever. Returns true when it went out again. */
static bool call_try_resend(pool_call *c, const rstmdb_reply *r)
{
    pool *p = c->p;
    if (!pool_status_is_conn_loss(rstmdb_reply_status(r)))
        return false;
    if (c->resends >= p->size)
        return false;
    bool sent = rstmdb_reply_was_sent(r);
    if (sent && !c->resend_safe)
        return false;
    const pool_conn *from = c->conn;
    for (;;) {
        pool_conn *pc = pool_pick(p, from);
        if (!pc)
            return false;
        if (call_issue(c, pc) == RSTMDB_OK) {
            c->resends++;
            p->stats.resent++;
            log_info(p->log, "%s re-sent on upstream connection %u after connection %u died (%s)",
                     c->op, pc->idx, from ? from->idx : 0u, sent ? "was sent" : "never sent");
            return true;
        }
        if (clock_mono_ms() >= c->deadline_ms)
            return false;
        /* That connection refused it (closing under us): do not pick it again. */
        from = pc;
        if (++c->resends >= p->size)
            return false;
    }
}

static void call_reply_cb(rstmdb_client *client, const rstmdb_reply *r, void *arg)
{
    (void)client;
    pool_call *c = arg;
    c->req = NULL;
    if (c->conn)
        c->conn->last_io_ms = clock_mono_ms();
    if (call_try_resend(c, r))
        return;
    call_unlink(c);
    c->in_cb = true;
    c->cb(r, c->arg);
    call_free(c);
}

/* Start a call with `params` (owned from here on, whatever the result). */
static int call_start(pool *p, const char *op, char *params, size_t params_len, bool trusted,
                      bool resend_safe, pool_reply_cb cb, void *arg, pool_call **out)
{
    if (!p || !op || !cb || !params || strlen(op) >= sizeof((pool_call *)0)->op) {
        free(params);
        return RSTMDB_ERR_INVALID;
    }
    pool_conn *pc = pool_pick(p, NULL);
    if (!pc) {
        free(params);
        return RSTMDB_ERR_CLOSED; /* fail fast: the HTTP side answers 503 now */
    }
    pool_call *c = p->spare;
    if (c != NULL) {
        p->spare = c->next;
        p->nspare--;
    } else if ((c = malloc(sizeof *c)) == NULL) {
        free(params);
        return RSTMDB_ERR_NOMEM;
    }
    memset(c, 0, sizeof *c);
    c->p = p;
    memcpy(c->op, op, strlen(op) + 1);
    c->params = params;
    c->params_len = params_len;
    c->trusted = trusted;
    c->resend_safe = resend_safe;
    c->cb = cb;
    c->arg = arg;
    c->deadline_ms = clock_mono_ms() + p->request_timeout_ms;
    int rc = call_issue(c, pc);
    if (rc != RSTMDB_OK) {
        call_free(c);
        return rc;
    }
    c->next = p->calls;
    if (p->calls)
        p->calls->prev = c;
    p->calls = c;
    p->stats.inflight++;
    if (out)
        *out = c;
    return RSTMDB_OK;
}

int pool_call_json(pool *p, const char *op, const char *params, size_t params_len, bool resend_safe,
                   pool_reply_cb cb, void *arg, pool_call **out)
{
    if (!params && params_len)
        return RSTMDB_ERR_INVALID;
    if (!params) {
        params = "{}";
        params_len = 2;
    }
    char *copy = malloc(params_len + 1);
    if (!copy)
        return RSTMDB_ERR_NOMEM;
    memcpy(copy, params, params_len);
    copy[params_len] = '\0';
    return call_start(p, op, copy, params_len, false, resend_safe, cb, arg, out);
}

int pool_call_take(pool *p, const char *op, char *params, size_t params_len, bool resend_safe,
                   pool_reply_cb cb, void *arg, pool_call **out)
{
    return call_start(p, op, params, params_len, true, resend_safe, cb, arg, out);
}

void pool_call_cancel(pool_call *c)
{
    if (!c || c->in_cb)
        return;
    if (c->req)
        rstmdb_request_cancel(c->req);
    call_unlink(c);
    call_free(c);
}

/* ---- watches ------------------------------------------------------------------ */

static void watch_unlink_free(pool_watch *w)
{
    pool *p = w->p;
    if (w->prev)
        w->prev->next = w->next;
    else
        p->watches = w->next;
    if (w->next)
        w->next->prev = w->prev;
    if (p->stats.watches > 0)
        p->stats.watches--;
    if (w->conn && w->conn->nwatches > 0)
        w->conn->nwatches--;
    free(w);
}

static void watch_reply_cb(rstmdb_client *client, const rstmdb_reply *r, void *arg)
{
    (void)client;
    pool_watch *w = arg;
    if (rstmdb_reply_status(r) == RSTMDB_OK) {
        w->subscribed = true;
        if (w->cancelled) {
            /* Cancelled while the WATCH was in flight: undo it now; on_end
             * (from the library) frees the wrapper. */
            if (rstmdb_unwatch(w->sub) != RSTMDB_OK)
                log_debug(w->p->log, "UNWATCH after a cancelled WATCH could not be sent");
            return;
        }
        w->ops->on_reply(w->arg, r);
        return;
    }
    /* Failed WATCH: the library ends the subscription without on_end. */
    if (!w->cancelled) {
        w->cancelled = true; /* a cancel from inside on_reply becomes a no-op */
        w->ops->on_reply(w->arg, r);
    }
    watch_unlink_free(w);
}

static void watch_event_cb(rstmdb_sub *sub, const rstmdb_event *ev, void *arg)
{
    (void)sub;
    pool_watch *w = arg;
    if (w->conn)
        w->conn->last_io_ms = clock_mono_ms();
    if (!w->cancelled)
        w->ops->on_event(w->arg, ev);
}

static void watch_end_cb(rstmdb_sub *sub, const rstmdb_error *why, void *arg)
{
    (void)sub;
    pool_watch *w = arg;
    if (!w->cancelled) {
        w->cancelled = true;
        w->ops->on_end(w->arg, why);
    }
    watch_unlink_free(w);
}

int pool_watch_json(pool *p, const char *op, const char *params, size_t params_len,
                    const pool_watch_ops *ops, void *arg, pool_watch **out)
{
    if (!p || !op || !ops || !params)
        return RSTMDB_ERR_INVALID;
    pool_conn *pc = pool_pick_for(p, NULL, true);
    if (!pc)
        return RSTMDB_ERR_CLOSED;
    pool_watch *w = calloc(1, sizeof *w);
    if (!w)
        return RSTMDB_ERR_NOMEM;
    w->p = p;
    w->conn = pc;
    w->ops = ops;
    w->arg = arg;
    int rc = rstmdb_watch_json(pc->client, op, params, params_len, watch_reply_cb, watch_event_cb,
                               watch_end_cb, w, &w->sub);
    if (rc != RSTMDB_OK) {
        free(w);
        return rc;
    }
    pc->last_io_ms = clock_mono_ms();
    pc->nwatches++;
    w->next = p->watches;
    if (p->watches)
        p->watches->prev = w;
    p->watches = w;
    p->stats.watches++;
    *out = w;
    return RSTMDB_OK;
}

void pool_watch_cancel(pool_watch *w)
{
    if (!w || w->cancelled)
        return;
    w->cancelled = true;
    /* Before the WATCH is answered there is no id to UNWATCH:
     * watch_reply_cb does it when the answer arrives. The library may end
     * the subscription (and free w in watch_end_cb) inside rstmdb_unwatch,
     * so w is not touched after it. */
    const plog *log = w->p->log;
    if (w->subscribed && rstmdb_unwatch(w->sub) != RSTMDB_OK)
        log_debug(log, "UNWATCH could not be sent (connection closing)");
}

int pool_set_token(pool *p, const char *token)
{
    return rstmdb_options_set_auth(p->opts, token && *token ? token : NULL);
}
