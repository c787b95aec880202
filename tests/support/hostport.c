/* hostport.c: parses the "HOST:PORT" / "[V6]:PORT" addresses servers print
 * and tests pass around (see hostport.h). Parsing only: no sockets, no DNS. */
#include "hostport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int hostport_split(const char *addr, char *host, size_t hcap, int *port)
{
    const char *colon;
    const char *h = addr;
    size_t hlen;
    char *end;
    long v;

    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        h = addr + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL)
            return -1;
        hlen = (size_t)(colon - addr);
    }
    v = strtol(colon + 1, &end, 10);
    if (hlen == 0 || hlen >= hcap || *end != '\0' || v <= 0 || v > 65535)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)v;
    return 0;
}

int hostport_sockaddr(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[64];
    int port;
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof *ss);
    if (hostport_split(addr, host, sizeof host, &port) != 0)
        return -1;
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
    return -1;
}
