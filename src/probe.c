/* probe: native HTTP(S) and TCP health probes on the libuv loop (see probe.h).
 *
 * Ownership: a ci_probe_t owns one timer (the whole-probe timeout, also used
 * to defer a result found inside ci_probe_start), at most one getaddrinfo
 * request, and at most one live connection (conn_t) at a time; closing
 * connections may linger until their close callback. `refs` counts the timer
 * handle, the getaddrinfo request and every connection not yet closed; the
 * probe is freed when it drops to zero, which can only happen once the
 * result was delivered or the probe was cancelled. A conn_t is freed in its
 * handle's close callback, which libuv runs after the callbacks of its
 * pending connect and write requests.
 *
 * TLS: OpenSSL lives in chroma-init-tls.so (see tls.h), loaded the first time
 * an https:// URL is probed, so an init without https probes never maps it. */
#include "chroma_init/probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chroma_init/http_parse.h"
#include "chroma_init/tls.h"
#include "chroma_init/util.h"

#define DEFAULT_TIMEOUT_MS 30000
#define READ_BUF 16384

typedef struct target {
    bool tls;
    bool is_ip;
    char host[256];    /* without brackets */
    char port[6];      /* decimal */
    char hosthdr[272]; /* Host header: host[:port], brackets for IPv6 */
    char path[2048];   /* origin-form request target */
    const char *text;  /* the URL or host:port as configured (borrowed) */
} target_t;

typedef struct conn conn_t;

struct ci_probe {
    uv_loop_t *loop;
    const ci_healthcheck_t *hc; /* borrowed */
    ci_probe_cb cb;
    void *data;

    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    conn_t *conn; /* the live connection, or NULL */
    int refs;
    bool gai_active;
    bool finished; /* result decided or cancelled: no more work starts */
    bool deferred; /* result decided inside ci_probe_start: deliver from the timer */
    bool in_start; /* inside ci_probe_start */
    bool timer_closing;

    size_t *order; /* URL indices in the order they are tried (owned) */
    size_t norder;
    size_t pos; /* index in order of the URL being tried */
    target_t target;
    struct addrinfo *ai;     /* owned, from getaddrinfo (freeaddrinfo works for both) */
    struct addrinfo *ai_cur; /* next address to try */
    int last_err;            /* last connect error */

    ci_probe_result_t res;
};

struct conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    ci_probe_t *p;
    bool closing;
    ci_tls_conn_t *tls; /* owned; NULL for plain HTTP and TCP */
    bool handshake_done;
    bool request_sent;
    ci_http_parser_t parser;
    char rbuf[READ_BUF];
    char plain[READ_BUF];
};

typedef struct wreq {
    uv_write_t req;
    conn_t *c;
    char buf[];
} wreq_t;

static void conn_close(conn_t *c);
static void start_target(ci_probe_t *p);
static void connect_next(ci_probe_t *p);

/* ---- results ---------------------------------------------------------- */

__attribute__((format(printf, 2, 3))) static void set_output(ci_probe_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->res.output, sizeof(p->res.output), fmt, ap);
    va_end(ap);
}

static void format_ms(uint64_t ms, char *buf, size_t len)
{
    if (ms % 1000 == 0)
        snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
    else if (ms > 1000) {
        unsigned long long frac = ms % 1000;
        int digits = 3;
        while (frac % 10 == 0) {
            frac /= 10;
            digits--;
        }
        snprintf(buf, len, "%llu.%0*llus", (unsigned long long)(ms / 1000), digits, frac);
    } else
        snprintf(buf, len, "%llums", (unsigned long long)ms);
}

static void maybe_free(ci_probe_t *p)
{
    if (p->refs > 0) return;
    if (p->ai) freeaddrinfo(p->ai);
    free(p->order);
    free(p);
}

static void timer_close_cb(uv_handle_t *h)
{
    ci_probe_t *p = ci_container_of(h, ci_probe_t, timer);
    p->refs--;
    maybe_free(p);
}

static void close_timer(ci_probe_t *p)
{
    if (p->timer_closing) return;
    p->timer_closing = true;
    uv_close((uv_handle_t *)&p->timer, timer_close_cb);
}

/* Stops all work in flight; memory goes away in the callbacks. */
static void teardown(ci_probe_t *p)
{
    if (p->gai_active) uv_cancel((uv_req_t *)&p->gai); /* its callback still runs */
    if (p->conn) conn_close(p->conn);
    if (p->ai) {
        freeaddrinfo(p->ai);
        p->ai = p->ai_cur = NULL;
    }
}

static void timer_cb(uv_timer_t *t);

/* p->res is filled in: deliver it (or defer it out of ci_probe_start). */
static void finish(ci_probe_t *p, bool ok)
{
    if (p->finished) return;
    p->finished = true;
    p->res.ok = ok;
    p->res.url_index = p->norder ? p->order[p->pos] : 0;
    teardown(p);
    if (p->in_start) {
        p->deferred = true;
        uv_timer_stop(&p->timer);
        uv_timer_start(&p->timer, timer_cb, 0, 0);
        return;
    }
    close_timer(p);
    p->cb(p, &p->res, p->data);
}

__attribute__((format(printf, 2, 3))) static void fail(ci_probe_t *p, const char *fmt, ...)
{
    if (p->finished) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->res.output, sizeof(p->res.output), fmt, ap);
    va_end(ap);
    finish(p, false);
}

static void timer_cb(uv_timer_t *t)
{
    ci_probe_t *p = ci_container_of(t, ci_probe_t, timer);
    if (p->deferred) {
        close_timer(p);
        p->cb(p, &p->res, p->data);
        return;
    }
    char d[32];
    format_ms(p->hc->timeout_ms ? p->hc->timeout_ms : DEFAULT_TIMEOUT_MS, d, sizeof(d));
    fail(p, "timeout after %s (%s)", d, p->target.text ? p->target.text : "");
}

/* ---- targets ---------------------------------------------------------- */

static bool host_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

/* Parses the authority [s, e): host, [v6] or IPv4, optional :port. */
static int parse_authority(const char *s, const char *e, const char *defport, target_t *t,
                           const char **why)
{
    const char *hs, *he, *ps = NULL;
    if (memchr(s, '@', (size_t)(e - s))) {
        *why = "user info is not supported";
        return -EINVAL;
    }
    if (s < e && *s == '[') {
        hs = s + 1;
        he = memchr(hs, ']', (size_t)(e - hs));
        if (!he) {
            *why = "unterminated [IPv6] address";
            return -EINVAL;
        }
        if (he + 1 < e) {
            if (he[1] != ':') {
                *why = "bad authority";
                return -EINVAL;
            }
            ps = he + 2;
        }
        t->is_ip = true;
    } else {
        hs = s;
        he = memchr(s, ':', (size_t)(e - s));
        if (he) {
            ps = he + 1;
        } else {
            he = e;
        }
        for (const char *q = hs; q < he; q++) {
            if (!host_char_ok(*q)) {
                *why = "bad host name";
                return -EINVAL;
            }
        }
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= sizeof(t->host)) {
        *why = hl ? "host name too long" : "missing host";
        return -EINVAL;
    }
    memcpy(t->host, hs, hl);
    t->host[hl] = '\0';
    unsigned char tmp[16];
    if (t->is_ip && inet_pton(AF_INET6, t->host, tmp) != 1) {
        *why = "bad IPv6 address";
        return -EINVAL;
    }
    if (!t->is_ip && inet_pton(AF_INET, t->host, tmp) == 1) t->is_ip = true;

    bool explicit_port = ps != NULL;
    if (ps) {
        size_t pl = (size_t)(e - ps);
        unsigned long port = 0;
        if (pl == 0 || pl > 5) {
            *why = "bad port";
            return -EINVAL;
        }
        for (const char *q = ps; q < e; q++) {
            if (*q < '0' || *q > '9') {
                *why = "bad port";
                return -EINVAL;
            }
            port = port * 10 + (unsigned long)(*q - '0');
        }
        if (port == 0 || port > 65535) {
            *why = "bad port";
            return -EINVAL;
        }
        snprintf(t->port, sizeof(t->port), "%lu", port);
    } else if (defport) {
        snprintf(t->port, sizeof(t->port), "%s", defport);
    } else {
        *why = "missing port";
        return -EINVAL;
    }
    bool v6 = t->is_ip && strchr(t->host, ':');
    bool show_port = explicit_port && (!defport || strcmp(t->port, defport) != 0);
    snprintf(t->hosthdr, sizeof(t->hosthdr), "%s%s%s%s%s", v6 ? "[" : "", t->host, v6 ? "]" : "",
             show_port ? ":" : "", show_port ? t->port : "");
    return 0;
}

static int parse_url(const char *url, target_t *t, const char **why)
{
    memset(t, 0, sizeof(*t));
    t->text = url;
    const char *s;
    if (strncasecmp(url, "http://", 7) == 0) {
        s = url + 7;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        s = url + 8;
        t->tls = true;
    } else {
        *why = "not an http:// or https:// URL";
        return -EINVAL;
    }
    const char *e = s + strcspn(s, "/?#");
    int r = parse_authority(s, e, t->tls ? "443" : "80", t, why);
    if (r < 0) return r;
    size_t pl = strcspn(e, "#");
    for (size_t i = 0; i < pl; i++) {
        unsigned char c = (unsigned char)e[i];
        if (c <= 0x20 || c >= 0x7f) {
            *why = "bad character in path";
            return -EINVAL;
        }
    }
    const char *lead = (pl == 0 || e[0] == '?') ? "/" : "";
    if (strlen(lead) + pl >= sizeof(t->path)) {
        *why = "URL too long";
        return -EINVAL;
    }
    snprintf(t->path, sizeof(t->path), "%s%.*s", lead, (int)pl, e);
    return 0;
}

static int parse_hostport(const char *hp, target_t *t, const char **why)
{
    memset(t, 0, sizeof(*t));
    t->text = hp;
    return parse_authority(hp, hp + strlen(hp), NULL, t, why);
}

/* ---- TLS -------------------------------------------------------------- */

static const ci_tls_api_t *tls_api; /* set once the module is loaded */

void ci_probe_cleanup(void)
{
    if (tls_api) tls_api->cleanup();
}

/* ---- connections ------------------------------------------------------ */

static void conn_close_cb(uv_handle_t *h)
{
    conn_t *c = ci_container_of(h, conn_t, tcp);
    ci_probe_t *p = c->p;
    if (c->tls) tls_api->conn_free(c->tls);
    free(c);
    p->refs--;
    maybe_free(p);
}

static void conn_close(conn_t *c)
{
    if (c->closing) return;
    c->closing = true;
    if (c->p->conn == c) c->p->conn = NULL;
    uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
}

static void write_cb(uv_write_t *req, int status)
{
    wreq_t *w = ci_container_of(req, wreq_t, req);
    conn_t *c = w->c;
    free(w);
    if (c->closing || status == UV_ECANCELED || status >= 0) return;
    fail(c->p, "write: %s (%s)", uv_strerror(status), c->p->target.text);
}

/* Writes len bytes; returns 0 or a negative errno (the probe has failed). */
static int conn_write(conn_t *c, const char *data, size_t len)
{
    wreq_t *w = malloc(sizeof(*w) + len);
    if (!w) {
        fail(c->p, "out of memory");
        return -ENOMEM;
    }
    w->c = c;
    memcpy(w->buf, data, len);
    uv_buf_t b = uv_buf_init(w->buf, (unsigned int)len);
    int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, write_cb);
    if (r < 0) {
        free(w);
        fail(c->p, "write: %s (%s)", uv_strerror(r), c->p->target.text);
    }
    return r;
}

static int build_request(const target_t *t, char *buf, size_t len)
{
    int n = snprintf(buf, len,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: chroma-init\r\n"
                     "Accept: */*\r\nConnection: close\r\n\r\n",
                     t->path, t->hosthdr);
    return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : n;
}

/* The response is complete (or its body was cut at the bound). */
static void on_response(conn_t *c)
{
    ci_probe_t *p = c->p;
    const ci_http_parser_t *hp = &c->parser;
    int st = hp->status;
    const char *reason = hp->reason[0] ? hp->reason : ci_http_reason(st);
    p->res.http_status = st;
    if (st >= 200 && st < 400) {
        set_output(p, "HTTP %d%s%s from %s", st, reason[0] ? " " : "", reason, p->target.text);
        finish(p, true);
        return;
    }
    if ((st == 404 || st == 410) && p->pos + 1 < p->norder) {
        conn_close(c);
        p->pos++;
        start_target(p);
        return;
    }
    fail(p, "HTTP %d%s%s from %s", st, reason[0] ? " " : "", reason, p->target.text);
}

static void http_input(conn_t *c, const char *data, size_t len)
{
    int r = ci_http_parser_feed(&c->parser, data, len, NULL);
    if (c->parser.headers_done) c->p->res.http_status = c->parser.status;
    if (r == CI_HTTP_DONE)
        on_response(c);
    else if (r < 0)
        fail(c->p, "HTTP: malformed response: %s (%s)", c->parser.error, c->p->target.text);
}

static void http_eof(conn_t *c)
{
    int r = ci_http_parser_finish(&c->parser);
    if (r == CI_HTTP_DONE)
        on_response(c);
    else
        fail(c->p, "HTTP: %s (%s)", c->parser.error, c->p->target.text);
}

static void tls_fail(conn_t *c)
{
    char why[256];
    tls_api->conn_error(c->tls, why, sizeof(why));
    fail(c->p, "TLS: %s (%s)", why, c->p->target.text);
}

/* Sends what TLS has to send. Returns 0 or a negative errno. */
static int tls_flush(conn_t *c)
{
    size_t pending;
    while ((pending = tls_api->conn_pending(c->tls)) > 0) {
        wreq_t *w = malloc(sizeof(*w) + pending);
        if (!w) {
            fail(c->p, "out of memory");
            return -ENOMEM;
        }
        int n = tls_api->conn_take_out(c->tls, w->buf, pending);
        if (n <= 0) {
            free(w);
            fail(c->p, "TLS: cannot read the output buffer (%s)", c->p->target.text);
            return -EIO;
        }
        w->c = c;
        uv_buf_t b = uv_buf_init(w->buf, (unsigned int)n);
        int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, write_cb);
        if (r < 0) {
            free(w);
            fail(c->p, "write: %s (%s)", uv_strerror(r), c->p->target.text);
            return r;
        }
    }
    return 0;
}

/* Advances the handshake, sends the request, reads what can be read. */
static void tls_drive(conn_t *c)
{
    if (!c->handshake_done) {
        int r = tls_api->conn_handshake(c->tls);
        if (r == -EAGAIN) {
            tls_flush(c);
            return;
        }
        if (r < 0) {
            tls_fail(c);
            return;
        }
        c->handshake_done = true;
    }
    if (!c->request_sent) {
        char req[sizeof(c->p->target.path) + 512];
        int n = build_request(&c->p->target, req, sizeof(req));
        if (n < 0) {
            fail(c->p, "request too long (%s)", c->p->target.text);
            return;
        }
        if (tls_api->conn_write(c->tls, req, (size_t)n) < 0) {
            tls_fail(c);
            return;
        }
        c->request_sent = true;
    }
    for (;;) {
        int n = tls_api->conn_read(c->tls, c->plain, sizeof(c->plain));
        if (n > 0) {
            http_input(c, c->plain, (size_t)n);
            if (c->closing) return;
            continue;
        }
        if (n == -EAGAIN) break;
        if (n == 0) { /* close_notify */
            http_eof(c);
            return;
        }
        tls_fail(c);
        return;
    }
    tls_flush(c);
}

static void tls_start(conn_t *c)
{
    ci_probe_t *p = c->p;
    const ci_healthcheck_t *hc = p->hc;
    char err[400];
    if (!tls_api) tls_api = ci_tls_load(err, sizeof(err));
    if (!tls_api) {
        fail(p, "TLS: unable to load %s: %s (%s)", CI_TLS_MODULE_NAME, err, p->target.text);
        return;
    }
    c->tls =
        tls_api->conn_new(hc->ca, hc->insecure, p->target.host, p->target.is_ip, err, sizeof(err));
    if (!c->tls) {
        fail(p, "TLS: %s (%s)", err, p->target.text);
        return;
    }
    tls_drive(c);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    conn_t *c = ci_container_of(h, conn_t, tcp);
    (void)hint;
    *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = ci_container_of(s, conn_t, tcp);
    ci_probe_t *p = c->p;
    if (c->closing || nread == 0) return;
    if (nread == UV_EOF) {
        if (c->tls && !c->handshake_done)
            fail(p, "TLS: connection closed during the handshake (%s)", p->target.text);
        else
            http_eof(c);
        return;
    }
    if (nread < 0) {
        fail(p, "read: %s (%s)", uv_strerror((int)nread), p->target.text);
        return;
    }
    if (!c->tls) {
        http_input(c, buf->base, (size_t)nread);
        return;
    }
    if (tls_api->conn_feed(c->tls, buf->base, (size_t)nread) < 0) {
        fail(p, "TLS: cannot fill the input buffer (%s)", p->target.text);
        return;
    }
    tls_drive(c);
}

static void connect_cb(uv_connect_t *req, int status)
{
    conn_t *c = ci_container_of(req, conn_t, creq);
    ci_probe_t *p = c->p;
    if (c->closing || status == UV_ECANCELED) return;
    if (status < 0) {
        p->last_err = status;
        conn_close(c);
        connect_next(p);
        return;
    }
    if (p->hc->kind == CI_HC_TCP) {
        set_output(p, "TCP connect to %s ok", p->target.text);
        finish(p, true);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    int r = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    if (r < 0) {
        fail(p, "read: %s (%s)", uv_strerror(r), p->target.text);
        return;
    }
    if (p->target.tls) {
        tls_start(c);
        return;
    }
    char reqbuf[sizeof(p->target.path) + 512];
    int n = build_request(&p->target, reqbuf, sizeof(reqbuf));
    if (n < 0) {
        fail(p, "request too long (%s)", p->target.text);
        return;
    }
    conn_write(c, reqbuf, (size_t)n);
}

/* Opens a connection to addr; 0 or a negative errno (nothing left open). */
static int conn_open(ci_probe_t *p, const struct sockaddr *addr)
{
    conn_t *c = calloc(1, sizeof(*c));
    if (!c) return -ENOMEM;
    c->p = p;
    ci_http_parser_init(&c->parser);
    int r = uv_tcp_init(p->loop, &c->tcp);
    if (r < 0) {
        free(c);
        return r;
    }
    p->refs++;
    p->conn = c;
    r = uv_tcp_connect(&c->creq, &c->tcp, addr, connect_cb);
    if (r < 0) conn_close(c);
    return r;
}

/* Tries the next resolved address, or fails with the last connect error. */
static void connect_next(ci_probe_t *p)
{
    while (!p->finished && p->ai_cur) {
        struct addrinfo *ai = p->ai_cur;
        p->ai_cur = ai->ai_next;
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
        int r = conn_open(p, ai->ai_addr);
        if (r == 0) return;
        p->last_err = r;
    }
    if (p->finished) return;
    fail(p, "connect: %s (%s)", p->last_err ? uv_strerror(p->last_err) : "no usable address",
         p->target.text);
}

static void got_addresses(ci_probe_t *p, struct addrinfo *res)
{
    if (p->ai) freeaddrinfo(p->ai);
    p->ai = p->ai_cur = res;
    p->last_err = 0;
    connect_next(p);
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    ci_probe_t *p = ci_container_of(req, ci_probe_t, gai);
    p->gai_active = false;
    p->refs--;
    if (p->finished) {
        if (res) uv_freeaddrinfo(res);
        maybe_free(p);
        return;
    }
    if (status < 0) {
        if (res) uv_freeaddrinfo(res);
        fail(p, "resolve %s: %s (%s)", p->target.host, uv_strerror(status), p->target.text);
        return;
    }
    got_addresses(p, res);
}

/* Parses and starts the target at p->order[p->pos]. */
static void start_target(ci_probe_t *p)
{
    const char *why = NULL;
    const char *text = p->hc->argv[p->order[p->pos]];
    int r = text ? (p->hc->kind == CI_HC_TCP ? parse_hostport(text, &p->target, &why)
                                             : parse_url(text, &p->target, &why))
                 : -EINVAL;
    if (r < 0) {
        p->target.text = text ? text : "";
        fail(p, "bad %s \"%s\": %s", p->hc->kind == CI_HC_TCP ? "address" : "URL", text ? text : "",
             why ? why : "missing");
        return;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    if (p->target.is_ip) {
        /* A literal: numeric getaddrinfo does no lookup, so it runs inline. */
        struct addrinfo *res = NULL;
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
        int g = getaddrinfo(p->target.host, p->target.port, &hints, &res);
        if (g != 0) {
            fail(p, "resolve %s: %s (%s)", p->target.host, gai_strerror(g), p->target.text);
            return;
        }
        got_addresses(p, res);
        return;
    }
    hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
    r = uv_getaddrinfo(p->loop, &p->gai, gai_cb, p->target.host, p->target.port, &hints);
    if (r < 0) {
        fail(p, "resolve %s: %s (%s)", p->target.host, uv_strerror(r), p->target.text);
        return;
    }
    p->gai_active = true;
    p->refs++;
}

/* ---- public ----------------------------------------------------------- */

int ci_probe_start(uv_loop_t *loop, const ci_healthcheck_t *hc, size_t first_url, ci_probe_cb cb,
                   void *data, ci_probe_t **out)
{
    if (out) *out = NULL;
    if (!loop || !hc || !cb || !hc->argv || hc->argc == 0) return -EINVAL;
    if (hc->kind != CI_HC_HTTP && hc->kind != CI_HC_TCP) return -EINVAL;

    ci_probe_t *p = calloc(1, sizeof(*p));
    if (!p) return -ENOMEM;
    p->loop = loop;
    p->hc = hc;
    p->cb = cb;
    p->data = data;
    p->norder = hc->kind == CI_HC_TCP ? 1 : hc->argc;
    p->order = calloc(p->norder, sizeof(*p->order));
    if (!p->order) {
        free(p);
        return -ENOMEM;
    }
    if (first_url >= p->norder) first_url = 0;
    p->order[0] = first_url;
    for (size_t i = 0, k = 1; i < p->norder; i++)
        if (i != first_url) p->order[k++] = i;

    int r = uv_timer_init(loop, &p->timer);
    if (r < 0) {
        free(p->order);
        free(p);
        return r;
    }
    p->refs = 1;
    uint64_t timeout = hc->timeout_ms ? hc->timeout_ms : DEFAULT_TIMEOUT_MS;
    uv_timer_start(&p->timer, timer_cb, timeout, 0);

    p->in_start = true;
    start_target(p);
    p->in_start = false;
    if (out) *out = p;
    return 0;
}

void ci_probe_cancel(ci_probe_t *p)
{
    if (!p) return;
    if (!p->finished) {
        p->finished = true;
        teardown(p);
    }
    p->deferred = false;
    close_timer(p);
}
