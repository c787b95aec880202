/* rest.c: per-endpoint rules between HTTP and RCP params/results. It owns
 * the mapping rules of REST-API.md and every REST decision of a call (the
 * route, the params, If-Match, the raw envelope, the answer's status and
 * headers); it must not do I/O or build HTTP responses (http.c does), and
 * it must not re-serialise the client's body nor parse it into a tree. */
#include "rest.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jscan.h"
#include "strbuf.h"
#include "text.h"
#include "utf8.h"

/* One field put in front of the body: key and its JSON value text (in
 * `text`, the fields' shared buffer). */
typedef struct field {
    const char *key;
    size_t off, len;
} field;

#define MAX_FIELDS 16
/* Body members recorded in one scan; a larger body is looked up by key. */
#define MAX_MEMBERS 32

/* The body as scanned once: its members, for the top-level lookups. */
typedef struct body_view {
    const char *text; /* NULL: no body */
    size_t len;
    jscan_member m[MAX_MEMBERS];
    size_t n; /* members in the body (may exceed MAX_MEMBERS) */
} body_view;

typedef struct fields {
    field f[MAX_FIELDS];
    size_t n;
    strbuf text;
} fields;

static bool is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

static bool body_find(const body_view *b, const char *key, jscan_member *out)
{
    if (b->text == NULL)
        return false;
    if (b->n <= MAX_MEMBERS) {
        const jscan_member *m = jscan_find(b->text, b->m, b->n, key);
        if (m != NULL)
            *out = *m;
        return m != NULL;
    }
    return jscan_get(b->text, b->len, key, out) == 0;
}

/* Does the body's value agree with the field's? Compared as parsed JSON
 * (1 and 1.0, "\u0061" and "a" agree): only this member is parsed, and
 * only when the body repeats a field, which is rare. */
static bool same_value(const body_view *b, const jscan_member *bm, const char *json, size_t len)
{
    cJSON *x = cJSON_ParseWithLength(b->text + bm->val_off, bm->val_len);
    cJSON *y = cJSON_ParseWithLength(json, len);
    bool eq = x != NULL && y != NULL && cJSON_Compare(x, y, 1);
    cJSON_Delete(x);
    cJSON_Delete(y);
    return eq;
}

static int oom(problem *p)
{
    problem_local(p, 500, "INTERNAL_ERROR", "out of memory");
    return -1;
}

/* Add the field key = (the JSON text appended to fs->text since `start`)
 * unless the body has it; a body value that disagrees is a 400. */
static int add_field(fields *fs, const body_view *b, const char *key, size_t start, const char *src,
                     problem *p)
{
    if (strbuf_failed(&fs->text))
        return oom(p);
    jscan_member bm;
    if (body_find(b, key, &bm)) {
        bool eq = same_value(b, &bm, fs->text.data + start, fs->text.len - start);
        fs->text.len = start; /* the body's own spelling goes upstream */
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
        problem_local(p, 500, "INTERNAL_ERROR", "too many fields");
        return -1;
    }
    fs->f[fs->n++] = (field){key, start, fs->text.len - start};
    return 0;
}

static int add_string(fields *fs, const body_view *b, const char *key, const char *v,
                      const char *src, problem *p)
{
    size_t start = fs->text.len;
    strbuf_jstr(&fs->text, v, strlen(v));
    return add_field(fs, b, key, start, src, p);
}

static int add_u64(fields *fs, const body_view *b, const char *key, uint64_t v, const char *src,
                   problem *p)
{
    size_t start = fs->text.len;
    strbuf_u64(&fs->text, v);
    return add_field(fs, b, key, start, src, p);
}

static int utf8_or_400(const char *what, const char *s, problem *p)
{
    if (utf8_valid(s, strlen(s)))
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

/* Validate the body once, as a JSON object, recording its members. */
static int scan_body(const rest_input *in, route_body rule, body_view *b, problem *p)
{
    b->text = NULL;
    b->len = b->n = 0;
    if (rule == BODY_NONE || in->body == NULL || is_blank(in->body, in->body_len)) {
        if (rule != BODY_REQUIRED)
            return 0;
        problem_local(p, 400, "BAD_REQUEST", "body must be a JSON object");
        return -1;
    }
    const char *why = NULL;
    if (jscan_object_why(in->body, in->body_len, JSCAN_SERDE_DEPTH, b->m, MAX_MEMBERS, &b->n,
                         &why) == 0) {
        b->text = in->body;
        b->len = in->body_len;
        return 0;
    }
    /* Tell JSON that is not an object from text that is not JSON. */
    if (jscan_validate(in->body, in->body_len, JSCAN_SERDE_DEPTH, NULL, &why) == 0) {
        problem_local(p, 400, "BAD_REQUEST", "body must be a JSON object");
        return -1;
    }
    char d[200];
    snprintf(d, sizeof d, "body is not valid JSON: %s", why ? why : "syntax error");
    problem_local(p, 400, "BAD_REQUEST", d);
    return -1;
}

static const char *const rpc_refused[] = {"HELLO", "AUTH", "BYE", "UNWATCH"};

static int build_rpc(const rest_input *in, const body_view *b, rest_call *out, problem *p)
{
    jscan_member op;
    char *o = NULL;
    if (!body_find(b, "op", &op) || op.type != JSCAN_STRING ||
        jscan_string_dup(b->text + op.val_off, op.val_len, &o, NULL) != 0 || o[0] == '\0') {
        free(o);
        problem_local(p, 400, "BAD_REQUEST", "body needs \"op\": a string");
        return -1;
    }
    /* An op name the server cannot decode closes its connection: only
     * upper-case names can be ops, anything else is refused here. */
    size_t ol = strlen(o);
    int rc = -1;
    if (ol >= sizeof out->op || strspn(o, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != ol) {
        problem_local(p, 400, "BAD_REQUEST", "op must be an upper-case operation name");
        goto done;
    }
    for (size_t i = 0; i < sizeof rpc_refused / sizeof rpc_refused[0]; i++)
        if (strcmp(o, rpc_refused[i]) == 0) {
            char d[160];
            snprintf(d, sizeof d, "%s manages the proxy's own sessions and is refused on /v1/rpc",
                     o);
            problem_local(p, 400, "BAD_REQUEST", d);
            goto done;
        }
    if (strncmp(o, "WATCH_", 6) == 0) {
        problem_local(p, 400, "BAD_REQUEST",
                      "subscriptions are served as Server-Sent Events: GET /v1/watch or "
                      "/v1/instances/{id}/watch");
        goto done;
    }
    if (strcmp(o, "FLUSH_ALL") == 0 && !in->allow_flush_all) {
        problem_local(p, 403, "FORBIDDEN", "FLUSH_ALL is disabled by the proxy's configuration");
        goto done;
    }
    jscan_member params;
    const char *src = "{}";
    size_t slen = 2;
    if (body_find(b, "params", &params)) {
        if (params.type != JSCAN_OBJECT) {
            problem_local(p, 400, "BAD_REQUEST", "\"params\" must be a JSON object");
            goto done;
        }
        src = b->text + params.val_off;
        slen = params.val_len;
    }
    strbuf pb;
    strbuf_init(&pb, slen);
    strbuf_add(&pb, src, slen);
    out->params = strbuf_take(&pb, &out->params_len);
    if (out->params == NULL) {
        oom(p);
        goto done;
    }
    text_copy(out->op, sizeof out->op, o);
    out->raw_envelope = true;
    out->resend_safe = false;
    rc = 0;
done:
    free(o);
    return rc;
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

/* The fields that come from the path, the query and the headers. */
static int collect_fields(rest_call *c, const rest_input *in, const body_view *b, fields *fs,
                          bool *has_key, problem *p)
{
    const route_match *m = &c->m;
    const route *r = m->r;
    for (size_t i = 0; i < m->ncaps; i++) {
        const route_capture *cap = &m->caps[i];
        if (cap->is_u32) {
            if (add_u64(fs, b, cap->name, cap->num, "path", p) != 0)
                return -1;
        } else if (utf8_or_400(cap->name, cap->value, p) != 0 ||
                   add_string(fs, b, cap->name, cap->value, "path", p) != 0) {
            return -1;
        }
    }
    if (in->query != NULL) {
        for (const cJSON *q = in->query->child; q != NULL; q = q->next) {
            if (cJSON_IsString(q) && utf8_or_400(q->string, q->valuestring, p) != 0)
                return -1;
            char *j = cJSON_PrintUnformatted(q);
            size_t start = fs->text.len;
            if (j == NULL)
                return oom(p);
            strbuf_puts(&fs->text, j);
            free(j);
            if (add_field(fs, b, q->string, start, "query", p) != 0)
                return -1;
        }
    }
    /* WAL_READ needs from_offset; REST-API.md makes it default to 0. */
    if (r->id == R_WAL_READ &&
        (in->query == NULL || cJSON_GetObjectItemCaseSensitive(in->query, "from_offset") == NULL) &&
        add_u64(fs, b, "from_offset", 0, "default", p) != 0)
        return -1;
    jscan_member km;
    *has_key = body_find(b, "idempotency_key", &km);
    if (in->idempotency_key != NULL) {
        if (utf8_or_400("Idempotency-Key", in->idempotency_key, p) != 0 ||
            add_string(fs, b, "idempotency_key", in->idempotency_key, "Idempotency-Key header",
                       p) != 0)
            return -1;
        *has_key = true;
    }
    if (in->if_match != NULL && r->id == R_APPLY_EVENT) {
        uint64_t off;
        if (parse_if_match(in->if_match, &off) != 0) {
            problem_local(p, 400, "BAD_REQUEST", "If-Match must be \"<wal_offset>\" (an ETag)");
            return -1;
        }
        if (add_u64(fs, b, "expected_wal_offset", off, "If-Match header", p) != 0)
            return -1;
        c->if_match = true;
    }
    return 0;
}

/* Splice: '{' + fields + ',' + the body's members + '}', in one allocation. */
static int splice(rest_call *c, const body_view *b, const fields *fs, problem *p)
{
    size_t inner0 = 0, inner1 = 0;
    if (b->text != NULL) {
        const char *lb = memchr(b->text, '{', b->len);
        const char *rb = b->text + b->len;
        while (rb > b->text && rb[-1] != '}')
            rb--;
        inner0 = (size_t)(lb - b->text) + 1;
        inner1 = (size_t)(rb - b->text) - 1;
        if (is_blank(b->text + inner0, inner1 - inner0))
            inner1 = inner0;
    }
    size_t need = 3 + (inner1 - inner0);
    for (size_t i = 0; i < fs->n; i++)
        need += strlen(fs->f[i].key) + fs->f[i].len + 4;
    strbuf out;
    strbuf_init(&out, need);
    strbuf_reserve(&out, need);
    strbuf_putc(&out, '{');
    for (size_t i = 0; i < fs->n; i++) {
        if (i)
            strbuf_putc(&out, ',');
        strbuf_putc(&out, '"');
        strbuf_puts(&out, fs->f[i].key);
        strbuf_add(&out, "\":", 2);
        strbuf_add(&out, fs->text.data + fs->f[i].off, fs->f[i].len);
    }
    if (inner1 > inner0) {
        if (fs->n)
            strbuf_putc(&out, ',');
        strbuf_add(&out, b->text + inner0, inner1 - inner0);
    }
    strbuf_putc(&out, '}');
    c->params = strbuf_take(&out, &c->params_len);
    return c->params ? 0 : oom(p);
}

route_status rest_call_match(rest_call *c, const char *method, const char *path)
{
    c->op[0] = '\0';
    c->params = NULL;
    c->params_len = 0;
    c->resend_safe = c->if_match = c->raw_envelope = false;
    c->rs = route_match_path(method, path, &c->m);
    return c->rs;
}

int rest_call_build(rest_call *c, const rest_input *in, problem *p)
{
    const route *r = c->m.r;
    if (c->rs != ROUTE_OK || r == NULL || (r->kind != ROUTE_OP && r->kind != ROUTE_RPC)) {
        problem_local(p, 500, "INTERNAL_ERROR", "not an operation route");
        return -1;
    }
    if (r->id == R_FLUSH_ALL && !in->allow_flush_all) {
        problem_local(p, 403, "FORBIDDEN", "FLUSH_ALL is disabled by the proxy's configuration");
        return -1;
    }
    body_view b;
    if (scan_body(in, r->body, &b, p) != 0)
        return -1;
    if (r->kind == ROUTE_RPC)
        return build_rpc(in, &b, c, p);

    fields fs;
    fs.n = 0;
    strbuf_init(&fs.text, (size_t)64 * 1024);
    bool has_key = false;
    int rc = collect_fields(c, in, &b, &fs, &has_key, p);
    if (rc == 0)
        rc = splice(c, &b, &fs, p);
    strbuf_deinit(&fs.text);
    if (rc != 0)
        return -1;
    text_copy(c->op, sizeof c->op, r->op);
    c->resend_safe =
        is_read_op(r->id) || r->id == R_DELETE_INSTANCE || (r->id == R_APPLY_EVENT && has_key);
    return 0;
}

char *rest_call_take_params(rest_call *c, size_t *len)
{
    char *s = c->params;
    *len = c->params_len;
    c->params = NULL;
    c->params_len = 0;
    return s;
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

/* Span of the raw value of a top-level member of valid JSON object text. */
static int json_member(const char *json, size_t len, const char *key, size_t *vstart, size_t *vlen)
{
    jscan_member m;
    if (jscan_get(json, len, key, &m) != 0)
        return -1;
    *vstart = m.val_off;
    *vlen = m.val_len;
    return 0;
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
    char *v = NULL;
    size_t n = 0;
    int rc = -1;
    if (jscan_string_dup(result + vs, vl, &v, &n) == 0 && n < cap) {
        memcpy(out, v, n + 1);
        rc = 0;
    }
    free(v);
    return rc;
}

void rest_answer_for(const route_match *m, const char *result, size_t len, rest_answer *a)
{
    memset(a, 0, offsetof(rest_answer, location));
    a->location[0] = a->etag[0] = '\0';
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

void rest_call_answer(const rest_call *c, const rstmdb_reply *reply, unsigned retry_after_s,
                      rest_answer *a)
{
    int st = rstmdb_reply_status(reply);
    size_t len = 0;
    const char *raw;
    /* /v1/rpc is a tunnel for ops this proxy may not know: the envelope is
     * the answer, error or not (its "status" says which). */
    if (c->raw_envelope && (st == RSTMDB_OK || st == RSTMDB_ERR_SERVER) &&
        (raw = rstmdb_reply_raw(reply, &len)) != NULL) {
        memset(a, 0, offsetof(rest_answer, location));
        a->location[0] = a->etag[0] = '\0';
        a->status = 200;
        a->body = raw;
        a->body_len = len;
        return;
    }
    if (st == RSTMDB_OK) {
        raw = rstmdb_reply_result_raw(reply, &len);
        if (raw == NULL) {
            raw = "{}";
            len = 2;
        }
        rest_answer_for(&c->m, raw, len, a);
        a->body = raw;
        a->body_len = len;
        a->has_wal_offset = rstmdb_reply_meta_wal_offset(reply, &a->wal_offset) == RSTMDB_OK;
        return;
    }
    memset(a, 0, offsetof(rest_answer, location));
    a->location[0] = a->etag[0] = '\0';
    a->is_problem = true;
    const rstmdb_error *e = rstmdb_reply_error(reply);
    if (e != NULL)
        problem_from_error(&a->problem, e, c->if_match, retry_after_s);
    else if (st == RSTMDB_ERR_TIMEOUT)
        problem_local(&a->problem, 504, "UPSTREAM_TIMEOUT", "the upstream did not answer in time");
    else
        problem_local(&a->problem, 503, "UPSTREAM_UNAVAILABLE", rstmdb_strerror(st));
    a->status = a->problem.status;
}

void rest_answer_deinit(rest_answer *a)
{
    if (a->is_problem)
        problem_deinit(&a->problem);
    a->is_problem = false;
}
