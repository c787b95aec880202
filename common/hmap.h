/* hmap.h: an intrusive hash map keyed by byte strings (private).
 *
 * Maps request ids to pending requests and subscription ids to subscriptions
 * so a response or event is routed in O(1) even with thousands in flight.
 * The map never owns its nodes or their keys: the embedding object does.
 */
#ifndef RSTMDB_HMAP_H
#define RSTMDB_HMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct hmap_node {
    struct hmap_node *next;
    const char *key; /* owned by the embedding object, stable while linked */
    size_t key_len;
    uint32_t hash;
} hmap_node;

typedef struct hmap {
    hmap_node **buckets;
    size_t nbuckets; /* 0 or a power of two */
    size_t count;
} hmap;

void hmap_init(hmap *m);
/* Frees the bucket array only; nodes are the caller's. */
void hmap_deinit(hmap *m);
/* Link `n` (key already set in n->key/key_len). Returns 0, or -1 when the
 * bucket array could not grow (OOM; the node is not linked). */
int hmap_insert(hmap *m, hmap_node *n);
hmap_node *hmap_find(const hmap *m, const char *key, size_t key_len);
/* Unlink `n` if linked (no-op otherwise). */
void hmap_remove(hmap *m, hmap_node *n);

#endif
