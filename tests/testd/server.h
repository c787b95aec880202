/* server.h: rstmdb-testd's network layer on libevent.
 *
 * Listens (TCP, optionally TLS/mTLS), decodes RCPX frames per connection,
 * hands each payload to the engine, writes replies and pushes events with
 * the real server's slow-consumer behaviour, enforces the connection limit
 * and the idle timeout, and applies the fault knobs. It owns the sockets;
 * the engine (engine.h) owns all protocol state.
 */
#ifndef TESTD_SERVER_H
#define TESTD_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "fault.h"

struct event_base;

typedef struct server server;

typedef struct server_config {
    const char *listen;         /* "HOST:PORT" or "[V6]:PORT"; port 0 picks a free one */
    const char *control;        /* control channel: "HOST:PORT" or "unix:PATH"; NULL = none */
    const char *tls_cert;       /* PEM chain; with tls_key turns TLS on */
    const char *tls_key;        /* PEM private key */
    const char *tls_client_ca;  /* PEM CA: require and verify client certificates (mTLS) */
    size_t max_frame_bytes;     /* inbound payload cap; 0 = 16 MiB */
    unsigned max_connections;   /* 0 = 1000 (the real server's fixed limit) */
    unsigned idle_timeout_secs; /* close after this long without traffic; 0 = never */
    unsigned event_queue_max;   /* events queued per slow connection; 0 = 256 */
    size_t event_queue_bytes;   /* bytes of queued events per connection; 0 = 1 MiB */
    unsigned socket_sndbuf;     /* SO_SNDBUF for client sockets, 0 = kernel default (autotuned) */
    fault faults;               /* initial fault knobs (all zero = none) */
} server_config;

/* Counters, for `stats` on the control channel and for tests. */
typedef struct server_stats {
    uint64_t accepted;       /* connections accepted and kept */
    uint64_t refused;        /* closed at once by the `refuse` fault */
    uint64_t over_limit;     /* closed at once by the connection limit */
    uint64_t active;         /* connections open now */
    uint64_t requests;       /* frames decoded */
    uint64_t responses;      /* response frames written */
    uint64_t events;         /* event frames written or queued */
    uint64_t events_dropped; /* events dropped for slow consumers */
    uint64_t garbled;        /* responses garbled by the fault */
    uint64_t hung;           /* requests discarded by the `hang` fault */
    uint64_t bad_frames;     /* connections closed for a framing error */
    uint64_t tls_failures;   /* failed TLS handshakes */
    uint64_t queued_events;  /* events waiting in slow consumers' queues now */
    uint64_t queued_bytes;   /* their bytes */
    uint64_t out_bytes;      /* bytes in all output buffers now (computed when read) */
} server_stats;

enum {
    SERVER_ERR_IO = -1,    /* bind/listen failed, or out of memory */
    SERVER_ERR_CONFIG = -2 /* a bad address, or TLS files that do not load */
};

/* Bind the listener(s) on `base` and start accepting. `eng` is borrowed and
 * must outlive the server. Returns 0, or SERVER_ERR_* with a message in
 * `err` (*out untouched). */
int server_new(server **out, struct event_base *base, engine *eng, const server_config *cfg,
               char *err, size_t errcap);
/* Close every connection silently (engine_conn_close for each), the
 * listeners and the control channel, and free everything. NULL is a no-op. */
void server_free(server *s);

/* The bound address, "127.0.0.1:40123" or "[::1]:40123". */
const char *server_address(const server *s);
/* The control channel's bound address ("127.0.0.1:40124" or "unix:PATH"), or NULL. */
const char *server_control_address(const server *s);

void server_get_stats(const server *s, server_stats *out);
/* The live fault knobs (the control channel changes them too). */
fault *server_faults(server *s);
/* Close every client connection now, silently; returns how many. */
unsigned server_drop_all(server *s);
/* Run one control command (see fault.h and README.md); writes a one-line
 * reply without newline into `reply`. */
void server_control(server *s, const char *line, char *reply, size_t cap);

#endif
