/* test_error.c: rstmdb_strerror, server code names, the error object and
 * the private constructors of client/error_int.h. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "error_int.h"
#include "rstmdb/error.h"

static const int all_statuses[] = {
    RSTMDB_OK,
    RSTMDB_ERR_NOMEM,
    RSTMDB_ERR_INVALID,
    RSTMDB_ERR_IO,
    RSTMDB_ERR_TIMEOUT,
    RSTMDB_ERR_PROTOCOL,
    RSTMDB_ERR_CLOSED,
    RSTMDB_ERR_TLS,
    RSTMDB_ERR_CANCELLED,
    RSTMDB_ERR_SERVER,
    RSTMDB_ERR_FRAME_MAGIC,
    RSTMDB_ERR_FRAME_VERSION,
    RSTMDB_ERR_FRAME_FLAGS,
    RSTMDB_ERR_FRAME_TOO_LARGE,
    RSTMDB_ERR_FRAME_CRC,
    RSTMDB_ERR_LINE_TOO_LONG,
    RSTMDB_ERR_LINE_EMPTY,
    RSTMDB_ERR_JSON,
};
#define N_STATUSES (sizeof all_statuses / sizeof all_statuses[0])

START_TEST(test_strerror_distinct)
{
    const char *unknown = rstmdb_strerror(-12345);

    ck_assert_ptr_nonnull(unknown);
    ck_assert_str_eq(rstmdb_strerror(12345), unknown);
    for (size_t i = 0; i < N_STATUSES; i++) {
        const char *t = rstmdb_strerror(all_statuses[i]);
        ck_assert_ptr_nonnull(t);
        ck_assert_str_ne(t, unknown);
        ck_assert_str_ne(error_status_name(all_statuses[i]), "UNKNOWN_STATUS");
        for (size_t j = 0; j < i; j++) {
            ck_assert_str_ne(t, rstmdb_strerror(all_statuses[j]));
            ck_assert_str_ne(error_status_name(all_statuses[i]),
                             error_status_name(all_statuses[j]));
        }
    }
    ck_assert_str_eq(error_status_name(RSTMDB_ERR_FRAME_CRC), "FRAME_CRC");
    ck_assert_str_eq(error_status_name(RSTMDB_OK), "OK");
    ck_assert_str_eq(error_status_name(-999), "UNKNOWN_STATUS");
}
END_TEST

START_TEST(test_server_code_names)
{
    for (int c = RSTMDB_SC_NONE + 1; c < RSTMDB_SC_UNKNOWN; c++) {
        const char *name = rstmdb_server_code_name((rstmdb_server_code)c);
        ck_assert_ptr_nonnull(name);
        ck_assert_int_eq(rstmdb_server_code_parse(name), c);
    }
    ck_assert_ptr_null(rstmdb_server_code_name(RSTMDB_SC_NONE));
    ck_assert_ptr_null(rstmdb_server_code_name(RSTMDB_SC_UNKNOWN));
    ck_assert_ptr_null(rstmdb_server_code_name((rstmdb_server_code)999));
    ck_assert_str_eq(rstmdb_server_code_name(RSTMDB_SC_GUARD_FAILED), "GUARD_FAILED");
    ck_assert_str_eq(rstmdb_server_code_name(RSTMDB_SC_MACHINE_VERSION_LIMIT_EXCEEDED),
                     "MACHINE_VERSION_LIMIT_EXCEEDED");
    ck_assert_int_eq(rstmdb_server_code_parse("MACHINE_VERSION_LIMIT"),
                     RSTMDB_SC_MACHINE_VERSION_LIMIT_EXCEEDED);
    ck_assert_int_eq(rstmdb_server_code_parse("MACHINE_VERSION_LIMIT_EXCEEDED"),
                     RSTMDB_SC_MACHINE_VERSION_LIMIT_EXCEEDED);
    ck_assert_int_eq(rstmdb_server_code_parse("READ_ONLY_MODE"), RSTMDB_SC_READ_ONLY_MODE);
    ck_assert_int_eq(rstmdb_server_code_parse("REPLICATION_TIMEOUT"),
                     RSTMDB_SC_REPLICATION_TIMEOUT);
    ck_assert_int_eq(rstmdb_server_code_parse("REPLICATION_ERROR"), RSTMDB_SC_REPLICATION_ERROR);
    ck_assert_int_eq(rstmdb_server_code_parse("SYNC_TIMEOUT"), RSTMDB_SC_UNKNOWN); /* docs only */
    ck_assert_int_eq(rstmdb_server_code_parse("guard_failed"), RSTMDB_SC_UNKNOWN);
    ck_assert_int_eq(rstmdb_server_code_parse("SOMETHING_NEW"), RSTMDB_SC_UNKNOWN);
    ck_assert_int_eq(rstmdb_server_code_parse(""), RSTMDB_SC_UNKNOWN);
    ck_assert_int_eq(rstmdb_server_code_parse(NULL), RSTMDB_SC_UNKNOWN);
}
END_TEST

START_TEST(test_server_error_object)
{
    cJSON *details = cJSON_Parse("{\"limit\":3}");
    rstmdb_error *e = error_new(RSTMDB_ERR_SERVER, RSTMDB_SC_NONE, "MACHINE_VERSION_LIMIT",
                                "machine version limit exceeded", false, details);
    rstmdb_error *copy;

    ck_assert_ptr_nonnull(e);
    cJSON_Delete(details); /* the error kept its own copy */
    ck_assert_int_eq(rstmdb_error_status(e), RSTMDB_ERR_SERVER);
    ck_assert_int_eq(rstmdb_error_code(e), RSTMDB_SC_MACHINE_VERSION_LIMIT_EXCEEDED);
    ck_assert_str_eq(rstmdb_error_code_str(e), "MACHINE_VERSION_LIMIT"); /* as sent */
    ck_assert_str_eq(rstmdb_error_message(e), "machine version limit exceeded");
    ck_assert(!rstmdb_error_retryable(e));
    ck_assert_int_eq(cJSON_GetObjectItem(rstmdb_error_details(e), "limit")->valueint, 3);

    copy = rstmdb_error_dup(e);
    rstmdb_error_free(e);
    ck_assert_ptr_nonnull(copy);
    ck_assert_int_eq(rstmdb_error_code(copy), RSTMDB_SC_MACHINE_VERSION_LIMIT_EXCEEDED);
    ck_assert_str_eq(rstmdb_error_code_str(copy), "MACHINE_VERSION_LIMIT");
    ck_assert_str_eq(rstmdb_error_message(copy), "machine version limit exceeded");
    ck_assert_int_eq(cJSON_GetObjectItem(rstmdb_error_details(copy), "limit")->valueint, 3);
    rstmdb_error_free(copy);
    rstmdb_error_free(NULL);
    ck_assert_ptr_null(rstmdb_error_dup(NULL));
}
END_TEST

START_TEST(test_from_server_json)
{
    cJSON *j = cJSON_Parse("{\"code\":\"WAL_IO_ERROR\",\"message\":\"WAL error: disk\","
                           "\"retryable\":true}");
    rstmdb_error *e = NULL;

    ck_assert_int_eq(error_set_server(&e, j), RSTMDB_ERR_SERVER);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(rstmdb_error_code(e), RSTMDB_SC_WAL_IO_ERROR);
    ck_assert_str_eq(rstmdb_error_code_str(e), "WAL_IO_ERROR");
    ck_assert_str_eq(rstmdb_error_message(e), "WAL error: disk");
    ck_assert(rstmdb_error_retryable(e));
    ck_assert(rstmdb_is_retryable(e));
    ck_assert(cJSON_IsObject(rstmdb_error_details(e)));
    ck_assert_ptr_null(rstmdb_error_details(e)->child); /* {} when the server sent none */
    rstmdb_error_free(e);
    cJSON_Delete(j);

    /* an unknown code keeps its text; junk members get defaults */
    j = cJSON_Parse("{\"code\":\"BRAND_NEW\",\"message\":5,\"details\":[1]}");
    e = error_from_server_json(j);
    ck_assert_int_eq(rstmdb_error_code(e), RSTMDB_SC_UNKNOWN);
    ck_assert_str_eq(rstmdb_error_code_str(e), "BRAND_NEW");
    ck_assert_str_eq(rstmdb_error_message(e), "");
    ck_assert(!rstmdb_error_retryable(e));
    ck_assert(cJSON_IsObject(rstmdb_error_details(e)));
    rstmdb_error_free(e);
    cJSON_Delete(j);

    /* 0.3's answers, as a replica and a sync primary send them: the flags are
     * the server's (READ_ONLY_MODE false, REPLICATION_TIMEOUT true). */
    j = cJSON_Parse("{\"code\":\"READ_ONLY_MODE\",\"message\":\"server is in read-only mode "
                    "(replica)\",\"retryable\":false}");
    e = error_from_server_json(j);
    ck_assert(rstmdb_is_read_only(e) && !rstmdb_is_retryable(e) && !rstmdb_is_replication_error(e));
    rstmdb_error_free(e);
    cJSON_Delete(j);
    j = cJSON_Parse("{\"code\":\"REPLICATION_TIMEOUT\",\"message\":\"replication timeout\","
                    "\"retryable\":true}");
    e = error_from_server_json(j);
    ck_assert(rstmdb_is_replication_timeout(e) && rstmdb_is_replication_error(e));
    ck_assert(rstmdb_is_retryable(e) && !rstmdb_is_read_only(e));
    ck_assert_str_eq(rstmdb_error_code_str(e), "REPLICATION_TIMEOUT");
    rstmdb_error_free(e);
    cJSON_Delete(j);

    e = error_from_server_json(NULL);
    ck_assert_int_eq(rstmdb_error_code(e), RSTMDB_SC_UNKNOWN);
    ck_assert_str_eq(rstmdb_error_code_str(e), "");
    rstmdb_error_free(e);
}
END_TEST

START_TEST(test_client_errors)
{
    rstmdb_error *e = NULL;
    char longmsg[1000];

    ck_assert_int_eq(error_set(&e, RSTMDB_ERR_TIMEOUT, "no answer after %d ms", 250),
                     RSTMDB_ERR_TIMEOUT);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(rstmdb_error_status(e), RSTMDB_ERR_TIMEOUT);
    ck_assert_int_eq(rstmdb_error_code(e), RSTMDB_SC_NONE);
    ck_assert_str_eq(rstmdb_error_code_str(e), "TIMEOUT");
    ck_assert_str_eq(rstmdb_error_message(e), "no answer after 250 ms");
    ck_assert(rstmdb_is_retryable(e));
    ck_assert(!rstmdb_error_retryable(e));
    ck_assert(!rstmdb_is_not_found(e));

    /* the first error sticks */
    ck_assert_int_eq(error_set(&e, RSTMDB_ERR_IO, "later"), RSTMDB_ERR_IO);
    ck_assert_str_eq(rstmdb_error_message(e), "no answer after 250 ms");
    rstmdb_error_free(e);

    /* NULL out parameter: just the status back */
    ck_assert_int_eq(error_set(NULL, RSTMDB_ERR_IO, "x"), RSTMDB_ERR_IO);

    /* a message longer than the stack buffer */
    memset(longmsg, 'm', sizeof longmsg - 1);
    longmsg[sizeof longmsg - 1] = '\0';
    e = error_newf(RSTMDB_ERR_PROTOCOL, "bad: %s", longmsg);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(strlen(rstmdb_error_message(e)), 5 + sizeof longmsg - 1);
    ck_assert(!rstmdb_is_retryable(e));
    rstmdb_error_free(e);

    /* NULL message: the status text */
    e = error_new(RSTMDB_ERR_FRAME_CRC, RSTMDB_SC_GUARD_FAILED, NULL, NULL, false, NULL);
    ck_assert_int_eq(rstmdb_error_code(e), RSTMDB_SC_NONE); /* not a server error */
    ck_assert_str_eq(rstmdb_error_code_str(e), "FRAME_CRC");
    ck_assert_str_eq(rstmdb_error_message(e), rstmdb_strerror(RSTMDB_ERR_FRAME_CRC));
    rstmdb_error_free(e);
}
END_TEST

static rstmdb_error *server_error(rstmdb_server_code c)
{
    rstmdb_error *e = error_new(RSTMDB_ERR_SERVER, c, NULL, "m", false, NULL);
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(rstmdb_error_code_str(e), rstmdb_server_code_name(c));
    return e;
}

START_TEST(test_predicates)
{
    for (int c = RSTMDB_SC_NONE + 1; c < RSTMDB_SC_UNKNOWN; c++) {
        rstmdb_error *e = server_error((rstmdb_server_code)c);
        bool nf = c == RSTMDB_SC_NOT_FOUND || c == RSTMDB_SC_MACHINE_NOT_FOUND ||
                  c == RSTMDB_SC_INSTANCE_NOT_FOUND;
        ck_assert(rstmdb_is_not_found(e) == nf);
        ck_assert(rstmdb_is_instance_not_found(e) == (c == RSTMDB_SC_INSTANCE_NOT_FOUND));
        ck_assert(rstmdb_is_invalid_transition(e) == (c == RSTMDB_SC_INVALID_TRANSITION));
        ck_assert(rstmdb_is_conflict(e) == (c == RSTMDB_SC_CONFLICT));
        ck_assert(rstmdb_is_read_only(e) == (c == RSTMDB_SC_READ_ONLY_MODE));
        ck_assert(rstmdb_is_replication_timeout(e) == (c == RSTMDB_SC_REPLICATION_TIMEOUT));
        ck_assert(rstmdb_is_replication_error(e) ==
                  (c == RSTMDB_SC_REPLICATION_TIMEOUT || c == RSTMDB_SC_REPLICATION_ERROR));
        ck_assert(!rstmdb_is_retryable(e)); /* created with retryable=false */
        rstmdb_error_free(e);
    }
    ck_assert(!rstmdb_is_not_found(NULL));
    ck_assert(!rstmdb_is_instance_not_found(NULL));
    ck_assert(!rstmdb_is_invalid_transition(NULL));
    ck_assert(!rstmdb_is_conflict(NULL));
    ck_assert(!rstmdb_is_retryable(NULL));
    ck_assert(!rstmdb_is_read_only(NULL));
    ck_assert(!rstmdb_is_replication_timeout(NULL));
    ck_assert(!rstmdb_is_replication_error(NULL));
    /* accessors are NULL-safe too */
    ck_assert_int_eq(rstmdb_error_status(NULL), RSTMDB_OK);
    ck_assert_str_eq(rstmdb_error_message(NULL), "");
    ck_assert(cJSON_IsObject(rstmdb_error_details(NULL)));
}
END_TEST

static Suite *error_suite(void)
{
    Suite *s = suite_create("error");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_strerror_distinct);
    tcase_add_test(tc, test_server_code_names);
    tcase_add_test(tc, test_server_error_object);
    tcase_add_test(tc, test_from_server_json);
    tcase_add_test(tc, test_client_errors);
    tcase_add_test(tc, test_predicates);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(error_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
