/* netaddr.h: parse "HOST:PORT" / "[V6]:PORT" / "unix:PATH" listen addresses
 * and print bound socket addresses back in the same spelling. No sockets are
 * opened here. */
#ifndef TESTD_NETADDR_H
#define TESTD_NETADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* Fill `ss`/`len` from `text`. Numeric hosts, "localhost" and "unix:PATH".
 * Returns 0, or -1 with a message in `err`. */
int netaddr_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len, char *err,
                  size_t errcap);
/* "127.0.0.1:7401", "[::1]:7401" or "unix:/path"; always NUL-terminated. */
void netaddr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap);

#endif
