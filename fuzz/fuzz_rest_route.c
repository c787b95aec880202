/* fuzz_rest_route.c: libFuzzer target for the proxy's REST path and query
 * mapping (daemon/route.c): route matching on raw paths, percent-decoding,
 * strict query parsing. Checks that captures never carry '/', CR or LF, that
 * matching is deterministic, and that only declared parameters come out.
 * Input: byte 0 picks the method, the rest is "path[?query]". */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "route.h"

static const char *const METHODS[] = {"GET",  "PUT",     "POST",  "DELETE",
                                      "HEAD", "OPTIONS", "PATCH", "get"};

static void check_match(const char *method, const char *path, const route_match *m, route_status st)
{
    size_t i;

    FUZZ_CHECK(st == ROUTE_OK || st == ROUTE_NOT_FOUND || st == ROUTE_METHOD_NOT_ALLOWED ||
               st == ROUTE_BAD_PATH);
    if (st == ROUTE_METHOD_NOT_ALLOWED)
        FUZZ_CHECK(memchr(m->allow, '\0', sizeof m->allow) != NULL && m->allow[0] != '\0');
    if (st == ROUTE_BAD_PATH)
        FUZZ_CHECK(memchr(m->why, '\0', sizeof m->why) != NULL);
    if (st != ROUTE_OK)
        return;
    FUZZ_CHECK(m->r != NULL);
    FUZZ_CHECK(strcmp(m->r->method, method) == 0 ||
               (strcmp(method, "HEAD") == 0 && strcmp(m->r->method, "GET") == 0));
    FUZZ_CHECK(m->ncaps <= ROUTE_MAX_CAPS);
    /* A route is matched on the raw path: a path without '%' and with
     * captures has each capture literally inside it, within one segment. */
    for (i = 0; i < m->ncaps; i++) {
        const char *v = m->caps[i].value;
        FUZZ_CHECK(v != NULL);
        FUZZ_CHECK(v >= m->buf && v < m->buf + sizeof m->buf);
        FUZZ_CHECK(memchr(v, '\0', sizeof m->buf - (size_t)(v - m->buf)) != NULL);
        /* Percent-decoded captures may hold '/', CR or LF (any string is an
         * instance id); a literal one is a part of one segment. */
        if (strchr(path, '%') == NULL) {
            FUZZ_CHECK(strstr(path, v) != NULL);
            FUZZ_CHECK(strchr(v, '/') == NULL);
        }
    }
}

static void check_query(const route *r, char *query)
{
    route_query q;
    bool ok = true;
    char *save = NULL;
    char *pair;

    if (route_query_init(&q, r) != 0)
        return;
    for (pair = strtok_r(query, "&", &save); pair != NULL; pair = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(pair, '=');
        int rc;
        if (eq != NULL)
            *eq = '\0';
        rc = route_query_add(&q, pair, eq != NULL ? eq + 1 : NULL);
        FUZZ_CHECK(rc == 0 || rc == -1);
        if (rc != 0) {
            FUZZ_CHECK(memchr(q.why, '\0', sizeof q.why) != NULL && q.why[0] != '\0');
            ok = false;
            break;
        }
    }
    if (ok && q.out != NULL) {
        const cJSON *it;
        FUZZ_CHECK(cJSON_IsObject(q.out));
        cJSON_ArrayForEach(it, q.out)
        {
            size_t k;
            bool declared = false;
            for (k = 0; k < ROUTE_MAX_QUERY && r->query[k].name != NULL; k++)
                declared = declared || strcmp(r->query[k].name, it->string) == 0;
            FUZZ_CHECK(declared); /* strict: nothing undeclared gets through */
        }
    }
    route_query_deinit(&q);
}

static void check_decode(const char *in, size_t len)
{
    static const unsigned flags[] = {0, PCT_REJECT_SLASH, PCT_REJECT_CTL,
                                     PCT_REJECT_SLASH | PCT_REJECT_CTL};
    static const size_t caps[] = {1, 8, 4096};
    char out[4096];
    size_t f, c;

    for (f = 0; f < 4; f++) {
        for (c = 0; c < 3; c++) {
            long n;
            memset(out, 'X', sizeof out);
            n = route_pct_decode(in, len, out, caps[c], flags[f]);
            FUZZ_CHECK(n >= -1);
            if (n < 0)
                continue;
            FUZZ_CHECK((size_t)n < caps[c] && (size_t)n <= len && out[n] == '\0');
            if (flags[f] & PCT_REJECT_SLASH)
                FUZZ_CHECK(memchr(out, '/', (size_t)n) == NULL);
            if (flags[f] & PCT_REJECT_CTL)
                FUZZ_CHECK(memchr(out, '\r', (size_t)n) == NULL &&
                           memchr(out, '\n', (size_t)n) == NULL);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *method;
    char *text, *query, *path;
    route_match *m, *m2;
    route_status st, st2;
    char allow[128];
    uint64_t v;

    if (size < 1 || size > 8192)
        return 0;
    method = METHODS[data[0] % (sizeof METHODS / sizeof METHODS[0])];
    text = malloc(size);
    m = malloc(sizeof *m);
    m2 = malloc(sizeof *m2);
    if (text == NULL || m == NULL || m2 == NULL)
        abort();
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    check_decode(text, strlen(text));
    if (route_parse_uint(text, UINT32_MAX, &v) == 0) {
        size_t i;
        FUZZ_CHECK(v <= UINT32_MAX && text[0] != '\0');
        for (i = 0; text[i] != '\0'; i++)
            FUZZ_CHECK(text[i] >= '0' && text[i] <= '9');
    }
    query = strchr(text, '?');
    if (query != NULL)
        *query++ = '\0';
    path = text;
    memset(m, 0, sizeof *m);
    st = route_match_path(method, path, m);
    check_match(method, path, m, st);
    memset(m2, 0, sizeof *m2);
    st2 = route_match_path(method, path, m2);
    FUZZ_CHECK(st == st2 && (st != ROUTE_OK || m->r == m2->r));
    if (route_allowed_methods(path, allow, sizeof allow) == 0)
        FUZZ_CHECK(memchr(allow, '\0', sizeof allow) != NULL);
    if (st == ROUTE_OK && query != NULL)
        check_query(m->r, query);
    free(m2);
    free(m);
    free(text);
    return 0;
}
