/* test_log.c: JSON-lines records: one valid JSON object per line, escaping,
 * levels, and a record far over the line buffer still closed properly. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static char *slurp(FILE *f)
{
    long n = ftell(f);
    char *b = calloc(1, (size_t)n + 1);
    rewind(f);
    ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    return b;
}

START_TEST(records)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    plog l;
    log_init(&l, LOG_INFO, f);
    log_msg(&l, LOG_DEBUG, NULL, "dropped %d", 1);
    log_msg(&l, LOG_INFO, "7", "id=%d q=\"%s\"", 7, "a\r\nb\\");
    log_text(&l, LOG_WARN, NULL, "second");
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    log_text(&l, LOG_ERROR, "r", big);
    char *all = slurp(f);
    fclose(f);
    char *save = NULL;
    int lines = 0;
    for (char *ln = strtok_r(all, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        cJSON *j = cJSON_Parse(ln);
        ck_assert_msg(j != NULL, "not JSON: %.200s", ln);
        const char *ts = cJSON_GetObjectItem(j, "ts")->valuestring;
        /* 2026-11-25T03:18:54.718Z */
        ck_assert_uint_eq(strlen(ts), 24);
        ck_assert(ts[10] == 'T' && ts[19] == '.' && ts[23] == 'Z');
        const char *msg = cJSON_GetObjectItem(j, "msg")->valuestring;
        const char *lv = cJSON_GetObjectItem(j, "level")->valuestring;
        if (lines == 0) {
            ck_assert_str_eq(lv, "info");
            ck_assert_str_eq(msg, "id=7 q=\"a\r\nb\\\"");
            ck_assert_str_eq(cJSON_GetObjectItem(j, "req")->valuestring, "7");
        } else if (lines == 1) {
            ck_assert_str_eq(lv, "warn");
            ck_assert_str_eq(msg, "second");
            ck_assert_ptr_null(cJSON_GetObjectItem(j, "req"));
        } else {
            ck_assert_str_eq(lv, "error");
            ck_assert_uint_gt(strlen(msg), 1000); /* truncated, still one valid line */
        }
        cJSON_Delete(j);
        lines++;
    }
    ck_assert_int_eq(lines, 3);
    free(all);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");
    tcase_add_test(tc, records);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
