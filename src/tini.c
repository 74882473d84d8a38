/* tini: `chroma-init -- CMD` (see tini.h). One screen per duty, as tini. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chroma_init/log.h"
#include "chroma_init/spawn.h"
#include "chroma_init/tini.h"
#include "chroma_init/util.h"

extern char **environ;

#define LEFTOVER_GRACE_MS 2000

/* What the init handles: every catchable signal but the synchronous ones
 * (tini's list), real-time ones included. */
static void handled_set(sigset_t *set)
{
    static const int never[] = {SIGKILL, SIGSTOP, SIGFPE, SIGILL,  SIGSEGV, SIGBUS,
                                SIGABRT, SIGTRAP, SIGSYS, SIGTTIN, SIGTTOU};
    sigfillset(set);
    for (size_t i = 0; i < CI_ARRAY_SIZE(never); i++) sigdelset(set, never[i]);
}

void ci_kill_children(int sig)
{
    DIR *d = opendir("/proc");
    if (!d) return;
    pid_t self = getpid();
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0) continue;
        buf[n] = '\0';
        char *rp = strrchr(buf, ')');
        int ppid = 0;
        char state;
        if (!rp || sscanf(rp + 1, " %c %d", &state, &ppid) != 2) continue;
        if (ppid == self && state != 'Z') kill((pid_t)atoi(e->d_name), sig);
    }
    closedir(d);
}

/* Reaps everything that has ended; records the child's status. Returns
 * false once there are no children at all. */
static bool reap(pid_t child, int *status, bool *child_done)
{
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p == 0) return true;
        if (p < 0) return errno == EINTR ? true : false;
        if (p == child) {
            *status = st;
            *child_done = true;
        }
    }
}

int ci_tini_run(const ci_tini_opts_t *o)
{
    bool pid1 = getpid() == 1;
    if (!pid1 && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        ci_log_eventf(CI_LOG_WARN, NULL, "subreaper", -1,
                      "unable to become a child subreaper: %s; orphans will not be reaped",
                      ci_strerror(errno));

    /* An ignored SIGCHLD, inherited across exec (`trap '' CHLD`), would make
     * the kernel reap the command itself: its status lost, the init waiting
     * forever. tini hangs so; we take the default back. */
    signal(SIGCHLD, SIG_DFL);
    sigset_t set, old;
    handled_set(&set);
    sigprocmask(SIG_SETMASK, &set, &old);

    ci_spawn_opts_t so;
    memset(&so, 0, sizeof so);
    so.argv = o->argv;
    so.envp = environ;
    so.stdio[0] = so.stdio[1] = so.stdio[2] = -1;
    so.group = CI_SPAWN_FOREGROUND_PGRP;
    char err[512];
    pid_t child = 0;
    int exec_errno = 0;
    if (ci_spawn(&so, &child, &exec_errno, err, sizeof err) < 0) {
        ci_log_eventf(CI_LOG_ERROR, NULL, "fatal", -1, "%s", err);
        sigprocmask(SIG_SETMASK, &old, NULL);
        return 1;
    }
    const char *base = strrchr(o->argv[0], '/');
    const char *name = base && base[1] ? base + 1 : o->argv[0];
    if (exec_errno) ci_log_eventf(CI_LOG_ERROR, name, "exec-failed", child, "%s", err);
    ci_log_eventf(CI_LOG_DEBUG, name, "started", child, "started, pid %d", (int)child);

    int status = 0;
    bool child_done = false;
    const bool debug = ci_log_debug_enabled();
    while (!child_done) {
        int sig = sigwaitinfo(&set, NULL); /* no siginfo: one copy less per wake */
        if (sig < 0) continue;             /* EINTR */
        if (sig == SIGCHLD) {
            reap(child, &status, &child_done);
            continue;
        }
        kill(o->kill_group ? -child : child, sig);
        /* Nothing else unless asked: on a CPU it shares with us, the child
         * runs only once we are back in sigwaitinfo (formatting the debug
         * line cost every forward 0.4 µs, 8%, on one CPU). */
        if (debug)
            ci_log_eventf(CI_LOG_DEBUG, NULL, "forward", child, "forwarded %s",
                          ci_signal_name(sig));
    }

    /* The command has ended: what is left gets SIGTERM, then SIGKILL. */
    if (reap(child, &status, &child_done)) {
        if (pid1)
            kill(-1, SIGTERM);
        else
            ci_kill_children(SIGTERM);
        sigset_t chld;
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        long kill_at = LEFTOVER_GRACE_MS; /* ms after start */
        while (reap(child, &status, &child_done)) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            long ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
            if (ms >= kill_at) {
                /* Sweep again every 100 ms: as a subreaper, the children of
                 * what was just killed are re-parented to us afterwards. */
                if (pid1)
                    kill(-1, SIGKILL);
                else
                    ci_kill_children(SIGKILL);
                kill_at = ms + 100;
                continue;
            }
            long left = kill_at - ms;
            struct timespec ts = {left / 1000, (left % 1000) * 1000000L};
            sigtimedwait(&chld, NULL, &ts);
        }
    }
    sigprocmask(SIG_SETMASK, &old, NULL);

    int code = WIFEXITED(status)     ? WEXITSTATUS(status)
               : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                     : 1;
    ci_log_eventf(CI_LOG_DEBUG, name, "exited", -1, "exited with code %d", code);
    for (size_t i = 0; i < o->nremap_exit; i++)
        if (o->remap_exit[i] == code) code = 0;
    return code;
}
