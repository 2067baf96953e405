// SPDX-License-Identifier: MIT
// OTLP/HTTP export with libcurl (otlpsend.h).
#include "export/otlpsend.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "export/protobuf.h"
#include "util/buf.h"

#define REPLY_MAX ((size_t)64 << 10) /* reply bytes kept; the rest is read and dropped */
#define BODY_MAX ((size_t)256 << 20) /* one request's body */
#define TRACES_PATH "/v1/traces"

int otlpsend_url(const char *endpoint, char *out, size_t n, struct errbuf *eb)
{
    size_t skip = strncasecmp(endpoint, "http://", 7) == 0    ? 7
                  : strncasecmp(endpoint, "https://", 8) == 0 ? 8
                                                              : 0;
    if (!skip)
        return errbuf_set(eb, ERR_ARG, "'%s' is not an http:// or https:// URL", endpoint);
    if (!endpoint[skip] || endpoint[skip] == '/' || strchr(endpoint, '?') || strchr(endpoint, '#'))
        return errbuf_set(eb, ERR_ARG, "'%s' needs a host and no query: http://HOST:4318",
                          endpoint);
    size_t len = strlen(endpoint);
    size_t tl = strlen(TRACES_PATH);
    bool full = len >= skip + tl && strcmp(endpoint + len - tl, TRACES_PATH) == 0;
    while (!full && len > skip && endpoint[len - 1] == '/')
        len--; /* http://host:4318/ and http://host:4318 alike */
    int w = snprintf(out, n, "%.*s%s", (int)len, endpoint, full ? "" : TRACES_PATH);
    if (w < 0 || (size_t)w >= n)
        return errbuf_set(eb, ERR_ARG, "the URL is longer than %zu bytes", n - 1);
    return 0;
}

static size_t keep_reply(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct buf *b = ctx;
    size_t n = size * nmemb;
    size_t room = b->len < REPLY_MAX ? REPLY_MAX - b->len : 0;
    if (buf_append(b, data, n < room ? n : room))
        return 0;
    return n;
}

/* One POST's outcome. */
struct reply {
    CURLcode cc;
    long status;
    long retry_after_ms;
    char curl_err[CURL_ERROR_SIZE];
    struct buf body;
};

static void post(CURL *h, const struct buf *req, struct reply *r)
{
    buf_reset(&r->body);
    r->curl_err[0] = 0;
    r->status = 0;
    r->retry_after_ms = 0;
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->data);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->len);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->curl_err);
    r->cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_off_t after = 0;
    if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &after) == CURLE_OK && after > 0)
        r->retry_after_ms = after > 60 ? 60000 : (long)after * 1000;
}

static bool retryable(const struct reply *r)
{
    switch (r->cc) {
    case CURLE_OK:
        /* The OTLP specification's retryable statuses. */
        return r->status == 429 || r->status == 502 || r->status == 503 || r->status == 504;
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
        return true;
    default:
        return false;
    }
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The message of a google.rpc.Status reply (field 2), which OTLP/HTTP servers send with an
 * error status, as printable text; "" when the body is not one. */
static void status_message(const struct buf *body, char *out, size_t n)
{
    out[0] = 0;
    if (!body->len)
        return;
    const unsigned char *p = (const unsigned char *)body->data, *end = p + body->len;
    struct pb_field f;
    while (p < end && pb_read(&p, end, &f) == 0)
        if (f.field == 2 && f.wire == PB_LEN) {
            size_t k = 0;
            for (size_t i = 0; i < f.len && k + 1 < n; i++)
                out[k++] = f.data[i] >= 0x20 && f.data[i] != 0x7f ? (char)f.data[i] : ' ';
            out[k] = 0;
            return;
        }
}

/* The cause and the fix of a failed request, in one line. */
static int explain_http(const struct reply *r, struct errbuf *eb)
{
    char msg[96];
    status_message(&r->body, msg, sizeof(msg));
    const char *sep = msg[0] ? ": " : "";
    switch (r->status) {
    case 404:
    case 405:
        return errbuf_set(eb, ERR_IO,
                          "HTTP %ld%s%s (is it an OTLP/HTTP receiver? the path should be "
                          "/v1/traces)",
                          r->status, sep, msg);
    case 415:
        return errbuf_set(eb, ERR_IO,
                          "HTTP 415%s%s (the receiver does not take application/x-protobuf: is "
                          "it an OTLP/HTTP receiver?)",
                          sep, msg);
    case 401:
    case 403:
        return errbuf_set(eb, ERR_IO,
                          "HTTP %ld%s%s (the collector wants credentials, which crux does not "
                          "send: allow this client, or send to a local collector)",
                          r->status, sep, msg);
    case 429:
    case 502:
    case 503:
    case 504:
        return errbuf_set(eb, ERR_IO,
                          "HTTP %ld%s%s, twice (the collector is overloaded or starting: try "
                          "again later)",
                          r->status, sep, msg);
    default:
        return errbuf_set(eb, ERR_IO, "HTTP %ld%s%s (expected 200 from an OTLP/HTTP receiver)",
                          r->status, sep, msg);
    }
}

static int explain(const struct reply *r, const char *url, struct errbuf *eb)
{
    if (r->cc == CURLE_OK)
        return explain_http(r, eb);
    const char *why = r->curl_err[0] ? r->curl_err : curl_easy_strerror(r->cc);
    /* 4317 is OTLP/gRPC's port: HTTP/1.1 to it fails in odd ways. */
    const char *grpc =
        strstr(url, ":4317/") ? "; 4317 is the OTLP/gRPC port, OTLP/HTTP's is 4318" : "";
    switch (r->cc) {
    case CURLE_COULDNT_CONNECT:
        return errbuf_set(eb, ERR_IO,
                          "cannot connect (%s): is a collector listening there? (OTLP/HTTP's "
                          "port is usually 4318)",
                          why);
    case CURLE_COULDNT_RESOLVE_HOST:
        return errbuf_set(eb, ERR_IO, "%s: check the host name of --otlp-endpoint", why);
    case CURLE_OPERATION_TIMEDOUT:
        return errbuf_set(eb, ERR_IO,
                          "no reply in time (%s): is the collector overloaded, or is this the "
                          "wrong port?%s",
                          why, grpc);
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        return errbuf_set(eb, ERR_IO,
                          "TLS failed (%s): check the collector's certificate, or use http:// "
                          "for a plaintext receiver",
                          why);
    default:
        return errbuf_set(eb, ERR_IO, "%s (curl error %d): is it an OTLP/HTTP receiver?%s", why,
                          (int)r->cc, grpc);
    }
}

static CURL *open_handle(const char *url, struct curl_slist **headers)
{
    CURL *h = curl_easy_init();
    if (!h)
        return NULL;
    *headers = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
    /* No "Expect: 100-continue": a receiver that ignores it would stall every batch 1 s. */
    *headers = curl_slist_append(*headers, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "crux");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)OTLPSEND_CONNECT_MS);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)OTLPSEND_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep_reply);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    return h;
}

/* Posts one encoded batch of `n` spans, retrying once; 0 once the collector took it. */
static int send_batch(CURL *h, const struct otlpsend_opts *o, const struct buf *req, size_t n,
                      struct reply *rep, struct otlpsend_result *r, struct errbuf *eb)
{
    for (int attempt = 0;; attempt++) {
        post(h, req, rep);
        r->requests++;
        if (attempt == 0 && retryable(rep)) {
            long wait =
                rep->retry_after_ms > OTLPSEND_RETRY_MS ? rep->retry_after_ms : OTLPSEND_RETRY_MS;
            sleep_ms(wait > OTLPSEND_RETRY_MAX_MS ? OTLPSEND_RETRY_MAX_MS : wait);
            continue;
        }
        break;
    }
    if (rep->cc != CURLE_OK || rep->status < 200 || rep->status > 299)
        return explain(rep, o->url, eb);
    r->sent += n;
    int64_t rejected = 0;
    char msg[sizeof(r->message)];
    if (otlpout_parse_response(rep->body.data, rep->body.len, &rejected, msg, sizeof(msg)) == 0) {
        r->rejected += rejected;
        if (!r->message[0])
            snprintf(r->message, sizeof(r->message), "%s", msg);
    }
    return 0;
}

int otlpsend_profile(const struct profile *p, const struct otlpsend_opts *o,
                     struct otlpsend_result *r, struct errbuf *eb)
{
    memset(r, 0, sizeof(*r));
    struct otlpout plan;
    otlpout_init(&plan, p);
    r->spans = otlpout_count(&plan);
    if (!r->spans) {
        otlpout_fini(&plan);
        return 0;
    }
    int rc = 0;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        otlpout_fini(&plan);
        return errbuf_set(eb, ERR_SYS, "libcurl failed to initialize");
    }
    struct curl_slist *headers = NULL;
    CURL *h = open_handle(o->url, &headers);
    if (!h)
        rc = errbuf_set(eb, ERR_SYS, "libcurl failed to initialize");
    struct reply rep = {0};
    buf_init(&rep.body, REPLY_MAX + 1);
    struct buf req;
    buf_init(&req, BODY_MAX);
    size_t batch = o->batch ? o->batch : OTLPOUT_BATCH;
    for (size_t first = 0; first < r->spans && !rc; first += batch) {
        size_t n = r->spans - first < batch ? r->spans - first : batch;
        buf_reset(&req);
        rc = otlpout_encode(&plan, &o->out, first, n, &req);
        if (rc)
            rc = errbuf_set(eb, rc, "a batch of %zu spans is larger than %zu MiB", n,
                            BODY_MAX >> 20);
        else
            rc = send_batch(h, o, &req, n, &rep, r, eb);
    }
    buf_fini(&req);
    buf_fini(&rep.body);
    if (h)
        curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    curl_global_cleanup();
    otlpout_fini(&plan);
    return rc;
}
