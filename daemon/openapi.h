/* openapi.h: the OpenAPI 3.1 document of the proxy, generated from the
 * route table so that the two cannot drift apart. */
#ifndef PROXY_OPENAPI_H
#define PROXY_OPENAPI_H

#include <stddef.h>

/* malloc'd compact JSON; NULL on OOM. */
char *openapi_render(size_t *len);
/* "/v1/machines/{machine}/versions/{version:u32}" -> "/v1/machines/{machine}/versions/{version}" */
void openapi_path(const char *pattern, char *out, size_t cap);

#endif
