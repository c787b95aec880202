/* tls.c: rstmdb_tls, a shared OpenSSL client context (CA, client cert,
 * verification mode) and the per-connection SSL with SNI and the hostname
 * check. Verification is on unless rstmdb_tls_insecure() built it. No I/O. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <event2/bufferevent_ssl.h>

#include "client_int.h"
#include "error_int.h"

/* The most recent OpenSSL error as text, for error messages. */
static const char *tls_ossl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0)
        return "unknown OpenSSL error";
    ERR_error_string_n(e, buf, len);
    return buf;
}

static int tls_client_cert_cb(SSL *ssl, X509 **x509, EVP_PKEY **pkey);

static int tls_new_ctx(rstmdb_tls **out, bool insecure, rstmdb_error **err)
{
    char why[256];
    rstmdb_tls *t = calloc(1, sizeof(*t));
    if (!t)
        return error_set(err, RSTMDB_ERR_NOMEM, "out of memory");
    ERR_clear_error();
    t->ctx = SSL_CTX_new(TLS_client_method());
    if (!t->ctx) {
        free(t);
        return error_set(err, RSTMDB_ERR_TLS, "SSL_CTX_new: %s", tls_ossl_reason(why, sizeof(why)));
    }
    /* The real server speaks TLS 1.2 and 1.3 (rustls); nothing older. */
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(t->ctx, insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_client_cert_cb(t->ctx, tls_client_cert_cb);
    t->insecure = insecure;
    t->refs = 1;
    *out = t;
    return RSTMDB_OK;
}

int rstmdb_tls_from_files(rstmdb_tls **out, const char *ca, const char *cert, const char *key,
                          rstmdb_error **err)
{
    char why[256];
    rstmdb_tls *t;
    if (!out || (cert == NULL) != (key == NULL))
        return error_set(err, RSTMDB_ERR_INVALID,
                         "tls: a client certificate needs both cert and key");
    int rc = tls_new_ctx(&t, false, err);
    if (rc != RSTMDB_OK)
        return rc;
    if (ca) {
        if (SSL_CTX_load_verify_locations(t->ctx, ca, NULL) != 1) {
            rc = error_set(err, RSTMDB_ERR_TLS, "tls: cannot load CA file %s: %s", ca,
                           tls_ossl_reason(why, sizeof(why)));
            goto fail;
        }
    } else if (SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
        rc = error_set(err, RSTMDB_ERR_TLS, "tls: cannot load the system trust store: %s",
                       tls_ossl_reason(why, sizeof(why)));
        goto fail;
    }
    if (cert) {
        if (SSL_CTX_use_certificate_chain_file(t->ctx, cert) != 1) {
            rc = error_set(err, RSTMDB_ERR_TLS, "tls: cannot load certificate %s: %s", cert,
                           tls_ossl_reason(why, sizeof(why)));
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM) != 1) {
            rc = error_set(err, RSTMDB_ERR_TLS, "tls: cannot load key %s: %s", key,
                           tls_ossl_reason(why, sizeof(why)));
            goto fail;
        }
        if (SSL_CTX_check_private_key(t->ctx) != 1) {
            rc = error_set(err, RSTMDB_ERR_TLS, "tls: key %s does not match certificate %s", key,
                           cert);
            goto fail;
        }
    }
    *out = t;
    return RSTMDB_OK;
fail:
    rstmdb_tls_free(t);
    return rc;
}

int rstmdb_tls_insecure(rstmdb_tls **out, rstmdb_error **err)
{
    if (!out)
        return error_set(err, RSTMDB_ERR_INVALID, "tls: out is NULL");
    return tls_new_ctx(out, true, err);
}

int rstmdb_tls_set_server_name(rstmdb_tls *tls, const char *name)
{
    if (!tls)
        return RSTMDB_ERR_INVALID;
    char *copy = NULL;
    if (name && !(copy = strdup(name)))
        return RSTMDB_ERR_NOMEM;
    free(tls->server_name);
    tls->server_name = copy;
    return RSTMDB_OK;
}

rstmdb_tls *tls_ref(rstmdb_tls *tls)
{
    tls->refs++;
    return tls;
}

void rstmdb_tls_free(rstmdb_tls *tls)
{
    if (!tls || --tls->refs > 0)
        return;
    SSL_CTX_free(tls->ctx);
    free(tls->server_name);
    free(tls);
}

SSL *tls_new_ssl(rstmdb_tls *tls, const char *host, rstmdb_error **err)
{
    char why[256];
    const char *name = tls->server_name ? tls->server_name : host;
    ERR_clear_error();
    SSL *ssl = SSL_new(tls->ctx);
    if (!ssl) {
        error_set(err, RSTMDB_ERR_TLS, "SSL_new: %s", tls_ossl_reason(why, sizeof(why)));
        return NULL;
    }
    bool ip = client_is_address_literal(name);
    /* A mutable copy: OpenSSL's macro casts its argument to void *. */
    char sni[256];
    int sn = snprintf(sni, sizeof(sni), "%s", name);
    /* RFC 6066: SNI carries host names only, never an address literal. */
    if (!ip && (sn < 0 || (size_t)sn >= sizeof(sni) || SSL_set_tlsext_host_name(ssl, sni) != 1)) {
        error_set(err, RSTMDB_ERR_TLS, "tls: cannot set SNI %s", name);
        SSL_free(ssl);
        return NULL;
    }
    if (!tls->insecure) {
        X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name)
                    : X509_VERIFY_PARAM_set1_host(param, name, 0);
        if (ok != 1) {
            error_set(err, RSTMDB_ERR_TLS, "tls: cannot set the expected peer name %s", name);
            SSL_free(ssl);
            return NULL;
        }
    }
    return ssl;
}

/* ---- failures in words ---- */

static void tls_info_cb(const SSL *ssl, int where, int ret)
{
    tls_notes *notes = SSL_get_app_data(ssl);
    /* Fatal alerts only: a warning (close notify) explains no failure. */
    if (notes && (where & SSL_CB_READ_ALERT) == SSL_CB_READ_ALERT && (ret >> 8) == SSL3_AL_FATAL)
        notes->alert = ret & 0xff;
}

/* Asked only when the server requests a client certificate and none is
 * configured: remember it, send none (the server decides). */
static int tls_client_cert_cb(SSL *ssl, X509 **x509, EVP_PKEY **pkey)
{
    (void)x509;
    (void)pkey;
    tls_notes *notes = SSL_get_app_data(ssl);
    if (notes)
        notes->cert_requested = true;
    return 0;
}

void tls_watch(SSL *ssl, tls_notes *notes)
{
    memset(notes, 0, sizeof(*notes));
    SSL_set_app_data(ssl, notes);
    SSL_set_info_callback(ssl, tls_info_cb);
}

void tls_unwatch(SSL *ssl)
{
    if (ssl)
        SSL_set_app_data(ssl, NULL);
}

/* Append "[; ]before text after" to out (truncating, NUL-terminated). */
static void tls_add(char *out, size_t cap, size_t *len, const char *before, const char *text,
                    const char *after)
{
    if (*len >= cap)
        return;
    int n = snprintf(out + *len, cap - *len, "%s%s%s%s", *len ? "; " : "", before, text, after);
    if (n > 0)
        *len += (size_t)n;
}

size_t tls_take_errors(struct bufferevent *bev, unsigned long *errs, size_t cap)
{
    size_t n = 0;
    for (unsigned long e; (e = bufferevent_get_openssl_error(bev)) != 0;)
        if (n < cap)
            errs[n++] = e;
    return n;
}

bool tls_describe_failure(SSL *ssl, const unsigned long *errs, size_t n, const tls_notes *notes,
                          char *out, size_t cap)
{
    /* libevent hands its codes back newest first. Its own oldest entry is
     * SSL_get_error()'s small number (no library, no reason string):
     * OpenSSL's queued errors are the ones that name the cause, and the
     * oldest of those is the most specific. An EOF is no cause: the caller
     * words it. */
    const char *reason = NULL;
    int reason_code = 0;
    for (size_t i = n; i-- > 0 && !reason;) {
        if (ERR_GET_LIB(errs[i]) != 0 &&
            ERR_GET_REASON(errs[i]) != SSL_R_UNEXPECTED_EOF_WHILE_READING &&
            (reason = ERR_reason_error_string(errs[i])) != NULL)
            reason_code = ERR_GET_REASON(errs[i]);
    }
    long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    size_t len = 0;
    out[0] = '\0';
    if (vr != X509_V_OK)
        tls_add(out, cap, &len,
                "certificate verification failed: ", X509_verify_cert_error_string(vr), "");
    /* "certificate verify failed" only repeats the verify result. */
    if (reason && !(vr != X509_V_OK && reason_code == SSL_R_CERTIFICATE_VERIFY_FAILED))
        tls_add(out, cap, &len, "", reason, "");
    else if (!reason && notes && notes->alert) {
        /* An alert seen by the info callback but not queued as an error. */
        char num[16];
        const char *desc = SSL_alert_desc_string_long(notes->alert);
        if (strcmp(desc, "unknown") == 0) {
            snprintf(num, sizeof(num), "%d", notes->alert);
            desc = num;
        }
        tls_add(out, cap, &len, "the server sent alert \"", desc, "\"");
    }
    if (notes && notes->cert_requested)
        tls_add(out, cap, &len, "",
                "the server asked for a client certificate and none is configured", "");
    return len > 0;
}
