// SPDX-License-Identifier: MIT
// The load generator's event loop. Open loop: request i has an intended send time fixed in
// advance by the schedule (constant or Poisson gaps); it is sent on the first free connection
// at or after that time, and its latency counts from the intended time, so a stalled server
// cannot hide its stall by slowing the client down (coordinated omission). Closed loop: each
// of N connections sends its next request when the previous one ends.
#include "load/loop.h"

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "load/http.h"
#include "load/sse.h"
#include "load/tls.h"
#include "util/buf.h"
#include "util/jsonw.h"
#include "util/xalloc.h"

#define RBUF_SIZE 65536
#define MAX_EVENTS 256
#define TIMER_TAG UINT32_MAX
/* Timeouts are checked this often; a request times out within this much of its deadline. */
#define TIMEOUT_SCAN_NS 10000000ULL
/* Gaps between token events a connection holds until its stream ends well (then they go to
 * the ITL histogram; a failed stream's are dropped, as vLLM's benchmark counts only
 * successful requests). A longer stream hands its oldest gaps over early. */
#define GAPS_MAX 16384
/* A wake-up closer than this is not worth a timer: poll instead. */
#define SPIN_NS 20000ULL

enum conn_state { C_FREE, C_CONNECTING, C_HANDSHAKE, C_IDLE, C_BUSY };

struct conn {
    int fd;
    enum conn_state st;
    bool reused;   /* carried a complete response before: a silent close may be a stale one */
    bool want_out; /* EPOLLOUT is in the interest set */
    struct tls_conn *tls; /* https: the TLS session on fd; owned */
    /* the request in flight */
    uint64_t seq;
    size_t req;
    uint64_t t_intended, t_start, t_first, t_first_token, t_last_token;
    size_t wrote;
    bool retried;
    struct http_resp resp;
    struct sse sse;
    uint32_t *gaps; /* pending ITL values (us) of the current stream; owned */
    size_t ngaps, capgaps;
    /* --log-bodies: the body's SHA-256 so far and its first LOOP_LOG_BODY_MAX bytes; both
     * allocated once per connection slot, reused by every request on it */
    EVP_MD_CTX *md;
    char *body;
    size_t body_len;
};

struct loop {
    const struct loop_cfg *cfg;
    struct load_stats *st;
    int ep, tfd;
    struct conn *conns;
    int *idle, nidle;     /* stack of idle connection indices */
    int *free, nfree;     /* stack of free slot indices */
    uint64_t avail_since; /* a connection has been available since then (when any is) */
    uint64_t inflight;
    uint64_t t0; /* the run's first intended send time */
    uint64_t t_last_end;
    uint64_t t_now;   /* time of the current read, for token timestamps */
    struct conn *cur; /* connection whose body is being parsed */
    uint64_t armed;   /* timerfd's absolute deadline, 0 when disarmed */
    bool no_pwait2;   /* the kernel lacks epoll_pwait2: wake-ups use the timerfd */
    char *rbuf;
    struct buf logbuf; /* --log-bodies: the escaped body of the line being written */
};

uint64_t loop_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int64_t to_us(uint64_t ns)
{
    return (int64_t)((ns + 500) / 1000);
}

static bool available(const struct loop *L)
{
    return L->nidle > 0 || L->nfree > 0;
}

static void push_idle(struct loop *L, int i, uint64_t now)
{
    if (!available(L))
        L->avail_since = now;
    L->idle[L->nidle++] = i;
}

static void push_free(struct loop *L, int i, uint64_t now)
{
    if (!available(L))
        L->avail_since = now;
    L->free[L->nfree++] = i;
}

static void remove_idle(struct loop *L, int i)
{
    for (int k = 0; k < L->nidle; k++)
        if (L->idle[k] == i) {
            L->idle[k] = L->idle[--L->nidle];
            return;
        }
}

static void close_conn(struct loop *L, struct conn *c, uint64_t now)
{
    if (c->fd >= 0) {
        epoll_ctl(L->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    tls_conn_free(c->tls);
    c->tls = NULL;
    c->fd = -1;
    c->reused = false;
    c->want_out = false;
    c->st = C_FREE;
    push_free(L, (int)(c - L->conns), now);
}

static void set_out(struct loop *L, struct conn *c, bool on)
{
    if (c->want_out == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0),
                             .data.u32 = (uint32_t)(c - L->conns)};
    epoll_ctl(L->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = on;
}

/* For record --load: the sampler, on another thread, reads whether the server has work. */
static void publish_inflight(struct loop *L)
{
    if (L->cfg->inflight)
        atomic_store_explicit(L->cfg->inflight, (uint32_t)L->inflight, memory_order_relaxed);
}

static void count_code(struct load_stats *st, int code)
{
    for (int i = 0; i < LOAD_MAX_CODES; i++) {
        if (st->codes[i] == code && st->code_counts[i]) {
            st->code_counts[i]++;
            return;
        }
        if (!st->code_counts[i]) {
            st->codes[i] = code;
            st->code_counts[i] = 1;
            return;
        }
    }
    /* table full: "other" in the last entry */
    st->codes[LOAD_MAX_CODES - 1] = 0;
    st->code_counts[LOAD_MAX_CODES - 1]++;
}

/* Appends ,"body_sha256":"..","body":".." for the response on `c` to the line being written. */
static void log_body(struct loop *L, const struct conn *c, FILE *f)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    EVP_DigestFinal_ex(c->md, md, &len);
    for (unsigned int i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    hex[2 * len] = 0;
    fprintf(f, ",\"body_sha256\":\"%s\",\"body\":", hex);
    buf_reset(&L->logbuf);
    /* the cap holds any escaped 64 KiB (6 bytes per byte at most) */
    if (jsonw_escape(&L->logbuf, c->body, c->body_len, 0) == 0)
        fwrite(L->logbuf.data, 1, L->logbuf.len, f);
    else
        fputs("null", f);
}

/* ,"prompt_words":N|null,"prompt_tokens":N|null into `s`; returns the length written. */
static int log_prompt(char *s, size_t cap, uint32_t words, int64_t usage)
{
    char w[24] = "null", u[24] = "null";
    if (words != PREFILL_NO_PROMPT)
        snprintf(w, sizeof(w), "%u", words);
    if (usage >= 0)
        snprintf(u, sizeof(u), "%lld", (long long)usage);
    int n = snprintf(s, cap, ",\"prompt_words\":%s,\"prompt_tokens\":%s", w, u);
    return n < 0 ? 0 : n;
}

static void log_request(struct loop *L, const struct conn *c, int err, uint64_t end)
{
    FILE *f = L->cfg->log;
    if (!f)
        return;
    uint64_t t0 = L->t0;
    char line[640];
    int n = snprintf(line, sizeof(line),
                     "{\"i\":%llu,\"intended_us\":%lld,\"sent_us\":%lld,\"first_byte_us\":",
                     (unsigned long long)(L->cfg->log_base + c->seq),
                     (long long)to_us(c->t_intended - t0), (long long)to_us(c->t_start - t0));
    if (c->t_first)
        n +=
            snprintf(line + n, sizeof(line) - (size_t)n, "%lld", (long long)to_us(c->t_first - t0));
    else
        n += snprintf(line + n, sizeof(line) - (size_t)n, "null");
    uint64_t tokens =
        c->sse.usage_tokens >= 0 ? (uint64_t)c->sse.usage_tokens : c->sse.token_events;
    n += snprintf(line + n, sizeof(line) - (size_t)n,
                  ",\"end_us\":%lld,\"latency_us\":%lld,\"latency_raw_us\":%lld,\"status\":%d,"
                  "\"bytes\":%llu,\"tokens\":%llu,\"ttft_us\":",
                  (long long)to_us(end - t0), (long long)to_us(end - c->t_intended),
                  (long long)to_us(end - c->t_start), c->resp.status,
                  (unsigned long long)c->resp.body_bytes, (unsigned long long)tokens);
    if (c->t_first_token)
        n += snprintf(line + n, sizeof(line) - (size_t)n, "%lld,\"decode_us\":%lld",
                      (long long)to_us(c->t_first_token - c->t_start),
                      (long long)to_us(end - c->t_first_token));
    else
        n += snprintf(line + n, sizeof(line) - (size_t)n, "null,\"decode_us\":null");
    n += log_prompt(line + n, sizeof(line) - (size_t)n, L->cfg->reqs[c->req].prompt_words,
                    c->sse.usage_prompt);
    if (err < 0)
        n += snprintf(line + n, sizeof(line) - (size_t)n, ",\"error\":null");
    else
        n += snprintf(line + n, sizeof(line) - (size_t)n, ",\"error\":\"%s\"",
                      load_err_name((enum load_err)err));
    if (n <= 0 || (size_t)n >= sizeof(line))
        return;
    fwrite(line, 1, (size_t)n, f);
    if (c->md)
        log_body(L, c, f);
    fputs("}\n", f);
}

static void flush_gaps(struct loop *L, struct conn *c)
{
    for (size_t i = 0; i < c->ngaps; i++)
        hist_record(&L->st->itl, c->gaps[i]);
    c->ngaps = 0;
}

static void add_gap(struct loop *L, struct conn *c, uint64_t us, uint64_t count)
{
    for (; count; count--) {
        if (c->ngaps == c->capgaps) {
            if (c->capgaps == GAPS_MAX) {
                flush_gaps(L, c);
            } else {
                c->capgaps = c->capgaps ? c->capgaps * 2 : 64;
                c->gaps = xrealloc(c->gaps, c->capgaps * sizeof(*c->gaps));
            }
        }
        c->gaps[c->ngaps++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    }
}

/* The timeline tick holding time `t` (the last one for anything later). */
static struct load_tick *tick_at(struct loop *L, uint64_t t)
{
    struct load_stats *st = L->st;
    double s = t > L->t0 ? (double)(t - L->t0) / 1e9 : 0;
    size_t i = (size_t)(s / st->tick_s);
    if (i >= LOAD_MAX_TICKS)
        i = LOAD_MAX_TICKS - 1;
    if (i + 1 > st->nticks)
        st->nticks = i + 1;
    return &st->ticks[i];
}

/* Appends the request on `c` to the run's request records: a copy into a preallocated chunk,
 * nothing more on the hot path (reqlog.h). */
static void keep_request(struct loop *L, const struct conn *c, int err, uint64_t now)
{
    struct reqlog_rec r = {.t_start = c->t_start,
                           .t_end = now,
                           .t_first_token = c->t_first_token,
                           .bytes = c->resp.body_bytes,
                           .status = c->resp.status,
                           .err = err};
    reqlog_add(L->cfg->reqlog, &r);
}

/* Requests still in flight when the run ends (stopped, or past its drain cap): recorded as
 * cancelled or unfinished, ending now. */
static void keep_in_flight(struct loop *L, int err, uint64_t now)
{
    if (!L->cfg->reqlog)
        return;
    for (int i = 0; i < L->cfg->slots; i++) {
        const struct conn *c = &L->conns[i];
        if (c->st == C_CONNECTING || c->st == C_HANDSHAKE || c->st == C_BUSY)
            keep_request(L, c, err, now);
    }
}

/* Ends the request on `c`: err is an enum load_err or -1 for a complete response. */
static void finish(struct loop *L, struct conn *c, int err, uint64_t now)
{
    struct load_stats *st = L->st;
    if (err < 0 && c->resp.status >= 400) {
        err = LOAD_ERR_HTTP;
        count_code(st, c->resp.status);
    }
    struct load_tick *end_tick = tick_at(L, now);
    if (err >= 0) {
        st->err[err]++;
        st->errors++;
        end_tick->errors++;
    } else {
        struct load_tick *in_tick = tick_at(L, c->t_intended);
        int64_t lat = to_us(now - c->t_intended);
        end_tick->ok++;
        in_tick->n++;
        in_tick->lat_sum += (double)lat;
        if (lat > in_tick->lat_max)
            in_tick->lat_max = lat;
        st->ok++;
        hist_record(&st->latency, to_us(now - c->t_intended));
        hist_record(&st->latency_raw, to_us(now - c->t_start));
    }
    if (c->resp.sse) {
        st->streams++;
        uint64_t tokens =
            c->sse.usage_tokens >= 0 ? (uint64_t)c->sse.usage_tokens : c->sse.token_events;
        st->tokens += tokens;
        if (err < 0)
            flush_gaps(L, c);
        c->ngaps = 0;
        if (err < 0 && c->t_first_token) {
            hist_record(&st->ttft, to_us(c->t_first_token - c->t_start));
            hist_record(&st->ttft_sched, to_us(c->t_first_token - c->t_intended));
            if (tokens > 1)
                hist_record(&st->tpot, to_us((now - c->t_first_token) / (tokens - 1)));
            struct prefill_req pr = {.prompt_words = L->cfg->reqs[c->req].prompt_words,
                                     .prompt_usage = c->sse.usage_prompt,
                                     .out_tokens = tokens,
                                     .ttft_ns = c->t_first_token - c->t_start,
                                     .total_ns = now - c->t_start};
            prefill_add(&st->prefill, &pr);
        }
    }
    log_request(L, c, err, now);
    if (L->cfg->reqlog)
        keep_request(L, c, err, now);
    L->inflight--;
    publish_inflight(L);
    L->t_last_end = now;
    /* a response that came before the whole request was written leaves the connection
     * mid-request: it cannot carry another one */
    bool sent_all = c->wrote == L->cfg->reqs[c->req].len;
    bool keep = err < 0 && c->resp.keep_alive && c->resp.state == HTTP_DONE && sent_all;
    if (keep) {
        c->st = C_IDLE;
        c->reused = true;
        push_idle(L, (int)(c - L->conns), now);
    } else {
        close_conn(L, c, now);
    }
}

static void on_body(void *ctx, const char *p, size_t n)
{
    struct loop *L = ctx;
    struct conn *c = L->cur;
    if (c->md) {
        EVP_DigestUpdate(c->md, p, n);
        size_t take = LOOP_LOG_BODY_MAX - c->body_len < n ? LOOP_LOG_BODY_MAX - c->body_len : n;
        memcpy(c->body + c->body_len, p, take);
        c->body_len += take;
    }
    if (!c->resp.sse)
        return;
    uint64_t k = sse_feed(&c->sse, p, n);
    if (!k)
        return;
    uint64_t t = L->t_now;
    if (!c->t_first_token)
        c->t_first_token = t;
    else
        add_gap(L, c, (uint64_t)to_us(t - c->t_last_token), 1);
    /* several token events in one read arrived together: gaps of 0 */
    add_gap(L, c, 0, k - 1);
    c->t_last_token = t;
}

static void send_more(struct loop *L, struct conn *c, uint64_t now);
static bool open_conn(struct loop *L, struct conn *c, uint64_t now);

/* The connection closed (EOF, reset, or a failed write) while a request was on it. */
static void on_closed(struct loop *L, struct conn *c, uint64_t now)
{
    if (c->t_first) {
        if (!http_eof(&c->resp)) {
            finish(L, c, LOAD_ERR_TRUNCATED, now);
            return;
        }
        /* an EOF-delimited body: a stream that never said [DONE] was cut short */
        bool cut = c->resp.sse && c->sse.events && !c->sse.done;
        c->resp.keep_alive = false;
        finish(L, c, cut ? LOAD_ERR_TRUNCATED : -1, now);
        return;
    }
    if (c->reused && !c->retried) {
        /* the server closed a kept-alive connection as the request went out: send it once
         * more on a new connection, as HTTP clients do (RFC 9112 9.3.1) */
        L->st->retries++;
        c->retried = true;
        epoll_ctl(L->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        tls_conn_free(c->tls);
        c->tls = NULL;
        c->fd = -1;
        c->reused = false;
        c->want_out = false;
        c->wrote = 0;
        if (open_conn(L, c, now) && c->st == C_BUSY)
            send_more(L, c, now);
        return;
    }
    finish(L, c, LOAD_ERR_CLOSED, now);
}

static void send_more(struct loop *L, struct conn *c, uint64_t now)
{
    const struct loop_req *r = &L->cfg->reqs[c->req];
    while (c->wrote < r->len) {
        ssize_t n;
        if (c->tls) {
            n = tls_write(c->tls, r->data + c->wrote, r->len - c->wrote);
            if (n == TLS_WANT_WRITE || n == TLS_WANT_READ) {
                set_out(L, c, n == TLS_WANT_WRITE);
                return; /* WANT_READ: on_readable resumes the write */
            }
            if (n < 0) {
                on_closed(L, c, now);
                return;
            }
        } else {
            n = send(c->fd, r->data + c->wrote, r->len - c->wrote, MSG_NOSIGNAL);
        }
        if (n > 0) {
            c->wrote += (size_t)n;
            L->st->bytes_out += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_out(L, c, true);
            return;
        }
        on_closed(L, c, now);
        return;
    }
    set_out(L, c, false);
}

/* Advances a TLS handshake; when it completes the request goes out. Returns false after
 * failing the request (a failed handshake counts as a connect error). */
static bool step_handshake(struct loop *L, struct conn *c, uint64_t now)
{
    int r = tls_handshake(c->tls);
    if (r == TLS_WANT_READ || r == TLS_WANT_WRITE) {
        set_out(L, c, r == TLS_WANT_WRITE);
        return true;
    }
    if (r != 0) {
        finish(L, c, LOAD_ERR_CONNECT, now);
        return false;
    }
    c->st = C_BUSY;
    return true;
}

/* Opens a socket for `c` (state C_CONNECTING or, when connect completes at once, ready to
 * send). Returns false after failing the request as a connect error. */
static bool open_conn(struct loop *L, struct conn *c, uint64_t now)
{
    int fd = socket(L->cfg->addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        finish(L, c, LOAD_ERR_CONNECT, now);
        return false;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    c->want_out = true;
    L->st->connects++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP,
                             .data.u32 = (uint32_t)(c - L->conns)};
    if (epoll_ctl(L->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        finish(L, c, LOAD_ERR_CONNECT, now);
        return false;
    }
    int rc = connect(fd, L->cfg->addr, L->cfg->addrlen);
    if (rc != 0 && errno != EINPROGRESS) {
        finish(L, c, LOAD_ERR_CONNECT, now);
        return false;
    }
    if (L->cfg->tls) {
        c->tls = tls_conn_new(L->cfg->tls, fd, L->cfg->host);
        if (!c->tls) {
            finish(L, c, LOAD_ERR_CONNECT, now);
            return false;
        }
    }
    c->st = rc != 0 ? C_CONNECTING : c->tls ? C_HANDSHAKE : C_BUSY;
    if (c->st == C_HANDSHAKE)
        return step_handshake(L, c, now);
    return true;
}

/* Starts request `seq` intended at `intended` on a free or idle connection. */
static void start(struct loop *L, uint64_t seq, uint64_t intended)
{
    uint64_t now = loop_now_ns();
    struct load_stats *st = L->st;
    uint64_t lag = now > intended ? now - intended : 0;
    uint64_t since = L->avail_since > intended ? L->avail_since : intended;
    uint64_t self = now > since ? now - since : 0;
    hist_record(&st->send_lag, to_us(lag));
    hist_record(&st->self_lag, to_us(self));
    if (lag > LOAD_LATE_US * 1000ULL) {
        st->late++;
        if (self > LOAD_LATE_US * 1000ULL)
            st->self_late++;
        else
            st->waited_conn++;
    }
    int i = L->nidle ? L->idle[--L->nidle] : L->free[--L->nfree];
    struct conn *c = &L->conns[i];
    c->seq = seq;
    c->req = (size_t)(seq % L->cfg->nreqs);
    c->t_intended = intended;
    c->t_start = now;
    c->t_first = c->t_first_token = c->t_last_token = 0;
    c->wrote = 0;
    c->retried = false;
    http_resp_reset(&c->resp, L->cfg->reqs[c->req].head);
    sse_reset(&c->sse);
    c->ngaps = 0;
    if (c->md) {
        EVP_DigestInit_ex(c->md, EVP_sha256(), NULL);
        c->body_len = 0;
    }
    st->sent++;
    L->inflight++;
    publish_inflight(L);
    if (c->fd < 0) {
        if (!open_conn(L, c, now))
            return;
        if (c->st != C_BUSY)
            return; /* connecting or in the TLS handshake: the request goes out after */
    }
    c->st = C_BUSY;
    send_more(L, c, now);
}

/* Handles `n` response bytes in L->rbuf; returns true while the same request continues. */
static bool on_data(struct loop *L, struct conn *c, size_t n, uint64_t now)
{
    L->st->bytes_in += (uint64_t)n;
    if (!c->t_first)
        c->t_first = now;
    L->t_now = now;
    L->cur = c;
    size_t used = http_feed(&c->resp, L->rbuf, n, on_body, L);
    if (c->resp.state == HTTP_ERROR || c->sse.error) {
        finish(L, c, LOAD_ERR_PROTOCOL, now);
        return false;
    }
    if (c->resp.state == HTTP_DONE) {
        if (used < n)
            c->resp.keep_alive = false; /* bytes after the response: nothing to pair them */
        finish(L, c, -1, now);
        return false;
    }
    return true;
}

/* TLS: OpenSSL may hold decrypted bytes the socket no longer signals, so read until it
 * wants more from the socket. A pending write that waited for a read resumes first. */
static void on_readable_tls(struct loop *L, struct conn *c)
{
    if (c->st == C_BUSY && c->wrote < L->cfg->reqs[c->req].len) {
        send_more(L, c, loop_now_ns());
        if (c->st != C_BUSY || c->wrote < L->cfg->reqs[c->req].len)
            return;
    }
    for (;;) {
        ssize_t n = tls_read(c->tls, L->rbuf, RBUF_SIZE);
        uint64_t now = loop_now_ns();
        if (n == TLS_WANT_READ || n == TLS_WANT_WRITE)
            return; /* e.g. a TLS 1.3 session ticket on an idle connection: keep it */
        if (c->st == C_IDLE) {
            remove_idle(L, (int)(c - L->conns));
            close_conn(L, c, now);
            return;
        }
        if (n <= 0) {
            on_closed(L, c, now);
            return;
        }
        if (!on_data(L, c, (size_t)n, now))
            return;
    }
}

static void on_readable(struct loop *L, struct conn *c)
{
    if (c->tls) {
        on_readable_tls(L, c);
        return;
    }
    ssize_t n = read(c->fd, L->rbuf, RBUF_SIZE);
    uint64_t now = loop_now_ns();
    if (c->st == C_IDLE) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        /* EOF, reset or unsolicited bytes on an idle connection: drop it */
        remove_idle(L, (int)(c - L->conns));
        close_conn(L, c, now);
        return;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        on_closed(L, c, now);
        return;
    }
    if (n == 0) {
        on_closed(L, c, now);
        return;
    }
    on_data(L, c, (size_t)n, now);
}

static void on_writable(struct loop *L, struct conn *c, uint32_t events)
{
    uint64_t now = loop_now_ns();
    if (c->st == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err ||
            (events & EPOLLERR)) {
            finish(L, c, LOAD_ERR_CONNECT, now);
            return;
        }
        c->st = c->tls ? C_HANDSHAKE : C_BUSY;
    }
    if (c->st == C_HANDSHAKE && !step_handshake(L, c, now))
        return;
    if (c->st == C_BUSY)
        send_more(L, c, now);
}

static void scan_timeouts(struct loop *L, uint64_t now)
{
    uint64_t limit = (uint64_t)(L->cfg->timeout_s * 1e9);
    for (int i = 0; i < L->cfg->slots; i++) {
        struct conn *c = &L->conns[i];
        if (c->st != C_FREE && c->st != C_IDLE && now - c->t_start > limit)
            finish(L, c, LOAD_ERR_TIMEOUT, now);
    }
}

static uint64_t next_gap(const struct loop_cfg *cfg)
{
    double mean = 1e9 / cfg->rate;
    if (cfg->arrivals == LOAD_CONSTANT)
        return 0; /* constant: computed from the index to avoid drift */
    /* splitmix64: well mixed from the first draw even for small seeds */
    uint64_t x = (*cfg->rng += 0x9E3779B97F4A7C15ULL);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    x ^= x >> 31;
    double u = ((double)(x >> 11) + 0.5) / 9007199254740992.0; /* (0,1) */
    return (uint64_t)(-log(u) * mean);
}

static void arm(struct loop *L, uint64_t at)
{
    if (L->armed == at)
        return;
    struct itimerspec its = {{0, 0}, {(time_t)(at / 1000000000ULL), (long)(at % 1000000000ULL)}};
    timerfd_settime(L->tfd, TFD_TIMER_ABSTIME, &its, NULL);
    L->armed = at;
}

static void loop_fini(struct loop *L)
{
    if (L->conns) {
        for (int i = 0; i < L->cfg->slots; i++) {
            if (L->conns[i].fd >= 0)
                close(L->conns[i].fd);
            tls_conn_free(L->conns[i].tls);
            sse_fini(&L->conns[i].sse);
            free(L->conns[i].gaps);
            EVP_MD_CTX_free(L->conns[i].md);
            free(L->conns[i].body);
        }
    }
    if (L->ep >= 0)
        close(L->ep);
    if (L->tfd >= 0)
        close(L->tfd);
    free(L->conns);
    free(L->idle);
    free(L->free);
    free(L->rbuf);
    buf_fini(&L->logbuf);
}

static int loop_init(struct loop *L, const struct loop_cfg *cfg, struct load_stats *st,
                     struct errbuf *eb)
{
    memset(L, 0, sizeof(*L));
    L->cfg = cfg;
    L->st = st;
    L->tfd = -1;
    L->ep = epoll_create1(EPOLL_CLOEXEC);
    if (L->ep < 0)
        return errbuf_set(eb, ERR_SYS, "epoll_create1: %s", strerror(errno));
    L->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (L->tfd < 0)
        return errbuf_set(eb, ERR_SYS, "timerfd_create: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = TIMER_TAG};
    if (epoll_ctl(L->ep, EPOLL_CTL_ADD, L->tfd, &ev) != 0)
        return errbuf_set(eb, ERR_SYS, "epoll_ctl: %s", strerror(errno));
    int n = cfg->slots;
    L->conns = xcalloc((size_t)n, sizeof(*L->conns));
    L->idle = xcalloc((size_t)n, sizeof(int));
    L->free = xcalloc((size_t)n, sizeof(int));
    L->rbuf = xmalloc(RBUF_SIZE);
    buf_init(&L->logbuf, 6 * LOOP_LOG_BODY_MAX + 16);
    for (int i = 0; i < n; i++) {
        L->conns[i].fd = -1;
        sse_init(&L->conns[i].sse);
        if (cfg->log_bodies) {
            L->conns[i].md = EVP_MD_CTX_new();
            L->conns[i].body = xmalloc(LOOP_LOG_BODY_MAX);
            if (!L->conns[i].md)
                abort(); /* out of memory: xmalloc's policy, which has printed by now */
        }
        L->free[n - 1 - i] = i;
    }
    L->nfree = n;
    return 0;
}

/* The run's state machine between two waits; see loop_run. */
struct sched {
    uint64_t seq;    /* requests started */
    uint64_t t_next; /* open loop: intended time of request `seq` */
    uint64_t t_end;  /* no request is intended at or after this (UINT64_MAX: none) */
    uint64_t t_cap;  /* drain limit: what is not finished then is abandoned */
    bool done;       /* nothing more to start */
};

static void dispatch(struct loop *L, struct sched *s)
{
    const struct loop_cfg *cfg = L->cfg;
    uint64_t now = loop_now_ns();
    while (!s->done && available(L)) {
        if (cfg->requests && s->seq >= cfg->requests) {
            s->done = true;
            break;
        }
        if (cfg->open_loop) {
            if (s->t_next >= s->t_end) {
                s->done = true;
                break;
            }
            if (s->t_next > now) {
                now = loop_now_ns();
                if (s->t_next > now)
                    break;
            }
            uint64_t intended = s->t_next;
            uint64_t seq = s->seq++;
            if (cfg->arrivals == LOAD_CONSTANT)
                s->t_next = L->t0 + (uint64_t)((double)s->seq * 1e9 / cfg->rate);
            else
                s->t_next += next_gap(cfg);
            start(L, seq, intended);
        } else {
            now = loop_now_ns();
            if (now >= s->t_end) {
                s->done = true;
                break;
            }
            start(L, s->seq++, now);
        }
    }
    if (!s->done && cfg->open_loop &&
        (s->t_next >= s->t_end || (cfg->requests && s->seq >= cfg->requests)))
        s->done = true;
}

/* Requests the open-loop schedule still holds that were never started: exact for constant
 * arrivals, the expected count for Poisson ones (computed, not drawn: the remaining schedule
 * of a fast run can be long). */
static uint64_t unsent(struct loop *L, struct sched *s)
{
    const struct loop_cfg *cfg = L->cfg;
    uint64_t left =
        cfg->requests ? (s->seq < cfg->requests ? cfg->requests - s->seq : 0) : UINT64_MAX;
    if (s->t_end != UINT64_MAX) {
        double span = s->t_next < s->t_end ? (double)(s->t_end - s->t_next) / 1e9 : -1;
        uint64_t by_time = span < 0 ? 0 : (uint64_t)ceil(span * cfg->rate);
        if (by_time < left)
            left = by_time;
    }
    return left == UINT64_MAX ? 0 : left;
}

/* Waits for I/O until `wake` (absolute ns; 0: at most TIMEOUT_SCAN_NS). epoll_pwait2 takes a
 * nanosecond timeout in one call; kernels before 5.11 lack it, and then a timerfd armed at
 * `wake` ends the wait (two more calls per wake-up: arm and read). */
static int wait_events(struct loop *L, struct epoll_event *evs, uint64_t now, uint64_t wake)
{
    uint64_t until = wake ? wake : now + TIMEOUT_SCAN_NS;
    if (until > now + TIMEOUT_SCAN_NS)
        until = now + TIMEOUT_SCAN_NS;
    uint64_t d = until > now + SPIN_NS ? until - now : 0;
    if (!L->no_pwait2) {
        struct timespec ts = {(time_t)(d / 1000000000ULL), (long)(d % 1000000000ULL)};
        int n = epoll_pwait2(L->ep, evs, MAX_EVENTS, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        L->no_pwait2 = true;
    }
    if (wake && d && wake < now + TIMEOUT_SCAN_NS)
        arm(L, wake);
    return epoll_wait(L->ep, evs, MAX_EVENTS, d ? (int)((d + 999999) / 1000000) : 0);
}

static void handle_events(struct loop *L, uint64_t now, uint64_t wake)
{
    struct epoll_event evs[MAX_EVENTS];
    int n = wait_events(L, evs, now, wake);
    for (int k = 0; k < n; k++) {
        uint32_t tag = evs[k].data.u32;
        if (tag == TIMER_TAG) {
            uint64_t ticks;
            if (read(L->tfd, &ticks, sizeof(ticks)) < 0)
                ticks = 0;
            L->armed = 0;
            continue;
        }
        struct conn *c = &L->conns[tag];
        uint32_t e = evs[k].events;
        if (c->fd < 0 || c->st == C_FREE)
            continue; /* closed earlier in this batch */
        if (c->st == C_HANDSHAKE) {
            step_handshake(L, c, loop_now_ns());
            if (c->st == C_BUSY)
                send_more(L, c, loop_now_ns());
            continue;
        }
        if ((e & (EPOLLOUT | EPOLLERR)) && (c->st == C_CONNECTING || c->want_out))
            on_writable(L, c, e);
        if (c->fd >= 0 && c->st != C_CONNECTING && c->st != C_HANDSHAKE &&
            (e & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)))
            on_readable(L, c);
    }
}

int loop_run(const struct loop_cfg *cfg, struct load_stats *st, volatile sig_atomic_t *stop,
             struct errbuf *eb)
{
    struct loop L;
    int rc = loop_init(&L, cfg, st, eb);
    if (rc) {
        loop_fini(&L);
        return rc;
    }
    struct timespec cpu0, cpu1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0);
    /* open loop: 1 ms ahead, so that the first intended send is not already late */
    uint64_t t0 = loop_now_ns() + (cfg->open_loop ? 1000000 : 0);
    L.t0 = t0;
    L.avail_since = t0;
    L.t_last_end = t0;
    struct sched s = {.t_next = t0, .t_end = UINT64_MAX, .t_cap = UINT64_MAX};
    if (cfg->duration_s > 0)
        s.t_end = t0 + (uint64_t)(cfg->duration_s * 1e9);
    uint64_t timeout_ns = (uint64_t)(cfg->timeout_s * 1e9);
    if (cfg->open_loop) {
        double sched_s = cfg->duration_s > 0 ? cfg->duration_s : (double)cfg->requests / cfg->rate;
        if (cfg->arrivals == LOAD_POISSON && !(cfg->duration_s > 0))
            sched_s *= 1.5; /* room for a slow draw of the random gaps */
        s.t_cap = t0 + (uint64_t)(sched_s * 1e9) + timeout_ns + 1000000000ULL;
    }
    uint64_t last_scan = t0;
    while (!(stop && *stop)) {
        dispatch(&L, &s);
        uint64_t now = loop_now_ns();
        if (s.done && !L.inflight)
            break;
        if (now >= s.t_cap) {
            uint64_t lost = L.inflight + unsent(&L, &s);
            s.seq += lost - L.inflight;
            st->err[LOAD_ERR_UNFINISHED] += lost;
            st->errors += lost;
            break;
        }
        if (now - last_scan >= TIMEOUT_SCAN_NS) {
            scan_timeouts(&L, now);
            last_scan = now;
        }
        /* wake for the next intended send when a connection could take it */
        uint64_t wake = 0;
        if (!s.done && available(&L))
            wake = cfg->open_loop ? s.t_next : now;
        handle_events(&L, now, wake);
    }
    /* stop or drain cap: count what was not finished */
    bool stopped = stop && *stop;
    keep_in_flight(&L, stopped ? REQLOG_CANCELLED : LOAD_ERR_UNFINISHED, loop_now_ns());
    if (stopped)
        st->cancelled += L.inflight;
    L.inflight = 0;
    publish_inflight(&L);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
    st->cpu_s += (double)(cpu1.tv_sec - cpu0.tv_sec) + (double)(cpu1.tv_nsec - cpu0.tv_nsec) / 1e9;
    st->scheduled += s.seq;
    uint64_t end = L.t_last_end > t0 ? L.t_last_end : loop_now_ns();
    st->elapsed_s += (double)(end - t0) / 1e9;
    loop_fini(&L);
    return 0;
}
