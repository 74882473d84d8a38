/* logmux: the services' output, read from pipes and written line by line
 * behind a padded name. See logmux.h for the contract. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "chroma_init/logmux.h"
#include "chroma_init/outq.h"
#include "chroma_init/util.h"

/* Per-pipe buffer: mmap'd so that shrinking after a long line gives the pages
 * back to the kernel at once (malloc would keep them in its arena). */
#define BUF_BASE (64u * 1024u)
#define BUF_MAX (CI_LOGMUX_MAX_LINE + 4096u) /* a whole max line plus its newline */
#define MIN_FREE (16u * 1024u)               /* grow when less room than this is left */

struct half {
    uv_pipe_t pipe;
    ci_logstream_t *stream; /* owner */
    int idx;                /* 0 stdout, 1 stderr */
    bool done;              /* EOF seen, handle closing */
    char *buf;              /* mmap'd, cap bytes; no '\n' in [0, len) between reads */
    size_t len;
    size_t cap;
};

struct ci_logstream {
    ci_logmux_t *mux;
    ci_logstream_t *prev, *next;
    char *prefix; /* owned; NULL: no name column */
    size_t prefix_len;
    int live; /* handles not yet closed */
    struct half half[2];
};

struct ci_logmux {
    uv_loop_t *loop;
    int fds[2]; /* borrowed: out, err */
    bool timestamps;
    bool closing;
    bool paused; /* reading stopped: the output queue is full */
    size_t width;
    size_t nstreams;
    ci_logstream_t *streams; /* list of streams not yet freed */
};

static const char spaces[128] = "                                                                "
                                "                                                                ";

/* One output line: [time ][name<pad> | ]data\n in a single writev. */
static void emit(struct half *h, const char *data, size_t n)
{
    ci_logstream_t *s = h->stream;
    ci_logmux_t *mux = s->mux;
    char ts[48];
    struct iovec iov[6];
    int cnt = 0;

    if (mux->timestamps) {
        struct timespec now;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        int len = snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ",
                           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                           tm.tm_sec, now.tv_nsec / 1000000L);
        if (len > 0 && (size_t)len < sizeof(ts))
            iov[cnt++] = (struct iovec){.iov_base = ts, .iov_len = (size_t)len};
    }
    if (s->prefix) {
        size_t pad = mux->width > s->prefix_len ? mux->width - s->prefix_len : 0;
        if (pad > sizeof(spaces)) pad = sizeof(spaces);
        iov[cnt++] = (struct iovec){.iov_base = s->prefix, .iov_len = s->prefix_len};
        iov[cnt++] = (struct iovec){.iov_base = (void *)spaces, .iov_len = pad};
        iov[cnt++] = (struct iovec){.iov_base = (void *)" | ", .iov_len = 3};
    }
    iov[cnt++] = (struct iovec){.iov_base = (void *)data, .iov_len = n};
    iov[cnt++] = (struct iovec){.iov_base = (void *)"\n", .iov_len = 1};
    if (!ci_outq_running()) {
        (void)ci_write_all(mux->fds[h->idx], iov, cnt);
        return;
    }
    /* Over the high-water mark: stop reading the services until the writer
     * has caught up (they block on their pipes, as under Docker). */
    if (ci_outq_writev(mux->fds[h->idx], iov, cnt) && !mux->paused) ci_logmux_pause(mux, true);
}

static int buf_resize(struct half *h, size_t cap)
{
    void *p = mremap(h->buf, h->cap, cap, MREMAP_MAYMOVE);
    if (p == MAP_FAILED) return -errno;
    h->buf = p;
    h->cap = cap;
    return 0;
}

/* Makes room for the next read: grows the buffer up to BUF_MAX; if it cannot
 * grow and is full, the partial line goes out as a piece rather than lost. */
static void ensure_space(struct half *h)
{
    if (h->cap - h->len >= MIN_FREE || h->cap >= BUF_MAX) {
        if (h->len < h->cap) return;
    } else {
        size_t cap = h->cap * 2 > BUF_MAX ? BUF_MAX : h->cap * 2;
        if (buf_resize(h, cap) == 0 || h->len < h->cap) return;
    }
    emit(h, h->buf, h->len);
    h->len = 0;
}

/* n new bytes were appended at buf + len: writes the complete lines, cuts
 * over-long ones, keeps the partial rest at the start of the buffer. */
static void consume(struct half *h, size_t n)
{
    size_t start = 0, scan = h->len, end = h->len + n;
    char *nl;

    while (scan < end && (nl = memchr(h->buf + scan, '\n', end - scan)) != NULL) {
        size_t pos = (size_t)(nl - h->buf);
        emit(h, h->buf + start, pos - start);
        start = scan = pos + 1;
    }
    while (end - start > CI_LOGMUX_MAX_LINE) {
        emit(h, h->buf + start, CI_LOGMUX_MAX_LINE);
        start += CI_LOGMUX_MAX_LINE;
    }
    h->len = end - start;
    if (start > 0 && h->len > 0) memmove(h->buf, h->buf + start, h->len);
    if (h->cap > BUF_BASE && h->len <= BUF_BASE / 2) (void)buf_resize(h, BUF_BASE);
}

static void stream_free(ci_logstream_t *s)
{
    ci_logmux_t *mux = s->mux;

    if (s->prev)
        s->prev->next = s->next;
    else
        mux->streams = s->next;
    if (s->next) s->next->prev = s->prev;
    for (int i = 0; i < 2; i++)
        if (s->half[i].buf) munmap(s->half[i].buf, s->half[i].cap);
    free(s->prefix);
    free(s);
    mux->nstreams--;
    if (mux->closing && mux->nstreams == 0) free(mux);
}

static void on_close(uv_handle_t *handle)
{
    struct half *h = ci_container_of(handle, struct half, pipe);
    ci_logstream_t *s = h->stream;
    if (--s->live == 0) stream_free(s);
}

/* EOF (or a read error, treated as EOF): the partial line goes out with a
 * newline added, and the handle is closed. */
static void finish(struct half *h)
{
    if (h->done) return;
    h->done = true;
    if (h->len > 0) emit(h, h->buf, h->len);
    h->len = 0;
    uv_read_stop((uv_stream_t *)&h->pipe);
    uv_close((uv_handle_t *)&h->pipe, on_close);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);

void ci_logmux_pause(ci_logmux_t *mux, bool pause)
{
    mux->paused = pause;
    for (ci_logstream_t *s = mux->streams; s; s = s->next)
        for (int i = 0; i < 2; i++) {
            struct half *h = &s->half[i];
            if (h->done) continue;
            if (pause)
                uv_read_stop((uv_stream_t *)&h->pipe);
            else
                uv_read_start((uv_stream_t *)&h->pipe, on_alloc, on_read);
        }
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct half *h = ci_container_of(handle, struct half, pipe);
    (void)suggested;
    ensure_space(h);
    *buf = uv_buf_init(h->buf + h->len, (unsigned int)(h->cap - h->len));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct half *h = ci_container_of(stream, struct half, pipe);
    (void)buf;
    if (nread > 0)
        consume(h, (size_t)nread);
    else if (nread < 0)
        finish(h);
}

int ci_logmux_new(uv_loop_t *loop, int out_fd, int err_fd, bool timestamps, ci_logmux_t **out)
{
    ci_logmux_t *mux = calloc(1, sizeof(*mux));
    if (!mux) return -ENOMEM;
    mux->loop = loop;
    mux->fds[0] = out_fd;
    mux->fds[1] = err_fd;
    mux->timestamps = timestamps;
    *out = mux;
    return 0;
}

void ci_logmux_set_width(ci_logmux_t *mux, size_t width)
{
    mux->width = width;
}

size_t ci_logmux_open_streams(const ci_logmux_t *mux)
{
    return mux->nstreams;
}

int ci_logstream_open(ci_logmux_t *mux, const char *prefix, int child_fds[2], ci_logstream_t **out)
{
    ci_logstream_t *s = NULL;
    int p[2][2] = {{-1, -1}, {-1, -1}};
    bool owned[2] = {false, false};
    int err, i;

    if (mux->closing) return -ESHUTDOWN;
    s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    s->mux = mux;
    if (prefix) {
        s->prefix = strdup(prefix);
        if (!s->prefix) {
            err = -ENOMEM;
            goto fail;
        }
        s->prefix_len = strlen(prefix);
    }
    for (i = 0; i < 2; i++) {
        struct half *h = &s->half[i];
        h->stream = s;
        h->idx = i;
        h->buf = mmap(NULL, BUF_BASE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (h->buf == MAP_FAILED) {
            h->buf = NULL;
            err = -ENOMEM;
            goto fail;
        }
        h->cap = BUF_BASE;
        if (pipe2(p[i], O_CLOEXEC) < 0) {
            err = -errno;
            goto fail;
        }
    }
    /* From here on the stream is live: errors close its handles and it frees
     * itself in on_close. (uv_pipe_init cannot fail on Unix.) */
    for (i = 0; i < 2; i++) uv_pipe_init(mux->loop, &s->half[i].pipe, 0);
    s->live = 2;
    s->next = mux->streams;
    if (s->next) s->next->prev = s;
    mux->streams = s;
    mux->nstreams++;
    for (i = 0; i < 2; i++) {
        err = uv_pipe_open(&s->half[i].pipe, p[i][0]);
        if (err < 0) goto fail_live;
        owned[i] = true;
        if (!mux->paused) {
            err = uv_read_start((uv_stream_t *)&s->half[i].pipe, on_alloc, on_read);
            if (err < 0) goto fail_live;
        }
    }
    child_fds[0] = p[0][1];
    child_fds[1] = p[1][1];
    if (out) *out = s;
    return 0;

fail_live:
    for (i = 0; i < 2; i++) {
        if (!owned[i]) close(p[i][0]);
        close(p[i][1]);
        s->half[i].done = true;
        uv_read_stop((uv_stream_t *)&s->half[i].pipe);
        uv_close((uv_handle_t *)&s->half[i].pipe, on_close);
    }
    return err;

fail:
    for (i = 0; i < 2; i++) {
        if (p[i][0] >= 0) close(p[i][0]);
        if (p[i][1] >= 0) close(p[i][1]);
        if (s->half[i].buf) munmap(s->half[i].buf, s->half[i].cap);
    }
    free(s->prefix);
    free(s);
    return err;
}

/* Reads what the pipe holds right now (FIONREAD bytes at most, so a busy
 * writer cannot keep us here), without blocking. */
static void drain(struct half *h)
{
    int fd = -1, avail = 0;
    size_t left;

    if (uv_fileno((uv_handle_t *)&h->pipe, &fd) < 0) return;
    if (ioctl(fd, FIONREAD, &avail) < 0 || avail <= 0) return;
    left = (size_t)avail;
    while (left > 0) {
        ensure_space(h);
        size_t room = h->cap - h->len;
        ssize_t n = read(fd, h->buf + h->len, room < left ? room : left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        consume(h, (size_t)n);
        left -= (size_t)n;
    }
}

void ci_logstream_drain(ci_logmux_t *mux, ci_logstream_t *stream)
{
    for (ci_logstream_t *s = mux->streams; s; s = s->next) {
        if (s != stream) continue; /* still open: not freed at EOF meanwhile */
        for (int i = 0; i < 2; i++)
            if (!s->half[i].done) drain(&s->half[i]);
        return;
    }
}

void ci_logmux_close(ci_logmux_t *mux)
{
    mux->closing = true;
    for (ci_logstream_t *s = mux->streams; s; s = s->next) {
        for (int i = 0; i < 2; i++) {
            struct half *h = &s->half[i];
            if (h->done) continue;
            uv_read_stop((uv_stream_t *)&h->pipe);
            drain(h);
            finish(h);
        }
    }
    if (mux->nstreams == 0) free(mux);
}
