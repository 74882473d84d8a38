/* ctl_client: one request, one reply over the control socket. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "chroma_init/cli.h"
#include "chroma_init/config.h"
#include "chroma_init/log.h"
#include "chroma_init/util.h"
#include "ctl_proto.h"

#define REPLY_MAX (16u * 1024u * 1024u)

char *ci_ctl_socket_path(const char *explicit_socket, const char *config_path)
{
    const char *env = getenv("CHROMA_INIT_SOCKET");
    ci_config_t *cfg = NULL;
    ci_error_t err;
    char *out = NULL;
    if (explicit_socket && *explicit_socket) return strdup(explicit_socket);
    if (env && *env) return strdup(env);
    if (ci_config_load(ci_cli_config_path(config_path), &cfg, &err) == 0 && cfg->state_dir &&
        *cfg->state_dir) {
        size_t n = strlen(cfg->state_dir) + sizeof(CI_CTL_SOCKET_NAME) + 2;
        out = malloc(n);
        if (out) {
            bool slash = cfg->state_dir[strlen(cfg->state_dir) - 1] == '/';
            snprintf(out, n, "%s%s%s", cfg->state_dir, slash ? "" : "/", CI_CTL_SOCKET_NAME);
        }
        ci_config_free(cfg);
        return out;
    }
    if (cfg) ci_config_free(cfg);
    return strdup(CI_CTL_DEFAULT_SOCKET);
}

static int remaining(uint64_t deadline)
{
    uint64_t now = ci_now_ms();
    return now >= deadline ? 0 : (int)(deadline - now);
}

int ci_ctl_call(const char *path, json_t *request, int timeout_ms, json_t **reply, char *err,
                size_t errlen)
{
    int rc = 0, fd = -1, send_errno = 0;
    char *req = NULL, *buf = NULL;
    size_t len = 0, cap = 0, off = 0, reqlen;
    uint64_t deadline = ci_now_ms() + (uint64_t)timeout_ms;
    struct sockaddr_un sa;
    json_error_t jerr;

    *reply = NULL;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "unable to connect to %s: path too long", path);
        return -ENAMETOOLONG;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "unable to create a socket: %s", ci_strerror(errno));
        goto fail;
    }
    /* connect(2) on a Unix socket honours the send timeout. */
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        rc = -errno;
        snprintf(err, errlen, "unable to connect to %s: %s", path,
                 errno == EAGAIN ? "timed out" : ci_strerror(errno));
        goto fail;
    }
    req = json_dumps(request, JSON_COMPACT);
    if (!req) {
        rc = -ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    reqlen = strlen(req);
    req[reqlen++] = '\n'; /* replaces the terminating NUL */
    while (off < reqlen) {
        ssize_t w = send(fd, req + off, reqlen - off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            /* The init may have replied (e.g. "permission denied") and closed
             * before reading the request: read that reply. */
            if (errno == EPIPE || errno == ECONNRESET) {
                send_errno = errno;
                break;
            }
            rc = -errno;
            snprintf(err, errlen, "unable to send to %s: %s", path,
                     errno == EAGAIN ? "timed out" : ci_strerror(errno));
            goto fail;
        }
        off += (size_t)w;
    }
    for (;;) {
        if (cap - len < 4096) {
            size_t ncap = cap ? cap * 2 : 16384;
            if (ncap > REPLY_MAX + 1) ncap = REPLY_MAX + 1;
            if (ncap <= len) {
                rc = -EMSGSIZE;
                snprintf(err, errlen, "reply from %s too long", path);
                goto fail;
            }
            char *nb = realloc(buf, ncap);
            if (!nb) {
                rc = -ENOMEM;
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            buf = nb;
            cap = ncap;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = remaining(deadline);
        int n = left > 0 ? poll(&p, 1, left) : 0;
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            rc = -ETIMEDOUT;
            snprintf(err, errlen, "no reply from %s within %d.%ds", path, timeout_ms / 1000,
                     (timeout_ms % 1000) / 100);
            goto fail;
        }
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r < 0 && !send_errno) {
            if (errno == EINTR || errno == EAGAIN) continue;
            rc = -errno;
            snprintf(err, errlen, "unable to read from %s: %s", path, ci_strerror(errno));
            goto fail;
        }
        if (r == 0 || (r < 0 && send_errno)) {
            rc = -ECONNRESET;
            if (send_errno)
                snprintf(err, errlen, "unable to send to %s: %s", path, ci_strerror(send_errno));
            else
                snprintf(err, errlen, "%s closed the connection without a reply", path);
            goto fail;
        }
        char *nl = memchr(buf + len, '\n', (size_t)r);
        len += (size_t)r;
        if (nl) {
            len = (size_t)(nl - buf);
            break;
        }
    }
    *reply = json_loadb(buf, len, 0, &jerr);
    if (!*reply || !json_is_object(*reply)) {
        json_decref(*reply);
        *reply = NULL;
        rc = -EPROTO;
        snprintf(err, errlen, "invalid reply from %s", path);
        goto fail;
    }
fail:
    if (fd >= 0) close(fd);
    free(req);
    free(buf);
    return rc;
}

int ci_ctl_conn_option(int argc, char **argv, int *i, const char **socket, const char **config)
{
    const char *a = argv[*i];
    if (!strcmp(a, "--socket") || !strcmp(a, "--config")) {
        if (*i + 1 >= argc) return -1;
        *(a[2] == 's' ? socket : config) = argv[++*i];
        return 1;
    }
    if (!strncmp(a, "--socket=", 9)) {
        *socket = a + 9;
        return 1;
    }
    if (!strncmp(a, "--config=", 9)) {
        *config = a + 9;
        return 1;
    }
    return 0;
}
