/* pagerec.h: what the browser test's page recorded, read back from the page
 * server: parsing the records, counting them, waiting for them, and printing
 * them (with the browser's log) when a test fails. */
#ifndef BROWSER_PAGEREC_H
#define BROWSER_PAGEREC_H

#include <stdbool.h>
#include <stddef.h>

#include "chrome.h"
#include "pagesrv.h"

/* One thing the page recorded (see page.html.h). */
typedef struct rec {
    long seq;
    char src[16];
    char type[16]; /* loaded, open, message, server-error, error */
    int rs;        /* EventSource.readyState after the event: 0 connecting, 1 open, 2 closed */
    char *data;    /* MessageEvent.data, or NULL */
    char *id;      /* MessageEvent.lastEventId, or NULL */
} rec;

typedef struct recs {
    rec *v;
    size_t n;
    bool bad; /* a record that was not the page's JSON, or a sequence gap */
} recs;

/* Snapshot every record received so far into `r` (owned; recs_free). */
void recs_load(pagesrv *ps, recs *r);
void recs_free(recs *r);
size_t recs_count(const recs *r, const char *src, const char *type);

/* Poll until the page has recorded at least `n` of (src, type). A liveness
 * bound, not a timing assertion: callers pass waits generous for a loaded
 * machine. Gives up at once when the EventSource `src` is CLOSED (readyState
 * 2) short of `n`: the browser never reconnects from there (a CORS refusal, a
 * non-200), and when the browser has exited. */
bool recs_wait(pagesrv *ps, chrome *ch, const char *src, const char *type, size_t n,
               int timeout_ms);

/* Print the records and the tail of the browser's log to stderr. */
void recs_dump(pagesrv *ps, const chrome *ch);

/* Fail the running Check test, printing what the page saw first. */
#define EXPECT_PAGE(ps, ch, cond, ...) \
    do {                               \
        if (!(cond)) {                 \
            recs_dump((ps), (ch));     \
            ck_abort_msg(__VA_ARGS__); \
        }                              \
    } while (0)

#endif
