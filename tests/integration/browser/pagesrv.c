/* pagesrv.c: a libmicrohttpd server on 127.0.0.1:0 for the browser test: GET /
 * answers the page, POST /log stores the body. It must not interpret the
 * records (the test does) and stores at most PAGESRV_MAX_RECORDS of them. */
#include "pagesrv.h"

#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PAGESRV_MAX_RECORDS 4096
#define PAGESRV_MAX_BODY    16384

struct pagesrv {
    struct MHD_Daemon *d;
    char *html;
    char *set_cookie; /* or NULL */
    int port;
    pthread_mutex_t mu;
    char **recs;
    size_t nrecs;
    unsigned page_hits;
    unsigned dropped;
};

/* One POST body being received (MHD calls the handler once per chunk). */
typedef struct upload {
    char *buf;
    size_t len;
    bool too_big;
} upload;

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             const char *body, const char *set_cookie)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)(uintptr_t)body,
                                                             MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    if (type != NULL)
        MHD_add_response_header(r, "Content-Type", type);
    /* The page must never come from a cache: each run embeds new ports. */
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (set_cookie != NULL)
        MHD_add_response_header(r, "Set-Cookie", set_cookie);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void store(pagesrv *ps, upload *u)
{
    pthread_mutex_lock(&ps->mu);
    if (u->too_big || ps->nrecs >= PAGESRV_MAX_RECORDS) {
        ps->dropped++;
    } else {
        ps->recs[ps->nrecs++] = u->buf;
        u->buf = NULL;
    }
    pthread_mutex_unlock(&ps->mu);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    pagesrv *ps = cls;
    (void)version;
    if (strcmp(method, "POST") == 0 && strcmp(url, "/log") == 0) {
        upload *u = *con_cls;
        if (u == NULL) {
            u = calloc(1, sizeof *u);
            if (u == NULL)
                return MHD_NO;
            *con_cls = u;
            return MHD_YES;
        }
        if (*upload_data_size > 0) {
            size_t k = *upload_data_size;
            *upload_data_size = 0;
            if (u->too_big || u->len + k > PAGESRV_MAX_BODY) {
                u->too_big = true;
                return MHD_YES;
            }
            char *nb = realloc(u->buf, u->len + k + 1);
            if (nb == NULL) {
                u->too_big = true;
                return MHD_YES;
            }
            u->buf = nb;
            memcpy(u->buf + u->len, upload_data, k);
            u->len += k;
            u->buf[u->len] = '\0';
            return MHD_YES;
        }
        if (u->buf == NULL)
            u->too_big = true; /* an empty record is a page bug: count it as dropped */
        store(ps, u);
        return reply(conn, MHD_HTTP_OK, "text/plain", "ok", NULL);
    }
    if (strcmp(method, "GET") == 0 && strcmp(url, "/") == 0) {
        pthread_mutex_lock(&ps->mu);
        ps->page_hits++;
        char *cookie = ps->set_cookie ? strdup(ps->set_cookie) : NULL;
        pthread_mutex_unlock(&ps->mu);
        enum MHD_Result ret =
            reply(conn, MHD_HTTP_OK, "text/html; charset=utf-8", ps->html, cookie);
        free(cookie);
        return ret;
    }
    return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", "not found", NULL);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    upload *u = *con_cls;
    if (u != NULL) {
        free(u->buf);
        free(u);
        *con_cls = NULL;
    }
}

int pagesrv_new(pagesrv **out, const char *html)
{
    *out = NULL;
    pagesrv *ps = calloc(1, sizeof *ps);
    if (ps == NULL)
        return -1;
    pthread_mutex_init(&ps->mu, NULL);
    ps->html = strdup(html);
    ps->recs = calloc(PAGESRV_MAX_RECORDS, sizeof ps->recs[0]);
    if (ps->html == NULL || ps->recs == NULL) {
        pagesrv_free(ps);
        return -1;
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    ps->d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                         on_request, ps, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, ps, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned)64, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (ps->d == NULL) {
        pagesrv_free(ps);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(ps->d, MHD_DAEMON_INFO_BIND_PORT);
    if (di == NULL || di->port == 0) {
        pagesrv_free(ps);
        return -1;
    }
    ps->port = di->port;
    *out = ps;
    return 0;
}

void pagesrv_free(pagesrv *ps)
{
    if (ps == NULL)
        return;
    if (ps->d != NULL)
        MHD_stop_daemon(ps->d);
    for (size_t i = 0; i < ps->nrecs; i++)
        free(ps->recs[i]);
    free(ps->recs);
    free(ps->html);
    free(ps->set_cookie);
    pthread_mutex_destroy(&ps->mu);
    free(ps);
}

int pagesrv_set_cookie(pagesrv *ps, const char *set_cookie)
{
    char *c = NULL;
    if (set_cookie != NULL && (c = strdup(set_cookie)) == NULL)
        return -1;
    pthread_mutex_lock(&ps->mu);
    free(ps->set_cookie);
    ps->set_cookie = c;
    pthread_mutex_unlock(&ps->mu);
    return 0;
}

int pagesrv_port(const pagesrv *ps)
{
    return ps->port;
}

unsigned pagesrv_page_hits(pagesrv *ps)
{
    pthread_mutex_lock(&ps->mu);
    unsigned n = ps->page_hits;
    pthread_mutex_unlock(&ps->mu);
    return n;
}

size_t pagesrv_count(pagesrv *ps)
{
    pthread_mutex_lock(&ps->mu);
    size_t n = ps->nrecs;
    pthread_mutex_unlock(&ps->mu);
    return n;
}

char *pagesrv_record(pagesrv *ps, size_t i)
{
    pthread_mutex_lock(&ps->mu);
    char *r = i < ps->nrecs ? strdup(ps->recs[i]) : NULL;
    pthread_mutex_unlock(&ps->mu);
    return r;
}

unsigned pagesrv_dropped(pagesrv *ps)
{
    pthread_mutex_lock(&ps->mu);
    unsigned n = ps->dropped;
    pthread_mutex_unlock(&ps->mu);
    return n;
}
