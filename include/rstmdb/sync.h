/* rstmdb/sync.h: the blocking API, for simple programs.
 *
 * One rstmdb_sync is one connection with its own private event_base; each
 * call sends one request and runs that base until its answer (or timeout)
 * arrives: one call, one round trip. Not thread-safe: use one rstmdb_sync per
 * thread. The types are the async API's: replies are rstmdb_reply (read them
 * with rstmdb_reply_* and the typed views of rstmdb/ops.h), events are
 * rstmdb_event.
 *
 * Calls return the reply's status: RSTMDB_OK, RSTMDB_ERR_SERVER (the server
 * answered an error: rstmdb_reply_error(*reply)), RSTMDB_ERR_TIMEOUT (the
 * request timeout of the options, default 30 s), RSTMDB_ERR_CLOSED /
 * RSTMDB_ERR_IO / RSTMDB_ERR_PROTOCOL (the connection is gone: make a new
 * rstmdb_sync); or, with *reply set to NULL, a failure before sending:
 * RSTMDB_ERR_INVALID, RSTMDB_ERR_NOMEM, RSTMDB_ERR_FRAME_TOO_LARGE.
 * Ownership: when `reply` is not NULL and a reply exists, *reply is a new
 * reply the caller frees with rstmdb_reply_free(); pass reply = NULL to
 * need only the status.
 */
#ifndef RSTMDB_SYNC_H
#define RSTMDB_SYNC_H

#include "rstmdb/client.h"
#include "rstmdb/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rstmdb_sync rstmdb_sync;
typedef struct rstmdb_sync_sub rstmdb_sync_sub;

/* Connect and handshake (HELLO, AUTH when a token is set), blocking until
 * READY or failure (the connect timeout of `opts`, default 10 s). `opts`
 * may be NULL; it is copied. On failure *out is untouched and *err (if not
 * NULL) receives the reason (caller frees). Returns RSTMDB_OK,
 * RSTMDB_ERR_INVALID, RSTMDB_ERR_NOMEM, RSTMDB_ERR_IO, RSTMDB_ERR_TLS,
 * RSTMDB_ERR_TIMEOUT, RSTMDB_ERR_CLOSED, RSTMDB_ERR_PROTOCOL or
 * RSTMDB_ERR_SERVER (HELLO or AUTH refused, e.g. AUTH_FAILED). */
int rstmdb_sync_connect(rstmdb_sync **out, const char *address, const rstmdb_options *opts,
                        rstmdb_error **err);
/* Send BYE, wait (at most ~1 s) for it to leave, and free everything,
 * including subscriptions not unwatched yet (their handles become invalid).
 * NULL is a no-op. */
void rstmdb_sync_close(rstmdb_sync *s);
/* The connection state (CLOSED once the server went away). */
rstmdb_conn_state rstmdb_sync_state(const rstmdb_sync *s);
/* The underlying async client (borrowed), e.g. for rstmdb_client_hello(). */
rstmdb_client *rstmdb_sync_client(rstmdb_sync *s);

/* Raw calls: any op; params a cJSON object or JSON object text (NULL = {}). */
int rstmdb_sync_call(rstmdb_sync *s, const char *op, const cJSON *params, rstmdb_reply **reply);
int rstmdb_sync_call_json(rstmdb_sync *s, const char *op, const char *params, size_t params_len,
                          rstmdb_reply **reply);

/* Typed calls: the requests of rstmdb/ops.h; read the reply with the
 * matching rstmdb_reply_<op>() view. */
int rstmdb_sync_ping(rstmdb_sync *s, rstmdb_reply **reply);
int rstmdb_sync_info(rstmdb_sync *s, rstmdb_reply **reply);
int rstmdb_sync_put_machine(rstmdb_sync *s, const rstmdb_put_machine_req *req,
                            rstmdb_reply **reply);
int rstmdb_sync_get_machine(rstmdb_sync *s, const rstmdb_get_machine_req *req,
                            rstmdb_reply **reply);
int rstmdb_sync_list_machines(rstmdb_sync *s, rstmdb_reply **reply);
int rstmdb_sync_create_instance(rstmdb_sync *s, const rstmdb_create_instance_req *req,
                                rstmdb_reply **reply);
int rstmdb_sync_get_instance(rstmdb_sync *s, const rstmdb_get_instance_req *req,
                             rstmdb_reply **reply);
int rstmdb_sync_list_instances(rstmdb_sync *s, const rstmdb_list_instances_req *req,
                               rstmdb_reply **reply);
int rstmdb_sync_delete_instance(rstmdb_sync *s, const rstmdb_delete_instance_req *req,
                                rstmdb_reply **reply);
int rstmdb_sync_apply_event(rstmdb_sync *s, const rstmdb_apply_event_req *req,
                            rstmdb_reply **reply);
int rstmdb_sync_batch(rstmdb_sync *s, const rstmdb_batch_req *req, rstmdb_reply **reply);
int rstmdb_sync_snapshot_instance(rstmdb_sync *s, const rstmdb_snapshot_instance_req *req,
                                  rstmdb_reply **reply);
int rstmdb_sync_wal_read(rstmdb_sync *s, const rstmdb_wal_read_req *req, rstmdb_reply **reply);
int rstmdb_sync_wal_stats(rstmdb_sync *s, rstmdb_reply **reply);
int rstmdb_sync_compact(rstmdb_sync *s, const rstmdb_compact_req *req, rstmdb_reply **reply);
int rstmdb_sync_flush_all(rstmdb_sync *s, rstmdb_reply **reply);

/* ---- subscriptions ---------------------------------------------------------
 * Events that arrive while the caller is not waiting (during other calls)
 * are buffered per subscription, at most rstmdb_options_set_max_events()
 * (default 4096); past that the subscription is ended (UNWATCH sent) with
 * RSTMDB_ERR_PROTOCOL "event buffer full": a consumer that cannot keep up is
 * told so rather than silently skipping events. */

/* Subscribe; blocks for the WATCH answer. On RSTMDB_OK *sub is a new handle
 * (release with rstmdb_sync_unwatch); otherwise *sub is NULL. */
int rstmdb_sync_watch_instance(rstmdb_sync *s, const rstmdb_watch_instance_req *req,
                               rstmdb_sync_sub **sub, rstmdb_reply **reply);
int rstmdb_sync_watch_all(rstmdb_sync *s, const rstmdb_watch_all_req *req, rstmdb_sync_sub **sub,
                          rstmdb_reply **reply);
int rstmdb_sync_watch_json(rstmdb_sync *s, const char *op, const char *params, size_t params_len,
                           rstmdb_sync_sub **sub, rstmdb_reply **reply);
const char *rstmdb_sync_sub_id(const rstmdb_sync_sub *sub);

/* The next event, in server order. timeout_ms < 0 waits without limit, 0
 * only takes what already arrived. Returns RSTMDB_OK with *event a new event
 * (rstmdb_event_free), RSTMDB_ERR_TIMEOUT when none came in time, or, once
 * the buffered events are consumed and the subscription has ended, the
 * status of why it ended (RSTMDB_ERR_CLOSED, RSTMDB_ERR_IO, ...; see
 * rstmdb_sync_sub_error) — RSTMDB_ERR_CANCELLED after an UNWATCH. */
int rstmdb_sync_next_event(rstmdb_sync *s, rstmdb_sync_sub *sub, int timeout_ms,
                           rstmdb_event **event);
/* Why the subscription ended (borrowed from the handle); NULL while live or
 * after a plain UNWATCH. */
const rstmdb_error *rstmdb_sync_sub_error(const rstmdb_sync_sub *sub);
/* UNWATCH (when still live), wait for its end, drop buffered events and free
 * the handle. Returns RSTMDB_OK or the status the UNWATCH ended with. */
int rstmdb_sync_unwatch(rstmdb_sync *s, rstmdb_sync_sub *sub);

#ifdef __cplusplus
}
#endif
#endif
