/* listener.h: pre-bound listening sockets handed to libmicrohttpd.
 * Binding ourselves gives port 0 (a free port, reported back), IPv6 literals
 * and unix sockets the same way for every MHD daemon. */
#ifndef PROXY_LISTENER_H
#define PROXY_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

/* Bind + listen on "host:port" (host an IPv4/IPv6 literal or a name).
 * On success: the fd, and the bound address in `bound` ("127.0.0.1:41234",
 * "[::1]:41234"); *loopback says whether it is a loopback address. -1 and
 * `why` on failure. */
int listener_tcp(const char *addr, char *bound, size_t bound_cap, bool *loopback, char *why,
                 size_t why_cap);
/* Bind + listen on a unix socket path (a stale socket file is replaced;
 * anything else at that path is an error). Mode 0660. */
int listener_unix(const char *path, char *why, size_t why_cap);

#endif
