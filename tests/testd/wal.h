/* wal.h: rstmdb's WAL kept in memory: packed offsets (segment << 40 | byte
 * position), 24-byte record headers, segment rollover, sequences, I/O
 * counters, and compaction that drops whole segments. Entries are stored
 * as their sorted compact JSON (what WAL_READ returns); the record size
 * comes from the on-disk field order the caller serialized. */
#ifndef TESTD_WAL_H
#define TESTD_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

#define WAL_RECORD_HEADER    24u
#define WAL_DEFAULT_SEGMENT  ((uint64_t)64 * 1024 * 1024)
#define WAL_OFFSET(seg, pos) (((uint64_t)(seg) << 40) | (uint64_t)(pos))
/* Largest entry payload the real WAL accepts (MAX_RECORD_SIZE): 0.1.1's,
 * and 0.3.0's (16 MiB - 64 KiB). */
#define WAL_MAX_RECORD     ((size_t)16 * 1024 * 1024)
#define WAL_MAX_RECORD_0_3 ((size_t)16 * 1024 * 1024 - 64 * 1024)

typedef struct wal_record {
    uint64_t offset;
    uint64_t sequence;
    uint32_t segment;
    uint32_t disk_size; /* 24 + on-disk payload length */
    char *entry;        /* sorted compact JSON */
    size_t entry_len;
} wal_record;

typedef struct wal wal;

/* `max_record`: the largest on-disk entry accepted (WAL_MAX_RECORD...). */
int wal_new(wal **out, uint64_t segment_size, size_t max_record);
size_t wal_max_record(const wal *w);
void wal_free(wal *w);
/* Append an entry; `disk_len` is the length of its on-disk (field-order)
 * JSON, `sorted` the text returned by WAL_READ (copied). Returns 0 and the
 * offset, WAL_ETOOBIG when disk_len > the max record (nothing written), or
 * -1 on OOM. */
#define WAL_ETOOBIG (-2)
int wal_append(wal *w, size_t disk_len, const char *sorted, size_t sorted_len, uint64_t *offset);
/* Offset the next record will get (latest_offset, WATCH_ALL wal_offset). */
uint64_t wal_next_offset(const wal *w);
/* Records with offset >= from, at most limit (has_limit). Appends
 * {"entry":...,"offset":N,"sequence":N} items comma-separated to b and
 * returns the count; *last gets the last offset. Counts one read. */
size_t wal_read(wal *w, uint64_t from, bool has_limit, uint64_t limit, strbuf *b, uint64_t *last);
/* Delete every segment whose id is below segment_of(before). Returns the count. */
size_t wal_compact_before(wal *w, uint64_t before);

typedef struct wal_stats {
    uint64_t entry_count, segment_count, latest_offset, total_size_bytes;
    uint64_t bytes_read, bytes_written, fsyncs, reads, writes;
} wal_stats;
void wal_get_stats(const wal *w, wal_stats *s);

#endif
