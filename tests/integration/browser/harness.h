/* harness.h: the process harness of a browser test. It finds Chromium (or
 * skips), makes the run's scratch directory, runs the Check test in a child
 * that leads its own process group under a deadline, and afterwards kills
 * everything the test started, Chromium's helpers in other sessions included,
 * whether the test passed, failed or hung. */
#ifndef BROWSER_HARNESS_H
#define BROWSER_HARNESS_H

#include <check.h>

/* Inside the test: the run's scratch directory (chromium's profile goes
 * there) and the chromium executable. */
const char *browser_run_dir(void);
const char *browser_bin(void);

/* main() of a browser test: runs `test` as the suite `name` with a Check
 * timeout of `deadline_s`, kills it 5 s later. Returns the exit code: 0
 * passed, 1 failed, 77 chromium missing (ctest reports a skip). */
int browser_main(const char *name, const TTest *test, int deadline_s);

#endif
