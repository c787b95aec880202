/* scope.c: scope names and the operation -> scope table. Pure. */
#include "scope.h"

#include <string.h>

static const struct {
    const char *name;
    unsigned bit;
} names[] = {
    {"rstmdb:read", SCOPE_READ},
    {"rstmdb:write", SCOPE_WRITE},
    {"rstmdb:watch", SCOPE_WATCH},
    {"rstmdb:admin", SCOPE_ADMIN},
};

static const struct {
    const char *op;
    unsigned scope;
} ops[] = {
    {"PING", SCOPE_READ},
    {"INFO", SCOPE_READ},
    {"GET_MACHINE", SCOPE_READ},
    {"LIST_MACHINES", SCOPE_READ},
    {"GET_INSTANCE", SCOPE_READ},
    {"LIST_INSTANCES", SCOPE_READ},
    {"CREATE_INSTANCE", SCOPE_WRITE},
    {"APPLY_EVENT", SCOPE_WRITE},
    {"DELETE_INSTANCE", SCOPE_WRITE},
    {"WATCH_INSTANCE", SCOPE_WATCH},
    {"WATCH_ALL", SCOPE_WATCH},
};

unsigned scope_parse(const char *claim)
{
    unsigned bits = 0;
    for (const char *s = claim; s && *s;) {
        s += strspn(s, " ");
        size_t l = strcspn(s, " ");
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (l > 0 && strlen(names[i].name) == l && memcmp(names[i].name, s, l) == 0)
                bits |= names[i].bit;
        s += l;
    }
    return bits;
}

unsigned scope_for_op(const char *op, size_t len)
{
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strlen(ops[i].op) == len && memcmp(ops[i].op, op, len) == 0)
            return ops[i].scope;
    return SCOPE_ADMIN;
}

bool scope_grants(unsigned have, unsigned need)
{
    return (have & SCOPE_ADMIN) != 0 || (have & need) == need;
}

const char *scope_name(unsigned need)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].bit == need)
            return names[i].name;
    return "rstmdb:admin";
}
