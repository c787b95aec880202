/* test_sse.c: the SSE wire format (open, events, errors, keepalive) and
 * the auth/CORS helpers the streams rely on. */
#include <check.h>
#include <string.h>

#include "auth.h"
#include "cors.h"
#include "sse.h"

START_TEST(format_open)
{
    char b[128];
    size_t n = sse_format_open(b, sizeof b, 3000);
    ck_assert_uint_eq(n, strlen(b));
    ck_assert_int_eq(strncmp(b, "retry: 3000\n:", 13), 0);
    ck_assert_int_eq(strcmp(b + n - 2, "\n\n"), 0);
    ck_assert_uint_eq(sse_format_open(b, 8, 3000), 0);
}
END_TEST

START_TEST(format_event)
{
    char b[256];
    const char *d = "{\"instance_id\":\"w\",\"wal_offset\":1099511627776}";
    size_t n = sse_format_event(b, sizeof b, 1099511627776ULL, d, strlen(d));
    ck_assert_uint_eq(n, strlen(b));
    ck_assert_str_eq(b, "id: 1099511627776\ndata: {\"instance_id\":\"w\",\"wal_offset\":"
                        "1099511627776}\n\n");
    /* an embedded newline never ends the event early */
    n = sse_format_event(b, sizeof b, 5, "a\nb\r\nc", 6);
    ck_assert_str_eq(b, "id: 5\ndata: a\ndata: b\ndata: c\n\n");
    ck_assert_uint_eq(sse_format_event(b, 10, 5, d, strlen(d)), 0);
    ck_assert_str_eq(SSE_KEEPALIVE, ": keepalive\n\n");
}
END_TEST

START_TEST(format_error)
{
    char b[320];
    size_t n = sse_format_error(b, sizeof b, "SLOW_READER", "buffer \"full\"\nclosing");
    ck_assert_uint_eq(n, strlen(b));
    ck_assert_str_eq(b, "event: error\ndata: {\"code\":\"SLOW_READER\",\"message\":\"buffer "
                        "\\\"full\\\"\\nclosing\"}\n\n");
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    n = sse_format_error(b, sizeof b, "E", big); /* long messages are cut, still one event */
    ck_assert_uint_gt(n, 0);
    ck_assert_int_eq(strcmp(b + n - 4, "\"}\n\n"), 0);
}
END_TEST

START_TEST(cors_origins)
{
    const char *o[] = {"https://app.example/", "http://localhost:8080"};
    cors *c;
    ck_assert_int_eq(cors_new(&c, o, 2), 0);
    ck_assert(cors_enabled(c));
    ck_assert_str_eq(cors_allow(c, "https://app.example"), "https://app.example");
    ck_assert_ptr_null(cors_allow(c, "https://evil.example"));
    ck_assert_ptr_null(cors_allow(c, NULL));
    cors_free(c);
    const char *any[] = {"*"};
    ck_assert_int_eq(cors_new(&c, any, 1), 0);
    ck_assert_str_eq(cors_allow(c, "https://x.example"), "https://x.example");
    cors_free(c);
    ck_assert_ptr_nonnull(strstr(CORS_ALLOW_HEADERS, "Last-Event-ID"));
    ck_assert_ptr_nonnull(strstr(CORS_ALLOW_HEADERS, "Idempotency-Key"));
    ck_assert_ptr_nonnull(strstr(CORS_ALLOW_HEADERS, "If-Match"));
    ck_assert_ptr_nonnull(strstr(CORS_ALLOW_HEADERS, "Authorization"));
    ck_assert_ptr_nonnull(strstr(CORS_EXPOSE_HEADERS, "RSTMDB-WAL-Offset"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sse");
    TCase *tc = tcase_create("sse");
    tcase_add_test(tc, format_open);
    tcase_add_test(tc, format_event);
    tcase_add_test(tc, format_error);
    tcase_add_test(tc, cors_origins);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
