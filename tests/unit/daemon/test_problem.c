/* test_problem.c: every error code's HTTP status, the 412 If-Match rule,
 * Retry-After, and the problem+json body. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "problem.h"

START_TEST(status_table)
{
    static const struct {
        const char *code;
        int status;
    } want[] = {
        {"BAD_REQUEST", 400},
        {"NOT_FOUND", 404},
        {"MACHINE_NOT_FOUND", 404},
        {"INSTANCE_NOT_FOUND", 404},
        {"MACHINE_VERSION_EXISTS", 409},
        {"INSTANCE_EXISTS", 409},
        {"MACHINE_VERSION_LIMIT", 409},
        {"MACHINE_VERSION_LIMIT_EXCEEDED", 409},
        {"INVALID_TRANSITION", 409},
        {"CONFLICT", 409},
        {"GUARD_FAILED", 422},
        {"RATE_LIMITED", 429},
        {"INTERNAL_ERROR", 500},
        {"UNSUPPORTED_PROTOCOL", 502},
        {"UNAUTHORIZED", 502},
        {"AUTH_FAILED", 502},
        {"WAL_IO_ERROR", 503},
        {"READ_ONLY_MODE", 503},
        {"UPSTREAM_UNAVAILABLE", 503},
        {"UPSTREAM_TIMEOUT", 504},
        {"PAYLOAD_TOO_LARGE", 413},
        {"FORBIDDEN", 403},
        {"SOMETHING_NEW", 502},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(problem_status_for_code(want[i].code, false, "m") == want[i].status, "%s",
                      want[i].code);
    /* If-Match: an offset CONFLICT is 412; a state CONFLICT stays 409 */
    ck_assert_int_eq(problem_status_for_code(
                         "CONFLICT", true, "core error: WAL offset conflict: expected 5, actual 6"),
                     412);
    ck_assert_int_eq(problem_status_for_code(
                         "CONFLICT", true, "core error: state conflict: expected 'a', actual 'b'"),
                     409);
    ck_assert_int_eq(problem_status_for_code("GUARD_FAILED", true, "x"), 422);
}
END_TEST

START_TEST(retry_after_and_flags)
{
    problem p;
    problem_from_code(&p, "RATE_LIMITED", "slow down", true, NULL, false, 7);
    ck_assert_int_eq(p.status, 429);
    ck_assert_uint_eq(p.retry_after_s, 7);
    problem_deinit(&p);
    problem_from_code(&p, "WAL_IO_ERROR", "disk", true, NULL, false, 0);
    ck_assert_int_eq(p.status, 503);
    ck_assert_uint_eq(p.retry_after_s, 1);
    ck_assert(p.retryable);
    problem_deinit(&p);
    problem_from_code(&p, "READ_ONLY_MODE", "replica", false, NULL, false, 0);
    ck_assert_int_eq(p.status, 503);
    ck_assert(p.retryable);
    problem_deinit(&p);
    problem_from_code(&p, "INSTANCE_NOT_FOUND", "nope", false, NULL, false, 3);
    ck_assert_uint_eq(p.retry_after_s, 0);
    ck_assert(!p.retryable);
    problem_deinit(&p);
    problem_local(&p, 401, "UNAUTHORIZED", "token");
    ck_assert(p.www_authenticate);
    problem_deinit(&p);
    problem_local(&p, 504, "UPSTREAM_TIMEOUT", NULL);
    ck_assert(p.retryable);
    ck_assert_str_eq(p.detail, "Gateway Timeout");
    problem_deinit(&p);
}
END_TEST

START_TEST(body)
{
    problem p;
    cJSON *details = cJSON_Parse("{\"field\":\"x\"}");
    problem_from_code(&p, "GUARD_FAILED", "guard \"g\" failed", false, details, false, 0);
    cJSON_Delete(details);
    char *s = problem_render(&p);
    problem_deinit(&p);
    cJSON *j = cJSON_Parse(s);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "type")->valuestring, "urn:rstmdb:error:GUARD_FAILED");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "title")->valuestring, "Unprocessable Content");
    ck_assert_int_eq(cJSON_GetObjectItem(j, "status")->valueint, 422);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "detail")->valuestring, "guard \"g\" failed");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "code")->valuestring, "GUARD_FAILED");
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(j, "retryable")));
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "details"), "field")->valuestring,
                     "x");
    cJSON_Delete(j);
    free(s);
    /* details default to {} */
    problem_local(&p, 400, "BAD_REQUEST", "x");
    s = problem_render(&p);
    ck_assert_ptr_nonnull(strstr(s, "\"details\":{}"));
    free(s);
    problem_deinit(&p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("problem");
    TCase *tc = tcase_create("problem");
    tcase_add_test(tc, status_table);
    tcase_add_test(tc, retry_after_and_flags);
    tcase_add_test(tc, body);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
