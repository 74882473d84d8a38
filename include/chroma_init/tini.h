/* tini: `chroma-init -- CMD`, one command supervised the way tini does it,
 * without the event loop: every handled signal blocked, one sigwaitinfo()
 * loop that forwards what arrives and reaps with waitpid(-1, WNOHANG). */
#ifndef CHROMA_INIT_TINI_H
#define CHROMA_INIT_TINI_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ci_tini_opts {
    char **argv;           /* borrowed; the command */
    bool kill_group;       /* -g: forward to the child's process group */
    const int *remap_exit; /* -e: exit codes mapped to 0 */
    size_t nremap_exit;
} ci_tini_opts_t;

/* Runs the command until it exits; then, as PID 1, every other process left
 * gets SIGTERM and, after at most 2 s, SIGKILL (as a subreaper, the orphans
 * it adopted). Returns the child's exit code, 128+N for signal N, 127/126
 * when it could not be executed, after -e remapping. */
int ci_tini_run(const ci_tini_opts_t *opts);

/* Signals the live processes whose parent is this one (orphans adopted as a
 * subreaper, leftovers): reads /proc. */
void ci_kill_children(int sig);

#endif
