/* outq: the init's writes to its own stdout and stderr, done by one writer
 * thread, so that a reader that stops reading (a paused terminal, a full
 * pipe) never blocks the event loop: reaping, signals and `docker stop` go
 * on. Producers are told when the queue is over its high-water mark and
 * should stop reading their sources (backpressure, not loss). Order is
 * kept across both fds. */
#ifndef CHROMA_INIT_OUTQ_H
#define CHROMA_INIT_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <uv.h>

#define CI_OUTQ_HIGH (1024u * 1024u) /* pause producers above this many bytes */
#define CI_OUTQ_LOW (256u * 1024u)   /* resume them below this */

/* Starts the writer thread; on_drain(data) runs on the loop whenever the
 * queue falls below CI_OUTQ_LOW after having been over CI_OUTQ_HIGH.
 * Returns 0 or a negative errno (then writes stay direct). */
int ci_outq_start(uv_loop_t *loop, void (*on_drain)(void *), void *data);

bool ci_outq_running(void);

/* Queues the iovecs as one write to fd (copied). Returns true when the
 * queue is over CI_OUTQ_HIGH. Without a running queue, or when memory runs
 * out, writes directly (blocking). */
bool ci_outq_writev(int fd, const struct iovec *iov, int cnt);

/* Stops accepting, waits up to timeout_ms for the queue to be written, then
 * stops the thread; what a stalled reader never took is dropped and its
 * size returned. The loop's async handle is closed (call before closing the
 * loop). Afterwards writes are direct again. */
size_t ci_outq_stop(uint64_t timeout_ms);

/* Blocking writev of every byte (EINTR, partial writes, EAGAIN waited out
 * with poll). Returns 0 or a negative errno. iov is modified. */
int ci_write_all(int fd, struct iovec *iov, int cnt);

#endif
