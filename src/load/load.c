// SPDX-License-Identifier: MIT
// load_run: checks options, resolves the target, prepares the requests, runs one schedule or a
// sweep to the SLO knee, and derives the warnings.
#include "load/load.h"

#include <errno.h>
#include <stdarg.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "load/jscan.h"
#include "load/loop.h"
#include "load/tls.h"
#include "util/buf.h"
#include "util/xalloc.h"

#define HOUR_US 3600000000LL
#define SWEEP_MAX_RATE 1e7
#define SWEEP_MAX_CONC 65536
#define REQFILE_MAX ((size_t)1 << 30)

const char *load_err_name(enum load_err e)
{
    static const char *const names[LOAD_ERR_COUNT] = {
        "connect", "timeout", "http", "protocol", "truncated", "closed", "unfinished"};
    return (unsigned)e < LOAD_ERR_COUNT ? names[e] : "?";
}

void load_opts_defaults(struct load_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->arrivals = LOAD_CONSTANT;
    o->connections = 128;
    o->concurrency = 0;
    o->duration_s = 10;
    o->timeout_s = 30;
    o->seed = 1;
    o->sweep_precision = 0.05;
}

/* ---- URL and target ---- */

struct target {
    char host[256];
    char port[8];
    char hostport[270]; /* for the Host header */
    char path[2048];
    struct sockaddr_storage addr;
    socklen_t addrlen;
    bool tls; /* https:// */
};

static int parse_url(const char *url, struct target *t, struct errbuf *eb)
{
    if (!url || !*url)
        return errbuf_set(eb, ERR_ARG, "no URL: give one, e.g. crux load http://127.0.0.1:8000/");
    t->tls = strncasecmp(url, "https://", 8) == 0;
    if (!t->tls && strncasecmp(url, "http://", 7) != 0)
        return errbuf_set(eb, ERR_ARG,
                          "%s: not an http:// or https:// URL: write it as http://HOST[:PORT]/PATH",
                          url);
    const char *h = url + (t->tls ? 8 : 7);
    const char *end = h + strcspn(h, "/?#");
    const char *hend, *pstart = NULL;
    if (*h == '[') {
        hend = memchr(h, ']', (size_t)(end - h));
        if (!hend)
            return errbuf_set(eb, ERR_ARG, "%s: unterminated [IPv6] host: close it with ]", url);
        if (hend + 1 < end && hend[1] != ':')
            return errbuf_set(eb, ERR_ARG, "%s: junk after ]: write [ADDR]:PORT", url);
        if (hend + 1 < end)
            pstart = hend + 2;
        h++;
    } else {
        hend = memchr(h, ':', (size_t)(end - h));
        if (hend)
            pstart = hend + 1;
        else
            hend = end;
    }
    size_t hl = (size_t)(hend - h);
    if (!hl || hl >= sizeof(t->host))
        return errbuf_set(eb, ERR_ARG, "%s: no host or host too long: write http://HOST[:PORT]/",
                          url);
    memcpy(t->host, h, hl);
    t->host[hl] = '\0';
    if (strchr(t->host, '@'))
        return errbuf_set(eb, ERR_ARG,
                          "%s: user info in URLs is not supported: use -H "
                          "'Authorization: ...'",
                          url);
    const char *port = t->tls ? "443" : "80";
    size_t pl = strlen(port);
    if (pstart) {
        port = pstart;
        pl = (size_t)(end - pstart);
        long v = 0;
        for (size_t i = 0; i < pl; i++) {
            if (port[i] < '0' || port[i] > '9')
                pl = 0;
            else
                v = v * 10 + (port[i] - '0');
            if (v > 65535)
                pl = 0;
        }
        if (!pl || v == 0)
            return errbuf_set(eb, ERR_ARG, "%s: bad port: use a number from 1 to 65535", url);
    }
    memcpy(t->port, port, pl);
    t->port[pl] = '\0';
    const char *hp_start = url + (t->tls ? 8 : 7);
    snprintf(t->hostport, sizeof(t->hostport), "%.*s", (int)(end - hp_start), hp_start);
    const char *path = *end == '#' ? "/" : end;
    if (*path == '?')
        snprintf(t->path, sizeof(t->path), "/%s", path);
    else
        snprintf(t->path, sizeof(t->path), "%s", *path ? path : "/");
    char *hash = strchr(t->path, '#');
    if (hash)
        *hash = '\0';
    if (strlen(end) >= sizeof(t->path) - 1)
        return errbuf_set(eb, ERR_ARG, "%s: path too long (max %zu bytes)", url,
                          sizeof(t->path) - 2);
    for (const char *c = t->path; *c; c++)
        if ((unsigned char)*c <= ' ')
            return errbuf_set(eb, ERR_ARG,
                              "%s: space or control character in the path: "
                              "percent-encode it",
                              url);
    return 0;
}

/* True when a TCP connection to `a` opens within a second (the probe is closed at once). */
static bool reachable(const struct addrinfo *a)
{
    int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool ok = connect(fd, a->ai_addr, a->ai_addrlen) == 0;
    if (!ok && errno == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t len = sizeof(err);
        ok = poll(&p, 1, 1000) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
             err == 0;
    }
    close(fd);
    return ok;
}

/* Resolves the host; like wrk, uses the first address that accepts a connection (localhost
 * may name ::1 first for a server listening on 127.0.0.1), else the first address. */
static int resolve(struct target *t, struct errbuf *eb)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(t->host, t->port, &hints, &ai);
    if (rc != 0 || !ai)
        return errbuf_set(eb, ERR_ARG, "cannot resolve host '%s': %s: check the URL's host name",
                          t->host, gai_strerror(rc));
    const struct addrinfo *pick = ai;
    for (const struct addrinfo *a = ai; a && ai->ai_next; a = a->ai_next)
        if (reachable(a)) {
            pick = a;
            break;
        }
    memcpy(&t->addr, pick->ai_addr, pick->ai_addrlen);
    t->addrlen = pick->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

/* ---- requests ---- */

static int read_file(const char *path, const char *what, struct buf *b, struct errbuf *eb)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errbuf_set(eb, ERR_ARG, "cannot read %s %s: %s: check the path", what, path,
                          strerror(errno));
    char chunk[65536];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = buf_append(b, chunk, n);
    if (!rc && ferror(f))
        rc = errbuf_set(eb, ERR_ARG, "cannot read %s %s: %s", what, path, strerror(errno));
    else if (rc)
        rc = errbuf_set(eb, rc, "%s %s is larger than %zu bytes", what, path, b->limit);
    fclose(f);
    return rc;
}

static bool has_header(const struct buf *hdrs, const char *name)
{
    size_t l = strlen(name);
    const char *p = hdrs->data;
    for (size_t i = 0; p && i < hdrs->len;) {
        if (strncasecmp(p + i, name, l) == 0 && p[i + l] == ':')
            return true;
        const char *nl = memchr(p + i, '\n', hdrs->len - i);
        if (!nl)
            break;
        i = (size_t)(nl - p) + 1;
    }
    return false;
}

/* Up to 80 bytes of `s` for an error message, control bytes shown as '?': what the user
 * wrote may hold line breaks, and errors are one line. */
static const char *shown(const char *s, size_t n, char out[84])
{
    size_t k = n > 80 ? 80 : n;
    for (size_t i = 0; i < k; i++)
        out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    out[k] = 0;
    return out;
}

/* RFC 9110 token characters (header names, methods). */
static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int add_header(struct buf *hdrs, const char *h, size_t n, struct errbuf *eb)
{
    char sh[84];
    const char *colon = memchr(h, ':', n);
    if (!colon || colon == h)
        return errbuf_set(eb, ERR_ARG, "header '%s' has no name: write -H 'Name: value'",
                          shown(h, n, sh));
    for (const char *c = h; c < colon; c++)
        if (!is_tchar(*c))
            return errbuf_set(eb, ERR_ARG,
                              "header '%s': a name is letters, digits and !#$%%&'*+-.^_`|~ "
                              "only: write -H 'Name: value'",
                              shown(h, n, sh));
    for (const char *c = colon + 1; c < h + n; c++)
        if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
            return errbuf_set(eb, ERR_ARG,
                              "header '%s': no line breaks or control characters in a value",
                              shown(h, n, sh));
    int rc = buf_append(hdrs, h, n);
    if (!rc)
        rc = buf_puts(hdrs, "\r\n");
    return rc;
}

static bool looks_json(const char *b, size_t n)
{
    size_t i = 0;
    while (i < n && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r'))
        i++;
    return i < n && (b[i] == '{' || b[i] == '[');
}

/* Serializes one request into `r`. `hdrs` holds the user's "Name: value\r\n" lines. */
static int build_req(const struct target *t, const char *method, const char *path,
                     const struct buf *hdrs, const char *body, size_t body_len, bool has_body,
                     struct loop_req *r)
{
    struct buf b;
    buf_init(&b, 0);
    int rc = buf_printf(&b, "%s %s HTTP/1.1\r\n", method, path);
    if (!rc && !has_header(hdrs, "host"))
        rc = buf_printf(&b, "Host: %s\r\n", t->hostport);
    if (!rc && !has_header(hdrs, "user-agent"))
        rc = buf_puts(&b, "User-Agent: crux-load\r\n");
    if (!rc && !has_header(hdrs, "accept"))
        rc = buf_puts(&b, "Accept: */*\r\n");
    if (!rc && has_body && !has_header(hdrs, "content-type") && looks_json(body, body_len))
        rc = buf_puts(&b, "Content-Type: application/json\r\n");
    if (!rc && has_body && !has_header(hdrs, "content-length"))
        rc = buf_printf(&b, "Content-Length: %zu\r\n", body_len);
    if (!rc && hdrs->len)
        rc = buf_append(&b, hdrs->data, hdrs->len);
    if (!rc)
        rc = buf_puts(&b, "\r\n");
    if (!rc && body_len)
        rc = buf_append(&b, body, body_len);
    r->head = strcmp(method, "HEAD") == 0;
    r->prompt_words = has_body ? prefill_prompt_words(body, body_len) : PREFILL_NO_PROMPT;
    r->data = buf_take(&b, &r->len);
    return rc;
}

static int check_method(const char *m, struct errbuf *eb)
{
    size_t n = strlen(m);
    char sh[84];
    if (!n || n > 15)
        return errbuf_set(eb, ERR_ARG, "method '%s': use GET, POST, PUT, ...", shown(m, n, sh));
    for (size_t i = 0; i < n; i++)
        if (!((m[i] >= 'A' && m[i] <= 'Z') || m[i] == '-' || m[i] == '_'))
            return errbuf_set(eb, ERR_ARG, "method '%s': use an upper-case token (GET, POST)",
                              shown(m, n, sh));
    return 0;
}

/* A request target as the request line carries it: no spaces or control bytes. */
static int check_path(const struct buf *p, const char *file, size_t lineno, struct errbuf *eb)
{
    if (!p->len || p->data[0] != '/')
        return errbuf_set(eb, ERR_ARG, "%s:%zu: \"path\" must be a string starting with /", file,
                          lineno);
    for (size_t i = 0; i < p->len; i++)
        if ((unsigned char)p->data[i] <= 0x20 || p->data[i] == 0x7f)
            return errbuf_set(eb, ERR_ARG,
                              "%s:%zu: \"path\" has a space or control character at byte %zu: "
                              "percent-encode it (%%20)",
                              file, lineno, i);
    return 0;
}

/* Puts "FILE:LINE: " before the message in `eb`; returns ERR_ARG. */
static int at_line(struct errbuf *eb, const char *file, size_t lineno)
{
    char why[sizeof(eb->msg)];
    snprintf(why, sizeof(why), "%s", eb->msg);
    return errbuf_set(eb, ERR_ARG, "%s:%zu: %s", file, lineno, why);
}

/* One line of --requests-file. */
static int reqfile_line(const struct load_opts *o, const struct target *t, struct jspan line,
                        const char *path, size_t lineno, struct loop_req *r, struct errbuf *eb)
{
    struct jspan obj, v;
    if (jscan_value(line, true, &obj) || jscan_type(obj) != '{')
        return errbuf_set(eb, ERR_ARG,
                          "%s:%zu: not a JSON object: write one "
                          "{\"method\",\"path\",\"headers\",\"body\"} object per line",
                          path, lineno);
    struct buf method, upath, hdrs, body, tmp;
    buf_init(&method, 64);
    buf_init(&upath, 8192);
    buf_init(&hdrs, 1 << 20);
    buf_init(&body, 0);
    buf_init(&tmp, 1 << 16);
    int rc = 0;
    bool has_body = false;
    if (jscan_get(obj, "method", &v) && jscan_decode_str(v, &method))
        rc = errbuf_set(eb, ERR_ARG, "%s:%zu: \"method\" must be a short string", path, lineno);
    if (!rc && jscan_get(obj, "path", &v)) {
        if (jscan_type(v) == '"' && jscan_decode_str(v, &upath))
            rc = errbuf_set(eb, ERR_ARG, "%s:%zu: \"path\" is longer than %zu bytes", path, lineno,
                            upath.limit);
        else
            rc = jscan_type(v) == '"' ? check_path(&upath, path, lineno, eb)
                                      : errbuf_set(eb, ERR_ARG,
                                                   "%s:%zu: \"path\" must be a string starting "
                                                   "with /",
                                                   path, lineno);
    }
    if (!rc && jscan_get(obj, "headers", &v)) {
        size_t pos = 0;
        struct jspan k, hv;
        if (jscan_type(v) != '{')
            rc = errbuf_set(eb, ERR_ARG, "%s:%zu: \"headers\" must be an object of strings", path,
                            lineno);
        while (!rc && jscan_next_member(v, &pos, &k, &hv)) {
            buf_reset(&tmp);
            if (jscan_type(hv) != '"')
                rc = errbuf_set(eb, ERR_ARG, "%s:%zu: header values must be strings", path, lineno);
            else if (jscan_decode_str(k, &tmp) || (tmp.len && memchr(tmp.data, ':', tmp.len)) ||
                     buf_puts(&tmp, ": "))
                rc = errbuf_set(eb, ERR_ARG,
                                "%s:%zu: a header name is a token (letters, digits, - _ ...) "
                                "of at most %zu bytes",
                                path, lineno, tmp.limit);
            else if (jscan_decode_str(hv, &tmp))
                rc = errbuf_set(eb, ERR_ARG, "%s:%zu: a header is longer than %zu bytes", path,
                                lineno, tmp.limit);
            else if (add_header(&hdrs, tmp.data, tmp.len, eb))
                rc = at_line(eb, path, lineno);
        }
    }
    if (!rc && jscan_get(obj, "body", &v) && jscan_type(v) != 'n') {
        has_body = true;
        rc = jscan_type(v) == '"' ? jscan_decode_str(v, &body) : buf_append(&body, v.p, v.n);
        if (rc)
            rc = errbuf_set(eb, ERR_ARG, "%s:%zu: bad \"body\"", path, lineno);
    }
    const char *m = method.len  ? buf_cstr(&method)
                    : o->method ? o->method
                    : has_body  ? "POST"
                                : "GET";
    if (!rc && check_method(m, eb))
        rc = method.len ? at_line(eb, path, lineno) : ERR_ARG; /* else --method's own */
    if (!rc)
        rc = build_req(t, m, upath.len ? buf_cstr(&upath) : t->path, &hdrs,
                       body.data ? body.data : "", body.len, has_body, r);
    buf_fini(&method);
    buf_fini(&upath);
    buf_fini(&hdrs);
    buf_fini(&body);
    buf_fini(&tmp);
    return rc;
}

static int build_requests(const struct load_opts *o, const struct target *t, struct loop_req **out,
                          size_t *nout, struct errbuf *eb)
{
    struct buf hdrs;
    buf_init(&hdrs, 1 << 20);
    int rc = 0;
    for (size_t i = 0; !rc && i < o->nheaders; i++)
        rc = add_header(&hdrs, o->headers[i], strlen(o->headers[i]), eb);
    struct loop_req *reqs = NULL;
    size_t n = 0;
    if (!rc && o->requests_file) {
        struct buf file;
        buf_init(&file, REQFILE_MAX);
        rc = read_file(o->requests_file, "requests file", &file, eb);
        size_t cap = 0, lineno = 0;
        for (size_t i = 0; !rc && i < file.len;) {
            const char *nl = memchr(file.data + i, '\n', file.len - i);
            size_t e = nl ? (size_t)(nl - file.data) : file.len;
            lineno++;
            struct jspan line = {file.data + i, e - i};
            i = e + 1;
            size_t k = 0;
            while (k < line.n && (line.p[k] == ' ' || line.p[k] == '\t' || line.p[k] == '\r'))
                k++;
            if (k == line.n)
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                reqs = xrealloc(reqs, cap * sizeof(*reqs));
            }
            rc = reqfile_line(o, t, line, o->requests_file, lineno, &reqs[n], eb);
            if (!rc)
                n++;
        }
        if (!rc && !n)
            rc = errbuf_set(eb, ERR_ARG,
                            "requests file %s holds no requests: write one JSON "
                            "object per line",
                            o->requests_file);
        buf_fini(&file);
    } else if (!rc) {
        struct buf body;
        buf_init(&body, REQFILE_MAX);
        if (o->body_file)
            rc = read_file(o->body_file, "body file", &body, eb);
        const char *m = o->method ? o->method : o->body_file ? "POST" : "GET";
        if (!rc)
            rc = check_method(m, eb);
        if (!rc) {
            reqs = xcalloc(1, sizeof(*reqs));
            rc = build_req(t, m, t->path, &hdrs, body.data ? body.data : "", body.len,
                           o->body_file != NULL, &reqs[0]);
            n = 1;
        }
        buf_fini(&body);
    }
    buf_fini(&hdrs);
    *out = reqs;
    *nout = n;
    return rc;
}

static void free_requests(struct loop_req *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(r[i].data);
    free(r);
}

/* ---- SLO ---- */

struct slo_term {
    char metric[8]; /* "lat", "raw", "ttft", "itl", "tpot", "errors" */
    double pct;     /* percentile for latency metrics */
    double limit;   /* us for latency, a fraction for errors */
    char text[48];
};

#define SLO_MAX 8

static int parse_duration_us(const char *s, size_t n, double *out)
{
    char tmp[32];
    if (!n || n >= sizeof(tmp))
        return ERR_ARG;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    double v = strtod(tmp, &end);
    if (end == tmp || v < 0)
        return ERR_ARG;
    double mul;
    if (strcmp(end, "us") == 0)
        mul = 1;
    else if (strcmp(end, "ms") == 0)
        mul = 1e3;
    else if (strcmp(end, "s") == 0)
        mul = 1e6;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
        mul = 6e7;
    else
        return ERR_ARG;
    *out = v * mul;
    return 0;
}

static int parse_slo(const char *spec, struct slo_term *terms, size_t *nterms, struct errbuf *eb)
{
    *nterms = 0;
    const char *p = spec;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *eq = memchr(p, '=', n);
        if (!eq || *nterms == SLO_MAX)
            goto bad;
        struct slo_term *t = &terms[(*nterms)++];
        memset(t, 0, sizeof(*t));
        snprintf(t->text, sizeof(t->text), "%.*s", (int)n, p);
        size_t kl = (size_t)(eq - p);
        const char *v = eq + 1;
        size_t vl = n - kl - 1;
        if (kl == 6 && memcmp(p, "errors", 6) == 0) {
            char tmp[32];
            if (!vl || vl >= sizeof(tmp))
                goto bad;
            memcpy(tmp, v, vl);
            tmp[vl] = '\0';
            char *end;
            double x = strtod(tmp, &end);
            if (end == tmp || x < 0 || (*end && strcmp(end, "%") != 0))
                goto bad;
            snprintf(t->metric, sizeof(t->metric), "errors");
            t->limit = *end == '%' ? x / 100 : x;
        } else {
            const char *pp = memchr(p, 'p', kl);
            if (!pp)
                goto bad;
            size_t ml = (size_t)(pp - p);
            if (ml && p[ml - 1] == '_')
                ml--;
            if (ml == 0)
                snprintf(t->metric, sizeof(t->metric), "lat");
            else if (ml <= 4)
                snprintf(t->metric, sizeof(t->metric), "%.*s", (int)ml, p);
            if (ml > 4 || (strcmp(t->metric, "lat") && strcmp(t->metric, "raw") &&
                           strcmp(t->metric, "ttft") && strcmp(t->metric, "itl") &&
                           strcmp(t->metric, "tpot")))
                goto bad;
            char tmp[16];
            size_t pl = (size_t)(eq - pp - 1);
            if (!pl || pl >= sizeof(tmp))
                goto bad;
            memcpy(tmp, pp + 1, pl);
            tmp[pl] = '\0';
            char *end;
            t->pct = strtod(tmp, &end);
            if (*end || t->pct <= 0 || t->pct > 100 || parse_duration_us(v, vl, &t->limit))
                goto bad;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    if (!*nterms)
        goto bad;
    return 0;
bad:
    return errbuf_set(eb, ERR_ARG,
                      "--slo '%s': write terms like p99=200ms, ttft_p90=1s, "
                      "itl_p99=50ms, tpot_p50=20ms, raw_p99=100ms, errors=1%% joined by commas",
                      spec);
}

static const struct hist *slo_hist(const struct load_stats *st, const char *metric)
{
    if (!strcmp(metric, "raw"))
        return &st->latency_raw;
    if (!strcmp(metric, "ttft"))
        return &st->ttft;
    if (!strcmp(metric, "itl"))
        return &st->itl;
    if (!strcmp(metric, "tpot"))
        return &st->tpot;
    return &st->latency;
}

static void check_slo(struct load_stats *st, const struct slo_term *terms, size_t n)
{
    st->slo_checked = true;
    st->slo_met = true;
    st->slo_detail[0] = '\0';
    for (size_t i = 0; i < n && st->slo_met; i++) {
        const struct slo_term *t = &terms[i];
        if (!strcmp(t->metric, "errors")) {
            uint64_t all = st->ok + st->errors;
            double share = all ? (double)st->errors / (double)all : 1.0;
            if (share > t->limit) {
                st->slo_met = false;
                snprintf(st->slo_detail, sizeof(st->slo_detail), "%s: errors were %.2f%%", t->text,
                         share * 100);
            }
            continue;
        }
        const struct hist *h = slo_hist(st, t->metric);
        if (!h->total) {
            st->slo_met = false;
            snprintf(st->slo_detail, sizeof(st->slo_detail), "%s: no measurements", t->text);
            continue;
        }
        int64_t v = hist_percentile(h, t->pct);
        if ((double)v > t->limit) {
            st->slo_met = false;
            snprintf(st->slo_detail, sizeof(st->slo_detail), "%s: measured %.3f ms", t->text,
                     (double)v / 1000.0);
        }
    }
}

/* ---- stats ---- */

static void stats_init(struct load_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->tick_s = 1;
    st->ticks = xcalloc(LOAD_MAX_TICKS, sizeof(*st->ticks));
    struct hist *hs[] = {&st->latency, &st->latency_raw, &st->send_lag, &st->self_lag,
                         &st->ttft,    &st->ttft_sched,  &st->itl,      &st->tpot};
    for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
        if (hist_init(hs[i], HOUR_US, 3))
            abort(); /* constant arguments: cannot fail */
    prefill_init(&st->prefill);
}

static void stats_fini(struct load_stats *st)
{
    struct hist *hs[] = {&st->latency, &st->latency_raw, &st->send_lag, &st->self_lag,
                         &st->ttft,    &st->ttft_sched,  &st->itl,      &st->tpot};
    for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
        hist_fini(hs[i]);
    prefill_fini(&st->prefill);
    free(st->ticks);
    st->ticks = NULL;
}

void load_result_fini(struct load_result *res)
{
    stats_fini(&res->stats);
}

int load_opts_check(const struct load_opts *o, struct errbuf *eb)
{
    struct target t;
    int rc = parse_url(o->url, &t, eb);
    if (rc)
        return rc;
    if (o->log_bodies && !o->log_path)
        return errbuf_set(eb, ERR_ARG, "--log-bodies adds to --log lines: give --log FILE too");
    if (o->rate < 0 || (o->rate > 0 && o->concurrency > 0))
        return errbuf_set(eb, ERR_ARG,
                          "--rate (open loop) and --concurrency (closed loop) "
                          "exclude each other: give one");
    if (o->rate > SWEEP_MAX_RATE)
        return errbuf_set(eb, ERR_ARG, "--rate %g is above %g requests/s", o->rate, SWEEP_MAX_RATE);
    if (o->concurrency < 0 || o->concurrency > SWEEP_MAX_CONC)
        return errbuf_set(eb, ERR_ARG, "--concurrency must be 1 to %d", SWEEP_MAX_CONC);
    if (o->connections < 1 || o->connections > SWEEP_MAX_CONC)
        return errbuf_set(eb, ERR_ARG, "--connections must be 1 to %d", SWEEP_MAX_CONC);
    if (!(o->duration_s > 0) && !o->requests)
        return errbuf_set(eb, ERR_ARG, "give --duration SEC or --requests N");
    if (!(o->timeout_s > 0))
        return errbuf_set(eb, ERR_ARG, "--timeout must be more than 0 seconds");
    if (o->body_file && o->requests_file)
        return errbuf_set(eb, ERR_ARG,
                          "--body and --requests-file exclude each other: put the "
                          "body in each line of the requests file");
    if (o->sweep && !o->slo)
        return errbuf_set(eb, ERR_ARG,
                          "--sweep needs --slo to find the knee, e.g. --slo "
                          "p99=200ms");
    if (o->sweep && !(o->sweep_precision > 0 && o->sweep_precision < 1))
        return errbuf_set(eb, ERR_ARG, "--sweep-precision must be between 0 and 1 (e.g. 0.05)");
    if (o->slo) {
        struct slo_term terms[SLO_MAX];
        size_t n;
        rc = parse_slo(o->slo, terms, &n, eb);
    }
    return rc;
}

/* One run of the schedule at `load` into a fresh `st`. */
static int run_one(const struct load_opts *o, struct loop_cfg *cfg, double load, FILE *log,
                   uint64_t *log_base, struct load_stats *st, volatile sig_atomic_t *stop,
                   struct errbuf *eb)
{
    stats_init(st);
    st->load = load;
    st->open_loop = cfg->open_loop;
    if (cfg->open_loop)
        cfg->rate = load;
    else
        cfg->slots = (int)load;
    cfg->log = log;
    cfg->log_bodies = o->log_bodies && log;
    cfg->log_base = *log_base;
    /* about 100 ticks over the expected length, in a round width of 0.1 s or more */
    double expect_s = cfg->duration_s > 0               ? cfg->duration_s
                      : cfg->open_loop && cfg->requests ? (double)cfg->requests / load
                                                        : 0;
    static const double widths[] = {0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800};
    if (expect_s > 0) {
        st->tick_s = widths[sizeof(widths) / sizeof(widths[0]) - 1];
        for (size_t i = 0; i < sizeof(widths) / sizeof(widths[0]); i++)
            if (expect_s / widths[i] <= 100) {
                st->tick_s = widths[i];
                break;
            }
    }
    (void)o;
    int rc = loop_run(cfg, st, stop, eb);
    *log_base += st->scheduled;
    st->throughput = st->elapsed_s > 0 ? (double)st->ok / st->elapsed_s : 0;
    return rc;
}

static void step_of(const struct load_stats *st, struct load_step *s)
{
    memset(s, 0, sizeof(*s));
    s->load = st->load;
    s->throughput = st->throughput;
    s->ok = st->ok;
    s->errors = st->errors;
    s->p50 = hist_percentile(&st->latency, 50);
    s->p90 = hist_percentile(&st->latency, 90);
    s->p99 = hist_percentile(&st->latency, 99);
    s->p999 = hist_percentile(&st->latency, 99.9);
    s->max = st->latency.max;
    s->ttft_p50 = hist_percentile(&st->ttft, 50);
    s->ttft_p99 = hist_percentile(&st->ttft, 99);
    s->slo_met = st->slo_met;
    snprintf(s->slo_detail, sizeof(s->slo_detail), "%s", st->slo_detail);
}

/* Next load of a sweep, or 0 when it is over. */
static double next_load(const struct load_opts *o, bool open_loop, double cur, double lo, double hi,
                        double max)
{
    double next;
    if (hi <= 0) {
        if (cur >= max)
            return 0;
        next = cur * 2 > max ? max : cur * 2;
    } else if (lo <= 0) {
        next = open_loop ? cur / 2 : (double)((int)cur / 2);
        if (next < (open_loop ? 0.01 : 1))
            return 0;
    } else {
        if (hi / lo - 1 < o->sweep_precision)
            return 0;
        next = (lo + hi) / 2;
        if (!open_loop) {
            next = (double)(int)next;
            if (next <= lo)
                return 0;
        }
    }
    return next;
}

static int run_sweep(const struct load_opts *o, struct loop_cfg *cfg, FILE *log,
                     const struct slo_term *terms, size_t nterms, struct load_result *res,
                     volatile sig_atomic_t *stop, struct errbuf *eb)
{
    double start =
        cfg->open_loop ? (o->rate > 0 ? o->rate : 1) : (o->concurrency > 0 ? o->concurrency : 1);
    double max = o->sweep_max > 0 ? o->sweep_max : cfg->open_loop ? SWEEP_MAX_RATE : SWEEP_MAX_CONC;
    double lo = 0, hi = 0, load = start;
    uint64_t log_base = 0;
    bool have_best = false;
    struct load_stats cur;
    int rc = 0;
    res->knee = -1;
    while (load > 0 && res->nsteps < LOAD_MAX_STEPS && !(stop && *stop)) {
        if (!cfg->open_loop)
            cfg->slots = (int)load;
        rc = run_one(o, cfg, load, log, &log_base, &cur, stop, eb);
        if (rc) {
            stats_fini(&cur);
            break;
        }
        check_slo(&cur, terms, nterms);
        step_of(&cur, &res->steps[res->nsteps]);
        if (cur.slo_met && load > lo) {
            lo = load;
            res->knee = (int)res->nsteps;
        } else if (!cur.slo_met && (hi <= 0 || load < hi)) {
            hi = load;
        }
        res->nsteps++;
        if (res->knee == (int)res->nsteps - 1 || !have_best) {
            if (have_best)
                stats_fini(&res->stats);
            res->stats = cur;
            have_best = true;
        } else {
            stats_fini(&cur);
        }
        load = next_load(o, cfg->open_loop, load, lo, hi, max);
    }
    if (!have_best)
        stats_init(&res->stats);
    return rc;
}

static void warn(struct load_result *res, const char *fmt, ...) PRINTF_LIKE(2, 3);

static void warn(struct load_result *res, const char *fmt, ...)
{
    if (res->nwarnings >= 4)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->warnings[res->nwarnings++], sizeof(res->warnings[0]), fmt, ap);
    va_end(ap);
}

/* The crux-is-the-bottleneck and too-few-connections warnings. */
static void derive_warnings(struct load_result *res)
{
    const struct load_stats *st = &res->stats;
    double sent = st->sent ? (double)st->sent : 1;
    double cpu = st->elapsed_s > 0 ? st->cpu_s / st->elapsed_s : 0;
    if (st->open_loop && st->self_late > 0.01 * sent)
        warn(res,
             "crux fell behind its schedule: %.1f%% of requests started more than 1 ms late "
             "although a connection was free (p99 %.2f ms); %s",
             100.0 * (double)st->self_late / sent, hist_percentile(&st->self_lag, 99) / 1e3,
             cpu > 0.5 ? "crux is the bottleneck at this rate"
                       : "crux's loop was mostly idle, so the machine delayed it (other busy "
                         "processes, or too few cores for crux and the server)");
    if (st->elapsed_s > 0.5 && cpu > 0.9)
        warn(res,
             "crux's loop used %.0f%% of a CPU core: it may be the bottleneck; the "
             "server's figures are a lower bound",
             100.0 * cpu);
    if (st->open_loop && st->waited_conn > 0.01 * sent)
        warn(res,
             "%.1f%% of requests waited for a free connection (all %d busy): their "
             "latency counts the wait; raise --connections to send them on time",
             100.0 * (double)st->waited_conn / sent, res->connections);
    if (st->err[LOAD_ERR_UNFINISHED])
        warn(res,
             "%llu requests were not finished when the drain time (--timeout after the "
             "schedule) ran out: the server fell behind",
             (unsigned long long)st->err[LOAD_ERR_UNFINISHED]);
}

int load_run(const struct load_opts *o, struct load_result *res, volatile sig_atomic_t *stop,
             struct errbuf *eb)
{
    memset(res, 0, sizeof(*res));
    res->knee = -1;
    stats_init(&res->stats);
    int rc = load_opts_check(o, eb);
    if (rc)
        return rc;
    struct target t;
    rc = parse_url(o->url, &t, eb);
    if (!rc)
        rc = resolve(&t, eb);
    if (rc)
        return rc;
    struct loop_req *reqs = NULL;
    size_t nreqs = 0;
    rc = build_requests(o, &t, &reqs, &nreqs, eb);
    if (rc) {
        free_requests(reqs, nreqs);
        return rc;
    }
    struct slo_term terms[SLO_MAX];
    size_t nterms = 0;
    if (o->slo && parse_slo(o->slo, terms, &nterms, eb))
        nterms = 0;
    FILE *log = NULL;
    if (o->log_path) {
        log = fopen(o->log_path, "w");
        if (!log) {
            free_requests(reqs, nreqs);
            return errbuf_set(eb, ERR_IO, "cannot write --log %s: %s: check the directory",
                              o->log_path, strerror(errno));
        }
        setvbuf(log, NULL, _IOFBF, 1 << 20);
    }
    struct tls_ctx *tls = NULL;
    if (t.tls) {
        rc = tls_ctx_new(o->insecure, &tls, eb);
        if (rc) {
            free_requests(reqs, nreqs);
            if (log)
                fclose(log);
            return rc;
        }
    }
    /* OpenSSL writes with write(2): a reset connection would raise SIGPIPE. Blocked here, a
     * SIGPIPE stays pending on this thread and is discarded at the end. */
    sigset_t pipe_set, old_mask;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
    /* 1 us timer slack: the default 50 us would make every wake-up late by that much */
    (void)prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);

    bool open_loop = o->rate > 0 || (o->sweep && o->concurrency <= 0);
    snprintf(res->url, sizeof(res->url), "%s", o->url);
    snprintf(res->method, sizeof(res->method), "%s",
             o->requests_file ? "(file)"
             : o->method      ? o->method
             : o->body_file   ? "POST"
                              : "GET");
    res->open_loop = open_loop;
    res->arrivals = o->arrivals;
    res->connections = o->connections;
    res->concurrency = open_loop ? 0 : (o->concurrency > 0 ? o->concurrency : 1);
    res->duration_s = o->duration_s;
    res->timeout_s = o->timeout_s;
    res->requests = o->requests;
    res->sweep = o->sweep;
    res->cost_per_hour = o->cost_per_hour;
    if (o->slo)
        snprintf(res->slo, sizeof(res->slo), "%s", o->slo);

    uint64_t rng = o->seed ? o->seed : 1;
    struct loop_cfg cfg = {.addr = (const struct sockaddr *)&t.addr,
                           .addrlen = t.addrlen,
                           .reqs = reqs,
                           .nreqs = nreqs,
                           .open_loop = open_loop,
                           .arrivals = o->arrivals,
                           .slots = open_loop ? o->connections : res->concurrency,
                           .duration_s = o->duration_s,
                           .requests = o->requests,
                           .timeout_s = o->timeout_s,
                           .rng = &rng,
                           .inflight = o->inflight,
                           .reqlog = o->reqlog,
                           .tls = tls,
                           .host = t.host};
    if (o->sweep) {
        stats_fini(&res->stats);
        rc = run_sweep(o, &cfg, log, terms, nterms, res, stop, eb);
    } else {
        uint64_t base = 0;
        stats_fini(&res->stats);
        rc = run_one(o, &cfg, open_loop ? o->rate : res->concurrency, log, &base, &res->stats, stop,
                     eb);
        if (nterms)
            check_slo(&res->stats, terms, nterms);
    }
    res->stopped = stop && *stop;
    tls_ctx_free(tls);
    struct timespec zero = {0, 0};
    sigset_t pending;
    while (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) &&
           sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE)
        ;
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (!rc)
        derive_warnings(res);
    if (log && fclose(log) != 0 && !rc)
        rc = errbuf_set(eb, ERR_IO, "writing --log %s failed: %s", o->log_path, strerror(errno));
    free_requests(reqs, nreqs);
    return rc;
}
