// SPDX-License-Identifier: MIT
// Incremental HTTP/1.1 response parser. Lines are parsed in place when a read holds them whole
// and copied into the bounded `line` buffer only when they straddle reads.
#include "load/http.h"

#include <string.h>
#include <strings.h>

void http_resp_reset(struct http_resp *r, bool head)
{
    r->state = HTTP_STATUS;
    r->status = 0;
    r->no_body = head;
    r->keep_alive = true;
    r->chunked = false;
    r->sse = false;
    r->content_length = -1;
    r->remaining = 0;
    r->body_bytes = 0;
    r->header_bytes = 0;
    r->error = NULL;
    r->line_len = 0;
}

static void fail(struct http_resp *r, const char *why)
{
    r->state = HTTP_ERROR;
    r->error = why;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* "HTTP/1.x NNN[ reason]" */
static void status_line(struct http_resp *r, const char *s, size_t n)
{
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || !is_digit(s[7]) || s[8] != ' ' ||
        !is_digit(s[9]) || !is_digit(s[10]) || !is_digit(s[11]) || (n > 12 && s[12] != ' ')) {
        fail(r, "malformed status line");
        return;
    }
    r->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (r->status < 100 || r->status == 101) {
        fail(r, r->status == 101 ? "unexpected protocol switch (101)" : "bad status code");
        return;
    }
    r->keep_alive = s[7] != '0'; /* HTTP/1.0 closes unless it says keep-alive */
    r->state = HTTP_HEADERS;
}

static bool name_is(const char *s, size_t n, const char *name)
{
    size_t l = strlen(name);
    return n == l && strncasecmp(s, name, l) == 0;
}

/* True when the comma-separated header value `v` holds `token` (case-insensitive). */
static bool has_token(const char *v, size_t n, const char *token)
{
    size_t l = strlen(token);
    for (size_t i = 0; i + l <= n; i++) {
        if (strncasecmp(v + i, token, l) != 0)
            continue;
        bool left = i == 0 || v[i - 1] == ',' || v[i - 1] == ' ' || v[i - 1] == '\t';
        bool right = i + l == n || v[i + l] == ',' || v[i + l] == ' ' || v[i + l] == ';';
        if (left && right)
            return true;
    }
    return false;
}

static void header_line(struct http_resp *r, const char *s, size_t n)
{
    if (s[0] == ' ' || s[0] == '\t')
        return; /* obsolete line folding: a continuation of a header crux does not read */
    const char *colon = memchr(s, ':', n);
    if (!colon || colon == s) {
        fail(r, "malformed header line");
        return;
    }
    size_t nl = (size_t)(colon - s);
    for (size_t i = 0; i < nl; i++)
        if (s[i] == ' ' || s[i] == '\t') {
            fail(r, "malformed header name");
            return;
        }
    const char *v = colon + 1;
    size_t vn = n - nl - 1;
    while (vn && (*v == ' ' || *v == '\t'))
        v++, vn--;
    while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
        vn--;
    if (name_is(s, nl, "content-length")) {
        if (!vn || vn > 18) {
            fail(r, "bad Content-Length");
            return;
        }
        int64_t len = 0;
        for (size_t i = 0; i < vn; i++) {
            if (!is_digit(v[i])) {
                fail(r, "bad Content-Length");
                return;
            }
            len = len * 10 + (v[i] - '0');
        }
        if (r->content_length >= 0 && r->content_length != len) {
            fail(r, "conflicting Content-Length headers");
            return;
        }
        r->content_length = len;
    } else if (name_is(s, nl, "transfer-encoding")) {
        r->chunked = has_token(v, vn, "chunked");
    } else if (name_is(s, nl, "connection")) {
        if (has_token(v, vn, "close"))
            r->keep_alive = false;
        else if (has_token(v, vn, "keep-alive"))
            r->keep_alive = true;
    } else if (name_is(s, nl, "content-type")) {
        r->sse = vn >= 17 && strncasecmp(v, "text/event-stream", 17) == 0;
    }
}

static void headers_end(struct http_resp *r)
{
    if (r->status < 200) {
        /* 1xx interim response: the real one follows */
        int keep = r->keep_alive;
        bool head = r->no_body;
        http_resp_reset(r, head);
        r->keep_alive = keep;
        return;
    }
    if (r->no_body || r->status == 204 || r->status == 304) {
        r->state = HTTP_DONE;
    } else if (r->chunked) {
        r->state = HTTP_CHUNK_SIZE;
    } else if (r->content_length >= 0) {
        r->remaining = (uint64_t)r->content_length;
        r->state = r->remaining ? HTTP_BODY_LEN : HTTP_DONE;
    } else {
        r->keep_alive = false;
        r->state = HTTP_BODY_EOF;
    }
}

static void chunk_size_line(struct http_resp *r, const char *s, size_t n)
{
    uint64_t size = 0;
    size_t i = 0, digits = 0;
    for (; i < n; i++) {
        char c = s[i];
        int d = is_digit(c)              ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (d < 0)
            break;
        if (++digits > 15) {
            fail(r, "chunk size too large");
            return;
        }
        size = size * 16 + (uint64_t)d;
    }
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (!digits || (i < n && s[i] != ';')) {
        fail(r, "malformed chunk size");
        return;
    }
    r->remaining = size;
    r->state = size ? HTTP_CHUNK_DATA : HTTP_TRAILERS;
}

/* Handles one complete line (without its line ending). */
static void on_line(struct http_resp *r, const char *s, size_t n)
{
    switch (r->state) {
    case HTTP_STATUS:
        if (n == 0 && r->header_bytes <= 2)
            return; /* tolerate a stray CRLF before the status line */
        status_line(r, s, n);
        break;
    case HTTP_HEADERS:
        if (n == 0)
            headers_end(r);
        else
            header_line(r, s, n);
        break;
    case HTTP_CHUNK_SIZE:
        chunk_size_line(r, s, n);
        break;
    case HTTP_CHUNK_END:
        if (n)
            fail(r, "missing CRLF after chunk data");
        else
            r->state = HTTP_CHUNK_SIZE;
        break;
    case HTTP_TRAILERS:
        if (n == 0)
            r->state = HTTP_DONE;
        break;
    default:
        break;
    }
}

static bool in_head(const struct http_resp *r)
{
    return r->state == HTTP_STATUS || r->state == HTTP_HEADERS;
}

/* Consumes bytes of a line-oriented state; returns bytes used. */
static size_t feed_line(struct http_resp *r, const char *p, size_t n)
{
    const char *nl = memchr(p, '\n', n);
    size_t take = nl ? (size_t)(nl - p) + 1 : n;
    if (in_head(r)) {
        r->header_bytes += take;
        if (r->header_bytes > HTTP_HEADERS_MAX) {
            fail(r, "response headers too large");
            return take;
        }
    }
    if (!nl) {
        if (r->line_len + take > HTTP_LINE_MAX) {
            fail(r, in_head(r) ? "response header line too long" : "chunk line too long");
            return take;
        }
        memcpy(r->line + r->line_len, p, take);
        r->line_len += take;
        return take;
    }
    const char *s = p;
    size_t len = take - 1;
    if (r->line_len) {
        if (r->line_len + len > HTTP_LINE_MAX) {
            fail(r, "response header line too long");
            return take;
        }
        memcpy(r->line + r->line_len, p, len);
        s = r->line;
        len += r->line_len;
        r->line_len = 0;
    }
    if (len && s[len - 1] == '\r')
        len--;
    on_line(r, s, len);
    return take;
}

size_t http_feed(struct http_resp *r, const char *p, size_t n, http_body_fn on_body, void *ctx)
{
    size_t i = 0;
    while (i < n) {
        switch (r->state) {
        case HTTP_BODY_LEN:
        case HTTP_CHUNK_DATA: {
            size_t take = n - i < r->remaining ? n - i : (size_t)r->remaining;
            if (on_body)
                on_body(ctx, p + i, take);
            r->body_bytes += take;
            r->remaining -= take;
            i += take;
            if (!r->remaining)
                r->state = r->state == HTTP_BODY_LEN ? HTTP_DONE : HTTP_CHUNK_END;
            break;
        }
        case HTTP_BODY_EOF:
            if (on_body)
                on_body(ctx, p + i, n - i);
            r->body_bytes += n - i;
            i = n;
            break;
        case HTTP_DONE:
        case HTTP_ERROR:
            return i;
        default:
            i += feed_line(r, p + i, n - i);
            break;
        }
    }
    return i;
}

bool http_eof(struct http_resp *r)
{
    if (r->state == HTTP_BODY_EOF) {
        r->state = HTTP_DONE;
        return true;
    }
    return r->state == HTTP_DONE;
}
