/* jbuf.h: a growable byte buffer for building JSON text in rstmdb-testd.
 * It owns only its bytes; it never parses. OOM is sticky: after a failed
 * growth every append is a no-op and jbuf_failed() says so. */
#ifndef TESTD_JBUF_H
#define TESTD_JBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hard cap: the real server closes the connection rather than send a frame
 * over 16 MiB, so nothing we build needs to be larger (a WAL_READ of
 * everything is the usual case that hits it). */
#define JBUF_MAX ((size_t)64 * 1024 * 1024)

typedef struct jbuf {
    char *data;
    size_t len;
    size_t cap;
    bool failed; /* OOM or over JBUF_MAX */
} jbuf;

void jbuf_init(jbuf *b);
void jbuf_deinit(jbuf *b);
void jbuf_reset(jbuf *b);
void jbuf_append(jbuf *b, const void *p, size_t n);
void jbuf_puts(jbuf *b, const char *s);
void jbuf_putc(jbuf *b, char c);
void jbuf_printf(jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void jbuf_u64(jbuf *b, uint64_t v);
void jbuf_i64(jbuf *b, int64_t v);
/* A JSON string literal with serde_json's escaping (", \, control chars). */
void jbuf_jstr(jbuf *b, const char *s, size_t n);
/* Take ownership of the bytes (NUL-terminated); the buffer is left empty.
 * Returns NULL if the buffer failed. */
char *jbuf_steal(jbuf *b, size_t *len);
bool jbuf_failed(const jbuf *b);

#endif
