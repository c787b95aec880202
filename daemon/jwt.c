/* jwt.c: the JWK Set loader and the compact-JWS verifier of jwt.h. It owns
 * the keys (EVP_PKEYs and oct secrets, cleansed on free) and never logs or
 * keeps a token. Every check that needs no key runs before signature work. */
#include "jwt.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jscan.h"
#include "scope.h"

typedef enum key_type { KT_RSA, KT_EC, KT_OKP, KT_OCT } key_type;

typedef enum jwt_alg { ALG_ANY = 0, ALG_RS256, ALG_PS256, ALG_ES256, ALG_EDDSA, ALG_HS256 } jwt_alg;

static const struct {
    const char *name;
    jwt_alg alg;
    key_type kty;
} algs[] = {
    {"RS256", ALG_RS256, KT_RSA}, {"PS256", ALG_PS256, KT_RSA}, {"ES256", ALG_ES256, KT_EC},
    {"EdDSA", ALG_EDDSA, KT_OKP}, {"HS256", ALG_HS256, KT_OCT},
};

typedef struct jwk {
    key_type kty;
    jwt_alg alg; /* ALG_ANY unless the key names one */
    char *kid;   /* NULL when the key has none */
    EVP_PKEY *pkey;
    unsigned char *secret; /* oct */
    size_t secret_len;
} jwk;

struct jwt_keys {
    size_t n;
    jwk k[JWT_MAX_KEYS];
};

static void say(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t cap, const char *fmt, ...)
{
    if (why == NULL || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

/* ---- base64url ----------------------------------------------------------- */

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
    if (len % 4 == 1)
        return -1;
    size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (need > cap)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* The leftover bits of the last character must be zero: one encoding
     * per byte string, so a signature cannot be varied without breaking. */
    if (acc != 0)
        return -1;
    return (long)o;
}

/* Decode a base64url member of a JWK into a fresh buffer. */
static int b64_member(const cJSON *key, const char *name, unsigned char **out, size_t *len,
                      size_t max)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(key, name);
    if (!cJSON_IsString(v))
        return -1;
    size_t sl = strlen(v->valuestring);
    unsigned char *b = malloc(sl + 1);
    if (b == NULL)
        return -1;
    long n = jwt_b64url_decode(v->valuestring, sl, b, sl + 1);
    if (n <= 0 || (size_t)n > max) {
        free(b);
        return -1;
    }
    *out = b;
    *len = (size_t)n;
    return 0;
}

/* ---- keys ---------------------------------------------------------------- */

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static const char *load_rsa(const cJSON *key, jwk *k)
{
    unsigned char *n = NULL, *e = NULL;
    size_t nl = 0, el = 0;
    const char *err = NULL;
    if (b64_member(key, "n", &n, &nl, 2048) != 0)
        err = "RSA key lacks a valid n";
    else if (b64_member(key, "e", &e, &el, 8) != 0)
        err = "RSA key lacks a valid e";
    BIGNUM *bn = err ? NULL : BN_bin2bn(n, (int)nl, NULL);
    BIGNUM *be = err ? NULL : BN_bin2bn(e, (int)el, NULL);
    if (!err && (bn == NULL || be == NULL))
        err = "out of memory";
    if (!err && BN_num_bits(bn) < 2048)
        err = "RSA modulus shorter than 2048 bits";
    if (!err) {
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        if (bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
            k->pkey = pkey_fromdata("RSA", bld);
        OSSL_PARAM_BLD_free(bld);
        if (k->pkey == NULL)
            err = "RSA key refused by OpenSSL";
    }
    BN_free(bn);
    BN_free(be);
    free(n);
    free(e);
    return err;
}

static const char *load_ec(const cJSON *key, jwk *k)
{
    const cJSON *crv = cJSON_GetObjectItemCaseSensitive(key, "crv");
    if (!cJSON_IsString(crv) || strcmp(crv->valuestring, "P-256") != 0)
        return "EC key: crv must be P-256";
    unsigned char *x = NULL, *y = NULL;
    size_t xl = 0, yl = 0;
    const char *err = NULL;
    if (b64_member(key, "x", &x, &xl, 32) != 0 || xl != 32)
        err = "EC key: x must be 32 bytes";
    else if (b64_member(key, "y", &y, &yl, 32) != 0 || yl != 32)
        err = "EC key: y must be 32 bytes";
    if (!err) {
        unsigned char pub[65];
        pub[0] = 0x04; /* uncompressed point */
        memcpy(pub + 1, x, 32);
        memcpy(pub + 33, y, 32);
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) &&
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub))
            k->pkey = pkey_fromdata("EC", bld);
        OSSL_PARAM_BLD_free(bld);
        /* fromdata does not prove the point is on the curve: check it. */
        EVP_PKEY_CTX *c = k->pkey ? EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL) : NULL;
        if (c == NULL || EVP_PKEY_public_check(c) != 1)
            err = "EC key: the point is not on P-256";
        EVP_PKEY_CTX_free(c);
    }
    free(x);
    free(y);
    return err;
}

static const char *load_okp(const cJSON *key, jwk *k)
{
    const cJSON *crv = cJSON_GetObjectItemCaseSensitive(key, "crv");
    if (!cJSON_IsString(crv) || strcmp(crv->valuestring, "Ed25519") != 0)
        return "OKP key: crv must be Ed25519";
    unsigned char *x = NULL;
    size_t xl = 0;
    if (b64_member(key, "x", &x, &xl, 32) != 0 || xl != 32) {
        free(x);
        return "OKP key: x must be 32 bytes";
    }
    k->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, xl);
    free(x);
    return k->pkey ? NULL : "OKP key refused by OpenSSL";
}

static const char *load_oct(const cJSON *key, jwk *k)
{
    if (b64_member(key, "k", &k->secret, &k->secret_len, 4096) != 0)
        return "oct key lacks a valid k";
    if (k->secret_len < 32)
        return "oct key shorter than 32 bytes (HS256 needs at least 256 bits)";
    return NULL;
}

static const char *load_key(const cJSON *key, jwk *k, const jwt_keys *set)
{
    if (!cJSON_IsObject(key))
        return "not an object";
    const cJSON *kty = cJSON_GetObjectItemCaseSensitive(key, "kty");
    if (!cJSON_IsString(kty))
        return "kty missing";
    static const char *const names[] = {"RSA", "EC", "OKP", "oct"};
    size_t t = 0;
    while (t < 4 && strcmp(kty->valuestring, names[t]) != 0)
        t++;
    if (t == 4)
        return "kty must be RSA, EC, OKP or oct";
    k->kty = (key_type)t;
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(key, "kid");
    if (kid != NULL) {
        if (!cJSON_IsString(kid))
            return "kid must be a string";
        for (size_t i = 0; i < set->n; i++)
            if (set->k[i].kid && strcmp(set->k[i].kid, kid->valuestring) == 0)
                return "kid used by an earlier key";
        if ((k->kid = strdup(kid->valuestring)) == NULL)
            return "out of memory";
    }
    const cJSON *use = cJSON_GetObjectItemCaseSensitive(key, "use");
    if (use != NULL && !(cJSON_IsString(use) && strcmp(use->valuestring, "sig") == 0))
        return "use must be sig";
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(key, "alg");
    if (alg != NULL) {
        size_t a = 0;
        while (a < sizeof algs / sizeof algs[0] &&
               !(cJSON_IsString(alg) && strcmp(alg->valuestring, algs[a].name) == 0))
            a++;
        if (a == sizeof algs / sizeof algs[0])
            return "alg must be RS256, PS256, ES256, EdDSA or HS256";
        if (algs[a].kty != k->kty)
            return "alg does not match kty";
        k->alg = algs[a].alg;
    }
    if (k->kty != KT_OCT && cJSON_HasObjectItem(key, "d"))
        return "holds private key material (d): give the public key only";
    switch (k->kty) {
    case KT_RSA:
        return load_rsa(key, k);
    case KT_EC:
        return load_ec(key, k);
    case KT_OKP:
        return load_okp(key, k);
    case KT_OCT:
        return load_oct(key, k);
    }
    return "unreachable";
}

static void jwk_clear(jwk *k)
{
    EVP_PKEY_free(k->pkey);
    if (k->secret)
        OPENSSL_cleanse(k->secret, k->secret_len);
    free(k->secret);
    free(k->kid);
    memset(k, 0, sizeof *k);
}

void jwt_keys_free(jwt_keys *k)
{
    if (k == NULL)
        return;
    for (size_t i = 0; i < k->n; i++)
        jwk_clear(&k->k[i]);
    free(k);
}

size_t jwt_keys_count(const jwt_keys *k)
{
    return k ? k->n : 0;
}

int jwt_keys_parse(const char *text, size_t len, jwt_keys **out, char *why, size_t cap)
{
    *out = NULL;
    const char *jwhy = NULL;
    jscan_type jt;
    if (jscan_validate(text, len, 16, &jt, &jwhy) != 0) {
        say(why, cap, "not JSON: %s", jwhy ? jwhy : "invalid");
        return -1;
    }
    cJSON *root = cJSON_ParseWithLength(text, len);
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(root, "keys");
    if (!cJSON_IsArray(keys) || cJSON_GetArraySize(keys) == 0) {
        say(why, cap, "a JWK Set needs a non-empty \"keys\" array");
        cJSON_Delete(root);
        return -1;
    }
    if (cJSON_GetArraySize(keys) > JWT_MAX_KEYS) {
        say(why, cap, "more than %d keys", JWT_MAX_KEYS);
        cJSON_Delete(root);
        return -1;
    }
    jwt_keys *set = calloc(1, sizeof *set);
    if (set == NULL) {
        say(why, cap, "out of memory");
        cJSON_Delete(root);
        return -1;
    }
    const cJSON *key;
    cJSON_ArrayForEach(key, keys)
    {
        jwk *k = &set->k[set->n];
        const char *err = load_key(key, k, set);
        if (err != NULL) {
            const cJSON *kid = cJSON_GetObjectItemCaseSensitive(key, "kid");
            if (cJSON_IsString(kid))
                say(why, cap, "key %zu (kid \"%.64s\"): %s", set->n, kid->valuestring, err);
            else
                say(why, cap, "key %zu: %s", set->n, err);
            jwk_clear(k);
            jwt_keys_free(set);
            cJSON_Delete(root);
            return -1;
        }
        set->n++;
    }
    cJSON_Delete(root);
    *out = set;
    return 0;
}

/* ---- signatures ---------------------------------------------------------- */

static bool verify_pkey(const jwk *k, jwt_alg alg, const unsigned char *msg, size_t mlen,
                        const unsigned char *sig, size_t slen)
{
    unsigned char der[80];
    if (alg == ALG_ES256) {
        /* JWS carries r || s (RFC 7518 §3.4); OpenSSL wants DER. */
        if (slen != 64)
            return false;
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
        if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
            BN_free(r);
            BN_free(s);
            ECDSA_SIG_free(es);
            return false;
        }
        unsigned char *p = der;
        int dl = i2d_ECDSA_SIG(es, NULL);
        if (dl <= 0 || (size_t)dl > sizeof der) {
            ECDSA_SIG_free(es);
            return false;
        }
        dl = i2d_ECDSA_SIG(es, &p);
        ECDSA_SIG_free(es);
        sig = der;
        slen = (size_t)dl;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    bool ok = false;
    const EVP_MD *md = alg == ALG_EDDSA ? NULL : EVP_sha256();
    if (ctx != NULL && EVP_DigestVerifyInit(ctx, &pctx, md, NULL, k->pkey) == 1) {
        int set = 1;
        if (alg == ALG_PS256)
            set = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
                  EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1 &&
                  EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1;
        else if (alg == ALG_RS256)
            set = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
        ok = set && EVP_DigestVerify(ctx, sig, slen, msg, mlen) == 1;
    }
    EVP_MD_CTX_free(ctx);
    return ok;
}

static bool verify_hmac(const jwk *k, const unsigned char *msg, size_t mlen,
                        const unsigned char *sig, size_t slen)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    if (HMAC(EVP_sha256(), k->secret, (int)k->secret_len, msg, mlen, mac, &ml) == NULL)
        return false;
    bool ok = slen == ml && CRYPTO_memcmp(mac, sig, ml) == 0;
    OPENSSL_cleanse(mac, sizeof mac);
    return ok;
}

static bool key_fits(const jwk *k, jwt_alg alg, key_type kty)
{
    return k->kty == kty && (k->alg == ALG_ANY || k->alg == alg);
}

static bool verify_with(const jwk *k, jwt_alg alg, const unsigned char *msg, size_t mlen,
                        const unsigned char *sig, size_t slen)
{
    return alg == ALG_HS256 ? verify_hmac(k, msg, mlen, sig, slen)
                            : verify_pkey(k, alg, msg, mlen, sig, slen);
}

/* ---- claims -------------------------------------------------------------- */

static void list_free(jwt_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

void jwt_claims_free(jwt_claims *c)
{
    if (c == NULL)
        return;
    list_free(&c->instances);
    list_free(&c->machines);
    memset(c, 0, sizeof *c);
}

static const char *take_list(const cJSON *o, const char *name, jwt_list *l)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, name);
    if (a == NULL)
        return NULL;
    if (!cJSON_IsArray(a))
        return "must be an array of strings";
    int n = cJSON_GetArraySize(a);
    if (n > JWT_MAX_PATTERNS)
        return "has too many entries";
    l->present = true;
    if (n == 0)
        return NULL;
    l->v = calloc((size_t)n, sizeof *l->v);
    if (l->v == NULL)
        return "out of memory";
    const cJSON *s;
    cJSON_ArrayForEach(s, a)
    {
        if (!cJSON_IsString(s))
            return "must be an array of strings";
        if ((l->v[l->n] = strdup(s->valuestring)) == NULL)
            return "out of memory";
        l->n++;
    }
    return NULL;
}

static bool numeric_date(const cJSON *v, int64_t *out)
{
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 ||
        v->valuedouble > 9e15)
        return false;
    *out = (int64_t)floor(v->valuedouble);
    return true;
}

static const char *check_claims(const cJSON *c, const jwt_policy *p, int64_t now, jwt_claims *out)
{
    int64_t exp, nbf;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, "exp");
    if (v == NULL)
        return "the token has no exp";
    if (!numeric_date(v, &exp))
        return "exp must be a number of seconds";
    int64_t leeway = p ? (int64_t)p->leeway_s : 0;
    if (now >= exp + leeway)
        return "token expired";
    v = cJSON_GetObjectItemCaseSensitive(c, "nbf");
    if (v != NULL) {
        if (!numeric_date(v, &nbf))
            return "nbf must be a number of seconds";
        if (now + leeway < nbf)
            return "token not valid yet (nbf)";
    }
    if (p && p->issuer && *p->issuer) {
        v = cJSON_GetObjectItemCaseSensitive(c, "iss");
        if (!cJSON_IsString(v) || strcmp(v->valuestring, p->issuer) != 0)
            return "iss does not match jwt_issuer";
    }
    if (p && p->audience && *p->audience) {
        v = cJSON_GetObjectItemCaseSensitive(c, "aud");
        bool ok = cJSON_IsString(v) && strcmp(v->valuestring, p->audience) == 0;
        const cJSON *a;
        if (cJSON_IsArray(v)) {
            cJSON_ArrayForEach(a, v)
            {
                if (cJSON_IsString(a) && strcmp(a->valuestring, p->audience) == 0)
                    ok = true;
            }
        }
        if (!ok)
            return "aud does not name jwt_audience";
    }
    v = cJSON_GetObjectItemCaseSensitive(c, "sub");
    if (v != NULL) {
        if (!cJSON_IsString(v) || strlen(v->valuestring) >= sizeof out->sub)
            return "sub must be a string of at most 255 bytes";
        memcpy(out->sub, v->valuestring, strlen(v->valuestring) + 1);
    }
    v = cJSON_GetObjectItemCaseSensitive(c, "scope");
    if (v != NULL) {
        if (!cJSON_IsString(v))
            return "scope must be a space-separated string";
        out->scopes = scope_parse(v->valuestring);
    }
    v = cJSON_GetObjectItemCaseSensitive(c, "rstmdb");
    if (v != NULL) {
        if (!cJSON_IsObject(v))
            return "the rstmdb claim must be an object";
        if (take_list(v, "instances", &out->instances) != NULL)
            return "rstmdb.instances must be an array of at most 256 strings";
        if (take_list(v, "machines", &out->machines) != NULL)
            return "rstmdb.machines must be an array of at most 256 strings";
    }
    out->exp = exp;
    return NULL;
}

/* ---- the token ----------------------------------------------------------- */

static cJSON *decode_json(const char *b64, size_t len, unsigned max_depth, const char **err)
{
    unsigned char *buf = malloc(len + 1);
    if (buf == NULL) {
        *err = "out of memory";
        return NULL;
    }
    long n = jwt_b64url_decode(b64, len, buf, len + 1);
    cJSON *j = NULL;
    jscan_type t;
    const char *jwhy = NULL;
    if (n <= 0)
        *err = "bad base64url";
    else if (jscan_validate((const char *)buf, (size_t)n, max_depth, &t, &jwhy) != 0 ||
             t != JSCAN_OBJECT)
        *err = jwhy && strstr(jwhy, "deep") ? "nested too deeply" : "not a JSON object";
    else if ((j = cJSON_ParseWithLength((const char *)buf, (size_t)n)) == NULL)
        *err = "out of memory";
    free(buf);
    return j;
}

int jwt_verify(const jwt_keys *k, const jwt_policy *p, const char *token, size_t len, int64_t now,
               jwt_claims *out, char *why, size_t cap)
{
    memset(out, 0, sizeof *out);
    if (len > JWT_MAX_BYTES) {
        say(why, cap, "token longer than %d bytes", JWT_MAX_BYTES);
        return -1;
    }
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (d1 == NULL || d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)) ||
        d1 == token || d2 == d1 + 1) {
        say(why, cap, "not a compact JWS (header.payload.signature)");
        return -1;
    }
    const char *err = NULL;
    cJSON *hdr = decode_json(token, (size_t)(d1 - token), 2, &err);
    if (hdr == NULL) {
        say(why, cap, "header: %s", err);
        return -1;
    }
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(hdr, "alg");
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(hdr, "kid");
    size_t ai = 0;
    while (ai < sizeof algs / sizeof algs[0] &&
           !(cJSON_IsString(a) && strcmp(a->valuestring, algs[ai].name) == 0))
        ai++;
    if (!cJSON_IsString(a))
        err = "header has no alg";
    else if (strcmp(a->valuestring, "none") == 0)
        err = "alg none is refused";
    else if (ai == sizeof algs / sizeof algs[0])
        err = "unsupported alg (RS256, PS256, ES256, EdDSA, HS256)";
    else if (cJSON_HasObjectItem(hdr, "crit"))
        err = "crit header parameters are not supported";
    else if (kid != NULL && !cJSON_IsString(kid))
        err = "kid must be a string";
    if (err != NULL) {
        say(why, cap, "%s", err);
        cJSON_Delete(hdr);
        return -1;
    }
    jwt_alg alg = algs[ai].alg;
    key_type kty = algs[ai].kty;

    unsigned char sig[600];
    long sl = jwt_b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - token), sig, sizeof sig);
    bool verified = false, any_key = false;
    if (sl > 0) {
        const unsigned char *msg = (const unsigned char *)token;
        size_t mlen = (size_t)(d2 - token);
        for (size_t i = 0; i < (k ? k->n : 0) && !verified; i++) {
            const jwk *key = &k->k[i];
            if (kid != NULL && (key->kid == NULL || strcmp(key->kid, kid->valuestring) != 0))
                continue;
            if (kid != NULL && !key_fits(key, alg, kty)) {
                err = "alg does not match the key named by kid";
                break;
            }
            if (!key_fits(key, alg, kty))
                continue;
            any_key = true;
            verified = verify_with(key, alg, msg, mlen, sig, (size_t)sl);
        }
    }
    cJSON_Delete(hdr);
    if (!verified) {
        if (sl == 0 && d2 + 1 == token + len)
            err = "no signature";
        else if (sl <= 0)
            err = "signature: bad base64url";
        else if (err == NULL)
            err = any_key ? "bad signature"
                  : kid   ? "unknown kid, or its key does not match alg"
                          : "no key for this alg";
        say(why, cap, "%s", err);
        return -1;
    }

    cJSON *claims = decode_json(d1 + 1, (size_t)(d2 - d1 - 1), 8, &err);
    if (claims == NULL) {
        say(why, cap, "claims: %s", err);
        return -1;
    }
    err = check_claims(claims, p, now, out);
    cJSON_Delete(claims);
    if (err != NULL) {
        jwt_claims_free(out);
        say(why, cap, "%s", err);
        return -1;
    }
    return 0;
}

/* ---- decisions ----------------------------------------------------------- */

static bool matches(const jwt_list *l, const char *name, bool prefixes)
{
    if (!l->present)
        return true;
    for (size_t i = 0; i < l->n; i++) {
        const char *p = l->v[i];
        size_t pl = strlen(p);
        if (prefixes && pl > 0 && p[pl - 1] == '*') {
            if (strncmp(name, p, pl - 1) == 0)
                return true;
        } else if (strcmp(name, p) == 0) {
            return true;
        }
    }
    return false;
}

bool jwt_allows_instance(const jwt_claims *c, const char *id)
{
    return matches(&c->instances, id, true);
}

bool jwt_allows_machine(const jwt_claims *c, const char *machine)
{
    return matches(&c->machines, machine, false);
}
