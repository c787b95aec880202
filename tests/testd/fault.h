/* fault.h: rstmdb-testd's fault knobs for reliability tests, sans I/O.
 *
 * The knobs are plain state plus a parser for the control channel's text
 * commands; server.c reads the state at the points where each fault bites
 * (before answering, after answering, on accept, on writing a response).
 */
#ifndef TESTD_FAULT_H
#define TESTD_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fault {
    uint32_t delay_ms;     /* hold every request this long before answering it (0 = off) */
    uint32_t close_after;  /* close each connection once it has had N answers (0 = off) */
    uint32_t garble_every; /* garble every Nth response frame, counted server-wide (0 = off) */
    bool garble_once;      /* garble the next response frame, then clear */
    bool hang;             /* read and discard requests, never answer */
    bool refuse;           /* accept new connections and close them at once */
    uint64_t responses;    /* responses seen by fault_take_garble (drives garble_every) */
} fault;

/* What a control command asks the caller to do beyond changing the knobs. */
typedef enum fault_cmd {
    FAULT_CMD_ERR = -1,     /* bad command: `reply` holds "err ..." */
    FAULT_CMD_DONE = 0,     /* knobs updated (or nothing to do): `reply` holds "ok ..." */
    FAULT_CMD_DROP_ALL = 1, /* caller closes every client connection, then answers */
    FAULT_CMD_STATS = 2     /* caller answers with its counters */
} fault_cmd;

/* Parse one control line (no newline) and apply it to `f`:
 *   delay MS | close-after N | garble | garble-every N | hang on|off |
 *   refuse on|off | reset | show | drop-all | stats | help
 * Writes a one-line reply (no newline) into `reply` for DONE and ERR. */
fault_cmd fault_command(fault *f, const char *line, char *reply, size_t cap);

/* Called once per response frame about to be written: true if this one must
 * be garbled (a one-shot garble, or every Nth response). */
bool fault_take_garble(fault *f);

/* "delay=0 close-after=0 garble-every=0 garble-once=off hang=off refuse=off" */
void fault_describe(const fault *f, char *buf, size_t cap);

#endif
