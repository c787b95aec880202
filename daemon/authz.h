/* authz.h: what a caller identified by auth.h may do: the scope each
 * operation needs (scope.h) and the resource limits of a JWT's `rstmdb`
 * claim. Pure decisions over the operation's final params, the JSON the
 * server will receive, so that path, query and body cannot disagree with
 * what was checked. An instance's machine is never taken from the request:
 * the caller passes a lookup (the proxy's instance cache) and, when it does
 * not know an instance, gets AUTHZ_LOOKUP with the ids to resolve first. */
#ifndef PROXY_AUTHZ_H
#define PROXY_AUTHZ_H

#include <stddef.h>

#include "auth.h"

typedef struct cJSON cJSON;

/* The machine of an instance, or NULL when the cache does not know it. */
typedef const char *(*authz_machine_fn)(void *arg, const char *instance_id);

#define AUTHZ_MAX_LOOKUPS 100 /* a BATCH has at most 100 ops */

typedef struct authz_lookups {
    size_t n;
    char *ids[AUTHZ_MAX_LOOKUPS];
} authz_lookups;

typedef enum authz_verdict {
    AUTHZ_ALLOW,
    AUTHZ_DENY,  /* 403 FORBIDDEN, Bearer error="insufficient_scope"; why says which */
    AUTHZ_LOOKUP /* resolve need->ids, then ask again */
} authz_verdict;

/* An operation `op` with its params (JSON text; NULL = none). Service and
 * open callers are always allowed. */
authz_verdict authz_op(const auth_caller *c, const char *op, const char *params, size_t len,
                       authz_machine_fn fn, void *arg, authz_lookups *need, char *why, size_t cap);
/* A stream: WATCH_INSTANCE of `instance_id`, or WATCH_ALL (instance_id
 * NULL) with its query filters (route_query's object; may be NULL). */
authz_verdict authz_stream(const auth_caller *c, const char *instance_id, const cJSON *query,
                           authz_machine_fn fn, void *arg, authz_lookups *need, char *why,
                           size_t cap);
void authz_lookups_clear(authz_lookups *l);

#endif
