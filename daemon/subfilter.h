/* subfilter.h: a hub_filter in normal form, its feed key and its matcher.
 *
 * Two streams share one upstream WATCH exactly when their normal forms are
 * equal: lists sorted and deduplicated (?machines=b,a,a == ?machines=a,b),
 * include_ctx part of the key, lists ignored for WATCH_INSTANCE. The key is
 * the canonical WATCH params JSON itself, so it is unambiguous and is what
 * goes upstream. The matcher applies the same filter to WAL entries during
 * replay (the server filters live events itself).
 */
#ifndef PROXY_SUBFILTER_H
#define PROXY_SUBFILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "hub.h"

#define SUBFILTER_MAX_VALUES 256   /* entries per list */
#define SUBFILTER_MAX_KEY    65536 /* bytes of the canonical params JSON */

typedef struct subfilter_list {
    char **v; /* sorted, unique, owned */
    size_t n;
} subfilter_list;

typedef struct subfilter {
    char *instance_id; /* non-NULL: WATCH_INSTANCE */
    subfilter_list machines, events, from_states, to_states;
    bool include_ctx;
    char *key; /* canonical WATCH params JSON, e.g. {"include_ctx":true,"machines":["a"]} */
    size_t key_len;
} subfilter;

/* Normalize `f` into `out` (all owned). Returns 0, or RSTMDB_ERR_INVALID (a
 * list over SUBFILTER_MAX_VALUES, a NULL entry, the key over its cap) or
 * RSTMDB_ERR_NOMEM; `out` is then empty (subfilter_deinit is still safe). */
int subfilter_init(subfilter *out, const hub_filter *f);
void subfilter_deinit(subfilter *sf);
/* "WATCH_INSTANCE" or "WATCH_ALL". */
const char *subfilter_op(const subfilter *sf);
/* Whether an apply_event with these (decoded) fields belongs to the stream.
 * `machine` may be NULL when no machines filter is set (not needed then). */
bool subfilter_match(const subfilter *sf, const char *instance_id, const char *machine,
                     const char *event, const char *from_state, const char *to_state);
/* True when matching needs the machine name (a machines filter is set). */
bool subfilter_needs_machine(const subfilter *sf);

#endif
