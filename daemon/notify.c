/* notify.c: one sendto() per state change. It must never block the loop:
 * the socket is a datagram socket and the send is non-blocking. */
#include "notify.h"

#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int notify_send(const char *socket_path, const char *state)
{
    if (socket_path == NULL || socket_path[0] == '\0')
        return 0;
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    size_t len = strlen(socket_path);
    if (len >= sizeof sun.sun_path || (socket_path[0] != '/' && socket_path[0] != '@'))
        return -1;
    memcpy(sun.sun_path, socket_path, len);
    if (socket_path[0] == '@')
        sun.sun_path[0] = '\0';
    socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, sl);
    close(fd);
    return n == (ssize_t)strlen(state) ? 0 : -1;
}
