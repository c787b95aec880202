/* harness.c: see harness.h. The scenario runs in a child that leads its own
 * process group, so that whatever happens to it (a failed assertion skips the
 * test's own cleanup), the parent can kill everything it started: the group
 * (testd, proxies, the browser and its zygotes) and, by a per-run environment
 * marker, the helpers Chromium moves to sessions of their own (crashpad). */
#include "harness.h"

#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chrome.h"

#define ENV_RUN "RSTMDB_BROWSER_RUN"
#define ENV_BIN "RSTMDB_BROWSER_BIN"

const char *browser_run_dir(void)
{
    return getenv(ENV_RUN);
}

const char *browser_bin(void)
{
    return getenv(ENV_BIN);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int run_suite(const char *name, const TTest *test, int deadline_s)
{
    setpgid(0, 0);
    Suite *s = suite_create(name);
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, deadline_s);
    tcase_add_test(tc, test);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

int browser_main(const char *name, const TTest *test, int deadline_s)
{
    char bin[4096];
    if (!chrome_find(bin, sizeof bin)) {
        printf("SKIPPED: chromium not found (Debian package `chromium`; scripts/deps "
               "installs it, or set RSTMDB_CHROMIUM)\n");
        fflush(stdout);
        return 77;
    }
    char dir[512];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/rstmdb-browser-XXXXXX", tmp && tmp[0] == '/' ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    char marker[600];
    snprintf(marker, sizeof marker, "%s=%s", ENV_RUN, dir);
    setenv(ENV_RUN, dir, 1);
    setenv(ENV_BIN, bin, 1);
    fflush(stdout);
    fflush(stderr);

    pid_t kid = fork();
    if (kid < 0) {
        perror("fork");
        return 1;
    }
    if (kid == 0)
        exit(run_suite(name, test, deadline_s));
    setpgid(kid, kid); /* also here: no race with the child's own call */

    /* Wait without reaping (WNOWAIT): while the child is a zombie its pid
     * cannot be reused, so kill(-kid) reaches only the group it led. */
    long long end = mono_ms() + (deadline_s + 5) * 1000LL;
    siginfo_t si;
    for (;;) {
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, (id_t)kid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == kid)
            break;
        if (mono_ms() >= end) {
            fprintf(stderr, "%s: over %d s, killing it\n", name, deadline_s + 5);
            kill(-kid, SIGKILL);
            end = mono_ms() + 5000;
        }
        usleep(50000);
    }
    kill(-kid, SIGKILL);
    for (int i = 0; i < 20 && chrome_sweep(marker) > 0; i++)
        usleep(100000);
    int st = 0;
    waitpid(kid, &st, 0);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
