/* rawnet.c: the raw RCPX test client of rawnet.h (blocking sockets, every
 * wait bounded by poll). Test support only; never linked into a product. */
#include "rawnet.h"

#include "hostport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rstmdb/error.h>

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rawnet_connect(rawnet *t, const char *addr, int rcvbuf)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1;

    memset(t, 0, sizeof *t);
    t->fd = -1;
    if (hostport_sockaddr(addr, &ss, &len) != 0)
        return -1;
    if (rstmdb_frame_decoder_new(&t->dec, 0) != RSTMDB_OK ||
        rstmdb_line_decoder_new(&t->ldec, 0) != RSTMDB_OK)
        return -1;
    t->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (t->fd < 0)
        return -1;
    if (rcvbuf > 0)
        setsockopt(t->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(t->fd, (struct sockaddr *)&ss, len) != 0) {
        close(t->fd);
        t->fd = -1;
        return -1;
    }
    return 0;
}

int rawnet_tls(rawnet *t, SSL_CTX *ctx)
{
    struct timeval tv = {10, 0};

    /* Bound the blocking handshake. */
    setsockopt(t->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    t->ssl = SSL_new(ctx);
    if (t->ssl == NULL)
        return 0;
    SSL_set_fd(t->ssl, t->fd);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), "127.0.0.1");
    return SSL_connect(t->ssl) == 1 ? 1 : 0;
}

void rawnet_close(rawnet *t)
{
    if (t->ssl != NULL) {
        SSL_free(t->ssl);
        t->ssl = NULL;
    }
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    rstmdb_frame_decoder_free(t->dec);
    rstmdb_line_decoder_free(t->ldec);
    t->dec = NULL;
    t->ldec = NULL;
}

size_t rawnet_frame(uint8_t *out, uint16_t flags, const char *json)
{
    size_t len = strlen(json);
    if (rstmdb_frame_header(out, flags, json, len) != RSTMDB_OK)
        return 0;
    memcpy(out + RSTMDB_FRAME_HEADER_LEN, json, len);
    return RSTMDB_FRAME_HEADER_LEN + len;
}

int rawnet_send(rawnet *t, const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t off = 0;

    while (off < len) {
        ssize_t w;
        if (t->ssl != NULL) {
            int r = SSL_write(t->ssl, p + off, (int)(len - off));
            if (r <= 0)
                return -1;
            w = r;
        } else {
            w = send(t->fd, p + off, len - off, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return -1;
        }
        off += (size_t)w;
    }
    return 0;
}

int rawnet_req(rawnet *t, const char *json)
{
    size_t len = strlen(json);
    uint8_t *buf = malloc(RSTMDB_FRAME_HEADER_LEN + len);
    int rc = -1;

    if (buf != NULL && rawnet_frame(buf, RSTMDB_FLAG_CRC_PRESENT, json) != 0)
        rc = rawnet_send(t, buf, RSTMDB_FRAME_HEADER_LEN + len);
    free(buf);
    return rc;
}

/* Read some bytes: >0 count, 0 EOF (or TLS failure), -1 timeout. */
static ssize_t read_some(rawnet *t, uint8_t *out, size_t cap, long long deadline)
{
    for (;;) {
        struct pollfd pfd = {t->fd, POLLIN, 0};
        long long left = deadline - mono_ms();
        ssize_t r;

        if (t->ssl == NULL || SSL_pending(t->ssl) == 0) {
            /* A zero timeout still polls once: "whatever is there now". */
            r = poll(&pfd, 1, left > 0 ? (int)left : 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r == 0)
                return -1;
        }
        if (t->ssl != NULL) {
            int n = SSL_read(t->ssl, out, (int)cap);
            if (n > 0)
                return n;
            if (SSL_get_error(t->ssl, n) == SSL_ERROR_WANT_READ)
                continue;
            return 0;
        }
        r = recv(t->fd, out, cap, 0);
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 ? 0 : r;
    }
}

size_t rawnet_read_exact(rawnet *t, uint8_t *out, size_t len, int timeout_ms)
{
    long long deadline = mono_ms() + timeout_ms;
    size_t got = 0;

    /* Bytes already buffered by rawnet_recv come first. */
    while (got < len && t->off < t->have)
        out[got++] = t->buf[t->off++];
    while (got < len) {
        ssize_t r = read_some(t, out + got, len - got, deadline);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

int rawnet_recv(rawnet *t, char **out, int timeout_ms)
{
    long long deadline = mono_ms() + timeout_ms;

    *out = NULL;
    for (;;) {
        if (t->off < t->have) {
            rstmdb_frame fr;
            size_t used = 0;
            int rc = t->jsonl ? rstmdb_line_decoder_feed(t->ldec, t->buf + t->off, t->have - t->off,
                                                         &used, &fr)
                              : rstmdb_frame_decoder_feed(t->dec, t->buf + t->off, t->have - t->off,
                                                          &used, &fr);
            if (rc < 0)
                return rc;
            if (rc == 1) {
                char *s = malloc(fr.payload_len + 1);
                if (s == NULL)
                    return RSTMDB_ERR_NOMEM;
                memcpy(s, fr.payload, fr.payload_len);
                s[fr.payload_len] = '\0';
                t->off += used;
                *out = s;
                return 1;
            }
            t->off += used;
            continue;
        }
        t->off = t->have = 0;
        {
            ssize_t r = read_some(t, t->buf, sizeof t->buf, deadline);
            if (r < 0)
                return RAWNET_TIMEOUT;
            if (r == 0)
                return 0;
            t->have = (size_t)r;
        }
    }
}

int rawnet_control(const char *ctl_addr, const char *cmd, char *reply, size_t cap)
{
    rawnet t;
    char line[1024];
    size_t n = 0;
    long long deadline = mono_ms() + 5000;
    int rc = -1;

    if (rawnet_connect(&t, ctl_addr, 0) != 0) {
        rawnet_close(&t);
        return -1;
    }
    snprintf(line, sizeof line, "%s\n", cmd);
    if (rawnet_send(&t, line, strlen(line)) != 0)
        goto out;
    while (n + 1 < sizeof line) {
        uint8_t ch;
        if (read_some(&t, &ch, 1, deadline) <= 0)
            goto out;
        if (ch == '\n')
            break;
        line[n++] = (char)ch;
    }
    line[n] = '\0';
    snprintf(reply, cap, "%s", line);
    rc = strncmp(line, "ok", 2) == 0 ? 0 : -1;
out:
    rawnet_close(&t);
    return rc;
}
