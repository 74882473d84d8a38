/* http_parse: a small, strict, incremental HTTP/1.x response parser.
 *
 * Pure logic: no I/O, no allocation. Feed it the bytes of one response in
 * chunks of any size (down to one byte at a time); it reads the status line
 * and headers, then reads and discards the body (Content-Length, chunked with
 * extensions and trailers, or close-delimited) up to CI_HTTP_MAX_BODY bytes,
 * past which it stops with `body_truncated` set: the status already decides.
 *
 * Interim 1xx responses (100 Continue, 103 Early Hints) are skipped; 101 is
 * returned as a final response. Responses with status 204 or 304 have no body.
 *
 * Malformed input is rejected with -EBADMSG and `error` names the problem
 * (bad status line, header without colon, bad chunk size, conflicting
 * Content-Length, obsolete line folding, control characters, ...); headers
 * past CI_HTTP_MAX_HEADERS bytes are rejected with -EMSGSIZE. Lines may end in
 * CRLF or a bare LF (RFC 9112 §2.2); a bare CR is an error. */
#ifndef CHROMA_INIT_HTTP_PARSE_H
#define CHROMA_INIT_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CI_HTTP_MAX_HEADERS (16 * 1024) /* status line + headers, also trailers */
#define CI_HTTP_MAX_LINE 8192           /* one status/header/chunk-size line */
#define CI_HTTP_MAX_BODY (64 * 1024)    /* body bytes read before giving up on it */
#define CI_HTTP_REASON_MAX 96

enum {
    CI_HTTP_NEED_MORE = 0, /* feed more bytes, or call ci_http_parser_finish at EOF */
    CI_HTTP_DONE = 1,      /* the response is complete (or its body was truncated) */
};

typedef enum ci_http_body {
    CI_HTTP_BODY_NONE = 0, /* 1xx, 204, 304, or Content-Length: 0 */
    CI_HTTP_BODY_LENGTH,   /* Content-Length */
    CI_HTTP_BODY_CHUNKED,  /* Transfer-Encoding: ..., chunked */
    CI_HTTP_BODY_CLOSE,    /* read until the connection closes */
} ci_http_body_t;

typedef struct ci_http_parser {
    /* Results, valid once headers_done is true. */
    int status;                      /* 100..599 */
    int minor;                       /* HTTP/1.<minor> */
    char reason[CI_HTTP_REASON_MAX]; /* reason phrase, possibly truncated, printable */
    bool headers_done;               /* the final status line and headers are in */
    ci_http_body_t body;             /* how the body is delimited */
    uint64_t content_length;         /* with CI_HTTP_BODY_LENGTH */
    uint64_t body_read;              /* body (payload) bytes seen so far */
    bool body_truncated;             /* stopped after CI_HTTP_MAX_BODY body bytes */
    const char *error;               /* static string when an error was returned */
    uint64_t total;                  /* bytes consumed in all */

    /* Internal state. */
    int state;
    int err;             /* sticky error, 0 if none */
    size_t header_bytes; /* of this header block (or trailers) */
    size_t line_len;
    bool line_cr;    /* the previous byte was a CR */
    bool have_cl;    /* a Content-Length header was seen */
    bool have_te;    /* a Transfer-Encoding header was seen */
    bool te_chunked; /* its last coding is chunked */
    uint64_t chunk_left;
    char line[CI_HTTP_MAX_LINE];
} ci_http_parser_t;

/* Resets p for a new response. */
void ci_http_parser_init(ci_http_parser_t *p);

/* Feeds len bytes. *consumed (may be NULL) receives how many bytes were used:
 * all of them with CI_HTTP_NEED_MORE, up to the end of the response with
 * CI_HTTP_DONE (extra bytes are not part of it), up to the offending byte on
 * error. Returns CI_HTTP_NEED_MORE, CI_HTTP_DONE, -EBADMSG (malformed, see
 * p->error) or -EMSGSIZE (headers too large). Errors are sticky; after DONE,
 * further calls return DONE and consume nothing. */
int ci_http_parser_feed(ci_http_parser_t *p, const char *buf, size_t len, size_t *consumed);

/* The connection has closed. Returns CI_HTTP_DONE when the response is
 * complete (a close-delimited body ends here), -EBADMSG (p->error says "empty
 * response" or "response truncated") when it is not, or the sticky error. */
int ci_http_parser_finish(ci_http_parser_t *p);

/* Standard reason phrase for a status ("Not Found"), or "" if unknown. */
const char *ci_http_reason(int status);

#endif
