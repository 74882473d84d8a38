/* cli_run: the default mode. Supervises the services of init.json, or one
 * command after `--` (tini-style). Bad usage or a bad config exits 2 before
 * anything is started or written. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chroma_init/cli.h"
#include "chroma_init/config.h"
#include "chroma_init/log.h"
#include "chroma_init/supervisor.h"
#include "chroma_init/tini.h"

#define MAX_REMAP 64

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "chroma-init: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'chroma-init --help'.\n");
    return 2;
}

/* "143,130" -> codes. Returns 0 or -EINVAL. */
static int parse_codes(const char *s, int *codes, size_t *n)
{
    while (*s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > 255 || (*end && *end != ',')) return -EINVAL;
        if (*n >= MAX_REMAP) return -EINVAL;
        codes[(*n)++] = (int)v;
        s = *end ? end + 1 : end;
    }
    return 0;
}

static const char *self_exe(char *buf, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", buf, len - 1);
    if (n <= 0) return "chroma-init";
    buf[n] = '\0';
    return buf;
}

int ci_cli_run(int argc, char **argv)
{
    const char *config_path = NULL;
    const char *log_format = NULL;
    bool verbose = false, kill_group = false, tini = false;
    int remap[MAX_REMAP];
    size_t nremap = 0;
    int i;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            tini = true;
            i++;
            break;
        } else if (!strcmp(a, "--config") || !strcmp(a, "-c")) {
            if (++i >= argc) return usage_error("%s needs a file", a);
            config_path = argv[i];
        } else if (!strncmp(a, "--config=", 9)) {
            config_path = a + 9;
        } else if (!strcmp(a, "--log-format")) {
            if (++i >= argc) return usage_error("%s needs text or json", a);
            log_format = argv[i];
        } else if (!strncmp(a, "--log-format=", 13)) {
            log_format = a + 13;
        } else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
            verbose = true;
        } else if (!strcmp(a, "-g")) {
            kill_group = true;
        } else if (!strcmp(a, "-s")) {
            /* tini's subreaper flag: subreaping is automatic. */
        } else if (!strcmp(a, "-e")) {
            if (++i >= argc) return usage_error("%s needs an exit code", a);
            if (parse_codes(argv[i], remap, &nremap) < 0)
                return usage_error("-e: invalid exit code \"%s\" (expected 0..255)", argv[i]);
        } else if (a[0] == '-') {
            return usage_error("unknown option %s", a);
        } else {
            /* tini also accepts `tini CMD` without `--`; we require it so a
             * typo in a subcommand is not run as a program. */
            return usage_error("unexpected argument \"%s\" (a command goes after --)", a);
        }
    }
    if (log_format && strcmp(log_format, "text") && strcmp(log_format, "json"))
        return usage_error("--log-format: expected text or json, got \"%s\"", log_format);
    const char *env;
    if ((env = getenv("CHROMA_INIT_KILL_GROUP")) && !strcmp(env, "1")) kill_group = true;
    if ((env = getenv("CHROMA_INIT_REMAP_EXIT")) && *env && parse_codes(env, remap, &nremap) < 0)
        return usage_error("CHROMA_INIT_REMAP_EXIT: invalid exit codes \"%s\"", env);

    char exe[PATH_MAX];
    ci_sup_opts_t opts;
    memset(&opts, 0, sizeof opts);
    opts.self_exe = self_exe(exe, sizeof exe);
    opts.verbose = verbose;

    if (tini) {
        if (config_path) return usage_error("%s", "--config and -- CMD cannot be combined");
        if (i >= argc) return usage_error("%s", "-- needs a command");
        ci_log_setup(log_format && !strcmp(log_format, "json") ? CI_LOG_JSON : CI_LOG_TEXT, verbose,
                     true);
        ci_tini_opts_t t = {
            .argv = argv + i, .kill_group = kill_group, .remap_exit = remap, .nremap_exit = nremap};
        return ci_tini_run(&t);
    }

    ci_config_t *cfg = NULL;
    ci_error_t err;
    const char *path = ci_cli_config_path(config_path);
    if (ci_config_load(path, &cfg, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    ci_log_format_t fmt = cfg->log_format;
    if (log_format) fmt = !strcmp(log_format, "json") ? CI_LOG_JSON : CI_LOG_TEXT;
    ci_log_setup(fmt, verbose, false);
    opts.cfg = cfg;
    int rc = ci_sup_run(&opts);
    ci_config_free(cfg);
    return rc;
}
