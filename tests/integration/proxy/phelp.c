/* phelp.c: process and HTTP plumbing for the proxy's integration tests. It
 * never mocks anything: testd and the proxy are the real binaries. */
#include "phelp.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

/* A failed assertion leaves the test's children running, and ctest then
 * waits on their inherited stdout until its timeout: kill every child of
 * this process when the test program exits. */
static void kill_children(void)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char path[300], buf[512];
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *rp = strrchr(buf, ')');
        int ppid = 0;
        char state;
        if (rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == (int)getpid())
            kill(atoi(de->d_name), SIGKILL);
    }
    closedir(d);
}

static void arm_cleanup(void)
{
    static bool armed;
    if (!armed) {
        armed = true;
        atexit(kill_children);
    }
}

static void start_proxy(penv *e, const char *upstream, const char *const proxy_args[],
                        const char *log_path)
{
    arm_cleanup();
    const char *argv[48];
    size_t n = 0;
    argv[n++] = spawn_proxy_path();
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--upstream";
    argv[n++] = upstream;
    argv[n++] = "--log-level";
    argv[n++] = "warn";
    for (size_t i = 0; proxy_args && proxy_args[i] && n < 46; i++)
        argv[n++] = proxy_args[i];
    argv[n] = NULL;
    ck_assert_msg(spawn_start(&e->proxy, argv, log_path, 10000) == 0, "proxy did not start");
    snprintf(e->base, sizeof e->base, "http://%s", e->proxy.addr);
    if (e->c == NULL)
        e->c = curl_easy_init();
}

void penv_start_proxy(penv *e, const char *upstream, const char *const proxy_args[])
{
    start_proxy(e, upstream, proxy_args, NULL);
}

void penv_start(penv *e, const char *const testd_args[], const char *const proxy_args[])
{
    penv_start_logged(e, testd_args, proxy_args, NULL);
}

void penv_start_logged(penv *e, const char *const testd_args[], const char *const proxy_args[],
                       const char *proxy_log)
{
    memset(e, 0, sizeof e[0]);
    e->testd.pid = -1;
    e->proxy.pid = -1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    ck_assert_msg(spawn_testd(&e->testd, testd_args) == 0, "testd did not start");
    start_proxy(e, e->testd.addr, proxy_args, proxy_log);
    /* The pool connects in the background: wait until it is ready. */
    for (int i = 0; i < 200; i++) {
        hresp r;
        http_req(e, NULL, "GET", "/readyz", NULL, NULL, &r);
        long st = r.status;
        hresp_free(&r);
        if (st == 200)
            return;
        usleep(20000);
    }
    ck_abort_msg("proxy never became ready");
}

int penv_stop(penv *e)
{
    int st = -1;
    if (e->proxy.pid > 0)
        st = spawn_stop(&e->proxy, 5000);
    if (e->testd.pid > 0)
        spawn_stop(&e->testd, 2000);
    if (e->c)
        curl_easy_cleanup(e->c);
    e->c = NULL;
    return st;
}

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
    hresp *r = arg;
    size_t k = sz * n;
    char *nb = realloc(r->body, r->len + k + 1);
    if (nb == NULL)
        return 0;
    r->body = nb;
    memcpy(r->body + r->len, p, k);
    r->len += k;
    r->body[r->len] = '\0';
    return k;
}

static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
    hresp *r = arg;
    size_t k = sz * n;
    char *nb = realloc(r->headers, r->hlen + k + 1);
    if (nb == NULL)
        return 0;
    r->headers = nb;
    memcpy(r->headers + r->hlen, p, k);
    r->hlen += k;
    r->headers[r->hlen] = '\0';
    return k;
}

void phelp_record(const char *method, const char *path, long status, const char *headers,
                  const char *body, size_t len)
{
    const char *dir = getenv("RSTMDB_OPENAPI_RECORD");
    if (dir == NULL || *dir == '\0' || status <= 0)
        return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", method);
    cJSON_AddStringToObject(o, "path", path);
    cJSON_AddNumberToObject(o, "status", (double)status);
    cJSON_AddStringToObject(o, "headers", headers ? headers : "");
    /* Bodies are text; a NUL in one would cut it, which the checker then
     * reports as a body that does not parse. */
    char *b = malloc(len + 1);
    if (b != NULL) {
        memcpy(b, body ? body : "", len);
        b[len] = '\0';
        cJSON_AddStringToObject(o, "body", b);
        free(b);
    }
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char file[4200];
    snprintf(file, sizeof file, "%s/%ld.jsonl", dir, (long)getpid());
    FILE *f = line ? fopen(file, "a") : NULL;
    if (f != NULL) {
        fprintf(f, "%s\n", line);
        fclose(f);
    }
    free(line);
}

void http_req(penv *e, CURL *c, const char *method, const char *path, const char *body,
              const char *const hdrs[], hresp *r)
{
    memset(r, 0, sizeof *r);
    r->body = calloc(1, 1);
    r->headers = calloc(1, 1);
    if (c == NULL)
        c = e->c;
    char url[1024];
    snprintf(url, sizeof url, "%s%s", e->unix_path[0] ? "http://localhost" : e->base, path);
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    /* Send the path as written: tests probe dot-segments and encoded ids. */
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    if (e->unix_path[0])
        curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, e->unix_path);
    struct curl_slist *sl = NULL;
    sl = curl_slist_append(sl, "Expect:"); /* no 100-continue round trip */
    if (body != NULL)
        sl = curl_slist_append(sl, "Content-Type: application/json");
    for (size_t i = 0; hdrs && hdrs[i]; i++)
        sl = curl_slist_append(sl, hdrs[i]);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, sl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(sl);
    if (rc != CURLE_OK) {
        r->status = -1;
        return;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    phelp_record(method, path, r->status, r->headers, r->body, r->len);
}

void hresp_free(hresp *r)
{
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof *r);
}

bool hresp_header(const hresp *r, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = r->headers; p && *p;) {
        const char *eol = strstr(p, "\r\n");
        size_t l = eol ? (size_t)(eol - p) : strlen(p);
        if (l > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            snprintf(out, cap, "%.*s", (int)(l - (size_t)(v - p)), v);
            return true;
        }
        p = eol ? eol + 2 : p + l;
    }
    return false;
}

bool hresp_json(const hresp *r, const char *key, char *out, size_t cap)
{
    cJSON *j = cJSON_Parse(r->body);
    cJSON *v = j ? cJSON_GetObjectItemCaseSensitive(j, key) : NULL;
    bool ok = false;
    if (v != NULL && cJSON_IsString(v)) {
        snprintf(out, cap, "%s", v->valuestring);
        ok = true;
    } else if (v != NULL) {
        char *s = cJSON_PrintUnformatted(v);
        snprintf(out, cap, "%s", s ? s : "");
        free(s);
        ok = true;
    }
    cJSON_Delete(j);
    return ok;
}

uint64_t hresp_u64(const hresp *r, const char *key)
{
    char b[64];
    ck_assert_msg(hresp_json(r, key, b, sizeof b), "no %s in %s", key, r->body);
    return strtoull(b, NULL, 10);
}

void seed_machines(penv *e)
{
    const char *def = "{\"definition\":{\"states\":[\"s0\",\"s1\"],\"initial\":\"s0\","
                      "\"transitions\":[{\"from\":\"s0\",\"event\":\"GO\",\"to\":\"s1\"},"
                      "{\"from\":\"s1\",\"event\":\"BACK\",\"to\":\"s0\"}]}}";
    const char *gdef = "{\"definition\":{\"states\":[\"s0\",\"s1\"],\"initial\":\"s0\","
                       "\"transitions\":[{\"from\":\"s0\",\"event\":\"GO\",\"to\":\"s1\","
                       "\"guard\":\"ctx.ok\"}]}}";
    const char *names[] = {"m", "n", "g"};
    for (int i = 0; i < 3; i++) {
        char path[64];
        snprintf(path, sizeof path, "/v1/machines/%s/versions/1", names[i]);
        hresp r;
        http_req(e, NULL, "PUT", path, i == 2 ? gdef : def, NULL, &r);
        ck_assert_msg(r.status == 201 || r.status == 200, "seed %s: %ld %s", names[i], r.status,
                      r.body);
        hresp_free(&r);
    }
}

void create_instance(penv *e, const char *machine, const char *id)
{
    char b[256];
    snprintf(b, sizeof b, "{\"machine\":\"%s\",\"version\":1,\"instance_id\":\"%s\"}", machine, id);
    hresp r;
    http_req(e, NULL, "POST", "/v1/instances", b, NULL, &r);
    ck_assert_msg(r.status == 201, "create %s: %ld %s", id, r.status, r.body);
    hresp_free(&r);
}

uint64_t apply_event(penv *e, const char *id, const char *event, const char *payload_json)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/instances/%s/events", id);
    size_t cap = 64 + strlen(event) + (payload_json ? strlen(payload_json) : 0);
    char *b = malloc(cap);
    if (payload_json)
        snprintf(b, cap, "{\"event\":\"%s\",\"payload\":%s}", event, payload_json);
    else
        snprintf(b, cap, "{\"event\":\"%s\"}", event);
    hresp r;
    http_req(e, NULL, "POST", path, b, NULL, &r);
    free(b);
    ck_assert_msg(r.status == 200, "apply %s %s: %ld %.300s", id, event, r.status, r.body);
    uint64_t off = hresp_u64(&r, "wal_offset");
    hresp_free(&r);
    return off;
}

static int run_once(const char *const args[], char *out, size_t cap, int which)
{
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int dn = open("/dev/null", O_WRONLY);
        dup2(pfd[1], which);
        dup2(dn, which == 1 ? 2 : 1);
        close(pfd[0]);
        const char *argv[32];
        size_t n = 0;
        argv[n++] = spawn_proxy_path();
        for (size_t i = 0; args[i] && n < 31; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        execv(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(pfd[1]);
    size_t got = 0;
    ssize_t k;
    while (got + 1 < cap && (k = read(pfd[0], out + got, cap - 1 - got)) > 0)
        got += (size_t)k;
    out[got] = '\0';
    char sink[256];
    while (read(pfd[0], sink, sizeof sink) > 0) {
    }
    close(pfd[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int run_proxy_once(const char *const args[], char *out, size_t cap)
{
    return run_once(args, out, cap, 1);
}

int run_proxy_once_stderr(const char *const args[], char *err, size_t cap)
{
    return run_once(args, err, cap, 2);
}

const char *slurp_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

void jwt_mint(const char *keydir, const char *kid, const char *alg, const char *claims, int ttl,
              char *out, size_t cap)
{
    static char cmd[16384];
    int w = snprintf(cmd, sizeof cmd, "'%s' '%s' token '%s' '%s' %s '%s' %d", RSTMDB_PYTHON3,
                     JWT_MINT, keydir, kid, alg, claims, ttl);
    ck_assert(w > 0 && (size_t)w < sizeof cmd);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, cap - 1, p);
    int rest = fgetc(p); /* read to EOF: the token must fit, and the minter must not see EPIPE */
    ck_assert_int_eq(pclose(p), 0);
    ck_assert_msg(rest == EOF, "token longer than %zu bytes", cap - 1);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        n--;
    out[n] = '\0';
    ck_assert_uint_gt(n, 20);
}

void jwt_keys(const char *keydir)
{
    char cmd[1024];
    int w = snprintf(cmd, sizeof cmd, "'%s' '%s' keys '%s'", RSTMDB_PYTHON3, JWT_MINT, keydir);
    ck_assert(w > 0 && (size_t)w < sizeof cmd);
    ck_assert_msg(system(cmd) == 0, "jwt_mint.py keys failed (python3-jwt missing?)");
}
