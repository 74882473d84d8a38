/* chroma-init: PID 1 for containers that serve Chroma over TLS.
 * This file only dispatches; everything lives in the library (src/). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "chroma_init/cli.h"
#include "chroma_init/tls.h"

static const char usage[] =
    "usage:\n"
    "  chroma-init [--config FILE] [--log-format text|json] [--verbose]\n"
    "  chroma-init [options] [-g] [-e CODE]... -- CMD [ARGS...]\n"
    "  chroma-init check   [--config FILE] [--json]\n"
    "  chroma-init certgen --cert FILE --key FILE [--domain D[,D...]] [--key-type TYPE]\n"
    "                      [--days N] [--subject /O=Chroma/C=US] [--renew-before DURATION]\n"
    "                      [--owner USER[:GROUP]] [--force]\n"
    "  chroma-init ctl [--socket PATH | --config FILE]\n"
    "                  status|start SVC|stop SVC|restart SVC|signal SVC SIG|shutdown [--json]\n"
    "  chroma-init health  [--socket PATH | --config FILE]\n"
    "  chroma-init --version | --help\n"
    "\n"
    "--config defaults to $CHROMA_INIT_CONFIG, then /etc/chroma-init/init.json.\n"
    "Exit codes: 0 clean stop, 1 a service failed for good, 2 bad usage or bad config;\n"
    "in -- mode the child's exit code, or 128+N when signal N killed it.\n";

/* certgen lives in chroma-init-tls.so with the rest of OpenSSL (see tls.h). */
static int certgen(int argc, char **argv)
{
    char err[512];
    const ci_tls_api_t *tls = ci_tls_load(err, sizeof(err));
    if (!tls) {
        fprintf(stderr, "chroma-init certgen: unable to load %s: %s\n", CI_TLS_MODULE_NAME, err);
        return 1;
    }
    return tls->cli_certgen(argc, argv);
}

int main(int argc, char **argv)
{
    /* fds 0, 1 and 2 always exist, so that no file we open later lands on
     * them and is handed to a service as its stdio by mistake. */
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd) break;

    if (argc >= 2) {
        const char *a = argv[1];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (!strcmp(a, "--version") || !strcmp(a, "-V")) {
            printf("chroma-init %s\n", CHROMA_INIT_VERSION);
            return 0;
        }
        if (!strcmp(a, "check")) return ci_cli_check(argc - 1, argv + 1);
        if (!strcmp(a, "certgen")) return certgen(argc - 1, argv + 1);
        if (!strcmp(a, "ctl")) return ci_cli_ctl(argc - 1, argv + 1);
        if (!strcmp(a, "health")) return ci_cli_health(argc - 1, argv + 1);
    }
    return ci_cli_run(argc, argv);
}
