/* instcache.c: the hub's instance cache. A WAL record of an applied event
 * names its instance but not the instance's machine or version, which the
 * event's data carries: replay learns them from create_instance records or
 * GET_INSTANCE and keeps them here; authorization reads an instance's
 * machine here too (hub_instance_machine). An instance's machine and version
 * never change while it exists; rstmdb 0.3 removes deleted instances, so an
 * id can come back with another machine: a delete through the proxy forgets
 * the entry. The cap only bounds memory. */
#include <stdlib.h>
#include <string.h>

#include "hub_int.h"

void instcache_init(instcache *c)
{
    hmap_init(&c->map);
    list_init(&c->list);
    c->n = 0;
}

static void entry_free(instcache *c, inst_info *ii)
{
    list_remove(&ii->link);
    hmap_remove(&c->map, &ii->node);
    free(ii->instance_id);
    free(ii->machine_tok);
    free(ii->machine);
    free(ii);
    c->n--;
}

static void instcache_clear(instcache *c)
{
    while (!list_empty(&c->list))
        entry_free(c, list_entry(list_first(&c->list), inst_info, link));
}

void instcache_forget(instcache *c, const char *id)
{
    hmap_node *n = hmap_find(&c->map, id, strlen(id));
    if (n != NULL)
        entry_free(c, (inst_info *)(void *)((char *)n - offsetof(inst_info, node)));
}

void instcache_deinit(instcache *c)
{
    instcache_clear(c);
    hmap_deinit(&c->map);
}

const inst_info *instcache_get(const instcache *c, const char *id)
{
    hmap_node *n = hmap_find(&c->map, id, strlen(id));
    return n ? (const inst_info *)((const char *)n - offsetof(inst_info, node)) : NULL;
}

/* When the cap is reached the cache starts over, which costs lookups, not
 * correctness. */
void instcache_put(instcache *c, const char *id, char *tok, char *name, uint64_t version)
{
    if (instcache_get(c, id)) {
        free(tok);
        free(name);
        return;
    }
    if (c->n >= HUB_CACHE_MAX)
        instcache_clear(c);
    inst_info *ii = calloc(1, sizeof *ii);
    if (!ii || !(ii->instance_id = strdup(id))) {
        free(ii);
        free(tok);
        free(name);
        return;
    }
    ii->machine_tok = tok;
    ii->machine = name;
    ii->version = version;
    ii->node.key = ii->instance_id;
    ii->node.key_len = strlen(ii->instance_id);
    if (hmap_insert(&c->map, &ii->node) < 0) {
        free(ii->instance_id);
        free(tok);
        free(name);
        free(ii);
        return;
    }
    list_push_front(&c->list, &ii->link);
    c->n++;
}
