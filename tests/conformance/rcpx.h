/* rcpx.h: a tiny blocking RCPX client for the conformance suite.
 *
 * It speaks the wire format directly (raw bytes in, whole frames or JSON lines
 * out) and is deliberately independent of librstmdb's async client: the suite
 * must be able to judge any server, and our own client, without trusting it.
 * Every frame the server sends is checked strictly (magic, version 1, flags
 * exactly CRC_PRESENT, header_len 0, CRC32C) before it is handed to a test.
 */
#ifndef CONFORMANCE_RCPX_H
#define CONFORMANCE_RCPX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rcpx rcpx;

/* Outcome of a read. */
typedef enum rcpx_rc {
    RCPX_OK = 0,       /* a whole message was read */
    RCPX_EOF = 1,      /* the peer closed (FIN or RST) at a message boundary */
    RCPX_TIMEOUT = 2,  /* nothing complete arrived within the timeout */
    RCPX_BADFRAME = 3, /* the server sent bytes that break the wire format (see rcpx_errstr) */
    RCPX_IOERR = 4     /* a local socket error, or EOF in the middle of a message */
} rcpx_rc;

/* One message from the server. `text` is the JSON payload, NUL-terminated
 * (owned; release with rcpx_msg_clear). For binary frames `header` holds the
 * 18 header bytes as received; for JSON lines `is_line` is set and `header`
 * is zero. */
typedef struct rcpx_msg {
    char *text;
    size_t len;
    uint8_t header[18];
    uint16_t flags;
    bool is_line;
} rcpx_msg;

/* Connect over TCP to "HOST:PORT" (numeric or resolvable host). Returns 0, or
 * -1 with nothing allocated. TCP_NODELAY is set so split writes stay split. */
int rcpx_connect(rcpx **out, const char *addr, int timeout_ms);
void rcpx_free(rcpx *c);

/* Write every byte (blocking). Returns 0, or -1 if the peer is gone. */
int rcpx_send_raw(rcpx *c, const void *buf, size_t len);
/* Send `json` as one well-formed frame with CRC_PRESENT. */
int rcpx_send_json(rcpx *c, const char *json);

/* Build a frame into `out` (capacity `cap`): a header with the given fields
 * (crc is computed over the payload when `crc_auto`, else `crc` is written
 * as-is), `hlen` extension bytes of 0xEE, then the payload. Returns the frame
 * length, or 0 if it does not fit. Lets tests forge broken headers. */
size_t rcpx_frame_build(uint8_t *out, size_t cap, const char magic[4], uint16_t version,
                        uint16_t flags, uint16_t hlen, const void *payload, uint32_t plen,
                        bool crc_auto, uint32_t crc);

/* Expect output as JSON lines (after a HELLO that negotiated "jsonl") or as
 * binary frames (the default). Inbound is always binary (PROTOCOL.md §1.6). */
void rcpx_set_jsonl(rcpx *c, bool on);

/* Read the next message within timeout_ms. On RCPX_OK fills *m. */
rcpx_rc rcpx_read(rcpx *c, int timeout_ms, rcpx_msg *m);
void rcpx_msg_clear(rcpx_msg *m);

/* Wait for the server to close. Returns true if it closed within timeout_ms
 * having sent no byte at all since the last complete message was read;
 * *extra (optional) gets the number of bytes that did arrive. */
bool rcpx_silent_close(rcpx *c, int timeout_ms, size_t *extra);

/* Half-close our side (shutdown SHUT_WR). */
void rcpx_shutdown_write(rcpx *c);

/* Text of the last framing or I/O error; never NULL. */
const char *rcpx_errstr(const rcpx *c);

#endif
