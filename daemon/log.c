/* log.c: JSON-lines records on one FILE. Owns formatting only: it must not
 * decide what is secret (callers never hand it tokens) nor buffer across calls. */
#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(plog *l, log_level level, FILE *out)
{
    l->level = level;
    l->out = out;
}

int log_level_parse(const char *s, log_level *out)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (log_level)i;
            return 0;
        }
    }
    return -1;
}

const char *log_level_name(log_level lv)
{
    return (unsigned)lv < 4 ? level_names[lv] : "info";
}

size_t log_json_escape(char *buf, size_t cap, const char *s)
{
    size_t n = 0;
    if (cap == 0)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char tmp[8];
        size_t k;
        if (*p == '"' || *p == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)*p;
            k = 2;
        } else if (*p == '\n') {
            memcpy(tmp, "\\n", 2);
            k = 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            k = (size_t)snprintf(tmp, sizeof tmp, "\\u%04x", *p);
        } else {
            tmp[0] = (char)*p;
            k = 1;
        }
        if (n + k >= cap)
            break;
        memcpy(buf + n, tmp, k);
        n += k;
    }
    buf[n] = '\0';
    return n;
}

void log_msg(const plog *l, log_level lv, const char *req, const char *fmt, ...)
{
    if (l == NULL || lv < l->level || l->out == NULL)
        return;
    char msg[1024], esc[2048], rq[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_json_escape(esc, sizeof esc, msg);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char tbuf[40];
    strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%S", &tm);

    rq[0] = '\0';
    if (req != NULL) {
        char r[96];
        log_json_escape(r, sizeof r, req);
        snprintf(rq, sizeof rq, ",\"req\":\"%s\"", r);
    }
    /* One fprintf per record so that lines from a single process never interleave. */
    fprintf(l->out, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":\"%s\"%s}\n", tbuf,
            ts.tv_nsec / 1000000L, log_level_name(lv), esc, rq);
    fflush(l->out);
}
