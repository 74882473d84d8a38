/* cli_ctl: `chroma-init ctl [--socket PATH] [--config FILE] VERB [ARGS] [--json]`,
 * a client of the control socket (see ctl.c). */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chroma_init/cli.h"
#include "chroma_init/util.h"
#include "ctl_proto.h"

static const char usage_text[] =
    "usage: chroma-init ctl [--socket PATH] [--config FILE] [--json] VERB [ARGS]\n"
    "  status               services: state, health, pid, uptime, restarts, last exit\n"
    "  start SVC            start a stopped service (forgets a `stop`)\n"
    "  stop SVC             stop a service (remembered for unless-stopped)\n"
    "  restart SVC          stop, then start a service\n"
    "  signal SVC SIG       send SIG (e.g. SIGHUP) to the service's process group\n"
    "  shutdown             stop everything and exit the init\n"
    "The socket defaults to $CHROMA_INIT_SOCKET, then <state_dir>/ctl.sock of the config.\n";

static int usage(const char *what, const char *arg)
{
    fprintf(stderr, "chroma-init ctl: %s%s\n", what, arg);
    fputs(usage_text, stderr);
    return 2;
}

static const char *json_str(json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : dflt;
}

static void print_table(json_t *reply)
{
    json_t *svcs = json_object_get(reply, "services");
    size_t i, w = strlen("SERVICE");
    json_t *s;
    json_array_foreach(svcs, i, s)
    {
        size_t l = strlen(json_str(s, "name", "?"));
        if (l > w) w = l;
    }
    printf("%-*s  %-8s  %-9s  %-7s  %-9s  %-8s  %s\n", (int)w, "SERVICE", "STATE", "HEALTH", "PID",
           "UPTIME", "RESTARTS", "LAST EXIT");
    json_array_foreach(svcs, i, s)
    {
        char pid[32] = "-", up[32] = "-";
        json_t *p = json_object_get(s, "pid"), *u = json_object_get(s, "uptime_s");
        if (json_is_integer(p)) snprintf(pid, sizeof pid, "%lld", (long long)json_integer_value(p));
        if (json_is_integer(u))
            ci_duration_format((uint64_t)json_integer_value(u) * 1000, up, sizeof up);
        const char *health = json_str(s, "health", "none");
        if (!strcmp(health, "none")) health = "-";
        printf("%-*s  %-8s  %-9s  %-7s  %-9s  %-8lld  %s\n", (int)w, json_str(s, "name", "?"),
               json_str(s, "state", "?"), health, pid, up,
               (long long)json_integer_value(json_object_get(s, "restarts")),
               json_str(s, "last_exit", "-"));
    }
}

int ci_cli_ctl(int argc, char **argv)
{
    const char *sock_opt = NULL, *config = NULL;
    const char *pos[4];
    size_t npos = 0;
    bool as_json = false, opts_done = false;
    int rc = 1;
    char *path = NULL;
    json_t *req = NULL, *reply = NULL;
    char err[1024];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && a[0] == '-' && a[1]) {
            if (!strcmp(a, "--")) {
                opts_done = true;
            } else if (!strcmp(a, "--json")) {
                as_json = true;
            } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
                fputs(usage_text, stdout);
                return 0;
            } else {
                int r = ci_ctl_conn_option(argc, argv, &i, &sock_opt, &config);
                if (r < 0) return usage(a, " needs a value");
                if (r == 0) return usage("unknown option ", a);
            }
            continue;
        }
        if (npos == CI_ARRAY_SIZE(pos)) return usage("too many arguments", "");
        pos[npos++] = a;
    }
    if (npos == 0) return usage("missing command", "");
    const char *verb = pos[0];
    size_t want;
    if (!strcmp(verb, "status") || !strcmp(verb, "shutdown"))
        want = 1;
    else if (!strcmp(verb, "start") || !strcmp(verb, "stop") || !strcmp(verb, "restart"))
        want = 2;
    else if (!strcmp(verb, "signal"))
        want = 3;
    else
        return usage("unknown command ", verb);
    if (npos != want) return usage("wrong number of arguments for ", verb);

    req = json_pack("{s:s}", "cmd", verb);
    if (!req) goto oom;
    if (want >= 2) json_object_set_new(req, "service", json_string(pos[1]));
    if (want == 3) {
        int sig = ci_signal_parse(pos[2]);
        if (sig <= 0) {
            json_decref(req);
            return usage("invalid signal ", pos[2]);
        }
        json_object_set_new(req, "signal", json_string(ci_signal_name(sig)));
    }
    path = ci_ctl_socket_path(sock_opt, config);
    if (!path) goto oom;
    if (ci_ctl_call(path, req, CI_CTL_TIMEOUT_MS, &reply, err, sizeof err) < 0) {
        fprintf(stderr, "chroma-init ctl: %s\n", err);
        goto done;
    }
    bool ok = json_is_true(json_object_get(reply, "ok"));
    if (as_json) {
        json_dumpf(reply, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
    } else if (ok && !strcmp(verb, "status")) {
        print_table(reply);
    } else if (ok) {
        printf("%s\n", json_str(reply, "message", "ok"));
    }
    if (!ok) fprintf(stderr, "chroma-init ctl: %s\n", json_str(reply, "error", "request failed"));
    rc = ok ? 0 : 1;
done:
    fflush(stdout);
    json_decref(req);
    json_decref(reply);
    free(path);
    return rc;
oom:
    fprintf(stderr, "chroma-init ctl: out of memory\n");
    goto done;
}
