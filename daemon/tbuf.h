/* tbuf.h: a growable text buffer with a hard cap, for the JSON the hub
 * builds (WATCH params, replayed event data). Appends fail, never truncate,
 * once the cap would be passed. */
#ifndef PROXY_TBUF_H
#define PROXY_TBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tbuf {
    char *s; /* NUL-terminated while len > 0 */
    size_t len;
    size_t cap;  /* allocated */
    size_t max;  /* hard cap on len */
    bool failed; /* an append failed (OOM or over max): the content is incomplete */
} tbuf;

void tbuf_init(tbuf *b, size_t max);
void tbuf_deinit(tbuf *b);
void tbuf_reset(tbuf *b);
/* Each returns 0, or -1 and sets b->failed. */
int tbuf_add(tbuf *b, const char *s, size_t n);
int tbuf_adds(tbuf *b, const char *s);
int tbuf_add_u64(tbuf *b, uint64_t v);
/* `s` as a JSON string with quotes (escapes ", \ and control characters,
 * like serde_json: \n \r \t \b \f, others \u00XX; UTF-8 passes through). */
int tbuf_add_jstr(tbuf *b, const char *s);
/* Hand the content to the caller (malloc'd, NUL-terminated; "" if empty);
 * the buffer is left empty. NULL on OOM or when b->failed. */
char *tbuf_take(tbuf *b, size_t *len);

#endif
