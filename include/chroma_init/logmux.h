/* logmux: service output, line by line, prefixed. (Interface; the
 * implementation lands with the logmux module.) */
#ifndef CHROMA_INIT_LOGMUX_H
#define CHROMA_INIT_LOGMUX_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

typedef struct ci_logmux ci_logmux_t;
typedef struct ci_logstream ci_logstream_t;

int ci_logmux_new(uv_loop_t *loop, int out_fd, int err_fd, bool timestamps, ci_logmux_t **out);
void ci_logmux_set_width(ci_logmux_t *mux, size_t width);
int ci_logstream_open(ci_logmux_t *mux, const char *prefix, int child_fds[2],
                      ci_logstream_t **out);
size_t ci_logmux_open_streams(const ci_logmux_t *mux);
void ci_logmux_close(ci_logmux_t *mux);

#endif
