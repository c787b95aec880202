/* test_wal.c: WAL_READ, WAL_STATS, COMPACT (PROTOCOL.md §9): entry shapes,
 * paging with next_offset, packed offsets (exact record sizes on testd).
 */
#include "conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MINI_DEF                                                                                  \
    "{\"states\":[\"s0\",\"s1\"],\"initial\":\"s0\",\"transitions\":[{\"from\":\"s0\",\"event\":" \
    "\"GO\",\"to\":\"s1\"}]}"

static void setup(void)
{
    cf_setup(CF_NEED_SMALLSEG);
}

static const char *rec(uint64_t off, const char *entry)
{
    return cf_fmt("{\"entry\":%s,\"offset\":%llu,\"sequence\":$N}", entry, (unsigned long long)off);
}

START_TEST(wal_read_entries_and_paging)
{
    cf_conn *k = CF_OPEN();
    char m[96], id[96];
    cf_uniq(m, sizeof m, "wal");
    cf_uniq(id, sizeof id, "w");
    /* The definition as sent (not normalized: "from" stays a string, unknown keys kept, keys
     * sorted). */
    cf_caps c;
    CF_OK(k, "PUT_MACHINE",
          cf_fmt(
              "{\"machine\":\"%s\",\"version\":1,\"definition\":{\"states\":[\"s0\",\"s1\"],"
              "\"initial\":\"s0\",\"transitions\":[{\"to\":\"s1\",\"from\":\"s0\",\"event\":\"GO\","
              "\"zz\":1}],\"x\":true}}",
              m),
          "{\"created\":true,$*");
    uint64_t oc = CF_CREATE(k, id, m, "{\"zeta\":1,\"alpha\":{\"k\":\"v\"}}");
    CF_OKC(
        k, "APPLY_EVENT",
        cf_fmt("{\"instance_id\":\"%s\",\"event\":\"GO\",\"payload\":{\"p\":1},\"event_id\":\"e\","
               "\"idempotency_key\":\"ik\"}",
               id),
        "{\"applied\":true,$*\"wal_offset\":$O}", &c);
    uint64_t oa = cf_u64(c.v[0]);
    CF_OKC(k, "DELETE_INSTANCE", cf_fmt("{\"instance_id\":\"%s\",\"idempotency_key\":\"dk\"}", id),
           "{\"deleted\":true,$*\"wal_offset\":$O}", &c);
    uint64_t od = cf_u64(c.v[0]);
    ck_assert(oc < oa && oa < od);

    const char *ce = cf_fmt(
        "{\"initial_ctx\":{\"alpha\":{\"k\":\"v\"},\"zeta\":1},\"initial_state\":\"s0\","
        "\"instance_id\":\"%s\",\"machine\":\"%s\",\"type\":\"create_instance\",\"version\":1}",
        id, m);
    const char *ae = cf_fmt(
        "{\"ctx\":{\"alpha\":{\"k\":\"v\"},\"p\":1,\"zeta\":1},\"event\":\"GO\",\"event_id\":\"e\","
        "\"from_state\":\"s0\",\"idempotency_key\":\"ik\",\"instance_id\":\"%s\",\"payload\":{"
        "\"p\":1},"
        "\"to_state\":\"s1\",\"type\":\"apply_event\"}",
        id);
    const char *de = cf_fmt(
        "{\"idempotency_key\":\"dk\",\"instance_id\":\"%s\",\"type\":\"delete_instance\"}", id);
    char want[4096];
    /* Each record read at its own offset (>= from_offset). */
    snprintf(want, sizeof want, "{\"next_offset\":%llu,\"records\":[%s]}",
             (unsigned long long)oc + 1, rec(oc, ce));
    cf_caps s1, s2;
    CF_OKC(k, "WAL_READ", cf_fmt("{\"from_offset\":%llu,\"limit\":1}", (unsigned long long)oc),
           want, &s1);
    snprintf(want, sizeof want, "{\"next_offset\":%llu,\"records\":[%s]}",
             (unsigned long long)oa + 1, rec(oa, ae));
    CF_OKC(k, "WAL_READ", cf_fmt("{\"from_offset\":%llu,\"limit\":1}", (unsigned long long)oa),
           want, &s2);
    ck_assert_uint_gt(cf_u64(s2.v[0]), cf_u64(s1.v[0]));
    snprintf(want, sizeof want, "{\"next_offset\":%llu,\"records\":[%s]}",
             (unsigned long long)od + 1, rec(od, de));
    CF_OK(k, "WAL_READ", cf_fmt("{\"from_offset\":%llu,\"limit\":1}", (unsigned long long)od),
          want);
    /* Paging with next_offset = offset + 1 reaches the next record. */
    CF_OKC(k, "WAL_READ", cf_fmt("{\"from_offset\":%llu,\"limit\":1}", (unsigned long long)oc + 1),
           "{\"next_offset\":$N,\"records\":[{\"entry\":$*,\"offset\":$O,\"sequence\":$N}]}", &s2);
    ck_assert_uint_eq(cf_u64(s2.v[0]), cf_u64(s2.v[1]) + 1);
    ck_assert(cf_u64(s2.v[1]) > oc && cf_u64(s2.v[1]) <= oa);
    ck_assert_uint_eq(cf_u64(s2.v[2]), cf_u64(s1.v[0]) + 1);
    if (cf_exclusive()) {
        /* Nobody else writes: our records are adjacent. */
        snprintf(want, sizeof want, "{\"next_offset\":%llu,\"records\":[%s,%s]}",
                 (unsigned long long)oa + 1, rec(oc, ce), rec(oa, ae));
        CF_OK(k, "WAL_READ", cf_fmt("{\"from_offset\":%llu,\"limit\":2}", (unsigned long long)oc),
              want);
        snprintf(want, sizeof want, "{\"next_offset\":%llu,\"records\":[%s]}",
                 (unsigned long long)od + 1, rec(od, de));
        CF_OK(k, "WAL_READ",
              cf_fmt("{\"from_offset\":%llu,\"limit\":1}", (unsigned long long)oa + 1), want);
    }
    /* limit 0. */
    CF_OK(k, "WAL_READ", cf_fmt("{\"from_offset\":%llu,\"limit\":0}", (unsigned long long)oc),
          "{\"next_offset\":null,\"records\":[]}");
    if (cf_exclusive()) {
        /* Nothing after the delete: null next_offset; limit omitted means all. */
        CF_OK(k, "WAL_READ", cf_fmt("{\"from_offset\":%llu}", (unsigned long long)od + 1),
              "{\"next_offset\":null,\"records\":[]}");
        snprintf(want, sizeof want, "{\"next_offset\":%llu,\"records\":[%s,%s]}",
                 (unsigned long long)od + 1, rec(oa, ae), rec(od, de));
        CF_OK(k, "WAL_READ", cf_fmt("{\"from_offset\":%llu}", (unsigned long long)oa), want);
        CF_OK(k, "WAL_READ",
              cf_fmt("{\"from_offset\":%llu,\"limit\":\"1\"}", (unsigned long long)oa), want);
    }
    cf_close(k);
}
END_TEST

/* The put_machine entry is the client's definition (keys sorted, not
 * normalized); an identical re-PUT writes nothing. Found by scanning from
 * the WAL head taken before, so other writers do not matter. */
static cJSON *find_put(cf_conn *k, uint64_t from, const char *machine)
{
    cJSON *j = CF_CALLJ(k, "WAL_READ",
                        cf_fmt("{\"from_offset\":%llu,\"limit\":500}", (unsigned long long)from));
    const cJSON *recs = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "result"), "records");
    const cJSON *r;
    cJSON *found = NULL;
    cJSON_ArrayForEach(r, recs)
    {
        const cJSON *e = cJSON_GetObjectItem(r, "entry");
        const cJSON *t = cJSON_GetObjectItem(e, "type"), *mm = cJSON_GetObjectItem(e, "machine");
        if (cJSON_IsString(t) && strcmp(t->valuestring, "put_machine") == 0 && cJSON_IsString(mm) &&
            strcmp(mm->valuestring, machine) == 0) {
            ck_assert_msg(found == NULL, "two put_machine records for %s", machine);
            found = cJSON_Duplicate(e, 1);
        }
    }
    cJSON_Delete(j);
    return found;
}

START_TEST(wal_read_put_machine_entry)
{
    cf_conn *k = CF_OPEN();
    cf_caps c;
    CF_OKC(k, "WAL_STATS", NULL, "{$*\"latest_offset\":$O,$*", &c);
    uint64_t head = cf_u64(c.v[0]);
    char m[96];
    cf_uniq(m, sizeof m, "walpm");
    CF_OK(k, "PUT_MACHINE",
          cf_fmt("{\"machine\":\"%s\",\"version\":1,\"definition\":%s}", m, CF_ORDER_DEF),
          "{\"created\":true,$*");
    cJSON *e = find_put(k, head, m);
    ck_assert_msg(e != NULL, "no put_machine record for %s", m);
    char *t = cJSON_PrintUnformatted(e);
    CF_MATCH(
        t,
        cf_fmt(
            "{\"definition\":{\"initial\":\"created\",\"meta\":{\"a\":{\"b\":3,\"y\":2},\"z\":1},"
            "\"states\":[\"created\",\"paid\",\"shipped\"],\"transitions\":[{\"event\":\"PAY\","
            "\"from\":\"created\",\"to\":\"paid\"},{\"event\":\"SHIP\",\"from\":[\"paid\"],"
            "\"guard\":\"ctx.ready\",\"to\":\"shipped\"}]},\"definition_hash\":\"c873e472\","
            "\"machine\":\"%s\",\"type\":\"put_machine\",\"version\":1}",
            m),
        NULL);
    cJSON_free(t);
    cJSON_Delete(e);
    /* Identical re-PUT: no record. */
    CF_OKC(k, "WAL_STATS", NULL, "{$*\"latest_offset\":$O,$*", &c);
    head = cf_u64(c.v[0]);
    CF_OK(k, "PUT_MACHINE",
          cf_fmt("{\"machine\":\"%s\",\"version\":1,\"definition\":%s}", m, CF_ORDER_DEF),
          "{\"created\":false,$*");
    ck_assert_ptr_null(find_put(k, head, m));
    cf_close(k);
}
END_TEST

/* Compact JSON of a WAL entry in the on-disk field order of §9.2. */
static size_t entry_len(const char *json)
{
    return strlen(json);
}

START_TEST(offsets_packed_exact_sizes)
{
    if (!cf_exclusive()) {
        fprintf(stderr, "SKIP offsets_packed_exact_sizes: exact record sizes need an otherwise "
                        "idle server (RSTMDB_TEST_EXCLUSIVE=1)\n");
        return;
    }
    cf_conn *k = CF_OPEN();
    /* The very first record is at 1 << 40 with sequence 1. */
    CF_OK(k, "WAL_READ", "{\"from_offset\":0,\"limit\":1}",
          "{\"next_offset\":1099511627777,\"records\":[{\"entry\":$*,\"offset\":1099511627776,"
          "\"sequence\":1}]}");
    char m[96], id[96];
    cf_uniq(m, sizeof m, "off");
    cf_uniq(id, sizeof id, "w");
    cf_caps c;
    CF_OKC(k, "WATCH_ALL", cf_fmt("{\"machines\":[\"%s\"]}", m),
           "{\"subscription_id\":\"sub-$U\",\"wal_offset\":$O}", &c);
    uint64_t head = cf_u64(c.v[1]);
    cf_caps st0;
    CF_OKC(k, "WAL_STATS", NULL,
           "{\"entry_count\":$N,\"io_stats\":{\"bytes_read\":$N,\"bytes_written\":$N,\"fsyncs\":$N,"
           "\"reads\":$N,\"writes\":$N},\"latest_offset\":$O,\"segment_count\":1,\"total_size_"
           "bytes\":$N}",
           &st0);
    ck_assert_uint_eq(cf_u64(st0.v[6]), head);
    const char *def = "{\"states\":[\"s0\",\"s1\"],\"initial\":\"s0\",\"transitions\":[{\"from\":"
                      "\"s0\",\"event\":\"GO\","
                      "\"to\":\"s1\"}]}";
    CF_PUT_MACHINE(k, m, def);
    /* put_machine: the client's definition with keys sorted. */
    const char *pe = cf_fmt(
        "{\"type\":\"put_machine\",\"machine\":\"%s\",\"version\":1,\"definition_hash\":\"$H\","
        "\"definition\":{\"initial\":\"s0\",\"states\":[\"s0\",\"s1\"],\"transitions\":[{\"event\":"
        "\"GO\",\"from\":\"s0\",\"to\":\"s1\"}]}}",
        m);
    size_t pl = entry_len(pe) - 2 + 8; /* "$H" stands for 8 hex digits */
    uint64_t oc = CF_CREATE(k, id, m, "{\"b\":1,\"a\":[1.5,\"x\"]}");
    ck_assert_uint_eq(oc, head + 24 + pl);
    const char *ce = cf_fmt(
        "{\"type\":\"create_instance\",\"instance_id\":\"%s\",\"machine\":\"%s\",\"version\":1,"
        "\"initial_state\":\"s0\",\"initial_ctx\":{\"a\":[1.5,\"x\"],\"b\":1}}",
        id, m);
    CF_OKC(k, "APPLY_EVENT",
           cf_fmt("{\"instance_id\":\"%s\",\"event\":\"GO\",\"payload\":{\"c\":null}}", id),
           "{\"applied\":true,$*\"wal_offset\":$O}", &c);
    uint64_t oa = cf_u64(c.v[0]);
    ck_assert_uint_eq(oa, oc + 24 + entry_len(ce));
    const char *ae = cf_fmt(
        "{\"type\":\"apply_event\",\"instance_id\":\"%s\",\"event\":\"GO\",\"from_state\":\"s0\","
        "\"to_state\":\"s1\",\"payload\":{\"c\":null},\"ctx\":{\"a\":[1.5,\"x\"],\"b\":1,\"c\":"
        "null}}",
        id);
    CF_OKC(k, "DELETE_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id),
           "{\"deleted\":true,$*\"wal_offset\":$O}", &c);
    uint64_t od = cf_u64(c.v[0]);
    ck_assert_uint_eq(od, oa + 24 + entry_len(ae));
    const char *de = cf_fmt("{\"type\":\"delete_instance\",\"instance_id\":\"%s\"}", id);
    /* WAL_STATS.latest_offset is where the next record goes. */
    CF_OKC(k, "WAL_STATS", NULL,
           "{\"entry_count\":$N,\"io_stats\":{\"bytes_read\":$N,\"bytes_written\":$N,\"fsyncs\":$N,"
           "\"reads\":$N,"
           "\"writes\":$N},\"latest_offset\":$O,\"segment_count\":1,\"total_size_bytes\":$N}",
           &c);
    ck_assert_uint_eq(cf_u64(c.v[6]), od + 24 + entry_len(de));
    uint64_t entries = cf_u64(c.v[0]);
    /* Four records: entry_count, writes and fsyncs (every_write) each grew by 4,
     * bytes_written by their sizes. (Absolute values can differ: an append
     * refused as too large still consumes a sequence number on the real server.) */
    ck_assert_uint_eq(entries, cf_u64(st0.v[0]) + 4);
    ck_assert_uint_eq(cf_u64(c.v[5]), cf_u64(st0.v[5]) + 4);
    ck_assert_uint_eq(cf_u64(c.v[3]), cf_u64(st0.v[3]) + 4);
    ck_assert_uint_eq(cf_u64(c.v[2]) - cf_u64(st0.v[2]), cf_u64(c.v[6]) - head);
    /* The last record's sequence equals entry_count. */
    char want[256];
    snprintf(
        want, sizeof want,
        "{\"next_offset\":%llu,\"records\":[{\"entry\":$*,\"offset\":%llu,\"sequence\":%llu}]}",
        (unsigned long long)od + 1, (unsigned long long)od, (unsigned long long)entries);
    CF_OK(k, "WAL_READ", cf_fmt("{\"from_offset\":%llu,\"limit\":5}", (unsigned long long)od),
          want);
    cf_close(k);
}
END_TEST

/* Where the WAL puts records: (segment << 40) | position, a new segment
 * when a record would not fit (PROTOCOL.md §9.1; can_fit: size + record <=
 * segment size). */
typedef struct walpos {
    uint64_t seg, pos, segsize;
} walpos;

static uint64_t walpos_next(walpos *w, size_t entry_len)
{
    uint64_t r = 24 + entry_len;
    if (w->pos + r > w->segsize) {
        w->seg++;
        w->pos = 0;
    }
    uint64_t off = w->seg << 40 | w->pos;
    w->pos += r;
    return off;
}

static const char *stats_pat =
    "{\"entry_count\":$N,\"io_stats\":{\"bytes_read\":$N,\"bytes_written\":$N,"
    "\"fsyncs\":$N,\"reads\":$N,\"writes\":$N},\"latest_offset\":$O,"
    "\"segment_count\":$N,\"total_size_bytes\":$N}";

/* Segment rotation and compaction on a fresh testd with 1 KiB segments. */
START_TEST(segment_rotation_and_compaction)
{
    cf_conn *k = cf_open_smallseg();
    if (k == NULL)
        return;
    walpos w = {1, 0, 1024};
    uint64_t offs[64];
    int n = 0;
    char m[96];
    cf_uniq(m, sizeof m, "rot");
    cf_caps c;
    CF_OKC(k, "PUT_MACHINE",
           cf_fmt("{\"machine\":\"%s\",\"version\":1,\"definition\":%s}", m, MINI_DEF),
           "{\"created\":true,$*\"stored_checksum\":\"$H\",$*", &c);
    const char *pe =
        cf_fmt("{\"type\":\"put_machine\",\"machine\":\"%s\",\"version\":1,\"definition_hash\":"
               "\"%s\",\"definition\":{\"initial\":\"s0\",\"states\":[\"s0\",\"s1\"],"
               "\"transitions\":[{\"event\":\"GO\",\"from\":\"s0\",\"to\":\"s1\"}]}}",
               m, c.v[0]);
    offs[n++] = walpos_next(&w, strlen(pe));
    ck_assert_uint_eq(offs[0], CF_FIRST_OFFSET);
    char pad[161];
    memset(pad, 'p', 160);
    pad[160] = '\0';
    char ids[6][96];
    for (int i = 0; i < 6; i++) {
        /* Before the write: latest_offset is the current segment's end,
         * even when the next record will not fit there. */
        CF_OKC(k, "WAL_STATS", NULL, stats_pat, &c);
        ck_assert_uint_eq(cf_u64(c.v[6]), w.seg << 40 | w.pos);
        ck_assert_uint_eq(cf_u64(c.v[7]), w.seg);
        ck_assert_uint_eq(cf_u64(c.v[8]), 0); /* total_size_bytes: stale, 0 until a restart */
        if (i == 0) {
            /* io_stats of a fresh server after one append: the startup replay is one read. */
            ck_assert_uint_eq(cf_u64(c.v[0]), 1);
            ck_assert_uint_eq(cf_u64(c.v[1]), 0);
            ck_assert_uint_eq(cf_u64(c.v[2]), 24 + strlen(pe));
            ck_assert_uint_eq(cf_u64(c.v[4]), 1);
            ck_assert_uint_eq(cf_u64(c.v[5]), 1);
        }
        cf_uniq(ids[i], sizeof ids[i], "r");
        const char *ctx = cf_fmt("{\"pad\":\"%s\"}", pad);
        uint64_t got = CF_CREATE(k, ids[i], m, ctx);
        const char *ce =
            cf_fmt("{\"type\":\"create_instance\",\"instance_id\":\"%s\",\"machine\":\"%s\","
                   "\"version\":1,\"initial_state\":\"s0\",\"initial_ctx\":%s}",
                   ids[i], m, ctx);
        offs[n++] = walpos_next(&w, strlen(ce));
        ck_assert_msg(got == offs[n - 1], "create %d at %llu, want %llu (segment %llu)", i,
                      (unsigned long long)got, (unsigned long long)offs[n - 1],
                      (unsigned long long)w.seg);
    }
    ck_assert_msg(w.seg >= 3, "the test wants at least 3 segments, has %llu",
                  (unsigned long long)w.seg);
    /* Move every instance's last offset past the first segments. */
    for (int i = 0; i < 6; i++) {
        CF_OKC(k, "APPLY_EVENT", cf_fmt("{\"instance_id\":\"%s\",\"event\":\"GO\"}", ids[i]),
               "{\"applied\":true,$*\"wal_offset\":$O}", &c);
        const char *ae =
            cf_fmt("{\"type\":\"apply_event\",\"instance_id\":\"%s\",\"event\":\"GO\","
                   "\"from_state\":\"s0\",\"to_state\":\"s1\",\"payload\":null,\"ctx\":"
                   "{\"pad\":\"%s\"}}",
                   ids[i], pad);
        offs[n++] = walpos_next(&w, strlen(ae));
        ck_assert_uint_eq(cf_u64(c.v[0]), offs[n - 1]);
    }
    uint64_t nseg = w.seg;
    CF_OKC(k, "WAL_STATS", NULL, stats_pat, &c);
    ck_assert_uint_eq(cf_u64(c.v[0]), (uint64_t)n);
    ck_assert_uint_eq(cf_u64(c.v[7]), nseg);
    ck_assert_uint_eq(cf_u64(c.v[6]), w.seg << 40 | w.pos);
    /* Every record, in order, with its sequence. */
    cJSON *j = CF_CALLJ(k, "WAL_READ", "{\"from_offset\":0,\"limit\":1000}");
    const cJSON *recs = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "result"), "records");
    ck_assert_int_eq(cJSON_GetArraySize(recs), n);
    for (int i = 0; i < n; i++) {
        const cJSON *r = cJSON_GetArrayItem(recs, i);
        ck_assert_uint_eq((uint64_t)cJSON_GetObjectItem(r, "offset")->valuedouble, offs[i]);
        ck_assert_int_eq(cJSON_GetObjectItem(r, "sequence")->valueint, i + 1);
    }
    cJSON_Delete(j);
    /* That read counted once, with every record's size. */
    cf_caps st;
    CF_OKC(k, "WAL_STATS", NULL, stats_pat, &st);
    ck_assert_uint_eq(cf_u64(st.v[4]), 2);
    ck_assert_uint_eq(cf_u64(st.v[1]), cf_u64(st.v[2]));
    /* COMPACT snapshots the 6 instances at their apply offsets and deletes
     * every segment below the lowest one's segment. */
    uint64_t lowest_seg = offs[1 + 6] >> 40;
    uint64_t deleted = lowest_seg - 1;
    CF_OK(k, "COMPACT", NULL,
          cf_fmt("{\"bytes_reclaimed\":%llu,\"segments_deleted\":%llu,\"snapshots_created\":6,"
                 "\"total_snapshots\":6,\"wal_segments\":%llu}",
                 (unsigned long long)(deleted * 67108864ull), (unsigned long long)deleted,
                 (unsigned long long)(nseg - deleted)));
    /* The deleted segments' records are gone from WAL_READ. */
    int first = 0;
    while ((offs[first] >> 40) < lowest_seg)
        first++;
    CF_OK(k, "WAL_READ", "{\"from_offset\":0,\"limit\":1}",
          cf_fmt(
              "{\"next_offset\":%llu,\"records\":[{\"entry\":$*,\"offset\":%llu,\"sequence\":%d}]}",
              (unsigned long long)offs[first] + 1, (unsigned long long)offs[first], first + 1));
    CF_OKC(k, "WAL_STATS", NULL, stats_pat, &c);
    ck_assert_uint_eq(cf_u64(c.v[0]), (uint64_t)n);
    ck_assert_uint_eq(cf_u64(c.v[7]), nseg - deleted);
    cf_close(k);
}
END_TEST

START_TEST(wal_read_errors)
{
    cf_conn *k = CF_OPEN();
    static const char *const bad[] = {
        NULL, "{}", "{\"from_offset\":\"5\"}", "{\"from_offset\":-1}", "{\"from_offset\":1.5}",
        "[0]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CF_ERR(k, "WAL_READ", bad[i], "BAD_REQUEST", "invalid request: missing from_offset", false);
    cf_close(k);
}
END_TEST

START_TEST(wal_stats_shape_and_growth)
{
    cf_conn *k = CF_OPEN();
    const char *pat =
        "{\"entry_count\":$N,\"io_stats\":{\"bytes_read\":$N,\"bytes_written\":$N,\"fsyncs\":$N,"
        "\"reads\":$N,\"writes\":$N},\"latest_offset\":$O,\"segment_count\":$N,\"total_size_"
        "bytes\":$N}";
    cf_caps a, b;
    CF_OKC(k, "WAL_STATS", "{\"ignored\":1}", pat, &a);
    char m[96];
    cf_uniq(m, sizeof m, "ws");
    CF_PUT_MACHINE(k, m, MINI_DEF);
    char id[96];
    cf_uniq(id, sizeof id, "w");
    uint64_t oc = CF_CREATE(k, id, m, "{}");
    CF_OKC(k, "WAL_STATS", NULL, pat, &b);
    ck_assert_msg(cf_u64(b.v[6]) > oc, "latest_offset %s must be past our record %llu", b.v[6],
                  (unsigned long long)oc);
    ck_assert_uint_ge(cf_u64(b.v[0]), cf_u64(a.v[0]) + 2);
    ck_assert_uint_ge(cf_u64(b.v[7]), 1);
    if (cf_exclusive())
        ck_assert_uint_eq(cf_u64(b.v[0]), cf_u64(a.v[0]) + 2);
    cf_close(k);
}
END_TEST

START_TEST(compact_shape)
{
    cf_conn *k = CF_OPEN();
    const char *pat = "{\"bytes_reclaimed\":$N,\"segments_deleted\":$N,\"snapshots_created\":$N,"
                      "\"total_snapshots\":$N,"
                      "\"wal_segments\":$N}";
    char m[96], id[96];
    cf_uniq(m, sizeof m, "cp");
    cf_uniq(id, sizeof id, "w");
    CF_PUT_MACHINE(k, m, MINI_DEF);
    CF_CREATE(k, id, m, "{}");
    cf_caps c;
    CF_OKC(k, "COMPACT", NULL, pat, &c);
    ck_assert_uint_eq(cf_u64(c.v[0]), cf_u64(c.v[1]) * 67108864ull);
    ck_assert_uint_ge(cf_u64(c.v[2]), 1); /* our new instance had no snapshot */
    ck_assert_uint_ge(cf_u64(c.v[3]), cf_u64(c.v[2]));
    ck_assert_uint_ge(cf_u64(c.v[4]), 1);
    if (cf_exclusive()) {
        /* Bring every snapshot up to date first (a shared server may hold
         * instances changed since their snapshot). Then nothing is new; a
         * non-bool counts as false; force re-snapshots only changed ones. */
        CF_OK(k, "COMPACT", "{\"force_snapshot\":true}", pat);
        CF_OK(k, "COMPACT", "{\"force_snapshot\":true}",
              "{\"bytes_reclaimed\":0,\"segments_deleted\":0,\"snapshots_created\":0,\"total_"
              "snapshots\":$N,\"wal_segments\":1}");
        CF_OK(k, "COMPACT", "{\"force_snapshot\":\"yes\"}",
              "{\"bytes_reclaimed\":0,\"segments_deleted\":0,\"snapshots_created\":0,\"total_"
              "snapshots\":$N,\"wal_segments\":1}");
        CF_OK(k, "APPLY_EVENT", cf_fmt("{\"instance_id\":\"%s\",\"event\":\"GO\"}", id),
              "{\"applied\":true,$*");
        CF_OK(k, "COMPACT", "{}",
              "{\"bytes_reclaimed\":0,\"segments_deleted\":0,\"snapshots_created\":0,\"total_"
              "snapshots\":$N,\"wal_segments\":1}");
        CF_OK(k, "COMPACT", "{\"force_snapshot\":true}",
              "{\"bytes_reclaimed\":0,\"segments_deleted\":0,\"snapshots_created\":1,\"total_"
              "snapshots\":$N,\"wal_segments\":1}");
    } else {
        CF_OK(k, "COMPACT", "{\"force_snapshot\":\"yes\"}", pat);
        CF_OK(k, "COMPACT", "[true]", pat);
    }
    cf_close(k);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conformance_wal");
    TCase *tc = cf_tcase("wal");
    tcase_add_unchecked_fixture(tc, setup, cf_teardown);
    tcase_add_test(tc, wal_read_entries_and_paging);
    tcase_add_test(tc, wal_read_put_machine_entry);
    tcase_add_test(tc, offsets_packed_exact_sizes);
    tcase_add_test(tc, segment_rotation_and_compaction);
    tcase_add_test(tc, wal_read_errors);
    tcase_add_test(tc, wal_stats_shape_and_growth);
    tcase_add_test(tc, compact_shape);
    suite_add_tcase(s, tc);
    return cf_run(s);
}
