/* sse_floor.c: the floor of bench/run's SSE fan-out. The least a server can
 * do to put one event on N open streams: one epoll loop, one send() per
 * socket of the same bytes, nothing else. sse_fanout reads it exactly as it
 * reads the proxy, so the ratio proxy / floor is what the proxy costs above
 * what the kernel charges on this machine.
 *
 * A connection that starts with "FIRE <len>\n" is the trigger: the <len>
 * bytes that follow are sent to every stream. Any other connection is a
 * stream: after its request head it gets a 200 head and an opening comment.
 *   sse_floor --listen 127.0.0.1:0      prints "listening on HOST:PORT" */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_MAX 2048

typedef struct conn {
    int fd;
    unsigned short got; /* head bytes seen */
    char tail[4];       /* last bytes seen, to find the blank line */
    char *fire;         /* trigger: bytes to send */
    size_t fire_len, fire_have;
    int open; /* stream answered */
} conn;

static const char OPEN[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                           "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "1a\r\nretry: 3000\n: floor open\n\n\r\n";

static int *streams;
static size_t nstreams, capstreams;

static void broadcast(const char *b, size_t n)
{
    for (size_t i = 0; i < nstreams; i++)
        (void)!send(streams[i], b, n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void drop(int ep, conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->open)
        for (size_t i = 0; i < nstreams; i++)
            if (streams[i] == c->fd) {
                streams[i] = streams[--nstreams];
                break;
            }
    close(c->fd);
    free(c->fire);
    free(c);
}

static void on_readable(int ep, conn *c)
{
    char buf[4096];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            drop(ep, c);
            return;
        }
        size_t off = 0;
        if (c->fire == NULL && c->got == 0 && n > 5 && memcmp(buf, "FIRE ", 5) == 0) {
            char *nl = memchr(buf, '\n', (size_t)n);
            if (nl == NULL)
                return;
            c->fire_len = strtoul(buf + 5, NULL, 10);
            c->fire = malloc(c->fire_len + 1);
            off = (size_t)(nl + 1 - buf);
        }
        if (c->fire != NULL) {
            size_t k = (size_t)n - off;
            if (k > c->fire_len - c->fire_have)
                k = c->fire_len - c->fire_have;
            memcpy(c->fire + c->fire_have, buf + off, k);
            c->fire_have += k;
            if (c->fire_have == c->fire_len) {
                broadcast(c->fire, c->fire_len);
                (void)!send(c->fd, "ok\n", 3, MSG_NOSIGNAL);
                c->fire_have = 0;
                c->fire_len = 0;
                free(c->fire);
                c->fire = NULL;
                c->got = 1; /* one trigger per connection */
            }
            continue;
        }
        if (c->open)
            continue;
        for (ssize_t i = 0; i < n; i++) {
            memmove(c->tail, c->tail + 1, 3);
            c->tail[3] = buf[i];
            if (memcmp(c->tail, "\r\n\r\n", 4) == 0) {
                c->open = 1;
                (void)!send(c->fd, OPEN, sizeof OPEN - 1, MSG_NOSIGNAL);
                if (nstreams == capstreams) {
                    capstreams = capstreams ? capstreams * 2 : 1024;
                    streams = realloc(streams, capstreams * sizeof *streams);
                }
                streams[nstreams++] = c->fd;
                break;
            }
        }
        if (!c->open && (c->got = (unsigned short)(c->got + n)) > HEAD_MAX) {
            drop(ep, c);
            return;
        }
    }
}

int main(int argc, char **argv)
{
    const char *listen_addr = "127.0.0.1:0";
    for (int i = 1; i + 1 < argc; i += 2)
        if (strcmp(argv[i], "--listen") == 0)
            listen_addr = argv[i + 1];
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    char host[64];
    const char *colon = strrchr(listen_addr, ':');
    if (colon == NULL || (size_t)(colon - listen_addr) >= sizeof host)
        return 2;
    memcpy(host, listen_addr, (size_t)(colon - listen_addr));
    host[colon - listen_addr] = '\0';
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)atoi(colon + 1));
    inet_pton(AF_INET, host, &sin.sin_addr);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t sl = sizeof sin;
    if (bind(lfd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(lfd, 4096) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sin, &sl) != 0) {
        perror("sse_floor: listen");
        return 1;
    }
    printf("listening on %s:%d\n", host, ntohs(sin.sin_port));
    fflush(stdout);
    int ep = epoll_create1(0);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
    struct epoll_event evs[512];
    for (;;) {
        int n = epoll_wait(ep, evs, 512, -1);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    conn *c = calloc(1, sizeof *c);
                    c->fd = fd;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            on_readable(ep, evs[i].data.ptr);
        }
    }
}
