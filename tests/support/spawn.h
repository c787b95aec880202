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
#include <stddef.h>
#include <sys/types.h>

typedef struct spawned {
    pid_t pid;
    char host[64];
    int port;
    char addr[80];          /* "HOST:PORT" */
    int out_fd;             /* child's stdout after the listening line (for more lines), or -1 */
    char control_addr[128]; /* rstmdb-testd's "control on ADDR" (spawn_read_control), or "" */
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

/* --- rstmdb-testd's control channel (fault knobs; see tests/testd/README.md) --- */

/* Read stdout lines until "control on ADDR" (printed right after the
 * listening line when testd runs with --control); fills p->control_addr.
 * Returns 0, or -1 on timeout/EOF (the child keeps running). */
int spawn_read_control(spawned *p, int timeout_ms);
/* Like spawn_testd, plus `--control 127.0.0.1:0`, and waits for the control
 * line too. Returns 0, or -1 (the child is killed). */
int spawn_testd_control(spawned *p, const char *const extra_args[]);
/* Send one command line (no newline) to p->control_addr on a fresh
 * connection and read the one-line reply into `reply` (may be NULL/0).
 * Returns 0 if the reply starts with "ok", else -1 (an "err ..." reply, or
 * an I/O failure, or no reply within 5 s). Examples: "delay 200",
 * "close-after 1", "garble", "hang on", "refuse off", "drop-all", "stats". */
int spawn_control(const spawned *p, const char *cmd, char *reply, size_t cap);

#endif
