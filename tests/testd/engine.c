/* engine.c: rstmdb-testd's request entry point: envelope decoding with the
 * real server's silent-close rules, connections (wire mode, auth), the
 * auth gate, dispatch, BATCH and the exact response envelope. Never does
 * I/O; the op handlers live in engine_ops.c and engine_watch.c. */
#include "engine_int.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "params.h"
#include "rstmdb/frame.h"

/* ------------------------------------------------------------- errors */

static const struct {
    const char *name, *rust;
    bool retryable;
} ecodes[] = {
    [EC_BAD_REQUEST] = {"BAD_REQUEST", "BadRequest", false},
    [EC_UNAUTHORIZED] = {"UNAUTHORIZED", "Unauthorized", false},
    [EC_AUTH_FAILED] = {"AUTH_FAILED", "AuthFailed", false},
    [EC_NOT_FOUND] = {"NOT_FOUND", "NotFound", false},
    [EC_MACHINE_NOT_FOUND] = {"MACHINE_NOT_FOUND", "MachineNotFound", false},
    [EC_MACHINE_VERSION_EXISTS] = {"MACHINE_VERSION_EXISTS", "MachineVersionExists", false},
    [EC_MACHINE_VERSION_LIMIT_EXCEEDED] = {"MACHINE_VERSION_LIMIT_EXCEEDED",
                                           "MachineVersionLimitExceeded", false},
    [EC_INSTANCE_NOT_FOUND] = {"INSTANCE_NOT_FOUND", "InstanceNotFound", false},
    [EC_INSTANCE_EXISTS] = {"INSTANCE_EXISTS", "InstanceExists", false},
    [EC_INVALID_TRANSITION] = {"INVALID_TRANSITION", "InvalidTransition", false},
    [EC_GUARD_FAILED] = {"GUARD_FAILED", "GuardFailed", false},
    [EC_CONFLICT] = {"CONFLICT", "Conflict", false},
    [EC_WAL_IO_ERROR] = {"WAL_IO_ERROR", "WalIoError", true},
    [EC_INTERNAL_ERROR] = {"INTERNAL_ERROR", "InternalError", true},
    [EC_RATE_LIMITED] = {"RATE_LIMITED", "RateLimited", true},
    [EC_UNSUPPORTED_PROTOCOL] = {"UNSUPPORTED_PROTOCOL", "UnsupportedProtocol", false},
};

const char *ecode_name(ecode c)
{
    return ecodes[c].name;
}
const char *ecode_rust_name(ecode c)
{
    return ecodes[c].rust;
}
bool ecode_retryable(ecode c)
{
    return ecodes[c].retryable;
}

int op_fail_take(opctx *x, ecode code, char *msg)
{
    if (!msg)
        return OP_NOMEM;
    free(x->msg);
    x->code = code;
    x->msg = msg;
    return OP_ERR;
}

int op_fail(opctx *x, ecode code, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return OP_NOMEM;
    char *m = malloc((size_t)n + 1);
    if (!m)
        return OP_NOMEM;
    va_start(ap, fmt);
    vsnprintf(m, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return op_fail_take(x, code, m);
}

int op_bad_request(opctx *x, char *serde_msg)
{
    if (!serde_msg)
        return OP_NOMEM;
    strbuf b;
    strbuf_init(&b, TESTD_TEXT_MAX);
    strbuf_puts(&b, "invalid request: ");
    strbuf_puts(&b, serde_msg);
    free(serde_msg);
    return op_fail_take(x, EC_BAD_REQUEST, strbuf_take(&b, NULL));
}

void engine_uuid4(char out[37])
{
    unsigned char r[16];
    if (RAND_bytes(r, sizeof(r)) != 1) {
        /* RAND_bytes practically never fails; fall back to a clock mix so
         * ids stay unique within the process. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t a = (uint64_t)ts.tv_nsec * 6364136223846793005ULL + (uint64_t)ts.tv_sec;
        for (int i = 0; i < 16; i++)
            r[i] = (unsigned char)(a >> ((i % 8) * 8)) ^ (unsigned char)(i * 37);
    }
    r[6] = (unsigned char)((r[6] & 0x0F) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3F) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
}

int64_t engine_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --------------------------------------------------------- lifecycle */

int engine_new(engine **out, const engine_config *cfg)
{
    engine *e = calloc(1, sizeof(*e));
    if (!e)
        return -1;
    e->auth_required = cfg->auth_required;
    e->max_machine_versions = cfg->max_machine_versions;
    e->allow_flush_all = cfg->allow_flush_all;
    e->max_deliveries = cfg->max_deliveries ? cfg->max_deliveries : ENGINE_MAX_DELIVERIES;
    smap_init(&e->conns);
    smap_init(&e->machines);
    smap_init(&e->instances);
    smap_init(&e->subs);
    if (cfg->ntoken_hashes) {
        e->token_hashes = calloc(cfg->ntoken_hashes, sizeof(char *));
        if (!e->token_hashes)
            goto fail;
        for (size_t i = 0; i < cfg->ntoken_hashes; i++) {
            e->token_hashes[i] = strdup(cfg->token_hashes[i]);
            if (!e->token_hashes[i])
                goto fail;
            e->ntoken_hashes = i + 1;
        }
    }
    e->compat = cfg->compat;
    if (wal_new(&e->wal, cfg->wal_segment_size,
                e->compat == ENGINE_COMPAT_0_3 ? WAL_MAX_RECORD_0_3 : WAL_MAX_RECORD) != 0)
        goto fail;
    *out = e;
    return 0;
fail:
    engine_free(e);
    return -1;
}

void engine_free(engine *e)
{
    if (!e)
        return;
    size_t pos = 0;
    smap_slot *s;
    while ((s = smap_next(&e->conns, &pos)) != NULL) {
        conn *c = s->val;
        watch_drop_conn(e, c);
        free(c);
    }
    pos = 0;
    while ((s = smap_next(&e->instances, &pos)) != NULL)
        instance_free(s->val);
    pos = 0;
    while ((s = smap_next(&e->machines, &pos)) != NULL)
        machine_entry_free(s->val);
    smap_deinit(&e->conns);
    smap_deinit(&e->instances);
    smap_deinit(&e->machines);
    smap_deinit(&e->subs);
    for (size_t i = 0; i < e->ntoken_hashes; i++)
        free(e->token_hashes[i]);
    free(e->token_hashes);
    wal_free(e->wal);
    free(e);
}

static conn *conn_get(const engine *e, uint64_t id)
{
    return smap_get(&e->conns, (const char *)&id, sizeof(id));
}

void engine_conn_open(engine *e, uint64_t conn_id)
{
    if (conn_get(e, conn_id))
        return;
    conn *c = calloc(1, sizeof(*c));
    if (!c)
        return; /* engine_request creates it lazily if this failed */
    c->id = conn_id;
    if (smap_put(&e->conns, (const char *)&conn_id, sizeof(conn_id), c) != 0)
        free(c);
}

void engine_conn_close(engine *e, uint64_t conn_id)
{
    conn *c = smap_del(&e->conns, (const char *)&conn_id, sizeof(conn_id));
    if (!c)
        return;
    watch_drop_conn(e, c);
    free(c);
}

bool engine_conn_jsonl(const engine *e, uint64_t conn_id)
{
    const conn *c = conn_get(e, conn_id);
    return c && c->jsonl;
}

void engine_out_deinit(engine_out *out)
{
    if (!out)
        return;
    free(out->reply);
    for (size_t i = 0; i < out->ndeliveries; i++)
        free(out->deliveries[i].payload);
    free(out->deliveries);
    memset(out, 0, sizeof(*out));
}

/* ------------------------------------------------------- session ops */

static const char *server_version(const engine *e)
{
    return e->compat == ENGINE_COMPAT_0_3 ? "0.3.0" : "0.1.1";
}

static int op_hello(opctx *x, const jval *params)
{
    static const pfield f[] = {{"protocol_version", PT_U16},
                               {"client_name", PT_OPT_STRING_DEF},
                               {"wire_modes", PT_STRVEC},
                               {"features", PT_STRVEC}};
    pval v[4];
    char *err;
    if (params_struct(params, "HelloParams", f, 4, v, &err) != 0)
        return op_bad_request(x, err);
    if (v[0].u != 1)
        return op_fail(x, EC_BAD_REQUEST, "invalid request: unsupported protocol version: %llu",
                       (unsigned long long)v[0].u);
    bool bin = false, jsonl = false;
    bool feat[3] = {false, false, false};
    static const char *const server_features[3] = {"idempotency", "batch", "wal_read"};
    if (v[2].v)
        for (size_t i = 0; i < v[2].v->v.arr.n; i++) {
            const char *m = v[2].v->v.arr.items[i]->v.str.s;
            if (strcmp(m, "binary_json") == 0)
                bin = true;
            else if (strcmp(m, "jsonl") == 0)
                jsonl = true;
        }
    if (v[3].v)
        for (size_t i = 0; i < v[3].v->v.arr.n; i++) {
            const jval *s = v[3].v->v.arr.items[i];
            for (int k = 0; k < 3; k++)
                if (s->v.str.len == strlen(server_features[k]) &&
                    strcmp(s->v.str.s, server_features[k]) == 0)
                    feat[k] = true;
        }
    /* binary_json anywhere in the list wins; client order is ignored. */
    x->c->jsonl = !bin && jsonl;
    strbuf_puts(&x->res, "{\"features\":[");
    bool first = true;
    for (int k = 0; k < 3; k++) {
        if (!feat[k])
            continue;
        if (!first)
            strbuf_putc(&x->res, ',');
        first = false;
        strbuf_printf(&x->res, "\"%s\"", server_features[k]);
    }
    strbuf_printf(&x->res,
                  "],\"protocol_version\":1,\"server_name\":\"rstmdb\",\"server_version\":\"%s\","
                  "\"wire_mode\":\"%s\"}",
                  server_version(x->e), x->c->jsonl ? "jsonl" : "binary_json");
    return OP_OK;
}

static void sha256_hex(const char *s, size_t n, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    out[0] = '\0';
    if (EVP_Digest(s, n, md, &mdlen, EVP_sha256(), NULL) != 1)
        return;
    for (unsigned int i = 0; i < mdlen && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int op_auth(opctx *x, const jval *params)
{
    static const pfield f[] = {{"method", PT_STRING}, {"token", PT_STRING}};
    pval v[2];
    char *err;
    if (params_struct(params, "AuthParams", f, 2, v, &err) != 0)
        return op_bad_request(x, err);
    if (strcmp(v[0].s, "bearer") != 0 || v[0].slen != 6)
        return op_fail(x, EC_AUTH_FAILED, "authentication failed: unsupported auth method: %s",
                       v[0].s);
    engine *e = x->e;
    if (!(e->auth_required && e->ntoken_hashes > 0)) {
        /* No validator configured: any non-empty token is accepted. */
        if (v[1].slen == 0)
            return op_fail(x, EC_AUTH_FAILED, "authentication failed: empty token");
    } else {
        char hex[65];
        sha256_hex(v[1].s, v[1].slen, hex);
        bool ok = false;
        for (size_t i = 0; i < e->ntoken_hashes && !ok; i++)
            ok = strcmp(e->token_hashes[i], hex) == 0;
        if (!ok)
            return op_fail(x, EC_AUTH_FAILED, "authentication failed: invalid token");
    }
    x->c->authed = true;
    strbuf_puts(&x->res, "{\"authenticated\":true}");
    return OP_OK;
}

static int op_ping(opctx *x, const jval *params)
{
    (void)params;
    strbuf_puts(&x->res, "{\"pong\":true}");
    return OP_OK;
}

static int op_bye(opctx *x, const jval *params)
{
    (void)params;
    x->bye = true;
    strbuf_puts(&x->res, "{\"goodbye\":true}");
    return OP_OK;
}

static int op_info(opctx *x, const jval *params)
{
    (void)params;
    strbuf_printf(&x->res,
                  "{\"features\":[\"idempotency\",\"batch\",\"wal_read\"],\"max_batch_ops\":100,"
                  "\"max_frame_bytes\":16777216,\"protocol_version\":1,\"server_name\":"
                  "\"rstmdb\",\"server_version\":\"%s\"}",
                  server_version(x->e));
    return OP_OK;
}

/* 0.3: a standalone server (the replica role is not modelled yet). */
static int op_replication_status(opctx *x, const jval *params)
{
    (void)params;
    strbuf_puts(&x->res, "{\"role\":\"standalone\"}");
    return OP_OK;
}

/* 0.3: replication has its own message family; a client's REPLICATE is refused. */
static int op_replicate(opctx *x, const jval *params)
{
    (void)params;
    return op_fail(x, EC_BAD_REQUEST,
                   "invalid request: replication operations are handled internally");
}

/* 0.3: FLUSH_ALL is always a known op; disabled, it is refused. */
static int op_flush_all_0_3(opctx *x, const jval *params)
{
    if (!x->e->allow_flush_all)
        return op_fail(x, EC_BAD_REQUEST,
                       "invalid request: FLUSH_ALL is disabled. Set storage.allow_flush_all=true "
                       "in config to enable.");
    return op_flush_all(x, params);
}

static int op_batch(opctx *x, const jval *params);

/* ----------------------------------------------------------- dispatch */

typedef int (*op_fn)(opctx *x, const jval *params);

typedef struct opdef {
    const char *name;
    op_fn fn;
    bool auth_exempt;
} opdef;

/* 0.1.1's 21 ops, in the server's enum order (BATCH's "expected one of" text). */
static const opdef ops_0_1[] = {
    {"HELLO", op_hello, true},
    {"AUTH", op_auth, true},
    {"PING", op_ping, true},
    {"BYE", op_bye, true},
    {"INFO", op_info, false},
    {"PUT_MACHINE", op_put_machine, false},
    {"GET_MACHINE", op_get_machine, false},
    {"LIST_MACHINES", op_list_machines, false},
    {"CREATE_INSTANCE", op_create_instance, false},
    {"GET_INSTANCE", op_get_instance, false},
    {"LIST_INSTANCES", op_list_instances, false},
    {"DELETE_INSTANCE", op_delete_instance, false},
    {"APPLY_EVENT", op_apply_event, false},
    {"BATCH", op_batch, false},
    {"SNAPSHOT_INSTANCE", op_snapshot_instance, false},
    {"WAL_READ", op_wal_read, false},
    {"WAL_STATS", op_wal_stats, false},
    {"COMPACT", op_compact, false},
    /* The real server lets WATCH_* through unauthenticated; we do not copy
     * that bug, so they are gated like every other op. */
    {"WATCH_INSTANCE", op_watch_instance, false},
    {"WATCH_ALL", op_watch_all, false},
    {"UNWATCH", op_unwatch, false},
};
static const opdef flush_all_op = {"FLUSH_ALL", op_flush_all, false};

/* 0.3.0's ops, in its enum order, without BACKUP_BEGIN/CHUNK/END (which
 * come between UNWATCH and FLUSH_ALL in a build with hot backup). */
static const opdef ops_0_3[] = {
    {"HELLO", op_hello, true},
    {"AUTH", op_auth, true},
    {"PING", op_ping, true},
    {"BYE", op_bye, true},
    {"INFO", op_info, false},
    {"REPLICATION_STATUS", op_replication_status, false},
    {"PUT_MACHINE", op_put_machine, false},
    {"GET_MACHINE", op_get_machine, false},
    {"LIST_MACHINES", op_list_machines, false},
    {"CREATE_INSTANCE", op_create_instance, false},
    {"GET_INSTANCE", op_get_instance, false},
    {"LIST_INSTANCES", op_list_instances, false},
    {"DELETE_INSTANCE", op_delete_instance, false},
    {"APPLY_EVENT", op_apply_event, false},
    {"BATCH", op_batch, false},
    {"SNAPSHOT_INSTANCE", op_snapshot_instance, false},
    {"WAL_READ", op_wal_read, false},
    {"WAL_STATS", op_wal_stats, false},
    {"COMPACT", op_compact, false},
    {"WATCH_INSTANCE", op_watch_instance, false},
    {"WATCH_ALL", op_watch_all, false},
    {"UNWATCH", op_unwatch, false},
    {"FLUSH_ALL", op_flush_all_0_3, false},
    {"REPLICATE", op_replicate, false},
    {"REPLICATE_ACK", op_replicate, false},
};

/* The op table of the engine's server version. */
static const opdef *op_table(const engine *e, size_t *n)
{
    if (e->compat == ENGINE_COMPAT_0_3) {
        *n = sizeof ops_0_3 / sizeof ops_0_3[0];
        return ops_0_3;
    }
    *n = sizeof ops_0_1 / sizeof ops_0_1[0];
    return ops_0_1;
}

static const opdef *op_lookup(const engine *e, const char *name, size_t len)
{
    size_t n;
    const opdef *ops = op_table(e, &n);
    for (size_t i = 0; i < n; i++)
        if (strlen(ops[i].name) == len && memcmp(ops[i].name, name, len) == 0)
            return &ops[i];
    if (e->compat == ENGINE_COMPAT_0_1 && e->allow_flush_all && len == 9 &&
        memcmp(name, "FLUSH_ALL", 9) == 0)
        return &flush_all_op;
    return NULL;
}

static int run_op(opctx *x, const opdef *op, const jval *params)
{
    if (x->e->auth_required && !op->auth_exempt && !x->c->authed)
        return op_fail(x, EC_UNAUTHORIZED, "authentication required");
    return op->fn(x, params);
}

/* Rust's {:?} of a String, for the atomic batch failure message. */
static void rust_debug_str(strbuf *b, const char *s)
{
    strbuf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"')
            strbuf_puts(b, "\\\"");
        else if (*p == '\\')
            strbuf_puts(b, "\\\\");
        else if (*p == '\n')
            strbuf_puts(b, "\\n");
        else if (*p == '\r')
            strbuf_puts(b, "\\r");
        else if (*p == '\t')
            strbuf_puts(b, "\\t");
        else if (*p < 0x20 || *p == 0x7f)
            strbuf_printf(b, "\\u{%x}", *p);
        else
            strbuf_putc(b, (char)*p);
    }
    strbuf_putc(b, '"');
}

static void put_error_obj(strbuf *b, ecode code, const char *msg)
{
    strbuf_printf(b, "{\"code\":\"%s\",\"message\":", ecode_name(code));
    strbuf_jstr(b, msg, strlen(msg));
    strbuf_printf(b, ",\"retryable\":%s}", ecode_retryable(code) ? "true" : "false");
}

static int op_batch(opctx *x, const jval *params)
{
    size_t mlen = 0;
    const char *mode = params_str(params, "mode", &mlen);
    bool atomic = mode && mlen == 6 && memcmp(mode, "atomic", 6) == 0;
    const jval *opsv = jval_get(params, "ops");
    if (!opsv || opsv->t != JV_ARRAY)
        return op_fail(x, EC_BAD_REQUEST, "invalid request: missing ops array");
    if (opsv->v.arr.n > 100)
        return op_fail(x, EC_BAD_REQUEST, "invalid request: batch size %zu exceeds limit 100",
                       opsv->v.arr.n);
    strbuf out;
    strbuf_init(&out, TESTD_TEXT_MAX);
    strbuf_puts(&out, "{\"results\":[");
    int rc = OP_OK;
    for (size_t i = 0; i < opsv->v.arr.n; i++) {
        const jval *item = opsv->v.arr.items[i];
        size_t nlen = 0;
        const char *name = params_str(item, "op", &nlen);
        if (!name) {
            rc = op_fail(x, EC_BAD_REQUEST, "invalid request: missing op type");
            break;
        }
        const opdef *op = op_lookup(x->e, name, nlen);
        if (!op) {
            strbuf m;
            strbuf_init(&m, TESTD_TEXT_MAX);
            strbuf_printf(&m, "invalid request: unknown variant `%s`, expected one of ", name);
            size_t nops;
            const opdef *ops = op_table(x->e, &nops);
            for (size_t k = 0; k < nops; k++)
                strbuf_printf(&m, "%s`%s`", k ? ", " : "", ops[k].name);
            rc = op_fail_take(x, EC_BAD_REQUEST, strbuf_take(&m, NULL));
            break;
        }
        opctx inner = {.e = x->e, .c = x->c, .in_batch = true, .out = x->out};
        strbuf_init(&inner.res, TESTD_TEXT_MAX);
        int r = run_op(&inner, op, jval_get(item, "params"));
        if (inner.bye)
            x->bye = true;
        if (r == OP_NOMEM || r == OP_PANIC) {
            strbuf_deinit(&inner.res);
            free(inner.msg);
            rc = r;
            break;
        }
        if (r == OP_ERR && atomic) {
            strbuf m;
            strbuf_init(&m, TESTD_TEXT_MAX);
            strbuf_printf(&m,
                          "invalid request: atomic batch failed: Some(ResponseError { code: %s, "
                          "message: ",
                          ecode_rust_name(inner.code));
            rust_debug_str(&m, inner.msg);
            strbuf_printf(&m, ", retryable: %s, details: {} })",
                          ecode_retryable(inner.code) ? "true" : "false");
            strbuf_deinit(&inner.res);
            free(inner.msg);
            rc = op_fail_take(x, EC_BAD_REQUEST, strbuf_take(&m, NULL));
            break;
        }
        if (i)
            strbuf_putc(&out, ',');
        if (r == OP_OK) {
            strbuf_puts(&out, "{\"error\":null,\"result\":");
            strbuf_add(&out, inner.res.data, inner.res.len);
            strbuf_puts(&out, ",\"status\":\"ok\"}");
        } else {
            strbuf_puts(&out, "{\"error\":");
            put_error_obj(&out, inner.code, inner.msg);
            strbuf_puts(&out, ",\"result\":null,\"status\":\"error\"}");
        }
        strbuf_deinit(&inner.res);
        free(inner.msg);
    }
    if (rc != OP_OK) {
        strbuf_deinit(&out);
        return rc;
    }
    strbuf_puts(&out, "]}");
    if (strbuf_failed(&out)) {
        strbuf_deinit(&out);
        return OP_NOMEM;
    }
    strbuf_add(&x->res, out.data, out.len);
    strbuf_deinit(&out);
    return OP_OK;
}

/* ----------------------------------------------------------- envelope */

static bool is_key(const jmember *m, const char *k)
{
    return m->klen == strlen(k) && memcmp(m->key, k, m->klen) == 0;
}

/* serde derive of Request {type, id, op, params}: duplicates of the known
 * keys and wrong types fail the whole decode (the server closes). */
static bool decode_envelope(const jval *doc, const jval **type, const jval **id, const jval **op,
                            const jval **params)
{
    *type = *id = *op = *params = NULL;
    if (doc->t == JV_ARRAY) {
        size_t n = doc->v.arr.n;
        if (n < 3 || n > 4)
            return false;
        *type = doc->v.arr.items[0];
        *id = doc->v.arr.items[1];
        *op = doc->v.arr.items[2];
        *params = n == 4 ? doc->v.arr.items[3] : NULL;
    } else if (doc->t == JV_OBJECT) {
        for (size_t i = 0; i < doc->v.obj.n; i++) {
            const jmember *m = &doc->v.obj.m[i];
            const jval **slot = is_key(m, "type")     ? type
                                : is_key(m, "id")     ? id
                                : is_key(m, "op")     ? op
                                : is_key(m, "params") ? params
                                                      : NULL;
            if (!slot)
                continue;
            if (*slot)
                return false; /* duplicate field */
            *slot = m->val;
        }
    } else {
        return false;
    }
    return *type && (*type)->t == JV_STRING && *id && (*id)->t == JV_STRING && *op &&
           (*op)->t == JV_STRING;
}

static int add_reply(engine_out *out, const jval *id, int rc, opctx *x)
{
    strbuf b;
    strbuf_init(&b, TESTD_TEXT_MAX);
    strbuf_puts(&b, "{\"type\":\"response\",\"id\":");
    strbuf_jstr(&b, id->v.str.s, id->v.str.len);
    if (rc == OP_OK) {
        strbuf_puts(&b, ",\"status\":\"ok\",\"result\":");
        strbuf_add(&b, x->res.data, x->res.len);
    } else {
        strbuf_puts(&b, ",\"status\":\"error\",\"error\":");
        put_error_obj(&b, x->code, x->msg);
    }
    strbuf_putc(&b, '}');
    if (strbuf_failed(&b)) {
        bool too_big = b.len + 1 >= TESTD_TEXT_MAX || x->res.len + 1 >= TESTD_TEXT_MAX;
        strbuf_deinit(&b);
        return too_big ? 1 : -1;
    }
    if (b.len > RSTMDB_FRAME_MAX_PAYLOAD) {
        /* The server cannot frame it and drops the connection. */
        strbuf_deinit(&b);
        return 1;
    }
    out->reply = strbuf_take(&b, &out->reply_len);
    return out->reply ? 0 : -1;
}

int engine_request(engine *e, uint64_t conn_id, const uint8_t *payload, size_t len, engine_out *out)
{
    memset(out, 0, sizeof(*out));
    out->action = ENGINE_CLOSE;
    conn *c = conn_get(e, conn_id);
    if (!c) {
        engine_conn_open(e, conn_id);
        if (!(c = conn_get(e, conn_id)))
            return -1;
    }
    const char *text = (const char *)payload;
    if (!jval_utf8_valid(text, len))
        return 0;
    jval *doc = NULL;
    int prc = jval_parse(text, len, &doc);
    if (prc == JVAL_ENOMEM)
        return -1;
    if (prc != 0)
        return 0;
    const jval *type, *id, *opname, *params;
    const opdef *op = NULL;
    if (!decode_envelope(doc, &type, &id, &opname, &params) ||
        !(op = op_lookup(e, opname->v.str.s, opname->v.str.len))) {
        jval_free(doc);
        return 0;
    }
    (void)type;
    /* Params become a serde_json::Value: BTreeMap objects, last duplicate wins. */
    if (jval_normalize(doc) != 0) {
        jval_free(doc);
        return -1;
    }
    if (doc->t == JV_OBJECT) {
        id = jval_get(doc, "id");
        params = jval_get(doc, "params");
    }
    opctx x = {.e = e, .c = c, .in_batch = false, .out = out};
    strbuf_init(&x.res, TESTD_TEXT_MAX);
    int rc = run_op(&x, op, params && params->t != JV_NULL ? params : NULL);
    int ret = 0;
    if (rc == OP_NOMEM) {
        ret = -1;
    } else if (rc == OP_PANIC) {
        out->action = ENGINE_CLOSE;
    } else if (strbuf_failed(&x.res) && rc == OP_OK) {
        out->action = ENGINE_CLOSE; /* result over the cap: the server drops the connection */
    } else {
        int ar = add_reply(out, id, rc, &x);
        if (ar < 0)
            ret = -1;
        else if (ar == 0)
            out->action = x.bye ? ENGINE_REPLY_CLOSE : ENGINE_REPLY;
    }
    strbuf_deinit(&x.res);
    free(x.msg);
    jval_free(doc);
    if (ret != 0) {
        engine_out_deinit(out);
        out->action = ENGINE_CLOSE;
        return ret;
    }
    if (out->action == ENGINE_CLOSE && out->ndeliveries > 0) {
        /* BATCH [APPLY_EVENT, PUT_MACHINE with a panicking guard] (or an
         * answer over 16 MiB): the real server broadcast the event while the
         * batch ran, then lost this connection. Others keep their events;
         * this connection gets nothing and closes. */
        out->action = ENGINE_REPLY_CLOSE;
    } else if (out->action == ENGINE_CLOSE) {
        /* Nothing is written, events included. */
        engine_out_deinit(out);
        out->action = ENGINE_CLOSE;
    }
    if (out->action == ENGINE_REPLY_CLOSE) {
        /* BATCH [APPLY_EVENT, BYE] while watching: the real server writes
         * the BATCH response and closes at once, so the events that batch
         * caused for this very connection are never written (other
         * connections still get theirs). */
        size_t k = 0;
        for (size_t i = 0; i < out->ndeliveries; i++) {
            if (out->deliveries[i].conn_id == conn_id)
                free(out->deliveries[i].payload);
            else
                out->deliveries[k++] = out->deliveries[i];
        }
        out->ndeliveries = k;
    }
    return 0;
}
