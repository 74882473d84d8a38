/* ctl: the control socket (`ctl.sock` in state_dir) and the stops remembered
 * for `unless-stopped` (`stopped.json` in state_dir).
 *
 * Newline-delimited JSON: one request per line, one reply line per request.
 * Each client owns one line buffer that grows to at most CTL_LINE_MAX and a
 * bounded write queue (reading pauses while it is full), so no client can make
 * the init grow without bound. Nothing a client does is fatal to the init. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chroma_init/log.h"
#include "chroma_init/util.h"
#include "ctl_proto.h"
#include "chroma_init/outq.h"
#include "sup_internal.h"

#define CTL_LINE_MAX (64u * 1024u) /* a request line, without its newline */
#define CTL_BUF_MAX (CTL_LINE_MAX + 1u)
#define CTL_BUF_INIT 1024u        /* a client starts with this, grows by doubling */
#define CTL_BUF_MIN_READ 512u     /* grow when less room than this is left */
#define CTL_WQ_MAX (256u * 1024u) /* pending reply bytes before reading pauses */
#define CTL_MAX_CLIENTS 256u

typedef struct ctl ctl_t;

typedef struct ctl_client {
    uv_pipe_t pipe;
    ctl_t *ctl;
    struct ctl_client *prev, *next;
    char *buf; /* owned; cap bytes, at most CTL_BUF_MAX */
    size_t cap, len;
    unsigned pending; /* write requests in flight */
    bool reading, paused, eof, close_after_write, closing;
} ctl_client_t;

typedef struct ctl_write {
    uv_write_t req;
    ctl_client_t *client;
    size_t len;
    char data[];
} ctl_write_t;

struct ctl {
    ci_sup_t *sup;
    char *dir;
    char *path;         /* the socket, or NULL when not listening */
    char *stopped_path; /* stopped.json */
    bool listening;
    bool server_open;
    dev_t sock_dev;
    ino_t sock_ino;
    uv_pipe_t server;
    ctl_client_t *clients; /* list */
    size_t nclients;
    json_t *stopped; /* array of service names stopped with `ctl stop` */
};

/* ---- remembered stops ---------------------------------------------------- */

static void stopped_load(ctl_t *ctl)
{
    json_error_t jerr;
    ctl->stopped = NULL;
    json_t *root = json_load_file(ctl->stopped_path, JSON_REJECT_DUPLICATES, &jerr);
    if (root) {
        json_t *arr = json_object_get(root, "stopped");
        if (json_is_array(arr)) {
            ctl->stopped = json_array();
            size_t i;
            json_t *v;
            json_array_foreach(arr, i, v)
            {
                if (json_is_string(v)) json_array_append(ctl->stopped, v);
            }
        }
        json_decref(root);
    } else if (access(ctl->stopped_path, F_OK) == 0) {
        ci_log_eventf(CI_LOG_WARN, NULL, "ctl", -1, "ignoring %s: %s", ctl->stopped_path,
                      jerr.text);
    }
    if (!ctl->stopped) ctl->stopped = json_array();
}

static long stopped_find(const ctl_t *ctl, const char *name)
{
    size_t i;
    json_t *v;
    if (!ctl->stopped) return -1;
    json_array_foreach(ctl->stopped, i, v)
    {
        if (!strcmp(json_string_value(v), name)) return (long)i;
    }
    return -1;
}

/* Writes stopped.json atomically: temp file, fsync, rename, fsync of the dir. */
static int stopped_save(ctl_t *ctl)
{
    int rc = 0, fd = -1;
    char *text = NULL;
    char tmp[4096];
    json_t *root = json_pack("{s:O}", "stopped", ctl->stopped);
    if (!root) return -ENOMEM;
    text = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    if (!text) return -ENOMEM;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", ctl->stopped_path) >= sizeof tmp) {
        rc = -ENAMETOOLONG;
        goto fail;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        goto fail;
    }
    struct iovec iov[2] = {{.iov_base = text, .iov_len = strlen(text)},
                           {.iov_base = (void *)"\n", .iov_len = 1}};
    if ((rc = ci_write_all(fd, iov, 2)) < 0) goto fail;
    if (fsync(fd) < 0) {
        rc = -errno;
        goto fail;
    }
    if (close(fd) < 0) {
        fd = -1;
        rc = -errno;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, ctl->stopped_path) < 0) {
        rc = -errno;
        goto fail;
    }
    int dfd = open(ctl->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    free(text);
    return 0;
fail:
    if (fd >= 0) close(fd);
    unlink(tmp);
    free(text);
    return rc;
}

/* Records (stopped=true) or forgets a `ctl stop`. Returns 0 or a negative errno. */
static int stopped_set(ctl_t *ctl, const char *name, bool stopped)
{
    long i = stopped_find(ctl, name);
    if (stopped == (i >= 0)) return 0;
    if (stopped)
        json_array_append_new(ctl->stopped, json_string(name));
    else
        json_array_remove(ctl->stopped, (size_t)i);
    int rc = stopped_save(ctl);
    if (rc < 0)
        ci_log_eventf(CI_LOG_ERROR, name, "ctl", -1, "unable to write %s: %s", ctl->stopped_path,
                      ci_strerror(-rc));
    return rc;
}

bool ci_sup_state_is_stopped(ci_sup_t *sup, const char *name)
{
    ctl_t *ctl = sup->ctl;
    return ctl && stopped_find(ctl, name) >= 0;
}

/* ---- replies ------------------------------------------------------------- */

/* "2026-11-27T06:10:22.123Z" */
static json_t *rfc3339(int64_t unix_ms)
{
    char buf[64];
    struct tm tm;
    time_t t = (time_t)(unix_ms / 1000);
    if (!gmtime_r(&t, &tm)) return json_null();
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%03dZ", (int)(unix_ms % 1000));
    return json_string(buf);
}

static void describe_exit(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exited %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by %s", ci_signal_name(WTERMSIG(status)));
    else
        snprintf(buf, len, "wait status %d", status);
}

static json_t *health_json(const ci_svc_t *svc)
{
    if (svc->conf->healthcheck.kind == CI_HC_NONE) return json_null();
    const ci_health_t *h = &svc->health;
    json_t *log = json_array();
    for (size_t i = 0; i < h->nlog; i++) {
        const ci_health_probe_log_t *e = &h->log[i];
        json_array_append_new(
            log, json_pack("{s:o, s:o, s:i, s:s}", "Start", rfc3339(e->start_unix_ms), "End",
                           rfc3339(e->end_unix_ms), "ExitCode", e->exit_code, "Output", e->output));
    }
    return json_pack("{s:s, s:i, s:o}", "Status", ci_health_status_name(h->status), "FailingStreak",
                     h->failing_streak, "Log", log);
}

static bool svc_alive(const ci_svc_t *svc)
{
    return (svc->state == CI_SVC_RUNNING || svc->state == CI_SVC_STOPPING) && svc->pid > 0;
}

static json_t *svc_json(const ci_svc_t *svc)
{
    char ex[64];
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(svc->conf->name));
    json_object_set_new(o, "state", json_string(ci_svc_state_name(svc->state)));
    json_object_set_new(o, "health", json_string(ci_health_status_name(svc->health.status)));
    json_object_set_new(o, "pid", svc_alive(svc) ? json_integer(svc->pid) : json_null());
    json_object_set_new(o, "uptime_s",
                        svc_alive(svc)
                            ? json_integer((json_int_t)((ci_now_ms() - svc->started_ms) / 1000))
                            : json_null());
    json_object_set_new(o, "restarts", json_integer(svc->restarts));
    if (svc->has_exit) {
        describe_exit(svc->last_status, ex, sizeof ex);
        json_object_set_new(o, "last_exit", json_string(ex));
    } else {
        json_object_set_new(o, "last_exit", json_null());
    }
    json_object_set_new(o, "Health", health_json(svc));
    return o;
}

static json_t *services_json(const ci_sup_t *sup)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < sup->n; i++) json_array_append_new(arr, svc_json(&sup->svcs[i]));
    return arr;
}

/* The first line of s, at most max bytes, into buf. */
static void first_line(const char *s, char *buf, size_t len, size_t max)
{
    size_t n = strcspn(s, "\r\n");
    if (n > max) n = max;
    if (n >= len) n = len - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
}

/* Why svc makes the container unhealthy, into why; false when it does not.
 * Long-running: not a one-shot (certgen, or restart "no" and not running). */
static bool svc_problem(const ci_svc_t *svc, char *why, size_t len)
{
    const ci_service_conf_t *c = svc->conf;
    char ex[64], out[256];
    bool running = svc->state == CI_SVC_RUNNING && svc->pid > 0;
    if (c->is_certgen) return false;
    if (!svc_alive(svc) && c->restart == CI_RESTART_NO) return false; /* a one-shot */
    if (svc->state == CI_SVC_EXITED && svc->has_exit && WIFEXITED(svc->last_status) &&
        WEXITSTATUS(svc->last_status) == 0 && c->restart == CI_RESTART_ON_FAILURE)
        return false; /* on-failure, done */
    if (!running) {
        switch (svc->state) {
        case CI_SVC_BACKOFF:
        case CI_SVC_EXITED:
            describe_exit(svc->last_status, ex, sizeof ex);
            snprintf(why, len, "%s: %s (%s, %d restarts)", c->name, ci_svc_state_name(svc->state),
                     ex, svc->restarts);
            break;
        case CI_SVC_STOPPED:
            snprintf(why, len, "%s: stopped%s", c->name,
                     svc->manual_stop ? " (with `ctl stop`)" : "");
            break;
        case CI_SVC_FAILED:
            snprintf(why, len, "%s: failed%s%s%s", c->name, svc->reason[0] ? " (" : "", svc->reason,
                     svc->reason[0] ? ")" : "");
            break;
        default:
            snprintf(why, len, "%s: %s", c->name, ci_svc_state_name(svc->state));
        }
        return true;
    }
    if (c->healthcheck.kind == CI_HC_NONE || svc->health.status == CI_HEALTH_HEALTHY) return false;
    const ci_health_probe_log_t *last = ci_health_last(&svc->health);
    first_line(last ? last->output : "", out, sizeof out, 200);
    if (svc->health.status == CI_HEALTH_UNHEALTHY)
        snprintf(why, len, "%s: unhealthy (%d failure%s%s%s)", c->name, svc->health.failing_streak,
                 svc->health.failing_streak == 1 ? "" : "s", out[0] ? ": " : "", out);
    else
        snprintf(why, len, "%s: health %s%s%s%s", c->name,
                 ci_health_status_name(svc->health.status), out[0] ? " (" : "", out,
                 out[0] ? ")" : "");
    return true;
}

static json_t *health_reply(const ci_sup_t *sup)
{
    char why[1024];
    json_t *problems = json_array();
    for (size_t i = 0; i < sup->n; i++)
        if (svc_problem(&sup->svcs[i], why, sizeof why))
            json_array_append_new(problems, json_string(why));
    bool healthy = json_array_size(problems) == 0 && !sup->shutting_down;
    if (sup->shutting_down) json_array_insert_new(problems, 0, json_string("the init is stopping"));
    return json_pack("{s:b, s:b, s:o, s:o}", "ok", 1, "healthy", healthy, "problems", problems,
                     "services", services_json(sup));
}

/* {"ok": false, "error": msg} or {"ok": true, "message": msg}. */
static json_t *make_reply(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_t *make_reply(int ok, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return json_pack("{s:b, s:s}", "ok", ok, ok ? "message" : "error", msg);
}

/* Handles one request line; returns the reply (caller owns). *shutdown is
 * set when the init must shut down once the reply is on its way. */
static json_t *handle(ctl_t *ctl, const char *line, size_t len, bool *shutdown)
{
    ci_sup_t *sup = ctl->sup;
    json_error_t jerr;
    char err[512] = "";
    json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *reply = NULL;
    if (!req) return make_reply(0, "invalid request: %s", jerr.text);
    if (!json_is_object(req)) {
        reply = make_reply(0, "invalid request: expected a JSON object");
        goto done;
    }
    const char *cmd = json_string_value(json_object_get(req, "cmd"));
    if (!cmd) {
        reply = make_reply(0, "invalid request: missing \"cmd\"");
        goto done;
    }
    if (!strcmp(cmd, "status")) {
        reply = json_pack("{s:b, s:o}", "ok", 1, "services", services_json(sup));
        goto done;
    }
    if (!strcmp(cmd, "health")) {
        reply = health_reply(sup);
        goto done;
    }
    if (!strcmp(cmd, "shutdown")) {
        *shutdown = true;
        reply = make_reply(1, "shutting down");
        goto done;
    }
    bool is_start = !strcmp(cmd, "start"), is_stop = !strcmp(cmd, "stop");
    bool is_restart = !strcmp(cmd, "restart"), is_signal = !strcmp(cmd, "signal");
    if (!is_start && !is_stop && !is_restart && !is_signal) {
        reply = make_reply(0, "unknown command \"%.100s\"", cmd);
        goto done;
    }
    const char *name = json_string_value(json_object_get(req, "service"));
    if (!name) {
        reply = make_reply(0, "invalid request: missing \"service\"");
        goto done;
    }
    long idx = ci_config_find(sup->cfg, name);
    if (idx < 0) {
        reply = make_reply(0, "unknown service \"%.200s\"", name);
        goto done;
    }
    ci_svc_t *svc = &sup->svcs[idx];
    int rc;
    if (is_signal) {
        json_t *s = json_object_get(req, "signal");
        int sig = -EINVAL;
        if (json_is_string(s))
            sig = ci_signal_parse(json_string_value(s));
        else if (json_is_integer(s) && json_integer_value(s) > 0 && json_integer_value(s) < 65)
            sig = (int)json_integer_value(s);
        if (sig <= 0) {
            reply = make_reply(0, "invalid signal %s",
                               json_is_string(s) ? json_string_value(s) : "(missing)");
            goto done;
        }
        rc = ci_sup_svc_signal(svc, sig, err, sizeof err);
        reply = rc < 0 ? make_reply(0, "%s", err)
                       : make_reply(1, "%s: sent %s", name, ci_signal_name(sig));
        goto done;
    }
    if (is_stop) {
        rc = ci_sup_svc_stop(svc, err, sizeof err);
        if (rc == 0) stopped_set(ctl, name, true);
        reply = rc < 0 ? make_reply(0, "%s", err) : make_reply(1, "%s: stop requested", name);
    } else if (is_start) {
        rc = ci_sup_svc_start(svc, err, sizeof err);
        if (rc == 0) stopped_set(ctl, name, false);
        reply = rc < 0 ? make_reply(0, "%s", err) : make_reply(1, "%s: start requested", name);
    } else {
        rc = ci_sup_svc_restart(svc, err, sizeof err);
        if (rc == 0) stopped_set(ctl, name, false);
        reply = rc < 0 ? make_reply(0, "%s", err) : make_reply(1, "%s: restart requested", name);
    }
done:
    json_decref(req);
    return reply ? reply : make_reply(0, "out of memory");
}

/* ---- clients --------------------------------------------------------------- */

static void client_close_cb(uv_handle_t *h)
{
    ctl_client_t *c = ci_container_of(h, ctl_client_t, pipe);
    free(c->buf);
    free(c);
}

static void client_close(ctl_client_t *c)
{
    if (c->closing) return;
    c->closing = true;
    ctl_t *ctl = c->ctl;
    if (c->prev)
        c->prev->next = c->next;
    else
        ctl->clients = c->next;
    if (c->next) c->next->prev = c->prev;
    ctl->nclients--;
    uv_close((uv_handle_t *)&c->pipe, client_close_cb);
}

static void client_process(ctl_client_t *c);
static void client_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void client_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

static void client_resume(ctl_client_t *c)
{
    if (c->closing || c->eof || c->close_after_write || c->paused || c->reading) return;
    if (uv_read_start((uv_stream_t *)&c->pipe, client_alloc_cb, client_read_cb) == 0)
        c->reading = true;
    else
        client_close(c);
}

static void client_pause(ctl_client_t *c)
{
    if (c->reading) uv_read_stop((uv_stream_t *)&c->pipe);
    c->reading = false;
}

static void write_cb(uv_write_t *req, int status)
{
    ctl_write_t *w = ci_container_of(req, ctl_write_t, req);
    ctl_client_t *c = w->client;
    free(w);
    c->pending--;
    if (c->closing) return;
    if (status < 0) {
        client_close(c);
        return;
    }
    if (c->pending == 0 && (c->close_after_write || c->eof)) {
        /* Requests left in the buffer of an EOF'd client are processed first. */
        if (c->eof && !c->close_after_write && c->len > 0) {
            client_process(c);
            if (c->pending > 0 || c->closing) return;
        }
        client_close(c);
        return;
    }
    if (c->paused && uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) < CTL_WQ_MAX / 2) {
        c->paused = false;
        client_process(c);
        client_resume(c);
    }
}

/* Queues reply (consumed) as one line. */
static void client_send(ctl_client_t *c, json_t *reply)
{
    char *text = json_dumps(reply, JSON_COMPACT);
    json_decref(reply);
    if (!text) {
        client_close(c);
        return;
    }
    size_t n = strlen(text);
    ctl_write_t *w = malloc(sizeof *w + n + 1);
    if (!w) {
        free(text);
        client_close(c);
        return;
    }
    memcpy(w->data, text, n);
    w->data[n] = '\n';
    w->len = n + 1;
    w->client = c;
    free(text);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, write_cb) < 0) {
        free(w);
        client_close(c);
        return;
    }
    c->pending++;
}

/* Sends one last reply and closes once it is written. */
static void client_send_last(ctl_client_t *c, json_t *reply)
{
    client_pause(c);
    c->close_after_write = true;
    c->len = 0;
    client_send(c, reply);
    if (!c->closing && c->pending == 0) client_close(c);
}

/* Handles every complete line in the buffer, unless the write queue is full. */
static void client_process(ctl_client_t *c)
{
    size_t pos = 0;
    while (!c->closing && !c->close_after_write) {
        if (uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) >= CTL_WQ_MAX) {
            c->paused = true;
            client_pause(c);
            break;
        }
        char *start = c->buf + pos;
        size_t avail = c->len - pos;
        char *nl = avail ? memchr(start, '\n', avail) : NULL;
        size_t linelen;
        if (nl) {
            linelen = (size_t)(nl - start);
        } else if (c->eof && avail > 0) {
            linelen = avail; /* the last request, half-closed without a newline */
        } else {
            break;
        }
        size_t consumed = nl ? linelen + 1 : linelen;
        if (linelen > CTL_LINE_MAX) {
            client_send_last(c, make_reply(0, "request too long (over %u bytes)", CTL_LINE_MAX));
            return;
        }
        if (linelen > 0 && start[linelen - 1] == '\r') linelen--;
        bool blank = true;
        for (size_t i = 0; i < linelen && blank; i++) blank = start[i] == ' ' || start[i] == '\t';
        pos += consumed;
        if (blank) continue;
        bool shutdown = false;
        json_t *reply = handle(c->ctl, start, linelen, &shutdown);
        client_send(c, reply);
        if (shutdown && !c->ctl->sup->shutting_down)
            ci_sup_shutdown(c->ctl->sup, "shutdown requested with `ctl shutdown`");
    }
    if (c->closing || c->close_after_write) return;
    if (pos > 0) {
        memmove(c->buf, c->buf + pos, c->len - pos);
        c->len -= pos;
    }
    if (c->len >= CTL_BUF_MAX) /* no newline in a full buffer */
        client_send_last(c, make_reply(0, "request too long (over %u bytes)", CTL_LINE_MAX));
}

static void client_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    ctl_client_t *c = ci_container_of(h, ctl_client_t, pipe);
    (void)suggested;
    if (c->cap - c->len < CTL_BUF_MIN_READ && c->cap < CTL_BUF_MAX) {
        size_t ncap = c->cap ? c->cap * 2 : CTL_BUF_INIT;
        if (ncap > CTL_BUF_MAX) ncap = CTL_BUF_MAX;
        char *nb = realloc(c->buf, ncap);
        if (nb) {
            c->buf = nb;
            c->cap = ncap;
        }
    }
    *buf = uv_buf_init(c->buf ? c->buf + c->len : NULL, (unsigned)(c->cap - c->len));
}

static void client_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    ctl_client_t *c = ci_container_of(s, ctl_client_t, pipe);
    (void)buf;
    if (c->closing) return;
    if (nread > 0) {
        c->len += (size_t)nread;
        client_process(c);
        return;
    }
    if (nread == 0) return;
    if (nread == UV_EOF) {
        client_pause(c);
        c->eof = true;
        client_process(c);
        if (!c->closing && c->pending == 0 && !c->paused) client_close(c);
        return;
    }
    client_close(c); /* ECONNRESET, ENOBUFS... */
}

static bool peer_allowed(ctl_client_t *c, uid_t *uid_out)
{
    uv_os_fd_t fd;
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0) return false;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return false;
    *uid_out = cred.uid;
    return cred.uid == 0 || cred.uid == getuid();
}

static void connection_cb(uv_stream_t *server, int status)
{
    ctl_t *ctl = server->data;
    if (status < 0) {
        ci_log_eventf(CI_LOG_WARN, NULL, "ctl", -1, "accept failed: %s", uv_strerror(status));
        return;
    }
    ctl_client_t *c = calloc(1, sizeof *c);
    if (!c) return;
    c->ctl = ctl;
    uv_pipe_init(ctl->sup->loop, &c->pipe, 0);
    c->next = ctl->clients;
    if (ctl->clients) ctl->clients->prev = c;
    ctl->clients = c;
    ctl->nclients++;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
        client_close(c);
        return;
    }
    uid_t uid = (uid_t)-1;
    if (!peer_allowed(c, &uid)) {
        ci_log_eventf(CI_LOG_WARN, NULL, "ctl", -1,
                      "refused a control connection from uid %ld: permission denied", (long)uid);
        client_send_last(c, make_reply(0, "permission denied"));
        return;
    }
    if (ctl->nclients > CTL_MAX_CLIENTS) {
        client_send_last(c, make_reply(0, "too many clients"));
        return;
    }
    client_resume(c);
}

/* ---- open / close ------------------------------------------------------------ */

static int mkdir_p(const char *dir)
{
    char buf[4096];
    if (strlen(dir) >= sizeof buf) return -ENAMETOOLONG;
    strcpy(buf, dir);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, 0755) < 0 && errno != EEXIST) return -errno;
            *p = saved;
            if (saved == '\0') break;
        }
    }
    struct stat st;
    if (stat(dir, &st) < 0) return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* 0: nothing there or a stale socket removed; -EADDRINUSE: a live init
 * answers; another negative errno: something else is in the way. */
static int clear_stale(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0) return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode)) return -EEXIST;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    int e = errno;
    close(fd);
    if (rc == 0 || e == EAGAIN || e == EINPROGRESS) return -EADDRINUSE;
    if (e == ECONNREFUSED) {
        if (unlink(path) < 0 && errno != ENOENT) return -errno;
        return 0;
    }
    if (e == ENOENT) return 0;
    return -e;
}

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name);
    return p;
}

static void ctl_free(ctl_t *ctl)
{
    json_decref(ctl->stopped);
    free(ctl->dir);
    free(ctl->path);
    free(ctl->stopped_path);
    free(ctl);
}

/* The last close callback: frees the state. */
static void server_close_cb(uv_handle_t *h)
{
    ctl_free(h->data);
}

static void listen_socket(ctl_t *ctl)
{
    int rc = mkdir_p(ctl->dir);
    if (rc < 0) {
        ci_log_eventf(CI_LOG_ERROR, NULL, "ctl", -1,
                      "unable to create %s: %s; running without a control socket", ctl->dir,
                      ci_strerror(-rc));
        return;
    }
    if (strlen(ctl->path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        ci_log_eventf(CI_LOG_ERROR, NULL, "ctl", -1,
                      "control socket path %s is too long; running without a control socket",
                      ctl->path);
        return;
    }
    rc = clear_stale(ctl->path);
    if (rc == -EADDRINUSE) {
        ci_log_eventf(CI_LOG_ERROR, NULL, "ctl", -1,
                      "another init answers on %s; running without a control socket", ctl->path);
        return;
    }
    if (rc < 0) {
        ci_log_eventf(CI_LOG_ERROR, NULL, "ctl", -1,
                      "unable to replace %s: %s; running without a control socket", ctl->path,
                      ci_strerror(-rc));
        return;
    }
    uv_pipe_init(ctl->sup->loop, &ctl->server, 0);
    ctl->server.data = ctl;
    ctl->server_open = true;
    mode_t old = umask(0177);
    rc = uv_pipe_bind(&ctl->server, ctl->path);
    umask(old);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&ctl->server, 128, connection_cb);
    if (rc < 0) {
        ci_log_eventf(CI_LOG_ERROR, NULL, "ctl", -1,
                      "unable to listen on %s: %s; running without a control socket", ctl->path,
                      uv_strerror(rc));
        return;
    }
    struct stat st;
    if (stat(ctl->path, &st) == 0) {
        ctl->sock_dev = st.st_dev;
        ctl->sock_ino = st.st_ino;
    }
    ctl->listening = true;
    ci_log_eventf(CI_LOG_DEBUG, NULL, "ctl", -1, "control socket on %s", ctl->path);
}

void ci_sup_ctl_open(ci_sup_t *sup)
{
    if (!sup->cfg || !sup->cfg->state_dir || !*sup->cfg->state_dir) return;
    ctl_t *ctl = calloc(1, sizeof *ctl);
    if (!ctl) goto oom;
    ctl->sup = sup;
    ctl->dir = strdup(sup->cfg->state_dir);
    ctl->path = ctl->dir ? path_join(ctl->dir, CI_CTL_SOCKET_NAME) : NULL;
    ctl->stopped_path = ctl->dir ? path_join(ctl->dir, "stopped.json") : NULL;
    if (!ctl->dir || !ctl->path || !ctl->stopped_path) goto oom;
    stopped_load(ctl);
    sup->ctl = ctl;
    listen_socket(ctl);
    return;
oom:
    if (ctl) ctl_free(ctl);
    ci_log_eventf(CI_LOG_ERROR, NULL, "ctl", -1, "out of memory; running without a control socket");
}

void ci_sup_ctl_close(ci_sup_t *sup)
{
    ctl_t *ctl = sup->ctl;
    if (!ctl) return;
    sup->ctl = NULL;
    while (ctl->clients) client_close(ctl->clients);
    if (ctl->listening) {
        struct stat st;
        if (stat(ctl->path, &st) == 0 && st.st_dev == ctl->sock_dev && st.st_ino == ctl->sock_ino)
            unlink(ctl->path);
    }
    if (ctl->server_open && !uv_is_closing((uv_handle_t *)&ctl->server))
        uv_close((uv_handle_t *)&ctl->server, server_close_cb);
    else
        ctl_free(ctl);
}
