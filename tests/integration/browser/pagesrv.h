/* pagesrv.h: the test's own web origin for the browser test. It serves one
 * HTML page at "/" and collects what the page POSTs to "/log" (one JSON record
 * per request, kept in arrival order). It knows nothing about the proxy. */
#ifndef BROWSER_PAGESRV_H
#define BROWSER_PAGESRV_H

#include <stddef.h>

typedef struct pagesrv pagesrv;

/* Serve `html` (copied) on 127.0.0.1 at a free port. Returns 0, or -1. */
int pagesrv_new(pagesrv **out, const char *html);
void pagesrv_free(pagesrv *ps);
/* Answer the page with `Set-Cookie: <set_cookie>` from now on (copied; NULL
 * stops it), as an application's backend that hands its user a token does.
 * Returns 0, or -1 out of memory. */
int pagesrv_set_cookie(pagesrv *ps, const char *set_cookie);
int pagesrv_port(const pagesrv *ps);
/* How many times "/" was fetched (the page really loaded from here). */
unsigned pagesrv_page_hits(pagesrv *ps);
/* Records received so far; pagesrv_record returns a malloc'd copy of record
 * `i` (0-based, arrival order) or NULL past the end. */
size_t pagesrv_count(pagesrv *ps);
char *pagesrv_record(pagesrv *ps, size_t i);
/* Records refused because a cap was hit (too many, or one too large). */
unsigned pagesrv_dropped(pagesrv *ps);

#endif
