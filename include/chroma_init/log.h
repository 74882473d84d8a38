/* log: the init's own events, on stderr, as text or JSON lines.
 *
 *   text: chroma-init: chromadb: started, pid 42
 *   json: {"ts":"2026-11-27T06:10:22.123Z","level":"info","service":"chromadb",
 *          "event":"started","pid":42,"msg":"started, pid 42"}
 */
#ifndef CHROMA_INIT_LOG_H
#define CHROMA_INIT_LOG_H

#include <stdbool.h>
#include <sys/types.h>

#include "chroma_init/config.h"

typedef enum ci_log_level {
    CI_LOG_DEBUG = 0,
    CI_LOG_INFO,
    CI_LOG_WARN,
    CI_LOG_ERROR,
} ci_log_level_t;

/* Sets the format, whether debug events are shown, and whether info events are
 * shown at all (quiet: tini-style `--` mode shows only warnings and errors). */
void ci_log_setup(ci_log_format_t format, bool verbose, bool quiet);

/* Whether debug events are shown: lets a hot path skip building one. */
bool ci_log_debug_enabled(void);

/* One event. service may be NULL (the init itself); event is a short
 * machine-readable name ("started", "exited", "healthy"...); pid < 0 = none.
 * Extra JSON fields may be given as a NULL-terminated list of key, value
 * string pairs after the format arguments are rendered: use ci_log_eventf for
 * the plain case. */
void ci_log_eventf(ci_log_level_t level, const char *service, const char *event, pid_t pid,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* strerror(err) with a lower-case first letter ("no such file or directory"),
 * as s6 words its messages. Thread-local static storage. */
const char *ci_strerror(int err);

#endif
