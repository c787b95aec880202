/* scope.h: the four scope classes of the proxy's JWT authorization
 * (REST-API.md, "Authorization with JWT"): what a token's `scope` claim
 * grants and what each RCP operation needs. rstmdb:admin includes the
 * three others; the others are disjoint. */
#ifndef PROXY_SCOPE_H
#define PROXY_SCOPE_H

#include <stdbool.h>
#include <stddef.h>

#define SCOPE_NONE  0u /* needs no token (health, readiness, this API's document) */
#define SCOPE_READ  1u /* rstmdb:read */
#define SCOPE_WRITE 2u /* rstmdb:write */
#define SCOPE_WATCH 4u /* rstmdb:watch */
#define SCOPE_ADMIN 8u /* rstmdb:admin */

/* The bits named by a space-separated `scope` claim; unknown names are ignored. */
unsigned scope_parse(const char *claim);
/* What an RCP operation needs, by name (BATCH's items, /v1/rpc): reads,
 * writes and watches as listed in the contract, everything else admin
 * (unknown names included). */
unsigned scope_for_op(const char *op, size_t len);
/* true when `have` grants `need`. */
bool scope_grants(unsigned have, unsigned need);
/* "rstmdb:read" ... for error details; "rstmdb:admin" for anything else. */
const char *scope_name(unsigned need);

#endif
