/* frame.c: the RCPX frame encoder and incremental decoder (sans I/O).
 * Owns header validation, extension skipping, the payload cap and the CRC
 * check; it never touches a socket and never parses the JSON inside.
 */
#include <stdlib.h>
#include <string.h>

#include "rstmdb/error.h"
#include "rstmdb/frame.h"

/* A payload buffer up to this size survives between frames; a larger one (a
 * 16 MiB WAL_READ answer, say) is freed at the next feed so that one big
 * response does not pin 16 MiB per connection for the rest of its life. */
#define FRAME_KEEP_BUFFER (64u * 1024u)
/* First allocation for a payload that arrives in pieces. */
#define FRAME_MIN_BUFFER 4096u

typedef enum frame_state {
    FRAME_HEADER = 0, /* collecting the 18 fixed header bytes */
    FRAME_EXTENSION,  /* discarding header_len extension bytes */
    FRAME_PAYLOAD,    /* collecting payload_len payload bytes into buf */
    FRAME_POISONED    /* a malformed frame was seen; the stream has lost sync */
} frame_state;

struct rstmdb_frame_decoder {
    size_t max_payload;
    frame_state state;
    int error; /* the RSTMDB_ERR_FRAME_* code, when POISONED */
    uint8_t header[RSTMDB_FRAME_HEADER_LEN];
    size_t header_have;
    uint16_t flags;
    size_t extension_left;
    size_t payload_len;
    uint32_t crc;
    uint8_t *buf; /* a payload arriving in pieces; buf_cap <= max_payload */
    size_t buf_have;
    size_t buf_cap;
};

static const uint8_t frame_empty_payload[1] = {0};

static uint16_t frame_get16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t frame_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void frame_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void frame_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int rstmdb_frame_header(uint8_t out[RSTMDB_FRAME_HEADER_LEN], uint16_t flags, const void *payload,
                        size_t payload_len)
{
    if (out == NULL || (payload == NULL && payload_len > 0))
        return RSTMDB_ERR_INVALID;
    if ((flags & RSTMDB_FLAG_RESERVED_MASK) != 0)
        return RSTMDB_ERR_FRAME_FLAGS;
    if (payload_len > RSTMDB_FRAME_MAX_PAYLOAD)
        return RSTMDB_ERR_FRAME_TOO_LARGE;

    memcpy(out, "RCPX", 4);
    frame_put16(out + 4, RSTMDB_FRAME_VERSION);
    frame_put16(out + 6, flags);
    frame_put16(out + 8, 0);
    frame_put32(out + 10, (uint32_t)payload_len);
    frame_put32(out + 14,
                (flags & RSTMDB_FLAG_CRC_PRESENT) ? rstmdb_crc32c(payload, payload_len) : 0);
    return RSTMDB_OK;
}

int rstmdb_frame_decoder_new(rstmdb_frame_decoder **out, size_t max_payload)
{
    rstmdb_frame_decoder *d;

    if (out == NULL)
        return RSTMDB_ERR_INVALID;
    d = calloc(1, sizeof *d);
    if (d == NULL)
        return RSTMDB_ERR_NOMEM;
    if (max_payload == 0 || max_payload > RSTMDB_FRAME_MAX_PAYLOAD)
        max_payload = RSTMDB_FRAME_MAX_PAYLOAD;
    d->max_payload = max_payload;
    d->state = FRAME_HEADER;
    *out = d;
    return RSTMDB_OK;
}

void rstmdb_frame_decoder_free(rstmdb_frame_decoder *d)
{
    if (d == NULL)
        return;
    free(d->buf);
    free(d);
}

static int frame_poison(rstmdb_frame_decoder *d, int code)
{
    d->state = FRAME_POISONED;
    d->error = code;
    free(d->buf);
    d->buf = NULL;
    d->buf_cap = 0;
    d->buf_have = 0;
    return code;
}

/* Checks in the real server's order (magic, version, flags, payload_len), so
 * a header with several faults reports the same one the server would act on. */
static int frame_parse_header(rstmdb_frame_decoder *d, const uint8_t *h)
{
    uint32_t payload_len;

    if (memcmp(h, "RCPX", 4) != 0)
        return frame_poison(d, RSTMDB_ERR_FRAME_MAGIC);
    if (frame_get16(h + 4) != RSTMDB_FRAME_VERSION)
        return frame_poison(d, RSTMDB_ERR_FRAME_VERSION);
    d->flags = frame_get16(h + 6);
    if ((d->flags & RSTMDB_FLAG_RESERVED_MASK) != 0)
        return frame_poison(d, RSTMDB_ERR_FRAME_FLAGS);
    payload_len = frame_get32(h + 10);
    if (payload_len > d->max_payload)
        return frame_poison(d, RSTMDB_ERR_FRAME_TOO_LARGE);
    d->extension_left = frame_get16(h + 8);
    d->payload_len = payload_len;
    d->crc = frame_get32(h + 14);
    d->buf_have = 0;
    d->state = FRAME_EXTENSION;
    return RSTMDB_OK;
}

/* The payload is complete at `p`: check the CRC, hand it out, rearm. */
static int frame_finish(rstmdb_frame_decoder *d, const uint8_t *p, rstmdb_frame *frame)
{
    if ((d->flags & RSTMDB_FLAG_CRC_PRESENT) && rstmdb_crc32c(p, d->payload_len) != d->crc)
        return frame_poison(d, RSTMDB_ERR_FRAME_CRC);
    frame->flags = d->flags;
    frame->payload = p;
    frame->payload_len = d->payload_len;
    d->state = FRAME_HEADER;
    d->header_have = 0;
    return 1;
}

int rstmdb_frame_decoder_feed(rstmdb_frame_decoder *d, const uint8_t *in, size_t len,
                              size_t *consumed, rstmdb_frame *frame)
{
    size_t pos = 0;
    int rc;

    if (d == NULL || consumed == NULL || frame == NULL || (in == NULL && len > 0))
        return RSTMDB_ERR_INVALID;
    *consumed = 0;
    if (d->state == FRAME_POISONED)
        return d->error;

    /* The previous frame's payload may live in buf and is released now. */
    if (d->state == FRAME_HEADER && d->buf_cap > FRAME_KEEP_BUFFER) {
        free(d->buf);
        d->buf = NULL;
        d->buf_cap = 0;
    }

    for (;;) {
        size_t avail = len - pos;

        switch (d->state) {
        case FRAME_HEADER:
            if (d->header_have == 0 && avail >= RSTMDB_FRAME_HEADER_LEN) {
                rc = frame_parse_header(d, in + pos);
                pos += RSTMDB_FRAME_HEADER_LEN;
            } else {
                size_t n = RSTMDB_FRAME_HEADER_LEN - d->header_have;
                if (n > avail)
                    n = avail;
                if (n > 0)
                    memcpy(d->header + d->header_have, in + pos, n);
                d->header_have += n;
                pos += n;
                if (d->header_have < RSTMDB_FRAME_HEADER_LEN) {
                    *consumed = pos;
                    return 0;
                }
                rc = frame_parse_header(d, d->header);
            }
            if (rc < 0) {
                *consumed = pos;
                return rc;
            }
            break;

        case FRAME_EXTENSION: {
            size_t n = d->extension_left < avail ? d->extension_left : avail;
            d->extension_left -= n;
            pos += n;
            if (d->extension_left > 0) {
                *consumed = pos;
                return 0;
            }
            d->state = FRAME_PAYLOAD;
            break;
        }

        case FRAME_PAYLOAD: {
            size_t need = d->payload_len - d->buf_have;
            size_t n;

            if (d->payload_len == 0) {
                rc = frame_finish(d, frame_empty_payload, frame);
                *consumed = pos;
                return rc;
            }
            if (d->buf_have == 0 && avail >= d->payload_len) {
                /* Zero copy: the whole payload is in the caller's input. */
                const uint8_t *p = in + pos;
                pos += d->payload_len;
                *consumed = pos;
                return frame_finish(d, p, frame);
            }
            if (avail == 0) {
                *consumed = pos;
                return 0;
            }
            n = need < avail ? need : avail;
            if (d->buf_cap < d->buf_have + n) {
                /* Grows with the bytes that actually arrived (doubling, at
                 * most payload_len, itself at most max_payload): a header
                 * announcing 16 MiB followed by silence costs kilobytes. */
                size_t cap = d->buf_cap > FRAME_MIN_BUFFER / 2 ? d->buf_cap * 2 : FRAME_MIN_BUFFER;
                uint8_t *nb;
                if (cap < d->buf_have + n)
                    cap = d->buf_have + n;
                if (cap > d->payload_len)
                    cap = d->payload_len;
                nb = realloc(d->buf, cap);
                if (nb == NULL) {
                    *consumed = pos;
                    return RSTMDB_ERR_NOMEM;
                }
                d->buf = nb;
                d->buf_cap = cap;
            }
            memcpy(d->buf + d->buf_have, in + pos, n);
            d->buf_have += n;
            pos += n;
            *consumed = pos;
            if (d->buf_have < d->payload_len)
                return 0;
            return frame_finish(d, d->buf, frame);
        }

        case FRAME_POISONED:
        default:
            *consumed = pos;
            return d->error;
        }
    }
}
