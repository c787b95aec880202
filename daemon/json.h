/* json.h: strict JSON checks on bytes the proxy forwards untouched.
 *
 * The rstmdb server closes the whole TCP connection on any JSON it cannot
 * decode (PROTOCOL.md §0.2), which would fail every request multiplexed on
 * that pooled connection. So a body is accepted only if it is RFC 8259 JSON
 * that serde_json also takes: valid UTF-8, paired surrogates, finite
 * numbers, nesting within serde's recursion limit.
 */
#ifndef PROXY_JSON_H
#define PROXY_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* serde_json's default recursion limit is 128; the envelope and /v1/rpc add levels. */
#define JSON_MAX_DEPTH 100

/* 0 when `s` is exactly one JSON value (surrounding whitespace allowed);
 * -1 with *why (static text) otherwise. */
int json_validate(const char *s, size_t len, unsigned max_depth, const char **why);
bool json_utf8_valid(const char *s, size_t len);
/* Replace, in place, every byte that is not part of a valid UTF-8 sequence
 * with '?': for text the proxy writes itself (problem details quoting a
 * client's bytes, or cut by snprintf in the middle of a character). */
void json_utf8_sanitize(char *s, size_t len);
/* Span of the raw value of a top-level member `key` of a valid JSON object
 * text. 0 or -1 (absent / not an object). Keys are compared as raw bytes. */
int json_member(const char *json, size_t len, const char *key, size_t *vstart, size_t *vlen);

#endif
