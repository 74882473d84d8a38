/* bench-child: the children (and one driver) of tests/bench/process-bench.
 * libc only; the script builds it with gcc into a temp dir.
 *
 *   bench-child orphans N RESULT_FILE
 *       Run as the init's child. Forks an intermediate that vforks N
 *       grandchildren which _exit(0) at once; the intermediate waits (WNOWAIT,
 *       so nothing is reaped) until every grandchild is a zombie, stamps T0
 *       and exits. Its exit re-parents all N zombies to PID 1 in one go, so
 *       from T0 on the only work left is the init's: take SIGCHLD and
 *       waitpid() N times. This child then watches the last-forked pid with
 *       kill(pid, 0) every 100 µs (0 for a zombie, ESRCH once reaped; pids
 *       are not reused in a fresh namespace well below pid_max), then
 *       sweeps the whole list until none is left. RESULT_FILE gets
 *       "WALL_NS CPU_NS LEFT": T1-T0, the CPU time PID 1 spent meanwhile
 *       (/proc/1/schedstat; the init has nothing else to do in that window,
 *       and it is asleep again at T1), and the number of processes still in
 *       /proc at the end besides PID 1 and us (must be 0: no zombie left).
 *       When it is itself PID 1 (no init) the zombies come to it and it reaps
 *       them with waitpid(-1): the kernel's floor (CPU: its own thread time).
 *   bench-child sigrecv FIFO
 *       Blocks SIGUSR1 and loops on sigwaitinfo(); writes the CLOCK_MONOTONIC
 *       ns at which each one arrives, 8 bytes, to FIFO (first a 0: ready).
 *   bench-child sigdrive PID FIFO N
 *       Opens FIFO, waits for the ready word, then N times: stamp, kill(PID,
 *       SIGUSR1), read the receiver's stamp, sleep 2 ms (so every sample
 *       starts from an idle init). Prints N latencies in ns, one a line.
 *   bench-child pause
 *       pause() forever: the static-binary RSS baseline. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

_Noreturn static void die(const char *what)
{
    fprintf(stderr, "bench-child: %s: %s\n", what, strerror(errno));
    exit(2);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* On-CPU ns of PID 1 of our namespace (first field of schedstat). */
static uint64_t pid1_cpu_ns(void)
{
    unsigned long long v = 0;
    FILE *f = fopen("/proc/1/schedstat", "r");
    if (!f) die("/proc/1/schedstat");
    if (fscanf(f, "%llu", &v) != 1) v = 0;
    fclose(f);
    return v;
}

/* Processes in our /proc other than PID 1 and us. */
static long procs_left(void)
{
    long n = 0;
    DIR *d = opendir("/proc");
    if (!d) die("/proc");
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0) continue;
        if (pid != 1 && pid != getpid()) n++;
    }
    closedir(d);
    return n;
}

static void write_result(const char *path, uint64_t ns, uint64_t cpu_ns, long left)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) die(tmp);
    fprintf(f, "%llu %llu %ld\n", (unsigned long long)ns, (unsigned long long)cpu_ns, left);
    if (fclose(f) != 0) die(tmp);
    if (rename(tmp, path) < 0) die(path);
}

static int orphans(long n, const char *result)
{
    /* Shared with the intermediate: pids[0..n-1], then T0. */
    size_t len = sizeof(pid_t) * (size_t)n + sizeof(uint64_t);
    void *shm = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED) die("mmap");
    pid_t *pids = shm;
    volatile uint64_t *t0 = (uint64_t *)((char *)shm + sizeof(pid_t) * (size_t)n);
    *t0 = 0;
    bool self = getpid() == 1;
    uint64_t cpu0 = self ? 0 : pid1_cpu_ns();

    pid_t mid = fork();
    if (mid < 0) die("fork");
    if (mid == 0) {
        for (long i = 0; i < n; i++) {
            pid_t p = vfork();
            if (p == 0) _exit(0);
            if (p < 0) {
                fprintf(stderr, "bench-child: vfork %ld: %s\n", i, strerror(errno));
                _exit(3);
            }
            pids[i] = p;
        }
        for (long i = 0; i < n; i++) {
            siginfo_t si;
            while (waitid(P_PID, (id_t)pids[i], &si, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
            }
        }
        *t0 = mono_ns();
        _exit(0);
    }
    int st;
    while (waitpid(mid, &st, 0) < 0)
        if (errno != EINTR) die("waitpid");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !*t0) {
        fprintf(stderr, "bench-child: intermediate failed (status %d)\n", st);
        return 3;
    }
    uint64_t t1, cpu;
    if (self) {
        /* No init: the zombies are ours. */
        cpu0 = thread_cpu_ns();
        long got = 0;
        while (got < n) {
            pid_t p = waitpid(-1, &st, 0);
            if (p < 0 && errno == EINTR) continue;
            if (p < 0) break;
            got++;
        }
        t1 = mono_ns();
        cpu = thread_cpu_ns() - cpu0;
    } else {
        /* Every init here reaps with waitpid(-1), which takes the zombies
         * in the order they were forked: watch only the last one, 100 µs
         * apart, so that this process takes next to no CPU from the init it
         * measures (a sweep of all N costs milliseconds); then check all. */
        struct timespec nap = {0, 100000};
        while (kill(pids[n - 1], 0) == 0 || errno != ESRCH) nanosleep(&nap, NULL);
        long left = n;
        for (;;) {
            long k = 0;
            for (long i = 0; i < left; i++)
                if (kill(pids[i], 0) == 0 || errno != ESRCH) pids[k++] = pids[i];
            left = k;
            if (!left) break;
            struct timespec ts = {0, 200000}; /* 200 µs between sweeps */
            nanosleep(&ts, NULL);
        }
        t1 = mono_ns();
        cpu = pid1_cpu_ns() - cpu0;
    }
    write_result(result, t1 - *t0, cpu, procs_left());
    return 0;
}

static void nop(int sig)
{
    (void)sig;
}

static int sigrecv(const char *fifo)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGUSR1, nop); /* a handler, so that even as PID 1 it is never ignored */
    int fd = open(fifo, O_WRONLY);
    if (fd < 0) die(fifo);
    uint64_t v = 0;
    if (write(fd, &v, sizeof v) != sizeof v) die("write");
    for (;;) {
        siginfo_t si;
        if (sigwaitinfo(&set, &si) < 0) {
            if (errno == EINTR) continue;
            die("sigwaitinfo");
        }
        v = mono_ns();
        if (write(fd, &v, sizeof v) != sizeof v) return 0; /* reader gone */
    }
}

static int read_word(int fd, uint64_t *v)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, 2000);
    if (r <= 0) return -1;
    return read(fd, v, sizeof *v) == sizeof *v ? 0 : -1;
}

static int sigdrive(pid_t pid, const char *fifo, long n)
{
    int fd = open(fifo, O_RDONLY | O_NONBLOCK);
    if (fd < 0) die(fifo);
    uint64_t v;
    /* O_NONBLOCK open: wait for the writer's ready word (up to ~5 s). */
    for (int tries = 0;; tries++) {
        if (read_word(fd, &v) == 0) break;
        if (tries > 2) {
            fprintf(stderr, "bench-child: sigdrive: receiver never became ready\n");
            return 3;
        }
    }
    for (long i = 0; i < n; i++) {
        uint64_t t0 = mono_ns();
        if (kill(pid, SIGUSR1) < 0) die("kill");
        if (read_word(fd, &v) < 0) {
            fprintf(stderr, "bench-child: sigdrive: sample %ld lost\n", i);
            return 3;
        }
        printf("%llu\n", (unsigned long long)(v - t0));
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "orphans")) return orphans(atol(argv[2]), argv[3]);
    if (argc == 3 && !strcmp(argv[1], "sigrecv")) return sigrecv(argv[2]);
    if (argc == 5 && !strcmp(argv[1], "sigdrive"))
        return sigdrive((pid_t)atol(argv[2]), argv[3], atol(argv[4]));
    if (argc == 2 && !strcmp(argv[1], "pause")) {
        for (;;) pause();
    }
    fprintf(stderr, "usage: bench-child orphans N FILE | sigrecv FIFO | sigdrive PID FIFO N | "
                    "pause\n");
    return 2;
}
