/* addr.c: address parsing and printing (see addr.h). Resolves only numeric
 * hosts and "localhost"; must never block on the network. */
#include "addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

int addr_split(const char *text, char *host, size_t host_cap, unsigned *port)
{
    const char *hs = text, *colon;
    size_t hlen;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        hs = text + 1;
        hlen = (size_t)(close - hs);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL || memchr(text, ':', (size_t)(colon - text)) != NULL)
            return -1;
        hlen = (size_t)(colon - text);
    }
    const char *ps = colon + 1;
    size_t pl = strlen(ps);
    if (hlen == 0 || hlen >= host_cap || pl == 0 || pl > 5 || strspn(ps, "0123456789") != pl)
        return -1;
    unsigned long v = strtoul(ps, NULL, 10);
    if (v > 65535)
        return -1;
    memcpy(host, hs, hlen);
    host[hlen] = '\0';
    *port = (unsigned)v;
    return 0;
}

int addr_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len, char *err,
               size_t errcap)
{
    char host[256];
    unsigned port;

    memset(ss, 0, sizeof *ss);
    if (strncmp(text, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)ss;
        const char *path = text + 5;
        if (*path == '\0' || strlen(path) >= sizeof un->sun_path) {
            snprintf(err, errcap, "'%s': unix socket path empty or too long", text);
            return -1;
        }
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, path, strlen(path) + 1);
        *len = (socklen_t)sizeof *un;
        return 0;
    }
    if (addr_split(text, host, sizeof host, &port) != 0) {
        snprintf(err, errcap, "'%s': expected HOST:PORT or [IPV6]:PORT with a port 0-65535", text);
        return -1;
    }
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        *len = (socklen_t)sizeof *in4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *len = (socklen_t)sizeof *in6;
        return 0;
    }
    snprintf(err, errcap, "'%s': host must be an IPv4/IPv6 address or localhost", text);
    return -1;
}

void addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];

    (void)len;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &in4->sin_addr, ip, sizeof ip);
        snprintf(buf, cap, "%s:%u", ip, (unsigned)ntohs(in4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        snprintf(buf, cap, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
    } else if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)(const void *)sa;
        snprintf(buf, cap, "unix:%s", un->sun_path);
    } else {
        snprintf(buf, cap, "?");
    }
}
