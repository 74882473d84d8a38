/* supervisor: owns the loop, the service table and the process table.
 * Events (child exited, probe result, timer, file appeared, signal, ctl
 * request) come here; the pure decisions are in service.h. */
#ifndef CHROMA_INIT_SUPERVISOR_H
#define CHROMA_INIT_SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "chroma_init/config.h"

typedef struct ci_sup ci_sup_t;

typedef struct ci_sup_opts {
    ci_config_t *cfg;     /* borrowed; must outlive the run */
    const char *self_exe; /* this binary, for certgen one-shots */
    bool verbose;
} ci_sup_opts_t;

/* Runs until everything has ended. Returns the init's exit code. */
int ci_sup_run(const ci_sup_opts_t *opts);

/* ---- for the control socket (called from the loop) --------------------- */

typedef enum ci_svc_state {
    CI_SVC_WAITING = 0, /* for dependencies or wait_for files */
    CI_SVC_RUNNING,
    CI_SVC_STOPPING,
    CI_SVC_BACKOFF, /* exited; restart scheduled */
    CI_SVC_EXITED,  /* ended for good */
    CI_SVC_STOPPED, /* stopped on request */
    CI_SVC_FAILED,  /* could not start, and will not */
} ci_svc_state_t;

const char *ci_svc_state_name(ci_svc_state_t s);

#endif
