/* chrome.h: run Debian's headless Chromium as a child process of a test, and
 * make sure none of its processes outlive the test. It knows nothing about
 * the page it loads. */
#ifndef BROWSER_CHROME_H
#define BROWSER_CHROME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

typedef struct chrome {
    pid_t pid;     /* the browser process, or -1 */
    char log[512]; /* its stdout+stderr (Chromium logs and the page's console) */
} chrome;

/* The chromium executable: $RSTMDB_CHROMIUM if set, else `chromium` or
 * `chromium-browser` on $PATH. false if there is none (the test then skips). */
bool chrome_find(char *out, size_t cap);

/* Start `bin` headless on `url`, with its profile, HOME and caches under
 * `dir` (an empty directory the caller owns) and its output in dir/chrome.log.
 * Returns 0, or -1. */
int chrome_start(chrome *c, const char *bin, const char *dir, const char *url);
/* Is the browser process still running? (Reaps it if it exited.) */
bool chrome_alive(chrome *c);
/* SIGTERM the browser, SIGKILL after `grace_ms`; reaps it. Safe to call twice. */
void chrome_stop(chrome *c, int grace_ms);
/* Print the last `max` bytes of the browser's log to `out`. */
void chrome_print_log(const chrome *c, FILE *out, size_t max);

/* SIGKILL every process (but this one) whose environment holds exactly the
 * entry `marker` ("NAME=VALUE"): Chromium's helpers (zygotes, renderers,
 * crashpad, which starts its own session) inherit the environment of what the
 * test started, so a per-run marker finds them all and nothing else.
 * Returns how many were signalled. */
unsigned chrome_sweep(const char *marker);

#endif
