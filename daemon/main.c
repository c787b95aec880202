/* main.c: rstmdb-proxy's process: configuration, the event loop, signals
 * (SIGTERM drains, SIGHUP reloads tokens/CORS/log level), sd_notify, and the
 * order in which modules start and stop. No request logic lives here. */
#include <errno.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "auth.h"
#include "clock.h"
#include "config.h"
#include "cors.h"
#include "http.h"
#include "hub.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "openapi.h"
#include "pool.h"
#include "ratelimit.h"
#include "secret.h"
#include "sse.h"

extern char **environ;

typedef struct app {
    int argc;
    char **argv;
    proxy_config cfg;
    plog log;
    metrics m;
    struct event_base *base;
    rstmdb_tls *tls;
    pool *upstream;
    hub *hub;
    sse_ctx *sse;
    http *http;
    ratelimit *rl;
    char *openapi;
    const char *notify_socket;
    const char *creds_dir; /* $CREDENTIALS_DIRECTORY (systemd LoadCredential=) */
    auth *first_auth;      /* built and checked before anything starts */
    cors *first_cors;
    struct event *ev_term, *ev_int, *ev_hup, *ev_grace;
    struct event *ev_logflush; /* writes out held access lines */
    log_hold log_held;
    bool draining;
    int draining_parts; /* HTTP requests, SSE streams: each says when it is done */
} app;

static void goodbyes_said(void *arg)
{
    app *a = arg;
    event_base_loopexit(a->base, NULL);
}

/* Drained (no request in flight, every stream closed): say BYE upstream
 * (still within the grace timer), then stop. */
static void one_drained(void *arg)
{
    app *a = arg;
    if (--a->draining_parts > 0)
        return;
    log_info(&a->log, "drained: no request in flight, no stream open");
    pool_shutdown(a->upstream, goodbyes_said, a);
}

static void on_grace(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    app *a = arg;
    log_warn(&a->log, "shutdown grace expired with %zu request(s) in flight, %zu stream(s) open",
             http_inflight(a->http), sse_count(a->sse));
    event_base_loopexit(a->base, NULL);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    app *a = arg;
    if (a->draining) {
        log_warn(&a->log, "second signal %d: exiting now", (int)sig);
        event_base_loopexit(a->base, NULL);
        return;
    }
    a->draining = true;
    notify_send(a->notify_socket, "STOPPING=1");
    log_info(&a->log, "signal %d: draining (grace %llu ms)", (int)sig,
             (unsigned long long)a->cfg.shutdown_grace_ms);
    struct timeval tv = clock_tv_ms(a->cfg.shutdown_grace_ms);
    a->ev_grace = evtimer_new(a->base, on_grace, a);
    if (a->ev_grace)
        evtimer_add(a->ev_grace, &tv);
    a->draining_parts = 2;
    sse_drain(a->sse, one_drained, a);
    http_drain(a->http, one_drained, a);
}

/* The credentials of a configuration: static tokens (token and the lines
 * of token_file), the JWK Set of jwt_keys_file, and the CORS origins. Files
 * are read here, at start and on every SIGHUP. 0, or -1 with why naming the
 * key (and, for a broken JWK Set, the key's index). */
static int make_auth_cors(const proxy_config *c, const char *creds_dir, auth **au, cors **co,
                          char *why, size_t cap)
{
    *au = NULL;
    *co = NULL;
    char *tok_text = NULL, *jwks = NULL, **lines = NULL, ew[300];
    size_t nlines = 0, jwks_len = 0;
    const char **tokens = NULL;
    int rc = -1;
    if (*c->token_file) {
        if (secret_read(c->token_file, creds_dir, &tok_text, NULL, ew, sizeof ew) != 0) {
            snprintf(why, cap, "token_file: %s", ew);
            goto out;
        }
        if (secret_lines(tok_text, &lines, &nlines) != 0) {
            snprintf(why, cap, "token_file: out of memory");
            goto out;
        }
    }
    if (*c->jwt_keys_file &&
        secret_read(c->jwt_keys_file, creds_dir, &jwks, &jwks_len, ew, sizeof ew) != 0) {
        snprintf(why, cap, "jwt_keys_file: %s", ew);
        goto out;
    }
    tokens = calloc(c->token.n + nlines + 1, sizeof *tokens);
    if (tokens == NULL) {
        snprintf(why, cap, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < c->token.n; i++)
        tokens[i] = c->token.v[i];
    for (size_t i = 0; i < nlines; i++)
        tokens[c->token.n + i] = lines[i];
    auth_config ac = {
        .tokens = tokens,
        .ntokens = c->token.n + nlines,
        .jwks = jwks,
        .jwks_len = jwks_len,
        .policy = {c->jwt_audience, c->jwt_issuer, (unsigned)c->jwt_leeway_s},
        .cookie = c->jwt_cookie,
    };
    if (auth_new(au, &ac, ew, sizeof ew) != 0) {
        snprintf(why, cap, "jwt_keys_file: %s", ew);
        goto out;
    }
    if (cors_new(co, (const char *const *)c->cors_origin.v, c->cors_origin.n) != 0) {
        auth_free(*au);
        *au = NULL;
        snprintf(why, cap, "out of memory");
        goto out;
    }
    rc = 0;
out:
    if (tok_text)
        OPENSSL_cleanse(tok_text, strlen(tok_text));
    free(tok_text);
    free(jwks);
    free(lines);
    free(tokens);
    return rc;
}

/* upstream_token, or the first line of upstream_token_file: malloc'd
 * ("" = none), or NULL with why. */
static char *upstream_token(const proxy_config *c, const char *creds_dir, char *why, size_t cap)
{
    if (!*c->upstream_token_file)
        return strdup(c->upstream_token);
    char *text, ew[300];
    if (secret_read(c->upstream_token_file, creds_dir, &text, NULL, ew, sizeof ew) != 0) {
        snprintf(why, cap, "upstream_token_file: %s", ew);
        return NULL;
    }
    char *tok = strdup(secret_first_line(text));
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    if (tok == NULL)
        snprintf(why, cap, "out of memory");
    return tok;
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    app *a = arg;
    char mono[64];
    snprintf(mono, sizeof mono, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)clock_mono_us());
    notify_send(a->notify_socket, mono);
    proxy_config nc;
    config_init(&nc);
    config_action act;
    config_error err;
    if (config_load(&nc, a->argc, a->argv, environ, &act, NULL, 0, &err) != 0) {
        log_error(&a->log, "reload refused, keeping the running configuration: %s", err.msg);
    } else {
        auth *au;
        cors *co;
        char why[400];
        char *utok = NULL;
        if (make_auth_cors(&nc, a->creds_dir, &au, &co, why, sizeof why) != 0 ||
            (utok = upstream_token(&nc, a->creds_dir, why, sizeof why)) == NULL) {
            if (utok == NULL && au != NULL) {
                auth_free(au);
                cors_free(co);
            }
            log_error(&a->log, "reload refused, keeping the running keys and tokens: %s", why);
        } else {
            size_t ntok = auth_token_count(au), nkeys = auth_key_count(au);
            http_reload(a->http, au, co);
            pool_set_token(a->upstream, utok);
            log_level lv;
            if (log_level_parse(nc.log_level, &lv) == 0)
                a->log.level = lv;
            log_info(&a->log,
                     "reloaded: %zu token(s), %zu JWT key(s), %zu CORS origin(s), log_level %s",
                     ntok, nkeys, nc.cors_origin.n, nc.log_level);
        }
        if (utok)
            OPENSSL_cleanse(utok, strlen(utok));
        free(utok);
    }
    config_free(&nc);
    notify_send(a->notify_socket, "READY=1");
}

static int start_upstream(app *a)
{
    const proxy_config *c = &a->cfg;
    rstmdb_error *err = NULL;
    if (c->upstream_tls) {
        int rc;
        if (c->upstream_insecure)
            rc = rstmdb_tls_insecure(&a->tls, &err);
        else
            rc = rstmdb_tls_from_files(&a->tls, *c->upstream_ca ? c->upstream_ca : NULL,
                                       *c->upstream_cert ? c->upstream_cert : NULL,
                                       *c->upstream_key ? c->upstream_key : NULL, &err);
        if (rc != RSTMDB_OK) {
            log_error(&a->log, "upstream TLS: %s", err ? rstmdb_error_message(err) : "failed");
            rstmdb_error_free(err);
            return -1;
        }
        if (*c->upstream_server_name)
            rstmdb_tls_set_server_name(a->tls, c->upstream_server_name);
    }
    char why[400];
    char *utok = upstream_token(c, a->creds_dir, why, sizeof why);
    if (utok == NULL) {
        log_error(&a->log, "%s", why);
        return -1;
    }
    pool_config pc = {
        .address = c->upstream,
        .token = *utok ? utok : NULL,
        .tls = a->tls,
        .size = (unsigned)c->pool_size,
        .connect_timeout_ms = (unsigned)c->connect_timeout_ms,
        .request_timeout_ms = (unsigned)c->request_timeout_ms,
        .backoff_initial_ms = (unsigned)c->backoff_initial_ms,
        .backoff_max_ms = (unsigned)c->backoff_max_ms,
        .log = &a->log, /* the daemon's logger: SIGHUP's log_level applies to the pool */
        .dns_server = *c->dns_server ? c->dns_server : NULL,
    };
    int prc = pool_new(&a->upstream, a->base, &pc, &err);
    OPENSSL_cleanse(utok, strlen(utok));
    free(utok);
    if (prc != RSTMDB_OK) {
        log_error(&a->log, "upstream pool: %s", err ? rstmdb_error_message(err) : "failed");
        rstmdb_error_free(err);
        return -1;
    }
    hub_config hc = {(unsigned)c->sse_replay_page, (size_t)c->sse_max_held_events};
    if (hub_new(&a->hub, a->base, a->upstream, &hc) != RSTMDB_OK) {
        log_error(&a->log, "subscription hub: failed to start");
        return -1;
    }
    return 0;
}

/* 100,000 SSE streams need 100,000 sockets: lift the soft descriptor limit
 * toward what max_connections and sse_max_streams ask (never above the hard
 * limit). Streams are served outside libmicrohttpd, so they add to its
 * connections. */
static void raise_fd_limit(app *a)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)a->cfg.max_connections + (rlim_t)a->cfg.sse_max_streams + 256;
    if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)
        want = rl.rlim_max;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rl.rlim_cur = want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)a->cfg.max_connections + (rlim_t)a->cfg.sse_max_streams + 64)
        log_warn(&a->log,
                 "open-file limit %llu is below max_connections + sse_max_streams (%llu): raise "
                 "LimitNOFILE",
                 (unsigned long long)rl.rlim_cur,
                 (unsigned long long)(a->cfg.max_connections + a->cfg.sse_max_streams));
}

static int start_http(app *a)
{
    const proxy_config *c = &a->cfg;
    char why[256], bound[128];
    bool loopback = true;
    int tfd = listener_tcp(c->listen, bound, sizeof bound, &loopback, why, sizeof why);
    if (tfd < 0) {
        log_error(&a->log, "%s", why);
        return -1;
    }
    int ufd = -1;
    if (*c->listen_unix) {
        ufd = listener_unix(c->listen_unix, why, sizeof why);
        if (ufd < 0) {
            log_error(&a->log, "%s", why);
            close(tfd);
            return -1;
        }
    }
    sse_config sc = {(unsigned)c->sse_heartbeat_ms, (unsigned)c->sse_retry_ms,
                     (size_t)c->sse_buffer_bytes, (size_t)c->sse_max_streams};
    ratelimit_config rc = {(unsigned)c->rate_limit_rps, (unsigned)c->rate_limit_burst,
                           (unsigned)c->sse_max_streams_per_caller, 0};
    if (ratelimit_new(&a->rl, &rc) != 0)
        goto fail;
    if (sse_ctx_new(&a->sse, a->base, a->hub, a->upstream, &a->m, &a->log, a->rl, &sc) != 0)
        goto fail;
    size_t olen = 0;
    a->openapi = openapi_render(&olen);
    if (a->openapi == NULL)
        goto fail;
    auth *au = a->first_auth;
    cors *co = a->first_cors;
    a->first_auth = NULL;
    a->first_cors = NULL;
    bool open_auth = !auth_enabled(au);
    http_deps d = {a->base, &a->cfg, &a->log,    &a->m, a->upstream,
                   a->hub,  a->sse,  a->openapi, olen,  a->rl};
    if (http_new(&a->http, &d, tfd, ufd, au, co) != 0)
        goto fail;
    if (!loopback && open_auth)
        log_warn(&a->log,
                 "listening on %s, beyond loopback, without any token: anyone who "
                 "can reach it can use the upstream",
                 bound);
    log_info(&a->log, "listening on %s%s%s", bound, ufd >= 0 ? " and unix:" : "",
             ufd >= 0 ? c->listen_unix : "");
    printf("listening on %s\n", bound);
    fflush(stdout);
    return 0;
fail:
    log_error(&a->log, "cannot start the HTTP front");
    close(tfd);
    if (ufd >= 0)
        close(ufd);
    return -1;
}

static void on_logflush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    const app *a = arg;
    log_flush(&a->log);
}

/* Secrets and keys are read and checked before anything starts: a missing
 * file or a broken JWK Set is a configuration error (exit 2) naming the key
 * (and the broken key's index). Keeps the credentials for start_http. */
static int load_secrets(app *a)
{
    a->creds_dir = getenv("CREDENTIALS_DIRECTORY");
    char why[400];
    char *utok = NULL;
    if (make_auth_cors(&a->cfg, a->creds_dir, &a->first_auth, &a->first_cors, why, sizeof why) !=
            0 ||
        (utok = upstream_token(&a->cfg, a->creds_dir, why, sizeof why)) == NULL) {
        fprintf(stderr, "rstmdb-proxy: invalid configuration: %s\n", why);
        auth_free(a->first_auth);
        cors_free(a->first_cors);
        a->first_auth = NULL;
        a->first_cors = NULL;
        return -1;
    }
    OPENSSL_cleanse(utok, strlen(utok));
    free(utok);
    return 0;
}

int main(int argc, char **argv)
{
    app a;
    memset(&a, 0, sizeof a);
    a.argc = argc;
    a.argv = argv;
    config_init(&a.cfg);
    config_action act;
    config_error err;
    char cfgpath[1024];
    if (config_load(&a.cfg, argc, argv, environ, &act, cfgpath, sizeof cfgpath, &err) != 0) {
        fprintf(stderr, "rstmdb-proxy: invalid configuration: %s\n", err.msg);
        config_free(&a.cfg);
        return 2;
    }
    switch (act) {
    case CONFIG_HELP:
        config_print_help(stdout, argv[0]);
        config_free(&a.cfg);
        return 0;
    case CONFIG_VERSION:
        printf("rstmdb-proxy %s\n", RSTMDB_PROXY_VERSION);
        config_free(&a.cfg);
        return 0;
    case CONFIG_OPENAPI: {
        size_t olen = 0;
        char *doc = openapi_render(&olen);
        int rc = doc != NULL && fwrite(doc, 1, olen, stdout) == olen && fputc('\n', stdout) != EOF
                     ? 0
                     : 1;
        free(doc);
        config_free(&a.cfg);
        return rc;
    }
    case CONFIG_CHECK:
        if (load_secrets(&a) != 0) {
            config_free(&a.cfg);
            return 2;
        }
        auth_free(a.first_auth);
        cors_free(a.first_cors);
        printf("# configuration OK%s%s\n", cfgpath[0] ? " from " : "", cfgpath);
        config_print_effective(stdout, &a.cfg);
        config_free(&a.cfg);
        return 0;
    case CONFIG_RUN:
        break;
    }

    if (load_secrets(&a) != 0) {
        config_free(&a.cfg);
        return 2;
    }
    log_level lv = LOG_INFO;
    log_level_parse(a.cfg.log_level, &lv);
    log_init(&a.log, lv, stderr);
    /* Access lines are written in batches (log.h): a write(2) per request
     * was a third of a proxied ping's syscalls. Other records still go out
     * at once, and everything held is written within LOG_ACCESS_FLUSH_MS
     * and at exit. */
    a.log.hold = &a.log_held;
    metrics_init(&a.m);
    a.notify_socket = getenv("NOTIFY_SOCKET");
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    a.base = event_base_new();
    if (a.base == NULL) {
        log_error(&a.log, "event_base_new failed");
        goto out;
    }
    raise_fd_limit(&a);
    /* Installed before the listeners exist: a supervisor may send SIGTERM
     * as soon as it reads "listening on", and the signal must then be a
     * graceful stop (libevent holds it until the loop runs), not a kill.
     * libevent restores the action it found when a signal event is freed:
     * make that "ignore", or a second SIGTERM arriving during cleanup (a
     * supervisor repeating itself) kills us with status 15 instead of exit 0. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    a.ev_term = evsignal_new(a.base, SIGTERM, on_term, &a);
    a.ev_int = evsignal_new(a.base, SIGINT, on_term, &a);
    a.ev_hup = evsignal_new(a.base, SIGHUP, on_hup, &a);
    if (!a.ev_term || !a.ev_int || !a.ev_hup || evsignal_add(a.ev_term, NULL) != 0 ||
        evsignal_add(a.ev_int, NULL) != 0 || evsignal_add(a.ev_hup, NULL) != 0) {
        log_error(&a.log, "cannot install signal handlers");
        goto out;
    }
    if (start_upstream(&a) != 0 || start_http(&a) != 0)
        goto out;
    {
        struct timeval tv = clock_tv_ms(LOG_ACCESS_FLUSH_MS);
        a.ev_logflush = event_new(a.base, -1, EV_PERSIST, on_logflush, &a);
        if (a.ev_logflush == NULL || event_add(a.ev_logflush, &tv) != 0) {
            log_error(&a.log, "cannot arm the access-log flush timer");
            goto out;
        }
    }
    notify_send(a.notify_socket, "READY=1\nSTATUS=serving");
    event_base_dispatch(a.base);
    rc = 0;
    log_info(&a.log, "stopped");
out:
    /* Order: streams still open (grace expired, second signal) are closed
     * with the SSE context, before the hub they subscribe to; every module
     * above holds the pool, so it goes last. */
    http_free(a.http);
    sse_ctx_free(a.sse);
    hub_free(a.hub);
    pool_free(a.upstream);
    ratelimit_free(a.rl);
    auth_free(a.first_auth);
    cors_free(a.first_cors);
    rstmdb_tls_free(a.tls);
    if (a.cfg.listen_unix && *a.cfg.listen_unix && a.http != NULL)
        unlink(a.cfg.listen_unix);
    free(a.openapi);
    if (a.ev_term)
        event_free(a.ev_term);
    if (a.ev_int)
        event_free(a.ev_int);
    if (a.ev_hup)
        event_free(a.ev_hup);
    if (a.ev_grace)
        event_free(a.ev_grace);
    if (a.ev_logflush)
        event_free(a.ev_logflush);
    log_flush(&a.log);
    if (a.base)
        event_base_free(a.base);
    config_free(&a.cfg);
    return rc;
}
