/* test_line.c: the JSONL line decoder (rstmdb/frame.h): "\n" and "\r\n"
 * lines, any chunking, the line cap, empty lines, poisoning. No I/O. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rstmdb/error.h"
#include "rstmdb/frame.h"

static const char resp[] =
    "{\"type\":\"response\",\"id\":\"1\",\"status\":\"ok\",\"result\":{\"pong\":true}}";

static rstmdb_line_decoder *new_decoder(size_t max)
{
    rstmdb_line_decoder *d = NULL;
    ck_assert_int_eq(rstmdb_line_decoder_new(&d, max), RSTMDB_OK);
    ck_assert_ptr_nonnull(d);
    return d;
}

static int feed(rstmdb_line_decoder *d, const char *s, size_t len, size_t *used, rstmdb_frame *f)
{
    return rstmdb_line_decoder_feed(d, (const uint8_t *)s, len, used, f);
}

/* A fresh decoder with cap `max` answers `a` with rc_a, then (unless b is
 * NULL) `b` with rc_b: the cap and poisoning cases, whole or split. */
static void expect_feeds(size_t max, const char *a, int rc_a, const char *b, int rc_b)
{
    rstmdb_line_decoder *d = new_decoder(max);
    rstmdb_frame f;
    size_t used;
    int rc = feed(d, a, strlen(a), &used, &f);
    ck_assert_msg(rc == rc_a, "max %zu, feeding '%s': rc %d, want %d", max, a, rc, rc_a);
    if (b != NULL) {
        rc = feed(d, b, strlen(b), &used, &f);
        ck_assert_msg(rc == rc_b, "max %zu, then '%s': rc %d, want %d", max, b, rc, rc_b);
    }
    rstmdb_line_decoder_free(d);
}

/* Drain `s` (cut once at `cut`) and check the lines against want[]. */
static void expect_lines(size_t max, const char *s, size_t cut, const char *const *want,
                         size_t nwant)
{
    rstmdb_line_decoder *d = new_decoder(max);
    size_t n = strlen(s);
    size_t got = 0;
    size_t bounds[2][2] = {{0, cut}, {cut, n}};

    for (int part = 0; part < 2; part++) {
        size_t at = bounds[part][0];
        for (;;) {
            rstmdb_frame f;
            size_t used;
            int rc = feed(d, s + at, bounds[part][1] - at, &used, &f);
            ck_assert_int_ge(rc, 0);
            at += used;
            if (rc == 0)
                break;
            ck_assert_uint_lt(got, nwant);
            ck_assert_uint_eq(f.flags, 0);
            ck_assert_uint_eq(f.payload_len, strlen(want[got]));
            ck_assert_mem_eq(f.payload, want[got], f.payload_len);
            got++;
        }
        ck_assert_uint_eq(at, bounds[part][1]);
    }
    ck_assert_uint_eq(got, nwant);
    rstmdb_line_decoder_free(d);
}

START_TEST(test_lines_split_everywhere)
{
    const char *stream = "{\"a\":1}\n{\"b\":2}\r\n{\"type\":\"event\"}\n";
    const char *want[] = {"{\"a\":1}", "{\"b\":2}", "{\"type\":\"event\"}"};
    for (size_t cut = 0; cut <= strlen(stream); cut++)
        expect_lines(0, stream, cut, want, 3);
}
END_TEST

START_TEST(test_zero_copy_and_byte_at_a_time)
{
    char buf[128];
    rstmdb_frame f;
    size_t used;
    rstmdb_line_decoder *d = new_decoder(0);
    size_t n = (size_t)snprintf(buf, sizeof buf, "%s\n", resp);

    ck_assert_int_eq(feed(d, buf, n, &used, &f), 1);
    ck_assert_uint_eq(used, n);
    ck_assert_ptr_eq(f.payload, (const uint8_t *)buf);
    ck_assert_uint_eq(f.payload_len, n - 1);

    for (size_t i = 0; i + 1 < n; i++) {
        ck_assert_int_eq(feed(d, buf + i, 1, &used, &f), 0);
        ck_assert_uint_eq(used, 1);
    }
    ck_assert_int_eq(feed(d, buf + n - 1, 1, &used, &f), 1);
    ck_assert_uint_eq(f.payload_len, n - 1);
    ck_assert_mem_eq(f.payload, resp, n - 1);
    rstmdb_line_decoder_free(d);
}
END_TEST

/* The cap counts the line without "\n" / "\r\n": exactly max is fine. */
START_TEST(test_line_cap)
{
    const char *want[] = {"0123456789"};

    for (size_t cut = 0; cut <= 12; cut++) {
        expect_lines(10, "0123456789\n", cut > 11 ? 11 : cut, want, 1);
        expect_lines(10, "0123456789\r\n", cut, want, 1);
    }

    /* 11 bytes and a newline: too long, whether whole or split */
    expect_feeds(10, "0123456789A\n", RSTMDB_ERR_LINE_TOO_LONG, NULL, 0);
    expect_feeds(10, "01234", 0, "56789A\n", RSTMDB_ERR_LINE_TOO_LONG);

    /* no newline yet, but already past the cap: fail without waiting */
    expect_feeds(10, "0123456789", 0, "A", RSTMDB_ERR_LINE_TOO_LONG);
    expect_feeds(10, "0123456789AB", RSTMDB_ERR_LINE_TOO_LONG, NULL, 0);

    /* max bytes then '\r' waits for the '\n'; '\r' then data is too long */
    expect_feeds(10, "0123456789\r", 0, "x", RSTMDB_ERR_LINE_TOO_LONG);
}
END_TEST

START_TEST(test_empty_line_and_poison)
{
    rstmdb_frame f;
    size_t used;
    rstmdb_line_decoder *d = new_decoder(0);

    ck_assert_int_eq(feed(d, "{}\n\n{}\n", 7, &used, &f), 1);
    ck_assert_uint_eq(used, 3);
    ck_assert_int_eq(feed(d, "\n{}\n", 4, &used, &f), RSTMDB_ERR_LINE_EMPTY);
    /* poisoned: same code, nothing consumed */
    ck_assert_int_eq(feed(d, "{}\n", 3, &used, &f), RSTMDB_ERR_LINE_EMPTY);
    ck_assert_uint_eq(used, 0);
    rstmdb_line_decoder_free(d);

    expect_feeds(0, "\r\n", RSTMDB_ERR_LINE_EMPTY, NULL, 0);
    expect_feeds(0, "\r", 0, "\n", RSTMDB_ERR_LINE_EMPTY);

    expect_feeds(4, "12345", RSTMDB_ERR_LINE_TOO_LONG, "1\n", RSTMDB_ERR_LINE_TOO_LONG);
}
END_TEST

/* Only one trailing '\r' is stripped; a '\r' inside a line stays. */
START_TEST(test_cr_handling)
{
    const char *want[] = {"a\rb", "c\r"};
    expect_lines(0, "a\rb\r\nc\r\r\n", 4, want, 2);
}
END_TEST

/* A long line in pieces (buffer growth), then short ones. */
START_TEST(test_long_line_then_short)
{
    const size_t big = 300000;
    char *buf = malloc(big + 1);
    rstmdb_frame f;
    size_t used;
    rstmdb_line_decoder *d = new_decoder(0);

    ck_assert_ptr_nonnull(buf);
    memset(buf, 'q', big);
    buf[big] = '\n';
    for (size_t at = 0; at < big; at += 1000)
        ck_assert_int_eq(feed(d, buf + at, 1000, &used, &f), 0);
    ck_assert_int_eq(feed(d, buf + big, 1, &used, &f), 1);
    ck_assert_uint_eq(f.payload_len, big);
    ck_assert_int_eq(f.payload[big - 1], 'q');
    for (int r = 0; r < 3; r++) {
        ck_assert_int_eq(feed(d, "{\"x\"", 4, &used, &f), 0);
        ck_assert_int_eq(feed(d, ":1}\n", 4, &used, &f), 1);
        ck_assert_mem_eq(f.payload, "{\"x\":1}", 7);
    }
    rstmdb_line_decoder_free(d);
    free(buf);
}
END_TEST

START_TEST(test_api_misuse)
{
    rstmdb_line_decoder *d;
    rstmdb_frame f;
    size_t used;

    ck_assert_int_eq(rstmdb_line_decoder_new(NULL, 0), RSTMDB_ERR_INVALID);
    rstmdb_line_decoder_free(NULL);
    d = new_decoder(0);
    ck_assert_int_eq(rstmdb_line_decoder_feed(d, NULL, 3, &used, &f), RSTMDB_ERR_INVALID);
    ck_assert_int_eq(rstmdb_line_decoder_feed(d, NULL, 0, &used, &f), 0);
    ck_assert_int_eq(rstmdb_line_decoder_feed(d, (const uint8_t *)"x", 1, NULL, &f),
                     RSTMDB_ERR_INVALID);
    rstmdb_line_decoder_free(d);
}
END_TEST

static Suite *line_suite(void)
{
    Suite *s = suite_create("line");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_lines_split_everywhere);
    tcase_add_test(tc, test_zero_copy_and_byte_at_a_time);
    tcase_add_test(tc, test_line_cap);
    tcase_add_test(tc, test_empty_line_and_poison);
    tcase_add_test(tc, test_cr_handling);
    tcase_add_test(tc, test_long_line_then_short);
    tcase_add_test(tc, test_api_misuse);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(line_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
