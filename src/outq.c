/* outq: a writer thread for the init's stdout and stderr (see outq.h). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chroma_init/outq.h"

struct chunk {
    struct chunk *next;
    int fd;
    size_t len;
    char data[];
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake;    /* writer: something to write, or stop */
    pthread_cond_t drained; /* stop(): the queue is empty */
    pthread_t thread;
    bool running;
    bool stopping;
    bool over;     /* went over HIGH: notify when under LOW */
    bool async_ok; /* the async handle may be used */
    struct chunk *head, *tail;
    size_t bytes;
    uv_async_t async;
    void (*on_drain)(void *);
    void *data;
} q = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .wake = PTHREAD_COND_INITIALIZER,
       .drained = PTHREAD_COND_INITIALIZER};

int ci_write_all(int fd, struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        ssize_t n = writev(fd, iov, cnt);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                if (poll(&p, 1, -1) < 0 && errno != EINTR) return -errno;
                continue;
            }
            return -errno;
        }
        while (cnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

static void *writer(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&q.mu);
    for (;;) {
        while (!q.head && !q.stopping) pthread_cond_wait(&q.wake, &q.mu);
        if (!q.head) break; /* stopping and empty */
        struct chunk *c = q.head;
        pthread_mutex_unlock(&q.mu);
        struct iovec iov = {.iov_base = c->data, .iov_len = c->len};
        (void)ci_write_all(c->fd, &iov, 1);
        pthread_mutex_lock(&q.mu);
        q.head = c->next;
        if (!q.head) q.tail = NULL;
        q.bytes -= c->len;
        free(c);
        if (q.over && q.bytes < CI_OUTQ_LOW) {
            q.over = false;
            if (q.async_ok) uv_async_send(&q.async);
        }
        if (!q.head) pthread_cond_broadcast(&q.drained);
    }
    pthread_cond_broadcast(&q.drained);
    pthread_mutex_unlock(&q.mu);
    return NULL;
}

static void async_cb(uv_async_t *h)
{
    (void)h;
    if (q.on_drain) q.on_drain(q.data);
}

int ci_outq_start(uv_loop_t *loop, void (*on_drain)(void *), void *data)
{
    if (q.running) return -EALREADY;
    int r = uv_async_init(loop, &q.async, async_cb);
    if (r < 0) return r;
    q.on_drain = on_drain;
    q.data = data;
    q.stopping = false;
    q.async_ok = true;
    r = pthread_create(&q.thread, NULL, writer, NULL);
    if (r != 0) {
        q.async_ok = false;
        uv_close((uv_handle_t *)&q.async, NULL);
        return -r;
    }
    q.running = true;
    return 0;
}

bool ci_outq_running(void)
{
    return q.running;
}

bool ci_outq_writev(int fd, const struct iovec *iov, int cnt)
{
    size_t len = 0;
    for (int i = 0; i < cnt; i++) len += iov[i].iov_len;
    struct chunk *c = q.running ? malloc(sizeof *c + len) : NULL;
    if (!c) {
        struct iovec copy[8];
        int n = cnt < 8 ? cnt : 8;
        memcpy(copy, iov, sizeof copy[0] * (size_t)n);
        (void)ci_write_all(fd, copy, n);
        return false;
    }
    c->next = NULL;
    c->fd = fd;
    c->len = len;
    size_t off = 0;
    for (int i = 0; i < cnt; i++) {
        memcpy(c->data + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    pthread_mutex_lock(&q.mu);
    if (q.tail)
        q.tail->next = c;
    else
        q.head = c;
    q.tail = c;
    q.bytes += len;
    bool over = q.bytes > CI_OUTQ_HIGH;
    if (over) q.over = true;
    pthread_cond_signal(&q.wake);
    pthread_mutex_unlock(&q.mu);
    return over;
}

size_t ci_outq_stop(uint64_t timeout_ms)
{
    if (!q.running) return 0;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += (time_t)(timeout_ms / 1000);
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&q.mu);
    q.async_ok = false;
    q.stopping = true;
    pthread_cond_signal(&q.wake);
    int r = 0;
    while (q.head && r != ETIMEDOUT) r = pthread_cond_timedwait(&q.drained, &q.mu, &deadline);
    size_t dropped = q.bytes;
    bool stuck = q.head != NULL;
    pthread_mutex_unlock(&q.mu);
    q.running = false;
    if (stuck) {
        /* The thread is blocked in write(2) on a reader that went away:
         * leave it; the process is about to exit. */
        pthread_detach(q.thread);
    } else {
        pthread_join(q.thread, NULL);
    }
    uv_close((uv_handle_t *)&q.async, NULL);
    return dropped;
}
