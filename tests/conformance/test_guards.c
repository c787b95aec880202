/* test_guards.c: the guard language through PUT_MACHINE + APPLY_EVENT
 * (PROTOCOL.md §7): every verified row of §7.2, each operator and value type,
 * the parser quirks of §7.1 and its parse-error reasons.
 */
#include "conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void setup(void)
{
    cf_setup(0);
}

typedef struct guard_case {
    const char *guard; /* guard text, as the parser sees it */
    const char *ctx;   /* initial_ctx JSON, NULL = omitted (null ctx) */
    bool pass;
} guard_case;

static const guard_case cases[] = {
    /* §7.2 verified examples */
    {"ctx.amount > 100 && ctx.approved", "{\"amount\":150,\"approved\":true}", true},
    {"(ctx.a || ctx.b) && ctx.c", "{\"a\":false,\"b\":true,\"c\":true}", true},
    {"ctx.a == 1 && ctx.b == 2 || ctx.c", "{\"a\":1,\"b\":3,\"c\":true}", true},
    {"ctx.a.b", "{\"a\":{\"b\":\"x\"}}", true},
    {"ctx.items", "{\"items\":[]}", false},
    {"ctx.o", "{\"o\":{}}", false},
    {"ctx.a == null", "{}", true},
    {"ctx.a != null", "{\"a\":0}", true},
    {"ctx.temp > -10", "{\"temp\":0}", true},
    {"ctx.rate >= 0.5", "{\"rate\":0.5}", true},
    {"ctx.a == \"x\\\"y\"", "{\"a\":\"x\\\"y\"}", false},
    {"ctx.a == \"x\\\"y\"", "{\"a\":\"x\\\\\\\"y\"}", true}, /* the literal is x\"y, 4 chars */
    /* truthiness by type */
    {"ctx.a", NULL, false},
    {"ctx.a", "{}", false},
    {"ctx.a", "{\"a\":null}", false},
    {"ctx.a", "{\"a\":true}", true},
    {"ctx.a", "{\"a\":false}", false},
    {"ctx.a", "{\"a\":0}", false},
    {"ctx.a", "{\"a\":0.0}", false},
    {"ctx.a", "{\"a\":-0.0}", false},
    {"ctx.a", "{\"a\":-1}", true},
    {"ctx.a", "{\"a\":0.001}", true},
    {"ctx.a", "{\"a\":\"x\"}", true},
    {"ctx.a", "{\"a\":\"\"}", false},
    {"ctx.a", "{\"a\":\"0\"}", true},
    {"ctx.a", "{\"a\":[0]}", true},
    {"ctx.a", "{\"a\":{\"k\":null}}", true},
    {"ctx.a", "[1]", false},
    /* field paths */
    {"ctx.items.0", "{\"items\":[\"x\"]}", false},
    {"ctx.items.0", "{\"items\":{\"0\":1}}", true},
    {"ctx.a.b", "{\"a\":[{\"b\":1}]}", false},
    {"ctx.a.b", "{\"a\":5}", false},
    {"ctx.a.b.c", "{\"a\":{\"b\":{\"c\":1}}}", true},
    {"ctx.a..b", "{\"a\":{\"\":{\"b\":1}}}", true},
    {"ctx.a.", "{\"a\":{\"\":1}}", true},
    {"ctx.a_b1", "{\"a_b1\":1}", true},
    {"ctx.items.length > 0", "{\"items\":[1,2]}", false},
    /* == by type */
    {"ctx.a == 1", "{\"a\":1.0}", true},
    {"ctx.a == 1.0", "{\"a\":1}", true},
    {"ctx.a == 1", "{\"a\":\"1\"}", false},
    {"ctx.a == \"1\"", "{\"a\":1}", false},
    {"ctx.a == 3", "{\"a\":3.0000000000000004}", false},
    {"ctx.a == 0.3", "{\"a\":0.30000000000000004}", true},
    {"ctx.a == -0", "{\"a\":0}", true},
    {"ctx.a == .5", "{\"a\":0.5}", true},
    {"ctx.a == 5.", "{\"a\":5}", true},
    {"ctx.a == true", "{\"a\":true}", true},
    {"ctx.a == true", "{\"a\":1}", false},
    {"ctx.a == false", "{\"a\":false}", true},
    {"ctx.a == false", "{}", false},
    {"ctx.a == null", "{\"a\":null}", true},
    {"ctx.a == null", "{\"a\":false}", false},
    {"ctx.a == null", NULL, true},
    {"ctx.a == \"x\"", "{\"a\":\"x\"}", true},
    {"ctx.a == \"x\"", "{\"a\":\"X\"}", false},
    {"ctx.a == \"\"", "{\"a\":\"\"}", true},
    {"ctx.a == \"&& ||\"", "{\"a\":\"&& ||\"}", true},
    {"ctx.a == \"x\\y\"", "{\"a\":\"x\\\\y\"}", true}, /* backslash kept */
    {"ctx.a == 1", "{\"a\":[1]}", false},
    {"ctx.a == 1", "{\"a\":{\"b\":1}}", false},
    /* != */
    {"ctx.a != \"x\"", "{}", true},
    {"ctx.a != 1", "{\"a\":1}", false},
    {"ctx.a != 1", "{\"a\":\"1\"}", true},
    {"ctx.a != null", "{}", false},
    {"ctx.a != true", "{\"a\":false}", true},
    {"ctx.a != 1", "{\"a\":[1]}", true},
    /* ordering operators: numbers only */
    {"ctx.a > 5", "{\"a\":6}", true},
    {"ctx.a > 5", "{\"a\":5}", false},
    {"ctx.a > 5", "{\"a\":\"20\"}", false},
    {"ctx.a > 5", "{}", false},
    {"ctx.a > -1", "{\"a\":null}", false},
    {"ctx.a > -1", "{\"a\":true}", false},
    {"ctx.a >= 5", "{\"a\":5}", true},
    {"ctx.a >= 10", "{\"a\":\"20\"}", false},
    {"ctx.a < 5", "{\"a\":4.5}", true},
    {"ctx.a < 5", "{\"a\":5}", false},
    {"ctx.a <= 5", "{\"a\":5}", true},
    {"ctx.a <= 5", "{\"a\":6}", false},
    {"ctx.a < -1.5", "{\"a\":-2}", true},
    {"ctx.a > 1.5", "{\"a\":18446744073709551615}", true},
    /* ! && || and precedence */
    {"!ctx.a", "{}", true},
    {"!ctx.a", "{\"a\":1}", false},
    {"!!ctx.a", "{\"a\":1}", true},
    {"! ctx.a", "{\"a\":0}", true},
    {"!ctx.a > 5", "{\"a\":3}", true},
    {"!ctx.a > 5", "{\"a\":6}", false},
    {"!(ctx.a || ctx.b)", "{\"a\":false,\"b\":false}", true},
    {"!(ctx.a || ctx.b)", "{\"a\":false,\"b\":1}", false},
    {"ctx.a || ctx.b && ctx.c", "{\"a\":true,\"b\":false,\"c\":false}", true},
    {"ctx.a && ctx.b || ctx.c", "{\"a\":false,\"c\":true}", true},
    {"ctx.a && ctx.b || ctx.c", "{\"a\":true,\"b\":false}", false},
    {"ctx.a && (ctx.b || ctx.c)", "{\"a\":false,\"c\":true}", false},
    {"((ctx.a))", "{\"a\":1}", true},
    {"ctx.a || ctx.b || ctx.c", "{\"c\":1}", true},
    {"ctx.a && ctx.b && ctx.c", "{\"a\":1,\"b\":1,\"c\":0}", false},
    /* parser quirks: trailing input ignored, lookahead, keywords by prefix */
    {"ctx.a garbage", "{\"a\":1}", true},
    {"ctx.a garbage", "{}", false},
    {"ctx.a and ctx.b", "{\"a\":1}", true},
    {"ctx.a & ctx.b", "{\"a\":1}", true},
    {"ctx.a | ctx.b", "{\"b\":1}", false},
    {"ctx.a)", "{\"a\":1}", true},
    {"ctx.a = 5", "{\"a\":1}", true},
    {"ctx.a = 5", "{\"a\":0}", false},
    {"ctx.a == 1e3", "{\"a\":1}", true},
    {"ctx.a == 1e3", "{\"a\":1000}", false},
    {"ctx.a == truex", "{\"a\":true}", true},
    {"ctx.a == nullx", "{}", true},
    {"ctx.a-b == 1", "{\"a\":1,\"a-b\":0}", true},
    {"ctx.a-b == 1", "{\"a\":0,\"a-b\":1}", false},
    {"  ctx.a  ==  1  ", "{\"a\":1}", true},
    {"ctx.a\n==\t1\r\n&&\nctx.b", "{\"a\":1,\"b\":true}", true},
    {"ctx.a==1&&ctx.b!=2||ctx.c", "{\"a\":1,\"b\":2}", false},
    {"ctx.a>=1", "{\"a\":1}", true},
};

static const char *def_with_guard(const char *guard)
{
    return cf_fmt("{\"states\":[\"a\",\"b\"],\"initial\":\"a\",\"transitions\":[{\"from\":\"a\","
                  "\"event\":\"GO\","
                  "\"to\":\"b\",\"guard\":\"%s\"}]}",
                  cf_esc(guard));
}

START_TEST(guard_evaluation)
{
    const guard_case *gc = &cases[_i];
    cf_conn *k = CF_OPEN();
    char m[96], id[96];
    cf_uniq(m, sizeof m, "gd");
    cf_uniq(id, sizeof id, "g");
    CF_PUT_MACHINE(k, m, def_with_guard(gc->guard));
    CF_CREATE(k, id, m, gc->ctx);
    const char *p = cf_fmt("{\"instance_id\":\"%s\",\"event\":\"GO\"}", id);
    if (gc->pass) {
        char *t = CF_CALL(k, "APPLY_EVENT", p);
        ck_assert_msg(strstr(t, "\"status\":\"ok\"") != NULL &&
                          strstr(t, "\"to_state\":\"b\"") != NULL,
                      "guard [%s] on %s should pass: %s", gc->guard, gc->ctx ? gc->ctx : "null", t);
        free(t);
    } else {
        char *t = CF_CALL(k, "APPLY_EVENT", p);
        const char *want = cf_fmt(
            "{\"type\":\"response\",\"id\":\"%s\",\"status\":\"error\",\"error\":{\"code\":"
            "\"GUARD_FAILED\",\"message\":\"core error: guard failed: guard failed for transition "
            "'a' -> 'b' on event 'GO'\",\"retryable\":false}}",
            k->last_id);
        ck_assert_msg(strcmp(t, want) == 0, "guard [%s] on %s should fail: %s", gc->guard,
                      gc->ctx ? gc->ctx : "null", t);
        free(t);
    }
    cf_close(k);
}
END_TEST

typedef struct parse_error {
    const char *guard;
    const char *reason;
} parse_error;

static const parse_error parse_errors[] = {
    {"", "empty guard expression"},
    {" \t\n ", "empty guard expression"},
    {"true", "field must start with 'ctx.'"},
    {"ctx", "field must start with 'ctx.'"},
    {"CTX.a", "field must start with 'ctx.'"},
    {"a == 1", "field must start with 'ctx.'"},
    {"ctx.a &&", "field must start with 'ctx.'"},
    {"!", "field must start with 'ctx.'"},
    {"ctx.a || (", "field must start with 'ctx.'"},
    {"ctx.", "empty field name"},
    {"ctx. == 1", "empty field name"},
    {"(ctx.a", "expected ')'"},
    {"((ctx.a) && ctx.b", "expected ')'"},
    {"ctx.a == \"x", "unterminated string"},
    {"ctx.a > \"5\"", "invalid number: ''"},
    {"ctx.a == ctx.b", "invalid number: ''"},
    {"ctx.a == 'x'", "invalid number: ''"},
    {"ctx.a == [1]", "invalid number: ''"},
    {"ctx.a == ", "invalid number: ''"},
    {"ctx.a >= true", "invalid number: ''"},
    {"ctx.a > -", "invalid number: '-'"},
    {"ctx.a < .", "invalid number: '.'"},
    {"ctx.a <= -.", "invalid number: '-.'"},
};

START_TEST(guard_parse_errors)
{
    const parse_error *pe = &parse_errors[_i];
    cf_conn *k = CF_OPEN();
    char m[96];
    cf_uniq(m, sizeof m, "gp");
    CF_ERR(k, "PUT_MACHINE",
           cf_fmt("{\"machine\":\"%s\",\"version\":1,\"definition\":%s}", m,
                  def_with_guard(pe->guard)),
           "INTERNAL_ERROR", cf_fmt("core error: invalid guard expression: %s", pe->reason), true);
    cf_close(k);
}
END_TEST

/* §6.3 crash case: the real parser advances one byte per char, so a
 * multi-byte character in a field name (or in a string literal, found the
 * same way) makes it panic: the connection drops with no response and the
 * server survives. */
START_TEST(non_ascii_guard_drops_connection)
{
    static const char *const guards[] = {"ctx.\xc3\xbc == 1", "ctx.a == \"\xc3\xa9\""};
    for (int i = 0; i < 2; i++) {
        cf_conn *k = CF_OPEN();
        char m[96];
        cf_uniq(m, sizeof m, "gu");
        const char *req =
            cf_fmt("{\"type\":\"request\",\"id\":\"x\",\"op\":\"PUT_MACHINE\",\"params\":"
                   "{\"machine\":\"%s\",\"version\":1,\"definition\":%s}}",
                   m, def_with_guard(guards[i]));
        ck_assert_int_eq(rcpx_send_json(k->rc, req), 0);
        ck_assert_msg(rcpx_silent_close(k->rc, CF_CLOSE_TIMEOUT_MS, NULL), "guard %s: %s",
                      guards[i], rcpx_errstr(k->rc));
        cf_close(k);
        /* Nothing was stored, and the server still answers. */
        k = CF_OPEN();
        CF_ERR(k, "GET_MACHINE", cf_fmt("{\"machine\":\"%s\",\"version\":1}", m),
               "MACHINE_NOT_FOUND", cf_fmt("core error: machine version not found: %s v1", m),
               false);
        cf_close(k);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conformance_guards");
    TCase *tc = cf_tcase("guards");
    tcase_add_unchecked_fixture(tc, setup, cf_teardown);
    tcase_add_loop_test(tc, guard_evaluation, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_loop_test(tc, guard_parse_errors, 0,
                        (int)(sizeof parse_errors / sizeof parse_errors[0]));
    tcase_add_test(tc, non_ascii_guard_drops_connection);
    suite_add_tcase(s, tc);
    return cf_run(s);
}
