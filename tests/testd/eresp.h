/* eresp.h: error codes of the RCPX server (wire names, Rust enum names and
 * the fixed retryable flag) and the per-request op context that handlers in
 * engine*.c fill: a result text or an error, plus side effects. */
#ifndef TESTD_ERESP_H
#define TESTD_ERESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

typedef enum ecode {
    EC_BAD_REQUEST = 0,
    EC_UNAUTHORIZED,
    EC_AUTH_FAILED,
    EC_NOT_FOUND,
    EC_MACHINE_NOT_FOUND,
    EC_MACHINE_VERSION_EXISTS,
    EC_MACHINE_VERSION_LIMIT_EXCEEDED,
    EC_INSTANCE_NOT_FOUND,
    EC_INSTANCE_EXISTS,
    EC_INVALID_TRANSITION,
    EC_GUARD_FAILED,
    EC_CONFLICT,
    EC_WAL_IO_ERROR,
    EC_INTERNAL_ERROR,
    EC_RATE_LIMITED,
    EC_UNSUPPORTED_PROTOCOL
} ecode;

const char *ecode_name(ecode c);      /* "BAD_REQUEST" */
const char *ecode_rust_name(ecode c); /* "BadRequest" (Debug of the enum) */
bool ecode_retryable(ecode c);

/* Handler outcome. */
#define OP_OK    0
#define OP_ERR   1 /* ctx->code / ctx->msg set */
#define OP_PANIC 2 /* the real server would drop the connection, no reply */
#define OP_NOMEM (-1)

#endif
