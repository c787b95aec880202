/* rstmdb/ops.h: typed requests and typed result views for the 22 operations
 * of the Go client (the 21 of the RCP protocol plus FLUSH_ALL).
 *
 * Requests: a struct per operation, input only. Zero-initialise it and set
 * what you need: zero means "omitted" or the server default, as each field
 * says. Strings and cJSON values are borrowed for the duration of the call
 * only (they are serialised before it returns). `params` always goes out as
 * an object.
 *
 * Each async function has the shape of rstmdb_call(): it returns RSTMDB_OK
 * (the callback will run exactly once unless the request is cancelled) or a
 * negative status (the callback will not run): RSTMDB_ERR_INVALID (NULL or a
 * missing required field), RSTMDB_ERR_NOMEM, RSTMDB_ERR_FRAME_TOO_LARGE,
 * RSTMDB_ERR_CLOSED.
 *
 * Results: `rstmdb_reply_<op>(reply, &out)` fills a view whose strings and
 * cJSON pointers are borrowed from the reply (valid as long as the reply:
 * during the callback, or until rstmdb_reply_free for an owned one). It
 * returns RSTMDB_OK, the reply's own status when the call failed (e.g.
 * RSTMDB_ERR_SERVER: read rstmdb_reply_error()), RSTMDB_ERR_INVALID for a
 * NULL reply or out, RSTMDB_ERR_NOMEM when the result could not be parsed for
 * lack of memory, or RSTMDB_ERR_PROTOCOL when the result is not an object or
 * lacks a required field. *out is zeroed before it is filled, so optional
 * members the server left out read as 0/NULL/false. Integers the server sends as u64 at the
 * top level of a result (WAL offsets) are read exactly from the received
 * bytes; those inside arrays come from cJSON and are exact below 2^53.
 */
#ifndef RSTMDB_OPS_H
#define RSTMDB_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rstmdb/client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- requests ------------------------------------------------------------ */

typedef struct rstmdb_put_machine_req {
    const char *machine;     /* required */
    uint32_t version;        /* 0 is a valid version */
    const cJSON *definition; /* required: {states, initial, transitions, meta?} */
    const char *checksum;    /* optional; the server ignores it */
} rstmdb_put_machine_req;

typedef struct rstmdb_get_machine_req {
    const char *machine; /* required */
    uint32_t version;
} rstmdb_get_machine_req;

typedef struct rstmdb_create_instance_req {
    const char *machine; /* required */
    uint32_t version;
    const char *instance_id; /* NULL: the server generates a UUID */
    /* NULL sends {} (not null): with a null ctx the server never merges
     * payloads into it (PROTOCOL.md §8.2). Any JSON value is accepted. */
    const cJSON *initial_ctx;
    const char *idempotency_key; /* optional */
} rstmdb_create_instance_req;

typedef struct rstmdb_get_instance_req {
    const char *instance_id; /* required */
} rstmdb_get_instance_req;

typedef struct rstmdb_list_instances_req {
    const char *machine; /* optional exact filter */
    const char *state;   /* optional exact filter */
    bool has_limit;      /* false: server default (100) */
    uint32_t limit;
    uint32_t offset; /* 0 = from the start */
} rstmdb_list_instances_req;

typedef struct rstmdb_delete_instance_req {
    const char *instance_id;     /* required */
    const char *idempotency_key; /* optional */
} rstmdb_delete_instance_req;

typedef struct rstmdb_apply_event_req {
    const char *instance_id;    /* required */
    const char *event;          /* required */
    const cJSON *payload;       /* optional (NULL: omitted, the server uses null) */
    const char *expected_state; /* optional optimistic-concurrency check */
    bool has_expected_wal_offset;
    uint64_t expected_wal_offset;
    const char *event_id;        /* optional */
    const char *idempotency_key; /* optional */
} rstmdb_apply_event_req;

typedef enum rstmdb_batch_mode {
    RSTMDB_BATCH_ATOMIC = 0,     /* stop at the first error (no rollback on this server) */
    RSTMDB_BATCH_BEST_EFFORT = 1 /* run every op, report each */
} rstmdb_batch_mode;

/* One op of a BATCH: an op name and its params object (NULL = {}). Build
 * params for the typed ops with rstmdb_params_*() below. */
typedef struct rstmdb_batch_op {
    const char *op;
    const cJSON *params;
} rstmdb_batch_op;

typedef struct rstmdb_batch_req {
    rstmdb_batch_mode mode;
    const rstmdb_batch_op *ops; /* at most 100 on the real server */
    size_t nops;
} rstmdb_batch_req;

typedef struct rstmdb_snapshot_instance_req {
    const char *instance_id; /* required */
} rstmdb_snapshot_instance_req;

typedef struct rstmdb_wal_read_req {
    uint64_t from_offset; /* records at offsets >= this; 0 = from the start */
    /* Send a limit: without one the server returns everything, and a reply
     * above 16 MiB makes it close the connection. */
    bool has_limit;
    uint64_t limit;
} rstmdb_wal_read_req;

typedef struct rstmdb_compact_req {
    bool force_snapshot;
} rstmdb_compact_req;

typedef struct rstmdb_watch_instance_req {
    const char *instance_id; /* required */
    bool exclude_ctx;        /* false: events carry ctx (the server default) */
    bool has_from_offset;    /* sent when set; this server ignores it (no replay) */
    uint64_t from_offset;
} rstmdb_watch_instance_req;

/* Filters: an empty list matches everything; values in one list are OR'ed,
 * lists are AND'ed (the Go client's WatchMachines, WatchToStates...). */
typedef struct rstmdb_watch_all_req {
    const char *const *machines;
    size_t nmachines;
    const char *const *from_states;
    size_t nfrom_states;
    const char *const *to_states;
    size_t nto_states;
    const char *const *events;
    size_t nevents;
    bool exclude_ctx;
    bool has_from_offset;
    uint64_t from_offset;
} rstmdb_watch_all_req;

/* ---- params builders (for BATCH, or rstmdb_call) -----------------------------
 * Each returns a new cJSON object the caller owns (cJSON_Delete), or NULL on
 * OOM or a missing required field. u64 values above 2^53 lose precision in
 * cJSON: the typed calls below do not go through these and stay exact. */
cJSON *rstmdb_params_create_instance(const rstmdb_create_instance_req *req);
cJSON *rstmdb_params_apply_event(const rstmdb_apply_event_req *req);
cJSON *rstmdb_params_delete_instance(const rstmdb_delete_instance_req *req);
cJSON *rstmdb_params_put_machine(const rstmdb_put_machine_req *req);

/* ---- async calls ------------------------------------------------------------- */

int rstmdb_ping(rstmdb_client *c, rstmdb_reply_cb cb, void *arg, rstmdb_request **req_out);
int rstmdb_info(rstmdb_client *c, rstmdb_reply_cb cb, void *arg, rstmdb_request **req_out);
int rstmdb_put_machine(rstmdb_client *c, const rstmdb_put_machine_req *req, rstmdb_reply_cb cb,
                       void *arg, rstmdb_request **req_out);
int rstmdb_get_machine(rstmdb_client *c, const rstmdb_get_machine_req *req, rstmdb_reply_cb cb,
                       void *arg, rstmdb_request **req_out);
int rstmdb_list_machines(rstmdb_client *c, rstmdb_reply_cb cb, void *arg, rstmdb_request **req_out);
int rstmdb_create_instance(rstmdb_client *c, const rstmdb_create_instance_req *req,
                           rstmdb_reply_cb cb, void *arg, rstmdb_request **req_out);
int rstmdb_get_instance(rstmdb_client *c, const rstmdb_get_instance_req *req, rstmdb_reply_cb cb,
                        void *arg, rstmdb_request **req_out);
int rstmdb_list_instances(rstmdb_client *c, const rstmdb_list_instances_req *req,
                          rstmdb_reply_cb cb, void *arg, rstmdb_request **req_out);
int rstmdb_delete_instance(rstmdb_client *c, const rstmdb_delete_instance_req *req,
                           rstmdb_reply_cb cb, void *arg, rstmdb_request **req_out);
int rstmdb_apply_event(rstmdb_client *c, const rstmdb_apply_event_req *req, rstmdb_reply_cb cb,
                       void *arg, rstmdb_request **req_out);
int rstmdb_batch(rstmdb_client *c, const rstmdb_batch_req *req, rstmdb_reply_cb cb, void *arg,
                 rstmdb_request **req_out);
int rstmdb_snapshot_instance(rstmdb_client *c, const rstmdb_snapshot_instance_req *req,
                             rstmdb_reply_cb cb, void *arg, rstmdb_request **req_out);
int rstmdb_wal_read(rstmdb_client *c, const rstmdb_wal_read_req *req, rstmdb_reply_cb cb, void *arg,
                    rstmdb_request **req_out);
int rstmdb_wal_stats(rstmdb_client *c, rstmdb_reply_cb cb, void *arg, rstmdb_request **req_out);
/* req may be NULL (force_snapshot false). */
int rstmdb_compact(rstmdb_client *c, const rstmdb_compact_req *req, rstmdb_reply_cb cb, void *arg,
                   rstmdb_request **req_out);
/* Newer servers only, and only when enabled there: the 21-op server closes
 * the connection on it (PROTOCOL.md §4.0). Check rstmdb_info first. */
int rstmdb_flush_all(rstmdb_client *c, rstmdb_reply_cb cb, void *arg, rstmdb_request **req_out);

/* Subscriptions: as rstmdb_watch_json (rstmdb/client.h) with typed params. */
int rstmdb_watch_instance(rstmdb_client *c, const rstmdb_watch_instance_req *req,
                          rstmdb_reply_cb on_reply, rstmdb_event_cb on_event,
                          rstmdb_sub_end_cb on_end, void *arg, rstmdb_sub **sub_out);
int rstmdb_watch_all(rstmdb_client *c, const rstmdb_watch_all_req *req, rstmdb_reply_cb on_reply,
                     rstmdb_event_cb on_event, rstmdb_sub_end_cb on_end, void *arg,
                     rstmdb_sub **sub_out);

/* ---- result views -------------------------------------------------------------- */

typedef struct rstmdb_info_result {
    const char *server_name;
    const char *server_version;
    uint32_t protocol_version;
    uint64_t max_batch_ops;
    uint64_t max_frame_bytes;
    const cJSON *features; /* array of strings */
} rstmdb_info_result;

typedef struct rstmdb_put_machine_result {
    bool created; /* false: an identical definition was already stored */
    const char *machine;
    uint32_t version;
    const char *stored_checksum;
} rstmdb_put_machine_result;

typedef struct rstmdb_machine_result {
    const char *checksum;
    const cJSON *definition; /* normalised: from is always an array, keys sorted */
    const char *initial;     /* from the definition */
    const cJSON *states;     /* array of strings */
} rstmdb_machine_result;

typedef struct rstmdb_machine_list_result {
    const cJSON *items; /* [{machine, versions:[...]}] sorted by name */
    size_t count;
} rstmdb_machine_list_result;

/* Item i (< count) of a machine list: name and versions (array of numbers),
 * borrowed from the reply; either out pointer may be NULL.
 * RSTMDB_ERR_INVALID for NULL l or i out of range, RSTMDB_ERR_PROTOCOL when
 * the item lacks either. */
int rstmdb_machine_list_item(const rstmdb_machine_list_result *l, size_t i, const char **machine,
                             const cJSON **versions);

typedef struct rstmdb_create_instance_result {
    const char *instance_id;
    const char *state;
    uint64_t wal_offset;
} rstmdb_create_instance_result;

typedef struct rstmdb_instance_result {
    const char *machine;
    uint32_t version;
    const char *state;
    const cJSON *ctx;          /* any JSON, possibly null */
    const char *last_event_id; /* NULL when none */
    uint64_t last_wal_offset;
} rstmdb_instance_result;

typedef struct rstmdb_instance_summary {
    const char *id;
    const char *machine;
    uint32_t version;
    const char *state;
    uint64_t created_at; /* Unix ms */
    uint64_t updated_at; /* Unix ms */
    uint64_t last_wal_offset;
} rstmdb_instance_summary;

typedef struct rstmdb_instance_list_result {
    const cJSON *instances; /* array of objects; read with rstmdb_instance_list_item */
    size_t count;
    uint64_t total;
    bool has_more;
} rstmdb_instance_list_result;

/* Item i (< count) of an instance list into *out (zeroed first; strings
 * borrowed from the reply). RSTMDB_ERR_INVALID for NULL or i out of range,
 * RSTMDB_ERR_PROTOCOL when the item lacks its id or state. */
int rstmdb_instance_list_item(const rstmdb_instance_list_result *l, size_t i,
                              rstmdb_instance_summary *out);

typedef struct rstmdb_delete_instance_result {
    bool deleted;
    const char *instance_id;
    uint64_t wal_offset;
} rstmdb_delete_instance_result;

typedef struct rstmdb_apply_result {
    bool applied; /* also true on an idempotent replay (PROTOCOL.md §4.8) */
    const char *from_state;
    const char *to_state;
    const cJSON *ctx;     /* after the merge; possibly null */
    const char *event_id; /* NULL unless the request carried one */
    uint64_t wal_offset;
} rstmdb_apply_result;

typedef struct rstmdb_batch_result {
    const cJSON *results; /* array; read with rstmdb_batch_result_item */
    size_t count;
} rstmdb_batch_result;

typedef struct rstmdb_batch_item {
    bool ok;                /* status "ok" */
    const cJSON *result;    /* when ok */
    const char *error_code; /* when not ok */
    const char *error_message;
    bool error_retryable;
} rstmdb_batch_item;

/* Item i (< count) of a BATCH result into *out (zeroed first; borrowed from
 * the reply). RSTMDB_ERR_INVALID for NULL or i out of range,
 * RSTMDB_ERR_PROTOCOL when the item has no "status". */
int rstmdb_batch_result_item(const rstmdb_batch_result *b, size_t i, rstmdb_batch_item *out);

typedef struct rstmdb_snapshot_result {
    const char *instance_id;
    const char *snapshot_id;
    uint64_t wal_offset;
    bool has_size; /* size_bytes and checksum present */
    uint64_t size_bytes;
    const char *checksum;
} rstmdb_snapshot_result;

typedef struct rstmdb_wal_read_result {
    const cJSON *records; /* [{offset, sequence, entry}] */
    size_t count;
    bool has_next; /* false when next_offset was null (no records) */
    uint64_t next_offset;
} rstmdb_wal_read_result;

typedef struct rstmdb_wal_record {
    uint64_t offset;
    uint64_t sequence;
    const cJSON *entry;
} rstmdb_wal_record;

/* Record i (< count) of a WAL_READ result (entry borrowed from the reply).
 * RSTMDB_ERR_INVALID for NULL or i out of range, RSTMDB_ERR_PROTOCOL when
 * the record has no "entry". */
int rstmdb_wal_read_record(const rstmdb_wal_read_result *w, size_t i, rstmdb_wal_record *out);

typedef struct rstmdb_wal_stats_result {
    uint64_t entry_count;
    uint64_t segment_count;
    uint64_t latest_offset;
    uint64_t total_size_bytes;
    uint64_t bytes_read, bytes_written, fsyncs, reads, writes; /* io_stats */
} rstmdb_wal_stats_result;

typedef struct rstmdb_compact_result {
    uint64_t bytes_reclaimed;
    uint64_t segments_deleted;
    uint64_t snapshots_created;
    uint64_t total_snapshots;
    uint64_t wal_segments;
} rstmdb_compact_result;

typedef struct rstmdb_flush_all_result {
    bool flushed;
    uint64_t instances_removed;
    uint64_t machines_removed;
} rstmdb_flush_all_result;

typedef struct rstmdb_watch_instance_result {
    const char *subscription_id;
    const char *instance_id;
    const char *current_state;
    uint64_t current_wal_offset;
} rstmdb_watch_instance_result;

typedef struct rstmdb_watch_all_result {
    const char *subscription_id;
    uint64_t wal_offset; /* where the next WAL record will be written */
} rstmdb_watch_all_result;

typedef struct rstmdb_unwatch_result {
    bool removed;
    const char *subscription_id;
} rstmdb_unwatch_result;

int rstmdb_reply_ping(const rstmdb_reply *r); /* RSTMDB_OK when pong is true */
int rstmdb_reply_info(const rstmdb_reply *r, rstmdb_info_result *out);
int rstmdb_reply_put_machine(const rstmdb_reply *r, rstmdb_put_machine_result *out);
int rstmdb_reply_get_machine(const rstmdb_reply *r, rstmdb_machine_result *out);
int rstmdb_reply_list_machines(const rstmdb_reply *r, rstmdb_machine_list_result *out);
int rstmdb_reply_create_instance(const rstmdb_reply *r, rstmdb_create_instance_result *out);
int rstmdb_reply_get_instance(const rstmdb_reply *r, rstmdb_instance_result *out);
int rstmdb_reply_list_instances(const rstmdb_reply *r, rstmdb_instance_list_result *out);
int rstmdb_reply_delete_instance(const rstmdb_reply *r, rstmdb_delete_instance_result *out);
int rstmdb_reply_apply_event(const rstmdb_reply *r, rstmdb_apply_result *out);
int rstmdb_reply_batch(const rstmdb_reply *r, rstmdb_batch_result *out);
int rstmdb_reply_snapshot_instance(const rstmdb_reply *r, rstmdb_snapshot_result *out);
int rstmdb_reply_wal_read(const rstmdb_reply *r, rstmdb_wal_read_result *out);
int rstmdb_reply_wal_stats(const rstmdb_reply *r, rstmdb_wal_stats_result *out);
int rstmdb_reply_compact(const rstmdb_reply *r, rstmdb_compact_result *out);
int rstmdb_reply_flush_all(const rstmdb_reply *r, rstmdb_flush_all_result *out);
int rstmdb_reply_watch_instance(const rstmdb_reply *r, rstmdb_watch_instance_result *out);
int rstmdb_reply_watch_all(const rstmdb_reply *r, rstmdb_watch_all_result *out);
int rstmdb_reply_unwatch(const rstmdb_reply *r, rstmdb_unwatch_result *out);

#ifdef __cplusplus
}
#endif
#endif
