/* test_jval.c: the JSON value model: parse/print round trips, serde_json
 * number classes and Rust float spelling (§2.4), strictness, depth cap. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "jval.h"

static char *rt(const char *in)
{
    jval *v = NULL;
    if (jval_parse(in, strlen(in), &v) != 0)
        return NULL;
    ck_assert_int_eq(jval_normalize(v), 0);
    char *s = jval_to_string(v, NULL);
    jval_free(v);
    return s;
}

static void check_rt(const char *in, const char *want)
{
    char *got = rt(in);
    ck_assert_msg(got != NULL, "parse failed: %s", in);
    ck_assert_str_eq(got, want);
    free(got);
}

static void check_bad(const char *in)
{
    jval *v = NULL;
    ck_assert_int_eq(jval_parse(in, strlen(in), &v), JVAL_ESYNTAX);
}

START_TEST(numbers)
{
    check_rt("1.0", "1.0");
    check_rt("1E2", "100.0");
    check_rt("1e300", "1e300");
    check_rt("18446744073709551615", "18446744073709551615");
    check_rt("18446744073709551616", "1.8446744073709552e19");
    check_rt("-9223372036854775808", "-9223372036854775808");
    check_rt("-9223372036854775809", "-9.223372036854776e18");
    check_rt("-0", "-0.0");
    check_rt("-0.0", "-0.0");
    check_rt("0", "0");
    check_rt("99.99", "99.99");
    check_rt("0.1", "0.1");
    check_rt("1e-7", "1e-7");
    check_rt("0.0001", "0.0001");
    check_rt("0.00001", "0.00001");
    check_rt("1e15", "1000000000000000.0");
    check_rt("1e16", "1e16");
    check_rt("1.5e16", "1.5e16");
    check_rt("123456789.125", "123456789.125");
    check_rt("3.0000000000000004", "3.0000000000000004");
    check_rt("-2.5e-10", "-2.5e-10");
}
END_TEST

START_TEST(objects_sorted_last_dup_wins)
{
    check_rt("{\"zeta\":1,\"alpha\":{\"k\":\"v\"}}", "{\"alpha\":{\"k\":\"v\"},\"zeta\":1}");
    check_rt("{\"a\":1,\"b\":2,\"a\":3}", "{\"a\":3,\"b\":2}");
    check_rt("{\"b\":[{\"y\":1,\"x\":2}],\"a\":null}", "{\"a\":null,\"b\":[{\"x\":2,\"y\":1}]}");
    check_rt(" [ true , false , null ] ", "[true,false,null]");
}
END_TEST

START_TEST(strings)
{
    check_rt("\"a/b\"", "\"a/b\"");
    check_rt("\"\\u00e9\\n\\t\\u0001\"", "\"\xc3\xa9\\n\\t\\u0001\"");
    check_rt("\"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\"");
    check_rt("\"q\\\"b\\\\\"", "\"q\\\"b\\\\\"");
    check_rt("\"\\/\\b\\f\\r\"", "\"/\\b\\f\\r\""); /* every one-letter escape */
    check_bad("\"\\ud83d\"");
    check_bad("\"\\ude00\"");
    check_bad("\"a\x01\"");
    check_bad("\"\\x\"");
}
END_TEST

START_TEST(strictness)
{
    check_bad("");
    check_bad("{");
    check_bad("{\"a\":1,}");
    check_bad("[1,]");
    check_bad("01");
    check_bad("1.");
    check_bad(".5");
    check_bad("1e");
    check_bad("{} x");
    check_bad("1e400");
    check_bad("tru");
    check_bad("{'a':1}");
    ck_assert(jval_utf8_valid("\xc3\xa9", 2));
    ck_assert(!jval_utf8_valid("\xc3", 1));
    ck_assert(!jval_utf8_valid("\xed\xa0\x80", 3)); /* surrogate */
    ck_assert(!jval_utf8_valid("\xc0\xaf", 2));     /* overlong */
    ck_assert(!jval_utf8_valid("\xff", 1));
}
END_TEST

START_TEST(depth_cap)
{
    char buf[400];
    size_t n = 0;
    for (int i = 0; i < 127; i++)
        buf[n++] = '[';
    for (int i = 0; i < 127; i++)
        buf[n++] = ']';
    jval *v = NULL;
    ck_assert_int_eq(jval_parse(buf, n, &v), 0);
    jval_free(v);
    n = 0;
    for (int i = 0; i < 128; i++)
        buf[n++] = '[';
    for (int i = 0; i < 128; i++)
        buf[n++] = ']';
    ck_assert_int_eq(jval_parse(buf, n, &v), JVAL_ESYNTAX);
}
END_TEST

START_TEST(set_get_copy)
{
    jval *o = jval_object();
    ck_assert_int_eq(jval_setc(o, "b", jval_uint(2)), 0);
    ck_assert_int_eq(jval_setc(o, "a", jval_cstr("x")), 0);
    ck_assert_int_eq(jval_setc(o, "b", jval_int(-3)), 0);
    jval *c = jval_copy(o);
    char *s = jval_to_string(c, NULL);
    ck_assert_str_eq(s, "{\"a\":\"x\",\"b\":-3}");
    ck_assert_int_eq(jval_get(c, "b")->v.i, -3);
    ck_assert_ptr_null(jval_get(c, "zz"));
    free(s);
    jval_free(o);
    jval_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jval");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, numbers);
    tcase_add_test(tc, objects_sorted_last_dup_wins);
    tcase_add_test(tc, strings);
    tcase_add_test(tc, strictness);
    tcase_add_test(tc, depth_cap);
    tcase_add_test(tc, set_get_copy);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
