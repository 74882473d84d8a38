/* probe tests: a real uv loop against real servers started here — a small
 * blocking HTTP server thread on 127.0.0.1, nginx with a CA + certificate made
 * by the openssl CLI, and real Chroma when installed. Every test ends with
 * uv_loop_close() == 0: no handle is left behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "chroma_init/config.h"
#include "chroma_init/probe.h"
#include "chroma_init/util.h"

/* ---- helpers ---------------------------------------------------------- */

typedef struct hcbuf {
    char urls[4][512];
    char *argv[5];
    ci_healthcheck_t hc;
} hcbuf_t;

/* Fills b with a healthcheck of kind over up to 4 targets (NULL-terminated). */
static ci_healthcheck_t *mkhc(hcbuf_t *b, ci_hc_kind_t kind, uint64_t timeout_ms, ...)
{
    memset(b, 0, sizeof(*b));
    va_list ap;
    va_start(ap, timeout_ms);
    size_t n = 0;
    const char *s;
    while (n < 4 && (s = va_arg(ap, const char *)) != NULL) {
        snprintf(b->urls[n], sizeof(b->urls[n]), "%s", s);
        b->argv[n] = b->urls[n];
        n++;
    }
    va_end(ap);
    b->argv[n] = NULL;
    b->hc.kind = kind;
    b->hc.argv = b->argv;
    b->hc.argc = n;
    b->hc.timeout_ms = timeout_ms;
    return &b->hc;
}

typedef struct outcome {
    int ncalls;
    ci_probe_result_t res;
} outcome_t;

static void on_result(ci_probe_t *p, const ci_probe_result_t *res, void *data)
{
    (void)p;
    outcome_t *o = data;
    o->ncalls++;
    o->res = *res;
}

/* Runs one probe to completion on a fresh loop; asserts one callback and a
 * clean loop. Returns the elapsed milliseconds. */
static uint64_t run_probe(const ci_healthcheck_t *hc, size_t first, outcome_t *o)
{
    uv_loop_t loop;
    memset(o, 0, sizeof(*o));
    assert_int_equal(uv_loop_init(&loop), 0);
    ci_probe_t *p = NULL;
    uint64_t t0 = ci_now_ms();
    assert_int_equal(ci_probe_start(&loop, hc, first, on_result, o, &p), 0);
    assert_non_null(p);
    assert_int_equal(o->ncalls, 0); /* never from inside start */
    uv_run(&loop, UV_RUN_DEFAULT);
    uint64_t dt = ci_now_ms() - t0;
    assert_int_equal(o->ncalls, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
    print_message("    -> %s: %s (%llu ms)\n", o->res.ok ? "ok" : "FAIL", o->res.output,
                  (unsigned long long)dt);
    return dt;
}

static void expect_output(const outcome_t *o, const char *needle)
{
    if (!strstr(o->res.output, needle))
        fail_msg("output \"%s\" lacks \"%s\"", o->res.output, needle);
}

/* A port nobody listens on (bound, then closed). */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- the test HTTP server --------------------------------------------- */

typedef struct srv {
    int lfd;
    int port;
    int stop[2]; /* write a byte to stop the thread */
    pthread_t th;
    pthread_mutex_t mu;
    char last_req[4096];
    int nconn;      /* connections accepted */
    int tls_answer; /* on a TLS ClientHello: 0 hold until closed, 1 answer plain HTTP */
} srv_t;

/* Waits until fd is readable or the server is stopped; false on stop/timeout. */
static bool wait_in(srv_t *s, int fd, int ms)
{
    struct pollfd pf[2] = {{.fd = fd, .events = POLLIN}, {.fd = s->stop[0], .events = POLLIN}};
    int r = poll(pf, 2, ms);
    return r > 0 && (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) && !pf[1].revents;
}

static void send_all(int fd, const char *d, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, d, n, MSG_NOSIGNAL);
        if (w <= 0) return;
        d += w;
        n -= (size_t)w;
    }
}

/* Holds the connection until the client closes it (or the server stops). */
static void hold(srv_t *s, int fd)
{
    char b[512];
    while (wait_in(s, fd, 10000))
        if (recv(fd, b, sizeof(b), 0) <= 0) break;
}

static void serve(srv_t *s, int fd)
{
    char req[4096];
    size_t n = 0;
    while (n < sizeof(req) - 1 && wait_in(s, fd, 5000)) {
        ssize_t r = recv(fd, req + n, sizeof(req) - 1 - n, 0);
        if (r <= 0) break;
        n += (size_t)r;
        req[n] = '\0';
        if ((unsigned char)req[0] == 0x16 || strstr(req, "\r\n\r\n")) break;
    }
    req[n] = '\0';
    if (n > 0 && (unsigned char)req[0] == 0x16) {
        if (s->tls_answer)
            send_all(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", 47);
        else
            hold(s, fd);
        return;
    }
    pthread_mutex_lock(&s->mu);
    snprintf(s->last_req, sizeof(s->last_req), "%s", req);
    pthread_mutex_unlock(&s->mu);
    if (n == 0) return; /* a TCP probe, or a client gone */

    char path[256] = "";
    sscanf(req, "GET %255s ", path);
    const char *resp = NULL;
    if (!strcmp(path, "/ok")) {
        resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    } else if (!strcmp(path, "/gone")) {
        resp = "HTTP/1.1 410 Gone\r\nContent-Length: 4\r\n\r\ngone";
    } else if (!strcmp(path, "/err")) {
        resp = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
    } else if (!strcmp(path, "/unavailable")) {
        resp = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
    } else if (!strcmp(path, "/redirect")) {
        resp =
            "HTTP/1.1 301 Moved Permanently\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n";
    } else if (!strcmp(path, "/chunked")) {
        resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=1\r\nwiki\r\n"
               "5\r\npedia\r\n0\r\nX-T: 1\r\n\r\n";
    } else if (!strcmp(path, "/close")) {
        resp = "HTTP/1.0 200 OK\r\n\r\nuntil the end";
    } else if (!strcmp(path, "/garbage")) {
        resp = "garbage\r\n\r\n";
    } else if (!strcmp(path, "/badchunk")) {
        resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    } else if (!strcmp(path, "/empty")) {
        return;
    } else if (!strcmp(path, "/slow")) {
        hold(s, fd);
        return;
    } else if (!strcmp(path, "/headers-then-slow")) {
        send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nab", 42);
        hold(s, fd);
        return;
    } else if (!strcmp(path, "/reset")) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        return;
    } else if (!strcmp(path, "/big")) {
        const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n";
        send_all(fd, h, strlen(h));
        static char junk[65536];
        memset(junk, 'j', sizeof(junk));
        for (int i = 0; i < 64; i++) {
            ssize_t w = send(fd, junk, sizeof(junk), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0 && errno == EAGAIN) {
                struct pollfd pf[2] = {{.fd = fd, .events = POLLOUT},
                                       {.fd = s->stop[0], .events = POLLIN}};
                if (poll(pf, 2, 2000) <= 0 || pf[1].revents || !(pf[0].revents & POLLOUT)) break;
                continue;
            }
            if (w <= 0) break;
        }
        return;
    } else {
        resp = "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found";
    }
    send_all(fd, resp, strlen(resp));
}

static void *srv_main(void *arg)
{
    srv_t *s = arg;
    for (;;) {
        if (!wait_in(s, s->lfd, 30000)) break;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) continue;
        pthread_mutex_lock(&s->mu);
        s->nconn++;
        pthread_mutex_unlock(&s->mu);
        serve(s, fd);
        close(fd);
    }
    return NULL;
}

static int srv_setup(void **state)
{
    srv_t *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pipe2(s->stop, O_CLOEXEC), 0);
    pthread_mutex_init(&s->mu, NULL);
    assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
    *state = s;
    return 0;
}

static int srv_teardown(void **state)
{
    srv_t *s = *state;
    assert_int_equal(write(s->stop[1], "x", 1), 1);
    pthread_join(s->th, NULL);
    close(s->lfd);
    close(s->stop[0]);
    close(s->stop[1]);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return 0;
}

static int srv_nconn(srv_t *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->nconn;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static const char *url(srv_t *s, const char *scheme, const char *host, const char *path)
{
    static char bufs[4][256];
    static int k;
    char *b = bufs[k++ % 4];
    snprintf(b, sizeof(bufs[0]), "%s://%s:%d%s", scheme, host, s->port, path);
    return b;
}

/* ---- HTTP against the test server ------------------------------------- */

static void http_ok(void **state)
{
    srv_t *s = *state;
    hcbuf_t b;
    outcome_t o;
    ci_healthcheck_t *hc = mkhc(&b, CI_HC_HTTP, 5000, url(s, "http", "127.0.0.1", "/ok"), NULL);
    run_probe(hc, 0, &o);
    assert_true(o.res.ok);
    assert_int_equal(o.res.http_status, 200);
    assert_int_equal(o.res.url_index, 0);
    char want[600];
    snprintf(want, sizeof(want), "HTTP 200 OK from %s", b.urls[0]);
    assert_string_equal(o.res.output, want);
    pthread_mutex_lock(&s->mu);
    char host[64];
    snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%d\r\n", s->port);
    assert_non_null(strstr(s->last_req, "GET /ok HTTP/1.1\r\n"));
    assert_non_null(strstr(s->last_req, host));
    assert_non_null(strstr(s->last_req, "\r\nUser-Agent: chroma-init\r\n"));
    assert_non_null(strstr(s->last_req, "\r\nConnection: close\r\n"));
    pthread_mutex_unlock(&s->mu);
}

static void http_fallback_after_404(void **state)
{
    srv_t *s = *state;
    hcbuf_t b;
    outcome_t o;
    ci_healthcheck_t *hc = mkhc(&b, CI_HC_HTTP, 5000, url(s, "http", "127.0.0.1", "/missing"),
                                url(s, "http", "127.0.0.1", "/ok"), NULL);
    run_probe(hc, 0, &o);
    assert_true(o.res.ok);
    assert_int_equal(o.res.http_status, 200);
    assert_int_equal(o.res.url_index, 1);
    assert_int_equal(srv_nconn(s), 2);
}

static void http_fallback_after_410(void **state)
{
    srv_t *s = *state;
    hcbuf_t b;
    outcome_t o;
    ci_healthcheck_t *hc =
        mkhc(&b, CI_HC_HTTP, 5000, url(s, "http", "127.0.0.1", "/gone"),
             url(s, "http", "127.0.0.1", "/missing"), url(s, "http", "127.0.0.1", "/ok"), NULL);
    run_probe(hc, 0, &o);
    assert_true(o.res.ok);
    assert_int_equal(o.res.url_index, 2);
    assert_int_equal(srv_nconn(s), 3);
}

static void http_remembered_url_first(void **state)
{
    srv_t *s = *state;
    hcbuf_t b;
    outcome_t o;
    ci_healthcheck_t *hc = mkhc(&b, CI_HC_HTTP, 5000, url(s, "http", "127.0.0.1", "/gone"),
                                url(s, "http", "127.0.0.1", "/ok"), NULL);
    run_probe(hc, 1, &o);
    assert_true(o.res.ok);
    assert_int_equal(o.res.url_index, 1);
    assert_int_equal(srv_nconn(s), 1);
    /* out of range means 0 */
    run_probe(hc, 7, &o);
    assert_true(o.res.ok);
    assert_int_equal(o.res.url_index, 1);
    assert_int_equal(srv_nconn(s), 3);
}

static void http_404_on_last_url_fails(void **state)
{
    srv_t *s = *state;
    hcbuf_t b;
    outcome_t o;
    ci_healthcheck_t *hc = mkhc(&b, CI_HC_HTTP, 5000, url(s, "http", "127.0.0.1", "/gone"),
                                url(s, "http", "127.0.0.1", "/missing"), NULL);
    run_probe(hc, 0, &o);
    assert_false(o.res.ok);
    assert_int_equal(o.res.http_status, 404);
    assert_int_equal(o.res.url_index, 1);
    char want[600];
    snprintf(want, sizeof(want), "HTTP 404 Not Found from %s", b.urls[1]);
    assert_string_equal(o.res.output, want);
}

static void http_500_fails_without_fallback(void **state)
{
    srv_t *s = *state;
    hcbuf_t b;
    outcome_t o;
    ci_healthcheck_t *hc = mkhc(&b, CI_HC_HTTP, 5000, url(s, "http", "127.0.0.1", "/err"),
                                url(s, "http", "127.0.0.1", "/ok"), NULL);
    run_probe(hc, 0, &o);
    assert_false(o.res.ok);
    assert_int_equal(o.res.http_status, 500);
    expect_output(&o, "HTTP 500 Internal Server Error from http://127.0.0.1:");
    assert_int_equal(srv_nconn(s), 1);

    mkhc(&b, CI_HC_HTTP, 5000, url(s, "http", "127.0.0.1", "/unavailable"), NULL);
    run_probe(&b.hc, 0, &o);
    assert_false(o.res.ok);
    assert_int_equal(o.res.http_status, 503);
    expect_output(&o, "HTTP 503 Service Unavailable from ");
}

static void http_redirect_is_healthy(void **state)
{
    srv_t *s = *state;
    hcbuf_t b;
    outcome_t o;
    run_probe(mkhc(&b, CI_HC_HTTP, 5000, url(s, "http", "127.0.0.1", "/redirect"), NULL), 0, &o);
    assert_true(o.res.ok);
    assert_int_equal(o.res.http_status, 301);
    expect_output(&o, "HTTP 301 Moved Permanently from ");
    assert_int_equal(srv_nconn(s), 1); /* not followed */
}

static void http_body_forms(void **state)
{
    srv_t *s = *state;
    hcbuf_t b;
    outcome_t o;
    const char *paths[] = {"/chunked", "/close", "/big"};
    for (size_t i = 0; i < 3; i++) {
        run_probe(mkhc(&b, CI_HC_HTTP, 5000, url(s, "http", "127.0.0.1", paths[i]), NULL), 0, &o);
        assert_true(o.res.ok);
        assert_int_equal(o.res.http_status, 200);
    }
}

static void http_slow_times_out(void **state)
{
    srv_t *s = *state;
    hcbuf_t b;
    outcome_t o;
    uint64_t dt =
        run_probe(mkhc(&b, CI_HC_HTTP, 300, url(s, "http", "127.0.0.1", "/slow"), NULL), 0, &o);
    assert_false(o.res.ok);
    expect_output(&o, "timeout after 300ms (http://127.0.0.1:");
    assert_true(dt >= 290 && dt < 2000);
    /* headers arrive but the body never completes: still a timeout */
    dt = run_probe(
        mkhc(&b, CI_HC_HTTP, 1500, url(s, "http", "127.0.0.1", "/headers-then-slow"), NULL), 0, &o);
    assert_false(o.res.ok);
    expect_output(&o, "timeout after 1.5s");
    assert_true(dt >= 1490 && dt < 3000);
}

static void http_reset(void **state)
{
    srv_t *s = *state;
    hcbuf_t b;
    outcome_t o;
    run_probe(mkhc(&b, CI_HC_HTTP, 5000, url(s, "http", "127.0.0.1", "/reset"), NULL), 0, &o);
    assert_false(o.res.ok);
    expect_output(&o, "read: connection reset by peer (http://127.0.0.1:");
}

static void http_malformed(void **state)
{
    srv_t *s = *state;
    hcbuf_t b;
    outcome_t o;
    run_probe(mkhc(&b, CI_HC_HTTP, 5000, url(s, "http", "127.0.0.1", "/garbage"), NULL), 0, &o);
    assert_false(o.res.ok);
    expect_output(&o, "HTTP: malformed response: bad status line (http://127.0.0.1:");
    run_probe(mkhc(&b, CI_HC_HTTP, 5000, url(s, "http", "127.0.0.1", "/badchunk"), NULL), 0, &o);
    assert_false(o.res.ok);
    assert_int_equal(o.res.http_status, 200); /* the status line was fine */
    expect_output(&o, "bad chunk size");
    run_probe(mkhc(&b, CI_HC_HTTP, 5000, url(s, "http", "127.0.0.1", "/empty"), NULL), 0, &o);
    assert_false(o.res.ok);
    expect_output(&o, "HTTP: empty response (http://127.0.0.1:");
}

static void http_connection_refused(void **state)
{
    (void)state;
    hcbuf_t b;
    outcome_t o;
    char u[128];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/api/v2/heartbeat", closed_port());
    run_probe(mkhc(&b, CI_HC_HTTP, 5000, u, NULL), 0, &o);
    assert_false(o.res.ok);
    char want[256];
    snprintf(want, sizeof(want), "connect: connection refused (%s)", u);
    assert_string_equal(o.res.output, want);
    assert_int_equal(o.res.http_status, 0);
}

static void http_localhost_resolves(void **state)
{
    srv_t *s = *state;
    hcbuf_t b;
    outcome_t o;
    /* localhost may resolve to ::1 first, where nothing listens: the next
     * address is tried. */
    run_probe(mkhc(&b, CI_HC_HTTP, 5000, url(s, "http", "localhost", "/ok"), NULL), 0, &o);
    assert_true(o.res.ok);
    pthread_mutex_lock(&s->mu);
    char host[64];
    snprintf(host, sizeof(host), "\r\nHost: localhost:%d\r\n", s->port);
    assert_non_null(strstr(s->last_req, host));
    pthread_mutex_unlock(&s->mu);
}

static void http_bad_urls_reported_async(void **state)
{
    srv_t *s = *state;
    hcbuf_t b;
    outcome_t o;
    const char *bad[] = {"ftp://x/",          "http://",
                         "http://user@host/", "http://[::1/",
                         "http://host:0/",    "http://host:99999/",
                         "http://ho st/",     "http://127.0.0.1:1/a b",
                         "http://h:12:34/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        run_probe(mkhc(&b, CI_HC_HTTP, 5000, bad[i], NULL), 0, &o);
        assert_false(o.res.ok);
        expect_output(&o, "bad URL");
    }
    /* a bad fallback is reported when reached */
    run_probe(mkhc(&b, CI_HC_HTTP, 5000, url(s, "http", "127.0.0.1", "/gone"), "nope", NULL), 0,
              &o);
    assert_false(o.res.ok);
    expect_output(&o, "bad URL \"nope\"");
    /* not a native probe, or nothing to probe: an error, no callback */
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    mkhc(&b, CI_HC_CMD, 1000, "true", NULL);
    assert_int_equal(ci_probe_start(&loop, &b.hc, 0, on_result, &o, NULL), -EINVAL);
    mkhc(&b, CI_HC_HTTP, 1000, NULL);
    assert_int_equal(ci_probe_start(&loop, &b.hc, 0, on_result, &o, NULL), -EINVAL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void http_unknown_host(void **state)
{
    (void)state;
    hcbuf_t b;
    outcome_t o;
    /* .invalid never resolves (RFC 6761); a resolver that cannot be reached
     * makes it a timeout instead. */
    run_probe(mkhc(&b, CI_HC_HTTP, 3000, "http://nonexistent.invalid/health", NULL), 0, &o);
    assert_false(o.res.ok);
    if (!strstr(o.res.output, "timeout after 3s"))
        expect_output(&o, "resolve nonexistent.invalid: ");
}

static void http_ipv6_literal(void **state)
{
    (void)state;
    /* Nothing listens there (or no IPv6 at all): a clean failure either way. */
    hcbuf_t b;
    outcome_t o;
    char u[128];
    snprintf(u, sizeof(u), "http://[::1]:%d/", closed_port());
    run_probe(mkhc(&b, CI_HC_HTTP, 2000, u, NULL), 0, &o);
    assert_false(o.res.ok);
    expect_output(&o, "connect: ");
}

/* ---- TCP -------------------------------------------------------------- */

static void tcp_ok_and_refused(void **state)
{
    srv_t *s = *state;
    hcbuf_t b;
    outcome_t o;
    char hp[64];
    snprintf(hp, sizeof(hp), "127.0.0.1:%d", s->port);
    run_probe(mkhc(&b, CI_HC_TCP, 5000, hp, NULL), 0, &o);
    assert_true(o.res.ok);
    assert_int_equal(o.res.http_status, 0);
    char want[128];
    snprintf(want, sizeof(want), "TCP connect to %s ok", hp);
    assert_string_equal(o.res.output, want);

    snprintf(hp, sizeof(hp), "localhost:%d", s->port);
    run_probe(mkhc(&b, CI_HC_TCP, 5000, hp, NULL), 0, &o);
    assert_true(o.res.ok);

    snprintf(hp, sizeof(hp), "127.0.0.1:%d", closed_port());
    run_probe(mkhc(&b, CI_HC_TCP, 5000, hp, NULL), 0, &o);
    assert_false(o.res.ok);
    snprintf(want, sizeof(want), "connect: connection refused (%s)", hp);
    assert_string_equal(o.res.output, want);

    run_probe(mkhc(&b, CI_HC_TCP, 5000, "no-port-here", NULL), 0, &o);
    assert_false(o.res.ok);
    expect_output(&o, "bad address \"no-port-here\": missing port");
}

/* ---- cancel ----------------------------------------------------------- */

typedef struct canceller {
    uv_timer_t t;
    ci_probe_t *p;
} canceller_t;

static void cancel_cb(uv_timer_t *t)
{
    canceller_t *c = ci_container_of(t, canceller_t, t);
    ci_probe_cancel(c->p);
    uv_close((uv_handle_t *)t, NULL);
}

/* Starts a probe, cancels it after delay_ms (0: right away, before the loop
 * runs), and checks the callback never ran and nothing is left. */
static void start_and_cancel(const ci_healthcheck_t *hc, uint64_t delay_ms)
{
    uv_loop_t loop;
    outcome_t o;
    memset(&o, 0, sizeof(o));
    assert_int_equal(uv_loop_init(&loop), 0);
    canceller_t c;
    assert_int_equal(ci_probe_start(&loop, hc, 0, on_result, &o, &c.p), 0);
    if (delay_ms == 0) {
        ci_probe_cancel(c.p);
    } else {
        assert_int_equal(uv_timer_init(&loop, &c.t), 0);
        assert_int_equal(uv_timer_start(&c.t, cancel_cb, delay_ms, 0), 0);
    }
    uint64_t t0 = ci_now_ms();
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(ci_now_ms() - t0 < 2000);
    assert_int_equal(o.ncalls, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void cancel_in_every_state(void **state)
{
    srv_t *s = *state;
    hcbuf_t b;
    /* resolving */
    start_and_cancel(mkhc(&b, CI_HC_HTTP, 5000, url(s, "http", "localhost", "/ok"), NULL), 0);
    /* connecting */
    start_and_cancel(mkhc(&b, CI_HC_HTTP, 5000, url(s, "http", "127.0.0.1", "/ok"), NULL), 0);
    start_and_cancel(mkhc(&b, CI_HC_TCP, 5000, url(s, "", "127.0.0.1", "") + 3, NULL), 0);
    /* reading */
    start_and_cancel(mkhc(&b, CI_HC_HTTP, 5000, url(s, "http", "127.0.0.1", "/slow"), NULL), 100);
    /* reading a body */
    start_and_cancel(
        mkhc(&b, CI_HC_HTTP, 5000, url(s, "http", "127.0.0.1", "/headers-then-slow"), NULL), 100);
    /* TLS handshake (the server holds the ClientHello) */
    start_and_cancel(mkhc(&b, CI_HC_HTTP, 5000, url(s, "https", "127.0.0.1", "/"), NULL), 100);
    /* a result already decided inside start, not yet delivered */
    start_and_cancel(mkhc(&b, CI_HC_HTTP, 5000, "bogus", NULL), 0);
}

static void tls_handshake_timeout_and_errors(void **state)
{
    srv_t *s = *state;
    hcbuf_t b;
    outcome_t o;
    mkhc(&b, CI_HC_HTTP, 300, url(s, "https", "127.0.0.1", "/"), NULL);
    b.hc.insecure = true;
    run_probe(&b.hc, 0, &o);
    assert_false(o.res.ok);
    expect_output(&o, "timeout after 300ms");
    /* a plain HTTP server answering a ClientHello */
    s->tls_answer = 1;
    run_probe(&b.hc, 0, &o);
    assert_false(o.res.ok);
    expect_output(&o, "TLS: ");
    /* a CA file that does not exist */
    b.hc.insecure = false;
    b.hc.ca = "/nonexistent/ca.pem";
    run_probe(&b.hc, 0, &o);
    assert_false(o.res.ok);
    expect_output(&o, "TLS: cannot read CA file /nonexistent/ca.pem: No such file or directory");
}

/* ---- child processes (nginx, chroma) ---------------------------------- */

static pid_t spawn_child(char *const argv[], const char *log)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) dup2(nul, 0);
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* SIGTERM to the child's process group, SIGKILL after 5 s; reaps it. */
static void stop_child(pid_t pid)
{
    if (pid <= 0) return;
    kill(-pid, SIGTERM);
    kill(pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            kill(-pid, SIGKILL);
            return;
        }
        usleep(10000);
    }
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Waits until 127.0.0.1:port accepts, at most ms; false if pid died. */
static bool wait_port(int port, pid_t pid, int ms)
{
    uint64_t end = ci_now_ms() + (uint64_t)ms;
    while (ci_now_ms() < end) {
        if (waitpid(pid, NULL, WNOHANG) == pid) return false;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int r = connect(fd, (struct sockaddr *)&a, sizeof(a));
        close(fd);
        if (r == 0) return true;
        usleep(20000);
    }
    return false;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int r = system(cmd);
    return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

/* ---- HTTPS against nginx ---------------------------------------------- */

typedef struct tls_env {
    char dir[64];
    int port;
    int port2; /* serves a self-signed leaf, as certgen makes */
    pid_t nginx;
    char ca[128], wrong_ca[128];
} tls_env_t;

static int tls_setup(void **state)
{
    if (sh("command -v nginx >/dev/null && command -v openssl >/dev/null") != 0) {
        *state = NULL;
        return 0;
    }
    tls_env_t *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    snprintf(e->dir, sizeof(e->dir), "/tmp/ci-probe-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    snprintf(e->ca, sizeof(e->ca), "%s/ca.pem", e->dir);
    snprintf(e->wrong_ca, sizeof(e->wrong_ca), "%s/wrong-ca.pem", e->dir);
    /* A CA, a server certificate for DNS:localhost only, and an unrelated CA. */
    int r = sh("cd %s && "
               "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
               "-keyout ca.key -out ca.pem -days 2 -subj /CN=probe-test-ca "
               "-addext basicConstraints=critical,CA:TRUE "
               "-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null && "
               "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
               "-keyout wrong-ca.key -out wrong-ca.pem -days 2 -subj /CN=wrong-ca 2>/dev/null && "
               "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
               "-keyout srv.key -out srv.csr -subj /CN=localhost 2>/dev/null && "
               "printf 'subjectAltName=DNS:localhost\\nbasicConstraints=CA:FALSE\\n"
               "extendedKeyUsage=serverAuth\\n' > ext.cnf && "
               "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
               "-out srv.pem -days 2 -extfile ext.cnf 2>/dev/null && "
               "openssl req -x509 -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.pem -days 2 "
               "-subj /O=Chroma/C=US/CN=localhost -addext subjectAltName=DNS:localhost "
               "-addext basicConstraints=CA:FALSE "
               "-addext keyUsage=digitalSignature,keyEncipherment "
               "-addext extendedKeyUsage=serverAuth 2>/dev/null",
               e->dir);
    assert_int_equal(r, 0);
    e->port = closed_port();
    do e->port2 = closed_port();
    while (e->port2 == e->port);
    char conf[256];
    snprintf(conf, sizeof(conf), "%s/nginx.conf", e->dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    const char *d = e->dir;
    fprintf(f, "master_process off;\npid %s/nginx.pid;\nerror_log %s/error.log;\n", d, d);
    fprintf(f, "events { worker_connections 64; }\nhttp {\n  access_log off;\n");
    fprintf(f, "  client_body_temp_path %s/tmp; proxy_temp_path %s/tmp;\n", d, d);
    fprintf(f, "  fastcgi_temp_path %s/tmp; uwsgi_temp_path %s/tmp; scgi_temp_path %s/tmp;\n", d, d,
            d);
    fprintf(f, "  server {\n    listen 127.0.0.1:%d ssl;\n", e->port);
    fprintf(f, "    ssl_certificate %s/srv.pem;\n    ssl_certificate_key %s/srv.key;\n", d, d);
    fprintf(f, "    location = /health { return 200 \"ok\\n\"; }\n"
               "    location = /gone { return 410; }\n"
               "    location = /unavailable { return 503; }\n"
               "    location / { return 404; }\n  }\n");
    fprintf(f, "  server {\n    listen 127.0.0.1:%d ssl;\n", e->port2);
    fprintf(f, "    ssl_certificate %s/leaf.pem;\n    ssl_certificate_key %s/leaf.key;\n", d, d);
    fprintf(f, "    location / { return 200; }\n  }\n}\n");
    fclose(f);
    char log[128], errlog[128];
    snprintf(log, sizeof(log), "%s/nginx.out", e->dir);
    snprintf(errlog, sizeof(errlog), "%s/error.log", e->dir);
    char *argv[] = {"nginx", "-e", errlog, "-p", e->dir, "-c", conf, "-g", "daemon off;", NULL};
    e->nginx = spawn_child(argv, log);
    if (!wait_port(e->port, e->nginx, 10000) || !wait_port(e->port2, e->nginx, 5000)) {
        sh("cat %s/nginx.out %s/error.log >&2", e->dir, e->dir);
        stop_child(e->nginx);
        fail_msg("nginx did not start");
    }
    *state = e;
    return 0;
}

static int tls_teardown(void **state)
{
    tls_env_t *e = *state;
    ci_probe_cleanup();
    if (!e) return 0;
    stop_child(e->nginx);
    sh("rm -rf %s", e->dir);
    free(e);
    return 0;
}

static const char *tls_url(tls_env_t *e, const char *host, const char *path)
{
    static char bufs[4][256];
    static int k;
    char *b = bufs[k++ % 4];
    snprintf(b, sizeof(bufs[0]), "https://%s:%d%s", host, e->port, path);
    return b;
}

static void https_verified_ok(void **state)
{
    tls_env_t *e = *state;
    if (!e) skip();
    hcbuf_t b;
    outcome_t o;
    mkhc(&b, CI_HC_HTTP, 5000, tls_url(e, "localhost", "/health"), NULL);
    b.hc.ca = e->ca;
    run_probe(&b.hc, 0, &o);
    assert_true(o.res.ok);
    assert_int_equal(o.res.http_status, 200);
    expect_output(&o, "HTTP 200 OK from https://localhost:");
    /* again and again: the cached SSL_CTX serves every probe */
    for (int i = 0; i < 10; i++) {
        run_probe(&b.hc, 0, &o);
        assert_true(o.res.ok);
    }
}

static void https_fallback_and_status(void **state)
{
    tls_env_t *e = *state;
    if (!e) skip();
    hcbuf_t b;
    outcome_t o;
    mkhc(&b, CI_HC_HTTP, 5000, tls_url(e, "localhost", "/gone"),
         tls_url(e, "localhost", "/missing"), tls_url(e, "localhost", "/health"), NULL);
    b.hc.ca = e->ca;
    run_probe(&b.hc, 0, &o);
    assert_true(o.res.ok);
    assert_int_equal(o.res.url_index, 2);
    mkhc(&b, CI_HC_HTTP, 5000, tls_url(e, "localhost", "/unavailable"), NULL);
    b.hc.ca = e->ca;
    run_probe(&b.hc, 0, &o);
    assert_false(o.res.ok);
    assert_int_equal(o.res.http_status, 503);
    expect_output(&o, "HTTP 503 Service");
}

static void https_wrong_ca_refused(void **state)
{
    tls_env_t *e = *state;
    if (!e) skip();
    hcbuf_t b;
    outcome_t o;
    mkhc(&b, CI_HC_HTTP, 5000, tls_url(e, "localhost", "/health"), NULL);
    b.hc.ca = e->wrong_ca;
    run_probe(&b.hc, 0, &o);
    assert_false(o.res.ok);
    assert_int_equal(o.res.http_status, 0);
    expect_output(&o, "TLS: certificate verify failed: ");
    /* the system store does not know the test CA either */
    b.hc.ca = NULL;
    run_probe(&b.hc, 0, &o);
    assert_false(o.res.ok);
    expect_output(&o, "TLS: certificate verify failed: ");
}

static void https_wrong_name_refused(void **state)
{
    tls_env_t *e = *state;
    if (!e) skip();
    hcbuf_t b;
    outcome_t o;
    /* the certificate names localhost only, not 127.0.0.1 */
    mkhc(&b, CI_HC_HTTP, 5000, tls_url(e, "127.0.0.1", "/health"), NULL);
    b.hc.ca = e->ca;
    run_probe(&b.hc, 0, &o);
    assert_false(o.res.ok);
    expect_output(&o, "TLS: certificate verify failed: IP address mismatch");
}

static void https_insecure_ok(void **state)
{
    tls_env_t *e = *state;
    if (!e) skip();
    hcbuf_t b;
    outcome_t o;
    mkhc(&b, CI_HC_HTTP, 5000, tls_url(e, "127.0.0.1", "/health"), NULL);
    b.hc.insecure = true;
    b.hc.ca = e->wrong_ca; /* ignored */
    run_probe(&b.hc, 0, &o);
    assert_true(o.res.ok);
    assert_int_equal(o.res.http_status, 200);
}

static void https_self_signed_leaf_as_ca(void **state)
{
    tls_env_t *e = *state;
    if (!e) skip();
    hcbuf_t b;
    outcome_t o;
    /* the deployment case: nginx serves certgen's self-signed certificate and
     * the probe trusts that very file */
    char u[128], ca[128];
    snprintf(u, sizeof(u), "https://localhost:%d/api/v2/heartbeat", e->port2);
    snprintf(ca, sizeof(ca), "%s/leaf.pem", e->dir);
    mkhc(&b, CI_HC_HTTP, 5000, u, NULL);
    b.hc.ca = ca;
    run_probe(&b.hc, 0, &o);
    assert_true(o.res.ok);
    b.hc.ca = e->ca;
    run_probe(&b.hc, 0, &o);
    assert_false(o.res.ok);
    expect_output(&o, "TLS: certificate verify failed: ");
}

static void https_ca_file_replaced(void **state)
{
    tls_env_t *e = *state;
    if (!e) skip();
    hcbuf_t b;
    outcome_t o;
    char ca[160];
    snprintf(ca, sizeof(ca), "%s/rotating-ca.pem", e->dir);
    assert_int_equal(sh("cp %s %s", e->wrong_ca, ca), 0);
    mkhc(&b, CI_HC_HTTP, 5000, tls_url(e, "localhost", "/health"), NULL);
    b.hc.ca = ca;
    run_probe(&b.hc, 0, &o);
    assert_false(o.res.ok);
    /* the right CA lands (as certgen would rename it in): reloaded */
    assert_int_equal(sh("cp %s %s.new && mv %s.new %s", e->ca, ca, ca, ca), 0);
    run_probe(&b.hc, 0, &o);
    assert_true(o.res.ok);
}

static void https_cancel_mid_handshake(void **state)
{
    tls_env_t *e = *state;
    if (!e) skip();
    hcbuf_t b;
    mkhc(&b, CI_HC_HTTP, 5000, tls_url(e, "localhost", "/health"), NULL);
    b.hc.ca = e->ca;
    /* cancel after each number of loop iterations: lands in resolving,
     * connecting, handshaking, reading, or after the result (then the
     * callback has run and we stop) */
    for (int iters = 0; iters < 40; iters++) {
        uv_loop_t loop;
        outcome_t o;
        memset(&o, 0, sizeof(o));
        assert_int_equal(uv_loop_init(&loop), 0);
        ci_probe_t *p = NULL;
        assert_int_equal(ci_probe_start(&loop, &b.hc, 0, on_result, &o, &p), 0);
        for (int i = 0; i < iters && o.ncalls == 0; i++) uv_run(&loop, UV_RUN_ONCE);
        if (o.ncalls == 0) ci_probe_cancel(p);
        uv_run(&loop, UV_RUN_DEFAULT);
        assert_true(o.ncalls <= 1);
        assert_int_equal(uv_loop_close(&loop), 0);
    }
}

/* ---- real Chroma ------------------------------------------------------ */

typedef struct retry {
    uv_timer_t t;
    const ci_healthcheck_t *hc;
    outcome_t o;
    uint64_t deadline;
    int probes;
} retry_t;

static void retry_result(ci_probe_t *p, const ci_probe_result_t *res, void *data);

static void retry_fire(uv_timer_t *t)
{
    retry_t *r = ci_container_of(t, retry_t, t);
    r->probes++;
    assert_int_equal(ci_probe_start(t->loop, r->hc, 0, retry_result, r, NULL), 0);
}

static void retry_result(ci_probe_t *p, const ci_probe_result_t *res, void *data)
{
    (void)p;
    retry_t *r = data;
    r->o.ncalls++;
    r->o.res = *res;
    if (res->ok || ci_now_ms() > r->deadline) {
        uv_close((uv_handle_t *)&r->t, NULL);
        return;
    }
    uv_timer_start(&r->t, retry_fire, 100, 0); /* start_interval */
}

static void chroma_heartbeat_fallback(void **state)
{
    (void)state;
    const char *bin = getenv("CHROMA_BIN");
    if (!bin || !*bin) bin = "/root/.cache/chroma-init/chroma/node_modules/.bin/chroma";
    if (access(bin, X_OK) != 0) {
        print_message("    chroma not found at %s: skipped\n", bin);
        skip();
    }
    char dir[] = "/tmp/ci-probe-chroma-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char data[128], log[128], port[16];
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(log, sizeof(log), "%s/chroma.log", dir);
    int p = closed_port();
    snprintf(port, sizeof(port), "%d", p);
    char *argv[] = {(char *)bin, "run",    "--path", data, "--host",
                    "127.0.0.1", "--port", port,     NULL};
    pid_t pid = spawn_child(argv, log);

    hcbuf_t b;
    char u1[128], u2[128];
    snprintf(u1, sizeof(u1), "http://127.0.0.1:%d/api/v1/heartbeat", p);
    snprintf(u2, sizeof(u2), "http://127.0.0.1:%d/api/v2/heartbeat", p);
    mkhc(&b, CI_HC_HTTP, 2000, u1, u2, NULL);

    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    retry_t r;
    memset(&r, 0, sizeof(r));
    r.hc = &b.hc;
    r.deadline = ci_now_ms() + 20000;
    assert_int_equal(uv_timer_init(&loop, &r.t), 0);
    uv_timer_start(&r.t, retry_fire, 0, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    print_message("    chroma: %d probes, last: %s\n", r.probes, r.o.res.output);

    stop_child(pid);
    sh("rm -rf %s", dir);
    assert_true(r.o.res.ok);
    assert_int_equal(r.o.res.http_status, 200);
    assert_int_equal(r.o.res.url_index, 1);
    char want[200];
    snprintf(want, sizeof(want), "HTTP 200 OK from %s", u2);
    assert_string_equal(r.o.res.output, want);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* https:// goes through the real module (ci_tls_load), found here. */
    setenv("CHROMA_INIT_TLS_MODULE", CI_TLS_MODULE, 0);
#define T(f) cmocka_unit_test_setup_teardown(f, srv_setup, srv_teardown)
    const struct CMUnitTest plain[] = {
        T(http_ok),
        T(http_fallback_after_404),
        T(http_fallback_after_410),
        T(http_remembered_url_first),
        T(http_404_on_last_url_fails),
        T(http_500_fails_without_fallback),
        T(http_redirect_is_healthy),
        T(http_body_forms),
        T(http_slow_times_out),
        T(http_reset),
        T(http_malformed),
        T(http_connection_refused),
        T(http_localhost_resolves),
        T(http_bad_urls_reported_async),
        T(http_unknown_host),
        T(http_ipv6_literal),
        T(tcp_ok_and_refused),
        T(cancel_in_every_state),
        T(tls_handshake_timeout_and_errors),
    };
#undef T
    const struct CMUnitTest tls[] = {
        cmocka_unit_test(https_verified_ok),      cmocka_unit_test(https_fallback_and_status),
        cmocka_unit_test(https_wrong_ca_refused), cmocka_unit_test(https_wrong_name_refused),
        cmocka_unit_test(https_insecure_ok),      cmocka_unit_test(https_self_signed_leaf_as_ca),
        cmocka_unit_test(https_ca_file_replaced), cmocka_unit_test(https_cancel_mid_handshake),
    };
    const struct CMUnitTest chroma[] = {
        cmocka_unit_test(chroma_heartbeat_fallback),
    };
    int fails = cmocka_run_group_tests_name("probe.plain", plain, NULL, NULL);
    fails += cmocka_run_group_tests_name("probe.tls", tls, tls_setup, tls_teardown);
    fails += cmocka_run_group_tests_name("probe.chroma", chroma, NULL, NULL);
    ci_probe_cleanup();
    return fails;
}
