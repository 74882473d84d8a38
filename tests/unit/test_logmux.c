/* logmux: lines from pipes to prefixed output. Output is captured in memfds
 * (large lines would fill a pipe the test thread also has to read). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "chroma_init/logmux.h"

struct fixture {
    uv_loop_t loop;
    uv_timer_t guard;
    int out, err;
    ci_logmux_t *mux;
};

static void on_guard(uv_timer_t *t)
{
    (void)t;
    fprintf(stderr, "test timed out\n");
    abort();
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    /* Unref'd: only fires if the loop is still busy after 20 s. */
    assert_int_equal(uv_timer_init(&f->loop, &f->guard), 0);
    assert_int_equal(uv_timer_start(&f->guard, on_guard, 20000, 0), 0);
    uv_unref((uv_handle_t *)&f->guard);
    f->out = memfd_create("out", MFD_CLOEXEC);
    f->err = memfd_create("err", MFD_CLOEXEC);
    assert_true(f->out >= 0 && f->err >= 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->mux) {
        ci_logmux_close(f->mux);
        f->mux = NULL;
    }
    uv_close((uv_handle_t *)&f->guard, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    close(f->out);
    close(f->err);
    free(f);
    return 0;
}

/* Whole content of a capture fd; caller frees. */
static char *slurp(int fd, size_t *len)
{
    off_t size = lseek(fd, 0, SEEK_END);
    assert_true(size >= 0);
    char *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, (size_t)size, 0), size);
    buf[size] = '\0';
    if (len) *len = (size_t)size;
    return buf;
}

static void write_str(int fd, const char *s)
{
    size_t n = strlen(s);
    assert_int_equal(write(fd, s, n), (ssize_t)n);
}

/* Forks a writer that writes len bytes to fd and exits; closes fd here. */
static pid_t spawn_writer(int fd, const char *data, size_t len)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        size_t off = 0;
        while (off < len) {
            ssize_t n = write(fd, data + off, len - off);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) _exit(1);
            off += (size_t)n;
        }
        _exit(0);
    }
    close(fd);
    return pid;
}

static void reap(pid_t pid)
{
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void open_stream(struct fixture *f, const char *prefix, int fds[2])
{
    if (!f->mux) assert_int_equal(ci_logmux_new(&f->loop, f->out, f->err, false, &f->mux), 0);
    assert_int_equal(ci_logstream_open(f->mux, prefix, fds, NULL), 0);
    assert_true(fds[0] > 2 && fds[1] > 2);
    assert_true(fcntl(fds[0], F_GETFD) & FD_CLOEXEC);
}

/* Runs the loop until every stream has seen EOF on both pipes and is freed. */
static void run_until(struct fixture *f, size_t left)
{
    while (ci_logmux_open_streams(f->mux) > left) uv_run(&f->loop, UV_RUN_ONCE);
}

static void run_streams(struct fixture *f)
{
    run_until(f, 0);
}

static void interleaved_streams(void **state)
{
    struct fixture *f = *state;
    int a[2], b[2];
    open_stream(f, "a", a);
    open_stream(f, "bbb", b);
    ci_logmux_set_width(f->mux, 3);
    assert_int_equal(ci_logmux_open_streams(f->mux), 2);

    write_str(a[0], "a1\na2 ");
    write_str(b[0], "b1\n");
    uv_run(&f->loop, UV_RUN_NOWAIT);
    write_str(a[0], "more\n");
    write_str(b[1], "b-err\n");
    write_str(b[0], "b2\n");
    write_str(a[1], "a-err\n");
    for (int i = 0; i < 2; i++) {
        close(a[i]);
        close(b[i]);
    }
    run_streams(f);

    char *out = slurp(f->out, NULL), *err = slurp(f->err, NULL);
    /* Each stream's lines in order, each line whole. */
    const char *p1 = strstr(out, "a   | a1\n"), *p2 = strstr(out, "a   | a2 more\n");
    const char *q1 = strstr(out, "bbb | b1\n"), *q2 = strstr(out, "bbb | b2\n");
    assert_non_null(p1);
    assert_non_null(p2);
    assert_non_null(q1);
    assert_non_null(q2);
    assert_true(p1 < p2 && q1 < q2);
    assert_int_equal(strlen(out), 4 * 9 + 5);
    assert_non_null(strstr(err, "bbb | b-err\n"));
    assert_non_null(strstr(err, "a   | a-err\n"));
    assert_int_equal(strlen(err), 2 * 12);
    free(out);
    free(err);
}

static void partial_final_line(void **state)
{
    struct fixture *f = *state;
    int fds[2];
    open_stream(f, "p", fds);
    write_str(fds[0], "line\nno newline");
    write_str(fds[1], "err partial");
    close(fds[0]);
    close(fds[1]);
    run_streams(f);
    char *out = slurp(f->out, NULL), *err = slurp(f->err, NULL);
    assert_string_equal(out, "p | line\np | no newline\n");
    assert_string_equal(err, "p | err partial\n");
    free(out);
    free(err);
}

static char *pattern(size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char *s = malloc(n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++) s[i] = digits[i % 16];
    s[n] = '\0';
    return s;
}

static void megabyte_line_whole(void **state)
{
    struct fixture *f = *state;
    int fds[2];
    size_t n = 1024 * 1024, len;
    char *line = pattern(n + 1);
    line[n] = '\n';
    open_stream(f, "big", fds);
    close(fds[1]);
    pid_t pid = spawn_writer(fds[0], line, n + 1);
    run_streams(f);
    reap(pid);
    char *out = slurp(f->out, &len);
    assert_int_equal(len, 6 + n + 1);
    assert_memory_equal(out, "big | ", 6);
    assert_memory_equal(out + 6, line, n + 1);
    free(out);
    free(line);
}

static void huge_line_split(void **state)
{
    struct fixture *f = *state;
    int fds[2];
    size_t n = 6 * 1024 * 1024, len;
    char *line = pattern(n);
    open_stream(f, "h", fds);
    close(fds[0]);
    pid_t pid = spawn_writer(fds[1], line, n); /* stderr, no final newline */
    run_streams(f);
    reap(pid);
    char *err = slurp(f->err, &len);
    /* Pieces: "h | " + 4 MiB + "\n", then "h | " + 2 MiB + "\n". */
    size_t pieces = 0, got = 0;
    char *cat = malloc(n);
    assert_non_null(cat);
    for (char *p = err; p < err + len; pieces++) {
        assert_memory_equal(p, "h | ", 4);
        p += 4;
        char *nl = memchr(p, '\n', (size_t)(err + len - p));
        assert_non_null(nl);
        assert_true((size_t)(nl - p) <= CI_LOGMUX_MAX_LINE);
        assert_true(got + (size_t)(nl - p) <= n);
        memcpy(cat + got, p, (size_t)(nl - p));
        got += (size_t)(nl - p);
        p = nl + 1;
    }
    assert_int_equal(pieces, 2);
    assert_int_equal(got, n);
    assert_memory_equal(cat, line, n);
    free(cat);
    free(err);
    free(line);
}

static long rss_kib(void)
{
    char line[256];
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "re");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmRSS:", 6)) kib = atol(line + 6);
    fclose(f);
    return kib;
}

/* After a 2 MiB line the stream (still open) gives its big buffer back. */
static void buffer_shrinks_after_long_line(void **state)
{
    struct fixture *f = *state;
    int fds[2];
    size_t n = 2 * 1024 * 1024;
    char *line = pattern(n + 1);
    line[n] = '\n';
    open_stream(f, "s", fds);
    int keep = dup(fds[0]); /* holds the stream open after the writer exits */
    assert_true(keep >= 0);
    long before = rss_kib();
    pid_t pid = spawn_writer(fds[0], line, n + 1);
    while (lseek(f->out, 0, SEEK_END) < (off_t)(4 + n + 1)) uv_run(&f->loop, UV_RUN_ONCE);
    reap(pid);
    long after = rss_kib();
    assert_int_equal(ci_logmux_open_streams(f->mux), 1);
    assert_true(after - before < 512); /* KiB: the 2+ MiB buffer is unmapped */
    close(keep);
    close(fds[1]);
    run_streams(f);
    free(line);
}

static void padding(void **state)
{
    struct fixture *f = *state;
    int a[2], b[2], c[2];
    open_stream(f, "ab", a);
    open_stream(f, "longer-than-width", b);
    open_stream(f, NULL, c);
    ci_logmux_set_width(f->mux, 8);
    write_str(a[0], "x\n\n");
    close(a[0]);
    close(a[1]);
    run_until(f, 2); /* a done; c and b still open */
    write_str(b[0], "y\n");
    write_str(c[0], "raw\n");
    for (int i = 0; i < 2; i++) {
        close(b[i]);
        close(c[i]);
    }
    run_streams(f);
    char *out = slurp(f->out, NULL);
    assert_non_null(strstr(out, "ab       | x\nab       | \n"));
    assert_non_null(strstr(out, "longer-than-width | y\n"));
    assert_non_null(strstr(out, "\nraw\n")); /* no name column at all */
    free(out);
}

static bool is_digits(const char *p, int n)
{
    for (int i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9') return false;
    return true;
}

static void timestamps(void **state)
{
    struct fixture *f = *state;
    int fds[2];
    assert_int_equal(ci_logmux_new(&f->loop, f->out, f->err, true, &f->mux), 0);
    ci_logmux_set_width(f->mux, 4);
    assert_int_equal(ci_logstream_open(f->mux, "ts", fds, NULL), 0);
    write_str(fds[0], "hello\n");
    close(fds[0]);
    close(fds[1]);
    run_streams(f);
    char *out = slurp(f->out, NULL);
    /* 2024-05-01T12:00:00.123Z ts   | hello */
    assert_int_equal(strlen(out), 25 + 7 + 6);
    assert_true(is_digits(out, 4) && out[4] == '-' && is_digits(out + 5, 2) && out[7] == '-');
    assert_true(is_digits(out + 8, 2) && out[10] == 'T' && is_digits(out + 11, 2));
    assert_true(out[13] == ':' && is_digits(out + 14, 2) && out[16] == ':');
    assert_true(is_digits(out + 17, 2) && out[19] == '.' && is_digits(out + 20, 3));
    assert_memory_equal(out + 23, "Z ts   | hello\n", 15);
    free(out);
}

static void grandchild_keeps_stream_open(void **state)
{
    struct fixture *f = *state;
    int fds[2], go[2];
    open_stream(f, "g", fds);
    assert_int_equal(pipe(go), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        dup2(fds[0], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        close(go[1]);
        if (fork() == 0) { /* grandchild: holds the pipes until told */
            char c;
            while (read(go[0], &c, 1) < 0 && errno == EINTR) {
            }
            write_str(1, "late\n");
            _exit(0);
        }
        write_str(1, "early\n");
        _exit(0);
    }
    close(fds[0]);
    close(fds[1]);
    close(go[0]);
    reap(child);
    /* The child is gone; the grandchild still holds the write ends. */
    for (int i = 0; i < 10; i++) uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(ci_logmux_open_streams(f->mux), 1);
    close(go[1]); /* grandchild wakes (EOF), writes, exits */
    run_streams(f);
    char *out = slurp(f->out, NULL);
    assert_string_equal(out, "g | early\ng | late\n");
    free(out);
}

static void close_drains_and_frees(void **state)
{
    struct fixture *f = *state;
    int a[2], b[2];
    open_stream(f, "a", a);
    open_stream(f, "b", b);
    write_str(a[0], "one\ntwo");
    write_str(b[1], "three");
    /* Nothing read yet; writers still open. */
    ci_logmux_close(f->mux);
    f->mux = NULL;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    char *out = slurp(f->out, NULL), *err = slurp(f->err, NULL);
    assert_string_equal(out, "a | one\na | two\n");
    assert_string_equal(err, "b | three\n");
    free(out);
    free(err);
    for (int i = 0; i < 2; i++) {
        close(a[i]);
        close(b[i]);
    }
    /* teardown asserts uv_loop_close() == 0 */
}

static void close_without_streams(void **state)
{
    struct fixture *f = *state;
    int fds[2];
    assert_int_equal(ci_logmux_new(&f->loop, f->out, f->err, false, &f->mux), 0);
    assert_int_equal(ci_logmux_open_streams(f->mux), 0);
    ci_logmux_close(f->mux);
    f->mux = NULL;
    /* Opening after close is refused: a fresh mux shows it without leaking. */
    ci_logmux_t *m;
    assert_int_equal(ci_logmux_new(&f->loop, f->out, f->err, false, &m), 0);
    assert_int_equal(ci_logstream_open(m, "x", fds, NULL), 0);
    close(fds[0]);
    close(fds[1]);
    ci_logmux_close(m);
    assert_int_equal(ci_logstream_open(m, "y", fds, NULL), -ESHUTDOWN);
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

/* The output fd is a non-blocking pipe drained slowly by a thread: writes
 * hit EAGAIN and must wait with poll() instead of dropping output. */
struct drainer {
    int fd;
    char *buf;
    size_t len, cap;
};

static void *drain_thread(void *arg)
{
    struct drainer *d = arg;
    for (;;) {
        if (d->cap - d->len < 4096) {
            d->cap *= 2;
            d->buf = realloc(d->buf, d->cap);
            if (!d->buf) abort();
        }
        ssize_t n = read(d->fd, d->buf + d->len, 4096);
        if (n == 0) break;
        if (n > 0) d->len += (size_t)n;
    }
    return NULL;
}

static void nonblocking_output(void **state)
{
    struct fixture *f = *state;
    int outp[2], fds[2];
    pthread_t th;
    struct drainer d = {.cap = 1 << 16};
    size_t n = 1024 * 1024;
    char *line = pattern(n + 1);
    line[n] = '\n';

    assert_int_equal(pipe2(outp, O_CLOEXEC | O_NONBLOCK), 0);
    d.fd = outp[0];
    d.buf = malloc(d.cap);
    assert_non_null(d.buf);
    fcntl(outp[0], F_SETFL, 0); /* the reader side blocks */
    assert_int_equal(pthread_create(&th, NULL, drain_thread, &d), 0);
    assert_int_equal(ci_logmux_new(&f->loop, outp[1], f->err, false, &f->mux), 0);
    assert_int_equal(ci_logstream_open(f->mux, "nb", fds, NULL), 0);
    close(fds[1]);
    pid_t pid = spawn_writer(fds[0], line, n + 1);
    run_streams(f);
    reap(pid);
    close(outp[1]);
    assert_int_equal(pthread_join(th, NULL), 0);
    close(outp[0]);
    assert_int_equal(d.len, 5 + n + 1);
    assert_memory_equal(d.buf, "nb | ", 5);
    assert_memory_equal(d.buf + 5, line, n + 1);
    free(d.buf);
    free(line);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(interleaved_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(partial_final_line, setup, teardown),
        cmocka_unit_test_setup_teardown(megabyte_line_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(huge_line_split, setup, teardown),
        cmocka_unit_test_setup_teardown(buffer_shrinks_after_long_line, setup, teardown),
        cmocka_unit_test_setup_teardown(padding, setup, teardown),
        cmocka_unit_test_setup_teardown(timestamps, setup, teardown),
        cmocka_unit_test_setup_teardown(grandchild_keeps_stream_open, setup, teardown),
        cmocka_unit_test_setup_teardown(close_drains_and_frees, setup, teardown),
        cmocka_unit_test_setup_teardown(close_without_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(nonblocking_output, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
