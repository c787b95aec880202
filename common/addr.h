/* addr.h: "HOST:PORT", "[V6]:PORT" and "unix:PATH" addresses: the one parser
 * of the client, the daemon and rstmdb-testd, and the printer of bound
 * socket addresses in the same spelling. No sockets are opened and nothing
 * is resolved here (names are the resolver's job, in the client). */
#ifndef RSTMDB_COMMON_ADDR_H
#define RSTMDB_COMMON_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* Split "HOST:PORT" or "[V6]:PORT" into host (without brackets) and a port
 * 0-65535 written in decimal digits only. An unbracketed host may not hold
 * a ':' ("::1:80" is ambiguous). Returns 0, or -1 (malformed, or the host
 * does not fit host_cap). */
int addr_split(const char *text, char *host, size_t host_cap, unsigned *port);

/* Fill `ss`/`len` from `text`: numeric hosts, "localhost" (as 127.0.0.1)
 * and "unix:PATH". Returns 0, or -1 with a message in `err`. */
int addr_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len, char *err,
               size_t errcap);

/* "127.0.0.1:7401", "[::1]:7401" or "unix:/path"; always NUL-terminated. */
void addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap);

#endif
