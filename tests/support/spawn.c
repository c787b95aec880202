/* spawn.c: start, watch and stop the project's binaries as child processes for
 * tests (fork/exec, stdout parsed for "listening on HOST:PORT"). It must never
 * leave a child behind: every failure path kills and reaps what it started. */
#include "spawn.h"

#include "hostport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef RSTMDB_TESTD_BIN_DEFAULT
#define RSTMDB_TESTD_BIN_DEFAULT "rstmdb-testd"
#endif
#ifndef RSTMDB_PROXY_BIN_DEFAULT
#define RSTMDB_PROXY_BIN_DEFAULT "rstmdb-proxy"
#endif

#define SPAWN_LINE_MAX 512

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read one '\n'-terminated line from `fd`, byte by byte so nothing after it
 * is consumed (the next line stays in the pipe for the next caller).
 * Returns the length, or -1 on EOF, error or timeout. */
static int read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
    long long deadline = mono_ms() + timeout_ms;
    size_t n = 0;

    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        long long left = deadline - mono_ms();
        char ch;
        ssize_t r;

        if (left <= 0)
            return -1;
        r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        if (ch == '\n') {
            if (n > 0 && buf[n - 1] == '\r')
                n--;
            buf[n] = '\0';
            return (int)n;
        }
        if (n + 1 < cap)
            buf[n++] = ch;
    }
}

/* Copy `src` into dst[cap]; -1 if it does not fit. */
static int copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

static int wait_exit(pid_t pid, int timeout_ms, int *status)
{
    long long deadline = mono_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
        if (mono_ms() >= deadline)
            return 1;
        usleep(5000);
    }
}

int spawn_start(spawned *p, const char *const argv[], const char *log_path, int timeout_ms)
{
    int out[2];
    int logfd = -1;
    char line[SPAWN_LINE_MAX];
    pid_t pid;

    memset(p, 0, sizeof *p);
    p->pid = -1;
    p->out_fd = -1;
    if (pipe2(out, O_CLOEXEC) != 0)
        return -1;
    if (log_path != NULL) {
        logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (logfd < 0) {
            fprintf(stderr, "spawn: cannot open log %s: %s\n", log_path, strerror(errno));
            close(out[0]);
            close(out[1]);
            return -1;
        }
    }
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid = fork();
    if (pid < 0) {
        close(out[0]);
        close(out[1]);
        if (logfd >= 0)
            close(logfd);
        return -1;
    }
    if (pid == 0) {
        /* A failed Check test exits its forked runner without reaching
         * spawn_stop; without this the server would outlive the test run
         * and hold its port and memory (seen as dozens of orphans). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        if (logfd >= 0)
            dup2(logfd, STDERR_FILENO);
        /* The test may ignore or block SIGTERM/SIGPIPE; the child must not
         * inherit that, or spawn_stop's SIGTERM would never stop it. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], (char *const *)(uintptr_t)argv);
        fprintf(stderr, "spawn: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(out[1]);
    if (logfd >= 0)
        close(logfd);
    p->pid = pid;
    p->out_fd = out[0];

    for (;;) {
        if (read_line(p->out_fd, line, sizeof line, timeout_ms) < 0) {
            fprintf(stderr, "spawn: %s printed no 'listening on' line within %d ms\n", argv[0],
                    timeout_ms);
            spawn_kill(p);
            return -1;
        }
        if (strncmp(line, "listening on ", 13) == 0)
            break;
        /* Anything else on stdout before it is ignored. */
    }
    if (copy_str(p->addr, sizeof p->addr, line + 13) != 0 ||
        hostport_split(p->addr, p->host, sizeof p->host, &p->port) != 0) {
        fprintf(stderr, "spawn: cannot parse '%s'\n", line);
        spawn_kill(p);
        return -1;
    }
    return 0;
}

int spawn_read_control(spawned *p, int timeout_ms)
{
    char line[SPAWN_LINE_MAX];

    if (p->pid <= 0 || p->out_fd < 0)
        return -1;
    for (;;) {
        if (read_line(p->out_fd, line, sizeof line, timeout_ms) < 0)
            return -1;
        if (strncmp(line, "control on ", 11) == 0)
            break;
    }
    return copy_str(p->control_addr, sizeof p->control_addr, line + 11);
}

/* Connect to "HOST:PORT", "[V6]:PORT" or "unix:PATH" (blocking). */
static int connect_addr(const char *addr)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd;

    memset(&ss, 0, sizeof ss);
    if (strncmp(addr, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&ss;
        if (strlen(addr + 5) >= sizeof un->sun_path)
            return -1;
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, addr + 5);
        len = (socklen_t)sizeof *un;
    } else if (hostport_sockaddr(addr, &ss, &len) != 0) {
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int spawn_control(const spawned *p, const char *cmd, char *reply, size_t cap)
{
    char line[SPAWN_LINE_MAX];
    size_t clen = strlen(cmd);
    size_t off = 0;
    int fd;
    int rc = -1;

    if (cap > 0)
        reply[0] = '\0';
    if (p->control_addr[0] == '\0' || clen == 0 || clen >= sizeof line - 1)
        return -1;
    memcpy(line, cmd, clen);
    line[clen++] = '\n';
    fd = connect_addr(p->control_addr);
    if (fd < 0)
        return -1;
    while (off < clen) {
        ssize_t w = send(fd, line + off, clen - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto out;
        off += (size_t)w;
    }
    if (read_line(fd, line, sizeof line, 5000) < 0)
        goto out;
    if (cap > 0)
        snprintf(reply, cap, "%s", line);
    rc = strncmp(line, "ok", 2) == 0 ? 0 : -1;
out:
    close(fd);
    return rc;
}

int spawn_stop(spawned *p, int grace_ms)
{
    int status = -1;

    if (p->out_fd >= 0) {
        close(p->out_fd);
        p->out_fd = -1;
    }
    if (p->pid <= 0)
        return -1;
    kill(p->pid, SIGTERM);
    if (wait_exit(p->pid, grace_ms, &status) == 1) {
        fprintf(stderr, "spawn: pid %d ignored SIGTERM for %d ms; killing\n", (int)p->pid,
                grace_ms);
        kill(p->pid, SIGKILL);
        if (waitpid(p->pid, &status, 0) < 0)
            status = -1;
    }
    p->pid = -1;
    return status;
}

void spawn_kill(spawned *p)
{
    int status;

    if (p->out_fd >= 0) {
        close(p->out_fd);
        p->out_fd = -1;
    }
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGKILL);
    while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR) {
    }
    p->pid = -1;
}

const char *spawn_testd_path(void)
{
    const char *env = getenv("RSTMDB_TESTD_BIN");
    return env != NULL && *env != '\0' ? env : RSTMDB_TESTD_BIN_DEFAULT;
}

const char *spawn_proxy_path(void)
{
    const char *env = getenv("RSTMDB_PROXY_BIN");
    return env != NULL && *env != '\0' ? env : RSTMDB_PROXY_BIN_DEFAULT;
}

/* argv = testd --listen 127.0.0.1:0 [--control 127.0.0.1:0] extra... */
static int start_testd(spawned *p, const char *const extra[], bool control)
{
    const char *argv[64];
    size_t n = 0;
    size_t i;

    argv[n++] = spawn_testd_path();
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    if (control) {
        argv[n++] = "--control";
        argv[n++] = "127.0.0.1:0";
    }
    for (i = 0; extra != NULL && extra[i] != NULL; i++) {
        if (n + 1 >= sizeof argv / sizeof argv[0])
            return -1;
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    if (spawn_start(p, argv, NULL, 10000) != 0)
        return -1;
    if (control && spawn_read_control(p, 10000) != 0) {
        fprintf(stderr, "spawn: rstmdb-testd printed no 'control on' line\n");
        spawn_kill(p);
        return -1;
    }
    return 0;
}

int spawn_testd(spawned *p, const char *const extra_args[])
{
    return start_testd(p, extra_args, false);
}

int spawn_testd_control(spawned *p, const char *const extra_args[])
{
    return start_testd(p, extra_args, true);
}
