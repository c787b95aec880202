/* log.h: JSON-lines logging to stderr for the proxy.
 * One line per record: {"ts","level","msg"[,"req"][,extra fields]}. Never
 * pass secrets (tokens, Authorization headers) to these functions. */
#ifndef PROXY_LOG_H
#define PROXY_LOG_H

#include <stdint.h>
#include <stdio.h>

typedef enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 } log_level;

/* The formatted second of the last record: strftime runs once per second,
 * not once per access-log line (a third of a ping's own instructions). */
typedef struct log_tcache {
    long long sec; /* CLOCK_REALTIME seconds of `text`; -1 = none */
    char text[24]; /* "YYYY-MM-DDTHH:MM:SS" */
} log_tcache;

typedef struct plog {
    log_level level;    /* records below it are dropped; changed by SIGHUP */
    FILE *out;          /* stderr in the daemon, a tmpfile in tests */
    log_tcache *tcache; /* = &tc after log_init (writable through a const plog) */
    log_tcache tc;
    /* NULL, or where access lines wait (whole lines only) until the next
     * other record, a full buffer, or log_flush: one write(2) for many
     * requests instead of one each. main sets it and flushes every
     * LOG_ACCESS_FLUSH_MS and at exit; tests leave it NULL. */
    struct log_hold *hold;
} plog;

typedef struct log_hold {
    size_t len;
    char buf[32768];
} log_hold;

/* How long an access line may wait in the buffer. */
#define LOG_ACCESS_FLUSH_MS 100

void log_init(plog *l, log_level level, FILE *out);
/* "debug", "info", "warn", "error" -> 0 and *out set; -1 otherwise. */
int log_level_parse(const char *s, log_level *out);
const char *log_level_name(log_level lv);

/* `req` may be NULL. `msg` is escaped as a JSON string. */
void log_msg(const plog *l, log_level lv, const char *req, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Same with a ready message (the access log builds its own, printf-free). */
void log_text(const plog *l, log_level lv, const char *req, const char *msg);
/* Write out held access lines (from a timer, and before exit). */
void log_flush(const plog *l);

/* The access line of one request (info level): id, method, path, route,
 * status and microseconds, formatted without printf. */
void log_access(const plog *l, uint64_t id, const char *method, const char *path, const char *route,
                int status, long long us);

#define log_debug(l, ...) log_msg((l), LOG_DEBUG, NULL, __VA_ARGS__)
#define log_info(l, ...)  log_msg((l), LOG_INFO, NULL, __VA_ARGS__)
#define log_warn(l, ...)  log_msg((l), LOG_WARN, NULL, __VA_ARGS__)
#define log_error(l, ...) log_msg((l), LOG_ERROR, NULL, __VA_ARGS__)

/* Append `s` to `buf` as JSON string content (no quotes); returns bytes
 * written, truncating at `cap` - 1 without splitting an escape. */
size_t log_json_escape(char *buf, size_t cap, const char *s);

#endif
