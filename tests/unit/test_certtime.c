/* certtime: notAfter read without OpenSSL, checked against the openssl CLI. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "chroma_init/certtime.h"

/* Makes a self-signed cert valid for `days` with the openssl CLI (tests only)
 * and returns the notAfter it reports, as a Unix time. */
static int64_t make_cert(const char *dir, const char *name, int days, char *path, size_t len)
{
    char cmd[1024], keyp[512];
    snprintf(path, len, "%s/%s.pem", dir, name);
    snprintf(keyp, sizeof keyp, "%s/%s.key", dir, name);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days %d "
             "-subj /CN=t -keyout %s -out %s 2>/dev/null",
             days, keyp, path);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "date -u -d \"$(openssl x509 -noout -enddate -in %s | cut -d= -f2)\" +%%s", path);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    long long t = 0;
    assert_int_equal(fscanf(f, "%lld", &t), 1);
    pclose(f);
    return (int64_t)t;
}

static void matches_openssl_utctime_and_generalizedtime(void **state)
{
    (void)state;
    char dir[] = "/tmp/ci-certtime-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[600];
    int days[] = {1, 365, 36500}; /* 36500 days: notAfter past 2049, a GeneralizedTime */
    for (size_t i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "c%zu", i);
        int64_t want = make_cert(dir, name, days[i], path, sizeof path);
        int64_t got = 0;
        assert_int_equal(ci_cert_not_after_file(path, &got), 0);
        assert_int_equal(got, want);
    }
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void rejects_garbage(void **state)
{
    (void)state;
    int64_t t;
    const char *bad[] = {
        "",
        "not a certificate",
        "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ci_cert_not_after_pem(bad[i], strlen(bad[i]), &t), -EINVAL);
    assert_int_equal(ci_cert_not_after_file("/nonexistent/cert.pem", &t), -ENOENT);
}

static void every_truncation_is_rejected_or_read(void **state)
{
    (void)state;
    char dir[] = "/tmp/ci-certtime-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[600];
    int64_t want = make_cert(dir, "t", 30, path, sizeof path);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    /* Flip each base64 character of the body: never a crash, and either an
     * error or some time (the DER may still parse). */
    for (size_t i = 28; i + 26 < n; i++) {
        char saved = buf[i];
        buf[i] = saved == 'A' ? 'B' : 'A';
        int64_t t;
        int r = ci_cert_not_after_pem(buf, n, &t);
        assert_true(r == 0 || r == -EINVAL);
        buf[i] = saved;
    }
    int64_t t;
    assert_int_equal(ci_cert_not_after_pem(buf, n, &t), 0);
    assert_int_equal(t, want);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches_openssl_utctime_and_generalizedtime),
        cmocka_unit_test(rejects_garbage),
        cmocka_unit_test(every_truncation_is_rejected_or_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
