/* The pure supervision decisions: Docker's health semantics with a fake
 * clock, restart policies, backoff, dependency conditions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "chroma_init/service.h"

static ci_healthcheck_t hc_default(void)
{
    ci_healthcheck_t hc;
    memset(&hc, 0, sizeof hc);
    hc.kind = CI_HC_HTTP;
    hc.interval_ms = 30000;
    hc.timeout_ms = 10000;
    hc.retries = 3;
    hc.start_period_ms = 0;
    hc.start_interval_ms = 5000;
    return hc;
}

/* A container just started (t = 0): no probe yet. */
static void fresh(ci_health_t *h, const ci_healthcheck_t *hc)
{
    memset(h, 0, sizeof *h);
    ci_health_reset(h, hc, 0);
}

/* Runs one probe at time t that ends at t (fake clock). */
static ci_health_change_t probe(ci_health_t *h, const ci_healthcheck_t *hc, uint64_t t, bool ok)
{
    return ci_health_result(h, hc, t, ok, ok ? 0 : 1, ok ? "ok" : "fail", (int64_t)t, (int64_t)t);
}

static void starting_until_first_result(void **state)
{
    (void)state;
    ci_healthcheck_t hc = hc_default();
    ci_health_t h;
    memset(&h, 0, sizeof h);
    ci_health_reset(&h, &hc, 1000);
    assert_int_equal(h.status, CI_HEALTH_STARTING);
    /* Docker runs the first probe after one interval. */
    assert_int_equal(ci_health_next_delay(&h, &hc, 1000), 30000);
    assert_int_equal(probe(&h, &hc, 31000, true), CI_HEALTH_BECAME_HEALTHY);
    assert_int_equal(h.status, CI_HEALTH_HEALTHY);
    assert_int_equal(h.failing_streak, 0);
}

static void no_healthcheck_is_none(void **state)
{
    (void)state;
    ci_healthcheck_t hc = hc_default();
    hc.kind = CI_HC_NONE;
    ci_health_t h;
    fresh(&h, &hc);
    assert_int_equal(h.status, CI_HEALTH_NONE);
    assert_string_equal(ci_health_status_name(h.status), "none");
}

static void retries_consecutive_failures_make_unhealthy(void **state)
{
    (void)state;
    ci_healthcheck_t hc = hc_default();
    ci_health_t h;
    fresh(&h, &hc);
    /* From starting: failures count at once when there is no start period. */
    assert_int_equal(probe(&h, &hc, 30000, false), CI_HEALTH_SAME);
    assert_int_equal(h.failing_streak, 1);
    assert_int_equal(h.status, CI_HEALTH_STARTING);
    assert_int_equal(probe(&h, &hc, 60000, false), CI_HEALTH_SAME);
    assert_int_equal(probe(&h, &hc, 90000, false), CI_HEALTH_BECAME_UNHEALTHY);
    assert_int_equal(h.failing_streak, 3);
    /* Staying unhealthy is not a new transition. */
    assert_int_equal(probe(&h, &hc, 120000, false), CI_HEALTH_SAME);
    assert_int_equal(h.failing_streak, 4);
    /* One success: healthy again, streak reset. */
    assert_int_equal(probe(&h, &hc, 150000, true), CI_HEALTH_BECAME_HEALTHY);
    assert_int_equal(h.failing_streak, 0);
}

static void success_resets_streak_before_retries(void **state)
{
    (void)state;
    ci_healthcheck_t hc = hc_default();
    ci_health_t h;
    fresh(&h, &hc);
    probe(&h, &hc, 1, true);
    probe(&h, &hc, 2, false);
    probe(&h, &hc, 3, false);
    assert_int_equal(probe(&h, &hc, 4, true), CI_HEALTH_SAME);
    assert_int_equal(h.failing_streak, 0);
    probe(&h, &hc, 5, false);
    probe(&h, &hc, 6, false);
    assert_int_equal(h.status, CI_HEALTH_HEALTHY);
    assert_int_equal(probe(&h, &hc, 7, false), CI_HEALTH_BECAME_UNHEALTHY);
}

static void start_period_failures_do_not_count(void **state)
{
    (void)state;
    ci_healthcheck_t hc = hc_default();
    hc.start_period_ms = 120000;
    hc.start_interval_ms = 100;
    ci_health_t h;
    fresh(&h, &hc);
    /* Inside the start period probes run every start_interval. */
    assert_int_equal(ci_health_next_delay(&h, &hc, 0), 100);
    for (uint64_t t = 100; t < 10000; t += 100) {
        assert_int_equal(probe(&h, &hc, t, false), CI_HEALTH_SAME);
        assert_int_equal(h.failing_streak, 0);
        assert_int_equal(h.status, CI_HEALTH_STARTING);
    }
    assert_int_equal(ci_health_next_delay(&h, &hc, 10000), 100);
    /* The first success ends the start period: interval from then on. */
    assert_int_equal(probe(&h, &hc, 10000, true), CI_HEALTH_BECAME_HEALTHY);
    assert_int_equal(ci_health_next_delay(&h, &hc, 10001), 30000);
    /* ...and failures count again, even though 2m have not passed. */
    probe(&h, &hc, 20000, false);
    assert_int_equal(h.failing_streak, 1);
}

static void start_period_elapsed_failures_count(void **state)
{
    (void)state;
    ci_healthcheck_t hc = hc_default();
    hc.start_period_ms = 1000;
    hc.start_interval_ms = 100;
    hc.retries = 2;
    ci_health_t h;
    memset(&h, 0, sizeof h);
    ci_health_reset(&h, &hc, 5000);
    probe(&h, &hc, 5500, false);
    assert_int_equal(h.failing_streak, 0);
    /* A probe that starts after the start period counts. */
    assert_int_equal(ci_health_next_delay(&h, &hc, 6000), 30000);
    probe(&h, &hc, 6000, false);
    assert_int_equal(h.failing_streak, 1);
    assert_int_equal(probe(&h, &hc, 6100, false), CI_HEALTH_BECAME_UNHEALTHY);
}

static void restart_resets_to_starting(void **state)
{
    (void)state;
    ci_healthcheck_t hc = hc_default();
    ci_health_t h;
    fresh(&h, &hc);
    probe(&h, &hc, 1, true);
    ci_health_reset(&h, &hc, 100);
    assert_int_equal(h.status, CI_HEALTH_STARTING);
    assert_int_equal(h.failing_streak, 0);
    /* The probe log survives, as Docker's per container. */
    assert_int_equal(h.nlog, 1);
}

static void log_keeps_last_five_and_caps_output(void **state)
{
    (void)state;
    ci_healthcheck_t hc = hc_default();
    ci_health_t h;
    fresh(&h, &hc);
    static char big[CI_HEALTH_OUTPUT_MAX * 2];
    memset(big, 'x', sizeof big - 1);
    for (int i = 0; i < 7; i++)
        ci_health_result(&h, &hc, (uint64_t)i, i % 2 == 0, i % 2 == 0 ? 0 : 1, i == 6 ? big : "o",
                         i * 10, i * 10 + 1);
    assert_int_equal(h.nlog, CI_HEALTH_LOG_LEN);
    assert_int_equal(h.log[0].start_unix_ms, 20);
    const ci_health_probe_log_t *last = ci_health_last(&h);
    assert_non_null(last);
    assert_int_equal(last->start_unix_ms, 60);
    assert_int_equal(strlen(last->output), CI_HEALTH_OUTPUT_MAX);
}

static ci_service_conf_t conf_with(ci_restart_policy_t p, int max)
{
    ci_service_conf_t c;
    memset(&c, 0, sizeof c);
    c.restart = p;
    c.restart_max = max;
    return c;
}

static void restart_policies(void **state)
{
    (void)state;
    ci_service_conf_t no = conf_with(CI_RESTART_NO, -1);
    assert_false(ci_restart_wanted(&no, false, 0, false));
    assert_false(ci_restart_wanted(&no, true, 0, false));

    ci_service_conf_t always = conf_with(CI_RESTART_ALWAYS, -1);
    assert_true(ci_restart_wanted(&always, true, 100, false));
    assert_true(ci_restart_wanted(&always, false, 100, false));
    assert_false(ci_restart_wanted(&always, false, 0, true));

    ci_service_conf_t us = conf_with(CI_RESTART_UNLESS_STOPPED, -1);
    assert_true(ci_restart_wanted(&us, true, 5, false));
    assert_false(ci_restart_wanted(&us, true, 5, true));

    ci_service_conf_t of = conf_with(CI_RESTART_ON_FAILURE, -1);
    assert_true(ci_restart_wanted(&of, false, 1000, false));
    assert_false(ci_restart_wanted(&of, true, 0, false));

    /* on-failure:2 -> two restarts, three runs. */
    ci_service_conf_t of2 = conf_with(CI_RESTART_ON_FAILURE, 2);
    int runs = 1;
    while (ci_restart_wanted(&of2, false, runs - 1, false)) runs++;
    assert_int_equal(runs, 3);
}

static void backoff_doubles_and_caps(void **state)
{
    (void)state;
    assert_int_equal(ci_backoff_delay_ms(0), 100);
    assert_int_equal(ci_backoff_delay_ms(1), 200);
    assert_int_equal(ci_backoff_delay_ms(2), 400);
    assert_int_equal(ci_backoff_delay_ms(9), 51200);
    assert_int_equal(ci_backoff_delay_ms(10), 60000);
    assert_int_equal(ci_backoff_delay_ms(1000), 60000);
    assert_int_equal(CI_BACKOFF_RESET_MS, 10000);
}

static void dependency_conditions(void **state)
{
    (void)state;
    ci_dep_t dep = {.condition = CI_COND_STARTED, .required = true};
    ci_dep_view_t v = {0};
    assert_int_equal(ci_dep_evaluate(&dep, &v), CI_DEP_WAIT);
    v.started = v.running = true;
    assert_int_equal(ci_dep_evaluate(&dep, &v), CI_DEP_MET);

    dep.condition = CI_COND_HEALTHY;
    assert_int_equal(ci_dep_evaluate(&dep, &v), CI_DEP_WAIT);
    v.healthy = true;
    assert_int_equal(ci_dep_evaluate(&dep, &v), CI_DEP_MET);

    dep.condition = CI_COND_COMPLETED;
    ci_dep_view_t done_ok = {.started = true, .completed_ok = true, .ended = true};
    assert_int_equal(ci_dep_evaluate(&dep, &done_ok), CI_DEP_MET);
    ci_dep_view_t done_bad = {.started = true, .ended = true};
    assert_int_equal(ci_dep_evaluate(&dep, &done_bad), CI_DEP_FATAL);
    /* required: false starts anyway once the dependency has ended. */
    dep.required = false;
    assert_int_equal(ci_dep_evaluate(&dep, &done_bad), CI_DEP_MET);
    ci_dep_view_t still_running = {.started = true, .running = true};
    assert_int_equal(ci_dep_evaluate(&dep, &still_running), CI_DEP_WAIT);

    /* An unhealthy dependency is waited for, not fatal (unlike Compose). */
    dep.required = true;
    dep.condition = CI_COND_HEALTHY;
    ci_dep_view_t unhealthy = {.started = true, .running = true};
    assert_int_equal(ci_dep_evaluate(&dep, &unhealthy), CI_DEP_WAIT);
    ci_dep_view_t gone = {.started = true, .ended = true};
    assert_int_equal(ci_dep_evaluate(&dep, &gone), CI_DEP_FATAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(starting_until_first_result),
        cmocka_unit_test(no_healthcheck_is_none),
        cmocka_unit_test(retries_consecutive_failures_make_unhealthy),
        cmocka_unit_test(success_resets_streak_before_retries),
        cmocka_unit_test(start_period_failures_do_not_count),
        cmocka_unit_test(start_period_elapsed_failures_count),
        cmocka_unit_test(restart_resets_to_starting),
        cmocka_unit_test(log_keeps_last_five_and_caps_output),
        cmocka_unit_test(restart_policies),
        cmocka_unit_test(backoff_doubles_and_caps),
        cmocka_unit_test(dependency_conditions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
