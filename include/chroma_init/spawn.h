/* spawn: fork/exec of services and probes. Never uv_spawn (see STYLE.md): the
 * supervisor owns the process table and reaps with waitpid(-1).
 *
 * The child: all signals were blocked around fork; it resets every
 * disposition to default and clears its mask, starts its own session (or, in
 * tini mode, its own process group in the terminal's foreground), gets only
 * fds 0, 1, 2, changes directory, drops privileges (groups from the user
 * database), then execve()s. Exec failure is reported to the parent through
 * an O_CLOEXEC pipe; the child then exits 127 (ENOENT) or 126 (other). */
#ifndef CHROMA_INIT_SPAWN_H
#define CHROMA_INIT_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

typedef enum ci_spawn_group {
    CI_SPAWN_SETSID = 0,     /* own session and process group (services, probes) */
    CI_SPAWN_FOREGROUND_PGRP /* own process group, made the tty's foreground (tini) */
} ci_spawn_group_t;

typedef struct ci_spawn_opts {
    char *const *argv; /* borrowed; argv[0] looked up in PATH (of envp) if it has no '/' */
    char *const *envp; /* borrowed; the child's whole environment */
    const char *cwd;   /* or NULL */
    const char *user;  /* "name", "uid", "uid:gid", "name:group", or NULL */
    int stdio[3];      /* fds to dup2 onto 0, 1, 2; -1 = inherit the init's */
    ci_spawn_group_t group;
} ci_spawn_opts_t;

/* Starts a child. Returns 0 and *pid when the fork happened; *exec_errno is 0
 * when the exec succeeded, else the errno of the step that failed (the child
 * then exits 127/126 and must still be reaped), and err describes it
 * ("unable to exec nginx: no such file or directory"). Returns a negative
 * errno (nothing started) when the user cannot be resolved or fork fails. */
int ci_spawn(const ci_spawn_opts_t *opts, pid_t *pid, int *exec_errno, char *err, size_t errlen);

/* Builds an environment: base (NULL-terminated "K=V", e.g. environ), then each
 * "K=V" of overlay replaces or adds. Returns a new NULL-terminated array
 * (caller frees with ci_env_free) or NULL on ENOMEM. */
char **ci_env_merge(char *const *base, char *const *overlay, size_t noverlay);
void ci_env_free(char **env);

#endif
