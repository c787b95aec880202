/* reply.c: rstmdb_reply, one answer to one request: its status, error,
 * the exact bytes of `result` and a cJSON tree parsed only on demand.
 * Replies handed to callbacks live on the stack; rstmdb_reply_dup makes
 * an owned copy. No I/O here. */
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "error_int.h"
#include "jscan.h"

static void reply_clear(rstmdb_reply *r, reply_cache *cache)
{
    memset(r, 0, sizeof(*r));
    memset(cache, 0, sizeof(*cache));
    r->cache = cache;
}

void reply_init_failure(rstmdb_reply *r, reply_cache *cache, const rstmdb_error *why, bool was_sent)
{
    reply_clear(r, cache);
    r->status = rstmdb_error_status(why);
    r->err = why;
    r->was_sent = was_sent;
}

/* meta.wal_offset, when the server sent a meta object with an integer one. */
static void reply_meta(rstmdb_reply *r, const char *doc, const jscan_member *meta)
{
    jscan_member mm[16];
    size_t n = 0;
    if (!meta || meta->type != JSCAN_OBJECT)
        return;
    if (jscan_object(doc + meta->val_off, meta->val_len, 0, mm, 16, &n) != 0)
        return;
    if (n > 16)
        n = 16;
    const jscan_member *w = jscan_find(doc + meta->val_off, mm, n, "wal_offset");
    uint64_t v;
    if (w && w->type == JSCAN_NUMBER &&
        jscan_u64(doc + meta->val_off + w->val_off, w->val_len, &v) == 0) {
        r->has_wal_offset = true;
        r->wal_offset = v;
    }
}

int reply_from_doc(rstmdb_reply *r, reply_cache *cache, const char *doc, size_t len,
                   const jscan_member *m, size_t n)
{
    reply_clear(r, cache);
    r->raw = doc;
    r->raw_len = len;
    r->was_sent = true;
    const jscan_member *status = jscan_find(doc, m, n, "status");
    reply_meta(r, doc, jscan_find(doc, m, n, "meta"));
    if (jscan_string_is(doc, status, "ok")) {
        const jscan_member *res = jscan_find(doc, m, n, "result");
        r->status = RSTMDB_OK;
        if (res) {
            r->has_result = true;
            r->result_off = res->val_off;
            r->result_len = res->val_len;
        }
        return RSTMDB_OK;
    }
    if (jscan_string_is(doc, status, "error")) {
        const jscan_member *e = jscan_find(doc, m, n, "error");
        cJSON *obj = NULL;
        if (e) {
            obj = cJSON_ParseWithLength(doc + e->val_off, e->val_len);
            if (!obj)
                return RSTMDB_ERR_NOMEM; /* the bytes were validated: only OOM fails */
        }
        r->err_owned = error_from_server_json(obj);
        cJSON_Delete(obj);
        if (!r->err_owned)
            return RSTMDB_ERR_NOMEM;
        r->err = r->err_owned;
        r->status = RSTMDB_ERR_SERVER;
        return RSTMDB_OK;
    }
    r->err_owned = error_newf(RSTMDB_ERR_PROTOCOL, "response without a valid \"status\"");
    if (!r->err_owned)
        return RSTMDB_ERR_NOMEM;
    r->err = r->err_owned;
    r->status = RSTMDB_ERR_PROTOCOL;
    return RSTMDB_OK;
}

void reply_deinit(rstmdb_reply *r)
{
    rstmdb_error_free(r->err_owned);
    r->err_owned = NULL;
    r->err = NULL;
    if (r->cache) {
        cJSON_Delete(r->cache->result);
        r->cache->result = NULL;
        r->cache->parsed = false;
    }
}

int rstmdb_reply_status(const rstmdb_reply *r)
{
    return r ? r->status : RSTMDB_ERR_INVALID;
}

const rstmdb_error *rstmdb_reply_error(const rstmdb_reply *r)
{
    return r ? r->err : NULL;
}

const cJSON *rstmdb_reply_result(const rstmdb_reply *r)
{
    if (!r || r->status != RSTMDB_OK || !r->has_result || !r->cache)
        return NULL;
    if (!r->cache->parsed) {
        /* A failed parse (OOM) is retried on the next call. */
        r->cache->result = cJSON_ParseWithLength(r->raw + r->result_off, r->result_len);
        r->cache->parsed = r->cache->result != NULL;
    }
    return r->cache->result;
}

const char *rstmdb_reply_result_raw(const rstmdb_reply *r, size_t *len)
{
    if (!r || r->status != RSTMDB_OK || !r->has_result)
        return NULL;
    if (len)
        *len = r->result_len;
    return r->raw + r->result_off;
}

const char *rstmdb_reply_raw(const rstmdb_reply *r, size_t *len)
{
    if (!r || !r->raw)
        return NULL;
    if (len)
        *len = r->raw_len;
    return r->raw;
}

int rstmdb_reply_meta_wal_offset(const rstmdb_reply *r, uint64_t *out)
{
    if (!r || !r->has_wal_offset)
        return RSTMDB_ERR_INVALID;
    if (out)
        *out = r->wal_offset;
    return RSTMDB_OK;
}

bool rstmdb_reply_was_sent(const rstmdb_reply *r)
{
    return r && r->was_sent;
}

/* An owned reply: the struct, its cache and a copy of the document in one
 * allocation; the error is duplicated. */
typedef struct reply_owned {
    rstmdb_reply r;
    reply_cache cache;
    char raw[];
} reply_owned;

rstmdb_reply *rstmdb_reply_dup(const rstmdb_reply *r)
{
    if (!r)
        return NULL;
    size_t len = r->raw ? r->raw_len : 0;
    reply_owned *o = malloc(sizeof(*o) + len + 1);
    if (!o)
        return NULL;
    o->r = *r;
    memset(&o->cache, 0, sizeof(o->cache));
    o->r.cache = &o->cache;
    o->r.owned = true;
    o->r.err_owned = NULL;
    o->r.err = NULL;
    if (r->err) {
        o->r.err_owned = rstmdb_error_dup(r->err);
        if (!o->r.err_owned) {
            free(o);
            return NULL;
        }
        o->r.err = o->r.err_owned;
    }
    if (r->raw) {
        memcpy(o->raw, r->raw, len);
        o->raw[len] = '\0';
        o->r.raw = o->raw;
    }
    return &o->r;
}

void rstmdb_reply_free(rstmdb_reply *r)
{
    if (!r || !r->owned)
        return;
    reply_deinit(r);
    free((reply_owned *)(void *)r);
}
