/* strbuf.h: the one growable, bounded byte buffer of the client, the daemon
 * and rstmdb-testd, with the JSON string escaper they all need.
 *
 * Appends never truncate: one that would pass `max`, or that cannot
 * allocate, fails, and the failure is sticky (every later append is a no-op)
 * so a builder checks once at the end. The text is NUL-terminated whenever
 * data != NULL. It owns only its bytes.
 */
#ifndef RSTMDB_COMMON_STRBUF_H
#define RSTMDB_COMMON_STRBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum strbuf_err {
    STRBUF_OK = 0,
    STRBUF_NOMEM,   /* an allocation failed */
    STRBUF_TOO_BIG, /* the append would have passed max */
} strbuf_err;

typedef struct strbuf {
    char *data;
    size_t len;
    size_t cap; /* allocated */
    size_t max; /* hard cap on len */
    strbuf_err err;
} strbuf;

void strbuf_init(strbuf *b, size_t max);
void strbuf_deinit(strbuf *b);
/* Empty again (keeps the memory), clearing a failure. */
void strbuf_reset(strbuf *b);
/* At least `n` more bytes fit without a reallocation (or a failure). */
int strbuf_reserve(strbuf *b, size_t n);

/* Each returns 0, or -1 with b->err set. */
int strbuf_add(strbuf *b, const void *p, size_t n);
int strbuf_puts(strbuf *b, const char *s);
int strbuf_putc(strbuf *b, char c);
int strbuf_u64(strbuf *b, uint64_t v);
int strbuf_i64(strbuf *b, int64_t v);
int strbuf_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s[0..n) as a JSON string literal with serde_json's escaping: ", \ and the
 * controls (\n \r \t \b \f, others \u00XX); other bytes pass through. */
int strbuf_jstr(strbuf *b, const char *s, size_t n);

static inline bool strbuf_failed(const strbuf *b)
{
    return b->err != STRBUF_OK;
}

/* Hand the bytes to the caller (malloc'd, NUL-terminated, "" when empty) and
 * leave the buffer empty. NULL when it failed (or on OOM). */
char *strbuf_take(strbuf *b, size_t *len);

#endif
