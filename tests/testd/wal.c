/* wal.c: the in-memory WAL. Owns the records; knows nothing about what the
 * entries mean (engine_ops.c builds them). */
#include "wal.h"

#include <stdlib.h>
#include <string.h>

struct wal {
    uint64_t segment_size;
    wal_record *recs; /* live records are recs[first .. n) */
    size_t first, n, cap;
    uint32_t cur_segment;
    uint64_t cur_pos;
    uint32_t lowest_segment; /* segments below were compacted away */
    uint64_t next_seq;
    size_t max_record;
    uint64_t bytes_read, bytes_written, reads, writes;
};

int wal_new(wal **out, uint64_t segment_size, size_t max_record)
{
    wal *w = calloc(1, sizeof(*w));
    if (!w)
        return -1;
    w->max_record = max_record;
    w->segment_size = segment_size ? segment_size : WAL_DEFAULT_SEGMENT;
    w->cur_segment = 1;
    w->lowest_segment = 1;
    w->next_seq = 1;
    w->reads = 1; /* the startup replay's read_from(0) */
    *out = w;
    return 0;
}

size_t wal_max_record(const wal *w)
{
    return w->max_record;
}

void wal_free(wal *w)
{
    if (!w)
        return;
    for (size_t i = w->first; i < w->n; i++)
        free(w->recs[i].entry);
    free(w->recs);
    free(w);
}

int wal_append(wal *w, size_t disk_len, const char *sorted, size_t sorted_len, uint64_t *offset)
{
    if (disk_len > w->max_record) {
        /* The real WAL takes the sequence number before it encodes the
         * record: the refused record leaves a gap (entry_count counts it). */
        w->next_seq++;
        return WAL_ETOOBIG;
    }
    if (w->n == w->cap) {
        /* Reclaim the compacted prefix before growing. */
        if (w->first > 0) {
            memmove(w->recs, w->recs + w->first, (w->n - w->first) * sizeof(*w->recs));
            w->n -= w->first;
            w->first = 0;
        }
        if (w->n == w->cap) {
            size_t nc = w->cap ? w->cap * 2 : 256;
            wal_record *p = realloc(w->recs, nc * sizeof(*p));
            if (!p)
                return -1;
            w->recs = p;
            w->cap = nc;
        }
    }
    char *copy = malloc(sorted_len + 1);
    if (!copy)
        return -1;
    memcpy(copy, sorted, sorted_len);
    copy[sorted_len] = '\0';
    uint64_t size = WAL_RECORD_HEADER + disk_len;
    /* Segment::can_fit: size + record <= max, else rotate to the next id. */
    if (w->cur_pos + size > w->segment_size) {
        w->cur_segment++;
        w->cur_pos = 0;
    }
    wal_record *r = &w->recs[w->n++];
    r->offset = WAL_OFFSET(w->cur_segment, w->cur_pos);
    r->sequence = w->next_seq++;
    r->segment = w->cur_segment;
    r->disk_size = (uint32_t)size;
    r->entry = copy;
    r->entry_len = sorted_len;
    w->cur_pos += size;
    w->bytes_written += size;
    w->writes++;
    *offset = r->offset;
    return 0;
}

uint64_t wal_next_offset(const wal *w)
{
    return WAL_OFFSET(w->cur_segment, w->cur_pos);
}

size_t wal_read(wal *w, uint64_t from, bool has_limit, uint64_t limit, strbuf *b, uint64_t *last)
{
    w->reads++;
    size_t lo = w->first, hi = w->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->recs[mid].offset < from)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t count = 0;
    for (size_t i = lo; i < w->n; i++) {
        if (has_limit && count >= limit)
            break;
        const wal_record *r = &w->recs[i];
        if (count)
            strbuf_putc(b, ',');
        strbuf_puts(b, "{\"entry\":");
        strbuf_add(b, r->entry, r->entry_len);
        strbuf_puts(b, ",\"offset\":");
        strbuf_u64(b, r->offset);
        strbuf_puts(b, ",\"sequence\":");
        strbuf_u64(b, r->sequence);
        strbuf_putc(b, '}');
        w->bytes_read += r->disk_size;
        *last = r->offset;
        count++;
        if (strbuf_failed(b))
            break;
    }
    return count;
}

size_t wal_compact_before(wal *w, uint64_t before)
{
    uint32_t target = (uint32_t)(before >> 40);
    if (target <= w->lowest_segment)
        return 0;
    size_t deleted = target - w->lowest_segment;
    while (w->first < w->n && w->recs[w->first].segment < target) {
        free(w->recs[w->first].entry);
        w->first++;
    }
    w->lowest_segment = target;
    return deleted;
}

void wal_get_stats(const wal *w, wal_stats *s)
{
    memset(s, 0, sizeof(*s));
    s->entry_count = w->next_seq - 1;
    s->segment_count = (uint64_t)(w->cur_segment - w->lowest_segment + 1);
    s->latest_offset = wal_next_offset(w);
    /* Stale in the real server: segment sizes as of when each segment was
     * opened, which on a fresh server is always 0. */
    s->total_size_bytes = 0;
    s->bytes_read = w->bytes_read;
    s->bytes_written = w->bytes_written;
    s->fsyncs = w->writes;
    s->reads = w->reads;
    s->writes = w->writes;
}
