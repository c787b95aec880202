/* walrec.h: WAL_READ pages and GET_INSTANCE results, turned into the data of
 * SSE events during a replay. Pure functions over the bytes the server sent.
 *
 * A replayed event must look exactly like a live one (PROTOCOL.md 2.3 minus
 * "type" and "subscription_id"): instance_id, machine, version, wal_offset,
 * from_state, to_state, event, payload, then ctx when included. WAL entries
 * carry no machine or version, so the caller resolves them (create_instance
 * records on the same page, or GET_INSTANCE). String tokens, payload and ctx
 * are copied as the server's raw bytes, never re-serialised: 1.0 stays 1.0.
 */
#ifndef PROXY_WALREC_H
#define PROXY_WALREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

#define WALREC_SEGMENT_SHIFT 40 /* offset = (segment << 40) | byte position */

typedef enum walrec_type {
    WALREC_OTHER = 0,      /* put_machine, delete_instance, ...: never an event */
    WALREC_APPLY_EVENT,    /* one event */
    WALREC_CREATE_INSTANCE /* tells machine and version of an instance */
} walrec_type;

typedef struct walrec_tok {
    const char *p; /* raw JSON value bytes inside the page text; NULL when absent */
    size_t len;
} walrec_tok;

typedef struct walrec {
    uint64_t offset;
    walrec_type type;
    walrec_tok instance, event, from_state, to_state, payload, ctx; /* apply_event */
    walrec_tok machine;                                             /* create_instance */
    uint64_t version;                                               /* create_instance */
    /* decoded strings (owned), NULL when absent */
    char *instance_id, *event_name, *from, *to, *machine_name;
} walrec;

typedef struct walrec_page {
    walrec *recs;
    size_t n;
    bool has_next; /* next_offset was a number */
    uint64_t next_offset;
} walrec_page;

/* Parse a WAL_READ result object ({"next_offset","records":[...]}) held in
 * text[0..len), which must outlive the page (tokens point into it). At most
 * `max_records` records (more = -1). Returns 0 or -1 (malformed, OOM); the
 * page is empty on failure. */
int walrec_page_parse(const char *text, size_t len, size_t max_records, walrec_page *out);
void walrec_page_deinit(walrec_page *pg);

/* Append the SSE data of apply_event `r` to `out`. `machine` is the raw JSON
 * string token (with quotes) of the instance's machine. Returns 0 or -1. */
int walrec_event_data(const walrec *r, const char *machine, size_t machine_len, uint64_t version,
                      bool include_ctx, strbuf *out);

/* From a GET_INSTANCE result object: the machine's raw string token (a new
 * malloc'd copy), its decoded name (malloc'd) and the version. Returns 0 or -1. */
int walrec_instance_info(const char *text, size_t len, char **machine_tok, char **machine_name,
                         uint64_t *version);

static inline uint64_t walrec_segment(uint64_t offset)
{
    return offset >> WALREC_SEGMENT_SHIFT;
}

/* A top-level unsigned integer member `key` of a result object (e.g. the
 * WATCH answer's wal_offset). Returns 0 or -1 (absent, not a u64). */
int walrec_result_u64(const char *text, size_t len, const char *key, uint64_t *out);

/* Compaction test for a replay that asked for `cursor` and whose first
 * record (if any) is at `first`. Deletion removes whole segments, so records
 * at or above `cursor` can only be missing when cursor's segment is gone:
 * `lowest_segment` is the segment of the oldest record still in the WAL.
 * True when records at or above `cursor` may have been deleted. A cursor at
 * the very end of a deleted segment is reported too: "maybe lost" is said
 * out loud, never skipped silently. */
bool walrec_compacted(uint64_t cursor, uint64_t lowest_segment);

/* The per-stream dedup rule: an event is delivered only when its offset is
 * at or above the stream's cursor, which then moves past it. Ids therefore
 * strictly increase, and an event seen twice (an idempotent replay
 * re-broadcast, or a WAL record also received live) goes out once. */
static inline bool walrec_cursor_take(uint64_t *cursor, uint64_t offset)
{
    if (offset < *cursor)
        return false;
    *cursor = offset + 1;
    return true;
}

/* Whether the first record `first` returned for `cursor` requires the
 * lowest-segment probe: only when it lies in a later segment than cursor. */
bool walrec_needs_probe(uint64_t cursor, uint64_t first);

#endif
