/* conf.h: the conformance suite's harness: which server to judge, request
 * helpers, and a pattern matcher for comparing whole response texts.
 *
 * Target: RSTMDB_TEST_ADDR=host:port points the suite at any RCPX server
 * (RSTMDB_TEST_TOKEN: a token it accepts, when it requires auth). Without
 * it, each test program starts its own rstmdb-testd processes on free
 * loopback ports (tests/support/spawn.h) and stops them at the end.
 *
 * Patterns: expected texts are literal JSON with these placeholders:
 *   $U  a lowercase hyphenated UUIDv4     $N  an unsigned decimal integer
 *   $O  a WAL offset (integer >= 2^40)    $H  8 lowercase hex digits
 *   $S  the body of a JSON string         $A  a flat JSON array "[...]"
 *   $*  any text (shortest match, not captured)        $$  a literal '$'
 *   $V  the target's server_version (cf_server_version(), not captured)
 * Every other placeholder's matched text is captured, in order, into cf_caps.
 */
#ifndef CONFORMANCE_CONF_H
#define CONFORMANCE_CONF_H

#include "rcpx.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#define CF_TIMEOUT_MS       10000 /* waiting for a response or an expected event */
#define CF_CLOSE_TIMEOUT_MS 10000 /* waiting for a silent close */
#define CF_MAX_CAPS         16
#define CF_FIRST_OFFSET     1099511627776ull /* 1 << 40: segment 1, byte 0 */

typedef struct cf_caps {
    int n;
    char v[CF_MAX_CAPS][256];
} cf_caps;

/* Which extra servers a test program needs (testd only). */
enum {
    CF_NEED_AUTH = 1,    /* a server that requires auth (testd --token secret) */
    CF_NEED_LIMIT = 2,   /* testd --max-machine-versions 2 */
    CF_NEED_SMALLSEG = 4 /* a fresh testd --wal-segment-bytes 1024 */
};

/* Unchecked fixture helpers: call cf_setup(flags) / cf_teardown() from the
 * test program's own fixture functions. */
void cf_setup(int need);
void cf_teardown(void);

/* Run a suite (the test program's main): returns the process exit status. */
int cf_run(Suite *s);
/* A TCase with a generous timeout, for the test programs. */
TCase *cf_tcase(const char *name);

bool cf_is_testd(void); /* the target is our rstmdb-testd, so testd-only facts apply */
/* The target's HELLO server_version ("0.1.1", "0.3.0"), read in cf_setup;
 * cf_v03(): it is 0.3 or newer, so 0.3's answers are expected
 * (PROTOCOL-0.3.md part 1). Run the suite against testd in 0.3 mode with
 * RSTMDB_TESTD_COMPAT=0.3. */
const char *cf_server_version(void);
bool cf_v03(void);
const char *cf_addr(void);
/* Nobody else writes to the server while a test runs, so exact WAL relations
 * hold (next offset, entry counts): testd, or an external server with
 * RSTMDB_TEST_EXCLUSIVE=1 (run the programs one at a time, ctest -j1). */
bool cf_exclusive(void); /* the main target's "host:port" */

/* A connection with its request-id counter and a stash of events that
 * arrived while a response was awaited (kept in arrival order). */
typedef struct cf_conn {
    rcpx *rc;
    unsigned next_id;
    rcpx_msg stash[64];
    int nstash;
    char last_id[32];
} cf_conn;

/* Connect to the main target (AUTH first when it requires a token). */
cf_conn *cf_open_at(const char *file, int line);
#define CF_OPEN() cf_open_at(__FILE__, __LINE__)
/* Connect to a server that requires auth, without authenticating. NULL (with
 * a SKIP line on stderr) when there is none: an external server without
 * RSTMDB_TEST_TOKEN. *token gets the token it accepts. */
cf_conn *cf_open_authreq(const char **token);
/* Connect to testd --max-machine-versions 2; NULL (SKIP printed) if external. */
cf_conn *cf_open_limit(void);
/* Connect to the fresh testd with 1024-byte WAL segments; NULL (SKIP) if external. */
cf_conn *cf_open_smallseg(void);
/* Connect to the main target without authenticating (framing tests: PING
 * and envelope errors are judged before auth). */
cf_conn *cf_open_raw_at(const char *file, int line);
#define CF_OPEN_RAW() cf_open_raw_at(__FILE__, __LINE__)
void cf_close(cf_conn *k);

/* A unique name for this run: "<prefix>-<pid>-<n>-<time>", so the suite can
 * run on a non-empty server, several programs at once. */
void cf_uniq(char *buf, size_t cap, const char *prefix);
/* printf into one of 128 rotating 64 KiB buffers (test convenience): the
 * result lives for the next ~100 calls; copy anything kept longer. */
const char *cf_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Send a request (params NULL = omitted) and return its response text
 * (malloc'd). Events read meanwhile go to the stash. Fails the test on a
 * timeout, close or bad frame, or if the next response has another id. */
char *cf_call_at(const char *file, int line, cf_conn *k, const char *op, const char *params);
#define CF_CALL(k, op, params) cf_call_at(__FILE__, __LINE__, (k), (op), (params))
/* The same, parsed (caller frees with cJSON_Delete). */
cJSON *cf_call_json_at(const char *file, int line, cf_conn *k, const char *op, const char *params);
#define CF_CALLJ(k, op, params) cf_call_json_at(__FILE__, __LINE__, (k), (op), (params))

/* Assert the whole response text is
 * {"type":"response","id":"<id>","status":"ok","result":<result_pat>}. */
void cf_ok_at(const char *file, int line, cf_conn *k, const char *op, const char *params,
              const char *result_pat, cf_caps *caps);
#define CF_OK(k, op, params, pat) cf_ok_at(__FILE__, __LINE__, (k), (op), (params), (pat), NULL)
#define CF_OKC(k, op, params, pat, caps) \
    cf_ok_at(__FILE__, __LINE__, (k), (op), (params), (pat), (caps))

/* Assert the whole response text is the error {code, message, retryable}
 * exactly (the message is JSON-escaped here; pass it unescaped). */
void cf_err_at(const char *file, int line, cf_conn *k, const char *op, const char *params,
               const char *code, const char *message, bool retryable);
#define CF_ERR(k, op, params, code, msg, retry) \
    cf_err_at(__FILE__, __LINE__, (k), (op), (params), (code), (msg), (retry))
/* Same, with a message pattern (already JSON-escaped, placeholders allowed). */
void cf_errp_at(const char *file, int line, cf_conn *k, const char *op, const char *params,
                const char *code, const char *message_pat, bool retryable, cf_caps *caps);
#define CF_ERRP(k, op, params, code, pat, retry, caps) \
    cf_errp_at(__FILE__, __LINE__, (k), (op), (params), (code), (pat), (retry), (caps))

/* The next event on k (stash first), as text (malloc'd); fails on a timeout or
 * on a response arriving instead. */
char *cf_event_at(const char *file, int line, cf_conn *k);
#define CF_EVENT(k) cf_event_at(__FILE__, __LINE__, (k))
/* Assert the next event's whole text matches `pat`. */
void cf_event_match_at(const char *file, int line, cf_conn *k, const char *pat, cf_caps *caps);
#define CF_EVENT_MATCH(k, pat, caps) cf_event_match_at(__FILE__, __LINE__, (k), (pat), (caps))

/* Match a whole text against a pattern; caps may be NULL. */
bool cf_match(const char *text, const char *pat, cf_caps *caps);
/* Assert a match, printing both texts on failure. */
void cf_assert_match_at(const char *file, int line, const char *text, const char *pat,
                        cf_caps *caps);
#define CF_MATCH(text, pat, caps) cf_assert_match_at(__FILE__, __LINE__, (text), (pat), (caps))

/* JSON-escape `s` as a string body (no surrounding quotes) into a cf_fmt buffer. */
const char *cf_esc(const char *s);
/* `s`, or its head and tail when too long for a Check failure message. */
const char *cf_short(const char *s);
/* Parse a decimal capture. */
uint64_t cf_u64(const char *s);

/* Machine definitions used across files. */
/* The worked definition of PROTOCOL.md §4.1 (checksum c873e472). */
#define CF_ORDER_DEF                                                                           \
    "{\"states\":[\"created\",\"paid\",\"shipped\"],\"initial\":\"created\",\"transitions\":[" \
    "{\"from\":\"created\",\"event\":\"PAY\",\"to\":\"paid\"},{\"from\":[\"paid\"],"           \
    "\"event\":\"SHIP\",\"to\":\"shipped\",\"guard\":\"ctx.ready\"}],\"meta\":{\"z\":1,"       \
    "\"a\":{\"y\":2,\"b\":3}}}"
/* PUT_MACHINE `def` as (name, version 1) and assert created:true. */
void cf_put_machine_at(const char *file, int line, cf_conn *k, const char *name, const char *def);
#define CF_PUT_MACHINE(k, name, def) cf_put_machine_at(__FILE__, __LINE__, (k), (name), (def))
/* CREATE_INSTANCE (id, machine v1, initial_ctx JSON or NULL); returns the wal_offset. */
uint64_t cf_create_at(const char *file, int line, cf_conn *k, const char *id, const char *machine,
                      const char *ctx);
#define CF_CREATE(k, id, m, ctx) cf_create_at(__FILE__, __LINE__, (k), (id), (m), (ctx))

#endif
