/* test_openapi.c: /v1/openapi.json lists every route of the table and
 * nothing else; every documented operation is routed; every route has its
 * hand-written parts and every part names a route; every $ref resolves. */
#include <check.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openapi.h"
#include "route.h"

START_TEST(routes_and_document_agree)
{
    size_t len = 0;
    char *doc = openapi_render(&len);
    ck_assert_ptr_nonnull(doc);
    ck_assert_uint_eq(len, strlen(doc));
    cJSON *j = cJSON_Parse(doc);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "openapi")->valuestring, "3.1.0");
    cJSON *paths = cJSON_GetObjectItem(j, "paths");
    size_t n;
    const route *rt = route_table(&n);
    /* every route is documented */
    for (size_t i = 0; i < n; i++) {
        char p[256], m[16];
        openapi_path(rt[i].pattern, p, sizeof p);
        size_t k = 0;
        for (; rt[i].method[k]; k++)
            m[k] = (char)tolower((unsigned char)rt[i].method[k]);
        m[k] = '\0';
        cJSON *item = cJSON_GetObjectItem(paths, p);
        ck_assert_msg(item && cJSON_GetObjectItem(item, m), "%s %s not documented", m, p);
    }
    /* every documented operation is routed (with sample path values) */
    size_t ops = 0;
    for (cJSON *pi = paths->child; pi; pi = pi->next) {
        char sample[256] = "";
        for (const char *c = pi->string; *c;) {
            if (*c == '{') {
                strcat(sample, "1");
                c = strchr(c, '}') + 1;
            } else {
                strncat(sample, c, 1);
                c++;
            }
        }
        for (cJSON *op = pi->child; op; op = op->next) {
            char M[16];
            size_t k = 0;
            for (; op->string[k]; k++)
                M[k] = (char)toupper((unsigned char)op->string[k]);
            M[k] = '\0';
            route_match rm;
            ck_assert_msg(route_match_path(M, sample, &rm) == ROUTE_OK, "%s %s not routed", M,
                          pi->string);
            ck_assert_str_eq(cJSON_GetObjectItem(op, "operationId")->valuestring,
                             rm.r->metric_name);
            ops++;
        }
    }
    ck_assert_uint_eq(ops, n);
    cJSON_Delete(j);
    free(doc);
}
END_TEST

static cJSON *render(void)
{
    char *doc = openapi_render(NULL);
    ck_assert_ptr_nonnull(doc);
    cJSON *j = cJSON_Parse(doc);
    free(doc);
    ck_assert_ptr_nonnull(j);
    return j;
}

static cJSON *op_of(cJSON *doc, const char *path, const char *method)
{
    cJSON *item = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "paths"), path);
    ck_assert_msg(item != NULL, "%s missing", path);
    cJSON *op = cJSON_GetObjectItem(item, method);
    ck_assert_msg(op != NULL, "%s %s missing", method, path);
    return op;
}

START_TEST(parts_and_routes_agree)
{
    cJSON *parts = openapi_parts();
    ck_assert_ptr_nonnull(parts);
    cJSON *ops = cJSON_GetObjectItem(parts, "operations");
    size_t n;
    const route *rt = route_table(&n);
    for (size_t i = 0; i < n; i++) {
        cJSON *p = cJSON_GetObjectItem(ops, rt[i].metric_name);
        ck_assert_msg(p != NULL, "route %s has no entry in openapi_parts.json", rt[i].metric_name);
        ck_assert_msg(cJSON_GetArraySize(cJSON_GetObjectItem(p, "responses")) > 0,
                      "%s: no success response", rt[i].metric_name);
        ck_assert_msg(cJSON_GetArraySize(cJSON_GetObjectItem(p, "tags")) > 0, "%s: no tag",
                      rt[i].metric_name);
        bool has_req = cJSON_GetObjectItem(p, "request") != NULL;
        ck_assert_msg(has_req == (rt[i].body != BODY_NONE), "%s: request schema %s a body route",
                      rt[i].metric_name, has_req ? "on a non-" : "missing on");
    }
    for (cJSON *p = ops->child; p; p = p->next) {
        bool found = false;
        for (size_t i = 0; i < n && !found; i++)
            found = strcmp(rt[i].metric_name, p->string) == 0;
        ck_assert_msg(found, "openapi_parts.json: %s names no route", p->string);
    }
    cJSON_Delete(parts);
}
END_TEST

/* Every "$ref" points at a component that exists. */
static void check_refs(const cJSON *doc, const cJSON *node, size_t *count)
{
    for (const cJSON *c = node->child; c; c = c->next) {
        if (c->string && strcmp(c->string, "$ref") == 0) {
            ck_assert(cJSON_IsString(c));
            const char *t = c->valuestring;
            ck_assert_msg(strncmp(t, "#/components/", 13) == 0, "ref %s", t);
            char kind[32], name[64];
            ck_assert_int_eq(sscanf(t + 13, "%31[^/]/%63s", kind, name), 2);
            cJSON *target = cJSON_GetObjectItem(
                cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "components"), kind), name);
            ck_assert_msg(target != NULL, "dangling $ref %s", t);
            (*count)++;
        }
        check_refs(doc, c, count);
    }
}

START_TEST(every_ref_resolves)
{
    cJSON *doc = render();
    size_t refs = 0;
    check_refs(doc, doc, &refs);
    ck_assert_uint_gt(refs, 100);
    cJSON_Delete(doc);
}
END_TEST

static bool has_status(cJSON *op, const char *status)
{
    return cJSON_GetObjectItem(cJSON_GetObjectItem(op, "responses"), status) != NULL;
}

START_TEST(errors_follow_route_properties)
{
    cJSON *doc = render();
    cJSON *apply = op_of(doc, "/v1/instances/{instance_id}/events", "post");
    const char *want[] = {"200", "400", "401", "404", "409", "412", "413",
                          "422", "429", "500", "502", "503", "504"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(has_status(apply, want[i]), "apply_event lacks %s", want[i]);
    ck_assert(!has_status(apply, "default"));
    /* An exempt local route: explicit empty security, no 401, no upstream errors. */
    cJSON *health = op_of(doc, "/healthz", "get");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(health, "security")), 0);
    ck_assert(cJSON_IsArray(cJSON_GetObjectItem(health, "security")));
    ck_assert(!has_status(health, "401") && !has_status(health, "503"));
    /* A GET takes no body: no 413, no requestBody. */
    cJSON *get = op_of(doc, "/v1/instances/{instance_id}", "get");
    ck_assert(!has_status(get, "413") && cJSON_GetObjectItem(get, "requestBody") == NULL);
    cJSON *etag = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(get, "responses"), "200"),
                            "headers"),
        "ETag");
    ck_assert_ptr_nonnull(etag);
    /* Both streams are text/event-stream. */
    cJSON *w = op_of(doc, "/v1/watch", "get");
    cJSON *ok = cJSON_GetObjectItem(cJSON_GetObjectItem(w, "responses"), "200");
    ck_assert_ptr_nonnull(
        cJSON_GetObjectItem(cJSON_GetObjectItem(ok, "content"), "text/event-stream"));
    cJSON_Delete(doc);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("openapi");
    TCase *tc = tcase_create("openapi");
    tcase_add_test(tc, routes_and_document_agree);
    tcase_add_test(tc, parts_and_routes_agree);
    tcase_add_test(tc, every_ref_resolves);
    tcase_add_test(tc, errors_follow_route_properties);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
