/* listener.c: socket(), bind(), listen() for the HTTP front. It must not
 * accept or read: MHD owns the sockets once they are handed over. */
#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"

#include "addr.h"

#define BACKLOG 1024

int listener_tcp(const char *addr, char *bound, size_t bound_cap, bool *loopback, char *why,
                 size_t why_cap)
{
    char host[256];
    unsigned port;
    if (addr_split(addr, host, sizeof host, &port) != 0) {
        snprintf(why, why_cap, "listen: expected HOST:PORT, got \"%s\"", addr);
        return -1;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[8];
    snprintf(ps, sizeof ps, "%u", port);
    int gai = getaddrinfo(host, ps, &hints, &res);
    if (gai != 0) {
        snprintf(why, why_cap, "listen: %s: %s", host, gai_strerror(gai));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(why, why_cap, "listen: socket: %s", strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (res->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, BACKLOG) != 0) {
        snprintf(why, why_cap, "listen: %s: %s", addr, strerror(errno));
        close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    char ip[INET6_ADDRSTRLEN] = "?";
    *loopback = false;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip);
        snprintf(bound, bound_cap, "%s:%u", ip, ntohs(sin->sin_port));
        *loopback = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof ip);
        snprintf(bound, bound_cap, "[%s]:%u", ip, ntohs(sin6->sin6_port));
        *loopback = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
    }
    return fd;
}

int listener_unix(const char *path, char *why, size_t why_cap)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sun.sun_path) {
        snprintf(why, why_cap, "listen_unix: path too long");
        return -1;
    }
    strcpy(sun.sun_path, path);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(why, why_cap, "listen_unix: %s exists and is not a socket", path);
            return -1;
        }
        unlink(path); /* stale socket of a previous run */
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(why, why_cap, "listen_unix: socket: %s", strerror(errno));
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0 || listen(fd, BACKLOG) != 0) {
        snprintf(why, why_cap, "listen_unix: %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    chmod(path, 0660);
    return fd;
}
