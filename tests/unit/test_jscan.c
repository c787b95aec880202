/* test_jscan.c: the private JSON scanner: strict validation (what it must
 * reject), top-level member spans, string decoding, u64 parsing. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "jscan.h"

static int valid(const char *s)
{
    return jscan_value(s, strlen(s), 0, NULL, NULL, NULL) == 0;
}

START_TEST(test_accepts)
{
    const char *ok[] = {"{}",
                        "[]",
                        " {\"a\":1} ",
                        "0",
                        "-0.5e+3",
                        "\"\\u00e9\\n\"",
                        "true",
                        "null",
                        "[1,[2,{\"x\":[]}]]",
                        "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
                        "{\"a\":{\"b\":{\"c\":null}}}",
                        "\"\\ud83d\\ude00\"", /* a surrogate pair */
                        "1E2"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        ck_assert_msg(valid(ok[i]), "rejected %s", ok[i]);
}
END_TEST

START_TEST(test_rejects)
{
    const char *bad[] = {"",
                         " ",
                         "{",
                         "}",
                         "{\"a\"}",
                         "{\"a\":}",
                         "{a:1}",
                         "[1,]",
                         "{\"a\":1,}",
                         "01",
                         "1.",
                         ".5",
                         "-",
                         "+1",
                         "1e",
                         "tru",
                         "nul",
                         "\"abc",
                         "\"\\x\"",
                         "\"\\u12\"",
                         "\"a\nb\"",
                         "{} {}",
                         "[1] x",
                         "'a'",
                         "\"\xc3\"",
                         "\"\xed\xa0\x80\"",
                         "\"\xc0\xaf\"",
                         "\"\xf5\x80\x80\x80\"",
                         "\"\\ude00\"",        /* lone low surrogate (found by fuzz_jscan) */
                         "\"\\ud83d\"",        /* lone high surrogate */
                         "\"\\ud83dx\"",       /* high surrogate, then not an escape */
                         "\"\\ud83d\\u0041\"", /* high surrogate, then not a low one */
                         "NaN"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!valid(bad[i]), "accepted %s", bad[i]);
}
END_TEST

START_TEST(test_depth_cap)
{
    char deep[1100];
    size_t n = 0;
    for (int i = 0; i < 520; i++)
        deep[n++] = '[';
    for (int i = 0; i < 520; i++)
        deep[n++] = ']';
    ck_assert_int_eq(jscan_value(deep, n, 0, NULL, NULL, NULL), -1);
    ck_assert_int_eq(jscan_value(deep, n, 600, NULL, NULL, NULL), 0);
    ck_assert_int_eq(jscan_value("[[[]]]", 6, 2, NULL, NULL, NULL), -1);
    ck_assert_int_eq(jscan_value("[[[]]]", 6, 3, NULL, NULL, NULL), 0);
}
END_TEST

START_TEST(test_members)
{
    const char *s =
        "{\"type\":\"response\", \"id\" : \"42\",\"status\":\"ok\",\"result\":{\"a\":[1,2]},"
        "\"n\":1099511627776}";
    jscan_member m[8];
    size_t n = 0;
    ck_assert_int_eq(jscan_object(s, strlen(s), 0, m, 8, &n), 0);
    ck_assert_uint_eq(n, 5);
    const jscan_member *id = jscan_find(s, m, n, "id");
    ck_assert_ptr_nonnull(id);
    ck_assert(jscan_string_is(s, id, "42"));
    ck_assert(!jscan_string_is(s, id, "4"));
    const jscan_member *res = jscan_find(s, m, n, "result");
    ck_assert_int_eq(res->type, JSCAN_OBJECT);
    ck_assert_int_eq((int)res->val_len, 11);
    ck_assert(memcmp(s + res->val_off, "{\"a\":[1,2]}", 11) == 0);
    const jscan_member *num = jscan_find(s, m, n, "n");
    uint64_t v = 0;
    ck_assert_int_eq(jscan_u64(s + num->val_off, num->val_len, &v), 0);
    ck_assert_uint_eq(v, 1099511627776ull);
    ck_assert_ptr_null(jscan_find(s, m, n, "meta"));
    /* More members than slots: counted, first ones recorded. */
    ck_assert_int_eq(jscan_object(s, strlen(s), 0, m, 2, &n), 0);
    ck_assert_uint_eq(n, 5);
    ck_assert(jscan_string_is(s, &m[1], "42"));
    /* Not an object. */
    ck_assert_int_eq(jscan_object("[1]", 3, 0, m, 8, &n), -1);
}
END_TEST

START_TEST(test_string_dup)
{
    const char *s = "\"a\\\"b\\\\c\\/d\\n\\u00e9\\ud83d\\ude00\"";
    char *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(jscan_string_dup(s, strlen(s), &out, &len), 0);
    ck_assert_str_eq(out, "a\"b\\c/d\n\xc3\xa9\xf0\x9f\x98\x80");
    ck_assert_uint_eq(len, strlen(out));
    free(out);
    ck_assert_int_eq(jscan_string_dup("\"\\u0000\"", 8, &out, &len), -1);
}
END_TEST

START_TEST(test_u64)
{
    uint64_t v;
    ck_assert_int_eq(jscan_u64("18446744073709551615", 20, &v), 0);
    ck_assert_uint_eq(v, UINT64_MAX);
    ck_assert_int_eq(jscan_u64("18446744073709551616", 20, &v), -1);
    ck_assert_int_eq(jscan_u64("-1", 2, &v), -1);
    ck_assert_int_eq(jscan_u64("1.0", 3, &v), -1);
    ck_assert_int_eq(jscan_u64("", 0, &v), -1);
}
END_TEST

/* What the daemon relied on its own scanner for, now this one's job. */
START_TEST(test_why_and_serde_rules)
{
    static const struct {
        const char *text, *why;
    } bad[] = {
        {"{\"a\":1e400}", "number out of range"},
        {"[-1e309]", "number out of range"},
        {"\"\xc3\"", "invalid UTF-8"},
        {"\"\\ud800\"", "lone high surrogate"},
        {"\"\\udc00\"", "lone low surrogate"},
        {"\"\\q\"", "bad escape"},
        {"\"a\nb\"", "control character in a string"},
        {"{\"a\":1} x", "trailing data after the JSON value"},
        {"{\"a\" 1}", "expected ':'"},
        {"[1 2]", "expected ',' or ']'"},
        {"", "unexpected end of text"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = NULL;
        ck_assert_int_eq(jscan_validate(bad[i].text, strlen(bad[i].text), 0, NULL, &why), -1);
        ck_assert_msg(why && strcmp(why, bad[i].why) == 0, "%s: %s", bad[i].text, why);
    }
    /* Big integers pass (the server reads u64), as do numbers within range. */
    const char *ok = "[18446744073709551615, 1e308, -0.0, 123456789012345678901234]";
    ck_assert_int_eq(jscan_validate(ok, strlen(ok), 0, NULL, NULL), 0);
    /* The depth cap counts every container. */
    char deep[64];
    memset(deep, '[', 10);
    memset(deep + 10, ']', 10);
    deep[20] = '\0';
    ck_assert_int_eq(jscan_validate(deep, 20, 10, NULL, NULL), 0);
    const char *why = NULL;
    ck_assert_int_eq(jscan_validate(deep, 20, 9, NULL, &why), -1);
    ck_assert_str_eq(why, "nested too deeply");
    /* jscan_object_why: not an object, or why it is not JSON. */
    jscan_member m[4];
    size_t n;
    ck_assert_int_eq(jscan_object_why("[1]", 3, 0, m, 4, &n, &why), -1);
    ck_assert_str_eq(why, "not an object");
    ck_assert_int_eq(jscan_object_why("{\"a\":tru}", 10, 0, m, 4, &n, &why), -1);
    ck_assert_str_eq(why, "syntax error");
}
END_TEST

START_TEST(test_get)
{
    const char *o = "{\"a\":{\"params\":1},\"params\" : {\"k\":[1,2]} , \"z\":\"x\"}";
    jscan_member jm;
    ck_assert_int_eq(jscan_get(o, strlen(o), "params", &jm), 0);
    ck_assert_int_eq(jm.type, JSCAN_OBJECT);
    ck_assert_int_eq((int)jm.val_len, 11);
    ck_assert_int_eq(strncmp(o + jm.val_off, "{\"k\":[1,2]}", jm.val_len), 0);
    ck_assert_int_eq(jscan_get(o, strlen(o), "z", &jm), 0);
    ck_assert(jscan_string_is(o, &jm, "x"));
    ck_assert_int_eq(jscan_get(o, strlen(o), "nope", &jm), -1);
    ck_assert_int_eq(jscan_get("[1]", 3, "a", &jm), -1);
    /* Only a top-level key counts, and the first of two wins. */
    const char *d = "{\"k\":1,\"k\":2}";
    ck_assert_int_eq(jscan_get(d, strlen(d), "k", &jm), 0);
    ck_assert_int_eq(d[jm.val_off], '1');
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("jscan");
    TCase *tc = tcase_create("jscan");
    tcase_add_test(tc, test_accepts);
    tcase_add_test(tc, test_rejects);
    tcase_add_test(tc, test_depth_cap);
    tcase_add_test(tc, test_members);
    tcase_add_test(tc, test_string_dup);
    tcase_add_test(tc, test_u64);
    tcase_add_test(tc, test_why_and_serde_rules);
    tcase_add_test(tc, test_get);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
