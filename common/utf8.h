/* utf8.h: UTF-8 validity as serde_json and cJSON see it (no overlongs, no
 * surrogates, nothing above U+10FFFF). Shared by the client, the daemon and
 * rstmdb-testd; no allocation, no state. */
#ifndef RSTMDB_COMMON_UTF8_H
#define RSTMDB_COMMON_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (1..4) of the valid sequence at p[0..end), or -1. */
int utf8_seq(const unsigned char *p, const unsigned char *end);
bool utf8_valid(const char *s, size_t len);
/* Replace, in place, every byte that is not part of a valid sequence with
 * '?': for text a program writes itself (a detail quoting a client's bytes,
 * or one cut by snprintf in the middle of a character). */
void utf8_sanitize(char *s, size_t len);

#endif
