/* engine_int.h (private to the engine*.c files): the engine's state and the
 * per-request op context. engine.c owns the envelope, sessions, dispatch and
 * BATCH; engine_ops.c the machine/instance/WAL ops; engine_watch.c the
 * subscriptions and event fan-out. */
#ifndef TESTD_ENGINE_INT_H
#define TESTD_ENGINE_INT_H

#include "engine.h"
#include "eresp.h"
#include "jval.h"
#include "machine.h"
#include "smap.h"
#include "strbuf.h"
#include "wal.h"

/* Deliveries per request are capped: a BATCH of 100 APPLY_EVENTs to an
 * instance with 10,000 watchers would otherwise queue 1,000,000 copies. The
 * real server's rings drop the oldest events for lagging subscribers; we
 * drop the excess the same silent way. */
#define ENGINE_MAX_DELIVERIES 262144 /* default of engine_config.max_deliveries */

typedef struct sub sub;
typedef struct instance instance;

typedef struct conn {
    uint64_t id;
    bool jsonl;  /* HELLO negotiated "jsonl" output */
    bool authed; /* AUTH succeeded on this connection */
    sub *subs;   /* every subscription of this connection */
} conn;

struct sub {
    char id[48]; /* "sub-" + UUIDv4 */
    uint64_t conn_id;
    bool is_all;
    bool include_ctx;
    bool delivers;   /* false when created inside BATCH: registered, never fed */
    bool in_session; /* UNWATCH answers removed:true while set */
    instance *inst;  /* WATCH_INSTANCE target (NULL after FLUSH_ALL) */
    jval *f_machines, *f_from, *f_to, *f_events; /* WATCH_ALL filters (NULL = all) */
    sub *conn_next, *conn_prev;
    sub *list_next, *list_prev; /* instance watcher list or the WATCH_ALL list */
};

typedef struct idem_entry {
    char *from_state;
    char *to_state;
    jval *ctx;
    uint64_t wal_offset;
} idem_entry;

struct instance {
    char *id;
    size_t idlen;
    char *machine;
    uint32_t version;
    const machine_def *def;
    char *state;
    jval *ctx;           /* never NULL: JV_NULL for a null ctx */
    char *last_event_id; /* NULL when unset */
    uint64_t last_wal_offset;
    int64_t created_at, updated_at; /* ms */
    bool deleted;
    bool has_snapshot;
    uint64_t snapshot_offset;
    smap idem;     /* idempotency_key -> idem_entry* */
    sub *watchers; /* delivering WATCH_INSTANCE subscriptions */
};

typedef struct machine_entry {
    char *name;
    size_t nlen;
    machine_def **defs; /* sorted by version */
    size_t ndefs, cap;
} machine_entry;

struct engine {
    engine_compat compat;
    bool auth_required;
    char **token_hashes;
    size_t ntoken_hashes;
    uint32_t max_machine_versions;
    bool allow_flush_all;
    size_t max_deliveries;
    smap conns;     /* 8 raw id bytes -> conn* */
    smap machines;  /* name -> machine_entry* */
    smap instances; /* id -> instance* */
    smap subs;      /* subscription id -> sub* */
    sub *all_subs;  /* delivering WATCH_ALL subscriptions */
    wal *wal;
    size_t snapshot_count;
};

/* Per-request state threaded through handlers. */
typedef struct opctx {
    engine *e;
    conn *c;
    bool in_batch;
    strbuf res; /* result JSON text when OP_OK */
    ecode code; /* error when OP_ERR */
    char *msg;
    bool bye;        /* close after the reply */
    engine_out *out; /* deliveries go here */
} opctx;

/* Set an error (printf-style message). Returns OP_ERR, or OP_NOMEM. */
int op_fail(opctx *x, ecode code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Take ownership of a malloc'd message (NULL = OOM). */
int op_fail_take(opctx *x, ecode code, char *msg);
/* BAD_REQUEST "invalid request: <serde msg>", taking ownership of msg. */
int op_bad_request(opctx *x, char *serde_msg);

/* A lowercase hyphenated UUIDv4 (36 chars + NUL). */
void engine_uuid4(char out[37]);
int64_t engine_now_ms(void);

/* engine_ops.c */
int op_put_machine(opctx *x, const jval *params);
int op_get_machine(opctx *x, const jval *params);
int op_list_machines(opctx *x, const jval *params);
int op_create_instance(opctx *x, const jval *params);
int op_get_instance(opctx *x, const jval *params);
int op_list_instances(opctx *x, const jval *params);
int op_delete_instance(opctx *x, const jval *params);
int op_apply_event(opctx *x, const jval *params);
int op_snapshot_instance(opctx *x, const jval *params);
int op_wal_read(opctx *x, const jval *params);
int op_wal_stats(opctx *x, const jval *params);
int op_compact(opctx *x, const jval *params);
int op_flush_all(opctx *x, const jval *params);
void instance_free(instance *in);
void machine_entry_free(machine_entry *m);

/* engine_watch.c */
int op_watch_instance(opctx *x, const jval *params);
int op_watch_all(opctx *x, const jval *params);
int op_unwatch(opctx *x, const jval *params);
/* Fan an applied event out to every matching delivering subscription. */
int watch_broadcast(opctx *x, const instance *in, uint64_t wal_offset, const char *from_state,
                    const char *to_state, const char *event, size_t evlen, const jval *payload,
                    const jval *ctx);
void watch_drop_conn(engine *e, conn *c);
void sub_free(sub *s);
void watch_detach_instance(engine *e, instance *in);

#endif
