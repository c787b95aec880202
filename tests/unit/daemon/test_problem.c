/* test_problem.c: every error code's HTTP status, the 412 If-Match rule,
 * Retry-After, and the problem+json body. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "error_int.h"
#include "jscan.h"
#include "pool.h"
#include "problem.h"
#include "utf8.h"

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
        {"REPLICATION_TIMEOUT", 504},
        {"REPLICATION_ERROR", 502},
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
    problem_from_code(&p, "REPLICATION_TIMEOUT", "replicas did not ack", true, NULL, false, 0);
    ck_assert_int_eq(p.status, 504);
    ck_assert_str_eq(p.code, "REPLICATION_TIMEOUT");
    ck_assert(p.retryable);
    problem_deinit(&p);
    problem_from_code(&p, "INSTANCE_NOT_FOUND", "nope", false, NULL, false, 3);
    ck_assert_uint_eq(p.retry_after_s, 0);
    ck_assert(!p.retryable);
    problem_deinit(&p);
    problem_local(&p, 401, "UNAUTHORIZED", "token");
    ck_assert_str_eq(p.www_authenticate, "Bearer");
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

/* Every status for which the pool says "the connection died with the call in
 * flight" (a bad frame, TLS, a protocol error... not only CLOSED) is a 503
 * UPSTREAM_UNAVAILABLE the client may retry, with Retry-After. */
START_TEST(conn_loss_is_503)
{
    unsigned seen = 0;
    for (int st = -1; st >= -40; st--) {
        if (!pool_status_is_conn_loss(st))
            continue;
        rstmdb_error *e = error_newf(st, "connection died: status %d", st);
        ck_assert_ptr_nonnull(e);
        problem p;
        problem_from_error(&p, e, false, 3);
        ck_assert_msg(p.status == 503, "status %d (%s) -> %d", st, rstmdb_strerror(st), p.status);
        ck_assert_str_eq(p.code, "UPSTREAM_UNAVAILABLE");
        ck_assert(p.retryable);
        ck_assert_uint_eq(p.retry_after_s, 3);
        problem_deinit(&p);
        rstmdb_error_free(e);
        seen++;
    }
    /* CLOSED, IO, PROTOCOL, TLS, the FRAME_* and LINE_* codes at least. */
    ck_assert_uint_ge(seen, 11);
    ck_assert(pool_status_is_conn_loss(RSTMDB_ERR_FRAME_CRC));
    ck_assert(pool_status_is_conn_loss(RSTMDB_ERR_TLS));
    ck_assert(pool_status_is_conn_loss(RSTMDB_ERR_PROTOCOL));
    ck_assert(!pool_status_is_conn_loss(RSTMDB_ERR_TIMEOUT));
}
END_TEST

/* Nothing READY: the pool's last failure decides between 502 (the upstream
 * refused the proxy's credentials, or TLS failed) and 503 (try again). */
START_TEST(upstream_down)
{
    problem p;
    problem_upstream_down(&p, NULL, 4);
    ck_assert_int_eq(p.status, 503);
    ck_assert_str_eq(p.code, "UPSTREAM_UNAVAILABLE");
    ck_assert(p.retryable);
    ck_assert_uint_eq(p.retry_after_s, 4);
    problem_deinit(&p);

    rstmdb_error *io = error_newf(RSTMDB_ERR_IO, "connect to 127.0.0.1:1: Connection refused");
    problem_upstream_down(&p, io, 0);
    ck_assert_int_eq(p.status, 503);
    ck_assert_str_eq(p.code, "UPSTREAM_UNAVAILABLE");
    ck_assert_uint_eq(p.retry_after_s, 1);
    ck_assert_ptr_nonnull(strstr(p.detail, "Connection refused"));
    problem_deinit(&p);
    rstmdb_error_free(io);

    static const char *const refusals[] = {"AUTH_FAILED", "UNAUTHORIZED", "UNSUPPORTED_PROTOCOL"};
    for (size_t i = 0; i < 3; i++) {
        rstmdb_error *e = error_new(RSTMDB_ERR_SERVER, RSTMDB_SC_NONE, refusals[i],
                                    "authentication failed: invalid token", false, NULL);
        ck_assert(pool_failure_is_definitive(e));
        problem_upstream_down(&p, e, 4);
        ck_assert_int_eq(p.status, 502);
        ck_assert_str_eq(p.code, refusals[i]);
        ck_assert(!p.retryable);
        ck_assert_uint_eq(p.retry_after_s, 0);
        ck_assert_ptr_nonnull(strstr(p.detail, "invalid token"));
        problem_deinit(&p);
        rstmdb_error_free(e);
    }
    rstmdb_error *tls =
        error_newf(RSTMDB_ERR_TLS, "tls with x: certificate verification failed: self-signed");
    problem_upstream_down(&p, tls, 4);
    ck_assert_int_eq(p.status, 502);
    ck_assert_str_eq(p.code, "UPSTREAM_TLS");
    ck_assert_ptr_nonnull(strstr(p.detail, "certificate verification failed"));
    problem_deinit(&p);
    rstmdb_error_free(tls);
    /* A server error that is not about the proxy's configuration stays 503. */
    rstmdb_error *busy =
        error_new(RSTMDB_ERR_SERVER, RSTMDB_SC_NONE, "RATE_LIMITED", "slow down", true, NULL);
    ck_assert(!pool_failure_is_definitive(busy));
    problem_upstream_down(&p, busy, 2);
    ck_assert_int_eq(p.status, 503);
    problem_deinit(&p);
    rstmdb_error_free(busy);
    ck_assert_int_eq(problem_status_for_code("UPSTREAM_TLS", false, NULL), 502);
}
END_TEST

/* Text the proxy writes itself stays valid UTF-8 JSON even when it quotes a
 * client's bytes or is cut inside a character. */
START_TEST(body_is_valid_utf8)
{
    problem p;
    problem_local(&p, 400, "BAD_REQUEST", "query: unknown parameter \"a\xff\xfe\r\n\"\x01\"");
    char *s = problem_render(&p);
    problem_deinit(&p);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_null(strchr(s, '\r'));
    ck_assert_ptr_null(strchr(s, '\n'));
    ck_assert_ptr_null(strchr(s, '\x01'));
    ck_assert_ptr_null(strchr(s, '\xff'));
    ck_assert(utf8_valid(s, strlen(s)));
    cJSON *j = cJSON_Parse(s);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "detail")->valuestring,
                     "query: unknown parameter \"a??\r\n\"\x01\"");
    cJSON_Delete(j);
    free(s);
    /* A multibyte character cut by the detail's size. */
    char big[700];
    memset(big, 'x', sizeof big);
    memcpy(big + 510, "\xc3\xa9", 2); /* e-acute at 510..511: the 512-byte detail keeps 510 only */
    big[sizeof big - 1] = '\0';
    problem_local(&p, 400, "BAD_REQUEST", big);
    s = problem_render(&p);
    problem_deinit(&p);
    ck_assert(utf8_valid(s, strlen(s)));
    j = cJSON_Parse(s);
    ck_assert_ptr_nonnull(j);
    cJSON_Delete(j);
    free(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("problem");
    TCase *tc = tcase_create("problem");
    tcase_add_test(tc, status_table);
    tcase_add_test(tc, retry_after_and_flags);
    tcase_add_test(tc, body);
    tcase_add_test(tc, conn_loss_is_503);
    tcase_add_test(tc, upstream_down);
    tcase_add_test(tc, body_is_valid_utf8);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
