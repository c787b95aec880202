/* route.c: the route table, path matching, percent-decoding and strict query
 * parsing. Pure functions over strings: no sockets, no MHD, no upstream. */
#include "route.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "jscan.h"
#include "scope.h"
#include "utf8.h"

#define NOQ                   \
    {                         \
        {                     \
            NULL, Q_STR, NULL \
        }                     \
    }

static const route routes[] = {
    {R_PING, "GET", "/v1/ping", "PING", ROUTE_OP, BODY_NONE, false, NOQ, "ping",
     "Round trip to the upstream (PING)", SCOPE_READ},
    {R_INFO, "GET", "/v1/info", "INFO", ROUTE_OP, BODY_NONE, false, NOQ, "info",
     "Upstream server information (INFO)", SCOPE_READ},
    {R_LIST_MACHINES, "GET", "/v1/machines", "LIST_MACHINES", ROUTE_OP, BODY_NONE, false, NOQ,
     "list_machines", "List machines and their versions (LIST_MACHINES)", SCOPE_READ},
    {R_PUT_MACHINE, "PUT", "/v1/machines/{machine}/versions/{version:u32}", "PUT_MACHINE", ROUTE_OP,
     BODY_REQUIRED, false, NOQ, "put_machine",
     "Store a machine definition version (PUT_MACHINE); 201 when created, 200 when identical",
     SCOPE_ADMIN},
    {R_GET_MACHINE, "GET", "/v1/machines/{machine}/versions/{version:u32}", "GET_MACHINE", ROUTE_OP,
     BODY_NONE, false, NOQ, "get_machine", "Read a machine definition (GET_MACHINE)", SCOPE_READ},
    {R_CREATE_INSTANCE, "POST", "/v1/instances", "CREATE_INSTANCE", ROUTE_OP, BODY_REQUIRED, false,
     NOQ, "create_instance", "Create an instance (CREATE_INSTANCE); 201 + Location", SCOPE_WRITE},
    {R_LIST_INSTANCES,
     "GET",
     "/v1/instances",
     "LIST_INSTANCES",
     ROUTE_OP,
     BODY_NONE,
     false,
     {{"machine", Q_STR, "exact machine name"},
      {"state", Q_STR, "exact state"},
      {"limit", Q_U32, "page size (default 100)"},
      {"offset", Q_U32, "items to skip"},
      {NULL, Q_STR, NULL}},
     "list_instances",
     "List instances (LIST_INSTANCES)",
     SCOPE_READ},
    {R_GET_INSTANCE, "GET", "/v1/instances/{instance_id}", "GET_INSTANCE", ROUTE_OP, BODY_NONE,
     false, NOQ, "get_instance", "Read an instance (GET_INSTANCE); ETag \"<last_wal_offset>\"",
     SCOPE_READ},
    {R_DELETE_INSTANCE, "DELETE", "/v1/instances/{instance_id}", "DELETE_INSTANCE", ROUTE_OP,
     BODY_OPTIONAL, false, NOQ, "delete_instance", "Soft-delete an instance (DELETE_INSTANCE)",
     SCOPE_WRITE},
    {R_APPLY_EVENT, "POST", "/v1/instances/{instance_id}/events", "APPLY_EVENT", ROUTE_OP,
     BODY_REQUIRED, false, NOQ, "apply_event",
     "Apply an event (APPLY_EVENT); If-Match \"<offset>\" = expected_wal_offset", SCOPE_WRITE},
    {R_SNAPSHOT_INSTANCE, "POST", "/v1/instances/{instance_id}/snapshot", "SNAPSHOT_INSTANCE",
     ROUTE_OP, BODY_OPTIONAL, false, NOQ, "snapshot_instance",
     "Snapshot an instance (SNAPSHOT_INSTANCE)", SCOPE_ADMIN},
    {R_WATCH_INSTANCE,
     "GET",
     "/v1/instances/{instance_id}/watch",
     "WATCH_INSTANCE",
     ROUTE_SSE,
     BODY_NONE,
     false,
     {{"include_ctx", Q_BOOL, "include ctx in events (default true)"},
      {"from_offset", Q_U64, "replay events with wal_offset >= this first"},
      {"last_event_id", Q_U64, "resume after this id (= Last-Event-ID header)"},
      {NULL, Q_STR, NULL}},
     "watch_instance",
     "Server-Sent Events of one instance (WATCH_INSTANCE)",
     SCOPE_WATCH},
    {R_BATCH, "POST", "/v1/batch", "BATCH", ROUTE_OP, BODY_REQUIRED, false, NOQ, "batch",
     "Several operations, atomic or best effort (BATCH)", SCOPE_NONE},
    {R_WAL_READ,
     "GET",
     "/v1/wal",
     "WAL_READ",
     ROUTE_OP,
     BODY_NONE,
     false,
     {{"from_offset", Q_U64, "first offset (default 0)"},
      {"limit", Q_U32, "records per page"},
      {NULL, Q_STR, NULL}},
     "wal_read",
     "Read WAL records (WAL_READ)",
     SCOPE_ADMIN},
    {R_WAL_STATS, "GET", "/v1/wal/stats", "WAL_STATS", ROUTE_OP, BODY_NONE, false, NOQ, "wal_stats",
     "WAL statistics (WAL_STATS)", SCOPE_ADMIN},
    {R_COMPACT, "POST", "/v1/wal/compact", "COMPACT", ROUTE_OP, BODY_OPTIONAL, false, NOQ,
     "compact", "Compact the WAL (COMPACT)", SCOPE_ADMIN},
    {R_FLUSH_ALL, "POST", "/v1/admin/flush-all", "FLUSH_ALL", ROUTE_OP, BODY_OPTIONAL, false, NOQ,
     "flush_all", "Remove all machines and instances (FLUSH_ALL); 403 unless allow_flush_all",
     SCOPE_ADMIN},
    {R_RPC, "POST", "/v1/rpc", NULL, ROUTE_RPC, BODY_REQUIRED, false, NOQ, "rpc",
     "Any operation by name: body {\"op\",\"params\"}; answers the raw response object",
     SCOPE_ADMIN},
    {R_WATCH_ALL,
     "GET",
     "/v1/watch",
     "WATCH_ALL",
     ROUTE_SSE,
     BODY_NONE,
     false,
     {{"machines", Q_LIST, "only these machines"},
      {"events", Q_LIST, "only these events"},
      {"from_states", Q_LIST, "only transitions from these states"},
      {"to_states", Q_LIST, "only transitions to these states"},
      {"include_ctx", Q_BOOL, "include ctx in events (default true)"},
      {"from_offset", Q_U64, "replay events with wal_offset >= this first"},
      {"last_event_id", Q_U64, "resume after this id (= Last-Event-ID header)"},
      {NULL, Q_STR, NULL}},
     "watch_all",
     "Server-Sent Events of all instances, filtered (WATCH_ALL)",
     SCOPE_WATCH},
    {R_HEALTHZ, "GET", "/healthz", NULL, ROUTE_LOCAL, BODY_NONE, true, NOQ, "healthz",
     "200 while the process runs", SCOPE_NONE},
    {R_READYZ, "GET", "/readyz", NULL, ROUTE_LOCAL, BODY_NONE, true, NOQ, "readyz",
     "200 while an upstream connection is ready, else 503", SCOPE_NONE},
    {R_METRICS, "GET", "/metrics", NULL, ROUTE_LOCAL, BODY_NONE, false, NOQ, "metrics",
     "Prometheus text exposition", SCOPE_ADMIN},
    {R_OPENAPI, "GET", "/v1/openapi.json", NULL, ROUTE_LOCAL, BODY_NONE, true, NOQ, "openapi",
     "This API as OpenAPI 3.1", SCOPE_NONE},
};

#define NROUTES (sizeof routes / sizeof routes[0])

const route *route_table(size_t *n)
{
    *n = NROUTES;
    return routes;
}

const route *route_get(route_id id)
{
    for (size_t i = 0; i < NROUTES; i++)
        if (routes[i].id == id)
            return &routes[i];
    return NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long route_pct_decode(const char *in, size_t len, char *out, size_t cap, unsigned flags)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (ch == '%') {
            if (len - i < 3)
                return -1;
            int hi = hexval(in[i + 1]), lo = hexval(in[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            ch = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (ch == '\0')
            return -1;
        if ((flags & PCT_REJECT_SLASH) && ch == '/')
            return -1;
        if ((flags & PCT_REJECT_CTL) && (ch == '\r' || ch == '\n'))
            return -1;
        if (o + 1 >= cap)
            return -1;
        out[o++] = (char)ch;
    }
    if (cap == 0)
        return -1;
    out[o] = '\0';
    return (long)o;
}

int route_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    if (s == NULL || *s == '\0')
        return -1;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

/* Split the next segment of a path that starts after a '/'. */
static size_t seg_len(const char *p)
{
    const char *e = strchr(p, '/');
    return e ? (size_t)(e - p) : strlen(p);
}

static size_t count_segments(const char *path)
{
    size_t n = 0;
    for (const char *p = path; *p; p++)
        if (*p == '/')
            n++;
    return n;
}

/* Quick reject: a path that matches a pattern shares its literal text up
 * to the first capture ("/v1/instances/" for the events route). Most of
 * the table fails here on the first bytes, before segments are counted. */
static bool prefix_ok(const char *pattern, const char *path)
{
    for (; *pattern && *pattern != '{'; pattern++, path++)
        if (*pattern != *path)
            return false;
    return true;
}

/* Compare one route pattern with the raw path. 1 = match (captures filled),
 * 0 = no match, -1 = shape matches but a capture is malformed (why set). */
static int match_one(const route *r, const char *path, size_t path_segs, route_match *m, bool fill)
{
    if (!prefix_ok(r->pattern, path) || count_segments(r->pattern) != path_segs)
        return 0;
    const char *pp = r->pattern + 1, *xp = path + 1;
    size_t ncaps = 0, used = 0;
    for (;;) {
        size_t pl = seg_len(pp), xl = seg_len(xp);
        if (pp[0] == '{') {
            if (xl == 0)
                return 0;
            if (!fill) {
                ncaps++;
            } else {
                const char *colon = memchr(pp, ':', pl);
                size_t nl = colon ? (size_t)(colon - pp - 1) : pl - 2;
                route_capture *c = &m->caps[ncaps++];
                /* The capture's name is the text inside the braces, copied
                 * into the match buffer so it is NUL-terminated. */
                if (used + nl + 1 > sizeof m->buf)
                    return -1;
                memcpy(m->buf + used, pp + 1, nl);
                m->buf[used + nl] = '\0';
                c->name = m->buf + used;
                used += nl + 1;
                c->is_u32 = colon != NULL;
                /* Ids may be any string the server accepts: a decoded
                 * segment may hold '/', CR, LF (matching ran on the raw
                 * path, so they cannot change the route). Only NUL and
                 * invalid UTF-8 are refused: neither can be a JSON string
                 * the server would take. A raw "." or ".." segment is a
                 * dot-segment that clients and intermediaries rewrite, never
                 * an id; "%2E%2E" names the instance "..". */
                long dl = route_pct_decode(xp, xl, m->buf + used, sizeof m->buf - used, 0);
                if (dl < 0 || !utf8_valid(m->buf + used, (size_t)dl)) {
                    snprintf(m->why, sizeof m->why,
                             "path segment for %s: bad percent-encoding, NUL (%%00), invalid "
                             "UTF-8 or too long",
                             c->name);
                    return -1;
                }
                if ((xl == 1 && xp[0] == '.') || (xl == 2 && xp[0] == '.' && xp[1] == '.')) {
                    snprintf(m->why, sizeof m->why,
                             "path segment for %s: a dot-segment (\".\" or \"..\"); encode "
                             "it as %%2E",
                             c->name);
                    return -1;
                }
                c->value = m->buf + used;
                used += (size_t)dl + 1;
                c->num = 0;
                if (c->is_u32 && route_parse_uint(c->value, UINT32_MAX, &c->num) != 0) {
                    snprintf(m->why, sizeof m->why,
                             "path segment %s must be a non-negative integer <= 4294967295",
                             c->name);
                    return -1;
                }
            }
        } else if (pl != xl || memcmp(pp, xp, pl) != 0) {
            return 0;
        }
        pp += pl;
        xp += xl;
        if (*pp == '\0')
            break;
        pp++;
        xp++;
    }
    if (fill)
        m->ncaps = ncaps;
    return 1;
}

static bool method_is(const route *r, const char *method)
{
    if (strcmp(r->method, method) == 0)
        return true;
    return strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0;
}

int route_allowed_methods(const char *path, char *allow, size_t cap)
{
    size_t n = 0;
    bool any = false;
    route_match tmp;
    size_t segs = count_segments(path);
    allow[0] = '\0';
    for (size_t i = 0; i < NROUTES; i++) {
        if (match_one(&routes[i], path, segs, &tmp, false) != 1)
            continue;
        if (strstr(allow, routes[i].method) != NULL)
            continue;
        int w = snprintf(allow + n, cap - n, "%s%s", any ? ", " : "", routes[i].method);
        if (w < 0 || (size_t)w >= cap - n)
            break;
        n += (size_t)w;
        any = true;
    }
    if (!any)
        return -1;
    if (strstr(allow, "GET") != NULL && n + 6 < cap) {
        snprintf(allow + n, cap - n, ", HEAD");
        n += 6;
    }
    if (n + 9 < cap)
        snprintf(allow + n, cap - n, ", OPTIONS");
    return 0;
}

route_status route_match_path(const char *method, const char *path, route_match *m)
{
    memset(m, 0, sizeof *m - sizeof m->buf);
    m->buf[0] = '\0';
    if (path == NULL || path[0] != '/')
        return ROUTE_NOT_FOUND;
    bool shape = false;
    size_t segs = count_segments(path);
    for (size_t i = 0; i < NROUTES; i++) {
        if (match_one(&routes[i], path, segs, m, false) != 1)
            continue;
        shape = true;
        if (!method_is(&routes[i], method))
            continue;
        int rc = match_one(&routes[i], path, segs, m, true);
        if (rc < 0)
            return ROUTE_BAD_PATH;
        m->r = &routes[i];
        return ROUTE_OK;
    }
    if (!shape)
        return ROUTE_NOT_FOUND;
    route_allowed_methods(path, m->allow, sizeof m->allow);
    return ROUTE_METHOD_NOT_ALLOWED;
}

int route_query_init(route_query *q, const route *r)
{
    q->r = r;
    q->why[0] = '\0';
    q->out = NULL; /* created by the first parameter: most requests have none */
    return 0;
}

void route_query_deinit(route_query *q)
{
    cJSON_Delete(q->out);
    q->out = NULL;
}

static const query_spec *find_spec(const route *r, const char *name)
{
    for (size_t i = 0; i < ROUTE_MAX_QUERY && r->query[i].name != NULL; i++)
        if (strcmp(r->query[i].name, name) == 0)
            return &r->query[i];
    return NULL;
}

int route_query_add(route_query *q, const char *rawkey, const char *rawvalue)
{
    char key[64], value[2048];
    if (rawvalue == NULL)
        rawvalue = "";
    if (route_pct_decode(rawkey, strlen(rawkey), key, sizeof key, 0) < 0) {
        snprintf(q->why, sizeof q->why, "query: unknown or malformed parameter name");
        return -1;
    }
    const query_spec *s = find_spec(q->r, key);
    if (s == NULL) {
        snprintf(q->why, sizeof q->why, "query: unknown parameter \"%.60s\"", key);
        return -1;
    }
    if (q->out == NULL && (q->out = cJSON_CreateObject()) == NULL) {
        snprintf(q->why, sizeof q->why, "out of memory");
        return -1;
    }
    if (route_pct_decode(rawvalue, strlen(rawvalue), value, sizeof value, 0) < 0) {
        snprintf(q->why, sizeof q->why, "query: %s: bad percent-encoding, NUL or too long",
                 s->name);
        return -1;
    }
    cJSON *prev = cJSON_GetObjectItemCaseSensitive(q->out, s->name);
    if (prev != NULL && s->type != Q_LIST) {
        snprintf(q->why, sizeof q->why, "query: %s given more than once", s->name);
        return -1;
    }
    cJSON *item = NULL;
    switch (s->type) {
    case Q_STR:
        item = cJSON_CreateString(value);
        break;
    case Q_U32:
    case Q_U64: {
        uint64_t v;
        if (route_parse_uint(value, s->type == Q_U32 ? UINT32_MAX : UINT64_MAX, &v) != 0) {
            snprintf(q->why, sizeof q->why, "query: %s must be a non-negative integer%s", s->name,
                     s->type == Q_U32 ? " <= 4294967295" : "");
            return -1;
        }
        char num[24];
        snprintf(num, sizeof num, "%llu", (unsigned long long)v);
        /* Raw keeps u64 offsets exact (a double would round above 2^53). */
        item = cJSON_CreateRaw(num);
        break;
    }
    case Q_BOOL:
        if (strcmp(value, "true") == 0)
            item = cJSON_CreateTrue();
        else if (strcmp(value, "false") == 0)
            item = cJSON_CreateFalse();
        else {
            snprintf(q->why, sizeof q->why, "query: %s must be true or false", s->name);
            return -1;
        }
        break;
    case Q_LIST: {
        cJSON *arr = prev;
        if (arr == NULL) {
            arr = cJSON_CreateArray();
            if (arr == NULL || !cJSON_AddItemToObject(q->out, s->name, arr)) {
                cJSON_Delete(arr);
                snprintf(q->why, sizeof q->why, "out of memory");
                return -1;
            }
        }
        char *p = value;
        for (;;) {
            char *comma = strchr(p, ',');
            if (comma)
                *comma = '\0';
            if (*p == '\0') {
                snprintf(q->why, sizeof q->why, "query: %s has an empty item", s->name);
                return -1;
            }
            if (cJSON_GetArraySize(arr) >= 256) {
                snprintf(q->why, sizeof q->why, "query: %s has more than 256 items", s->name);
                return -1;
            }
            cJSON_AddItemToArray(arr, cJSON_CreateString(p));
            if (!comma)
                break;
            p = comma + 1;
        }
        return 0;
    }
    }
    if (item == NULL || !cJSON_AddItemToObject(q->out, s->name, item)) {
        cJSON_Delete(item);
        snprintf(q->why, sizeof q->why, "out of memory");
        return -1;
    }
    return 0;
}
