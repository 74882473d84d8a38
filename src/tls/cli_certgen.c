/* cli certgen: `chroma-init certgen --cert F --key F [...]`, the certgen
 * module from the command line. Self-contained: it parses its own flags
 * (including a small --renew-before duration) and needs no config. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chroma_init/certgen.h"
#include "chroma_init/cli.h"

static const char usage[] =
    "usage: chroma-init certgen --cert FILE --key FILE [--domain D[,D...]] [--key-type TYPE]\n"
    "                           [--days N] [--subject /O=Chroma/C=US] [--owner USER[:GROUP]]\n"
    "                           [--renew-before DURATION] [--force]\n"
    "  TYPE: rsa:2048 (default), rsa:4096, ec:P-256, ec:P-384, ed25519\n"
    "  DURATION: a number with one unit, e.g. 720h, 30m, 90s, 500ms (a bare number is seconds)\n"
    "Prints one line saying whether the pair was kept or generated.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("chroma-init certgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see chroma-init certgen --help)\n", stderr);
    va_end(ap);
    return 2;
}

/* "720h", "30m", "90s", "500ms", "3600": one integer and one unit. */
static int renew_parse(const char *s, uint64_t *out_ms)
{
    char *end;
    if (*s < '0' || *s > '9') return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return -ERANGE;
    uint64_t mult;
    if (!*end || !strcmp(end, "s"))
        mult = 1000;
    else if (!strcmp(end, "ms"))
        mult = 1;
    else if (!strcmp(end, "m"))
        mult = 60000;
    else if (!strcmp(end, "h"))
        mult = 3600000;
    else
        return -EINVAL;
    if (v > UINT64_MAX / mult) return -ERANGE;
    *out_ms = (uint64_t)v * mult;
    return 0;
}

/* Appends the items of a comma list to *list (items borrowed from s, which is
 * modified). Returns 0 or -EINVAL on an empty item. */
static int domains_add(char *s, char ***list, size_t *n)
{
    if (!*s) return -EINVAL;
    for (char *p = s;;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        if (!*p) return -EINVAL;
        char **nl = realloc(*list, (*n + 2) * sizeof(**list));
        if (!nl) return -ENOMEM;
        *list = nl;
        nl[(*n)++] = p;
        nl[*n] = NULL;
        if (!comma) return 0;
        p = comma + 1;
    }
}

int ci_cli_certgen(int argc, char **argv)
{
    ci_certgen_conf_t conf = {.days = CI_CERTGEN_DEFAULT_DAYS};
    bool force = false;
    int rc = 2;
    char **copies = NULL; /* the --domain values, split in place; owned */
    size_t ncopies = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            rc = 0;
            goto out;
        }
        if (!strcmp(a, "--force")) {
            force = true;
            continue;
        }
        static const char *const with_value[] = {"--cert",     "--key",         "--domain",
                                                 "--key-type", "--days",        "--subject",
                                                 "--owner",    "--renew-before"};
        const char *opt = NULL, *val = NULL;
        for (size_t k = 0; k < sizeof(with_value) / sizeof(with_value[0]); k++) {
            size_t n = strlen(with_value[k]);
            if (!strncmp(a, with_value[k], n) && (a[n] == '\0' || a[n] == '=')) {
                opt = with_value[k];
                if (a[n] == '=') {
                    val = a + n + 1;
                } else if (i + 1 < argc) {
                    val = argv[++i];
                } else {
                    rc = usage_error("%s needs a value", opt);
                    goto out;
                }
                break;
            }
        }
        if (!opt) {
            rc = a[0] == '-' ? usage_error("unknown option %s", a)
                             : usage_error("unexpected argument %s", a);
            goto out;
        }
        if (!strcmp(opt, "--cert")) {
            conf.cert = (char *)val;
        } else if (!strcmp(opt, "--key")) {
            conf.key = (char *)val;
        } else if (!strcmp(opt, "--key-type")) {
            conf.key_type = (char *)val;
        } else if (!strcmp(opt, "--subject")) {
            conf.subject = (char *)val;
        } else if (!strcmp(opt, "--owner")) {
            conf.owner = (char *)val;
        } else if (!strcmp(opt, "--days")) {
            char *end;
            errno = 0;
            long d = strtol(val, &end, 10);
            if (!*val || *end || errno || d <= 0 || d > CI_CERTGEN_MAX_DAYS) {
                rc = usage_error("invalid --days \"%s\" (expected 1 to 36500)", val);
                goto out;
            }
            conf.days = (int)d;
        } else if (!strcmp(opt, "--renew-before")) {
            if (renew_parse(val, &conf.renew_before_ms) < 0) {
                rc = usage_error("invalid --renew-before \"%s\" (expected e.g. 720h, 30m, 90s)",
                                 val);
                goto out;
            }
        } else { /* --domain, repeatable */
            char **nc = realloc(copies, (ncopies + 1) * sizeof(*copies));
            if (!nc || !(nc[ncopies] = strdup(val))) {
                if (nc) copies = nc;
                fputs("chroma-init certgen: out of memory\n", stderr);
                rc = 1;
                goto out;
            }
            copies = nc;
            int drc = domains_add(copies[ncopies++], &conf.domains, &conf.ndomains);
            if (drc == -ENOMEM) {
                fputs("chroma-init certgen: out of memory\n", stderr);
                rc = 1;
                goto out;
            }
            if (drc < 0) {
                rc = usage_error("empty domain in --domain \"%s\"", val);
                goto out;
            }
        }
    }
    if (!conf.cert) {
        rc = usage_error("%s is required", "--cert");
        goto out;
    }
    if (!conf.key) {
        rc = usage_error("%s is required", "--key");
        goto out;
    }

    ci_error_t err = {{0}};
    if (ci_certgen_check(&conf, &err) < 0) {
        fprintf(stderr, "chroma-init %s\n", err.msg);
        rc = 2;
        goto out;
    }
    char decision[2048];
    if (ci_certgen_ensure(&conf, force, decision, sizeof(decision), &err) < 0) {
        fprintf(stderr, "chroma-init %s\n", err.msg);
        rc = 1;
        goto out;
    }
    printf("%s\n", decision);
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    for (size_t i = 0; i < ncopies; i++) free(copies[i]);
    free(copies);
    free(conf.domains);
    return rc;
}
