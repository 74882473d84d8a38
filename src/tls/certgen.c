/* certgen: self-signed server certificates with the OpenSSL 3 library.
 *
 * Layout on disk when cert and key share a directory D (the usual case), with
 * T = ".certgen-<basename of cert>.":
 *
 *   D/<cert>           -> T"current"/<cert>     (symlinks, relative)
 *   D/<key>            -> T"current"/<key>
 *   D/T"current"       -> T"<16 hex>"           (the live generation)
 *   D/T"<16 hex>"/     <cert> 0644, <key> 0600  (one directory per generation)
 *
 * A new generation is written into a fresh T"<hex>" directory (fsynced), then
 * one rename of a temporary symlink over T"current" switches cert and key
 * together, as Kubernetes does for secret volumes. When cert and key live in
 * different directories, each is written to a temporary file T"tmp-<hex>" and
 * renamed, key first; a crash in between leaves a key that does not match the
 * cert, which the next run detects and replaces. Leftovers of crashed runs
 * (T"<hex>" directories not pointed to, T"link-<hex>", T"tmp-<hex>") are
 * removed by the next run. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "chroma_init/certgen.h"

#define HEX_LEN 16
#define CN_MAX 64

typedef enum kalg { K_RSA, K_EC, K_ED25519 } kalg_t;

typedef struct key_type {
    const char *name; /* canonical spelling */
    kalg_t alg;
    size_t bits;       /* RSA */
    const char *curve; /* EC */
} key_type_t;

static const key_type_t key_types[] = {
    {"rsa:2048", K_RSA, 2048, NULL}, {"rsa:4096", K_RSA, 4096, NULL},
    {"ec:P-256", K_EC, 0, "P-256"},  {"ec:P-384", K_EC, 0, "P-384"},
    {"ed25519", K_ED25519, 0, NULL},
};

/* The resolved, validated request. Strings are borrowed from the conf except
 * the path pieces (owned, freed by req_free). */
typedef struct req {
    const ci_certgen_conf_t *conf;
    const key_type_t *kt;
    const char *subject;
    const char *const *domains;
    size_t ndomains;
    int days;
    uid_t uid; /* (uid_t)-1: unchanged */
    gid_t gid; /* (gid_t)-1: unchanged */
    char *cert_dir, *cert_base, *key_dir, *key_base;
} req_t;

static const char *const default_domains[] = {CI_CERTGEN_DEFAULT_DOMAIN};

/* ---- errors ------------------------------------------------------------- */

static void err_vset(ci_error_t *err, const char *fmt, va_list ap)
{
    if (!err) return;
    int n = snprintf(err->msg, sizeof(err->msg), "certgen: ");
    vsnprintf(err->msg + n, sizeof(err->msg) - (size_t)n, fmt, ap);
}

static int fail(ci_error_t *err, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(ci_error_t *err, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, fmt, ap);
    va_end(ap);
    return rc;
}

/* "unable to write X" + ": permission denied"; returns -e. */
static int fail_errno(ci_error_t *err, int e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_errno(ci_error_t *err, int e, const char *fmt, ...)
{
    if (e <= 0) e = EIO;
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err_vset(err, fmt, ap);
        va_end(ap);
        size_t n = strlen(err->msg);
        snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(e));
        if (n + 2 < sizeof(err->msg))
            err->msg[n + 2] = (char)tolower((unsigned char)err->msg[n + 2]);
    }
    return -e;
}

/* "key generation failed" + ": <openssl reason>"; returns -EIO. */
static int fail_ssl(ci_error_t *err, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return fail(err, -EIO, "%s: %s", what, reason ? reason : "OpenSSL error");
}

/* ---- validation --------------------------------------------------------- */

static const key_type_t *key_type_find(const char *s)
{
    if (!s) return NULL;
    for (size_t i = 0; i < sizeof(key_types) / sizeof(key_types[0]); i++)
        if (!strcasecmp(s, key_types[i].name)) return &key_types[i];
    return NULL;
}

bool ci_certgen_key_type_valid(const char *key_type)
{
    return key_type_find(key_type) != NULL;
}

/* IPv4 / IPv6 literal -> 4 or 16 bytes in out; 0 when not an IP address. */
static int ip_parse(const char *s, unsigned char out[16])
{
    if (inet_pton(AF_INET, s, out) == 1) return 4;
    if (inet_pton(AF_INET6, s, out) == 1) return 16;
    return 0;
}

/* A DNS name: labels of [A-Za-z0-9_-], 1..63 chars, total <= 253; the first
 * label may be "*" when more follow. */
static bool dns_valid(const char *s)
{
    size_t total = strlen(s);
    if (total == 0 || total > 253) return false;
    const char *p = s;
    bool first = true;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n == 0 || n > 63) return false;
        if (first && n == 1 && *p == '*') {
            if (!dot) return false;
        } else {
            for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)p[i];
                if (!isalnum(c) && c != '-' && c != '_') return false;
            }
        }
        if (!dot) return true;
        p = dot + 1;
        first = false;
    }
}

/* Parses "/O=Chroma/C=US" ("\/" escapes a slash) into a new X509_NAME (caller
 * frees). *has_cn tells whether it names a CN. Returns 0 or -EINVAL with why. */
static int subject_parse(const char *s, X509_NAME **out, bool *has_cn, char *why, size_t whylen)
{
    X509_NAME *name = X509_NAME_new();
    char *buf = malloc(strlen(s) + 1);
    *has_cn = false;
    if (!name || !buf) {
        snprintf(why, whylen, "out of memory");
        goto fail;
    }
    if (s[0] != '/') {
        snprintf(why, whylen, "must start with '/' (e.g. /O=Chroma/C=US)");
        goto fail;
    }
    const char *p = s + 1;
    while (*p) {
        size_t n = 0;
        while (*p && *p != '/') {
            if (*p == '\\' && p[1]) p++;
            buf[n++] = *p++;
        }
        buf[n] = '\0';
        if (*p == '/') p++;
        char *eq = strchr(buf, '=');
        if (n == 0 || !eq || eq == buf || eq[1] == '\0') {
            snprintf(why, whylen, "expected /KEY=VALUE items, got \"%s\"", buf);
            goto fail;
        }
        *eq = '\0';
        int nid = OBJ_txt2nid(buf);
        if (nid == NID_undef) {
            snprintf(why, whylen, "unknown attribute \"%s\"", buf);
            goto fail;
        }
        if (!X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, (const unsigned char *)(eq + 1),
                                        -1, -1, 0)) {
            ERR_clear_error();
            snprintf(why, whylen, "invalid value for %s: \"%s\"", buf, eq + 1);
            goto fail;
        }
        if (nid == NID_commonName) *has_cn = true;
    }
    free(buf);
    *out = name;
    return 0;
fail:
    free(buf);
    X509_NAME_free(name);
    return -EINVAL;
}

static bool all_digits(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return false;
    return true;
}

/* "user[:group]", names or numbers. A user without group gets the user's
 * primary group when the user database knows it. */
static int owner_resolve(const char *owner, uid_t *uid, gid_t *gid, ci_error_t *err)
{
    *uid = (uid_t)-1;
    *gid = (gid_t)-1;
    if (!owner) return 0;
    char user[256], group[256] = "";
    const char *colon = strchr(owner, ':');
    size_t ulen = colon ? (size_t)(colon - owner) : strlen(owner);
    if (ulen == 0 || ulen >= sizeof(user) || (colon && strlen(colon + 1) >= sizeof(group)) ||
        (colon && !colon[1]))
        return fail(err, -EINVAL, "invalid owner \"%s\" (expected user[:group])", owner);
    memcpy(user, owner, ulen);
    user[ulen] = '\0';
    if (colon) strcpy(group, colon + 1);

    struct passwd *pw = getpwnam(user);
    if (pw) {
        *uid = pw->pw_uid;
        *gid = pw->pw_gid;
    } else if (all_digits(user)) {
        *uid = (uid_t)strtoul(user, NULL, 10);
        pw = getpwuid(*uid);
        if (pw) *gid = pw->pw_gid;
    } else {
        return fail(err, -EINVAL, "invalid owner \"%s\": unknown user %s", owner, user);
    }
    if (group[0]) {
        struct group *gr = getgrnam(group);
        if (gr)
            *gid = gr->gr_gid;
        else if (all_digits(group))
            *gid = (gid_t)strtoul(group, NULL, 10);
        else
            return fail(err, -EINVAL, "invalid owner \"%s\": unknown group %s", owner, group);
    }
    return 0;
}

/* Splits path into directory ("." when none) and base name; both owned. */
static int path_split(const char *path, char **dir, char **base)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        *dir = strdup(".");
        *base = strdup(path);
    } else {
        size_t n = (size_t)(slash - path);
        *dir = n == 0 ? strdup("/") : strndup(path, n);
        *base = strdup(slash + 1);
    }
    if (!*dir || !*base) return -ENOMEM;
    return 0;
}

static void req_free(req_t *r)
{
    free(r->cert_dir);
    free(r->cert_base);
    free(r->key_dir);
    free(r->key_base);
    memset(r, 0, sizeof(*r));
}

/* Validates conf into r (free with req_free even on failure). */
static int req_init(req_t *r, const ci_certgen_conf_t *conf, ci_error_t *err)
{
    memset(r, 0, sizeof(*r));
    r->conf = conf;
    if (!conf->cert || !*conf->cert) return fail(err, -EINVAL, "missing certificate path (cert)");
    if (!conf->key || !*conf->key) return fail(err, -EINVAL, "missing key path (key)");
    if (!strcmp(conf->cert, conf->key))
        return fail(err, -EINVAL, "cert and key must be different files (both %s)", conf->cert);
    if (path_split(conf->cert, &r->cert_dir, &r->cert_base) < 0 ||
        path_split(conf->key, &r->key_dir, &r->key_base) < 0)
        return fail(err, -ENOMEM, "out of memory");
    if (!*r->cert_base || !strcmp(r->cert_base, ".") || !strcmp(r->cert_base, ".."))
        return fail(err, -EINVAL, "invalid certificate path %s", conf->cert);
    if (!*r->key_base || !strcmp(r->key_base, ".") || !strcmp(r->key_base, ".."))
        return fail(err, -EINVAL, "invalid key path %s", conf->key);

    const char *kt = conf->key_type ? conf->key_type : CI_CERTGEN_DEFAULT_KEY_TYPE;
    r->kt = key_type_find(kt);
    if (!r->kt)
        return fail(err, -EINVAL,
                    "unknown key type \"%s\" (expected rsa:2048, rsa:4096, ec:P-256, ec:P-384 or "
                    "ed25519)",
                    kt);
    r->days = conf->days;
    if (r->days <= 0 || r->days > CI_CERTGEN_MAX_DAYS)
        return fail(err, -EINVAL, "invalid days %d (expected 1 to %d)", r->days,
                    CI_CERTGEN_MAX_DAYS);

    if (conf->ndomains == 0) {
        r->domains = default_domains;
        r->ndomains = 1;
    } else {
        r->domains = (const char *const *)conf->domains;
        r->ndomains = conf->ndomains;
    }
    for (size_t i = 0; i < r->ndomains; i++) {
        const char *d = r->domains[i];
        unsigned char ip[16];
        if (!d || !*d) return fail(err, -EINVAL, "empty domain");
        if (!ip_parse(d, ip) && !dns_valid(d))
            return fail(err, -EINVAL,
                        "invalid domain \"%s\" (expected a DNS name, *.name or an IP address)", d);
    }

    r->subject = conf->subject ? conf->subject : CI_CERTGEN_DEFAULT_SUBJECT;
    X509_NAME *name = NULL;
    bool has_cn;
    char why[256];
    if (subject_parse(r->subject, &name, &has_cn, why, sizeof(why)) < 0)
        return fail(err, -EINVAL, "invalid subject \"%s\": %s", r->subject, why);
    X509_NAME_free(name);

    return owner_resolve(conf->owner, &r->uid, &r->gid, err);
}

int ci_certgen_check(const ci_certgen_conf_t *conf, ci_error_t *err)
{
    req_t r;
    int rc = req_init(&r, conf, err);
    req_free(&r);
    return rc;
}

/* ---- reading ------------------------------------------------------------ */

static void date_format(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%d", &tm);
}

static int asn1_time_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    if (!t || !ASN1_TIME_to_tm(t, &tm)) return -EINVAL;
    *out = (int64_t)timegm(&tm);
    return 0;
}

/* Reads a PEM file: *x (cert) or *pk (key). Returns 0, -EINVAL when it does
 * not parse, or the negative errno of fopen. */
static int pem_load(const char *path, X509 **x, EVP_PKEY **pk)
{
    FILE *f = fopen(path, "re");
    if (!f) return -errno;
    if (x) *x = PEM_read_X509(f, NULL, NULL, NULL);
    if (pk) *pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    ERR_clear_error();
    if ((x && !*x) || (pk && !*pk)) return -EINVAL;
    return 0;
}

int ci_certgen_not_after(const char *cert_path, int64_t *out)
{
    X509 *x = NULL;
    int rc = pem_load(cert_path, &x, NULL);
    if (rc == 0) rc = asn1_time_unix(X509_get0_notAfter(x), out);
    X509_free(x);
    return rc;
}

/* True when the certificate's SANs name d (exactly, or by a wildcard SAN). */
static bool cert_covers(X509 *x, const char *d)
{
    unsigned char ip[16];
    int iplen = ip_parse(d, ip);
    if (iplen) return X509_check_ip(x, ip, (size_t)iplen, 0) == 1;
    bool found = false;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_DNS) continue;
        const ASN1_IA5STRING *s = g->d.dNSName;
        if ((size_t)s->length == strlen(d) && !strncasecmp((const char *)s->data, d, strlen(d)))
            found = true;
    }
    GENERAL_NAMES_free(gens);
    if (!found && d[0] != '*')
        found = X509_check_host(x, d, 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL) == 1;
    ERR_clear_error();
    return found;
}

typedef struct eval {
    bool keep;
    bool any_existed; /* at least one of the two paths existed */
    int64_t not_after;
    char reason[512];
} eval_t;

/* Decides whether the existing pair is kept. Returns 0 (ev filled) or a
 * negative errno when a file exists but cannot be read. */
static int evaluate(const req_t *r, eval_t *ev, ci_error_t *err)
{
    const ci_certgen_conf_t *c = r->conf;
    X509 *x = NULL;
    EVP_PKEY *pk = NULL;
    memset(ev, 0, sizeof(*ev));

    int crc = pem_load(c->cert, &x, NULL);
    int krc = pem_load(c->key, NULL, &pk);
    ev->any_existed = crc != -ENOENT || krc != -ENOENT;
    int rc = 0;
    if (crc < 0 && crc != -ENOENT && crc != -EINVAL) {
        rc = fail_errno(err, -crc, "unable to read %s", c->cert);
        goto out;
    }
    if (krc < 0 && krc != -ENOENT && krc != -EINVAL) {
        rc = fail_errno(err, -krc, "unable to read %s", c->key);
        goto out;
    }
    if (crc == -ENOENT) {
        snprintf(ev->reason, sizeof(ev->reason), "no certificate at %s", c->cert);
        goto out;
    }
    if (crc == -EINVAL) {
        snprintf(ev->reason, sizeof(ev->reason), "certificate at %s is malformed", c->cert);
        goto out;
    }
    if (krc == -ENOENT) {
        snprintf(ev->reason, sizeof(ev->reason), "no key at %s", c->key);
        goto out;
    }
    if (krc == -EINVAL) {
        snprintf(ev->reason, sizeof(ev->reason), "key at %s is malformed", c->key);
        goto out;
    }
    if (EVP_PKEY_eq(X509_get0_pubkey(x), pk) != 1) {
        ERR_clear_error();
        snprintf(ev->reason, sizeof(ev->reason), "key at %s does not match the certificate",
                 c->key);
        goto out;
    }
    for (size_t i = 0; i < r->ndomains; i++) {
        if (!cert_covers(x, r->domains[i])) {
            snprintf(ev->reason, sizeof(ev->reason), "certificate does not cover %s",
                     r->domains[i]);
            goto out;
        }
    }
    if (asn1_time_unix(X509_get0_notAfter(x), &ev->not_after) < 0) {
        snprintf(ev->reason, sizeof(ev->reason), "certificate at %s has an invalid notAfter",
                 c->cert);
        goto out;
    }
    int64_t now = (int64_t)time(NULL);
    char date[32];
    date_format(ev->not_after, date, sizeof(date));
    if (ev->not_after <= now) {
        snprintf(ev->reason, sizeof(ev->reason), "certificate expired on %s", date);
        goto out;
    }
    if (c->renew_before_ms && (uint64_t)(ev->not_after - now) * 1000u <= c->renew_before_ms) {
        snprintf(ev->reason, sizeof(ev->reason), "certificate expires on %s, within renew_before",
                 date);
        goto out;
    }
    ev->keep = true;
out:
    X509_free(x);
    EVP_PKEY_free(pk);
    return rc;
}

/* ---- generation --------------------------------------------------------- */

static EVP_PKEY *keygen(const key_type_t *kt)
{
    switch (kt->alg) {
    case K_RSA:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", kt->bits);
    case K_EC:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", kt->curve);
    case K_ED25519:
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    }
    return NULL;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    if (!ext) return -1;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static GENERAL_NAMES *san_build(const req_t *r)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (!gens) return NULL;
    for (size_t i = 0; i < r->ndomains; i++) {
        const char *d = r->domains[i];
        unsigned char ip[16];
        int iplen = ip_parse(d, ip);
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_STRING *s = ASN1_STRING_type_new(iplen ? V_ASN1_OCTET_STRING : V_ASN1_IA5STRING);
        if (!g || !s ||
            !ASN1_STRING_set(s, iplen ? (const void *)ip : (const void *)d,
                             iplen ? iplen : (int)strlen(d))) {
            GENERAL_NAME_free(g);
            ASN1_STRING_free(s);
            goto fail;
        }
        GENERAL_NAME_set0_value(g, iplen ? GEN_IPADD : GEN_DNS, s);
        if (!sk_GENERAL_NAME_push(gens, g)) {
            GENERAL_NAME_free(g);
            goto fail;
        }
    }
    return gens;
fail:
    GENERAL_NAMES_free(gens);
    return NULL;
}

/* Generates the key and the self-signed certificate. On success *pk_out and
 * *x_out are new (caller frees) and serial (hex) is filled. */
static int generate(const req_t *r, EVP_PKEY **pk_out, X509 **x_out, char *serial, size_t slen,
                    ci_error_t *err)
{
    EVP_PKEY *pk = NULL;
    X509 *x = NULL;
    X509_NAME *name = NULL;
    BIGNUM *bn = NULL;
    GENERAL_NAMES *gens = NULL;
    char *hex = NULL;
    const char *what = "unable to build the certificate";
    int rc;

    pk = keygen(r->kt);
    if (!pk) {
        rc = fail_ssl(err, "key generation failed");
        goto fail;
    }
    x = X509_new();
    bn = BN_new();
    if (!x || !bn || !X509_set_version(x, X509_VERSION_3)) goto ssl_fail;
    /* A random positive serial of exactly 128 bits (RFC 5280 allows 20 octets). */
    if (!BN_rand(bn, 128, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) ||
        !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        goto ssl_fail;
    hex = BN_bn2hex(bn);
    if (!hex) goto ssl_fail;
    snprintf(serial, slen, "%s", hex);
    if (!X509_gmtime_adj(X509_getm_notBefore(x), -300) ||
        !X509_time_adj_ex(X509_getm_notAfter(x), r->days, 0, NULL))
        goto ssl_fail;

    bool has_cn;
    char why[256];
    if (subject_parse(r->subject, &name, &has_cn, why, sizeof(why)) < 0) {
        rc = fail(err, -EINVAL, "invalid subject \"%s\": %s", r->subject, why);
        goto fail;
    }
    /* CN from the first domain (an X.509 CN holds at most 64 characters). */
    if (!has_cn && strlen(r->domains[0]) <= CN_MAX &&
        !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                    (const unsigned char *)r->domains[0], -1, -1, 0))
        goto ssl_fail;
    if (!X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name) ||
        !X509_set_pubkey(x, pk))
        goto ssl_fail;

    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    const char *ku = r->kt->alg == K_RSA ? "critical,digitalSignature,keyEncipherment"
                                         : "critical,digitalSignature";
    gens = san_build(r);
    if (!gens || add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        add_ext(x, &ctx, NID_key_usage, ku) < 0 ||
        add_ext(x, &ctx, NID_ext_key_usage, "serverAuth") < 0 ||
        add_ext(x, &ctx, NID_subject_key_identifier, "hash") < 0 ||
        !X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT))
        goto ssl_fail;

    what = "unable to sign the certificate";
    if (X509_sign(x, pk, r->kt->alg == K_ED25519 ? NULL : EVP_sha256()) <= 0) goto ssl_fail;

    OPENSSL_free(hex);
    BN_free(bn);
    X509_NAME_free(name);
    GENERAL_NAMES_free(gens);
    *pk_out = pk;
    *x_out = x;
    return 0;
ssl_fail:
    rc = fail_ssl(err, what);
fail:
    OPENSSL_free(hex);
    BN_free(bn);
    X509_NAME_free(name);
    GENERAL_NAMES_free(gens);
    X509_free(x);
    EVP_PKEY_free(pk);
    return rc;
}

/* PEM text of the key (PKCS#8, unencrypted, as `openssl req -nodes`) or of the
 * cert. *out is a new buffer (caller frees; the key's with free_secret). */
static int pem_render(EVP_PKEY *pk, X509 *x, char **out, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    int rc = -EIO;
    if (!b) return -ENOMEM;
    if (pk ? PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL)
           : PEM_write_bio_X509(b, x)) {
        char *data;
        long n = BIO_get_mem_data(b, &data);
        *out = malloc((size_t)n);
        if (*out) {
            memcpy(*out, data, (size_t)n);
            *len = (size_t)n;
            rc = 0;
        } else {
            rc = -ENOMEM;
        }
        OPENSSL_cleanse(data, (size_t)n);
    }
    ERR_clear_error();
    BIO_free(b);
    return rc;
}

static void free_secret(char *p, size_t n)
{
    if (p) OPENSSL_cleanse(p, n);
    free(p);
}

/* ---- files -------------------------------------------------------------- */

/* Crash injection for the tests: CI_CERTGEN_CRASH_AT=<point> makes the
 * process SIGKILL itself there (points: gen-key, gen-cert, gen-dir,
 * preserved, current-direct, link:<name>, cert-link, key-link, swapped,
 * half:key, half:cert, key-tmp, cert-tmp, key-renamed). */
static void crash_point(const char *point, const char *arg)
{
    const char *at = getenv("CI_CERTGEN_CRASH_AT");
    if (!at) return;
    size_t n = strlen(point);
    if (!strncmp(at, point, n) && (arg ? at[n] == ':' && !strcmp(at + n + 1, arg) : !at[n]))
        raise(SIGKILL);
}

static int random_hex(char out[HEX_LEN + 1])
{
    unsigned char b[HEX_LEN / 2];
    if (RAND_bytes(b, sizeof(b)) != 1) return -EIO;
    for (size_t i = 0; i < sizeof(b); i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
    return 0;
}

static bool is_hex(const char *s, size_t n)
{
    if (strlen(s) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) return false;
    return true;
}

/* mkdir -p; 0 or a negative errno. */
static int mkdir_p(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) == 0) return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
    char *tmp = strdup(dir);
    if (!tmp) return -ENOMEM;
    int rc = 0;
    for (char *p = tmp + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(tmp, 0755) < 0 && errno != EEXIST) {
                rc = -errno;
                break;
            }
            *p = c;
            if (!c) break;
        }
    }
    free(tmp);
    return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Creates dirfd/name exclusively with mode (never wider at any time), owner,
 * contents, fsync. On failure the file is removed. */
static int file_write_at(int dirfd, const char *name, mode_t mode, uid_t uid, gid_t gid,
                         const char *data, size_t len)
{
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) return -errno;
    int rc = 0;
    if (fchmod(fd, mode) < 0 ||
        ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(fd, uid, gid) < 0)) {
        rc = -errno;
    } else {
        rc = write_all(fd, data, len / 2);
        crash_point("half", mode == 0600 ? "key" : "cert");
        if (rc == 0) rc = write_all(fd, data + len / 2, len - len / 2);
        if (rc == 0 && fsync(fd) < 0) rc = -errno;
    }
    if (close(fd) < 0 && rc == 0) rc = -errno;
    if (rc < 0) unlinkat(dirfd, name, 0);
    return rc;
}

static int dir_open(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* Removes a generation directory (its plain files, then itself). */
static void gen_dir_remove(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        DIR *d = fdopendir(fd);
        if (d) {
            struct dirent *e;
            char names[8][256];
            size_t n;
            do { /* collect, then unlink: never unlink while readdir walks */
                rewinddir(d);
                n = 0;
                while ((e = readdir(d)) && n < 8) {
                    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
                    snprintf(names[n++], sizeof(names[0]), "%s", e->d_name);
                }
                size_t removed = 0;
                for (size_t i = 0; i < n; i++)
                    if (unlinkat(fd, names[i], 0) == 0) removed++;
                if (removed == 0) break;
            } while (n > 0);
            closedir(d);
        } else {
            close(fd);
        }
    }
    unlinkat(dirfd, name, AT_REMOVEDIR);
}

/* Removes leftovers of this pair in dirfd: generation directories other than
 * keep1 / keep2 (may be NULL), and temporary links and files. prefix is
 * ".certgen-<base>.". */
static void leftovers_remove(int dirfd, const char *prefix, const char *keep1, const char *keep2)
{
    int fd = dup(dirfd);
    if (fd < 0) return;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    rewinddir(d); /* the dup shares its offset with dirfd */
    size_t plen = strlen(prefix), n = 0, cap = 0;
    char **names = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, plen)) continue;
        const char *suf = e->d_name + plen;
        bool gen = is_hex(suf, HEX_LEN);
        bool tmp = (!strncmp(suf, "link-", 5) || !strncmp(suf, "tmp-", 4)) &&
                   is_hex(strchr(suf, '-') + 1, HEX_LEN);
        if (!gen && !tmp) continue;
        if ((keep1 && !strcmp(e->d_name, keep1)) || (keep2 && !strcmp(e->d_name, keep2))) continue;
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 8;
            char **nn = realloc(names, ncap * sizeof(*names));
            if (!nn) break;
            names = nn;
            cap = ncap;
        }
        if (!(names[n] = strdup(e->d_name))) break;
        n++;
    }
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
            if (S_ISDIR(st.st_mode))
                gen_dir_remove(dirfd, names[i]);
            else
                unlinkat(dirfd, names[i], 0);
        }
        free(names[i]);
    }
    free(names);
    closedir(d);
}

/* Atomically makes dirfd/name a symlink to target (temporary link + rename). */
static int link_swap(int dirfd, const char *prefix, const char *name, const char *target)
{
    char hex[HEX_LEN + 1], tmp[512];
    int rc = random_hex(hex);
    if (rc < 0) return rc;
    snprintf(tmp, sizeof(tmp), "%slink-%s", prefix, hex);
    if (symlinkat(target, dirfd, tmp) < 0) return -errno;
    crash_point("link", name);
    if (renameat(dirfd, tmp, dirfd, name) < 0) {
        rc = -errno;
        unlinkat(dirfd, tmp, 0);
    }
    return rc;
}

static bool link_is(int dirfd, const char *name, const char *target)
{
    char buf[1024];
    ssize_t n = readlinkat(dirfd, name, buf, sizeof(buf) - 1);
    if (n < 0) return false;
    buf[n] = '\0';
    return !strcmp(buf, target);
}

/* Same-directory scheme (see the top of the file). */
static int install_same_dir(const req_t *r, int dirfd, const char *kpem, size_t klen,
                            const char *cpem, size_t clen, ci_error_t *err)
{
    const ci_certgen_conf_t *c = r->conf;
    char prefix[512], current[600], gen[600], keep[600], hex[HEX_LEN + 1];
    char ctarget[1200], ktarget[1200];
    int gfd = -1, rc;
    bool made = false;
    snprintf(prefix, sizeof(prefix), ".certgen-%s.", r->cert_base);
    snprintf(current, sizeof(current), "%scurrent", prefix);
    snprintf(ctarget, sizeof(ctarget), "%s/%s", current, r->cert_base);
    snprintf(ktarget, sizeof(ktarget), "%s/%s", current, r->key_base);
    if ((rc = random_hex(hex)) < 0) return fail(err, rc, "unable to get random bytes");
    snprintf(gen, sizeof(gen), "%s%s", prefix, hex);

    /* 1. The new generation, complete and durable before anything points at it. */
    if (mkdirat(dirfd, gen, 0755) < 0) {
        rc = fail_errno(err, errno, "unable to write %s/%s", r->cert_dir, gen);
        goto fail;
    }
    made = true;
    gfd = openat(dirfd, gen, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (gfd < 0 || fchmod(gfd, 0755) < 0 ||
        ((r->uid != (uid_t)-1 || r->gid != (gid_t)-1) && fchown(gfd, r->uid, r->gid) < 0)) {
        rc = fail_errno(err, errno, "unable to write %s/%s", r->cert_dir, gen);
        goto fail;
    }
    if ((rc = file_write_at(gfd, r->key_base, 0600, r->uid, r->gid, kpem, klen)) < 0) {
        rc = fail_errno(err, -rc, "unable to write %s", c->key);
        goto fail;
    }
    crash_point("gen-key", NULL);
    if ((rc = file_write_at(gfd, r->cert_base, 0644, r->uid, r->gid, cpem, clen)) < 0) {
        rc = fail_errno(err, -rc, "unable to write %s", c->cert);
        goto fail;
    }
    crash_point("gen-cert", NULL);
    if (fsync(gfd) < 0) {
        rc = fail_errno(err, errno, "unable to write %s/%s", r->cert_dir, gen);
        goto fail;
    }
    crash_point("gen-dir", NULL);

    /* 2. The user-facing paths become symlinks through `current`. While they
     * are switched one at a time, `current` points at a generation holding
     * what they showed so far (hard links), so every step shows a matching
     * pair; the cert link comes first, so a key never appears without it. */
    keep[0] = '\0';
    if (!link_is(dirfd, r->cert_base, ctarget) || !link_is(dirfd, r->key_base, ktarget)) {
        struct stat cst, kst;
        if (fstatat(dirfd, r->cert_base, &cst, 0) == 0 &&
            fstatat(dirfd, r->key_base, &kst, 0) == 0) {
            char khex[HEX_LEN + 1];
            if ((rc = random_hex(khex)) < 0) {
                rc = fail(err, rc, "unable to get random bytes");
                goto fail;
            }
            snprintf(keep, sizeof(keep), "%s%s", prefix, khex);
            int ok = mkdirat(dirfd, keep, 0755) == 0;
            int kfd = ok ? openat(dirfd, keep, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
            ok = kfd >= 0 && fchmod(kfd, 0755) == 0 &&
                 linkat(dirfd, r->cert_base, kfd, r->cert_base, AT_SYMLINK_FOLLOW) == 0 &&
                 linkat(dirfd, r->key_base, kfd, r->key_base, AT_SYMLINK_FOLLOW) == 0 &&
                 fsync(kfd) == 0 && link_swap(dirfd, prefix, current, keep) == 0 &&
                 fsync(dirfd) == 0;
            if (kfd >= 0) close(kfd);
            if (ok) crash_point("preserved", NULL);
            if (!ok) { /* cannot preserve (e.g. another file system): switch directly */
                gen_dir_remove(dirfd, keep);
                keep[0] = '\0';
            }
        }
        if (!keep[0] && (rc = link_swap(dirfd, prefix, current, gen)) < 0) {
            rc = fail_errno(err, -rc, "unable to write %s/%s", r->cert_dir, current);
            goto fail;
        }
        if (!keep[0]) crash_point("current-direct", NULL);
        if (fsync(dirfd) < 0 || (rc = link_swap(dirfd, prefix, r->cert_base, ctarget)) < 0) {
            rc = fail_errno(err, rc < 0 ? -rc : errno, "unable to write %s", c->cert);
            goto fail;
        }
        crash_point("cert-link", NULL);
        /* durable cert link before the key link, also across a power loss */
        if (fsync(dirfd) < 0 || (rc = link_swap(dirfd, prefix, r->key_base, ktarget)) < 0) {
            rc = fail_errno(err, rc < 0 ? -rc : errno, "unable to write %s", c->key);
            goto fail;
        }
        crash_point("key-link", NULL);
    }

    /* 3. One rename switches both. */
    if ((rc = link_swap(dirfd, prefix, current, gen)) < 0) {
        rc = fail_errno(err, -rc, "unable to write %s/%s", r->cert_dir, current);
        goto fail;
    }
    if (fsync(dirfd) < 0) {
        rc = fail_errno(err, errno, "unable to sync %s", r->cert_dir);
        goto fail;
    }
    crash_point("swapped", NULL);
    close(gfd);
    leftovers_remove(dirfd, prefix, gen, NULL);
    return 0;
fail:
    if (gfd >= 0) close(gfd);
    /* Undo what nothing points at yet; `current` never points at gen here
     * unless step 2 switched directly, in which case keep it. */
    if (made && !link_is(dirfd, current, gen)) gen_dir_remove(dirfd, gen);
    return rc;
}

/* Different directories: temporary files, key renamed first, then cert. */
static int install_two_dirs(const req_t *r, int cdirfd, int kdirfd, const char *kpem, size_t klen,
                            const char *cpem, size_t clen, ci_error_t *err)
{
    const ci_certgen_conf_t *c = r->conf;
    char kprefix[512], cprefix[512], ktmp[600], ctmp[600], hex[HEX_LEN + 1];
    int rc;
    snprintf(kprefix, sizeof(kprefix), ".certgen-%s.", r->key_base);
    snprintf(cprefix, sizeof(cprefix), ".certgen-%s.", r->cert_base);
    if ((rc = random_hex(hex)) < 0) return fail(err, rc, "unable to get random bytes");
    snprintf(ktmp, sizeof(ktmp), "%stmp-%s", kprefix, hex);
    snprintf(ctmp, sizeof(ctmp), "%stmp-%s", cprefix, hex);

    if ((rc = file_write_at(kdirfd, ktmp, 0600, r->uid, r->gid, kpem, klen)) < 0)
        return fail_errno(err, -rc, "unable to write %s", c->key);
    crash_point("key-tmp", NULL);
    if ((rc = file_write_at(cdirfd, ctmp, 0644, r->uid, r->gid, cpem, clen)) < 0) {
        unlinkat(kdirfd, ktmp, 0);
        return fail_errno(err, -rc, "unable to write %s", c->cert);
    }
    crash_point("cert-tmp", NULL);
    if (renameat(kdirfd, ktmp, kdirfd, r->key_base) < 0) {
        rc = fail_errno(err, errno, "unable to write %s", c->key);
        unlinkat(kdirfd, ktmp, 0);
        unlinkat(cdirfd, ctmp, 0);
        return rc;
    }
    fsync(kdirfd);
    crash_point("key-renamed", NULL);
    if (renameat(cdirfd, ctmp, cdirfd, r->cert_base) < 0) {
        rc = fail_errno(err, errno, "unable to write %s", c->cert);
        unlinkat(cdirfd, ctmp, 0);
        return rc;
    }
    if (fsync(cdirfd) < 0) return fail_errno(err, errno, "unable to sync %s", r->cert_dir);
    return 0;
}

/* ---- the entry point ---------------------------------------------------- */

static void domains_join(const req_t *r, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < r->ndomains && n < len; i++) {
        int w = snprintf(buf + n, len - n, "%s%s", i ? ", " : "", r->domains[i]);
        if (w < 0) break;
        n += (size_t)w;
    }
}

int ci_certgen_ensure(const ci_certgen_conf_t *conf, bool force, char *decision, size_t len,
                      ci_error_t *err)
{
    req_t r;
    eval_t ev;
    EVP_PKEY *pk = NULL;
    X509 *x = NULL;
    char *kpem = NULL, *cpem = NULL;
    size_t klen = 0, clen = 0;
    int cdirfd = -1, kdirfd = -1, rc;
    char doms[1024], date[32], serial[80], prefix[512], kprefix[512];

    if (decision && len) decision[0] = '\0';
    if ((rc = req_init(&r, conf, err)) < 0) goto out;

    if ((rc = mkdir_p(r.cert_dir)) < 0 || (rc = cdirfd = dir_open(r.cert_dir)) < 0) {
        rc = fail_errno(err, -rc, "unable to write %s", conf->cert);
        goto out;
    }
    if ((rc = mkdir_p(r.key_dir)) < 0 || (rc = kdirfd = dir_open(r.key_dir)) < 0) {
        rc = fail_errno(err, -rc, "unable to write %s", conf->key);
        goto out;
    }
    struct stat cst, kst;
    if (fstat(cdirfd, &cst) < 0 || fstat(kdirfd, &kst) < 0) {
        rc = fail_errno(err, errno, "unable to stat %s", r.cert_dir);
        goto out;
    }
    bool same = cst.st_dev == kst.st_dev && cst.st_ino == kst.st_ino;
    /* One run at a time per directory; a killed run drops its lock. Best effort:
     * some file systems cannot lock directories. */
    while (flock(cdirfd, LOCK_EX) < 0 && errno == EINTR) {
    }

    /* Leftovers of crashed runs: generations `current` does not point at. */
    snprintf(prefix, sizeof(prefix), ".certgen-%s.", r.cert_base);
    snprintf(kprefix, sizeof(kprefix), ".certgen-%s.", r.key_base);
    if (same) {
        char cur[600], target[600];
        snprintf(cur, sizeof(cur), "%scurrent", prefix);
        ssize_t n = readlinkat(cdirfd, cur, target, sizeof(target) - 1);
        target[n > 0 ? n : 0] = '\0';
        leftovers_remove(cdirfd, prefix, n > 0 ? target : NULL, NULL);
    } else {
        leftovers_remove(cdirfd, prefix, NULL, NULL);
        leftovers_remove(kdirfd, kprefix, NULL, NULL);
    }

    if ((rc = evaluate(&r, &ev, err)) < 0) goto out;
    domains_join(&r, doms, sizeof(doms));
    if (ev.keep && !force) {
        date_format(ev.not_after, date, sizeof(date));
        if (decision) snprintf(decision, len, "kept: valid until %s, covers %s", date, doms);
        rc = 0;
        goto out;
    }

    if ((rc = generate(&r, &pk, &x, serial, sizeof(serial), err)) < 0) goto out;
    if ((rc = pem_render(pk, NULL, &kpem, &klen)) < 0 ||
        (rc = pem_render(NULL, x, &cpem, &clen)) < 0) {
        rc = fail(err, rc, "unable to encode the key and certificate");
        goto out;
    }
    if (same)
        rc = install_same_dir(&r, cdirfd, kpem, klen, cpem, clen, err);
    else
        rc = install_two_dirs(&r, cdirfd, kdirfd, kpem, klen, cpem, clen, err);
    if (rc < 0) goto out;

    int64_t na = 0;
    asn1_time_unix(X509_get0_notAfter(x), &na);
    date_format(na, date, sizeof(date));
    if (decision) {
        int n = snprintf(decision, len, "generated: %s, serial %s, valid until %s, covers %s",
                         r.kt->name, serial, date, doms);
        if (n >= 0 && (size_t)n < len && ev.any_existed)
            snprintf(decision + n, len - (size_t)n, " (replaced: %s)",
                     force ? "forced" : ev.reason);
    }
    rc = 0;
out:
    if (cdirfd >= 0) close(cdirfd); /* drops the lock */
    if (kdirfd >= 0) close(kdirfd);
    free_secret(kpem, klen);
    free(cpem);
    EVP_PKEY_free(pk);
    X509_free(x);
    req_free(&r);
    return rc;
}
