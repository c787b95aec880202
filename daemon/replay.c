/* replay.c: WAL replay jobs. A stream that resumes from an older offset
 * (Last-Event-ID, from_offset, or after an upstream loss) catches up through
 * WAL_READ pages; the feed's live events are held meanwhile and sent after
 * the WAL part. Streams of one feed resuming together share one job. The
 * job's members are the SUB_REPLAYING subscribers on j->members. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub_int.h"
#include "strbuf.h"

static void job_start_read(replay *j);
static void job_process_page(replay *j);

replay *job_new(feed *f, uint64_t cursor)
{
    replay *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->f = f;
    j->cursor = cursor;
    f->h->stats.replay_jobs++;
    j->next = f->jobs;
    if (f->jobs)
        f->jobs->prev = j;
    f->jobs = j;
    return j;
}

static void job_clear_page(replay *j)
{
    for (size_t i = 0; i < j->nlookups; i++) {
        pool_call_cancel(j->lookups[i].call);
        free(j->lookups[i].instance_id);
    }
    free(j->lookups);
    j->lookups = NULL;
    j->nlookups = j->pending = 0;
    walrec_page_deinit(&j->page);
    free(j->page_text);
    j->page_text = NULL;
}

/* Stop the job at once (calls cancelled) and unlink it; its members must have
 * been moved elsewhere by the caller. */
void job_destroy(replay *j)
{
    feed *f = j->f;
    pool_call_cancel(j->call);
    j->call = NULL;
    job_clear_page(j);
    for (size_t i = 0; i < j->nheld; i++)
        free(j->held[i].data);
    free(j->held);
    if (j->prev)
        j->prev->next = j->next;
    else
        f->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    free(j);
}

/* The job cannot go on: its members go back to WAITING (resumed from their
 * cursor later) or end with an error when `code` is set. */
void job_abort(replay *j, const char *code, const char *msg)
{
    feed *f = j->f;
    j->dead = true;
    pool_call_cancel(j->call);
    j->call = NULL;
    job_clear_page(j);
    while (j->members.head) {
        if (code)
            sub_error(j->members.head, code, msg);
        else
            sub_move(j->members.head, SUB_WAITING, NULL);
    }
    feed_mark(f);
}

/* After a transport failure of a replay call (the pool already re-sent it
 * where it could): the members resume from their cursor a little later. */
static void job_retry(replay *j)
{
    feed *f = j->f;
    job_abort(j, NULL, NULL);
    feed_retry_later(f, HUB_RETRY_MS);
}

bool reply_is_transport(const rstmdb_reply *r)
{
    int st = rstmdb_reply_status(r);
    return st != RSTMDB_OK && st != RSTMDB_ERR_SERVER;
}

static void job_fail_reply(replay *j, const rstmdb_reply *r, const char *what)
{
    if (reply_is_transport(r)) {
        job_retry(j);
        return;
    }
    char msg[512];
    const rstmdb_error *e = rstmdb_reply_error(r);
    snprintf(msg, sizeof msg, "%s failed during replay: %s: %s", what,
             e ? rstmdb_error_code_str(e) : "?", e ? rstmdb_error_message(e) : "?");
    job_abort(j, "UPSTREAM_ERROR", msg);
}

/* The common head of every replay step's reply callback: on an error answer
 * the job is failed here (retried after a transport loss, aborted on an
 * upstream error) and false comes back; otherwise *raw (possibly NULL) and
 * *len hold the result bytes. */
static bool job_reply_ok(replay *j, const rstmdb_reply *r, const char *what, const char **raw,
                         size_t *len)
{
    if (rstmdb_reply_status(r) != RSTMDB_OK) {
        job_fail_reply(j, r, what);
        return false;
    }
    *raw = rstmdb_reply_result_raw(r, len);
    return true;
}

/* Deliver the held live events and switch the members to LIVE. */
static void job_finish(replay *j)
{
    feed *f = j->f;
    for (size_t i = 0; i < j->nheld; i++) {
        hub_event ev = {++f->h->seq, j->held[i].offset, j->held[i].data, j->held[i].len};
        for (hub_sub *s = j->members.head, *nx; s; s = nx) {
            nx = s->next;
            sub_deliver(s, &ev);
        }
    }
    while (j->members.head)
        sub_move(j->members.head, SUB_LIVE, NULL);
    j->dead = true;
    feed_mark(f);
}

void job_hold(replay *j, uint64_t off, const char *data, size_t len)
{
    if (j->dead || j->members.n == 0)
        return;
    if (j->nheld >= j->f->h->max_held) {
        char msg[160];
        snprintf(msg, sizeof msg, "more than %zu live events arrived while replaying the WAL",
                 j->f->h->max_held);
        job_abort(j, "REPLAY_OVERFLOW", msg);
        return;
    }
    if (j->nheld == j->capheld) {
        size_t ncap = j->capheld ? j->capheld * 2 : 16;
        if (ncap > j->f->h->max_held)
            ncap = j->f->h->max_held;
        held_event *nh = realloc(j->held, ncap * sizeof *nh);
        if (!nh) {
            job_abort(j, "INTERNAL_ERROR", "out of memory while holding live events");
            return;
        }
        j->held = nh;
        j->capheld = ncap;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        job_abort(j, "INTERNAL_ERROR", "out of memory while holding live events");
        return;
    }
    memcpy(copy, data, len);
    copy[len] = '\0';
    j->held[j->nheld].offset = off;
    j->held[j->nheld].data = copy;
    j->held[j->nheld].len = len;
    j->nheld++;
}

static void lookup_reply_cb(const rstmdb_reply *r, void *arg)
{
    lookup *lk = arg;
    replay *j = lk->job;
    lk->call = NULL;
    size_t len = 0;
    const char *raw = NULL;
    if (!job_reply_ok(j, r, "GET_INSTANCE", &raw, &len))
        return;
    char *tok = NULL, *name = NULL;
    uint64_t version = 0;
    if (!raw || walrec_instance_info(raw, len, &tok, &name, &version) < 0) {
        job_abort(j, "UPSTREAM_ERROR", "GET_INSTANCE answered without machine/version");
        return;
    }
    instcache_put(&j->f->h->cache, lk->instance_id, tok, name, version);
    if (--j->pending == 0)
        job_process_page(j);
}

static bool lookup_listed(const replay *j, const char *id)
{
    for (size_t i = 0; i < j->nlookups; i++)
        if (strcmp(j->lookups[i].instance_id, id) == 0)
            return true;
    return false;
}

/* Learn machine/version for every apply_event of the page the stream could
 * want: from create_instance records on the page, else GET_INSTANCE. Returns
 * true when everything is known now. */
static bool job_resolve(replay *j)
{
    hub *h = j->f->h;
    const subfilter *sf = &j->f->sf;
    size_t want = 0;
    for (size_t i = 0; i < j->page.n; i++) {
        walrec *r = &j->page.recs[i];
        if (r->offset < j->cursor)
            continue;
        if (r->type == WALREC_CREATE_INSTANCE) {
            char *tok = strndup(r->machine.p, r->machine.len), *name = strdup(r->machine_name);
            if (tok && name) {
                instcache_put(&h->cache, r->instance_id, tok, name, r->version);
            } else {
                free(tok);
                free(name);
            }
            continue;
        }
        if (r->type != WALREC_APPLY_EVENT || instcache_get(&h->cache, r->instance_id))
            continue;
        /* Cheap pre-filter: skip lookups for events the stream cannot want. */
        if (!subfilter_needs_machine(sf) &&
            !subfilter_match(sf, r->instance_id, NULL, r->event_name, r->from, r->to))
            continue;
        if (!lookup_listed(j, r->instance_id)) {
            if (want == 0) {
                j->lookups = calloc(j->page.n, sizeof *j->lookups);
                if (!j->lookups) {
                    job_abort(j, "INTERNAL_ERROR", "out of memory");
                    return false;
                }
            }
            lookup *lk = &j->lookups[j->nlookups];
            lk->job = j;
            if (!(lk->instance_id = strdup(r->instance_id))) {
                job_abort(j, "INTERNAL_ERROR", "out of memory");
                return false;
            }
            j->nlookups++;
            want++;
        }
    }
    if (want == 0)
        return true;
    j->state = REPLAY_RESOLVING;
    j->pending = j->nlookups;
    for (size_t i = 0; i < j->nlookups; i++) {
        lookup *lk = &j->lookups[i];
        strbuf b;
        strbuf_init(&b, 4096 + strlen(lk->instance_id) * 6);
        strbuf_puts(&b, "{\"instance_id\":");
        strbuf_jstr(&b, lk->instance_id, strlen(lk->instance_id));
        strbuf_add(&b, "}", 1);
        int rc = strbuf_failed(&b) ? RSTMDB_ERR_NOMEM
                                   : pool_call_json(h->pool, "GET_INSTANCE", b.data, b.len, true,
                                                    lookup_reply_cb, lk, &lk->call);
        strbuf_deinit(&b);
        if (rc != RSTMDB_OK) {
            lk->call = NULL;
            job_abort(j, NULL, NULL); /* no upstream now: resume later */
            feed_retry_later(j->f, HUB_RETRY_MS);
            return false;
        }
    }
    return false;
}

/* Send the page's matching events, advance, then read on or finish. */
static void job_process_page(replay *j)
{
    hub *h = j->f->h;
    feed *f = j->f;
    const subfilter *sf = &f->sf;
    strbuf b;
    strbuf_init(&b, HUB_MAX_EVENT_BYTES);

    for (size_t i = 0; i < j->nlookups; i++)
        free(j->lookups[i].instance_id);
    free(j->lookups);
    j->lookups = NULL;
    j->nlookups = j->pending = 0;

    for (size_t i = 0; i < j->page.n && !j->dead; i++) {
        const walrec *r = &j->page.recs[i];
        if (r->offset < j->cursor)
            continue;
        if (r->type == WALREC_APPLY_EVENT) {
            const inst_info *ii = instcache_get(&h->cache, r->instance_id);
            bool cand = sf->instance_id ? strcmp(sf->instance_id, r->instance_id) == 0
                                        : subfilter_needs_machine(sf) ||
                                              subfilter_match(sf, r->instance_id, NULL,
                                                              r->event_name, r->from, r->to);
            if (cand && !ii) {
                /* Evicted between lookup and use (cache cap): resolve again. */
                if (++j->resolve_rounds > HUB_MAX_RESOLVE_ROUNDS) {
                    job_abort(j, "INTERNAL_ERROR", "cannot resolve instance machines");
                    break;
                }
                if (job_resolve(j))
                    continue; /* resolved synchronously: unreachable, kept safe */
                strbuf_deinit(&b);
                return;
            }
            if (cand &&
                subfilter_match(sf, r->instance_id, ii->machine, r->event_name, r->from, r->to)) {
                strbuf_reset(&b);
                if (walrec_event_data(r, ii->machine_tok, strlen(ii->machine_tok), ii->version,
                                      sf->include_ctx, &b) < 0) {
                    job_abort(j, "INTERNAL_ERROR", "replayed event too large");
                    break;
                }
                h->stats.replayed++;
                hub_event ev = {++h->seq, r->offset, b.data, b.len};
                for (hub_sub *s = j->members.head, *nx; s; s = nx) {
                    nx = s->next; /* a callback may end its own stream */
                    sub_deliver(s, &ev);
                }
            }
        }
        j->cursor = r->offset + 1;
    }
    strbuf_deinit(&b);
    if (j->dead)
        return;
    for (hub_sub *s = j->members.head; s; s = s->next)
        if (s->cursor < j->cursor)
            s->cursor = j->cursor;

    /* Done when the WAL had no more than this page (we reached its head as
     * of this read: later events arrive live, held or not yet), or when the
     * WAL part already covers the newest held event. */
    bool short_page = j->page.n < j->f->h->page_limit || !j->page.has_next;
    bool covered = (j->nheld > 0 && j->cursor > j->held[j->nheld - 1].offset) ||
                   (j->bounded && j->cursor > j->bound);
    if (j->page.has_next && j->page.next_offset > j->cursor)
        j->cursor = j->page.next_offset;
    job_clear_page(j);
    j->resolve_rounds = 0;
    j->read_any = true;
    if (short_page || covered)
        job_finish(j);
    else
        job_start_read(j);
}

static void probe_reply_cb(const rstmdb_reply *r, void *arg)
{
    replay *j = arg;
    j->call = NULL;
    size_t len = 0;
    const char *raw = NULL;
    if (!job_reply_ok(j, r, "WAL_READ", &raw, &len))
        return;
    walrec_page pg;
    if (!raw || walrec_page_parse(raw, len, 1, &pg) < 0) {
        job_abort(j, "UPSTREAM_ERROR", "WAL_READ answered an unreadable page");
        return;
    }
    uint64_t lowest = pg.n ? walrec_segment(pg.recs[0].offset) : 0;
    walrec_page_deinit(&pg);
    if (walrec_compacted(j->cursor, lowest)) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "the WAL no longer holds offset %llu (compacted up to segment %llu): "
                 "events may be missing; reconnect without Last-Event-ID",
                 (unsigned long long)j->cursor, (unsigned long long)lowest);
        job_abort(j, "WAL_COMPACTED", msg);
        return;
    }
    if (job_resolve(j))
        job_process_page(j);
}

static void head_reply_cb(const rstmdb_reply *r, void *arg)
{
    replay *j = arg;
    j->call = NULL;
    size_t len = 0;
    const char *raw = NULL;
    if (!job_reply_ok(j, r, "WAL_STATS", &raw, &len))
        return;
    uint64_t latest;
    if (!raw || walrec_result_u64(raw, len, "latest_offset", &latest) < 0) {
        job_abort(j, "UPSTREAM_ERROR", "WAL_STATS answered without latest_offset");
        return;
    }
    if (latest < j->cursor) {
        /* The WAL ends before where this stream stands: the server was
         * reset or replaced (an in-memory test server restarted), or the
         * client asked for a future offset. New events would carry ids
         * below ones already sent, so the stream cannot go on. */
        char msg[240];
        snprintf(msg, sizeof msg,
                 "the upstream WAL ends at offset %llu, before the resume point %llu "
                 "(server reset or replaced?): reconnect without Last-Event-ID",
                 (unsigned long long)latest, (unsigned long long)j->cursor);
        job_abort(j, "OFFSET_AHEAD", msg);
        return;
    }
    job_process_page(j);
}

static void page_reply_cb(const rstmdb_reply *r, void *arg)
{
    replay *j = arg;
    hub *h = j->f->h;
    j->call = NULL;
    size_t len = 0;
    const char *raw = NULL;
    if (!job_reply_ok(j, r, "WAL_READ", &raw, &len))
        return;
    if (!raw || !(j->page_text = malloc(len + 1))) {
        job_abort(j, "INTERNAL_ERROR", "WAL_READ result unavailable");
        return;
    }
    memcpy(j->page_text, raw, len);
    j->page_text[len] = '\0';
    if (walrec_page_parse(j->page_text, len, h->page_limit, &j->page) < 0) {
        job_abort(j, "UPSTREAM_ERROR", "WAL_READ answered an unreadable page");
        return;
    }
    /* Compaction deletes whole segments: only a first record in a later
     * segment than the cursor can hide deleted records; then ask which
     * segment is the oldest still there. */
    if (j->page.n > 0 && walrec_needs_probe(j->cursor, j->page.recs[0].offset)) {
        j->state = REPLAY_PROBING;
        static const char probe[] = "{\"from_offset\":0,\"limit\":1}";
        int rc = pool_call_json(h->pool, "WAL_READ", probe, sizeof probe - 1, true, probe_reply_cb,
                                j, &j->call);
        if (rc != RSTMDB_OK) {
            j->call = NULL;
            job_abort(j, NULL, NULL);
            feed_retry_later(j->f, HUB_RETRY_MS);
        }
        return;
    }
    /* Nothing at or after the cursor on the first read: either the stream
     * is simply up to date, or the WAL ends before the cursor. Ask once. */
    if (j->page.n == 0 && !j->read_any) {
        j->state = REPLAY_HEAD;
        int rc = pool_call_json(h->pool, "WAL_STATS", "{}", 2, true, head_reply_cb, j, &j->call);
        if (rc != RSTMDB_OK) {
            j->call = NULL;
            job_abort(j, NULL, NULL);
            feed_retry_later(j->f, HUB_RETRY_MS);
        }
        return;
    }
    if (job_resolve(j))
        job_process_page(j);
}

static void job_start_read(replay *j)
{
    hub *h = j->f->h;
    char params[96];
    int n = snprintf(params, sizeof params, "{\"from_offset\":%llu,\"limit\":%u}",
                     (unsigned long long)j->cursor, h->page_limit);
    j->state = REPLAY_READING;
    int rc =
        pool_call_json(h->pool, "WAL_READ", params, (size_t)n, true, page_reply_cb, j, &j->call);
    if (rc != RSTMDB_OK) {
        j->call = NULL;
        job_abort(j, NULL, NULL);
        feed_retry_later(j->f, HUB_RETRY_MS);
    }
}

/* The instance's last record bounds a WATCH_INSTANCE replay: GET_INSTANCE
 * is answered after the WATCH was re-established, so every event of the
 * instance is either at or below last_wal_offset or arrives live. A quiet
 * instance whose stream resumes from far back (its cursor is the
 * instance's last record at subscribe time) then needs no WAL scan at all,
 * instead of reading every record written since. */
static void bound_reply_cb(const rstmdb_reply *r, void *arg)
{
    replay *j = arg;
    hub *h = j->f->h;
    j->call = NULL;
    size_t len = 0;
    const char *raw = NULL;
    if (!job_reply_ok(j, r, "GET_INSTANCE", &raw, &len))
        return;
    uint64_t last;
    if (!raw || walrec_result_u64(raw, len, "last_wal_offset", &last) < 0) {
        job_start_read(j); /* no bound known: read to the head */
        return;
    }
    j->bounded = true;
    j->bound = last;
    if (last >= j->cursor) {
        job_start_read(j);
        return;
    }
    /* Nothing to replay, unless the WAL itself ends before the cursor
     * (a reset server): head_reply_cb checks, then finishes on an empty page. */
    j->state = REPLAY_HEAD;
    int rc = pool_call_json(h->pool, "WAL_STATS", "{}", 2, true, head_reply_cb, j, &j->call);
    if (rc != RSTMDB_OK) {
        j->call = NULL;
        job_abort(j, NULL, NULL);
        feed_retry_later(j->f, HUB_RETRY_MS);
    }
}

void job_start(replay *j)
{
    hub *h = j->f->h;
    if (!j->f->sf.instance_id) {
        job_start_read(j);
        return;
    }
    strbuf b;
    strbuf_init(&b, 64 + strlen(j->f->sf.instance_id) * 6);
    strbuf_puts(&b, "{\"instance_id\":");
    strbuf_jstr(&b, j->f->sf.instance_id, strlen(j->f->sf.instance_id));
    strbuf_add(&b, "}", 1);
    j->state = REPLAY_BOUNDING;
    int rc = strbuf_failed(&b) ? RSTMDB_ERR_NOMEM
                               : pool_call_json(h->pool, "GET_INSTANCE", b.data, b.len, true,
                                                bound_reply_cb, j, &j->call);
    strbuf_deinit(&b);
    if (rc != RSTMDB_OK) {
        j->call = NULL;
        job_abort(j, NULL, NULL);
        feed_retry_later(j->f, HUB_RETRY_MS);
    }
}
