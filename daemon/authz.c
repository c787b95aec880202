/* authz.c: scope and resource-limit decisions (authz.h). Pure: no I/O; the
 * instance -> machine lookup is the caller's. */
#include "authz.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scope.h"

static bool limited(const auth_caller *c)
{
    return c->claims.instances.present || c->claims.machines.present;
}

static bool is(const char *op, const char *name)
{
    return strcmp(op, name) == 0;
}

static bool instance_op(const char *op)
{
    return is(op, "GET_INSTANCE") || is(op, "DELETE_INSTANCE") || is(op, "APPLY_EVENT") ||
           is(op, "SNAPSHOT_INSTANCE") || is(op, "WATCH_INSTANCE");
}

static const char *str_member(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void need_add(authz_lookups *need, const char *id)
{
    for (size_t i = 0; i < need->n; i++)
        if (strcmp(need->ids[i], id) == 0)
            return;
    if (need->n < AUTHZ_MAX_LOOKUPS && (need->ids[need->n] = strdup(id)) != NULL)
        need->n++;
}

void authz_lookups_clear(authz_lookups *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->ids[i]);
    l->n = 0;
}

/* One instance under the limits. */
static authz_verdict check_instance(const auth_caller *c, const char *id, authz_machine_fn fn,
                                    void *arg, authz_lookups *need, char *why, size_t cap)
{
    if (!jwt_allows_instance(&c->claims, id)) {
        snprintf(why, cap, "the token's rstmdb.instances does not include instance \"%.100s\"", id);
        return AUTHZ_DENY;
    }
    if (!c->claims.machines.present)
        return AUTHZ_ALLOW;
    const char *m = fn ? fn(arg, id) : NULL;
    if (m == NULL) {
        need_add(need, id);
        return AUTHZ_LOOKUP;
    }
    if (!jwt_allows_machine(&c->claims, m)) {
        snprintf(why, cap,
                 "instance \"%.100s\" is of machine \"%.100s\", outside the token's "
                 "rstmdb.machines",
                 id, m);
        return AUTHZ_DENY;
    }
    return AUTHZ_ALLOW;
}

static authz_verdict check_machine(const auth_caller *c, const char *m, char *why, size_t cap)
{
    if (m == NULL || jwt_allows_machine(&c->claims, m))
        return AUTHZ_ALLOW;
    snprintf(why, cap, "machine \"%.100s\" is outside the token's rstmdb.machines", m);
    return AUTHZ_DENY;
}

static authz_verdict check_watch_all(const auth_caller *c, const cJSON *machines, char *why,
                                     size_t cap)
{
    if (!c->claims.machines.present)
        return AUTHZ_ALLOW;
    if (!cJSON_IsArray(machines) || cJSON_GetArraySize(machines) == 0) {
        snprintf(why, cap,
                 "the token limits machines: WATCH_ALL needs a machines filter inside them");
        return AUTHZ_DENY;
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, machines)
    {
        if (!cJSON_IsString(m))
            return AUTHZ_ALLOW; /* the server refuses the filter itself */
        if (check_machine(c, m->valuestring, why, cap) == AUTHZ_DENY)
            return AUTHZ_DENY;
    }
    return AUTHZ_ALLOW;
}

/* Limits on one op whose scope was granted. `p` may be any JSON (or NULL). */
static authz_verdict check_limits(const auth_caller *c, const char *op, const cJSON *p,
                                  authz_machine_fn fn, void *arg, authz_lookups *need, char *why,
                                  size_t cap)
{
    if (instance_op(op)) {
        const char *id = str_member(p, "instance_id");
        /* Without a string id the server refuses the op and touches nothing. */
        return id ? check_instance(c, id, fn, arg, need, why, cap) : AUTHZ_ALLOW;
    }
    if (is(op, "CREATE_INSTANCE")) {
        const char *id = str_member(p, "instance_id");
        if (c->claims.instances.present) {
            if (id == NULL) {
                snprintf(why, cap,
                         "the token limits instances: CREATE_INSTANCE needs an instance_id "
                         "inside them");
                return AUTHZ_DENY;
            }
            if (!jwt_allows_instance(&c->claims, id)) {
                snprintf(why, cap,
                         "the token's rstmdb.instances does not include instance \"%.100s\"", id);
                return AUTHZ_DENY;
            }
        }
        return check_machine(c, str_member(p, "machine"), why, cap);
    }
    if (is(op, "PUT_MACHINE") || is(op, "GET_MACHINE"))
        return check_machine(c, str_member(p, "machine"), why, cap);
    if (is(op, "LIST_INSTANCES")) {
        if (c->claims.instances.present) {
            snprintf(why, cap, "the token limits instances: LIST_INSTANCES is refused");
            return AUTHZ_DENY;
        }
        if (c->claims.machines.present) {
            const char *m = str_member(p, "machine");
            if (m == NULL) {
                snprintf(why, cap,
                         "the token limits machines: LIST_INSTANCES needs a machine inside them");
                return AUTHZ_DENY;
            }
            return check_machine(c, m, why, cap);
        }
        return AUTHZ_ALLOW;
    }
    if (is(op, "WATCH_ALL"))
        return check_watch_all(c, cJSON_GetObjectItemCaseSensitive(p, "machines"), why, cap);
    return AUTHZ_ALLOW;
}

static authz_verdict check_one(const auth_caller *c, const char *op, const cJSON *p,
                               authz_machine_fn fn, void *arg, authz_lookups *need, char *why,
                               size_t cap)
{
    unsigned want = scope_for_op(op, strlen(op));
    if (!scope_grants(c->claims.scopes, want)) {
        snprintf(why, cap, "the token lacks %s, needed by %.40s", scope_name(want), op);
        return AUTHZ_DENY;
    }
    if (!limited(c))
        return AUTHZ_ALLOW;
    return check_limits(c, op, p, fn, arg, need, why, cap);
}

authz_verdict authz_op(const auth_caller *c, const char *op, const char *params, size_t len,
                       authz_machine_fn fn, void *arg, authz_lookups *need, char *why, size_t cap)
{
    if (c->kind != CALLER_JWT)
        return AUTHZ_ALLOW;
    cJSON *p = params ? cJSON_ParseWithLength(params, len) : NULL;
    if (params != NULL && p == NULL) {
        snprintf(why, cap, "out of memory checking the token's limits");
        return AUTHZ_DENY;
    }
    authz_verdict v;
    if (!is(op, "BATCH")) {
        v = check_one(c, op, p, fn, arg, need, why, cap);
    } else {
        /* BATCH needs what each of its ops needs; every op is checked, so
         * that one round of lookups resolves them all. */
        v = AUTHZ_ALLOW;
        const cJSON *item;
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(p, "ops"))
        {
            const char *iop = str_member(item, "op");
            authz_verdict iv =
                check_one(c, iop ? iop : "", cJSON_GetObjectItemCaseSensitive(item, "params"), fn,
                          arg, need, why, cap);
            if (iv == AUTHZ_DENY) {
                v = AUTHZ_DENY;
                break;
            }
            if (iv == AUTHZ_LOOKUP)
                v = AUTHZ_LOOKUP;
        }
    }
    cJSON_Delete(p);
    if (v != AUTHZ_LOOKUP)
        authz_lookups_clear(need);
    return v;
}

authz_verdict authz_stream(const auth_caller *c, const char *instance_id, const cJSON *query,
                           authz_machine_fn fn, void *arg, authz_lookups *need, char *why,
                           size_t cap)
{
    if (c->kind != CALLER_JWT)
        return AUTHZ_ALLOW;
    if (!scope_grants(c->claims.scopes, SCOPE_WATCH)) {
        snprintf(why, cap, "the token lacks rstmdb:watch, needed by streams");
        return AUTHZ_DENY;
    }
    if (!limited(c))
        return AUTHZ_ALLOW;
    if (instance_id != NULL)
        return check_instance(c, instance_id, fn, arg, need, why, cap);
    return check_watch_all(c, cJSON_GetObjectItemCaseSensitive(query, "machines"), why, cap);
}
