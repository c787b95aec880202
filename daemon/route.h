/* route.h: the proxy's route table and request-line parsing.
 *
 * One table maps method + path pattern to an operation. Matching works on the
 * raw (still percent-encoded) path so that an encoded '/' inside a segment
 * cannot change which route matches; captured segments are decoded after.
 * Query strings are parsed strictly against the route's declared parameters.
 */
#ifndef PROXY_ROUTE_H
#define PROXY_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cJSON cJSON;

typedef enum route_id {
    R_PING,
    R_INFO,
    R_LIST_MACHINES,
    R_PUT_MACHINE,
    R_GET_MACHINE,
    R_CREATE_INSTANCE,
    R_LIST_INSTANCES,
    R_GET_INSTANCE,
    R_DELETE_INSTANCE,
    R_APPLY_EVENT,
    R_SNAPSHOT_INSTANCE,
    R_WATCH_INSTANCE,
    R_BATCH,
    R_WAL_READ,
    R_WAL_STATS,
    R_COMPACT,
    R_FLUSH_ALL,
    R_RPC,
    R_WATCH_ALL,
    R_HEALTHZ,
    R_READYZ,
    R_METRICS,
    R_OPENAPI,
    R_COUNT
} route_id;

typedef enum route_kind {
    ROUTE_OP,   /* one upstream operation, JSON in and out */
    ROUTE_RPC,  /* POST /v1/rpc: raw op */
    ROUTE_SSE,  /* Server-Sent Events stream */
    ROUTE_LOCAL /* answered by the proxy itself */
} route_kind;

typedef enum route_body {
    BODY_NONE,     /* a body is ignored (GET/DELETE) */
    BODY_OPTIONAL, /* empty body = {} */
    BODY_REQUIRED  /* must be a JSON object */
} route_body;

typedef enum query_type {
    Q_STR,  /* any text (may be empty) */
    Q_U32,  /* non-negative integer <= 4294967295 */
    Q_U64,  /* non-negative integer <= 18446744073709551615 */
    Q_BOOL, /* true | false */
    Q_LIST  /* repeated keys and/or comma-separated values */
} query_type;

typedef struct query_spec {
    const char *name;
    query_type type;
    const char *help;
} query_spec;

#define ROUTE_MAX_QUERY 8
#define ROUTE_MAX_CAPS  2

typedef struct route {
    route_id id;
    const char *method;
    /* Literal segments and captures: "{name}" (string) or "{name:u32}". The
     * capture name is the params key it fills. */
    const char *pattern;
    const char *op; /* RCP op, NULL for local routes */
    route_kind kind;
    route_body body;
    bool auth_exempt;                        /* /healthz, /readyz, openapi */
    const query_spec query[ROUTE_MAX_QUERY]; /* terminated by name NULL */
    const char *metric_name;                 /* label value in /metrics */
    const char *summary;                     /* OpenAPI */
    /* What a JWT must grant (scope.h); SCOPE_NONE on the routes that need
     * no token, and on BATCH, which needs what each of its ops needs. */
    unsigned scope;
} route;

const route *route_table(size_t *n);
const route *route_get(route_id id);

typedef enum route_status {
    ROUTE_OK = 0,
    ROUTE_NOT_FOUND,          /* 404 */
    ROUTE_METHOD_NOT_ALLOWED, /* 405, see allow */
    ROUTE_BAD_PATH            /* 400, see why */
} route_status;

typedef struct route_capture {
    const char *name; /* params key, e.g. "instance_id" */
    bool is_u32;
    char *value;  /* decoded (may hold '/', CR, LF; never NUL; valid UTF-8), into match.buf */
    uint64_t num; /* when is_u32 */
} route_capture;

typedef struct route_match {
    const route *r;
    route_capture caps[ROUTE_MAX_CAPS];
    size_t ncaps;
    char allow[96]; /* for 405: "GET, PUT" */
    char why[160];  /* for 400 */
    char buf[4096]; /* decoded captures */
} route_match;

/* Match `method` + raw `path` (no query string). HEAD matches GET routes. */
route_status route_match_path(const char *method, const char *path, route_match *m);
/* Methods allowed on the path (for OPTIONS/CORS); 0 and *allow set, or -1 when
 * no route has this path. */
int route_allowed_methods(const char *path, char *allow, size_t cap);

/* Percent-decoding. Flags say what is rejected AFTER decoding. Returns the
 * decoded length (out is NUL-terminated) or -1: bad escape, rejected byte,
 * or output longer than cap - 1. */
#define PCT_REJECT_SLASH 1u
#define PCT_REJECT_CTL   2u /* CR and LF */
long route_pct_decode(const char *in, size_t len, char *out, size_t cap, unsigned flags);

/* Strict query parsing. Feed every raw (still encoded) key/value pair with
 * route_query_add (value may be NULL for "?k"), then read `out`: a cJSON
 * object {name: string|raw number|bool|[strings]} of the parameters given,
 * or NULL when none was (no allocation for a URL without a query).
 * Returns 0, or -1 with why set (400): unknown parameter, bad type,
 * repeated scalar, bad escape. */
typedef struct route_query {
    const route *r;
    cJSON *out;
    char why[160];
} route_query;
int route_query_init(route_query *q, const route *r);
int route_query_add(route_query *q, const char *key, const char *value);
void route_query_deinit(route_query *q);

/* Parse a non-negative decimal integer, no sign, no spaces, <= max. */
int route_parse_uint(const char *s, uint64_t max, uint64_t *out);

#endif
