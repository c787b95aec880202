/* cors.c: the allowed-origin list. It only answers "is this origin allowed";
 * http.c adds the headers, so no response is built here. */
#include "cors.h"

#include <stdlib.h>
#include <string.h>

struct cors {
    size_t n;
    bool any;
    char **origins;
};

int cors_new(cors **out, const char *const *origins, size_t n)
{
    cors *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -1;
    if (n > 0 && (c->origins = calloc(n, sizeof *c->origins)) == NULL) {
        free(c);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(origins[i], "*") == 0)
            c->any = true;
        c->origins[i] = strdup(origins[i]);
        if (c->origins[i] == NULL) {
            c->n = i;
            cors_free(c);
            return -1;
        }
        /* Browsers never send a trailing slash in Origin. */
        size_t len = strlen(c->origins[i]);
        if (len > 0 && c->origins[i][len - 1] == '/')
            c->origins[i][len - 1] = '\0';
    }
    c->n = n;
    *out = c;
    return 0;
}

void cors_free(cors *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->origins[i]);
    free(c->origins);
    free(c);
}

bool cors_enabled(const cors *c)
{
    return c != NULL && c->n > 0;
}

const char *cors_allow(const cors *c, const char *origin)
{
    if (c == NULL || origin == NULL || *origin == '\0')
        return NULL;
    if (c->any)
        return origin;
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->origins[i], origin) == 0)
            return origin;
    return NULL;
}

bool cors_credentials(const cors *c, const char *origin)
{
    if (c == NULL || origin == NULL || *origin == '\0')
        return false;
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->origins[i], "*") != 0 && strcmp(c->origins[i], origin) == 0)
            return true;
    return false;
}
