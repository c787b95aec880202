/* test_openapi.c: /v1/openapi.json lists every route of the table and
 * nothing else; every documented operation is routed. */
#include <check.h>
#include <cjson/cJSON.h>
#include <ctype.h>
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

int main(void)
{
    Suite *s = suite_create("openapi");
    TCase *tc = tcase_create("openapi");
    tcase_add_test(tc, routes_and_document_agree);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
