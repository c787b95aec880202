/* logmsg.h: rstmdb-testd's log lines on stderr, one line per event.
 * Owns only the line format (UTC time, level, text); it never exits or
 * decides policy: callers choose what is worth a line. */
#ifndef TESTD_LOGMSG_H
#define TESTD_LOGMSG_H

typedef enum logmsg_level {
    LOGMSG_INFO = 0, /* connection open/close, listener up, faults armed */
    LOGMSG_WARN = 1, /* slow consumer dropping events, fault triggered */
    LOGMSG_ERROR = 2 /* accept/TLS/allocation failures */
} logmsg_level;

/* Write "2026-11-25T01:02:03.456Z testd WARN <text>\n" to stderr in one write. */
void logmsg(logmsg_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
