/* event.c: rstmdb_event, one subscription event: accessors over the bytes
 * the server sent (a cJSON tree is parsed only when a field is asked for)
 * and the SSE body cut from those bytes. No I/O, no routing. */
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "jscan.h"

void event_init(rstmdb_event *ev, event_cache *cache, const char *raw, size_t len,
                const char *sub_id)
{
    memset(ev, 0, sizeof(*ev));
    memset(cache, 0, sizeof(*cache));
    ev->raw = raw;
    ev->raw_len = len;
    ev->sub_id = sub_id;
    ev->cache = cache;
}

void event_deinit(rstmdb_event *ev)
{
    if (!ev->cache)
        return;
    cJSON_Delete(ev->cache->tree);
    free(ev->cache->body);
    memset(ev->cache, 0, sizeof(*ev->cache));
}

static const cJSON *event_tree(const rstmdb_event *ev)
{
    if (!ev || !ev->cache)
        return NULL;
    if (!ev->cache->parsed) {
        ev->cache->tree = cJSON_ParseWithLength(ev->raw, ev->raw_len);
        ev->cache->parsed = ev->cache->tree != NULL;
    }
    return ev->cache->tree;
}

static const char *event_str(const rstmdb_event *ev, const char *key)
{
    const cJSON *t = event_tree(ev);
    const cJSON *v = t ? cJSON_GetObjectItemCaseSensitive(t, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

const char *rstmdb_event_subscription_id(const rstmdb_event *ev)
{
    return ev ? ev->sub_id : NULL;
}

const char *rstmdb_event_instance_id(const rstmdb_event *ev)
{
    return event_str(ev, "instance_id");
}

const char *rstmdb_event_machine(const rstmdb_event *ev)
{
    return event_str(ev, "machine");
}

uint32_t rstmdb_event_version(const rstmdb_event *ev)
{
    const cJSON *t = event_tree(ev);
    const cJSON *v = t ? cJSON_GetObjectItemCaseSensitive(t, "version") : NULL;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 4294967295.0)
        return 0;
    return (uint32_t)v->valuedouble;
}

/* Read from the bytes, not the tree: cJSON keeps numbers as doubles, and an
 * offset above 2^53 would lose its low bits. */
uint64_t rstmdb_event_wal_offset(const rstmdb_event *ev)
{
    jscan_member m[32];
    size_t n = 0;
    if (!ev || !ev->cache)
        return 0;
    if (ev->cache->has_wal_offset)
        return ev->cache->wal_offset;
    if (jscan_object(ev->raw, ev->raw_len, 0, m, 32, &n) != 0)
        return 0;
    if (n > 32)
        n = 32;
    const jscan_member *w = jscan_find(ev->raw, m, n, "wal_offset");
    uint64_t v = 0;
    if (w && w->type == JSCAN_NUMBER && jscan_u64(ev->raw + w->val_off, w->val_len, &v) == 0) {
        ev->cache->has_wal_offset = true;
        ev->cache->wal_offset = v;
    }
    return v;
}

const char *rstmdb_event_from_state(const rstmdb_event *ev)
{
    return event_str(ev, "from_state");
}

const char *rstmdb_event_to_state(const rstmdb_event *ev)
{
    return event_str(ev, "to_state");
}

const char *rstmdb_event_name(const rstmdb_event *ev)
{
    return event_str(ev, "event");
}

const cJSON *rstmdb_event_payload(const rstmdb_event *ev)
{
    const cJSON *t = event_tree(ev);
    return t ? cJSON_GetObjectItemCaseSensitive(t, "payload") : NULL;
}

const cJSON *rstmdb_event_ctx(const rstmdb_event *ev)
{
    const cJSON *t = event_tree(ev);
    return t ? cJSON_GetObjectItemCaseSensitive(t, "ctx") : NULL;
}

const char *rstmdb_event_raw(const rstmdb_event *ev, size_t *len)
{
    if (!ev)
        return NULL;
    if (len)
        *len = ev->raw_len;
    return ev->raw;
}

const char *rstmdb_event_body(const rstmdb_event *ev, size_t *len)
{
    if (!ev || !ev->cache)
        return NULL;
    if (!ev->cache->body) {
        jscan_member stack[32];
        jscan_member *m = stack;
        size_t n = 0;
        if (jscan_object(ev->raw, ev->raw_len, 0, m, 32, &n) != 0)
            return NULL;
        if (n > 32) {
            m = malloc(n * sizeof(*m));
            if (!m)
                return NULL;
            if (jscan_object(ev->raw, ev->raw_len, 0, m, n, &n) != 0) {
                free(m);
                return NULL;
            }
        }
        /* The body is never longer than the event itself. */
        char *body = malloc(ev->raw_len + 3);
        if (!body) {
            if (m != stack)
                free(m);
            return NULL;
        }
        size_t o = 0;
        body[o++] = '{';
        for (size_t i = 0; i < n; i++) {
            const char *k = ev->raw + m[i].key_off;
            if ((m[i].key_len == 4 && memcmp(k, "type", 4) == 0) ||
                (m[i].key_len == 15 && memcmp(k, "subscription_id", 15) == 0))
                continue;
            if (o > 1)
                body[o++] = ',';
            /* From the opening quote of the key to the end of the value; the
             * server writes compact JSON, and any whitespace around ':' is kept. */
            size_t from = m[i].key_off - 1;
            size_t to = m[i].val_off + m[i].val_len;
            memcpy(body + o, ev->raw + from, to - from);
            o += to - from;
        }
        body[o++] = '}';
        body[o] = '\0';
        if (m != stack)
            free(m);
        ev->cache->body = body;
        ev->cache->body_len = o;
    }
    if (len)
        *len = ev->cache->body_len;
    return ev->cache->body;
}

typedef struct event_owned {
    rstmdb_event ev;
    event_cache cache;
    char raw[];
} event_owned;

rstmdb_event *rstmdb_event_dup(const rstmdb_event *ev)
{
    if (!ev)
        return NULL;
    size_t idlen = ev->sub_id ? strlen(ev->sub_id) : 0;
    event_owned *o = malloc(sizeof(*o) + ev->raw_len + 1 + idlen + 1);
    if (!o)
        return NULL;
    char *raw = o->raw;
    memcpy(raw, ev->raw, ev->raw_len);
    raw[ev->raw_len] = '\0';
    char *id = raw + ev->raw_len + 1;
    if (ev->sub_id)
        memcpy(id, ev->sub_id, idlen);
    id[idlen] = '\0';
    event_init(&o->ev, &o->cache, raw, ev->raw_len, ev->sub_id ? id : NULL);
    o->ev.owned = true;
    return &o->ev;
}

void rstmdb_event_free(rstmdb_event *ev)
{
    if (!ev || !ev->owned)
        return;
    event_deinit(ev);
    free((event_owned *)(void *)ev);
}
