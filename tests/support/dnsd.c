/* dnsd.c: the test DNS server (see dnsd.h). One thread, one UDP socket,
 * state behind a mutex; only the parts of RFC 1035 a stub resolver uses. */
#include "dnsd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DNSD_MAX_IPS  8
#define DNSD_MAX_HELD 32
#define DNSD_PKT      512

typedef struct held {
    uint8_t q[DNSD_PKT];
    size_t len;
    struct sockaddr_in from;
} held;

struct dnsd {
    int fd;
    pthread_t thread;
    pthread_mutex_t mu;
    bool stop;
    bool hold;
    int rcode;
    struct in_addr ips[DNSD_MAX_IPS];
    unsigned nips;
    unsigned queries;
    held held[DNSD_MAX_HELD];
    unsigned nheld;
};

/* The question's end (offset past QTYPE/QCLASS) and QTYPE; 0 if malformed. */
static size_t question_end(const uint8_t *q, size_t len, unsigned *qtype)
{
    size_t o = 12;
    while (o < len && q[o] != 0) {
        if (q[o] & 0xC0)
            return 0; /* no compression in a question we accept */
        o += 1u + q[o];
    }
    if (o + 5 > len)
        return 0;
    *qtype = (unsigned)(q[o + 1] << 8 | q[o + 2]);
    return o + 5;
}

/* Answer one query with the current settings (d->mu held). */
static void answer(dnsd *d, const uint8_t *q, size_t len, const struct sockaddr_in *to)
{
    unsigned qtype = 0;
    size_t qend = len >= 12 ? question_end(q, len, &qtype) : 0;
    if (qend == 0)
        return;
    uint8_t r[DNSD_PKT];
    memcpy(r, q, qend);
    r[2] = 0x80 | (q[2] & 0x01);                /* QR, opcode 0, RD copied */
    r[3] = (uint8_t)(0x80 | (d->rcode & 0x0F)); /* RA, rcode */
    unsigned an = (d->rcode == 0 && qtype == 1) ? d->nips : 0;
    r[4] = 0, r[5] = 1;              /* one question */
    r[6] = 0, r[7] = (uint8_t)an;    /* answers */
    r[8] = r[9] = r[10] = r[11] = 0; /* no authority, no additional */
    size_t o = qend;
    for (unsigned i = 0; i < an; i++) {
        const uint8_t rr[] = {0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4};
        memcpy(r + o, rr, sizeof rr);
        o += sizeof rr;
        memcpy(r + o, &d->ips[i], 4);
        o += 4;
    }
    sendto(d->fd, r, o, 0, (const struct sockaddr *)to, sizeof *to);
}

static void *run(void *arg)
{
    dnsd *d = arg;
    for (;;) {
        struct pollfd p = {d->fd, POLLIN, 0};
        int n = poll(&p, 1, 20);
        pthread_mutex_lock(&d->mu);
        if (d->stop) {
            pthread_mutex_unlock(&d->mu);
            return NULL;
        }
        if (!d->hold) {
            for (unsigned i = 0; i < d->nheld; i++)
                answer(d, d->held[i].q, d->held[i].len, &d->held[i].from);
            d->nheld = 0;
        }
        pthread_mutex_unlock(&d->mu);
        if (n <= 0)
            continue;
        uint8_t q[DNSD_PKT];
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t len = recvfrom(d->fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
        if (len < 12)
            continue;
        unsigned qtype = 0;
        if (question_end(q, (size_t)len, &qtype) == 0)
            continue;
        pthread_mutex_lock(&d->mu);
        if (qtype == 1)
            d->queries++;
        if (d->hold && d->nheld < DNSD_MAX_HELD) {
            held *h = &d->held[d->nheld++];
            memcpy(h->q, q, (size_t)len);
            h->len = (size_t)len;
            h->from = from;
        } else if (!d->hold) {
            answer(d, q, (size_t)len, &from);
        }
        pthread_mutex_unlock(&d->mu);
    }
}

int dnsd_start(dnsd **out, char *addr, size_t cap)
{
    dnsd *d = calloc(1, sizeof *d);
    if (!d)
        return -1;
    d->fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sin;
    if (d->fd < 0 || bind(d->fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
        getsockname(d->fd, (struct sockaddr *)&sin, &sl) != 0) {
        if (d->fd >= 0)
            close(d->fd);
        free(d);
        return -1;
    }
    snprintf(addr, cap, "127.0.0.1:%u", ntohs(sin.sin_port));
    pthread_mutex_init(&d->mu, NULL);
    if (pthread_create(&d->thread, NULL, run, d) != 0) {
        close(d->fd);
        pthread_mutex_destroy(&d->mu);
        free(d);
        return -1;
    }
    *out = d;
    return 0;
}

void dnsd_stop(dnsd *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->stop = true;
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    close(d->fd);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

void dnsd_answer(dnsd *d, const char *ipv4_list)
{
    pthread_mutex_lock(&d->mu);
    d->rcode = 0;
    d->nips = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", ipv4_list);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t && d->nips < DNSD_MAX_IPS;
         t = strtok_r(NULL, ",", &save))
        if (inet_pton(AF_INET, t, &d->ips[d->nips]) == 1)
            d->nips++;
    pthread_mutex_unlock(&d->mu);
}

void dnsd_fail(dnsd *d, int rcode)
{
    pthread_mutex_lock(&d->mu);
    d->rcode = rcode;
    d->nips = 0;
    pthread_mutex_unlock(&d->mu);
}

void dnsd_hold(dnsd *d, bool hold)
{
    pthread_mutex_lock(&d->mu);
    d->hold = hold;
    pthread_mutex_unlock(&d->mu);
}

unsigned dnsd_queries(dnsd *d)
{
    pthread_mutex_lock(&d->mu);
    unsigned n = d->queries;
    pthread_mutex_unlock(&d->mu);
    return n;
}

unsigned dnsd_waiting(dnsd *d)
{
    pthread_mutex_lock(&d->mu);
    unsigned n = d->nheld;
    pthread_mutex_unlock(&d->mu);
    return n;
}
