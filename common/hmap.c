/* hmap.c: chained hash map over caller-owned nodes; grows by doubling at
 * load factor 1. Allocates only its bucket array, never a node. */
#include "hmap.h"

#include <stdlib.h>
#include <string.h>

#define HMAP_MIN_BUCKETS 16u

static uint32_t hmap_hash(const char *key, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 16777619u;
    }
    return h;
}

void hmap_init(hmap *m)
{
    m->buckets = NULL;
    m->nbuckets = 0;
    m->count = 0;
}

void hmap_deinit(hmap *m)
{
    free(m->buckets);
    hmap_init(m);
}

static int hmap_grow(hmap *m)
{
    size_t nb = m->nbuckets ? m->nbuckets * 2 : HMAP_MIN_BUCKETS;
    hmap_node **b = calloc(nb, sizeof(*b));
    if (!b)
        return -1;
    for (size_t i = 0; i < m->nbuckets; i++) {
        hmap_node *n = m->buckets[i];
        while (n) {
            hmap_node *next = n->next;
            size_t j = n->hash & (nb - 1);
            n->next = b[j];
            b[j] = n;
            n = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
    return 0;
}

int hmap_insert(hmap *m, hmap_node *n)
{
    if (m->count >= m->nbuckets && hmap_grow(m) != 0) {
        if (m->nbuckets == 0)
            return -1;
        /* Could not grow: chains get longer, but the insert still works. */
    }
    n->hash = hmap_hash(n->key, n->key_len);
    size_t j = n->hash & (m->nbuckets - 1);
    n->next = m->buckets[j];
    m->buckets[j] = n;
    m->count++;
    return 0;
}

hmap_node *hmap_find(const hmap *m, const char *key, size_t key_len)
{
    if (m->nbuckets == 0)
        return NULL;
    uint32_t h = hmap_hash(key, key_len);
    for (hmap_node *n = m->buckets[h & (m->nbuckets - 1)]; n; n = n->next)
        if (n->hash == h && n->key_len == key_len && memcmp(n->key, key, key_len) == 0)
            return n;
    return NULL;
}

void hmap_remove(hmap *m, hmap_node *n)
{
    if (m->nbuckets == 0)
        return;
    hmap_node **pp = &m->buckets[n->hash & (m->nbuckets - 1)];
    while (*pp) {
        if (*pp == n) {
            *pp = n->next;
            n->next = NULL;
            m->count--;
            return;
        }
        pp = &(*pp)->next;
    }
}
