/* test_crc32c.c: CRC-32C check values from PROTOCOL.md §1.4, incremental
 * updates, and the hardware path against the portable one. No I/O. */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "rstmdb/frame.h"

static const char ping_req[] = "{\"type\":\"request\",\"id\":\"1\",\"op\":\"PING\"}";
static const char ping_resp[] =
    "{\"type\":\"response\",\"id\":\"1\",\"status\":\"ok\",\"result\":{\"pong\":true}}";

START_TEST(test_check_values)
{
    ck_assert_uint_eq(rstmdb_crc32c("123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(rstmdb_crc32c("", 0), 0u);
    ck_assert_uint_eq(rstmdb_crc32c(NULL, 0), 0u);
    ck_assert_uint_eq(rstmdb_crc32c("a", 1), 0xC1D04330u);
    ck_assert_uint_eq(strlen(ping_req), 39);
    ck_assert_uint_eq(rstmdb_crc32c(ping_req, 39), 0x15F193B1u);
    ck_assert_uint_eq(strlen(ping_resp), 65);
    ck_assert_uint_eq(rstmdb_crc32c(ping_resp, 65), 0x4B7B432Fu);
}
END_TEST

START_TEST(test_check_values_each_path)
{
    ck_assert_uint_eq(crc32c_portable(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(crc32c_portable(0, "a", 1), 0xC1D04330u);
    ck_assert_uint_eq(crc32c_portable(0, ping_resp, 65), 0x4B7B432Fu);
    ck_assert_uint_eq(crc32c_hw(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(crc32c_hw(0, "a", 1), 0xC1D04330u);
    ck_assert_uint_eq(crc32c_hw(0, ping_req, 39), 0x15F193B1u);
    ck_assert_uint_eq(crc32c_hw(0, "", 0), 0u);
}
END_TEST

/* 32 bytes of zeros and of 0xFF: the iSCSI test vectors (RFC 3720 B.4). */
START_TEST(test_rfc3720_vectors)
{
    uint8_t buf[32];
    uint8_t inc[32];

    memset(buf, 0, sizeof buf);
    ck_assert_uint_eq(rstmdb_crc32c(buf, 32), 0x8A9136AAu);
    memset(buf, 0xFF, sizeof buf);
    ck_assert_uint_eq(rstmdb_crc32c(buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        inc[i] = (uint8_t)i;
    ck_assert_uint_eq(rstmdb_crc32c(inc, 32), 0x46DD794Eu);
    ck_assert_uint_eq(crc32c_portable(0, inc, 32), 0x46DD794Eu);
}
END_TEST

START_TEST(test_update_splits)
{
    const size_t n = strlen(ping_resp);
    const uint32_t whole = rstmdb_crc32c(ping_resp, n);

    for (size_t cut = 0; cut <= n; cut++) {
        uint32_t c = rstmdb_crc32c(ping_resp, cut);
        ck_assert_uint_eq(rstmdb_crc32c_update(c, ping_resp + cut, n - cut), whole);
        c = crc32c_portable(0, ping_resp, cut);
        ck_assert_uint_eq(crc32c_portable(c, ping_resp + cut, n - cut), whole);
        c = crc32c_hw(0, ping_resp, cut);
        ck_assert_uint_eq(crc32c_hw(c, ping_resp + cut, n - cut), whole);
    }
}
END_TEST

/* Every length 0..4096 at a pseudo-random alignment (0..15) with random
 * content: both paths and the dispatcher agree. Seeded, so reproducible. */
START_TEST(test_hw_matches_portable)
{
    enum { MAXLEN = 4096, PAD = 16 };
    uint8_t *buf = malloc(MAXLEN + PAD);
    uint32_t seed = 0x12345678u;

    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < MAXLEN + PAD; i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (uint8_t)(seed >> 16);
    }
    for (size_t len = 0; len <= MAXLEN; len++) {
        seed = seed * 1103515245u + 12345u;
        const uint8_t *p = buf + ((seed >> 16) % PAD);
        uint32_t a = crc32c_portable(0, p, len);
        ck_assert_uint_eq(crc32c_hw(0, p, len), a);
        ck_assert_uint_eq(rstmdb_crc32c(p, len), a);
        /* a non-zero starting CRC as well (continuing a stream) */
        ck_assert_uint_eq(crc32c_hw(0xDEADBEEFu, p, len), crc32c_portable(0xDEADBEEFu, p, len));
    }
    free(buf);
}
END_TEST

START_TEST(test_hw_available_is_stable)
{
    bool first = crc32c_hw_available();
    for (int i = 0; i < 10; i++)
        ck_assert(crc32c_hw_available() == first);
#if defined(__x86_64__)
    ck_assert(first == (__builtin_cpu_supports("sse4.2") != 0));
#endif
}
END_TEST

/* First use from several threads at once: each must get the right answer
 * while the implementation is being chosen (Check forks each test, so this
 * really is the process's first CRC). */
enum { RACE_THREADS = 8 };

static void *race_thread(void *arg)
{
    uint32_t *out = arg;
    *out = rstmdb_crc32c("123456789", 9);
    return NULL;
}

START_TEST(test_first_use_from_threads)
{
    pthread_t th[RACE_THREADS];
    uint32_t got[RACE_THREADS];

    for (int i = 0; i < RACE_THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, race_thread, &got[i]), 0);
    for (int i = 0; i < RACE_THREADS; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_uint_eq(got[i], 0xE3069283u);
    }
}
END_TEST

static Suite *crc32c_suite(void)
{
    Suite *s = suite_create("crc32c");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_first_use_from_threads);
    tcase_add_test(tc, test_check_values);
    tcase_add_test(tc, test_check_values_each_path);
    tcase_add_test(tc, test_rfc3720_vectors);
    tcase_add_test(tc, test_update_splits);
    tcase_add_test(tc, test_hw_matches_portable);
    tcase_add_test(tc, test_hw_available_is_stable);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(crc32c_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
