/* control.c: the control channel's sockets and line protocol; each line goes
 * to server_control(), this file never changes fault knobs itself. Lines and
 * unread replies are capped; going over closes that control connection. */
#include "control.h"

#include "addr.h"
#include "logmsg.h"
#include "server.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CONTROL_MAX_LINE 1024u
#define CONTROL_MAX_OUT  (64u * 1024u)

typedef struct ctlconn {
    control *ctl;
    struct bufferevent *bev;
    bool dead;
    struct ctlconn *next;
} ctlconn;

struct control {
    struct event_base *base;
    server *srv;
    struct evconnlistener *lst;
    struct event *reaper; /* frees dead control connections outside their callbacks */
    ctlconn *conns;
    char addr[120];
    char unix_path[108]; /* unlinked on free, when listening on a unix socket */
};

static void ctl_kill(ctlconn *k)
{
    if (k->dead)
        return;
    k->dead = true;
    bufferevent_disable(k->bev, EV_READ | EV_WRITE);
    bufferevent_setcb(k->bev, NULL, NULL, NULL, NULL);
    event_active(k->ctl->reaper, 0, 0);
}

static void reaper_cb(evutil_socket_t fd, short what, void *arg)
{
    control *ctl = arg;
    ctlconn **pp = &ctl->conns;

    (void)fd;
    (void)what;
    while (*pp != NULL) {
        ctlconn *k = *pp;
        if (k->dead) {
            *pp = k->next;
            bufferevent_free(k->bev);
            free(k);
        } else {
            pp = &k->next;
        }
    }
}

static void ctl_read_cb(struct bufferevent *bev, void *arg)
{
    ctlconn *k = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer *out = bufferevent_get_output(bev);
    char *line;
    size_t n;

    while (!k->dead && (line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF)) != NULL) {
        char reply[512];
        if (n > CONTROL_MAX_LINE)
            snprintf(reply, sizeof reply, "err line too long");
        else
            server_control(k->ctl->srv, line, reply, sizeof reply);
        free(line);
        evbuffer_add_printf(out, "%s\n", reply);
    }
    if (!k->dead && evbuffer_get_length(in) > CONTROL_MAX_LINE) {
        logmsg(LOGMSG_WARN, "control: line over %u bytes, closing", CONTROL_MAX_LINE);
        ctl_kill(k);
    } else if (!k->dead && evbuffer_get_length(out) > CONTROL_MAX_OUT) {
        /* A control client that sends commands but never reads the replies. */
        logmsg(LOGMSG_WARN, "control: %u bytes of unread replies, closing", CONTROL_MAX_OUT);
        ctl_kill(k);
    }
}

static void ctl_event_cb(struct bufferevent *bev, short events, void *arg)
{
    (void)bev;
    if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        ctl_kill(arg);
}

static void ctl_accept_cb(struct evconnlistener *lst, evutil_socket_t fd, struct sockaddr *sa,
                          int salen, void *arg)
{
    control *ctl = arg;
    ctlconn *k = calloc(1, sizeof *k);

    (void)lst;
    (void)sa;
    (void)salen;
    if (k == NULL ||
        (k->bev = bufferevent_socket_new(ctl->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
        logmsg(LOGMSG_ERROR, "control: out of memory, dropping a control connection");
        free(k);
        evutil_closesocket(fd);
        return;
    }
    k->ctl = ctl;
    k->next = ctl->conns;
    ctl->conns = k;
    bufferevent_setcb(k->bev, ctl_read_cb, NULL, ctl_event_cb, k);
    bufferevent_enable(k->bev, EV_READ | EV_WRITE);
}

int control_new(control **out, struct event_base *base, server *srv, const char *addr, char *err,
                size_t errcap)
{
    struct sockaddr_storage ss;
    struct sockaddr_storage bound;
    socklen_t sslen = 0;
    socklen_t blen = (socklen_t)sizeof bound;
    control *ctl;

    if (addr_parse(addr, &ss, &sslen, err, errcap) != 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "--control %s", err);
        snprintf(err, errcap, "%s", msg);
        return SERVER_ERR_CONFIG;
    }
    ctl = calloc(1, sizeof *ctl);
    if (ctl == NULL) {
        snprintf(err, errcap, "out of memory");
        return SERVER_ERR_IO;
    }
    ctl->base = base;
    ctl->srv = srv;
    if (ss.ss_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)&ss;
        size_t plen = strnlen(un->sun_path, sizeof ctl->unix_path - 1);
        memcpy(ctl->unix_path, un->sun_path, plen);
        ctl->unix_path[plen] = '\0';
        unlink(ctl->unix_path); /* a stale socket from a killed run */
    }
    ctl->reaper = event_new(base, -1, 0, reaper_cb, ctl);
    ctl->lst = evconnlistener_new_bind(
        base, ctl_accept_cb, ctl, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        16, (struct sockaddr *)&ss, (int)sslen);
    if (ctl->reaper == NULL || ctl->lst == NULL) {
        snprintf(err, errcap, "cannot listen on --control %s: %s", addr, strerror(errno));
        ctl->unix_path[0] = '\0';
        control_free(ctl);
        return SERVER_ERR_IO;
    }
    if (ss.ss_family == AF_UNIX) {
        snprintf(ctl->addr, sizeof ctl->addr, "unix:%s", ctl->unix_path);
    } else if (getsockname(evconnlistener_get_fd(ctl->lst), (struct sockaddr *)&bound, &blen) ==
               0) {
        addr_format((struct sockaddr *)&bound, blen, ctl->addr, sizeof ctl->addr);
    }
    logmsg(LOGMSG_INFO, "control on %s", ctl->addr);
    *out = ctl;
    return 0;
}

void control_free(control *ctl)
{
    if (ctl == NULL)
        return;
    while (ctl->conns != NULL) {
        ctlconn *k = ctl->conns;
        ctl->conns = k->next;
        bufferevent_free(k->bev);
        free(k);
    }
    if (ctl->lst != NULL)
        evconnlistener_free(ctl->lst);
    if (ctl->reaper != NULL)
        event_free(ctl->reaper);
    if (ctl->unix_path[0] != '\0')
        unlink(ctl->unix_path);
    free(ctl);
}

const char *control_address(const control *ctl)
{
    return ctl->addr;
}
