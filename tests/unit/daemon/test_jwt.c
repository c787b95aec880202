/* test_jwt.c: the JWT verifier and JWK Set loader against keys and tokens
 * minted by an independent implementation (python3-jwt, through
 * tests/support/jwt_mint.py; $JWT_VECTORS is its output directory), and
 * broken key sets written here. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jwt.h"
#include "scope.h"

static cJSON *tokens;
static jwt_keys *keys;
static int64_t minted_at; /* the verifier's clock: when the tokens were made */

static char *slurp(const char *name, size_t *len)
{
    const char *dir = getenv("JWT_VECTORS");
    ck_assert_msg(dir != NULL, "JWT_VECTORS is not set (run through ctest)");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = malloc((size_t)n + 1);
    ck_assert(fread(b, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    b[n] = '\0';
    if (len)
        *len = (size_t)n;
    return b;
}

static void setup(void)
{
    size_t len;
    char *t = slurp("tokens.json", NULL);
    tokens = cJSON_Parse(t);
    free(t);
    ck_assert_ptr_nonnull(tokens);
    minted_at = (int64_t)cJSON_GetObjectItem(tokens, "_minted_at")->valuedouble;
    ck_assert(minted_at > 0);
    char *j = slurp("jwks.json", &len);
    char why[256] = "";
    ck_assert_msg(jwt_keys_parse(j, len, &keys, why, sizeof why) == 0, "jwks: %s", why);
    free(j);
    ck_assert_uint_eq(jwt_keys_count(keys), 5);
}

static void teardown(void)
{
    jwt_keys_free(keys);
    cJSON_Delete(tokens);
}

static const jwt_policy policy = {"app", "https://issuer", 30};
static const jwt_policy open_policy = {NULL, NULL, 30};

/* Verify the named token; `want` NULL = must pass, else the reason must
 * contain it. */
static void expect(const char *name, const jwt_policy *p, const char *want, jwt_claims *keep)
{
    const cJSON *t = cJSON_GetObjectItem(tokens, name);
    ck_assert_msg(cJSON_IsString(t), "no token %s", name);
    jwt_claims c;
    char why[256] = "";
    int rc = jwt_verify(keys, p, t->valuestring, strlen(t->valuestring), minted_at, &c, why,
                        sizeof why);
    if (want == NULL) {
        ck_assert_msg(rc == 0, "%s refused: %s", name, why);
    } else {
        ck_assert_msg(rc != 0, "%s accepted, wanted \"%s\"", name, want);
        ck_assert_msg(strstr(why, want) != NULL, "%s: reason \"%s\", wanted \"%s\"", name, why,
                      want);
        ck_assert_int_eq(c.scopes, 0);
    }
    if (keep)
        *keep = c;
    else
        jwt_claims_free(&c);
}

START_TEST(each_algorithm)
{
    const char *names[] = {"rs256", "ps256", "es256", "eddsa", "hs256"};
    for (size_t i = 0; i < 5; i++) {
        jwt_claims c;
        expect(names[i], &policy, NULL, &c);
        ck_assert_str_eq(c.sub, "alice");
        ck_assert_uint_eq(c.scopes, SCOPE_READ | SCOPE_WRITE);
        ck_assert(!c.instances.present && !c.machines.present);
        ck_assert(c.exp > minted_at);
        jwt_claims_free(&c);
    }
}
END_TEST

START_TEST(alg_none_and_confusion)
{
    expect("none", &open_policy, "alg none", NULL);
    /* HS256 keyed with the RSA key's public PEM, naming the RSA key. */
    expect("confusion_hs256_rsa_pem", &open_policy, "does not match the key", NULL);
    expect("es256_with_rsa_kid", &policy, "does not match the key", NULL);
    /* No kid: rsa2 pins PS256, so an RS256 token by rsa2 finds no key that
     * verifies it (rsa1 is tried and fails). */
    expect("ps256_nokid_rsa2", &open_policy, NULL, NULL);
    expect("rs256_nokid_rsa2", &open_policy, "bad signature", NULL);
    expect("crit", &policy, "crit", NULL);
}
END_TEST

START_TEST(time_claims_and_leeway)
{
    expect("expired", &open_policy, "expired", NULL);
    expect("expired_within_leeway", &open_policy, NULL, NULL);
    jwt_policy strict = {NULL, NULL, 0};
    expect("expired_within_leeway", &strict, "expired", NULL);
    expect("nbf_future", &open_policy, "not valid yet", NULL);
    expect("nbf_within_leeway", &open_policy, NULL, NULL);
    expect("nbf_within_leeway", &strict, "not valid yet", NULL);
    expect("no_exp", &open_policy, "no exp", NULL);
    expect("exp_string", &open_policy, "exp must be a number", NULL);
}
END_TEST

START_TEST(audience_and_issuer)
{
    expect("aud_array", &policy, NULL, NULL);
    expect("aud_wrong", &policy, "aud", NULL);
    expect("aud_missing", &policy, "aud", NULL);
    expect("aud_missing", &open_policy, NULL, NULL);
    expect("iss_wrong", &policy, "iss", NULL);
}
END_TEST

START_TEST(kid_selection)
{
    expect("kid_unknown", &policy, "unknown kid", NULL);
    /* Signed by rsa2 but naming rsa1: only rsa1 is tried. */
    expect("kid_wrong_key", &policy, "bad signature", NULL);
}
END_TEST

START_TEST(claims_and_limits)
{
    expect("scope_not_string", &open_policy, "scope must be", NULL);
    expect("limits_bad", &open_policy, "rstmdb.instances", NULL);
    expect("deep_claims", &open_policy, "nested too deeply", NULL);
    expect("huge_claims", &open_policy, "longer than", NULL);
    jwt_claims c;
    expect("limits", &open_policy, NULL, &c);
    ck_assert_uint_eq(c.scopes, SCOPE_WATCH);
    ck_assert(jwt_allows_instance(&c, "order-42"));
    ck_assert(!jwt_allows_instance(&c, "order-4"));
    ck_assert(!jwt_allows_instance(&c, "order-420"));
    ck_assert(jwt_allows_instance(&c, "cart-"));
    ck_assert(jwt_allows_instance(&c, "cart-9/x"));
    ck_assert(!jwt_allows_instance(&c, "car"));
    ck_assert(jwt_allows_machine(&c, "order"));
    ck_assert(!jwt_allows_machine(&c, "orde*"));
    ck_assert(!jwt_allows_machine(&c, "cart"));
    jwt_claims_free(&c);
    ck_assert(scope_grants(SCOPE_ADMIN, SCOPE_WATCH));
    ck_assert(!scope_grants(SCOPE_READ, SCOPE_WRITE));
    ck_assert(!scope_grants(SCOPE_WRITE, SCOPE_READ));
}
END_TEST

START_TEST(malformed_tokens)
{
    expect("two_parts", &policy, "compact JWS", NULL);
    expect("four_parts", &policy, "compact JWS", NULL);
    expect("bad_b64_sig", &policy, "base64url", NULL);
    expect("padded_b64", &policy, "base64url", NULL);
    expect("tampered_payload", &policy, "bad signature", NULL);
    expect("header_not_json", &policy, "header", NULL);
    expect("empty_sig", &policy, "no signature", NULL);
    /* Oversized: refused before any parsing, whatever the bytes. */
    size_t n = JWT_MAX_BYTES + 1;
    char *big = malloc(n);
    memset(big, 'a', n);
    jwt_claims c;
    char why[128];
    ck_assert_int_ne(jwt_verify(keys, &policy, big, n, 0, &c, why, sizeof why), 0);
    ck_assert_ptr_nonnull(strstr(why, "longer than"));
    free(big);
    ck_assert_int_ne(jwt_verify(keys, &policy, "", 0, 0, &c, why, sizeof why), 0);
    ck_assert_int_ne(jwt_verify(keys, &policy, "..", 2, 0, &c, why, sizeof why), 0);
}
END_TEST

/* ---- the key set loader ---------------------------------------------------- */

static void jwks_fails(const char *text, const char *want)
{
    jwt_keys *k = NULL;
    char why[256] = "";
    ck_assert_msg(jwt_keys_parse(text, strlen(text), &k, why, sizeof why) != 0, "accepted: %s",
                  text);
    ck_assert_ptr_null(k);
    ck_assert_msg(strstr(why, want) != NULL, "reason \"%s\", wanted \"%s\"", why, want);
}

#define OCT32 "\"k\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\""
#define EC_X  "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\""
#define EC_Y  "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\""

START_TEST(broken_key_sets)
{
    jwks_fails("nope", "not JSON");
    jwks_fails("{}", "non-empty \"keys\"");
    jwks_fails("{\"keys\":[]}", "non-empty \"keys\"");
    jwks_fails("{\"keys\":[{\"kty\":\"oct\"," OCT32 "},{\"kty\":\"XYZ\"}]}", "key 1: kty");
    jwks_fails("{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\",\"kid\":\"s\"}]}",
               "key 0 (kid \"s\"): oct key shorter");
    jwks_fails("{\"keys\":[{\"kty\":\"oct\",\"k\":\"!!\"}]}", "key 0: oct key lacks");
    jwks_fails("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}", "shorter than 2048");
    jwks_fails("{\"keys\":[{\"kty\":\"RSA\",\"e\":\"AQAB\"}]}", "lacks a valid n");
    jwks_fails("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-384\"," EC_X "," EC_Y "}]}", "P-256");
    /* y changed by one bit: no longer on the curve. */
    jwks_fails("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\"," EC_X
               ",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5b0\"}]}",
               "not on P-256");
    jwks_fails("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\"," EC_X "," EC_Y ",\"d\":\"AA\"}]}",
               "private key material");
    jwks_fails("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"AA\"}]}", "Ed25519");
    jwks_fails("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}]}", "32 bytes");
    jwks_fails("{\"keys\":[{\"kty\":\"oct\"," OCT32 ",\"alg\":\"RS256\"}]}", "does not match kty");
    jwks_fails("{\"keys\":[{\"kty\":\"oct\"," OCT32 ",\"alg\":\"HS512\"}]}", "alg must be");
    jwks_fails("{\"keys\":[{\"kty\":\"oct\"," OCT32 ",\"use\":\"enc\"}]}", "use must be sig");
    jwks_fails("{\"keys\":[{\"kty\":\"oct\"," OCT32 ",\"kid\":\"a\"},{\"kty\":\"oct\"," OCT32
               ",\"kid\":\"a\"}]}",
               "key 1 (kid \"a\"): kid used");
    jwks_fails("{\"keys\":[{\"kty\":\"oct\"," OCT32 ",\"kid\":7}]}", "kid must be a string");

    jwt_keys *k = NULL;
    const char *ok = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\"," EC_X "," EC_Y
                     "},{\"kty\":\"oct\"," OCT32 "}]}";
    char why[256] = "";
    ck_assert_msg(jwt_keys_parse(ok, strlen(ok), &k, why, sizeof why) == 0, "%s", why);
    ck_assert_uint_eq(jwt_keys_count(k), 2);
    jwt_keys_free(k);
}
END_TEST

START_TEST(base64url_is_strict)
{
    unsigned char out[16];
    ck_assert_int_eq(jwt_b64url_decode("", 0, out, sizeof out), 0);
    ck_assert_int_eq(jwt_b64url_decode("TWFu", 4, out, sizeof out), 3);
    ck_assert(memcmp(out, "Man", 3) == 0);
    ck_assert_int_eq(jwt_b64url_decode("TWE", 3, out, sizeof out), 2);
    ck_assert_int_eq(jwt_b64url_decode("TQ", 2, out, sizeof out), 1);
    ck_assert_int_eq(jwt_b64url_decode("-_8", 3, out, sizeof out), 2);
    ck_assert_int_eq(out[0], 0xfb);
    ck_assert_int_eq(out[1], 0xff);
    ck_assert_int_eq(jwt_b64url_decode("TR", 2, out, sizeof out), -1); /* nonzero spare bits */
    ck_assert_int_eq(jwt_b64url_decode("T", 1, out, sizeof out), -1);
    ck_assert_int_eq(jwt_b64url_decode("TQ==", 4, out, sizeof out), -1);
    ck_assert_int_eq(jwt_b64url_decode("+/8A", 4, out, sizeof out), -1);
    ck_assert_int_eq(jwt_b64url_decode("TWFu", 4, out, 2), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jwt");
    TCase *tc = tcase_create("jwt");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, each_algorithm);
    tcase_add_test(tc, alg_none_and_confusion);
    tcase_add_test(tc, time_claims_and_leeway);
    tcase_add_test(tc, audience_and_issuer);
    tcase_add_test(tc, kid_selection);
    tcase_add_test(tc, claims_and_limits);
    tcase_add_test(tc, malformed_tokens);
    tcase_add_test(tc, broken_key_sets);
    tcase_add_test(tc, base64url_is_strict);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
