/* spawn.h: start the project's binaries as real child processes for tests.
 *
 * A test starts rstmdb-testd or rstmdb-proxy with `--listen 127.0.0.1:0`,
 * waits for its "listening on HOST:PORT" line on stdout, talks to it over a
 * real socket, and stops it. Nothing here is mocked; only the process
 * plumbing is shared.
 */
#ifndef TESTS_SPAWN_H
#define TESTS_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct spawned {
    pid_t pid;
    char host[64];
    int port;
    char addr[80]; /* "HOST:PORT" */
    int out_fd;    /* child's stdout after the listening line (for more lines), or -1 */
} spawned;

/* Run `argv` (argv[0] a path, NULL-terminated) with stderr going to
 * `log_path` (NULL = inherit). Waits up to `timeout_ms` for the
 * "listening on HOST:PORT" line. Returns 0, or -1 (the child is killed). */
int spawn_start(spawned *p, const char *const argv[], const char *log_path, int timeout_ms);
/* SIGTERM, then SIGKILL after `grace_ms`; returns the exit status as
 * waitpid reports it, or -1. Safe to call twice. */
int spawn_stop(spawned *p, int grace_ms);
/* SIGKILL now and reap. */
void spawn_kill(spawned *p);

/* Paths of the built binaries (compiled in by CMake; overridable by the
 * environment variables RSTMDB_TESTD_BIN and RSTMDB_PROXY_BIN). */
const char *spawn_testd_path(void);
const char *spawn_proxy_path(void);

/* Start rstmdb-testd on a free loopback port with extra args (NULL-terminated,
 * may be NULL). Convenience over spawn_start. */
int spawn_testd(spawned *p, const char *const extra_args[]);

#endif
