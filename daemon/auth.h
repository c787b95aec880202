/* auth.h: who is calling the proxy's HTTP listeners. Two kinds of
 * credentials: static bearer tokens (services, full access), kept only as
 * SHA-256 digests and compared in constant time; and JSON Web Tokens
 * (jwt.h) minted by an application for its users, read from the
 * Authorization header, the jwt_cookie cookie, or the access_token query
 * parameter of the two SSE routes, first found wins (REST-API.md,
 * "Authorization with JWT"). What a caller may do is authz.h's. */
#ifndef PROXY_AUTH_H
#define PROXY_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jwt.h"

typedef struct auth auth;

typedef struct auth_config {
    const char *const *tokens; /* static tokens (copied as digests) */
    size_t ntokens;
    const char *jwks; /* JWK Set text, NULL = JWT off */
    size_t jwks_len;
    jwt_policy policy;  /* audience, issuer, leeway (strings copied) */
    const char *cookie; /* cookie name ("" or NULL = rstmdb_token) */
} auth_config;

/* 0, or -1 with why (a broken JWK Set names its key). */
int auth_new(auth **out, const auth_config *c, char *why, size_t cap);
void auth_free(auth *a);
/* Any credential configured (otherwise every request is allowed). */
bool auth_enabled(const auth *a);
bool auth_jwt_enabled(const auth *a);
size_t auth_token_count(const auth *a);
size_t auth_key_count(const auth *a);

typedef enum auth_kind {
    CALLER_OPEN,    /* no auth configured: full access */
    CALLER_SERVICE, /* a static token: full access */
    CALLER_JWT      /* a verified JWT: its scopes and limits */
} auth_kind;

typedef struct auth_caller {
    auth_kind kind;
    jwt_claims claims; /* CALLER_JWT */
    /* The rate-limit identity: "sub:<sub>", "token:<digest prefix>", or
     * "addr:<peer>" for open callers and JWTs without sub. */
    char key[300];
} auth_caller;

/* What a request offers. Pointers may be NULL. */
typedef struct auth_request {
    const char *authorization; /* the Authorization header */
    const char *cookie;        /* the Cookie header */
    const char *access_token;  /* the access_token query value */
    bool has_access_token;     /* the parameter was given (even empty) */
    bool stream_route;         /* the two SSE routes accept access_token */
    const char *peer;          /* client address, for the rate-limit key */
} auth_request;

typedef enum auth_verdict {
    AUTH_OK,
    AUTH_NO_CREDENTIALS, /* 401 UNAUTHORIZED, WWW-Authenticate: Bearer */
    AUTH_INVALID,        /* 401 AUTH_FAILED, Bearer error="invalid_token" */
    AUTH_QUERY_NOT_HERE  /* 400: access_token outside the SSE routes */
} auth_verdict;

/* Identify the caller at `now` (Unix seconds). *c is always initialised;
 * release it with auth_caller_deinit. why: the 401/400 detail. */
auth_verdict auth_identify(const auth *a, const auth_request *r, int64_t now, auth_caller *c,
                           char *why, size_t cap);
void auth_caller_deinit(auth_caller *c);

/* The value of cookie `name` in a Cookie header (RFC 6265 "a=b; c=d"),
 * copied into out: its length, -1 when absent, -2 when longer than cap - 1. */
long auth_cookie_value(const char *header, const char *name, char *out, size_t cap);

#endif
