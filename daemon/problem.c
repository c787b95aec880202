/* problem.c: the one place where error codes become HTTP statuses and
 * problem+json bodies. It must not decide retries or touch connections. */
#include "problem.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jscan.h"
#include "pool.h"
#include "utf8.h"

typedef struct code_map {
    const char *code;
    int status;
} code_map;

static const code_map codes[] = {
    {"BAD_REQUEST", 400},
    {"NOT_FOUND", 404},
    {"MACHINE_NOT_FOUND", 404},
    {"INSTANCE_NOT_FOUND", 404},
    {"MACHINE_VERSION_EXISTS", 409},
    {"INSTANCE_EXISTS", 409},
    {"MACHINE_VERSION_LIMIT", 409},
    {"MACHINE_VERSION_LIMIT_EXCEEDED", 409},
    {"INVALID_TRANSITION", 409},
    {"CONFLICT", 409},
    {"GUARD_FAILED", 422},
    {"RATE_LIMITED", 429},
    {"INTERNAL_ERROR", 500},
    /* From the upstream, these mean the proxy's own credentials or protocol
     * are wrong: the HTTP client can do nothing about it. */
    {"UNSUPPORTED_PROTOCOL", 502},
    {"UNAUTHORIZED", 502},
    {"AUTH_FAILED", 502},
    {"WAL_IO_ERROR", 503},
    {"READ_ONLY_MODE", 503},
    /* rstmdb 0.3's sync replication: the primary applied the write, its
     * replicas did not confirm it in time (the server says retryable). */
    {"REPLICATION_TIMEOUT", 504},
    {"REPLICATION_ERROR", 502},
    /* The proxy's own codes. */
    {"UPSTREAM_UNAVAILABLE", 503},
    {"UPSTREAM_TIMEOUT", 504},
    {"UPSTREAM_TLS", 502},
    {"PAYLOAD_TOO_LARGE", 413},
    {"FORBIDDEN", 403},
    {"METHOD_NOT_ALLOWED", 405},
    {"TOO_MANY_STREAMS", 503},
    {"SHUTTING_DOWN", 503},
};

int problem_status_for_code(const char *code, bool if_match, const char *message)
{
    if (code == NULL)
        return 502;
    if (if_match && strcmp(code, "CONFLICT") == 0 &&
        (message == NULL || strstr(message, "state conflict") == NULL))
        return 412;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(codes[i].code, code) == 0)
            return codes[i].status;
    return 502;
}

const char *problem_title(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Error";
    }
}

static void fill(problem *p, int status, const char *code, const char *detail, bool retryable)
{
    memset(p, 0, sizeof *p);
    p->status = status;
    snprintf(p->code, sizeof p->code, "%s", code);
    snprintf(p->detail, sizeof p->detail, "%s", detail ? detail : problem_title(status));
    /* The detail may quote a client's bytes (a query key) or be cut inside
     * a character: the body must stay valid UTF-8 JSON. */
    utf8_sanitize(p->detail, strlen(p->detail));
    utf8_sanitize(p->code, strlen(p->code));
    p->retryable = retryable;
    if (status == 401)
        p->www_authenticate = PROBLEM_BEARER;
}

void problem_local(problem *p, int status, const char *code, const char *detail)
{
    bool retryable = status == 503 || status == 504 || status == 429;
    fill(p, status, code, detail, retryable);
    if (status == 503 || status == 429)
        p->retry_after_s = 1;
}

void problem_from_code(problem *p, const char *code, const char *message, bool retryable,
                       const cJSON *details, bool if_match, unsigned retry_after_s)
{
    int status = problem_status_for_code(code, if_match, message);
    fill(p, status, code ? code : "UPSTREAM_ERROR", message, retryable);
    if (status == 429 || status == 503)
        p->retry_after_s = retry_after_s ? retry_after_s : 1;
    if (status == 503 || status == 504)
        p->retryable = true;
    if (details != NULL && cJSON_IsObject(details))
        p->details = cJSON_Duplicate(details, 1);
}

void problem_from_error(problem *p, const rstmdb_error *e, bool if_match, unsigned retry_after_s)
{
    int st = rstmdb_error_status(e);
    switch (st) {
    case RSTMDB_ERR_SERVER:
        problem_from_code(p, rstmdb_error_code_str(e), rstmdb_error_message(e),
                          rstmdb_error_retryable(e), rstmdb_error_details(e), if_match,
                          retry_after_s);
        return;
    case RSTMDB_ERR_TIMEOUT:
        fill(p, 504, "UPSTREAM_TIMEOUT", rstmdb_error_message(e), true);
        return;
    case RSTMDB_ERR_JSON:
    case RSTMDB_ERR_INVALID:
        fill(p, 400, "BAD_REQUEST", rstmdb_error_message(e), false);
        return;
    default:
        fill(p, 503, "UPSTREAM_UNAVAILABLE", rstmdb_error_message(e), true);
        p->retry_after_s = retry_after_s ? retry_after_s : 1;
        return;
    }
}

void problem_upstream_down(problem *p, const rstmdb_error *last, unsigned retry_after_s)
{
    char d[sizeof p->detail];
    if (last != NULL && pool_failure_is_definitive(last)) {
        bool tls = rstmdb_error_status(last) == RSTMDB_ERR_TLS;
        /* The server's own code when it refused us (AUTH_FAILED...), so a
         * script can tell bad credentials from an upstream that is down. */
        const char *code = tls ? "UPSTREAM_TLS" : rstmdb_error_code_str(last);
        /* A TLS failure's message already names the stage and the peer. */
        snprintf(d, sizeof d, "no upstream connection: %s%s",
                 tls ? "" : "the upstream refused the proxy: ", rstmdb_error_message(last));
        fill(p, 502, code, d, false);
        return;
    }
    if (last != NULL)
        snprintf(d, sizeof d, "no upstream connection is ready (last failure: %s: %s)",
                 rstmdb_error_code_str(last), rstmdb_error_message(last));
    else
        snprintf(d, sizeof d, "no upstream connection is ready");
    fill(p, 503, "UPSTREAM_UNAVAILABLE", d, true);
    p->retry_after_s = retry_after_s ? retry_after_s : 1;
}

void problem_deinit(problem *p)
{
    cJSON_Delete(p->details);
    p->details = NULL;
}

char *problem_render(const problem *p)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    char type[96];
    snprintf(type, sizeof type, "urn:rstmdb:error:%s", p->code);
    cJSON_AddStringToObject(o, "type", type);
    cJSON_AddStringToObject(o, "title", problem_title(p->status));
    cJSON_AddNumberToObject(o, "status", p->status);
    cJSON_AddStringToObject(o, "detail", p->detail);
    cJSON_AddStringToObject(o, "code", p->code);
    cJSON_AddBoolToObject(o, "retryable", p->retryable);
    cJSON *d = p->details ? cJSON_Duplicate(p->details, 1) : cJSON_CreateObject();
    cJSON_AddItemToObject(o, "details", d);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}
