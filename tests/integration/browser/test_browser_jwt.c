/* test_browser_jwt.c: a real browser authorized by JWTs. Headless Chromium
 * loads a page from the test's own origin, whose answer sets the cookie
 * `rstmdb_token` as an application's backend would (the cookie is host-only
 * for 127.0.0.1, so the browser also sends it to the proxy's port). The page
 * opens EventSources on the proxy (another origin, allowed by --cors-origin):
 *   credall  /v1/watch, withCredentials: authenticated by the cookie; the
 *            token's limits (instances b-*) filter the events;
 *   nocred   /v1/watch without credentials: no cookie, refused (401);
 *   query    /v1/instances/b-1/watch?access_token=: the token in the URL;
 *   denied   /v1/instances/o-1/watch?access_token=: outside the token's
 *            limits, refused (403).
 * Tokens are minted by python3-jwt (tests/support/jwt_mint.py). The test
 * writes events to b-1 and o-1 and checks what each stream saw, then that the
 * proxy's log never shows the access_token. Skips (exit 77) without chromium. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chrome.h"
#include "harness.h"
#include "page.html.h"
#include "pagerec.h"
#include "pagesrv.h"
#include "phelp.h"

#define INST     "b-1" /* inside the tokens' limits */
#define OUTSIDE  "o-1" /* outside them */
#define N_EVENTS 6
#define TOK_MAX  4096
#define DEADLINE 60 /* s: the whole scenario; the harness kills it 5 s later */

typedef struct world {
    penv w;    /* testd + a writer proxy without auth: the test writes through it */
    spawned b; /* the proxy the browser uses: JWT, CORS for the page's origin */
    char b_base[96];
    char origin[64];
    char keydir[300];
    char log[400];
    pagesrv *ps;
    chrome ch;
    uint64_t off[N_EVENTS];
} world;

#define EXPECT(w, cond, ...) EXPECT_PAGE((w)->ps, &(w)->ch, cond, __VA_ARGS__)

/* A token from python3-jwt, RS256 with the key rsa1, valid for 10 minutes. */
static void mint(world *w, const char *claims, char *out)
{
    jwt_mint(w->keydir, "rsa1", "RS256", claims, 600, out, TOK_MAX);
}

/* The data of a message is the upstream event as JSON. */
static bool event_is(const char *data, const char *inst, uint64_t off)
{
    cJSON *j = data ? cJSON_Parse(data) : NULL;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "instance_id");
    const cJSON *wo = cJSON_GetObjectItemCaseSensitive(j, "wal_offset");
    bool ok = cJSON_IsString(id) && strcmp(id->valuestring, inst) == 0 && cJSON_IsNumber(wo) &&
              (uint64_t)wo->valuedouble == off;
    cJSON_Delete(j);
    return ok;
}

/* A stream that was let in: one open, exactly the N_EVENTS events of INST in
 * order (the id of each its WAL offset), nothing of OUTSIDE, never closed. */
static void check_admitted(world *w, const recs *r, const char *src)
{
    size_t msg = 0, opens = 0;
    for (size_t i = 0; i < r->n; i++) {
        const rec *x = &r->v[i];
        if (strcmp(x->src, src) != 0)
            continue;
        EXPECT(w,
               x->rs != 2 && strcmp(x->type, "error") != 0 && strcmp(x->type, "server-error") != 0,
               "%s: record %zu: %s (readyState %d)", src, i, x->type, x->rs);
        if (strcmp(x->type, "open") == 0) {
            opens++;
        } else if (strcmp(x->type, "message") == 0) {
            EXPECT(w, msg < N_EVENTS, "%s: more than %d events: %s", src, N_EVENTS,
                   x->data ? x->data : "");
            char want[32];
            snprintf(want, sizeof want, "%llu", (unsigned long long)w->off[msg]);
            EXPECT(w, x->id && strcmp(x->id, want) == 0, "%s: event %zu: id %s, want %s", src, msg,
                   x->id ? x->id : "(none)", want);
            EXPECT(w, event_is(x->data, INST, w->off[msg]),
                   "%s: event %zu is not %s's (an event outside the limits?): %s", src, msg, INST,
                   x->data ? x->data : "(none)");
            msg++;
        }
    }
    EXPECT(w, opens == 1, "%s: %zu opens, want 1", src, opens);
    EXPECT(w, msg == N_EVENTS, "%s: %zu events, want %d", src, msg, N_EVENTS);
}

/* A stream the proxy refused: the browser fires one error and closes the
 * EventSource for good (it never retries after a non-200), nothing else. */
static void check_refused(world *w, const recs *r, const char *src)
{
    size_t errors = 0;
    for (size_t i = 0; i < r->n; i++) {
        const rec *x = &r->v[i];
        if (strcmp(x->src, src) != 0)
            continue;
        EXPECT(w, strcmp(x->type, "error") == 0 && x->rs == 2,
               "%s: refused stream recorded %s (readyState %d)", src, x->type, x->rs);
        errors++;
    }
    EXPECT(w, errors == 1, "%s: %zu errors, want 1", src, errors);
}

/* The status the proxy answers a stream request (read briefly, then closed). */
static long stream_status(world *w, const char *path, const char *cookie)
{
    CURL *c = curl_easy_init();
    char url[TOK_MAX + 256];
    snprintf(url, sizeof url, "%s%s", w->b_base, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 500L);
    curl_easy_setopt(c, CURLOPT_NOBODY, 0L);
    if (cookie)
        curl_easy_setopt(c, CURLOPT_COOKIE, cookie);
    FILE *null = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, null);
    curl_easy_perform(c);
    long st = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    fclose(null);
    curl_easy_cleanup(c);
    return st;
}

START_TEST(eventsource_with_jwt)
{
    world W;
    world *w = &W;
    memset(w, 0, sizeof *w);
    w->ch.pid = -1;
    w->b.pid = -1;
    const char *dir = browser_run_dir();
    const char *bin = browser_bin();
    ck_assert_ptr_nonnull(dir);
    ck_assert_ptr_nonnull(bin);

    /* Keys (python3-jwt), and two tokens limited to the instances b-*. */
    ck_assert_int_lt(snprintf(w->keydir, sizeof w->keydir, "%s/keys", dir), (int)sizeof w->keydir);
    jwt_keys(w->keydir);
    static char cookie_tok[TOK_MAX], query_tok[TOK_MAX];
    mint(w, "{\"sub\":\"alice\",\"scope\":\"rstmdb:watch\",\"rstmdb\":{\"instances\":[\"b-*\"]}}",
         cookie_tok);
    mint(w, "{\"sub\":\"bob\",\"scope\":\"rstmdb:watch\",\"rstmdb\":{\"instances\":[\"b-*\"]}}",
         query_tok);

    /* The writer side: testd, a plain proxy, machines, both instances. */
    penv_start(&w->w, NULL, NULL);
    seed_machines(&w->w);
    create_instance(&w->w, "m", INST);
    create_instance(&w->w, "n", OUTSIDE);

    /* The page's origin, which hands the browser its cookie. */
    ck_assert_int_eq(pagesrv_new(&w->ps, PAGE_HTML), 0);
    snprintf(w->origin, sizeof w->origin, "http://127.0.0.1:%d", pagesrv_port(w->ps));
    char set_cookie[TOK_MAX + 64];
    snprintf(set_cookie, sizeof set_cookie, "rstmdb_token=%s; Path=/; HttpOnly; SameSite=Lax",
             cookie_tok);
    ck_assert_int_eq(pagesrv_set_cookie(w->ps, set_cookie), 0);

    /* The browser's proxy: JWT keys, CORS for exactly the page's origin. */
    char jwks[400];
    ck_assert_int_lt(snprintf(jwks, sizeof jwks, "%s/jwks.json", w->keydir), (int)sizeof jwks);
    ck_assert_int_lt(snprintf(w->log, sizeof w->log, "%s/proxy.log", dir), (int)sizeof w->log);
    const char *argv[] = {spawn_proxy_path(), "--listen",        "127.0.0.1:0", "--upstream",
                          w->w.testd.addr,    "--jwt-keys-file", jwks,          "--cors-origin",
                          w->origin,          "--log-level",     "info",        NULL};
    ck_assert_int_eq(spawn_start(&w->b, argv, w->log, 10000), 0);
    ck_assert_int_lt(snprintf(w->b_base, sizeof w->b_base, "http://%s", w->b.addr),
                     (int)sizeof w->b_base);
    int ready = 0;
    for (int i = 0; i < 500 && ready != 200; i++, usleep(20000))
        ready = (int)stream_status(w, "/readyz", NULL);
    ck_assert_int_eq(ready, 200);
    /* Outside the browser, the same answers the browser is about to get. */
    char path[TOK_MAX + 128], cookie_hdr[TOK_MAX + 32];
    snprintf(cookie_hdr, sizeof cookie_hdr, "rstmdb_token=%s", cookie_tok);
    ck_assert_int_eq(stream_status(w, "/v1/watch", NULL), 401);
    snprintf(path, sizeof path, "/v1/instances/" OUTSIDE "/watch?access_token=%s", query_tok);
    ck_assert_int_eq(stream_status(w, path, NULL), 403);

    /* The page: ?credall=..&nocred=..&query=..&denied=.. (percent-encoded). */
    static const struct {
        const char *src, *path;
        bool token;
    } S[] = {{"credall", "/v1/watch", false},
             {"nocred", "/v1/watch", false},
             {"query", "/v1/instances/" INST "/watch", true},
             {"denied", "/v1/instances/" OUTSIDE "/watch", true}};
    static char page_url[4 * (3 * TOK_MAX + 256)];
    size_t pl = (size_t)snprintf(page_url, sizeof page_url, "%s/", w->origin);
    for (size_t i = 0; i < sizeof S / sizeof S[0]; i++) {
        char url[TOK_MAX + 256];
        ck_assert_int_lt(snprintf(url, sizeof url, "%s%s%s%s", w->b_base, S[i].path,
                                  S[i].token ? "?access_token=" : "", S[i].token ? query_tok : ""),
                         (int)sizeof url);
        char *esc = curl_easy_escape(w->w.c, url, 0);
        ck_assert_ptr_nonnull(esc);
        int k = snprintf(page_url + pl, sizeof page_url - pl, "%c%s=%s", i == 0 ? '?' : '&',
                         S[i].src, esc);
        curl_free(esc);
        ck_assert(k > 0 && (size_t)k < sizeof page_url - pl);
        pl += (size_t)k;
    }
    fprintf(stderr, "[browser] proxy %s (JWT) allows origin %s\n", w->b_base, w->origin);

    ck_assert_int_eq(chrome_start(&w->ch, bin, dir, page_url), 0);
    EXPECT(w, recs_wait(w->ps, &w->ch, "credall", "open", 1, 30000),
           "the cookie-authenticated EventSource never opened (page fetched %u times)",
           pagesrv_page_hits(w->ps));
    EXPECT(w, recs_wait(w->ps, &w->ch, "query", "open", 1, 10000),
           "the ?access_token= EventSource never opened");
    EXPECT(w, recs_wait(w->ps, &w->ch, "nocred", "error", 1, 10000),
           "the EventSource without credentials was not refused");
    EXPECT(w, recs_wait(w->ps, &w->ch, "denied", "error", 1, 10000),
           "the EventSource outside the token's limits was not refused");

    /* Events on both instances, interleaved: only b-1's may reach the page. */
    for (int i = 0; i < N_EVENTS; i++) {
        char payload[32];
        snprintf(payload, sizeof payload, "{\"n\":%d}", i);
        w->off[i] = apply_event(&w->w, INST, i % 2 == 0 ? "GO" : "BACK", payload);
        apply_event(&w->w, OUTSIDE, i % 2 == 0 ? "GO" : "BACK", NULL);
    }
    EXPECT(w, recs_wait(w->ps, &w->ch, "credall", "message", N_EVENTS, 15000),
           "the cookie stream did not get b-1's events");
    EXPECT(w, recs_wait(w->ps, &w->ch, "query", "message", N_EVENTS, 15000),
           "the ?access_token= stream did not get b-1's events");
    usleep(500000); /* room for a stray event (of o-1) to show up */

    recs r;
    recs_load(w->ps, &r);
    EXPECT(w, !r.bad && pagesrv_dropped(w->ps) == 0, "page records malformed, lost or reordered");
    check_admitted(w, &r, "credall");
    check_admitted(w, &r, "query");
    check_refused(w, &r, "nocred");
    check_refused(w, &r, "denied");
    fprintf(stderr,
            "[browser] cookie stream and ?access_token= stream: %d events each, only %s's; "
            "no-credentials and out-of-limits streams refused\n",
            N_EVENTS, INST);
    recs_free(&r);

    chrome_stop(&w->ch, 5000);
    spawn_stop(&w->b, 5000);
    /* The browser's requests carried the token in their URLs: the access log
     * shows them redacted, and no part of the token's signature. */
    const char *text = slurp_file(w->log);
    ck_assert_msg(strstr(text, "access_token=[redacted]") != NULL, "no redacted access log line");
    ck_assert_msg(strstr(text, strrchr(query_tok, '.') + 1) == NULL,
                  "the access_token reached the log");
    ck_assert_msg(strstr(text, strrchr(cookie_tok, '.') + 1) == NULL, "the cookie reached the log");
    penv_stop(&w->w);
    pagesrv_free(w->ps);
    w->ps = NULL;
}
END_TEST

int main(void)
{
    return browser_main("browser_jwt", eventsource_with_jwt, DEADLINE);
}
