/* tls.c: rstmdb_tls, a shared OpenSSL client context (CA, client cert,
 * verification mode) and the per-connection SSL with SNI and the hostname
 * check. Verification is on unless rstmdb_tls_insecure() built it. No I/O. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

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

static bool tls_is_ip(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
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
    bool ip = tls_is_ip(name);
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
