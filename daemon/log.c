/* log.c: JSON-lines records on one FILE. Owns formatting only: it must not
 * decide what is secret (callers never hand it tokens) nor buffer across
 * calls (one write per line: nothing is lost on SIGTERM or a crash). */
#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(plog *l, log_level level, FILE *out)
{
    l->level = level;
    l->out = out;
    l->tc.sec = -1;
    l->tc.text[0] = '\0';
    l->tcache = &l->tc;
    l->hold = NULL;
}

void log_flush(const plog *l)
{
    if (l == NULL || l->hold == NULL || l->hold->len == 0)
        return;
    fwrite(l->hold->buf, 1, l->hold->len, l->out);
    fflush(l->out);
    l->hold->len = 0;
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
    /* The common case, nothing to escape, is one copy. */
    const unsigned char *p = (const unsigned char *)s;
    while (*p >= 0x20 && *p != '"' && *p != '\\' && *p != 0x7f)
        p++;
    if (*p == '\0') {
        size_t len = (size_t)(p - (const unsigned char *)s);
        if (len < cap) {
            memcpy(buf, s, len + 1);
            return len;
        }
    }
    for (p = (const unsigned char *)s; *p; p++) {
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

/* Append helpers for one line in a stack buffer (no printf, no malloc). */
static size_t put(char *b, size_t n, size_t cap, const char *s, size_t len)
{
    if (n + len > cap - 2) /* always leave room for the closing "}\n" */
        len = n < cap - 2 ? cap - 2 - n : 0;
    memcpy(b + n, s, len);
    return n + len;
}

static void log_line(const plog *l, log_level lv, const char *req, const char *msg, int hold)
{
    if (l == NULL || lv < l->level || l->out == NULL)
        return;
    char line[2400], esc[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    log_tcache local, *tc = l->tcache ? l->tcache : &local;
    if (tc == &local || tc->sec != (long long)ts.tv_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(tc->text, sizeof tc->text, "%Y-%m-%dT%H:%M:%S", &tm);
        tc->sec = (long long)ts.tv_sec;
    }
    long ms = ts.tv_nsec / 1000000L;
    char frac[6] = {
        '.', (char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10), 'Z', '"'};
    const char *lname = log_level_name(lv);
    size_t n = 0, cap = sizeof line;
    n = put(line, n, cap, "{\"ts\":\"", 7);
    n = put(line, n, cap, tc->text, strlen(tc->text));
    n = put(line, n, cap, frac, sizeof frac);
    n = put(line, n, cap, ",\"level\":\"", 10);
    n = put(line, n, cap, lname, strlen(lname));
    n = put(line, n, cap, "\",\"msg\":\"", 9);
    size_t el = log_json_escape(esc, sizeof esc, msg);
    n = put(line, n, cap, esc, el);
    n = put(line, n, cap, "\"", 1);
    if (req != NULL) {
        char r[96];
        size_t rl = log_json_escape(r, sizeof r, req);
        n = put(line, n, cap, ",\"req\":\"", 8);
        n = put(line, n, cap, r, rl);
        n = put(line, n, cap, "\"", 1);
    }
    line[n++] = '}'; /* put() always leaves room for these two */
    line[n++] = '\n';
    /* Whole lines only, in order: a held access line waits with the others
     * (log.h); any other record first writes out what is held. */
    log_hold *h = l->hold;
    if (hold && h != NULL) {
        if (n > sizeof h->buf - h->len)
            log_flush(l);
        if (n <= sizeof h->buf - h->len) {
            memcpy(h->buf + h->len, line, n);
            h->len += n;
            return;
        }
    }
    log_flush(l);
    fwrite(line, 1, n, l->out);
    fflush(l->out);
}

void log_text(const plog *l, log_level lv, const char *req, const char *msg)
{
    log_line(l, lv, req, msg, 0);
}

void log_msg(const plog *l, log_level lv, const char *req, const char *fmt, ...)
{
    if (l == NULL || lv < l->level || l->out == NULL)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_text(l, lv, req, msg);
}

/* Append for the access line: text, or a decimal number; b stays
 * NUL-terminated (cap > 0). */
static size_t acc_put(char *b, size_t n, size_t cap, const char *s)
{
    size_t len = strlen(s);
    if (n + len >= cap)
        len = n < cap - 1 ? cap - 1 - n : 0;
    memcpy(b + n, s, len);
    b[n + len] = '\0';
    return n + len;
}

static size_t acc_num(char *b, size_t n, size_t cap, unsigned long long v)
{
    char d[24];
    size_t k = sizeof d;
    d[--k] = '\0';
    do {
        d[--k] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    return acc_put(b, n, cap, d + k);
}

void log_access(const plog *l, uint64_t id, const char *method, const char *path, const char *route,
                int status, long long us)
{
    if (l == NULL || l->level > LOG_INFO)
        return; /* no formatting at all when access lines are off */
    /* Built by hand: vfprintf with %f was most of the line's cost (bench/RESULTS.md). */
    char rid[24], msg[400];
    size_t n = 0, cap = sizeof msg;
    acc_num(rid, 0, sizeof rid, (unsigned long long)id);
    n = acc_put(msg, n, cap, "request id=");
    n = acc_put(msg, n, cap, rid);
    n = acc_put(msg, n, cap, " method=");
    n = acc_put(msg, n, cap, method);
    n = acc_put(msg, n, cap, " path=");
    n = acc_put(msg, n, cap, path);
    n = acc_put(msg, n, cap, " route=");
    n = acc_put(msg, n, cap, route);
    n = acc_put(msg, n, cap, " status=");
    n = acc_num(msg, n, cap, (unsigned long long)(status > 0 ? status : 0));
    n = acc_put(msg, n, cap, " us=");
    acc_num(msg, n, cap, (unsigned long long)(us > 0 ? us : 0));
    log_line(l, LOG_INFO, rid, msg, 1);
}
