/* rstmdb/client.h: the asynchronous rstmdb client on libevent.
 *
 * One rstmdb_client is one RCPX connection that multiplexes any number of
 * in-flight requests by id and carries subscription events. Everything runs
 * on the caller's event_base and every callback fires from it; the library
 * makes no threads and takes no locks. A client must be used from the thread
 * running its base.
 *
 * Conventions used in this header:
 *  - Functions return RSTMDB_OK (0) or a negative rstmdb_status.
 *  - `x_new(&out, ...)` leaves *out untouched on failure; `x_free(NULL)` is a no-op.
 *  - A trailing `rstmdb_error **err` (may be NULL) receives, on failure, a new
 *    error object owned by the caller (rstmdb_error_free) with the reason.
 *  - Objects handed to callbacks (replies, events, errors) are borrowed and
 *    valid only during that callback.
 *  - It is safe to free the client, cancel a request or unwatch from inside
 *    any callback: the object is released after the callback returns.
 *  - JSON values cross the API as cJSON trees (const = borrowed), or as raw
 *    JSON text where the bytes can pass through untouched.
 */
#ifndef RSTMDB_CLIENT_H
#define RSTMDB_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rstmdb/error.h"

#ifdef __cplusplus
extern "C" {
#endif

struct event_base;
struct evdns_base;

typedef struct rstmdb_options rstmdb_options;
typedef struct rstmdb_tls rstmdb_tls;
typedef struct rstmdb_client rstmdb_client;
typedef struct rstmdb_request rstmdb_request;
typedef struct rstmdb_reply rstmdb_reply;
typedef struct rstmdb_sub rstmdb_sub;
typedef struct rstmdb_event rstmdb_event;

/* ---- TLS ---------------------------------------------------------------- */

/* Like the Go client's TLSFromFiles(ca, cert, key). `ca` NULL = system trust
 * store; `cert`+`key` both set = mTLS client certificate. Verification and
 * hostname check are on. */
int rstmdb_tls_from_files(rstmdb_tls **out, const char *ca, const char *cert, const char *key,
                          rstmdb_error **err);
/* No verification at all: development only. */
int rstmdb_tls_insecure(rstmdb_tls **out, rstmdb_error **err);
/* Name used for SNI and the hostname check (default: the host of the address). */
int rstmdb_tls_set_server_name(rstmdb_tls *tls, const char *name);
void rstmdb_tls_free(rstmdb_tls *tls);

/* ---- Options ------------------------------------------------------------- */

typedef enum rstmdb_wire_mode {
    RSTMDB_WIRE_BINARY_JSON = 0, /* default, recommended */
    RSTMDB_WIRE_JSONL = 1        /* server writes JSON lines; requests stay binary frames */
} rstmdb_wire_mode;

/* Options are plain configuration: every string given to a setter is copied,
 * rstmdb_client_new copies the whole struct, so the caller may free the
 * options right after. Setters return RSTMDB_OK, RSTMDB_ERR_INVALID (NULL or
 * an out-of-range value) or RSTMDB_ERR_NOMEM. */
int rstmdb_options_new(rstmdb_options **out);
void rstmdb_options_free(rstmdb_options *o);
/* Bearer token sent with AUTH after HELLO (NULL = no AUTH). Copied. */
int rstmdb_options_set_auth(rstmdb_options *o, const char *token);
/* TLS configuration; the options keep a reference until freed (NULL = plain TCP). */
int rstmdb_options_set_tls(rstmdb_options *o, rstmdb_tls *tls);
/* Until READY: TCP connect, TLS handshake, HELLO and AUTH together. */
int rstmdb_options_set_connect_timeout_ms(rstmdb_options *o, unsigned ms); /* default 10000 */
int rstmdb_options_set_request_timeout_ms(rstmdb_options *o,
                                          unsigned ms); /* default 30000; 0 = none */
int rstmdb_options_set_client_name(rstmdb_options *o, const char *name);
int rstmdb_options_set_wire_mode(rstmdb_options *o, rstmdb_wire_mode mode);
int rstmdb_options_add_feature(rstmdb_options *o, const char *feature);
int rstmdb_options_set_max_frame(rstmdb_options *o, size_t bytes); /* default 16 MiB */
/* Hard caps (0 is invalid). Requests issued while CONNECTING wait in a queue
 * of at most `n` (default 4096); requests sent or queued and not answered are
 * at most `n` (default 65536). Past a cap the call returns RSTMDB_ERR_NOMEM
 * at once and its callback is never called. */
int rstmdb_options_set_max_queued(rstmdb_options *o, size_t n);
int rstmdb_options_set_max_inflight(rstmdb_options *o, size_t n);
/* Blocking API (rstmdb/sync.h): events buffered per subscription while the
 * caller is not waiting (default 4096); on overflow the subscription ends
 * with RSTMDB_ERR_PROTOCOL "event buffer full". */
int rstmdb_options_set_max_events(rstmdb_options *o, size_t n);
/* Resolve host names asynchronously with this libevent resolver (borrowed:
 * it must outlive every client made with these options, and run on the
 * client's event_base). Each connect looks the name up again, so a name that
 * moves is followed, and tries every address it returns, in order. A failed
 * lookup fails the connect with RSTMDB_ERR_IO, naming the name and the
 * resolver's error; the connect timeout covers the lookup. A lookup cut short
 * by close or free completes on the event loop: run the loop once more before
 * freeing the event_base (as for the BYE below). Without a resolver (the
 * default), a host name is resolved with the system's blocking getaddrinfo
 * at each connect, which stalls the loop while it waits: fine for the
 * blocking API, not for a server. Address literals never wait. */
int rstmdb_options_set_dns(rstmdb_options *o, struct evdns_base *dns);

/* ---- Connection ------------------------------------------------------------ */

typedef enum rstmdb_conn_state {
    RSTMDB_CONN_CONNECTING = 0, /* TCP/TLS connect and HELLO/AUTH under way */
    RSTMDB_CONN_READY = 1,      /* handshaken (and authenticated): requests flow */
    RSTMDB_CONN_CLOSED = 2      /* terminal: failed or closed; pending requests failed */
} rstmdb_conn_state;

/* Called on every state change. On CLOSED `why` says why (never NULL then). */
typedef void (*rstmdb_state_cb)(rstmdb_client *c, rstmdb_conn_state state, const rstmdb_error *why,
                                void *arg);

/* Start connecting to "host:port" (IPv6 as "[::1]:7401") on `base`. Returns at
 * once; requests made before READY are queued and sent after the handshake.
 * `opts` may be NULL (defaults); it is copied. */
int rstmdb_client_new(rstmdb_client **out, struct event_base *base, const char *address,
                      const rstmdb_options *opts, rstmdb_error **err);
void rstmdb_client_set_state_cb(rstmdb_client *c, rstmdb_state_cb cb, void *arg);
rstmdb_conn_state rstmdb_client_state(const rstmdb_client *c);
/* Requests written or queued but not yet answered (for least-loaded picking). */
size_t rstmdb_client_inflight(const rstmdb_client *c);
/* The HELLO result (server_name, server_version, wire_mode, features); NULL before READY. */
const cJSON *rstmdb_client_hello(const rstmdb_client *c);
/* Why the client is CLOSED (borrowed, valid until rstmdb_client_free); NULL before. */
const rstmdb_error *rstmdb_client_error(const rstmdb_client *c);
/* The event_base the client runs on. */
struct event_base *rstmdb_client_base(const rstmdb_client *c);
/* Graceful close: send BYE (when READY), then close. Pending requests and
 * subscriptions end with RSTMDB_ERR_CLOSED. The state callback reports CLOSED.
 * Order on every close (this call, EOF, I/O, protocol or handshake failure):
 * the state callback (CLOSED) first, then each pending request's callback
 * (rstmdb_reply_was_sent() says whether its bytes had reached the socket),
 * then each subscription's on_end. A pending request fails with the close
 * status (CLOSED, IO, PROTOCOL, TLS, TIMEOUT); when a HELLO/AUTH error
 * closed the connection, with CLOSED and that error in the message. The
 * client must still be freed with rstmdb_client_free (it may be, from any
 * of these callbacks; later ones are then skipped). The BYE is flushed even
 * after rstmdb_client_free, for at most 1 s, while the event_base runs. */
void rstmdb_client_close(rstmdb_client *c);
/* Close at once (no BYE) and release everything. Callbacks of pending requests
 * and subscriptions are NOT called after free. */
void rstmdb_client_free(rstmdb_client *c);

/* ---- Requests -------------------------------------------------------------- */

/* Exactly one call per request, unless the request was cancelled. */
typedef void (*rstmdb_reply_cb)(rstmdb_client *c, const rstmdb_reply *reply, void *arg);

/* Raw call: any op name, params as a cJSON object (NULL = {}); `params` is
 * not kept after the call returns. *req_out (may be NULL) is a handle valid
 * until the callback has returned or the request was cancelled. */
int rstmdb_call(rstmdb_client *c, const char *op, const cJSON *params, rstmdb_reply_cb cb,
                void *arg, rstmdb_request **req_out);
/* Same with params as JSON text, which must be one JSON object (checked:
 * RSTMDB_ERR_JSON otherwise); the text goes on the wire as it is. */
int rstmdb_call_json(rstmdb_client *c, const char *op, const char *params, size_t params_len,
                     rstmdb_reply_cb cb, void *arg, rstmdb_request **req_out);
/* Same, for params text the caller has already validated as one JSON object
 * that the server accepts (strict UTF-8, paired surrogates, finite numbers,
 * nesting within serde_json's limit): it is not scanned again. Text that is
 * not such an object makes the server close the connection, failing every
 * request on it, so use this only for bytes checked with the same rules. */
int rstmdb_call_json_trusted(rstmdb_client *c, const char *op, const char *params,
                             size_t params_len, rstmdb_reply_cb cb, void *arg,
                             rstmdb_request **req_out);
/* Forget a request: its callback will not be called; a late response is dropped. */
void rstmdb_request_cancel(rstmdb_request *req);
/* Override the client's request timeout for this one request (0 = none). */
void rstmdb_request_set_timeout_ms(rstmdb_request *req, unsigned ms);
/* The request's wire id ("1", "2", ...), for logs; borrowed like the handle. */
const char *rstmdb_request_id(const rstmdb_request *req);

/* RSTMDB_OK, RSTMDB_ERR_SERVER, or the local failure (TIMEOUT, CLOSED, ...). */
int rstmdb_reply_status(const rstmdb_reply *r);
/* NULL on success. */
const rstmdb_error *rstmdb_reply_error(const rstmdb_reply *r);
/* The parsed `result` object (parsed on first use); NULL on error. */
const cJSON *rstmdb_reply_result(const rstmdb_reply *r);
/* The `result` value exactly as the server sent its bytes; NULL on error. */
const char *rstmdb_reply_result_raw(const rstmdb_reply *r, size_t *len);
/* The whole response document as received; NULL for local failures. */
const char *rstmdb_reply_raw(const rstmdb_reply *r, size_t *len);
/* meta.wal_offset when the server sent one: RSTMDB_OK and *out set, else RSTMDB_ERR_INVALID. */
int rstmdb_reply_meta_wal_offset(const rstmdb_reply *r, uint64_t *out);
/* Whether the request had been written to the connection before it failed:
 * false means the server never saw it, so re-sending elsewhere is safe. */
bool rstmdb_reply_was_sent(const rstmdb_reply *r);
/* An owned deep copy of a (borrowed) reply, to keep it past its callback.
 * NULL on OOM. Free with rstmdb_reply_free. */
rstmdb_reply *rstmdb_reply_dup(const rstmdb_reply *r);
/* Free a reply from rstmdb_reply_dup or the blocking API. NULL, and borrowed
 * replies handed to callbacks, are ignored. */
void rstmdb_reply_free(rstmdb_reply *r);

/* ---- Subscriptions ----------------------------------------------------------- */

/* An event pushed for a subscription, in the order the server sent it. */
typedef void (*rstmdb_event_cb)(rstmdb_sub *sub, const rstmdb_event *ev, void *arg);
/* Once, when the subscription is over: after UNWATCH (why NULL), or when the
 * connection closed (why says why). The handle is invalid after it returns. */
typedef void (*rstmdb_sub_end_cb)(rstmdb_sub *sub, const rstmdb_error *why, void *arg);

/* Subscribe with op "WATCH_INSTANCE" or "WATCH_ALL" and params as a JSON
 * object text (filters, include_ctx, from_offset). `on_reply` gets the WATCH
 * response (subscription_id, wal_offset...) or its error; on error the
 * subscription ends without calling on_end. Events then go to on_event. */
int rstmdb_watch_json(rstmdb_client *c, const char *op, const char *params, size_t params_len,
                      rstmdb_reply_cb on_reply, rstmdb_event_cb on_event, rstmdb_sub_end_cb on_end,
                      void *arg, rstmdb_sub **sub_out);
/* Send UNWATCH; on_end follows when it is answered (or when the connection
 * closes first), always from the event loop, never inside this call. Events
 * that arrive after this call are dropped. Called before the WATCH answer:
 * on_reply is then not called, the UNWATCH goes out once the id is known and
 * on_end is called in every case. Idempotent. */
int rstmdb_unwatch(rstmdb_sub *sub);
const char *rstmdb_sub_id(const rstmdb_sub *sub); /* NULL until subscribed */
rstmdb_client *rstmdb_sub_client(const rstmdb_sub *sub);

/* Event fields. Strings and cJSON values are borrowed from the event (valid
 * while it is: during on_event, or until rstmdb_event_free for an owned one).
 * A NULL event, or a field the event lacks or has with the wrong type, reads
 * as NULL (pointers) or 0 (numbers); wal_offset is read exactly from the
 * received bytes, so offsets above 2^53 survive. */
const char *rstmdb_event_subscription_id(const rstmdb_event *ev);
const char *rstmdb_event_instance_id(const rstmdb_event *ev);
const char *rstmdb_event_machine(const rstmdb_event *ev);
uint32_t rstmdb_event_version(const rstmdb_event *ev);
uint64_t rstmdb_event_wal_offset(const rstmdb_event *ev);
const char *rstmdb_event_from_state(const rstmdb_event *ev);
const char *rstmdb_event_to_state(const rstmdb_event *ev);
const char *rstmdb_event_name(const rstmdb_event *ev);
const cJSON *rstmdb_event_payload(const rstmdb_event *ev); /* JSON null when none */
const cJSON *rstmdb_event_ctx(const rstmdb_event *ev);     /* NULL when not included */
/* The whole event document as received. */
const char *rstmdb_event_raw(const rstmdb_event *ev, size_t *len);
/* The event as a compact JSON object without "type" and "subscription_id":
 * the SSE data line. Built from the received bytes, not re-serialised. */
const char *rstmdb_event_body(const rstmdb_event *ev, size_t *len);
/* An owned copy of a (borrowed) event; NULL on OOM. Free with rstmdb_event_free. */
rstmdb_event *rstmdb_event_dup(const rstmdb_event *ev);
/* Free an event from rstmdb_event_dup or the blocking API; NULL and borrowed
 * events are ignored. */
void rstmdb_event_free(rstmdb_event *ev);

#ifdef __cplusplus
}
#endif
#endif
