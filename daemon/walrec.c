/* walrec.c: WAL_READ page parsing and replayed-event building (see
 * walrec.h). Pure: no I/O, no caching; it must never re-serialise the
 * server's JSON values, only copy their bytes. */
#include "walrec.h"

#include <stdlib.h>
#include <string.h>

#include "jscan.h"

#define WALREC_MAX_MEMBERS 32

/* End of the value starting at s[i] in text already validated by jscan. */
static size_t skip_value(const char *s, size_t len, size_t i)
{
    unsigned depth = 0;
    bool in_str = false;
    for (; i < len; i++) {
        char ch = s[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"') {
                in_str = false;
                if (depth == 0)
                    return i + 1;
            }
            continue;
        }
        switch (ch) {
        case '"':
            in_str = true;
            break;
        case '{':
        case '[':
            depth++;
            break;
        case '}':
        case ']':
            if (depth == 0)
                return i;
            if (--depth == 0)
                return i + 1;
            break;
        case ',':
        case ' ':
        case '\t':
        case '\n':
        case '\r':
            if (depth == 0)
                return i;
            break;
        default:
            break;
        }
    }
    return i;
}

static size_t skip_ws(const char *s, size_t len, size_t i)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

static walrec_tok member_tok(const char *s, const jscan_member *m, size_t n, const char *key)
{
    const jscan_member *x = jscan_find(s, m, n, key);
    walrec_tok t = {NULL, 0};
    if (x) {
        t.p = s + x->val_off;
        t.len = x->val_len;
    }
    return t;
}

/* Decode a string token; a non-string token leaves *out NULL. */
static int tok_str(walrec_tok t, char **out)
{
    *out = NULL;
    if (!t.p || t.len < 2 || t.p[0] != '"')
        return 0;
    size_t n;
    return jscan_string_dup(t.p, t.len, out, &n);
}

static void rec_deinit(walrec *r)
{
    free(r->instance_id);
    free(r->event_name);
    free(r->from);
    free(r->to);
    free(r->machine_name);
}

static int parse_record(const char *s, size_t len, walrec *r)
{
    jscan_member m[WALREC_MAX_MEMBERS], e[WALREC_MAX_MEMBERS];
    size_t n, ne;
    memset(r, 0, sizeof *r);
    if (jscan_object(s, len, 0, m, WALREC_MAX_MEMBERS, &n) < 0)
        return -1;
    if (n > WALREC_MAX_MEMBERS)
        n = WALREC_MAX_MEMBERS;
    const jscan_member *off = jscan_find(s, m, n, "offset");
    const jscan_member *ent = jscan_find(s, m, n, "entry");
    if (!off || !ent || ent->type != JSCAN_OBJECT ||
        jscan_u64(s + off->val_off, off->val_len, &r->offset) < 0)
        return -1;
    const char *es = s + ent->val_off;
    if (jscan_object(es, ent->val_len, 0, e, WALREC_MAX_MEMBERS, &ne) < 0)
        return -1;
    if (ne > WALREC_MAX_MEMBERS)
        ne = WALREC_MAX_MEMBERS;
    const jscan_member *type = jscan_find(es, e, ne, "type");
    if (!type)
        return -1;
    r->instance = member_tok(es, e, ne, "instance_id");
    if (jscan_string_is(es, type, "apply_event")) {
        r->type = WALREC_APPLY_EVENT;
        r->event = member_tok(es, e, ne, "event");
        r->from_state = member_tok(es, e, ne, "from_state");
        r->to_state = member_tok(es, e, ne, "to_state");
        r->payload = member_tok(es, e, ne, "payload");
        r->ctx = member_tok(es, e, ne, "ctx");
        if (!r->instance.p || !r->event.p || !r->from_state.p || !r->to_state.p)
            return -1;
        if (tok_str(r->instance, &r->instance_id) < 0 || tok_str(r->event, &r->event_name) < 0 ||
            tok_str(r->from_state, &r->from) < 0 || tok_str(r->to_state, &r->to) < 0 ||
            !r->instance_id || !r->event_name || !r->from || !r->to) {
            rec_deinit(r);
            return -1;
        }
    } else if (jscan_string_is(es, type, "create_instance")) {
        r->type = WALREC_CREATE_INSTANCE;
        r->machine = member_tok(es, e, ne, "machine");
        walrec_tok v = member_tok(es, e, ne, "version");
        if (!r->instance.p || !r->machine.p || !v.p || jscan_u64(v.p, v.len, &r->version) < 0 ||
            tok_str(r->instance, &r->instance_id) < 0 ||
            tok_str(r->machine, &r->machine_name) < 0 || !r->instance_id || !r->machine_name) {
            rec_deinit(r);
            return -1;
        }
    } else {
        r->type = WALREC_OTHER;
    }
    return 0;
}

int walrec_page_parse(const char *text, size_t len, size_t max_records, walrec_page *out)
{
    jscan_member m[8];
    size_t n;
    memset(out, 0, sizeof *out);
    if (jscan_object(text, len, 0, m, 8, &n) < 0)
        return -1;
    if (n > 8)
        n = 8;
    const jscan_member *next = jscan_find(text, m, n, "next_offset");
    const jscan_member *recs = jscan_find(text, m, n, "records");
    if (!recs || recs->type != JSCAN_ARRAY)
        return -1;
    if (next && next->type == JSCAN_NUMBER) {
        if (jscan_u64(text + next->val_off, next->val_len, &out->next_offset) < 0)
            return -1;
        out->has_next = true;
    }
    const char *a = text + recs->val_off;
    size_t alen = recs->val_len, i = skip_ws(a, alen, 1), cap = 0;
    while (i < alen && a[i] != ']') {
        size_t end = skip_value(a, alen, i);
        if (out->n == max_records)
            goto fail;
        if (out->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            walrec *nr = realloc(out->recs, ncap * sizeof *nr);
            if (!nr)
                goto fail;
            out->recs = nr;
            cap = ncap;
        }
        if (parse_record(a + i, end - i, &out->recs[out->n]) < 0)
            goto fail;
        out->n++;
        i = skip_ws(a, alen, end);
        if (i < alen && a[i] == ',')
            i = skip_ws(a, alen, i + 1);
    }
    return 0;
fail:
    walrec_page_deinit(out);
    return -1;
}

void walrec_page_deinit(walrec_page *pg)
{
    for (size_t i = 0; i < pg->n; i++)
        rec_deinit(&pg->recs[i]);
    free(pg->recs);
    memset(pg, 0, sizeof *pg);
}

int walrec_event_data(const walrec *r, const char *machine, size_t machine_len, uint64_t version,
                      bool include_ctx, strbuf *out)
{
    if (r->type != WALREC_APPLY_EVENT)
        return -1;
    strbuf_puts(out, "{\"instance_id\":");
    strbuf_add(out, r->instance.p, r->instance.len);
    strbuf_puts(out, ",\"machine\":");
    strbuf_add(out, machine, machine_len);
    strbuf_puts(out, ",\"version\":");
    strbuf_u64(out, version);
    strbuf_puts(out, ",\"wal_offset\":");
    strbuf_u64(out, r->offset);
    strbuf_puts(out, ",\"from_state\":");
    strbuf_add(out, r->from_state.p, r->from_state.len);
    strbuf_puts(out, ",\"to_state\":");
    strbuf_add(out, r->to_state.p, r->to_state.len);
    strbuf_puts(out, ",\"event\":");
    strbuf_add(out, r->event.p, r->event.len);
    strbuf_puts(out, ",\"payload\":");
    if (r->payload.p)
        strbuf_add(out, r->payload.p, r->payload.len);
    else
        strbuf_puts(out, "null");
    if (include_ctx) {
        /* The WAL's ctx is the post-merge context, the same the live event carries. */
        strbuf_puts(out, ",\"ctx\":");
        if (r->ctx.p)
            strbuf_add(out, r->ctx.p, r->ctx.len);
        else
            strbuf_puts(out, "null");
    }
    return strbuf_add(out, "}", 1);
}

int walrec_instance_info(const char *text, size_t len, char **machine_tok, char **machine_name,
                         uint64_t *version)
{
    jscan_member m[WALREC_MAX_MEMBERS];
    size_t n;
    if (jscan_object(text, len, 0, m, WALREC_MAX_MEMBERS, &n) < 0)
        return -1;
    if (n > WALREC_MAX_MEMBERS)
        n = WALREC_MAX_MEMBERS;
    walrec_tok mt = member_tok(text, m, n, "machine");
    walrec_tok vt = member_tok(text, m, n, "version");
    char *name = NULL;
    if (!mt.p || !vt.p || jscan_u64(vt.p, vt.len, version) < 0 || tok_str(mt, &name) < 0 || !name)
        return -1;
    char *tok = malloc(mt.len + 1);
    if (!tok) {
        free(name);
        return -1;
    }
    memcpy(tok, mt.p, mt.len);
    tok[mt.len] = '\0';
    *machine_tok = tok;
    *machine_name = name;
    return 0;
}

bool walrec_compacted(uint64_t cursor, uint64_t lowest_segment)
{
    /* Segment ids start at 1: a lowest segment of 1 means nothing was deleted. */
    return lowest_segment > 1 && walrec_segment(cursor) < lowest_segment;
}

bool walrec_needs_probe(uint64_t cursor, uint64_t first)
{
    return walrec_segment(first) > walrec_segment(cursor);
}

int walrec_result_u64(const char *text, size_t len, const char *key, uint64_t *out)
{
    jscan_member m[WALREC_MAX_MEMBERS];
    size_t n;
    if (jscan_object(text, len, 0, m, WALREC_MAX_MEMBERS, &n) < 0)
        return -1;
    if (n > WALREC_MAX_MEMBERS)
        n = WALREC_MAX_MEMBERS;
    walrec_tok t = member_tok(text, m, n, key);
    return t.p ? jscan_u64(t.p, t.len, out) : -1;
}
