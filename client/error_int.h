/* error_int.h (private): constructors for rstmdb_error, used by the rest of
 * librstmdb (and in-tree code linking rstmdb_static) to build the errors the
 * public accessors in rstmdb/error.h read.
 */
#ifndef RSTMDB_CLIENT_ERROR_INT_H
#define RSTMDB_CLIENT_ERROR_INT_H

#include <stdbool.h>

#include "rstmdb/error.h"

#if defined(__GNUC__) || defined(__clang__)
#define ERROR_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define ERROR_PRINTF(fmt, args)
#endif

/* A new error. `status` is an rstmdb_status. For RSTMDB_ERR_SERVER, `sc` and
 * `code_str` give the server's code (code_str NULL: the wire name of sc;
 * sc NONE: parsed from code_str). For other statuses sc is forced to NONE and
 * code_str defaults to the status name ("TIMEOUT"). msg NULL: the status's
 * rstmdb_strerror() text. details (not an object, or NULL): an empty object;
 * otherwise deep-copied, the caller keeps its own. NULL on OOM. */
rstmdb_error *error_new(int status, rstmdb_server_code sc, const char *code_str, const char *msg,
                        bool retryable, const cJSON *details);

/* A client-side error (not SERVER) with a printf-formatted message; NULL on
 * OOM. Not retryable per se: rstmdb_is_retryable() decides from the status. */
rstmdb_error *error_newf(int status, const char *fmt, ...) ERROR_PRINTF(2, 3);

/* For functions with an `rstmdb_error **err` out parameter:
 *   return error_set(err, RSTMDB_ERR_IO, "connect %s: %s", addr, strerror(e));
 * Stores a new error in *err when err is not NULL and *err is still NULL (the
 * first, innermost error wins; a later one never overwrites it). Returns
 * `status` unchanged, also when the allocation fails (then *err stays NULL). */
int error_set(rstmdb_error **err, int status, const char *fmt, ...) ERROR_PRINTF(3, 4);

/* Same, from a server's error object {"code","message","retryable","details"?}
 * as found in a response's "error" member. Missing or mistyped members get
 * defaults (code UNKNOWN with text "", message "", retryable false, details
 * {}). Returns RSTMDB_ERR_SERVER. */
int error_set_server(rstmdb_error **err, const cJSON *error_obj);

/* Parse-only variant of error_set_server: NULL on OOM. */
rstmdb_error *error_from_server_json(const cJSON *error_obj);

/* "OK", "NOMEM", "TIMEOUT", "FRAME_CRC"...: the enum name without RSTMDB_ERR_;
 * "UNKNOWN_STATUS" for codes outside the enum. Never NULL. */
const char *error_status_name(int status);

#endif
