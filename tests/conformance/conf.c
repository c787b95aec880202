/* conf.c: the conformance harness (see conf.h): picks the target server,
 * starts and stops testd processes, sends requests and matches responses.
 * It knows nothing about individual ops; the test files hold every expectation.
 */
#include "conf.h"

#include "spawn.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Check's unchecked fixtures take no argument, so the target chosen in the
 * fixture must live in file scope; it is written once in cf_setup (before
 * any test forks) and only read afterwards. */
static struct {
    bool testd;
    char addr[80];
    const char *token; /* the main target requires auth with this token */
    bool have_auth;
    char auth_addr[80];
    const char *auth_token;
    bool have_limit;
    char limit_addr[80];
    bool have_smallseg;
    char smallseg_addr[80];
    char version[32]; /* the main target's HELLO server_version */
    spawned main_p, auth_p, limit_p, smallseg_p;
    bool main_up, auth_up, limit_up, smallseg_up;
} cf_env;

static void cf_die(const char *what)
{
    fprintf(stderr, "conformance: %s\n", what);
    exit(1);
}

/* Start a testd with `args`, plus --compat $RSTMDB_TESTD_COMPAT when set. */
static int cf_spawn(spawned *p, const char *const args[])
{
    const char *compat = getenv("RSTMDB_TESTD_COMPAT");
    const char *all[16];
    size_t n = 0;
    for (size_t i = 0; args && args[i] && n < 12; i++)
        all[n++] = args[i];
    if (compat != NULL && compat[0] != '\0') {
        all[n++] = "--compat";
        all[n++] = compat;
    }
    all[n] = NULL;
    return spawn_testd(p, all);
}

/* HELLO on a fresh connection: the target's server_version into cf_env. */
static void cf_probe_version(void)
{
    rcpx *c = NULL;
    rcpx_msg m = {0};
    if (rcpx_connect(&c, cf_env.addr, CF_TIMEOUT_MS) != 0)
        cf_die("cannot connect to the target to read its server_version");
    if (rcpx_send_json(c, "{\"type\":\"request\",\"id\":\"v\",\"op\":\"HELLO\",\"params\":"
                          "{\"protocol_version\":1}}") != 0 ||
        rcpx_read(c, CF_TIMEOUT_MS, &m) != RCPX_OK)
        cf_die("no answer to HELLO from the target");
    cJSON *j = cJSON_ParseWithLength(m.text, m.len);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "result"),
                                                      "server_version");
    if (!cJSON_IsString(v))
        cf_die("the target's HELLO has no server_version");
    snprintf(cf_env.version, sizeof cf_env.version, "%s", v->valuestring);
    cJSON_Delete(j);
    rcpx_msg_clear(&m);
    rcpx_free(c);
}

const char *cf_server_version(void)
{
    return cf_env.version;
}

bool cf_v03(void)
{
    unsigned maj = 0, min = 0;
    if (sscanf(cf_env.version, "%u.%u", &maj, &min) != 2)
        return false;
    return maj > 0 || min >= 3;
}

void cf_setup(int need)
{
    const char *addr = getenv("RSTMDB_TEST_ADDR");
    if (addr != NULL && addr[0] != '\0') {
        cf_env.testd = false;
        snprintf(cf_env.addr, sizeof cf_env.addr, "%s", addr);
        const char *tok = getenv("RSTMDB_TEST_TOKEN");
        if (tok != NULL && tok[0] != '\0') {
            cf_env.token = tok;
            cf_env.have_auth = true;
            snprintf(cf_env.auth_addr, sizeof cf_env.auth_addr, "%s", addr);
            cf_env.auth_token = tok;
        }
        cf_probe_version();
        return;
    }
    cf_env.testd = true;
    if (cf_spawn(&cf_env.main_p, NULL) != 0)
        cf_die("could not start rstmdb-testd (is it built? RSTMDB_TESTD_BIN overrides the path)");
    cf_env.main_up = true;
    snprintf(cf_env.addr, sizeof cf_env.addr, "%s", cf_env.main_p.addr);
    if (need & CF_NEED_AUTH) {
        static const char *const args[] = {"--token", "secret", NULL};
        if (cf_spawn(&cf_env.auth_p, args) != 0)
            cf_die("could not start rstmdb-testd --token secret");
        cf_env.auth_up = true;
        cf_env.have_auth = true;
        snprintf(cf_env.auth_addr, sizeof cf_env.auth_addr, "%s", cf_env.auth_p.addr);
        cf_env.auth_token = "secret";
    }
    if (need & CF_NEED_LIMIT) {
        static const char *const args[] = {"--max-machine-versions", "2", NULL};
        if (cf_spawn(&cf_env.limit_p, args) != 0)
            cf_die("could not start rstmdb-testd --max-machine-versions 2");
        cf_env.limit_up = true;
        cf_env.have_limit = true;
        snprintf(cf_env.limit_addr, sizeof cf_env.limit_addr, "%s", cf_env.limit_p.addr);
    }
    if (need & CF_NEED_SMALLSEG) {
        static const char *const args[] = {"--wal-segment-bytes", "1024", NULL};
        if (cf_spawn(&cf_env.smallseg_p, args) != 0)
            cf_die("could not start rstmdb-testd --wal-segment-bytes 1024");
        cf_env.smallseg_up = true;
        cf_env.have_smallseg = true;
        snprintf(cf_env.smallseg_addr, sizeof cf_env.smallseg_addr, "%s", cf_env.smallseg_p.addr);
    }
    cf_probe_version();
}

void cf_teardown(void)
{
    if (cf_env.main_up)
        spawn_stop(&cf_env.main_p, 2000);
    if (cf_env.auth_up)
        spawn_stop(&cf_env.auth_p, 2000);
    if (cf_env.limit_up)
        spawn_stop(&cf_env.limit_p, 2000);
    if (cf_env.smallseg_up)
        spawn_stop(&cf_env.smallseg_p, 2000);
    cf_env.main_up = cf_env.auth_up = cf_env.limit_up = cf_env.smallseg_up = false;
}

bool cf_is_testd(void)
{
    return cf_env.testd;
}

bool cf_exclusive(void)
{
    const char *x = getenv("RSTMDB_TEST_EXCLUSIVE");
    return cf_env.testd || (x != NULL && strcmp(x, "1") == 0);
}

const char *cf_addr(void)
{
    return cf_env.addr;
}

static cf_conn *cf_connect(const char *file, int line, const char *addr)
{
    cf_conn *k = calloc(1, sizeof *k);
    ck_assert_msg(k != NULL, "%s:%d: out of memory", file, line);
    ck_assert_msg(rcpx_connect(&k->rc, addr, CF_TIMEOUT_MS) == 0,
                  "%s:%d: cannot connect to %s (server down or crashed?)", file, line, addr);
    k->next_id = 1;
    return k;
}

static void cf_auth(const char *file, int line, cf_conn *k, const char *token)
{
    const char *p = cf_fmt("{\"method\":\"bearer\",\"token\":\"%s\"}", cf_esc(token));
    cf_ok_at(file, line, k, "AUTH", p, "{\"authenticated\":true}", NULL);
}

cf_conn *cf_open_at(const char *file, int line)
{
    cf_conn *k = cf_connect(file, line, cf_env.addr);
    if (cf_env.token != NULL)
        cf_auth(file, line, k, cf_env.token);
    return k;
}

cf_conn *cf_open_raw_at(const char *file, int line)
{
    return cf_connect(file, line, cf_env.addr);
}

int cf_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

TCase *cf_tcase(const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 60);
    return tc;
}

cf_conn *cf_open_authreq(const char **token)
{
    if (!cf_env.have_auth) {
        fprintf(stderr,
                "SKIP: no auth-required server (set RSTMDB_TEST_TOKEN with RSTMDB_TEST_ADDR)\n");
        return NULL;
    }
    *token = cf_env.auth_token;
    return cf_connect(__FILE__, __LINE__, cf_env.auth_addr);
}

cf_conn *cf_open_limit(void)
{
    if (!cf_env.have_limit) {
        fprintf(stderr, "SKIP: the machine-version limit test runs only against rstmdb-testd\n");
        return NULL;
    }
    return cf_connect(__FILE__, __LINE__, cf_env.limit_addr);
}

cf_conn *cf_open_smallseg(void)
{
    if (!cf_env.have_smallseg) {
        fprintf(stderr, "SKIP: the WAL segment rotation test runs only against rstmdb-testd\n");
        return NULL;
    }
    return cf_connect(__FILE__, __LINE__, cf_env.smallseg_addr);
}

void cf_close(cf_conn *k)
{
    if (k == NULL)
        return;
    for (int i = 0; i < k->nstash; i++)
        rcpx_msg_clear(&k->stash[i]);
    rcpx_free(k->rc);
    free(k);
}

void cf_uniq(char *buf, size_t cap, const char *prefix)
{
    static unsigned counter; /* per process; each forked test has its own pid */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(buf, cap, "%s-%ld-%u-%lx%05lx", prefix, (long)getpid(), ++counter,
             (unsigned long)ts.tv_sec & 0xffffffUL,
             (unsigned long)(ts.tv_nsec / 10000) & 0xfffffUL);
}

const char *cf_fmt(const char *fmt, ...)
{
    static char ring[128][65536];
    static unsigned next;
    char *b = ring[next++ % 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof ring[0], fmt, ap);
    va_end(ap);
    return b;
}

const char *cf_esc(const char *s)
{
    cJSON *j = cJSON_CreateString(s);
    char *t = cJSON_PrintUnformatted(j);
    size_t n = strlen(t);
    t[n - 1] = '\0';
    const char *r = cf_fmt("%s", t + 1);
    cJSON_free(t);
    cJSON_Delete(j);
    return r;
}

const char *cf_short(const char *s)
{
    /* Check caps a failure message (about 4 KiB): keep diagnostics inside it. */
    size_t n = strlen(s);
    if (n <= 900)
        return s;
    return cf_fmt("%.700s...(%zu bytes)...%s", s, n, s + n - 150);
}

uint64_t cf_u64(const char *s)
{
    return strtoull(s, NULL, 10);
}

/* ---- pattern matching ---- */

static bool cf_ishex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

/* Length of the placeholder match at t, or -1. */
static int cf_token_len(char kind, const char *t)
{
    size_t i = 0;
    switch (kind) {
    case 'U': {
        static const int groups[] = {8, 4, 4, 4, 12};
        for (int g = 0; g < 5; g++) {
            for (int j = 0; j < groups[g]; j++, i++)
                if (!cf_ishex(t[i]))
                    return -1;
            if (g < 4 && t[i++] != '-')
                return -1;
        }
        if (t[14] != '4' || strchr("89ab", t[19]) == NULL)
            return -1;
        return 36;
    }
    case 'H':
        for (i = 0; i < 8; i++)
            if (!cf_ishex(t[i]))
                return -1;
        return 8;
    case 'N':
    case 'O': {
        while (isdigit((unsigned char)t[i]))
            i++;
        if (i == 0 || (i > 1 && t[0] == '0') || i > 20)
            return -1;
        if (kind == 'O' && strtoull(t, NULL, 10) < CF_FIRST_OFFSET)
            return -1;
        return (int)i;
    }
    case 'S':
        while (t[i] != '\0' && t[i] != '"') {
            if (t[i] == '\\' && t[i + 1] != '\0')
                i++;
            i++;
        }
        return t[i] == '"' ? (int)i : -1;
    case 'A':
        if (t[0] != '[')
            return -1;
        while (t[i] != '\0' && t[i] != ']')
            i++;
        return t[i] == ']' ? (int)i + 1 : -1;
    default:
        return -1;
    }
}

static bool cf_match_from(const char *t, const char *p, cf_caps *caps)
{
    while (*p != '\0') {
        if (p[0] == '$' && p[1] == '*') {
            /* Any text, shortest first (backtracking). */
            for (const char *u = t;; u++) {
                int saved = caps->n;
                if (cf_match_from(u, p + 2, caps))
                    return true;
                caps->n = saved;
                if (*u == '\0')
                    return false;
            }
        }
        if (p[0] == '$' && p[1] == '$') {
            if (*t != '$')
                return false;
            t++;
            p += 2;
            continue;
        }
        if (p[0] == '$' && p[1] == 'V') {
            size_t n = strlen(cf_env.version);
            if (n == 0 || strncmp(t, cf_env.version, n) != 0)
                return false;
            t += n;
            p += 2;
            continue;
        }
        if (p[0] == '$' && p[1] != '\0') {
            int n = cf_token_len(p[1], t);
            if (n < 0)
                return false;
            if (caps->n < CF_MAX_CAPS) {
                size_t m = (size_t)n < sizeof caps->v[0] - 1 ? (size_t)n : sizeof caps->v[0] - 1;
                memcpy(caps->v[caps->n], t, m);
                caps->v[caps->n][m] = '\0';
                caps->n++;
            }
            t += n;
            p += 2;
            continue;
        }
        if (*t != *p)
            return false;
        t++;
        p++;
    }
    return *t == '\0';
}

bool cf_match(const char *text, const char *pat, cf_caps *caps)
{
    cf_caps local;
    if (caps == NULL)
        caps = &local;
    caps->n = 0;
    return cf_match_from(text, pat, caps);
}

void cf_assert_match_at(const char *file, int line, const char *text, const char *pat,
                        cf_caps *caps)
{
    bool ok = cf_match(text, pat, caps);
    ck_assert_msg(ok, "%s:%d: mismatch\n  got:  %s\n  want: %s", file, line, cf_short(text),
                  cf_short(pat));
}

/* ---- requests ---- */

static void cf_send_request(const char *file, int line, cf_conn *k, const char *op,
                            const char *params)
{
    snprintf(k->last_id, sizeof k->last_id, "%u", k->next_id++);
    const char *req;
    if (params == NULL)
        req = cf_fmt("{\"type\":\"request\",\"id\":\"%s\",\"op\":\"%s\"}", k->last_id, op);
    else
        req = cf_fmt("{\"type\":\"request\",\"id\":\"%s\",\"op\":\"%s\",\"params\":%s}", k->last_id,
                     op, params);
    ck_assert_msg(rcpx_send_json(k->rc, req) == 0, "%s:%d: send %s: %s", file, line, op,
                  rcpx_errstr(k->rc));
}

static bool cf_is_event(const char *text)
{
    return strncmp(text, "{\"type\":\"event\"", 15) == 0;
}

char *cf_call_at(const char *file, int line, cf_conn *k, const char *op, const char *params)
{
    cf_send_request(file, line, k, op, params);
    for (;;) {
        rcpx_msg m;
        rcpx_rc rc = rcpx_read(k->rc, CF_TIMEOUT_MS, &m);
        ck_assert_msg(rc == RCPX_OK, "%s:%d: %s: no response: %s", file, line, op,
                      rcpx_errstr(k->rc));
        if (cf_is_event(m.text)) {
            ck_assert_msg(k->nstash < 64, "%s:%d: more than 64 unread events", file, line);
            k->stash[k->nstash++] = m;
            continue;
        }
        const char *want = cf_fmt("{\"type\":\"response\",\"id\":\"%s\",", k->last_id);
        ck_assert_msg(strncmp(m.text, want, strlen(want)) == 0,
                      "%s:%d: %s: response does not start with %s: %s", file, line, op, want,
                      m.text);
        return m.text;
    }
}

cJSON *cf_call_json_at(const char *file, int line, cf_conn *k, const char *op, const char *params)
{
    char *t = cf_call_at(file, line, k, op, params);
    cJSON *j = cJSON_Parse(t);
    ck_assert_msg(j != NULL, "%s:%d: %s: response is not JSON: %s", file, line, op, t);
    free(t);
    return j;
}

void cf_ok_at(const char *file, int line, cf_conn *k, const char *op, const char *params,
              const char *result_pat, cf_caps *caps)
{
    char *t = cf_call_at(file, line, k, op, params);
    const char *pat =
        cf_fmt("{\"type\":\"response\",\"id\":\"%s\",\"status\":\"ok\",\"result\":%s}", k->last_id,
               result_pat);
    bool ok = cf_match(t, pat, caps);
    ck_assert_msg(ok, "%s:%d: %s %s\n  got:  %s\n  want: %s", file, line, op,
                  cf_short(params ? params : "(no params)"), cf_short(t), cf_short(pat));
    free(t);
}

void cf_errp_at(const char *file, int line, cf_conn *k, const char *op, const char *params,
                const char *code, const char *message_pat, bool retryable, cf_caps *caps)
{
    char *t = cf_call_at(file, line, k, op, params);
    const char *pat = cf_fmt("{\"type\":\"response\",\"id\":\"%s\",\"status\":\"error\",\"error\":"
                             "{\"code\":\"%s\",\"message\":\"%s\",\"retryable\":%s}}",
                             k->last_id, code, message_pat, retryable ? "true" : "false");
    bool ok = cf_match(t, pat, caps);
    ck_assert_msg(ok, "%s:%d: %s %s\n  got:  %s\n  want: %s", file, line, op,
                  cf_short(params ? params : "(no params)"), cf_short(t), cf_short(pat));
    free(t);
}

void cf_err_at(const char *file, int line, cf_conn *k, const char *op, const char *params,
               const char *code, const char *message, bool retryable)
{
    /* Escape, then protect '$' from the pattern language. */
    const char *e = cf_esc(message);
    char *q = malloc(strlen(e) * 2 + 1), *w = q;
    ck_assert(q != NULL);
    for (const char *r = e; *r; r++) {
        if (*r == '$')
            *w++ = '$';
        *w++ = *r;
    }
    *w = '\0';
    cf_errp_at(file, line, k, op, params, code, q, retryable, NULL);
    free(q);
}

char *cf_event_at(const char *file, int line, cf_conn *k)
{
    if (k->nstash > 0) {
        char *t = k->stash[0].text;
        memmove(&k->stash[0], &k->stash[1], (size_t)(k->nstash - 1) * sizeof k->stash[0]);
        k->nstash--;
        return t;
    }
    rcpx_msg m;
    rcpx_rc rc = rcpx_read(k->rc, CF_TIMEOUT_MS, &m);
    ck_assert_msg(rc == RCPX_OK, "%s:%d: no event: %s", file, line, rcpx_errstr(k->rc));
    ck_assert_msg(cf_is_event(m.text), "%s:%d: expected an event, got: %s", file, line, m.text);
    return m.text;
}

void cf_event_match_at(const char *file, int line, cf_conn *k, const char *pat, cf_caps *caps)
{
    char *t = cf_event_at(file, line, k);
    bool ok = cf_match(t, pat, caps);
    ck_assert_msg(ok, "%s:%d: event\n  got:  %s\n  want: %s", file, line, cf_short(t),
                  cf_short(pat));
    free(t);
}

void cf_put_machine_at(const char *file, int line, cf_conn *k, const char *name, const char *def)
{
    const char *p = cf_fmt("{\"machine\":\"%s\",\"version\":1,\"definition\":%s}", name, def);
    cf_ok_at(
        file, line, k, "PUT_MACHINE", p,
        cf_fmt("{\"created\":true,\"machine\":\"%s\",\"stored_checksum\":\"$H\",\"version\":1}",
               name),
        NULL);
}

uint64_t cf_create_at(const char *file, int line, cf_conn *k, const char *id, const char *machine,
                      const char *ctx)
{
    const char *p =
        ctx ? cf_fmt("{\"instance_id\":\"%s\",\"machine\":\"%s\",\"version\":1,\"initial_ctx\":%s}",
                     id, machine, ctx)
            : cf_fmt("{\"instance_id\":\"%s\",\"machine\":\"%s\",\"version\":1}", id, machine);
    cf_caps caps;
    char *t = cf_call_at(file, line, k, "CREATE_INSTANCE", p);
    const char *pat = cf_fmt("{\"type\":\"response\",\"id\":\"%s\",\"status\":\"ok\",\"result\":"
                             "{\"instance_id\":\"%s\",\"state\":\"$S\",\"wal_offset\":$O}}",
                             k->last_id, id);
    bool ok = cf_match(t, pat, &caps);
    ck_assert_msg(ok, "%s:%d: CREATE_INSTANCE %s\n  got:  %s\n  want: %s", file, line, cf_short(p),
                  cf_short(t), cf_short(pat));
    free(t);
    return cf_u64(caps.v[1]);
}
