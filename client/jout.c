/* jout.c: JSON text writer with a hard size cap and sticky errors; it
 * escapes strings per RFC 8259 and never parses anything. */
#include "jout.h"

#include <stdlib.h>
#include <string.h>

#include "rstmdb/error.h"

void jout_init(jout *j, size_t max)
{
    /* `max` counts the terminating NUL, as the frame cap does. */
    strbuf_init(&j->b, max ? max - 1 : 0);
    j->need_comma = false;
}

void jout_deinit(jout *j)
{
    strbuf_deinit(&j->b);
}

int jout_status(const jout *j)
{
    switch (j->b.err) {
    case STRBUF_OK:
        return RSTMDB_OK;
    case STRBUF_TOO_BIG:
        return RSTMDB_ERR_FRAME_TOO_LARGE;
    default:
        return RSTMDB_ERR_NOMEM;
    }
}

int jout_take(jout *j, char **out, size_t *len)
{
    int rc = jout_status(j);
    if (rc != RSTMDB_OK) {
        jout_deinit(j);
        return rc;
    }
    *out = strbuf_take(&j->b, len);
    return *out ? RSTMDB_OK : RSTMDB_ERR_NOMEM;
}

static void jout_lit(jout *j, const char *s)
{
    strbuf_puts(&j->b, s);
}

static void jout_escaped(jout *j, const char *s)
{
    strbuf_jstr(&j->b, s, strlen(s));
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
    jout_key(j, key);
    strbuf_u64(&j->b, v);
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
        j->b.err = j->b.err ? j->b.err : STRBUF_NOMEM;
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
    strbuf_add(&j->b, text, len);
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
