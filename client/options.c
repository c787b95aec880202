/* options.c: rstmdb_options, the client's one configuration struct. Copies
 * every string it is given; holds a reference on the TLS config. Opens no
 * connection and reads no environment. */
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "rstmdb/frame.h"

#define OPTIONS_DEFAULT_CONNECT_MS 10000u
#define OPTIONS_DEFAULT_REQUEST_MS 30000u
/* Requests issued while connecting wait in memory; past this a caller gets
 * RSTMDB_ERR_NOMEM instead of growing a queue a dead server never drains. */
#define OPTIONS_DEFAULT_MAX_QUEUED   4096u
#define OPTIONS_DEFAULT_MAX_INFLIGHT 65536u
#define OPTIONS_DEFAULT_MAX_EVENTS   4096u

static void options_defaults(rstmdb_options *o)
{
    memset(o, 0, sizeof(*o));
    o->connect_timeout_ms = OPTIONS_DEFAULT_CONNECT_MS;
    o->request_timeout_ms = OPTIONS_DEFAULT_REQUEST_MS;
    o->wire_mode = RSTMDB_WIRE_BINARY_JSON;
    o->max_frame = RSTMDB_FRAME_MAX_PAYLOAD;
    o->max_queued = OPTIONS_DEFAULT_MAX_QUEUED;
    o->max_inflight = OPTIONS_DEFAULT_MAX_INFLIGHT;
    o->max_events = OPTIONS_DEFAULT_MAX_EVENTS;
}

int rstmdb_options_new(rstmdb_options **out)
{
    if (!out)
        return RSTMDB_ERR_INVALID;
    rstmdb_options *o = malloc(sizeof(*o));
    if (!o)
        return RSTMDB_ERR_NOMEM;
    options_defaults(o);
    *out = o;
    return RSTMDB_OK;
}

void rstmdb_options_free(rstmdb_options *o)
{
    if (!o)
        return;
    free(o->auth);
    free(o->client_name);
    for (size_t i = 0; i < o->nfeatures; i++)
        free(o->features[i]);
    rstmdb_tls_free(o->tls);
    free(o);
}

/* Replace *slot by a copy of s (NULL clears). */
static int options_set_str(char **slot, const char *s)
{
    char *copy = NULL;
    if (s) {
        copy = strdup(s);
        if (!copy)
            return RSTMDB_ERR_NOMEM;
    }
    free(*slot);
    *slot = copy;
    return RSTMDB_OK;
}

int rstmdb_options_set_auth(rstmdb_options *o, const char *token)
{
    if (!o)
        return RSTMDB_ERR_INVALID;
    return options_set_str(&o->auth, token);
}

int rstmdb_options_set_tls(rstmdb_options *o, rstmdb_tls *tls)
{
    if (!o)
        return RSTMDB_ERR_INVALID;
    rstmdb_tls *old = o->tls;
    o->tls = tls ? tls_ref(tls) : NULL;
    rstmdb_tls_free(old);
    return RSTMDB_OK;
}

int rstmdb_options_set_connect_timeout_ms(rstmdb_options *o, unsigned ms)
{
    if (!o || ms == 0)
        return RSTMDB_ERR_INVALID;
    o->connect_timeout_ms = ms;
    return RSTMDB_OK;
}

int rstmdb_options_set_request_timeout_ms(rstmdb_options *o, unsigned ms)
{
    if (!o)
        return RSTMDB_ERR_INVALID;
    o->request_timeout_ms = ms;
    return RSTMDB_OK;
}

int rstmdb_options_set_client_name(rstmdb_options *o, const char *name)
{
    if (!o)
        return RSTMDB_ERR_INVALID;
    return options_set_str(&o->client_name, name);
}

int rstmdb_options_set_wire_mode(rstmdb_options *o, rstmdb_wire_mode mode)
{
    if (!o || (mode != RSTMDB_WIRE_BINARY_JSON && mode != RSTMDB_WIRE_JSONL))
        return RSTMDB_ERR_INVALID;
    o->wire_mode = mode;
    return RSTMDB_OK;
}

int rstmdb_options_add_feature(rstmdb_options *o, const char *feature)
{
    if (!o || !feature || o->nfeatures >= OPTIONS_MAX_FEATURES)
        return RSTMDB_ERR_INVALID;
    char *copy = strdup(feature);
    if (!copy)
        return RSTMDB_ERR_NOMEM;
    o->features[o->nfeatures++] = copy;
    return RSTMDB_OK;
}

int rstmdb_options_set_max_frame(rstmdb_options *o, size_t bytes)
{
    if (!o || bytes == 0 || bytes > RSTMDB_FRAME_MAX_PAYLOAD)
        return RSTMDB_ERR_INVALID;
    o->max_frame = bytes;
    return RSTMDB_OK;
}

int rstmdb_options_set_max_queued(rstmdb_options *o, size_t n)
{
    if (!o || n == 0)
        return RSTMDB_ERR_INVALID;
    o->max_queued = n;
    return RSTMDB_OK;
}

int rstmdb_options_set_max_inflight(rstmdb_options *o, size_t n)
{
    if (!o || n == 0)
        return RSTMDB_ERR_INVALID;
    o->max_inflight = n;
    return RSTMDB_OK;
}

int rstmdb_options_set_max_events(rstmdb_options *o, size_t n)
{
    if (!o || n == 0)
        return RSTMDB_ERR_INVALID;
    o->max_events = n;
    return RSTMDB_OK;
}

int rstmdb_options_set_dns(rstmdb_options *o, struct evdns_base *dns)
{
    if (!o)
        return RSTMDB_ERR_INVALID;
    o->dns = dns;
    return RSTMDB_OK;
}

rstmdb_options *options_dup(const rstmdb_options *src)
{
    rstmdb_options *o = malloc(sizeof(*o));
    if (!o)
        return NULL;
    options_defaults(o);
    if (!src)
        return o;
    *o = *src;
    o->auth = NULL;
    o->client_name = NULL;
    o->tls = NULL;
    o->nfeatures = 0;
    if (options_set_str(&o->auth, src->auth) != RSTMDB_OK ||
        options_set_str(&o->client_name, src->client_name) != RSTMDB_OK)
        goto fail;
    for (size_t i = 0; i < src->nfeatures; i++) {
        o->features[i] = strdup(src->features[i]);
        if (!o->features[i])
            goto fail;
        o->nfeatures++;
    }
    if (src->tls)
        o->tls = tls_ref(src->tls);
    return o;
fail:
    rstmdb_options_free(o);
    return NULL;
}
