/* relay_main.c: the rstmdb-relay program (tests only, never installed):
 * flags, the "listening on" / "control on" lines spawn.h reads, and a clean
 * stop on SIGTERM/SIGINT. The relaying itself is relay.c's. */
#include "relay.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rstmdb-relay --upstream HOST:PORT [--listen HOST:PORT] [--control HOST:PORT]\n"
            "                    [--buffer-bytes N]\n"
            "A TCP relay for fault tests. Prints 'listening on HOST:PORT' (and 'control on\n"
            "HOST:PORT') on stdout. Control commands, one per line, answered 'ok ...'/'err ...':\n"
            "  cut | refuse on|off | stall on|off | slow BYTES_PER_SEC | garble |\n"
            "  upstream HOST:PORT | stats | help\n"
            "  --listen        default 127.0.0.1:0 (a free port)\n"
            "  --buffer-bytes  bytes queued per direction before the reader pauses (256 KiB)\n");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopexit(arg, NULL);
}

int main(int argc, char **argv)
{
    relay_config cfg = {NULL, NULL, NULL, 0};
    struct event_base *base;
    struct event *sigterm, *sigint;
    relay *r = NULL;
    char err[256];
    int i;

    for (i = 1; i < argc; i += 2) { /* every flag but --help takes a value */
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (v == NULL) {
            fprintf(stderr, "rstmdb-relay: unknown flag or missing value: %s (see --help)\n", a);
            return 2;
        }
        if (strcmp(a, "--listen") == 0) {
            cfg.listen = v;
        } else if (strcmp(a, "--upstream") == 0) {
            cfg.upstream = v;
        } else if (strcmp(a, "--control") == 0) {
            cfg.control = v;
        } else if (strcmp(a, "--buffer-bytes") == 0) {
            char *end;
            unsigned long n = strtoul(v, &end, 10);
            if (*v < '0' || *v > '9' || *end != '\0' || n < 1024 || n > (1ul << 30)) {
                fprintf(stderr, "rstmdb-relay: --buffer-bytes wants 1024..2^30\n");
                return 2;
            }
            cfg.buffer_cap = n;
        } else {
            fprintf(stderr, "rstmdb-relay: unknown flag: %s (see --help)\n", a);
            return 2;
        }
    }
    if (cfg.upstream == NULL) {
        fprintf(stderr, "rstmdb-relay: --upstream HOST:PORT is required\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    if (base == NULL)
        return 1;
    if (relay_new(&r, base, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "rstmdb-relay: %s\n", err);
        event_base_free(base);
        return 1;
    }
    sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    sigint = evsignal_new(base, SIGINT, on_signal, base);
    if (sigterm == NULL || sigint == NULL || evsignal_add(sigterm, NULL) != 0 ||
        evsignal_add(sigint, NULL) != 0) {
        fprintf(stderr, "rstmdb-relay: cannot install signal handlers\n");
        return 1;
    }
    printf("listening on %s\n", relay_address(r));
    if (cfg.control != NULL)
        printf("control on %s\n", relay_control_address(r));
    fflush(stdout);
    event_base_dispatch(base);
    relay_free(r);
    event_free(sigterm);
    event_free(sigint);
    event_base_free(base);
    return 0;
}
