/* hostport.h: "HOST:PORT" / "[V6]:PORT" text to host and port or to a
 * sockaddr, for the test support code. Numeric hosts only: no DNS lookups. */
#ifndef TESTS_HOSTPORT_H
#define TESTS_HOSTPORT_H

#include <stddef.h>
#include <sys/socket.h>

/* Split `addr` into host (brackets removed, NUL-terminated in host[hcap]) and
 * port (1..65535). Returns 0, or -1 for an empty host, a host that does not
 * fit, a missing colon or a port that is not a whole number in range. */
int hostport_split(const char *addr, char *host, size_t hcap, int *port);

/* `addr` as an IPv4 or IPv6 socket address (*ss zeroed first, *len set).
 * Returns 0, or -1 when it does not split or the host is not numeric. */
int hostport_sockaddr(const char *addr, struct sockaddr_storage *ss, socklen_t *len);

#endif
