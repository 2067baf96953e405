// SPDX-License-Identifier: MIT
// Unit tests for the load generator's parsers: HTTP responses (every split point, chunked,
// malformed input), Server-Sent Events across reads, and the small JSON reader.
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "load/http.h"
#include "load/jscan.h"
#include "load/sse.h"

struct sink {
    char body[4096];
    size_t len;
    struct sse sse;
    uint64_t tokens;
};

static void on_body(void *ctx, const char *p, size_t n)
{
    struct sink *s = ctx;
    if (s->len + n <= sizeof(s->body)) {
        memcpy(s->body + s->len, p, n);
        s->len += n;
    }
    s->tokens += sse_feed(&s->sse, p, n);
}

/* Parses `resp` delivered in two reads split at `cut`; returns the final state. */
static enum http_state parse_split(const char *resp, size_t n, size_t cut, struct http_resp *r,
                                   struct sink *s)
{
    http_resp_reset(r, false);
    s->len = 0;
    s->tokens = 0;
    sse_reset(&s->sse);
    size_t used = http_feed(r, resp, cut, on_body, s);
    if (r->state != HTTP_DONE && r->state != HTTP_ERROR && used == cut)
        http_feed(r, resp + cut, n - cut, on_body, s);
    return r->state;
}

static int test_content_length_every_split(void)
{
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A: b\r\n\r\nhello world";
    static struct http_resp r;
    struct sink s;
    sse_init(&s.sse);
    size_t n = sizeof(resp) - 1;
    for (size_t cut = 0; cut <= n; cut++) {
        CHECK(parse_split(resp, n, cut, &r, &s) == HTTP_DONE, "cut %zu", cut);
        CHECK(r.status == 200 && r.keep_alive && s.len == 11, "cut %zu", cut);
        CHECK(memcmp(s.body, "hello world", 11) == 0, "body at cut %zu", cut);
    }
    sse_fini(&s.sse);
    return 0;
}

static int test_chunked_sse_every_split(void)
{
    /* an SSE stream in chunks whose boundaries fall inside lines; CRLF, LF and CR endings */
    static const char resp[] =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
        "11;ext=1\r\ndata: {\"choices\":\r\n"
        "16\r\n[{\"text\":\"a\"}]}\n\n: c\r\n\r\n"
        "1d\r\ndata: {\"choices\":[{\"text\":\"b\"\r\n"
        "6\r\n}]}\r\r\n\r\n"
        "36\r\ndata: {\"choices\":[],\"usage\":{\"completion_tokens\":7}}\n\n\r\n"
        "e\r\ndata: [DONE]\n\n\r\n"
        "0\r\nTrailer: x\r\n\r\n";
    static struct http_resp r;
    struct sink s;
    sse_init(&s.sse);
    size_t n = sizeof(resp) - 1;
    for (size_t cut = 0; cut <= n; cut++) {
        CHECK(parse_split(resp, n, cut, &r, &s) == HTTP_DONE, "cut %zu: state %d (%s)", cut,
              r.state, r.error ? r.error : "");
        CHECK(r.sse && r.chunked, "headers");
        CHECK(s.tokens == 2 && s.sse.token_events == 2, "cut %zu: %llu tokens", cut,
              (unsigned long long)s.tokens);
        CHECK(s.sse.usage_tokens == 7 && s.sse.done, "cut %zu: usage/done", cut);
    }
    sse_fini(&s.sse);
    return 0;
}

static int test_sse_bytewise_and_multiline(void)
{
    static const char stream[] = "event: x\ndata: one\ndata: two\n\nretry: 5\n\ndata:three\r\n\r\n"
                                 "data\n\n";
    struct sse s;
    sse_init(&s);
    uint64_t tokens = 0;
    for (size_t i = 0; i + 1 < sizeof(stream); i++)
        tokens += sse_feed(&s, stream + i, 1);
    /* "one\ntwo", "three" and an empty data event: plain text counts one token each */
    CHECK(tokens == 3 && s.events == 3, "%llu tokens %llu events", (unsigned long long)tokens,
          (unsigned long long)s.events);
    CHECK(!s.done && s.usage_tokens == -1, "no done, no usage");
    sse_fini(&s);
    return 0;
}

/* A usage count no response could carry is ignored: the events are counted instead. */
static int test_sse_usage_implausible(void)
{
    static const char stream[] = "data: {\"choices\":[1]}\n\n"
                                 "data: {\"choices\":[1],\"usage\":{\"completion_tokens\":"
                                 "9223372036854775807}}\n\n";
    struct sse s;
    sse_init(&s);
    uint64_t tokens = sse_feed(&s, stream, sizeof(stream) - 1);
    CHECK(tokens == 2 && s.usage_tokens == -1, "%llu tokens, usage %lld",
          (unsigned long long)tokens, (long long)s.usage_tokens);
    sse_fini(&s);
    return 0;
}

/* usage.prompt_tokens (OpenAI stream_options.include_usage) is the prompt length. */
static int test_sse_usage_prompt(void)
{
    static const char stream[] = "data: {\"choices\":[1]}\n\n"
                                 "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":321,"
                                 "\"completion_tokens\":1,\"total_tokens\":322}}\n\n";
    struct sse s;
    sse_init(&s);
    CHECK(s.usage_prompt == -1, "none yet");
    uint64_t tokens = sse_feed(&s, stream, sizeof(stream) - 1);
    CHECK(tokens == 1 && s.usage_tokens == 1 && s.usage_prompt == 321, "prompt %lld",
          (long long)s.usage_prompt);
    sse_reset(&s);
    CHECK(s.usage_prompt == -1, "reset");
    static const char bad[] = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":\"x\"}}\n\n";
    (void)sse_feed(&s, bad, sizeof(bad) - 1);
    CHECK(s.usage_prompt == -1, "not a number: ignored");
    sse_fini(&s);
    return 0;
}

static int test_sse_event_cap(void)
{
    struct sse s;
    sse_init(&s);
    char block[65536];
    memset(block, 'x', sizeof(block));
    sse_feed(&s, "data: ", 6);
    for (int i = 0; i < 20 && !s.error; i++)
        sse_feed(&s, block, sizeof(block));
    CHECK(s.error, "an endless event is refused at the cap");
    CHECK(s.cap <= SSE_EVENT_MAX * 2, "bounded buffer %zu", s.cap);
    sse_fini(&s);
    return 0;
}

static int expect_error(const char *resp, const char *why)
{
    static struct http_resp r;
    http_resp_reset(&r, false);
    http_feed(&r, resp, strlen(resp), NULL, NULL);
    CHECK(r.state == HTTP_ERROR, "%s: state %d", why, r.state);
    return 0;
}

static int test_malformed(void)
{
    if (expect_error("HTTP/1.1 OK\r\n\r\n", "no code") ||
        expect_error("HTTX/1.1 200 OK\r\n\r\n", "bad version") ||
        expect_error("HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "header without colon") ||
        expect_error("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", "bad length") ||
        expect_error("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                     "conflicting lengths") ||
        expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk") ||
        expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
                     "chunk overflow") ||
        expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
                     "chunk longer than its size") ||
        expect_error("HTTP/1.1 101 Switching\r\n\r\n", "upgrade"))
        return 1;
    /* endless headers: refused at the cap, whatever the read sizes */
    static struct http_resp r;
    http_resp_reset(&r, false);
    http_feed(&r, "HTTP/1.1 200 OK\r\n", 17, NULL, NULL);
    char line[1000];
    memset(line, 'a', sizeof(line));
    memcpy(line, "X: ", 3);
    line[998] = '\r';
    line[999] = '\n';
    for (int i = 0; i < 100 && r.state != HTTP_ERROR; i++)
        http_feed(&r, line, sizeof(line), NULL, NULL);
    CHECK(r.state == HTTP_ERROR, "huge headers");
    /* one endless line */
    http_resp_reset(&r, false);
    for (int i = 0; i < 20 && r.state != HTTP_ERROR; i++)
        http_feed(&r, line, 998, NULL, NULL);
    CHECK(r.state == HTTP_ERROR, "endless line");
    return 0;
}

static int test_eof_and_interim(void)
{
    static struct http_resp r;
    http_resp_reset(&r, false);
    const char *a = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\nuntil close";
    http_feed(&r, a, strlen(a), NULL, NULL);
    CHECK(r.state == HTTP_BODY_EOF && !r.keep_alive && r.status == 200, "EOF body");
    CHECK(http_eof(&r) && r.state == HTTP_DONE, "EOF completes it");
    http_resp_reset(&r, false);
    const char *b = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort";
    http_feed(&r, b, strlen(b), NULL, NULL);
    CHECK(!http_eof(&r), "truncated body");
    http_resp_reset(&r, true);
    const char *c = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n";
    CHECK(http_feed(&r, c, strlen(c), NULL, NULL) == strlen(c) && r.state == HTTP_DONE,
          "HEAD has no body");
    CHECK(!r.keep_alive, "Connection: close");
    http_resp_reset(&r, false);
    const char *d = "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1";
    CHECK(http_feed(&r, d, strlen(d), NULL, NULL) == strlen(d) - 8, "stops at the end");
    return 0;
}

static int test_random_bytes_never_crash(void)
{
    static struct http_resp r;
    struct sink s;
    sse_init(&s.sse);
    unsigned x = 12345;
    static const char alphabet[] = "HTTP/1.1 200 OK\r\n:;0123456789abcdefxz \n\r{}[]\"data";
    char buf[512];
    for (int round = 0; round < 20000; round++) {
        http_resp_reset(&r, false);
        const char *pre = round % 2 ? "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                      "Content-Type: text/event-stream\r\n\r\n"
                                    : "";
        http_feed(&r, pre, strlen(pre), on_body, &s);
        for (int k = 0; k < 4; k++) {
            size_t n = 0;
            for (; n < sizeof(buf); n++) {
                x = x * 1103515245 + 12345;
                buf[n] = alphabet[(x >> 16) % (sizeof(alphabet) - 1)];
            }
            s.len = 0;
            if (http_feed(&r, buf, n, on_body, &s) < n)
                break;
        }
    }
    sse_fini(&s.sse);
    return 0;
}

static int test_jscan(void)
{
    struct jspan v;
    const char *doc = " {\"a\": [1, 2.5e3, {\"b\": null}], \"s\": \"x\\u00e9\\ud83d\\ude00\\n\", "
                      "\"n\": -42, \"t\": true} ";
    CHECK(jscan_value((struct jspan){doc, strlen(doc)}, true, &v) == 0, "valid");
    struct jspan s, n, a;
    CHECK(jscan_get(v, "s", &s) && jscan_get(v, "n", &n) && jscan_get(v, "a", &a), "keys");
    CHECK(!jscan_get(v, "zz", &s) || 1, "absent");
    struct buf b;
    buf_init(&b, 0);
    CHECK(jscan_decode_str(s, &b) == 0, "decode");
    CHECK(strcmp(buf_cstr(&b), "x\xc3\xa9\xf0\x9f\x98\x80\n") == 0, "decoded '%s'", buf_cstr(&b));
    buf_fini(&b);
    int64_t i;
    CHECK(jscan_int(n, &i) && i == -42, "int");
    /* Past int64 is not a number (UBSan caught the multiply overflowing in a server's usage
     * field); the extremes still are. */
    static const char *const ints[] = {"9223372036854775807", "-9223372036854775807",
                                       "9223372036854775808", "9999999999999999999"};
    CHECK(jscan_int((struct jspan){ints[0], 19}, &i) && i == INT64_MAX, "INT64_MAX");
    CHECK(jscan_int((struct jspan){ints[1], 20}, &i) && i == -INT64_MAX, "-INT64_MAX");
    CHECK(!jscan_int((struct jspan){ints[2], 19}, &i), "INT64_MAX + 1");
    CHECK(!jscan_int((struct jspan){ints[3], 19}, &i), "19 nines");
    size_t pos = 0;
    int count = 0;
    struct jspan e;
    while (jscan_next_elem(a, &pos, &e))
        count++;
    CHECK(count == 3, "3 elements, got %d", count);
    const char *bad[] = {"{", "{\"a\" 1}", "[1,]", "\"\\x\"", "tru", "{\"a\":1} x", "01a", ""};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
        CHECK(jscan_value((struct jspan){bad[k], strlen(bad[k])}, true, &v) != 0, "'%s'", bad[k]);
    char deep[200];
    memset(deep, '[', sizeof(deep));
    CHECK(jscan_value((struct jspan){deep, sizeof(deep)}, true, &v) != 0, "depth bound");
    return 0;
}

int main(void)
{
    RUN(test_content_length_every_split);
    RUN(test_chunked_sse_every_split);
    RUN(test_sse_bytewise_and_multiline);
    RUN(test_sse_event_cap);
    RUN(test_sse_usage_implausible);
    RUN(test_sse_usage_prompt);
    RUN(test_malformed);
    RUN(test_eof_and_interim);
    RUN(test_random_bytes_never_crash);
    RUN(test_jscan);
    return TEST_SUMMARY("loadhttp");
}
