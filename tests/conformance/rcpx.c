/* rcpx.c: blocking raw RCPX client for the conformance suite (see rcpx.h).
 * Owns one socket and one input buffer; it parses what the server sends and
 * checks it strictly, but never interprets the JSON (the tests do that).
 */
#include "rcpx.h"

#include <rstmdb/frame.h>

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The largest message we accept from a server: a 16 MiB payload plus header. */
#define RCPX_MAX_IN (RSTMDB_FRAME_MAX_PAYLOAD + 64u * 1024u)

struct rcpx {
    int fd;
    bool jsonl;
    bool eof;    /* the peer closed (FIN or RST) */
    uint8_t *in; /* bytes received and not yet consumed */
    size_t in_len;
    size_t in_cap;
    char err[256];
};

static void rcpx_seterr(rcpx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rcpx_seterr(rcpx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
}

static int64_t rcpx_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rcpx_connect(rcpx **out, const char *addr, int timeout_ms)
{
    char host[128];
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || (size_t)(colon - addr) >= sizeof host)
        return -1;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (r != 0 && errno == EINPROGRESS) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (poll(&pfd, 1, timeout_ms) == 1 &&
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
                r = 0;
        }
        if (r == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    rcpx *c = calloc(1, sizeof *c);
    if (c == NULL) {
        close(fd);
        return -1;
    }
    c->fd = fd;
    *out = c;
    return 0;
}

void rcpx_free(rcpx *c)
{
    if (c == NULL)
        return;
    close(c->fd);
    free(c->in);
    free(c);
}

int rcpx_send_raw(rcpx *c, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    int64_t deadline = rcpx_now_ms() + 30000; /* a 16 MiB frame to a sanitized server */
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN)) {
            int64_t left = deadline - rcpx_now_ms();
            struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
            if (left <= 0 || poll(&pfd, 1, (int)left) < 0) {
                rcpx_seterr(c, "send: timed out");
                return -1;
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        rcpx_seterr(c, "send: %s", strerror(errno));
        return -1;
    }
    return 0;
}

size_t rcpx_frame_build(uint8_t *out, size_t cap, const char magic[4], uint16_t version,
                        uint16_t flags, uint16_t hlen, const void *payload, uint32_t plen,
                        bool crc_auto, uint32_t crc)
{
    size_t total = 18u + hlen + plen;
    if (total > cap)
        return 0;
    if (crc_auto)
        crc = rstmdb_crc32c(payload, plen);
    memcpy(out, magic, 4);
    out[4] = (uint8_t)(version >> 8);
    out[5] = (uint8_t)version;
    out[6] = (uint8_t)(flags >> 8);
    out[7] = (uint8_t)flags;
    out[8] = (uint8_t)(hlen >> 8);
    out[9] = (uint8_t)hlen;
    out[10] = (uint8_t)(plen >> 24);
    out[11] = (uint8_t)(plen >> 16);
    out[12] = (uint8_t)(plen >> 8);
    out[13] = (uint8_t)plen;
    out[14] = (uint8_t)(crc >> 24);
    out[15] = (uint8_t)(crc >> 16);
    out[16] = (uint8_t)(crc >> 8);
    out[17] = (uint8_t)crc;
    memset(out + 18, 0xEE, hlen);
    if (plen > 0)
        memcpy(out + 18 + hlen, payload, plen);
    return total;
}

int rcpx_send_json(rcpx *c, const char *json)
{
    size_t len = strlen(json);
    uint8_t hdr[RSTMDB_FRAME_HEADER_LEN];
    /* The library encoder, so the suite also notices if it drifts from the
     * sheet; test_framing checks its bytes against the worked example. */
    if (rstmdb_frame_header(hdr, RSTMDB_FLAG_CRC_PRESENT, json, len) != 0) {
        rcpx_seterr(c, "frame_header refused a %zu-byte payload", len);
        return -1;
    }
    if (rcpx_send_raw(c, hdr, sizeof hdr) != 0)
        return -1;
    return rcpx_send_raw(c, json, len);
}

void rcpx_set_jsonl(rcpx *c, bool on)
{
    c->jsonl = on;
}

void rcpx_shutdown_write(rcpx *c)
{
    shutdown(c->fd, SHUT_WR);
}

const char *rcpx_errstr(const rcpx *c)
{
    return c->err;
}

void rcpx_msg_clear(rcpx_msg *m)
{
    free(m->text);
    memset(m, 0, sizeof *m);
}

/* Receive more bytes into c->in, waiting at most until `deadline`.
 * Returns 1 (got bytes), 0 (timeout), -1 (EOF or reset: c->eof set), -2 (buffer cap). */
static int rcpx_fill(rcpx *c, int64_t deadline)
{
    if (c->eof)
        return -1;
    if (c->in_len == c->in_cap) {
        if (c->in_cap >= RCPX_MAX_IN)
            return -2;
        size_t ncap = c->in_cap ? c->in_cap * 2 : 65536;
        if (ncap > RCPX_MAX_IN)
            ncap = RCPX_MAX_IN;
        uint8_t *n = realloc(c->in, ncap);
        if (n == NULL)
            return -2;
        c->in = n;
        c->in_cap = ncap;
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            return 1;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            /* ECONNRESET counts as a close: a server that closes with our
             * unread bytes in its buffer makes the kernel send RST. */
            c->eof = true;
            return -1;
        }
        if (errno == EINTR)
            continue;
        int64_t left = deadline - rcpx_now_ms();
        if (left <= 0)
            return 0;
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)left);
        if (pr == 0)
            return 0;
        if (pr < 0 && errno != EINTR) {
            c->eof = true;
            return -1;
        }
    }
}

static void rcpx_consume(rcpx *c, size_t n)
{
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

/* A complete binary frame at the head of the buffer? 1 yes, 0 need more, -1 bad. */
static int rcpx_try_frame(rcpx *c, rcpx_msg *m)
{
    if (c->in_len < 18)
        return 0;
    const uint8_t *h = c->in;
    if (memcmp(h, "RCPX", 4) != 0) {
        rcpx_seterr(c, "server frame: bad magic %02x %02x %02x %02x", h[0], h[1], h[2], h[3]);
        return -1;
    }
    uint16_t ver = (uint16_t)(h[4] << 8 | h[5]);
    uint16_t flags = (uint16_t)(h[6] << 8 | h[7]);
    uint16_t hlen = (uint16_t)(h[8] << 8 | h[9]);
    uint32_t plen = (uint32_t)h[10] << 24 | (uint32_t)h[11] << 16 | (uint32_t)h[12] << 8 | h[13];
    uint32_t crc = (uint32_t)h[14] << 24 | (uint32_t)h[15] << 16 | (uint32_t)h[16] << 8 | h[17];
    if (ver != 1 || flags != RSTMDB_FLAG_CRC_PRESENT || hlen != 0 ||
        plen > RSTMDB_FRAME_MAX_PAYLOAD) {
        rcpx_seterr(c,
                    "server frame: version %u flags 0x%04x header_len %u payload_len %u "
                    "(want 1, 0x0001, 0, <= 16 MiB)",
                    ver, flags, hlen, plen);
        return -1;
    }
    if (c->in_len < 18u + plen)
        return 0;
    uint32_t want = rstmdb_crc32c(h + 18, plen);
    if (want != crc) {
        rcpx_seterr(c, "server frame: crc 0x%08x, payload's is 0x%08x", crc, want);
        return -1;
    }
    m->text = malloc((size_t)plen + 1);
    if (m->text == NULL) {
        rcpx_seterr(c, "out of memory");
        return -1;
    }
    memcpy(m->text, h + 18, plen);
    m->text[plen] = '\0';
    m->len = plen;
    memcpy(m->header, h, 18);
    m->flags = flags;
    m->is_line = false;
    rcpx_consume(c, 18u + plen);
    return 1;
}

static int rcpx_try_line(rcpx *c, rcpx_msg *m)
{
    uint8_t *nl = c->in_len > 0 ? memchr(c->in, '\n', c->in_len) : NULL;
    if (nl == NULL)
        return 0;
    size_t len = (size_t)(nl - c->in);
    m->text = malloc(len + 1);
    if (m->text == NULL) {
        rcpx_seterr(c, "out of memory");
        return -1;
    }
    memcpy(m->text, c->in, len);
    m->text[len] = '\0';
    m->len = len;
    memset(m->header, 0, sizeof m->header);
    m->flags = 0;
    m->is_line = true;
    rcpx_consume(c, len + 1);
    return 1;
}

rcpx_rc rcpx_read(rcpx *c, int timeout_ms, rcpx_msg *m)
{
    memset(m, 0, sizeof *m);
    int64_t deadline = rcpx_now_ms() + timeout_ms;
    for (;;) {
        int r = c->jsonl ? rcpx_try_line(c, m) : rcpx_try_frame(c, m);
        if (r == 1)
            return RCPX_OK;
        if (r < 0)
            return RCPX_BADFRAME;
        int f = rcpx_fill(c, deadline);
        if (f == 0) {
            rcpx_seterr(c, "timed out after %d ms (%zu bytes pending)", timeout_ms, c->in_len);
            return RCPX_TIMEOUT;
        }
        if (f == -1) {
            if (c->in_len == 0) {
                rcpx_seterr(c, "connection closed by the server");
                return RCPX_EOF;
            }
            rcpx_seterr(c, "connection closed mid-message (%zu bytes pending)", c->in_len);
            return RCPX_IOERR;
        }
        if (f == -2) {
            rcpx_seterr(c, "input buffer cap reached");
            return RCPX_IOERR;
        }
    }
}

bool rcpx_silent_close(rcpx *c, int timeout_ms, size_t *extra)
{
    int64_t deadline = rcpx_now_ms() + timeout_ms;
    size_t start = c->in_len;
    for (;;) {
        int f = rcpx_fill(c, deadline);
        if (f == 1)
            continue;
        if (extra != NULL)
            *extra = c->in_len - start;
        if (f == 0) {
            rcpx_seterr(c, "server did not close within %d ms", timeout_ms);
            return false;
        }
        if (f == -2 || c->in_len != start) {
            rcpx_seterr(c, "server sent %zu bytes before closing", c->in_len - start);
            return false;
        }
        return f == -1;
    }
}
