/* test_machine.c: definition shape errors, the validation order, the
 * normalized form and the two verified checksums of PROTOCOL.md §6. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "machine.h"

static int parse(const char *json, machine_def **d, char **err)
{
    jval *v = NULL;
    ck_assert_int_eq(jval_parse(json, strlen(json), &v), 0);
    ck_assert_int_eq(jval_normalize(v), 0);
    *d = NULL;
    *err = NULL;
    int rc = machine_def_parse(v, d, err);
    jval_free(v);
    return rc;
}

static void expect_err(const char *json, const char *msg)
{
    machine_def *d;
    char *err;
    ck_assert_int_eq(parse(json, &d, &err), MACHINE_EINVALID);
    ck_assert_str_eq(err, msg);
    free(err);
}

START_TEST(verified_checksums)
{
    machine_def *d;
    char *err;
    ck_assert_int_eq(parse("{\"states\":[\"created\",\"paid\",\"shipped\"],\"initial\":\"created\","
                           "\"transitions\":"
                           "[{\"from\":\"created\",\"event\":\"PAY\",\"to\":\"paid\"},{\"from\":["
                           "\"paid\"],\"event\":"
                           "\"SHIP\",\"to\":\"shipped\",\"guard\":\"ctx.ready\"}],\"meta\":{\"z\":"
                           "1,\"a\":{\"y\":2,"
                           "\"b\":3}}}",
                           &d, &err),
                     MACHINE_OK);
    ck_assert_str_eq(d->checksum, "c873e472");
    ck_assert_str_eq(
        d->json, "{\"initial\":\"created\",\"meta\":{\"a\":{\"b\":3,\"y\":2},\"z\":1},\"states\":"
                 "[\"created\",\"paid\",\"shipped\"],\"transitions\":[{\"event\":\"PAY\",\"from\":"
                 "[\"created\"],\"to\":\"paid\"},{\"event\":\"SHIP\",\"from\":[\"paid\"],\"guard\":"
                 "\"ctx.ready\",\"to\":\"shipped\"}]}");
    machine_def_free(d);
    ck_assert_int_eq(
        parse("{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[],\"x\":5,\"meta\":null}", &d,
              &err),
        MACHINE_OK);
    ck_assert_str_eq(d->checksum, "6b16bc3e");
    ck_assert_str_eq(d->json, "{\"initial\":\"a\",\"states\":[\"a\"],\"transitions\":[]}");
    machine_def_free(d);
}
END_TEST

START_TEST(shape_errors)
{
    expect_err("{\"states\":[\"a\"],\"initial\":\"a\"}",
               "core error: JSON error: missing field `transitions`");
    expect_err("{\"initial\":\"a\",\"transitions\":[]}",
               "core error: JSON error: missing field `states`");
    expect_err("{\"states\":\"a\",\"initial\":\"a\",\"transitions\":[]}",
               "core error: JSON error: invalid type: string \"a\", expected a sequence");
    expect_err("{\"states\":[1],\"initial\":\"a\",\"transitions\":[]}",
               "core error: JSON error: invalid type: integer `1`, expected a string");
    expect_err(
        "{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[{\"from\":1,\"event\":\"E\",\"to\":"
        "\"a\"}]}",
        "core error: JSON error: invalid type: integer `1`, expected a string or array of strings");
    expect_err(
        "{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[{\"event\":\"E\",\"to\":\"a\"}]}",
        "core error: JSON error: missing field `from`");
    expect_err("{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[5]}",
               "core error: JSON error: invalid type: integer `5`, expected struct Transition");
    expect_err(
        "5",
        "core error: JSON error: invalid type: integer `5`, expected struct MachineDefinitionRaw");
    expect_err("null",
               "core error: JSON error: invalid type: null, expected struct MachineDefinitionRaw");
}
END_TEST

START_TEST(validation_order)
{
    expect_err("{\"states\":[],\"initial\":\"b\",\"transitions\":[]}",
               "core error: invalid machine definition: initial state 'b' not in states list");
    expect_err("{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[{\"from\":\"q\",\"event\":"
               "\"E\",\"to\":\"x\",\"guard\":\"\"}]}",
               "core error: invalid machine definition: transition target 'x' not in states list");
    expect_err("{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[{\"from\":\"q\",\"event\":"
               "\"E\",\"to\":\"a\",\"guard\":\" \"}]}",
               "core error: invalid guard expression: empty guard expression");
    expect_err("{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[{\"from\":\"q\",\"event\":"
               "\"E\",\"to\":\"a\"}]}",
               "core error: invalid machine definition: transition source 'q' not in states list");
    expect_err(
        "{\"states\":[\"a\",\"b\"],\"initial\":\"a\",\"transitions\":[{\"from\":\"a\",\"event\":"
        "\"E\",\"to\":\"b\",\"guard\":\"ctx.x\"},{\"from\":[\"b\",\"a\"],\"event\":\"E\",\"to\":"
        "\"a\",\"guard\":\"!ctx.x\"}]}",
        "core error: invalid machine definition: duplicate transition from 'a' on event 'E'");
    expect_err(
        "{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[{\"from\":[\"a\",\"a\"],\"event\":"
        "\"E\",\"to\":\"a\"}]}",
        "core error: invalid machine definition: duplicate transition from 'a' on event 'E'");
    machine_def *d;
    char *err;
    ck_assert_int_eq(parse("{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[{\"from\":\"a\","
                           "\"event\":\"E\",\"to\":\"a\",\"guard\":\"ctx.\xc3\xbc\"}]}",
                           &d, &err),
                     MACHINE_EPANIC);
    ck_assert_int_eq(parse("{\"states\":[\"a\",\"a\"],\"initial\":\"a\",\"transitions\":[{\"from\":"
                           "[],\"event\":\"E\",\"to\":\"a\"}]}",
                           &d, &err),
                     MACHINE_OK);
    ck_assert_ptr_null(machine_def_find(d, "a", "E", 1));
    machine_def_free(d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("machine");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, verified_checksums);
    tcase_add_test(tc, shape_errors);
    tcase_add_test(tc, validation_order);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
