/* fx.c: the fault suite's harness (processes, bounded HTTP, raw sockets,
 * SSE followers, WAL reads, RSS). Tests only; it never asserts itself: it
 * reports, and the test decides. */
#include "fx.h"

#include "echo.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef RSTMDB_RELAY_BIN
#define RSTMDB_RELAY_BIN "rstmdb-relay"
#endif

long long fx_now_ms(void)
{
    return mono_ms();
}

void fx_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int fx_cycles(void)
{
    const char *e = getenv("FAULT_CYCLES");
    int n = e != NULL ? atoi(e) : 0;
    return n > 0 ? n : 20;
}

const char *fx_relay_bin(void)
{
    const char *env = getenv("RSTMDB_RELAY_BIN");
    return env != NULL && *env != '\0' ? env : RSTMDB_RELAY_BIN;
}

void fx_tmpdir(char *out, size_t cap, const char *tag)
{
    snprintf(out, cap, "/tmp/rstmdb-faults-%s-XXXXXX", tag);
    if (mkdtemp(out) == NULL)
        snprintf(out, cap, "/tmp");
}

/* ---- HTTP ------------------------------------------------------------------ */

static size_t body_cb(char *p, size_t sz, size_t n, void *arg)
{
    fx_resp *r = arg;
    size_t k = sz * n;
    char *nb;

    if (r->len + k > FX_BODY_MAX)
        return 0; /* abort: a runaway body is itself a failure */
    nb = realloc(r->body, r->len + k + 1);
    if (nb == NULL)
        return 0;
    r->body = nb;
    memcpy(r->body + r->len, p, k);
    r->len += k;
    r->body[r->len] = '\0';
    return k;
}

static size_t header_cb(char *p, size_t sz, size_t n, void *arg)
{
    fx_resp *r = arg;
    size_t k = sz * n;
    size_t have = strlen(r->headers);

    /* A new status line (after a 100 Continue) starts the block afresh. */
    if (k >= 5 && strncmp(p, "HTTP/", 5) == 0)
        have = 0;
    if (have + k < sizeof r->headers) {
        memcpy(r->headers + have, p, k);
        r->headers[have + k] = '\0';
    }
    return k;
}

static int trace_cb(CURL *c, curl_infotype type, char *data, size_t size, void *arg)
{
    fx_resp *r = arg;
    size_t have = strlen(r->trace);
    (void)c;
    if (type != CURLINFO_TEXT)
        return 0;
    if (have + size + 1 >= sizeof r->trace) { /* keep the latest lines */
        memmove(r->trace, r->trace + have / 2, have - have / 2 + 1);
        have = strlen(r->trace);
    }
    if (have + size + 1 < sizeof r->trace) {
        memcpy(r->trace + have, data, size);
        r->trace[have + size] = '\0';
    }
    return 0;
}

static int http_on(CURL *c, const char *addr, const char *method, const char *path,
                   const char *body, long len, const char *const *headers, long timeout_ms,
                   fx_resp *r);

int fx_http(const char *addr, const char *method, const char *path, const char *body, long len,
            const char *const *headers, long timeout_ms, fx_resp *r)
{
    CURL *c = curl_easy_init();
    int rc = http_on(c, addr, method, path, body, len, headers, timeout_ms, r);
    if (c != NULL)
        curl_easy_cleanup(c);
    return rc;
}

int fx_http_keep(void **handle, const char *addr, const char *method, const char *path,
                 const char *body, long len, const char *const *headers, long timeout_ms,
                 fx_resp *r)
{
    if (*handle == NULL)
        *handle = curl_easy_init();
    else
        curl_easy_reset(*handle); /* options go, the open connection stays */
    return http_on(*handle, addr, method, path, body, len, headers, timeout_ms, r);
}

void fx_http_handle_free(void *handle)
{
    if (handle != NULL)
        curl_easy_cleanup(handle);
}

/* "HOST:PORT" pinned to itself in curl's DNS cache. Even a numeric host
 * goes through curl's threaded resolver otherwise, and under this suite's
 * fork-heavy load that resolver once took over 4.5 s ("Resolving timed
 * out"): a client-side stall that would be reported as a proxy hang. */
static struct curl_slist *pin_resolve(const char *addr, char *buf, size_t cap)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || addr[0] == '[')
        return NULL;
    snprintf(buf, cap, "%s:%.*s", addr, (int)(colon - addr), addr);
    return curl_slist_append(NULL, buf);
}

static int http_on(CURL *c, const char *addr, const char *method, const char *path,
                   const char *body, long len, const char *const *headers, long timeout_ms,
                   fx_resp *r)
{
    struct curl_slist *hl = NULL;
    struct curl_slist *pin = NULL;
    char pinbuf[160];
    char url[8192];
    size_t i;
    long long t0 = fx_now_ms();

    memset(r, 0, sizeof *r);
    r->body = calloc(1, 1);
    if (c == NULL || r->body == NULL) {
        r->curl_rc = CURLE_OUT_OF_MEMORY;
        return -1;
    }
    snprintf(url, sizeof url, "http://%s%s", addr, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, trace_cb);
    curl_easy_setopt(c, CURLOPT_DEBUGDATA, r);
    curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
    /* Keep the path exactly as given (no "../" squashing by curl). */
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    hl = curl_slist_append(hl, "Expect:");
    pin = pin_resolve(addr, pinbuf, sizeof pinbuf);
    if (pin != NULL)
        curl_easy_setopt(c, CURLOPT_RESOLVE, pin);
    for (i = 0; headers != NULL && headers[i] != NULL; i++)
        hl = curl_slist_append(hl, headers[i]);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(len < 0 ? (long)strlen(body) : len));
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0 || body != NULL)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    r->curl_rc = (int)curl_easy_perform(c);
    r->hung = r->curl_rc == CURLE_OPERATION_TIMEDOUT;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    {
        curl_off_t ct = 0;
        curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &ct);
        r->connect_us = (long)ct;
        curl_easy_getinfo(c, CURLINFO_LOCAL_PORT, &r->local_port);
    }
    r->ms = fx_now_ms() - t0;
    curl_slist_free_all(hl);
    curl_slist_free_all(pin);
    return r->curl_rc == CURLE_OK && r->status > 0 ? 0 : -1;
}

void fx_resp_free(fx_resp *r)
{
    free(r->body);
    r->body = NULL;
}

const char *fx_header(const fx_resp *r, const char *name, char *out, size_t cap)
{
    const char *p = r->headers;
    size_t nl = strlen(name);

    while (p != NULL && *p != '\0') {
        const char *eol = strstr(p, "\r\n");
        size_t ll = eol != NULL ? (size_t)(eol - p) : strlen(p);
        if (ll > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            size_t vl;
            while (*v == ' ' || *v == '\t')
                v++;
            vl = ll - (size_t)(v - p);
            if (vl >= cap)
                vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return out;
        }
        p = eol != NULL ? eol + 2 : NULL;
    }
    return NULL;
}

bool fx_is_problem(const fx_resp *r, long status, const char *code)
{
    char ct[128];
    cJSON *j, *s, *c, *t, *ti, *d, *rt, *ds;
    bool ok;

    if (r->status != status || fx_header(r, "Content-Type", ct, sizeof ct) == NULL ||
        strncmp(ct, "application/problem+json", 24) != 0)
        return false;
    j = cJSON_Parse(r->body);
    if (j == NULL)
        return false;
    s = cJSON_GetObjectItemCaseSensitive(j, "status");
    c = cJSON_GetObjectItemCaseSensitive(j, "code");
    t = cJSON_GetObjectItemCaseSensitive(j, "type");
    ti = cJSON_GetObjectItemCaseSensitive(j, "title");
    d = cJSON_GetObjectItemCaseSensitive(j, "detail");
    rt = cJSON_GetObjectItemCaseSensitive(j, "retryable");
    ds = cJSON_GetObjectItemCaseSensitive(j, "details");
    ok = cJSON_IsNumber(s) && (long)s->valuedouble == status && cJSON_IsString(c) &&
         cJSON_IsString(t) && cJSON_IsString(ti) && cJSON_IsString(d) && cJSON_IsBool(rt) &&
         cJSON_IsObject(ds) && (code == NULL || strcmp(c->valuestring, code) == 0);
    cJSON_Delete(j);
    return ok;
}

int fx_raw(const char *addr, const char *req, size_t len, int timeout_ms, char *out, size_t cap)
{
    int fd = tcp_connect(addr);
    size_t got = 0;
    long long deadline = fx_now_ms() + timeout_ms;
    int status = -1;

    if (cap > 0)
        out[0] = '\0';
    if (fd < 0)
        return 0;
    /* Send in pieces and stop as soon as the server answers: a server that
     * refuses a big body early (413) and closes would otherwise see our
     * unread bytes, reset the connection and destroy its own answer. */
    while (len > 0 && !readable(fd, 0)) {
        size_t k = len < 16384 ? len : 16384;
        if (send_all(fd, req, k) != 0)
            break;
        req += k;
        len -= k;
    }
    while (got + 1 < cap) {
        long long left = deadline - fx_now_ms();
        ssize_t n;
        if (left <= 0 || !readable(fd, (int)left))
            break;
        n = recv(fd, out + got, cap - 1 - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            status = 0;
            break;
        }
        got += (size_t)n;
        out[got] = '\0';
    }
    close(fd);
    if (got >= 12 && strncmp(out, "HTTP/1.", 7) == 0)
        return atoi(out + 9);
    return got > 0 ? 0 : status;
}

int fx_http_raw(const char *addr, const char *method, const char *path, const char *body,
                long timeout_ms, fx_resp *r)
{
    size_t blen = body != NULL ? strlen(body) : 0;
    size_t cap = 65536, got = 0;
    char *buf = malloc(cap);
    char head[1024];
    int n, fd;
    long long t0 = fx_now_ms(), deadline = t0 + timeout_ms;
    const char *sep;

    memset(r, 0, sizeof *r);
    r->body = calloc(1, 1);
    if (buf == NULL || r->body == NULL) {
        free(buf);
        return -1;
    }
    n = snprintf(head, sizeof head,
                 "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                 method, path, addr, blen);
    fd = tcp_connect(addr);
    if (fd < 0) {
        r->curl_rc = CURLE_COULDNT_CONNECT;
        free(buf);
        r->ms = fx_now_ms() - t0;
        return -1;
    }
    if (send_all(fd, head, (size_t)n) != 0 || (blen > 0 && send_all(fd, body, blen) != 0)) {
        r->curl_rc = CURLE_SEND_ERROR;
    }
    for (;;) {
        long long left = deadline - fx_now_ms();
        ssize_t k;
        if (left <= 0 || !readable(fd, (int)left)) {
            r->hung = true;
            r->curl_rc = CURLE_OPERATION_TIMEDOUT;
            break;
        }
        if (got + 1 >= cap)
            break;
        k = recv(fd, buf + got, cap - 1 - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    buf[got] = '\0';
    r->ms = fx_now_ms() - t0;
    if (got < 12 || strncmp(buf, "HTTP/1.", 7) != 0) {
        if (!r->hung && r->curl_rc == 0)
            r->curl_rc = CURLE_GOT_NOTHING;
        free(buf);
        return -1;
    }
    r->status = atol(buf + 9);
    sep = strstr(buf, "\r\n\r\n");
    if (sep != NULL) {
        size_t hl = (size_t)(sep - buf) + 2;
        if (hl >= sizeof r->headers)
            hl = sizeof r->headers - 1;
        memcpy(r->headers, buf, hl);
        r->headers[hl] = '\0';
        free(r->body);
        r->body = strdup(sep + 4);
        r->len = r->body != NULL ? strlen(r->body) : 0;
    }
    free(buf);
    return r->body != NULL ? 0 : -1;
}

/* ---- processes ------------------------------------------------------------- */

int fx_testd(spawned *t, const char *const *extra)
{
    return spawn_testd_control(t, extra);
}

int fx_relay(spawned *r, const char *upstream)
{
    const char *argv[] = {fx_relay_bin(), "--upstream", upstream, "--control", "127.0.0.1:0", NULL};
    if (spawn_start(r, argv, NULL, 10000) != 0)
        return -1;
    if (spawn_read_control(r, 10000) != 0) {
        spawn_kill(r);
        return -1;
    }
    return 0;
}

int fx_proxy(spawned *p, const char *listen, const char *upstream, const char *const *extra,
             const char *log)
{
    const char *argv[64];
    size_t n = 0, i;

    argv[n++] = spawn_proxy_path();
    argv[n++] = "--listen";
    argv[n++] = listen != NULL ? listen : "127.0.0.1:0";
    argv[n++] = "--upstream";
    argv[n++] = upstream;
    /* Short timers keep every cycle quick; scenarios override as needed. */
    argv[n++] = "--request-timeout-ms";
    argv[n++] = "1500";
    argv[n++] = "--connect-timeout-ms";
    argv[n++] = "1000";
    argv[n++] = "--backoff-initial-ms";
    argv[n++] = "20";
    argv[n++] = "--backoff-max-ms";
    argv[n++] = "200";
    argv[n++] = "--shutdown-grace-ms";
    argv[n++] = "2000";
    for (i = 0; extra != NULL && extra[i] != NULL && n + 1 < sizeof argv / sizeof argv[0]; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    unsetenv("RSTMDB_PROXY_CONFIG");
    return spawn_start(p, argv, log, 10000);
}

int fx_wait_ready(const char *addr, long want, long timeout_ms)
{
    long long deadline = fx_now_ms() + timeout_ms;

    do {
        fx_resp r;
        fx_http(addr, "GET", "/readyz", NULL, 0, NULL, 2000, &r);
        fx_resp_free(&r);
        if (r.status == want)
            return 0;
        fx_sleep_ms(20);
    } while (fx_now_ms() < deadline);
    return -1;
}

long fx_rss_kb(pid_t pid)
{
    char path[64], line[256];
    FILE *f;
    long kb = -1;

    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

/* ---- WAL ------------------------------------------------------------------- */

static int wal_push(fx_wal *w, const fx_walrec *rec)
{
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 1024;
        fx_walrec *nv = realloc(w->v, nc * sizeof *nv);
        if (nv == NULL)
            return -1;
        w->v = nv;
        w->cap = nc;
    }
    w->v[w->n++] = *rec;
    return 0;
}

/* The WAL's last offset now (WAL_STATS latest_offset); false when unknown. */
static bool wal_head(const char *addr, uint64_t *head)
{
    fx_resp r;
    cJSON *j, *lo;
    bool ok = false;

    if (fx_http(addr, "GET", "/v1/wal/stats", NULL, 0, NULL, 10000, &r) != 0 || r.status != 200) {
        fx_resp_free(&r);
        return false;
    }
    j = cJSON_Parse(r.body);
    fx_resp_free(&r);
    lo = j != NULL ? cJSON_GetObjectItemCaseSensitive(j, "latest_offset") : NULL;
    if (cJSON_IsNumber(lo)) {
        *head = (uint64_t)lo->valuedouble;
        ok = true;
    }
    cJSON_Delete(j);
    return ok;
}

int fx_wal_read(const char *addr, fx_wal *w, char *why, size_t whycap)
{
    uint64_t from = 0, head = 0;
    int pages = 0;
    /* Writers may still be running: read up to the head as of now, or a
     * reader that is barely faster than they are chases the head for
     * ever (each page bringing the few records written since the last). */
    bool bounded = wal_head(addr, &head);

    memset(w, 0, sizeof *w);
    for (pages = 0; pages < 10000; pages++) {
        char path[128];
        fx_resp r;
        cJSON *j, *recs, *next, *it;

        snprintf(path, sizeof path, "/v1/wal?from_offset=%" PRIu64 "&limit=1000", from);
        if (fx_http(addr, "GET", path, NULL, 0, NULL, 10000, &r) != 0 || r.status != 200) {
            snprintf(why, whycap, "GET %s: status %ld curl %d: %.200s", path, r.status, r.curl_rc,
                     r.body);
            fx_resp_free(&r);
            return -1;
        }
        j = cJSON_Parse(r.body);
        fx_resp_free(&r);
        recs = j != NULL ? cJSON_GetObjectItemCaseSensitive(j, "records") : NULL;
        next = j != NULL ? cJSON_GetObjectItemCaseSensitive(j, "next_offset") : NULL;
        if (!cJSON_IsArray(recs)) {
            snprintf(why, whycap, "WAL page without records");
            cJSON_Delete(j);
            return -1;
        }
        cJSON_ArrayForEach(it, recs)
        {
            fx_walrec rec;
            cJSON *off = cJSON_GetObjectItemCaseSensitive(it, "offset");
            cJSON *entry = cJSON_GetObjectItemCaseSensitive(it, "entry");
            cJSON *type = cJSON_GetObjectItemCaseSensitive(entry, "type");
            cJSON *inst = cJSON_GetObjectItemCaseSensitive(entry, "instance_id");
            memset(&rec, 0, sizeof rec);
            if (!cJSON_IsNumber(off) || !cJSON_IsString(type)) {
                snprintf(why, whycap, "WAL record without offset/type");
                cJSON_Delete(j);
                return -1;
            }
            rec.offset = (uint64_t)off->valuedouble;
            snprintf(rec.type, sizeof rec.type, "%s", type->valuestring);
            if (cJSON_IsString(inst))
                snprintf(rec.instance_id, sizeof rec.instance_id, "%s", inst->valuestring);
            if (wal_push(w, &rec) != 0) {
                cJSON_Delete(j);
                return -1;
            }
        }
        if (!cJSON_IsNumber(next) || cJSON_GetArraySize(recs) == 0 ||
            (bounded && w->n > 0 && w->v[w->n - 1].offset >= head)) {
            cJSON_Delete(j);
            return 0;
        }
        if ((uint64_t)next->valuedouble <= from) {
            snprintf(why, whycap, "WAL paging made no progress at %" PRIu64, from);
            cJSON_Delete(j);
            return -1;
        }
        from = (uint64_t)next->valuedouble;
        cJSON_Delete(j);
    }
    snprintf(why, whycap, "WAL too long (%zu records, next %" PRIu64 ")", w->n, from);
    return -1;
}

void fx_wal_free(fx_wal *w)
{
    free(w->v);
    memset(w, 0, sizeof *w);
}

const fx_walrec *fx_wal_find(const fx_wal *w, uint64_t offset)
{
    size_t lo = 0, hi = w->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (w->v[mid].offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < w->n && w->v[lo].offset == offset ? &w->v[lo] : NULL;
}

/* ---- SSE ------------------------------------------------------------------- */

static void sse_note_bad(fx_sse *s, const char *what, uint64_t a, uint64_t b)
{
    if (s->bad++ == 0)
        snprintf(s->first_bad, sizeof s->first_bad, "%s: %" PRIu64 " / %" PRIu64, what, a, b);
}

/* One complete line (no terminator). Runs on the follower thread. */
static void sse_line(fx_sse *s, const char *l, size_t len)
{
    if (len == 0) { /* dispatch */
        pthread_mutex_lock(&s->mu);
        if (strcmp(s->cur_event, "error") == 0) {
            s->errors_seen++;
        } else if (s->have_id) {
            uint64_t last = s->n > 0 ? s->ids[s->n - 1] : 0;
            if (s->n > 0 && s->cur_id <= last)
                sse_note_bad(s, "id not above the previous one", s->cur_id, last);
            if (!s->cur_data_ok)
                sse_note_bad(s, "data lacks its id as wal_offset", s->cur_id, s->cur_id);
            if (s->n == s->cap) {
                size_t nc = s->cap ? s->cap * 2 : 1024;
                uint64_t *nv = realloc(s->ids, nc * sizeof *nv);
                if (nv != NULL) {
                    s->ids = nv;
                    s->cap = nc;
                }
            }
            if (s->n < s->cap)
                s->ids[s->n++] = s->cur_id;
        }
        pthread_mutex_unlock(&s->mu);
        s->have_id = false;
        s->cur_event[0] = '\0';
        s->cur_data_ok = false;
        return;
    }
    if (l[0] == ':') {
        if (!s->got_open && strstr(l, "stream open") != NULL) {
            s->got_open = true;
            pthread_mutex_lock(&s->mu);
            s->opens++;
            pthread_mutex_unlock(&s->mu);
        }
        return;
    }
    if (len > 4 && strncmp(l, "id: ", 4) == 0) {
        s->have_id = true;
        s->cur_id = strtoull(l + 4, NULL, 10);
    } else if (len > 7 && strncmp(l, "event: ", 7) == 0) {
        snprintf(s->cur_event, sizeof s->cur_event, "%.*s", (int)(len - 7), l + 7);
    } else if (len > 6 && strncmp(l, "data: ", 6) == 0) {
        char want[48];
        snprintf(want, sizeof want, "\"wal_offset\":%" PRIu64, s->cur_id);
        s->cur_data_ok = s->have_id && strstr(l, want) != NULL;
        if (strcmp(s->cur_event, "error") == 0) {
            pthread_mutex_lock(&s->mu);
            snprintf(s->last_error, sizeof s->last_error, "%.*s", (int)(len - 6), l + 6);
            pthread_mutex_unlock(&s->mu);
        }
    }
}

static size_t sse_write_cb(char *p, size_t sz, size_t n, void *arg)
{
    fx_sse *s = arg;
    size_t k = sz * n, i;

    for (i = 0; i < k; i++) {
        char ch = p[i];
        if (ch == '\n') {
            size_t len = s->llen;
            if (len > 0 && s->line[len - 1] == '\r')
                len--;
            s->line[len] = '\0';
            sse_line(s, s->line, len);
            s->llen = 0;
        } else if (s->llen + 1 < sizeof s->line) {
            s->line[s->llen++] = ch;
        }
    }
    return k;
}

static int sse_progress_cb(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    fx_sse *s = arg;
    (void)a;
    (void)b;
    (void)c;
    (void)d;
    return s->stop ? 1 : 0;
}

static void *sse_main(void *arg)
{
    fx_sse *s = arg;

    while (!s->stop) {
        CURL *c = curl_easy_init();
        struct curl_slist *hl = NULL;
        struct curl_slist *pin;
        char url[512], lei[64], pinbuf[160];

        if (c == NULL)
            break;
        pthread_mutex_lock(&s->mu);
        snprintf(url, sizeof url, "http://%s%s", s->addr, s->path);
        if (s->n > 0) {
            snprintf(lei, sizeof lei, "Last-Event-ID: %" PRIu64, s->ids[s->n - 1]);
            hl = curl_slist_append(hl, lei);
        }
        pthread_mutex_unlock(&s->mu);
        s->llen = 0;
        s->have_id = false;
        s->got_open = false;
        s->cur_event[0] = '\0';
        pin = pin_resolve(s->addr, pinbuf, sizeof pinbuf);
        curl_easy_setopt(c, CURLOPT_RESOLVE, pin);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sse_write_cb);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, sse_progress_cb);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, s);
        curl_easy_perform(c);
        curl_slist_free_all(hl);
        curl_slist_free_all(pin);
        curl_easy_cleanup(c);
        if (s->stop)
            break;
        pthread_mutex_lock(&s->mu);
        s->ends++;
        pthread_mutex_unlock(&s->mu);
        if (!s->reconnect)
            break;
        fx_sleep_ms(50);
    }
    return NULL;
}

int fx_sse_start(fx_sse *s, const char *addr, const char *path, bool reconnect)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    snprintf(s->addr, sizeof s->addr, "%s", addr);
    snprintf(s->path, sizeof s->path, "%s", path);
    s->reconnect = reconnect;
    if (pthread_create(&s->th, NULL, sse_main, s) != 0)
        return -1;
    s->started = true;
    return 0;
}

void fx_sse_set_addr(fx_sse *s, const char *addr)
{
    pthread_mutex_lock(&s->mu);
    snprintf(s->addr, sizeof s->addr, "%s", addr);
    pthread_mutex_unlock(&s->mu);
}

int fx_sse_wait_open(fx_sse *s, unsigned opens, long timeout_ms)
{
    long long deadline = fx_now_ms() + timeout_ms;
    for (;;) {
        unsigned o;
        pthread_mutex_lock(&s->mu);
        o = s->opens;
        pthread_mutex_unlock(&s->mu);
        if (o >= opens)
            return 0;
        if (fx_now_ms() >= deadline)
            return -1;
        fx_sleep_ms(10);
    }
}

int fx_sse_wait_id(fx_sse *s, uint64_t id, long timeout_ms)
{
    long long deadline = fx_now_ms() + timeout_ms;
    for (;;) {
        uint64_t last;
        pthread_mutex_lock(&s->mu);
        last = s->n > 0 ? s->ids[s->n - 1] : 0;
        pthread_mutex_unlock(&s->mu);
        if (last >= id)
            return 0;
        if (fx_now_ms() >= deadline)
            return -1;
        fx_sleep_ms(10);
    }
}

void fx_sse_stop(fx_sse *s)
{
    if (!s->started)
        return;
    s->stop = true;
    pthread_join(s->th, NULL);
    s->started = false;
    free(s->ids);
    s->ids = NULL;
    pthread_mutex_destroy(&s->mu);
}

int fx_sse_check(const fx_sse *s, const fx_wal *w, const char *instance, uint64_t upto, char *why,
                 size_t whycap)
{
    size_t i, k = 0;
    uint64_t first;

    if (s->bad > 0) {
        snprintf(why, whycap, "%u bad ids, first: %s", s->bad, s->first_bad);
        return -1;
    }
    if (s->n == 0) {
        snprintf(why, whycap, "no event received");
        return -1;
    }
    first = s->ids[0];
    for (i = 0; i < w->n; i++) {
        const fx_walrec *rec = &w->v[i];
        if (rec->offset < first || rec->offset > upto || strcmp(rec->type, "apply_event") != 0)
            continue;
        if (instance != NULL && strcmp(rec->instance_id, instance) != 0)
            continue;
        if (k >= s->n || s->ids[k] != rec->offset) {
            snprintf(why, whycap,
                     "gap or mismatch at event #%zu: WAL has %" PRIu64 ", stream has %" PRIu64
                     " (%zu ids received)",
                     k, rec->offset, k < s->n ? s->ids[k] : 0, s->n);
            return -1;
        }
        k++;
    }
    if (k < s->n && s->ids[k] <= upto) {
        snprintf(why, whycap, "stream has id %" PRIu64 " that is not an event in the WAL",
                 s->ids[k]);
        return -1;
    }
    return 0;
}
