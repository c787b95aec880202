/* engine_ops.c: the machine, instance and WAL ops of rstmdb-testd, in the
 * real server's check order with its exact result shapes and messages.
 * Owns instances and machine entries; never touches sockets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "params.h"
#include "rstmdb/frame.h"

static const jval json_null = {.t = JV_NULL};

void machine_entry_free(machine_entry *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->ndefs; i++)
        machine_def_free(m->defs[i]);
    free(m->defs);
    free(m->name);
    free(m);
}

static void idem_free(idem_entry *ie)
{
    if (!ie)
        return;
    free(ie->from_state);
    free(ie->to_state);
    jval_free(ie->ctx);
    free(ie);
}

void instance_free(instance *in)
{
    if (!in)
        return;
    size_t pos = 0;
    smap_slot *s;
    while ((s = smap_next(&in->idem, &pos)) != NULL)
        idem_free(s->val);
    smap_deinit(&in->idem);
    free(in->id);
    free(in->machine);
    free(in->state);
    jval_free(in->ctx);
    free(in->last_event_id);
    free(in);
}

static machine_def *machine_lookup(engine *e, const char *name, size_t nlen, uint32_t version)
{
    machine_entry *m = smap_get(&e->machines, name, nlen);
    if (!m)
        return NULL;
    for (size_t i = 0; i < m->ndefs; i++)
        if (m->defs[i]->version == version)
            return m->defs[i];
    return NULL;
}

/* Append a WAL entry rendered twice: on-disk field order (for the size) and
 * sorted (for WAL_READ). An entry over 16 MiB is refused as the real WAL
 * refuses it: a 16 MiB CREATE_INSTANCE whose server-made id lengthens the
 * entry gets WAL_IO_ERROR "record too large: 16777255 bytes (max 16777216)". */
static int wal_put(opctx *x, strbuf *disk, strbuf *sorted, uint64_t *offset)
{
    if (strbuf_failed(disk) || strbuf_failed(sorted))
        return OP_NOMEM;
    int rc = wal_append(x->e->wal, disk->len, sorted->data, sorted->len, offset);
    if (rc == WAL_ETOOBIG)
        return op_fail(x, EC_WAL_IO_ERROR,
                       "core error: WAL error: record too large: %zu bytes (max %zu)", disk->len,
                       wal_max_record(x->e->wal));
    return rc == 0 ? OP_OK : OP_NOMEM;
}

/* ------------------------------------------------------------ machines */

int op_put_machine(opctx *x, const jval *params)
{
    static const pfield f[] = {{"machine", PT_STRING},
                               {"version", PT_U32},
                               {"definition", PT_ANY_REQ},
                               {"checksum", PT_OPT_STRING}};
    pval v[4];
    char *err;
    if (params_struct(params, "PutMachineParams", f, 4, v, &err) != 0)
        return op_bad_request(x, err);
    engine *e = x->e;
    uint32_t version = (uint32_t)v[1].u;
    machine_entry *m = smap_get(&e->machines, v[0].s, v[0].slen);
    machine_def *existing = machine_lookup(e, v[0].s, v[0].slen, version);
    if (e->max_machine_versions > 0 && !existing) {
        size_t have = m ? m->ndefs : 0;
        if (have >= e->max_machine_versions)
            return op_fail(x, EC_MACHINE_VERSION_LIMIT_EXCEEDED,
                           "machine version limit exceeded: machine '%s' already has %zu versions "
                           "(limit: %u)",
                           v[0].s, have, e->max_machine_versions);
    }
    const jval *defv = v[2].v ? v[2].v : &json_null;
    machine_def *d = NULL;
    int rc = machine_def_parse(defv, &d, &err);
    if (rc == MACHINE_EINVALID)
        return op_fail_take(x, EC_INTERNAL_ERROR, err);
    if (rc == MACHINE_EPANIC)
        return OP_PANIC;
    if (rc != MACHINE_OK)
        return OP_NOMEM;
    d->version = version;
    if (existing) {
        bool same = strcmp(existing->checksum, d->checksum) == 0;
        machine_def_free(d);
        if (!same)
            return op_fail(x, EC_MACHINE_VERSION_EXISTS,
                           "core error: machine version already exists: %s v%u", v[0].s, version);
        strbuf_puts(&x->res, "{\"created\":false,\"machine\":");
        strbuf_jstr(&x->res, v[0].s, v[0].slen);
        strbuf_printf(&x->res, ",\"stored_checksum\":\"%s\",\"version\":%u}", existing->checksum,
                      version);
        return OP_OK;
    }
    if (!m) {
        m = calloc(1, sizeof(*m));
        if (!m || !(m->name = malloc(v[0].slen + 1)) ||
            smap_put(&e->machines, v[0].s, v[0].slen, m) != 0) {
            if (m)
                free(m->name);
            free(m);
            machine_def_free(d);
            return OP_NOMEM;
        }
        memcpy(m->name, v[0].s, v[0].slen + 1);
        m->nlen = v[0].slen;
    }
    if (m->ndefs == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 4;
        machine_def **p = realloc(m->defs, nc * sizeof(*p));
        if (!p) {
            machine_def_free(d);
            return OP_NOMEM;
        }
        m->defs = p;
        m->cap = nc;
    }
    /* WAL: type, machine, version, definition_hash, definition (as sent). */
    strbuf disk, sorted;
    strbuf_init(&disk, TESTD_TEXT_MAX);
    strbuf_init(&sorted, TESTD_TEXT_MAX);
    strbuf_puts(&disk, "{\"type\":\"put_machine\",\"machine\":");
    strbuf_jstr(&disk, v[0].s, v[0].slen);
    strbuf_printf(&disk, ",\"version\":%u,\"definition_hash\":\"%s\",\"definition\":", version,
                  d->checksum);
    jval_print(&disk, defv);
    strbuf_putc(&disk, '}');
    strbuf_puts(&sorted, "{\"definition\":");
    jval_print(&sorted, defv);
    strbuf_printf(&sorted, ",\"definition_hash\":\"%s\",\"machine\":", d->checksum);
    strbuf_jstr(&sorted, v[0].s, v[0].slen);
    strbuf_printf(&sorted, ",\"type\":\"put_machine\",\"version\":%u}", version);
    uint64_t off;
    rc = wal_put(x, &disk, &sorted, &off);
    strbuf_deinit(&disk);
    strbuf_deinit(&sorted);
    if (rc != OP_OK) {
        machine_def_free(d);
        if (m->ndefs == 0) {
            /* A first version the WAL refused leaves no empty machine behind
             * (LIST_MACHINES would show it with versions []). */
            smap_del(&e->machines, m->name, m->nlen);
            machine_entry_free(m);
        }
        return rc;
    }
    size_t at = m->ndefs;
    while (at > 0 && m->defs[at - 1]->version > version) {
        m->defs[at] = m->defs[at - 1];
        at--;
    }
    m->defs[at] = d;
    m->ndefs++;
    strbuf_puts(&x->res, "{\"created\":true,\"machine\":");
    strbuf_jstr(&x->res, v[0].s, v[0].slen);
    strbuf_printf(&x->res, ",\"stored_checksum\":\"%s\",\"version\":%u}", d->checksum, version);
    return OP_OK;
}

int op_get_machine(opctx *x, const jval *params)
{
    static const pfield f[] = {{"machine", PT_STRING}, {"version", PT_U32}};
    pval v[2];
    char *err;
    if (params_struct(params, "GetMachineParams", f, 2, v, &err) != 0)
        return op_bad_request(x, err);
    machine_def *d = machine_lookup(x->e, v[0].s, v[0].slen, (uint32_t)v[1].u);
    if (!d)
        return op_fail(x, EC_MACHINE_NOT_FOUND, "core error: machine version not found: %s v%u",
                       v[0].s, (uint32_t)v[1].u);
    strbuf_printf(&x->res, "{\"checksum\":\"%s\",\"definition\":", d->checksum);
    strbuf_add(&x->res, d->json, d->json_len);
    strbuf_putc(&x->res, '}');
    return OP_OK;
}

static int entry_cmp(const void *a, const void *b)
{
    const machine_entry *x = *(machine_entry *const *)a, *y = *(machine_entry *const *)b;
    size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
    int c = memcmp(x->name, y->name, n);
    if (c)
        return c;
    return x->nlen < y->nlen ? -1 : x->nlen > y->nlen;
}

int op_list_machines(opctx *x, const jval *params)
{
    (void)params;
    engine *e = x->e;
    size_t n = e->machines.count, k = 0, pos = 0;
    machine_entry **list = calloc(n ? n : 1, sizeof(*list));
    if (!list)
        return OP_NOMEM;
    smap_slot *s;
    while ((s = smap_next(&e->machines, &pos)) != NULL && k < n)
        list[k++] = s->val;
    qsort(list, k, sizeof(*list), entry_cmp);
    strbuf_puts(&x->res, "{\"items\":[");
    for (size_t i = 0; i < k; i++) {
        if (i)
            strbuf_putc(&x->res, ',');
        strbuf_puts(&x->res, "{\"machine\":");
        strbuf_jstr(&x->res, list[i]->name, list[i]->nlen);
        strbuf_puts(&x->res, ",\"versions\":[");
        for (size_t j = 0; j < list[i]->ndefs; j++)
            strbuf_printf(&x->res, "%s%u", j ? "," : "", list[i]->defs[j]->version);
        strbuf_puts(&x->res, "]}");
    }
    strbuf_puts(&x->res, "]}");
    free(list);
    return OP_OK;
}

/* ----------------------------------------------------------- instances */

static void put_create_result(strbuf *b, const instance *in)
{
    strbuf_puts(b, "{\"instance_id\":");
    strbuf_jstr(b, in->id, in->idlen);
    strbuf_puts(b, ",\"state\":");
    strbuf_jstr(b, in->state, strlen(in->state));
    strbuf_puts(b, ",\"wal_offset\":");
    strbuf_u64(b, in->last_wal_offset);
    strbuf_putc(b, '}');
}

int op_create_instance(opctx *x, const jval *params)
{
    static const pfield f[] = {{"instance_id", PT_OPT_STRING},
                               {"machine", PT_STRING},
                               {"version", PT_U32},
                               {"initial_ctx", PT_ANY},
                               {"idempotency_key", PT_OPT_STRING}};
    pval v[5];
    char *err;
    if (params_struct(params, "CreateInstanceParams", f, 5, v, &err) != 0)
        return op_bad_request(x, err);
    engine *e = x->e;
    char uuid[37];
    const char *id = v[0].s;
    size_t idlen = v[0].slen;
    if (!v[0].present) {
        engine_uuid4(uuid);
        id = uuid;
        idlen = 36;
    }
    instance *old = smap_get(&e->instances, id, idlen);
    /* The engine checks its idempotency cache, keyed (instance_id, key) and
     * filled only by APPLY_EVENT, before the existence check: a CREATE that
     * reuses an APPLY's key on that instance returns the instance as is. */
    if (old && v[4].present && smap_get(&old->idem, v[4].s, v[4].slen)) {
        put_create_result(&x->res, old);
        return OP_OK;
    }
    if (old)
        return op_fail(x, EC_INSTANCE_EXISTS, "core error: instance already exists: %s", id);
    uint32_t version = (uint32_t)v[2].u;
    machine_def *d = machine_lookup(e, v[1].s, v[1].slen, version);
    if (!d)
        return op_fail(x, EC_MACHINE_NOT_FOUND, "core error: machine version not found: %s v%u",
                       v[1].s, version);
    const jval *ctx = v[3].v ? v[3].v : &json_null;
    instance *in = calloc(1, sizeof(*in));
    if (!in)
        return OP_NOMEM;
    smap_init(&in->idem);
    in->id = malloc(idlen + 1);
    in->machine = malloc(v[1].slen + 1);
    in->state = strdup(d->initial);
    in->ctx = jval_copy(ctx);
    if (!in->id || !in->machine || !in->state || !in->ctx) {
        instance_free(in);
        return OP_NOMEM;
    }
    memcpy(in->id, id, idlen);
    in->id[idlen] = '\0';
    in->idlen = idlen;
    memcpy(in->machine, v[1].s, v[1].slen + 1);
    in->version = version;
    in->def = d;
    /* WAL: type, instance_id, machine, version, initial_state, initial_ctx, idempotency_key? */
    strbuf disk, sorted;
    strbuf_init(&disk, TESTD_TEXT_MAX);
    strbuf_init(&sorted, TESTD_TEXT_MAX);
    strbuf_puts(&disk, "{\"type\":\"create_instance\",\"instance_id\":");
    strbuf_jstr(&disk, id, idlen);
    strbuf_puts(&disk, ",\"machine\":");
    strbuf_jstr(&disk, v[1].s, v[1].slen);
    strbuf_printf(&disk, ",\"version\":%u,\"initial_state\":", version);
    strbuf_jstr(&disk, d->initial, strlen(d->initial));
    strbuf_puts(&disk, ",\"initial_ctx\":");
    jval_print(&disk, ctx);
    if (v[4].present) {
        strbuf_puts(&disk, ",\"idempotency_key\":");
        strbuf_jstr(&disk, v[4].s, v[4].slen);
        strbuf_puts(&sorted, "{\"idempotency_key\":");
        strbuf_jstr(&sorted, v[4].s, v[4].slen);
        strbuf_puts(&sorted, ",\"initial_ctx\":");
    } else {
        strbuf_puts(&sorted, "{\"initial_ctx\":");
    }
    strbuf_putc(&disk, '}');
    jval_print(&sorted, ctx);
    strbuf_puts(&sorted, ",\"initial_state\":");
    strbuf_jstr(&sorted, d->initial, strlen(d->initial));
    strbuf_puts(&sorted, ",\"instance_id\":");
    strbuf_jstr(&sorted, id, idlen);
    strbuf_puts(&sorted, ",\"machine\":");
    strbuf_jstr(&sorted, v[1].s, v[1].slen);
    strbuf_printf(&sorted, ",\"type\":\"create_instance\",\"version\":%u}", version);
    int rc = wal_put(x, &disk, &sorted, &in->last_wal_offset);
    strbuf_deinit(&disk);
    strbuf_deinit(&sorted);
    if (rc != OP_OK) {
        instance_free(in);
        return rc;
    }
    if (smap_put(&e->instances, in->id, in->idlen, in) != 0) {
        instance_free(in);
        return OP_NOMEM;
    }
    in->created_at = in->updated_at = engine_now_ms();
    put_create_result(&x->res, in);
    return OP_OK;
}

static int need_instance_struct(opctx *x, const jval *params, instance **out)
{
    static const pfield f[] = {{"instance_id", PT_STRING}};
    pval v[1];
    char *err;
    if (params_struct(params, "GetInstanceParams", f, 1, v, &err) != 0)
        return op_bad_request(x, err);
    *out = smap_get(&x->e->instances, v[0].s, v[0].slen);
    if (!*out)
        return op_fail(x, EC_INSTANCE_NOT_FOUND, "core error: instance not found: %s", v[0].s);
    return OP_OK;
}

int op_get_instance(opctx *x, const jval *params)
{
    instance *in = NULL;
    int rc = need_instance_struct(x, params, &in);
    if (rc != OP_OK || !in)
        return rc;
    strbuf *b = &x->res;
    strbuf_puts(b, "{\"ctx\":");
    jval_print(b, in->ctx);
    if (in->last_event_id) {
        strbuf_puts(b, ",\"last_event_id\":");
        strbuf_jstr(b, in->last_event_id, strlen(in->last_event_id));
    }
    strbuf_puts(b, ",\"last_wal_offset\":");
    strbuf_u64(b, in->last_wal_offset);
    strbuf_puts(b, ",\"machine\":");
    strbuf_jstr(b, in->machine, strlen(in->machine));
    strbuf_puts(b, ",\"state\":");
    strbuf_jstr(b, in->state, strlen(in->state));
    strbuf_printf(b, ",\"version\":%u}", in->version);
    return OP_OK;
}

int op_list_instances(opctx *x, const jval *params)
{
    static const pfield f[] = {{"machine", PT_OPT_STRING},
                               {"state", PT_OPT_STRING},
                               {"limit", PT_OPT_U32},
                               {"offset", PT_OPT_U32}};
    pval v[4];
    char *err;
    if (params_struct_nullable(params, x->e->compat == ENGINE_COMPAT_0_3, "ListInstancesParams", f,
                               4, v, &err) != 0)
        return op_bad_request(x, err);
    uint64_t limit = v[2].present ? v[2].u : 100, offset = v[3].present ? v[3].u : 0;
    uint64_t total = 0, returned = 0;
    size_t pos = 0;
    smap_slot *s;
    strbuf *b = &x->res;
    strbuf_puts(b, "{\"has_more\":");
    strbuf items;
    strbuf_init(&items, TESTD_TEXT_MAX);
    while ((s = smap_next(&x->e->instances, &pos)) != NULL) {
        const instance *in = s->val;
        if (in->deleted)
            continue;
        if (v[0].present && strcmp(in->machine, v[0].s) != 0)
            continue;
        if (v[1].present && strcmp(in->state, v[1].s) != 0)
            continue;
        total++;
        if (total <= offset || returned >= limit)
            continue;
        if (returned++)
            strbuf_putc(&items, ',');
        strbuf_puts(&items, "{\"created_at\":");
        strbuf_i64(&items, in->created_at);
        strbuf_puts(&items, ",\"id\":");
        strbuf_jstr(&items, in->id, in->idlen);
        strbuf_puts(&items, ",\"last_wal_offset\":");
        strbuf_u64(&items, in->last_wal_offset);
        strbuf_puts(&items, ",\"machine\":");
        strbuf_jstr(&items, in->machine, strlen(in->machine));
        strbuf_puts(&items, ",\"state\":");
        strbuf_jstr(&items, in->state, strlen(in->state));
        strbuf_puts(&items, ",\"updated_at\":");
        strbuf_i64(&items, in->updated_at);
        strbuf_printf(&items, ",\"version\":%u}", in->version);
    }
    strbuf_puts(b, offset + returned < total ? "true" : "false");
    strbuf_puts(b, ",\"instances\":[");
    if (items.len)
        strbuf_add(b, items.data, items.len);
    strbuf_puts(b, "],\"total\":");
    strbuf_u64(b, total);
    strbuf_putc(b, '}');
    bool failed = strbuf_failed(&items);
    strbuf_deinit(&items);
    return failed ? OP_NOMEM : OP_OK;
}

int op_delete_instance(opctx *x, const jval *params)
{
    size_t idlen = 0, klen = 0;
    const char *id = params_str(params, "instance_id", &idlen);
    if (!id)
        return op_fail(x, EC_BAD_REQUEST, "invalid request: missing instance_id");
    const char *key = params_str(params, "idempotency_key", &klen);
    instance *in = smap_get(&x->e->instances, id, idlen);
    if (!in)
        return op_fail(x, EC_INSTANCE_NOT_FOUND, "core error: instance not found: %s", id);
    if (!in->deleted) {
        strbuf disk, sorted;
        strbuf_init(&disk, TESTD_TEXT_MAX);
        strbuf_init(&sorted, TESTD_TEXT_MAX);
        strbuf_puts(&disk, "{\"type\":\"delete_instance\",\"instance_id\":");
        strbuf_jstr(&disk, id, idlen);
        if (key) {
            strbuf_puts(&disk, ",\"idempotency_key\":");
            strbuf_jstr(&disk, key, klen);
            strbuf_puts(&sorted, "{\"idempotency_key\":");
            strbuf_jstr(&sorted, key, klen);
            strbuf_puts(&sorted, ",\"instance_id\":");
        } else {
            strbuf_puts(&sorted, "{\"instance_id\":");
        }
        strbuf_putc(&disk, '}');
        strbuf_jstr(&sorted, id, idlen);
        strbuf_puts(&sorted, ",\"type\":\"delete_instance\"}");
        uint64_t off;
        int rc = wal_put(x, &disk, &sorted, &off);
        strbuf_deinit(&disk);
        strbuf_deinit(&sorted);
        if (rc != OP_OK)
            return rc;
        in->deleted = true;
        in->last_wal_offset = off;
        in->updated_at = engine_now_ms();
    }
    strbuf_puts(&x->res, "{\"deleted\":true,\"instance_id\":");
    strbuf_jstr(&x->res, id, idlen);
    strbuf_puts(&x->res, ",\"wal_offset\":");
    strbuf_u64(&x->res, in->last_wal_offset);
    strbuf_putc(&x->res, '}');
    if (x->e->compat == ENGINE_COMPAT_0_3) {
        /* 0.3 removes the instance: GET is INSTANCE_NOT_FOUND, the id can be
         * created again, LIST no longer counts it. */
        watch_detach_instance(x->e, in);
        smap_del(&x->e->instances, in->id, in->idlen);
        instance_free(in);
    }
    return OP_OK;
}

static void put_apply_result(strbuf *b, const jval *ctx, const pval *event_id, const char *from,
                             const char *to, uint64_t off)
{
    strbuf_puts(b, "{\"applied\":true,\"ctx\":");
    jval_print(b, ctx);
    if (event_id->present) {
        strbuf_puts(b, ",\"event_id\":");
        strbuf_jstr(b, event_id->s, event_id->slen);
    }
    strbuf_puts(b, ",\"from_state\":");
    strbuf_jstr(b, from, strlen(from));
    strbuf_puts(b, ",\"to_state\":");
    strbuf_jstr(b, to, strlen(to));
    strbuf_puts(b, ",\"wal_offset\":");
    strbuf_u64(b, off);
    strbuf_putc(b, '}');
}

/* Shallow merge when both are objects; otherwise the ctx is unchanged. */
static jval *merge_ctx(const jval *ctx, const jval *payload)
{
    jval *out = jval_copy(ctx);
    if (!out || ctx->t != JV_OBJECT || !payload || payload->t != JV_OBJECT)
        return out;
    for (size_t i = 0; i < payload->v.obj.n; i++) {
        const jmember *m = &payload->v.obj.m[i];
        if (jval_set(out, m->key, m->klen, jval_copy(m->val)) != 0) {
            jval_free(out);
            return NULL;
        }
    }
    return out;
}

int op_apply_event(opctx *x, const jval *params)
{
    static const pfield f[] = {{"instance_id", PT_STRING},
                               {"event", PT_STRING},
                               {"payload", PT_ANY},
                               {"expected_state", PT_OPT_STRING},
                               {"expected_wal_offset", PT_OPT_U64},
                               {"event_id", PT_OPT_STRING},
                               {"idempotency_key", PT_OPT_STRING}};
    pval v[7];
    char *err;
    if (params_struct(params, "ApplyEventParams", f, 7, v, &err) != 0)
        return op_bad_request(x, err);
    engine *e = x->e;
    instance *in = smap_get(&e->instances, v[0].s, v[0].slen);
    if (!in)
        return op_fail(x, EC_INSTANCE_NOT_FOUND, "core error: instance not found: %s", v[0].s);
    const jval *payload = v[2].v; /* NULL = null */
    if (v[6].present) {
        idem_entry *ie = smap_get(&in->idem, v[6].s, v[6].slen);
        if (ie) {
            /* Replay: the cached result, and the event goes out again with
             * this request's event name and payload. */
            put_apply_result(&x->res, ie->ctx, &v[5], ie->from_state, ie->to_state, ie->wal_offset);
            return watch_broadcast(x, in, ie->wal_offset, ie->from_state, ie->to_state, v[1].s,
                                   v[1].slen, payload, ie->ctx);
        }
    }
    if (v[3].present && strcmp(in->state, v[3].s) != 0)
        return op_fail(x, EC_CONFLICT, "core error: state conflict: expected '%s', actual '%s'",
                       v[3].s, in->state);
    if (v[4].present && v[4].u != in->last_wal_offset)
        return op_fail(x, EC_CONFLICT,
                       "core error: WAL offset conflict: expected %llu, actual %llu",
                       (unsigned long long)v[4].u, (unsigned long long)in->last_wal_offset);
    const machine_transition *t = machine_def_find(in->def, in->state, v[1].s, v[1].slen);
    if (!t)
        return op_fail(x, EC_INVALID_TRANSITION,
                       "core error: invalid transition: cannot apply '%s' in state '%s'", v[1].s,
                       in->state);
    if (!guard_eval(t->guard, in->ctx))
        return op_fail(x, EC_GUARD_FAILED,
                       "core error: guard failed: guard failed for transition '%s' -> '%s' on "
                       "event '%s'",
                       in->state, t->to, v[1].s);
    jval *nctx = merge_ctx(in->ctx, payload);
    char *to = strdup(t->to);
    char *evid = v[5].present ? strdup(v[5].s) : NULL;
    if (!nctx || !to || (v[5].present && !evid)) {
        jval_free(nctx);
        free(to);
        free(evid);
        return OP_NOMEM;
    }
    /* WAL: type, instance_id, event, from_state, to_state, payload, ctx, event_id?,
     * idempotency_key? */
    strbuf disk, sorted;
    strbuf_init(&disk, TESTD_TEXT_MAX);
    strbuf_init(&sorted, TESTD_TEXT_MAX);
    strbuf_puts(&disk, "{\"type\":\"apply_event\",\"instance_id\":");
    strbuf_jstr(&disk, in->id, in->idlen);
    strbuf_puts(&disk, ",\"event\":");
    strbuf_jstr(&disk, v[1].s, v[1].slen);
    strbuf_puts(&disk, ",\"from_state\":");
    strbuf_jstr(&disk, in->state, strlen(in->state));
    strbuf_puts(&disk, ",\"to_state\":");
    strbuf_jstr(&disk, to, strlen(to));
    strbuf_puts(&disk, ",\"payload\":");
    jval_print(&disk, payload ? payload : &json_null);
    strbuf_puts(&disk, ",\"ctx\":");
    jval_print(&disk, nctx);
    strbuf_puts(&sorted, "{\"ctx\":");
    jval_print(&sorted, nctx);
    strbuf_puts(&sorted, ",\"event\":");
    strbuf_jstr(&sorted, v[1].s, v[1].slen);
    if (v[5].present) {
        strbuf_puts(&disk, ",\"event_id\":");
        strbuf_jstr(&disk, v[5].s, v[5].slen);
        strbuf_puts(&sorted, ",\"event_id\":");
        strbuf_jstr(&sorted, v[5].s, v[5].slen);
    }
    strbuf_puts(&sorted, ",\"from_state\":");
    strbuf_jstr(&sorted, in->state, strlen(in->state));
    if (v[6].present) {
        strbuf_puts(&disk, ",\"idempotency_key\":");
        strbuf_jstr(&disk, v[6].s, v[6].slen);
        strbuf_puts(&sorted, ",\"idempotency_key\":");
        strbuf_jstr(&sorted, v[6].s, v[6].slen);
    }
    strbuf_putc(&disk, '}');
    strbuf_puts(&sorted, ",\"instance_id\":");
    strbuf_jstr(&sorted, in->id, in->idlen);
    strbuf_puts(&sorted, ",\"payload\":");
    jval_print(&sorted, payload ? payload : &json_null);
    strbuf_puts(&sorted, ",\"to_state\":");
    strbuf_jstr(&sorted, to, strlen(to));
    strbuf_puts(&sorted, ",\"type\":\"apply_event\"}");
    uint64_t off;
    int rc = wal_put(x, &disk, &sorted, &off);
    strbuf_deinit(&disk);
    strbuf_deinit(&sorted);
    if (rc != OP_OK) {
        jval_free(nctx);
        free(to);
        free(evid);
        return rc;
    }
    char *from = in->state;
    in->state = to;
    jval_free(in->ctx);
    in->ctx = nctx;
    free(in->last_event_id);
    in->last_event_id = evid;
    in->last_wal_offset = off;
    in->updated_at = engine_now_ms();
    put_apply_result(&x->res, nctx, &v[5], from, to, off);
    if (v[6].present) {
        idem_entry *ie = calloc(1, sizeof(*ie));
        if (!ie || !(ie->from_state = strdup(from)) || !(ie->to_state = strdup(to)) ||
            !(ie->ctx = jval_copy(nctx)) || smap_put(&in->idem, v[6].s, v[6].slen, ie) != 0) {
            idem_free(ie);
            free(from);
            return OP_NOMEM;
        }
        ie->wal_offset = off;
    }
    rc = watch_broadcast(x, in, off, from, to, v[1].s, v[1].slen, payload, nctx);
    free(from);
    return rc;
}

/* ------------------------------------------------------------ snapshots */

/* serde_json::to_vec_pretty: two-space indent, "key": value. */
static void pretty(strbuf *b, const jval *v, int depth)
{
    if (v->t == JV_ARRAY && v->v.arr.n) {
        strbuf_puts(b, "[\n");
        for (size_t i = 0; i < v->v.arr.n; i++) {
            for (int k = 0; k <= depth; k++)
                strbuf_puts(b, "  ");
            pretty(b, v->v.arr.items[i], depth + 1);
            strbuf_puts(b, i + 1 < v->v.arr.n ? ",\n" : "\n");
        }
        for (int k = 0; k < depth; k++)
            strbuf_puts(b, "  ");
        strbuf_putc(b, ']');
    } else if (v->t == JV_OBJECT && v->v.obj.n) {
        strbuf_puts(b, "{\n");
        for (size_t i = 0; i < v->v.obj.n; i++) {
            for (int k = 0; k <= depth; k++)
                strbuf_puts(b, "  ");
            strbuf_jstr(b, v->v.obj.m[i].key, v->v.obj.m[i].klen);
            strbuf_puts(b, ": ");
            pretty(b, v->v.obj.m[i].val, depth + 1);
            strbuf_puts(b, i + 1 < v->v.obj.n ? ",\n" : "\n");
        }
        for (int k = 0; k < depth; k++)
            strbuf_puts(b, "  ");
        strbuf_putc(b, '}');
    } else {
        jval_print(b, v);
    }
}

/* Take a snapshot of `in`; fills id/size/checksum. */
static int snapshot_take(engine *e, instance *in, char snap_id[48], uint64_t *size, char crc[9])
{
    char uuid[37];
    engine_uuid4(uuid);
    snprintf(snap_id, 48, "snap-%s", uuid);
    strbuf b;
    strbuf_init(&b, TESTD_TEXT_MAX);
    strbuf_printf(&b, "{\n  \"snapshot_id\": \"%s\",\n  \"instance_id\": ", snap_id);
    strbuf_jstr(&b, in->id, in->idlen);
    strbuf_puts(&b, ",\n  \"machine\": ");
    strbuf_jstr(&b, in->machine, strlen(in->machine));
    strbuf_printf(&b, ",\n  \"version\": %u,\n  \"state\": ", in->version);
    strbuf_jstr(&b, in->state, strlen(in->state));
    strbuf_puts(&b, ",\n  \"ctx\": ");
    pretty(&b, in->ctx, 1);
    strbuf_puts(&b, ",\n  \"wal_offset\": ");
    strbuf_u64(&b, in->last_wal_offset);
    strbuf_puts(&b, ",\n  \"created_at\": ");
    strbuf_i64(&b, engine_now_ms());
    strbuf_puts(&b, "\n}");
    if (strbuf_failed(&b)) {
        strbuf_deinit(&b);
        return OP_NOMEM;
    }
    *size = b.len;
    snprintf(crc, 9, "%08x", rstmdb_crc32c(b.data, b.len));
    strbuf_deinit(&b);
    if (!in->has_snapshot)
        e->snapshot_count++;
    in->has_snapshot = true;
    in->snapshot_offset = in->last_wal_offset;
    return OP_OK;
}

int op_snapshot_instance(opctx *x, const jval *params)
{
    size_t idlen = 0;
    const char *id = params_str(params, "instance_id", &idlen);
    if (!id)
        return op_fail(x, EC_BAD_REQUEST, "invalid request: missing instance_id");
    instance *in = smap_get(&x->e->instances, id, idlen);
    if (!in)
        return op_fail(x, EC_INSTANCE_NOT_FOUND, "core error: instance not found: %s", id);
    char snap[48], crc[9];
    uint64_t size = 0;
    int rc = snapshot_take(x->e, in, snap, &size, crc);
    if (rc != OP_OK)
        return rc;
    strbuf_printf(&x->res, "{\"checksum\":\"%s\",\"instance_id\":", crc);
    strbuf_jstr(&x->res, id, idlen);
    strbuf_puts(&x->res, ",\"size_bytes\":");
    strbuf_u64(&x->res, size);
    strbuf_printf(&x->res, ",\"snapshot_id\":\"%s\",\"wal_offset\":", snap);
    strbuf_u64(&x->res, in->last_wal_offset);
    strbuf_putc(&x->res, '}');
    return OP_OK;
}

int op_compact(opctx *x, const jval *params)
{
    engine *e = x->e;
    bool force = false;
    if (!params_bool(params, "force_snapshot", &force))
        force = false;
    uint64_t created = 0, min_off = UINT64_MAX;
    size_t pos = 0;
    smap_slot *s;
    while ((s = smap_next(&e->instances, &pos)) != NULL) {
        instance *in = s->val;
        if (in->deleted)
            continue;
        bool need = !in->has_snapshot || (force && in->last_wal_offset > in->snapshot_offset);
        if (need) {
            char snap[48], crc[9];
            uint64_t size;
            if (snapshot_take(e, in, snap, &size, crc) != OP_OK)
                return OP_NOMEM;
            created++;
        }
    }
    pos = 0;
    while ((s = smap_next(&e->instances, &pos)) != NULL) {
        const instance *in = s->val;
        if (in->has_snapshot && in->snapshot_offset < min_off)
            min_off = in->snapshot_offset;
    }
    size_t deleted = min_off != UINT64_MAX ? wal_compact_before(e->wal, min_off) : 0;
    wal_stats st;
    wal_get_stats(e->wal, &st);
    strbuf_puts(&x->res, "{\"bytes_reclaimed\":");
    strbuf_u64(&x->res, (uint64_t)deleted * 67108864u);
    strbuf_printf(&x->res, ",\"segments_deleted\":%zu,\"snapshots_created\":", deleted);
    strbuf_u64(&x->res, created);
    strbuf_printf(&x->res, ",\"total_snapshots\":%zu,\"wal_segments\":", e->snapshot_count);
    strbuf_u64(&x->res, st.segment_count);
    strbuf_putc(&x->res, '}');
    return OP_OK;
}

/* ----------------------------------------------------------------- WAL */

int op_wal_read(opctx *x, const jval *params)
{
    uint64_t from = 0, limit = 0;
    if (!params_u64(params, "from_offset", &from))
        return op_fail(x, EC_BAD_REQUEST, "invalid request: missing from_offset");
    bool has_limit = params_u64(params, "limit", &limit);
    uint64_t last = 0;
    strbuf recs;
    strbuf_init(&recs, TESTD_TEXT_MAX);
    size_t n = wal_read(x->e->wal, from, has_limit, limit, &recs, &last);
    strbuf_puts(&x->res, "{\"next_offset\":");
    if (n)
        strbuf_u64(&x->res, last + 1);
    else
        strbuf_puts(&x->res, "null");
    strbuf_puts(&x->res, ",\"records\":[");
    if (recs.len)
        strbuf_add(&x->res, recs.data, recs.len);
    strbuf_puts(&x->res, "]}");
    if (strbuf_failed(&recs))
        x->res.err = recs.err; /* over the frame cap: the server drops the connection */
    strbuf_deinit(&recs);
    return OP_OK;
}

int op_wal_stats(opctx *x, const jval *params)
{
    (void)params;
    wal_stats s;
    wal_get_stats(x->e->wal, &s);
    strbuf *b = &x->res;
    strbuf_puts(b, "{\"entry_count\":");
    strbuf_u64(b, s.entry_count);
    strbuf_puts(b, ",\"io_stats\":{\"bytes_read\":");
    strbuf_u64(b, s.bytes_read);
    strbuf_puts(b, ",\"bytes_written\":");
    strbuf_u64(b, s.bytes_written);
    strbuf_puts(b, ",\"fsyncs\":");
    strbuf_u64(b, s.fsyncs);
    strbuf_puts(b, ",\"reads\":");
    strbuf_u64(b, s.reads);
    strbuf_puts(b, ",\"writes\":");
    strbuf_u64(b, s.writes);
    strbuf_puts(b, "},\"latest_offset\":");
    strbuf_u64(b, s.latest_offset);
    strbuf_puts(b, ",\"segment_count\":");
    strbuf_u64(b, s.segment_count);
    strbuf_puts(b, ",\"total_size_bytes\":");
    strbuf_u64(b, s.total_size_bytes);
    strbuf_putc(b, '}');
    return OP_OK;
}

/* FLUSH_ALL as newer servers implement it (only reachable when the config
 * allows it; the 21-op server closes the connection instead). */
int op_flush_all(opctx *x, const jval *params)
{
    (void)params;
    engine *e = x->e;
    uint64_t ninst = 0, nmach = 0;
    size_t pos = 0;
    smap_slot *s;
    while ((s = smap_next(&e->instances, &pos)) != NULL) {
        instance *in = s->val;
        watch_detach_instance(e, in);
        instance_free(in);
        ninst++;
    }
    pos = 0;
    while ((s = smap_next(&e->machines, &pos)) != NULL) {
        machine_entry *m = s->val;
        nmach += m->ndefs;
        machine_entry_free(m);
    }
    smap_deinit(&e->instances);
    smap_deinit(&e->machines);
    smap_init(&e->instances);
    smap_init(&e->machines);
    e->snapshot_count = 0;
    strbuf_puts(&x->res, "{\"flushed\":true,\"instances_removed\":");
    strbuf_u64(&x->res, ninst);
    strbuf_puts(&x->res, ",\"machines_removed\":");
    strbuf_u64(&x->res, nmach);
    strbuf_putc(&x->res, '}');
    return OP_OK;
}
