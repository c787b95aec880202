/* config.c: the settings table and everything derived from it (file, env,
 * flags, --help, --check-config). It only parses and validates: it must not
 * open sockets, read certificates or touch the running daemon. */
#include "config.h"

#include "addr.h"

#include <ctype.h>
#include <errno.h>
#include <event2/util.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define OFF(f) offsetof(proxy_config, f)
#define U64MAX UINT64_MAX

static const config_key keys[] = {
    {"listen", CFG_ADDR, OFF(listen), "127.0.0.1:7480", 0, 0, false, false,
     "HTTP listener HOST:PORT; port 0 picks a free port (printed as \"listening on HOST:PORT\")"},
    {"listen_unix", CFG_STR, OFF(listen_unix), "", 0, 0, false, false,
     "also serve HTTP on this unix socket path (empty = off)"},
    {"upstream", CFG_ADDR, OFF(upstream), "127.0.0.1:7401", 0, 0, false, false,
     "rstmdb server HOST:PORT"},
    {"upstream_token", CFG_STR, OFF(upstream_token), "", 0, 0, true, false,
     "bearer token the proxy sends with AUTH upstream (empty = no AUTH)"},
    {"upstream_token_file", CFG_STR, OFF(upstream_token_file), "", 0, 0, false, true,
     "file holding upstream_token (a relative name is looked up in $CREDENTIALS_DIRECTORY; "
     "re-read on SIGHUP for the next connections)"},
    {"upstream_tls", CFG_BOOL, OFF(upstream_tls), "false", 0, 0, false, false,
     "connect to the upstream with TLS"},
    {"upstream_ca", CFG_STR, OFF(upstream_ca), "", 0, 0, false, false,
     "CA file to verify the upstream (empty = system trust store)"},
    {"upstream_cert", CFG_STR, OFF(upstream_cert), "", 0, 0, false, false,
     "client certificate for mTLS (needs upstream_key)"},
    {"upstream_key", CFG_STR, OFF(upstream_key), "", 0, 0, false, false,
     "client private key for mTLS (needs upstream_cert)"},
    {"upstream_server_name", CFG_STR, OFF(upstream_server_name), "", 0, 0, false, false,
     "TLS server name (SNI and hostname check; empty = host of upstream)"},
    {"upstream_insecure", CFG_BOOL, OFF(upstream_insecure), "false", 0, 0, false, false,
     "skip TLS verification of the upstream (development only)"},
    {"dns_server", CFG_ADDR, OFF(dns_server), "", 0, 0, false, false,
     "DNS server (IP:PORT) for the upstream's name instead of /etc/resolv.conf's (empty = those)"},
    {"pool_size", CFG_UINT, OFF(pool_size), "2", 1, 64, false, false,
     "upstream connections, each multiplexing many requests"},
    {"connect_timeout_ms", CFG_UINT, OFF(connect_timeout_ms), "5000", 1, 600000, false, false,
     "upstream connect + handshake timeout per attempt"},
    {"request_timeout_ms", CFG_UINT, OFF(request_timeout_ms), "10000", 1, 3600000, false, false,
     "upstream request timeout; expiry answers 504 UPSTREAM_TIMEOUT"},
    {"backoff_initial_ms", CFG_UINT, OFF(backoff_initial_ms), "100", 1, 600000, false, false,
     "first reconnect delay after an upstream loss"},
    {"backoff_max_ms", CFG_UINT, OFF(backoff_max_ms), "5000", 1, 3600000, false, false,
     "reconnect delay cap (exponential backoff with jitter)"},
    {"token", CFG_LIST, OFF(token), "", 0, 0, true, true,
     "bearer token accepted from HTTP clients (repeat or comma-separate; none = no auth)"},
    {"token_file", CFG_STR, OFF(token_file), "", 0, 0, false, true,
     "file of bearer tokens, one per line, added to token (a relative name is looked up in "
     "$CREDENTIALS_DIRECTORY when systemd sets it; re-read on SIGHUP)"},
    {"jwt_keys_file", CFG_STR, OFF(jwt_keys_file), "", 0, 0, false, true,
     "JWK Set file of the keys that sign browser JWTs (RS256, PS256, ES256, EdDSA, HS256); "
     "empty = JWT off; re-read on SIGHUP"},
    {"jwt_audience", CFG_STR, OFF(jwt_audience), "", 0, 0, false, true,
     "when set, a JWT's aud must name it"},
    {"jwt_issuer", CFG_STR, OFF(jwt_issuer), "", 0, 0, false, true,
     "when set, a JWT's iss must equal it"},
    {"jwt_leeway_s", CFG_UINT, OFF(jwt_leeway_s), "30", 0, 3600, false, true,
     "clock skew allowed on a JWT's exp and nbf when it is checked"},
    {"jwt_cookie", CFG_STR, OFF(jwt_cookie), "rstmdb_token", 0, 0, false, true,
     "name of the cookie that may carry the JWT"},
    {"rate_limit_rps", CFG_UINT, OFF(rate_limit_rps), "0", 0, 1000000, false, false,
     "requests per second per caller (JWT sub, static token or client address); 0 = off"},
    {"rate_limit_burst", CFG_UINT, OFF(rate_limit_burst), "0", 0, 1000000, false, false,
     "requests a caller may make at once before rate_limit_rps applies (0 = rate_limit_rps)"},
    {"sse_max_streams_per_caller", CFG_UINT, OFF(sse_max_streams_per_caller), "0", 0, 1000000,
     false, false, "open streams per caller; more get 429 (0 = off)"},
    {"cors_origin", CFG_LIST, OFF(cors_origin), "", 0, 0, false, true,
     "allowed CORS origin, e.g. https://app.example (repeat or comma-separate; * = any)"},
    {"max_body_bytes", CFG_UINT, OFF(max_body_bytes), "1048576", 2, 67108864, false, false,
     "largest request body; larger gets 413"},
    {"max_connections", CFG_UINT, OFF(max_connections), "16384", 1, 1000000, false, false,
     "concurrent HTTP connections besides SSE streams (those count in sse_max_streams)"},
    {"idle_timeout_s", CFG_UINT, OFF(idle_timeout_s), "60", 1, 86400, false, false,
     "close an idle keep-alive HTTP connection after this many seconds; also the longest a "
     "request head may take to arrive"},
    {"connection_memory_bytes", CFG_UINT, OFF(connection_memory_bytes), "16384", 4096, 1048576,
     false, false,
     "per-connection memory for headers and MHD's buffers (request headers must fit)"},
    {"allow_flush_all", CFG_BOOL, OFF(allow_flush_all), "false", 0, 0, false, false,
     "allow FLUSH_ALL (POST /v1/admin/flush-all and /v1/rpc); otherwise 403"},
    {"log_level", CFG_LEVEL, OFF(log_level), "info", 0, 0, false, true,
     "debug, info, warn or error"},
    {"shutdown_grace_ms", CFG_UINT, OFF(shutdown_grace_ms), "10000", 0, 3600000, false, false,
     "on SIGTERM, time given to in-flight requests before exiting"},
    {"sse_heartbeat_ms", CFG_UINT, OFF(sse_heartbeat_ms), "15000", 10, 3600000, false, false,
     "keepalive comment interval on idle SSE streams"},
    {"sse_retry_ms", CFG_UINT, OFF(sse_retry_ms), "3000", 0, 3600000, false, false,
     "reconnect delay announced to SSE clients (retry: field)"},
    {"sse_buffer_bytes", CFG_UINT, OFF(sse_buffer_bytes), "262144", 512, 1073741824, false, false,
     "per-stream buffer; a reader falling further behind is cut off with event: error"},
    {"sse_max_streams", CFG_UINT, OFF(sse_max_streams), "20000", 1, 1000000, false, false,
     "concurrent SSE streams; more get 503"},
    {"sse_replay_page", CFG_UINT, OFF(sse_replay_page), "500", 1, 100000, false, false,
     "WAL records per WAL_READ page when a stream resumes"},
    {"sse_max_held_events", CFG_UINT, OFF(sse_max_held_events), "10000", 1, 10000000, false, false,
     "live events held per stream while its replay runs"},
};

#define NKEYS (sizeof keys / sizeof keys[0])

/* Which list keys the current layer already cleared: a higher layer that
 * names a list replaces it instead of appending to the lower layer's items
 * (--token X on the command line must drop the file's tokens). */
typedef struct layer {
    bool touched[NKEYS];
} layer;

const config_key *config_keys(size_t *n)
{
    *n = NKEYS;
    return keys;
}

const config_key *config_find(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static void fail(config_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(config_error *err, const char *fmt, ...)
{
    if (err == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

static char **str_at(proxy_config *c, const config_key *k)
{
    return (char **)(void *)((char *)c + k->offset);
}
static uint64_t *u64_at(proxy_config *c, const config_key *k)
{
    return (uint64_t *)(void *)((char *)c + k->offset);
}
static bool *bool_at(proxy_config *c, const config_key *k)
{
    return (bool *)(void *)((char *)c + k->offset);
}
static config_list *list_at(proxy_config *c, const config_key *k)
{
    return (config_list *)(void *)((char *)c + k->offset);
}

static void list_clear(config_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const t[] = {"true", "1", "yes", "on"};
    static const char *const f[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(s, t[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(s, f[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static int parse_u64(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return -1;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (U64MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int set_key(proxy_config *c, const config_key *k, const char *value, layer *ly,
                   const char *origin, config_error *err)
{
    const char *where = origin ? origin : "";
    const char *sep = origin ? ": " : "";
    if (strlen(value) >= CONFIG_VALUE_MAX) {
        fail(err, "%s%s%s: value too long", where, sep, k->name);
        return -1;
    }
    switch (k->type) {
    case CFG_STR:
    case CFG_ADDR:
    case CFG_LEVEL: {
        if (k->type == CFG_ADDR && !(*value == '\0' && *k->def == '\0')) {
            char host[256];
            unsigned port;
            if (addr_split(value, host, sizeof host, &port) != 0) {
                fail(err, "%s%s%s: expected HOST:PORT, got \"%s\"", where, sep, k->name, value);
                return -1;
            }
        }
        if (k->type == CFG_LEVEL && strcmp(value, "debug") != 0 && strcmp(value, "info") != 0 &&
            strcmp(value, "warn") != 0 && strcmp(value, "error") != 0) {
            fail(err, "%s%s%s: expected debug, info, warn or error, got \"%s\"", where, sep,
                 k->name, value);
            return -1;
        }
        char *dup = strdup(value);
        if (dup == NULL) {
            fail(err, "%s: out of memory", k->name);
            return -1;
        }
        free(*str_at(c, k));
        *str_at(c, k) = dup;
        return 0;
    }
    case CFG_UINT: {
        uint64_t v;
        if (parse_u64(value, &v) != 0) {
            fail(err, "%s%s%s: expected a non-negative integer, got \"%s\"", where, sep, k->name,
                 k->secret ? "<redacted>" : value);
            return -1;
        }
        if (v < k->min || v > k->max) {
            fail(err, "%s%s%s: %llu is out of range [%llu, %llu]", where, sep, k->name,
                 (unsigned long long)v, (unsigned long long)k->min, (unsigned long long)k->max);
            return -1;
        }
        *u64_at(c, k) = v;
        return 0;
    }
    case CFG_BOOL:
        if (parse_bool(value, bool_at(c, k)) != 0) {
            fail(err, "%s%s%s: expected true or false, got \"%s\"", where, sep, k->name, value);
            return -1;
        }
        return 0;
    case CFG_LIST: {
        config_list *l = list_at(c, k);
        size_t idx = (size_t)(k - keys);
        if (ly != NULL && !ly->touched[idx]) {
            list_clear(l);
            ly->touched[idx] = true;
        }
        const char *p = value;
        while (*p) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            const char *s = p;
            while (len > 0 && isspace((unsigned char)*s)) {
                s++;
                len--;
            }
            while (len > 0 && isspace((unsigned char)s[len - 1]))
                len--;
            if (len > 0) {
                if (l->n >= CONFIG_LIST_MAX) {
                    fail(err, "%s%s%s: more than %d entries", where, sep, k->name, CONFIG_LIST_MAX);
                    return -1;
                }
                char **nv = realloc(l->v, (l->n + 1) * sizeof *nv);
                char *item = strndup(s, len);
                if (nv == NULL || item == NULL) {
                    free(item);
                    if (nv != NULL)
                        l->v = nv;
                    fail(err, "%s: out of memory", k->name);
                    return -1;
                }
                l->v = nv;
                l->v[l->n++] = item;
            }
            p += e ? (size_t)(e - p) + 1 : strlen(p);
        }
        return 0;
    }
    }
    return -1;
}

void config_init(proxy_config *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NKEYS; i++) {
        /* Defaults are valid by construction (a unit test loads every one). */
        (void)set_key(c, &keys[i], keys[i].def, NULL, NULL, NULL);
    }
}

void config_free(proxy_config *c)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const config_key *k = &keys[i];
        if (k->type == CFG_LIST)
            list_clear(list_at(c, k));
        else if (k->type == CFG_STR || k->type == CFG_ADDR || k->type == CFG_LEVEL) {
            free(*str_at(c, k));
            *str_at(c, k) = NULL;
        }
    }
}

int config_set(proxy_config *c, const char *name, const char *value, config_error *err)
{
    const config_key *k = config_find(name);
    if (k == NULL) {
        fail(err, "%s: unknown setting", name);
        return -1;
    }
    return set_key(c, k, value, NULL, NULL, err);
}

static int parse_text_layer(proxy_config *c, const char *text, const char *origin, layer *ly,
                            config_error *err)
{
    unsigned lineno = 0;
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        lineno++;
        char line[CONFIG_VALUE_MAX + 256];
        if (len >= sizeof line) {
            fail(err, "%s:%u: line too long", origin, lineno);
            return -1;
        }
        memcpy(line, p, len);
        line[len] = '\0';
        p += len + (eol ? 1 : 0);

        char *s = line;
        while (isspace((unsigned char)*s))
            s++;
        char *end = s + strlen(s);
        while (end > s && isspace((unsigned char)end[-1]))
            *--end = '\0';
        if (*s == '\0' || *s == '#' || *s == ';')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            fail(err, "%s:%u: expected key = value", origin, lineno);
            return -1;
        }
        char *kend = eq;
        while (kend > s && isspace((unsigned char)kend[-1]))
            kend--;
        *kend = '\0';
        char *v = eq + 1;
        while (isspace((unsigned char)*v))
            v++;
        size_t vlen = strlen(v);
        if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
            v[vlen - 1] = '\0';
            v++;
        }
        const config_key *k = config_find(s);
        if (k == NULL) {
            fail(err, "%s:%u: %s: unknown setting", origin, lineno, s);
            return -1;
        }
        char where[300];
        snprintf(where, sizeof where, "%s:%u", origin, lineno);
        if (set_key(c, k, v, ly, where, err) != 0)
            return -1;
    }
    return 0;
}

int config_parse_text(proxy_config *c, const char *text, const char *origin, config_error *err)
{
    layer ly;
    memset(&ly, 0, sizeof ly);
    return parse_text_layer(c, text, origin, &ly, err);
}

static int read_file(const char *path, char **out, config_error *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fail(err, "config: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 20, n = 0; /* a config file larger than 1 MiB is a mistake */
    char *buf = malloc(cap + 1);
    if (buf == NULL) {
        fclose(f);
        fail(err, "config: out of memory");
        return -1;
    }
    n = fread(buf, 1, cap, f);
    int toolong = n == cap && fgetc(f) != EOF;
    fclose(f);
    if (toolong) {
        free(buf);
        fail(err, "config: %s is larger than 1 MiB", path);
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

static const char *env_get(char *const envp[], const char *name)
{
    if (envp == NULL)
        return NULL;
    size_t nl = strlen(name);
    for (size_t i = 0; envp[i] != NULL; i++)
        if (strncmp(envp[i], name, nl) == 0 && envp[i][nl] == '=')
            return envp[i] + nl + 1;
    return NULL;
}

static void env_name(const config_key *k, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "RSTMDB_PROXY_");
    for (const char *s = k->name; *s && n + 1 < cap; s++)
        out[n++] = (char)toupper((unsigned char)*s);
    out[n] = '\0';
}

static void flag_name(const config_key *k, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "--");
    for (const char *s = k->name; *s && n + 1 < cap; s++)
        out[n++] = *s == '_' ? '-' : *s;
    out[n] = '\0';
}

/* Match argv[i] against "--name" or "--name=value". */
static const config_key *match_flag(const char *arg, const char **inline_value)
{
    *inline_value = NULL;
    for (size_t i = 0; i < NKEYS; i++) {
        char f[80];
        flag_name(&keys[i], f, sizeof f);
        size_t fl = strlen(f);
        if (strncmp(arg, f, fl) == 0) {
            if (arg[fl] == '\0')
                return &keys[i];
            if (arg[fl] == '=') {
                *inline_value = arg + fl + 1;
                return &keys[i];
            }
        }
    }
    return NULL;
}

int config_load(proxy_config *c, int argc, char *const argv[], char *const envp[],
                config_action *action, char *config_path, size_t config_path_cap, config_error *err)
{
    *action = CONFIG_RUN;
    const char *path = env_get(envp, "RSTMDB_PROXY_CONFIG");
    if (config_path != NULL && config_path_cap > 0)
        config_path[0] = '\0';

    /* Pass 1: actions and --config, so that the file layer goes first. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            *action = CONFIG_HELP;
        else if (strcmp(a, "--version") == 0)
            *action = *action == CONFIG_HELP ? CONFIG_HELP : CONFIG_VERSION;
        else if (strcmp(a, "--openapi") == 0) {
            if (*action == CONFIG_RUN || *action == CONFIG_CHECK)
                *action = CONFIG_OPENAPI;
        } else if (strcmp(a, "--check-config") == 0) {
            if (*action == CONFIG_RUN)
                *action = CONFIG_CHECK;
        } else if (strcmp(a, "--config") == 0) {
            if (i + 1 >= argc) {
                fail(err, "config: --config needs a FILE");
                return -1;
            }
            path = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            path = a + 9;
        }
    }
    if (*action == CONFIG_HELP || *action == CONFIG_VERSION || *action == CONFIG_OPENAPI)
        return 0;

    if (path != NULL && *path != '\0') {
        if (config_path != NULL && config_path_cap > 0)
            snprintf(config_path, config_path_cap, "%s", path);
        char *text;
        if (read_file(path, &text, err) != 0)
            return -1;
        int rc = config_parse_text(c, text, path, err);
        free(text);
        if (rc != 0)
            return -1;
    }

    layer env_layer;
    memset(&env_layer, 0, sizeof env_layer);
    for (size_t i = 0; i < NKEYS; i++) {
        char name[96];
        env_name(&keys[i], name, sizeof name);
        const char *v = env_get(envp, name);
        if (v != NULL && set_key(c, &keys[i], v, &env_layer, name, err) != 0)
            return -1;
    }

    layer flag_layer;
    memset(&flag_layer, 0, sizeof flag_layer);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "--version") == 0 ||
            strcmp(a, "--openapi") == 0 || strcmp(a, "--check-config") == 0 ||
            strncmp(a, "--config=", 9) == 0)
            continue;
        if (strcmp(a, "--config") == 0) {
            i++;
            continue;
        }
        const char *iv;
        const config_key *k = match_flag(a, &iv);
        if (k == NULL) {
            fail(err, "%s: unknown option (see --help)", a);
            return -1;
        }
        const char *v = iv;
        if (v == NULL) {
            bool next_is_bool = false;
            if (k->type == CFG_BOOL && i + 1 < argc) {
                bool ignored;
                next_is_bool = parse_bool(argv[i + 1], &ignored) == 0;
            }
            if (k->type == CFG_BOOL && !next_is_bool) {
                v = "true"; /* "--upstream-tls" alone */
            } else {
                if (i + 1 >= argc) {
                    fail(err, "%s: missing value", k->name);
                    return -1;
                }
                v = argv[++i];
            }
        }
        char where[96];
        flag_name(k, where, sizeof where);
        if (set_key(c, k, v, &flag_layer, where, err) != 0)
            return -1;
    }
    return config_validate(c, err);
}

int config_validate(const proxy_config *c, config_error *err)
{
    bool has_cert = c->upstream_cert && *c->upstream_cert;
    bool has_key = c->upstream_key && *c->upstream_key;
    if (has_cert != has_key) {
        fail(err, "%s: required together with %s", has_cert ? "upstream_key" : "upstream_cert",
             has_cert ? "upstream_cert" : "upstream_key");
        return -1;
    }
    if (c->backoff_max_ms < c->backoff_initial_ms) {
        fail(err, "backoff_max_ms: must be >= backoff_initial_ms");
        return -1;
    }
    if (c->dns_server && *c->dns_server) {
        /* A resolver is reached by address: naming it would need a resolver. */
        struct sockaddr_storage ss;
        int sl = (int)sizeof ss;
        if (evutil_parse_sockaddr_port(c->dns_server, (struct sockaddr *)&ss, &sl) != 0) {
            fail(err, "dns_server: expected IP:PORT, got \"%s\"", c->dns_server);
            return -1;
        }
    }
    if (c->listen_unix && strlen(c->listen_unix) >= 108) {
        fail(err, "listen_unix: path longer than 107 bytes");
        return -1;
    }
    if (c->upstream_token_file && *c->upstream_token_file && c->upstream_token &&
        *c->upstream_token) {
        fail(err, "upstream_token_file: give upstream_token or upstream_token_file, not both");
        return -1;
    }
    if (c->jwt_cookie == NULL || *c->jwt_cookie == '\0' ||
        strpbrk(c->jwt_cookie, "=;, \t\r\n\"") != NULL) {
        fail(err, "jwt_cookie: \"%s\" is not a cookie name", c->jwt_cookie ? c->jwt_cookie : "");
        return -1;
    }
    for (size_t i = 0; i < c->cors_origin.n; i++) {
        const char *o = c->cors_origin.v[i];
        if (strcmp(o, "*") != 0 && strncmp(o, "http://", 7) != 0 &&
            strncmp(o, "https://", 8) != 0) {
            fail(err, "cors_origin: \"%s\" is not * or an http(s):// origin", o);
            return -1;
        }
    }
    return 0;
}

static const char *type_hint(config_type t)
{
    switch (t) {
    case CFG_ADDR:
        return "HOST:PORT";
    case CFG_UINT:
        return "N";
    case CFG_BOOL:
        return "[=BOOL]";
    case CFG_LIST:
        return "VALUE";
    case CFG_LEVEL:
        return "LEVEL";
    case CFG_STR:
        break;
    }
    return "VALUE";
}

void config_print_help(FILE *out, const char *prog)
{
    fprintf(out,
            "Usage: %s [--config FILE] [options]\n"
            "REST and Server-Sent Events proxy in front of an rstmdb server.\n\n"
            "  --config FILE         config file (key = value; env RSTMDB_PROXY_CONFIG)\n"
            "  --check-config        validate, print the effective configuration, exit\n"
            "  --openapi             print the OpenAPI document (as /v1/openapi.json), exit\n"
            "  --help                this text\n"
            "  --version             print the version\n\n"
            "Settings (flag > environment > config file > default):\n",
            prog);
    for (size_t i = 0; i < NKEYS; i++) {
        char f[80], e[96];
        flag_name(&keys[i], f, sizeof f);
        env_name(&keys[i], e, sizeof e);
        fprintf(out, "  %s %s\n      %s\n      env %s, default \"%s\"%s\n", f,
                type_hint(keys[i].type), keys[i].help, e, keys[i].def,
                keys[i].type == CFG_LIST ? ", repeatable" : "");
    }
}

void config_print_effective(FILE *out, const proxy_config *c)
{
    proxy_config *mc = (proxy_config *)(uintptr_t)c; /* read-only use of the accessors */
    for (size_t i = 0; i < NKEYS; i++) {
        const config_key *k = &keys[i];
        switch (k->type) {
        case CFG_STR:
        case CFG_ADDR:
        case CFG_LEVEL: {
            const char *v = *str_at(mc, k);
            fprintf(out, "%s = %s\n", k->name,
                    (k->secret && v && *v) ? "<redacted>" : (v ? v : ""));
            break;
        }
        case CFG_UINT:
            fprintf(out, "%s = %llu\n", k->name, (unsigned long long)*u64_at(mc, k));
            break;
        case CFG_BOOL:
            fprintf(out, "%s = %s\n", k->name, *bool_at(mc, k) ? "true" : "false");
            break;
        case CFG_LIST: {
            const config_list *l = list_at(mc, k);
            fprintf(out, "%s = ", k->name);
            for (size_t j = 0; j < l->n; j++)
                fprintf(out, "%s%s", j ? "," : "", k->secret ? "<redacted>" : l->v[j]);
            fputc('\n', out);
            break;
        }
        }
    }
}
