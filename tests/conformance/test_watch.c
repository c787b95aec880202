/* test_watch.c: WATCH_INSTANCE, WATCH_ALL, UNWATCH and pushed events
 * (PROTOCOL.md §2.3, §5): exact event texts and key order, include_ctx,
 * every WATCH_ALL filter, ordering, fan-out, no replay, no CREATE/DELETE events.
 *
 * "No further event" is proven without timing: on testd a PING on the
 * watching connection is answered after every event already caused (testd
 * writes deliveries synchronously), so the events must all sit in the stash
 * by then. Against other servers only the positive part is checked.
 */
#include "conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOOP_DEF                                                                               \
    "{\"states\":[\"s0\",\"s1\",\"s2\"],\"initial\":\"s0\",\"transitions\":[{\"from\":\"s0\"," \
    "\"event\":\"GO\",\"to\":\"s1\"},{\"from\":\"s1\",\"event\":\"LOOP\",\"to\":\"s2\"},"      \
    "{\"from\":\"s2\",\"event\":\"LOOP\",\"to\":\"s1\"}]}"

static void setup(void)
{
    cf_setup(0);
}

static const char *ev(const char *sub, const char *id, const char *m, uint64_t off,
                      const char *from, const char *to, const char *event, const char *payload,
                      const char *ctx)
{
    return cf_fmt(
        "{\"type\":\"event\",\"subscription_id\":\"%s\",\"instance_id\":\"%s\",\"machine\":\"%s\","
        "\"version\":1,\"wal_offset\":%llu,\"from_state\":\"%s\",\"to_state\":\"%s\",\"event\":\"%"
        "s\","
        "\"payload\":%s%s%s}",
        sub, id, m, (unsigned long long)off, from, to, event, payload, ctx ? ",\"ctx\":" : "",
        ctx ? ctx : "");
}

/* On testd: everything caused so far has arrived once PING is answered. */
static void barrier(cf_conn *k)
{
    if (cf_is_testd())
        CF_OK(k, "PING", NULL, "{\"pong\":true}");
}

static void assert_no_more_events(cf_conn *k)
{
    if (cf_is_testd())
        ck_assert_msg(k->nstash == 0, "%d unexpected event(s), first: %s", k->nstash,
                      k->nstash ? k->stash[0].text : "");
}

/* WATCH_INSTANCE or WATCH_ALL that must succeed; the new subscription id is
 * copied into `sub` (a char array). A failure reports the caller's line. */
#define WATCH(k, op, params, sub) watch_at(__LINE__, (k), (op), (params), (sub), sizeof(sub))

static void watch_at(int line, cf_conn *k, const char *op, const char *params, char *sub,
                     size_t cap)
{
    cf_caps c;
    cf_ok_at(__FILE__, line, k, op, params,
             strcmp(op, "WATCH_ALL") == 0 ? "{\"subscription_id\":\"$S\",\"wal_offset\":$O}"
                                          : "{$*\"subscription_id\":\"$S\"}",
             &c);
    snprintf(sub, cap, "%s", c.v[0]);
}

static uint64_t apply(cf_conn *k, const char *id, const char *event, const char *payload)
{
    cf_caps c;
    const char *p = payload ? cf_fmt("{\"instance_id\":\"%s\",\"event\":\"%s\",\"payload\":%s}", id,
                                     event, payload)
                            : cf_fmt("{\"instance_id\":\"%s\",\"event\":\"%s\"}", id, event);
    CF_OKC(k, "APPLY_EVENT", p, "{\"applied\":true,$*\"wal_offset\":$O}", &c);
    return cf_u64(c.v[0]);
}

START_TEST(watch_instance_result_event_and_order)
{
    cf_conn *k = CF_OPEN();
    char m[96], id[96], sub[300];
    cf_uniq(m, sizeof m, "w");
    cf_uniq(id, sizeof id, "w");
    CF_PUT_MACHINE(k, m, LOOP_DEF);
    uint64_t oc = CF_CREATE(k, id, m, "{\"b\":1,\"a\":2}");
    cf_caps c;
    CF_OKC(k, "WATCH_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id),
           cf_fmt("{\"current_state\":\"s0\",\"current_wal_offset\":%llu,\"instance_id\":\"%s\","
                  "\"subscription_id\":"
                  "\"sub-$U\"}",
                  (unsigned long long)oc, id),
           &c);
    snprintf(sub, sizeof sub, "sub-%s", c.v[0]);
    uint64_t oa = apply(k, id, "GO", "{\"p\":1}");
    /* The response came first: nothing was stashed while waiting for it. */
    ck_assert_int_eq(k->nstash, 0);
    CF_EVENT_MATCH(
        k, ev(sub, id, m, oa, "s0", "s1", "GO", "{\"p\":1}", "{\"a\":2,\"b\":1,\"p\":1}"), NULL);
    /* Payload omitted: "payload":null; ctx after the merge (unchanged). */
    uint64_t ob = apply(k, id, "LOOP", NULL);
    ck_assert_int_eq(k->nstash, 0);
    CF_EVENT_MATCH(k, ev(sub, id, m, ob, "s1", "s2", "LOOP", "null", "{\"a\":2,\"b\":1,\"p\":1}"),
                   NULL);
    /* A failed apply sends nothing. */
    CF_ERR(k, "APPLY_EVENT", cf_fmt("{\"instance_id\":\"%s\",\"event\":\"GO\"}", id),
           "INVALID_TRANSITION", "core error: invalid transition: cannot apply 'GO' in state 's2'",
           false);
    barrier(k);
    assert_no_more_events(k);
    /* The watch result reflects the current state. */
    CF_OK(k, "WATCH_INSTANCE", cf_fmt("{\"instance_id\":\"%s\",\"include_ctx\":false}", id),
          cf_fmt("{\"current_state\":\"s2\",\"current_wal_offset\":%llu,\"instance_id\":\"%s\","
                 "\"subscription_id\":"
                 "\"sub-$U\"}",
                 (unsigned long long)ob, id));
    cf_close(k);
}
END_TEST

START_TEST(three_subscriptions_fan_out)
{
    cf_conn *k = CF_OPEN();
    char m[96], id[96], s1[300], s2[300], s3[300];
    cf_uniq(m, sizeof m, "w");
    cf_uniq(id, sizeof id, "w");
    CF_PUT_MACHINE(k, m, LOOP_DEF);
    CF_CREATE(k, id, m, "{\"a\":2,\"b\":1,\"p\":1}");
    WATCH(k, "WATCH_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id), s1);
    WATCH(k, "WATCH_INSTANCE", cf_fmt("{\"instance_id\":\"%s\",\"include_ctx\":true}", id), s2);
    WATCH(k, "WATCH_ALL", cf_fmt("{\"machines\":[\"%s\"],\"include_ctx\":false}", m), s3);
    ck_assert(strcmp(s1, s2) != 0 && strcmp(s2, s3) != 0 && strcmp(s1, s3) != 0);
    uint64_t oa = apply(k, id, "GO", NULL);
    /* Order between subscriptions is unspecified: match each copy by id. */
    int seen = 0;
    for (int i = 0; i < 3; i++) {
        char *t = CF_EVENT(k);
        if (strstr(t, s1))
            CF_MATCH(t, ev(s1, id, m, oa, "s0", "s1", "GO", "null", "{\"a\":2,\"b\":1,\"p\":1}"),
                     NULL),
                seen |= 1;
        else if (strstr(t, s2))
            CF_MATCH(t, ev(s2, id, m, oa, "s0", "s1", "GO", "null", "{\"a\":2,\"b\":1,\"p\":1}"),
                     NULL),
                seen |= 2;
        else
            CF_MATCH(t, ev(s3, id, m, oa, "s0", "s1", "GO", "null", NULL), NULL), seen |= 4;
        free(t);
    }
    ck_assert_int_eq(seen, 7);
    barrier(k);
    assert_no_more_events(k);
    cf_close(k);
}
END_TEST

START_TEST(events_on_another_connection_and_no_replay)
{
    cf_conn *w = CF_OPEN();
    cf_conn *k = CF_OPEN();
    char m[96], id[96], sub[300], suball[300];
    cf_uniq(m, sizeof m, "w");
    cf_uniq(id, sizeof id, "w");
    CF_PUT_MACHINE(k, m, LOOP_DEF);
    CF_CREATE(k, id, m, "{}");
    apply(k, id, "GO", NULL); /* history before the watch: never replayed */
    cf_caps c;
    /* from_offset is type-checked, then ignored. */
    CF_OKC(w, "WATCH_INSTANCE",
           cf_fmt("{\"instance_id\":\"%s\",\"from_offset\":0,\"include_ctx\":false}", id),
           "{\"current_state\":\"s1\",$*\"subscription_id\":\"$S\"}", &c);
    snprintf(sub, sizeof sub, "%s", c.v[0]);
    CF_OKC(w, "WATCH_ALL", cf_fmt("{\"machines\":[\"%s\"],\"from_offset\":1099511627776}", m),
           "{\"subscription_id\":\"$S\",\"wal_offset\":$O}", &c);
    snprintf(suball, sizeof suball, "%s", c.v[0]);
    uint64_t head = cf_u64(c.v[1]);
    uint64_t oa = apply(k, id, "LOOP", "[1]");
    /* WATCH_ALL's wal_offset is where the next record goes: this apply's, when nothing else wrote.
     */
    if (cf_exclusive())
        ck_assert_uint_eq(oa, head);
    else
        ck_assert_uint_ge(oa, head);
    for (int i = 0; i < 2; i++) {
        char *t = CF_EVENT(w);
        if (strstr(t, suball))
            CF_MATCH(t, ev(suball, id, m, oa, "s1", "s2", "LOOP", "[1]", "{}"), NULL);
        else
            CF_MATCH(t, ev(sub, id, m, oa, "s1", "s2", "LOOP", "[1]", NULL), NULL);
        free(t);
    }
    barrier(w);
    assert_no_more_events(w);
    /* The applying connection has no subscription and got nothing. */
    barrier(k);
    ck_assert_int_eq(k->nstash, 0);
    cf_close(w);
    cf_close(k);
}
END_TEST

START_TEST(create_delete_no_events_deleted_still_broadcasts)
{
    cf_conn *k = CF_OPEN();
    char m[96], id[96], sub[300];
    cf_uniq(m, sizeof m, "w");
    cf_uniq(id, sizeof id, "w");
    CF_PUT_MACHINE(k, m, LOOP_DEF);
    WATCH(k, "WATCH_ALL", cf_fmt("{\"machines\":[\"%s\"]}", m), sub);
    CF_CREATE(k, id, m, "{\"x\":1}");
    CF_OK(k, "DELETE_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id), "{\"deleted\":true,$*");
    if (cf_v03()) {
        /* 0.3 removed it: the id is created again, still without an event. */
        CF_ERR(k, "SNAPSHOT_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id), "INSTANCE_NOT_FOUND",
               cf_fmt("core error: instance not found: %s", id), false);
        CF_CREATE(k, id, m, "{\"x\":1}");
    } else {
        CF_OK(k, "SNAPSHOT_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id), "{$*");
    }
    ck_assert_int_eq(k->nstash, 0);
    /* The first event is the apply on the deleted instance: CREATE and DELETE sent none. */
    uint64_t oa = apply(k, id, "GO", "{\"y\":2}");
    CF_EVENT_MATCH(k, ev(sub, id, m, oa, "s0", "s1", "GO", "{\"y\":2}", "{\"x\":1,\"y\":2}"), NULL);
    /* A deleted instance can be watched. */
    CF_OK(k, "WATCH_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id),
          cf_fmt("{\"current_state\":\"s1\",\"current_wal_offset\":%llu,\"instance_id\":\"%s\","
                 "\"subscription_id\":"
                 "\"sub-$U\"}",
                 (unsigned long long)oa, id));
    barrier(k);
    assert_no_more_events(k);
    cf_close(k);
}
END_TEST

START_TEST(replay_rebroadcasts_with_new_payload)
{
    cf_conn *k = CF_OPEN();
    char m[96], id[96], sub[300];
    cf_uniq(m, sizeof m, "w");
    cf_uniq(id, sizeof id, "w");
    CF_PUT_MACHINE(k, m, LOOP_DEF);
    CF_CREATE(k, id, m, "{}");
    cf_caps c;
    WATCH(k, "WATCH_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id), sub);
    CF_OKC(k, "APPLY_EVENT",
           cf_fmt("{\"instance_id\":\"%s\",\"event\":\"GO\",\"payload\":{\"n\":1},\"idempotency_"
                  "key\":\"r\"}",
                  id),
           "{\"applied\":true,\"ctx\":{\"n\":1},\"from_state\":\"s0\",\"to_state\":\"s1\",\"wal_"
           "offset\":$O}",
           &c);
    uint64_t oa = cf_u64(c.v[0]);
    CF_EVENT_MATCH(k, ev(sub, id, m, oa, "s0", "s1", "GO", "{\"n\":1}", "{\"n\":1}"), NULL);
    /* Replay: cached result; the event again, with this request's payload
     * and event name, the old offset, states and ctx. */
    CF_OK(k, "APPLY_EVENT",
          cf_fmt("{\"instance_id\":\"%s\",\"event\":\"LOOP\",\"payload\":{\"n\":2},\"idempotency_"
                 "key\":\"r\"}",
                 id),
          cf_fmt("{\"applied\":true,\"ctx\":{\"n\":1},\"from_state\":\"s0\",\"to_state\":\"s1\","
                 "\"wal_offset\":%llu}",
                 (unsigned long long)oa));
    CF_EVENT_MATCH(k, ev(sub, id, m, oa, "s0", "s1", "LOOP", "{\"n\":2}", "{\"n\":1}"), NULL);
    barrier(k);
    assert_no_more_events(k);
    cf_close(k);
}
END_TEST

/* ---- WATCH_ALL filters: one connection per filter, so its events arrive in
 * the order of the applies that caused them. ---- */

typedef struct step {
    int inst;          /* 0 = instance of machine 1, 1 = of machine 2 */
    const char *event; /* X or Y (suffixed) */
    const char *from, *to;
} step;

START_TEST(watch_all_filters)
{
    char u[96];
    cf_uniq(u, sizeof u, "f");
    char m1[300], m2[300], i1[300], i2[300], A[300], B[300], C[300], X[300], Y[300];
    snprintf(m1, sizeof m1, "M1-%s", u);
    snprintf(m2, sizeof m2, "M2-%s", u);
    snprintf(i1, sizeof i1, "i1-%s", u);
    snprintf(i2, sizeof i2, "i2-%s", u);
    snprintf(A, sizeof A, "A-%s", u);
    snprintf(B, sizeof B, "B-%s", u);
    snprintf(C, sizeof C, "C-%s", u);
    snprintf(X, sizeof X, "X-%s", u);
    snprintf(Y, sizeof Y, "Y-%s", u);
    /* A -X-> B, B -X-> C, C -Y-> A, A -Y-> C */
    char def[8192];
    snprintf(def, sizeof def,
             "{\"states\":[\"%s\",\"%s\",\"%s\"],\"initial\":\"%s\",\"transitions\":[{\"from\":\"%"
             "s\",\"event\":\"%s\","
             "\"to\":\"%s\"},{\"from\":\"%s\",\"event\":\"%s\",\"to\":\"%s\"},{\"from\":\"%s\","
             "\"event\":\"%s\",\"to\":"
             "\"%s\"},{\"from\":\"%s\",\"event\":\"%s\",\"to\":\"%s\"}]}",
             A, B, C, A, A, X, B, B, X, C, C, Y, A, A, Y, C);
    cf_conn *k = CF_OPEN();
    CF_PUT_MACHINE(k, m1, def);
    CF_PUT_MACHINE(k, m2, def);
    CF_CREATE(k, i1, m1, "{\"k\":1}");
    CF_CREATE(k, i2, m2, "{\"k\":2}");

    enum { NF = 9 };
    const char *filters[NF] = {
        cf_fmt("{\"machines\":[\"%s\"]}", m1),
        cf_fmt("{\"machines\":[\"%s\",\"%s\"]}", m2, m1),
        cf_fmt("{\"events\":[\"%s\"]}", X),
        cf_fmt("{\"from_states\":[\"%s\"]}", B),
        cf_fmt("{\"to_states\":[\"%s\",\"%s\"]}", A, C),
        cf_fmt("{\"machines\":[\"%s\"],\"events\":[\"%s\"]}", m2, Y),
        cf_fmt("{\"from_states\":[\"%s\"],\"to_states\":[\"%s\"]}", A, C),
        "{}",
        cf_fmt("{\"machines\":[\"%s\"],\"include_ctx\":false,\"events\":[],\"to_states\":[]}", m2),
    };
    char filt[NF][512];
    for (int f = 0; f < NF; f++)
        snprintf(filt[f], sizeof filt[f], "%s", filters[f]);
    cf_conn *w[NF];
    char sub[NF][300];
    for (int f = 0; f < NF; f++) {
        w[f] = CF_OPEN();
        WATCH(w[f], "WATCH_ALL", filt[f], sub[f]);
    }
    /* The script: (instance, event) with the resulting from/to. */
    const step script[] = {
        {0, X, A, B}, /* i1 A->B */
        {1, Y, A, C}, /* i2 A->C */
        {0, X, B, C}, /* i1 B->C */
        {1, Y, C, A}, /* i2 C->A */
        {0, Y, C, A}, /* i1 C->A */
        {1, X, A, B}, /* i2 A->B */
        {0, Y, A, C}, /* i1 A->C */
    };
    const int ns = (int)(sizeof script / sizeof script[0]);
    uint64_t off[16];
    for (int s = 0; s < ns; s++)
        off[s] = apply(k, script[s].inst ? i2 : i1, script[s].event, cf_fmt("{\"s\":%d}", s));
    /* Which steps each filter matches (from the filter semantics). */
    static const char *const match[NF] = {
        "1010101", /* machines [M1] */
        "1111111", /* machines [M2, M1]: OR within a list */
        "1010010", /* events [X] */
        "0010000", /* from_states [B] */
        "0111101", /* to_states [A, C] */
        "0101000", /* machines [M2] AND events [Y] */
        "0100001", /* from [A] AND to [C] */
        "1111111", /* {} */
        "0101010", /* machines [M2], no ctx, empty lists match all */
    };
    for (int f = 0; f < NF; f++) {
        barrier(w[f]);
        for (int s = 0; s < ns; s++) {
            if (match[f][s] != '1')
                continue;
            const step *st = &script[s];
            /* ctx after the merge: {"k":n,"s":s} */
            const char *ctx = f == 8 ? NULL : cf_fmt("{\"k\":%d,\"s\":%d}", st->inst + 1, s);
            const char *want = ev(sub[f], st->inst ? i2 : i1, st->inst ? m2 : m1, off[s], st->from,
                                  st->to, st->event, cf_fmt("{\"s\":%d}", s), ctx);
            char *t = CF_EVENT(w[f]);
            /* {} sees other programs' events on a shared server: skip foreign ones. */
            while (f == 7 && !cf_exclusive() && strstr(t, u) == NULL) {
                free(t);
                t = CF_EVENT(w[f]);
            }
            ck_assert_msg(cf_match(t, want, NULL), "filter %s, step %d\n  got:  %s\n  want: %s",
                          filt[f], s, cf_short(t), cf_short(want));
            free(t);
        }
        assert_no_more_events(w[f]);
        cf_close(w[f]);
    }
    cf_close(k);
}
END_TEST

START_TEST(unwatch)
{
    cf_conn *k = CF_OPEN();
    cf_conn *o = CF_OPEN();
    char m[96], id[96], si[300], sa[300], so[300];
    cf_uniq(m, sizeof m, "w");
    cf_uniq(id, sizeof id, "w");
    CF_PUT_MACHINE(k, m, LOOP_DEF);
    CF_CREATE(k, id, m, "{}");
    WATCH(k, "WATCH_INSTANCE", cf_fmt("{\"instance_id\":\"%s\"}", id), si);
    WATCH(k, "WATCH_ALL", cf_fmt("{\"machines\":[\"%s\"],\"include_ctx\":false}", m), sa);
    WATCH(o, "WATCH_INSTANCE", cf_fmt("{\"instance_id\":\"%s\",\"include_ctx\":false}", id), so);
    CF_OK(k, "UNWATCH", cf_fmt("{\"subscription_id\":\"%s\"}", si),
          cf_fmt("{\"removed\":true,\"subscription_id\":\"%s\"}", si));
    CF_OK(k, "UNWATCH", cf_fmt("{\"subscription_id\":\"%s\"}", si),
          cf_fmt("{\"removed\":false,\"subscription_id\":\"%s\"}", si));
    CF_OK(k, "UNWATCH", "{\"subscription_id\":\"sub-nope\",\"x\":1}",
          "{\"removed\":false,\"subscription_id\":\"sub-nope\"}");
    /* Another connection's subscription cannot be removed from here. */
    CF_OK(k, "UNWATCH", cf_fmt("{\"subscription_id\":\"%s\"}", so),
          cf_fmt("{\"removed\":false,\"subscription_id\":\"%s\"}", so));
    CF_ERR(k, "UNWATCH", NULL, "BAD_REQUEST",
           "invalid request: invalid type: null, expected struct UnwatchParams", false);
    CF_ERR(k, "UNWATCH", "{}", "BAD_REQUEST", "invalid request: missing field `subscription_id`",
           false);
    uint64_t oa = apply(k, id, "GO", NULL);
    /* Only the WATCH_ALL copy here; the other connection's stream still flows. */
    CF_EVENT_MATCH(k, ev(sa, id, m, oa, "s0", "s1", "GO", "null", NULL), NULL);
    CF_EVENT_MATCH(o, ev(so, id, m, oa, "s0", "s1", "GO", "null", NULL), NULL);
    uint64_t ob = apply(k, id, "LOOP", NULL);
    CF_EVENT_MATCH(k, ev(sa, id, m, ob, "s1", "s2", "LOOP", "null", NULL), NULL);
    barrier(k);
    assert_no_more_events(k);
    /* Closing the watcher's connection drops its subscriptions (the others go on). */
    cf_close(o);
    uint64_t oc = apply(k, id, "LOOP", NULL);
    CF_EVENT_MATCH(k, ev(sa, id, m, oc, "s2", "s1", "LOOP", "null", NULL), NULL);
    cf_close(k);
}
END_TEST

/* §5.3/§5.4 BATCH quirks: an APPLY inside a BATCH broadcasts (after the
 * BATCH response); a WATCH inside a BATCH is registered but never delivers;
 * an UNWATCH inside a BATCH says removed:true but delivery goes on. */
START_TEST(watch_and_apply_inside_batch)
{
    cf_conn *k = CF_OPEN();
    char m[96], id[96], s1[300], sb[300];
    cf_uniq(m, sizeof m, "w");
    cf_uniq(id, sizeof id, "w");
    CF_PUT_MACHINE(k, m, LOOP_DEF);
    CF_CREATE(k, id, m, "{}");
    cf_caps c;
    WATCH(k, "WATCH_INSTANCE", cf_fmt("{\"instance_id\":\"%s\",\"include_ctx\":false}", id), s1);
    CF_OKC(
        k, "BATCH",
        cf_fmt("{\"ops\":[{\"op\":\"WATCH_INSTANCE\",\"params\":{\"instance_id\":\"%s\"}}]}", id),
        cf_fmt("{\"results\":[{\"error\":null,\"result\":{\"current_state\":\"s0\",\"current_wal_"
               "offset\":$O,"
               "\"instance_id\":\"%s\",\"subscription_id\":\"$S\"},\"status\":\"ok\"}]}",
               id),
        &c);
    snprintf(sb, sizeof sb, "%s", c.v[1]);
    ck_assert_str_ne(s1, sb);
    /* Two applies in one BATCH: the response first, then one event each
     * (only for the top-level subscription). */
    CF_OKC(
        k, "BATCH",
        cf_fmt("{\"ops\":[{\"op\":\"APPLY_EVENT\",\"params\":{\"instance_id\":\"%s\",\"event\":"
               "\"GO\"}},"
               "{\"op\":\"APPLY_EVENT\",\"params\":{\"instance_id\":\"%s\",\"event\":\"LOOP\"}}]}",
               id, id),
        "{\"results\":[{\"error\":null,\"result\":{\"applied\":true,\"ctx\":{},\"from_state\":"
        "\"s0\","
        "\"to_state\":\"s1\",\"wal_offset\":$O},\"status\":\"ok\"},{\"error\":null,\"result\":{"
        "\"applied\":true,\"ctx\":{},\"from_state\":\"s1\",\"to_state\":\"s2\",\"wal_offset\":$O},"
        "\"status\":\"ok\"}]}",
        &c);
    ck_assert_int_eq(k->nstash, 0);
    uint64_t o1 = cf_u64(c.v[0]), o2 = cf_u64(c.v[1]);
    CF_EVENT_MATCH(k, ev(s1, id, m, o1, "s0", "s1", "GO", "null", NULL), NULL);
    CF_EVENT_MATCH(k, ev(s1, id, m, o2, "s1", "s2", "LOOP", "null", NULL), NULL);
    /* UNWATCH inside a BATCH: removed:true, yet the stream keeps flowing. */
    CF_OK(k, "BATCH",
          cf_fmt("{\"ops\":[{\"op\":\"UNWATCH\",\"params\":{\"subscription_id\":\"%s\"}}]}", s1),
          cf_fmt("{\"results\":[{\"error\":null,\"result\":{\"removed\":true,\"subscription_id\":"
                 "\"%s\"},"
                 "\"status\":\"ok\"}]}",
                 s1));
    uint64_t o3 = apply(k, id, "LOOP", NULL);
    CF_EVENT_MATCH(k, ev(s1, id, m, o3, "s2", "s1", "LOOP", "null", NULL), NULL);
    barrier(k);
    assert_no_more_events(k);
    cf_close(k);
}
END_TEST

START_TEST(watch_errors)
{
    cf_conn *k = CF_OPEN();
    char m[96], id[96];
    cf_uniq(m, sizeof m, "w");
    cf_uniq(id, sizeof id, "w");
    CF_PUT_MACHINE(k, m, LOOP_DEF);
    CF_CREATE(k, id, m, "{}");
    CF_ERR(k, "WATCH_INSTANCE", cf_fmt("{\"instance_id\":\"%s-no\"}", id), "INSTANCE_NOT_FOUND",
           cf_fmt("core error: instance not found: %s-no", id), false);
    CF_ERR(k, "WATCH_INSTANCE", NULL, "BAD_REQUEST",
           "invalid request: invalid type: null, expected struct WatchInstanceParams", false);
    CF_ERR(k, "WATCH_INSTANCE", "{}", "BAD_REQUEST", "invalid request: missing field `instance_id`",
           false);
    CF_ERR(k, "WATCH_INSTANCE", cf_fmt("{\"instance_id\":\"%s\",\"include_ctx\":\"no\"}", id),
           "BAD_REQUEST", "invalid request: invalid type: string \"no\", expected a boolean",
           false);
    CF_ERR(k, "WATCH_INSTANCE", cf_fmt("{\"instance_id\":\"%s\",\"from_offset\":\"5\"}", id),
           "BAD_REQUEST", "invalid request: invalid type: string \"5\", expected u64", false);
    if (cf_v03()) {
        /* 0.3 subscribes without params (no filter): undo it. */
        cJSON *j = CF_CALLJ(k, "WATCH_ALL", NULL);
        const cJSON *sid = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(j, "result"), "subscription_id");
        ck_assert_msg(cJSON_IsString(sid), "WATCH_ALL with null params did not subscribe");
        CF_OK(k, "UNWATCH", cf_fmt("{\"subscription_id\":\"%s\"}", sid->valuestring),
              cf_fmt("{\"removed\":true,\"subscription_id\":\"%s\"}", sid->valuestring));
        cJSON_Delete(j);
    } else {
        CF_ERR(k, "WATCH_ALL", NULL, "BAD_REQUEST",
               "invalid request: invalid type: null, expected struct WatchAllParams", false);
    }
    CF_ERR(k, "WATCH_ALL", "{\"machines\":\"m\"}", "BAD_REQUEST",
           "invalid request: invalid type: string \"m\", expected a sequence", false);
    CF_ERR(k, "WATCH_ALL", "{\"include_ctx\":1}", "BAD_REQUEST",
           "invalid request: invalid type: integer `1`, expected a boolean", false);
    CF_ERR(k, "WATCH_ALL", "{\"from_offset\":-1}", "BAD_REQUEST",
           "invalid request: invalid value: integer `-1`, expected u64", false);
    /* None of these registered a subscription. */
    apply(k, id, "GO", NULL);
    barrier(k);
    ck_assert_int_eq(k->nstash, 0);
    cf_close(k);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conformance_watch");
    TCase *tc = cf_tcase("watch");
    tcase_add_unchecked_fixture(tc, setup, cf_teardown);
    tcase_add_test(tc, watch_instance_result_event_and_order);
    tcase_add_test(tc, three_subscriptions_fan_out);
    tcase_add_test(tc, events_on_another_connection_and_no_replay);
    tcase_add_test(tc, create_delete_no_events_deleted_still_broadcasts);
    tcase_add_test(tc, replay_rebroadcasts_with_new_payload);
    tcase_add_test(tc, watch_all_filters);
    tcase_add_test(tc, unwatch);
    tcase_add_test(tc, watch_and_apply_inside_batch);
    tcase_add_test(tc, watch_errors);
    suite_add_tcase(s, tc);
    return cf_run(s);
}
