/* test_guard.c: every operator, type case, parser quirk and verified example
 * of the guard language (PROTOCOL.md §7). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "guard.h"

/* 1 pass, 0 fail, -1 parse error (reason in *why), -2 panic. */
static int run(const char *g, const char *ctx_json, char **why)
{
    guard *gd = NULL;
    char *reason = NULL;
    int rc = guard_parse(g, strlen(g), &gd, &reason);
    if (rc == GUARD_EPARSE) {
        if (why)
            *why = reason;
        else
            free(reason);
        return -1;
    }
    if (rc == GUARD_EPANIC)
        return -2;
    ck_assert_int_eq(rc, GUARD_OK);
    jval *ctx = NULL;
    ck_assert_int_eq(jval_parse(ctx_json, strlen(ctx_json), &ctx), 0);
    ck_assert_int_eq(jval_normalize(ctx), 0);
    bool r = guard_eval(gd, ctx);
    jval_free(ctx);
    guard_free(gd);
    return r ? 1 : 0;
}

static void pass(const char *g, const char *ctx)
{
    ck_assert_msg(run(g, ctx, NULL) == 1, "expected pass: %s on %s", g, ctx);
}
static void failg(const char *g, const char *ctx)
{
    ck_assert_msg(run(g, ctx, NULL) == 0, "expected fail: %s on %s", g, ctx);
}

static void perr(const char *g, const char *reason)
{
    char *why = NULL;
    ck_assert_msg(run(g, "{}", &why) == -1, "expected parse error: %s", g);
    ck_assert_str_eq(why, reason);
    free(why);
}

START_TEST(verified_examples)
{
    pass("ctx.amount > 100 && ctx.approved", "{\"amount\":150,\"approved\":true}");
    pass("(ctx.a || ctx.b) && ctx.c", "{\"a\":false,\"b\":true,\"c\":true}");
    pass("ctx.a == 1 && ctx.b == 2 || ctx.c", "{\"a\":1,\"b\":3,\"c\":true}");
    pass("ctx.a.b", "{\"a\":{\"b\":\"x\"}}");
    failg("ctx.items", "{\"items\":[]}");
    failg("ctx.o", "{\"o\":{}}");
    pass("ctx.a == null", "{}");
    pass("ctx.a != null", "{\"a\":0}");
    pass("ctx.temp > -10", "{\"temp\":0}");
    pass("ctx.rate >= 0.5", "{\"rate\":0.5}");
    failg("ctx.a == \"x\\\"y\"", "{\"a\":\"x\\\"y\"}");
    failg("ctx.ready", "{}");
}
END_TEST

START_TEST(truthiness)
{
    failg("ctx.a", "{\"a\":null}");
    failg("ctx.a", "{\"a\":false}");
    pass("ctx.a", "{\"a\":true}");
    failg("ctx.a", "{\"a\":0}");
    failg("ctx.a", "{\"a\":0.0}");
    pass("ctx.a", "{\"a\":-1}");
    pass("ctx.a", "{\"a\":0.5}");
    failg("ctx.a", "{\"a\":\"\"}");
    pass("ctx.a", "{\"a\":\"0\"}");
    pass("ctx.a", "{\"a\":[0]}");
    pass("ctx.a", "{\"a\":{\"x\":1}}");
    failg("ctx.a", "null");
    failg("ctx.a", "[1]");
    failg("ctx.items.0", "{\"items\":[1]}");
    pass("ctx..x", "{\"\":{\"x\":1}}");
    pass("!ctx.a", "{}");
    pass("!!ctx.a", "{\"a\":1}");
}
END_TEST

START_TEST(equality)
{
    pass("ctx.a == 1", "{\"a\":1.0}");
    failg("ctx.a == 3", "{\"a\":3.0000000000000004}");
    failg("ctx.a == 1", "{\"a\":\"1\"}");
    pass("ctx.a == \"1\"", "{\"a\":\"1\"}");
    pass("ctx.a == true", "{\"a\":true}");
    failg("ctx.a == true", "{\"a\":1}");
    pass("ctx.a == false", "{\"a\":false}");
    pass("ctx.a == null", "{\"a\":null}");
    failg("ctx.a == null", "{\"a\":false}");
    failg("ctx.a == 1", "{\"a\":[1]}");
    pass("ctx.a != \"x\"", "{}");
    pass("ctx.a != 1", "{\"a\":\"1\"}");
    failg("ctx.a != 2", "{\"a\":2}");
    pass("ctx.a == -0", "{\"a\":0}");
    pass("ctx.a == 5.", "{\"a\":5}");
    pass("ctx.a == .5", "{\"a\":0.5}");
    pass("ctx.n == 18446744073709551615", "{\"n\":18446744073709551615}");
}
END_TEST

START_TEST(ordering)
{
    pass("ctx.a > 1", "{\"a\":2}");
    failg("ctx.a > 2", "{\"a\":2}");
    pass("ctx.a >= 2", "{\"a\":2}");
    pass("ctx.a < 2", "{\"a\":1.5}");
    failg("ctx.a < 2", "{\"a\":2}");
    pass("ctx.a <= 2", "{\"a\":2}");
    failg("ctx.a >= 10", "{\"a\":\"20\"}");
    failg("ctx.a > 0", "{}");
    failg("ctx.a < 0", "{\"a\":null}");
    pass("!ctx.a > 5", "{\"a\":1}");
    pass("ctx.a > -1.5", "{\"a\":-1}");
}
END_TEST

START_TEST(quirks)
{
    pass("ctx.a garbage", "{\"a\":1}");
    pass("ctx.a and ctx.b", "{\"a\":1}");
    pass("ctx.a & ctx.b", "{\"a\":1}");
    pass("ctx.a)", "{\"a\":1}");
    pass("ctx.a = 5", "{\"a\":1}");
    pass("ctx.a == 1e3", "{\"a\":1}");
    pass("ctx.a == truex", "{\"a\":true}");
    pass("ctx.a-b == 1", "{\"a\":7}");
    failg("ctx.a-b == 1", "{\"a-b\":1}");
    pass("  ctx.a  ", "{\"a\":1}");
    pass("ctx.a==\"x\\\\\"", "{\"a\":\"x\\\\\\\\\"}");
    pass("ctx.a_b.c1 == 2", "{\"a_b\":{\"c1\":2}}");
}
END_TEST

START_TEST(parse_errors)
{
    perr("", "empty guard expression");
    perr("   ", "empty guard expression");
    perr("true", "field must start with 'ctx.'");
    perr("ctx", "field must start with 'ctx.'");
    perr("ctx.", "empty field name");
    perr("(ctx.a", "expected ')'");
    perr("ctx.a == \"x", "unterminated string");
    perr("ctx.a > \"5\"", "invalid number: ''");
    perr("ctx.a == ctx.b", "invalid number: ''");
    perr("ctx.a == 'x'", "invalid number: ''");
    perr("ctx.a == [1]", "invalid number: ''");
    perr("ctx.a > -", "invalid number: '-'");
    perr("ctx.a > .", "invalid number: '.'");
    perr("ctx.a && ", "field must start with 'ctx.'");
}
END_TEST

START_TEST(panics)
{
    /* A non-ASCII letter in a field makes the real parser slice inside a
     * character and panic; so do non-ASCII chars it steps over by byte. */
    ck_assert_int_eq(run("ctx.\xc3\xbc == 1", "{}", NULL), -2);
    ck_assert_int_eq(run("ctx.a\xc3\xa9", "{}", NULL), -2);
    ck_assert_int_eq(run("ctx.a == \"\xc3\xbc\"", "{}", NULL), -2);
    ck_assert_int_eq(run("ctx.a ==\xc2\xa0"
                         "1",
                         "{}", NULL),
                     -2);
    ck_assert_int_eq(run("ctx.a == \"x\\", "{}", NULL), -2);
    /* A non-alphanumeric non-ASCII char just ends the field. */
    ck_assert_int_eq(run("ctx.a\xe2\x82\xac", "{\"a\":1}", NULL), 1);
    /* Leading/trailing Unicode whitespace is trimmed first. */
    ck_assert_int_eq(run("\xc2\xa0"
                         "ctx.a"
                         "\xe3\x80\x80",
                         "{\"a\":1}", NULL),
                     1);
}
END_TEST

/* Depths the real server survives work; beyond GUARD_MAX_NEST/NODES the
 * expression is refused like a panic instead of overflowing our stack. */
static char *repeat_guard(const char *pre, size_t n, const char *mid, const char *post)
{
    size_t len = strlen(pre) * n + strlen(mid) + strlen(post) * n + 1;
    char *g = malloc(len);
    ck_assert_ptr_nonnull(g);
    g[0] = '\0';
    char *w = g;
    for (size_t i = 0; i < n; i++)
        w = stpcpy(w, pre);
    w = stpcpy(w, mid);
    for (size_t i = 0; i < n; i++)
        w = stpcpy(w, post);
    return g;
}

START_TEST(depth_bounds)
{
    char *g = repeat_guard("(", 2000, "ctx.a", ")");
    ck_assert_int_eq(run(g, "{\"a\":1}", NULL), 1);
    free(g);
    g = repeat_guard("!", 4000, "ctx.a", "");
    ck_assert_int_eq(run(g, "{\"a\":1}", NULL), 1); /* an even number of '!' */
    free(g);
    g = repeat_guard("ctx.a && ", 9999, "ctx.a", "");
    ck_assert_int_eq(run(g, "{\"a\":1}", NULL), 1);
    ck_assert_int_eq(run(g, "{\"a\":0}", NULL), 0);
    free(g);
    g = repeat_guard("(", 100000, "ctx.a", ")");
    ck_assert_int_eq(run(g, "{}", NULL), -2);
    free(g);
    g = repeat_guard("!", 1000000, "ctx.a", "");
    ck_assert_int_eq(run(g, "{}", NULL), -2);
    free(g);
    g = repeat_guard("ctx.a || ", 200000, "ctx.a", "");
    ck_assert_int_eq(run(g, "{}", NULL), -2);
    free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("guard");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, verified_examples);
    tcase_add_test(tc, truthiness);
    tcase_add_test(tc, equality);
    tcase_add_test(tc, ordering);
    tcase_add_test(tc, quirks);
    tcase_add_test(tc, parse_errors);
    tcase_add_test(tc, panics);
    tcase_add_test(tc, depth_bounds);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
