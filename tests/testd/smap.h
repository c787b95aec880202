/* smap.h: an open-addressing hash map from byte-string keys to pointers,
 * used for instances, subscriptions and connections in rstmdb-testd.
 * The map copies keys; it never owns or frees the values. */
#ifndef TESTD_SMAP_H
#define TESTD_SMAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct smap_slot {
    char *key; /* NULL = empty or deleted (tomb) */
    bool tomb;
    size_t klen;
    size_t hash;
    void *val;
} smap_slot;

typedef struct smap {
    smap_slot *slots;
    size_t cap;   /* power of two */
    size_t count; /* live entries */
    size_t used;  /* live + tombstones */
} smap;

void smap_init(smap *m);
void smap_deinit(smap *m); /* frees keys, not values */
void *smap_get(const smap *m, const char *key, size_t klen);
/* Insert or replace. Returns 0, or -1 on OOM. */
int smap_put(smap *m, const char *key, size_t klen, void *val);
/* Remove; returns the old value or NULL. */
void *smap_del(smap *m, const char *key, size_t klen);
/* Iterate: start with *pos = 0; returns the next live slot or NULL. */
smap_slot *smap_next(const smap *m, size_t *pos);

#endif
