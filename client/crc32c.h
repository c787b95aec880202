/* crc32c.h (private): the CRC-32C back ends behind rstmdb_crc32c(), exposed so
 * tests can check the hardware path against the portable one and bench/ can
 * time both. Every function here uses the same convention as
 * rstmdb_crc32c_update(): pass 0 to start, pass a previous result to continue.
 */
#ifndef RSTMDB_CLIENT_CRC32C_H
#define RSTMDB_CLIENT_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Slicing-by-8 table implementation; works on every CPU. */
uint32_t crc32c_portable(uint32_t crc, const void *data, size_t len);

/* True when this CPU has CRC-32C instructions this build can use (SSE4.2 on
 * x86-64, the CRC extension on ARMv8). Decided once per process. */
bool crc32c_hw_available(void);

/* The instruction-based implementation. Only call it when
 * crc32c_hw_available() is true; otherwise it falls back to the portable
 * one (so a mistaken call is slow, never a SIGILL). */
uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len);

#endif
