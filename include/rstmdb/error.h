/* rstmdb/error.h: the library's error codes and the error object.
 *
 * Two kinds of codes meet here. `rstmdb_status` values are what every
 * function returns: RSTMDB_OK (0) or a negative code saying what went wrong
 * on this side (I/O, timeout, a bad frame...). RSTMDB_ERR_SERVER means the
 * server answered with an error; the `rstmdb_error` object then carries the
 * server's code, message, retryable flag and details.
 */
#ifndef RSTMDB_ERROR_H
#define RSTMDB_ERROR_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cJSON cJSON;

/* Return codes of every librstmdb function. Negative = failure. */
typedef enum rstmdb_status {
    RSTMDB_OK = 0,
    RSTMDB_ERR_NOMEM = -1,     /* an allocation failed */
    RSTMDB_ERR_INVALID = -2,   /* a bad argument from the caller */
    RSTMDB_ERR_IO = -3,        /* socket error, connection refused or reset */
    RSTMDB_ERR_TIMEOUT = -4,   /* connect or request timeout reached */
    RSTMDB_ERR_PROTOCOL = -5,  /* the peer sent something that is not RCPX/JSON we understand */
    RSTMDB_ERR_CLOSED = -6,    /* the connection closed (EOF, BYE, or closed locally) */
    RSTMDB_ERR_TLS = -7,       /* TLS handshake or verification failure */
    RSTMDB_ERR_CANCELLED = -8, /* the caller cancelled the request */
    RSTMDB_ERR_SERVER = -9,    /* the server answered status "error": see rstmdb_error */
    /* Frame decoder failures (rstmdb/frame.h); each a distinct code. */
    RSTMDB_ERR_FRAME_MAGIC = -20,     /* first four bytes are not "RCPX" */
    RSTMDB_ERR_FRAME_VERSION = -21,   /* version field is not 1 */
    RSTMDB_ERR_FRAME_FLAGS = -22,     /* a reserved flag bit (0xFFF0) is set */
    RSTMDB_ERR_FRAME_TOO_LARGE = -23, /* payload_len above the decoder's limit */
    RSTMDB_ERR_FRAME_CRC = -24,       /* CRC_PRESENT set and the CRC32C does not match */
    RSTMDB_ERR_LINE_TOO_LONG = -25,   /* JSONL: no newline within the line-length cap */
    RSTMDB_ERR_LINE_EMPTY = -26,      /* JSONL: an empty line where a JSON document was expected */
    RSTMDB_ERR_JSON = -27 /* payload is not valid JSON (or not an object where one is required) */
} rstmdb_status;

/* Static English text for a status code; never NULL (unknown codes get a generic text). */
const char *rstmdb_strerror(int status);

/* The server error codes of the RCP protocol: the 16 of rstmdb 0.1, and the
 * three that 0.3 adds for replication (READ_ONLY_MODE, REPLICATION_TIMEOUT,
 * REPLICATION_ERROR). RSTMDB_SC_UNKNOWN: a code this library does not know;
 * its text is kept in rstmdb_error_code_str(). RSTMDB_SC_NONE: not a server
 * error. New codes are added before RSTMDB_SC_UNKNOWN, so its value changes
 * between versions: compare with it by name, never store it. */
typedef enum rstmdb_server_code {
    RSTMDB_SC_NONE = 0,
    RSTMDB_SC_UNSUPPORTED_PROTOCOL,
    RSTMDB_SC_BAD_REQUEST,
    RSTMDB_SC_UNAUTHORIZED,
    RSTMDB_SC_AUTH_FAILED,
    RSTMDB_SC_NOT_FOUND,
    RSTMDB_SC_MACHINE_NOT_FOUND,
    RSTMDB_SC_MACHINE_VERSION_EXISTS,
    RSTMDB_SC_MACHINE_VERSION_LIMIT_EXCEEDED, /* also spelled MACHINE_VERSION_LIMIT */
    RSTMDB_SC_INSTANCE_NOT_FOUND,
    RSTMDB_SC_INSTANCE_EXISTS,
    RSTMDB_SC_INVALID_TRANSITION,
    RSTMDB_SC_GUARD_FAILED,
    RSTMDB_SC_CONFLICT,
    RSTMDB_SC_WAL_IO_ERROR,
    RSTMDB_SC_INTERNAL_ERROR,
    RSTMDB_SC_RATE_LIMITED,
    RSTMDB_SC_READ_ONLY_MODE,      /* a replica refused a write: it was NOT applied */
    RSTMDB_SC_REPLICATION_TIMEOUT, /* a sync primary applied the write, replicas did not confirm */
    RSTMDB_SC_REPLICATION_ERROR,   /* declared by 0.3; no server path emits it yet */
    RSTMDB_SC_UNKNOWN
} rstmdb_server_code;

/* Wire spelling of a server code ("GUARD_FAILED"); NULL for NONE/UNKNOWN. */
const char *rstmdb_server_code_name(rstmdb_server_code code);
/* Parse a wire spelling; unknown text gives RSTMDB_SC_UNKNOWN. */
rstmdb_server_code rstmdb_server_code_parse(const char *name);

/* An error: a status, and for RSTMDB_ERR_SERVER the server's code, message,
 * retryable flag and details. Opaque; read it with the accessors below.
 * Errors handed to callbacks are borrowed and valid only during the callback;
 * keep one with rstmdb_error_dup(). */
typedef struct rstmdb_error rstmdb_error;

int rstmdb_error_status(const rstmdb_error *e);              /* an rstmdb_status */
rstmdb_server_code rstmdb_error_code(const rstmdb_error *e); /* NONE unless status is SERVER */
const char *
rstmdb_error_code_str(const rstmdb_error *e); /* server's code text, or the status name */
const char *rstmdb_error_message(const rstmdb_error *e); /* never NULL */
bool rstmdb_error_retryable(const rstmdb_error *e);
const cJSON *rstmdb_error_details(const rstmdb_error *e); /* an object, never NULL */

/* A local error (not a server answer): `status` (an rstmdb_status other than
 * RSTMDB_OK and RSTMDB_ERR_SERVER) and a printf-formatted message. For code
 * built on the library that reports its failures the way the library does.
 * The caller owns it (rstmdb_error_free); NULL on OOM. */
rstmdb_error *rstmdb_error_new(int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Store rstmdb_error_new(status, fmt, ...) in *err unless err is NULL or
 * *err is already set (the first error wins), and return `status`: for
 * `return rstmdb_error_set(err, RSTMDB_ERR_INVALID, "...");`. */
int rstmdb_error_set(rstmdb_error **err, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Copy an error; the caller owns the copy (rstmdb_error_free). NULL on OOM. */
rstmdb_error *rstmdb_error_dup(const rstmdb_error *e);
void rstmdb_error_free(rstmdb_error *e);

/* Helpers like the Go client's IsNotFound & co. NULL-safe (false). */
bool rstmdb_is_not_found(
    const rstmdb_error *e); /* NOT_FOUND, MACHINE_NOT_FOUND, INSTANCE_NOT_FOUND */
bool rstmdb_is_instance_not_found(const rstmdb_error *e);
bool rstmdb_is_invalid_transition(const rstmdb_error *e);
bool rstmdb_is_conflict(const rstmdb_error *e);
bool rstmdb_is_retryable(
    const rstmdb_error *e); /* server retryable flag, or a transient client error */
/* READ_ONLY_MODE: the node is a replica and did not apply the write; resend
 * it, unchanged, to the primary. */
bool rstmdb_is_read_only(const rstmdb_error *e);
/* REPLICATION_TIMEOUT: the primary APPLIED the write, but the replicas did not
 * confirm it in time. The server marks it retryable; resending a write is
 * safe only with an idempotency key (or for a write that is idempotent). */
bool rstmdb_is_replication_timeout(const rstmdb_error *e);
/* REPLICATION_TIMEOUT or REPLICATION_ERROR: a replication failure. */
bool rstmdb_is_replication_error(const rstmdb_error *e);

#ifdef __cplusplus
}
#endif
#endif
