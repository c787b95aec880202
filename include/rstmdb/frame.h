/* rstmdb/frame.h: the RCPX frame codec and the JSONL line codec, sans I/O.
 *
 * Nothing here touches a socket: the encoder writes into a caller buffer, the
 * decoders take whatever bytes arrived (any chunking, one byte at a time
 * included), say how many they consumed and hand back whole payloads.
 *
 * RCPX frame: 18-byte big-endian header, then header_len extension bytes
 * (skipped), then payload_len payload bytes (one JSON document).
 *   0 magic "RCPX" | 4 version u16 = 1 | 6 flags u16 | 8 header_len u16
 *   10 payload_len u32 | 14 crc32c u32 (of the payload only, when flag bit 0)
 */
#ifndef RSTMDB_FRAME_H
#define RSTMDB_FRAME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RSTMDB_FRAME_HEADER_LEN 18
#define RSTMDB_FRAME_VERSION 1
#define RSTMDB_FRAME_MAX_PAYLOAD (16u * 1024u * 1024u) /* 16 MiB, inclusive */

#define RSTMDB_FLAG_CRC_PRESENT 0x0001u
#define RSTMDB_FLAG_COMPRESSED 0x0002u
#define RSTMDB_FLAG_STREAM 0x0004u
#define RSTMDB_FLAG_END_STREAM 0x0008u
#define RSTMDB_FLAG_RESERVED_MASK 0xFFF0u

/* CRC-32C (Castagnoli, reflected, init/xorout 0xFFFFFFFF). Uses SSE4.2 or the
 * ARMv8 CRC instructions when the CPU has them (picked once at run time),
 * otherwise a portable table. crc32c("123456789") == 0xE3069283. */
uint32_t rstmdb_crc32c(const void *data, size_t len);
/* Continue a CRC: rstmdb_crc32c(ab) == rstmdb_crc32c_update(rstmdb_crc32c(a), b). */
uint32_t rstmdb_crc32c_update(uint32_t crc, const void *data, size_t len);

/* Write the 18-byte header for a payload into `out` (CRC computed when
 * `flags` has RSTMDB_FLAG_CRC_PRESENT). Returns RSTMDB_OK, or
 * RSTMDB_ERR_FRAME_TOO_LARGE / RSTMDB_ERR_FRAME_FLAGS. */
int rstmdb_frame_header(uint8_t out[RSTMDB_FRAME_HEADER_LEN], uint16_t flags,
                        const void *payload, size_t payload_len);

/* Incremental frame decoder. Embed it (init/deinit) or allocate it; it
 * buffers at most one partial payload, never more than max_payload bytes. */
typedef struct rstmdb_frame_decoder rstmdb_frame_decoder;

/* One decoded frame. `payload` points either into the caller's input (when
 * the whole frame was there: zero copy) or into decoder memory; it stays
 * valid until the next feed or free, and while the input is unchanged. */
typedef struct rstmdb_frame {
    uint16_t flags;
    const uint8_t *payload;
    size_t payload_len;
} rstmdb_frame;

/* max_payload: 0 means RSTMDB_FRAME_MAX_PAYLOAD; larger values are clamped to it.
 * Returns RSTMDB_OK or RSTMDB_ERR_NOMEM (*out untouched on failure). */
int rstmdb_frame_decoder_new(rstmdb_frame_decoder **out, size_t max_payload);
void rstmdb_frame_decoder_free(rstmdb_frame_decoder *d);

/* Feed bytes. Consumes input up to and including at most one complete frame
 * and sets *consumed. If a frame completed, fills *frame and returns 1; if more
 * input is needed, returns 0 (all input consumed); on a malformed frame
 * returns a negative RSTMDB_ERR_FRAME_* code, after which the decoder is
 * poisoned (every later call returns the same code) because the stream has
 * lost sync. Call again with the remaining input to get further frames.
 * Header faults are reported once the 18 header bytes are in, in the real
 * server's order: FRAME_MAGIC, FRAME_VERSION, FRAME_FLAGS, FRAME_TOO_LARGE;
 * FRAME_CRC once the whole payload is in. On those errors *consumed counts the
 * bytes up to the end of the offending header (or payload), on a poisoned
 * call 0. RSTMDB_ERR_INVALID (NULL arguments) and RSTMDB_ERR_NOMEM do not
 * poison: nothing more was consumed than *consumed says, and the call may be
 * repeated with the rest of the input. */
int rstmdb_frame_decoder_feed(rstmdb_frame_decoder *d, const uint8_t *in, size_t len,
                              size_t *consumed, rstmdb_frame *frame);

/* Incremental JSONL decoder (the server's output in "jsonl" wire mode): one
 * JSON document per '\n'-terminated line; a trailing '\r' is stripped. */
typedef struct rstmdb_line_decoder rstmdb_line_decoder;

/* max_line: cap on one line without its "\n" or "\r\n"; 0 means (and larger
 * values are clamped to) RSTMDB_FRAME_MAX_PAYLOAD. A line over the cap fails
 * as soon as the bytes seen without a newline can no longer be max_line bytes
 * plus a '\r', without waiting for the newline. */
int rstmdb_line_decoder_new(rstmdb_line_decoder **out, size_t max_line);
void rstmdb_line_decoder_free(rstmdb_line_decoder *d);
/* Same contract as rstmdb_frame_decoder_feed; errors: RSTMDB_ERR_LINE_TOO_LONG,
 * RSTMDB_ERR_LINE_EMPTY. `frame->flags` is 0. */
int rstmdb_line_decoder_feed(rstmdb_line_decoder *d, const uint8_t *in, size_t len,
                             size_t *consumed, rstmdb_frame *frame);

#ifdef __cplusplus
}
#endif
#endif
