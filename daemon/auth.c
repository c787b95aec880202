/* auth.c: token digests, the constant-time check, the JWT credential's
 * three locations and the caller's identity. It must never log or keep a
 * token in clear text. */
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct auth {
    size_t n;
    unsigned char (*digests)[SHA256_DIGEST_LENGTH];
    jwt_keys *keys; /* NULL = JWT off */
    char *audience, *issuer;
    unsigned leeway_s;
    char cookie[128];
};

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

int auth_new(auth **out, const auth_config *c, char *why, size_t cap)
{
    *out = NULL;
    auth *a = calloc(1, sizeof *a);
    if (a == NULL ||
        (c->ntokens > 0 && (a->digests = calloc(c->ntokens, sizeof *a->digests)) == NULL)) {
        free(a);
        snprintf(why, cap, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < c->ntokens; i++)
        SHA256((const unsigned char *)c->tokens[i], strlen(c->tokens[i]), a->digests[i]);
    a->n = c->ntokens;
    snprintf(a->cookie, sizeof a->cookie, "%s",
             c->cookie && *c->cookie ? c->cookie : "rstmdb_token");
    if (c->jwks != NULL) {
        char kwhy[256];
        if (jwt_keys_parse(c->jwks, c->jwks_len, &a->keys, kwhy, sizeof kwhy) != 0) {
            snprintf(why, cap, "%s", kwhy);
            auth_free(a);
            return -1;
        }
        a->audience = dup_or_null(c->policy.audience);
        a->issuer = dup_or_null(c->policy.issuer);
        a->leeway_s = c->policy.leeway_s;
    }
    *out = a;
    return 0;
}

void auth_free(auth *a)
{
    if (a == NULL)
        return;
    if (a->digests)
        OPENSSL_cleanse(a->digests, a->n * sizeof *a->digests);
    free(a->digests);
    jwt_keys_free(a->keys);
    free(a->audience);
    free(a->issuer);
    free(a);
}

bool auth_enabled(const auth *a)
{
    return a != NULL && (a->n > 0 || a->keys != NULL);
}

bool auth_jwt_enabled(const auth *a)
{
    return a != NULL && a->keys != NULL;
}

size_t auth_token_count(const auth *a)
{
    return a ? a->n : 0;
}

size_t auth_key_count(const auth *a)
{
    return a ? jwt_keys_count(a->keys) : 0;
}

long auth_cookie_value(const char *header, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = header; p && *p;) {
        p += strspn(p, " \t;");
        const char *end = p + strcspn(p, ";");
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq != NULL && (size_t)(eq - p) == nl && memcmp(p, name, nl) == 0) {
            const char *v = eq + 1, *ve = end;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if (ve - v >= 2 && v[0] == '"' && ve[-1] == '"') { /* a quoted cookie-value */
                v++;
                ve--;
            }
            size_t vl = (size_t)(ve - v);
            if (vl + 1 > cap)
                return -2;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return (long)vl;
        }
        p = end;
    }
    return -1;
}

/* Compare against every token (no early exit) so the position of the
 * matching token does not show in the timing either. */
static int static_token(const auth *a, const char *tok, unsigned char d[SHA256_DIGEST_LENGTH])
{
    SHA256((const unsigned char *)tok, strlen(tok), d);
    int ok = 0;
    for (size_t i = 0; i < a->n; i++)
        ok |= CRYPTO_memcmp(d, a->digests[i], SHA256_DIGEST_LENGTH) == 0;
    return ok;
}

static void peer_key(auth_caller *c, const char *peer)
{
    snprintf(c->key, sizeof c->key, "addr:%s", peer && *peer ? peer : "-");
}

static auth_verdict verify_jwt(const auth *a, const char *tok, int64_t now, auth_caller *c,
                               const char *peer, char *why, size_t cap)
{
    jwt_policy p = {a->audience, a->issuer, a->leeway_s};
    char jwhy[200];
    if (jwt_verify(a->keys, &p, tok, strlen(tok), now, &c->claims, jwhy, sizeof jwhy) != 0) {
        snprintf(why, cap, "invalid token: %s", jwhy);
        return AUTH_INVALID;
    }
    c->kind = CALLER_JWT;
    if (c->claims.sub[0])
        snprintf(c->key, sizeof c->key, "sub:%s", c->claims.sub);
    else
        peer_key(c, peer);
    return AUTH_OK;
}

auth_verdict auth_identify(const auth *a, const auth_request *r, int64_t now, auth_caller *c,
                           char *why, size_t cap)
{
    memset(c, 0, sizeof *c);
    c->kind = CALLER_OPEN;
    peer_key(c, r->peer);
    if (why && cap)
        why[0] = '\0';
    if (r->has_access_token && !r->stream_route) {
        snprintf(why, cap,
                 "access_token is accepted on the two SSE routes only; send "
                 "Authorization: Bearer");
        return AUTH_QUERY_NOT_HERE;
    }
    if (!auth_enabled(a))
        return AUTH_OK;

    /* First found wins, strictly: a bad header is not rescued by a cookie. */
    if (r->authorization != NULL) {
        if (strncasecmp(r->authorization, "Bearer ", 7) != 0) {
            snprintf(why, cap, "Authorization must be \"Bearer <token>\"");
            return a->keys ? AUTH_INVALID : AUTH_NO_CREDENTIALS;
        }
        const char *tok = r->authorization + 7;
        while (*tok == ' ')
            tok++;
        unsigned char d[SHA256_DIGEST_LENGTH];
        int ok = static_token(a, tok, d);
        if (ok) {
            c->kind = CALLER_SERVICE;
            snprintf(c->key, sizeof c->key, "token:%02x%02x%02x%02x%02x%02x%02x%02x", d[0], d[1],
                     d[2], d[3], d[4], d[5], d[6], d[7]);
        }
        OPENSSL_cleanse(d, sizeof d);
        if (ok)
            return AUTH_OK;
        if (a->keys == NULL) {
            snprintf(why, cap, "missing or wrong bearer token (Authorization: Bearer ...)");
            return AUTH_NO_CREDENTIALS;
        }
        return verify_jwt(a, tok, now, c, r->peer, why, cap);
    }
    if (a->keys != NULL && r->cookie != NULL) {
        char tok[JWT_MAX_BYTES + 1];
        long n = auth_cookie_value(r->cookie, a->cookie, tok, sizeof tok);
        if (n == -2) {
            snprintf(why, cap, "invalid token: longer than %d bytes", JWT_MAX_BYTES);
            return AUTH_INVALID;
        }
        if (n >= 0)
            return verify_jwt(a, tok, now, c, r->peer, why, cap);
    }
    if (a->keys != NULL && r->has_access_token)
        return verify_jwt(a, r->access_token ? r->access_token : "", now, c, r->peer, why, cap);
    snprintf(why, cap, "credentials required (Authorization: Bearer%s)",
             a->keys ? ", the JWT cookie, or access_token on streams" : "");
    return AUTH_NO_CREDENTIALS;
}

void auth_caller_deinit(auth_caller *c)
{
    if (c == NULL)
        return;
    jwt_claims_free(&c->claims);
    c->kind = CALLER_OPEN;
}
