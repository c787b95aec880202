/* machine.h: machine definitions as rstmdb-core validates and normalizes
 * them (PROTOCOL.md §6): serde shape errors, the validation order, the
 * normalized form GET_MACHINE returns and the CRC32C checksum over the
 * fixed-order compact JSON. Knows nothing about versions or storage. */
#ifndef TESTD_MACHINE_H
#define TESTD_MACHINE_H

#include <stddef.h>
#include <stdint.h>

#include "guard.h"
#include "jval.h"

typedef struct machine_transition {
    char **from;
    size_t nfrom;
    char *event;
    char *to;
    char *guard_text; /* NULL when no guard */
    guard *guard;
} machine_transition;

typedef struct machine_def {
    char **states;
    size_t nstates;
    char *initial;
    machine_transition *trans;
    size_t ntrans;
    jval *meta;       /* sorted; NULL when absent or null */
    uint32_t version; /* set by the caller (registry) */
    char checksum[9]; /* 8 lowercase hex digits */
    char *json;       /* normalized definition, keys sorted (GET_MACHINE) */
    size_t json_len;
} machine_def;

#define MACHINE_OK       0
#define MACHINE_EINVALID 1 /* *err = "core error: ..." message (INTERNAL_ERROR) */
#define MACHINE_EPANIC   2 /* a guard the real parser panics on */
#define MACHINE_ENOMEM   (-1)

/* Parse and validate a (normalized) definition value. */
int machine_def_parse(const jval *def, machine_def **out, char **err);
void machine_def_free(machine_def *d);
/* The transition for (state, event), or NULL. */
const machine_transition *machine_def_find(const machine_def *d, const char *state,
                                           const char *event, size_t evlen);

#endif
