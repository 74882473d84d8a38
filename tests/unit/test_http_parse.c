#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chroma_init/http_parse.h"

/* Feeds s in pieces of `step` bytes (0: all at once). When the parser says
 * DONE, *rest receives the bytes not consumed. At the end of input, when eof
 * is true, calls finish. Returns the last result. */
static int run(ci_http_parser_t *p, const char *s, size_t len, size_t step, bool eof, size_t *rest)
{
    ci_http_parser_init(p);
    size_t off = 0;
    int r = CI_HTTP_NEED_MORE;
    if (rest) *rest = 0;
    if (step == 0) step = len ? len : 1;
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        size_t used = 99999;
        r = ci_http_parser_feed(p, s + off, n, &used);
        assert_true(used <= n);
        off += used;
        if (r != CI_HTTP_NEED_MORE) {
            if (rest) *rest = len - off;
            return r;
        }
        assert_int_equal(used, n);
    }
    if (eof) r = ci_http_parser_finish(p);
    return r;
}

static const size_t steps[] = {0, 1, 2, 3, 5, 7, 13, 64};

/* Same result for every way of splitting the input. */
static void expect_all(const char *s, bool eof, int want, int status, size_t want_rest)
{
    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
        ci_http_parser_t p;
        size_t rest = 0;
        int r = run(&p, s, strlen(s), steps[k], eof, &rest);
        if (r != want)
            fail_msg("step %zu: got %d want %d (%s)", steps[k], r, want, p.error ? p.error : "");
        if (want == CI_HTTP_DONE) {
            assert_int_equal(p.status, status);
            assert_int_equal(rest, want_rest);
        }
    }
}

static void ok_content_length(void **state)
{
    (void)state;
    const char *s = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
    expect_all(s, false, CI_HTTP_DONE, 200, 0);
    ci_http_parser_t p;
    assert_int_equal(run(&p, s, strlen(s), 1, false, NULL), CI_HTTP_DONE);
    assert_string_equal(p.reason, "OK");
    assert_int_equal(p.minor, 1);
    assert_int_equal(p.body, CI_HTTP_BODY_LENGTH);
    assert_int_equal(p.body_read, 5);
    assert_false(p.body_truncated);
    assert_true(p.headers_done);
}

static void extra_bytes_not_consumed(void **state)
{
    (void)state;
    expect_all("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiEXTRA", false, CI_HTTP_DONE, 200, 5);
    expect_all("HTTP/1.1 204 No Content\r\n\r\nXY", false, CI_HTTP_DONE, 204, 2);
}

static void need_more_until_complete(void **state)
{
    (void)state;
    expect_all("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", false, CI_HTTP_NEED_MORE, 0,
               0);
    ci_http_parser_t p;
    const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello";
    assert_int_equal(run(&p, s, strlen(s), 0, true, NULL), -EBADMSG);
    assert_string_equal(p.error, "response truncated");
    /* headers_done already lets a caller see the status */
    assert_true(p.headers_done);
    assert_int_equal(p.status, 200);
}

static void bare_lf_and_no_reason(void **state)
{
    (void)state;
    expect_all("HTTP/1.0 200\nContent-Length: 0\n\n", false, CI_HTTP_DONE, 200, 0);
    ci_http_parser_t p;
    const char *s = "HTTP/1.1 503 \r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(run(&p, s, strlen(s), 0, false, NULL), CI_HTTP_DONE);
    assert_int_equal(p.status, 503);
    assert_string_equal(p.reason, "");
}

static void reason_kept_and_sanitized(void **state)
{
    (void)state;
    ci_http_parser_t p;
    const char *s = "HTTP/1.1 503 Service \tUnavailable\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(run(&p, s, strlen(s), 1, false, NULL), CI_HTTP_DONE);
    assert_string_equal(p.reason, "Service  Unavailable");
    assert_string_equal(ci_http_reason(404), "Not Found");
    assert_string_equal(ci_http_reason(599), "");
}

static void no_body_statuses(void **state)
{
    (void)state;
    expect_all("HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", false, CI_HTTP_DONE, 304,
               0);
    expect_all("HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", false, CI_HTTP_DONE,
               204, 0);
    expect_all("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, CI_HTTP_DONE, 200, 0);
}

static void interim_responses_skipped(void **state)
{
    (void)state;
    expect_all("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
               "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
               false, CI_HTTP_DONE, 200, 0);
    expect_all("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nraw", false, CI_HTTP_DONE,
               101, 3);
}

static void chunked(void **state)
{
    (void)state;
    const char *s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5\r\nhello\r\n"
                    "1A;name=value;flag\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                    "0\r\n\r\n";
    expect_all(s, false, CI_HTTP_DONE, 200, 0);
    ci_http_parser_t p;
    assert_int_equal(run(&p, s, strlen(s), 1, false, NULL), CI_HTTP_DONE);
    assert_int_equal(p.body, CI_HTTP_BODY_CHUNKED);
    assert_int_equal(p.body_read, 5 + 26);
}

static void chunked_with_trailers_and_ext_spaces(void **state)
{
    (void)state;
    expect_all("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, Chunked\r\n\r\n"
               "3 ; ext=\"quoted value\"\r\nabc\r\n0\r\nX-Trailer: yes\r\nX-Other: 1\r\n\r\nNEXT",
               false, CI_HTTP_DONE, 200, 4);
}

static void chunked_overrides_content_length(void **state)
{
    (void)state;
    expect_all("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
               "2\r\nhi\r\n0\r\n\r\n",
               false, CI_HTTP_DONE, 200, 0);
}

static void close_delimited(void **state)
{
    (void)state;
    const char *s = "HTTP/1.0 200 OK\r\nServer: x\r\n\r\nbody until close";
    expect_all(s, false, CI_HTTP_NEED_MORE, 0, 0);
    expect_all(s, true, CI_HTTP_DONE, 200, 0);
    /* a coding other than chunked last: close-delimited */
    expect_all("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nxyz", true, CI_HTTP_DONE,
               200, 0);
    ci_http_parser_t p;
    assert_int_equal(run(&p, s, strlen(s), 3, true, NULL), CI_HTTP_DONE);
    assert_int_equal(p.body, CI_HTTP_BODY_CLOSE);
    assert_int_equal(p.body_read, strlen("body until close"));
}

static void body_bound_stops_reading(void **state)
{
    (void)state;
    size_t big = CI_HTTP_MAX_BODY * 3;
    const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n";
    char *s = malloc(strlen(head) + big + 1);
    assert_non_null(s);
    strcpy(s, head);
    memset(s + strlen(head), 'x', big);
    s[strlen(head) + big] = '\0';
    ci_http_parser_t p;
    size_t rest = 0;
    assert_int_equal(run(&p, s, strlen(s), 1000, false, &rest), CI_HTTP_DONE);
    assert_true(p.body_truncated);
    assert_int_equal(p.body_read, CI_HTTP_MAX_BODY);
    assert_int_equal(rest, big - CI_HTTP_MAX_BODY);
    /* close-delimited: same bound */
    memcpy(s, "HTTP/1.1 200 OK\r\nX-Filler-Headr: 999999999\r\n\r\n", strlen(head));
    assert_int_equal(run(&p, s, strlen(s), 4096, false, &rest), CI_HTTP_DONE);
    assert_true(p.body_truncated);
    assert_int_equal(p.status, 200);
    free(s);

    /* exactly the bound with Content-Length: complete, not truncated */
    char *t = malloc(100 + CI_HTTP_MAX_BODY);
    assert_non_null(t);
    int n = snprintf(t, 100, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", CI_HTTP_MAX_BODY);
    memset(t + n, 'y', CI_HTTP_MAX_BODY);
    assert_int_equal(run(&p, t, (size_t)n + CI_HTTP_MAX_BODY, 777, false, &rest), CI_HTTP_DONE);
    assert_false(p.body_truncated);
    free(t);
}

static void chunked_body_bound(void **state)
{
    (void)state;
    /* endless chunks: stops at the bound */
    ci_http_parser_t p;
    ci_http_parser_init(&p);
    const char *h = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(ci_http_parser_feed(&p, h, strlen(h), NULL), CI_HTTP_NEED_MORE);
    char chunk[1100];
    int n = snprintf(chunk, sizeof(chunk), "400\r\n");
    memset(chunk + n, 'z', 1024);
    memcpy(chunk + n + 1024, "\r\n", 2);
    size_t clen = (size_t)n + 1026;
    int r = CI_HTTP_NEED_MORE;
    for (int i = 0; i < 1000 && r == CI_HTTP_NEED_MORE; i++)
        r = ci_http_parser_feed(&p, chunk, clen, NULL);
    assert_int_equal(r, CI_HTTP_DONE);
    assert_true(p.body_truncated);
    assert_int_equal(p.body_read, CI_HTTP_MAX_BODY);
}

static void expect_error(const char *s, bool eof, int err, const char *why)
{
    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
        ci_http_parser_t p;
        int r = run(&p, s, strlen(s), steps[k], eof, NULL);
        if (r != err) fail_msg("step %zu: got %d want %d for %s", steps[k], r, err, s);
        assert_non_null(p.error);
        if (why && strcmp(p.error, why) != 0)
            fail_msg("step %zu: error \"%s\", want \"%s\"", steps[k], p.error, why);
        /* sticky */
        size_t used = 1;
        assert_int_equal(ci_http_parser_feed(&p, "x", 1, &used), err);
        assert_int_equal(used, 0);
        assert_int_equal(ci_http_parser_finish(&p), err);
    }
}

static void malformed_status_lines(void **state)
{
    (void)state;
    expect_error("garbage\r\n\r\n", false, -EBADMSG, "bad status line");
    expect_error("HTTP/2 200 OK\r\n\r\n", false, -EBADMSG, "bad status line");
    expect_error("HTTP/1.1 20 OK\r\n\r\n", false, -EBADMSG, NULL);
    expect_error("HTTP/1.1 2000 OK\r\n\r\n", false, -EBADMSG, "bad status line");
    expect_error("HTTP/1.1 600 What\r\n\r\n", false, -EBADMSG, "bad status code");
    expect_error("HTTP/1.1 099 X\r\n\r\n", false, -EBADMSG, "bad status code");
    expect_error("HTTP/1.1  200 OK\r\n\r\n", false, -EBADMSG, "bad status code");
    expect_error("http/1.1 200 OK\r\n\r\n", false, -EBADMSG, "bad status line");
    expect_error("\r\nHTTP/1.1 200 OK\r\n\r\n", false, -EBADMSG, "bad status line");
    expect_error("HTTP/1.1 200 O\x01K\r\n\r\n", false, -EBADMSG,
                 "control character in reason phrase");
    expect_error("SSH-2.0-OpenSSH_9.2\r\n", false, -EBADMSG, "bad status line");
}

static void malformed_headers(void **state)
{
    (void)state;
    expect_error("HTTP/1.1 200 OK\r\nNoColonHere\r\n\r\n", false, -EBADMSG, "header without colon");
    expect_error("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", false, -EBADMSG, "bad header name");
    expect_error("HTTP/1.1 200 OK\r\nName : x\r\n\r\n", false, -EBADMSG, "bad header name");
    expect_error("HTTP/1.1 200 OK\r\n: x\r\n\r\n", false, -EBADMSG, "bad header name");
    expect_error("HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", false, -EBADMSG,
                 "obsolete header line folding");
    expect_error("HTTP/1.1 200 OK\r\nA: b\x7f\r\n\r\n", false, -EBADMSG,
                 "control character in header value");
    expect_error("HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", false, -EBADMSG, "bare CR");
    expect_error("HTTP/1.1 200 OK\r\nA: b\r\r\n\r\n", false, -EBADMSG, "bare CR");
    static const char nul[] = "HTTP/1.1 200 OK\r\nA: \0\r\n\r\n";
    for (size_t step = 0; step < 4; step++) {
        ci_http_parser_t p;
        assert_int_equal(run(&p, nul, sizeof(nul) - 1, step, false, NULL), -EBADMSG);
    }
}

static void malformed_content_length(void **state)
{
    (void)state;
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", false,
                 -EBADMSG, "conflicting Content-Length");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello", false, -EBADMSG,
                 "conflicting Content-Length");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, -EBADMSG,
                 "bad Content-Length");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", false, -EBADMSG,
                 "bad Content-Length");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", false, -EBADMSG,
                 "bad Content-Length");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", false,
                 -EBADMSG, "Content-Length too large");
    /* identical repeats are fine */
    expect_all("HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\ncontent-length: 2\r\n\r\nhi", false,
               CI_HTTP_DONE, 200, 0);
}

static void malformed_chunked(void **state)
{
    (void)state;
    const char *h = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    char buf[512];
    snprintf(buf, sizeof(buf), "%szz\r\n", h);
    expect_error(buf, false, -EBADMSG, "bad chunk size");
    snprintf(buf, sizeof(buf), "%s\r\n", h);
    expect_error(buf, false, -EBADMSG, "bad chunk size");
    snprintf(buf, sizeof(buf), "%s-5\r\n", h);
    expect_error(buf, false, -EBADMSG, "bad chunk size");
    snprintf(buf, sizeof(buf), "%s5 x\r\n", h);
    expect_error(buf, false, -EBADMSG, "bad chunk size");
    snprintf(buf, sizeof(buf), "%sFFFFFFFFFFFFFFFFFFFF\r\n", h);
    expect_error(buf, false, -EBADMSG, "chunk size too large");
    snprintf(buf, sizeof(buf), "%s2\r\nhiX\r\n0\r\n\r\n", h);
    expect_error(buf, false, -EBADMSG, "missing CRLF after chunk data");
    snprintf(buf, sizeof(buf), "%s2\r\nhi\r\n0\r\nbad trailer\r\n\r\n", h);
    expect_error(buf, false, -EBADMSG, "header without colon");
    snprintf(buf, sizeof(buf), "%s2\r\nhi\r\n", h);
    expect_error(buf, true, -EBADMSG, "response truncated");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", false, -EBADMSG,
                 "bad Transfer-Encoding: chunked");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", false, -EBADMSG,
                 "bad Transfer-Encoding: chunked");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: @\r\n\r\n", false, -EBADMSG,
                 "bad Transfer-Encoding");
}

static void eof_cases(void **state)
{
    (void)state;
    expect_error("", true, -EBADMSG, "empty response");
    expect_error("HTTP/1.1 200 OK\r\n", true, -EBADMSG, "response truncated");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab", true, -EBADMSG,
                 "response truncated");
}

static void header_limits(void **state)
{
    (void)state;
    /* one line too long */
    size_t n = CI_HTTP_MAX_LINE + 100;
    char *s = malloc(n + 64);
    assert_non_null(s);
    strcpy(s, "HTTP/1.1 200 OK\r\nX-Long: ");
    size_t off = strlen(s);
    memset(s + off, 'a', n);
    strcpy(s + off + n, "\r\n\r\n");
    expect_error(s, false, -EMSGSIZE, "line too long");
    free(s);

    /* many short headers past the total bound */
    size_t cap = CI_HTTP_MAX_HEADERS + 4096;
    char *m = malloc(cap);
    assert_non_null(m);
    strcpy(m, "HTTP/1.1 200 OK\r\n");
    off = strlen(m);
    while (off + 40 < cap - 8) off += (size_t)sprintf(m + off, "X-H: %030d\r\n", 1);
    strcpy(m + off, "\r\n");
    expect_error(m, false, -EMSGSIZE, "headers too large");
    free(m);

    /* endless interim responses stay bounded */
    ci_http_parser_t p;
    ci_http_parser_init(&p);
    int r = CI_HTTP_NEED_MORE;
    for (int i = 0; i < 10000 && r == CI_HTTP_NEED_MORE; i++)
        r = ci_http_parser_feed(&p, "HTTP/1.1 100 Continue\r\n\r\n", 25, NULL);
    assert_int_equal(r, -EMSGSIZE);
}

static void done_is_sticky(void **state)
{
    (void)state;
    ci_http_parser_t p;
    const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(run(&p, s, strlen(s), 0, false, NULL), CI_HTTP_DONE);
    size_t used = 5;
    assert_int_equal(ci_http_parser_feed(&p, "more", 4, &used), CI_HTTP_DONE);
    assert_int_equal(used, 0);
    assert_int_equal(ci_http_parser_finish(&p), CI_HTTP_DONE);
}

/* Deterministic pseudo-random garbage and mutations must never crash or hang. */
static void random_inputs_never_crash(void **state)
{
    (void)state;
    const char *seed = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
                       "5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n";
    size_t len = strlen(seed);
    char buf[256];
    uint32_t x = 12345;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(buf, seed, len);
        int muts = 1 + iter % 4;
        for (int m = 0; m < muts; m++) {
            x = x * 1103515245u + 12345u;
            size_t pos = (x >> 8) % len;
            x = x * 1103515245u + 12345u;
            buf[pos] = (char)(x >> 16);
        }
        ci_http_parser_t p;
        size_t step = 1 + (size_t)(iter % 9);
        int r = run(&p, buf, len, step, true, NULL);
        assert_true(r == CI_HTTP_DONE || r == CI_HTTP_NEED_MORE || r == -EBADMSG || r == -EMSGSIZE);
        if (r < 0) assert_non_null(p.error);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ok_content_length),
        cmocka_unit_test(extra_bytes_not_consumed),
        cmocka_unit_test(need_more_until_complete),
        cmocka_unit_test(bare_lf_and_no_reason),
        cmocka_unit_test(reason_kept_and_sanitized),
        cmocka_unit_test(no_body_statuses),
        cmocka_unit_test(interim_responses_skipped),
        cmocka_unit_test(chunked),
        cmocka_unit_test(chunked_with_trailers_and_ext_spaces),
        cmocka_unit_test(chunked_overrides_content_length),
        cmocka_unit_test(close_delimited),
        cmocka_unit_test(body_bound_stops_reading),
        cmocka_unit_test(chunked_body_bound),
        cmocka_unit_test(malformed_status_lines),
        cmocka_unit_test(malformed_headers),
        cmocka_unit_test(malformed_content_length),
        cmocka_unit_test(malformed_chunked),
        cmocka_unit_test(eof_cases),
        cmocka_unit_test(header_limits),
        cmocka_unit_test(done_is_sticky),
        cmocka_unit_test(random_inputs_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
