/* test_framing.c: RCPX framing and envelope conformance (PROTOCOL.md §1.2-1.5,
 * §2.1 envelope): exact worked bytes, every silent-close case, and what the
 * server must accept (CRC flag clear, arrays, extensions, pipelining, splits).
 */
#include "conf.h"

#include <rstmdb/frame.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char PING1[] = "{\"type\":\"request\",\"id\":\"1\",\"op\":\"PING\"}";
static const char PONG1[] =
    "{\"type\":\"response\",\"id\":\"1\",\"status\":\"ok\",\"result\":{\"pong\":true}}";

static void setup(void)
{
    cf_setup(0);
}

/* A fresh connection still answers: the server survived what came before. */
static void assert_server_alive(void)
{
    cf_conn *k = CF_OPEN_RAW();
    CF_OK(k, "PING", NULL, "{\"pong\":true}");
    cf_close(k);
}

static void read_expect(cf_conn *k, const char *want)
{
    rcpx_msg m;
    rcpx_rc rc = rcpx_read(k->rc, CF_TIMEOUT_MS, &m);
    ck_assert_msg(rc == RCPX_OK, "no response: %s", rcpx_errstr(k->rc));
    ck_assert_msg(strcmp(m.text, want) == 0, "got %s\nwant %s", cf_short(m.text), cf_short(want));
    rcpx_msg_clear(&m);
}

START_TEST(worked_ping_frame_bytes)
{
    static const uint8_t want_req[18] = {0x52, 0x43, 0x50, 0x58, 0x00, 0x01, 0x00, 0x01, 0x00,
                                         0x00, 0x00, 0x00, 0x00, 0x27, 0x15, 0xf1, 0x93, 0xb1};
    static const uint8_t want_resp[18] = {0x52, 0x43, 0x50, 0x58, 0x00, 0x01, 0x00, 0x01, 0x00,
                                          0x00, 0x00, 0x00, 0x00, 0x41, 0x4b, 0x7b, 0x43, 0x2f};
    uint8_t hdr[18];
    ck_assert_int_eq(strlen(PING1), 39);
    ck_assert_int_eq(rstmdb_frame_header(hdr, RSTMDB_FLAG_CRC_PRESENT, PING1, strlen(PING1)), 0);
    ck_assert_msg(memcmp(hdr, want_req, 18) == 0, "library header differs from PROTOCOL.md §1.4");

    cf_conn *k = CF_OPEN_RAW();
    uint8_t frame[128];
    size_t n = rcpx_frame_build(frame, sizeof frame, "RCPX", 1, 1, 0, PING1, 39, true, 0);
    ck_assert_msg(memcmp(frame, want_req, 18) == 0, "test frame builder disagrees with the sheet");
    ck_assert_int_eq(rcpx_send_raw(k->rc, frame, n), 0);
    rcpx_msg m;
    ck_assert_int_eq(rcpx_read(k->rc, CF_TIMEOUT_MS, &m), RCPX_OK);
    ck_assert_str_eq(m.text, PONG1);
    ck_assert_uint_eq(m.len, 65);
    ck_assert_msg(memcmp(m.header, want_resp, 18) == 0,
                  "response header %02x%02x%02x%02x %02x%02x %02x%02x %02x%02x %02x%02x%02x%02x "
                  "%02x%02x%02x%02x",
                  m.header[0], m.header[1], m.header[2], m.header[3], m.header[4], m.header[5],
                  m.header[6], m.header[7], m.header[8], m.header[9], m.header[10], m.header[11],
                  m.header[12], m.header[13], m.header[14], m.header[15], m.header[16],
                  m.header[17]);
    rcpx_msg_clear(&m);
    cf_close(k);
}
END_TEST

/* ---- silent closes (§1.5): each bad frame is followed, in the same write, by
 * a valid PING that must never be answered. ---- */

typedef struct bad_case {
    const char *name;
    const char *magic;
    uint16_t version;
    uint16_t flags;
    const char *payload;
    int crc_mode;           /* 0 = correct, 1 = corrupted */
    uint32_t plen_override; /* nonzero: header claims this length, only the header is sent */
    const char *raw;        /* nonzero: send these bytes as-is instead of a frame */
} bad_case;

static const bad_case bad_cases[] = {
    {"bad magic", "RCPY", 1, 1, "{\"type\":\"request\",\"id\":\"1\",\"op\":\"PING\"}", 0, 0, NULL},
    {"magic rcpx lower", "rcpx", 1, 1, "{\"type\":\"request\",\"id\":\"1\",\"op\":\"PING\"}", 0, 0,
     NULL},
    {"version 0", "RCPX", 0, 1, "{\"type\":\"request\",\"id\":\"1\",\"op\":\"PING\"}", 0, 0, NULL},
    {"version 2", "RCPX", 2, 1, "{\"type\":\"request\",\"id\":\"1\",\"op\":\"PING\"}", 0, 0, NULL},
    {"reserved flag 0x0010", "RCPX", 1, 0x0011,
     "{\"type\":\"request\",\"id\":\"1\",\"op\":\"PING\"}", 0, 0, NULL},
    {"reserved flag 0x8000", "RCPX", 1, 0x8001,
     "{\"type\":\"request\",\"id\":\"1\",\"op\":\"PING\"}", 0, 0, NULL},
    {"payload_len 16 MiB + 1", "RCPX", 1, 1, "", 0, RSTMDB_FRAME_MAX_PAYLOAD + 1, NULL},
    {"payload_len 0xFFFFFFFF", "RCPX", 1, 1, "", 0, 0xFFFFFFFFu, NULL},
    {"crc mismatch", "RCPX", 1, 1, "{\"type\":\"request\",\"id\":\"1\",\"op\":\"PING\"}", 1, 0,
     NULL},
    {"non-UTF-8 payload", "RCPX", 1, 1,
     "{\"type\":\"request\",\"id\":\"\xff\xfe\",\"op\":\"PING\"}", 0, 0, NULL},
    {"overlong UTF-8", "RCPX", 1, 1, "{\"type\":\"request\",\"id\":\"\xc0\xaf\",\"op\":\"PING\"}",
     0, 0, NULL},
    {"invalid JSON", "RCPX", 1, 1, "{\"type\":\"request\",\"id\":\"1\",", 0, 0, NULL},
    {"empty payload", "RCPX", 1, 1, "", 0, 0, NULL},
    {"trailing garbage after JSON", "RCPX", 1, 1,
     "{\"type\":\"request\",\"id\":\"1\",\"op\":\"PING\"}x", 0, 0, NULL},
    {"scalar number", "RCPX", 1, 1, "42", 0, 0, NULL},
    {"scalar string", "RCPX", 1, 1, "\"PING\"", 0, 0, NULL},
    {"scalar null", "RCPX", 1, 1, "null", 0, 0, NULL},
    {"duplicate id key", "RCPX", 1, 1,
     "{\"type\":\"request\",\"id\":\"1\",\"id\":\"2\",\"op\":\"PING\"}", 0, 0, NULL},
    {"duplicate op key", "RCPX", 1, 1,
     "{\"type\":\"request\",\"id\":\"1\",\"op\":\"PING\",\"op\":\"PING\"}", 0, 0, NULL},
    {"unknown op", "RCPX", 1, 1, "{\"type\":\"request\",\"id\":\"1\",\"op\":\"BOGUS\"}", 0, 0,
     NULL},
    {"unknown op FLUSH_ALL", "RCPX", 1, 1,
     "{\"type\":\"request\",\"id\":\"1\",\"op\":\"FLUSH_ALL\",\"params\":{}}", 0, 0, NULL},
    {"lower-case op", "RCPX", 1, 1, "{\"type\":\"request\",\"id\":\"1\",\"op\":\"ping\"}", 0, 0,
     NULL},
    {"op not a string", "RCPX", 1, 1, "{\"type\":\"request\",\"id\":\"1\",\"op\":1}", 0, 0, NULL},
    {"missing op", "RCPX", 1, 1, "{\"type\":\"request\",\"id\":\"1\"}", 0, 0, NULL},
    {"numeric id", "RCPX", 1, 1, "{\"type\":\"request\",\"id\":5,\"op\":\"PING\"}", 0, 0, NULL},
    {"null id", "RCPX", 1, 1, "{\"type\":\"request\",\"id\":null,\"op\":\"PING\"}", 0, 0, NULL},
    {"missing id", "RCPX", 1, 1, "{\"type\":\"request\",\"op\":\"PING\"}", 0, 0, NULL},
    {"missing type", "RCPX", 1, 1, "{\"id\":\"1\",\"op\":\"PING\"}", 0, 0, NULL},
    {"type not a string", "RCPX", 1, 1, "{\"type\":1,\"id\":\"1\",\"op\":\"PING\"}", 0, 0, NULL},
    {"JSONL line inbound", NULL, 0, 0, NULL, 0, 0,
     "{\"type\":\"request\",\"id\":\"1\",\"op\":\"PING\"}\n"},
    {"16-byte RCP1 header of the docs", NULL, 0, 0, NULL, 0, 0,
     "RCP1\x00\x01\x00\x00\x00\x27\x00\x00\x00\x00\x00\x00"
     "{\"type\":\"request\",\"id\":\"1\",\"op\":\"PING\"}"},
};

START_TEST(silent_close_cases)
{
    const bad_case *bc = &bad_cases[_i];
    if (cf_v03() && strcmp(bc->name, "unknown op FLUSH_ALL") == 0)
        return; /* a known op from 0.2 on (test_batch checks its answer) */
    cf_conn *k = CF_OPEN_RAW();
    uint8_t buf[512];
    size_t n;
    if (bc->raw != NULL) {
        n = strlen(bc->raw);
        if (bc->raw[0] == 'R')
            n = 16 + 39; /* the RCP1 case holds NUL bytes */
        memcpy(buf, bc->raw, n);
    } else if (bc->plen_override != 0) {
        n = rcpx_frame_build(buf, sizeof buf, bc->magic, bc->version, bc->flags, 0, "", 0, false,
                             0);
        buf[10] = (uint8_t)(bc->plen_override >> 24);
        buf[11] = (uint8_t)(bc->plen_override >> 16);
        buf[12] = (uint8_t)(bc->plen_override >> 8);
        buf[13] = (uint8_t)bc->plen_override;
    } else {
        uint32_t plen = (uint32_t)strlen(bc->payload);
        uint32_t crc = rstmdb_crc32c(bc->payload, plen);
        if (bc->crc_mode == 1)
            crc ^= 0x00000100u;
        n = rcpx_frame_build(buf, sizeof buf, bc->magic, bc->version, bc->flags, 0, bc->payload,
                             plen, false, crc);
    }
    ck_assert_uint_gt(n, 0);
    /* A valid PING right behind: "requests that follow a bad frame in the same
     * TCP read are never answered". Not for the length cases, where it would
     * only be counted as payload. */
    if (bc->plen_override == 0)
        n += rcpx_frame_build(buf + n, sizeof buf - n, "RCPX", 1, 1, 0, PING1, 39, true, 0);
    ck_assert_int_eq(rcpx_send_raw(k->rc, buf, n), 0);
    size_t extra = 0;
    bool closed = rcpx_silent_close(k->rc, CF_CLOSE_TIMEOUT_MS, &extra);
    ck_assert_msg(closed, "case '%s': expected a silent close: %s", bc->name, rcpx_errstr(k->rc));
    cf_close(k);
    assert_server_alive();
}
END_TEST

/* After good traffic, a bad frame still closes without a byte. */
START_TEST(silent_close_after_good_traffic)
{
    cf_conn *k = CF_OPEN_RAW();
    CF_OK(k, "PING", NULL, "{\"pong\":true}");
    uint8_t buf[128];
    size_t n = rcpx_frame_build(buf, sizeof buf, "RCPX", 1, 1, 0,
                                "{\"type\":\"request\",\"id\":\"2\",\"op\":\"NOPE\"}", 40, true, 0);
    ck_assert_int_eq(rcpx_send_raw(k->rc, buf, n), 0);
    ck_assert_msg(rcpx_silent_close(k->rc, CF_CLOSE_TIMEOUT_MS, NULL), "%s", rcpx_errstr(k->rc));
    cf_close(k);
}
END_TEST

/* ---- accepted inputs ---- */

static void send_frame(cf_conn *k, uint16_t flags, uint16_t hlen, const char *payload, bool crc_ok)
{
    uint8_t buf[2048];
    uint32_t plen = (uint32_t)strlen(payload);
    size_t n = rcpx_frame_build(buf, sizeof buf, "RCPX", 1, flags, hlen, payload, plen, crc_ok,
                                0xDEADBEEFu);
    ck_assert_uint_gt(n, 0);
    ck_assert_int_eq(rcpx_send_raw(k->rc, buf, n), 0);
}

START_TEST(crc_flag_clear_accepted)
{
    cf_conn *k = CF_OPEN_RAW();
    send_frame(k, 0x0000, 0, PING1, false); /* CRC field 0xDEADBEEF, flag clear */
    read_expect(k, PONG1);
    cf_close(k);
}
END_TEST

START_TEST(compressed_stream_flags_ignored)
{
    cf_conn *k = CF_OPEN_RAW();
    send_frame(k, 0x000F, 0, PING1, true);
    read_expect(k, PONG1);
    send_frame(k, 0x0002, 0, PING1, false); /* COMPRESSED without CRC: plain JSON anyway */
    read_expect(k, PONG1);
    cf_close(k);
}
END_TEST

START_TEST(header_extension_skipped)
{
    cf_conn *k = CF_OPEN_RAW();
    send_frame(k, 0x0001, 7, PING1, true);
    read_expect(k, PONG1);
    send_frame(k, 0x0001, 300, PING1, true);
    read_expect(k, PONG1);
    cf_close(k);
}
END_TEST

START_TEST(array_envelope_accepted)
{
    cf_conn *k = CF_OPEN_RAW();
    send_frame(k, 1, 0, "[\"request\",\"a1\",\"PING\"]", true);
    read_expect(
        k, "{\"type\":\"response\",\"id\":\"a1\",\"status\":\"ok\",\"result\":{\"pong\":true}}");
    send_frame(k, 1, 0, "[\"request\",\"a2\",\"HELLO\",{\"protocol_version\":2}]", true);
    read_expect(k,
                "{\"type\":\"response\",\"id\":\"a2\",\"status\":\"error\",\"error\":{\"code\":"
                "\"BAD_REQUEST\",\"message\":\"invalid request: unsupported protocol version: 2\","
                "\"retryable\":false}}");
    cf_close(k);
}
END_TEST

START_TEST(type_value_and_unknown_keys_ignored)
{
    cf_conn *k = CF_OPEN_RAW();
    send_frame(k, 1, 0, "{\"type\":\"foo\",\"id\":\"t1\",\"op\":\"PING\"}", true);
    read_expect(
        k, "{\"type\":\"response\",\"id\":\"t1\",\"status\":\"ok\",\"result\":{\"pong\":true}}");
    send_frame(k, 1, 0, "{\"type\":\"response\",\"id\":\"t2\",\"op\":\"PING\"}", true);
    read_expect(
        k, "{\"type\":\"response\",\"id\":\"t2\",\"status\":\"ok\",\"result\":{\"pong\":true}}");
    send_frame(k, 1, 0,
               "{\"op\":\"PING\",\"extra\":{\"a\":[1,{\"b\":null}]},\"meta\":7,\"id\":\"t3\","
               "\"type\":\"request\",\"zz\":\"y\"}",
               true);
    read_expect(
        k, "{\"type\":\"response\",\"id\":\"t3\",\"status\":\"ok\",\"result\":{\"pong\":true}}");
    cf_close(k);
}
END_TEST

START_TEST(ids_echoed_verbatim)
{
    cf_conn *k = CF_OPEN_RAW();
    send_frame(k, 1, 0, "{\"type\":\"request\",\"id\":\"\",\"op\":\"PING\"}", true);
    read_expect(k,
                "{\"type\":\"response\",\"id\":\"\",\"status\":\"ok\",\"result\":{\"pong\":true}}");
    send_frame(k, 1, 0, "{\"type\":\"request\",\"id\":\"h\xc3\xa9/\\\"q\",\"op\":\"PING\"}", true);
    read_expect(k, "{\"type\":\"response\",\"id\":\"h\xc3\xa9/"
                   "\\\"q\",\"status\":\"ok\",\"result\":{\"pong\":true}}");
    /* No length limit (DOCS say 256). */
    char id[1001];
    memset(id, 'x', 1000);
    id[1000] = '\0';
    send_frame(k, 1, 0, cf_fmt("{\"type\":\"request\",\"id\":\"%s\",\"op\":\"PING\"}", id), true);
    read_expect(
        k,
        cf_fmt("{\"type\":\"response\",\"id\":\"%s\",\"status\":\"ok\",\"result\":{\"pong\":true}}",
               id));
    cf_close(k);
}
END_TEST

START_TEST(pipelined_in_one_write_answered_in_order)
{
    cf_conn *k = CF_OPEN_RAW();
    static const char *reqs[] = {
        "{\"type\":\"request\",\"id\":\"p1\",\"op\":\"PING\"}",
        "{\"type\":\"request\",\"id\":\"p2\",\"op\":\"HELLO\"}",
        "{\"type\":\"request\",\"id\":\"p3\",\"op\":\"PING\",\"params\":[1]}",
        "{\"type\":\"request\",\"id\":\"p2\",\"op\":\"PING\"}",
        "{\"type\":\"request\",\"id\":\"p5\",\"op\":\"HELLO\",\"params\":{\"protocol_version\":1}}",
    };
    uint8_t buf[1024];
    size_t n = 0;
    for (size_t i = 0; i < 5; i++)
        n += rcpx_frame_build(buf + n, sizeof buf - n, "RCPX", 1, 1, 0, reqs[i],
                              (uint32_t)strlen(reqs[i]), true, 0);
    ck_assert_int_eq(rcpx_send_raw(k->rc, buf, n), 0);
    read_expect(
        k, "{\"type\":\"response\",\"id\":\"p1\",\"status\":\"ok\",\"result\":{\"pong\":true}}");
    read_expect(k, "{\"type\":\"response\",\"id\":\"p2\",\"status\":\"error\",\"error\":{\"code\":"
                   "\"BAD_REQUEST\",\"message\":\"invalid request: invalid type: null, expected "
                   "struct HelloParams\",\"retryable\":false}}");
    read_expect(
        k, "{\"type\":\"response\",\"id\":\"p3\",\"status\":\"ok\",\"result\":{\"pong\":true}}");
    read_expect(
        k, "{\"type\":\"response\",\"id\":\"p2\",\"status\":\"ok\",\"result\":{\"pong\":true}}");
    read_expect(k, cf_fmt("{\"type\":\"response\",\"id\":\"p5\",\"status\":\"ok\",\"result\":{"
                          "\"features\":[],\"protocol_version\":1,\"server_name\":\"rstmdb\","
                          "\"server_version\":\"%s\",\"wire_mode\":\"binary_json\"}}",
                          cf_server_version()));
    cf_close(k);
}
END_TEST

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

START_TEST(frame_split_across_writes)
{
    cf_conn *k = CF_OPEN_RAW();
    uint8_t buf[128];
    size_t n = rcpx_frame_build(buf, sizeof buf, "RCPX", 1, 1, 0, PING1, 39, true, 0);
    /* One byte per write: the header itself arrives in pieces. */
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(rcpx_send_raw(k->rc, buf + i, 1), 0);
        pause_ms(1);
    }
    read_expect(k, PONG1);
    /* Header, then payload later; then two frames with the boundary mid-header. */
    ck_assert_int_eq(rcpx_send_raw(k->rc, buf, 18), 0);
    pause_ms(30);
    ck_assert_int_eq(rcpx_send_raw(k->rc, buf + 18, n - 18), 0);
    read_expect(k, PONG1);
    uint8_t two[256];
    memcpy(two, buf, n);
    memcpy(two + n, buf, n);
    ck_assert_int_eq(rcpx_send_raw(k->rc, two, n + 5), 0);
    pause_ms(30);
    ck_assert_int_eq(rcpx_send_raw(k->rc, two + n + 5, n - 5), 0);
    read_expect(k, PONG1);
    read_expect(k, PONG1);
    cf_close(k);
}
END_TEST

/* Exactly 16 MiB is allowed (§1.2). The payload is a PING padded by an
 * ignored top-level key. */
START_TEST(payload_exactly_16mib_accepted)
{
    cf_conn *k = CF_OPEN_RAW();
    size_t plen = RSTMDB_FRAME_MAX_PAYLOAD;
    char *p = malloc(plen + 1);
    ck_assert_ptr_nonnull(p);
    const char *head = "{\"type\":\"request\",\"id\":\"big\",\"op\":\"PING\",\"pad\":\"";
    size_t hl = strlen(head);
    memcpy(p, head, hl);
    memset(p + hl, 'a', plen - hl - 2);
    memcpy(p + plen - 2, "\"}", 2);
    p[plen] = '\0';
    uint8_t hdr[18];
    ck_assert_int_eq(rstmdb_frame_header(hdr, 1, p, plen), 0);
    ck_assert_int_eq(rcpx_send_raw(k->rc, hdr, 18), 0);
    ck_assert_int_eq(rcpx_send_raw(k->rc, p, plen), 0);
    free(p);
    rcpx_msg m;
    ck_assert_msg(rcpx_read(k->rc, 30000, &m) == RCPX_OK, "no response: %s", rcpx_errstr(k->rc));
    ck_assert_str_eq(
        m.text,
        "{\"type\":\"response\",\"id\":\"big\",\"status\":\"ok\",\"result\":{\"pong\":true}}");
    rcpx_msg_clear(&m);
    cf_close(k);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conformance_framing");
    TCase *tc = cf_tcase("framing");
    tcase_add_unchecked_fixture(tc, setup, cf_teardown);
    tcase_add_test(tc, worked_ping_frame_bytes);
    tcase_add_loop_test(tc, silent_close_cases, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(tc, silent_close_after_good_traffic);
    tcase_add_test(tc, crc_flag_clear_accepted);
    tcase_add_test(tc, compressed_stream_flags_ignored);
    tcase_add_test(tc, header_extension_skipped);
    tcase_add_test(tc, array_envelope_accepted);
    tcase_add_test(tc, type_value_and_unknown_keys_ignored);
    tcase_add_test(tc, ids_echoed_verbatim);
    tcase_add_test(tc, pipelined_in_one_write_answered_in_order);
    tcase_add_test(tc, frame_split_across_writes);
    tcase_add_test(tc, payload_exactly_16mib_accepted);
    suite_add_tcase(s, tc);
    return cf_run(s);
}
