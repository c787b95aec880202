/* rawnet.h: a minimal raw RCPX client for tests over plain TCP or TLS
 * (blocking sockets, poll-bounded reads), to speak to rstmdb-testd or any RCPX
 * server byte by byte. Test code only: no retries, no reconnection. */
#ifndef TESTS_RAWNET_H
#define TESTS_RAWNET_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rstmdb/frame.h>

typedef struct rawnet {
    int fd;
    SSL *ssl;   /* NULL for plain TCP */
    bool jsonl; /* decode the server's output as JSON lines */
    rstmdb_frame_decoder *dec;
    rstmdb_line_decoder *ldec;
    uint8_t buf[65536];
    size_t have, off;
} rawnet;

/* Connect to "HOST:PORT" / "[V6]:PORT". Returns 0 or -1. `rcvbuf` > 0 sets
 * SO_RCVBUF before connecting (a small window makes a slow consumer). */
int rawnet_connect(rawnet *t, const char *addr, int rcvbuf);
/* TLS on top of a connected rawnet, verifying the server against `ctx`'s CA
 * and IP 127.0.0.1. Returns 1 if SSL_connect succeeded, else 0 (still usable
 * for rawnet_close). */
int rawnet_tls(rawnet *t, SSL_CTX *ctx);
void rawnet_close(rawnet *t);

/* Encode a frame (header + payload) into `out` (cap >= 18 + len). */
size_t rawnet_frame(uint8_t *out, uint16_t flags, const char *json);
/* Send bytes / one request frame with CRC. Returns 0 or -1. */
int rawnet_send(rawnet *t, const void *data, size_t len);
int rawnet_req(rawnet *t, const char *json);
/* Read raw bytes until `len` arrived or EOF/timeout; returns the count. */
size_t rawnet_read_exact(rawnet *t, uint8_t *out, size_t len, int timeout_ms);

/* Next document (frame payload, or JSON line in jsonl mode) as a malloc'd
 * NUL-terminated string in *out. Returns 1, 0 on EOF (or TLS failure),
 * RAWNET_TIMEOUT, or a negative RSTMDB_ERR_* decode error. */
#define RAWNET_TIMEOUT (-1000)
int rawnet_recv(rawnet *t, char **out, int timeout_ms);

/* Send one control command to `ctl_addr`, reply (no newline) into `reply`. */
int rawnet_control(const char *ctl_addr, const char *cmd, char *reply, size_t cap);

#endif
