/* echo.h: a tiny threaded TCP server for the relay's own tests: echoes,
 * echoes upper-cased, or greets and closes. Tests only; blocking sockets,
 * one thread per connection, every thread joined by echo_stop. */
#ifndef FAULTS_ECHO_H
#define FAULTS_ECHO_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum echo_mode {
    ECHO_PLAIN, /* send back every byte as received */
    ECHO_UPPER, /* send back every byte, ASCII letters upper-cased */
    ECHO_GREET  /* write "bye\n" at once, then close */
} echo_mode;

#define ECHO_MAX_CONNS 64

typedef struct echo_server {
    int lfd;
    echo_mode mode;
    char addr[64]; /* "127.0.0.1:PORT" */
    pthread_t acceptor;
    pthread_mutex_t mu;
    int fds[ECHO_MAX_CONNS];
    pthread_t threads[ECHO_MAX_CONNS];
    size_t n;
    bool stopping;
} echo_server;

/* Listen on 127.0.0.1:0 and serve in threads. Returns 0 or -1. */
int echo_start(echo_server *e, echo_mode mode);
/* Close everything and join every thread. */
void echo_stop(echo_server *e);

/* Client helpers (blocking, bounded by timeouts). */
int tcp_connect(const char *addr);
int send_all(int fd, const void *buf, size_t len);
/* Read exactly `len` bytes within `timeout_ms`; returns 0, or -1 (EOF, error, timeout). */
int recv_exact(int fd, void *buf, size_t len, int timeout_ms);
/* 1 when the peer closed (EOF or reset) within `timeout_ms`, 0 when data
 * arrived instead or nothing happened. */
int wait_eof(int fd, int timeout_ms);
/* 1 when bytes are readable within `timeout_ms`, 0 otherwise. */
int readable(int fd, int timeout_ms);
long long mono_ms(void);

#endif
