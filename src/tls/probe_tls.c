/* probe_tls: the OpenSSL side of https:// probes (see tls.h): one cached
 * SSL_CTX per (ca, insecure), and client connections over memory BIOs that
 * src/probe.c drives from the loop's reads and writes. */
#include "probe_tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct ci_tls_conn {
    SSL *ssl;  /* owns rbio and wbio */
    BIO *rbio; /* network -> OpenSSL */
    BIO *wbio; /* OpenSSL -> network */
    int last;  /* SSL_get_error() of the last failure */
};

/* ---- contexts --------------------------------------------------------- */

typedef struct ctx_entry {
    struct ctx_entry *next;
    char *ca; /* NULL: system store */
    bool insecure;
    struct stat st; /* of ca when loaded */
    SSL_CTX *ctx;
} ctx_entry_t;

static ctx_entry_t *ctx_cache; /* process-wide; probes run on one thread */

static void tls_error_string(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    if (r)
        snprintf(buf, len, "%s", r);
    else if (e)
        ERR_error_string_n(e, buf, len);
    else
        snprintf(buf, len, "unknown error");
    ERR_clear_error();
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Returns the cached SSL_CTX for (ca, insecure), (re)building it when missing
 * or when the CA file changed. Borrowed: the cache owns it (SSL_new takes its
 * own reference). NULL on error, with err filled in. */
static SSL_CTX *get_ctx(const char *ca, bool insecure, char *err, size_t errlen)
{
    struct stat st;
    memset(&st, 0, sizeof(st));
    if (insecure) ca = NULL;
    if (ca && stat(ca, &st) < 0) {
        snprintf(err, errlen, "cannot read CA file %s: %s", ca, strerror(errno));
        return NULL;
    }
    ctx_entry_t *e = ctx_cache;
    for (; e; e = e->next) {
        if (e->insecure != insecure) continue;
        if ((e->ca == NULL) != (ca == NULL)) continue;
        if (ca && strcmp(e->ca, ca) != 0) continue;
        if (!ca || same_file(&e->st, &st)) return e->ctx;
        break; /* the CA file changed: rebuild */
    }

    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) goto fail_ssl;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    if (insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        int ok = ca ? SSL_CTX_load_verify_locations(ctx, ca, NULL)
                    : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            char why[256];
            tls_error_string(why, sizeof(why));
            if (ca)
                snprintf(err, errlen, "cannot load CA file %s: %s", ca, why);
            else
                snprintf(err, errlen, "cannot load the system CA store: %s", why);
            SSL_CTX_free(ctx);
            return NULL;
        }
    }
    if (e) {
        SSL_CTX_free(e->ctx);
    } else {
        e = calloc(1, sizeof(*e));
        if (!e || (ca && !(e->ca = strdup(ca)))) {
            if (e) free(e);
            SSL_CTX_free(ctx);
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        e->insecure = insecure;
        e->next = ctx_cache;
        ctx_cache = e;
    }
    e->st = st;
    e->ctx = ctx;
    return ctx;

fail_ssl : {
    char why[256];
    tls_error_string(why, sizeof(why));
    snprintf(err, errlen, "cannot create a TLS context: %s", why);
    return NULL;
}
}

void ci_probe_tls_cleanup(void)
{
    while (ctx_cache) {
        ctx_entry_t *e = ctx_cache;
        ctx_cache = e->next;
        SSL_CTX_free(e->ctx);
        free(e->ca);
        free(e);
    }
}

/* ---- connections ------------------------------------------------------ */

ci_tls_conn_t *ci_probe_tls_conn_new(const char *ca, bool insecure, const char *host,
                                     bool host_is_ip, char *err, size_t errlen)
{
    SSL_CTX *ctx = get_ctx(ca, insecure, err, errlen);
    if (!ctx) return NULL;
    ci_tls_conn_t *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ERR_clear_error();
    c->ssl = SSL_new(ctx);
    if (!c->ssl) goto fail;
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (!c->rbio || !c->wbio) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        c->rbio = c->wbio = NULL;
        goto fail;
    }
    SSL_set_bio(c->ssl, c->rbio, c->wbio); /* the SSL owns both now */
    SSL_set_connect_state(c->ssl);
    if (!host_is_ip) {
        if (SSL_set_tlsext_host_name(c->ssl, host) != 1) goto fail;
        if (!insecure) {
            SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (SSL_set1_host(c->ssl, host) != 1) goto fail;
        }
    } else if (!insecure) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host) != 1) goto fail;
    }
    return c;

fail:
    tls_error_string(err, errlen);
    SSL_free(c->ssl);
    free(c);
    return NULL;
}

int ci_probe_tls_conn_handshake(ci_tls_conn_t *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) return 0;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return -EAGAIN;
    c->last = e;
    return -EPROTO;
}

int ci_probe_tls_conn_feed(ci_tls_conn_t *c, const char *buf, size_t len)
{
    if (len > INT32_MAX) return -EIO;
    return BIO_write(c->rbio, buf, (int)len) == (int)len ? 0 : -EIO;
}

size_t ci_probe_tls_conn_pending(ci_tls_conn_t *c)
{
    return BIO_ctrl_pending(c->wbio);
}

int ci_probe_tls_conn_take_out(ci_tls_conn_t *c, char *buf, size_t len)
{
    if (len > INT32_MAX) len = INT32_MAX;
    int n = BIO_read(c->wbio, buf, (int)len);
    return n > 0 ? n : -EIO;
}

int ci_probe_tls_conn_write(ci_tls_conn_t *c, const char *buf, size_t len)
{
    if (len > INT32_MAX) return -EPROTO;
    ERR_clear_error();
    int w = SSL_write(c->ssl, buf, (int)len);
    if (w == (int)len) return 0;
    c->last = SSL_get_error(c->ssl, w);
    return -EPROTO;
}

int ci_probe_tls_conn_read(ci_tls_conn_t *c, char *buf, size_t len)
{
    if (len > INT32_MAX) len = INT32_MAX;
    ERR_clear_error();
    int n = SSL_read(c->ssl, buf, (int)len);
    if (n > 0) return n;
    int e = SSL_get_error(c->ssl, n);
    if (e == SSL_ERROR_WANT_READ) return -EAGAIN;
    if (e == SSL_ERROR_ZERO_RETURN) return 0; /* close_notify */
    c->last = e;
    return -EPROTO;
}

void ci_probe_tls_conn_error(ci_tls_conn_t *c, char *buf, size_t len)
{
    long v = SSL_get_verify_result(c->ssl);
    if (c->last == SSL_ERROR_SSL && v != X509_V_OK) {
        ERR_clear_error();
        snprintf(buf, len, "certificate verify failed: %s", X509_verify_cert_error_string(v));
        return;
    }
    if (ERR_peek_last_error() == 0 && c->last == SSL_ERROR_SYSCALL) {
        snprintf(buf, len, "unexpected end of stream");
        return;
    }
    tls_error_string(buf, len);
}

void ci_probe_tls_conn_free(ci_tls_conn_t *c)
{
    if (!c) return;
    SSL_free(c->ssl); /* frees the BIOs too */
    free(c);
}
