/* test_jwt.c: browser authorization end to end: JWTs minted by python3-jwt
 * (tests/support/jwt_mint.py, never the proxy's code) against a real proxy
 * and testd. The scope of every route, BATCH, the rstmdb claim's instance
 * and machine limits (WATCH_ALL's event filtering included), the cookie and
 * ?access_token= with the log redaction, TOKEN_EXPIRED, SIGHUP key
 * rotation, rate limits, secrets from files, CORS credentials, bad input. */
#include <check.h>
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "phelp.h"

static char keydir[256]; /* keys made once by jwt_mint.py */

#define TOK_MAX 12000
#define JWT_MAX 8192 /* jwt.h JWT_MAX_BYTES */

/* A token from python3-jwt: kid (rsa1, ec1, ed1, hs1), alg, claims JSON. */
static void mint(const char *kid, const char *alg, const char *claims, int ttl, char *out)
{
    jwt_mint(keydir, kid, alg, claims, ttl, out, TOK_MAX);
}

static void tok(const char *claims, char *out)
{
    mint("rsa1", "RS256", claims, 600, out);
}

static char jwks_path[300];

static void start(penv *e, const char *const extra[], const char *log)
{
    const char *args[40];
    size_t n = 0;
    args[n++] = "--jwt-keys-file";
    args[n++] = jwks_path;
    for (size_t i = 0; extra && extra[i]; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    penv_start_logged(e, NULL, args, log);
}

/* A request with a bearer token (NULL = none) and extra headers. */
static long call(penv *e, const char *method, const char *path, const char *body, const char *token,
                 hresp *out)
{
    static char auth[TOK_MAX + 32];
    const char *hdrs[2] = {NULL, NULL};
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        hdrs[0] = auth;
    }
    hresp r;
    http_req(e, NULL, method, path, body, hdrs, &r);
    long st = r.status;
    if (out)
        *out = r;
    else
        hresp_free(&r);
    return st;
}

static bool scope_refused(const hresp *r)
{
    char w[128];
    return r->status == 403 && hresp_header(r, "WWW-Authenticate", w, sizeof w) &&
           strcmp(w, "Bearer error=\"insufficient_scope\"") == 0;
}

static void admin_setup(penv *e, const char *admin)
{
    const char *def = "{\"definition\":{\"states\":[\"s0\",\"s1\"],\"initial\":\"s0\","
                      "\"transitions\":[{\"from\":\"s0\",\"event\":\"GO\",\"to\":\"s1\"},"
                      "{\"from\":\"s1\",\"event\":\"BACK\",\"to\":\"s0\"}]}}";
    ck_assert_int_eq(call(e, "PUT", "/v1/machines/m/versions/1", def, admin, NULL), 201);
    ck_assert_int_eq(call(e, "PUT", "/v1/machines/n/versions/1", def, admin, NULL), 201);
    const char *inst[][2] = {
        {"a-1", "m"}, {"a-2", "n"}, {"b-1", "m"}, {"s-1", "m"}, {"s-del", "m"}};
    for (size_t i = 0; i < sizeof inst / sizeof inst[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"machine\":\"%s\",\"version\":1,\"instance_id\":\"%s\"}",
                 inst[i][1], inst[i][0]);
        ck_assert_int_eq(call(e, "POST", "/v1/instances", body, admin, NULL), 201);
    }
}

/* The status of a stream's answer, reading at most `ms`. */
static long stream_status(penv *e, const char *path, const char *const hdrs[], char *body,
                          size_t cap, int ms)
{
    CURL *c = curl_easy_init();
    char url[TOK_MAX + 256];
    snprintf(url, sizeof url, "%s%s", e->base, path);
    hresp r;
    memset(&r, 0, sizeof r);
    struct curl_slist *sl = NULL;
    for (size_t i = 0; hdrs && hdrs[i]; i++)
        sl = curl_slist_append(sl, hdrs[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, sl);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)ms);
    FILE *mem = fmemopen(body, cap, "w");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
    curl_easy_perform(c);
    long st = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    fclose(mem);
    body[cap - 1] = '\0';
    curl_slist_free_all(sl);
    curl_easy_cleanup(c);
    return st;
}

static long stream_with(penv *e, const char *path, const char *token, int ms)
{
    char auth[TOK_MAX + 32], body[4096] = "";
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token ? token : "");
    const char *h[] = {auth, NULL};
    return stream_status(e, path, token ? h : NULL, body, sizeof body, ms);
}

/* ---- scopes on every route ---------------------------------------------------- */

typedef struct rcase {
    const char *method, *path, *body, *scope; /* scope NULL = needs no token */
} rcase;

static const rcase routes[] = {
    {"GET", "/v1/ping", NULL, "rstmdb:read"},
    {"GET", "/v1/info", NULL, "rstmdb:read"},
    {"GET", "/v1/machines", NULL, "rstmdb:read"},
    {"PUT", "/v1/machines/m/versions/1",
     "{\"definition\":{\"states\":[\"s0\",\"s1\"],\"initial\":\"s0\",\"transitions\":[{\"from\":"
     "\"s0\",\"event\":\"GO\",\"to\":\"s1\"},{\"from\":\"s1\",\"event\":\"BACK\",\"to\":\"s0\"}]}}",
     "rstmdb:admin"},
    {"GET", "/v1/machines/m/versions/1", NULL, "rstmdb:read"},
    {"POST", "/v1/instances", "{\"machine\":\"m\",\"version\":1}", "rstmdb:write"},
    {"GET", "/v1/instances", NULL, "rstmdb:read"},
    {"GET", "/v1/instances/s-1", NULL, "rstmdb:read"},
    {"DELETE", "/v1/instances/s-del", NULL, "rstmdb:write"},
    {"POST", "/v1/instances/s-1/events", "{\"event\":\"GO\"}", "rstmdb:write"},
    {"POST", "/v1/instances/s-1/snapshot", NULL, "rstmdb:admin"},
    {"GET", "/v1/instances/s-1/watch", NULL, "rstmdb:watch"},
    {"POST", "/v1/batch", "{\"ops\":[{\"op\":\"PING\",\"params\":{}}]}", "rstmdb:read"},
    {"GET", "/v1/wal?from_offset=0&limit=1", NULL, "rstmdb:admin"},
    {"GET", "/v1/wal/stats", NULL, "rstmdb:admin"},
    {"POST", "/v1/wal/compact", NULL, "rstmdb:admin"},
    {"POST", "/v1/admin/flush-all", NULL, "rstmdb:admin"},
    {"POST", "/v1/rpc", "{\"op\":\"PING\",\"params\":{}}", "rstmdb:admin"},
    {"GET", "/v1/watch", NULL, "rstmdb:watch"},
    {"GET", "/healthz", NULL, NULL},
    {"GET", "/readyz", NULL, NULL},
    {"GET", "/metrics", NULL, "rstmdb:admin"},
    {"GET", "/v1/openapi.json", NULL, NULL},
};

static const char *const all_scopes[] = {"rstmdb:read", "rstmdb:write", "rstmdb:watch",
                                         "rstmdb:admin"};

static long try_route(penv *e, const rcase *rc, const char *token, hresp *r)
{
    if (strstr(rc->path, "watch") != NULL) {
        long st = stream_with(e, rc->path, token, 400);
        if (st != 200) /* answered at once: ask again for the whole answer */
            return call(e, rc->method, rc->path, rc->body, token, r);
        memset(r, 0, sizeof *r);
        r->status = st;
        r->body = calloc(1, 1);
        r->headers = calloc(1, 1);
        return st;
    }
    return call(e, rc->method, rc->path, rc->body, token, r);
}

START_TEST(every_route_needs_its_scope)
{
    penv e;
    start(&e, NULL, NULL);
    char admin[TOK_MAX], t[TOK_MAX];
    tok("{\"sub\":\"admin\",\"scope\":\"rstmdb:admin\"}", admin);
    admin_setup(&e, admin);

    /* The table covers every documented operation. */
    hresp d;
    ck_assert_int_eq(call(&e, "GET", "/v1/openapi.json", NULL, NULL, &d), 200);
    cJSON *doc = cJSON_Parse(d.body);
    size_t ops = 0;
    for (cJSON *p = cJSON_GetObjectItem(doc, "paths")->child; p; p = p->next)
        ops += (size_t)cJSON_GetArraySize(p);
    cJSON_Delete(doc);
    hresp_free(&d);
    ck_assert_uint_eq(ops, sizeof routes / sizeof routes[0]);

    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const rcase *rc = &routes[i];
        hresp r;
        if (rc->scope == NULL) {
            ck_assert_msg(try_route(&e, rc, NULL, &r) == 200, "%s %s without a token: %ld",
                          rc->method, rc->path, r.status);
            hresp_free(&r);
            continue;
        }
        ck_assert_msg(try_route(&e, rc, NULL, &r) == 401, "%s %s without a token: %ld", rc->method,
                      rc->path, r.status);
        hresp_free(&r);
        /* Every other scope together is not enough (admin aside, which has all). */
        char claims[256] = "{\"sub\":\"t\",\"scope\":\"";
        for (size_t k = 0; k < 4; k++) {
            if (strcmp(all_scopes[k], rc->scope) == 0 || strcmp(all_scopes[k], "rstmdb:admin") == 0)
                continue;
            strcat(claims, all_scopes[k]);
            strcat(claims, " ");
        }
        strcat(claims, "\"}");
        tok(claims, t);
        try_route(&e, rc, t, &r);
        ck_assert_msg(scope_refused(&r), "%s %s with %s: %ld %s", rc->method, rc->path, claims,
                      r.status, r.body);
        hresp_free(&r);
        /* Its own scope is, and so is admin. */
        const char *grant[2] = {rc->scope, "rstmdb:admin"};
        for (size_t g = 0; g < 2; g++) {
            snprintf(claims, sizeof claims, "{\"sub\":\"t\",\"scope\":\"%s\"}", grant[g]);
            tok(claims, t);
            long st = try_route(&e, rc, t, &r);
            ck_assert_msg(st != 401 && !scope_refused(&r), "%s %s with %s: %ld %s", rc->method,
                          rc->path, grant[g], st, r.body);
            hresp_free(&r);
        }
    }
    penv_stop(&e);
}
END_TEST

START_TEST(batch_needs_each_ops_scope)
{
    penv e;
    start(&e, NULL, NULL);
    char admin[TOK_MAX], rd[TOK_MAX], rw[TOK_MAX];
    tok("{\"scope\":\"rstmdb:admin\"}", admin);
    admin_setup(&e, admin);
    tok("{\"scope\":\"rstmdb:read\"}", rd);
    tok("{\"scope\":\"rstmdb:read rstmdb:write\"}", rw);
    const char *b = "{\"mode\":\"best_effort\",\"ops\":[{\"op\":\"GET_INSTANCE\",\"params\":"
                    "{\"instance_id\":\"a-1\"}},{\"op\":\"APPLY_EVENT\",\"params\":"
                    "{\"instance_id\":\"a-1\",\"event\":\"GO\"}}]}";
    hresp r;
    call(&e, "POST", "/v1/batch", b, rd, &r);
    ck_assert_msg(scope_refused(&r), "%ld %s", r.status, r.body);
    ck_assert_ptr_nonnull(strstr(r.body, "rstmdb:write"));
    hresp_free(&r);
    ck_assert_int_eq(call(&e, "POST", "/v1/batch", b, rw, NULL), 200);
    /* An op the token's classes do not name (nested BATCH, WAL_READ) needs admin. */
    const char *nested = "{\"ops\":[{\"op\":\"WAL_STATS\",\"params\":{}}]}";
    call(&e, "POST", "/v1/batch", nested, rw, &r);
    ck_assert(scope_refused(&r));
    hresp_free(&r);
    ck_assert_int_eq(call(&e, "POST", "/v1/batch", nested, admin, NULL), 200);
    penv_stop(&e);
}
END_TEST

/* ---- resource limits ---------------------------------------------------------- */

START_TEST(instance_and_machine_limits)
{
    penv e;
    start(&e, NULL, NULL);
    char admin[TOK_MAX], lim[TOK_MAX], mach[TOK_MAX];
    tok("{\"scope\":\"rstmdb:admin\"}", admin);
    admin_setup(&e, admin);
    tok("{\"sub\":\"u\",\"scope\":\"rstmdb:read rstmdb:write rstmdb:watch\","
        "\"rstmdb\":{\"instances\":[\"a-*\",\"z\"],\"machines\":[\"m\"]}}",
        lim);
    tok("{\"sub\":\"v\",\"scope\":\"rstmdb:read rstmdb:write rstmdb:watch\","
        "\"rstmdb\":{\"machines\":[\"m\"]}}",
        mach);
    hresp r;
    /* The machine of a-2 is n: found by the proxy (GET_INSTANCE), not the request. */
    ck_assert_int_eq(call(&e, "GET", "/v1/instances/a-1", NULL, lim, NULL), 200);
    call(&e, "GET", "/v1/instances/a-2", NULL, lim, &r);
    ck_assert_msg(scope_refused(&r), "%ld %s", r.status, r.body);
    ck_assert_ptr_nonnull(strstr(r.body, "machine \\\"n\\\""));
    hresp_free(&r);
    ck_assert(call(&e, "GET", "/v1/instances/b-1", NULL, lim, &r) == 403 && scope_refused(&r));
    hresp_free(&r);
    ck_assert_int_eq(call(&e, "POST", "/v1/instances/a-1/events", "{\"event\":\"GO\"}", lim, NULL),
                     200);
    ck_assert_int_eq(call(&e, "POST", "/v1/instances/a-2/events", "{\"event\":\"GO\"}", lim, NULL),
                     403);
    ck_assert_int_eq(call(&e, "DELETE", "/v1/instances/b-1", NULL, lim, NULL), 403);
    /* An unknown instance inside the limits: the server's 404, through the lookup. */
    ck_assert_int_eq(call(&e, "GET", "/v1/instances/a-none", NULL, lim, NULL), 404);
    /* CREATE: the id must be inside instances, the machine inside machines. */
    ck_assert_int_eq(call(&e, "POST", "/v1/instances",
                          "{\"machine\":\"m\",\"version\":1,\"instance_id\":\"a-9\"}", lim, NULL),
                     201);
    ck_assert_int_eq(call(&e, "POST", "/v1/instances",
                          "{\"machine\":\"n\",\"version\":1,\"instance_id\":\"a-8\"}", lim, NULL),
                     403);
    ck_assert_int_eq(
        call(&e, "POST", "/v1/instances", "{\"machine\":\"m\",\"version\":1}", lim, NULL), 403);
    ck_assert_int_eq(call(&e, "POST", "/v1/instances",
                          "{\"machine\":\"m\",\"version\":1,\"instance_id\":\"b-9\"}", lim, NULL),
                     403);
    ck_assert_int_eq(
        call(&e, "POST", "/v1/instances", "{\"machine\":\"m\",\"version\":1}", mach, NULL), 201);
    /* LIST: refused under an instances limit; a machine inside the machines limit. */
    ck_assert_int_eq(call(&e, "GET", "/v1/instances?machine=m", NULL, lim, NULL), 403);
    ck_assert_int_eq(call(&e, "GET", "/v1/instances", NULL, mach, NULL), 403);
    ck_assert_int_eq(call(&e, "GET", "/v1/instances?machine=n", NULL, mach, NULL), 403);
    ck_assert_int_eq(call(&e, "GET", "/v1/instances?machine=m", NULL, mach, NULL), 200);
    /* Machines by path. */
    ck_assert_int_eq(call(&e, "GET", "/v1/machines/m/versions/1", NULL, mach, NULL), 200);
    ck_assert_int_eq(call(&e, "GET", "/v1/machines/n/versions/1", NULL, mach, NULL), 403);
    /* BATCH: every op inside the limits. */
    const char *ok = "{\"ops\":[{\"op\":\"GET_INSTANCE\",\"params\":{\"instance_id\":\"a-1\"}}]}";
    const char *bad = "{\"ops\":[{\"op\":\"GET_INSTANCE\",\"params\":{\"instance_id\":\"a-1\"}},"
                      "{\"op\":\"GET_INSTANCE\",\"params\":{\"instance_id\":\"b-1\"}}]}";
    const char *badm = "{\"ops\":[{\"op\":\"APPLY_EVENT\",\"params\":{\"instance_id\":\"a-2\","
                       "\"event\":\"GO\"}}]}";
    ck_assert_int_eq(call(&e, "POST", "/v1/batch", ok, lim, NULL), 200);
    ck_assert_int_eq(call(&e, "POST", "/v1/batch", bad, lim, NULL), 403);
    ck_assert_int_eq(call(&e, "POST", "/v1/batch", badm, mach, NULL), 403);
    /* The instance a-2 was not changed by any refused call. */
    call(&e, "GET", "/v1/instances/a-2", NULL, admin, &r);
    ck_assert_ptr_nonnull(strstr(r.body, "\"state\":\"s0\""));
    hresp_free(&r);
    /* Streams. */
    ck_assert_int_eq(stream_with(&e, "/v1/instances/a-1/watch", lim, 400), 200);
    ck_assert_int_eq(stream_with(&e, "/v1/instances/a-2/watch", lim, 400), 403);
    ck_assert_int_eq(stream_with(&e, "/v1/instances/b-1/watch", lim, 400), 403);
    ck_assert_int_eq(stream_with(&e, "/v1/watch", mach, 400), 403);
    ck_assert_int_eq(stream_with(&e, "/v1/watch?machines=m,n", mach, 400), 403);
    ck_assert_int_eq(stream_with(&e, "/v1/watch?machines=m", mach, 400), 200);
    penv_stop(&e);
}
END_TEST

START_TEST(watch_all_filters_by_instances)
{
    penv e;
    start(&e, NULL, NULL);
    char admin[TOK_MAX], lim[TOK_MAX];
    tok("{\"scope\":\"rstmdb:admin\"}", admin);
    admin_setup(&e, admin);
    tok("{\"sub\":\"w\",\"scope\":\"rstmdb:watch\",\"rstmdb\":{\"instances\":[\"a-*\"]}}", lim);
    /* A stream in a child; events applied meanwhile by admin. */
    char body[8192] = "";
    pid_t pid = fork();
    if (pid == 0) {
        usleep(500 * 1000);
        penv e2 = e;
        e2.c = curl_easy_init();
        call(&e2, "POST", "/v1/instances/b-1/events", "{\"event\":\"GO\"}", admin, NULL);
        call(&e2, "POST", "/v1/instances/a-1/events", "{\"event\":\"GO\"}", admin, NULL);
        call(&e2, "POST", "/v1/instances/a-2/events", "{\"event\":\"GO\"}", admin, NULL);
        call(&e2, "POST", "/v1/instances/b-1/events", "{\"event\":\"BACK\"}", admin, NULL);
        _exit(0);
    }
    char auth[TOK_MAX + 32];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", lim);
    const char *h[] = {auth, NULL};
    ck_assert_int_eq(stream_status(&e, "/v1/watch", h, body, sizeof body, 2500), 200);
    waitpid(pid, NULL, 0);
    ck_assert_msg(strstr(body, "\"instance_id\":\"a-1\"") != NULL, "%s", body);
    ck_assert_msg(strstr(body, "\"instance_id\":\"a-2\"") != NULL, "%s", body);
    ck_assert_msg(strstr(body, "\"instance_id\":\"b-1\"") == NULL, "%s", body);
    penv_stop(&e);
}
END_TEST

/* ---- where the token comes from, and the logs --------------------------------- */

START_TEST(cookie_and_access_token)
{
    char log[] = "/tmp/jwt-log-XXXXXX";
    int fd = mkstemp(log);
    ck_assert_int_ge(fd, 0);
    close(fd);
    penv e;
    const char *extra[] = {"--log-level", "info", NULL};
    start(&e, extra, log);
    char t[TOK_MAX], cookie[TOK_MAX + 64], path[TOK_MAX + 64];
    tok("{\"sub\":\"c\",\"scope\":\"rstmdb:read rstmdb:watch\"}", t);
    snprintf(cookie, sizeof cookie, "Cookie: theme=dark; rstmdb_token=%s; x=1", t);
    const char *ch[] = {cookie, NULL};
    hresp r;
    http_req(&e, NULL, "GET", "/v1/ping", NULL, ch, &r);
    ck_assert_int_eq(r.status, 200);
    hresp_free(&r);
    /* First found wins, strictly: a bad header is not rescued by the cookie. */
    const char *both[] = {cookie, "Authorization: Bearer not.a.token", NULL};
    http_req(&e, NULL, "GET", "/v1/ping", NULL, both, &r);
    ck_assert_int_eq(r.status, 401);
    char w[128];
    ck_assert(hresp_header(&r, "WWW-Authenticate", w, sizeof w));
    ck_assert_str_eq(w, "Bearer error=\"invalid_token\"");
    ck_assert(hresp_json(&r, "code", w, sizeof w));
    ck_assert_str_eq(w, "AUTH_FAILED");
    hresp_free(&r);
    /* ?access_token= on the streams only. */
    snprintf(path, sizeof path, "/v1/watch?access_token=%s", t);
    ck_assert_int_eq(stream_with(&e, path, NULL, 400), 200);
    snprintf(path, sizeof path, "/v1/ping?access_token=%s", t);
    ck_assert_int_eq(call(&e, "GET", path, NULL, NULL, &r), 400);
    ck_assert(hresp_json(&r, "code", w, sizeof w));
    ck_assert_str_eq(w, "BAD_REQUEST");
    hresp_free(&r);
    /* No credentials at all: a plain challenge. */
    ck_assert_int_eq(call(&e, "GET", "/v1/ping", NULL, NULL, &r), 401);
    ck_assert(hresp_header(&r, "WWW-Authenticate", w, sizeof w));
    ck_assert_str_eq(w, "Bearer");
    ck_assert(hresp_json(&r, "code", w, sizeof w));
    ck_assert_str_eq(w, "UNAUTHORIZED");
    hresp_free(&r);
    penv_stop(&e);
    const char *text = slurp_file(log);
    ck_assert_msg(strstr(text, "access_token=[redacted]") != NULL, "%s", text);
    /* The signature part never reaches the log, by any route. */
    const char *sig = strrchr(t, '.') + 1;
    ck_assert_ptr_null(strstr(text, sig));
    unlink(log);
}
END_TEST

START_TEST(stream_ends_at_exp)
{
    penv e;
    start(&e, NULL, NULL);
    char t[TOK_MAX], body[4096] = "";
    mint("ec1", "ES256", "{\"sub\":\"x\",\"scope\":\"rstmdb:watch\"}", 2, t);
    char auth[TOK_MAX + 32];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", t);
    const char *h[] = {auth, NULL};
    time_t t0 = time(NULL);
    ck_assert_int_eq(stream_status(&e, "/v1/watch", h, body, sizeof body, 8000), 200);
    ck_assert_msg(time(NULL) - t0 < 7, "the stream did not end at exp");
    ck_assert_msg(strstr(body, "event: error") && strstr(body, "\"code\":\"TOKEN_EXPIRED\""), "%s",
                  body);
    penv_stop(&e);
}
END_TEST

/* ---- SIGHUP key rotation -------------------------------------------------------- */

static void write_keys(const char *path, const char *kid_only, const char *raw)
{
    char src[300];
    snprintf(src, sizeof src, "%s/jwks.json", keydir);
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    if (raw) {
        fputs(raw, f);
    } else {
        cJSON *set = cJSON_Parse(slurp_file(src));
        cJSON *keys = cJSON_GetObjectItem(set, "keys");
        for (int i = cJSON_GetArraySize(keys) - 1; i >= 0; i--) {
            cJSON *kid = cJSON_GetObjectItem(cJSON_GetArrayItem(keys, i), "kid");
            if (!cJSON_IsString(kid) || strcmp(kid->valuestring, kid_only) != 0)
                cJSON_DeleteItemFromArray(keys, i);
        }
        char *s = cJSON_PrintUnformatted(set);
        fputs(s, f);
        free(s);
        cJSON_Delete(set);
    }
    fclose(f);
    ck_assert_int_eq(rename(tmp, path), 0);
}

static void hup_and_wait(penv *e, const char *log, size_t nth)
{
    kill(e->proxy.pid, SIGHUP);
    for (int i = 0; i < 100; i++) {
        size_t n = 0;
        for (const char *p = slurp_file(log); (p = strstr(p, "reload")) != NULL; p++)
            n++;
        if (n >= nth)
            return;
        usleep(20000);
    }
    ck_abort_msg("no reload line in the log");
}

START_TEST(sighup_rotates_keys)
{
    char dir[] = "/tmp/jwt-rot-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char keys[300], log[300];
    snprintf(keys, sizeof keys, "%s/keys.json", dir);
    snprintf(log, sizeof log, "%s/proxy.log", dir);
    write_keys(keys, "ec1", NULL);
    penv e;
    const char *args[] = {"--jwt-keys-file", keys, "--log-level", "info", NULL};
    penv_start_logged(&e, NULL, args, log);
    char es[TOK_MAX], ed[TOK_MAX];
    mint("ec1", "ES256", "{\"scope\":\"rstmdb:read\"}", 600, es);
    mint("ed1", "EdDSA", "{\"scope\":\"rstmdb:read\"}", 600, ed);
    ck_assert_int_eq(call(&e, "GET", "/v1/ping", NULL, es, NULL), 200);
    ck_assert_int_eq(call(&e, "GET", "/v1/ping", NULL, ed, NULL), 401);
    write_keys(keys, "ed1", NULL);
    hup_and_wait(&e, log, 1);
    ck_assert_int_eq(call(&e, "GET", "/v1/ping", NULL, es, NULL), 401);
    ck_assert_int_eq(call(&e, "GET", "/v1/ping", NULL, ed, NULL), 200);
    /* A broken set is refused: the running keys stay, and the log says why. */
    write_keys(keys, NULL, "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AA\"}]}");
    hup_and_wait(&e, log, 2);
    ck_assert_int_eq(call(&e, "GET", "/v1/ping", NULL, ed, NULL), 200);
    const char *text = slurp_file(log);
    ck_assert_msg(strstr(text, "reload refused") && strstr(text, "key 0"), "%s", text);
    penv_stop(&e);
}
END_TEST

/* ---- rate limits ------------------------------------------------------------------ */

START_TEST(rate_limits)
{
    penv e;
    const char *extra[] = {"--rate-limit-rps",
                           "1",
                           "--rate-limit-burst",
                           "2",
                           "--sse-max-streams-per-caller",
                           "1",
                           NULL};
    start(&e, extra, NULL);
    char a[TOK_MAX], b[TOK_MAX];
    tok("{\"sub\":\"alice\",\"scope\":\"rstmdb:read rstmdb:watch\"}", a);
    tok("{\"sub\":\"bob\",\"scope\":\"rstmdb:read rstmdb:watch\"}", b);
    /* penv_start's readiness probes were /readyz: never limited. */
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(call(&e, "GET", "/healthz", NULL, NULL, NULL), 200);
    ck_assert_int_eq(call(&e, "GET", "/v1/ping", NULL, a, NULL), 200);
    ck_assert_int_eq(call(&e, "GET", "/v1/ping", NULL, a, NULL), 200);
    hresp r;
    ck_assert_int_eq(call(&e, "GET", "/v1/ping", NULL, a, &r), 429);
    char v[64];
    ck_assert(hresp_header(&r, "Retry-After", v, sizeof v));
    ck_assert_int_ge(atoi(v), 1);
    ck_assert(hresp_json(&r, "code", v, sizeof v));
    ck_assert_str_eq(v, "RATE_LIMITED");
    hresp_free(&r);
    /* Another caller has its own bucket. */
    ck_assert_int_eq(call(&e, "GET", "/v1/ping", NULL, b, NULL), 200);
    /* The bucket refills at rate_limit_rps. */
    sleep(2);
    ck_assert_int_eq(call(&e, "GET", "/v1/ping", NULL, a, NULL), 200);
    /* One stream per caller: a second one of alice's is 429 while the first lives. */
    pid_t pid = fork();
    if (pid == 0) {
        penv e2 = e;
        e2.c = NULL;
        stream_with(&e2, "/v1/watch", a, 2500);
        _exit(0);
    }
    usleep(800 * 1000);
    sleep(1); /* a fresh token for the second stream */
    ck_assert_int_eq(stream_with(&e, "/v1/watch", a, 300), 429);
    waitpid(pid, NULL, 0);
    sleep(1);
    ck_assert_int_eq(stream_with(&e, "/v1/watch", a, 300), 200);
    penv_stop(&e);
}
END_TEST

/* ---- secrets from files ----------------------------------------------------------- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(secrets_from_files)
{
    char dir[] = "/tmp/jwt-creds-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char p[300], log[300];
    snprintf(p, sizeof p, "%s/tokens", dir);
    write_file(p, "# services\nsvc-one\n\n  svc-two  \n");
    snprintf(p, sizeof p, "%s/upstream", dir);
    write_file(p, "up-secret\n");
    snprintf(log, sizeof log, "%s/proxy.log", dir);
    setenv("CREDENTIALS_DIRECTORY", dir, 1);
    penv e;
    const char *testd[] = {"--token", "up-secret", NULL};
    const char *args[] = {
        "--token-file", "tokens", "--upstream-token-file", "upstream", "--log-level", "info", NULL};
    penv_start_logged(&e, testd, args, log); /* ready: AUTH upstream worked */
    unsetenv("CREDENTIALS_DIRECTORY");
    ck_assert_int_eq(call(&e, "GET", "/v1/ping", NULL, "svc-one", NULL), 200);
    ck_assert_int_eq(call(&e, "GET", "/v1/ping", NULL, "svc-two", NULL), 200);
    ck_assert_int_eq(call(&e, "GET", "/v1/ping", NULL, "svc-three", NULL), 401);
    ck_assert_int_eq(call(&e, "GET", "/v1/info", NULL, "svc-one", NULL), 200);
    snprintf(p, sizeof p, "%s/tokens", dir);
    write_file(p, "svc-three\n");
    hup_and_wait(&e, log, 1);
    ck_assert_int_eq(call(&e, "GET", "/v1/ping", NULL, "svc-three", NULL), 200);
    ck_assert_int_eq(call(&e, "GET", "/v1/ping", NULL, "svc-one", NULL), 401);
    const char *text = slurp_file(log);
    ck_assert_ptr_null(strstr(text, "svc-three"));
    ck_assert_ptr_null(strstr(text, "up-secret"));
    penv_stop(&e);
    /* A missing file is a configuration error naming the key. */
    char err[2048];
    const char *bad[] = {"--check-config", "--token-file", "/nonexistent/tokens", NULL};
    ck_assert_int_eq(run_proxy_once_stderr(bad, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "token_file") != NULL, "%s", err);
}
END_TEST

/* ---- bad input ---------------------------------------------------------------------- */

START_TEST(bad_tokens_are_401_never_5xx)
{
    penv e;
    /* Room for a header larger than any token (MHD answers 431 past its memory). */
    const char *room[] = {"--connection-memory-bytes", "65536", NULL};
    start(&e, room, NULL);
    char t[TOK_MAX];
    const char *cases[] = {
        "{\"scope\":[\"rstmdb:admin\"]}",                           /* non-string scope */
        "{\"scope\":\"rstmdb:read\",\"rstmdb\":{\"instances\":7}}", /* bad limits */
        "{\"scope\":\"rstmdb:read\",\"x\":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]}", /* deep */
        "{\"scope\":\"rstmdb:read\",\"sub\":12}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tok(cases[i], t);
        hresp r;
        ck_assert_msg(call(&e, "GET", "/v1/ping", NULL, t, &r) == 401, "%s: %ld", cases[i],
                      r.status);
        hresp_free(&r);
    }
    /* Huge claims: over the size cap, refused unparsed. */
    char *big = malloc(TOK_MAX);
    char claims[7000];
    snprintf(claims, sizeof claims, "{\"scope\":\"rstmdb:read\",\"pad\":\"%06500d\"}", 0);
    tok(claims, big);
    ck_assert_uint_gt(strlen(big), JWT_MAX);
    ck_assert_int_eq(call(&e, "GET", "/v1/ping", NULL, big, NULL), 401);
    free(big);
    /* alg none, minted by python3-jwt. */
    mint("", "none", "{\"scope\":\"rstmdb:admin\"}", 600, t);
    ck_assert_int_eq(call(&e, "GET", "/v1/ping", NULL, t, NULL), 401);
    /* A cookie larger than any token. */
    static char cookie[20000];
    memset(cookie, 0, sizeof cookie);
    strcpy(cookie, "Cookie: rstmdb_token=");
    memset(cookie + strlen(cookie), 'a', JWT_MAX + 300);
    const char *ch[] = {cookie, NULL};
    hresp r;
    http_req(&e, NULL, "GET", "/v1/ping", NULL, ch, &r);
    ck_assert_msg(r.status == 401 && strstr(r.body, "longer than"), "%ld %s", r.status, r.body);
    hresp_free(&r);
    penv_stop(&e);

    /* A JWK Set with a broken key: refused at start, naming the key, exit 2. */
    char dir[] = "/tmp/jwt-bad-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char p[300], err[2048];
    snprintf(p, sizeof p, "%s/keys.json", dir);
    write_file(p,
               "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"},"
               "{\"kty\":\"RSA\",\"kid\":\"r\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}");
    const char *bad[] = {"--check-config", "--jwt-keys-file", p, NULL};
    ck_assert_int_eq(run_proxy_once_stderr(bad, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "key 1") && strstr(err, "jwt_keys_file"), "%s", err);
}
END_TEST

START_TEST(cors_credentials)
{
    penv e;
    const char *extra[] = {"--cors-origin", "https://app.example", NULL};
    start(&e, extra, NULL);
    const char *o[] = {"Origin: https://app.example", NULL};
    hresp r;
    http_req(&e, NULL, "GET", "/healthz", NULL, o, &r);
    char v[128];
    ck_assert(hresp_header(&r, "Access-Control-Allow-Credentials", v, sizeof v));
    ck_assert_str_eq(v, "true");
    ck_assert(hresp_header(&r, "Access-Control-Allow-Origin", v, sizeof v));
    ck_assert_str_eq(v, "https://app.example");
    hresp_free(&r);
    penv_stop(&e);
    const char *any[] = {"--cors-origin", "*", NULL};
    start(&e, any, NULL);
    http_req(&e, NULL, "GET", "/healthz", NULL, o, &r);
    ck_assert(hresp_header(&r, "Access-Control-Allow-Origin", v, sizeof v));
    ck_assert(!hresp_header(&r, "Access-Control-Allow-Credentials", v, sizeof v));
    hresp_free(&r);
    penv_stop(&e);
}
END_TEST

int main(void)
{
    snprintf(keydir, sizeof keydir, "/tmp/jwt-keys-XXXXXX");
    if (mkdtemp(keydir) == NULL)
        return 1;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' '%s' keys '%s'", RSTMDB_PYTHON3, JWT_MINT, keydir);
    if (system(cmd) != 0) {
        fprintf(stderr, "jwt_mint.py keys failed (python3-jwt missing?)\n");
        return 1;
    }
    snprintf(jwks_path, sizeof jwks_path, "%s/jwks.json", keydir);
    Suite *s = suite_create("jwt");
    TCase *tc = tcase_create("jwt");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, every_route_needs_its_scope);
    tcase_add_test(tc, batch_needs_each_ops_scope);
    tcase_add_test(tc, instance_and_machine_limits);
    tcase_add_test(tc, watch_all_filters_by_instances);
    tcase_add_test(tc, cookie_and_access_token);
    tcase_add_test(tc, stream_ends_at_exp);
    tcase_add_test(tc, sighup_rotates_keys);
    tcase_add_test(tc, rate_limits);
    tcase_add_test(tc, secrets_from_files);
    tcase_add_test(tc, bad_tokens_are_401_never_5xx);
    tcase_add_test(tc, cors_credentials);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", keydir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", keydir);
    return failed ? 1 : 0;
}
