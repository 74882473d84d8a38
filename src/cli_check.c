/* cli_check: `chroma-init check [--config FILE] [--json]`: load and validate a
 * config, print it resolved (interpolated, defaults filled) with its start order. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chroma_init/cli.h"
#include "chroma_init/config.h"
#include "chroma_init/util.h"

static const char check_usage[] = "usage: chroma-init check [--config FILE] [--json]\n";

static json_t *jdur(uint64_t ms)
{
    char buf[64];
    ci_duration_format(ms, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *jstrv(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *jenv(char *const *env, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(env[i], '=');
        char key[512];
        if (!eq) continue;
        snprintf(key, sizeof(key), "%.*s", (int)(eq - env[i]), env[i]);
        json_object_set_new(o, key, json_string(eq + 1));
    }
    return o;
}

static json_t *jhealthcheck(const ci_healthcheck_t *hc)
{
    static const char *const kinds[] = {"NONE", "CMD", "CMD-SHELL", "HTTP", "TCP"};
    json_t *o = json_object(), *test = json_array();
    json_array_append_new(test, json_string(kinds[hc->kind]));
    if (hc->kind == CI_HC_SHELL)
        json_array_append_new(test, json_string(hc->argv[2]));
    else
        for (size_t i = 0; i < hc->argc; i++) json_array_append_new(test, json_string(hc->argv[i]));
    json_object_set_new(o, "test", test);
    if (hc->kind == CI_HC_NONE) return o;
    json_object_set_new(o, "interval", jdur(hc->interval_ms));
    json_object_set_new(o, "timeout", jdur(hc->timeout_ms));
    json_object_set_new(o, "retries", json_integer(hc->retries));
    json_object_set_new(o, "start_period", jdur(hc->start_period_ms));
    json_object_set_new(o, "start_interval", jdur(hc->start_interval_ms));
    if (hc->ca) json_object_set_new(o, "ca", json_string(hc->ca));
    if (hc->kind == CI_HC_HTTP) json_object_set_new(o, "insecure", json_boolean(hc->insecure));
    return o;
}

static json_t *jcertgen(const ci_certgen_conf_t *g)
{
    json_t *o = json_object();
    char *domains;
    size_t len = 1;
    for (size_t i = 0; i < g->ndomains; i++) len += strlen(g->domains[i]) + 1;
    domains = calloc(1, len);
    for (size_t i = 0; domains && i < g->ndomains; i++) {
        if (i) strcat(domains, ",");
        strcat(domains, g->domains[i]);
    }
    json_object_set_new(o, "cert", json_string(g->cert));
    json_object_set_new(o, "key", json_string(g->key));
    json_object_set_new(o, "domain", domains ? json_string(domains) : json_null());
    json_object_set_new(o, "subject", json_string(g->subject));
    json_object_set_new(o, "key_type", json_string(g->key_type));
    json_object_set_new(o, "days", json_integer(g->days));
    json_object_set_new(o, "renew_before", jdur(g->renew_before_ms));
    if (g->owner) json_object_set_new(o, "owner", json_string(g->owner));
    free(domains);
    return o;
}

static json_t *jservice(const ci_service_conf_t *s)
{
    static const char *const conds[] = {"service_started", "service_healthy",
                                        "service_completed_successfully"};
    json_t *o = json_object(), *deps = json_object();
    char buf[64];

    if (s->is_certgen)
        json_object_set_new(o, "certgen", jcertgen(&s->certgen));
    else if (s->command_shell)
        json_object_set_new(o, "command", json_string(s->command[2]));
    else
        json_object_set_new(o, "command", jstrv(s->command, s->command_len));
    json_object_set_new(o, "environment", jenv(s->environment, s->environment_len));
    if (s->working_dir) json_object_set_new(o, "working_dir", json_string(s->working_dir));
    if (s->user) json_object_set_new(o, "user", json_string(s->user));
    for (size_t i = 0; i < s->ndepends_on; i++) {
        const ci_dep_t *d = &s->depends_on[i];
        json_t *dj = json_object();
        json_object_set_new(dj, "condition", json_string(conds[d->condition]));
        json_object_set_new(dj, "required", json_boolean(d->required));
        json_object_set_new(dj, "restart", json_boolean(d->restart));
        json_object_set_new(deps, d->name, dj);
    }
    json_object_set_new(o, "depends_on", deps);
    json_object_set_new(o, "healthcheck", jhealthcheck(&s->healthcheck));
    if (s->nwait_for_files) {
        json_t *w = json_object();
        json_object_set_new(w, "files", jstrv(s->wait_for_files, s->nwait_for_files));
        json_object_set_new(w, "timeout", jdur(s->wait_for_timeout_ms));
        json_object_set_new(o, "wait_for", w);
    }
    switch (s->restart) {
    case CI_RESTART_ALWAYS:
        snprintf(buf, sizeof(buf), "always");
        break;
    case CI_RESTART_UNLESS_STOPPED:
        snprintf(buf, sizeof(buf), "unless-stopped");
        break;
    case CI_RESTART_ON_FAILURE:
        if (s->restart_max > 0)
            snprintf(buf, sizeof(buf), "on-failure:%d", s->restart_max);
        else
            snprintf(buf, sizeof(buf), "on-failure");
        break;
    default:
        snprintf(buf, sizeof(buf), "no");
    }
    json_object_set_new(o, "restart", json_string(buf));
    json_object_set_new(o, "on_unhealthy",
                        json_string(s->on_unhealthy_restart ? "restart" : "none"));
    json_object_set_new(o, "stop_signal", json_string(ci_signal_name(s->stop_signal)));
    json_object_set_new(o, "stop_grace_period", jdur(s->stop_grace_ms));
    if (s->nreload_watch) {
        json_t *rl = json_object();
        json_object_set_new(rl, "watch", jstrv(s->reload_watch, s->nreload_watch));
        json_object_set_new(rl, "signal", json_string(ci_signal_name(s->reload_signal)));
        json_object_set_new(o, "reload", rl);
    }
    json_object_set_new(o, "essential", json_boolean(s->essential));
    json_object_set_new(o, "log_prefix", json_string(s->log_prefix ? s->log_prefix : s->name));
    return o;
}

static json_t *jconfig(const ci_config_t *cfg)
{
    json_t *o = json_object(), *log = json_object(), *svcs = json_object();
    json_object_set_new(o, "environment", jenv(cfg->environment, cfg->environment_len));
    json_object_set_new(o, "state_dir", json_string(cfg->state_dir));
    json_object_set_new(log, "format",
                        json_string(cfg->log_format == CI_LOG_JSON ? "json" : "text"));
    json_object_set_new(log, "prefix", json_boolean(cfg->log_prefix));
    json_object_set_new(log, "timestamps", json_boolean(cfg->log_timestamps));
    json_object_set_new(o, "log", log);
    json_object_set_new(o, "shutdown_timeout", jdur(cfg->shutdown_timeout_ms));
    for (size_t i = 0; i < cfg->nservices; i++)
        json_object_set_new(svcs, cfg->services[i].name, jservice(&cfg->services[i]));
    json_object_set_new(o, "services", svcs);
    return o;
}

static int print_json(const ci_config_t *cfg)
{
    json_t *o = jconfig(cfg), *order = json_array(), *waves = json_array();
    char *text;
    for (size_t i = 0; i < cfg->nservices; i++)
        json_array_append_new(order, json_string(cfg->services[cfg->start_order[i]].name));
    for (unsigned w = 0; w < cfg->nwaves; w++) {
        json_t *wa = json_array();
        for (size_t i = 0; i < cfg->nservices; i++)
            if (cfg->wave[cfg->start_order[i]] == w)
                json_array_append_new(wa, json_string(cfg->services[cfg->start_order[i]].name));
        json_array_append_new(waves, wa);
    }
    json_object_set_new(o, "start_order", order);
    json_object_set_new(o, "waves", waves);
    text = json_dumps(o, JSON_INDENT(2));
    json_decref(o);
    if (!text) return 1;
    printf("%s\n", text);
    free(text);
    return 0;
}

static int print_text(const ci_config_t *cfg)
{
    json_t *o = jconfig(cfg);
    char *text = json_dumps(o, JSON_INDENT(2));
    json_decref(o);
    if (!text) return 1;
    printf("%s: OK, %zu service%s\n%s\nstart order: ", cfg->path, cfg->nservices,
           cfg->nservices == 1 ? "" : "s", text);
    free(text);
    for (size_t i = 0; i < cfg->nservices; i++)
        printf("%s%s", i ? " \xe2\x86\x92 " : "", cfg->services[cfg->start_order[i]].name);
    printf("\n");
    for (unsigned w = 0; w < cfg->nwaves; w++) {
        int first = 1;
        printf("  wave %u:", w + 1);
        for (size_t i = 0; i < cfg->nservices; i++) {
            if (cfg->wave[cfg->start_order[i]] != w) continue;
            printf("%s %s", first ? "" : ",", cfg->services[cfg->start_order[i]].name);
            first = 0;
        }
        printf("\n");
    }
    return 0;
}

int ci_cli_check(int argc, char **argv)
{
    const char *explicit_path = NULL;
    int as_json = 0, rc;
    ci_config_t *cfg = NULL;
    ci_error_t err;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json"))
            as_json = 1;
        else if (!strcmp(a, "--config") || !strcmp(a, "-c")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "chroma-init check: %s needs a FILE\n%s", a, check_usage);
                return 2;
            }
            explicit_path = argv[++i];
        } else if (!strncmp(a, "--config=", 9))
            explicit_path = a + 9;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(check_usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "chroma-init check: unexpected argument \"%s\"\n%s", a, check_usage);
            return 2;
        }
    }
    if (ci_config_load(ci_cli_config_path(explicit_path), &cfg, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    rc = as_json ? print_json(cfg) : print_text(cfg);
    fflush(stdout);
    ci_config_free(cfg);
    return rc;
}
