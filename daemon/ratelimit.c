/* ratelimit.c: token buckets in an LRU, and per-caller stream counts
 * (ratelimit.h). Buckets are kept in millitokens so that rates below one
 * request per millisecond refill without rounding away. */
#include "ratelimit.h"

#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "list.h"

typedef struct bucket {
    hmap_node node;
    list_node lru;  /* most recent first */
    uint64_t milli; /* tokens * 1000 */
    uint64_t at_ms; /* last refill */
    char key[];
} bucket;

typedef struct streams {
    hmap_node node;
    unsigned n;
    char key[];
} streams;

struct ratelimit {
    ratelimit_config c;
    hmap buckets;
    list_node lru;
    size_t nbuckets;
    hmap streams;
};

int ratelimit_new(ratelimit **out, const ratelimit_config *c)
{
    ratelimit *rl = calloc(1, sizeof *rl);
    if (rl == NULL)
        return -1;
    rl->c = *c;
    if (rl->c.burst == 0)
        rl->c.burst = rl->c.rps;
    if (rl->c.max_callers == 0)
        rl->c.max_callers = 10000;
    hmap_init(&rl->buckets);
    hmap_init(&rl->streams);
    list_init(&rl->lru);
    *out = rl;
    return 0;
}

void ratelimit_free(ratelimit *rl)
{
    if (rl == NULL)
        return;
    list_node *pos, *tmp;
    list_each_safe(pos, tmp, &rl->lru)
    {
        bucket *b = list_entry(pos, bucket, lru);
        hmap_remove(&rl->buckets, &b->node);
        free(b);
    }
    /* Stream counts are freed by their last close; free what streams still
     * open at exit hold. */
    for (size_t i = 0; i < rl->streams.nbuckets; i++) {
        hmap_node *n = rl->streams.buckets[i];
        while (n != NULL) {
            hmap_node *next = n->next;
            free((streams *)(void *)((char *)n - offsetof(streams, node)));
            n = next;
        }
    }
    hmap_deinit(&rl->buckets);
    hmap_deinit(&rl->streams);
    free(rl);
}

bool ratelimit_enabled(const ratelimit *rl)
{
    return rl != NULL && (rl->c.rps > 0 || rl->c.max_streams > 0);
}

size_t ratelimit_callers(const ratelimit *rl)
{
    return rl ? rl->nbuckets : 0;
}

static bucket *bucket_get(ratelimit *rl, const char *key, uint64_t now_ms)
{
    size_t kl = strlen(key);
    hmap_node *n = hmap_find(&rl->buckets, key, kl);
    if (n != NULL) {
        bucket *b = (bucket *)(void *)((char *)n - offsetof(bucket, node));
        list_remove(&b->lru);
        list_push_front(&rl->lru, &b->lru);
        return b;
    }
    if (rl->nbuckets >= rl->c.max_callers) {
        /* Forget the least recently seen caller: it comes back full. */
        bucket *old = list_entry(rl->lru.prev, bucket, lru);
        list_remove(&old->lru);
        hmap_remove(&rl->buckets, &old->node);
        free(old);
        rl->nbuckets--;
    }
    bucket *b = malloc(sizeof *b + kl + 1);
    if (b == NULL)
        return NULL;
    memcpy(b->key, key, kl + 1);
    b->node.key = b->key;
    b->node.key_len = kl;
    b->milli = (uint64_t)rl->c.burst * 1000;
    b->at_ms = now_ms;
    if (hmap_insert(&rl->buckets, &b->node) != 0) {
        free(b);
        return NULL;
    }
    list_push_front(&rl->lru, &b->lru);
    rl->nbuckets++;
    return b;
}

bool ratelimit_take(ratelimit *rl, const char *key, uint64_t now_ms, unsigned *retry_after_s)
{
    if (rl == NULL || rl->c.rps == 0)
        return true;
    bucket *b = bucket_get(rl, key, now_ms);
    if (b == NULL)
        return true; /* out of memory: fail open rather than refuse everyone */
    uint64_t cap = (uint64_t)rl->c.burst * 1000;
    if (now_ms > b->at_ms) {
        /* rps tokens per second = rps millitokens per millisecond. */
        uint64_t add = (now_ms - b->at_ms) * rl->c.rps;
        b->milli = b->milli + add > cap ? cap : b->milli + add;
        b->at_ms = now_ms;
    }
    if (b->milli >= 1000) {
        b->milli -= 1000;
        return true;
    }
    uint64_t wait_ms = (1000 - b->milli + rl->c.rps - 1) / rl->c.rps;
    unsigned s = (unsigned)((wait_ms + 999) / 1000);
    *retry_after_s = s ? s : 1;
    return false;
}

static streams *streams_find(ratelimit *rl, const char *key)
{
    hmap_node *n = hmap_find(&rl->streams, key, strlen(key));
    return n ? (streams *)(void *)((char *)n - offsetof(streams, node)) : NULL;
}

bool ratelimit_stream_open(ratelimit *rl, const char *key)
{
    if (rl == NULL || rl->c.max_streams == 0)
        return true;
    streams *s = streams_find(rl, key);
    if (s == NULL) {
        size_t kl = strlen(key);
        if ((s = malloc(sizeof *s + kl + 1)) == NULL)
            return true;
        memcpy(s->key, key, kl + 1);
        s->node.key = s->key;
        s->node.key_len = kl;
        s->n = 0;
        if (hmap_insert(&rl->streams, &s->node) != 0) {
            free(s);
            return true;
        }
    }
    if (s->n >= rl->c.max_streams)
        return false;
    s->n++;
    return true;
}

void ratelimit_stream_close(ratelimit *rl, const char *key)
{
    if (rl == NULL || rl->c.max_streams == 0)
        return;
    streams *s = streams_find(rl, key);
    if (s == NULL)
        return;
    if (s->n > 0)
        s->n--;
    if (s->n == 0) {
        hmap_remove(&rl->streams, &s->node);
        free(s);
    }
}
