/* control.h: rstmdb-testd's control channel, used only by tests.
 *
 * A TCP or unix-socket listener taking one text command per line and
 * answering one line ("ok ..." or "err ..."); the commands themselves are
 * run by server_control(). It must never touch client connections directly.
 */
#ifndef TESTD_CONTROL_H
#define TESTD_CONTROL_H

#include <stddef.h>

struct event_base;
typedef struct server server;
typedef struct control control;

/* Listen on `addr` ("HOST:PORT", port 0 = free port, or "unix:PATH").
 * Returns 0, or SERVER_ERR_* (server.h) with a message in `err`. */
int control_new(control **out, struct event_base *base, server *srv, const char *addr, char *err,
                size_t errcap);
/* Closes the listener and every control connection; unlinks a unix socket. */
void control_free(control *c);
/* Bound address: "127.0.0.1:40124" or "unix:PATH". */
const char *control_address(const control *c);

#endif
