/* auth.c: token digests and the constant-time check. It must never log or
 * keep a token in clear text. */
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct auth {
    size_t n;
    unsigned char (*digests)[SHA256_DIGEST_LENGTH];
};

int auth_new(auth **out, const char *const *tokens, size_t n)
{
    auth *a = calloc(1, sizeof *a);
    if (a == NULL)
        return -1;
    if (n > 0) {
        a->digests = calloc(n, sizeof *a->digests);
        if (a->digests == NULL) {
            free(a);
            return -1;
        }
    }
    for (size_t i = 0; i < n; i++)
        SHA256((const unsigned char *)tokens[i], strlen(tokens[i]), a->digests[i]);
    a->n = n;
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
    free(a);
}

bool auth_enabled(const auth *a)
{
    return a != NULL && a->n > 0;
}

bool auth_check(const auth *a, const char *authorization)
{
    if (!auth_enabled(a))
        return true;
    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
        return false;
    const char *tok = authorization + 7;
    while (*tok == ' ')
        tok++;
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)tok, strlen(tok), d);
    /* Compare against every token (no early exit) so the position of the
     * matching token does not show in the timing either. */
    int ok = 0;
    for (size_t i = 0; i < a->n; i++)
        ok |= CRYPTO_memcmp(d, a->digests[i], sizeof d) == 0;
    OPENSSL_cleanse(d, sizeof d);
    return ok != 0;
}
