/* harness.h: shared plumbing for the upstream integration tests: one
 * event_base, a real rstmdb-testd child, a pool on it, and "run the loop
 * until X (or a safety limit)" helpers. Limits fail a test; they never
 * decide a pass. */
#ifndef UPSTREAM_HARNESS_H
#define UPSTREAM_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool.h"
#include "spawn.h"

struct event_base;

typedef struct up_env {
    struct event_base *base;
    spawned testd;
    bool testd_up;
    pool *pool;
    pool_config cfg;
} up_env;

/* Start testd (with --control and `extra` args) and a pool of `size`
 * connections; waits until every connection is READY. */
void up_start(up_env *e, unsigned size, const char *const extra[]);
/* Only testd, and e->cfg filled for a pool of `size` (no pool yet). */
void up_start_testd(up_env *e, unsigned size, const char *const extra[]);
void up_stop(up_env *e);
/* Checked-fixture teardown: kills any testd a failed test left running. */
void up_teardown(void);
/* Kill testd, then start it again on the same port (state is lost). */
void up_kill_testd(up_env *e);
void up_restart_testd(up_env *e, const char *const extra[]);
void up_control(up_env *e, const char *cmd);

typedef bool (*up_pred)(void *arg);
/* Run the loop until pred(arg) holds; false if `limit_ms` passed first. */
bool up_run_until(up_env *e, up_pred pred, void *arg, int limit_ms);
/* Run the loop for about `ms` (to let things that must NOT happen show up). */
void up_run_for(up_env *e, int ms);

/* A call through `p`, run to completion. Returns the reply status; *result
 * (may be NULL) gets a malloc'd copy of the raw result text or NULL. */
int up_call(up_env *e, pool *p, const char *op, const char *params, char **result);
/* Same, failing the test unless the status is RSTMDB_OK. */
char *up_call_ok(up_env *e, pool *p, const char *op, const char *params);
/* A u64 member of a JSON object text (test-side parsing with cJSON). */
uint64_t up_json_u64(const char *json, const char *key);

/* PUT machine "m" (states s0 <-> s1 via GO/BACK) and "n" (same shape). */
void up_seed_machines(up_env *e, pool *p);
/* APPLY_EVENT on `id` (GO/BACK alternate via the state it is in); returns the wal_offset. */
uint64_t up_apply(up_env *e, pool *p, const char *id, const char *event, const char *extra_json);

#endif
