/* relay.h: a restartable TCP relay for fault tests (pgbouncer's test relay
 * is the model): sits between a client (the proxy) and an upstream (testd)
 * and cuts, refuses, stalls, slows or garbles the traffic on command.
 *
 * Tests only. Every relayed byte passes through two bounded buffers; a full
 * buffer pauses the reader on the other side, so a stalled or slow peer never
 * makes the relay grow memory.
 */
#ifndef FAULTS_RELAY_H
#define FAULTS_RELAY_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
typedef struct relay relay;

typedef struct relay_config {
    const char *listen;   /* "HOST:PORT" (port 0 = a free port); NULL = "127.0.0.1:0" */
    const char *upstream; /* "HOST:PORT" connected to for each accepted client; required */
    const char *control;  /* "HOST:PORT" for the control channel; NULL = none */
    size_t buffer_cap;    /* bytes queued per direction before the reader pauses; 0 = 256 KiB */
} relay_config;

typedef struct relay_stats {
    uint64_t accepted;       /* client connections accepted (refused ones included) */
    uint64_t refused;        /* closed at accept while `refuse on` */
    uint64_t connect_failed; /* upstream connect failures */
    uint64_t cut;            /* pairs closed by `cut` */
    uint64_t active;         /* pairs open now */
    uint64_t bytes_up;       /* client -> upstream */
    uint64_t bytes_down;     /* upstream -> client */
    uint64_t garbled;        /* chunks garbled */
    uint64_t paused;         /* times a reader was paused by a full buffer */
} relay_stats;

/* Bind the listener (and the control channel when configured). Returns 0, or
 * -1 with a message in `err`; *out is untouched on failure. */
int relay_new(relay **out, struct event_base *base, const relay_config *cfg, char *err,
              size_t errcap);
/* Closes every relayed connection, the listener and the control channel. */
void relay_free(relay *r);

/* Bound addresses, "127.0.0.1:40124"; control is "" without a control channel. */
const char *relay_address(const relay *r);
const char *relay_control_address(const relay *r);

/* Run one control command (a line without its newline) and write a one-line
 * reply, "ok ..." or "err ...", into `reply`. Returns 0 for ok, -1 for err.
 *   cut | refuse on|off | stall on|off | slow BYTES_PER_SEC (0 = off) |
 *   garble | upstream HOST:PORT | stats | help */
int relay_command(relay *r, const char *line, char *reply, size_t cap);

void relay_get_stats(const relay *r, relay_stats *out);

#endif
