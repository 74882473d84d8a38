/* http_parse: a strict, incremental HTTP/1.x response parser (see http_parse.h). */
#include "chroma_init/http_parse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

enum {
    S_STATUS = 0, /* status line */
    S_HEADER,     /* header lines */
    S_BODY_LENGTH,
    S_BODY_CLOSE,
    S_CHUNK_SIZE, /* chunk-size [; ext] line */
    S_CHUNK_DATA,
    S_CHUNK_END, /* the CRLF after chunk data */
    S_TRAILER,   /* trailer lines after the last chunk */
    S_DONE,
};

#define MAX_CHUNK ((uint64_t)1 << 60)

void ci_http_parser_init(ci_http_parser_t *p)
{
    memset(p, 0, sizeof(*p));
    p->state = S_STATUS;
}

const char *ci_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 103:
        return "Early Hints";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 410:
        return "Gone";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "";
    }
}

static int fail(ci_http_parser_t *p, int err, const char *why)
{
    p->err = err;
    p->error = why;
    return err;
}

static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* VCHAR, SP, HTAB or obs-text: what a field value or reason phrase may hold. */
static bool is_text(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Trims OWS on both sides of [*s, *e). */
static void trim(const char **s, const char **e)
{
    while (*s < *e && is_ows(**s)) (*s)++;
    while (*e > *s && is_ows((*e)[-1])) (*e)--;
}

static int parse_status_line(ci_http_parser_t *p, const char *l, size_t n)
{
    /* HTTP/1.x SP 3DIGIT [SP reason] */
    if (n < 12 || memcmp(l, "HTTP/1.", 7) != 0 || l[7] < '0' || l[7] > '9' || l[8] != ' ')
        return fail(p, -EBADMSG, "bad status line");
    if (l[9] < '1' || l[9] > '5' || l[10] < '0' || l[10] > '9' || l[11] < '0' || l[11] > '9')
        return fail(p, -EBADMSG, "bad status code");
    if (n > 12 && l[12] != ' ') return fail(p, -EBADMSG, "bad status line");
    p->minor = l[7] - '0';
    p->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    size_t r = 0;
    for (size_t i = 13; i < n; i++) {
        unsigned char c = (unsigned char)l[i];
        if (!is_text(c)) return fail(p, -EBADMSG, "control character in reason phrase");
        if (r + 1 < sizeof(p->reason)) p->reason[r++] = (c == '\t' || c >= 0x7f) ? ' ' : (char)c;
    }
    while (r > 0 && p->reason[r - 1] == ' ') r--;
    p->reason[r] = '\0';
    return 0;
}

static int parse_content_length(ci_http_parser_t *p, const char *v, const char *end)
{
    /* 1*DIGIT, or a list of identical values ("5, 5") as RFC 9110 §8.6 allows. */
    const char *s = v;
    bool any = false;
    while (s <= end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *e = comma ? comma : end;
        const char *a = s, *b = e;
        trim(&a, &b);
        if (a == b) return fail(p, -EBADMSG, "bad Content-Length");
        uint64_t val = 0;
        for (const char *q = a; q < b; q++) {
            if (*q < '0' || *q > '9') return fail(p, -EBADMSG, "bad Content-Length");
            if (val > (UINT64_MAX - 9) / 10) return fail(p, -EBADMSG, "Content-Length too large");
            val = val * 10 + (uint64_t)(*q - '0');
        }
        if ((p->have_cl || any) && val != p->content_length)
            return fail(p, -EBADMSG, "conflicting Content-Length");
        p->content_length = val;
        any = true;
        if (!comma) break;
        s = comma + 1;
    }
    p->have_cl = true;
    return 0;
}

static int parse_transfer_encoding(ci_http_parser_t *p, const char *v, const char *end)
{
    const char *s = v;
    p->have_te = true;
    while (s <= end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *e = comma ? comma : end;
        const char *a = s, *b = e;
        trim(&a, &b);
        if (a < b) {
            const char *t = a;
            while (t < b && is_tchar((unsigned char)*t)) t++;
            if (t == a || (t < b && !is_ows(*t) && *t != ';'))
                return fail(p, -EBADMSG, "bad Transfer-Encoding");
            if ((size_t)(t - a) == 7 && strncasecmp(a, "chunked", 7) == 0) {
                if (p->te_chunked || t != b)
                    return fail(p, -EBADMSG, "bad Transfer-Encoding: chunked");
                p->te_chunked = true;
            } else {
                /* A coding after chunked: chunked is not final, so the body is
                 * delimited by the close (RFC 9112 §6.3). */
                p->te_chunked = false;
            }
        }
        if (!comma) break;
        s = comma + 1;
    }
    return 0;
}

/* A header (or trailer) line, without its line ending, not empty. */
static int parse_field(ci_http_parser_t *p, const char *l, size_t n, bool trailer)
{
    if (is_ows(l[0])) return fail(p, -EBADMSG, "obsolete header line folding");
    if (!memchr(l, ':', n)) return fail(p, -EBADMSG, "header without colon");
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)l[i])) i++;
    if (i == 0 || l[i] != ':') return fail(p, -EBADMSG, "bad header name");
    size_t namelen = i;
    for (size_t j = i + 1; j < n; j++)
        if (!is_text((unsigned char)l[j]))
            return fail(p, -EBADMSG, "control character in header value");
    if (trailer) return 0;
    const char *v = l + i + 1, *end = l + n;
    trim(&v, &end);
    if (namelen == 14 && strncasecmp(l, "Content-Length", 14) == 0)
        return parse_content_length(p, v, end);
    if (namelen == 17 && strncasecmp(l, "Transfer-Encoding", 17) == 0)
        return parse_transfer_encoding(p, v, end);
    return 0;
}

/* The empty line after the headers: decide how the body is delimited. */
static int end_of_headers(ci_http_parser_t *p)
{
    if (p->status >= 100 && p->status < 200 && p->status != 101) {
        /* Interim response: the final one follows. header_bytes keeps counting so
         * an endless stream of 1xx stays bounded. */
        p->status = 0;
        p->minor = 0;
        p->reason[0] = '\0';
        p->have_cl = p->have_te = p->te_chunked = false;
        p->content_length = 0;
        p->state = S_STATUS;
        return CI_HTTP_NEED_MORE;
    }
    p->headers_done = true;
    if (p->status == 101 || p->status == 204 || p->status == 304) {
        p->body = CI_HTTP_BODY_NONE;
        p->state = S_DONE;
        return CI_HTTP_DONE;
    }
    if (p->have_te) {
        /* Transfer-Encoding overrides Content-Length (RFC 9112 §6.3). */
        p->body = p->te_chunked ? CI_HTTP_BODY_CHUNKED : CI_HTTP_BODY_CLOSE;
        p->state = p->te_chunked ? S_CHUNK_SIZE : S_BODY_CLOSE;
        return CI_HTTP_NEED_MORE;
    }
    if (p->have_cl) {
        if (p->content_length == 0) {
            p->body = CI_HTTP_BODY_NONE;
            p->state = S_DONE;
            return CI_HTTP_DONE;
        }
        p->body = CI_HTTP_BODY_LENGTH;
        p->state = S_BODY_LENGTH;
        return CI_HTTP_NEED_MORE;
    }
    p->body = CI_HTTP_BODY_CLOSE;
    p->state = S_BODY_CLOSE;
    return CI_HTTP_NEED_MORE;
}

static int parse_chunk_size(ci_http_parser_t *p, const char *l, size_t n)
{
    size_t i = 0;
    uint64_t size = 0;
    while (i < n && hexval(l[i]) >= 0) {
        size = size * 16 + (uint64_t)hexval(l[i]);
        if (size > MAX_CHUNK) return fail(p, -EBADMSG, "chunk size too large");
        i++;
    }
    if (i == 0) return fail(p, -EBADMSG, "bad chunk size");
    while (i < n && is_ows(l[i])) i++;
    if (i < n) {
        /* chunk-ext: ; name [= value], not interpreted; no control characters. */
        if (l[i] != ';') return fail(p, -EBADMSG, "bad chunk size");
        for (; i < n; i++)
            if (!is_text((unsigned char)l[i]))
                return fail(p, -EBADMSG, "control character in chunk extension");
    }
    if (size == 0) {
        p->state = S_TRAILER;
        p->header_bytes = 0;
    } else {
        p->chunk_left = size;
        p->state = S_CHUNK_DATA;
    }
    return CI_HTTP_NEED_MORE;
}

/* A complete line (line ending stripped) in a line-oriented state. */
static int handle_line(ci_http_parser_t *p)
{
    const char *l = p->line;
    size_t n = p->line_len;
    p->line_len = 0;
    switch (p->state) {
    case S_STATUS: {
        int r = parse_status_line(p, l, n);
        if (r < 0) return r;
        p->state = S_HEADER;
        return CI_HTTP_NEED_MORE;
    }
    case S_HEADER:
        if (n == 0) return end_of_headers(p);
        return parse_field(p, l, n, false);
    case S_CHUNK_SIZE:
        return parse_chunk_size(p, l, n);
    case S_TRAILER:
        if (n == 0) {
            p->state = S_DONE;
            return CI_HTTP_DONE;
        }
        return parse_field(p, l, n, true);
    default:
        return fail(p, -EBADMSG, "internal parser error");
    }
}

/* Body bytes in a counting state; returns DONE when the bound is reached. */
static bool body_bound(ci_http_parser_t *p)
{
    if (p->body_read >= CI_HTTP_MAX_BODY) {
        p->body_truncated = true;
        p->state = S_DONE;
        return true;
    }
    return false;
}

int ci_http_parser_feed(ci_http_parser_t *p, const char *buf, size_t len, size_t *consumed)
{
    size_t i = 0;
    int r = CI_HTTP_NEED_MORE;
    if (p->err) {
        r = p->err;
        goto out;
    }
    while (i < len && p->state != S_DONE) {
        switch (p->state) {
        case S_BODY_LENGTH:
        case S_BODY_CLOSE:
        case S_CHUNK_DATA: {
            uint64_t want = len - i;
            uint64_t room = CI_HTTP_MAX_BODY - p->body_read;
            if (p->state == S_BODY_LENGTH && want > p->content_length - p->body_read)
                want = p->content_length - p->body_read;
            if (p->state == S_CHUNK_DATA && want > p->chunk_left) want = p->chunk_left;
            if (want > room) want = room;
            i += (size_t)want;
            p->body_read += want;
            if (p->state == S_BODY_LENGTH && p->body_read == p->content_length) {
                p->state = S_DONE;
                break;
            }
            if (p->state == S_CHUNK_DATA) {
                p->chunk_left -= want;
                if (p->chunk_left == 0) {
                    p->state = S_CHUNK_END;
                    p->line_cr = false;
                    break;
                }
            }
            body_bound(p);
            break;
        }
        case S_CHUNK_END: {
            char c = buf[i++];
            if (c == '\r' && !p->line_cr) {
                p->line_cr = true;
            } else if (c == '\n') {
                p->line_cr = false;
                p->state = S_CHUNK_SIZE;
                if (body_bound(p)) break;
            } else {
                i--;
                r = fail(p, -EBADMSG, "missing CRLF after chunk data");
                goto out;
            }
            break;
        }
        default: {
            /* Line-oriented states: status, headers, chunk size, trailers. */
            char c = buf[i++];
            if (p->state != S_CHUNK_SIZE && ++p->header_bytes > CI_HTTP_MAX_HEADERS) {
                i--;
                r = fail(p, -EMSGSIZE, "headers too large");
                goto out;
            }
            if (c == '\n') {
                p->line_cr = false;
                r = handle_line(p);
                if (r < 0) {
                    i--;
                    goto out;
                }
            } else if (p->line_cr || c == '\0') {
                i--;
                r = fail(p, -EBADMSG, c == '\0' ? "NUL byte in header" : "bare CR");
                goto out;
            } else if (c == '\r') {
                p->line_cr = true;
            } else {
                if (p->line_len >= sizeof(p->line)) {
                    i--;
                    r = fail(p, -EMSGSIZE, "line too long");
                    goto out;
                }
                p->line[p->line_len++] = c;
            }
            break;
        }
        }
    }
    r = p->state == S_DONE ? CI_HTTP_DONE : CI_HTTP_NEED_MORE;
out:
    p->total += i;
    if (consumed) *consumed = i;
    return r;
}

int ci_http_parser_finish(ci_http_parser_t *p)
{
    if (p->err) return p->err;
    if (p->state == S_DONE) return CI_HTTP_DONE;
    if (p->state == S_BODY_CLOSE) {
        p->state = S_DONE;
        return CI_HTTP_DONE;
    }
    if (p->total == 0) return fail(p, -EBADMSG, "empty response");
    return fail(p, -EBADMSG, "response truncated");
}
