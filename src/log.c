/* log: the init's own events on stderr (text or JSON lines). One write(2) per
 * event so lines never interleave with service output. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "chroma_init/log.h"
#include "chroma_init/outq.h"

static ci_log_format_t log_format = CI_LOG_TEXT;
static bool log_verbose;
static bool log_quiet;

void ci_log_setup(ci_log_format_t format, bool verbose, bool quiet)
{
    log_format = format;
    log_verbose = verbose;
    log_quiet = quiet;
}

static const char *level_name(ci_log_level_t level)
{
    switch (level) {
    case CI_LOG_DEBUG:
        return "debug";
    case CI_LOG_INFO:
        return "info";
    case CI_LOG_WARN:
        return "warning";
    case CI_LOG_ERROR:
        return "error";
    }
    return "info";
}

/* Appends s JSON-escaped to buf at *off (bounded). */
static void json_escape(char *buf, size_t size, size_t *off, const char *s)
{
    for (; *s && *off + 8 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[(*off)++] = '\\';
            buf[(*off)++] = (char)c;
        } else if (c == '\n') {
            buf[(*off)++] = '\\';
            buf[(*off)++] = 'n';
        } else if (c < 0x20) {
            *off += (size_t)snprintf(buf + *off, size - *off, "\\u%04x", c);
        } else {
            buf[(*off)++] = (char)c;
        }
    }
}

/* Appends to buf (capacity size) at *off; never past size - 1. */
__attribute__((format(printf, 4, 5))) static void appendf(char *buf, size_t size, size_t *off,
                                                          const char *fmt, ...)
{
    if (*off + 1 >= size) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *off, size - *off, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    *off += (size_t)n < size - *off - 1 ? (size_t)n : size - *off - 1;
}

bool ci_log_debug_enabled(void)
{
    return log_verbose;
}

void ci_log_eventf(ci_log_level_t level, const char *service, const char *event, pid_t pid,
                   const char *fmt, ...)
{
    if (level == CI_LOG_DEBUG && !log_verbose) return;
    if (level == CI_LOG_INFO && log_quiet && !log_verbose) return;

    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    char line[4096];
    size_t off = 0;
    if (log_format == CI_LOG_JSON) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        struct timespec mono;
        clock_gettime(CLOCK_MONOTONIC, &mono);
        /* Everything is appended within the line minus a tail reserved for
         * the closing `"}\n`: a long name or message is cut, never overrun. */
        const size_t lim = sizeof line - 8;
        off += strftime(line, lim, "{\"ts\":\"%Y-%m-%dT%H:%M:%S", &tm);
        /* mono_us: a monotonic timestamp, for ordering and timing events. */
        appendf(line, lim, &off, ".%03ldZ\",\"mono_us\":%llu,\"level\":\"%s\"",
                (long)tv.tv_usec / 1000,
                (unsigned long long)mono.tv_sec * 1000000ull +
                    (unsigned long long)mono.tv_nsec / 1000ull,
                level_name(level));
        if (service) {
            appendf(line, lim, &off, ",\"service\":\"");
            json_escape(line, lim, &off, service);
            appendf(line, lim, &off, "\"");
        }
        appendf(line, lim, &off, ",\"event\":\"");
        json_escape(line, lim, &off, event);
        appendf(line, lim, &off, "\"");
        if (pid > 0) appendf(line, lim, &off, ",\"pid\":%d", pid);
        appendf(line, lim, &off, ",\"msg\":\"");
        json_escape(line, lim, &off, msg);
        line[off++] = '"';
        line[off++] = '}';
        line[off++] = '\n';
    } else {
        const char *lv =
            level >= CI_LOG_WARN ? (level == CI_LOG_ERROR ? "error: " : "warning: ") : "";
        int n = snprintf(line, sizeof line - 1, "chroma-init: %s%s%s%s\n", service ? service : "",
                         service ? ": " : "", lv, msg);
        if (n < 0) return;
        off = (size_t)n < sizeof line - 1 ? (size_t)n : sizeof line - 2;
        if (line[off - 1] != '\n') line[off++] = '\n';
    }
    struct iovec iov = {.iov_base = line, .iov_len = off};
    if (ci_outq_running())
        (void)ci_outq_writev(STDERR_FILENO, &iov, 1);
    else
        (void)ci_write_all(STDERR_FILENO, &iov, 1);
}

const char *ci_strerror(int err)
{
    static __thread char buf[128];
    snprintf(buf, sizeof buf, "%s", strerror(err < 0 ? -err : err));
    if (buf[0] >= 'A' && buf[0] <= 'Z' && buf[1] >= 'a' && buf[1] <= 'z')
        buf[0] = (char)(buf[0] + 32);
    return buf;
}
