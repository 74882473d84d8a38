/* certgen: generate pairs in a temporary directory and read them back with
 * the OpenSSL library. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "chroma_init/certgen.h"

typedef struct fixture {
    char dir[256];
    char cert[320];
    char key[320];
    char *domains[4];
    ci_certgen_conf_t conf;
    char decision[1024];
    ci_error_t err;
} fixture_t;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f) return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/ci-certgen-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->cert, sizeof(f->cert), "%s/servercert.pem", f->dir);
    snprintf(f->key, sizeof(f->key), "%s/serverkey.pem", f->dir);
    f->domains[0] = "localhost";
    f->domains[1] = "127.0.0.1";
    f->domains[2] = "::1";
    f->domains[3] = "*.example.com";
    f->conf.cert = f->cert;
    f->conf.key = f->key;
    f->conf.domains = f->domains;
    f->conf.ndomains = 4;
    f->conf.days = 365;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static X509 *load_cert(const char *path)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    X509 *x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(x);
    return x;
}

static EVP_PKEY *load_key(const char *path)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    EVP_PKEY *k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(k);
    return k;
}

/* Whole file into a new buffer (caller frees). */
static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char *buf = malloc(65536);
    assert_non_null(buf);
    *len = fread(buf, 1, 65535, fp);
    buf[*len] = '\0';
    fclose(fp);
    return buf;
}

static bool same_bytes(const char *a, size_t alen, const char *path)
{
    size_t blen;
    char *b = slurp(path, &blen);
    bool same = alen == blen && !memcmp(a, b, alen);
    free(b);
    return same;
}

static bool has_san(X509 *x, int type, const void *data, int len)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    bool found = false;
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != type) continue;
        const ASN1_STRING *s = type == GEN_DNS ? g->d.dNSName : g->d.iPAddress;
        if (s->length == len && !memcmp(s->data, data, (size_t)len)) found = true;
    }
    GENERAL_NAMES_free(gens);
    return found;
}

static int64_t asn1_unix(const ASN1_TIME *t)
{
    struct tm tm;
    assert_true(ASN1_TIME_to_tm(t, &tm));
    return (int64_t)timegm(&tm);
}

static bool ext_critical(X509 *x, int nid)
{
    int i = X509_get_ext_by_NID(x, nid, -1);
    assert_true(i >= 0);
    return X509_EXTENSION_get_critical(X509_get_ext(x, i)) == 1;
}

static void name_entry(X509 *x, int nid, char *buf, size_t len)
{
    buf[0] = '\0';
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), nid, buf, (int)len);
}

/* Everything issue 6 asks of a generated pair. */
static void check_pair(fixture_t *f, const char *key_type, int days)
{
    X509 *x = load_cert(f->conf.cert);
    EVP_PKEY *k = load_key(f->conf.key);
    int64_t now = (int64_t)time(NULL);

    /* key type and match */
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), k), 1);
    assert_int_equal(X509_check_private_key(x, k), 1);
    if (!strcmp(key_type, "rsa:2048") || !strcmp(key_type, "rsa:4096")) {
        assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_RSA);
        assert_int_equal(EVP_PKEY_get_bits(k), !strcmp(key_type, "rsa:2048") ? 2048 : 4096);
    } else if (!strncmp(key_type, "ec:", 3)) {
        char group[64];
        size_t glen;
        assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_EC);
        assert_true(EVP_PKEY_get_group_name(k, group, sizeof(group), &glen));
        assert_string_equal(group, !strcmp(key_type, "ec:P-256") ? "prime256v1" : "secp384r1");
    } else {
        assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_ED25519);
    }

    /* signature: SHA-256, none for ed25519; self-signed */
    int sig = X509_get_signature_nid(x);
    if (!strcmp(key_type, "ed25519")) {
        assert_int_equal(sig, NID_ED25519);
    } else {
        int md = NID_undef, pk = NID_undef;
        assert_true(OBJ_find_sigid_algs(sig, &md, &pk));
        assert_int_equal(md, NID_sha256);
    }
    assert_int_equal(X509_verify(x, k), 1);
    assert_int_equal(X509_get_version(x), X509_VERSION_3);

    /* subject and issuer */
    char buf[256];
    name_entry(x, NID_organizationName, buf, sizeof(buf));
    assert_string_equal(buf, "Chroma");
    name_entry(x, NID_countryName, buf, sizeof(buf));
    assert_string_equal(buf, "US");
    name_entry(x, NID_commonName, buf, sizeof(buf));
    assert_string_equal(buf, f->conf.domains[0]);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);

    /* SANs: DNS and IP (v4, v6) */
    for (size_t i = 0; i < f->conf.ndomains; i++) {
        const char *d = f->conf.domains[i];
        unsigned char ip[16];
        if (inet_pton(AF_INET, d, ip) == 1)
            assert_true(has_san(x, GEN_IPADD, ip, 4));
        else if (inet_pton(AF_INET6, d, ip) == 1)
            assert_true(has_san(x, GEN_IPADD, ip, 16));
        else
            assert_true(has_san(x, GEN_DNS, d, (int)strlen(d)));
    }

    /* extensions */
    uint32_t flags = X509_get_extension_flags(x);
    assert_true(flags & EXFLAG_BCONS);
    assert_false(flags & EXFLAG_CA);
    assert_true(ext_critical(x, NID_basic_constraints));
    assert_true(flags & EXFLAG_KUSAGE);
    uint32_t ku = X509_get_key_usage(x);
    if (!strncmp(key_type, "rsa", 3))
        assert_int_equal(ku, KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    else
        assert_int_equal(ku, KU_DIGITAL_SIGNATURE);
    assert_true(flags & EXFLAG_XKUSAGE);
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER);
    assert_non_null(X509_get0_subject_key_id(x));

    /* serial: positive, 128 bits */
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    assert_non_null(bn);
    assert_false(BN_is_negative(bn));
    assert_int_equal(BN_num_bits(bn), 128);
    BN_free(bn);

    /* validity: notBefore = now - 5 min, notAfter = now + days */
    int64_t nb = asn1_unix(X509_get0_notBefore(x)), na = asn1_unix(X509_get0_notAfter(x));
    assert_true(nb <= now - 290 && nb >= now - 330);
    assert_true(na >= now + (int64_t)days * 86400 - 30 && na <= now + (int64_t)days * 86400 + 5);
    int64_t na2 = 0;
    assert_int_equal(ci_certgen_not_after(f->conf.cert, &na2), 0);
    assert_int_equal(na2, na);

    /* modes: key 0600, cert 0644 (through the user-facing paths) */
    struct stat st;
    assert_int_equal(stat(f->conf.key, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat(f->conf.cert, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);

    X509_free(x);
    EVP_PKEY_free(k);
}

static void key_types_are_validated(void **state)
{
    (void)state;
    assert_true(ci_certgen_key_type_valid("rsa:2048"));
    assert_true(ci_certgen_key_type_valid("rsa:4096"));
    assert_true(ci_certgen_key_type_valid("ec:P-256"));
    assert_true(ci_certgen_key_type_valid("ec:p-384"));
    assert_true(ci_certgen_key_type_valid("ed25519"));
    assert_false(ci_certgen_key_type_valid("rsa:1024"));
    assert_false(ci_certgen_key_type_valid("dsa"));
    assert_false(ci_certgen_key_type_valid(""));
    assert_false(ci_certgen_key_type_valid(NULL));
}

static void bad_input_is_rejected_without_touching_files(void **state)
{
    fixture_t *f = *state;
    ci_certgen_conf_t c = f->conf;
    char *empty[] = {"localhost", ""};
    char *bad[] = {"bad domain"};

    c.key_type = "rsa:1024";
    assert_int_equal(ci_certgen_ensure(&c, false, f->decision, sizeof(f->decision), &f->err),
                     -EINVAL);
    assert_non_null(strstr(f->err.msg, "certgen: unknown key type \"rsa:1024\""));
    c = f->conf;
    c.days = 0;
    assert_int_equal(ci_certgen_check(&c, &f->err), -EINVAL);
    assert_non_null(strstr(f->err.msg, "days"));
    c.days = 36501;
    assert_int_equal(ci_certgen_check(&c, &f->err), -EINVAL);
    c.days = 36500;
    assert_int_equal(ci_certgen_check(&c, &f->err), 0);
    c = f->conf;
    c.domains = empty;
    c.ndomains = 2;
    assert_int_equal(ci_certgen_check(&c, &f->err), -EINVAL);
    assert_non_null(strstr(f->err.msg, "empty domain"));
    c.domains = bad;
    c.ndomains = 1;
    assert_int_equal(ci_certgen_check(&c, &f->err), -EINVAL);
    c = f->conf;
    c.subject = "O=Chroma";
    assert_int_equal(ci_certgen_check(&c, &f->err), -EINVAL);
    assert_non_null(strstr(f->err.msg, "subject"));
    c.subject = "/C=USA";
    assert_int_equal(ci_certgen_check(&c, &f->err), -EINVAL);
    c.subject = "/XX=1";
    assert_int_equal(ci_certgen_check(&c, &f->err), -EINVAL);
    c = f->conf;
    c.key = NULL;
    assert_int_equal(ci_certgen_check(&c, &f->err), -EINVAL);
    c.key = f->cert;
    assert_int_equal(ci_certgen_check(&c, &f->err), -EINVAL);
    c = f->conf;
    c.owner = "no-such-user-here";
    assert_int_equal(ci_certgen_check(&c, &f->err), -EINVAL);
    assert_non_null(strstr(f->err.msg, "unknown user"));

    struct stat st;
    assert_int_equal(stat(f->cert, &st), -1);
    assert_int_equal(stat(f->key, &st), -1);
}

static void run_type(fixture_t *f, const char *kt)
{
    f->conf.key_type = (char *)kt;
    assert_int_equal(ci_certgen_ensure(&f->conf, true, f->decision, sizeof(f->decision), &f->err),
                     0);
    char want[64];
    snprintf(want, sizeof(want), "generated: %s, serial ", kt);
    assert_memory_equal(f->decision, want, strlen(want));
    assert_non_null(strstr(f->decision, "covers localhost, 127.0.0.1, ::1, *.example.com"));
    check_pair(f, kt, 365);
}

static void every_key_type(void **state)
{
    fixture_t *f = *state;
    run_type(f, "rsa:2048");
    run_type(f, "rsa:4096");
    run_type(f, "ec:P-256");
    run_type(f, "ec:P-384");
    run_type(f, "ed25519");
}

static void defaults_match_the_reference_setup(void **state)
{
    fixture_t *f = *state;
    ci_certgen_conf_t c = {.cert = f->cert, .key = f->key, .days = 365};
    assert_int_equal(ci_certgen_ensure(&c, false, f->decision, sizeof(f->decision), &f->err), 0);
    assert_non_null(strstr(f->decision, "generated: rsa:2048"));
    assert_non_null(strstr(f->decision, "covers localhost"));
    assert_null(strstr(f->decision, "replaced"));
    char *one[] = {"localhost"};
    f->conf.domains = one;
    f->conf.ndomains = 1;
    check_pair(f, "rsa:2048", 365);
}

static void rerun_keeps_the_same_bytes(void **state)
{
    fixture_t *f = *state;
    f->conf.key_type = "ec:P-256";
    assert_int_equal(ci_certgen_ensure(&f->conf, false, f->decision, sizeof(f->decision), &f->err),
                     0);
    size_t clen, klen;
    char *c = slurp(f->cert, &clen), *k = slurp(f->key, &klen);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(
            ci_certgen_ensure(&f->conf, false, f->decision, sizeof(f->decision), &f->err), 0);
        assert_memory_equal(f->decision, "kept: valid until ", 18);
        assert_non_null(strstr(f->decision, "covers localhost, 127.0.0.1, ::1, *.example.com"));
        assert_true(same_bytes(c, clen, f->cert));
        assert_true(same_bytes(k, klen, f->key));
    }
    /* a subset of the domains is covered too; so is a name under the wildcard */
    char *sub[] = {"127.0.0.1", "a.example.com"};
    ci_certgen_conf_t s = f->conf;
    s.domains = sub;
    s.ndomains = 2;
    assert_int_equal(ci_certgen_ensure(&s, false, f->decision, sizeof(f->decision), &f->err), 0);
    assert_memory_equal(f->decision, "kept:", 5);

    /* --force replaces */
    assert_int_equal(ci_certgen_ensure(&f->conf, true, f->decision, sizeof(f->decision), &f->err),
                     0);
    assert_non_null(strstr(f->decision, "(replaced: forced)"));
    assert_false(same_bytes(c, clen, f->cert));
    assert_false(same_bytes(k, klen, f->key));
    check_pair(f, "ec:P-256", 365);
    free(c);
    free(k);
}

static void changed_domain_replaces(void **state)
{
    fixture_t *f = *state;
    f->conf.key_type = "ec:P-256";
    assert_int_equal(ci_certgen_ensure(&f->conf, false, f->decision, sizeof(f->decision), &f->err),
                     0);
    size_t clen;
    char *c = slurp(f->cert, &clen);
    char *more[] = {"localhost", "10.1.2.3"};
    f->conf.domains = more;
    f->conf.ndomains = 2;
    assert_int_equal(ci_certgen_ensure(&f->conf, false, f->decision, sizeof(f->decision), &f->err),
                     0);
    assert_non_null(strstr(f->decision, "(replaced: certificate does not cover 10.1.2.3)"));
    assert_false(same_bytes(c, clen, f->cert));
    check_pair(f, "ec:P-256", 365);
    free(c);
}

static void expiring_certificate_is_renewed(void **state)
{
    fixture_t *f = *state;
    f->conf.key_type = "ec:P-256";
    f->conf.days = 1;
    assert_int_equal(ci_certgen_ensure(&f->conf, false, f->decision, sizeof(f->decision), &f->err),
                     0);
    check_pair(f, "ec:P-256", 1);
    size_t clen;
    char *c = slurp(f->cert, &clen);
    /* without renew_before, a cert that is not expired is kept */
    assert_int_equal(ci_certgen_ensure(&f->conf, false, f->decision, sizeof(f->decision), &f->err),
                     0);
    assert_memory_equal(f->decision, "kept:", 5);
    assert_true(same_bytes(c, clen, f->cert));
    /* renew_before 720h > 1 day left: renewed, with the configured days */
    f->conf.renew_before_ms = 720ull * 3600 * 1000;
    f->conf.days = 365;
    assert_int_equal(ci_certgen_ensure(&f->conf, false, f->decision, sizeof(f->decision), &f->err),
                     0);
    assert_non_null(strstr(f->decision, "within renew_before"));
    assert_false(same_bytes(c, clen, f->cert));
    check_pair(f, "ec:P-256", 365);
    /* 365 days left > 720h: kept */
    assert_int_equal(ci_certgen_ensure(&f->conf, false, f->decision, sizeof(f->decision), &f->err),
                     0);
    assert_memory_equal(f->decision, "kept:", 5);
    free(c);
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    chmod(path, mode);
}

static void malformed_or_mismatched_files_are_replaced(void **state)
{
    fixture_t *f = *state;
    f->conf.key_type = "ec:P-256";
    write_text(f->cert, "not a certificate\n", 0644);
    write_text(f->key, "not a key\n", 0600);
    assert_int_equal(ci_certgen_ensure(&f->conf, false, f->decision, sizeof(f->decision), &f->err),
                     0);
    assert_non_null(strstr(f->decision, "is malformed)"));
    check_pair(f, "ec:P-256", 365);

    /* a key of another pair: mismatch */
    char other_c[400], other_k[400];
    snprintf(other_c, sizeof(other_c), "%s/other/c.pem", f->dir);
    snprintf(other_k, sizeof(other_k), "%s/other/k.pem", f->dir);
    ci_certgen_conf_t o = f->conf;
    o.cert = other_c;
    o.key = other_k;
    assert_int_equal(ci_certgen_ensure(&o, false, f->decision, sizeof(f->decision), &f->err), 0);
    size_t klen;
    char *k = slurp(other_k, &klen);
    unlink(f->key); /* the user-facing symlink; write a regular file instead */
    write_text(f->key, k, 0600);
    free(k);
    assert_int_equal(ci_certgen_ensure(&f->conf, false, f->decision, sizeof(f->decision), &f->err),
                     0);
    assert_non_null(strstr(f->decision, "does not match the certificate)"));
    check_pair(f, "ec:P-256", 365);
}

static void same_directory_uses_one_symlink_swap(void **state)
{
    fixture_t *f = *state;
    f->conf.key_type = "ec:P-256";
    /* leftovers of a crashed run */
    char p[512];
    snprintf(p, sizeof(p), "%s/.certgen-servercert.pem.0123456789abcdef", f->dir);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/.certgen-servercert.pem.0123456789abcdef/serverkey.pem", f->dir);
    write_text(p, "half", 0600);
    snprintf(p, sizeof(p), "%s/.certgen-servercert.pem.link-0123456789abcdef", f->dir);
    assert_int_equal(symlink("nowhere", p), 0);
    snprintf(p, sizeof(p), "%s/.certgen-other.pem.0123456789abcdef", f->dir); /* not ours */
    assert_int_equal(mkdir(p, 0755), 0);

    assert_int_equal(ci_certgen_ensure(&f->conf, false, f->decision, sizeof(f->decision), &f->err),
                     0);
    assert_int_equal(ci_certgen_ensure(&f->conf, true, f->decision, sizeof(f->decision), &f->err),
                     0);
    char target[512];
    ssize_t n = readlink(f->cert, target, sizeof(target) - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, ".certgen-servercert.pem.current/servercert.pem");
    n = readlink(f->key, target, sizeof(target) - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, ".certgen-servercert.pem.current/serverkey.pem");

    /* exactly: the two links, current, one generation, and the foreign dir */
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "ls -A %s | wc -l", f->dir);
    FILE *pp = popen(cmd, "r");
    int count = 0;
    assert_int_equal(fscanf(pp, "%d", &count), 1);
    pclose(pp);
    assert_int_equal(count, 5);
    assert_int_equal(access(p, F_OK), 0);
    /* the generation dir holds the key 0600 */
    snprintf(p, sizeof(p), "%s/.certgen-servercert.pem.current/serverkey.pem", f->dir);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
}

static void regular_files_become_symlinks(void **state)
{
    fixture_t *f = *state;
    char one_c[400], one_k[400];
    /* a pair in two directories is written as regular files */
    snprintf(one_c, sizeof(one_c), "%s/c/servercert.pem", f->dir);
    snprintf(one_k, sizeof(one_k), "%s/k/serverkey.pem", f->dir);
    ci_certgen_conf_t o = f->conf;
    o.cert = one_c;
    o.key = one_k;
    o.key_type = "ec:P-256";
    assert_int_equal(ci_certgen_ensure(&o, false, f->decision, sizeof(f->decision), &f->err), 0);
    struct stat st;
    assert_int_equal(lstat(one_c, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(lstat(one_k, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    f->conf.cert = one_c;
    f->conf.key = one_k;
    check_pair(f, "ec:P-256", 365);

    /* move them into one directory as regular files, then force */
    f->conf.cert = f->cert;
    f->conf.key = f->key;
    assert_int_equal(rename(one_c, f->cert), 0);
    assert_int_equal(rename(one_k, f->key), 0);
    f->conf.key_type = "ec:P-256";
    assert_int_equal(ci_certgen_ensure(&f->conf, false, f->decision, sizeof(f->decision), &f->err),
                     0);
    assert_memory_equal(f->decision, "kept:", 5);
    assert_int_equal(lstat(f->cert, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(ci_certgen_ensure(&f->conf, true, f->decision, sizeof(f->decision), &f->err),
                     0);
    assert_int_equal(lstat(f->cert, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(lstat(f->key, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    check_pair(f, "ec:P-256", 365);
}

static void subject_with_cn_and_escapes(void **state)
{
    fixture_t *f = *state;
    f->conf.key_type = "ec:P-256";
    f->conf.subject = "/CN=Chroma server/O=Chroma\\/Test/C=US";
    assert_int_equal(ci_certgen_ensure(&f->conf, false, f->decision, sizeof(f->decision), &f->err),
                     0);
    X509 *x = load_cert(f->cert);
    char buf[128];
    name_entry(x, NID_commonName, buf, sizeof(buf));
    assert_string_equal(buf, "Chroma server");
    name_entry(x, NID_organizationName, buf, sizeof(buf));
    assert_string_equal(buf, "Chroma/Test");
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(x)), 3);
    X509_free(x);
}

static void unwritable_directory_fails_cleanly(void **state)
{
    fixture_t *f = *state;
    char file[400], c[500], k[500];
    snprintf(file, sizeof(file), "%s/plain", f->dir);
    write_text(file, "x", 0644);
    snprintf(c, sizeof(c), "%s/sub/c.pem", file);
    snprintf(k, sizeof(k), "%s/sub/k.pem", file);
    f->conf.cert = c;
    f->conf.key = k;
    int rc = ci_certgen_ensure(&f->conf, false, f->decision, sizeof(f->decision), &f->err);
    assert_true(rc < 0 && rc != -EINVAL);
    assert_non_null(strstr(f->err.msg, "certgen: unable to write "));
    assert_non_null(strstr(f->err.msg, ": not a directory"));

    if (geteuid() != 0) { /* root ignores permissions */
        char ro[400];
        snprintf(ro, sizeof(ro), "%s/ro", f->dir);
        assert_int_equal(mkdir(ro, 0500), 0);
        snprintf(c, sizeof(c), "%s/c.pem", ro);
        snprintf(k, sizeof(k), "%s/k.pem", ro);
        rc = ci_certgen_ensure(&f->conf, false, f->decision, sizeof(f->decision), &f->err);
        assert_int_equal(rc, -EACCES);
        assert_non_null(strstr(f->err.msg, ": permission denied"));
        chmod(ro, 0700);
    }
}

static void owner_is_applied(void **state)
{
    fixture_t *f = *state;
    if (geteuid() != 0) {
        skip();
        return;
    }
    struct passwd *pw = getpwnam("nobody");
    if (!pw) {
        skip();
        return;
    }
    f->conf.key_type = "ec:P-256";
    f->conf.owner = "nobody:0";
    assert_int_equal(ci_certgen_ensure(&f->conf, false, f->decision, sizeof(f->decision), &f->err),
                     0);
    struct stat st;
    assert_int_equal(stat(f->key, &st), 0);
    assert_int_equal(st.st_uid, pw->pw_uid);
    assert_int_equal(st.st_gid, 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat(f->cert, &st), 0);
    assert_int_equal(st.st_uid, pw->pw_uid);
    assert_int_equal(st.st_mode & 07777, 0644);
    char p[400];
    snprintf(p, sizeof(p), "%s/.certgen-servercert.pem.current/", f->dir);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_uid, pw->pw_uid);
    /* numbers work too */
    f->conf.owner = "12345:23456";
    assert_int_equal(ci_certgen_ensure(&f->conf, true, f->decision, sizeof(f->decision), &f->err),
                     0);
    assert_int_equal(stat(f->key, &st), 0);
    assert_int_equal(st.st_uid, 12345);
    assert_int_equal(st.st_gid, 23456);
}

static void not_after_of_missing_or_garbage(void **state)
{
    fixture_t *f = *state;
    int64_t t;
    assert_int_equal(ci_certgen_not_after(f->cert, &t), -ENOENT);
    write_text(f->cert, "garbage", 0644);
    assert_int_equal(ci_certgen_not_after(f->cert, &t), -EINVAL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(key_types_are_validated),
        T(bad_input_is_rejected_without_touching_files),
        T(every_key_type),
        T(defaults_match_the_reference_setup),
        T(rerun_keeps_the_same_bytes),
        T(changed_domain_replaces),
        T(expiring_certificate_is_renewed),
        T(malformed_or_mismatched_files_are_replaced),
        T(same_directory_uses_one_symlink_swap),
        T(regular_files_become_symlinks),
        T(subject_with_cn_and_escapes),
        T(unwritable_directory_fails_cleanly),
        T(owner_is_applied),
        T(not_after_of_missing_or_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
