/* spawn: fork/exec with an O_CLOEXEC error pipe (see spawn.h). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "chroma_init/log.h"
#include "chroma_init/spawn.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define MAX_GROUPS 256

struct ids {
    bool set;
    uid_t uid;
    gid_t gid;
    int ngroups;
    gid_t groups[MAX_GROUPS];
};

/* What the child reports through the error pipe. */
struct child_err {
    int err;
    int stage; /* 0 exec, 1 chdir, 2 setgroups/setgid/setuid, 3 dup2 */
};

static bool all_digits(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return false;
    return true;
}

/* Resolves "name", "uid", "uid:gid", "name:group" before fork (the user
 * database is not async-signal-safe). */
static int resolve_user(const char *spec, struct ids *ids, char *err, size_t errlen)
{
    char buf[256];
    if (strlen(spec) >= sizeof buf) {
        snprintf(err, errlen, "invalid user \"%s\"", spec);
        return -EINVAL;
    }
    strcpy(buf, spec);
    char *group = strchr(buf, ':');
    if (group) *group++ = '\0';

    struct passwd *pw = NULL;
    errno = 0;
    if (all_digits(buf)) {
        ids->uid = (uid_t)strtoul(buf, NULL, 10);
        pw = getpwuid(ids->uid);
        ids->gid = pw ? pw->pw_gid : (gid_t)ids->uid;
    } else {
        pw = getpwnam(buf);
        if (!pw) {
            snprintf(err, errlen, "unable to resolve user \"%s\": no such user", buf);
            return -ENOENT;
        }
        ids->uid = pw->pw_uid;
        ids->gid = pw->pw_gid;
    }
    if (group) {
        if (all_digits(group)) {
            ids->gid = (gid_t)strtoul(group, NULL, 10);
        } else {
            struct group *gr = getgrnam(group);
            if (!gr) {
                snprintf(err, errlen, "unable to resolve group \"%s\": no such group", group);
                return -ENOENT;
            }
            ids->gid = gr->gr_gid;
        }
    }
    ids->ngroups = 1;
    ids->groups[0] = ids->gid;
    if (pw) {
        int n = MAX_GROUPS;
        if (getgrouplist(pw->pw_name, ids->gid, ids->groups, &n) < 0) n = MAX_GROUPS;
        ids->ngroups = n;
    }
    ids->set = true;
    return 0;
}

static const char *env_get(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (; envp && *envp; envp++)
        if (!strncmp(*envp, name, n) && (*envp)[n] == '=') return *envp + n + 1;
    return NULL;
}

/* PATH lookup in the child's PATH, done before fork. Picks the first
 * executable candidate, else the first existing one (so exec reports
 * EACCES), else the bare name (exec reports ENOENT). */
static void lookup_path(const char *file, char *const *envp, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", file);
    if (strchr(file, '/') || !*file) return;
    const char *path = env_get(envp, "PATH");
    if (!path) path = DEFAULT_PATH;
    char first_existing[PATH_MAX] = "";
    const char *p = path;
    while (*p) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        char cand[PATH_MAX];
        int n = len ? snprintf(cand, sizeof cand, "%.*s/%s", (int)len, p, file)
                    : snprintf(cand, sizeof cand, "./%s", file);
        if (n > 0 && (size_t)n < sizeof cand) {
            struct stat st;
            if (stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
                if (access(cand, X_OK) == 0) {
                    snprintf(out, outlen, "%s", cand);
                    return;
                }
                if (!first_existing[0]) snprintf(first_existing, sizeof first_existing, "%s", cand);
            }
        }
        if (!colon) break;
        p = colon + 1;
    }
    if (first_existing[0]) snprintf(out, outlen, "%s", first_existing);
}

/* In the child, after fork: only async-signal-safe calls. */
static void child(const ci_spawn_opts_t *o, const char *path, const struct ids *ids, int errfd)
{
    struct child_err ce = {0, 3};

    /* Default dispositions, then an empty mask (the parent blocked all). */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++) sigaction(s, &sa, NULL);

    if (o->group == CI_SPAWN_SETSID) {
        setsid();
    } else {
        setpgid(0, 0);
        if (isatty(STDIN_FILENO)) {
            /* Become the terminal's foreground group, as tini does; SIGTTOU
             * is still blocked here so this cannot stop us. */
            tcsetpgrp(STDIN_FILENO, getpgrp());
        }
    }
    sigset_t none;
    sigemptyset(&none);

    /* stdio: dup2 onto 0..2. Sources may collide with targets; dup2 first to
     * fds >= 3 would be safer, but callers pass fds > 2 (pipes). */
    for (int i = 0; i < 3; i++) {
        if (o->stdio[i] >= 0 && o->stdio[i] != i) {
            if (dup2(o->stdio[i], i) < 0) goto fail;
        } else if (o->stdio[i] == i) {
            int fl = fcntl(i, F_GETFD);
            if (fl >= 0) fcntl(i, F_SETFD, fl & ~FD_CLOEXEC);
        }
    }
    /* Only 0, 1, 2 survive exec (the error pipe is already O_CLOEXEC). */
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */) != 0)
#endif
    {
        long max = sysconf(_SC_OPEN_MAX);
        if (max < 0 || max > 65536) max = 65536;
        for (int fd = 3; fd < max; fd++)
            if (fd != errfd) close(fd);
    }

    if (o->cwd && chdir(o->cwd) < 0) {
        ce.stage = 1;
        goto fail;
    }
    if (ids->set) {
        ce.stage = 2;
        if (setgroups((size_t)ids->ngroups, ids->groups) < 0 && getuid() == 0) goto fail;
        if (setgid(ids->gid) < 0) goto fail;
        if (setuid(ids->uid) < 0) goto fail;
    }
    sigprocmask(SIG_SETMASK, &none, NULL);
    ce.stage = 0;
    execve(path, o->argv, o->envp);
fail:
    ce.err = errno;
    if (write(errfd, &ce, sizeof ce) < 0) { /* nothing left to do */
    }
    _exit(ce.err == ENOENT ? 127 : 126);
}

int ci_spawn(const ci_spawn_opts_t *o, pid_t *pid, int *exec_errno, char *err, size_t errlen)
{
    struct ids ids = {0};
    char path[PATH_MAX];
    int pipefd[2];
    sigset_t all, old;

    *exec_errno = 0;
    if (err && errlen) err[0] = '\0';
    if (o->user) {
        int r = resolve_user(o->user, &ids, err, errlen);
        if (r < 0) return r;
    }
    lookup_path(o->argv[0], o->envp, path, sizeof path);
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        int e = errno;
        snprintf(err, errlen, "unable to create a pipe: %s", ci_strerror(e));
        return -e;
    }

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t p = fork();
    if (p == 0) {
        close(pipefd[0]);
        child(o, path, &ids, pipefd[1]);
    }
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(pipefd[1]);
    if (p < 0) {
        close(pipefd[0]);
        snprintf(err, errlen, "unable to fork: %s", ci_strerror(fork_errno));
        return -fork_errno;
    }

    struct child_err ce;
    ssize_t n;
    do {
        n = read(pipefd[0], &ce, sizeof ce);
    } while (n < 0 && errno == EINTR);
    close(pipefd[0]);
    *pid = p;
    if (n == (ssize_t)sizeof ce) {
        *exec_errno = ce.err ? ce.err : EIO;
        static const char *const stages[] = {"exec", "change directory to", "drop privileges for",
                                             "set up stdio for"};
        const char *what = ce.stage == 1 ? o->cwd : o->argv[0];
        snprintf(err, errlen, "unable to %s %s: %s", stages[ce.stage & 3], what,
                 ci_strerror(*exec_errno));
    }
    return 0;
}

char **ci_env_merge(char *const *base, char *const *overlay, size_t noverlay)
{
    size_t nbase = 0;
    while (base && base[nbase]) nbase++;
    char **env = calloc(nbase + noverlay + 1, sizeof *env);
    if (!env) return NULL;
    size_t n = 0;
    for (size_t i = 0; i < nbase; i++) {
        const char *eq = strchr(base[i], '=');
        size_t klen = eq ? (size_t)(eq - base[i]) : strlen(base[i]);
        bool overridden = false;
        for (size_t j = 0; j < noverlay && !overridden; j++)
            overridden = !strncmp(overlay[j], base[i], klen) && overlay[j][klen] == '=';
        if (overridden) continue;
        if (!(env[n++] = strdup(base[i]))) goto fail;
    }
    for (size_t j = 0; j < noverlay; j++) {
        /* A later overlay entry with the same key wins. */
        const char *eq = strchr(overlay[j], '=');
        size_t klen = eq ? (size_t)(eq - overlay[j]) : strlen(overlay[j]);
        bool later = false;
        for (size_t k = j + 1; k < noverlay && !later; k++)
            later = !strncmp(overlay[k], overlay[j], klen) && overlay[k][klen] == '=';
        if (later) continue;
        if (!(env[n++] = strdup(overlay[j]))) goto fail;
    }
    return env;
fail:
    ci_env_free(env);
    return NULL;
}

void ci_env_free(char **env)
{
    if (!env) return;
    for (char **e = env; *e; e++) free(*e);
    free(env);
}
