/* fuzz_jwt.c: libFuzzer target for the JWT verifier (daemon/jwt.c). The
 * first byte picks the mode: odd = the rest is "header.payload" and the
 * target signs it with its own HS256 key, so the claims parser is reached
 * whatever the fuzzer writes; even = the rest is a whole token. Also checks
 * that base64url decoding is canonical (decode, encode, same text). */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "fuzz.h"
#include "jwt.h"

static const char jwks[] = "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"k\","
                           "\"k\":\"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA\"},"
                           "{\"kty\":\"EC\",\"crv\":\"P-256\","
                           "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                           "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}";
static const char secret[] = "secret-secret-secret-secret-secret";

static size_t b64url_encode(const unsigned char *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = a[(v >> 18) & 63];
        out[o++] = a[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = a[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = a[v & 63];
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static jwt_keys *keys;
    if (keys == NULL) {
        char why[128];
        FUZZ_CHECK(jwt_keys_parse(jwks, sizeof jwks - 1, &keys, why, sizeof why) == 0);
    }
    if (size < 1 || size > JWT_MAX_BYTES + 64)
        return 0;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;

    /* base64url: whatever decodes re-encodes to the same text. */
    unsigned char dec[JWT_MAX_BYTES + 64];
    long dl = jwt_b64url_decode(in, n, dec, sizeof dec);
    if (dl >= 0) {
        char enc[2 * sizeof dec];
        FUZZ_CHECK(b64url_encode(dec, (size_t)dl, enc) == n && memcmp(enc, in, n) == 0);
    }

    char tok[JWT_MAX_BYTES + 128];
    size_t tl = n;
    memcpy(tok, in, n);
    if (data[0] & 1) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned ml = 0;
        HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)tok, n, mac, &ml);
        tok[tl++] = '.';
        tl += b64url_encode(mac, ml, tok + tl);
    }
    jwt_policy p = {(data[0] & 2) ? "app" : NULL, (data[0] & 4) ? "iss" : NULL, 30};
    jwt_claims c;
    char why[256];
    int64_t now = 1700000000;
    if (jwt_verify(keys, &p, tok, tl, now, &c, why, sizeof why) == 0) {
        FUZZ_CHECK(c.exp + 30 > now);
        FUZZ_CHECK(memchr(c.sub, '\0', sizeof c.sub) != NULL);
        FUZZ_CHECK(c.instances.n <= JWT_MAX_PATTERNS && c.machines.n <= JWT_MAX_PATTERNS);
        FUZZ_CHECK(c.instances.present || c.instances.n == 0);
        for (size_t i = 0; i < c.instances.n; i++)
            (void)jwt_allows_instance(&c, c.instances.v[i]);
        jwt_claims_free(&c);
    } else {
        FUZZ_CHECK(memchr(why, '\0', sizeof why) != NULL && why[0] != '\0');
        FUZZ_CHECK(c.scopes == 0 && c.instances.v == NULL);
    }
    return 0;
}
