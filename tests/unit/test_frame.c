/* test_frame.c: the RCPX encoder and incremental decoder (rstmdb/frame.h):
 * round trips, every malformed header, CRC handling, the payload cap, header
 * extensions, arbitrary chunking, and the poisoned state. No I/O. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rstmdb/error.h"
#include "rstmdb/frame.h"

static const char ping_req[] = "{\"type\":\"request\",\"id\":\"1\",\"op\":\"PING\"}";
static const char ping_resp[] =
    "{\"type\":\"response\",\"id\":\"1\",\"status\":\"ok\",\"result\":{\"pong\":true}}";

/* A raw frame with every header field chosen by the test, so that malformed
 * ones can be built too. Returns its total length; out must be big enough. */
static size_t raw_frame(uint8_t *out, const char magic[4], uint16_t version, uint16_t flags,
                        uint16_t hlen, uint32_t plen_field, uint32_t crc, const void *payload,
                        size_t plen)
{
    memcpy(out, magic, 4);
    out[4] = (uint8_t)(version >> 8);
    out[5] = (uint8_t)version;
    out[6] = (uint8_t)(flags >> 8);
    out[7] = (uint8_t)flags;
    out[8] = (uint8_t)(hlen >> 8);
    out[9] = (uint8_t)hlen;
    out[10] = (uint8_t)(plen_field >> 24);
    out[11] = (uint8_t)(plen_field >> 16);
    out[12] = (uint8_t)(plen_field >> 8);
    out[13] = (uint8_t)plen_field;
    out[14] = (uint8_t)(crc >> 24);
    out[15] = (uint8_t)(crc >> 16);
    out[16] = (uint8_t)(crc >> 8);
    out[17] = (uint8_t)crc;
    for (size_t i = 0; i < hlen; i++)
        out[18 + i] = (uint8_t)(0xA0 + i); /* extension junk that must be skipped */
    if (plen > 0)
        memcpy(out + 18 + hlen, payload, plen);
    return 18 + hlen + plen;
}

/* Encode a payload with rstmdb_frame_header; returns the total length. */
static size_t encode(uint8_t *out, uint16_t flags, const char *payload)
{
    size_t n = strlen(payload);
    ck_assert_int_eq(rstmdb_frame_header(out, flags, payload, n), RSTMDB_OK);
    memcpy(out + RSTMDB_FRAME_HEADER_LEN, payload, n);
    return RSTMDB_FRAME_HEADER_LEN + n;
}

static rstmdb_frame_decoder *new_decoder(size_t max)
{
    rstmdb_frame_decoder *d = NULL;
    ck_assert_int_eq(rstmdb_frame_decoder_new(&d, max), RSTMDB_OK);
    ck_assert_ptr_nonnull(d);
    return d;
}

/* Feed a whole buffer expecting exactly one frame using all of it. */
static void expect_one(rstmdb_frame_decoder *d, const uint8_t *buf, size_t len, uint16_t flags,
                       const void *payload, size_t plen)
{
    rstmdb_frame f;
    size_t used = 12345;
    ck_assert_int_eq(rstmdb_frame_decoder_feed(d, buf, len, &used, &f), 1);
    ck_assert_uint_eq(used, len);
    ck_assert_uint_eq(f.flags, flags);
    ck_assert_uint_eq(f.payload_len, plen);
    ck_assert_ptr_nonnull(f.payload);
    ck_assert_mem_eq(f.payload, payload, plen);
}

static int feed_all(rstmdb_frame_decoder *d, const uint8_t *buf, size_t len)
{
    rstmdb_frame f;
    size_t used;
    return rstmdb_frame_decoder_feed(d, buf, len, &used, &f);
}

/* PROTOCOL.md §1.4, byte for byte. */
START_TEST(test_worked_example)
{
    static const uint8_t req_hdr[18] = {0x52, 0x43, 0x50, 0x58, 0x00, 0x01, 0x00, 0x01, 0x00,
                                        0x00, 0x00, 0x00, 0x00, 0x27, 0x15, 0xf1, 0x93, 0xb1};
    static const uint8_t resp_hdr[18] = {0x52, 0x43, 0x50, 0x58, 0x00, 0x01, 0x00, 0x01, 0x00,
                                         0x00, 0x00, 0x00, 0x00, 0x41, 0x4b, 0x7b, 0x43, 0x2f};
    uint8_t hdr[18];
    uint8_t buf[128];
    rstmdb_frame_decoder *d = new_decoder(0);

    ck_assert_int_eq(rstmdb_frame_header(hdr, RSTMDB_FLAG_CRC_PRESENT, ping_req, 39), RSTMDB_OK);
    ck_assert_mem_eq(hdr, req_hdr, 18);
    ck_assert_int_eq(rstmdb_frame_header(hdr, RSTMDB_FLAG_CRC_PRESENT, ping_resp, 65), RSTMDB_OK);
    ck_assert_mem_eq(hdr, resp_hdr, 18);

    /* decode the server's response bytes as captured */
    memcpy(buf, resp_hdr, 18);
    memcpy(buf + 18, ping_resp, 65);
    expect_one(d, buf, 83, RSTMDB_FLAG_CRC_PRESENT, ping_resp, 65);
    rstmdb_frame_decoder_free(d);
}
END_TEST

START_TEST(test_round_trip_flags)
{
    static const uint16_t flag_sets[] = {0, RSTMDB_FLAG_CRC_PRESENT, RSTMDB_FLAG_COMPRESSED,
                                         RSTMDB_FLAG_STREAM | RSTMDB_FLAG_END_STREAM, 0x000F};
    uint8_t buf[256];
    rstmdb_frame_decoder *d = new_decoder(0);

    for (size_t i = 0; i < sizeof flag_sets / sizeof flag_sets[0]; i++) {
        size_t n = encode(buf, flag_sets[i], ping_req);
        expect_one(d, buf, n, flag_sets[i], ping_req, strlen(ping_req));
        if (!(flag_sets[i] & RSTMDB_FLAG_CRC_PRESENT)) {
            /* the encoder leaves the CRC field zero when not flagged */
            ck_assert_uint_eq(buf[14] | buf[15] | buf[16] | buf[17], 0);
        }
    }
    rstmdb_frame_decoder_free(d);
}
END_TEST

START_TEST(test_zero_copy_and_empty_payload)
{
    uint8_t buf[64];
    rstmdb_frame f;
    size_t used;
    rstmdb_frame_decoder *d = new_decoder(0);
    size_t n = encode(buf, RSTMDB_FLAG_CRC_PRESENT, ping_req);

    ck_assert_int_eq(rstmdb_frame_decoder_feed(d, buf, n, &used, &f), 1);
    ck_assert_ptr_eq(f.payload, buf + 18); /* whole frame in input: no copy */

    /* a zero-length payload is a frame too (CRC of "" is 0) */
    ck_assert_int_eq(rstmdb_frame_header(buf, RSTMDB_FLAG_CRC_PRESENT, NULL, 0), RSTMDB_OK);
    ck_assert_int_eq(rstmdb_frame_decoder_feed(d, buf, 18, &used, &f), 1);
    ck_assert_uint_eq(used, 18);
    ck_assert_uint_eq(f.payload_len, 0);
    ck_assert_ptr_nonnull(f.payload);
    rstmdb_frame_decoder_free(d);
}
END_TEST

START_TEST(test_encoder_rejects)
{
    uint8_t hdr[18];
    memset(hdr, 0x55, sizeof hdr);
    ck_assert_int_eq(rstmdb_frame_header(hdr, 0x0010, "{}", 2), RSTMDB_ERR_FRAME_FLAGS);
    ck_assert_int_eq(rstmdb_frame_header(hdr, 0x8001, "{}", 2), RSTMDB_ERR_FRAME_FLAGS);
    /* the length check needs no real buffer: it fails before reading */
    ck_assert_int_eq(rstmdb_frame_header(hdr, 0, "{}", RSTMDB_FRAME_MAX_PAYLOAD + 1u),
                     RSTMDB_ERR_FRAME_TOO_LARGE);
    ck_assert_int_eq(rstmdb_frame_header(hdr, 0, NULL, 5), RSTMDB_ERR_INVALID);
}
END_TEST

/* Each malformed header field on its own gives its own code. */
START_TEST(test_malformed_headers)
{
    uint8_t buf[128];
    const uint32_t crc = rstmdb_crc32c(ping_req, 39);
    struct {
        const char *magic;
        uint16_t version, flags;
        uint32_t plen;
        int want;
    } cases[] = {
        {"RCP1", 1, 1, 39, RSTMDB_ERR_FRAME_MAGIC},
        {"rcpx", 1, 1, 39, RSTMDB_ERR_FRAME_MAGIC},
        {"XPCR", 1, 1, 39, RSTMDB_ERR_FRAME_MAGIC},
        {"RCPX", 0, 1, 39, RSTMDB_ERR_FRAME_VERSION},
        {"RCPX", 2, 1, 39, RSTMDB_ERR_FRAME_VERSION},
        {"RCPX", 0x0100, 1, 39, RSTMDB_ERR_FRAME_VERSION}, /* 1 little-endian */
        {"RCPX", 1, 0x0010, 39, RSTMDB_ERR_FRAME_FLAGS},
        {"RCPX", 1, 0x8001, 39, RSTMDB_ERR_FRAME_FLAGS},
        {"RCPX", 1, 0xFFFF, 39, RSTMDB_ERR_FRAME_FLAGS},
        {"RCPX", 1, 1, RSTMDB_FRAME_MAX_PAYLOAD + 1u, RSTMDB_ERR_FRAME_TOO_LARGE},
        {"RCPX", 1, 1, 0xFFFFFFFFu, RSTMDB_ERR_FRAME_TOO_LARGE},
        /* several faults: the server's order decides (magic, version, flags, len) */
        {"RCPY", 7, 0xFFFF, 0xFFFFFFFFu, RSTMDB_ERR_FRAME_MAGIC},
        {"RCPX", 7, 0xFFFF, 0xFFFFFFFFu, RSTMDB_ERR_FRAME_VERSION},
        {"RCPX", 1, 0xFFFF, 0xFFFFFFFFu, RSTMDB_ERR_FRAME_FLAGS},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rstmdb_frame_decoder *d = new_decoder(0);
        rstmdb_frame f;
        size_t used = 999;
        size_t n = raw_frame(buf, cases[i].magic, cases[i].version, cases[i].flags, 0,
                             cases[i].plen, crc, ping_req, 39);
        int rc = rstmdb_frame_decoder_feed(d, buf, n, &used, &f);
        ck_assert_msg(rc == cases[i].want, "case %zu: got %d want %d", i, rc, cases[i].want);
        ck_assert_uint_eq(used, 18); /* the header was consumed, nothing after it */
        ck_assert_str_ne(rstmdb_strerror(rc), rstmdb_strerror(RSTMDB_OK));
        rstmdb_frame_decoder_free(d);
    }
}
END_TEST

/* The header verdict comes as soon as 18 bytes are in, before the payload. */
START_TEST(test_header_checked_before_payload)
{
    uint8_t buf[18];
    rstmdb_frame f;
    size_t used;
    rstmdb_frame_decoder *d = new_decoder(0);

    raw_frame(buf, "RCPX", 1, 0, 0, RSTMDB_FRAME_MAX_PAYLOAD + 1u, 0, NULL, 0);
    for (size_t i = 0; i < 17; i++) {
        ck_assert_int_eq(rstmdb_frame_decoder_feed(d, buf + i, 1, &used, &f), 0);
        ck_assert_uint_eq(used, 1);
    }
    ck_assert_int_eq(rstmdb_frame_decoder_feed(d, buf + 17, 1, &used, &f),
                     RSTMDB_ERR_FRAME_TOO_LARGE);
    rstmdb_frame_decoder_free(d);
}
END_TEST

START_TEST(test_crc_mismatch_and_clear_flag)
{
    uint8_t buf[128];
    size_t n;
    rstmdb_frame_decoder *d = new_decoder(0);

    /* flipped payload byte under a valid CRC */
    n = encode(buf, RSTMDB_FLAG_CRC_PRESENT, ping_req);
    buf[20] ^= 0x01;
    ck_assert_int_eq(feed_all(d, buf, n), RSTMDB_ERR_FRAME_CRC);
    rstmdb_frame_decoder_free(d);

    /* wrong CRC field */
    d = new_decoder(0);
    n = raw_frame(buf, "RCPX", 1, RSTMDB_FLAG_CRC_PRESENT, 0, 39, 0x15F193B0u, ping_req, 39);
    ck_assert_int_eq(feed_all(d, buf, n), RSTMDB_ERR_FRAME_CRC);
    rstmdb_frame_decoder_free(d);

    /* CRC flag clear: the CRC field is arbitrary and ignored */
    d = new_decoder(0);
    n = raw_frame(buf, "RCPX", 1, RSTMDB_FLAG_COMPRESSED, 0, 39, 0xDEADBEEFu, ping_req, 39);
    expect_one(d, buf, n, RSTMDB_FLAG_COMPRESSED, ping_req, 39);
    rstmdb_frame_decoder_free(d);
}
END_TEST

/* The CRC is also checked when the payload arrived in pieces. */
START_TEST(test_crc_mismatch_chunked)
{
    uint8_t buf[128];
    rstmdb_frame f;
    size_t used;
    int rc = 0;
    rstmdb_frame_decoder *d = new_decoder(0);
    size_t n = encode(buf, RSTMDB_FLAG_CRC_PRESENT, ping_resp);

    buf[n - 1] ^= 0x40;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = rstmdb_frame_decoder_feed(d, buf + i, 1, &used, &f);
    ck_assert_int_eq(rc, RSTMDB_ERR_FRAME_CRC);
    rstmdb_frame_decoder_free(d);
}
END_TEST

/* 16 MiB exactly is allowed, one more byte is not; a lower cap is honoured. */
START_TEST(test_payload_cap)
{
    const size_t max = RSTMDB_FRAME_MAX_PAYLOAD;
    uint8_t *buf = malloc(18 + max);
    rstmdb_frame_decoder *d;
    rstmdb_frame f;
    size_t used;

    ck_assert_ptr_nonnull(buf);
    memset(buf + 18, 'x', max);
    ck_assert_int_eq(rstmdb_frame_header(buf, RSTMDB_FLAG_CRC_PRESENT, buf + 18, max), RSTMDB_OK);

    /* whole, zero-copy */
    d = new_decoder(0);
    ck_assert_int_eq(rstmdb_frame_decoder_feed(d, buf, 18 + max, &used, &f), 1);
    ck_assert_uint_eq(f.payload_len, max);
    rstmdb_frame_decoder_free(d);

    /* in two pieces, buffered */
    d = new_decoder(max * 4); /* above the hard cap: clamped to it */
    ck_assert_int_eq(rstmdb_frame_decoder_feed(d, buf, 1000, &used, &f), 0);
    ck_assert_int_eq(rstmdb_frame_decoder_feed(d, buf + 1000, 18 + max - 1000, &used, &f), 1);
    ck_assert_uint_eq(used, 18 + max - 1000);
    ck_assert_uint_eq(f.payload_len, max);
    ck_assert_ptr_ne(f.payload, buf + 18);
    ck_assert_int_eq(f.payload[max - 1], 'x');
    rstmdb_frame_decoder_free(d);

    /* one more byte: rejected from the header alone */
    raw_frame(buf, "RCPX", 1, 0, 0, (uint32_t)max + 1, 0, NULL, 0);
    d = new_decoder(0);
    ck_assert_int_eq(feed_all(d, buf, 18), RSTMDB_ERR_FRAME_TOO_LARGE);
    rstmdb_frame_decoder_free(d);
    d = new_decoder(max + 1); /* clamped */
    ck_assert_int_eq(feed_all(d, buf, 18), RSTMDB_ERR_FRAME_TOO_LARGE);
    rstmdb_frame_decoder_free(d);

    /* a configured lower cap */
    d = new_decoder(39);
    {
        uint8_t small[128];
        size_t n = encode(small, RSTMDB_FLAG_CRC_PRESENT, ping_req); /* 39 bytes: fits */
        expect_one(d, small, n, RSTMDB_FLAG_CRC_PRESENT, ping_req, 39);
        n = encode(small, RSTMDB_FLAG_CRC_PRESENT, ping_resp); /* 65 bytes: too large */
        ck_assert_int_eq(feed_all(d, small, n), RSTMDB_ERR_FRAME_TOO_LARGE);
    }
    rstmdb_frame_decoder_free(d);
    free(buf);
}
END_TEST

START_TEST(test_header_extension_skipped)
{
    uint8_t buf[512];
    const uint32_t crc = rstmdb_crc32c(ping_req, 39);
    static const uint16_t hlens[] = {1, 7, 18, 300};

    for (size_t i = 0; i < sizeof hlens / sizeof hlens[0]; i++) {
        rstmdb_frame_decoder *d = new_decoder(0);
        size_t n =
            raw_frame(buf, "RCPX", 1, RSTMDB_FLAG_CRC_PRESENT, hlens[i], 39, crc, ping_req, 39);
        expect_one(d, buf, n, RSTMDB_FLAG_CRC_PRESENT, ping_req, 39);
        rstmdb_frame_decoder_free(d);

        /* and byte by byte */
        d = new_decoder(0);
        for (size_t k = 0; k + 1 < n; k++) {
            rstmdb_frame f;
            size_t used;
            ck_assert_int_eq(rstmdb_frame_decoder_feed(d, buf + k, 1, &used, &f), 0);
        }
        expect_one(d, buf + n - 1, 1, RSTMDB_FLAG_CRC_PRESENT, ping_req, 39);
        rstmdb_frame_decoder_free(d);
    }
}
END_TEST

/* A frame (with an extension) split in two at every byte boundary, and fed
 * one byte at a time; then three frames split at every boundary. */
START_TEST(test_split_everywhere)
{
    uint8_t buf[256];
    const uint32_t crc = rstmdb_crc32c(ping_resp, 65);
    size_t n = raw_frame(buf, "RCPX", 1, RSTMDB_FLAG_CRC_PRESENT, 3, 65, crc, ping_resp, 65);

    for (size_t cut = 0; cut <= n; cut++) {
        rstmdb_frame_decoder *d = new_decoder(0);
        rstmdb_frame f;
        size_t used;
        int rc = rstmdb_frame_decoder_feed(d, buf, cut, &used, &f);
        if (cut < n) {
            ck_assert_int_eq(rc, 0);
            ck_assert_uint_eq(used, cut);
            expect_one(d, buf + cut, n - cut, RSTMDB_FLAG_CRC_PRESENT, ping_resp, 65);
        } else {
            ck_assert_int_eq(rc, 1);
            ck_assert_uint_eq(used, n);
        }
        rstmdb_frame_decoder_free(d);
    }
}
END_TEST

START_TEST(test_several_frames_one_buffer)
{
    uint8_t buf[512];
    const char *payloads[] = {ping_req, ping_resp, "{}", ping_req};
    size_t n = 0;
    size_t pos = 0;
    rstmdb_frame_decoder *d = new_decoder(0);

    for (size_t i = 0; i < 4; i++)
        n += encode(buf + n, i == 2 ? 0 : RSTMDB_FLAG_CRC_PRESENT, payloads[i]);

    /* whole buffer: one frame per call, consumed says where the next starts */
    for (size_t i = 0; i < 4; i++) {
        rstmdb_frame f;
        size_t used;
        ck_assert_int_eq(rstmdb_frame_decoder_feed(d, buf + pos, n - pos, &used, &f), 1);
        ck_assert_uint_eq(used, 18 + strlen(payloads[i]));
        ck_assert_uint_eq(f.payload_len, strlen(payloads[i]));
        ck_assert_mem_eq(f.payload, payloads[i], f.payload_len);
        pos += used;
    }
    ck_assert_uint_eq(pos, n);
    {
        rstmdb_frame f;
        size_t used = 7;
        ck_assert_int_eq(rstmdb_frame_decoder_feed(d, buf + pos, 0, &used, &f), 0);
        ck_assert_uint_eq(used, 0);
    }

    /* the same stream cut in two at every boundary, drained with a loop as a
     * network reader would */
    for (size_t cut = 0; cut <= n; cut++) {
        rstmdb_frame_decoder *d2 = new_decoder(0);
        size_t got = 0;
        size_t parts[2][2] = {{0, cut}, {cut, n}};
        for (int part = 0; part < 2; part++) {
            size_t at = parts[part][0];
            const size_t end = parts[part][1];
            for (;;) {
                rstmdb_frame f;
                size_t used;
                int rc = rstmdb_frame_decoder_feed(d2, buf + at, end - at, &used, &f);
                ck_assert_int_ge(rc, 0);
                at += used;
                if (rc == 0)
                    break;
                ck_assert_uint_lt(got, 4);
                ck_assert_uint_eq(f.payload_len, strlen(payloads[got]));
                ck_assert_mem_eq(f.payload, payloads[got], f.payload_len);
                got++;
            }
            ck_assert_uint_eq(at, end);
        }
        ck_assert_uint_eq(got, 4);
        rstmdb_frame_decoder_free(d2);
    }
    rstmdb_frame_decoder_free(d);
}
END_TEST

START_TEST(test_poisoned_after_error)
{
    uint8_t bad[64];
    uint8_t good[128];
    rstmdb_frame f;
    size_t used;
    rstmdb_frame_decoder *d = new_decoder(0);
    size_t gn = encode(good, RSTMDB_FLAG_CRC_PRESENT, ping_req);

    raw_frame(bad, "RCPX", 3, 0, 0, 0, 0, NULL, 0);
    ck_assert_int_eq(feed_all(d, bad, 18), RSTMDB_ERR_FRAME_VERSION);
    for (int i = 0; i < 3; i++) {
        used = 55;
        ck_assert_int_eq(rstmdb_frame_decoder_feed(d, good, gn, &used, &f),
                         RSTMDB_ERR_FRAME_VERSION);
        ck_assert_uint_eq(used, 0);
    }
    ck_assert_int_eq(rstmdb_frame_decoder_feed(d, NULL, 0, &used, &f), RSTMDB_ERR_FRAME_VERSION);
    rstmdb_frame_decoder_free(d);
}
END_TEST

START_TEST(test_api_misuse)
{
    rstmdb_frame_decoder *d = NULL;
    rstmdb_frame f;
    size_t used;
    uint8_t b[4] = {0};

    ck_assert_int_eq(rstmdb_frame_decoder_new(NULL, 0), RSTMDB_ERR_INVALID);
    rstmdb_frame_decoder_free(NULL);
    d = new_decoder(0);
    ck_assert_int_eq(rstmdb_frame_decoder_feed(NULL, b, 4, &used, &f), RSTMDB_ERR_INVALID);
    ck_assert_int_eq(rstmdb_frame_decoder_feed(d, NULL, 4, &used, &f), RSTMDB_ERR_INVALID);
    ck_assert_int_eq(rstmdb_frame_decoder_feed(d, b, 4, NULL, &f), RSTMDB_ERR_INVALID);
    ck_assert_int_eq(rstmdb_frame_decoder_feed(d, b, 4, &used, NULL), RSTMDB_ERR_INVALID);
    /* misuse does not poison */
    ck_assert_int_eq(rstmdb_frame_decoder_feed(d, NULL, 0, &used, &f), 0);
    rstmdb_frame_decoder_free(d);
}
END_TEST

/* A big buffered payload followed by small frames keeps working (the big
 * buffer is dropped and small ones are buffered afresh). */
START_TEST(test_big_then_small_buffered)
{
    const size_t big = 200000;
    uint8_t *buf = malloc(18 + big);
    uint8_t small[128];
    rstmdb_frame f;
    size_t used;
    rstmdb_frame_decoder *d = new_decoder(0);
    size_t sn = encode(small, RSTMDB_FLAG_CRC_PRESENT, ping_resp);

    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < big; i++)
        buf[18 + i] = (uint8_t)i;
    ck_assert_int_eq(rstmdb_frame_header(buf, RSTMDB_FLAG_CRC_PRESENT, buf + 18, big), RSTMDB_OK);
    ck_assert_int_eq(rstmdb_frame_decoder_feed(d, buf, 18 + big / 2, &used, &f), 0);
    ck_assert_int_eq(rstmdb_frame_decoder_feed(d, buf + 18 + big / 2, big - big / 2, &used, &f), 1);
    ck_assert_mem_eq(f.payload, buf + 18, big);
    for (int r = 0; r < 3; r++) {
        ck_assert_int_eq(rstmdb_frame_decoder_feed(d, small, 30, &used, &f), 0);
        ck_assert_int_eq(rstmdb_frame_decoder_feed(d, small + 30, sn - 30, &used, &f), 1);
        ck_assert_mem_eq(f.payload, ping_resp, 65);
    }
    rstmdb_frame_decoder_free(d);
    free(buf);
}
END_TEST

static Suite *frame_suite(void)
{
    Suite *s = suite_create("frame");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_worked_example);
    tcase_add_test(tc, test_round_trip_flags);
    tcase_add_test(tc, test_zero_copy_and_empty_payload);
    tcase_add_test(tc, test_encoder_rejects);
    tcase_add_test(tc, test_malformed_headers);
    tcase_add_test(tc, test_header_checked_before_payload);
    tcase_add_test(tc, test_crc_mismatch_and_clear_flag);
    tcase_add_test(tc, test_crc_mismatch_chunked);
    tcase_add_test(tc, test_payload_cap);
    tcase_add_test(tc, test_header_extension_skipped);
    tcase_add_test(tc, test_split_everywhere);
    tcase_add_test(tc, test_several_frames_one_buffer);
    tcase_add_test(tc, test_poisoned_after_error);
    tcase_add_test(tc, test_api_misuse);
    tcase_add_test(tc, test_big_then_small_buffered);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(frame_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
