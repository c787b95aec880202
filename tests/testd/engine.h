/* engine.h: rstmdb-testd's in-memory database, sans I/O.
 *
 * The engine takes one request payload (the JSON bytes of one RCPX frame) for
 * one connection and produces what the real rstmdb server would do: a
 * response to write, a silent close, or a response followed by a close; plus
 * the events that request caused, addressed to the connections whose
 * subscriptions match. It owns machines, instances, the WAL, idempotency,
 * auth and the subscription registry. It never touches a socket: server.c
 * (libevent, framing, TLS, faults) moves the bytes.
 *
 * Contract with server.c:
 *  - Connection ids are chosen by the server, unique for the process lifetime.
 *  - engine_conn_open() before the first request, engine_conn_close() after
 *    the last: the engine then drops that connection's subscriptions.
 *  - For each decoded frame payload, call engine_request(); write out->reply
 *    (if any) to the requesting connection FIRST, then each delivery in
 *    order, each encoded in its target connection's wire mode
 *    (engine_conn_jsonl()), then act on out->action.
 */
#ifndef TESTD_ENGINE_H
#define TESTD_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct engine engine;

/* Which server's answers the engine gives (part 1 of PROTOCOL-0.3.md lists
 * the differences). 0.3 is a 0.3.0 built without hot backup: BACKUP_* are
 * unknown ops, as in upstream builds without that feature. */
typedef enum engine_compat {
    ENGINE_COMPAT_0_1 = 0, /* rstmdb 0.1.1 */
    ENGINE_COMPAT_0_3 = 1  /* rstmdb 0.3.0 */
} engine_compat;

typedef struct engine_config {
    engine_compat compat;
    bool auth_required;              /* auth.required */
    const char *const *token_hashes; /* lowercase hex SHA-256 of accepted tokens */
    size_t ntoken_hashes;
    uint32_t max_machine_versions; /* 0 = unlimited */
    uint64_t wal_segment_size;     /* bytes; 0 = 64 MiB */
    bool allow_flush_all;          /* FLUSH_ALL answered. Off: under 0.1 the op is unknown and
                                      the connection closes (the 21-op server); under 0.3 it is
                                      BAD_REQUEST "FLUSH_ALL is disabled" */
    size_t max_deliveries;         /* events one request may produce; 0 = 262144. The excess is
                                      dropped silently, as the real server's rings drop events
                                      for lagging subscribers. Bounds the memory of a request. */
} engine_config;

typedef enum engine_action {
    ENGINE_REPLY = 0, /* write `reply`, keep the connection */
    ENGINE_CLOSE = 1, /* close at once without writing anything (bad envelope, unknown op...) */
    ENGINE_REPLY_CLOSE = 2 /* write `reply` (if not NULL), then close (BYE). reply is NULL when
                              the op ran and then made the real server drop this connection (a
                              guard panic inside BATCH, an answer over 16 MiB): deliveries to
                              other connections are still to be written. */
} engine_action;

typedef struct engine_delivery {
    uint64_t conn_id; /* the connection to push to */
    char *payload;    /* event JSON document (malloc'd, owned by engine_out) */
    size_t len;
} engine_delivery;

typedef struct engine_out {
    engine_action action;
    char *reply; /* response JSON document (malloc'd), NULL for ENGINE_CLOSE */
    size_t reply_len;
    engine_delivery *deliveries;
    size_t ndeliveries;
} engine_out;

/* Copies what it needs from `cfg`. Returns 0, or -1 on OOM (*out untouched). */
int engine_new(engine **out, const engine_config *cfg);
void engine_free(engine *e);

void engine_conn_open(engine *e, uint64_t conn_id);
void engine_conn_close(engine *e, uint64_t conn_id);
/* True once HELLO on that connection negotiated "jsonl" (server writes JSON lines). */
bool engine_conn_jsonl(const engine *e, uint64_t conn_id);

/* Handle one request payload. Fills *out (caller releases with engine_out_deinit).
 * Returns 0, or -1 on OOM. */
int engine_request(engine *e, uint64_t conn_id, const uint8_t *payload, size_t len,
                   engine_out *out);
void engine_out_deinit(engine_out *out);

#endif
