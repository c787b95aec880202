/* chrome.c: launching and stopping headless Chromium for the browser test,
 * and the per-run sweep that kills what it left behind. It must not signal
 * any process the test did not start (it matches a per-run marker). */
#include "chrome.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static bool executable(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

bool chrome_find(char *out, size_t cap)
{
    const char *env = getenv("RSTMDB_CHROMIUM");
    if (env != NULL && env[0] != '\0') {
        if (!executable(env))
            return false;
        snprintf(out, cap, "%s", env);
        return true;
    }
    const char *path = getenv("PATH");
    if (path == NULL || path[0] == '\0')
        path = "/usr/local/bin:/usr/bin:/bin";
    const char *names[] = {"chromium", "chromium-browser"};
    for (size_t n = 0; n < sizeof names / sizeof names[0]; n++) {
        for (const char *p = path; *p;) {
            const char *e = strchr(p, ':');
            size_t l = e ? (size_t)(e - p) : strlen(p);
            if (l > 0 && (size_t)snprintf(out, cap, "%.*s/%s", (int)l, p, names[n]) < cap &&
                executable(out))
                return true;
            p = e ? e + 1 : p + l;
        }
    }
    return false;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The child's environment: ours, with HOME and the XDG dirs moved under
 * `dir` so Chromium writes nothing outside it (crash reports, caches).
 * Built before fork: the test has threads (libmicrohttpd), so the child may
 * only call async-signal-safe functions until exec. */
static char **child_env(const char *dir)
{
    size_t n = 0;
    while (environ[n] != NULL)
        n++;
    char **env = calloc(n + 5, sizeof env[0]);
    if (env == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(environ[i], "HOME=", 5) == 0 || strncmp(environ[i], "XDG_", 4) == 0)
            continue;
        env[k++] = environ[i];
    }
    const char *name[] = {"HOME=", "XDG_CONFIG_HOME=", "XDG_CACHE_HOME=", "XDG_RUNTIME_DIR="};
    const char *sub[] = {"", "/.config", "/.cache", ""};
    for (size_t i = 0; i < 4; i++) {
        size_t len = strlen(name[i]) + strlen(dir) + strlen(sub[i]) + 1;
        env[k] = malloc(len);
        if (env[k] == NULL) {
            while (i-- > 0)
                free(env[--k]);
            free(env);
            return NULL;
        }
        snprintf(env[k], len, "%s%s%s", name[i], dir, sub[i]);
        k++;
    }
    env[k] = NULL;
    return env;
}

static void child_env_free(char **env, size_t n_ours)
{
    if (env == NULL)
        return;
    size_t n = 0;
    while (env[n] != NULL)
        n++;
    for (size_t i = n >= n_ours ? n - n_ours : 0; i < n; i++)
        free(env[i]);
    free(env);
}

int chrome_start(chrome *c, const char *bin, const char *dir, const char *url)
{
    c->pid = -1;
    snprintf(c->log, sizeof c->log, "%s/chrome.log", dir);
    char profile[600];
    snprintf(profile, sizeof profile, "--user-data-dir=%s/profile", dir);
    /* Flags: no sandbox (containers lack user namespaces), no GPU, no
     * background traffic to Google, a fresh profile; keep timers running at
     * full speed in the (invisible) tab; Chromium's log and the page's console
     * go to stderr for diagnosis. */
    const char *argv[] = {bin,
                          "--headless",
                          "--no-sandbox",
                          "--disable-gpu",
                          "--disable-quic",
                          "--no-first-run",
                          "--no-default-browser-check",
                          "--disable-background-networking",
                          "--disable-component-update",
                          "--disable-sync",
                          "--disable-extensions",
                          "--disable-dev-shm-usage",
                          "--disable-background-timer-throttling",
                          "--disable-renderer-backgrounding",
                          "--disable-backgrounding-occluded-windows",
                          "--enable-logging=stderr",
                          "--v=0",
                          profile,
                          url,
                          NULL};
    char **env = child_env(dir);
    if (env == NULL)
        return -1;
    int fd = open(c->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t pid = fd >= 0 && nul >= 0 ? fork() : -1;
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        dup2(nul, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execve(bin, (char *const *)(uintptr_t)argv, env);
        _exit(127);
    }
    if (fd >= 0)
        close(fd);
    if (nul >= 0)
        close(nul);
    child_env_free(env, 4);
    if (pid < 0)
        return -1;
    c->pid = pid;
    return 0;
}

bool chrome_alive(chrome *c)
{
    if (c->pid <= 0)
        return false;
    int st;
    if (waitpid(c->pid, &st, WNOHANG) == c->pid) {
        c->pid = -1;
        return false;
    }
    return true;
}

void chrome_stop(chrome *c, int grace_ms)
{
    if (c->pid <= 0)
        return;
    /* SIGTERM lets the browser close its helpers itself (the zygotes and
     * renderers exit with it); SIGKILL only if it hangs. */
    kill(c->pid, SIGTERM);
    long long end = now_ms() + grace_ms;
    int st;
    while (waitpid(c->pid, &st, WNOHANG) == 0) {
        if (now_ms() >= end) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &st, 0);
            break;
        }
        usleep(20000);
    }
    c->pid = -1;
}

void chrome_print_log(const chrome *c, FILE *out, size_t max)
{
    FILE *f = fopen(c->log, "r");
    if (f == NULL)
        return;
    if (fseek(f, 0, SEEK_END) == 0) {
        long sz = ftell(f);
        if (sz > (long)max)
            fseek(f, sz - (long)max, SEEK_SET);
        else
            fseek(f, 0, SEEK_SET);
    }
    char buf[4096];
    size_t n;
    fprintf(out, "---- chromium log (tail) ----\n");
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, out);
    fprintf(out, "---- end of chromium log ----\n");
    fclose(f);
}

/* Does /proc/<pid>/environ hold `marker` as one whole entry? */
static bool has_marker(const char *pid, const char *marker)
{
    char path[300];
    snprintf(path, sizeof path, "/proc/%s/environ", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    /* Environments are small; 256 KiB covers any real one (the cap). */
    size_t cap = 256 * 1024, len = 0;
    char *buf = malloc(cap + 1);
    bool found = false;
    if (buf != NULL) {
        ssize_t r;
        while (len < cap && (r = read(fd, buf + len, cap - len)) > 0)
            len += (size_t)r;
        buf[len] = '\0';
        size_t ml = strlen(marker);
        for (size_t i = 0; i < len && !found;) {
            size_t el = strnlen(buf + i, len - i);
            found = el == ml && memcmp(buf + i, marker, ml) == 0;
            i += el + 1;
        }
        free(buf);
    }
    close(fd);
    return found;
}

unsigned chrome_sweep(const char *marker)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return 0;
    unsigned n = 0;
    pid_t self = getpid();
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end;
        errno = 0;
        long pid = strtol(de->d_name, &end, 10);
        if (*end != '\0' || errno != 0 || pid <= 0 || (pid_t)pid == self)
            continue;
        if (has_marker(de->d_name, marker) && kill((pid_t)pid, SIGKILL) == 0)
            n++;
    }
    closedir(d);
    return n;
}
