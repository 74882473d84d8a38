/* config: init.json -> plain C structs. No json_t survives loading.
 *
 * Every string in these structs is owned by the ci_config_t and freed by
 * ci_config_free(). Durations are in milliseconds. String arrays are
 * NULL-terminated and also carry their length. */
#ifndef CHROMA_INIT_CONFIG_H
#define CHROMA_INIT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CI_ERR_MAX 1024
/* Service names are shown in every log line: kept short. */
#define CI_SERVICE_NAME_MAX 63

/* A rendered, user-facing error: "init.json: services.x.restart: ..." */
typedef struct ci_error {
    char msg[CI_ERR_MAX];
} ci_error_t;

typedef enum ci_log_format { CI_LOG_TEXT = 0, CI_LOG_JSON = 1 } ci_log_format_t;

typedef enum ci_restart_policy {
    CI_RESTART_NO = 0,
    CI_RESTART_ALWAYS,
    CI_RESTART_ON_FAILURE,
    CI_RESTART_UNLESS_STOPPED,
} ci_restart_policy_t;

typedef enum ci_condition {
    CI_COND_STARTED = 0, /* service_started */
    CI_COND_HEALTHY,     /* service_healthy */
    CI_COND_COMPLETED,   /* service_completed_successfully */
} ci_condition_t;

typedef struct ci_dep {
    char *name;
    size_t index; /* index of the dependency in ci_config_t.services */
    ci_condition_t condition;
    bool required; /* default true */
    bool restart;  /* default false */
} ci_dep_t;

typedef enum ci_hc_kind {
    CI_HC_NONE = 0, /* no healthcheck, ["NONE"], or disable: true */
    CI_HC_CMD,      /* ["CMD", arg...]: argv = args */
    CI_HC_SHELL,    /* ["CMD-SHELL", s] or "s": argv = {"/bin/sh", "-c", s} */
    CI_HC_HTTP,     /* ["HTTP", url...]: argv = urls (first + fallbacks) */
    CI_HC_TCP,      /* ["TCP", "host:port"]: argv = {"host:port"} */
} ci_hc_kind_t;

typedef struct ci_healthcheck {
    ci_hc_kind_t kind;
    char **argv; /* see ci_hc_kind_t; NULL-terminated */
    size_t argc;
    uint64_t interval_ms;       /* default 30s */
    uint64_t timeout_ms;        /* default 30s */
    uint64_t start_period_ms;   /* default 0 */
    uint64_t start_interval_ms; /* default 5s */
    int retries;                /* default 3 */
    char *ca;                   /* https: PEM CA file, or NULL for the system store */
    bool insecure;              /* https: skip verification */
} ci_healthcheck_t;

typedef struct ci_certgen_conf {
    char *cert;
    char *key;
    char **domains; /* from the comma list; default {"localhost"} */
    size_t ndomains;
    char *subject;            /* default "/O=Chroma/C=US" */
    char *key_type;           /* default "rsa:2048" */
    int days;                 /* default 365 */
    uint64_t renew_before_ms; /* 0 = not set */
    char *owner;              /* "user[:group]" or NULL */
} ci_certgen_conf_t;

typedef struct ci_service_conf {
    char *name;
    /* Exactly one of command / certgen. */
    char **command; /* array form: argv; string form: {"/bin/sh", "-c", s} */
    size_t command_len;
    bool command_shell; /* true when given as a string */
    bool is_certgen;
    ci_certgen_conf_t certgen;

    char **environment; /* "K=V": top-level environment merged under the service's */
    size_t environment_len;
    char *working_dir; /* or NULL */
    char *user;        /* "name", "uid" or "uid:gid", or NULL; resolved at spawn */

    ci_dep_t *depends_on;
    size_t ndepends_on;

    ci_healthcheck_t healthcheck; /* kind CI_HC_NONE when absent */

    char **wait_for_files;
    size_t nwait_for_files;
    uint64_t wait_for_timeout_ms; /* 0 = wait forever */

    ci_restart_policy_t restart;
    int restart_max; /* on-failure:N -> N; otherwise -1 (unlimited) */
    bool on_unhealthy_restart;

    int stop_signal;        /* default SIGTERM */
    uint64_t stop_grace_ms; /* default 10s */

    char **reload_watch;
    size_t nreload_watch;
    int reload_signal; /* default SIGHUP */

    bool essential;
    char *log_prefix; /* or NULL: the service name */
} ci_service_conf_t;

typedef struct ci_config {
    char *path;         /* as given by the user, used in messages */
    char **environment; /* top-level, "K=V", interpolated */
    size_t environment_len;
    char *state_dir;              /* default "/run/chroma-init" */
    ci_log_format_t log_format;   /* default text */
    bool log_prefix;              /* default true */
    bool log_timestamps;          /* default false */
    uint64_t shutdown_timeout_ms; /* default 9s */
    ci_service_conf_t *services;
    size_t nservices;
    /* Filled by ci_graph_resolve during loading (owned by the config): */
    size_t *start_order; /* nservices indices: waves flattened, config order within a wave */
    unsigned *wave;      /* wave[i]: the start wave of service i (0 = no dependencies) */
    unsigned nwaves;
} ci_config_t;

/* Loads, interpolates and validates FILE. On success *out is a new config
 * (caller frees with ci_config_free) and 0 is returned. On failure returns a
 * negative errno (-EINVAL for a bad config), *out is NULL and err holds the
 * message. `environ_lookup` is the environment used for interpolation: NULL
 * means getenv(). */
int ci_config_load(const char *path, ci_config_t **out, ci_error_t *err);

/* Same as ci_config_load, from a buffer; `name` is used in messages. */
int ci_config_load_buffer(const char *name, const char *buf, size_t len, ci_config_t **out,
                          ci_error_t *err);

void ci_config_free(ci_config_t *cfg);

/* Index of the service named NAME, or -1. */
long ci_config_find(const ci_config_t *cfg, const char *name);

#endif
