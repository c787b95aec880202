/* config.h: the proxy's configuration as ONE declarative table.
 *
 * Every setting has a name, a type, a default, an environment variable
 * (RSTMDB_PROXY_<NAME>), a flag (--name-with-dashes) and a help line. The
 * config file parser, the environment, the flags, --help and --check-config
 * all come from that table. Precedence: flags > environment > file > default.
 */
#ifndef PROXY_CONFIG_H
#define PROXY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_LIST_MAX  64   /* entries in one list setting (tokens, origins) */
#define CONFIG_VALUE_MAX 4096 /* bytes in one value */

typedef struct config_list {
    char **v;
    size_t n;
} config_list;

typedef struct proxy_config {
    char *listen;
    char *listen_unix;
    char *upstream;
    char *upstream_token;
    char *upstream_token_file;
    bool upstream_tls;
    char *upstream_ca;
    char *upstream_cert;
    char *upstream_key;
    char *upstream_server_name;
    bool upstream_insecure;
    char *dns_server;
    uint64_t pool_size;
    uint64_t connect_timeout_ms;
    uint64_t request_timeout_ms;
    uint64_t backoff_initial_ms;
    uint64_t backoff_max_ms;
    config_list token;
    char *token_file;
    char *jwt_keys_file;
    char *jwt_audience;
    char *jwt_issuer;
    uint64_t jwt_leeway_s;
    char *jwt_cookie;
    uint64_t rate_limit_rps;
    uint64_t rate_limit_burst;
    uint64_t sse_max_streams_per_caller;
    config_list cors_origin;
    uint64_t max_body_bytes;
    uint64_t max_connections;
    uint64_t idle_timeout_s;
    uint64_t connection_memory_bytes;
    bool allow_flush_all;
    char *log_level;
    uint64_t shutdown_grace_ms;
    uint64_t sse_heartbeat_ms;
    uint64_t sse_retry_ms;
    uint64_t sse_buffer_bytes;
    uint64_t sse_max_streams;
    uint64_t sse_replay_page;
    uint64_t sse_max_held_events;
} proxy_config;

typedef enum config_type {
    CFG_STR,  /* free text */
    CFG_ADDR, /* "host:port" or "[v6]:port"; empty allowed only where noted */
    CFG_UINT, /* non-negative integer within [min, max] */
    CFG_BOOL, /* true/false (also 1/0, yes/no, on/off) */
    CFG_LIST, /* repeated keys or comma-separated values */
    CFG_LEVEL /* debug | info | warn | error */
} config_type;

typedef struct config_key {
    const char *name; /* file key; env RSTMDB_PROXY_<NAME>; flag --name-with-dashes */
    config_type type;
    size_t offset;     /* into proxy_config */
    const char *def;   /* default as text ("" = empty) */
    uint64_t min, max; /* CFG_UINT bounds */
    bool secret;       /* redacted by --check-config, never logged */
    bool reloadable;   /* taken over by SIGHUP */
    const char *help;
} config_key;

/* The table (read-only) and its length. */
const config_key *config_keys(size_t *n);
const config_key *config_find(const char *name);

/* What the command line asked for besides settings. */
typedef enum config_action {
    CONFIG_RUN = 0,
    CONFIG_HELP,
    CONFIG_VERSION,
    CONFIG_OPENAPI, /* print the OpenAPI document */
    CONFIG_CHECK
} config_action;

typedef struct config_error {
    char msg[512]; /* names the bad key, e.g. "pool_size: not an integer: \"x\"" */
} config_error;

/* Defaults only. config_free releases everything (also after a failed load). */
void config_init(proxy_config *c);
void config_free(proxy_config *c);

/* Full load: defaults, then the file (--config FILE or RSTMDB_PROXY_CONFIG;
 * none = no file), then `envp` (NULL-terminated "K=V" strings; NULL = none),
 * then argv[1..]. Returns 0, or -1 with err->msg naming the key (exit 2).
 * On error *c still holds a consistent (partly loaded) config: free it. */
int config_load(proxy_config *c, int argc, char *const argv[], char *const envp[],
                config_action *action, char *config_path, size_t config_path_cap,
                config_error *err);

/* Parse file text (one layer). `origin` names it in errors. */
int config_parse_text(proxy_config *c, const char *text, const char *origin, config_error *err);
/* Set one key from text, as a given layer would (lists append within the layer
 * once cleared: see config.c). */
int config_set(proxy_config *c, const char *name, const char *value, config_error *err);

/* Cross-key validation after all layers (e.g. upstream_cert needs upstream_key). */
int config_validate(const proxy_config *c, config_error *err);

/* --help text and --check-config output (secrets redacted). */
void config_print_help(FILE *out, const char *prog);
void config_print_effective(FILE *out, const proxy_config *c);

#endif
