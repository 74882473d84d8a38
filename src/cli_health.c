/* cli_health: `chroma-init health [--socket PATH] [--config FILE]`, for
 * Docker's HEALTHCHECK and Kubernetes exec probes. Asks the init (no probes
 * of its own): exit 0 when every long-running service is running and, where
 * it has a healthcheck, healthy; 1 with one line saying which and why. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chroma_init/cli.h"
#include "ctl_proto.h"

static int usage(const char *what, const char *arg)
{
    fprintf(stderr, "chroma-init health: %s%s\n", what, arg);
    fprintf(stderr, "usage: chroma-init health [--socket PATH] [--config FILE]\n");
    return 2;
}

int ci_cli_health(int argc, char **argv)
{
    const char *sock_opt = NULL, *config = NULL;
    char err[1024];
    json_t *req = NULL, *reply = NULL;
    char *path = NULL;
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: chroma-init health [--socket PATH] [--config FILE]\n");
            return 0;
        } else {
            int r = ci_ctl_conn_option(argc, argv, &i, &sock_opt, &config);
            if (r < 0) return usage(a, " needs a value");
            if (r == 0) return usage("unexpected argument ", a);
        }
    }
    req = json_pack("{s:s}", "cmd", "health");
    path = ci_ctl_socket_path(sock_opt, config);
    if (!req || !path) {
        fprintf(stderr, "chroma-init health: out of memory\n");
        goto done;
    }
    if (ci_ctl_call(path, req, CI_CTL_TIMEOUT_MS, &reply, err, sizeof err) < 0) {
        printf("chroma-init health: %s\n", err);
        goto done;
    }
    if (!json_is_true(json_object_get(reply, "ok"))) {
        const char *e = json_string_value(json_object_get(reply, "error"));
        printf("chroma-init health: %s\n", e ? e : "request failed");
        goto done;
    }
    if (json_is_true(json_object_get(reply, "healthy"))) {
        rc = 0;
        goto done;
    }
    json_t *problems = json_object_get(reply, "problems");
    size_t i;
    json_t *p;
    json_array_foreach(problems, i, p)
    {
        printf("%s%s", i ? "; " : "", json_string_value(p) ? json_string_value(p) : "?");
    }
    printf("%s\n", json_array_size(problems) ? "" : "unhealthy");
done:
    fflush(stdout);
    json_decref(req);
    json_decref(reply);
    free(path);
    return rc;
}
