/* auth.h: bearer tokens for the proxy's own HTTP listeners.
 * Tokens are kept only as SHA-256 digests and compared in constant time, so
 * neither the token nor its length leaks through timing. */
#ifndef PROXY_AUTH_H
#define PROXY_AUTH_H

#include <stdbool.h>
#include <stddef.h>

typedef struct auth auth;

/* `tokens` may be empty (then every request is allowed). Copied as digests. */
int auth_new(auth **out, const char *const *tokens, size_t n);
void auth_free(auth *a);
bool auth_enabled(const auth *a);
/* `authorization` is the raw Authorization header (NULL when absent). */
bool auth_check(const auth *a, const char *authorization);

#endif
