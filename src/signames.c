/* signames: signal names <-> numbers ("SIGQUIT", "QUIT", "3", "SIGRTMIN+2"). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chroma_init/util.h"

static const struct {
    const char *name; /* without "SIG" */
    int sig;
} names[] = {
    {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},     {"ILL", SIGILL},
    {"TRAP", SIGTRAP},     {"ABRT", SIGABRT}, {"IOT", SIGIOT},       {"BUS", SIGBUS},
    {"FPE", SIGFPE},       {"KILL", SIGKILL}, {"USR1", SIGUSR1},     {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2},     {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM},
#ifdef SIGSTKFLT
    {"STKFLT", SIGSTKFLT},
#endif
    {"CHLD", SIGCHLD},     {"CLD", SIGCHLD},  {"CONT", SIGCONT},     {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
    {"XCPU", SIGXCPU},     {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
    {"WINCH", SIGWINCH},   {"IO", SIGIO},     {"POLL", SIGPOLL},
#ifdef SIGPWR
    {"PWR", SIGPWR},
#endif
    {"SYS", SIGSYS},
};

/* Parses a decimal in [lo, hi]; -1 on anything else. */
static int parse_small(const char *s, int lo, int hi)
{
    long v = 0;
    if (!*s) return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        v = v * 10 + (*s - '0');
        if (v > hi) return -1;
    }
    return v < lo ? -1 : (int)v;
}

int ci_signal_parse(const char *s)
{
    int n;
    if (!s || !*s) return -EINVAL;
    n = parse_small(s, 1, SIGRTMAX);
    if (n > 0) return n;
    if (!strncasecmp(s, "SIG", 3)) {
        s += 3;
        n = parse_small(s, 1, SIGRTMAX); /* "SIG32", as ci_signal_name renders unnamed ones */
        if (n > 0) return n;
    }
    for (size_t i = 0; i < CI_ARRAY_SIZE(names); i++)
        if (!strcasecmp(s, names[i].name)) return names[i].sig;
    if (!strncasecmp(s, "RTMIN", 5)) {
        if (!s[5]) return SIGRTMIN;
        if (s[5] != '+') return -EINVAL;
        n = parse_small(s + 6, 0, SIGRTMAX - SIGRTMIN);
        return n < 0 ? -EINVAL : SIGRTMIN + n;
    }
    if (!strncasecmp(s, "RTMAX", 5)) {
        if (!s[5]) return SIGRTMAX;
        if (s[5] != '-') return -EINVAL;
        n = parse_small(s + 6, 0, SIGRTMAX - SIGRTMIN);
        return n < 0 ? -EINVAL : SIGRTMAX - n;
    }
    return -EINVAL;
}

const char *ci_signal_name(int sig)
{
    static _Thread_local char buf[32];
    for (size_t i = 0; i < CI_ARRAY_SIZE(names); i++) {
        if (names[i].sig == sig) {
            snprintf(buf, sizeof(buf), "SIG%s", names[i].name);
            return buf;
        }
    }
    if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
        if (sig == SIGRTMIN)
            snprintf(buf, sizeof(buf), "SIGRTMIN");
        else
            snprintf(buf, sizeof(buf), "SIGRTMIN+%d", sig - SIGRTMIN);
        return buf;
    }
    snprintf(buf, sizeof(buf), "SIG%d", sig);
    return buf;
}
