/* jout.c: JSON text writer with a hard size cap and sticky errors; it
 * escapes strings per RFC 8259 and never parses anything. */
#include "jout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rstmdb/error.h"

void jout_init(jout *j, size_t max)
{
    memset(j, 0, sizeof(*j));
    j->max = max;
}

void jout_deinit(jout *j)
{
    free(j->buf);
    j->buf = NULL;
    j->len = j->cap = 0;
}

static void jout_put(jout *j, const char *s, size_t n)
{
    if (j->err)
        return;
    if (j->len + n + 1 > j->max) {
        j->err = RSTMDB_ERR_FRAME_TOO_LARGE;
        return;
    }
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 256;
        while (cap < j->len + n + 1)
            cap *= 2;
        char *b = realloc(j->buf, cap);
        if (!b) {
            j->err = RSTMDB_ERR_NOMEM;
            return;
        }
        j->buf = b;
        j->cap = cap;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

static void jout_lit(jout *j, const char *s)
{
    jout_put(j, s, strlen(s));
}

static void jout_escaped(jout *j, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    /* The short escapes, each beside its spelling; other controls get \u00XX. */
    static const char esc_from[] = "\"\\\n\r\t\b\f";
    static const char *const esc_to[] = {"\\\"", "\\\\", "\\n", "\\r", "\\t", "\\b", "\\f"};
    jout_lit(j, "\"");
    const char *run = s;
    for (const char *p = s; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        const char *esc = NULL;
        char u[7];
        /* ch is never NUL here, so strchr cannot match the terminator. */
        const char *hit = strchr(esc_from, ch);
        if (hit != NULL) {
            esc = esc_to[hit - esc_from];
        } else if (ch < 0x20) {
            u[0] = '\\';
            u[1] = 'u';
            u[2] = '0';
            u[3] = '0';
            u[4] = hex[ch >> 4];
            u[5] = hex[ch & 15];
            u[6] = '\0';
            esc = u;
        }
        if (esc) {
            jout_put(j, run, (size_t)(p - run));
            jout_lit(j, esc);
            run = p + 1;
        }
    }
    jout_lit(j, run);
    jout_lit(j, "\"");
}

void jout_begin(jout *j)
{
    if (j->need_comma)
        jout_lit(j, ",");
    jout_lit(j, "{");
    j->need_comma = false;
}

void jout_end(jout *j)
{
    jout_lit(j, "}");
    j->need_comma = true;
}

void jout_arr_begin(jout *j, const char *key)
{
    jout_key(j, key);
    jout_lit(j, "[");
    j->need_comma = false;
}

void jout_arr_end(jout *j)
{
    jout_lit(j, "]");
    j->need_comma = true;
}

void jout_key(jout *j, const char *key)
{
    if (j->need_comma)
        jout_lit(j, ",");
    jout_escaped(j, key);
    jout_lit(j, ":");
    j->need_comma = false;
}

void jout_str(jout *j, const char *key, const char *v)
{
    if (!v)
        return;
    jout_key(j, key);
    jout_escaped(j, v);
    j->need_comma = true;
}

void jout_u64(jout *j, const char *key, uint64_t v)
{
    char num[24];
    jout_key(j, key);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
    jout_lit(j, num);
    j->need_comma = true;
}

void jout_bool(jout *j, const char *key, bool v)
{
    jout_key(j, key);
    jout_lit(j, v ? "true" : "false");
    j->need_comma = true;
}

void jout_json(jout *j, const char *key, const cJSON *v)
{
    if (!v)
        return;
    char *text = cJSON_PrintUnformatted(v);
    if (!text) {
        if (!j->err)
            j->err = RSTMDB_ERR_NOMEM;
        return;
    }
    jout_key(j, key);
    jout_lit(j, text);
    cJSON_free(text);
    j->need_comma = true;
}

void jout_raw(jout *j, const char *key, const char *text, size_t len)
{
    jout_key(j, key);
    jout_put(j, text, len);
    j->need_comma = true;
}

void jout_strs(jout *j, const char *key, const char *const *v, size_t n)
{
    jout_key(j, key);
    jout_lit(j, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            jout_lit(j, ",");
        jout_escaped(j, v[i] ? v[i] : "");
    }
    jout_lit(j, "]");
    j->need_comma = true;
}
