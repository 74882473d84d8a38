/* ci-helper: deterministic children for the process tests. One file, libc
 * only. Every subcommand accepts a leading `--tag TOKEN` (ignored) so tests
 * can find their processes by scanning /proc/PID/cmdline; forked children
 * keep the same cmdline, so they carry the tag too.
 *
 *   ci-helper [--tag T] exit N
 *   ci-helper [--tag T] kill-self SIG             die by SIG (default disposition)
 *   ci-helper [--tag T] sleep SECONDS             fractional ok
 *   ci-helper [--tag T] ignore-term [READY_FILE]  SIG_IGN TERM+INT, write READY_FILE, pause
 *   ci-helper [--tag T] record-signals FILE [--exit-on SIG] [--signal-parent SIG]
 *   ci-helper [--tag T] orphans K [--linger-ms M] [--stay]
 *   ci-helper [--tag T] partial TEXT | bigline BYTES [--stderr] | lines N
 *   ci-helper [--tag T] inspect FILE
 *   ci-helper [--tag T] serve-http PORT_FILE [--port P] [--status N] [--route PATH=STATUS]...
 *                       [--delay-ms M] [--reset] [--listen-after-ms M]
 *   ci-helper [--tag T] touch-after MS PATH [CONTENT]
 *   ci-helper [--tag T] spawn-tree N
 *   ci-helper [--tag T] pidfile FILE CMD [ARGS...]
 *
 * Files handed to tests are written atomically (temp file, fsync, rename).
 * Usage errors exit 2. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *const signames[32] = {
    [SIGHUP] = "SIGHUP",       [SIGINT] = "SIGINT",       [SIGQUIT] = "SIGQUIT",
    [SIGILL] = "SIGILL",       [SIGTRAP] = "SIGTRAP",     [SIGABRT] = "SIGABRT",
    [SIGBUS] = "SIGBUS",       [SIGFPE] = "SIGFPE",       [SIGKILL] = "SIGKILL",
    [SIGUSR1] = "SIGUSR1",     [SIGSEGV] = "SIGSEGV",     [SIGUSR2] = "SIGUSR2",
    [SIGPIPE] = "SIGPIPE",     [SIGALRM] = "SIGALRM",     [SIGTERM] = "SIGTERM",
    [SIGSTKFLT] = "SIGSTKFLT", [SIGCHLD] = "SIGCHLD",     [SIGCONT] = "SIGCONT",
    [SIGSTOP] = "SIGSTOP",     [SIGTSTP] = "SIGTSTP",     [SIGTTIN] = "SIGTTIN",
    [SIGTTOU] = "SIGTTOU",     [SIGURG] = "SIGURG",       [SIGXCPU] = "SIGXCPU",
    [SIGXFSZ] = "SIGXFSZ",     [SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF",
    [SIGWINCH] = "SIGWINCH",   [SIGIO] = "SIGIO",         [SIGPWR] = "SIGPWR",
    [SIGSYS] = "SIGSYS",
};

_Noreturn static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "ci-helper: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

/* "SIGUSR1", "usr1", "10" -> 10; -1 if unknown. */
static int parse_signal(const char *s)
{
    char *end;
    long n = strtol(s, &end, 10);
    if (*s && !*end) return n > 0 && n < 65 ? (int)n : -1;
    if (!strncasecmp(s, "SIG", 3)) s += 3;
    for (int i = 1; i < 32; i++)
        if (signames[i] && !strcasecmp(s, signames[i] + 3)) return i;
    if (!strcasecmp(s, "IOT")) return SIGABRT;
    if (!strcasecmp(s, "POLL")) return SIGIO;
    return -1;
}

static long parse_long(const char *s, const char *what)
{
    char *end;
    errno = 0;
    long n = strtol(s, &end, 10);
    if (!*s || *end || errno) die("bad %s: %s", what, s);
    return n;
}

static void sleep_ms(double ms)
{
    struct timespec ts, rem;
    if (ms <= 0) return;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)((ms - (double)ts.tv_sec * 1000) * 1e6);
    if (ts.tv_nsec >= 1000000000L) ts.tv_nsec = 999999999L;
    while (nanosleep(&ts, &rem) < 0 && errno == EINTR) ts = rem;
}

_Noreturn static void pause_forever(void)
{
    for (;;) pause();
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Temp file beside path, fsync, rename. Exits 1 on failure. */
static void write_file_atomic(const char *path, const char *data, size_t len)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write_all(fd, data, len) < 0 || fsync(fd) < 0 || close(fd) < 0 ||
        rename(tmp, path) < 0) {
        fprintf(stderr, "ci-helper: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* ---- exit, kill-self, sleep, ignore-term ---- */

static int cmd_kill_self(int sig)
{
    sigset_t set;
    signal(sig, SIG_DFL);
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    return 1; /* the signal did not kill us (e.g. SIGCHLD) */
}

_Noreturn static void cmd_ignore_term(const char *ready)
{
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    if (ready) write_file_atomic(ready, "ready\n", 6);
    pause_forever();
}

/* ---- record-signals ---- */

static int rec_fd = -1, rec_exit_on = -1;

static void on_record(int sig)
{
    const char *name = sig > 0 && sig < 32 && signames[sig] ? signames[sig] : "SIG?";
    char line[16];
    size_t n = strlen(name);
    memcpy(line, name, n);
    line[n++] = '\n';
    (void)write_all(rec_fd, line, n);
    fsync(rec_fd);
    if (sig == rec_exit_on) _exit(0);
}

/* --signal-parent: once ready, sends SIG to the parent (the init), at once
 * after exec: a signal that comes while the init is still starting us. */
static int cmd_record_signals(const char *file, int exit_on, int to_parent)
{
    struct sigaction sa;
    sigset_t none;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_record;
    sigfillset(&sa.sa_mask); /* one handler at a time: lines never mix */
    rec_exit_on = exit_on;
    rec_fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (rec_fd < 0) die("cannot open %s: %s", file, strerror(errno));
    for (int sig = 1; sig < 32; sig++) {
        if (sig == SIGCHLD || sig == SIGKILL || sig == SIGSTOP) continue;
        if (sigaction(sig, &sa, NULL) < 0) die("sigaction %d: %s", sig, strerror(errno));
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (to_parent > 0) kill(getppid(), to_parent); /* before any I/O that could yield */
    (void)write_all(rec_fd, "READY\n", 6);
    fsync(rec_fd);
    pause_forever();
    return 0;
}

/* ---- orphans, spawn-tree ---- */

static int cmd_orphans(long k, long linger_ms, bool stay)
{
    pid_t mid = fork();
    if (mid < 0) die("fork: %s", strerror(errno));
    if (mid == 0) {
        for (long i = 0; i < k; i++) {
            pid_t g = fork();
            if (g == 0) {
                sleep_ms((double)linger_ms);
                _exit(0);
            }
            if (g < 0) _exit(1);
        }
        _exit(0);
    }
    int st;
    while (waitpid(mid, &st, 0) < 0 && errno == EINTR) {
    }
    /* Every orphan has been forked (and handed to the reaper) by now. */
    printf("orphaned %ld\n", k);
    fflush(stdout);
    if (stay) pause_forever();
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

static int cmd_spawn_tree(long n)
{
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) die("fork: %s", strerror(errno));
        if (pid == 0) pause_forever();
    }
    pause_forever();
    return 0;
}

/* ---- output ---- */

static int cmd_bigline(long bytes, bool to_stderr)
{
    static const char pat[] = "0123456789abcdef";
    size_t n = (size_t)bytes;
    char *buf = malloc(n + 1);
    if (!buf) die("out of memory");
    for (size_t i = 0; i < n; i++) buf[i] = pat[i % 16];
    buf[n] = '\n';
    int rc = write_all(to_stderr ? 2 : 1, buf, n + 1) < 0 ? 1 : 0;
    free(buf);
    return rc;
}

static int cmd_lines(long n)
{
    for (long i = 1; i <= n; i++) printf("line %ld\n", i);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* ---- inspect ---- */

struct sbuf {
    char *p;
    size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) die("out of memory");
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0) sb_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void sb_json_str(struct sbuf *b, const char *s)
{
    sb_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            sb_add(b, esc, 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            sb_printf(b, "\\u%04x", *p); /* other bytes pass through (UTF-8 stays UTF-8) */
        } else {
            sb_add(b, (const char *)p, 1);
        }
    }
    sb_add(b, "\"", 1);
}

static void status_field(struct sbuf *b, const char *key)
{
    char line[256];
    size_t klen = strlen(key);
    FILE *f = fopen("/proc/self/status", "re");
    if (!f) die("cannot read /proc/self/status");
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, key, klen) && line[klen] == ':') {
            char *v = line + klen + 1;
            v += strspn(v, " \t");
            v[strcspn(v, "\n")] = '\0';
            sb_printf(b, ", \"%s\": ", key);
            sb_json_str(b, v);
        }
    }
    fclose(f);
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

static int cmd_inspect(const char *file)
{
    extern char **environ;
    struct sbuf b = {0};
    char cwd[PATH_MAX];
    gid_t groups[256];
    int ngroups = getgroups(256, groups), fds[1024], nfds = 0;

    sb_printf(&b, "{\"pid\": %ld, \"ppid\": %ld, \"pgid\": %ld, \"sid\": %ld", (long)getpid(),
              (long)getppid(), (long)getpgid(0), (long)getsid(0));
    sb_printf(&b, ", \"uid\": %ld, \"gid\": %ld, \"euid\": %ld, \"egid\": %ld, \"groups\": [",
              (long)getuid(), (long)getgid(), (long)geteuid(), (long)getegid());
    for (int i = 0; i < ngroups; i++) sb_printf(&b, "%s%ld", i ? ", " : "", (long)groups[i]);
    sb_add(&b, "], \"cwd\": ", 10);
    sb_json_str(&b, getcwd(cwd, sizeof(cwd)) ? cwd : "");

    DIR *d = opendir("/proc/self/fd");
    if (!d) die("cannot list /proc/self/fd");
    for (struct dirent *e; (e = readdir(d)) != NULL && nfds < 1024;) {
        if (e->d_name[0] == '.') continue;
        int fd = atoi(e->d_name);
        if (fd != dirfd(d)) fds[nfds++] = fd;
    }
    closedir(d);
    qsort(fds, (size_t)nfds, sizeof(int), cmp_int);
    sb_add(&b, ", \"fds\": [", 10);
    for (int i = 0; i < nfds; i++) sb_printf(&b, "%s%d", i ? ", " : "", fds[i]);
    sb_add(&b, "], \"fd_targets\": {", 18);
    for (int i = 0; i < nfds; i++) {
        char link[64], target[PATH_MAX];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fds[i]);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        target[n > 0 ? n : 0] = '\0';
        sb_printf(&b, "%s\"%d\": ", i ? ", " : "", fds[i]);
        sb_json_str(&b, target);
    }
    sb_add(&b, "}", 1);
    status_field(&b, "SigBlk");
    status_field(&b, "SigIgn");
    status_field(&b, "SigCgt");
    sb_add(&b, ", \"env\": {", 10);
    for (char **e = environ; *e; e++) {
        char *eq = strchr(*e, '=');
        if (!eq) continue;
        char *name = strndup(*e, (size_t)(eq - *e));
        if (!name) die("out of memory");
        sb_add(&b, e == environ ? "" : ", ", e == environ ? 0 : 2);
        sb_json_str(&b, name);
        sb_add(&b, ": ", 2);
        sb_json_str(&b, eq + 1);
        free(name);
    }
    sb_add(&b, "}}\n", 3);
    write_file_atomic(file, b.p, b.len);
    free(b.p);
    return 0;
}

/* ---- serve-http ---- */

struct route {
    const char *path;
    int status;
};

static void on_term_exit(int sig)
{
    (void)sig;
    _exit(0);
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 410:
        return "Gone";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

static void serve_one(int c, int def_status, const struct route *routes, int nroutes, long delay_ms,
                      bool reset)
{
    char req[16384], path[4096] = "/";
    size_t len = 0;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (len < sizeof(req) - 1) {
        ssize_t n = recv(c, req + len, sizeof(req) - 1 - len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n")) break;
    }
    req[len] = '\0';
    if (reset) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        return;
    }
    char *sp = strchr(req, ' ');
    if (sp) {
        size_t n = strcspn(sp + 1, " ?\r\n");
        if (n > 0 && n < sizeof(path)) {
            memcpy(path, sp + 1, n);
            path[n] = '\0';
        }
    }
    int status = def_status;
    for (int i = 0; i < nroutes; i++)
        if (!strcmp(routes[i].path, path)) status = routes[i].status;
    sleep_ms((double)delay_ms);
    char body[4200], resp[8192];
    int blen =
        snprintf(body, sizeof(body), "{\"status\": %d, \"path\": \"%.4096s\"}\n", status, path);
    if (blen < 0 || (size_t)blen >= sizeof(body)) blen = 0;
    int rlen = snprintf(resp, sizeof(resp),
                        "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                        status, reason(status), blen, blen ? body : "");
    if (rlen > 0 && (size_t)rlen < sizeof(resp)) (void)write_all(c, resp, (size_t)rlen);
    shutdown(c, SHUT_WR);
}

_Noreturn static void cmd_serve_http(int argc, char **argv)
{
    const char *port_file = argv[0];
    struct route routes[64];
    int nroutes = 0, def_status = 200;
    long port = 0, delay_ms = 0, listen_after_ms = 0;
    bool reset = false;

    for (int i = 1; i < argc; i++) {
        bool has = i + 1 < argc;
        if (!strcmp(argv[i], "--status") && has)
            def_status = (int)parse_long(argv[++i], "status");
        else if (!strcmp(argv[i], "--port") && has)
            port = parse_long(argv[++i], "port");
        else if (!strcmp(argv[i], "--delay-ms") && has)
            delay_ms = parse_long(argv[++i], "delay");
        else if (!strcmp(argv[i], "--listen-after-ms") && has)
            listen_after_ms = parse_long(argv[++i], "delay");
        else if (!strcmp(argv[i], "--reset"))
            reset = true;
        else if (!strcmp(argv[i], "--route") && has && nroutes < 64) {
            char *eq = strrchr(argv[++i], '=');
            if (!eq) die("bad route: %s (want PATH=STATUS)", argv[i]);
            *eq = '\0';
            routes[nroutes].path = argv[i];
            routes[nroutes++].status = (int)parse_long(eq + 1, "route status");
        } else
            die("serve-http: unknown option %s", argv[i]);
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term_exit;
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    socklen_t alen = sizeof(addr);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0) die("socket: %s", strerror(errno));
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(s, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        die("bind 127.0.0.1:%ld: %s", port, strerror(errno));
    sleep_ms((double)listen_after_ms); /* bound (port reserved) but refusing */
    if (listen(s, 64) < 0 || getsockname(s, (struct sockaddr *)&addr, &alen) < 0)
        die("listen: %s", strerror(errno));
    char num[16];
    int n = snprintf(num, sizeof(num), "%u\n", (unsigned)ntohs(addr.sin_port));
    write_file_atomic(port_file, num, (size_t)n);
    for (;;) {
        int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            die("accept: %s", strerror(errno));
        }
        serve_one(c, def_status, routes, nroutes, delay_ms, reset);
        close(c);
    }
}

/* ---- main ---- */

static void need(int argc, int n, const char *usage)
{
    if (argc < n) die("usage: ci-helper [--tag TOKEN] %s", usage);
}

int main(int argc, char **argv)
{
    argv++, argc--;
    if (argc >= 2 && !strcmp(argv[0], "--tag")) argv += 2, argc -= 2;
    need(argc, 1, "SUBCOMMAND ARGS...");
    const char *cmd = argv[0];
    argv++, argc--;

    if (!strcmp(cmd, "exit")) {
        need(argc, 1, "exit N");
        return (int)parse_long(argv[0], "exit code");
    }
    if (!strcmp(cmd, "kill-self")) {
        need(argc, 1, "kill-self SIG");
        int sig = parse_signal(argv[0]);
        if (sig < 0) die("unknown signal %s", argv[0]);
        return cmd_kill_self(sig);
    }
    if (!strcmp(cmd, "sleep")) {
        need(argc, 1, "sleep SECONDS");
        char *end;
        double s = strtod(argv[0], &end);
        if (*end || s < 0) die("bad seconds: %s", argv[0]);
        sleep_ms(s * 1000);
        return 0;
    }
    if (!strcmp(cmd, "ignore-term")) cmd_ignore_term(argc > 0 ? argv[0] : NULL);
    if (!strcmp(cmd, "record-signals")) {
        const char *usage = "record-signals FILE [--exit-on SIG] [--signal-parent SIG]";
        need(argc, 1, usage);
        int exit_on = -1, to_parent = -1;
        for (int i = 1; i < argc; i += 2) {
            int *which = !strcmp(argv[i], "--exit-on")         ? &exit_on
                         : !strcmp(argv[i], "--signal-parent") ? &to_parent
                                                               : NULL;
            if (!which || i + 1 >= argc) die("usage: %s", usage);
            if ((*which = parse_signal(argv[i + 1])) < 0) die("unknown signal %s", argv[i + 1]);
        }
        return cmd_record_signals(argv[0], exit_on, to_parent);
    }
    if (!strcmp(cmd, "orphans")) {
        need(argc, 1, "orphans K [--linger-ms M] [--stay]");
        long k = parse_long(argv[0], "count"), linger = 0;
        bool stay = false;
        for (int i = 1; i < argc; i++) {
            if (!strcmp(argv[i], "--linger-ms") && i + 1 < argc)
                linger = parse_long(argv[++i], "linger");
            else if (!strcmp(argv[i], "--stay"))
                stay = true;
            else
                die("orphans: unknown option %s", argv[i]);
        }
        return cmd_orphans(k, linger, stay);
    }
    if (!strcmp(cmd, "partial")) {
        need(argc, 1, "partial TEXT");
        return write_all(1, argv[0], strlen(argv[0])) < 0 ? 1 : 0;
    }
    if (!strcmp(cmd, "bigline")) {
        need(argc, 1, "bigline BYTES [--stderr]");
        return cmd_bigline(parse_long(argv[0], "bytes"), argc > 1 && !strcmp(argv[1], "--stderr"));
    }
    if (!strcmp(cmd, "lines")) {
        need(argc, 1, "lines N");
        return cmd_lines(parse_long(argv[0], "count"));
    }
    if (!strcmp(cmd, "inspect")) {
        need(argc, 1, "inspect FILE");
        return cmd_inspect(argv[0]);
    }
    if (!strcmp(cmd, "serve-http")) {
        need(argc, 1, "serve-http PORT_FILE [options]");
        cmd_serve_http(argc, argv);
    }
    if (!strcmp(cmd, "touch-after")) {
        need(argc, 2, "touch-after MS PATH [CONTENT]");
        const char *content = argc > 2 ? argv[2] : "x";
        sleep_ms((double)parse_long(argv[0], "ms"));
        write_file_atomic(argv[1], content, strlen(content));
        return 0;
    }
    if (!strcmp(cmd, "spawn-tree")) {
        need(argc, 1, "spawn-tree N");
        return cmd_spawn_tree(parse_long(argv[0], "count"));
    }
    if (!strcmp(cmd, "pidfile")) {
        need(argc, 2, "pidfile FILE CMD [ARGS...]");
        char num[24];
        int n = snprintf(num, sizeof(num), "%ld\n", (long)getpid());
        write_file_atomic(argv[0], num, (size_t)n);
        execvp(argv[1], argv + 1);
        fprintf(stderr, "ci-helper: exec %s: %s\n", argv[1], strerror(errno));
        return errno == ENOENT ? 127 : 126;
    }
    die("unknown subcommand %s", cmd);
}
