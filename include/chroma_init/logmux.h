/* logmux: the services' stdout and stderr, line by line, behind a prefix.
 *
 * Each run of a service gets a stream: two pipes whose write ends become the
 * child's fds 1 and 2. The init reads the read ends on its loop and writes
 * every line as `name     | line` (names padded to one width, like docker
 * compose) to its own stdout or stderr, with one write(2)/writev(2) per line
 * so lines of different services never interleave mid-line.
 *
 * Nothing is lost: a final line without a newline is flushed at EOF with one
 * added; a line grows the stream's buffer up to CI_LOGMUX_MAX_LINE bytes and
 * arrives whole; longer lines are cut into pieces of that size, each with its
 * own prefix. After a long line the buffer shrinks back to its base size.
 *
 * The output fds are written with blocking semantics: EINTR and partial
 * writes are retried, EAGAIN on a non-blocking fd waits with poll(). The
 * process must ignore SIGPIPE (the supervisor does) or a closed stdout kills
 * it. */
#ifndef CHROMA_INIT_LOGMUX_H
#define CHROMA_INIT_LOGMUX_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

/* Longest line written in one piece (bytes, without the newline). */
#define CI_LOGMUX_MAX_LINE (4u * 1024u * 1024u)

typedef struct ci_logmux ci_logmux_t;
typedef struct ci_logstream ci_logstream_t;

/* out_fd and err_fd are borrowed (normally 1 and 2); the mux never closes
 * them. timestamps: prefix each line with an RFC 3339 UTC time with
 * milliseconds (`2024-05-01T12:00:00.123Z `), before the name. On success
 * *out is the new mux, released by ci_logmux_close(). Returns 0 or -ENOMEM. */
int ci_logmux_new(uv_loop_t *loop, int out_fd, int err_fd, bool timestamps, ci_logmux_t **out);

/* The width names are padded to (longer names are shown whole). Applies to
 * lines written from now on, for every stream. */
void ci_logmux_set_width(ci_logmux_t *mux, size_t width);

/* Opens a stream for one run of a service: two pipes (O_CLOEXEC).
 * child_fds[0] and child_fds[1] receive the write ends for the child's stdout
 * and stderr: the caller dup2()s them onto 1 and 2 in the child and close()s
 * both in the parent right after fork (the caller owns them). prefix is
 * copied; NULL means no name column at all (lines are shown raw, timestamps
 * still apply). The stream reads until EOF on both pipes (every writer
 * closed, grandchildren included), flushes a final partial line and frees
 * itself. *out (may be NULL) identifies the stream but is only valid until
 * then. Returns 0 or a negative errno (-ESHUTDOWN after ci_logmux_close);
 * on error child_fds is untouched and nothing is left open. */
int ci_logstream_open(ci_logmux_t *mux, const char *prefix, int child_fds[2], ci_logstream_t **out);

/* Streams not yet freed (still reading, or closing). */
size_t ci_logmux_open_streams(const ci_logmux_t *mux);

/* At exit: reads whatever is readable now without blocking, flushes partial
 * lines and closes every handle. Memory is released in close callbacks: after
 * uv_run() returns nothing of the mux remains (the mux itself is freed with
 * its last handle, or at once if no stream is open). mux is invalid after
 * this call. */
void ci_logmux_close(ci_logmux_t *mux);

/* Reads and shows what stream's pipes hold right now, without blocking
 * (its process has exited: its last lines come before the exit is
 * reported). A stream already closed and freed is ignored: stream is only
 * compared, never dereferenced, unless it is still open. */
void ci_logstream_drain(ci_logmux_t *mux, ci_logstream_t *stream);

/* Stops (pause) or resumes reading every stream: backpressure from the
 * output queue (outq.h). Streams opened while paused start paused. */
void ci_logmux_pause(ci_logmux_t *mux, bool pause);

#endif
