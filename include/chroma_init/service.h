/* service: the pure decisions of supervision — health (Docker's semantics),
 * restart policy, backoff, dependency conditions. No syscalls, no loop: time
 * comes in as arguments, decisions come out. The supervisor applies them. */
#ifndef CHROMA_INIT_SERVICE_H
#define CHROMA_INIT_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chroma_init/config.h"

/* ---- health ------------------------------------------------------------ */

typedef enum ci_health_status {
    CI_HEALTH_NONE = 0, /* no healthcheck */
    CI_HEALTH_STARTING,
    CI_HEALTH_HEALTHY,
    CI_HEALTH_UNHEALTHY,
} ci_health_status_t;

#define CI_HEALTH_LOG_LEN 5
#define CI_HEALTH_OUTPUT_MAX 4096

typedef struct ci_health_probe_log {
    int64_t start_unix_ms; /* wall clock, for `docker inspect`-shaped output */
    int64_t end_unix_ms;
    int exit_code; /* 0 healthy, 1 unhealthy, -1 timeout/error (as Docker) */
    char output[CI_HEALTH_OUTPUT_MAX + 1];
} ci_health_probe_log_t;

typedef struct ci_health {
    ci_health_status_t status;
    int failing_streak;
    uint64_t started_ms;    /* when the service (re)started, monotonic */
    bool start_period_over; /* after the first success, or once start_period elapsed */
    size_t nlog;            /* entries in log (ring, newest last) */
    ci_health_probe_log_t log[CI_HEALTH_LOG_LEN];
} ci_health_t;

typedef enum ci_health_change {
    CI_HEALTH_SAME = 0,
    CI_HEALTH_BECAME_HEALTHY,
    CI_HEALTH_BECAME_UNHEALTHY,
} ci_health_change_t;

/* The service (re)started at now_ms: status `starting` (or none). */
void ci_health_reset(ci_health_t *h, const ci_healthcheck_t *hc, uint64_t now_ms);

/* Delay before the next probe, from the end of the previous one (or from the
 * start): start_interval while inside the start period and not yet healthy,
 * interval otherwise. Docker runs the first probe after that delay too. */
uint64_t ci_health_next_delay(const ci_health_t *h, const ci_healthcheck_t *hc, uint64_t now_ms);

/* A probe that started at probe_start_ms ended: ok, exit_code as Docker
 * records it, output (borrowed, truncated to CI_HEALTH_OUTPUT_MAX). Failures
 * inside the start period do not count; retries consecutive counted failures
 * make it unhealthy; a success makes it healthy and ends the start period. */
ci_health_change_t ci_health_result(ci_health_t *h, const ci_healthcheck_t *hc,
                                    uint64_t probe_start_ms, bool ok, int exit_code,
                                    const char *output, int64_t start_unix_ms, int64_t end_unix_ms);

const char *ci_health_status_name(ci_health_status_t s);
/* The newest log entry, or NULL. */
const ci_health_probe_log_t *ci_health_last(const ci_health_t *h);

/* ---- restart ----------------------------------------------------------- */

/* Whether a service that just exited runs again. exited_ok: exit code 0.
 * restarts: how many times it was already restarted. stop_requested: a
 * ctl stop or a shutdown is in progress for it. */
bool ci_restart_wanted(const ci_service_conf_t *conf, bool exited_ok, int restarts,
                       bool stop_requested);

/* Docker's backoff: 100 ms, doubled at each consecutive restart, capped at 1
 * min. `streak` is the number of restarts since the last reset (0 first). */
uint64_t ci_backoff_delay_ms(unsigned streak);
/* A run at least this long resets the streak. */
#define CI_BACKOFF_RESET_MS 10000u

/* ---- dependencies ------------------------------------------------------ */

/* What a dependency looks like to its dependents. */
typedef struct ci_dep_view {
    bool started;      /* spawned at least once in its current life */
    bool running;      /* a process is alive now */
    bool healthy;      /* running and health == healthy */
    bool completed_ok; /* its last run exited 0 and it is not running */
    bool ended;        /* ended for good: exited and will not run again, or failed to start */
} ci_dep_view_t;

typedef enum ci_dep_verdict {
    CI_DEP_WAIT = 0, /* not met yet */
    CI_DEP_MET,
    CI_DEP_FATAL, /* ended for good without meeting the condition */
} ci_dep_verdict_t;

ci_dep_verdict_t ci_dep_evaluate(const ci_dep_t *dep, const ci_dep_view_t *view);

#endif
