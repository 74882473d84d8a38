/* supervisor: the loop, the service table, the process table.
 *
 * One SIGCHLD watcher reaps everything with waitpid(-1, WNOHANG) and
 * dispatches by pid; unknown pids are orphans, reaped and counted. Services
 * move through the states of ci_svc_state_t; the pure decisions (health,
 * restart, backoff, dependency conditions) come from service.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "chroma_init/certtime.h"
#include "chroma_init/log.h"
#include "chroma_init/logmux.h"
#include "chroma_init/outq.h"
#include "chroma_init/probe.h"
#include "chroma_init/service.h"
#include "chroma_init/spawn.h"
#include "chroma_init/supervisor.h"
#include "chroma_init/tini.h"
#include "chroma_init/util.h"
#include "sup_internal.h"

extern char **environ;

#define LEFTOVER_GRACE_MS 2000u
#define OUTPUT_FLUSH_MS 2000u
#define RELOAD_DEBOUNCE_MS 100u
#define RENEW_CHECK_MS (24u * 3600u * 1000u)

const char *ci_svc_state_name(ci_svc_state_t s)
{
    static const char *const names[] = {"waiting", "running", "stopping", "backoff",
                                        "exited",  "stopped", "failed"};
    return (size_t)s < CI_ARRAY_SIZE(names) ? names[s] : "?";
}

static void kick(ci_sup_t *sup);
static void check_done(ci_sup_t *sup);
static void begin_shutdown(ci_sup_t *sup, int exit_code, const char *why);
static void advance_shutdown(ci_sup_t *sup);
static void svc_stop(ci_svc_t *svc, bool restart_after);
static void health_schedule(ci_svc_t *svc);
static void probe_abandon(ci_svc_t *svc);
static void waitfor_stop(ci_svc_t *svc);
static bool reload_snapshot(ci_svc_t *svc);

static int64_t unix_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Renders a wait status: "exited with status 3", "killed by SIGKILL". */
static void describe_status(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by %s", ci_signal_name(WTERMSIG(status)));
    else
        snprintf(buf, len, "ended with wait status %d", status);
}

static int status_code(int status)
{
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 1;
}

static bool svc_alive(const ci_svc_t *svc)
{
    return svc->state == CI_SVC_RUNNING || svc->state == CI_SVC_STOPPING;
}

/* Each service leads its own process group; falls back to the pid if the
 * group is gone (the leader changed it, unusual). */
static void signal_group(pid_t pid, int sig)
{
    if (kill(-pid, sig) < 0 && errno == ESRCH) kill(pid, sig);
}

static void send_group(ci_svc_t *svc, int sig)
{
    if (svc->pid > 0) signal_group(svc->pid, sig);
}

/* ---- dependencies ------------------------------------------------------ */

static ci_dep_view_t dep_view(const ci_svc_t *d)
{
    ci_dep_view_t v = {0};
    v.started = d->ever_started && d->state != CI_SVC_STOPPED && d->state != CI_SVC_WAITING;
    v.running = svc_alive(d);
    v.healthy = d->state == CI_SVC_RUNNING && d->health.status == CI_HEALTH_HEALTHY;
    v.completed_ok = d->has_exit && !svc_alive(d) && d->state != CI_SVC_BACKOFF &&
                     WIFEXITED(d->last_status) && WEXITSTATUS(d->last_status) == 0;
    v.ended = d->state == CI_SVC_EXITED || d->state == CI_SVC_FAILED;
    return v;
}

static const char *cond_name(ci_condition_t c)
{
    switch (c) {
    case CI_COND_STARTED:
        return "service_started";
    case CI_COND_HEALTHY:
        return "service_healthy";
    case CI_COND_COMPLETED:
        return "service_completed_successfully";
    }
    return "?";
}

/* ---- spawning ---------------------------------------------------------- */

static void svc_fail(ci_svc_t *svc, const char *why)
{
    ci_sup_t *sup = svc->sup;
    waitfor_stop(svc);
    uv_timer_stop(&svc->timer);
    svc->state = CI_SVC_FAILED;
    svc->failed = true;
    snprintf(svc->reason, sizeof svc->reason, "%s", why);
    ci_log_eventf(CI_LOG_ERROR, svc->conf->name, "failed", -1, "not started: %s", why);
    if (svc->conf->essential && !sup->shutting_down) {
        sup->code_decided = true;
        begin_shutdown(sup, 1, "an essential service could not start");
    }
}

static void svc_spawn(ci_svc_t *svc)
{
    ci_sup_t *sup = svc->sup;
    const ci_service_conf_t *c = svc->conf;
    char err[512];
    int child_fds[2] = {-1, -1};
    ci_spawn_opts_t o;
    memset(&o, 0, sizeof o);
    o.argv = svc->argv;
    o.envp = svc->envp;
    o.cwd = c->working_dir;
    o.user = c->user;
    o.stdio[0] = -1;
    o.stdio[1] = -1;
    o.stdio[2] = -1;
    o.group = CI_SPAWN_SETSID;
    if (sup->mux) {
        svc->logstream = NULL;
        if (ci_logstream_open(sup->mux, svc->prefix, child_fds, &svc->logstream) == 0) {
            o.stdio[1] = child_fds[0];
            o.stdio[2] = child_fds[1];
        }
    }
    /* Services read nothing from the container's stdin. */
    o.stdio[0] = sup->devnull;

    pid_t pid = 0;
    int exec_errno = 0;
    /* The signal thread waits while the service starts: a signal that comes
     * meanwhile reaches the new process once it has exec'd (before, it
     * would act with the child's default dispositions; not at all, if the
     * pid were published only after ci_spawn() and the loop thread were
     * slow to get there). */
    pthread_mutex_lock(&sup->fwd_mu);
    int r = ci_spawn(&o, &pid, &exec_errno, err, sizeof err);
    svc->fwd_pid = r < 0 ? 0 : pid;
    pthread_mutex_unlock(&sup->fwd_mu);
    if (child_fds[0] >= 0) close(child_fds[0]);
    if (child_fds[1] >= 0) close(child_fds[1]);
    if (r < 0) {
        /* Nothing was started (unknown user, fork failure). */
        ci_log_eventf(CI_LOG_ERROR, c->name, "spawn-failed", -1, "%s", err);
        svc->pid = 0;
        svc->has_exit = true;
        svc->last_status = 127 << 8;
        svc->spawn_error = true;
        svc->state = CI_SVC_RUNNING; /* let the exit path decide */
        ci_sup_on_exit(svc, 127 << 8);
        return;
    }
    svc->pid = pid;
    svc->state = CI_SVC_RUNNING;
    svc->started_ms = ci_now_ms();
    svc->ever_started = true;
    if (!svc->renewal_run) {
        svc->generation++;
        /* depends_on.restart compares against the dependencies as they were
         * at this start. */
        for (size_t i = 0; i < c->ndepends_on; i++)
            svc->dep_generation[i] = sup->svcs[c->depends_on[i].index].generation;
    }
    svc->spawn_error = false;
    ci_log_eventf(CI_LOG_INFO, c->name, "started", pid, "started, pid %d", (int)pid);
    if (exec_errno) ci_log_eventf(CI_LOG_ERROR, c->name, "exec-failed", pid, "%s", err);
    ci_health_reset(&svc->health, &c->healthcheck, svc->started_ms);
    health_schedule(svc);
    /* The service reads the watched files as it starts: only later changes
     * reload it. */
    if (c->nreload_watch) reload_snapshot(svc);
}

/* ---- wait_for ---------------------------------------------------------- */

static bool file_ready(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && st.st_size > 0;
}

static const char *first_missing(const ci_svc_t *svc)
{
    for (size_t i = 0; i < svc->conf->nwait_for_files; i++)
        if (!file_ready(svc->conf->wait_for_files[i])) return svc->conf->wait_for_files[i];
    return NULL;
}

static void fs_watch_close_cb(uv_handle_t *h)
{
    free(h);
}

/* The nearest existing ancestor directory of path, into dir. */
static void existing_dir_of(const char *path, char *dir, size_t len)
{
    snprintf(dir, len, "%s", path);
    for (;;) {
        char *slash = strrchr(dir, '/');
        if (!slash) {
            snprintf(dir, len, ".");
        } else if (slash == dir) {
            dir[1] = '\0';
        } else {
            *slash = '\0';
        }
        struct stat st;
        if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) return;
        if (!strcmp(dir, "/") || !strcmp(dir, ".")) return;
    }
}

static void watchset_clear(ci_watchset_t *ws)
{
    for (size_t i = 0; i < ws->n; i++) {
        if (ws->h[i]) {
            uv_fs_event_stop(ws->h[i]);
            uv_close((uv_handle_t *)ws->h[i], fs_watch_close_cb);
        }
        free(ws->dir[i]);
        ws->h[i] = NULL;
        ws->dir[i] = NULL;
    }
    ws->n = 0;
}

/* Watches the directories of files (those not ready, when skip_ready).
 * Unchanged directories keep their watch: re-creating a watch inside its own
 * callback would have libuv deliver the same event to it again. Returns
 * whether the set changed. */
static bool watchset_sync(ci_sup_t *sup, ci_watchset_t *ws, char *const *files, size_t nfiles,
                          bool skip_ready, uv_fs_event_cb cb, void *data)
{
    static char dirs[CI_MAX_WATCH][PATH_MAX];
    size_t n = 0;
    for (size_t i = 0; i < nfiles && n < CI_MAX_WATCH; i++) {
        if (skip_ready && file_ready(files[i])) continue;
        char d[PATH_MAX];
        existing_dir_of(files[i], d, sizeof d);
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++) dup = !strcmp(dirs[j], d);
        if (!dup) snprintf(dirs[n++], PATH_MAX, "%s", d);
    }
    bool same = n == ws->n;
    for (size_t i = 0; i < n && same; i++) same = ws->dir[i] && !strcmp(ws->dir[i], dirs[i]);
    if (same) return false;
    watchset_clear(ws);
    for (size_t i = 0; i < n; i++) {
        uv_fs_event_t *ev = malloc(sizeof *ev);
        if (ev) {
            uv_fs_event_init(sup->loop, ev);
            ev->data = data;
            if (uv_fs_event_start(ev, cb, dirs[i], 0) != 0) {
                uv_close((uv_handle_t *)ev, fs_watch_close_cb);
                ev = NULL;
            }
        }
        ws->h[ws->n] = ev;
        ws->dir[ws->n] = strdup(dirs[i]);
        ws->n++;
    }
    return true;
}

static void waitfor_stop(ci_svc_t *svc)
{
    watchset_clear(&svc->wf);
    if (svc->waiting_files) uv_timer_stop(&svc->timer);
    svc->waiting_files = false;
}

static void waitfor_event(uv_fs_event_t *h, const char *filename, int events, int status);

static void waitfor_arm(ci_svc_t *svc)
{
    /* A directory created on the way moves the watch closer to the file.
     * Until the set is stable: a directory may appear between looking for
     * it and watching its parent, and that event is then lost. */
    for (int i = 0; i < 8; i++)
        if (!watchset_sync(svc->sup, &svc->wf, svc->conf->wait_for_files,
                           svc->conf->nwait_for_files, true, waitfor_event, svc))
            break;
}

static void waitfor_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    ci_svc_t *svc = h->data;
    if (svc->state != CI_SVC_WAITING || !svc->waiting_files) return;
    if (first_missing(svc)) {
        /* A directory on the way may have appeared: watch closer, then look
         * again, since the file may have been created before the new watch. */
        waitfor_arm(svc);
    }
    if (!first_missing(svc)) {
        uint64_t waited = ci_now_ms() - svc->wait_started_ms;
        waitfor_stop(svc);
        ci_log_eventf(CI_LOG_INFO, svc->conf->name, "files-ready", -1,
                      "wait_for files present after %.3fs", (double)waited / 1000.0);
        kick(svc->sup);
    }
}

static void waitfor_timeout(uv_timer_t *t)
{
    ci_svc_t *svc = ci_container_of(t, ci_svc_t, timer);
    if (svc->state != CI_SVC_WAITING || !svc->waiting_files) return;
    const char *m = first_missing(svc);
    if (!m) {
        waitfor_stop(svc);
        kick(svc->sup);
        return;
    }
    char why[PATH_MAX + 64];
    char d[32];
    ci_duration_format(svc->conf->wait_for_timeout_ms, d, sizeof d);
    snprintf(why, sizeof why, "wait_for timed out after %s: %s is missing or empty", d, m);
    svc_fail(svc, why);
    kick(svc->sup);
    check_done(svc->sup);
}

/* Returns true when the files are there; else starts waiting. */
static bool waitfor_ready(ci_svc_t *svc)
{
    if (svc->conf->nwait_for_files == 0) return true;
    const char *m = first_missing(svc);
    if (!m) {
        if (svc->waiting_files) waitfor_stop(svc);
        return true;
    }
    if (!svc->waiting_files) {
        svc->waiting_files = true;
        svc->wait_started_ms = ci_now_ms();
        ci_log_eventf(CI_LOG_INFO, svc->conf->name, "waiting-files", -1,
                      "waiting for %s (wait_for)", m);
        waitfor_arm(svc);
        if (svc->conf->wait_for_timeout_ms)
            uv_timer_start(&svc->timer, waitfor_timeout, svc->conf->wait_for_timeout_ms, 0);
        /* The files may have appeared before the watch existed. */
        if (!first_missing(svc)) {
            waitfor_stop(svc);
            return true;
        }
    }
    return false;
}

/* ---- the decision loop ------------------------------------------------- */

/* Starts what can start, fails what never will, restarts dependents whose
 * restart: true dependency came back. */
static void kick(ci_sup_t *sup)
{
    if (sup->shutting_down || sup->in_kick) return;
    sup->in_kick = true;
    bool changed = true;
    while (changed && !sup->shutting_down) {
        changed = false;
        for (size_t k = 0; k < sup->n; k++) {
            ci_svc_t *svc = &sup->svcs[sup->order[k]];
            const ci_service_conf_t *c = svc->conf;

            if (svc->state == CI_SVC_RUNNING) {
                /* depends_on.restart: the dependency restarted and meets its
                 * condition again. */
                for (size_t i = 0; i < c->ndepends_on; i++) {
                    const ci_dep_t *dep = &c->depends_on[i];
                    ci_svc_t *d = &sup->svcs[dep->index];
                    if (!dep->restart || d->generation <= svc->dep_generation[i]) continue;
                    ci_dep_view_t v = dep_view(d);
                    if (ci_dep_evaluate(dep, &v) != CI_DEP_MET) continue;
                    ci_log_eventf(CI_LOG_INFO, c->name, "restarting", svc->pid,
                                  "restarting: dependency %s restarted", d->conf->name);
                    svc_stop(svc, true);
                    changed = true;
                    break;
                }
                continue;
            }
            if (svc->state != CI_SVC_WAITING) continue;

            bool all_met = true;
            for (size_t i = 0; i < c->ndepends_on; i++) {
                const ci_dep_t *dep = &c->depends_on[i];
                ci_svc_t *d = &sup->svcs[dep->index];
                ci_dep_view_t v = dep_view(d);
                ci_dep_verdict_t verdict = ci_dep_evaluate(dep, &v);
                if (verdict == CI_DEP_FATAL) {
                    char why[512];
                    if (d->state == CI_SVC_FAILED)
                        snprintf(why, sizeof why, "dependency %s failed (%s)", d->conf->name,
                                 cond_name(dep->condition));
                    else {
                        char st[64];
                        describe_status(d->last_status, st, sizeof st);
                        snprintf(why, sizeof why, "dependency %s %s (%s)", d->conf->name, st,
                                 cond_name(dep->condition));
                    }
                    svc_fail(svc, why);
                    changed = true;
                    all_met = false;
                    break;
                }
                if (verdict == CI_DEP_WAIT) {
                    all_met = false;
                    if (svc->waiting_for != (long)dep->index) {
                        svc->waiting_for = (long)dep->index;
                        ci_log_eventf(CI_LOG_INFO, c->name, "waiting", -1, "waiting for %s (%s)",
                                      d->conf->name, cond_name(dep->condition));
                    }
                    break;
                }
            }
            if (!all_met || svc->state != CI_SVC_WAITING) continue;
            if (!waitfor_ready(svc)) continue;
            svc->waiting_for = -1;
            svc_spawn(svc);
            changed = true;
        }
    }
    sup->in_kick = false;
}

/* Whether anything is left running or able to run. */
static void check_done(ci_sup_t *sup)
{
    if (sup->final_phase) return;
    if (sup->shutting_down) {
        advance_shutdown(sup);
        return;
    }
    for (size_t i = 0; i < sup->n; i++) {
        ci_svc_state_t s = sup->svcs[i].state;
        if (s == CI_SVC_RUNNING || s == CI_SVC_STOPPING || s == CI_SVC_BACKOFF ||
            s == CI_SVC_WAITING)
            return;
        /* A ctl-stopped service may be started again: keep running. */
        if (s == CI_SVC_STOPPED && sup->svcs[i].manual_stop) return;
    }
    begin_shutdown(sup, 0, NULL); /* finish() turns failures into 1 */
}

/* ---- exits and restarts ------------------------------------------------ */

static void backoff_fire(uv_timer_t *t)
{
    ci_svc_t *svc = ci_container_of(t, ci_svc_t, timer);
    if (svc->state != CI_SVC_BACKOFF || svc->sup->shutting_down) return;
    svc_spawn(svc);
    kick(svc->sup);
}

static void renew_fire(uv_timer_t *t);

/* The next renewal check of a certgen service: when the certificate enters
 * its renew_before window, and at least daily (the file may be replaced by
 * hand). Read without OpenSSL: the init itself never loads it. */
static void renew_schedule(ci_svc_t *svc)
{
    const ci_certgen_conf_t *g = &svc->conf->certgen;
    uint64_t delay = RENEW_CHECK_MS;
    int64_t not_after;
    if (ci_cert_not_after_file(g->cert, &not_after) == 0) {
        int64_t due_ms = not_after * 1000 - (int64_t)g->renew_before_ms - unix_ms();
        if (due_ms < 1000) due_ms = 1000; /* never a busy loop */
        if ((uint64_t)due_ms < delay) delay = (uint64_t)due_ms;
    }
    char d[32];
    ci_duration_format(delay, d, sizeof d);
    ci_log_eventf(CI_LOG_DEBUG, svc->conf->name, "renew-scheduled", -1, "next renewal check in %s",
                  d);
    uv_timer_start(&svc->renew_timer, renew_fire, delay, 0);
}

static void renew_fire(uv_timer_t *t)
{
    ci_svc_t *svc = ci_container_of(t, ci_svc_t, renew_timer);
    if (svc->state != CI_SVC_EXITED || svc->sup->shutting_down || svc->failed) return;
    ci_log_eventf(CI_LOG_INFO, svc->conf->name, "renew-check", -1,
                  "checking the certificate for renewal");
    svc->renewal_run = true;
    svc_spawn(svc);
}

void ci_sup_on_exit(ci_svc_t *svc, int status)
{
    ci_sup_t *sup = svc->sup;
    const ci_service_conf_t *c = svc->conf;
    char st[64];
    uint64_t ran = svc->spawn_error ? 0 : ci_now_ms() - svc->started_ms;

    uv_timer_stop(&svc->timer);
    uv_timer_stop(&svc->hc_timer);
    probe_abandon(svc);
    /* Its last lines are shown before its exit is. */
    if (sup->mux && svc->logstream) ci_logstream_drain(sup->mux, svc->logstream);
    /* Leftovers of its group; never the bare pid, which may be reused now. */
    if (svc->pid > 0) kill(-svc->pid, SIGKILL);
    svc->pid = 0;
    svc->has_exit = true;
    svc->last_status = status;
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    describe_status(status, st, sizeof st);

    if (svc->renewal_run) {
        svc->renewal_run = false;
        svc->state = CI_SVC_EXITED;
        ci_log_eventf(ok ? CI_LOG_INFO : CI_LOG_ERROR, c->name, "exited", -1, "renewal check %s",
                      st);
        if (!sup->shutting_down && !svc->stop_requested) renew_schedule(svc);
        kick(sup);
        check_done(sup);
        return;
    }

    if (svc->stop_requested || sup->shutting_down) {
        svc->state = CI_SVC_STOPPED;
        ci_log_eventf(CI_LOG_INFO, c->name, "stopped", -1, "stopped (%s)", st);
        if (svc->restart_after_stop && !sup->shutting_down && !svc->manual_stop) {
            /* A requested restart: shown in `restarts`, not counted by the
             * restart policy (on-failure:N). */
            svc->stop_requested = false;
            svc->restart_after_stop = false;
            svc->restarts++;
            svc_spawn(svc);
        }
        kick(sup);
        check_done(sup);
        return;
    }

    bool forced = svc->restart_after_stop;
    svc->restart_after_stop = false;
    if (forced || ci_restart_wanted(c, ok, svc->policy_restarts, false)) {
        if (ran >= CI_BACKOFF_RESET_MS) svc->backoff_streak = 0;
        uint64_t delay = ci_backoff_delay_ms(svc->backoff_streak);
        svc->backoff_streak++;
        svc->restarts++;
        if (!forced) svc->policy_restarts++;
        svc->state = CI_SVC_BACKOFF;
        char d[32];
        ci_duration_format(delay, d, sizeof d);
        ci_log_eventf(ok ? CI_LOG_INFO : CI_LOG_WARN, c->name, "exited", -1,
                      "%s, restarting in %s (restart %d)", st, d, svc->restarts);
        uv_timer_start(&svc->timer, backoff_fire, delay, 0);
        kick(sup);
        return;
    }

    svc->state = CI_SVC_EXITED;
    if (!ok) svc->failed = true;
    ci_log_eventf(ok ? CI_LOG_INFO : CI_LOG_ERROR, c->name, "exited", -1, "%s%s", st,
                  ok ? "" : ", not restarting");
    if (c->is_certgen && ok && c->certgen.renew_before_ms) renew_schedule(svc);
    if (c->essential && !sup->shutting_down) {
        sup->code_decided = true;
        begin_shutdown(sup, status_code(status), "an essential service ended");
        return;
    }
    kick(sup);
    check_done(sup);
}

/* ---- stopping ---------------------------------------------------------- */

static void kill_fire(uv_timer_t *t)
{
    ci_svc_t *svc = ci_container_of(t, ci_svc_t, timer);
    if (svc->state != CI_SVC_STOPPING) return;
    char d[32];
    ci_duration_format(ci_now_ms() - svc->stop_sent_ms, d, sizeof d);
    ci_log_eventf(CI_LOG_WARN, svc->conf->name, "killing", svc->pid,
                  "still running %s after %s, sending SIGKILL", d,
                  ci_signal_name(svc->conf->stop_signal));
    send_group(svc, SIGKILL);
}

/* Sends the stop signal; SIGKILL after the grace period (bounded by the
 * shutdown deadline). */
static void svc_stop(ci_svc_t *svc, bool restart_after)
{
    ci_sup_t *sup = svc->sup;
    if (svc->state != CI_SVC_RUNNING) return;
    svc->restart_after_stop = restart_after;
    svc->state = CI_SVC_STOPPING;
    svc->stop_sent_ms = ci_now_ms();
    uv_timer_stop(&svc->hc_timer);
    probe_abandon(svc);
    uint64_t grace = svc->conf->stop_grace_ms;
    if (sup->shutting_down) {
        uint64_t now = ci_now_ms();
        uint64_t left = sup->deadline_ms > now ? sup->deadline_ms - now : 0;
        if (grace > left) grace = left;
    }
    ci_log_eventf(CI_LOG_INFO, svc->conf->name, "stopping", svc->pid, "stopping with %s",
                  ci_signal_name(svc->conf->stop_signal));
    send_group(svc, svc->conf->stop_signal);
    /* SIGSTOPped services would never see the signal. */
    send_group(svc, SIGCONT);
    uv_timer_start(&svc->timer, kill_fire, grace, 0);
}

static bool has_live_dependent(ci_sup_t *sup, size_t idx)
{
    for (size_t i = 0; i < sup->n; i++) {
        const ci_svc_t *o = &sup->svcs[i];
        if (!svc_alive(o)) continue;
        for (size_t j = 0; j < o->conf->ndepends_on; j++)
            if (o->conf->depends_on[j].index == idx) return true;
    }
    return false;
}

static void final_phase(ci_sup_t *sup);

static void advance_shutdown(ci_sup_t *sup)
{
    bool alive = false;
    for (size_t k = sup->n; k-- > 0;) {
        ci_svc_t *svc = &sup->svcs[sup->order[k]];
        if (svc->state == CI_SVC_RUNNING && !has_live_dependent(sup, svc->idx))
            svc_stop(svc, false);
        if (svc_alive(svc)) alive = true;
    }
    if (!alive) final_phase(sup);
}

static void deadline_fire(uv_timer_t *t)
{
    ci_sup_t *sup = t->data;
    if (sup->final_phase) {
        /* Leftover processes ignored SIGTERM. Sweep again every 100 ms: as a
         * subreaper, the children of what was just killed are re-parented to
         * us only afterwards. */
        if (sup->is_pid1)
            kill(-1, SIGKILL);
        else
            ci_kill_children(SIGKILL);
        uv_timer_start(&sup->deadline, deadline_fire, 100, 0);
        return;
    }
    ci_log_eventf(CI_LOG_WARN, NULL, "shutdown-timeout", -1,
                  "shutdown_timeout reached, sending SIGKILL to what is left");
    for (size_t i = 0; i < sup->n; i++) {
        ci_svc_t *svc = &sup->svcs[i];
        if (svc->state == CI_SVC_RUNNING) {
            svc->state = CI_SVC_STOPPING;
            svc->stop_sent_ms = ci_now_ms();
        }
        if (svc_alive(svc)) send_group(svc, SIGKILL);
    }
    advance_shutdown(sup);
}

static void begin_shutdown(ci_sup_t *sup, int exit_code, const char *why)
{
    if (sup->shutting_down) {
        if (why) {
            /* A second request: do not wait any longer. */
            ci_log_eventf(CI_LOG_WARN, NULL, "shutdown-forced", -1, "%s: killing everything now",
                          why);
            for (size_t i = 0; i < sup->n; i++)
                if (svc_alive(&sup->svcs[i])) send_group(&sup->svcs[i], SIGKILL);
        }
        return;
    }
    sup->shutting_down = true;
    sup->exit_code = exit_code;
    sup->deadline_ms = ci_now_ms() + sup->cfg->shutdown_timeout_ms;
    if (why) ci_log_eventf(CI_LOG_INFO, NULL, "shutdown", -1, "shutting down: %s", why);
    for (size_t i = 0; i < sup->n; i++) {
        ci_svc_t *svc = &sup->svcs[i];
        svc->stop_requested = true;
        uv_timer_stop(&svc->renew_timer);
        if (svc->state == CI_SVC_WAITING || svc->state == CI_SVC_BACKOFF) {
            waitfor_stop(svc);
            uv_timer_stop(&svc->timer);
            svc->state = CI_SVC_STOPPED;
        }
    }
    uv_timer_start(&sup->deadline, deadline_fire, sup->cfg->shutdown_timeout_ms, 0);
    advance_shutdown(sup);
}

/* ---- the end: leftovers, then leave the loop --------------------------- */

static void finish(ci_sup_t *sup)
{
    if (sup->finished) return;
    sup->finished = true;
    /* A service that failed for good before any stop was requested fails
     * the init, unless an essential service's end decided the code. */
    if (!sup->code_decided && sup->exit_code == 0)
        for (size_t i = 0; i < sup->n; i++)
            if (sup->svcs[i].failed) sup->exit_code = 1;
    if (sup->orphans)
        ci_log_eventf(CI_LOG_INFO, NULL, "reaped", -1, "reaped %lu orphaned processes",
                      sup->orphans);
    ci_log_eventf(CI_LOG_INFO, NULL, "exit", -1, "exiting with status %d", sup->exit_code);
    uv_stop(sup->loop);
}

static void final_phase(ci_sup_t *sup)
{
    if (sup->final_phase) return;
    sup->final_phase = true;
    ci_sup_reap(sup);
    if (sup->no_children) {
        finish(sup);
        return;
    }
    /* Every process left gets SIGTERM, then SIGKILL. */
    if (sup->is_pid1)
        kill(-1, SIGTERM);
    else
        ci_kill_children(SIGTERM);
    uint64_t now = ci_now_ms();
    uint64_t left = sup->deadline_ms > now ? sup->deadline_ms - now : 0;
    if (!sup->shutting_down || left > LEFTOVER_GRACE_MS) left = LEFTOVER_GRACE_MS;
    uv_timer_stop(&sup->deadline);
    uv_timer_start(&sup->deadline, deadline_fire, left, 0);
    ci_sup_reap(sup);
    if (sup->no_children) finish(sup);
}

/* ---- reaping ----------------------------------------------------------- */

void ci_sup_reap(ci_sup_t *sup)
{
    for (;;) {
        int status;
        ci_svc_t *svc = NULL, *probe_of = NULL;
        /* The signal thread must not signal a pid once it is reaped (the
         * number may be reused): reaping it and forgetting its fwd_pid are
         * one step for that thread. */
        pthread_mutex_lock(&sup->fwd_mu);
        pid_t pid = waitpid(-1, &status, WNOHANG);
        for (size_t i = 0; pid > 0 && !svc && !probe_of && i < sup->n; i++) {
            if (sup->svcs[i].pid == pid) {
                svc = &sup->svcs[i];
                svc->fwd_pid = 0;
            } else if (sup->svcs[i].probe_pid == pid) {
                probe_of = &sup->svcs[i];
            }
        }
        pthread_mutex_unlock(&sup->fwd_mu);
        if (pid == 0) {
            sup->no_children = false;
            return;
        }
        if (pid < 0) {
            if (errno == EINTR) continue;
            sup->no_children = true; /* ECHILD */
            return;
        }
        if (svc)
            ci_sup_on_exit(svc, status);
        else if (probe_of)
            ci_sup_on_probe_exit(probe_of, status);
        else
            sup->orphans++;
    }
}

/* ---- signals ----------------------------------------------------------- */

static bool forwardable(int sig)
{
    switch (sig) {
    case SIGCHLD:
    case SIGKILL:
    case SIGSTOP:
    case SIGFPE:
    case SIGILL:
    case SIGSEGV:
    case SIGBUS:
    case SIGABRT:
    case SIGTRAP:
    case SIGSYS:
    case SIGTTIN:
    case SIGTTOU:
        return false;
    }
    return sig < SIGRTMIN || sig > 32; /* glibc keeps 32 and 33 */
}

/* Signals. Every handled one is blocked in every thread (libuv's and the
 * output thread inherit the mask) and taken by one thread, signal_thread(),
 * in sigwaitinfo(). The ones the services get are forwarded from there at
 * once, as `--` mode does (tini.c). SIGCHLD, SIGTERM and SIGINT are handed
 * to the loop through an async handle. Not a signalfd in the loop: any
 * signal queued to the process wakes every signalfd waiter, so the loop
 * thread would wake on each forwarded signal too and take the CPU the
 * service is about to run on; nor the loop itself forwarding, which costs
 * an epoll wake-up, a read and the rest of a loop iteration first. The
 * thread touches only the services' fwd_pid and the hand-off, under
 * fwd_mu. */
static void *signal_thread(void *arg)
{
    ci_sup_t *sup = arg;
    const bool debug = ci_log_debug_enabled();
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    for (;;) {
        /* Cancelled (teardown) only while it waits, never half-way through
         * a hand-off (uv_async_send() must not be cut short). */
        pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
        int sig = sigwaitinfo(&sup->sig_all, NULL);
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
        if (sig < 0) continue;
        bool notify = false;
        pthread_mutex_lock(&sup->fwd_mu);
        if (sigismember(&sup->fwd_set, sig)) {
            for (size_t i = 0; i < sup->n; i++)
                if (sup->svcs[i].fwd_pid > 0) signal_group(sup->svcs[i].fwd_pid, sig);
        } else if (sig == SIGCHLD) {
            notify = sup->sig_chld = true;
        } else if (sup->sig_n < CI_ARRAY_SIZE(sup->sig_queue)) { /* TERM, INT */
            sup->sig_queue[sup->sig_n++] = sig;
            notify = true;
        }
        pthread_mutex_unlock(&sup->fwd_mu);
        if (notify)
            uv_async_send(&sup->sig_async);
        else if (debug)
            ci_log_eventf(CI_LOG_DEBUG, NULL, "forward", -1, "forwarded %s to every service",
                          ci_signal_name(sig));
    }
    return NULL;
}

static void on_signal(ci_sup_t *sup, int sig)
{
    /* A second SIGINT (Ctrl-C twice) stops waiting, as Compose does; a
     * repeated SIGTERM changes nothing. */
    if (sup->shutting_down && sig == SIGTERM) return;
    char why[64];
    snprintf(why, sizeof why, "received %s", ci_signal_name(sig));
    begin_shutdown(sup, sup->shutting_down ? sup->exit_code : 0, why);
}

/* In the loop: what signal_thread() handed over, in the order it came. */
static void sig_async_cb(uv_async_t *h)
{
    ci_sup_t *sup = h->data;
    int q[CI_ARRAY_SIZE(sup->sig_queue)];
    pthread_mutex_lock(&sup->fwd_mu);
    size_t n = sup->sig_n;
    memcpy(q, sup->sig_queue, n * sizeof q[0]);
    bool chld = sup->sig_chld;
    sup->sig_n = 0;
    sup->sig_chld = false;
    pthread_mutex_unlock(&sup->fwd_mu);
    for (size_t i = 0; i < n; i++) on_signal(sup, q[i]);
    if (chld || sup->final_phase) {
        ci_sup_reap(sup);
        if (sup->final_phase && sup->no_children) finish(sup);
    }
}

static void signals_block(ci_sup_t *sup)
{
    sigemptyset(&sup->fwd_set);
    for (int s = 1; s < 32; s++) /* real-time ones: only in `--` mode (tini.c) */
        if (forwardable(s) && s != SIGTERM && s != SIGINT && s != SIGPIPE)
            sigaddset(&sup->fwd_set, s);
    sup->sig_all = sup->fwd_set;
    sigaddset(&sup->sig_all, SIGCHLD);
    sigaddset(&sup->sig_all, SIGTERM);
    sigaddset(&sup->sig_all, SIGINT);
    /* SIGPIPE is not among them: ignored (ci_sup_run), it is dropped as it
     * is sent, not left pending. */
    sigprocmask(SIG_BLOCK, &sup->sig_all, NULL);
}

/* ---- health ------------------------------------------------------------ */

static void health_result(ci_svc_t *svc, bool ok, int exit_code, const char *output)
{
    ci_sup_t *sup = svc->sup;
    const ci_service_conf_t *c = svc->conf;
    ci_health_change_t ch =
        ci_health_result(&svc->health, &c->healthcheck, svc->probe_start_ms, ok, exit_code, output,
                         svc->probe_start_unix_ms, unix_ms());
    if (ch == CI_HEALTH_BECAME_HEALTHY) {
        ci_log_eventf(CI_LOG_INFO, c->name, "healthy", svc->pid, "healthy after %.3fs",
                      (double)(ci_now_ms() - svc->started_ms) / 1000.0);
    } else if (ch == CI_HEALTH_BECAME_UNHEALTHY) {
        ci_log_eventf(CI_LOG_WARN, c->name, "unhealthy", svc->pid, "unhealthy (%d failures: %s)",
                      svc->health.failing_streak, output);
        if (c->on_unhealthy_restart) {
            ci_log_eventf(CI_LOG_INFO, c->name, "restarting", svc->pid,
                          "restarting: unhealthy (on_unhealthy: restart)");
            svc_stop(svc, true);
            return;
        }
    } else if (!ok) {
        ci_log_eventf(CI_LOG_DEBUG, c->name, "probe-failed", svc->pid, "probe failed: %s", output);
    }
    health_schedule(svc);
    if (ch != CI_HEALTH_SAME) kick(sup);
}

static void native_probe_cb(ci_probe_t *p, const ci_probe_result_t *res, void *data)
{
    ci_svc_t *svc = data;
    svc->probe = NULL;
    if (res->ok) svc->url_index = res->url_index;
    health_result(svc, res->ok, res->ok ? 0 : 1, res->output);
}

static void probe_out_closed_then_finish(uv_handle_t *h);

static void probe_finish_cmd(ci_svc_t *svc)
{
    if (!svc->probe_exited || svc->probe_out_open) return;
    int status = svc->probe_status;
    svc->probe_running = false;
    if (svc->probe_abandoned) return;
    uv_timer_stop(&svc->probe_timer);
    char out[CI_HEALTH_OUTPUT_MAX + 128];
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (svc->probe_timed_out) {
        char d[32];
        ci_duration_format(svc->conf->healthcheck.timeout_ms, d, sizeof d);
        snprintf(out, sizeof out, "Health check exceeded timeout (%s)", d);
        ok = false;
        code = -1;
    } else {
        snprintf(out, sizeof out, "%.*s", (int)svc->probe_len, svc->probe_buf);
        if (!ok && !svc->probe_len) describe_status(status, out, sizeof out);
    }
    /* Docker records exit code 1 for any non-zero probe exit. */
    health_result(svc, ok, ok ? 0 : (code < 0 ? -1 : 1), out);
}

static void probe_alloc_cb(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
    ci_svc_t *svc = h->data;
    size_t room = sizeof svc->probe_buf - svc->probe_len;
    if (room == 0) {
        /* Output past the cap is read and dropped. */
        buf->base = svc->probe_discard;
        buf->len = sizeof svc->probe_discard;
        return;
    }
    buf->base = svc->probe_buf + svc->probe_len;
    buf->len = room;
}

static void probe_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    ci_svc_t *svc = s->data;
    if (n > 0) {
        if (buf->base != svc->probe_discard) svc->probe_len += (size_t)n;
        return;
    }
    if (n < 0) {
        uv_read_stop(s);
        if (!uv_is_closing((uv_handle_t *)s))
            uv_close((uv_handle_t *)s, probe_out_closed_then_finish);
    }
}

static void probe_out_closed_then_finish(uv_handle_t *h)
{
    ci_svc_t *svc = h->data;
    svc->probe_out_open = false;
    probe_finish_cmd(svc);
}

/* The probe has ended but something it started (outside its group) still
 * holds its output: stop reading, the result is what was read. */
static void probe_drain_fire(uv_timer_t *t)
{
    ci_svc_t *svc = ci_container_of(t, ci_svc_t, probe_timer);
    if (svc->probe_out_open && !uv_is_closing((uv_handle_t *)&svc->probe_out)) {
        uv_read_stop((uv_stream_t *)&svc->probe_out);
        uv_close((uv_handle_t *)&svc->probe_out, probe_out_closed_then_finish);
    }
}

void ci_sup_on_probe_exit(ci_svc_t *svc, int status)
{
    /* Kill what the probe left in its group: no probe process survives. */
    kill(-svc->probe_pid, SIGKILL);
    svc->probe_pid = 0;
    svc->probe_exited = true;
    svc->probe_status = status;
    if (svc->probe_out_open) uv_timer_start(&svc->probe_timer, probe_drain_fire, 100, 0);
    probe_finish_cmd(svc);
}

static void probe_timeout_fire(uv_timer_t *t)
{
    ci_svc_t *svc = ci_container_of(t, ci_svc_t, probe_timer);
    if (svc->probe_pid <= 0) return;
    svc->probe_timed_out = true;
    kill(-svc->probe_pid, SIGKILL);
}

static void probe_start(uv_timer_t *t)
{
    ci_svc_t *svc = ci_container_of(t, ci_svc_t, hc_timer);
    ci_sup_t *sup = svc->sup;
    const ci_healthcheck_t *hc = &svc->conf->healthcheck;
    if (svc->state != CI_SVC_RUNNING) return;
    if (svc->probe_running || svc->probe) {
        /* The previous probe is still draining: try again next interval. */
        health_schedule(svc);
        return;
    }
    svc->probe_start_ms = ci_now_ms();
    svc->probe_start_unix_ms = unix_ms();

    if (hc->kind == CI_HC_HTTP || hc->kind == CI_HC_TCP) {
        int r = ci_probe_start(sup->loop, hc, svc->url_index, native_probe_cb, svc, &svc->probe);
        if (r < 0) {
            svc->probe = NULL;
            char out[128];
            snprintf(out, sizeof out, "unable to start probe: %s", ci_strerror(r));
            health_result(svc, false, -1, out);
        }
        return;
    }

    /* CMD / CMD-SHELL: a process in its own group, output captured. */
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        health_result(svc, false, -1, "unable to create a pipe for the probe");
        return;
    }
    ci_spawn_opts_t o;
    memset(&o, 0, sizeof o);
    o.argv = hc->argv;
    o.envp = svc->envp;
    o.cwd = svc->conf->working_dir;
    o.user = svc->conf->user;
    o.stdio[0] = sup->devnull;
    o.stdio[1] = fds[1];
    o.stdio[2] = fds[1];
    o.group = CI_SPAWN_SETSID;
    char err[512];
    pid_t pid;
    int exec_errno;
    int r = ci_spawn(&o, &pid, &exec_errno, err, sizeof err);
    close(fds[1]);
    if (r < 0) {
        close(fds[0]);
        health_result(svc, false, -1, err);
        return;
    }
    svc->probe_pid = pid;
    svc->probe_running = true;
    svc->probe_exited = false;
    svc->probe_timed_out = false;
    svc->probe_abandoned = false;
    svc->probe_len = 0;
    if (exec_errno) {
        size_t n = strlen(err);
        if (n > sizeof svc->probe_buf) n = sizeof svc->probe_buf;
        memcpy(svc->probe_buf, err, n);
        svc->probe_len = n;
    }
    uv_pipe_init(sup->loop, &svc->probe_out, 0);
    svc->probe_out.data = svc;
    svc->probe_out_open = true;
    if (uv_pipe_open(&svc->probe_out, fds[0]) == 0) {
        uv_read_start((uv_stream_t *)&svc->probe_out, probe_alloc_cb, probe_read_cb);
    } else {
        close(fds[0]);
        uv_close((uv_handle_t *)&svc->probe_out, probe_out_closed_then_finish);
    }
    uv_timer_start(&svc->probe_timer, probe_timeout_fire, hc->timeout_ms, 0);
}

/* A probe in flight is dropped (the service exited or is stopping). */
static void probe_abandon(ci_svc_t *svc)
{
    if (svc->probe) {
        ci_probe_cancel(svc->probe);
        svc->probe = NULL;
    }
    if (svc->probe_running) {
        svc->probe_abandoned = true;
        if (svc->probe_pid > 0) kill(-svc->probe_pid, SIGKILL);
        /* Drop its output soon even if an escaped process holds the pipe. */
        if (svc->probe_out_open) uv_timer_start(&svc->probe_timer, probe_drain_fire, 100, 0);
    }
}

static void health_schedule(ci_svc_t *svc)
{
    const ci_healthcheck_t *hc = &svc->conf->healthcheck;
    if (hc->kind == CI_HC_NONE || svc->state != CI_SVC_RUNNING) return;
    uint64_t delay = ci_health_next_delay(&svc->health, hc, ci_now_ms());
    uv_timer_start(&svc->hc_timer, probe_start, delay, 0);
}

/* ---- reload ------------------------------------------------------------ */

static bool reload_snapshot(ci_svc_t *svc)
{
    bool changed = false;
    for (size_t i = 0; i < svc->conf->nreload_watch && i < CI_MAX_WATCH; i++) {
        struct stat st;
        ci_file_id_t id = {0};
        if (stat(svc->conf->reload_watch[i], &st) == 0) {
            id.exists = true;
            id.dev = st.st_dev;
            id.ino = st.st_ino;
            id.size = st.st_size;
            id.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
            id.ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
        }
        if (memcmp(&id, &svc->rl_ids[i], sizeof id) != 0) changed = true;
        svc->rl_ids[i] = id;
    }
    return changed;
}

static void reload_arm(ci_svc_t *svc);

static void reload_fire(uv_timer_t *t)
{
    ci_svc_t *svc = ci_container_of(t, ci_svc_t, rl_timer);
    reload_arm(svc); /* directories may have appeared */
    if (!reload_snapshot(svc)) return;
    if (svc->state != CI_SVC_RUNNING) return;
    ci_log_eventf(CI_LOG_INFO, svc->conf->name, "reload", svc->pid,
                  "watched files changed, sending %s", ci_signal_name(svc->conf->reload_signal));
    send_group(svc, svc->conf->reload_signal);
}

static void reload_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    ci_svc_t *svc = h->data;
    /* Debounced: a cert + key pair replaced together reloads once. */
    uv_timer_start(&svc->rl_timer, reload_fire, RELOAD_DEBOUNCE_MS, 0);
}

static void reload_arm(ci_svc_t *svc)
{
    if (svc->sup->shutting_down) return;
    (void)watchset_sync(svc->sup, &svc->rl, svc->conf->reload_watch, svc->conf->nreload_watch,
                        false, reload_event, svc);
}

/* ---- setup and teardown ------------------------------------------------ */

static void walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, h->type == UV_FS_EVENT ? fs_watch_close_cb : NULL);
}

static int svc_init(ci_sup_t *sup, ci_svc_t *svc, size_t idx)
{
    const ci_service_conf_t *c = &sup->cfg->services[idx];
    svc->sup = sup;
    svc->conf = c;
    svc->idx = idx;
    svc->state = CI_SVC_WAITING;
    svc->waiting_for = -1;
    svc->prefix = c->log_prefix ? c->log_prefix : c->name;
    uv_timer_init(sup->loop, &svc->timer);
    uv_timer_init(sup->loop, &svc->hc_timer);
    uv_timer_init(sup->loop, &svc->probe_timer);
    uv_timer_init(sup->loop, &svc->rl_timer);
    uv_timer_init(sup->loop, &svc->renew_timer);
    svc->envp = ci_env_merge(environ, c->environment, c->environment_len);
    if (!svc->envp) return -ENOMEM;
    svc->dep_generation = calloc(c->ndepends_on + 1, sizeof *svc->dep_generation);
    if (!svc->dep_generation) return -ENOMEM;
    if (c->is_certgen) {
        /* The certificate is made by this binary in a child process, so a
         * slow RSA 4096 key never blocks the loop. */
        const ci_certgen_conf_t *g = &c->certgen;
        char days[16], renew[32];
        snprintf(days, sizeof days, "%d", g->days);
        size_t dlen = 0;
        for (size_t i = 0; i < g->ndomains; i++) dlen += strlen(g->domains[i]) + 1;
        svc->domains = calloc(1, dlen + 1);
        if (!svc->domains) return -ENOMEM;
        for (size_t i = 0; i < g->ndomains; i++) {
            if (i) strcat(svc->domains, ",");
            strcat(svc->domains, g->domains[i]);
        }
        const char *args[24];
        size_t n = 0;
        args[n++] = sup->opts.self_exe;
        args[n++] = "certgen";
        args[n++] = "--cert";
        args[n++] = g->cert;
        args[n++] = "--key";
        args[n++] = g->key;
        args[n++] = "--domain";
        args[n++] = svc->domains;
        args[n++] = "--key-type";
        args[n++] = g->key_type;
        args[n++] = "--days";
        args[n++] = days;
        args[n++] = "--subject";
        args[n++] = g->subject;
        if (g->renew_before_ms) {
            snprintf(renew, sizeof renew, "%llums", (unsigned long long)g->renew_before_ms);
            args[n++] = "--renew-before";
            args[n++] = renew;
        }
        if (g->owner) {
            args[n++] = "--owner";
            args[n++] = g->owner;
        }
        args[n] = NULL;
        svc->argv = calloc(n + 1, sizeof *svc->argv);
        if (!svc->argv) return -ENOMEM;
        for (size_t i = 0; i < n; i++)
            if (!(svc->argv[i] = strdup(args[i]))) return -ENOMEM;
        svc->own_argv = true;
    } else {
        svc->argv = c->command;
    }
    return 0;
}

static void svc_free(ci_svc_t *svc)
{
    ci_env_free(svc->envp);
    free(svc->dep_generation);
    free(svc->domains);
    if (svc->own_argv) {
        for (size_t i = 0; svc->argv && svc->argv[i]; i++) free(svc->argv[i]);
        free(svc->argv);
    }
}

static void on_output_drained(void *data)
{
    ci_sup_t *sup = data;
    if (sup->mux) ci_logmux_pause(sup->mux, false);
}

int ci_sup_run(const ci_sup_opts_t *opts)
{
    ci_sup_t sup_s;
    ci_sup_t *sup = &sup_s;
    int rc = 1;
    memset(sup, 0, sizeof *sup);
    sup->opts = *opts;
    sup->cfg = opts->cfg;
    sup->n = sup->cfg->nservices;
    sup->exit_code = 0;
    sup->is_pid1 = getpid() == 1;
    sup->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

    if (!sup->is_pid1 && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        ci_log_eventf(CI_LOG_WARN, NULL, "subreaper", -1,
                      "unable to become a child subreaper: %s; orphans will not be reaped",
                      ci_strerror(errno));

    /* A broken stdout must not kill the init. */
    signal(SIGPIPE, SIG_IGN);
    /* An ignored SIGCHLD, inherited across exec, would make the kernel reap
     * our services itself and their exit statuses would be lost. */
    signal(SIGCHLD, SIG_DFL);
    /* Before anything can start a thread. */
    signals_block(sup);

    sup->loop = &sup->loop_s;
    if (uv_loop_init(sup->loop) != 0) {
        ci_log_eventf(CI_LOG_ERROR, NULL, "fatal", -1, "unable to initialise the event loop");
        return 1;
    }
    sup->svcs = calloc(sup->n, sizeof *sup->svcs);
    sup->order = sup->cfg->start_order; /* computed when the config was loaded */
    if (!sup->svcs) goto oom;
    pthread_mutex_init(&sup->fwd_mu, NULL);

    /* Config mode: the init's stdout/stderr writes go through a writer
     * thread, so a stalled reader never stops the loop. */
    if (ci_outq_start(sup->loop, on_output_drained, sup) < 0)
        ci_log_eventf(CI_LOG_WARN, NULL, "output", -1,
                      "unable to start the output thread: writes are direct");
    bool prefix = sup->cfg->log_prefix;
    if (prefix) {
        if (ci_logmux_new(sup->loop, STDOUT_FILENO, STDERR_FILENO, sup->cfg->log_timestamps,
                          &sup->mux) < 0)
            goto oom;
        size_t w = 0;
        for (size_t i = 0; i < sup->n; i++) {
            const ci_service_conf_t *c = &sup->cfg->services[i];
            size_t l = strlen(c->log_prefix ? c->log_prefix : c->name);
            if (l > w) w = l;
        }
        ci_logmux_set_width(sup->mux, w);
    }
    for (size_t i = 0; i < sup->n; i++)
        if (svc_init(sup, &sup->svcs[i], i) < 0) goto oom;

    uv_timer_init(sup->loop, &sup->deadline);
    sup->deadline.data = sup;
    uv_async_init(sup->loop, &sup->sig_async, sig_async_cb);
    sup->sig_async.data = sup;

    ci_sup_ctl_open(sup);
    for (size_t i = 0; i < sup->n; i++) {
        ci_svc_t *svc = &sup->svcs[i];
        if (svc->conf->nreload_watch) {
            reload_arm(svc);
            reload_snapshot(svc);
        }
        if (ci_sup_state_is_stopped(sup, svc->conf->name) &&
            svc->conf->restart == CI_RESTART_UNLESS_STOPPED) {
            svc->state = CI_SVC_STOPPED;
            svc->manual_stop = true;
            ci_log_eventf(CI_LOG_INFO, svc->conf->name, "stopped", -1,
                          "not started: stopped with `ctl stop` (unless-stopped)");
        }
    }

    /* A small stack: it only waits and calls kill(). */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    int te = pthread_create(&sup->sig_thread, &attr, signal_thread, sup);
    pthread_attr_destroy(&attr);
    sup->sig_thread_running = te == 0;
    if (te) {
        ci_log_eventf(CI_LOG_ERROR, NULL, "fatal", -1, "unable to start the signal thread: %s",
                      ci_strerror(te));
        rc = 1;
        goto teardown;
    }

    kick(sup);
    check_done(sup);
    uv_run(sup->loop, UV_RUN_DEFAULT);
    rc = sup->exit_code;

teardown:
    if (sup->sig_thread_running) {
        pthread_cancel(sup->sig_thread);
        pthread_join(sup->sig_thread, NULL);
        sup->sig_thread_running = false;
    }

    /* Teardown: close every handle, let close callbacks run, then free. */
    ci_sup_ctl_close(sup);
    for (size_t i = 0; i < sup->n; i++) {
        waitfor_stop(&sup->svcs[i]);
        watchset_clear(&sup->svcs[i].rl);
        probe_abandon(&sup->svcs[i]);
    }
    if (sup->mux) ci_logmux_close(sup->mux);
    /* What is left goes out; a reader that never reads again loses it after
     * OUTPUT_FLUSH_MS rather than holding the container forever. */
    size_t dropped = ci_outq_stop(OUTPUT_FLUSH_MS);
    struct pollfd errp = {.fd = STDERR_FILENO, .events = POLLOUT};
    if (dropped && poll(&errp, 1, 0) == 1) /* only if stderr is not the stalled one */
        ci_log_eventf(CI_LOG_WARN, NULL, "output-dropped", -1,
                      "stdout/stderr not read for %ums: %zu bytes of output dropped",
                      OUTPUT_FLUSH_MS, dropped);
    uv_walk(sup->loop, walk_close, NULL);
    uv_run(sup->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(sup->loop) != 0)
        ci_log_eventf(CI_LOG_DEBUG, NULL, "loop", -1, "event loop not fully closed");
    ci_probe_cleanup();
    /* The signal mask stays as it is: unblocked now, a SIGTERM that came
     * after the signal thread stopped would end the init by its default
     * action instead of with rc (not as PID 1: as a subreaper). */
    pthread_mutex_destroy(&sup->fwd_mu);
    for (size_t i = 0; i < sup->n; i++) svc_free(&sup->svcs[i]);
    free(sup->svcs);
    if (sup->devnull >= 0) close(sup->devnull);
    return rc;

oom:
    ci_log_eventf(CI_LOG_ERROR, NULL, "fatal", -1, "out of memory");
    return 1;
}

/* ---- actions for the control socket ------------------------------------ */

int ci_sup_svc_start(ci_svc_t *svc, char *err, size_t errlen)
{
    ci_sup_t *sup = svc->sup;
    if (sup->shutting_down) {
        snprintf(err, errlen, "the init is shutting down");
        return -ESHUTDOWN;
    }
    if (svc_alive(svc) || svc->state == CI_SVC_BACKOFF) {
        if (svc->state == CI_SVC_STOPPING && svc->stop_requested) {
            /* A stop in progress: run again once it has exited. */
            svc->manual_stop = false;
            svc->restart_after_stop = true;
            return 0;
        }
        snprintf(err, errlen, "%s is already %s", svc->conf->name, ci_svc_state_name(svc->state));
        return -EALREADY;
    }
    svc->manual_stop = false;
    svc->stop_requested = false;
    svc->failed = false;
    svc->backoff_streak = 0;
    if (svc->state != CI_SVC_WAITING) {
        svc->state = CI_SVC_WAITING;
        svc->waiting_for = -1;
    }
    ci_log_eventf(CI_LOG_INFO, svc->conf->name, "ctl-start", -1, "start requested");
    kick(sup);
    check_done(sup); /* it may have failed at once (a dependency ended) */
    return 0;
}

int ci_sup_svc_stop(ci_svc_t *svc, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    svc->manual_stop = true;
    svc->stop_requested = true;
    svc->restart_after_stop = false;
    ci_log_eventf(CI_LOG_INFO, svc->conf->name, "ctl-stop", svc->pid, "stop requested");
    if (svc->state == CI_SVC_RUNNING) {
        svc_stop(svc, false);
    } else if (svc->state == CI_SVC_WAITING || svc->state == CI_SVC_BACKOFF) {
        waitfor_stop(svc);
        uv_timer_stop(&svc->timer);
        svc->state = CI_SVC_STOPPED;
        kick(svc->sup);
    }
    return 0;
}

int ci_sup_svc_restart(ci_svc_t *svc, char *err, size_t errlen)
{
    if (svc->sup->shutting_down) {
        snprintf(err, errlen, "the init is shutting down");
        return -ESHUTDOWN;
    }
    if (svc->state == CI_SVC_RUNNING) {
        svc->manual_stop = false;
        svc->stop_requested = true;
        ci_log_eventf(CI_LOG_INFO, svc->conf->name, "ctl-restart", svc->pid, "restart requested");
        svc_stop(svc, true);
        return 0;
    }
    return ci_sup_svc_start(svc, err, errlen);
}

int ci_sup_svc_signal(ci_svc_t *svc, int sig, char *err, size_t errlen)
{
    if (!svc_alive(svc)) {
        snprintf(err, errlen, "%s is not running", svc->conf->name);
        return -ESRCH;
    }
    send_group(svc, sig);
    return 0;
}

void ci_sup_shutdown(ci_sup_t *sup, const char *why)
{
    begin_shutdown(sup, sup->exit_code, why);
}
