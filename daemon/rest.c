/* rest.c: per-endpoint rules between HTTP and RCP params/results. It owns
 * the mapping rules of REST-API.md; it must not do I/O or build HTTP
 * responses (http.c does), and it must not re-serialise the client's body. */
#include "rest.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* One field put in front of the body: key and raw JSON value text. */
typedef struct field {
    const char *key;
    char *json;
} field;

#define MAX_FIELDS 16

typedef struct fields {
    field f[MAX_FIELDS];
    size_t n;
} fields;

static void fields_free(fields *fs)
{
    for (size_t i = 0; i < fs->n; i++)
        free(fs->f[i].json);
    fs->n = 0;
}

static bool is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

/* Does the body's value agree with the field's? Compared as parsed JSON. */
static bool same_value(const cJSON *body_value, const char *json)
{
    cJSON *v = cJSON_Parse(json);
    if (v == NULL)
        return false;
    bool eq = cJSON_Compare(body_value, v, 1);
    cJSON_Delete(v);
    return eq;
}

/* Add key=json unless the body has it; a body value that disagrees is a 400. */
static int add_field(fields *fs, const cJSON *body, const char *key, char *json, const char *src,
                     problem *p)
{
    if (json == NULL) {
        problem_local(p, 500, "INTERNAL_ERROR", "out of memory");
        return -1;
    }
    const cJSON *bv = body ? cJSON_GetObjectItemCaseSensitive(body, key) : NULL;
    if (bv != NULL) {
        bool eq = same_value(bv, json);
        free(json);
        if (!eq) {
            char d[200];
            snprintf(d, sizeof d, "%s from the %s disagrees with \"%s\" in the body", key, src,
                     key);
            problem_local(p, 400, "BAD_REQUEST", d);
            return -1;
        }
        return 0;
    }
    if (fs->n >= MAX_FIELDS) {
        free(json);
        problem_local(p, 500, "INTERNAL_ERROR", "too many fields");
        return -1;
    }
    fs->f[fs->n].key = key;
    fs->f[fs->n].json = json;
    fs->n++;
    return 0;
}

static char *json_string(const char *s)
{
    cJSON *j = cJSON_CreateString(s);
    char *out = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    return out;
}

static char *json_u64(uint64_t v)
{
    char *s = malloc(24);
    if (s)
        snprintf(s, 24, "%llu", (unsigned long long)v);
    return s;
}

static int utf8_or_400(const char *what, const char *s, problem *p)
{
    if (json_utf8_valid(s, strlen(s)))
        return 0;
    char d[160];
    snprintf(d, sizeof d, "%s is not valid UTF-8", what);
    problem_local(p, 400, "BAD_REQUEST", d);
    return -1;
}

/* If-Match: "<offset>" (a strong ETag as sent by GET_INSTANCE); W/ is refused
 * because a weak validator cannot guard a write. */
static int parse_if_match(const char *h, uint64_t *out)
{
    while (*h == ' ')
        h++;
    size_t n = strlen(h);
    while (n > 0 && h[n - 1] == ' ')
        n--;
    if (n < 3 || h[0] != '"' || h[n - 1] != '"' || n - 2 > 20)
        return -1;
    char tmp[24];
    memcpy(tmp, h + 1, n - 2);
    tmp[n - 2] = '\0';
    return route_parse_uint(tmp, UINT64_MAX, out);
}

static const char *const rpc_refused[] = {"HELLO", "AUTH", "BYE", "UNWATCH"};

static int build_rpc(const rest_input *in, const cJSON *body, rest_call *out, problem *p)
{
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(body, "op");
    if (!cJSON_IsString(op) || op->valuestring[0] == '\0') {
        problem_local(p, 400, "BAD_REQUEST", "body needs \"op\": a string");
        return -1;
    }
    const char *o = op->valuestring;
    /* An op name the server cannot decode closes its connection: only
     * upper-case names can be ops, anything else is refused here. */
    size_t ol = strlen(o);
    if (ol >= sizeof out->op || strspn(o, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != ol) {
        problem_local(p, 400, "BAD_REQUEST", "op must be an upper-case operation name");
        return -1;
    }
    for (size_t i = 0; i < sizeof rpc_refused / sizeof rpc_refused[0]; i++)
        if (strcmp(o, rpc_refused[i]) == 0) {
            char d[160];
            snprintf(d, sizeof d, "%s manages the proxy's own sessions and is refused on /v1/rpc",
                     o);
            problem_local(p, 400, "BAD_REQUEST", d);
            return -1;
        }
    if (strncmp(o, "WATCH_", 6) == 0) {
        problem_local(p, 400, "BAD_REQUEST",
                      "subscriptions are served as Server-Sent Events: GET /v1/watch or "
                      "/v1/instances/{id}/watch");
        return -1;
    }
    if (strcmp(o, "FLUSH_ALL") == 0 && !in->allow_flush_all) {
        problem_local(p, 403, "FORBIDDEN", "FLUSH_ALL is disabled by the proxy's configuration");
        return -1;
    }
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(body, "params");
    if (params != NULL && !cJSON_IsObject(params)) {
        problem_local(p, 400, "BAD_REQUEST", "\"params\" must be a JSON object");
        return -1;
    }
    size_t vs = 0, vl = 0;
    const char *src = "{}";
    size_t slen = 2;
    if (params != NULL && json_member(in->body, in->body_len, "params", &vs, &vl) == 0) {
        src = in->body + vs;
        slen = vl;
    }
    out->params = malloc(slen + 1);
    if (out->params == NULL) {
        problem_local(p, 500, "INTERNAL_ERROR", "out of memory");
        return -1;
    }
    memcpy(out->params, src, slen);
    out->params[slen] = '\0';
    out->params_len = slen;
    snprintf(out->op, sizeof out->op, "%s", o);
    out->raw_envelope = true;
    out->resend_safe = false;
    return 0;
}

static bool is_read_op(route_id id)
{
    switch (id) {
    case R_PING:
    case R_INFO:
    case R_LIST_MACHINES:
    case R_GET_MACHINE:
    case R_LIST_INSTANCES:
    case R_GET_INSTANCE:
    case R_WAL_READ:
    case R_WAL_STATS:
        return true;
    default:
        return false;
    }
}

int rest_build_call(const rest_input *in, rest_call *out, problem *p)
{
    memset(out, 0, sizeof *out);
    const route *r = in->m->r;
    cJSON *body = NULL;
    const char *btext = NULL;
    size_t blen = 0;

    if (r->id == R_FLUSH_ALL && !in->allow_flush_all) {
        problem_local(p, 403, "FORBIDDEN", "FLUSH_ALL is disabled by the proxy's configuration");
        return -1;
    }
    if (r->body != BODY_NONE && in->body != NULL && !is_blank(in->body, in->body_len)) {
        const char *why = NULL;
        if (json_validate(in->body, in->body_len, JSON_MAX_DEPTH, &why) != 0) {
            char d[200];
            snprintf(d, sizeof d, "body is not valid JSON: %s", why ? why : "syntax error");
            problem_local(p, 400, "BAD_REQUEST", d);
            return -1;
        }
        body = cJSON_ParseWithLength(in->body, in->body_len);
        if (body == NULL || !cJSON_IsObject(body)) {
            cJSON_Delete(body);
            problem_local(p, 400, "BAD_REQUEST", "body must be a JSON object");
            return -1;
        }
        btext = in->body;
        blen = in->body_len;
    } else if (r->body == BODY_REQUIRED) {
        problem_local(p, 400, "BAD_REQUEST", "body must be a JSON object");
        return -1;
    }

    if (r->kind == ROUTE_RPC) {
        int rc = build_rpc(in, body, out, p);
        cJSON_Delete(body);
        return rc;
    }

    fields fs = {.n = 0};
    for (size_t i = 0; i < in->m->ncaps; i++) {
        const route_capture *c = &in->m->caps[i];
        if (!c->is_u32 && utf8_or_400(c->name, c->value, p) != 0)
            goto fail;
        char *j = c->is_u32 ? json_u64(c->num) : json_string(c->value);
        if (add_field(&fs, body, c->name, j, "path", p) != 0)
            goto fail;
    }
    if (in->query != NULL) {
        for (const cJSON *q = in->query->child; q != NULL; q = q->next) {
            if (cJSON_IsString(q) && utf8_or_400(q->string, q->valuestring, p) != 0)
                goto fail;
            if (add_field(&fs, body, q->string, cJSON_PrintUnformatted(q), "query", p) != 0)
                goto fail;
        }
    }
    /* WAL_READ needs from_offset; REST-API.md makes it default to 0. */
    if (r->id == R_WAL_READ &&
        (in->query == NULL || cJSON_GetObjectItemCaseSensitive(in->query, "from_offset") == NULL)) {
        if (add_field(&fs, body, "from_offset", json_u64(0), "default", p) != 0)
            goto fail;
    }
    bool has_key = body && cJSON_GetObjectItemCaseSensitive(body, "idempotency_key") != NULL;
    if (in->idempotency_key != NULL) {
        if (utf8_or_400("Idempotency-Key", in->idempotency_key, p) != 0)
            goto fail;
        if (add_field(&fs, body, "idempotency_key", json_string(in->idempotency_key),
                      "Idempotency-Key header", p) != 0)
            goto fail;
        has_key = true;
    }
    if (in->if_match != NULL && r->id == R_APPLY_EVENT) {
        uint64_t off;
        if (parse_if_match(in->if_match, &off) != 0) {
            problem_local(p, 400, "BAD_REQUEST", "If-Match must be \"<wal_offset>\" (an ETag)");
            goto fail;
        }
        if (add_field(&fs, body, "expected_wal_offset", json_u64(off), "If-Match header", p) != 0)
            goto fail;
        out->if_match = true;
    }

    /* Splice: '{' + fields + ',' + the body's members + '}'. */
    size_t inner0 = 0, inner1 = 0;
    if (btext != NULL) {
        const char *lb = memchr(btext, '{', blen);
        const char *rb = btext + blen;
        while (rb > btext && rb[-1] != '}')
            rb--;
        inner0 = (size_t)(lb - btext) + 1;
        inner1 = (size_t)(rb - btext) - 1;
        if (is_blank(btext + inner0, inner1 - inner0))
            inner1 = inner0;
    }
    size_t need = 2 + (inner1 - inner0) + 1;
    for (size_t i = 0; i < fs.n; i++)
        need += strlen(fs.f[i].key) + strlen(fs.f[i].json) + 4;
    char *s = malloc(need + 1);
    if (s == NULL) {
        problem_local(p, 500, "INTERNAL_ERROR", "out of memory");
        goto fail;
    }
    size_t n = 0;
    s[n++] = '{';
    for (size_t i = 0; i < fs.n; i++)
        n += (size_t)sprintf(s + n, "%s\"%s\":%s", i ? "," : "", fs.f[i].key, fs.f[i].json);
    if (inner1 > inner0) {
        if (fs.n)
            s[n++] = ',';
        memcpy(s + n, btext + inner0, inner1 - inner0);
        n += inner1 - inner0;
    }
    s[n++] = '}';
    s[n] = '\0';
    out->params = s;
    out->params_len = n;
    snprintf(out->op, sizeof out->op, "%s", r->op);
    out->resend_safe =
        is_read_op(r->id) || r->id == R_DELETE_INSTANCE || (r->id == R_APPLY_EVENT && has_key);
    fields_free(&fs);
    cJSON_Delete(body);
    return 0;
fail:
    fields_free(&fs);
    cJSON_Delete(body);
    return -1;
}

void rest_call_deinit(rest_call *c)
{
    free(c->params);
    c->params = NULL;
}

long rest_pct_encode(const char *in, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    /* "." and ".." alone would be dot-segments that a client resolves
     * away (/v1/instances/.. -> /v1/): encode their dots. */
    bool dots = strcmp(in, ".") == 0 || strcmp(in, "..") == 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        bool keep = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || (*p == '.' && !dots) || *p == '_' ||
                    *p == '~';
        if (n + (keep ? 1 : 3) >= cap)
            return -1;
        if (keep) {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    if (cap == 0)
        return -1;
    out[n] = '\0';
    return (long)n;
}

int rest_json_member(const char *json, size_t len, const char *key, size_t *vstart, size_t *vlen)
{
    return json_member(json, len, key, vstart, vlen);
}

static bool member_is_true(const char *result, size_t len, const char *key)
{
    size_t vs, vl;
    return json_member(result, len, key, &vs, &vl) == 0 && vl == 4 &&
           memcmp(result + vs, "true", 4) == 0;
}

/* A member that is a JSON string, decoded (only simple escapes matter here). */
static int member_string(const char *result, size_t len, const char *key, char *out, size_t cap)
{
    size_t vs, vl;
    if (json_member(result, len, key, &vs, &vl) != 0 || vl < 2 || result[vs] != '"')
        return -1;
    cJSON *j = cJSON_ParseWithLength(result + vs, vl);
    int rc = -1;
    if (cJSON_IsString(j) && strlen(j->valuestring) < cap) {
        strcpy(out, j->valuestring);
        rc = 0;
    }
    cJSON_Delete(j);
    return rc;
}

void rest_answer_for(const route_match *m, const char *result, size_t len, rest_answer *a)
{
    memset(a, 0, sizeof *a);
    a->status = 200;
    if (result == NULL)
        return;
    const route *r = m->r;
    if (r->id == R_PUT_MACHINE) {
        if (member_is_true(result, len, "created")) {
            a->status = 201;
            char enc[600];
            if (m->ncaps == 2 && rest_pct_encode(m->caps[0].value, enc, sizeof enc) >= 0)
                snprintf(a->location, sizeof a->location, "/v1/machines/%s/versions/%llu", enc,
                         (unsigned long long)m->caps[1].num);
        }
    } else if (r->id == R_CREATE_INSTANCE) {
        a->status = 201;
        char id[512], enc[1100];
        if (member_string(result, len, "instance_id", id, sizeof id) == 0 &&
            rest_pct_encode(id, enc, sizeof enc) >= 0)
            snprintf(a->location, sizeof a->location, "/v1/instances/%s", enc);
    } else if (r->id == R_GET_INSTANCE) {
        size_t vs, vl;
        if (json_member(result, len, "last_wal_offset", &vs, &vl) == 0 && vl > 0 && vl <= 20 &&
            strspn(result + vs, "0123456789") >= vl)
            snprintf(a->etag, sizeof a->etag, "\"%.*s\"", (int)vl, result + vs);
    }
}
