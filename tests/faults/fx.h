/* fx.h: the fault suite's harness: start testd, the relay and the proxy as
 * real processes, talk HTTP with libcurl (every request bounded: a timeout is
 * the hang detector), send raw bytes curl would refuse to, follow SSE streams
 * in a thread, read the upstream WAL and the proxy's RSS. Tests only.
 */
#ifndef FAULTS_FX_H
#define FAULTS_FX_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "spawn.h"

#define FX_BODY_MAX (4u << 20) /* response bytes kept; more is an error */

typedef struct fx_resp {
    long status; /* 0 when no HTTP response */
    int curl_rc; /* CURLcode */
    bool hung;   /* the client-side timeout fired: the proxy did not answer in time */
    char *body;  /* NUL-terminated, malloc'd (never NULL after fx_http) */
    size_t len;
    char headers[8192]; /* raw response header block */
    long long ms;       /* wall time of the request */
    long connect_us;    /* when the TCP connect completed (0 = never) */
    long local_port;    /* the client port, to find the request in logs */
    char trace[512];    /* curl's own last words (connection events), for hang reports */
} fx_resp;

/* One HTTP request to http://ADDR PATH. `headers` NULL-terminated (or NULL).
 * `body` NULL = none; `len` < 0 = strlen(body). Returns 0 when an HTTP
 * response arrived (any status), -1 otherwise (see curl_rc/hung). */
int fx_http(const char *addr, const char *method, const char *path, const char *body, long len,
            const char *const *headers, long timeout_ms, fx_resp *r);
/* The same on a kept-alive connection: *handle (a CURL *, NULL at first)
 * is created on first use and reused; free it with fx_http_handle_free. */
int fx_http_keep(void **handle, const char *addr, const char *method, const char *path,
                 const char *body, long len, const char *const *headers, long timeout_ms,
                 fx_resp *r);
void fx_http_handle_free(void *handle);
void fx_resp_free(fx_resp *r);
/* A response header's value (case-insensitive name), or NULL. */
const char *fx_header(const fx_resp *r, const char *name, char *out, size_t cap);
/* True when the response is an RFC 9457 problem with the given status, its
 * "status" member equal, and "code" equal to `code` (NULL = any). */
bool fx_is_problem(const fx_resp *r, long status, const char *code);

/* Raw request bytes on a fresh connection; reads until EOF, `cap` bytes or
 * the timeout. Returns the HTTP status parsed from the reply, 0 when the
 * connection closed with no reply, -1 on a timeout with nothing read. */
int fx_raw(const char *addr, const char *req, size_t len, int timeout_ms, char *out, size_t cap);

/* A minimal HTTP/1.1 client on a raw socket (Connection: close): no curl,
 * no resolver thread, so a stall can only be the server's. Fills r->status,
 * r->body (after the header block), r->headers, r->hung, r->ms. Returns 0
 * when a status line arrived. */
int fx_http_raw(const char *addr, const char *method, const char *path, const char *body,
                long timeout_ms, fx_resp *r);

/* Processes. */
int fx_testd(spawned *t, const char *const *extra); /* with --control */
int fx_relay(spawned *r, const char *upstream);     /* with --control */
/* rstmdb-proxy --listen LISTEN --upstream UP + defaults for tests + extra.
 * LISTEN NULL = 127.0.0.1:0. stderr goes to `log` (NULL = inherit). */
int fx_proxy(spawned *p, const char *listen, const char *upstream, const char *const *extra,
             const char *log);
/* Poll /readyz until it answers `want` (200 or 503), up to timeout_ms. 0 or -1. */
int fx_wait_ready(const char *addr, long want, long timeout_ms);
long fx_rss_kb(pid_t pid);
long long fx_now_ms(void);
void fx_sleep_ms(long ms);
/* FAULT_CYCLES from the environment, default 20. */
int fx_cycles(void);
const char *fx_relay_bin(void);
/* A fresh temporary directory for logs and certificates. */
void fx_tmpdir(char *out, size_t cap, const char *tag);

/* The upstream WAL as read through the proxy (GET /v1/wal, paged), up to
 * its head when the read starts (WAL_STATS): writers may still be running. */
typedef struct fx_walrec {
    uint64_t offset;
    char type[24]; /* "apply_event", "create_instance", ... */
    char instance_id[96];
} fx_walrec;
typedef struct fx_wal {
    fx_walrec *v;
    size_t n, cap;
} fx_wal;
int fx_wal_read(const char *addr, fx_wal *w, char *why, size_t whycap);
void fx_wal_free(fx_wal *w);
const fx_walrec *fx_wal_find(const fx_wal *w, uint64_t offset);

/* An SSE follower: GET path on the proxy in a thread, recording every
 * event id; on a stream end it reconnects with Last-Event-ID (when
 * `reconnect`), to whatever address fx_sse_set_addr set last. */
typedef struct fx_sse {
    pthread_t th;
    pthread_mutex_t mu;
    char addr[80];
    char path[256];
    bool reconnect;
    volatile bool stop;
    bool started;
    /* results (under mu) */
    uint64_t *ids;
    size_t n, cap;
    unsigned opens;       /* streams that reached the open comment */
    unsigned ends;        /* streams that ended (not stopped by us) */
    unsigned errors_seen; /* `event: error` received */
    unsigned bad;         /* ids not increasing, or data not matching id */
    char last_error[256];
    char first_bad[256];
    /* parser state (thread only) */
    char line[65536];
    size_t llen;
    bool have_id;
    uint64_t cur_id;
    char cur_event[32];
    bool cur_data_ok;
    bool got_open;
} fx_sse;

int fx_sse_start(fx_sse *s, const char *addr, const char *path, bool reconnect);
void fx_sse_set_addr(fx_sse *s, const char *addr);
/* Wait until the stream has opened at least `opens` times. */
int fx_sse_wait_open(fx_sse *s, unsigned opens, long timeout_ms);
/* Wait until the last id received is >= `id`. */
int fx_sse_wait_id(fx_sse *s, uint64_t id, long timeout_ms);
void fx_sse_stop(fx_sse *s);

/* Compare the ids an SSE stream saw with the WAL: strictly increasing, and
 * from its first id to `upto`, exactly the apply_event offsets (matching
 * `instance` when non-NULL). Returns 0 or -1 with `why`. */
int fx_sse_check(const fx_sse *s, const fx_wal *w, const char *instance, uint64_t upto, char *why,
                 size_t whycap);

#endif
