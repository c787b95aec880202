/* openapi.c: builds the OpenAPI document from route.c's table and the
 * hand-written parts in openapi_parts.json (compiled in). The table gives
 * paths, methods, path and query parameters and security; the parts give
 * the schemas and, per operationId, tags, the request schema, the success
 * responses and route-specific errors. Errors every route of a kind can
 * answer are added here from the route's properties. The document must not
 * describe anything the table does not route (test_openapi checks both ways,
 * and that every route has its parts). */
#include "openapi.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "route.h"

#define SCHEMAS   "#/components/schemas/"
#define HEADERS   "#/components/headers/"
#define RESPONSES "#/components/responses/"

void openapi_path(const char *pattern, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = pattern; *p && o + 1 < cap; p++) {
        if (*p == ':') {
            while (*p && *p != '}')
                p++;
            if (*p == '\0')
                break;
        }
        out[o++] = *p;
    }
    out[o] = '\0';
}

cJSON *openapi_parts(void)
{
    return cJSON_ParseWithLength(openapi_parts_json, openapi_parts_json_len);
}

static cJSON *schema(const char *type)
{
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "type", type);
    return s;
}

static cJSON *ref(const char *prefix, const char *name)
{
    char target[128];
    snprintf(target, sizeof target, "%s%s", prefix, name);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "$ref", target);
    return r;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static cJSON *dup(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return v ? cJSON_Duplicate(v, 1) : NULL;
}

static void add_param(cJSON *params, const char *name, const char *in, bool required, cJSON *sch,
                      const char *desc)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "name", name);
    cJSON_AddStringToObject(p, "in", in);
    cJSON_AddBoolToObject(p, "required", required);
    if (desc)
        cJSON_AddStringToObject(p, "description", desc);
    cJSON_AddItemToObject(p, "schema", sch);
    cJSON_AddItemToArray(params, p);
}

static cJSON *query_schema(query_type t)
{
    switch (t) {
    case Q_U32:
        return ref(SCHEMAS, "U32");
    case Q_U64:
        return ref(SCHEMAS, "U64");
    case Q_BOOL:
        return schema("boolean");
    case Q_LIST: {
        cJSON *s = schema("array");
        cJSON_AddItemToObject(s, "items", schema("string"));
        return s;
    }
    case Q_STR:
        break;
    }
    return schema("string");
}

static cJSON *media(cJSON *sch, cJSON *example)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddItemToObject(m, "schema", sch);
    if (example)
        cJSON_AddItemToObject(m, "example", example);
    return m;
}

/* A response from its short form in the parts:
 *   {"description", "headers": [names], "example",
 *    one of "schema": name | "problem": true | "stream": true | "text": ctype}
 * Every response carries X-Request-Id; `wal_header` adds RSTMDB-WAL-Offset. */
static cJSON *expand_response(const cJSON *in, bool wal_header)
{
    cJSON *r = cJSON_CreateObject();
    const char *desc = str(in, "description");
    cJSON_AddStringToObject(r, "description", desc ? desc : "");

    cJSON *hs = cJSON_AddObjectToObject(r, "headers");
    cJSON_AddItemToObject(hs, "X-Request-Id", ref(HEADERS, "X-Request-Id"));
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(in, "headers");
    const cJSON *h;
    cJSON_ArrayForEach(h, names)
    {
        if (cJSON_IsString(h))
            cJSON_AddItemToObject(hs, h->valuestring, ref(HEADERS, h->valuestring));
    }
    if (wal_header)
        cJSON_AddItemToObject(hs, "RSTMDB-WAL-Offset", ref(HEADERS, "RSTMDB-WAL-Offset"));

    cJSON *content = cJSON_AddObjectToObject(r, "content");
    const char *sch = str(in, "schema"), *text = str(in, "text");
    if (sch) {
        cJSON_AddItemToObject(content, "application/json",
                              media(ref(SCHEMAS, sch), dup(in, "example")));
    } else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(in, "problem"))) {
        cJSON_AddItemToObject(content, "application/problem+json",
                              media(ref(SCHEMAS, "Problem"), NULL));
    } else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(in, "stream"))) {
        /* OpenAPI 3.1 has no schema for the items of a stream: the text is
         * described, and each event's data is named by an extension. */
        cJSON *s = schema("string");
        cJSON_AddStringToObject(s, "description",
                                "Opens with \"retry: <ms>\" and a comment. Each transition is an "
                                "event with id: <wal_offset> and one data: line of JSON "
                                "(SseEvent); comments (\": keepalive\") keep it alive; a stream "
                                "the proxy ends gets a final \"event: error\" (SseError).");
        cJSON *m = media(s, NULL);
        cJSON *ev = cJSON_AddObjectToObject(m, "x-sse-events");
        cJSON_AddItemToObject(ev, "message", ref(SCHEMAS, "SseEvent"));
        cJSON_AddItemToObject(ev, "error", ref(SCHEMAS, "SseError"));
        cJSON_AddItemToObject(content, "text/event-stream", m);
    } else if (text) {
        cJSON_AddItemToObject(content, text, media(schema("string"), NULL));
    }
    return r;
}

/* The errors every route of this kind can answer, before the route's own. */
static void generic_errors(const route *r, const char **out, size_t *n)
{
    out[(*n)++] = "400"; /* path, query, header or body */
    if (!r->auth_exempt) {
        out[(*n)++] = "401"; /* no or bad credentials */
        out[(*n)++] = "403"; /* a JWT without the scope, or outside its limits */
    }
    if (r->body != BODY_NONE)
        out[(*n)++] = "413";
    if (r->id != R_HEALTHZ && r->id != R_READYZ)
        out[(*n)++] = "429"; /* rate_limit_rps (and RATE_LIMITED upstream) */
    if (r->kind != ROUTE_LOCAL) {
        out[(*n)++] = "502";
        out[(*n)++] = "503";
        out[(*n)++] = "504";
    }
    out[(*n)++] = "500";
}

static void add_error(cJSON *resps, const cJSON *names, const char *status)
{
    const char *name = str(names, status);
    if (name != NULL && !cJSON_HasObjectItem(resps, status))
        cJSON_AddItemToObject(resps, status, ref(RESPONSES, name));
}

static void lower(const char *in, char *out, size_t cap)
{
    size_t i = 0;
    for (; in[i] && i + 1 < cap; i++)
        out[i] = (char)(in[i] >= 'A' && in[i] <= 'Z' ? in[i] - 'A' + 'a' : in[i]);
    out[i] = '\0';
}

static void add_parameters(cJSON *op, const route *r, const cJSON *parts)
{
    cJSON *params = cJSON_CreateArray();
    for (const char *p = strchr(r->pattern, '{'); p != NULL; p = strchr(p + 1, '{')) {
        const char *end = strchr(p, '}');
        const char *colon = memchr(p, ':', (size_t)(end - p));
        char name[64];
        size_t nl = (size_t)((colon ? colon : end) - p - 1);
        snprintf(name, sizeof name, "%.*s", (int)nl, p + 1);
        cJSON *sch = colon ? ref(SCHEMAS, "U32") : schema("string");
        add_param(params, name, "path", true, sch, NULL);
    }
    for (size_t k = 0; k < ROUTE_MAX_QUERY && r->query[k].name; k++) {
        cJSON *sch = query_schema(r->query[k].type);
        add_param(params, r->query[k].name, "query", false, sch, r->query[k].help);
        if (r->query[k].type == Q_LIST) {
            cJSON *last = cJSON_GetArrayItem(params, cJSON_GetArraySize(params) - 1);
            cJSON_AddStringToObject(last, "style", "form");
            cJSON_AddBoolToObject(last, "explode", true);
        }
    }
    const cJSON *h;
    cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(parts, "header_params"))
    {
        cJSON *sch = schema("string");
        const char *pattern = str(h, "pattern");
        if (pattern)
            cJSON_AddStringToObject(sch, "pattern", pattern);
        add_param(params, str(h, "name"), "header", false, sch, str(h, "description"));
    }
    if (cJSON_GetArraySize(params) > 0)
        cJSON_AddItemToObject(op, "parameters", params);
    else
        cJSON_Delete(params);
}

static cJSON *operation(const route *r, const cJSON *parts, const cJSON *error_names)
{
    cJSON *op = cJSON_CreateObject();
    cJSON_AddStringToObject(op, "operationId", r->metric_name);
    cJSON_AddStringToObject(op, "summary", r->summary);
    cJSON *tags = dup(parts, "tags");
    if (tags)
        cJSON_AddItemToObject(op, "tags", tags);
    if (r->op)
        cJSON_AddStringToObject(op, "x-rstmdb-op", r->op);
    /* An exempt route says so explicitly: no inherited requirement. */
    cJSON *sec = cJSON_AddArrayToObject(op, "security");
    if (!r->auth_exempt) {
        /* Any one of these: a bearer token (static or JWT), the JWT cookie,
         * and on the streams the access_token parameter. */
        const char *schemes[] = {"bearer", "cookie", "accessToken"};
        size_t n = r->kind == ROUTE_SSE ? 3 : 2;
        for (size_t i = 0; i < n; i++) {
            cJSON *b = cJSON_CreateObject();
            cJSON_AddItemToObject(b, schemes[i], cJSON_CreateArray());
            cJSON_AddItemToArray(sec, b);
        }
    }
    add_parameters(op, r, parts);

    const char *req = str(parts, "request");
    if (r->body != BODY_NONE && req != NULL) {
        cJSON *rb = cJSON_AddObjectToObject(op, "requestBody");
        cJSON_AddBoolToObject(rb, "required", r->body == BODY_REQUIRED);
        if (r->body == BODY_OPTIONAL)
            cJSON_AddStringToObject(rb, "description", "An empty body is {}");
        cJSON *c = cJSON_AddObjectToObject(rb, "content");
        cJSON_AddItemToObject(c, "application/json",
                              media(ref(SCHEMAS, req), dup(parts, "request_example")));
    }

    cJSON *resps = cJSON_AddObjectToObject(op, "responses");
    const cJSON *ok;
    cJSON_ArrayForEach(ok, cJSON_GetObjectItemCaseSensitive(parts, "responses"))
    {
        bool wal = r->kind == ROUTE_OP && ok->string[0] == '2';
        cJSON_AddItemToObject(resps, ok->string, expand_response(ok, wal));
    }
    const char *errs[16];
    size_t n = 0;
    generic_errors(r, errs, &n);
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(parts, "errors"))
    {
        if (cJSON_IsString(e) && n < sizeof errs / sizeof errs[0])
            errs[n++] = e->valuestring;
    }
    /* Statuses in ascending order, as readers expect. */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(errs[j - 1], errs[j]) > 0; j--) {
            const char *t = errs[j];
            errs[j] = errs[j - 1];
            errs[j - 1] = t;
        }
    for (size_t i = 0; i < n; i++)
        add_error(resps, error_names, errs[i]);
    return op;
}

/* components.responses are written in the short form too. */
static void expand_component_responses(cJSON *components)
{
    cJSON *resps = cJSON_GetObjectItemCaseSensitive(components, "responses");
    cJSON *r = resps ? resps->child : NULL;
    while (r != NULL) {
        cJSON *next = r->next;
        cJSON_ReplaceItemInObjectCaseSensitive(resps, r->string, expand_response(r, false));
        r = next;
    }
}

char *openapi_render(size_t *len)
{
    cJSON *parts = openapi_parts();
    cJSON *doc = cJSON_CreateObject();
    if (parts == NULL || doc == NULL) {
        cJSON_Delete(parts);
        cJSON_Delete(doc);
        return NULL;
    }
    cJSON_AddStringToObject(doc, "openapi", "3.1.0");
    cJSON *info = cJSON_AddObjectToObject(doc, "info");
    cJSON_AddStringToObject(info, "title", "rstmdb-proxy");
#ifdef RSTMDB_PROXY_VERSION
    cJSON_AddStringToObject(info, "version", RSTMDB_PROXY_VERSION);
#else
    cJSON_AddStringToObject(info, "version", "0");
#endif
    const cJSON *pinfo = cJSON_GetObjectItemCaseSensitive(parts, "info");
    cJSON_AddItemToObject(info, "description", dup(pinfo, "description"));
    cJSON_AddItemToObject(info, "license", dup(pinfo, "license"));
    cJSON_AddItemToObject(doc, "servers", dup(parts, "servers"));
    cJSON_AddItemToObject(doc, "tags", dup(parts, "tags"));
    cJSON *comps = dup(parts, "components");
    expand_component_responses(comps);

    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(parts, "operations");
    const cJSON *error_names = cJSON_GetObjectItemCaseSensitive(parts, "error_responses");
    cJSON *paths = cJSON_AddObjectToObject(doc, "paths");
    size_t n;
    const route *rt = route_table(&n);
    for (size_t i = 0; i < n; i++) {
        const route *r = &rt[i];
        char path[256], method[16];
        openapi_path(r->pattern, path, sizeof path);
        lower(r->method, method, sizeof method);
        cJSON *item = cJSON_GetObjectItemCaseSensitive(paths, path);
        if (item == NULL)
            item = cJSON_AddObjectToObject(paths, path);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(ops, r->metric_name);
        cJSON_AddItemToObject(item, method, operation(r, p, error_names));
    }
    cJSON_AddItemToObject(doc, "components", comps);
    char *s = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    cJSON_Delete(parts);
    if (s && len)
        *len = strlen(s);
    return s;
}
