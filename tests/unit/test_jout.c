/* test_jout.c: the client's JSON text writer (client/jout.c): string
 * escaping per RFC 8259 and the hard size cap. No I/O. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "jout.h"
#include "rstmdb/error.h"

START_TEST(test_escapes)
{
    jout j;
    jout_init(&j, 1024);
    jout_begin(&j);
    jout_str(&j, "s", "q\"b\\n\nr\rt\tb\bf\f\x01\x1f/\xc3\xa9");
    jout_end(&j);
    ck_assert_int_eq(jout_status(&j), 0);
    ck_assert_str_eq(j.b.data, "{\"s\":\"q\\\"b\\\\n\\nr\\rt\\tb\\bf\\f\\u0001\\u001f/\xc3\xa9\"}");
    jout_deinit(&j);
}
END_TEST

START_TEST(test_cap_is_sticky)
{
    jout j;
    jout_init(&j, 8);
    jout_begin(&j);
    jout_str(&j, "key", "longer than eight");
    ck_assert_int_eq(jout_status(&j), RSTMDB_ERR_FRAME_TOO_LARGE);
    jout_end(&j);
    ck_assert_int_eq(jout_status(&j), RSTMDB_ERR_FRAME_TOO_LARGE);
    ck_assert_uint_lt(j.b.len, 8);
    jout_deinit(&j);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jout");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_escapes);
    tcase_add_test(tc, test_cap_is_sticky);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
