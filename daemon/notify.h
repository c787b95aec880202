/* notify.h: the sd_notify protocol (READY=1, RELOADING=1, STOPPING=1) as a
 * datagram to $NOTIFY_SOCKET, without libsystemd. No-op when unset. */
#ifndef PROXY_NOTIFY_H
#define PROXY_NOTIFY_H

/* `socket_path` is the value of NOTIFY_SOCKET (NULL = do nothing); '@' at the
 * start means the abstract namespace. 0 sent / not configured, -1 error. */
int notify_send(const char *socket_path, const char *state);

#endif
