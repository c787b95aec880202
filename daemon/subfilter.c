/* subfilter.c: filter normal form, feed key and WAL-entry matching (see
 * subfilter.h). Pure: no I/O, no upstream knowledge beyond the WATCH params
 * names. */
#include "subfilter.h"

#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void list_deinit(subfilter_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int list_init(subfilter_list *l, const char *const *v, size_t n)
{
    l->v = NULL;
    l->n = 0;
    if (n == 0)
        return 0;
    if (!v || n > SUBFILTER_MAX_VALUES)
        return RSTMDB_ERR_INVALID;
    l->v = calloc(n, sizeof *l->v);
    if (!l->v)
        return RSTMDB_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!v[i]) {
            l->n = i;
            list_deinit(l);
            return RSTMDB_ERR_INVALID;
        }
        if (!(l->v[i] = strdup(v[i]))) {
            l->n = i;
            list_deinit(l);
            return RSTMDB_ERR_NOMEM;
        }
    }
    l->n = n;
    qsort(l->v, n, sizeof *l->v, cmp_str);
    size_t w = 1;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(l->v[i], l->v[w - 1]) == 0)
            free(l->v[i]);
        else
            l->v[w++] = l->v[i];
    }
    l->n = w;
    return 0;
}

static void key_list(strbuf *b, const char *name, const subfilter_list *l)
{
    if (l->n == 0)
        return; /* empty = match all, same as absent */
    strbuf_puts(b, ",\"");
    strbuf_puts(b, name);
    strbuf_puts(b, "\":[");
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            strbuf_add(b, ",", 1);
        strbuf_jstr(b, l->v[i], strlen(l->v[i]));
    }
    strbuf_add(b, "]", 1);
}

int subfilter_init(subfilter *out, const hub_filter *f)
{
    memset(out, 0, sizeof *out);
    out->include_ctx = f->include_ctx;
    int rc = RSTMDB_ERR_NOMEM;
    if (f->instance_id) {
        if (!(out->instance_id = strdup(f->instance_id)))
            goto fail;
    } else if ((rc = list_init(&out->machines, f->machines, f->nmachines)) ||
               (rc = list_init(&out->events, f->events, f->nevents)) ||
               (rc = list_init(&out->from_states, f->from_states, f->nfrom_states)) ||
               (rc = list_init(&out->to_states, f->to_states, f->nto_states))) {
        goto fail;
    }
    strbuf b;
    strbuf_init(&b, SUBFILTER_MAX_KEY);
    strbuf_puts(&b, out->include_ctx ? "{\"include_ctx\":true" : "{\"include_ctx\":false");
    if (out->instance_id) {
        strbuf_puts(&b, ",\"instance_id\":");
        strbuf_jstr(&b, out->instance_id, strlen(out->instance_id));
    }
    key_list(&b, "events", &out->events);
    key_list(&b, "from_states", &out->from_states);
    key_list(&b, "machines", &out->machines);
    key_list(&b, "to_states", &out->to_states);
    strbuf_add(&b, "}", 1);
    rc = RSTMDB_ERR_INVALID; /* nearly always the cap: thousands of long filter values */
    out->key = strbuf_take(&b, &out->key_len);
    strbuf_deinit(&b);
    if (!out->key)
        goto fail;
    return 0;
fail:
    subfilter_deinit(out);
    return rc;
}

void subfilter_deinit(subfilter *sf)
{
    free(sf->instance_id);
    list_deinit(&sf->machines);
    list_deinit(&sf->events);
    list_deinit(&sf->from_states);
    list_deinit(&sf->to_states);
    free(sf->key);
    memset(sf, 0, sizeof *sf);
}

const char *subfilter_op(const subfilter *sf)
{
    return sf->instance_id ? "WATCH_INSTANCE" : "WATCH_ALL";
}

static bool list_has(const subfilter_list *l, const char *s)
{
    if (l->n == 0)
        return true;
    if (!s)
        return false;
    return bsearch(&s, l->v, l->n, sizeof *l->v, cmp_str) != NULL;
}

bool subfilter_match(const subfilter *sf, const char *instance_id, const char *machine,
                     const char *event, const char *from_state, const char *to_state)
{
    if (sf->instance_id)
        return instance_id && strcmp(sf->instance_id, instance_id) == 0;
    return list_has(&sf->machines, machine) && list_has(&sf->events, event) &&
           list_has(&sf->from_states, from_state) && list_has(&sf->to_states, to_state);
}

bool subfilter_needs_machine(const subfilter *sf)
{
    return !sf->instance_id && sf->machines.n > 0;
}
