/* loadgen.c: a small HTTP/1.1 load generator for bench/run: C keep-alive
 * connections on one epoll loop, each with one request in flight, for N
 * requests or T seconds, and the exact latency of every request (sorted, not
 * bucketed) for p50/p99. It must stay cheap per request: on a 2-core machine
 * every microsecond it spends is taken from the server it measures, which is
 * why it speaks raw sockets instead of libcurl (see RESULTS.md).
 *
 * Output: one line of key=value pairs on stdout.
 *   loadgen --addr 127.0.0.1:7480 --path /v1/ping -c 64 -d 3
 *   loadgen --addr ... --method POST --path /v1/instances/b{c}/events \
 *           --body '{"event":"tick","payload":{"n":{n}}}' -c 1 -n 10000
 * In the path and body, {n} is the request's sequence number and {c} its
 * connection's index, so every request can be distinct and valid. */
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
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RECV_CAP    65536 /* largest response accepted (headers + body) */
#define REQ_CAP     8192  /* largest request built from the templates */
#define MAX_CONNS   20000
#define MAX_SAMPLES (16u * 1024 * 1024) /* 64 MiB of uint32: beyond, count only */
#define MAX_HEADERS 8

typedef struct conn {
    int fd;
    unsigned idx;
    bool busy;
    uint64_t t0;
    size_t got;
    size_t need; /* total response bytes once the headers are parsed, else 0 */
    bool close_after;
    char rbuf[RECV_CAP];
} conn;

typedef struct opts {
    struct sockaddr_in addr;
    const char *method;
    const char *path;
    const char *body;
    const char *headers[MAX_HEADERS];
    unsigned nheaders;
    unsigned conc;
    uint64_t nreq; /* 0 = by duration */
    double secs;   /* duration when nreq == 0 */
    double warmup; /* seconds not recorded, first */
    const char *label;
    int cpu_pid; /* report this process's CPU time per recorded request */
} opts;

typedef struct run {
    const opts *o;
    int ep;
    conn *conns;
    uint64_t seq;    /* requests issued */
    uint64_t done;   /* responses recorded (after warmup) */
    uint64_t errors; /* connection failures and bad responses */
    uint64_t non2xx; /* complete responses with another status */
    uint64_t reconnects;
    bool recording;
    bool stopping;
    uint32_t *lat_ns; /* one per recorded response, capped at MAX_SAMPLES */
    size_t nlat, caplat;
    bool shown_bad;
} run;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
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
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
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
    return inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host,
                     &out->sin_addr) == 1
               ? 0
               : -1;
}

/* Expand {n} and {c} into out; returns the length or 0 when too long. */
static size_t expand(char *out, size_t cap, const char *tpl, uint64_t n, unsigned c)
{
    size_t o = 0;
    for (const char *p = tpl; *p; p++) {
        if (p[0] == '{' && (p[1] == 'n' || p[1] == 'c') && p[2] == '}') {
            int w = snprintf(out + o, cap - o, "%llu",
                             p[1] == 'n' ? (unsigned long long)n : (unsigned long long)c);
            if (w < 0 || (size_t)w >= cap - o)
                return 0;
            o += (size_t)w;
            p += 2;
        } else {
            if (o + 1 >= cap)
                return 0;
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    return o;
}

static int conn_open(run *r, conn *c)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    /* Blocking connect (simple, loopback, backlog 1024), then non-blocking. */
    if (connect(fd, (const struct sockaddr *)&r->o->addr, sizeof r->o->addr) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        return -1;
    }
    c->fd = fd;
    c->busy = false;
    c->got = c->need = 0;
    return 0;
}

static void conn_close(run *r, conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->busy = false;
}

static bool budget_left(const run *r, uint64_t t_end)
{
    if (r->stopping)
        return false;
    if (r->o->nreq > 0)
        return r->seq < r->o->nreq;
    return now_ns() < t_end;
}

/* Build and write one request. -1 = the connection is unusable. */
static int conn_send(run *r, conn *c)
{
    char path[1024], body[REQ_CAP], req[REQ_CAP + 2048];
    uint64_t n = r->seq++;
    if (expand(path, sizeof path, r->o->path, n, c->idx) == 0)
        return -1;
    size_t blen = 0;
    if (r->o->body != NULL && (blen = expand(body, sizeof body, r->o->body, n, c->idx)) == 0)
        return -1;
    int w = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: bench\r\n", r->o->method, path);
    size_t len = (size_t)w;
    for (unsigned i = 0; i < r->o->nheaders; i++) {
        w = snprintf(req + len, sizeof req - len, "%s\r\n", r->o->headers[i]);
        if (w < 0 || (size_t)w >= sizeof req - len)
            return -1;
        len += (size_t)w;
    }
    if (r->o->body != NULL)
        w = snprintf(req + len, sizeof req - len,
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", blen, body);
    else
        w = snprintf(req + len, sizeof req - len, "\r\n");
    if (w < 0 || (size_t)w >= sizeof req - len)
        return -1;
    len += (size_t)w;
    c->t0 = now_ns();
    c->got = c->need = 0;
    c->close_after = false;
    c->busy = true;
    /* Requests are small: a loopback socket with an empty send buffer takes
     * them whole. A short write is treated as an error, not queued. */
    ssize_t s = send(c->fd, req, len, MSG_NOSIGNAL);
    return s == (ssize_t)len ? 0 : -1;
}

/* Parse status and Content-Length once the header block is complete. */
static int parse_head(run *r, conn *c, int *status)
{
    char *end = memmem(c->rbuf, c->got, "\r\n\r\n", 4);
    if (end == NULL)
        return c->got >= RECV_CAP ? -1 : 0;
    size_t hlen = (size_t)(end - c->rbuf) + 4;
    if (c->got < 12 || memcmp(c->rbuf, "HTTP/1.", 7) != 0)
        return -1;
    *status = atoi(c->rbuf + 9);
    long long clen = -1;
    for (char *p = memchr(c->rbuf, '\n', hlen); p != NULL && p < end;
         p = memchr(p + 1, '\n', (size_t)(end - p))) {
        const char *h = p + 1;
        if (strncasecmp(h, "content-length:", 15) == 0)
            clen = atoll(h + 15);
        else if (strncasecmp(h, "connection:", 11) == 0 && strncasecmp(h + 12, "close", 5) == 0)
            c->close_after = true;
        else if (strncasecmp(h, "transfer-encoding:", 18) == 0)
            return -1; /* chunked bodies are not expected from these endpoints */
    }
    if (clen < 0 || hlen + (size_t)clen > RECV_CAP)
        return -1;
    (void)r;
    c->need = hlen + (size_t)clen;
    return 1;
}

static void record(run *r, conn *c, int status)
{
    if (!r->recording)
        return;
    r->done++;
    if (status < 200 || status > 299) {
        r->non2xx++;
        if (!r->shown_bad) {
            r->shown_bad = true;
            fprintf(stderr, "loadgen[%s]: status %d: %.*s\n", r->o->label, status,
                    (int)(c->got < 400 ? c->got : 400), c->rbuf);
        }
    }
    uint64_t d = now_ns() - c->t0;
    if (r->nlat == r->caplat) {
        if (r->caplat >= MAX_SAMPLES)
            return;
        size_t ncap = r->caplat ? r->caplat * 2 : 65536;
        uint32_t *nl = realloc(r->lat_ns, ncap * sizeof *nl);
        if (nl == NULL)
            return;
        r->lat_ns = nl;
        r->caplat = ncap;
    }
    r->lat_ns[r->nlat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

/* The connection broke or answered nonsense: count it and reconnect. */
static void conn_fail(run *r, conn *c, const char *why)
{
    if (r->recording)
        r->errors++;
    if (r->errors <= 3 && r->recording)
        fprintf(stderr, "loadgen[%s]: connection %u: %s\n", r->o->label, c->idx, why);
    conn_close(r, c);
    if (conn_open(r, c) == 0)
        r->reconnects++;
}

static void on_readable(run *r, conn *c, uint64_t t_end)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->rbuf + c->got, RECV_CAP - c->got, 0);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            conn_fail(r, c, n == 0 ? "closed by the server" : strerror(errno));
            return;
        }
        c->got += (size_t)n;
        if (!c->busy) {
            conn_fail(r, c, "bytes with no request in flight");
            return;
        }
        int status = 0;
        if (c->need == 0) {
            int p = parse_head(r, c, &status);
            if (p < 0) {
                conn_fail(r, c, "unparsable response");
                return;
            }
            if (p == 0)
                continue;
        } else {
            status = atoi(c->rbuf + 9);
        }
        if (c->got < c->need)
            continue;
        if (c->got > c->need) {
            conn_fail(r, c, "more bytes than the response");
            return;
        }
        record(r, c, status);
        c->busy = false;
        if (c->close_after) {
            conn_close(r, c);
            if (conn_open(r, c) != 0)
                return;
            r->reconnects++;
        }
        if (budget_left(r, t_end) && conn_send(r, c) != 0)
            conn_fail(r, c, "send failed");
        return;
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_us(const uint32_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return (double)v[i] / 1000.0;
}

/* Run the loop until the budget is spent and nothing is in flight. */
static void loop(run *r, uint64_t t_end, uint64_t hard_end)
{
    for (unsigned i = 0; i < r->o->conc; i++) {
        conn *c = &r->conns[i];
        if (c->fd >= 0 && !c->busy && budget_left(r, t_end) && conn_send(r, c) != 0)
            conn_fail(r, c, "send failed");
    }
    struct epoll_event evs[256];
    for (;;) {
        unsigned busy = 0;
        for (unsigned i = 0; i < r->o->conc; i++)
            busy += r->conns[i].busy;
        if (busy == 0)
            return;
        if (now_ns() > hard_end) {
            fprintf(stderr, "loadgen[%s]: %u requests unanswered at the deadline\n", r->o->label,
                    busy);
            r->errors += busy;
            return;
        }
        int n = epoll_wait(r->ep, evs, 256, 100);
        for (int i = 0; i < n; i++)
            on_readable(r, evs[i].data.ptr, t_end);
        /* Idle connections (after a reconnect) pick up work again. */
        if (budget_left(r, t_end))
            for (unsigned i = 0; i < r->o->conc; i++) {
                conn *c = &r->conns[i];
                if (c->fd >= 0 && !c->busy && conn_send(r, c) != 0)
                    conn_fail(r, c, "send failed");
            }
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen --addr HOST:PORT --path PATH [--method M] [--body TEMPLATE]\n"
                    "               [--header 'K: V']... [-c CONC] (-n REQUESTS | -d SECONDS)\n"
                    "               [--warmup SECONDS] [--label NAME]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    opts o = {.method = "GET", .path = "/", .conc = 1, .secs = 2, .label = "run"};
    bool have_addr = false;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            usage();
        if (strcmp(a, "--addr") == 0)
            have_addr = parse_addr(v, &o.addr) == 0;
        else if (strcmp(a, "--path") == 0)
            o.path = v;
        else if (strcmp(a, "--method") == 0)
            o.method = v;
        else if (strcmp(a, "--body") == 0)
            o.body = v;
        else if (strcmp(a, "--header") == 0 && o.nheaders < MAX_HEADERS)
            o.headers[o.nheaders++] = v;
        else if (strcmp(a, "-c") == 0)
            o.conc = (unsigned)atoi(v);
        else if (strcmp(a, "-n") == 0)
            o.nreq = strtoull(v, NULL, 10);
        else if (strcmp(a, "-d") == 0)
            o.secs = atof(v);
        else if (strcmp(a, "--warmup") == 0)
            o.warmup = atof(v);
        else if (strcmp(a, "--label") == 0)
            o.label = v;
        else if (strcmp(a, "--cpu-pid") == 0)
            o.cpu_pid = atoi(v);
        else
            usage();
    }
    if (!have_addr || o.conc == 0 || o.conc > MAX_CONNS)
        usage();

    run r = {.o = &o};
    r.ep = epoll_create1(0);
    r.conns = calloc(o.conc, sizeof *r.conns);
    if (r.ep < 0 || r.conns == NULL)
        return 1;
    for (unsigned i = 0; i < o.conc; i++) {
        r.conns[i].idx = i;
        r.conns[i].fd = -1;
        if (conn_open(&r, &r.conns[i]) != 0) {
            fprintf(stderr, "loadgen[%s]: connect %u: %s\n", o.label, i, strerror(errno));
            return 1;
        }
    }
    if (o.warmup > 0) {
        uint64_t we = now_ns() + (uint64_t)(o.warmup * 1e9);
        uint64_t saved = o.nreq;
        o.nreq = 0; /* warm up by time */
        loop(&r, we, we + 10000000000ull);
        o.nreq = saved;
        r.seq = 0;
    }
    r.recording = true;
    double cpu0 = o.cpu_pid > 0 ? proc_cpu_us(o.cpu_pid) : -1;
    uint64_t t0 = now_ns();
    uint64_t t_end = t0 + (uint64_t)(o.secs * 1e9);
    loop(&r, t_end, (o.nreq ? t0 : t_end) + 30000000000ull);
    double secs = (double)(now_ns() - t0) / 1e9;
    double cpu1 = o.cpu_pid > 0 ? proc_cpu_us(o.cpu_pid) : -1;

    qsort(r.lat_ns, r.nlat, sizeof *r.lat_ns, cmp_u32);
    double mean = 0;
    for (size_t i = 0; i < r.nlat; i++)
        mean += (double)r.lat_ns[i];
    mean = r.nlat ? mean / (double)r.nlat / 1000.0 : 0;
    printf("label=%s conc=%u requests=%llu errors=%llu non2xx=%llu reconnects=%llu secs=%.3f "
           "rps=%.0f mean_us=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f",
           o.label, o.conc, (unsigned long long)r.done, (unsigned long long)r.errors,
           (unsigned long long)r.non2xx, (unsigned long long)r.reconnects, secs,
           secs > 0 ? (double)r.done / secs : 0, mean, pct_us(r.lat_ns, r.nlat, 50),
           pct_us(r.lat_ns, r.nlat, 90), pct_us(r.lat_ns, r.nlat, 99),
           r.nlat ? (double)r.lat_ns[r.nlat - 1] / 1000.0 : 0);
    /* Clock ticks are 10 ms: over a 2 s run of thousands of requests the
     * per-request figure is good to a few percent. */
    if (cpu0 >= 0 && cpu1 >= 0 && r.done > 0)
        printf(" cpu_us_per_req=%.2f cpu_util=%.2f", (cpu1 - cpu0) / (double)r.done,
               (cpu1 - cpu0) / 1e6 / secs);
    printf("\n");
    for (unsigned i = 0; i < o.conc; i++)
        conn_close(&r, &r.conns[i]);
    free(r.conns);
    free(r.lat_ns);
    close(r.ep);
    return r.errors > 0 ? 1 : 0;
}
