/* sse_fanout.c: bench/run's SSE meter. Opens N idle Server-Sent Events
 * streams (raw sockets on one epoll loop: 10,000 curl handles would cost more
 * than the proxy they measure), reads the proxy's VmRSS before and after
 * (RSS per stream) and its CPU for each half of the opening, then applies
 * events straight at the upstream with librstmdb and times, per stream,
 * from just before the APPLY_EVENT to the read that brings that event's
 * `data:` line. It must hold no more than a few dozen bytes per stream of
 * its own and never block on one stream.
 *   sse_fanout --addr PROXY --path /v1/watch -n 10000 --pid PROXY_PID \
 *              --upstream TESTD --params '{"instance_id":"b0","event":"tick"}' \
 *              [--record FILE]         keep the first event's bytes as received
 * The floor (bench/sse_floor) is read the same way; its events are fired by
 * sending it the recorded bytes:
 *   sse_fanout --addr FLOOR -n 10000 --pid FLOOR_PID --floor --sample FILE
 * --src-addrs K spreads the streams over 127.0.0.1 .. 127.0.0.K (each source
 * address has its own ephemeral port range: 100,000 streams need 4). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rstmdb/sync.h"

#define MAX_CONNECTING 256 /* handshakes in flight; the proxy's backlog is 1024 */
#define HEAD_CAP       1024

typedef enum st_state {
    ST_IDLE,       /* not yet connecting */
    ST_CONNECTING, /* connect() in progress */
    ST_HEAD,       /* request sent, reading the response head and the open */
    ST_OPEN,       /* stream open, counting events */
    ST_DEAD        /* failed or closed by the proxy */
} st_state;

typedef struct stream {
    int fd;
    st_state state;
    uint8_t match;    /* progress through "data: " across reads */
    uint32_t events;  /* data: lines seen */
    uint64_t t_recv;  /* when the event being timed arrived */
    uint16_t headlen; /* bytes of head seen (ST_HEAD) */
} stream;

typedef struct fan {
    struct sockaddr_in addr;
    const char *path;
    int ep;
    stream *s;
    unsigned n, opened, dead, connecting, next;
    char *req;
    size_t reqlen;
    char (*head)[64];   /* tail of the head per stream (ST_HEAD only) */
    unsigned src_addrs; /* > 0: bind stream i to 127.0.0.(1 + i % src_addrs) */
    char sample[4096];  /* the first event's bytes on stream 0 (--record) */
    size_t sample_len;
} fan;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long vmrss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = atol(line + 6);
    fclose(f);
    return kb;
}

/* utime+stime of a process in microseconds (/proc/PID/stat fields 14, 15). */
static double proc_cpu_us(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

static int parse_addr(const char *s, struct sockaddr_in *out)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof host)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)atoi(colon + 1));
    return inet_pton(AF_INET, host, &out->sin_addr) == 1 ? 0 : -1;
}

static void kill_stream(fan *f, stream *s)
{
    if (s->state == ST_CONNECTING || s->state == ST_HEAD)
        f->connecting--;
    if (s->fd >= 0) {
        epoll_ctl(f->ep, EPOLL_CTL_DEL, s->fd, NULL);
        close(s->fd);
    }
    s->fd = -1;
    s->state = ST_DEAD;
    f->dead++;
}

static void start_one(fan *f, stream *s)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        s->state = ST_DEAD;
        f->dead++;
        return;
    }
    s->fd = fd;
    s->state = ST_CONNECTING;
    f->connecting++;
    if (f->src_addrs > 0) {
        struct sockaddr_in src;
        memset(&src, 0, sizeof src);
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)((s - f->s) % f->src_addrs));
        if (bind(fd, (const struct sockaddr *)&src, sizeof src) != 0) {
            kill_stream(f, s);
            return;
        }
    }
    int r = connect(fd, (const struct sockaddr *)&f->addr, sizeof f->addr);
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = s};
    if ((r != 0 && errno != EINPROGRESS) || epoll_ctl(f->ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        kill_stream(f, s);
}

/* Count "data: " occurrences across reads without keeping the bytes. */
static unsigned count_data(stream *s, const char *p, size_t n)
{
    static const char pat[] = "data: ";
    unsigned hits = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == pat[s->match]) {
            if (++s->match == sizeof pat - 1) {
                hits++;
                s->match = 0;
            }
        } else {
            s->match = p[i] == pat[0] ? 1 : 0;
        }
    }
    return hits;
}

static void on_event(fan *f, stream *s, uint32_t evmask, uint64_t t)
{
    if (s->state == ST_CONNECTING) {
        if (!(evmask & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err != 0 || send(s->fd, f->req, f->reqlen, MSG_NOSIGNAL) != (ssize_t)f->reqlen) {
            kill_stream(f, s);
            return;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
        epoll_ctl(f->ep, EPOLL_CTL_MOD, s->fd, &ev);
        s->state = ST_HEAD;
        s->headlen = 0;
        return;
    }
    char buf[4096];
    for (;;) {
        ssize_t n = recv(s->fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            kill_stream(f, s);
            return;
        }
        if (s->state == ST_HEAD) {
            /* The stream is open once its head is 200 and the "retry:" line
             * of the opening block has arrived. Heads are small: only
             * their first bytes are kept to check the status. */
            char *h = f->head[s - f->s];
            size_t room = 63u - (size_t)s->headlen;
            size_t keep = (size_t)n < room ? (size_t)n : room;
            memcpy(h + s->headlen, buf, keep);
            s->headlen = (uint16_t)(s->headlen + keep);
            h[s->headlen] = '\0';
            if (s->headlen >= 12 && strncmp(h + 9, "200", 3) != 0) {
                fprintf(stderr, "sse_fanout: stream refused: %.40s\n", h);
                kill_stream(f, s);
                return;
            }
            if (memmem(buf, (size_t)n, "retry:", 6) != NULL) {
                s->state = ST_OPEN;
                f->connecting--;
                f->opened++;
            }
            continue;
        }
        unsigned hits = count_data(s, buf, (size_t)n);
        if (hits > 0 && s->t_recv == 0)
            s->t_recv = t;
        if (hits > 0 && s == f->s && f->sample_len == 0 && (size_t)n <= sizeof f->sample) {
            memcpy(f->sample, buf, (size_t)n);
            f->sample_len = (size_t)n;
        }
        s->events += hits;
    }
}

static void pump(fan *f, int timeout_ms)
{
    struct epoll_event evs[512];
    int n = epoll_wait(f->ep, evs, 512, timeout_ms);
    uint64_t t = now_ns();
    for (int i = 0; i < n; i++)
        on_event(f, evs[i].data.ptr, evs[i].events, t);
}

/* Descriptors for n streams (and the proxy, started by the same shell,
 * needs as many): the soft limit up to the hard one, the hard one up when
 * allowed (root). */
static void raise_nofile(unsigned n)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)n + 1000;
    if (rl.rlim_max < want) {
        struct rlimit up = {want, want};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            return;
    }
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

/* TCP sockets in use and their memory, from /proc/net/sockstat. */
static void sockstat(long *inuse, long *mem_kb)
{
    char line[256];
    FILE *fp = fopen("/proc/net/sockstat", "r");
    *inuse = *mem_kb = -1;
    if (fp == NULL)
        return;
    while (fgets(line, sizeof line, fp)) {
        long iu, orph, tw, alloc, mem;
        if (sscanf(line, "TCP: inuse %ld orphan %ld tw %ld alloc %ld mem %ld", &iu, &orph, &tw,
                   &alloc, &mem) == 5) {
            *inuse = iu;
            *mem_kb = mem * (sysconf(_SC_PAGESIZE) / 1024);
        }
    }
    fclose(fp);
}

/* Fire one event at the floor: "FIRE <len>\n" and the bytes; wait for "ok". */
static int fire_floor(const struct sockaddr_in *addr, const char *b, size_t n)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char hdr[32], ok[8];
    int hl = snprintf(hdr, sizeof hdr, "FIRE %zu\n", n);
    if (fd < 0 || connect(fd, (const struct sockaddr *)addr, sizeof *addr) != 0 ||
        send(fd, hdr, (size_t)hl, MSG_NOSIGNAL) != hl ||
        send(fd, b, n, MSG_NOSIGNAL) != (ssize_t)n || recv(fd, ok, sizeof ok, 0) <= 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *addr = NULL, *path = "/v1/watch", *upstream = NULL;
    const char *params = "{\"instance_id\":\"b0\",\"event\":\"tick\"}";
    unsigned n = 10000, nevents = 5;
    double hold = 0;
    int pid = 0;
    bool floor_mode = false;
    const char *record = NULL, *sample = NULL;
    unsigned src_addrs = 0;
    for (int i = 1; i < argc; i++)
        floor_mode |= strcmp(argv[i], "--floor") == 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--floor") == 0) {
            i--; /* a flag: no value */
            continue;
        }
        if (strcmp(a, "--addr") == 0)
            addr = v;
        else if (strcmp(a, "--path") == 0)
            path = v;
        else if (strcmp(a, "-n") == 0)
            n = (unsigned)atoi(v);
        else if (strcmp(a, "--pid") == 0)
            pid = atoi(v);
        else if (strcmp(a, "--upstream") == 0)
            upstream = v;
        else if (strcmp(a, "--params") == 0)
            params = v;
        else if (strcmp(a, "--events") == 0)
            nevents = (unsigned)atoi(v);
        else if (strcmp(a, "--hold") == 0)
            hold = atof(v);
        else if (strcmp(a, "--record") == 0)
            record = v;
        else if (strcmp(a, "--sample") == 0)
            sample = v;
        else if (strcmp(a, "--src-addrs") == 0)
            src_addrs = (unsigned)atoi(v);
    }
    fan f = {.path = path, .n = n};
    f.src_addrs = src_addrs;
    char fire[4096];
    size_t fire_len = 0;
    if (floor_mode && sample != NULL) {
        FILE *sf = fopen(sample, "rb");
        if (sf != NULL) {
            fire_len = fread(fire, 1, sizeof fire, sf);
            fclose(sf);
        }
    }
    if (addr == NULL || (upstream == NULL && !floor_mode) || (floor_mode && fire_len == 0) ||
        n == 0 || parse_addr(addr, &f.addr) != 0) {
        fprintf(stderr, "usage: sse_fanout --addr PROXY --upstream RSTMDB [--path P] [-n N]\n"
                        "                  [--pid PROXY_PID] [--params JSON] [--events E]\n"
                        "                  [--hold SECONDS] [--record FILE] [--src-addrs K]\n"
                        "       sse_fanout --addr FLOOR --floor --sample FILE [-n N] [--pid P]\n");
        return 2;
    }
    raise_nofile(n);
    char req[512];
    int rl = snprintf(req, sizeof req,
                      "GET %s HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n", path);
    f.req = req;
    f.reqlen = (size_t)rl;
    f.ep = epoll_create1(0);
    f.s = calloc(n, sizeof *f.s);
    f.head = calloc(n, sizeof *f.head);
    uint64_t *lat = calloc(n, sizeof *lat);
    uint64_t *all = calloc((size_t)n * (nevents ? nevents : 1), sizeof *all);
    if (f.ep < 0 || f.s == NULL || f.head == NULL || lat == NULL || all == NULL)
        return 1;
    for (unsigned i = 0; i < n; i++)
        f.s[i].fd = -1;

    long rss0 = pid ? vmrss_kb(pid) : -1, sk_inuse0, sk_mem0;
    sockstat(&sk_inuse0, &sk_mem0);
    double open_cpu0 = pid ? proc_cpu_us(pid) : 0, open_cpu_half = 0;
    uint64_t t_open = now_ns();
    uint64_t deadline = t_open + 300000000000ull;
    /* In two halves, the CPU of each measured: opening must stay linear. */
    for (unsigned half = 0; half < 2; half++) {
        unsigned upto = half == 0 ? n / 2 : n;
        while (f.opened + f.dead < upto && now_ns() < deadline) {
            while (f.next < upto && f.connecting < MAX_CONNECTING)
                start_one(&f, &f.s[f.next++]);
            pump(&f, 100);
        }
        if (half == 0)
            open_cpu_half = pid ? proc_cpu_us(pid) - open_cpu0 : 0;
    }
    double open_s = (double)(now_ns() - t_open) / 1e9;
    double open_cpu_s = pid ? (proc_cpu_us(pid) - open_cpu0) / 1e6 : 0;
    double open_h1_s = open_cpu_half / 1e6, open_h2_s = open_cpu_s - open_h1_s;
    fprintf(stderr, "sse_fanout: %u streams open in %.1f s\n", f.opened, open_s);
    free(f.head);
    f.head = NULL;
    /* Let the proxy settle (lazy allocations, freed handshake buffers). */
    uint64_t settle = now_ns() + 1000000000ull;
    while (now_ns() < settle)
        pump(&f, 100);
    long rss1 = pid ? vmrss_kb(pid) : -1, sk_inuse1, sk_mem1;
    sockstat(&sk_inuse1, &sk_mem1);

    rstmdb_sync *cli = NULL;
    rstmdb_error *err = NULL;
    if (!floor_mode && rstmdb_sync_connect(&cli, upstream, NULL, &err) != RSTMDB_OK) {
        fprintf(stderr, "sse_fanout: connect %s: %s\n", upstream,
                err ? rstmdb_error_message(err) : "?");
        return 1;
    }
    size_t nall = 0;
    unsigned missed = 0;
    double sum_max_ms = 0, worst_max_ms = 0, proxy_cpu_us = 0;
    for (unsigned e = 0; e < nevents; e++) {
        for (unsigned i = 0; i < n; i++)
            f.s[i].t_recv = 0;
        double c0 = pid ? proc_cpu_us(pid) : 0;
        uint64_t t0 = now_ns();
        if (floor_mode) {
            if (fire_floor(&f.addr, fire, fire_len) != 0) {
                fprintf(stderr, "sse_fanout: cannot fire the floor\n");
                return 1;
            }
        } else {
            int st = rstmdb_sync_call_json(cli, "APPLY_EVENT", params, strlen(params), NULL);
            if (st != RSTMDB_OK) {
                fprintf(stderr, "sse_fanout: APPLY_EVENT: %s\n", rstmdb_strerror(st));
                return 1;
            }
        }
        uint64_t until = now_ns() + 10000000000ull;
        for (;;) {
            unsigned got = 0, live = 0;
            for (unsigned i = 0; i < n; i++) {
                live += f.s[i].state == ST_OPEN;
                got += f.s[i].state == ST_OPEN && f.s[i].events > e;
            }
            if (got >= live || now_ns() > until)
                break;
            pump(&f, 50);
        }
        /* The proxy's own CPU for this event's fan-out (10 ms ticks). */
        proxy_cpu_us += pid ? proc_cpu_us(pid) - c0 : 0;
        size_t k = 0;
        for (unsigned i = 0; i < n; i++) {
            if (f.s[i].state != ST_OPEN)
                continue;
            if (f.s[i].t_recv == 0) {
                missed++;
                continue;
            }
            lat[k++] = f.s[i].t_recv - t0;
        }
        qsort(lat, k, sizeof *lat, cmp_u64);
        double mx = k ? (double)lat[k - 1] / 1e6 : 0;
        fprintf(stderr,
                "sse_fanout: event %u: %zu streams, p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", e, k,
                k ? (double)lat[k / 2] / 1e6 : 0,
                k ? (double)lat[(size_t)(0.99 * (double)(k - 1))] / 1e6 : 0, mx);
        sum_max_ms += mx;
        if (mx > worst_max_ms)
            worst_max_ms = mx;
        memcpy(all + nall, lat, k * sizeof *lat);
        nall += k;
        /* Quiet gap so the next event starts from idle streams. */
        uint64_t gap = now_ns() + 200000000ull;
        while (now_ns() < gap)
            pump(&f, 50);
    }
    if (cli != NULL)
        rstmdb_sync_close(cli);
    if (record != NULL && f.sample_len > 0) {
        FILE *rf = fopen(record, "wb");
        if (rf != NULL) {
            fwrite(f.sample, 1, f.sample_len, rf);
            fclose(rf);
        }
    }
    qsort(all, nall, sizeof *all, cmp_u64);
    double per_stream = (rss0 >= 0 && rss1 >= 0 && f.opened > 0)
                            ? (double)(rss1 - rss0) * 1024.0 / (double)f.opened
                            : -1;
    printf("streams=%u opened=%u failed=%u open_s=%.2f open_cpu_s=%.2f open_cpu_h1_s=%.3f "
           "open_cpu_h2_s=%.3f rss0_kb=%ld rss1_kb=%ld "
           "rss_per_stream_b=%.0f tcp_inuse=%ld tcp_mem_kb=%ld tcp_mem0_kb=%ld "
           "events=%u missed=%u fan_p50_ms=%.2f fan_p99_ms=%.2f "
           "fan_max_ms=%.2f fan_mean_max_ms=%.2f proxy_cpu_ms_per_event=%.1f\n",
           n, f.opened, f.dead, open_s, open_cpu_s, open_h1_s, open_h2_s, rss0, rss1, per_stream,
           sk_inuse1, sk_mem1, sk_mem0, nevents, missed, nall ? (double)all[nall / 2] / 1e6 : 0,
           nall ? (double)all[(size_t)(0.99 * (double)(nall - 1))] / 1e6 : 0, worst_max_ms,
           nevents ? sum_max_ms / nevents : 0, nevents ? proxy_cpu_us / nevents / 1000.0 : 0);
    fflush(stdout);
    /* --hold: keep the streams open (and read) so that bench/run can measure
     * plain requests while the proxy carries them; "holding" marks the start. */
    if (hold > 0) {
        fprintf(stderr, "sse_fanout: holding %u streams for %.0f s\n", f.opened, hold);
        uint64_t until = now_ns() + (uint64_t)(hold * 1e9);
        while (now_ns() < until)
            pump(&f, 100);
    }
    for (unsigned i = 0; i < n; i++)
        if (f.s[i].fd >= 0)
            close(f.s[i].fd);
    free(f.s);
    free(lat);
    free(all);
    close(f.ep);
    return f.opened == n && missed == 0 ? 0 : 1;
}
