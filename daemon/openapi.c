/* openapi.c: builds the OpenAPI document from route.c's table. It must not
 * describe anything the table does not route (a unit test checks both ways). */
#include "openapi.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "route.h"

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

static cJSON *schema(const char *type)
{
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "type", type);
    return s;
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
    case Q_U32: {
        cJSON *s = schema("integer");
        cJSON_AddNumberToObject(s, "minimum", 0);
        cJSON_AddNumberToObject(s, "maximum", 4294967295.0);
        return s;
    }
    case Q_U64: {
        cJSON *s = schema("integer");
        cJSON_AddNumberToObject(s, "minimum", 0);
        return s;
    }
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

static cJSON *content(const char *ctype, cJSON *sch)
{
    cJSON *c = cJSON_CreateObject();
    cJSON *m = cJSON_CreateObject();
    cJSON_AddItemToObject(m, "schema", sch);
    cJSON_AddItemToObject(c, ctype, m);
    return c;
}

static cJSON *response(const char *desc, const char *ctype, cJSON *sch)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "description", desc);
    if (ctype)
        cJSON_AddItemToObject(r, "content", content(ctype, sch));
    else
        cJSON_Delete(sch);
    return r;
}

static cJSON *ref(const char *target)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "$ref", target);
    return r;
}

static void lower(const char *in, char *out, size_t cap)
{
    size_t i = 0;
    for (; in[i] && i + 1 < cap; i++)
        out[i] = (char)(in[i] >= 'A' && in[i] <= 'Z' ? in[i] - 'A' + 'a' : in[i]);
    out[i] = '\0';
}

char *openapi_render(size_t *len)
{
    cJSON *doc = cJSON_CreateObject();
    if (doc == NULL)
        return NULL;
    cJSON_AddStringToObject(doc, "openapi", "3.1.0");
    cJSON *info = cJSON_AddObjectToObject(doc, "info");
    cJSON_AddStringToObject(info, "title", "rstmdb-proxy");
#ifdef RSTMDB_PROXY_VERSION
    cJSON_AddStringToObject(info, "version", RSTMDB_PROXY_VERSION);
#else
    cJSON_AddStringToObject(info, "version", "0");
#endif
    cJSON_AddStringToObject(info, "description",
                            "REST and Server-Sent Events in front of an rstmdb server. Each "
                            "endpoint is one RCP operation; the body is its params object and a "
                            "success answers its result object unchanged.");

    cJSON *comps = cJSON_AddObjectToObject(doc, "components");
    cJSON *schemas = cJSON_AddObjectToObject(comps, "schemas");
    cJSON *prob = schema("object");
    cJSON *props = cJSON_AddObjectToObject(prob, "properties");
    const char *pf[][2] = {{"type", "string"},   {"title", "string"}, {"status", "integer"},
                           {"detail", "string"}, {"code", "string"},  {"retryable", "boolean"},
                           {"details", "object"}};
    cJSON *req = cJSON_AddArrayToObject(prob, "required");
    for (size_t i = 0; i < sizeof pf / sizeof pf[0]; i++) {
        cJSON_AddItemToObject(props, pf[i][0], schema(pf[i][1]));
        cJSON_AddItemToArray(req, cJSON_CreateString(pf[i][0]));
    }
    cJSON_AddItemToObject(schemas, "Problem", prob);
    cJSON *sec = cJSON_AddObjectToObject(comps, "securitySchemes");
    cJSON *bearer = cJSON_AddObjectToObject(sec, "bearer");
    cJSON_AddStringToObject(bearer, "type", "http");
    cJSON_AddStringToObject(bearer, "scheme", "bearer");

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
        cJSON *op = cJSON_AddObjectToObject(item, method);
        cJSON_AddStringToObject(op, "operationId", r->metric_name);
        cJSON_AddStringToObject(op, "summary", r->summary);
        if (r->op)
            cJSON_AddStringToObject(op, "x-rstmdb-op", r->op);
        if (!r->auth_exempt) {
            cJSON *s = cJSON_AddArrayToObject(op, "security");
            cJSON *b = cJSON_CreateObject();
            cJSON_AddItemToObject(b, "bearer", cJSON_CreateArray());
            cJSON_AddItemToArray(s, b);
        }
        cJSON *params = cJSON_CreateArray();
        for (const char *p = strchr(r->pattern, '{'); p != NULL; p = strchr(p + 1, '{')) {
            const char *end = strchr(p, '}');
            const char *colon = memchr(p, ':', (size_t)(end - p));
            char name[64];
            size_t nl = (size_t)((colon ? colon : end) - p - 1);
            snprintf(name, sizeof name, "%.*s", (int)nl, p + 1);
            cJSON *sch = colon ? query_schema(Q_U32) : schema("string");
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
        if (r->id == R_APPLY_EVENT) {
            add_param(params, "If-Match", "header", false, schema("string"),
                      "\"<wal_offset>\" from GET's ETag = expected_wal_offset");
            add_param(params, "Idempotency-Key", "header", false, schema("string"), NULL);
        } else if (r->id == R_CREATE_INSTANCE || r->id == R_DELETE_INSTANCE) {
            add_param(params, "Idempotency-Key", "header", false, schema("string"), NULL);
        } else if (r->kind == ROUTE_SSE) {
            add_param(params, "Last-Event-ID", "header", false, schema("string"),
                      "resume after this event id");
        }
        if (cJSON_GetArraySize(params) > 0)
            cJSON_AddItemToObject(op, "parameters", params);
        else
            cJSON_Delete(params);
        if (r->body != BODY_NONE) {
            cJSON *rb = cJSON_AddObjectToObject(op, "requestBody");
            cJSON_AddBoolToObject(rb, "required", r->body == BODY_REQUIRED);
            cJSON_AddItemToObject(rb, "content", content("application/json", schema("object")));
        }
        cJSON *resps = cJSON_AddObjectToObject(op, "responses");
        if (r->kind == ROUTE_SSE) {
            cJSON_AddItemToObject(resps, "200",
                                  response("event stream", "text/event-stream", schema("string")));
        } else if (r->id == R_METRICS) {
            cJSON_AddItemToObject(resps, "200",
                                  response("Prometheus text", "text/plain", schema("string")));
        } else {
            if (r->id == R_CREATE_INSTANCE || r->id == R_PUT_MACHINE)
                cJSON_AddItemToObject(resps, "201",
                                      response("created", "application/json", schema("object")));
            if (r->id != R_CREATE_INSTANCE)
                cJSON_AddItemToObject(
                    resps, "200",
                    response("the operation's result", "application/json", schema("object")));
        }
        cJSON_AddItemToObject(
            resps, "default",
            response("error", "application/problem+json", ref("#/components/schemas/Problem")));
    }
    char *s = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (s && len)
        *len = strlen(s);
    return s;
}
