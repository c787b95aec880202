/* fuzz_jscan.c: libFuzzer target for librstmdb's JSON scanner (jscan), the
 * parser every response and event from the server goes through. Checks that
 * member spans stay inside the input, re-scan to the same type, and that
 * whatever jscan accepts cJSON (which parses the same bytes lazily) accepts. */
#include <cjson/cJSON.h>
#include <string.h>

#include "fuzz.h"
#include "jscan.h"

#define MAX_MEMBERS 64

static void check_members(const char *s, size_t len)
{
    jscan_member m[MAX_MEMBERS];
    size_t n = 0;

    if (jscan_object(s, len, 0, m, MAX_MEMBERS, &n) != 0)
        return;
    for (size_t i = 0; i < n && i < MAX_MEMBERS; i++) {
        jscan_type t;
        size_t off, vlen;

        FUZZ_CHECK(m[i].key_off + m[i].key_len <= len);
        FUZZ_CHECK(m[i].val_off + m[i].val_len <= len);
        FUZZ_CHECK(jscan_value(s + m[i].val_off, m[i].val_len, 0, &t, &off, &vlen) == 0);
        FUZZ_CHECK(t == m[i].type && off == 0 && vlen == m[i].val_len);
        FUZZ_CHECK(jscan_find(s, m, n < MAX_MEMBERS ? n : MAX_MEMBERS, "\x01") == NULL);
        if (m[i].type == JSCAN_STRING) {
            char *out = NULL;
            size_t olen = 0;
            if (jscan_string_dup(s + m[i].val_off, m[i].val_len, &out, &olen) == 0) {
                FUZZ_CHECK(out != NULL && strlen(out) == olen);
                free(out);
            }
        } else if (m[i].type == JSCAN_NUMBER) {
            uint64_t u;
            (void)jscan_u64(s + m[i].val_off, m[i].val_len, &u);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    jscan_type t;
    size_t off = 0, vlen = 0;

    if (jscan_value(s, size, 0, &t, &off, &vlen) == 0) {
        FUZZ_CHECK(off + vlen <= size && vlen > 0);
        /* Anything the scanner lets through is later handed to cJSON. */
        cJSON *tree = cJSON_ParseWithLength(s, size);
        FUZZ_CHECK(tree != NULL);
        cJSON_Delete(tree);
    }
    check_members(s, size);
    return 0;
}
