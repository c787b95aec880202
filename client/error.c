/* error.c: status texts, server error code names and the rstmdb_error object
 * (public accessors plus the private constructors of error_int.h).
 * It only builds and describes errors; deciding what failed is the caller's job.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "error_int.h"

struct rstmdb_error {
    int status;              /* an rstmdb_status */
    rstmdb_server_code code; /* NONE unless status == RSTMDB_ERR_SERVER */
    char *code_str;          /* the server's spelling, or the status name */
    char *message;           /* never NULL */
    bool retryable;
    cJSON *details; /* always an object */
};

typedef struct error_status_info {
    int status;
    const char *name;
    const char *text;
} error_status_info;

static const error_status_info error_statuses[] = {
    {RSTMDB_OK, "OK", "success"},
    {RSTMDB_ERR_NOMEM, "NOMEM", "out of memory"},
    {RSTMDB_ERR_INVALID, "INVALID", "invalid argument"},
    {RSTMDB_ERR_IO, "IO", "I/O error (connection refused, reset or failed)"},
    {RSTMDB_ERR_TIMEOUT, "TIMEOUT", "timed out"},
    {RSTMDB_ERR_PROTOCOL, "PROTOCOL", "protocol error: unexpected data from the peer"},
    {RSTMDB_ERR_CLOSED, "CLOSED", "connection closed"},
    {RSTMDB_ERR_TLS, "TLS", "TLS handshake or certificate verification failed"},
    {RSTMDB_ERR_CANCELLED, "CANCELLED", "request cancelled"},
    {RSTMDB_ERR_SERVER, "SERVER", "the server returned an error"},
    {RSTMDB_ERR_FRAME_MAGIC, "FRAME_MAGIC", "bad frame: magic is not \"RCPX\""},
    {RSTMDB_ERR_FRAME_VERSION, "FRAME_VERSION", "bad frame: unsupported version (not 1)"},
    {RSTMDB_ERR_FRAME_FLAGS, "FRAME_FLAGS", "bad frame: reserved flag bits set"},
    {RSTMDB_ERR_FRAME_TOO_LARGE, "FRAME_TOO_LARGE", "bad frame: payload larger than the limit"},
    {RSTMDB_ERR_FRAME_CRC, "FRAME_CRC", "bad frame: CRC32C mismatch"},
    {RSTMDB_ERR_LINE_TOO_LONG, "LINE_TOO_LONG", "bad JSONL stream: line longer than the limit"},
    {RSTMDB_ERR_LINE_EMPTY, "LINE_EMPTY", "bad JSONL stream: empty line"},
    {RSTMDB_ERR_JSON, "JSON", "invalid JSON payload"},
};

static const error_status_info *error_status_find(int status)
{
    for (size_t i = 0; i < sizeof error_statuses / sizeof error_statuses[0]; i++) {
        if (error_statuses[i].status == status)
            return &error_statuses[i];
    }
    return NULL;
}

const char *rstmdb_strerror(int status)
{
    const error_status_info *si = error_status_find(status);
    return si ? si->text : "unknown error";
}

const char *error_status_name(int status)
{
    const error_status_info *si = error_status_find(status);
    return si ? si->name : "UNKNOWN_STATUS";
}

/* Indexed by rstmdb_server_code; NONE and UNKNOWN have no wire name. */
static const char *const error_code_names[] = {
    [RSTMDB_SC_NONE] = NULL,
    [RSTMDB_SC_UNSUPPORTED_PROTOCOL] = "UNSUPPORTED_PROTOCOL",
    [RSTMDB_SC_BAD_REQUEST] = "BAD_REQUEST",
    [RSTMDB_SC_UNAUTHORIZED] = "UNAUTHORIZED",
    [RSTMDB_SC_AUTH_FAILED] = "AUTH_FAILED",
    [RSTMDB_SC_NOT_FOUND] = "NOT_FOUND",
    [RSTMDB_SC_MACHINE_NOT_FOUND] = "MACHINE_NOT_FOUND",
    [RSTMDB_SC_MACHINE_VERSION_EXISTS] = "MACHINE_VERSION_EXISTS",
    [RSTMDB_SC_MACHINE_VERSION_LIMIT_EXCEEDED] = "MACHINE_VERSION_LIMIT_EXCEEDED",
    [RSTMDB_SC_INSTANCE_NOT_FOUND] = "INSTANCE_NOT_FOUND",
    [RSTMDB_SC_INSTANCE_EXISTS] = "INSTANCE_EXISTS",
    [RSTMDB_SC_INVALID_TRANSITION] = "INVALID_TRANSITION",
    [RSTMDB_SC_GUARD_FAILED] = "GUARD_FAILED",
    [RSTMDB_SC_CONFLICT] = "CONFLICT",
    [RSTMDB_SC_WAL_IO_ERROR] = "WAL_IO_ERROR",
    [RSTMDB_SC_INTERNAL_ERROR] = "INTERNAL_ERROR",
    [RSTMDB_SC_RATE_LIMITED] = "RATE_LIMITED",
    [RSTMDB_SC_READ_ONLY_MODE] = "READ_ONLY_MODE",
    [RSTMDB_SC_REPLICATION_TIMEOUT] = "REPLICATION_TIMEOUT",
    [RSTMDB_SC_REPLICATION_ERROR] = "REPLICATION_ERROR",
    [RSTMDB_SC_UNKNOWN] = NULL,
};

const char *rstmdb_server_code_name(rstmdb_server_code code)
{
    if ((int)code < 0 || (size_t)code >= sizeof error_code_names / sizeof error_code_names[0])
        return NULL;
    return error_code_names[code];
}

rstmdb_server_code rstmdb_server_code_parse(const char *name)
{
    if (name == NULL)
        return RSTMDB_SC_UNKNOWN;
    for (int c = RSTMDB_SC_NONE + 1; c < RSTMDB_SC_UNKNOWN; c++) {
        if (strcmp(name, error_code_names[c]) == 0)
            return (rstmdb_server_code)c;
    }
    /* specs/protocol.md's spelling; the server itself sends the long one. */
    if (strcmp(name, "MACHINE_VERSION_LIMIT") == 0)
        return RSTMDB_SC_MACHINE_VERSION_LIMIT_EXCEEDED;
    return RSTMDB_SC_UNKNOWN;
}

/* A stand-in for accessors called with NULL: an object that is never written. */
static const cJSON error_no_details = {.type = cJSON_Object};

static char *error_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

rstmdb_error *error_new(int status, rstmdb_server_code sc, const char *code_str, const char *msg,
                        bool retryable, const cJSON *details)
{
    rstmdb_error *e = calloc(1, sizeof *e);

    if (e == NULL)
        return NULL;
    if (status == RSTMDB_ERR_SERVER) {
        if (sc == RSTMDB_SC_NONE)
            sc = rstmdb_server_code_parse(code_str);
        if (code_str == NULL)
            code_str = rstmdb_server_code_name(sc);
        if (code_str == NULL)
            code_str = "";
    } else {
        sc = RSTMDB_SC_NONE;
        if (code_str == NULL)
            code_str = error_status_name(status);
    }
    e->status = status;
    e->code = sc;
    e->retryable = retryable;
    e->code_str = error_strdup(code_str);
    e->message = error_strdup(msg != NULL ? msg : rstmdb_strerror(status));
    e->details = cJSON_IsObject(details) ? cJSON_Duplicate(details, 1) : cJSON_CreateObject();
    if (e->code_str == NULL || e->message == NULL || e->details == NULL) {
        rstmdb_error_free(e);
        return NULL;
    }
    return e;
}

ERROR_PRINTF(2, 0)
static rstmdb_error *error_newv(int status, const char *fmt, va_list ap)
{
    char small[256];
    char *msg = small;
    rstmdb_error *e;
    va_list ap2;
    int n;

    va_copy(ap2, ap);
    n = vsnprintf(small, sizeof small, fmt, ap);
    if (n < 0) {
        va_end(ap2);
        return error_new(status, RSTMDB_SC_NONE, NULL, NULL, false, NULL);
    }
    if ((size_t)n >= sizeof small) {
        msg = malloc((size_t)n + 1);
        if (msg == NULL) {
            va_end(ap2);
            return NULL;
        }
        vsnprintf(msg, (size_t)n + 1, fmt, ap2);
    }
    va_end(ap2);
    e = error_new(status, RSTMDB_SC_NONE, NULL, msg, false, NULL);
    if (msg != small)
        free(msg);
    return e;
}

rstmdb_error *error_newf(int status, const char *fmt, ...)
{
    rstmdb_error *e;
    va_list ap;

    va_start(ap, fmt);
    e = error_newv(status, fmt, ap);
    va_end(ap);
    return e;
}

int error_set(rstmdb_error **err, int status, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || *err != NULL)
        return status;
    va_start(ap, fmt);
    *err = error_newv(status, fmt, ap);
    va_end(ap);
    return status;
}

rstmdb_error *rstmdb_error_new(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rstmdb_error *e = error_newv(status, fmt, ap);
    va_end(ap);
    return e;
}

int rstmdb_error_set(rstmdb_error **err, int status, const char *fmt, ...)
{
    if (err == NULL || *err != NULL)
        return status;
    va_list ap;
    va_start(ap, fmt);
    *err = error_newv(status, fmt, ap);
    va_end(ap);
    return status;
}

rstmdb_error *error_from_server_json(const cJSON *error_obj)
{
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(error_obj, "code");
    const cJSON *message = cJSON_GetObjectItemCaseSensitive(error_obj, "message");
    const cJSON *retryable = cJSON_GetObjectItemCaseSensitive(error_obj, "retryable");
    const cJSON *details = cJSON_GetObjectItemCaseSensitive(error_obj, "details");
    const char *code_str = cJSON_IsString(code) ? code->valuestring : "";

    return error_new(RSTMDB_ERR_SERVER, rstmdb_server_code_parse(code_str), code_str,
                     cJSON_IsString(message) ? message->valuestring : "", cJSON_IsTrue(retryable),
                     details);
}

int error_set_server(rstmdb_error **err, const cJSON *error_obj)
{
    if (err != NULL && *err == NULL)
        *err = error_from_server_json(error_obj);
    return RSTMDB_ERR_SERVER;
}

int rstmdb_error_status(const rstmdb_error *e)
{
    return e ? e->status : RSTMDB_OK;
}

rstmdb_server_code rstmdb_error_code(const rstmdb_error *e)
{
    return e ? e->code : RSTMDB_SC_NONE;
}

const char *rstmdb_error_code_str(const rstmdb_error *e)
{
    return e ? e->code_str : error_status_name(RSTMDB_OK);
}

const char *rstmdb_error_message(const rstmdb_error *e)
{
    return e ? e->message : "";
}

bool rstmdb_error_retryable(const rstmdb_error *e)
{
    return e ? e->retryable : false;
}

const cJSON *rstmdb_error_details(const rstmdb_error *e)
{
    return e ? e->details : &error_no_details;
}

rstmdb_error *rstmdb_error_dup(const rstmdb_error *e)
{
    if (e == NULL)
        return NULL;
    return error_new(e->status, e->code, e->code_str, e->message, e->retryable, e->details);
}

void rstmdb_error_free(rstmdb_error *e)
{
    if (e == NULL)
        return;
    free(e->code_str);
    free(e->message);
    cJSON_Delete(e->details);
    free(e);
}

bool rstmdb_is_not_found(const rstmdb_error *e)
{
    rstmdb_server_code c = rstmdb_error_code(e);
    return c == RSTMDB_SC_NOT_FOUND || c == RSTMDB_SC_MACHINE_NOT_FOUND ||
           c == RSTMDB_SC_INSTANCE_NOT_FOUND;
}

bool rstmdb_is_instance_not_found(const rstmdb_error *e)
{
    return rstmdb_error_code(e) == RSTMDB_SC_INSTANCE_NOT_FOUND;
}

bool rstmdb_is_invalid_transition(const rstmdb_error *e)
{
    return rstmdb_error_code(e) == RSTMDB_SC_INVALID_TRANSITION;
}

bool rstmdb_is_conflict(const rstmdb_error *e)
{
    return rstmdb_error_code(e) == RSTMDB_SC_CONFLICT;
}

bool rstmdb_is_read_only(const rstmdb_error *e)
{
    return rstmdb_error_code(e) == RSTMDB_SC_READ_ONLY_MODE;
}

bool rstmdb_is_replication_timeout(const rstmdb_error *e)
{
    return rstmdb_error_code(e) == RSTMDB_SC_REPLICATION_TIMEOUT;
}

bool rstmdb_is_replication_error(const rstmdb_error *e)
{
    rstmdb_server_code c = rstmdb_error_code(e);
    return c == RSTMDB_SC_REPLICATION_TIMEOUT || c == RSTMDB_SC_REPLICATION_ERROR;
}

bool rstmdb_is_retryable(const rstmdb_error *e)
{
    if (e == NULL)
        return false;
    if (e->status == RSTMDB_ERR_SERVER)
        return e->retryable;
    /* A dropped connection or a timeout may well succeed on a fresh attempt
     * (for instance after the server restarted); a bad frame or bad argument
     * will fail the same way again. */
    return e->status == RSTMDB_ERR_IO || e->status == RSTMDB_ERR_TIMEOUT ||
           e->status == RSTMDB_ERR_CLOSED;
}
