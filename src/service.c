/* service: pure supervision decisions (see service.h). */
#include <string.h>

#include "chroma_init/service.h"

void ci_health_reset(ci_health_t *h, const ci_healthcheck_t *hc, uint64_t now_ms)
{
    h->status = hc->kind == CI_HC_NONE ? CI_HEALTH_NONE : CI_HEALTH_STARTING;
    h->failing_streak = 0;
    h->started_ms = now_ms;
    h->start_period_over = hc->start_period_ms == 0;
    /* The log is kept across restarts, as Docker keeps it per container. */
}

static bool in_start_period(const ci_health_t *h, const ci_healthcheck_t *hc, uint64_t now_ms)
{
    return !h->start_period_over && now_ms - h->started_ms < hc->start_period_ms;
}

uint64_t ci_health_next_delay(const ci_health_t *h, const ci_healthcheck_t *hc, uint64_t now_ms)
{
    if (h->status == CI_HEALTH_STARTING && in_start_period(h, hc, now_ms)) {
        /* Do not overshoot the end of the start period by much. */
        return hc->start_interval_ms;
    }
    return hc->interval_ms;
}

ci_health_change_t ci_health_result(ci_health_t *h, const ci_healthcheck_t *hc,
                                    uint64_t probe_start_ms, bool ok, int exit_code,
                                    const char *output, int64_t start_unix_ms, int64_t end_unix_ms)
{
    if (h->nlog == CI_HEALTH_LOG_LEN) {
        memmove(&h->log[0], &h->log[1], sizeof h->log[0] * (CI_HEALTH_LOG_LEN - 1));
        h->nlog--;
    }
    ci_health_probe_log_t *e = &h->log[h->nlog++];
    e->start_unix_ms = start_unix_ms;
    e->end_unix_ms = end_unix_ms;
    e->exit_code = exit_code;
    size_t n = output ? strlen(output) : 0;
    if (n > CI_HEALTH_OUTPUT_MAX) n = CI_HEALTH_OUTPUT_MAX;
    if (n) memcpy(e->output, output, n);
    e->output[n] = '\0';

    ci_health_status_t before = h->status;
    if (ok) {
        h->failing_streak = 0;
        h->status = CI_HEALTH_HEALTHY;
        h->start_period_over = true;
    } else if (h->status == CI_HEALTH_STARTING && in_start_period(h, hc, probe_start_ms)) {
        /* Docker: failures during the start period are not counted. */
    } else {
        h->start_period_over = true;
        h->failing_streak++;
        if (h->failing_streak >= hc->retries) h->status = CI_HEALTH_UNHEALTHY;
    }
    if (h->status == before) return CI_HEALTH_SAME;
    if (h->status == CI_HEALTH_HEALTHY) return CI_HEALTH_BECAME_HEALTHY;
    if (h->status == CI_HEALTH_UNHEALTHY) return CI_HEALTH_BECAME_UNHEALTHY;
    return CI_HEALTH_SAME;
}

const char *ci_health_status_name(ci_health_status_t s)
{
    switch (s) {
    case CI_HEALTH_NONE:
        return "none";
    case CI_HEALTH_STARTING:
        return "starting";
    case CI_HEALTH_HEALTHY:
        return "healthy";
    case CI_HEALTH_UNHEALTHY:
        return "unhealthy";
    }
    return "none";
}

const ci_health_probe_log_t *ci_health_last(const ci_health_t *h)
{
    return h->nlog ? &h->log[h->nlog - 1] : NULL;
}

bool ci_restart_wanted(const ci_service_conf_t *conf, bool exited_ok, int restarts,
                       bool stop_requested)
{
    if (stop_requested) return false;
    switch (conf->restart) {
    case CI_RESTART_NO:
        return false;
    case CI_RESTART_ALWAYS:
    case CI_RESTART_UNLESS_STOPPED:
        return true;
    case CI_RESTART_ON_FAILURE:
        if (exited_ok) return false;
        return conf->restart_max < 0 || restarts < conf->restart_max;
    }
    return false;
}

uint64_t ci_backoff_delay_ms(unsigned streak)
{
    uint64_t d = 100;
    for (unsigned i = 0; i < streak && d < 60000; i++) d *= 2;
    return d > 60000 ? 60000 : d;
}

ci_dep_verdict_t ci_dep_evaluate(const ci_dep_t *dep, const ci_dep_view_t *v)
{
    bool met = false;
    switch (dep->condition) {
    case CI_COND_STARTED:
        met = v->started;
        break;
    case CI_COND_HEALTHY:
        met = v->healthy;
        break;
    case CI_COND_COMPLETED:
        met = v->completed_ok;
        break;
    }
    if (met) return CI_DEP_MET;
    if (v->ended) return dep->required ? CI_DEP_FATAL : CI_DEP_MET;
    return CI_DEP_WAIT;
}
