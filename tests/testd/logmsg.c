/* logmsg.c: formats one log line and writes it to stderr with a single
 * write(2), so lines from a test server never interleave mid-line with the
 * test's own output. Keeps no state; must not allocate. */
#include "logmsg.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void logmsg(logmsg_level level, const char *fmt, ...)
{
    static const char *const names[] = {"INFO", "WARN", "ERROR"};
    char line[1024];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int k;
    va_list ap;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    k = snprintf(line + n, sizeof line - n, ".%03ldZ testd %s ", ts.tv_nsec / 1000000L,
                 names[(unsigned)level < 3 ? (unsigned)level : 2u]);
    if (k > 0)
        n += (size_t)k;
    va_start(ap, fmt);
    k = vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    /* A truncated line still ends with its newline. */
    if (k < 0)
        k = 0;
    n = n + (size_t)k < sizeof line - 1 ? n + (size_t)k : sizeof line - 2;
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, n) < 0) {
        /* Nothing sensible to do when stderr is gone. */
    }
}
