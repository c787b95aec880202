/* fault.c: the fault knobs' state changes and the control-command parser.
 * It never touches sockets or the event loop; server.c applies the knobs. */
#include "fault.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parse a decimal u32; the whole string must be digits. */
static bool parse_u32(const char *s, uint32_t *out)
{
    char *end;
    unsigned long v;

    if (s == NULL || !isdigit((unsigned char)*s))
        return false;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool parse_onoff(const char *s, bool *out)
{
    if (s != NULL && strcmp(s, "on") == 0) {
        *out = true;
        return true;
    }
    if (s != NULL && strcmp(s, "off") == 0) {
        *out = false;
        return true;
    }
    return false;
}

void fault_describe(const fault *f, char *buf, size_t cap)
{
    snprintf(buf, cap, "delay=%u close-after=%u garble-every=%u garble-once=%s hang=%s refuse=%s",
             (unsigned)f->delay_ms, (unsigned)f->close_after, (unsigned)f->garble_every,
             f->garble_once ? "on" : "off", f->hang ? "on" : "off", f->refuse ? "on" : "off");
}

fault_cmd fault_command(fault *f, const char *line, char *reply, size_t cap)
{
    char buf[256];
    char *argv[3] = {NULL, NULL, NULL};
    char *save = NULL;
    char *tok;
    int argc = 0;
    uint32_t n;
    bool on;

    if (strlen(line) >= sizeof buf) {
        snprintf(reply, cap, "err line too long");
        return FAULT_CMD_ERR;
    }
    strcpy(buf, line);
    for (tok = strtok_r(buf, " \t\r", &save); tok != NULL; tok = strtok_r(NULL, " \t\r", &save)) {
        if (argc == 3) {
            snprintf(reply, cap, "err too many arguments");
            return FAULT_CMD_ERR;
        }
        argv[argc++] = tok;
    }
    if (argc == 0) {
        snprintf(reply, cap, "err empty command");
        return FAULT_CMD_ERR;
    }

#define WANT_ARGS(k)                                                                               \
    do {                                                                                           \
        if (argc != (k) + 1) {                                                                     \
            snprintf(reply, cap, "err %s takes %d argument%s", argv[0], (k), (k) == 1 ? "" : "s"); \
            return FAULT_CMD_ERR;                                                                  \
        }                                                                                          \
    } while (0)

    if (strcmp(argv[0], "delay") == 0) {
        WANT_ARGS(1);
        if (!parse_u32(argv[1], &n)) {
            snprintf(reply, cap, "err delay: expected milliseconds, got '%s'", argv[1]);
            return FAULT_CMD_ERR;
        }
        f->delay_ms = n;
        snprintf(reply, cap, "ok delay=%u", (unsigned)n);
    } else if (strcmp(argv[0], "close-after") == 0) {
        WANT_ARGS(1);
        if (!parse_u32(argv[1], &n)) {
            snprintf(reply, cap, "err close-after: expected a count, got '%s'", argv[1]);
            return FAULT_CMD_ERR;
        }
        f->close_after = n;
        snprintf(reply, cap, "ok close-after=%u", (unsigned)n);
    } else if (strcmp(argv[0], "garble") == 0) {
        WANT_ARGS(0);
        f->garble_once = true;
        snprintf(reply, cap, "ok garble=next");
    } else if (strcmp(argv[0], "garble-every") == 0) {
        WANT_ARGS(1);
        if (!parse_u32(argv[1], &n)) {
            snprintf(reply, cap, "err garble-every: expected a count, got '%s'", argv[1]);
            return FAULT_CMD_ERR;
        }
        f->garble_every = n;
        f->responses = 0;
        snprintf(reply, cap, "ok garble-every=%u", (unsigned)n);
    } else if (strcmp(argv[0], "hang") == 0 || strcmp(argv[0], "refuse") == 0) {
        WANT_ARGS(1);
        if (!parse_onoff(argv[1], &on)) {
            snprintf(reply, cap, "err %s: expected on or off, got '%s'", argv[0], argv[1]);
            return FAULT_CMD_ERR;
        }
        if (argv[0][0] == 'h')
            f->hang = on;
        else
            f->refuse = on;
        snprintf(reply, cap, "ok %s=%s", argv[0], on ? "on" : "off");
    } else if (strcmp(argv[0], "reset") == 0) {
        WANT_ARGS(0);
        memset(f, 0, sizeof *f);
        snprintf(reply, cap, "ok reset");
    } else if (strcmp(argv[0], "show") == 0) {
        char desc[200];
        WANT_ARGS(0);
        fault_describe(f, desc, sizeof desc);
        snprintf(reply, cap, "ok %s", desc);
    } else if (strcmp(argv[0], "drop-all") == 0) {
        WANT_ARGS(0);
        return FAULT_CMD_DROP_ALL;
    } else if (strcmp(argv[0], "stats") == 0) {
        WANT_ARGS(0);
        return FAULT_CMD_STATS;
    } else if (strcmp(argv[0], "help") == 0) {
        snprintf(reply, cap,
                 "ok commands: delay MS | close-after N | garble | garble-every N | hang on|off | "
                 "refuse on|off | reset | show | drop-all | stats");
    } else {
        snprintf(reply, cap, "err unknown command '%s' (try help)", argv[0]);
        return FAULT_CMD_ERR;
    }
#undef WANT_ARGS
    return FAULT_CMD_DONE;
}

bool fault_take_garble(fault *f)
{
    f->responses++;
    if (f->garble_once) {
        f->garble_once = false;
        return true;
    }
    return f->garble_every != 0 && f->responses % f->garble_every == 0;
}
