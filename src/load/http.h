// SPDX-License-Identifier: MIT
// Incremental HTTP/1.1 response parser: status line, headers, Content-Length, chunked, EOF.
#ifndef CRUX_HTTP_H
#define CRUX_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A header line longer than this, or a header block larger than HTTP_HEADERS_MAX, is a
 * protocol error (a server sending endless headers cannot grow crux's memory). */
#define HTTP_LINE_MAX 8192
#define HTTP_HEADERS_MAX 65536

enum http_state {
    HTTP_STATUS,     /* reading the status line */
    HTTP_HEADERS,    /* reading header lines */
    HTTP_BODY_LEN,   /* reading a Content-Length body */
    HTTP_CHUNK_SIZE, /* reading a chunk-size line */
    HTTP_CHUNK_DATA, /* reading chunk data */
    HTTP_CHUNK_END,  /* reading the CRLF after chunk data */
    HTTP_TRAILERS,   /* reading trailer lines after the last chunk */
    HTTP_BODY_EOF,   /* body delimited by the connection's end */
    HTTP_DONE,       /* response complete */
    HTTP_ERROR,      /* malformed response; see `error` */
};

/* Parser state for one response; lives in the connection, reset per request. */
struct http_resp {
    enum http_state state;
    int status;             /* status code of the final (non-1xx) response */
    bool no_body;           /* the request was HEAD: no body whatever the headers say */
    bool keep_alive;        /* the connection may carry the next request */
    bool chunked;           /* Transfer-Encoding: chunked */
    bool sse;               /* Content-Type: text/event-stream */
    int64_t content_length; /* -1 when absent */
    uint64_t remaining;     /* bytes left in the body or the current chunk */
    uint64_t body_bytes;    /* body bytes delivered (after de-chunking) */
    size_t header_bytes;    /* bytes of status line and headers so far */
    const char *error;      /* static text of the protocol error in HTTP_ERROR */
    size_t line_len;        /* bytes of a line split across reads, held in `line` */
    char line[HTTP_LINE_MAX];
};

/* Receives body bytes (de-chunked), in order. */
typedef void (*http_body_fn)(void *ctx, const char *p, size_t n);

/* Prepares `r` for a new response; `head` is true for a HEAD request. */
void http_resp_reset(struct http_resp *r, bool head);
/* Parses `n` bytes at `p`, passing body bytes to `on_body` (may be NULL). Returns the number of
 * bytes consumed: fewer than `n` only when the response completed (HTTP_DONE) or failed
 * (HTTP_ERROR) in the middle; the state tells which. */
size_t http_feed(struct http_resp *r, const char *p, size_t n, http_body_fn on_body, void *ctx);
/* The connection ended: true when that completes the response (an EOF-delimited body), which
 * then moves to HTTP_DONE; false when the response was cut short. */
bool http_eof(struct http_resp *r);

#endif
