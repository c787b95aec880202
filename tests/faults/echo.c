/* echo.c: the relay tests' threaded echo/upper/greet server and blocking
 * client helpers. Tests only: it must never outlive echo_stop. */
#include "echo.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct conn_arg {
    echo_server *e;
    int fd;
} conn_arg;

static void *conn_main(void *arg)
{
    conn_arg *ca = arg;
    echo_server *e = ca->e;
    int fd = ca->fd;
    char buf[16384];

    free(ca);
    if (e->mode == ECHO_GREET) {
        (void)send_all(fd, "bye\n", 4);
        shutdown(fd, SHUT_RDWR);
        return NULL;
    }
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (e->mode == ECHO_UPPER) {
            ssize_t i;
            for (i = 0; i < n; i++)
                buf[i] = (char)toupper((unsigned char)buf[i]);
        }
        if (send_all(fd, buf, (size_t)n) != 0)
            break;
    }
    shutdown(fd, SHUT_RDWR);
    return NULL;
}

static void *accept_main(void *arg)
{
    echo_server *e = arg;

    for (;;) {
        int fd = accept(e->lfd, NULL, NULL);
        conn_arg *ca;
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return NULL;
        }
        pthread_mutex_lock(&e->mu);
        if (e->stopping || e->n == ECHO_MAX_CONNS || (ca = malloc(sizeof *ca)) == NULL) {
            pthread_mutex_unlock(&e->mu);
            close(fd);
            continue;
        }
        ca->e = e;
        ca->fd = fd;
        e->fds[e->n] = fd;
        if (pthread_create(&e->threads[e->n], NULL, conn_main, ca) != 0) {
            free(ca);
            close(fd);
        } else {
            e->n++;
        }
        pthread_mutex_unlock(&e->mu);
    }
}

int echo_start(echo_server *e, echo_mode mode)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;

    memset(e, 0, sizeof *e);
    e->mode = mode;
    pthread_mutex_init(&e->mu, NULL);
    e->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (e->lfd < 0)
        return -1;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(e->lfd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(e->lfd, 64) != 0 ||
        getsockname(e->lfd, (struct sockaddr *)&sin, &len) != 0) {
        close(e->lfd);
        return -1;
    }
    snprintf(e->addr, sizeof e->addr, "127.0.0.1:%d", ntohs(sin.sin_port));
    if (pthread_create(&e->acceptor, NULL, accept_main, e) != 0) {
        close(e->lfd);
        return -1;
    }
    return 0;
}

void echo_stop(echo_server *e)
{
    size_t i;

    pthread_mutex_lock(&e->mu);
    e->stopping = true;
    pthread_mutex_unlock(&e->mu);
    shutdown(e->lfd, SHUT_RDWR);
    pthread_join(e->acceptor, NULL);
    close(e->lfd);
    for (i = 0; i < e->n; i++)
        shutdown(e->fds[i], SHUT_RDWR);
    for (i = 0; i < e->n; i++) {
        pthread_join(e->threads[i], NULL);
        close(e->fds[i]);
    }
    pthread_mutex_destroy(&e->mu);
}

int tcp_connect(const char *addr)
{
    struct sockaddr_in sin;
    char host[64];
    const char *colon = strrchr(addr, ':');
    int fd;

    if (colon == NULL || (size_t)(colon - addr) >= sizeof host)
        return -1;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
        return -1;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int readable(int fd, int timeout_ms)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    int r;

    do {
        r = poll(&pfd, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    return r > 0;
}

int recv_exact(int fd, void *buf, size_t len, int timeout_ms)
{
    char *p = buf;
    long long deadline = mono_ms() + timeout_ms;

    while (len > 0) {
        long long left = deadline - mono_ms();
        ssize_t n;
        if (left <= 0 || !readable(fd, (int)left))
            return -1;
        n = recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int wait_eof(int fd, int timeout_ms)
{
    char c;
    ssize_t n;

    if (!readable(fd, timeout_ms))
        return 0;
    n = recv(fd, &c, 1, MSG_DONTWAIT);
    return n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE));
}
