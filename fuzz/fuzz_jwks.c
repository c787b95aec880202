/* fuzz_jwks.c: libFuzzer target for the JWK Set loader (daemon/jwt.c):
 * any bytes give a key set or a reason, never a crash or a leak. */
#include <string.h>

#include "fuzz.h"
#include "jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jwt_keys *k = NULL;
    char why[256] = "";
    if (jwt_keys_parse((const char *)data, size, &k, why, sizeof why) == 0) {
        FUZZ_CHECK(k != NULL && jwt_keys_count(k) >= 1 && jwt_keys_count(k) <= JWT_MAX_KEYS);
        jwt_keys_free(k);
    } else {
        FUZZ_CHECK(k == NULL && why[0] != '\0');
    }
    return 0;
}
