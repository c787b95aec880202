/* line.c: the incremental JSONL decoder for the server's "jsonl" wire mode
 * (one JSON document per '\n'-terminated line, "\r\n" tolerated). Splits
 * lines under a hard cap; it never parses the JSON and never does I/O.
 */
#include <stdlib.h>
#include <string.h>

#include "rstmdb/error.h"
#include "rstmdb/frame.h"

/* First allocation for a partial line; doubles up to the cap. Most lines are
 * short responses, so a line split across reads should not cost megabytes. */
#define LINE_INITIAL_BUFFER 256u
/* As in frame.c: a larger buffer is released once its line was handed out. */
#define LINE_KEEP_BUFFER (64u * 1024u)

struct rstmdb_line_decoder {
    size_t max_line; /* cap on a line without its "\n" or "\r\n" */
    int error;       /* sticky negative code once poisoned, else 0 */
    uint8_t *buf;    /* a line that arrived in pieces (no newline yet) */
    size_t buf_have;
    size_t buf_cap;
};

int rstmdb_line_decoder_new(rstmdb_line_decoder **out, size_t max_line)
{
    rstmdb_line_decoder *d;

    if (out == NULL)
        return RSTMDB_ERR_INVALID;
    d = calloc(1, sizeof *d);
    if (d == NULL)
        return RSTMDB_ERR_NOMEM;
    /* Clamped like the frame cap: a server line is one frame's payload. */
    if (max_line == 0 || max_line > RSTMDB_FRAME_MAX_PAYLOAD)
        max_line = RSTMDB_FRAME_MAX_PAYLOAD;
    d->max_line = max_line;
    *out = d;
    return RSTMDB_OK;
}

void rstmdb_line_decoder_free(rstmdb_line_decoder *d)
{
    if (d == NULL)
        return;
    free(d->buf);
    free(d);
}

static int line_poison(rstmdb_line_decoder *d, int code)
{
    d->error = code;
    free(d->buf);
    d->buf = NULL;
    d->buf_cap = 0;
    d->buf_have = 0;
    return code;
}

/* A complete line (terminator already removed) at p: strip one '\r', apply
 * the cap and the empty-line rule, hand it out. */
static int line_finish(rstmdb_line_decoder *d, const uint8_t *p, size_t n, rstmdb_frame *frame)
{
    if (n > 0 && p[n - 1] == '\r')
        n--;
    if (n > d->max_line)
        return line_poison(d, RSTMDB_ERR_LINE_TOO_LONG);
    if (n == 0)
        return line_poison(d, RSTMDB_ERR_LINE_EMPTY);
    frame->flags = 0;
    frame->payload = p;
    frame->payload_len = n;
    return 1;
}

/* Room for `extra` more bytes of a partial line; the caller has checked that
 * buf_have + extra stays within max_line + 1 (the +1 is a possible '\r'). */
static int line_reserve(rstmdb_line_decoder *d, size_t extra)
{
    size_t want = d->buf_have + extra;
    size_t limit = d->max_line + 1;
    size_t cap = d->buf_cap ? d->buf_cap : LINE_INITIAL_BUFFER;
    uint8_t *nb;

    if (want <= d->buf_cap)
        return RSTMDB_OK;
    while (cap < want)
        cap = cap > limit / 2 ? limit : cap * 2;
    if (cap > limit)
        cap = limit;
    nb = realloc(d->buf, cap);
    if (nb == NULL)
        return RSTMDB_ERR_NOMEM;
    d->buf = nb;
    d->buf_cap = cap;
    return RSTMDB_OK;
}

int rstmdb_line_decoder_feed(rstmdb_line_decoder *d, const uint8_t *in, size_t len,
                             size_t *consumed, rstmdb_frame *frame)
{
    const uint8_t *nl;
    size_t take;
    int rc;

    if (d == NULL || consumed == NULL || frame == NULL || (in == NULL && len > 0))
        return RSTMDB_ERR_INVALID;
    *consumed = 0;
    if (d->error != 0)
        return d->error;

    /* buf_have == 0 here means no partial line: the last one was handed out. */
    if (d->buf_have == 0 && d->buf_cap > LINE_KEEP_BUFFER) {
        free(d->buf);
        d->buf = NULL;
        d->buf_cap = 0;
    }

    nl = len > 0 ? memchr(in, '\n', len) : NULL;
    if (nl != NULL && d->buf_have == 0) {
        /* Zero copy: the whole line is in the caller's input. */
        *consumed = (size_t)(nl - in) + 1;
        return line_finish(d, in, (size_t)(nl - in), frame);
    }

    take = nl != NULL ? (size_t)(nl - in) : len;
    /* Anything beyond max_line + 1 bytes cannot be a capped line plus '\r';
     * fail now rather than wait for a newline that may never come. */
    if (take > d->max_line + 1 - d->buf_have) {
        *consumed = len;
        return line_poison(d, RSTMDB_ERR_LINE_TOO_LONG);
    }
    if (take > 0) {
        rc = line_reserve(d, take);
        if (rc < 0)
            return rc;
        memcpy(d->buf + d->buf_have, in, take);
        d->buf_have += take;
    }
    if (nl == NULL) {
        *consumed = len;
        /* max_line + 1 bytes are only acceptable if the last one is the '\r'
         * of a "\r\n" still to come. */
        if (d->buf_have == d->max_line + 1 && d->buf[d->buf_have - 1] != '\r')
            return line_poison(d, RSTMDB_ERR_LINE_TOO_LONG);
        return 0;
    }
    *consumed = take + 1;
    take = d->buf_have;
    d->buf_have = 0; /* the line stays in buf until the next feed */
    return line_finish(d, d->buf, take, frame);
}
