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

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
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
        off += strftime(line, sizeof line, "{\"ts\":\"%Y-%m-%dT%H:%M:%S", &tm);
        /* mono_us: a monotonic timestamp, for ordering and timing events. */
        off +=
            (size_t)snprintf(line + off, sizeof line - off,
                             ".%03ldZ\",\"mono_us\":%llu,\"level\":\"%s\"", (long)tv.tv_usec / 1000,
                             (unsigned long long)mono.tv_sec * 1000000ull +
                                 (unsigned long long)mono.tv_nsec / 1000ull,
                             level_name(level));
        if (service) {
            off += (size_t)snprintf(line + off, sizeof line - off, ",\"service\":\"");
            json_escape(line, sizeof line, &off, service);
            line[off++] = '"';
        }
        off += (size_t)snprintf(line + off, sizeof line - off, ",\"event\":\"");
        json_escape(line, sizeof line, &off, event);
        line[off++] = '"';
        if (pid > 0) off += (size_t)snprintf(line + off, sizeof line - off, ",\"pid\":%d", pid);
        off += (size_t)snprintf(line + off, sizeof line - off, ",\"msg\":\"");
        json_escape(line, sizeof line, &off, msg);
        if (off + 3 > sizeof line) off = sizeof line - 3;
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
    write_all(STDERR_FILENO, line, off);
}

const char *ci_strerror(int err)
{
    static __thread char buf[128];
    snprintf(buf, sizeof buf, "%s", strerror(err < 0 ? -err : err));
    if (buf[0] >= 'A' && buf[0] <= 'Z' && buf[1] >= 'a' && buf[1] <= 'z')
        buf[0] = (char)(buf[0] + 32);
    return buf;
}
