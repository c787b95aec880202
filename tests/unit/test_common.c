/* test_common.c: the shared internals of common/ other than the scanner
 * (test_jscan.c): the bounded buffer and its JSON string escaper, the
 * list, the address parser and printer, and the UTF-8 checks. */
#include <arpa/inet.h>
#include <check.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "addr.h"
#include "list.h"
#include "strbuf.h"
#include "utf8.h"

START_TEST(test_strbuf_cap_is_sticky)
{
    strbuf b;
    strbuf_init(&b, 8);
    ck_assert_int_eq(strbuf_puts(&b, "12345678"), 0);
    ck_assert_int_eq(strbuf_putc(&b, '9'), -1);
    ck_assert_int_eq(b.err, STRBUF_TOO_BIG);
    ck_assert_uint_eq(b.len, 8); /* never truncated: the failed append wrote nothing */
    ck_assert_int_eq(strbuf_puts(&b, ""), -1); /* sticky */
    ck_assert_ptr_null(strbuf_take(&b, NULL));
    strbuf_reset(&b);
    ck_assert(!strbuf_failed(&b));
    ck_assert_int_eq(strbuf_puts(&b, "ok"), 0);
    ck_assert_str_eq(b.data, "ok");
    strbuf_deinit(&b);
}
END_TEST

START_TEST(test_strbuf_numbers_and_printf)
{
    strbuf b;
    strbuf_init(&b, 1 << 20);
    strbuf_u64(&b, 0);
    strbuf_putc(&b, ' ');
    strbuf_u64(&b, UINT64_MAX);
    strbuf_putc(&b, ' ');
    strbuf_i64(&b, INT64_MIN);
    strbuf_putc(&b, ' ');
    strbuf_i64(&b, -7);
    ck_assert_str_eq(b.data, "0 18446744073709551615 -9223372036854775808 -7");
    strbuf_reset(&b);
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(strbuf_printf(&b, "[%s|%d]", big, 42), 0); /* past the 256-byte fast path */
    ck_assert_uint_eq(b.len, strlen(big) + 5);
    ck_assert_int_eq(strncmp(b.data + b.len - 4, "|42]", 4), 0);
    size_t n;
    char *s = strbuf_take(&b, &n);
    ck_assert_uint_eq(n, strlen(s));
    free(s);
    ck_assert_ptr_null(b.data);
    s = strbuf_take(&b, &n); /* empty: "" */
    ck_assert_str_eq(s, "");
    free(s);
    strbuf_deinit(&b);
}
END_TEST

/* The escaper, checked against an independent decoder (cJSON): every byte
 * 1..255 of a string survives the round trip, and the spelling is
 * serde_json's (short escapes, \u00XX for other controls). */
START_TEST(test_strbuf_jstr)
{
    strbuf b;
    strbuf_init(&b, 4096);
    const char *in = "a\"\\\n\r\t\b\f\x01\x1f/\xc3\xa9";
    strbuf_jstr(&b, in, strlen(in));
    ck_assert_str_eq(b.data, "\"a\\\"\\\\\\n\\r\\t\\b\\f\\u0001\\u001f/\xc3\xa9\"");
    strbuf_reset(&b);
    char all[128];
    for (int i = 1; i < 128; i++)
        all[i - 1] = (char)i;
    all[127] = '\0';
    strbuf_jstr(&b, all, 127);
    cJSON *j = cJSON_Parse(b.data);
    ck_assert(cJSON_IsString(j));
    ck_assert_str_eq(j->valuestring, all);
    cJSON_Delete(j);
    strbuf_deinit(&b);
}
END_TEST

typedef struct item {
    int v;
    list_node node;
} item;

START_TEST(test_list)
{
    list_node head;
    list_init(&head);
    ck_assert(list_empty(&head));
    ck_assert_ptr_null(list_first(&head));
    item it[4];
    for (int i = 0; i < 4; i++) {
        it[i].v = i;
        list_init(&it[i].node);
        ck_assert(!list_linked(&it[i].node));
    }
    list_push_back(&head, &it[1].node);
    list_push_back(&head, &it[2].node);
    list_push_front(&head, &it[0].node);
    list_insert_after(&it[2].node, &it[3].node);
    int want = 0;
    list_node *pos, *tmp;
    list_each_safe(pos, tmp, &head)
    {
        ck_assert_int_eq(list_entry(pos, item, node)->v, want++);
    }
    ck_assert_int_eq(want, 4);
    /* Removing while walking, and twice (the second is a no-op). */
    list_each_safe(pos, tmp, &head)
    {
        if (list_entry(pos, item, node)->v % 2 == 0)
            list_remove(pos);
    }
    list_remove(&it[0].node);
    ck_assert(!list_linked(&it[0].node));
    list_node *first = list_first(&head);
    ck_assert_ptr_eq(first, &it[1].node);
    ck_assert_ptr_eq(head.next->next, &it[3].node);
    ck_assert_ptr_eq(head.prev, &it[3].node);
    list_remove(&it[1].node);
    list_remove(&it[3].node);
    ck_assert(list_empty(&head));
}
END_TEST

START_TEST(test_addr_split)
{
    char host[64];
    unsigned port;
    ck_assert_int_eq(addr_split("127.0.0.1:0", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_uint_eq(port, 0);
    ck_assert_int_eq(addr_split("[::1]:7480", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_uint_eq(port, 7480);
    ck_assert_int_eq(addr_split("db.example:65535", host, sizeof host, &port), 0);
    ck_assert_uint_eq(port, 65535);
    static const char *const bad[] = {"::1:80", "h:65536", ":80",  "h:",    "h",    "[::1]80",
                                      "[::1",   "h:+1",    "h:-1", "h: 80", "h:8a", "h:123456"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(addr_split(bad[i], host, sizeof host, &port) == -1, "%s", bad[i]);
    char tiny[4];
    ck_assert_int_eq(addr_split("abcd:1", tiny, sizeof tiny, &port), -1);
}
END_TEST

START_TEST(test_addr_parse_and_format)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char err[160], out[128];
    ck_assert_int_eq(addr_parse("localhost:7401", &ss, &len, err, sizeof err), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET);
    addr_format((struct sockaddr *)&ss, len, out, sizeof out);
    ck_assert_str_eq(out, "127.0.0.1:7401");
    ck_assert_int_eq(addr_parse("[::1]:9", &ss, &len, err, sizeof err), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET6);
    addr_format((struct sockaddr *)&ss, len, out, sizeof out);
    ck_assert_str_eq(out, "[::1]:9");
    ck_assert_int_eq(addr_parse("unix:/tmp/x.sock", &ss, &len, err, sizeof err), 0);
    ck_assert_int_eq(ss.ss_family, AF_UNIX);
    addr_format((struct sockaddr *)&ss, len, out, sizeof out);
    ck_assert_str_eq(out, "unix:/tmp/x.sock");
    ck_assert_int_eq(addr_parse("db.example:1", &ss, &len, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "IPv4/IPv6"));
    ck_assert_int_eq(addr_parse("unix:", &ss, &len, err, sizeof err), -1);
    ck_assert_int_eq(addr_parse("1.2.3.4", &ss, &len, err, sizeof err), -1);
}
END_TEST

START_TEST(test_utf8)
{
    ck_assert(utf8_valid("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10));
    static const char *const bad[] = {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                      "\xc3",     "\x80",         "\xe2\x82"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!utf8_valid(bad[i], strlen(bad[i])), "%zu", i);
    char s[] = "ok\xc3(\xe2\x82";
    utf8_sanitize(s, strlen(s));
    ck_assert_str_eq(s, "ok?(??");
    ck_assert(utf8_valid(s, strlen(s)));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common");
    TCase *tc = tcase_create("common");
    tcase_add_test(tc, test_strbuf_cap_is_sticky);
    tcase_add_test(tc, test_strbuf_numbers_and_printf);
    tcase_add_test(tc, test_strbuf_jstr);
    tcase_add_test(tc, test_list);
    tcase_add_test(tc, test_addr_split);
    tcase_add_test(tc, test_addr_parse_and_format);
    tcase_add_test(tc, test_utf8);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
