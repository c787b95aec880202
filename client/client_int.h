/* client_int.h (private): the structures shared by the client's modules
 * (options, tls, client, reply, event, ops, sync). Nothing outside client/
 * should include it; the public contracts are in include/rstmdb/.
 */
#ifndef RSTMDB_CLIENT_INT_H
#define RSTMDB_CLIENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>
#include <openssl/ssl.h>

#include "rstmdb/client.h"

/* ---- options.c ---- */

#define OPTIONS_MAX_FEATURES 32

struct rstmdb_options {
    char *auth;      /* bearer token or NULL */
    rstmdb_tls *tls; /* a reference (tls_ref) or NULL */
    unsigned connect_timeout_ms;
    unsigned request_timeout_ms;
    char *client_name; /* NULL = "librstmdb" */
    rstmdb_wire_mode wire_mode;
    char *features[OPTIONS_MAX_FEATURES];
    size_t nfeatures;
    size_t max_frame;
    size_t max_queued;      /* requests queued before READY */
    size_t max_inflight;    /* requests sent or queued, not answered */
    size_t max_events;      /* blocking API: events buffered per subscription */
    struct evdns_base *dns; /* borrowed resolver for host names, or NULL */
};

/* A deep copy of `src`, or the defaults when src is NULL. NULL on OOM. */
rstmdb_options *options_dup(const rstmdb_options *src);

/* ---- client.c ---- */

/* True for an IPv4 or IPv6 address literal (no brackets), which is never
 * looked up and never sent as SNI. */
bool client_is_address_literal(const char *host);

/* ---- tls.c ---- */

struct rstmdb_tls {
    SSL_CTX *ctx;
    char *server_name; /* override for SNI and the hostname check, or NULL */
    bool insecure;
    unsigned refs;
};

rstmdb_tls *tls_ref(rstmdb_tls *tls);
/* A new SSL for one connection to `host`: SNI (names only, not IP
 * literals) and the hostname/IP check unless insecure. NULL + *err on failure. */
SSL *tls_new_ssl(rstmdb_tls *tls, const char *host, rstmdb_error **err);

/* What a connection's SSL saw that its error queue may not keep: the last
 * fatal alert the server sent (0 = none), and whether the server asked for
 * a client certificate that is not configured (a TLS 1.3 server's alert
 * about it can be lost to the reset that follows). */
typedef struct tls_notes {
    int alert;
    bool cert_requested;
} tls_notes;
/* Fill `notes` (owned by the caller) from `ssl`'s callbacks; tls_unwatch
 * before `notes` goes while the SSL lives on. */
void tls_watch(SSL *ssl, tls_notes *notes);
void tls_unwatch(SSL *ssl);
struct bufferevent;
/* Move libevent's OpenSSL error codes for `bev` into errs (newest first);
 * returns how many were kept (at most cap; the rest are dropped). */
size_t tls_take_errors(struct bufferevent *bev, unsigned long *errs, size_t cap);
/* Why TLS failed, in words, into out: the certificate verify result of
 * `ssl`, OpenSSL's most specific reason among errs (or else the alert in
 * `notes`), and a missing client certificate. False when none of them is
 * known (a bare EOF or reset). */
bool tls_describe_failure(SSL *ssl, const unsigned long *errs, size_t n, const tls_notes *notes,
                          char *out, size_t cap);

/* ---- reply.c ---- */

/* Lazily parsed parts of a reply (mutable behind a const reply). */
typedef struct reply_cache {
    cJSON *result;
    bool parsed;
} reply_cache;

struct rstmdb_reply {
    int status;              /* RSTMDB_OK, RSTMDB_ERR_SERVER or a local failure */
    const rstmdb_error *err; /* NULL on success */
    rstmdb_error *err_owned; /* err when the reply owns it */
    const char *raw;         /* the response document, or NULL */
    size_t raw_len;
    size_t result_off, result_len;
    bool has_result;
    bool has_wal_offset;
    uint64_t wal_offset;
    bool was_sent;
    reply_cache *cache;
    bool owned; /* allocated by rstmdb_reply_dup */
};

/* Fill `r` from a response document already scanned into members. Sets
 * status (OK / SERVER / PROTOCOL when "status" is neither), the result span,
 * meta.wal_offset and, for errors, a new owned error. Returns 0 or
 * RSTMDB_ERR_NOMEM. */
struct jscan_member;
int reply_from_doc(rstmdb_reply *r, reply_cache *cache, const char *doc, size_t len,
                   const struct jscan_member *m, size_t n);
/* A local failure reply (borrowed error). */
void reply_init_failure(rstmdb_reply *r, reply_cache *cache, const rstmdb_error *why,
                        bool was_sent);
/* Release what reply_from_doc allocated (owned error, parsed result). */
void reply_deinit(rstmdb_reply *r);

/* ---- event.c ---- */

typedef struct event_cache {
    cJSON *tree;
    bool parsed;
    char *body;
    size_t body_len;
    bool has_wal_offset;
    uint64_t wal_offset;
} event_cache;

struct rstmdb_event {
    const char *raw;
    size_t raw_len;
    const char *sub_id; /* NUL-terminated */
    event_cache *cache;
    bool owned;
};

void event_init(rstmdb_event *ev, event_cache *cache, const char *raw, size_t len,
                const char *sub_id);
void event_deinit(rstmdb_event *ev);

#endif
