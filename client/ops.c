/* ops.c: the typed operations: params text from typed requests, the async
 * calls over rstmdb_call_json/rstmdb_watch_json, and typed views of results.
 * It owns no connection state and never sends anything itself.
 */
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "jout.h"
#include "jscan.h"
#include "ops_int.h"
#include "rstmdb/frame.h"
#include "rstmdb/ops.h"

/* ---- params text ----------------------------------------------------------- */

static int ops_finish(jout *j, char **out, size_t *len)
{
    return jout_take(j, out, len);
}

#define OPS_BEGIN(req)                       \
    jout j;                                  \
    if (!(req) || !out || !len)              \
        return RSTMDB_ERR_INVALID;           \
    jout_init(&j, RSTMDB_FRAME_MAX_PAYLOAD); \
    jout_begin(&j)

#define OPS_END() \
    jout_end(&j); \
    return ops_finish(&j, out, len)

int ops_text_put_machine(const rstmdb_put_machine_req *req, char **out, size_t *len)
{
    if (req && (!req->machine || !req->definition))
        return RSTMDB_ERR_INVALID;
    OPS_BEGIN(req);
    jout_str(&j, "machine", req->machine);
    jout_u64(&j, "version", req->version);
    jout_json(&j, "definition", req->definition);
    jout_str(&j, "checksum", req->checksum);
    OPS_END();
}

int ops_text_get_machine(const rstmdb_get_machine_req *req, char **out, size_t *len)
{
    if (req && !req->machine)
        return RSTMDB_ERR_INVALID;
    OPS_BEGIN(req);
    jout_str(&j, "machine", req->machine);
    jout_u64(&j, "version", req->version);
    OPS_END();
}

int ops_text_create_instance(const rstmdb_create_instance_req *req, char **out, size_t *len)
{
    if (req && !req->machine)
        return RSTMDB_ERR_INVALID;
    OPS_BEGIN(req);
    jout_str(&j, "instance_id", req->instance_id);
    jout_str(&j, "machine", req->machine);
    jout_u64(&j, "version", req->version);
    if (req->initial_ctx)
        jout_json(&j, "initial_ctx", req->initial_ctx);
    else
        jout_raw(&j, "initial_ctx", "{}", 2);
    jout_str(&j, "idempotency_key", req->idempotency_key);
    OPS_END();
}

int ops_text_get_instance(const rstmdb_get_instance_req *req, char **out, size_t *len)
{
    if (req && !req->instance_id)
        return RSTMDB_ERR_INVALID;
    OPS_BEGIN(req);
    jout_str(&j, "instance_id", req->instance_id);
    OPS_END();
}

int ops_text_list_instances(const rstmdb_list_instances_req *req, char **out, size_t *len)
{
    static const rstmdb_list_instances_req none;
    if (!req)
        req = &none;
    OPS_BEGIN(req);
    jout_str(&j, "machine", req->machine);
    jout_str(&j, "state", req->state);
    if (req->has_limit)
        jout_u64(&j, "limit", req->limit);
    if (req->offset)
        jout_u64(&j, "offset", req->offset);
    OPS_END();
}

int ops_text_delete_instance(const rstmdb_delete_instance_req *req, char **out, size_t *len)
{
    if (req && !req->instance_id)
        return RSTMDB_ERR_INVALID;
    OPS_BEGIN(req);
    jout_str(&j, "instance_id", req->instance_id);
    jout_str(&j, "idempotency_key", req->idempotency_key);
    OPS_END();
}

int ops_text_apply_event(const rstmdb_apply_event_req *req, char **out, size_t *len)
{
    if (req && (!req->instance_id || !req->event))
        return RSTMDB_ERR_INVALID;
    OPS_BEGIN(req);
    jout_str(&j, "instance_id", req->instance_id);
    jout_str(&j, "event", req->event);
    jout_json(&j, "payload", req->payload);
    jout_str(&j, "expected_state", req->expected_state);
    if (req->has_expected_wal_offset)
        jout_u64(&j, "expected_wal_offset", req->expected_wal_offset);
    jout_str(&j, "event_id", req->event_id);
    jout_str(&j, "idempotency_key", req->idempotency_key);
    OPS_END();
}

int ops_text_batch(const rstmdb_batch_req *req, char **out, size_t *len)
{
    if (req && req->nops && !req->ops)
        return RSTMDB_ERR_INVALID;
    for (size_t i = 0; req && i < req->nops; i++)
        if (!req->ops[i].op || (req->ops[i].params && !cJSON_IsObject(req->ops[i].params)))
            return RSTMDB_ERR_INVALID;
    OPS_BEGIN(req);
    jout_str(&j, "mode", req->mode == RSTMDB_BATCH_ATOMIC ? "atomic" : "best_effort");
    jout_arr_begin(&j, "ops");
    for (size_t i = 0; i < req->nops; i++) {
        jout_begin(&j);
        jout_str(&j, "op", req->ops[i].op);
        if (req->ops[i].params)
            jout_json(&j, "params", req->ops[i].params);
        else
            jout_raw(&j, "params", "{}", 2);
        jout_end(&j);
    }
    jout_arr_end(&j);
    OPS_END();
}

int ops_text_snapshot_instance(const rstmdb_snapshot_instance_req *req, char **out, size_t *len)
{
    if (req && !req->instance_id)
        return RSTMDB_ERR_INVALID;
    OPS_BEGIN(req);
    jout_str(&j, "instance_id", req->instance_id);
    OPS_END();
}

int ops_text_wal_read(const rstmdb_wal_read_req *req, char **out, size_t *len)
{
    OPS_BEGIN(req);
    jout_u64(&j, "from_offset", req->from_offset);
    if (req->has_limit)
        jout_u64(&j, "limit", req->limit);
    OPS_END();
}

int ops_text_compact(const rstmdb_compact_req *req, char **out, size_t *len)
{
    static const rstmdb_compact_req none;
    if (!req)
        req = &none;
    OPS_BEGIN(req);
    jout_bool(&j, "force_snapshot", req->force_snapshot);
    OPS_END();
}

int ops_text_watch_instance(const rstmdb_watch_instance_req *req, char **out, size_t *len)
{
    if (req && !req->instance_id)
        return RSTMDB_ERR_INVALID;
    OPS_BEGIN(req);
    jout_str(&j, "instance_id", req->instance_id);
    jout_bool(&j, "include_ctx", !req->exclude_ctx);
    if (req->has_from_offset)
        jout_u64(&j, "from_offset", req->from_offset);
    OPS_END();
}

int ops_text_watch_all(const rstmdb_watch_all_req *req, char **out, size_t *len)
{
    static const rstmdb_watch_all_req none;
    if (!req)
        req = &none;
    if ((req->nmachines && !req->machines) || (req->nfrom_states && !req->from_states) ||
        (req->nto_states && !req->to_states) || (req->nevents && !req->events))
        return RSTMDB_ERR_INVALID;
    OPS_BEGIN(req);
    jout_bool(&j, "include_ctx", !req->exclude_ctx);
    if (req->has_from_offset)
        jout_u64(&j, "from_offset", req->from_offset);
    if (req->nmachines)
        jout_strs(&j, "machines", req->machines, req->nmachines);
    if (req->nfrom_states)
        jout_strs(&j, "from_states", req->from_states, req->nfrom_states);
    if (req->nto_states)
        jout_strs(&j, "to_states", req->to_states, req->nto_states);
    if (req->nevents)
        jout_strs(&j, "events", req->events, req->nevents);
    OPS_END();
}

/* ---- params as cJSON (for BATCH) ------------------------------------------------- */

static cJSON *ops_text_to_json(int rc, char *text, size_t len)
{
    if (rc != RSTMDB_OK)
        return NULL;
    cJSON *p = cJSON_ParseWithLength(text, len);
    free(text);
    return p;
}

cJSON *rstmdb_params_create_instance(const rstmdb_create_instance_req *req)
{
    char *t = NULL;
    size_t n = 0;
    int rc = ops_text_create_instance(req, &t, &n);
    return ops_text_to_json(rc, t, n);
}

cJSON *rstmdb_params_apply_event(const rstmdb_apply_event_req *req)
{
    char *t = NULL;
    size_t n = 0;
    int rc = ops_text_apply_event(req, &t, &n);
    return ops_text_to_json(rc, t, n);
}

cJSON *rstmdb_params_delete_instance(const rstmdb_delete_instance_req *req)
{
    char *t = NULL;
    size_t n = 0;
    int rc = ops_text_delete_instance(req, &t, &n);
    return ops_text_to_json(rc, t, n);
}

cJSON *rstmdb_params_put_machine(const rstmdb_put_machine_req *req)
{
    char *t = NULL;
    size_t n = 0;
    int rc = ops_text_put_machine(req, &t, &n);
    return ops_text_to_json(rc, t, n);
}

/* ---- async calls ---------------------------------------------------------------- */

static int ops_send(rstmdb_client *c, const char *op, int rc, char *text, size_t len,
                    rstmdb_reply_cb cb, void *arg, rstmdb_request **req_out)
{
    if (rc != RSTMDB_OK)
        return rc;
    rc = rstmdb_call_json(c, op, text, len, cb, arg, req_out);
    free(text);
    return rc;
}

#define OPS_CALL(fn, OP, type, enc)                                          \
    int fn(rstmdb_client *c, const type *req, rstmdb_reply_cb cb, void *arg, \
           rstmdb_request **req_out)                                         \
    {                                                                        \
        char *t = NULL;                                                      \
        size_t n = 0;                                                        \
        if (!c || !cb)                                                       \
            return RSTMDB_ERR_INVALID;                                       \
        int rc = enc(req, &t, &n);                                           \
        return ops_send(c, OP, rc, t, n, cb, arg, req_out);                  \
    }

OPS_CALL(rstmdb_put_machine, "PUT_MACHINE", rstmdb_put_machine_req, ops_text_put_machine)
OPS_CALL(rstmdb_get_machine, "GET_MACHINE", rstmdb_get_machine_req, ops_text_get_machine)
OPS_CALL(rstmdb_create_instance, "CREATE_INSTANCE", rstmdb_create_instance_req,
         ops_text_create_instance)
OPS_CALL(rstmdb_get_instance, "GET_INSTANCE", rstmdb_get_instance_req, ops_text_get_instance)
OPS_CALL(rstmdb_list_instances, "LIST_INSTANCES", rstmdb_list_instances_req,
         ops_text_list_instances)
OPS_CALL(rstmdb_delete_instance, "DELETE_INSTANCE", rstmdb_delete_instance_req,
         ops_text_delete_instance)
OPS_CALL(rstmdb_apply_event, "APPLY_EVENT", rstmdb_apply_event_req, ops_text_apply_event)
OPS_CALL(rstmdb_batch, "BATCH", rstmdb_batch_req, ops_text_batch)
OPS_CALL(rstmdb_snapshot_instance, "SNAPSHOT_INSTANCE", rstmdb_snapshot_instance_req,
         ops_text_snapshot_instance)
OPS_CALL(rstmdb_wal_read, "WAL_READ", rstmdb_wal_read_req, ops_text_wal_read)
OPS_CALL(rstmdb_compact, "COMPACT", rstmdb_compact_req, ops_text_compact)

int rstmdb_ping(rstmdb_client *c, rstmdb_reply_cb cb, void *arg, rstmdb_request **req_out)
{
    return rstmdb_call_json(c, "PING", "{}", 2, cb, arg, req_out);
}

int rstmdb_info(rstmdb_client *c, rstmdb_reply_cb cb, void *arg, rstmdb_request **req_out)
{
    return rstmdb_call_json(c, "INFO", "{}", 2, cb, arg, req_out);
}

int rstmdb_list_machines(rstmdb_client *c, rstmdb_reply_cb cb, void *arg, rstmdb_request **req_out)
{
    return rstmdb_call_json(c, "LIST_MACHINES", "{}", 2, cb, arg, req_out);
}

int rstmdb_wal_stats(rstmdb_client *c, rstmdb_reply_cb cb, void *arg, rstmdb_request **req_out)
{
    return rstmdb_call_json(c, "WAL_STATS", "{}", 2, cb, arg, req_out);
}

int rstmdb_flush_all(rstmdb_client *c, rstmdb_reply_cb cb, void *arg, rstmdb_request **req_out)
{
    return rstmdb_call_json(c, "FLUSH_ALL", "{}", 2, cb, arg, req_out);
}

int rstmdb_watch_instance(rstmdb_client *c, const rstmdb_watch_instance_req *req,
                          rstmdb_reply_cb on_reply, rstmdb_event_cb on_event,
                          rstmdb_sub_end_cb on_end, void *arg, rstmdb_sub **sub_out)
{
    char *t = NULL;
    size_t n = 0;
    if (!c)
        return RSTMDB_ERR_INVALID;
    int rc = ops_text_watch_instance(req, &t, &n);
    if (rc != RSTMDB_OK)
        return rc;
    rc = rstmdb_watch_json(c, "WATCH_INSTANCE", t, n, on_reply, on_event, on_end, arg, sub_out);
    free(t);
    return rc;
}

int rstmdb_watch_all(rstmdb_client *c, const rstmdb_watch_all_req *req, rstmdb_reply_cb on_reply,
                     rstmdb_event_cb on_event, rstmdb_sub_end_cb on_end, void *arg,
                     rstmdb_sub **sub_out)
{
    char *t = NULL;
    size_t n = 0;
    if (!c)
        return RSTMDB_ERR_INVALID;
    int rc = ops_text_watch_all(req, &t, &n);
    if (rc != RSTMDB_OK)
        return rc;
    rc = rstmdb_watch_json(c, "WATCH_ALL", t, n, on_reply, on_event, on_end, arg, sub_out);
    free(t);
    return rc;
}

/* ---- result views ------------------------------------------------------------------ */

#define VIEW_MEMBERS 24

/* A result object: its cJSON tree (for strings and nested values) and its
 * top-level member spans (for exact u64 reads). */
typedef struct view {
    const cJSON *res;
    const char *raw;
    size_t len;
    jscan_member m[VIEW_MEMBERS];
    size_t n;
} view;

static int view_open(const rstmdb_reply *r, view *v)
{
    if (!r)
        return RSTMDB_ERR_INVALID;
    if (r->status != RSTMDB_OK)
        return r->status;
    v->raw = rstmdb_reply_result_raw(r, &v->len);
    if (!v->raw || jscan_object(v->raw, v->len, 0, v->m, VIEW_MEMBERS, &v->n) != 0)
        return RSTMDB_ERR_PROTOCOL; /* no result, or not an object */
    if (v->n > VIEW_MEMBERS)
        v->n = VIEW_MEMBERS;
    v->res = rstmdb_reply_result(r);
    return v->res ? RSTMDB_OK : RSTMDB_ERR_NOMEM; /* valid bytes: only OOM fails to parse */
}

static const char *view_str(const view *v, const char *key)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(v->res, key);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static const cJSON *view_item(const view *v, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(v->res, key);
}

static bool view_bool(const view *v, const char *key, bool *out)
{
    const cJSON *x = view_item(v, key);
    if (!cJSON_IsBool(x))
        return false;
    *out = cJSON_IsTrue(x);
    return true;
}

static bool view_u64(const view *v, const char *key, uint64_t *out)
{
    const jscan_member *m = jscan_find(v->raw, v->m, v->n, key);
    return m && m->type == JSCAN_NUMBER && jscan_u64(v->raw + m->val_off, m->val_len, out) == 0;
}

static bool view_u32(const view *v, const char *key, uint32_t *out)
{
    uint64_t x;
    if (!view_u64(v, key, &x) || x > UINT32_MAX)
        return false;
    *out = (uint32_t)x;
    return true;
}

/* A non-negative integer from a cJSON number (exact below 2^53). */
static bool json_u64(const cJSON *x, uint64_t *out)
{
    if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > 18446744073709551615.0)
        return false;
    *out = (uint64_t)x->valuedouble;
    return true;
}

/* view_open for a reply parser with an out struct: the reply's own status
 * wins, then a NULL out is RSTMDB_ERR_INVALID; *out starts zeroed so the
 * optional members a reply lacks read as "absent". */
static int view_open_out(const rstmdb_reply *r, view *v, void *out, size_t size)
{
    int rc = view_open(r, v);
    if (rc != RSTMDB_OK)
        return rc;
    if (!out)
        return RSTMDB_ERR_INVALID;
    memset(out, 0, size);
    return RSTMDB_OK;
}

#define NEED(cond)                      \
    do {                                \
        if (!(cond))                    \
            return RSTMDB_ERR_PROTOCOL; \
    } while (0)

int rstmdb_reply_ping(const rstmdb_reply *r)
{
    view v;
    bool pong = false;
    int rc = view_open(r, &v);
    if (rc != RSTMDB_OK)
        return rc;
    NEED(view_bool(&v, "pong", &pong) && pong);
    return RSTMDB_OK;
}

int rstmdb_reply_info(const rstmdb_reply *r, rstmdb_info_result *out)
{
    view v;
    int rc = view_open_out(r, &v, out, sizeof(*out));
    if (rc != RSTMDB_OK)
        return rc;
    out->server_name = view_str(&v, "server_name");
    out->server_version = view_str(&v, "server_version");
    out->features = view_item(&v, "features");
    view_u64(&v, "max_batch_ops", &out->max_batch_ops);
    view_u64(&v, "max_frame_bytes", &out->max_frame_bytes);
    NEED(out->server_name && view_u32(&v, "protocol_version", &out->protocol_version));
    return RSTMDB_OK;
}

int rstmdb_reply_put_machine(const rstmdb_reply *r, rstmdb_put_machine_result *out)
{
    view v;
    int rc = view_open_out(r, &v, out, sizeof(*out));
    if (rc != RSTMDB_OK)
        return rc;
    out->machine = view_str(&v, "machine");
    out->stored_checksum = view_str(&v, "stored_checksum");
    NEED(view_bool(&v, "created", &out->created) && view_u32(&v, "version", &out->version) &&
         out->machine && out->stored_checksum);
    return RSTMDB_OK;
}

int rstmdb_reply_get_machine(const rstmdb_reply *r, rstmdb_machine_result *out)
{
    view v;
    int rc = view_open_out(r, &v, out, sizeof(*out));
    if (rc != RSTMDB_OK)
        return rc;
    out->checksum = view_str(&v, "checksum");
    out->definition = view_item(&v, "definition");
    NEED(out->checksum && cJSON_IsObject(out->definition));
    const cJSON *init = cJSON_GetObjectItemCaseSensitive(out->definition, "initial");
    out->initial = cJSON_IsString(init) ? init->valuestring : NULL;
    out->states = cJSON_GetObjectItemCaseSensitive(out->definition, "states");
    return RSTMDB_OK;
}

int rstmdb_reply_list_machines(const rstmdb_reply *r, rstmdb_machine_list_result *out)
{
    view v;
    int rc = view_open_out(r, &v, out, sizeof(*out));
    if (rc != RSTMDB_OK)
        return rc;
    out->items = view_item(&v, "items");
    NEED(cJSON_IsArray(out->items));
    out->count = (size_t)cJSON_GetArraySize(out->items);
    return RSTMDB_OK;
}

int rstmdb_machine_list_item(const rstmdb_machine_list_result *l, size_t i, const char **machine,
                             const cJSON **versions)
{
    if (!l || i >= l->count)
        return RSTMDB_ERR_INVALID;
    const cJSON *it = cJSON_GetArrayItem(l->items, (int)i);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(it, "machine");
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(it, "versions");
    NEED(cJSON_IsString(m) && cJSON_IsArray(vs));
    if (machine)
        *machine = m->valuestring;
    if (versions)
        *versions = vs;
    return RSTMDB_OK;
}

int rstmdb_reply_create_instance(const rstmdb_reply *r, rstmdb_create_instance_result *out)
{
    view v;
    int rc = view_open_out(r, &v, out, sizeof(*out));
    if (rc != RSTMDB_OK)
        return rc;
    out->instance_id = view_str(&v, "instance_id");
    out->state = view_str(&v, "state");
    NEED(out->instance_id && out->state && view_u64(&v, "wal_offset", &out->wal_offset));
    return RSTMDB_OK;
}

int rstmdb_reply_get_instance(const rstmdb_reply *r, rstmdb_instance_result *out)
{
    view v;
    int rc = view_open_out(r, &v, out, sizeof(*out));
    if (rc != RSTMDB_OK)
        return rc;
    out->machine = view_str(&v, "machine");
    out->state = view_str(&v, "state");
    out->ctx = view_item(&v, "ctx");
    out->last_event_id = view_str(&v, "last_event_id");
    view_u64(&v, "last_wal_offset", &out->last_wal_offset);
    NEED(out->machine && out->state && view_u32(&v, "version", &out->version));
    return RSTMDB_OK;
}

int rstmdb_reply_list_instances(const rstmdb_reply *r, rstmdb_instance_list_result *out)
{
    view v;
    int rc = view_open_out(r, &v, out, sizeof(*out));
    if (rc != RSTMDB_OK)
        return rc;
    out->instances = view_item(&v, "instances");
    NEED(cJSON_IsArray(out->instances) && view_u64(&v, "total", &out->total));
    view_bool(&v, "has_more", &out->has_more);
    out->count = (size_t)cJSON_GetArraySize(out->instances);
    return RSTMDB_OK;
}

static const char *obj_str(const cJSON *o, const char *key)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static uint64_t obj_u64(const cJSON *o, const char *key)
{
    uint64_t v = 0;
    json_u64(cJSON_GetObjectItemCaseSensitive(o, key), &v);
    return v;
}

int rstmdb_instance_list_item(const rstmdb_instance_list_result *l, size_t i,
                              rstmdb_instance_summary *out)
{
    if (!l || !out || i >= l->count)
        return RSTMDB_ERR_INVALID;
    const cJSON *it = cJSON_GetArrayItem(l->instances, (int)i);
    memset(out, 0, sizeof(*out));
    out->id = obj_str(it, "id");
    out->machine = obj_str(it, "machine");
    out->state = obj_str(it, "state");
    out->version = (uint32_t)obj_u64(it, "version");
    out->created_at = obj_u64(it, "created_at");
    out->updated_at = obj_u64(it, "updated_at");
    out->last_wal_offset = obj_u64(it, "last_wal_offset");
    NEED(out->id && out->state);
    return RSTMDB_OK;
}

int rstmdb_reply_delete_instance(const rstmdb_reply *r, rstmdb_delete_instance_result *out)
{
    view v;
    int rc = view_open_out(r, &v, out, sizeof(*out));
    if (rc != RSTMDB_OK)
        return rc;
    out->instance_id = view_str(&v, "instance_id");
    view_u64(&v, "wal_offset", &out->wal_offset);
    NEED(view_bool(&v, "deleted", &out->deleted) && out->instance_id);
    return RSTMDB_OK;
}

int rstmdb_reply_apply_event(const rstmdb_reply *r, rstmdb_apply_result *out)
{
    view v;
    int rc = view_open_out(r, &v, out, sizeof(*out));
    if (rc != RSTMDB_OK)
        return rc;
    out->from_state = view_str(&v, "from_state");
    out->to_state = view_str(&v, "to_state");
    out->ctx = view_item(&v, "ctx");
    out->event_id = view_str(&v, "event_id");
    view_u64(&v, "wal_offset", &out->wal_offset);
    NEED(view_bool(&v, "applied", &out->applied) && out->from_state && out->to_state);
    return RSTMDB_OK;
}

int rstmdb_reply_batch(const rstmdb_reply *r, rstmdb_batch_result *out)
{
    view v;
    int rc = view_open_out(r, &v, out, sizeof(*out));
    if (rc != RSTMDB_OK)
        return rc;
    out->results = view_item(&v, "results");
    NEED(cJSON_IsArray(out->results));
    out->count = (size_t)cJSON_GetArraySize(out->results);
    return RSTMDB_OK;
}

int rstmdb_batch_result_item(const rstmdb_batch_result *b, size_t i, rstmdb_batch_item *out)
{
    if (!b || !out || i >= b->count)
        return RSTMDB_ERR_INVALID;
    const cJSON *it = cJSON_GetArrayItem(b->results, (int)i);
    const char *status = obj_str(it, "status");
    memset(out, 0, sizeof(*out));
    NEED(status);
    out->ok = strcmp(status, "ok") == 0;
    if (out->ok) {
        out->result = cJSON_GetObjectItemCaseSensitive(it, "result");
    } else {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(it, "error");
        out->error_code = obj_str(e, "code");
        out->error_message = obj_str(e, "message");
        out->error_retryable = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "retryable"));
    }
    return RSTMDB_OK;
}

int rstmdb_reply_snapshot_instance(const rstmdb_reply *r, rstmdb_snapshot_result *out)
{
    view v;
    int rc = view_open_out(r, &v, out, sizeof(*out));
    if (rc != RSTMDB_OK)
        return rc;
    out->instance_id = view_str(&v, "instance_id");
    out->snapshot_id = view_str(&v, "snapshot_id");
    out->checksum = view_str(&v, "checksum");
    view_u64(&v, "wal_offset", &out->wal_offset);
    out->has_size = view_u64(&v, "size_bytes", &out->size_bytes);
    NEED(out->instance_id && out->snapshot_id);
    return RSTMDB_OK;
}

int rstmdb_reply_wal_read(const rstmdb_reply *r, rstmdb_wal_read_result *out)
{
    view v;
    int rc = view_open_out(r, &v, out, sizeof(*out));
    if (rc != RSTMDB_OK)
        return rc;
    out->records = view_item(&v, "records");
    NEED(cJSON_IsArray(out->records));
    out->count = (size_t)cJSON_GetArraySize(out->records);
    out->has_next = view_u64(&v, "next_offset", &out->next_offset);
    return RSTMDB_OK;
}

int rstmdb_wal_read_record(const rstmdb_wal_read_result *w, size_t i, rstmdb_wal_record *out)
{
    if (!w || !out || i >= w->count)
        return RSTMDB_ERR_INVALID;
    const cJSON *it = cJSON_GetArrayItem(w->records, (int)i);
    out->offset = obj_u64(it, "offset");
    out->sequence = obj_u64(it, "sequence");
    out->entry = cJSON_GetObjectItemCaseSensitive(it, "entry");
    NEED(out->entry);
    return RSTMDB_OK;
}

int rstmdb_reply_wal_stats(const rstmdb_reply *r, rstmdb_wal_stats_result *out)
{
    view v;
    int rc = view_open_out(r, &v, out, sizeof(*out));
    if (rc != RSTMDB_OK)
        return rc;
    view_u64(&v, "segment_count", &out->segment_count);
    view_u64(&v, "total_size_bytes", &out->total_size_bytes);
    view_u64(&v, "latest_offset", &out->latest_offset);
    const cJSON *io = view_item(&v, "io_stats");
    out->bytes_read = obj_u64(io, "bytes_read");
    out->bytes_written = obj_u64(io, "bytes_written");
    out->fsyncs = obj_u64(io, "fsyncs");
    out->reads = obj_u64(io, "reads");
    out->writes = obj_u64(io, "writes");
    NEED(view_u64(&v, "entry_count", &out->entry_count));
    return RSTMDB_OK;
}

int rstmdb_reply_compact(const rstmdb_reply *r, rstmdb_compact_result *out)
{
    view v;
    int rc = view_open_out(r, &v, out, sizeof(*out));
    if (rc != RSTMDB_OK)
        return rc;
    view_u64(&v, "bytes_reclaimed", &out->bytes_reclaimed);
    view_u64(&v, "segments_deleted", &out->segments_deleted);
    view_u64(&v, "snapshots_created", &out->snapshots_created);
    view_u64(&v, "total_snapshots", &out->total_snapshots);
    NEED(view_u64(&v, "wal_segments", &out->wal_segments));
    return RSTMDB_OK;
}

int rstmdb_reply_flush_all(const rstmdb_reply *r, rstmdb_flush_all_result *out)
{
    view v;
    int rc = view_open_out(r, &v, out, sizeof(*out));
    if (rc != RSTMDB_OK)
        return rc;
    view_u64(&v, "instances_removed", &out->instances_removed);
    view_u64(&v, "machines_removed", &out->machines_removed);
    NEED(view_bool(&v, "flushed", &out->flushed));
    return RSTMDB_OK;
}

int rstmdb_reply_watch_instance(const rstmdb_reply *r, rstmdb_watch_instance_result *out)
{
    view v;
    int rc = view_open_out(r, &v, out, sizeof(*out));
    if (rc != RSTMDB_OK)
        return rc;
    out->subscription_id = view_str(&v, "subscription_id");
    out->instance_id = view_str(&v, "instance_id");
    out->current_state = view_str(&v, "current_state");
    view_u64(&v, "current_wal_offset", &out->current_wal_offset);
    NEED(out->subscription_id);
    return RSTMDB_OK;
}

int rstmdb_reply_watch_all(const rstmdb_reply *r, rstmdb_watch_all_result *out)
{
    view v;
    int rc = view_open_out(r, &v, out, sizeof(*out));
    if (rc != RSTMDB_OK)
        return rc;
    out->subscription_id = view_str(&v, "subscription_id");
    view_u64(&v, "wal_offset", &out->wal_offset);
    NEED(out->subscription_id);
    return RSTMDB_OK;
}

int rstmdb_reply_unwatch(const rstmdb_reply *r, rstmdb_unwatch_result *out)
{
    view v;
    int rc = view_open_out(r, &v, out, sizeof(*out));
    if (rc != RSTMDB_OK)
        return rc;
    out->subscription_id = view_str(&v, "subscription_id");
    NEED(view_bool(&v, "removed", &out->removed));
    return RSTMDB_OK;
}
