// SPDX-License-Identifier: MIT
// crux serve's HTTP endpoint. libmicrohttpd (Debian's libmicrohttpd-dev) parses requests and
// query strings and runs a thread per connection, which lets a profile request simply wait
// for its window; crux creates the listening socket itself so that a busy port or a bad
// address gets crux's own one-line error.
#include "serve/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/xalloc.h"

/* Connections at once (each a thread); idle ones are closed after CONN_IDLE_S. */
#define MAX_CONNECTIONS 64
#define CONN_IDLE_S 60
/* The largest answer: a profile of a window is far smaller in practice. */
#define MAX_BODY ((size_t)512 << 20)

struct httpd {
    struct MHD_Daemon *d;
    struct live *l;
    double max_seconds;
    int fd;
    _Atomic bool stopping; /* answers close their connection: httpd_stop waits for them */
    char url[128];
};

/* Headers every answer carries. */
static void common_headers(struct httpd *h, struct MHD_Response *r)
{
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (atomic_load(&h->stopping))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
}

static enum MHD_Result reply(struct httpd *h, struct MHD_Connection *c, unsigned code,
                             const char *type, const void *body, size_t n)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(n, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    common_headers(h, r);
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    if (code == MHD_HTTP_SERVICE_UNAVAILABLE)
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "10");
    enum MHD_Result ok = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ok;
}

/* A one-line plain-text error: "crux: WHY\n". */
static enum MHD_Result fail(struct httpd *h, struct MHD_Connection *c, unsigned code,
                            const char *fmt, ...) PRINTF_LIKE(4, 5);
static enum MHD_Result fail(struct httpd *h, struct MHD_Connection *c, unsigned code,
                            const char *fmt, ...)
{
    char msg[512] = "crux: ";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + 6, sizeof(msg) - 7, fmt, ap); /* room for the newline */
    va_end(ap);
    /* one line: a value echoed from the query cannot add lines */
    size_t n = strlen(msg);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)msg[i] < 0x20)
            msg[i] = ' ';
    msg[n++] = '\n';
    return reply(h, c, code, "text/plain; charset=utf-8", msg, n);
}

/* What the query string of a profile request asks for. */
struct query {
    const char *seconds;
    unsigned nseconds;
    const char *bad; /* a key given without a value, or empty */
};

static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    struct query *q = cls;
    if (!key || !*key) {
        q->bad = "an empty parameter name";
        return MHD_YES;
    }
    if (!strcmp(key, "seconds")) {
        q->seconds = value ? value : "";
        q->nseconds++;
    }
    return MHD_YES; /* other parameters are ignored, as Go's handler ignores them */
}

static enum MHD_Result profile(struct httpd *h, struct MHD_Connection *c)
{
    struct query q = {0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, query_arg, &q);
    if (q.bad)
        return fail(h, c, MHD_HTTP_BAD_REQUEST, "bad query string: %s", q.bad);
    if (q.nseconds > 1)
        return fail(h, c, MHD_HTTP_BAD_REQUEST, "seconds is given %u times: give it once",
                    q.nseconds);
    double secs = 30; /* Go's default */
    if (q.seconds) {
        char *end = NULL;
        errno = 0;
        secs = strtod(q.seconds, &end);
        /* digits and a point only: strtod alone would take " 5", "0x10" and "inf" */
        bool plain = *q.seconds && strspn(q.seconds, "0123456789.") == strlen(q.seconds);
        if (!plain || errno || !end || *end || !isfinite(secs) || secs < 0.1 ||
            secs > h->max_seconds)
            return fail(h, c, MHD_HTTP_BAD_REQUEST,
                        "seconds must be a number from 0.1 to %g, got '%.64s'", h->max_seconds,
                        q.seconds);
    }
    const char *why = NULL;
    struct live_window *w = live_window_open(h->l, secs, &why);
    if (!w)
        return fail(h, c, MHD_HTTP_SERVICE_UNAVAILABLE, "%s: retry later", why);
    struct buf out;
    buf_init(&out, MAX_BODY);
    int rc = live_window_pprof(h->l, w, &out);
    enum MHD_Result ok;
    if (rc) {
        ok =
            fail(h, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot write the profile: %s", err_str(rc));
    } else {
        struct MHD_Response *r =
            MHD_create_response_from_buffer(out.len, out.data, MHD_RESPMEM_MUST_COPY);
        ok = MHD_NO;
        if (r) {
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_DISPOSITION,
                                    "attachment; filename=\"profile.pb.gz\"");
            common_headers(h, r);
            ok = MHD_queue_response(c, MHD_HTTP_OK, r);
            MHD_destroy_response(r);
        }
    }
    buf_fini(&out);
    return ok;
}

static enum MHD_Result metrics(struct httpd *h, struct MHD_Connection *c)
{
    struct buf out;
    buf_init(&out, 64 << 20);
    int rc = live_metrics(h->l, &out);
    enum MHD_Result ok =
        rc ? fail(h, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot write the metrics: %s", err_str(rc))
           : reply(h, c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", out.data,
                   out.len);
    buf_fini(&out);
    return ok;
}

static const char INDEX[] =
    "crux serve\n"
    "\n"
    "/debug/pprof/profile?seconds=N  a pprof profile of the next N seconds (default 30)\n"
    "                                go tool pprof "
    "http://HOST:PORT/debug/pprof/profile?seconds=10\n"
    "/metrics                        Prometheus text exposition: time categories, stages,\n"
    "                                latency histograms, memory, crux's own costs\n";

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload;
    struct httpd *h = cls;
    static int seen;
    if (!*con_cls) { /* the headers are in; answer on the next call, after any body */
        *con_cls = &seen;
        return MHD_YES;
    }
    if (*upload_size) { /* a body we do not want: skip it */
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
        return fail(h, c, MHD_HTTP_METHOD_NOT_ALLOWED, "%.16s is not supported: use GET", method);
    if (!strcmp(url, "/debug/pprof/profile"))
        return profile(h, c);
    if (!strcmp(url, "/metrics"))
        return metrics(h, c);
    if (!strcmp(url, "/") || !strcmp(url, "/debug/pprof") || !strcmp(url, "/debug/pprof/"))
        return reply(h, c, MHD_HTTP_OK, "text/plain; charset=utf-8", INDEX, sizeof(INDEX) - 1);
    return fail(h, c, MHD_HTTP_NOT_FOUND,
                "no such endpoint: %.200s (try /debug/pprof/profile?seconds=30 or /metrics)", url);
}

/* Splits "HOST:PORT", ":PORT", "PORT" or "[V6]:PORT" into host (NULL: loopback) and port. */
static int split_addr(const char *addr, char *host, size_t hn, char *port, size_t pn)
{
    const char *colon = strrchr(addr, ':');
    const char *h = addr, *p = colon ? colon + 1 : addr;
    size_t hl = colon ? (size_t)(colon - addr) : 0;
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= hn || strlen(p) >= pn || !*p || strspn(p, "0123456789") != strlen(p))
        return ERR_ARG;
    memcpy(host, h, hl);
    host[hl] = 0;
    memcpy(port, p, strlen(p) + 1);
    return 0;
}

static int listen_on(const char *addr, char *url, size_t un, struct errbuf *eb)
{
    char host[256], port[16];
    if (split_addr(addr, host, sizeof(host), port, sizeof(port)))
        return errbuf_set(eb, ERR_ARG,
                          "--listen needs HOST:PORT, :PORT or PORT (such as 127.0.0.1:6060), "
                          "got '%s'",
                          addr);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int g = getaddrinfo(*host ? host : "127.0.0.1", port, &hints, &ai);
    if (g)
        return errbuf_set(eb, ERR_ARG, "cannot resolve --listen host '%s': %s", host,
                          gai_strerror(g));
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    int one = 1;
    int rc = 0;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 64)) {
        int e = errno;
        rc = errbuf_set(eb, err_from_errno(e), "cannot listen on %s: %s%s", addr, strerror(e),
                        e == EADDRINUSE ? " (pick another port with --listen)"
                        : e == EACCES   ? " (ports below 1024 need root)"
                                        : "");
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return rc;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char shown[INET6_ADDRSTRLEN] = "?";
    unsigned bound = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &s6->sin6_addr, shown, sizeof(shown));
            bound = ntohs(s6->sin6_port);
        } else {
            const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &s4->sin_addr, shown, sizeof(shown));
            bound = ntohs(s4->sin_port);
        }
    }
    snprintf(url, un, ss.ss_family == AF_INET6 ? "http://[%s]:%u" : "http://%s:%u", shown, bound);
    freeaddrinfo(ai);
    return fd;
}

struct httpd *httpd_start(struct live *l, const char *addr, double max_seconds, struct errbuf *eb)
{
    struct httpd *h = xcalloc(1, sizeof(*h));
    h->l = l;
    h->max_seconds = max_seconds;
    h->fd = listen_on(addr, h->url, sizeof(h->url), eb);
    if (h->fd < 0) {
        free(h);
        return NULL;
    }
    /* The connection threads must not take SIGINT and SIGTERM (the sampler's thread stops on
     * them) nor SIGPIPE (a client that went away): they inherit this mask. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                MHD_USE_ITC,
                            0, NULL, NULL, handle, h, MHD_OPTION_LISTEN_SOCKET, h->fd,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_IDLE_S, MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!h->d) {
        errbuf_set(eb, ERR_SYS, "cannot start the HTTP server on %s", addr);
        close(h->fd);
        free(h);
        return NULL;
    }
    return h;
}

const char *httpd_url(const struct httpd *h)
{
    return h->url;
}

/* How long httpd_stop lets the connections in progress finish their answers. */
#define STOP_GRACE_NS 5000000000ULL

void httpd_stop(struct httpd *h)
{
    if (!h)
        return;
    /* Stop accepting, let the answers in progress (profiles ended by live_finish) be sent,
     * then close whatever is left: MHD_stop_daemon alone would cut them off. */
    atomic_store(&h->stopping, true);
    (void)MHD_quiesce_daemon(h->d);
    struct timespec t0, now, nap = {0, 10000000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        const union MHD_DaemonInfo *i =
            MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        clock_gettime(CLOCK_MONOTONIC, &now);
        uint64_t waited = (uint64_t)(now.tv_sec - t0.tv_sec) * 1000000000ULL +
                          (uint64_t)(now.tv_nsec - t0.tv_nsec);
        if (!i || i->num_connections == 0 || waited > STOP_GRACE_NS)
            break;
        nanosleep(&nap, NULL);
    }
    MHD_stop_daemon(h->d);
    close(h->fd);
    free(h);
}
