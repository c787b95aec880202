/* bare_mhd.c: the ceiling for bench/run. libmicrohttpd driven exactly as the
 * proxy drives it (daemon/http.c: MHD_USE_EPOLL + suspend/resume allowed,
 * external polling from one libevent loop on MHD's epoll fd, the same
 * options, queue on the handler's second call) answering every request with
 * a fixed JSON body. It must do nothing else, so that "proxy / bare" is the
 * cost of the proxy itself and not of HTTP.
 *   bare_mhd [--listen 127.0.0.1:0]   prints "listening on HOST:PORT" */
#include <arpa/inet.h>
#include <event2/event.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* What the proxy answers to GET /v1/ping (the upstream's result, unchanged). */
static const char BODY[] = "{\"pong\":true}";

typedef struct bare {
    struct MHD_Daemon *d;
    struct MHD_Response *resp; /* shared, persistent: no per-request allocation */
    struct event *ev_io, *ev_timer;
} bare;

static void run_mhd(bare *b)
{
    MHD_run(b->d);
    MHD_UNSIGNED_LONG_LONG to;
    if (MHD_get_timeout(b->d, &to) == MHD_YES) {
        struct timeval tv = {(time_t)(to / 1000), (suseconds_t)((to % 1000) * 1000)};
        evtimer_add(b->ev_timer, &tv);
    } else {
        evtimer_del(b->ev_timer);
    }
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run_mhd(arg);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    bare *b = cls;
    /* Like the proxy: never queue on the first call (MHD would answer
     * Connection: close to a request with a body); drop any body. */
    if (*con_cls == NULL) {
        *con_cls = b;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    return MHD_queue_response(conn, MHD_HTTP_OK, b->resp);
}

static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

static int listen_on(const char *spec, char *bound, size_t cap)
{
    char host[64] = "127.0.0.1";
    int port = 0;
    const char *colon = strrchr(spec, ':');
    if (colon != NULL && (size_t)(colon - spec) < sizeof host) {
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
        port = atoi(colon + 1);
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 1024) != 0)
        return -1;
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    snprintf(bound, cap, "%s:%u", host, (unsigned)ntohs(sa.sin_port));
    return fd;
}

int main(int argc, char **argv)
{
    const char *listen_spec = "127.0.0.1:0";
    for (int i = 1; i + 1 < argc; i += 2)
        if (strcmp(argv[i], "--listen") == 0)
            listen_spec = argv[i + 1];
    char bound[96];
    int fd = listen_on(listen_spec, bound, sizeof bound);
    if (fd < 0) {
        fprintf(stderr, "bare_mhd: cannot listen on %s\n", listen_spec);
        return 1;
    }
    bare b = {0};
    b.resp = MHD_create_response_from_buffer(sizeof BODY - 1, (void *)(uintptr_t)BODY,
                                             MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(b.resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    /* The proxy's defaults: max_connections 16384, connection_memory_bytes
     * 16384, idle_timeout_s 60. */
    b.d = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL,
                           NULL, on_access, &b, MHD_OPTION_LISTEN_SOCKET, fd,
                           MHD_OPTION_CONNECTION_LIMIT, 16384u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                           (size_t)16384, MHD_OPTION_CONNECTION_TIMEOUT, 60u,
                           MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL, MHD_OPTION_END);
    if (b.d == NULL)
        return 1;
    struct event_base *base = event_base_new();
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(b.d, MHD_DAEMON_INFO_EPOLL_FD);
    b.ev_io = event_new(base, info->epoll_fd, EV_READ | EV_PERSIST, on_event, &b);
    b.ev_timer = evtimer_new(base, on_event, &b);
    struct event *sig_term = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *sig_int = evsignal_new(base, SIGINT, on_signal, base);
    event_add(b.ev_io, NULL);
    event_add(sig_term, NULL);
    event_add(sig_int, NULL);
    run_mhd(&b);
    printf("listening on %s\n", bound);
    fflush(stdout);
    event_base_dispatch(base);
    event_free(sig_term);
    event_free(sig_int);
    event_free(b.ev_io);
    event_free(b.ev_timer);
    MHD_stop_daemon(b.d);
    MHD_destroy_response(b.resp);
    event_base_free(base);
    return 0;
}
