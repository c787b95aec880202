/* pagerec.c: the page's records, parsed from the page server's copies. */
#include "pagerec.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void recs_free(recs *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].data);
        free(r->v[i].id);
    }
    free(r->v);
    memset(r, 0, sizeof *r);
}

void recs_load(pagesrv *ps, recs *r)
{
    memset(r, 0, sizeof *r);
    size_t n = pagesrv_count(ps);
    r->v = calloc(n ? n : 1, sizeof r->v[0]);
    if (r->v == NULL) {
        r->bad = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char *s = pagesrv_record(ps, i);
        cJSON *j = s ? cJSON_Parse(s) : NULL;
        free(s);
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(j, "seq");
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(j, "src");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
        const cJSON *rs = cJSON_GetObjectItemCaseSensitive(j, "rs");
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "data");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
        rec *x = &r->v[r->n];
        if (!cJSON_IsNumber(seq) || !cJSON_IsString(src) || !cJSON_IsString(type) ||
            !cJSON_IsNumber(rs) || (long)seq->valuedouble != (long)i) {
            r->bad = true; /* the page posts one at a time: seq must be 0, 1, 2, ... */
            cJSON_Delete(j);
            continue;
        }
        x->seq = (long)seq->valuedouble;
        snprintf(x->src, sizeof x->src, "%s", src->valuestring);
        snprintf(x->type, sizeof x->type, "%s", type->valuestring);
        x->rs = (int)rs->valuedouble;
        x->data = cJSON_IsString(data) ? strdup(data->valuestring) : NULL;
        x->id = cJSON_IsString(id) ? strdup(id->valuestring) : NULL;
        r->n++;
        cJSON_Delete(j);
    }
}

size_t recs_count(const recs *r, const char *src, const char *type)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += strcmp(r->v[i].src, src) == 0 && strcmp(r->v[i].type, type) == 0;
    return n;
}

bool recs_wait(pagesrv *ps, chrome *ch, const char *src, const char *type, size_t n, int timeout_ms)
{
    for (int t = 0; t <= timeout_ms; t += 50) {
        recs r;
        recs_load(ps, &r);
        size_t k = recs_count(&r, src, type);
        bool closed = false;
        for (size_t i = 0; i < r.n; i++)
            closed = closed || (strcmp(r.v[i].src, src) == 0 && r.v[i].rs == 2);
        recs_free(&r);
        if (k >= n)
            return true;
        if (closed)
            return false;
        if (!chrome_alive(ch)) {
            fprintf(stderr, "[browser] chromium exited\n");
            return false;
        }
        usleep(50000);
    }
    return false;
}

void recs_dump(pagesrv *ps, const chrome *ch)
{
    recs r;
    recs_load(ps, &r);
    fprintf(stderr, "---- what the page recorded (%zu, dropped %u%s) ----\n", r.n,
            pagesrv_dropped(ps), r.bad ? ", some malformed or out of sequence" : "");
    for (size_t i = 0; i < r.n; i++)
        fprintf(stderr, "%3ld %-7s %-12s rs=%d id=%s data=%s\n", r.v[i].seq, r.v[i].src,
                r.v[i].type, r.v[i].rs, r.v[i].id ? r.v[i].id : "-",
                r.v[i].data ? r.v[i].data : "-");
    recs_free(&r);
    chrome_print_log(ch, stderr, 6000);
}
