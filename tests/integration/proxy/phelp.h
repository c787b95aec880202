/* phelp.h: plumbing for the proxy's integration tests: start rstmdb-testd
 * and rstmdb-proxy as real processes, and make HTTP requests with libcurl
 * (one easy handle per "client" so keep-alive can be observed). */
#ifndef PROXY_IT_HELP_H
#define PROXY_IT_HELP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spawn.h"

typedef struct penv {
    spawned testd;
    spawned proxy;
    char base[128];      /* "http://127.0.0.1:PORT" */
    char unix_path[108]; /* when started with a unix socket */
    CURL *c;             /* the default client */
} penv;

/* Start testd (extra args, may be NULL) and a proxy on it (extra args, may be
 * NULL; --listen and --upstream are added). Fails the test on error. */
void penv_start(penv *e, const char *const testd_args[], const char *const proxy_args[]);
/* The same, with the proxy's stderr (its log) going to `proxy_log`. */
void penv_start_logged(penv *e, const char *const testd_args[], const char *const proxy_args[],
                       const char *proxy_log);
/* Start only the proxy against an existing testd address. */
void penv_start_proxy(penv *e, const char *upstream, const char *const proxy_args[]);
/* SIGTERM both; returns the proxy's wait status. */
int penv_stop(penv *e);

typedef struct hresp {
    long status;
    char *body;
    size_t len;
    char *headers; /* raw header block(s) */
    size_t hlen;
} hresp;

/* One request on `c` (NULL = e->c). `hdrs` is NULL-terminated "Name: value".
 * `body` NULL = none. */
void http_req(penv *e, CURL *c, const char *method, const char *path, const char *body,
              const char *const hdrs[], hresp *r);
void hresp_free(hresp *r);
/* When RSTMDB_OPENAPI_RECORD names a directory, append one response to
 * DIR/<pid>.jsonl for tests/openapi/check_responses.py, which validates it
 * against the served OpenAPI document. http_req records every response;
 * stream readers call this with the bytes they read. */
void phelp_record(const char *method, const char *path, long status, const char *headers,
                  const char *body, size_t len);
/* A response header's value (case-insensitive name), copied into out; false if absent. */
bool hresp_header(const hresp *r, const char *name, char *out, size_t cap);
/* Top-level member of the JSON body: string value or number text. */
bool hresp_json(const hresp *r, const char *key, char *out, size_t cap);
uint64_t hresp_u64(const hresp *r, const char *key);

/* Machine "m" (and "n"): s0 -GO-> s1 -BACK-> s0, guard-free; "g": s0 -GO-> s1 with a false guard.
 */
void seed_machines(penv *e);
/* Create an instance of `machine` (version 1). */
void create_instance(penv *e, const char *machine, const char *id);
/* APPLY_EVENT via the proxy; returns its wal_offset. */
uint64_t apply_event(penv *e, const char *id, const char *event, const char *payload_json);

/* Run the proxy binary with args and wait for it (no listening line needed):
 * returns its exit status, stdout in out (truncated to cap). */
int run_proxy_once(const char *const args[], char *out, size_t cap);
/* The same, keeping stderr (the configuration error) instead of stdout. */
int run_proxy_once_stderr(const char *const args[], char *err, size_t cap);

/* The whole file at `path` (at most 1 MiB), in a static buffer that the next
 * call overwrites. Fails the test if the file cannot be opened. */
const char *slurp_file(const char *path);

/* A JWT from tests/support/jwt_mint.py (python3-jwt): signed by key `kid`
 * (rsa1, rsa2, ec1, ed1, hs1) of the key set in `keydir` with `alg`, with the
 * claims JSON `claims`, valid `ttl` s. Fails the test unless it fits `cap`.
 * jwt_keys makes the key set (keydir/jwks.json) once. */
void jwt_mint(const char *keydir, const char *kid, const char *alg, const char *claims, int ttl,
              char *out, size_t cap);
void jwt_keys(const char *keydir);

#endif
