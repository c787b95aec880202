/* relay.c: the fault tests' TCP relay: accepts clients, pairs each with a new
 * upstream connection and copies bytes both ways through bounded buffers,
 * obeying the control commands (cut, refuse, stall, slow, garble, retarget).
 * It must never parse the relayed protocol: it damages bytes, not frames.
 */
#include "relay.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RELAY_DEFAULT_CAP  (256u * 1024u)
#define RELAY_CTL_LINE_MAX 1024u /* a control line longer than this is an error */
#define RELAY_ADDR_MAX     128

typedef struct pair pair;
typedef struct ctl_conn ctl_conn;

/* One relayed connection: the accepted client side and its upstream side. */
struct pair {
    relay *r;
    struct bufferevent *down; /* the client (the proxy) */
    struct bufferevent *up;   /* the upstream (testd) */
    bool up_connected;        /* upstream connect finished; nothing flows before */
    bool draining;            /* one side ended: flush the other's output, then close */
    bool dead;                /* closed; waiting for the reaper to free it */
    pair *prev, *next;
};

struct ctl_conn {
    relay *r;
    struct bufferevent *bev;
    bool dead;
    ctl_conn *prev, *next;
};

struct relay {
    struct event_base *base;
    struct evconnlistener *lst;
    struct evconnlistener *ctl_lst;
    char addr[RELAY_ADDR_MAX];
    char ctl_addr[RELAY_ADDR_MAX];
    struct sockaddr_storage up_ss;
    int up_len;
    char up_addr[RELAY_ADDR_MAX];
    size_t cap;
    bool refuse;
    bool stall;
    bool garble_next;
    unsigned long slow; /* bytes per second per direction and connection, 0 = off */
    struct ev_token_bucket_cfg *bucket;
    pair *pairs;
    pair *dead_pairs;
    ctl_conn *ctls;
    ctl_conn *dead_ctls;
    /* Frees what callbacks closed, after they return: a pair is never freed
     * from inside its own bufferevent's callback. */
    struct event *reaper;
    relay_stats st;
};

static void format_addr(const struct sockaddr *sa, char *out, size_t cap)
{
    char host[64] = "?";
    int port = 0;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)sa;
        evutil_inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
        port = ntohs(in4->sin_port);
        snprintf(out, cap, "%s:%d", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        evutil_inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
        snprintf(out, cap, "[%s]:%d", host, port);
    } else {
        snprintf(out, cap, "?");
    }
}

/* "HOST:PORT" or "[V6]:PORT" with a numeric host; port 0 allowed (libevent's
 * own parser refuses port 0, which is how tests ask for a free port). */
static int parse_addr(const char *s, struct sockaddr_storage *ss, int *len)
{
    char host[64];
    const char *colon;
    const char *h = s;
    size_t hlen;
    char *end;
    long port;

    memset(ss, 0, sizeof *ss);
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= sizeof host || colon[1] < '0' || colon[1] > '9')
        return -1;
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (s[0] != '[') {
        struct sockaddr_in *in4 = (struct sockaddr_in *)(void *)ss;
        if (evutil_inet_pton(AF_INET, host, &in4->sin_addr) != 1)
            return -1;
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        *len = (int)sizeof *in4;
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)ss;
        if (evutil_inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
            return -1;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *len = (int)sizeof *in6;
    }
    return 0;
}

static void schedule_reaper(relay *r)
{
    event_active(r->reaper, EV_TIMEOUT, 0);
}

/* ---- pairs ---------------------------------------------------------------- */

static struct bufferevent *pair_other(const pair *p, const struct bufferevent *bev)
{
    return bev == p->down ? p->up : p->down;
}

static void pair_unlink(pair *p)
{
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        p->r->pairs = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
}

/* Stop all callbacks now; the reaper frees the sockets and the pair. */
static void pair_close(pair *p)
{
    relay *r = p->r;

    if (p->dead)
        return;
    p->dead = true;
    bufferevent_setcb(p->down, NULL, NULL, NULL, NULL);
    bufferevent_setcb(p->up, NULL, NULL, NULL, NULL);
    bufferevent_disable(p->down, EV_READ | EV_WRITE);
    bufferevent_disable(p->up, EV_READ | EV_WRITE);
    pair_unlink(p);
    p->next = r->dead_pairs;
    r->dead_pairs = p;
    r->st.active--;
    schedule_reaper(r);
}

static void pair_free_now(pair *p)
{
    bufferevent_free(p->down);
    bufferevent_free(p->up);
    free(p);
}

static bool pair_may_read(pair *p, const struct bufferevent *src)
{
    const relay *r = p->r;
    struct bufferevent *dst = pair_other(p, src);

    return !p->dead && !p->draining && !r->stall && p->up_connected &&
           evbuffer_get_length(bufferevent_get_output(dst)) < r->cap;
}

/* Move what `src` has read to the other side's output. Pauses `src` when
 * the other side's output is over the cap: a client that stops reading makes
 * the relay stop reading the upstream, never queue without bound. */
static void pair_pump(pair *p, struct bufferevent *src)
{
    relay *r = p->r;
    struct bufferevent *dst = pair_other(p, src);
    struct evbuffer *in = bufferevent_get_input(src);
    struct evbuffer *out = bufferevent_get_output(dst);
    size_t n = evbuffer_get_length(in);

    if (p->dead || r->stall || !p->up_connected || n == 0)
        return;
    if (src == p->up && r->garble_next) {
        /* The last byte of the chunk: inside an RCPX frame that is payload
         * (the CRC no longer matches) or, for a chunk ending in a header, a
         * length or CRC field; either way the receiver must reject it. */
        unsigned char *b = evbuffer_pullup(in, (ev_ssize_t)n);
        if (b != NULL) {
            b[n - 1] ^= 0xFF;
            r->garble_next = false;
            r->st.garbled++;
        }
    }
    evbuffer_add_buffer(out, in);
    if (src == p->down)
        r->st.bytes_up += n;
    else
        r->st.bytes_down += n;
    if (evbuffer_get_length(out) >= r->cap) {
        bufferevent_disable(src, EV_READ);
        r->st.paused++;
    }
}

/* Enable or disable reading on both sides as the state says, and move any
 * input left over from a pause or stall. */
static void pair_update(pair *p)
{
    struct bufferevent *sides[2] = {p->down, p->up};
    int i;

    for (i = 0; i < 2 && !p->dead; i++) {
        if (pair_may_read(p, sides[i])) {
            bufferevent_enable(sides[i], EV_READ);
            pair_pump(p, sides[i]);
        } else {
            bufferevent_disable(sides[i], EV_READ);
        }
    }
}

static void pair_read_cb(struct bufferevent *bev, void *arg)
{
    pair_pump(arg, bev);
}

/* Output drained to the low watermark: a paused reader may resume, or a
 * draining pair has delivered everything and closes. */
static void pair_write_cb(struct bufferevent *bev, void *arg)
{
    pair *p = arg;

    if (p->draining) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            pair_close(p);
        return;
    }
    pair_update(p);
}

static void pair_event_cb(struct bufferevent *bev, short what, void *arg)
{
    pair *p = arg;
    relay *r = p->r;
    struct bufferevent *dst = pair_other(p, bev);

    if (what & BEV_EVENT_CONNECTED) {
        p->up_connected = true;
        pair_update(p);
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    if (bev == p->up && !p->up_connected) {
        r->st.connect_failed++;
        pair_close(p);
        return;
    }
    if (p->draining) {
        pair_close(p);
        return;
    }
    /* One side ended (testd killed, proxy closed): deliver what it sent
     * before ending, as a real network would, then close both. A response
     * written just before a SIGKILL still reaches the proxy. */
    if (!r->stall)
        evbuffer_add_buffer(bufferevent_get_output(dst), bufferevent_get_input(bev));
    if (r->stall || evbuffer_get_length(bufferevent_get_output(dst)) == 0) {
        pair_close(p);
        return;
    }
    p->draining = true;
    bufferevent_disable(bev, EV_READ);
    bufferevent_disable(dst, EV_READ);
    bufferevent_setwatermark(dst, EV_WRITE, 0, 0);
}

static void pair_apply_slow(relay *r, pair *p)
{
    bufferevent_set_rate_limit(p->down, r->bucket);
    bufferevent_set_rate_limit(p->up, r->bucket);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    relay *r = arg;
    pair *p;

    (void)l;
    (void)sa;
    (void)salen;
    r->st.accepted++;
    if (r->refuse) {
        r->st.refused++;
        evutil_closesocket(fd);
        return;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL) {
        evutil_closesocket(fd);
        return;
    }
    p->r = r;
    p->down = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
    p->up = bufferevent_socket_new(r->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (p->down == NULL || p->up == NULL) {
        if (p->down != NULL)
            bufferevent_free(p->down);
        else
            evutil_closesocket(fd);
        if (p->up != NULL)
            bufferevent_free(p->up);
        free(p);
        return;
    }
    p->next = r->pairs;
    if (r->pairs != NULL)
        r->pairs->prev = p;
    r->pairs = p;
    r->st.active++;
    bufferevent_setcb(p->down, pair_read_cb, pair_write_cb, pair_event_cb, p);
    bufferevent_setcb(p->up, pair_read_cb, pair_write_cb, pair_event_cb, p);
    bufferevent_setwatermark(p->down, EV_READ, 0, r->cap);
    bufferevent_setwatermark(p->up, EV_READ, 0, r->cap);
    bufferevent_setwatermark(p->down, EV_WRITE, r->cap / 2, 0);
    bufferevent_setwatermark(p->up, EV_WRITE, r->cap / 2, 0);
    if (r->bucket != NULL)
        pair_apply_slow(r, p);
    /* Reading the client waits for the upstream connect (pair_update). */
    bufferevent_disable(p->down, EV_READ);
    bufferevent_enable(p->down, EV_WRITE);
    bufferevent_enable(p->up, EV_WRITE);
    if (bufferevent_socket_connect(p->up, (struct sockaddr *)&r->up_ss, r->up_len) != 0) {
        r->st.connect_failed++;
        pair_close(p);
    }
}

/* ---- control channel ------------------------------------------------------ */

static void ctl_close(ctl_conn *c)
{
    relay *r = c->r;

    if (c->dead)
        return;
    c->dead = true;
    bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        r->ctls = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = NULL;
    c->next = r->dead_ctls;
    r->dead_ctls = c;
    schedule_reaper(r);
}

static void ctl_read_cb(struct bufferevent *bev, void *arg)
{
    ctl_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char *line;
    size_t len;

    while (!c->dead && (line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF)) != NULL) {
        char reply[512];
        relay_command(c->r, line, reply, sizeof reply);
        free(line);
        evbuffer_add_printf(bufferevent_get_output(bev), "%s\n", reply);
    }
    if (!c->dead && evbuffer_get_length(in) > RELAY_CTL_LINE_MAX) {
        evbuffer_add_printf(bufferevent_get_output(bev), "err line too long\n");
        evbuffer_drain(in, evbuffer_get_length(in));
    }
}

static void ctl_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        ctl_close(arg);
}

static void ctl_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                          int salen, void *arg)
{
    relay *r = arg;
    ctl_conn *c;

    (void)l;
    (void)sa;
    (void)salen;
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        evutil_closesocket(fd);
        return;
    }
    c->r = r;
    c->bev = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        evutil_closesocket(fd);
        free(c);
        return;
    }
    c->next = r->ctls;
    if (r->ctls != NULL)
        r->ctls->prev = c;
    r->ctls = c;
    bufferevent_setcb(c->bev, ctl_read_cb, NULL, ctl_event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void reaper_cb(evutil_socket_t fd, short what, void *arg)
{
    relay *r = arg;

    (void)fd;
    (void)what;
    while (r->dead_pairs != NULL) {
        pair *p = r->dead_pairs;
        r->dead_pairs = p->next;
        pair_free_now(p);
    }
    while (r->dead_ctls != NULL) {
        ctl_conn *c = r->dead_ctls;
        r->dead_ctls = c->next;
        bufferevent_free(c->bev);
        free(c);
    }
}

/* ---- commands ------------------------------------------------------------- */

static int on_off(const char *arg, bool *out)
{
    if (strcmp(arg, "on") == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(arg, "off") == 0) {
        *out = false;
        return 0;
    }
    return -1;
}

static int set_slow(relay *r, const char *arg, char *reply, size_t cap)
{
    char *end;
    unsigned long v;
    struct ev_token_bucket_cfg *old = r->bucket;
    struct ev_token_bucket_cfg *cfg = NULL;
    pair *p;

    errno = 0;
    v = strtoul(arg, &end, 10);
    if (*arg < '0' || *arg > '9' || *end != '\0' || errno != 0 || v > 1000000000ul) {
        snprintf(reply, cap, "err slow wants BYTES_PER_SEC (0 = off)");
        return -1;
    }
    if (v > 0) {
        /* Ticks of 100 ms keep the flow smooth; the burst is one tick's worth. */
        struct timeval tick = {0, 100000};
        size_t per_tick = v / 10 > 0 ? v / 10 : 1;
        cfg = ev_token_bucket_cfg_new(per_tick, per_tick, EV_RATE_LIMIT_MAX, EV_RATE_LIMIT_MAX,
                                      &tick);
        if (cfg == NULL) {
            snprintf(reply, cap, "err out of memory");
            return -1;
        }
    }
    r->bucket = cfg;
    r->slow = v;
    for (p = r->pairs; p != NULL; p = p->next)
        pair_apply_slow(r, p);
    /* Dead pairs still point at the old bucket until the reaper runs. */
    for (p = r->dead_pairs; p != NULL; p = p->next)
        pair_apply_slow(r, p);
    if (old != NULL)
        ev_token_bucket_cfg_free(old);
    snprintf(reply, cap, "ok slow %lu", v);
    return 0;
}

void relay_get_stats(const relay *r, relay_stats *out)
{
    *out = r->st;
}

int relay_command(relay *r, const char *line, char *reply, size_t cap)
{
    char cmd[32];
    char arg[RELAY_ADDR_MAX];
    int n;

    arg[0] = '\0';
    cmd[0] = '\0';
    n = sscanf(line, "%31s %127s", cmd, arg);
    if (n < 1) {
        snprintf(reply, cap, "err empty command");
        return -1;
    }
    if (strcmp(cmd, "cut") == 0 && n == 1) {
        unsigned long k = 0;
        while (r->pairs != NULL) {
            pair_close(r->pairs);
            k++;
        }
        r->st.cut += k;
        snprintf(reply, cap, "ok cut %lu", k);
        return 0;
    }
    if ((strcmp(cmd, "refuse") == 0 || strcmp(cmd, "stall") == 0) && n == 2) {
        bool v;
        if (on_off(arg, &v) != 0) {
            snprintf(reply, cap, "err %s wants on|off", cmd);
            return -1;
        }
        if (cmd[0] == 'r') {
            r->refuse = v;
        } else {
            pair *p, *next;
            r->stall = v;
            for (p = r->pairs; p != NULL; p = next) {
                next = p->next; /* pair_update may close nothing, but be safe */
                pair_update(p);
            }
        }
        snprintf(reply, cap, "ok %s %s", cmd, arg);
        return 0;
    }
    if (strcmp(cmd, "slow") == 0 && n == 2)
        return set_slow(r, arg, reply, cap);
    if (strcmp(cmd, "garble") == 0 && n == 1) {
        r->garble_next = true;
        snprintf(reply, cap, "ok garble");
        return 0;
    }
    if (strcmp(cmd, "upstream") == 0 && n == 2) {
        struct sockaddr_storage ss;
        int len;
        if (parse_addr(arg, &ss, &len) != 0) {
            snprintf(reply, cap, "err bad address '%s' (want HOST:PORT)", arg);
            return -1;
        }
        r->up_ss = ss;
        r->up_len = len;
        format_addr((struct sockaddr *)&ss, r->up_addr, sizeof r->up_addr);
        snprintf(reply, cap, "ok upstream %s", r->up_addr);
        return 0;
    }
    if (strcmp(cmd, "stats") == 0 && n == 1) {
        const relay_stats *s = &r->st;
        snprintf(reply, cap,
                 "ok accepted=%llu active=%llu refused=%llu connect_failed=%llu cut=%llu "
                 "bytes_up=%llu bytes_down=%llu garbled=%llu paused=%llu stall=%s refuse=%s "
                 "slow=%lu garble=%s upstream=%s",
                 (unsigned long long)s->accepted, (unsigned long long)s->active,
                 (unsigned long long)s->refused, (unsigned long long)s->connect_failed,
                 (unsigned long long)s->cut, (unsigned long long)s->bytes_up,
                 (unsigned long long)s->bytes_down, (unsigned long long)s->garbled,
                 (unsigned long long)s->paused, r->stall ? "on" : "off", r->refuse ? "on" : "off",
                 r->slow, r->garble_next ? "pending" : "off", r->up_addr);
        return 0;
    }
    if (strcmp(cmd, "help") == 0) {
        snprintf(reply, cap,
                 "ok cut | refuse on|off | stall on|off | slow BYTES_PER_SEC | garble "
                 "| upstream HOST:PORT | stats");
        return 0;
    }
    snprintf(reply, cap, "err unknown command '%.40s' (try help)", line);
    return -1;
}

/* ---- lifecycle ------------------------------------------------------------ */

static struct evconnlistener *listen_on(relay *r, const char *addr, evconnlistener_cb cb,
                                        char *bound, size_t bcap, char *err, size_t errcap)
{
    struct sockaddr_storage ss;
    socklen_t slen = sizeof ss;
    int len;
    struct evconnlistener *l;

    if (parse_addr(addr, &ss, &len) != 0) {
        snprintf(err, errcap, "bad listen address '%s' (want HOST:PORT)", addr);
        return NULL;
    }
    l = evconnlistener_new_bind(r->base, cb, r,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                128, (struct sockaddr *)&ss, len);
    if (l == NULL) {
        snprintf(err, errcap, "cannot listen on %s: %s", addr, strerror(errno));
        return NULL;
    }
    if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &slen) != 0) {
        snprintf(err, errcap, "getsockname: %s", strerror(errno));
        evconnlistener_free(l);
        return NULL;
    }
    format_addr((struct sockaddr *)&ss, bound, bcap);
    return l;
}

int relay_new(relay **out, struct event_base *base, const relay_config *cfg, char *err,
              size_t errcap)
{
    relay *r;

    if (cfg->upstream == NULL) {
        snprintf(err, errcap, "an upstream address is required");
        return -1;
    }
    r = calloc(1, sizeof *r);
    if (r == NULL) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    r->base = base;
    r->cap = cfg->buffer_cap > 0 ? cfg->buffer_cap : RELAY_DEFAULT_CAP;
    if (parse_addr(cfg->upstream, &r->up_ss, &r->up_len) != 0) {
        snprintf(err, errcap, "bad upstream address '%s' (want HOST:PORT)", cfg->upstream);
        free(r);
        return -1;
    }
    format_addr((struct sockaddr *)&r->up_ss, r->up_addr, sizeof r->up_addr);
    r->reaper = event_new(base, -1, 0, reaper_cb, r);
    if (r->reaper == NULL) {
        snprintf(err, errcap, "out of memory");
        free(r);
        return -1;
    }
    r->lst = listen_on(r, cfg->listen != NULL ? cfg->listen : "127.0.0.1:0", accept_cb, r->addr,
                       sizeof r->addr, err, errcap);
    if (r->lst == NULL) {
        relay_free(r);
        return -1;
    }
    if (cfg->control != NULL) {
        r->ctl_lst =
            listen_on(r, cfg->control, ctl_accept_cb, r->ctl_addr, sizeof r->ctl_addr, err, errcap);
        if (r->ctl_lst == NULL) {
            relay_free(r);
            return -1;
        }
    }
    *out = r;
    return 0;
}

void relay_free(relay *r)
{
    if (r == NULL)
        return;
    while (r->pairs != NULL)
        pair_close(r->pairs);
    while (r->ctls != NULL)
        ctl_close(r->ctls);
    reaper_cb(-1, 0, r);
    if (r->lst != NULL)
        evconnlistener_free(r->lst);
    if (r->ctl_lst != NULL)
        evconnlistener_free(r->ctl_lst);
    if (r->reaper != NULL)
        event_free(r->reaper);
    if (r->bucket != NULL)
        ev_token_bucket_cfg_free(r->bucket);
    free(r);
}

const char *relay_address(const relay *r)
{
    return r->addr;
}

const char *relay_control_address(const relay *r)
{
    return r->ctl_addr;
}
