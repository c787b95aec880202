/* jwt.h: JSON Web Tokens (RFC 7519) signed with a key of a JWK Set
 * (RFC 7517), as the proxy's browser credentials. Pure functions over
 * bytes and OpenSSL: no sockets, no clock (the caller passes `now`), no
 * logging. The contract is REST-API.md, "Authorization with JWT".
 *
 * Algorithms: RS256, PS256 (RSA >= 2048 bits), ES256 (P-256), EdDSA
 * (Ed25519), HS256 (oct >= 32 bytes). `alg: none`, `crit`, an algorithm
 * that does not match the key's type or the key's own `alg`, and tokens
 * over JWT_MAX_BYTES are refused before any signature work. */
#ifndef PROXY_JWT_H
#define PROXY_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JWT_MAX_BYTES    8192 /* a token longer than this is refused unparsed */
#define JWT_MAX_PATTERNS 256  /* entries in the rstmdb claim's lists */
#define JWT_MAX_KEYS     64   /* keys in one JWK Set */

typedef struct jwt_keys jwt_keys;

/* Parse a JWK Set ({"keys": [...]}). Every key must be usable: a broken
 * one fails the whole set, and *why names it by index ("key 2 (kid
 * \"a\"): RSA modulus shorter than 2048 bits"). Private RSA/EC/OKP members
 * are refused (a verifier needs public keys only). 0, or -1 with why. */
int jwt_keys_parse(const char *text, size_t len, jwt_keys **out, char *why, size_t cap);
void jwt_keys_free(jwt_keys *k);
size_t jwt_keys_count(const jwt_keys *k);

typedef struct jwt_policy {
    const char *audience; /* NULL or "" = aud not checked */
    const char *issuer;   /* NULL or "" = iss not checked */
    unsigned leeway_s;    /* allowed clock skew on exp and nbf */
} jwt_policy;

/* A resource list of the private `rstmdb` claim. `present` false = no
 * limit. An instance pattern ending in '*' is a prefix. */
typedef struct jwt_list {
    bool present;
    size_t n;
    char **v;
} jwt_list;

typedef struct jwt_claims {
    char sub[256];   /* "" when absent */
    int64_t exp;     /* seconds since the epoch (required) */
    unsigned scopes; /* SCOPE_* bits of scope.h */
    jwt_list instances;
    jwt_list machines;
} jwt_claims;

/* Verify `token` (compact JWS) at time `now` (Unix seconds). 0 and *out
 * filled (free it with jwt_claims_free), or -1 with a reason for the 401
 * detail ("token expired", "unknown kid", ...); *out is then empty. */
int jwt_verify(const jwt_keys *k, const jwt_policy *p, const char *token, size_t len, int64_t now,
               jwt_claims *out, char *why, size_t cap);
void jwt_claims_free(jwt_claims *c);

/* Resource checks: true when the claim has no such limit or `name` is in it. */
bool jwt_allows_instance(const jwt_claims *c, const char *id);
bool jwt_allows_machine(const jwt_claims *c, const char *machine);

/* base64url without padding (RFC 7515 §2), strict: a character outside
 * the alphabet, '=' or impossible trailing bits fail. Returns the decoded
 * length, or -1 (also when it would exceed cap). */
long jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap);

#endif
