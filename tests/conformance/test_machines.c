/* test_machines.c: PUT_MACHINE, GET_MACHINE, LIST_MACHINES (PROTOCOL.md
 * §4.1-4.3, §6): checksums, immutability, normalization, every validation
 * message of §6.2 with its INTERNAL_ERROR/retryable quirk, the version limit.
 */
#include "conf.h"

#include <rstmdb/frame.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void setup(void)
{
    cf_setup(CF_NEED_LIMIT);
}

static const char *put_params(const char *m, unsigned v, const char *def)
{
    return cf_fmt("{\"machine\":\"%s\",\"version\":%u,\"definition\":%s}", m, v, def);
}

START_TEST(put_worked_definition_checksum)
{
    cf_conn *k = CF_OPEN();
    char m[96];
    cf_uniq(m, sizeof m, "order");
    CF_OK(
        k, "PUT_MACHINE", put_params(m, 1, CF_ORDER_DEF),
        cf_fmt(
            "{\"created\":true,\"machine\":\"%s\",\"stored_checksum\":\"c873e472\",\"version\":1}",
            m));
    /* Identical re-PUT. */
    CF_OK(
        k, "PUT_MACHINE", put_params(m, 1, CF_ORDER_DEF),
        cf_fmt(
            "{\"created\":false,\"machine\":\"%s\",\"stored_checksum\":\"c873e472\",\"version\":1}",
            m));
    /* Same after normalization: "from" as array, unknown keys, reordered keys. */
    const char *same =
        "{\"transitions\":[{\"event\":\"PAY\",\"from\":[\"created\"],\"to\":\"paid\",\"x\":1},"
        "{\"from\":\"paid\",\"event\":\"SHIP\",\"to\":\"shipped\",\"guard\":\"ctx.ready\"}],"
        "\"meta\":{\"a\":{\"b\":3,\"y\":2},\"z\":1},\"initial\":\"created\","
        "\"states\":[\"created\",\"paid\",\"shipped\"],\"unknown\":[1]}";
    CF_OK(
        k, "PUT_MACHINE", put_params(m, 1, same),
        cf_fmt(
            "{\"created\":false,\"machine\":\"%s\",\"stored_checksum\":\"c873e472\",\"version\":1}",
            m));
    /* The client's checksum is accepted and ignored. */
    CF_OK(
        k, "PUT_MACHINE",
        cf_fmt("{\"machine\":\"%s\",\"version\":1,\"definition\":%s,\"checksum\":\"00000000\"}", m,
               CF_ORDER_DEF),
        cf_fmt(
            "{\"created\":false,\"machine\":\"%s\",\"stored_checksum\":\"c873e472\",\"version\":1}",
            m));
    /* A different definition for an existing version. */
    CF_ERR(k, "PUT_MACHINE",
           put_params(m, 1, "{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[]}"),
           "MACHINE_VERSION_EXISTS", cf_fmt("core error: machine version already exists: %s v1", m),
           false);
    /* An invalid definition for an existing version: the validation error. */
    CF_ERR(k, "PUT_MACHINE",
           put_params(m, 1, "{\"states\":[\"a\"],\"initial\":\"b\",\"transitions\":[]}"),
           "INTERNAL_ERROR",
           "core error: invalid machine definition: initial state 'b' not in states list", true);
    /* The minimal definition of §6.4, as version 0 (accepted). */
    CF_OK(
        k, "PUT_MACHINE",
        put_params(m, 0, "{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[]}"),
        cf_fmt(
            "{\"created\":true,\"machine\":\"%s\",\"stored_checksum\":\"6b16bc3e\",\"version\":0}",
            m));
    cf_close(k);
}
END_TEST

/* The checksum algorithm in general: CRC32C of the normalized compact JSON in
 * the fixed key order of §6.4, computed here independently. */
START_TEST(checksum_of_normalized_definition)
{
    cf_conn *k = CF_OPEN();
    char m[96];
    cf_uniq(m, sizeof m, "norm");
    const char *sent =
        "{\"extra\":true,\"meta\":null,\"initial\":\"a\",\"states\":[\"a\",\"a\",\"b\"],"
        "\"transitions\":[{\"guard\":null,\"to\":\"b\",\"event\":\"E\",\"from\":\"a\",\"x\":1},"
        "{\"from\":[],\"event\":\"F\",\"to\":\"a\"}]}";
    const char *canon =
        "{\"states\":[\"a\",\"a\",\"b\"],\"initial\":\"a\",\"transitions\":[{\"from\":[\"a\"],"
        "\"event\":\"E\",\"to\":\"b\"},{\"from\":[],\"event\":\"F\",\"to\":\"a\"}]}";
    char sum[16];
    snprintf(sum, sizeof sum, "%08x", (unsigned)rstmdb_crc32c(canon, strlen(canon)));
    CF_OK(k, "PUT_MACHINE", put_params(m, 1, sent),
          cf_fmt("{\"created\":true,\"machine\":\"%s\",\"stored_checksum\":\"%s\",\"version\":1}",
                 m, sum));
    CF_OK(
        k, "GET_MACHINE", cf_fmt("{\"machine\":\"%s\",\"version\":1}", m),
        cf_fmt(
            "{\"checksum\":\"%s\",\"definition\":{\"initial\":\"a\",\"states\":[\"a\",\"a\",\"b\"],"
            "\"transitions\":[{\"event\":\"E\",\"from\":[\"a\"],\"to\":\"b\"},{\"event\":\"F\","
            "\"from\":[],"
            "\"to\":\"a\"}]}}",
            sum));
    /* meta: keys sorted at every depth, numbers as in §2.4. */
    const char *withmeta = "{\"states\":[\"s\"],\"initial\":\"s\",\"transitions\":[],"
                           "\"meta\":{\"z\":[{\"b\":1,\"a\":2.50}],\"a\":\"x\"}}";
    const char *canon2 = "{\"states\":[\"s\"],\"initial\":\"s\",\"transitions\":[],"
                         "\"meta\":{\"a\":\"x\",\"z\":[{\"a\":2.5,\"b\":1}]}}";
    snprintf(sum, sizeof sum, "%08x", (unsigned)rstmdb_crc32c(canon2, strlen(canon2)));
    CF_OK(k, "PUT_MACHINE", put_params(m, 2, withmeta),
          cf_fmt("{\"created\":true,\"machine\":\"%s\",\"stored_checksum\":\"%s\",\"version\":2}",
                 m, sum));
    CF_OK(
        k, "GET_MACHINE", cf_fmt("{\"machine\":\"%s\",\"version\":2}", m),
        cf_fmt("{\"checksum\":\"%s\",\"definition\":{\"initial\":\"s\",\"meta\":{\"a\":\"x\",\"z\":"
               "[{\"a\":2.5,\"b\":1}]},\"states\":[\"s\"],\"transitions\":[]}}",
               sum));
    cf_close(k);
}
END_TEST

START_TEST(get_machine_normalized)
{
    cf_conn *k = CF_OPEN();
    char m[96];
    cf_uniq(m, sizeof m, "order");
    CF_PUT_MACHINE(k, m, CF_ORDER_DEF);
    CF_OK(
        k, "GET_MACHINE", cf_fmt("{\"machine\":\"%s\",\"version\":1}", m),
        "{\"checksum\":\"c873e472\",\"definition\":{\"initial\":\"created\",\"meta\":{\"a\":{\"b\":"
        "3,\"y\":2},"
        "\"z\":1},\"states\":[\"created\",\"paid\",\"shipped\"],\"transitions\":[{\"event\":"
        "\"PAY\","
        "\"from\":[\"created\"],\"to\":\"paid\"},{\"event\":\"SHIP\",\"from\":[\"paid\"],\"guard\":"
        "\"ctx.ready\",\"to\":\"shipped\"}]}}");
    /* Positional params and extra keys. */
    CF_OK(k, "GET_MACHINE", cf_fmt("[\"%s\",1]", m),
          "{\"checksum\":\"c873e472\",\"definition\":{$*");
    cf_close(k);
}
END_TEST

START_TEST(get_machine_errors)
{
    cf_conn *k = CF_OPEN();
    char m[96];
    cf_uniq(m, sizeof m, "order");
    CF_PUT_MACHINE(k, m, CF_ORDER_DEF);
    CF_ERR(k, "GET_MACHINE", cf_fmt("{\"machine\":\"%s\",\"version\":9}", m), "MACHINE_NOT_FOUND",
           cf_fmt("core error: machine version not found: %s v9", m), false);
    CF_ERR(k, "GET_MACHINE", cf_fmt("{\"machine\":\"%s-nope\",\"version\":1}", m),
           "MACHINE_NOT_FOUND", cf_fmt("core error: machine version not found: %s-nope v1", m),
           false);
    CF_ERR(k, "GET_MACHINE", NULL, "BAD_REQUEST",
           "invalid request: invalid type: null, expected struct GetMachineParams", false);
    CF_ERR(k, "GET_MACHINE", cf_fmt("{\"machine\":\"%s\"}", m), "BAD_REQUEST",
           "invalid request: missing field `version`", false);
    CF_ERR(k, "GET_MACHINE", cf_fmt("{\"machine\":\"%s\",\"version\":\"1\"}", m), "BAD_REQUEST",
           "invalid request: invalid type: string \"1\", expected u32", false);
    CF_ERR(k, "GET_MACHINE", cf_fmt("{\"machine\":\"%s\",\"version\":-1}", m), "BAD_REQUEST",
           "invalid request: invalid value: integer `-1`, expected u32", false);
    CF_ERR(k, "GET_MACHINE", cf_fmt("{\"machine\":\"%s\",\"version\":4294967296}", m),
           "BAD_REQUEST", "invalid request: invalid value: integer `4294967296`, expected u32",
           false);
    CF_ERR(k, "GET_MACHINE", cf_fmt("{\"machine\":\"%s\",\"version\":1.5}", m), "BAD_REQUEST",
           "invalid request: invalid type: floating point `1.5`, expected u32", false);
    CF_ERR(k, "GET_MACHINE", "{\"version\":1}", "BAD_REQUEST",
           "invalid request: missing field `machine`", false);
    CF_ERR(k, "GET_MACHINE", cf_fmt("[\"%s\"]", m), "BAD_REQUEST",
           "invalid request: invalid length 1, expected struct GetMachineParams with 2 elements",
           false);
    cf_close(k);
}
END_TEST

START_TEST(put_machine_param_errors)
{
    cf_conn *k = CF_OPEN();
    char m[96];
    cf_uniq(m, sizeof m, "pm");
    CF_ERR(k, "PUT_MACHINE", NULL, "BAD_REQUEST",
           "invalid request: invalid type: null, expected struct PutMachineParams", false);
    CF_ERR(k, "PUT_MACHINE", cf_fmt("{\"machine\":\"%s\",\"version\":1}", m), "BAD_REQUEST",
           "invalid request: missing field `definition`", false);
    CF_ERR(k, "PUT_MACHINE", cf_fmt("{\"machine\":\"%s\",\"version\":\"1\",\"definition\":{}}", m),
           "BAD_REQUEST", "invalid request: invalid type: string \"1\", expected u32", false);
    CF_ERR(k, "PUT_MACHINE", cf_fmt("{\"machine\":7,\"version\":1,\"definition\":{}}"),
           "BAD_REQUEST", "invalid request: invalid type: integer `7`, expected a string", false);
    /* Nothing was created by the failures. */
    CF_ERR(k, "GET_MACHINE", cf_fmt("{\"machine\":\"%s\",\"version\":1}", m), "MACHINE_NOT_FOUND",
           cf_fmt("core error: machine version not found: %s v1", m), false);
    cf_close(k);
}
END_TEST

typedef struct bad_def {
    const char *def;
    const char *message;
} bad_def;

static const bad_def bad_defs[] = {
    {"{\"states\":[\"a\"],\"initial\":\"a\"}",
     "core error: JSON error: missing field `transitions`"},
    {"{\"initial\":\"a\",\"transitions\":[]}", "core error: JSON error: missing field `states`"},
    {"{\"states\":[\"a\"],\"transitions\":[]}", "core error: JSON error: missing field `initial`"},
    {"{\"states\":\"a\",\"initial\":\"a\",\"transitions\":[]}",
     "core error: JSON error: invalid type: string \"a\", expected a sequence"},
    {"{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[{\"from\":\"a\",\"to\":\"a\"}]}",
     "core error: JSON error: missing field `event`"},
    {"{\"states\":[\"a\"],\"initial\":\"b\",\"transitions\":[]}",
     "core error: invalid machine definition: initial state 'b' not in states list"},
    {"{\"states\":[],\"initial\":\"a\",\"transitions\":[]}",
     "core error: invalid machine definition: initial state 'a' not in states list"},
    {"{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[{\"from\":\"a\",\"event\":\"E\","
     "\"to\":\"x\"}]}",
     "core error: invalid machine definition: transition target 'x' not in states list"},
    {"{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[{\"from\":\"x\",\"event\":\"E\","
     "\"to\":\"a\"}]}",
     "core error: invalid machine definition: transition source 'x' not in states list"},
    {"{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[{\"from\":[\"a\",\"y\"],\"event\":"
     "\"E\",\"to\":\"a\"}]}",
     "core error: invalid machine definition: transition source 'y' not in states list"},
    {"{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[{\"from\":\"a\",\"event\":\"E\","
     "\"to\":\"a\",\"guard\":\"\"}]}",
     "core error: invalid guard expression: empty guard expression"},
    {"{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[{\"from\":\"a\",\"event\":\"E\","
     "\"to\":\"a\",\"guard\":\"  \"}]}",
     "core error: invalid guard expression: empty guard expression"},
    {"{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[{\"from\":\"a\",\"event\":\"E\","
     "\"to\":\"a\"},"
     "{\"from\":[\"a\"],\"event\":\"E\",\"to\":\"a\",\"guard\":\"ctx.x\"}]}",
     "core error: invalid machine definition: duplicate transition from 'a' on event 'E'"},
    {"{\"states\":[\"a\",\"b\"],\"initial\":\"a\",\"transitions\":[{\"from\":[\"a\",\"b\",\"a\"],"
     "\"event\":\"E\",\"to\":\"b\"}]}",
     "core error: invalid machine definition: duplicate transition from 'a' on event 'E'"},
    /* Order inside one transition: target, then guard, then sources. */
    {"{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[{\"from\":\"x\",\"event\":\"E\","
     "\"to\":\"y\",\"guard\":\"\"}]}",
     "core error: invalid machine definition: transition target 'y' not in states list"},
    {"{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[{\"from\":\"x\",\"event\":\"E\","
     "\"to\":\"a\",\"guard\":\"true\"}]}",
     "core error: invalid guard expression: field must start with 'ctx.'"},
    /* Across transitions: array order; initial before transitions. */
    {"{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[{\"from\":\"x\",\"event\":\"E\","
     "\"to\":\"a\"},"
     "{\"from\":\"a\",\"event\":\"F\",\"to\":\"z\"}]}",
     "core error: invalid machine definition: transition source 'x' not in states list"},
    {"{\"states\":[\"a\"],\"initial\":\"q\",\"transitions\":[{\"from\":\"x\",\"event\":\"E\","
     "\"to\":\"z\"}]}",
     "core error: invalid machine definition: initial state 'q' not in states list"},
};

START_TEST(invalid_definitions_internal_error_retryable)
{
    cf_conn *k = CF_OPEN();
    char m[96];
    cf_uniq(m, sizeof m, "bad");
    const bad_def *b = &bad_defs[_i];
    CF_ERR(k, "PUT_MACHINE", put_params(m, 1, b->def), "INTERNAL_ERROR", b->message, true);
    /* Nothing stored: the version is still free. */
    CF_PUT_MACHINE(k, m, "{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[]}");
    cf_close(k);
}
END_TEST

START_TEST(definition_not_an_object)
{
    cf_conn *k = CF_OPEN();
    char m[96];
    cf_uniq(m, sizeof m, "bad");
    CF_ERR(
        k, "PUT_MACHINE", put_params(m, 1, "\"x\""), "INTERNAL_ERROR",
        "core error: JSON error: invalid type: string \"x\", expected struct MachineDefinitionRaw",
        true);
    CF_ERR(k, "PUT_MACHINE", put_params(m, 1, "null"), "INTERNAL_ERROR",
           "core error: JSON error: invalid type: null, expected struct MachineDefinitionRaw",
           true);
    cf_close(k);
}
END_TEST

START_TEST(list_machines_sorted)
{
    cf_conn *k = CF_OPEN();
    char base[96];
    cf_uniq(base, sizeof base, "lm");
    char ma[128], mb[128], mB[128];
    snprintf(mb, sizeof mb, "%s-b", base);
    snprintf(ma, sizeof ma, "%s-a", base);
    snprintf(mB, sizeof mB, "%s-B", base);
    const char *def = "{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[]}";
    CF_OK(k, "PUT_MACHINE", put_params(mb, 1, def), "$*");
    CF_OK(k, "PUT_MACHINE", put_params(ma, 3, def), "$*");
    CF_OK(k, "PUT_MACHINE", put_params(mb, 0, def), "$*");
    CF_OK(k, "PUT_MACHINE", put_params(mB, 10, def), "$*");
    CF_OK(k, "PUT_MACHINE", put_params(mB, 2, def), "$*");
    /* Params are ignored. */
    static const char *const params[] = {NULL, "{\"limit\":1,\"offset\":5}", "\"x\""};
    for (int p = 0; p < 3; p++) {
        cJSON *j = CF_CALLJ(k, "LIST_MACHINES", params[p]);
        const cJSON *items =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(j, "result"), "items");
        ck_assert_msg(cJSON_IsArray(items), "no items array");
        const char *prev = NULL;
        int found = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, items)
        {
            const char *name = cJSON_GetObjectItem(it, "machine")->valuestring;
            ck_assert_msg(prev == NULL || strcmp(prev, name) < 0, "items not sorted: %s before %s",
                          prev, name);
            prev = name;
            char *txt = cJSON_PrintUnformatted(it);
            if (strcmp(name, ma) == 0) {
                ck_assert_str_eq(txt, cf_fmt("{\"machine\":\"%s\",\"versions\":[3]}", ma));
                found |= 1;
            } else if (strcmp(name, mb) == 0) {
                ck_assert_str_eq(txt, cf_fmt("{\"machine\":\"%s\",\"versions\":[0,1]}", mb));
                found |= 2;
            } else if (strcmp(name, mB) == 0) {
                ck_assert_str_eq(txt, cf_fmt("{\"machine\":\"%s\",\"versions\":[2,10]}", mB));
                found |= 4;
            }
            cJSON_free(txt);
        }
        ck_assert_int_eq(found, 7);
        cJSON_Delete(j);
    }
    /* Byte order: "-B" < "-a" < "-b". */
    char *t = CF_CALL(k, "LIST_MACHINES", NULL);
    const char *pB = strstr(t, mB), *pa = strstr(t, ma), *pb = strstr(t, mb);
    ck_assert(pB != NULL && pa != NULL && pb != NULL && pB < pa && pa < pb);
    free(t);
    cf_close(k);
}
END_TEST

START_TEST(version_limit)
{
    cf_conn *k = cf_open_limit();
    if (k == NULL)
        return;
    char m[96];
    cf_uniq(m, sizeof m, "lim");
    const char *def = "{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[]}";
    CF_OK(
        k, "PUT_MACHINE", put_params(m, 1, def),
        cf_fmt(
            "{\"created\":true,\"machine\":\"%s\",\"stored_checksum\":\"6b16bc3e\",\"version\":1}",
            m));
    CF_OK(
        k, "PUT_MACHINE", put_params(m, 5, def),
        cf_fmt(
            "{\"created\":true,\"machine\":\"%s\",\"stored_checksum\":\"6b16bc3e\",\"version\":5}",
            m));
    char msg[256];
    snprintf(msg, sizeof msg,
             "machine version limit exceeded: machine '%s' already has 2 versions (limit: 2)", m);
    CF_ERR(k, "PUT_MACHINE", put_params(m, 2, def), "MACHINE_VERSION_LIMIT_EXCEEDED", msg, false);
    /* The limit is checked before validation. */
    CF_ERR(k, "PUT_MACHINE", put_params(m, 3, "{\"states\":[]}"), "MACHINE_VERSION_LIMIT_EXCEEDED",
           msg, false);
    /* Re-PUT of an existing version still works, also a conflicting one is judged as usual. */
    CF_OK(
        k, "PUT_MACHINE", put_params(m, 5, def),
        cf_fmt(
            "{\"created\":false,\"machine\":\"%s\",\"stored_checksum\":\"6b16bc3e\",\"version\":5}",
            m));
    CF_ERR(k, "PUT_MACHINE", put_params(m, 1, CF_ORDER_DEF), "MACHINE_VERSION_EXISTS",
           cf_fmt("core error: machine version already exists: %s v1", m), false);
    /* Other machines have their own count. */
    char m2[96];
    cf_uniq(m2, sizeof m2, "lim");
    CF_OK(k, "PUT_MACHINE", put_params(m2, 2, def), "{\"created\":true,$*");
    CF_OK(k, "LIST_MACHINES", NULL,
          "{\"items\":[{\"machine\":\"$S\",\"versions\":[1,5]},{\"machine\":\"$S\",\"versions\":[2]"
          "}]}");
    cf_close(k);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conformance_machines");
    TCase *tc = cf_tcase("machines");
    tcase_add_unchecked_fixture(tc, setup, cf_teardown);
    tcase_add_test(tc, put_worked_definition_checksum);
    tcase_add_test(tc, checksum_of_normalized_definition);
    tcase_add_test(tc, get_machine_normalized);
    tcase_add_test(tc, get_machine_errors);
    tcase_add_test(tc, put_machine_param_errors);
    tcase_add_loop_test(tc, invalid_definitions_internal_error_retryable, 0,
                        (int)(sizeof bad_defs / sizeof bad_defs[0]));
    tcase_add_test(tc, definition_not_an_object);
    tcase_add_test(tc, list_machines_sorted);
    tcase_add_test(tc, version_limit);
    suite_add_tcase(s, tc);
    return cf_run(s);
}
