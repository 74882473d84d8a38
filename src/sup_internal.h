/* The supervisor's private types, shared by supervisor.c and ctl.c. */
#ifndef CHROMA_INIT_SUP_INTERNAL_H
#define CHROMA_INIT_SUP_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "chroma_init/config.h"
#include "chroma_init/logmux.h"
#include "chroma_init/probe.h"
#include "chroma_init/service.h"
#include "chroma_init/supervisor.h"

#define CI_MAX_WATCH 16

typedef struct ci_file_id {
    bool exists;
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns;
    int64_t ctime_ns;
} ci_file_id_t;

/* Directory watches for a set of files: one inotify watch per distinct
 * nearest existing ancestor directory, kept while that set is unchanged. */
typedef struct ci_watchset {
    uv_fs_event_t *h[CI_MAX_WATCH];
    char *dir[CI_MAX_WATCH];
    size_t n;
} ci_watchset_t;

typedef struct ci_svc {
    struct ci_sup *sup;
    const ci_service_conf_t *conf; /* borrowed from the config */
    size_t idx;
    const char *prefix;
    char **argv; /* conf->command, or owned (certgen) */
    bool own_argv;
    char *domains;             /* certgen: the comma list */
    char **envp;               /* owned: the init's environment + the service's */
    ci_logstream_t *logstream; /* of the last start; compared only (see logmux.h) */

    ci_svc_state_t state;
    pid_t pid;
    pid_t fwd_pid; /* pid as the signal forwarder sees it: set once spawned,
                    * 0 once reaped; read and written under sup->fwd_mu */
    uint64_t started_ms;
    uint64_t stop_sent_ms;
    int restarts;        /* every restart, as shown by `ctl status` */
    int policy_restarts; /* those the restart policy made (on-failure:N) */
    unsigned backoff_streak;
    int last_status;
    bool has_exit;
    bool ever_started;
    bool spawn_error;
    bool stop_requested;     /* ctl stop or shutdown */
    bool manual_stop;        /* ctl stop: remembered for unless-stopped */
    bool restart_after_stop; /* ctl restart, on_unhealthy, depends_on.restart */
    bool failed;             /* ended for good, unsuccessfully */
    bool renewal_run;        /* certgen re-run for renewal */
    char reason[512];
    long waiting_for;         /* index of the dependency last reported, or -1 */
    unsigned generation;      /* incremented at each start */
    unsigned *dep_generation; /* generation of each dependency when we started */
    uv_timer_t timer;         /* backoff, kill after grace, wait_for timeout */

    /* health */
    ci_health_t health;
    uv_timer_t hc_timer;
    uv_timer_t probe_timer;
    ci_probe_t *probe;
    size_t url_index;
    pid_t probe_pid;
    bool probe_running, probe_exited, probe_timed_out, probe_abandoned, probe_out_open;
    int probe_status;
    uint64_t probe_start_ms;
    int64_t probe_start_unix_ms;
    uv_pipe_t probe_out;
    char probe_buf[CI_HEALTH_OUTPUT_MAX];
    size_t probe_len;
    char probe_discard[512];

    /* wait_for */
    bool waiting_files;
    uint64_t wait_started_ms;
    ci_watchset_t wf;

    /* reload */
    ci_watchset_t rl;
    ci_file_id_t rl_ids[CI_MAX_WATCH];
    uv_timer_t rl_timer;

    /* certgen renewal */
    uv_timer_t renew_timer;
} ci_svc_t;

typedef struct ci_sup {
    ci_sup_opts_t opts;
    ci_config_t *cfg;
    uv_loop_t loop_s;
    uv_loop_t *loop;
    ci_svc_t *svcs;
    size_t n;
    const size_t *order; /* start order (borrowed from the config) */
    ci_logmux_t *mux;
    int devnull;
    bool is_pid1;
    bool shutting_down;
    bool final_phase;
    bool finished;
    bool no_children;
    bool in_kick;
    bool code_decided; /* an essential service decided the exit code */
    int exit_code;
    uint64_t deadline_ms;
    unsigned long orphans;
    uv_timer_t deadline;
    /* Signals (supervisor.c, signal_thread()): all blocked while the init
     * runs and taken by one thread, which forwards fwd_set to the services
     * and hands SIGCHLD, SIGTERM and SIGINT to the loop. */
    sigset_t sig_all;
    sigset_t fwd_set;
    pthread_t sig_thread;
    bool sig_thread_running;
    uv_async_t sig_async;
    pthread_mutex_t fwd_mu; /* the services' fwd_pid, and the hand-off: */
    int sig_queue[16];      /* SIGTERM/SIGINT in arrival order */
    size_t sig_n;
    bool sig_chld;
    void *ctl; /* the control socket, owned by ctl.c */
} ci_sup_t;

void ci_sup_on_exit(ci_svc_t *svc, int status);
void ci_sup_on_probe_exit(ci_svc_t *svc, int status);
void ci_sup_reap(ci_sup_t *sup);

/* Actions, for the control socket. Each returns 0 or a negative errno with
 * err set ("chromadb is already running"). */
int ci_sup_svc_start(ci_svc_t *svc, char *err, size_t errlen);
int ci_sup_svc_stop(ci_svc_t *svc, char *err, size_t errlen);
int ci_sup_svc_restart(ci_svc_t *svc, char *err, size_t errlen);
int ci_sup_svc_signal(ci_svc_t *svc, int sig, char *err, size_t errlen);
void ci_sup_shutdown(ci_sup_t *sup, const char *why);

/* Control socket (ctl.c). */
void ci_sup_ctl_open(ci_sup_t *sup);
void ci_sup_ctl_close(ci_sup_t *sup);
/* Whether NAME was stopped with `ctl stop` (remembered in state_dir). */
bool ci_sup_state_is_stopped(ci_sup_t *sup, const char *name);

#endif
