/* smap.c: linear-probing string-keyed hash map (FNV-1a). Owns key copies
 * and the slot array only. */
#include "smap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t smap_hash(const char *k, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 1099511628211ULL;
    }
    return (size_t)(h ^ (h >> 29));
}

void smap_init(smap *m)
{
    memset(m, 0, sizeof(*m));
}

void smap_deinit(smap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key)
            free(m->slots[i].key);
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

static smap_slot *smap_find(const smap *m, const char *key, size_t klen, size_t h)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        smap_slot *s = &m->slots[i];
        if (!s->key && !s->tomb)
            return NULL;
        if (s->key && s->hash == h && s->klen == klen && memcmp(s->key, key, klen) == 0)
            return s;
    }
}

void *smap_get(const smap *m, const char *key, size_t klen)
{
    smap_slot *s = smap_find(m, key, klen, smap_hash(key, klen));
    return s ? s->val : NULL;
}

static int smap_rehash(smap *m, size_t ncap)
{
    smap_slot *ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        smap_slot *s = &m->slots[i];
        if (!s->key)
            continue;
        size_t j = s->hash & (ncap - 1);
        while (ns[j].key)
            j = (j + 1) & (ncap - 1);
        ns[j] = *s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    m->used = m->count;
    return 0;
}

int smap_put(smap *m, const char *key, size_t klen, void *val)
{
    size_t h = smap_hash(key, klen);
    smap_slot *s = smap_find(m, key, klen, h);
    if (s) {
        s->val = val;
        return 0;
    }
    if ((m->used + 1) * 4 >= m->cap * 3) {
        size_t ncap = m->cap ? m->cap : 16;
        while ((m->count + 1) * 2 >= ncap)
            ncap *= 2;
        if (smap_rehash(m, ncap) != 0)
            return -1;
    }
    char *k = malloc(klen + 1);
    if (!k)
        return -1;
    memcpy(k, key, klen);
    k[klen] = '\0';
    size_t mask = m->cap - 1;
    size_t i = h & mask;
    while (m->slots[i].key)
        i = (i + 1) & mask;
    if (!m->slots[i].tomb)
        m->used++;
    m->slots[i].tomb = false;
    m->slots[i].key = k;
    m->slots[i].klen = klen;
    m->slots[i].hash = h;
    m->slots[i].val = val;
    m->count++;
    return 0;
}

void *smap_del(smap *m, const char *key, size_t klen)
{
    smap_slot *s = smap_find(m, key, klen, smap_hash(key, klen));
    if (!s)
        return NULL;
    void *v = s->val;
    free(s->key);
    s->key = NULL;
    s->tomb = true;
    s->val = NULL;
    m->count--;
    return v;
}

smap_slot *smap_next(const smap *m, size_t *pos)
{
    while (*pos < m->cap) {
        smap_slot *s = &m->slots[(*pos)++];
        if (s->key)
            return s;
    }
    return NULL;
}
