/* test_engine_util.h: a transcript driver for the engine tests. Feeds request
 * payloads to engine_request() and compares the reply and the deliveries with
 * captures of the real rstmdb server after masking what is random there:
 * UUIDs become <U1>, <U2>... by first appearance (requests may name them the
 * same way), created_at/updated_at become <T>, a snapshot's checksum <C>.
 * Header-only, static functions: included by test_engine*.c only. */
#ifndef TESTD_TEST_ENGINE_UTIL_H
#define TESTD_TEST_ENGINE_UTIL_H

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "jval.h"
#include "strbuf.h"

#define TX_MAX_LABELS 256

typedef struct tx {
    engine *e;
    char *labels[TX_MAX_LABELS]; /* labels[n-1] is the UUID named <Un> */
    size_t nlabels;
} tx;

static void tx_init(tx *t, const engine_config *cfg)
{
    memset(t, 0, sizeof(*t));
    engine_config none;
    memset(&none, 0, sizeof(none));
    ck_assert_int_eq(engine_new(&t->e, cfg ? cfg : &none), 0);
}

static void tx_deinit(tx *t)
{
    engine_free(t->e);
    for (size_t i = 0; i < t->nlabels; i++)
        free(t->labels[i]);
    memset(t, 0, sizeof(*t));
}

static bool tx_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* A lowercase UUIDv4 at s (36 chars)? */
static bool tx_is_uuid(const char *s, size_t avail)
{
    static const char shape[] = "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx";
    if (avail < 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        char c = s[i];
        if (shape[i] == '-') {
            if (c != '-')
                return false;
        } else if (shape[i] == '4') {
            if (c != '4')
                return false;
        } else if (shape[i] == 'y') {
            if (c != '8' && c != '9' && c != 'a' && c != 'b')
                return false;
        } else if (!tx_hex(c)) {
            return false;
        }
    }
    return true;
}

static size_t tx_label_of(tx *t, const char *uuid)
{
    for (size_t i = 0; i < t->nlabels; i++)
        if (memcmp(t->labels[i], uuid, 36) == 0)
            return i + 1;
    ck_assert_uint_lt(t->nlabels, TX_MAX_LABELS);
    t->labels[t->nlabels] = strndup(uuid, 36);
    ck_assert_ptr_nonnull(t->labels[t->nlabels]);
    return ++t->nlabels;
}

/* Masked copy of text (malloc'd). */
static char *tx_mask(tx *t, const char *s, size_t n)
{
    strbuf b;
    strbuf_init(&b, TESTD_TEXT_MAX);
    bool snap = false;
    for (size_t i = 0; i + 13 <= n; i++)
        if (memcmp(s + i, "\"snapshot_id\"", 13) == 0)
            snap = true;
    for (size_t i = 0; i < n;) {
        if (tx_is_uuid(s + i, n - i)) {
            strbuf_printf(&b, "<U%zu>", tx_label_of(t, s + i));
            i += 36;
            continue;
        }
        if ((n - i > 13 && memcmp(s + i, "\"created_at\":", 13) == 0) ||
            (n - i > 13 && memcmp(s + i, "\"updated_at\":", 13) == 0)) {
            strbuf_add(&b, s + i, 13);
            i += 13;
            while (i < n && s[i] >= '0' && s[i] <= '9')
                i++;
            strbuf_puts(&b, "<T>");
            continue;
        }
        if (snap && n - i > 20 && memcmp(s + i, "\"checksum\":\"", 12) == 0) {
            strbuf_puts(&b, "\"checksum\":<C>");
            i += 12 + 8 + 1;
            continue;
        }
        strbuf_putc(&b, s[i]);
        i++;
    }
    ck_assert(!strbuf_failed(&b));
    return strbuf_take(&b, NULL);
}

/* The request with <Un> replaced by the UUID that label stands for. */
static char *tx_unmask(tx *t, const char *req)
{
    strbuf b;
    strbuf_init(&b, TESTD_TEXT_MAX);
    for (const char *p = req; *p;) {
        unsigned long k;
        int used = 0;
        if (p[0] == '<' && p[1] == 'U' && sscanf(p, "<U%lu>%n", &k, &used) == 1 && used > 0 &&
            k >= 1 && k <= t->nlabels) {
            strbuf_add(&b, t->labels[k - 1], 36);
            p += used;
            continue;
        }
        strbuf_putc(&b, *p++);
    }
    ck_assert(!strbuf_failed(&b));
    return strbuf_take(&b, NULL);
}

static int tx_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run one request on connection `conn` and check it.
 *  reply: the masked response text, or NULL when the server closes silently;
 *  close: the connection closes after the reply (BYE);
 *  events: the masked deliveries as "cN < {...}", sorted, NULL-terminated
 *          (the real server's order between subscriptions is unspecified). */
static void tx_step(tx *t, uint64_t conn, const char *req, const char *reply, bool close,
                    const char *const *events)
{
    char *wire = tx_unmask(t, req);
    char *mreq = tx_mask(t, wire, strlen(wire)); /* labels in request order, as captured */
    free(mreq);
    engine_out out;
    ck_assert_int_eq(engine_request(t->e, conn, (const uint8_t *)wire, strlen(wire), &out), 0);
    if (!reply) {
        ck_assert_msg(out.action == ENGINE_CLOSE, "expected a silent close for %s", wire);
        ck_assert_ptr_null(out.reply);
        ck_assert_uint_eq(out.ndeliveries, 0);
    } else {
        ck_assert_msg(out.action != ENGINE_CLOSE, "unexpected close for %s", wire);
        char *got = tx_mask(t, out.reply, out.reply_len);
        ck_assert_msg(strcmp(got, reply) == 0, "request %s\n  got  %s\n  want %s", wire, got,
                      reply);
        free(got);
        ck_assert_int_eq(out.action, close ? ENGINE_REPLY_CLOSE : ENGINE_REPLY);
    }
    size_t nwant = 0;
    while (events && events[nwant])
        nwant++;
    ck_assert_msg(out.ndeliveries == nwant, "request %s: %zu deliveries, want %zu", wire,
                  out.ndeliveries, nwant);
    char **got = calloc(nwant + 1, sizeof(char *));
    ck_assert_ptr_nonnull(got);
    for (size_t i = 0; i < out.ndeliveries; i++) {
        char *m = tx_mask(t, out.deliveries[i].payload, out.deliveries[i].len);
        size_t need = strlen(m) + 32;
        got[i] = malloc(need);
        ck_assert_ptr_nonnull(got[i]);
        snprintf(got[i], need, "c%llu < %s", (unsigned long long)out.deliveries[i].conn_id, m);
        free(m);
    }
    qsort(got, out.ndeliveries, sizeof(char *), tx_cmp_str);
    for (size_t i = 0; i < nwant; i++) {
        ck_assert_msg(strcmp(got[i], events[i]) == 0, "request %s event %zu\n  got  %s\n  want %s",
                      wire, i, got[i], events[i]);
        free(got[i]);
    }
    free(got);
    engine_out_deinit(&out);
    free(wire);
}

/* One captured exchange. */
typedef struct tx_case {
    unsigned conn;
    const char *req;
    const char *reply; /* NULL: silent close */
    bool close;
    const char *events[8];
} tx_case;

static void tx_run(tx *t, const tx_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const tx_case *c = &cases[i];
        tx_step(t, c->conn, c->req, c->reply, c->close, c->events[0] ? c->events : NULL);
        if (c->reply == NULL || c->close)
            engine_conn_close(t->e, c->conn);
    }
}

#endif
