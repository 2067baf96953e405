// SPDX-License-Identifier: MIT
// crux record --load (recordload.h).
#include "cmd/recordload.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "analysis/phasesplit.h"
#include "cmd/cmd.h"
#include "target/proc.h"
#include "util/buf.h"
#include "util/jsonw.h"
#include "util/xalloc.h"

/* `crux load` options that take no value. */
static bool is_flag(const char *name)
{
    static const char *const flags[] = {"sweep", "fail-on-errors", "quiet", "insecure"};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (strcmp(name, flags[i]) == 0)
            return true;
    return false;
}

static int push(struct record_load *l, char *s)
{
    if (l->argc >= RECORD_LOAD_MAX_ARGS - 1) {
        fprintf(stderr, "crux: record: too many --load options (at most %d)\n",
                RECORD_LOAD_MAX_ARGS / 2);
        return EXIT_USAGE;
    }
    l->argv[l->argc++] = s;
    l->argv[l->argc] = NULL;
    return 0;
}

int record_load_split(int *argc, char **argv, struct record_load *l)
{
    memset(l, 0, sizeof(*l));
    l->argv[l->argc++] = "load";
    char *url = NULL;
    int out = 1, i = 1;
    for (; i < *argc; i++) {
        char *a = argv[i];
        if (strcmp(a, "--") == 0)
            break;
        if (strcmp(a, "--load") == 0 || strncmp(a, "--load=", 7) == 0) {
            if (a[6] == '=') {
                url = a + 7;
            } else if (i + 1 < *argc) {
                url = argv[++i];
            } else {
                fprintf(stderr, "crux: record: --load needs a URL: --load http://HOST:PORT/PATH\n");
                return EXIT_USAGE;
            }
            continue;
        }
        if (strncmp(a, "--load-", 7) == 0 && a[7]) {
            /* --load-NAME=VALUE, --load-NAME VALUE, or a flag: rewritten in place as
             * --NAME[=VALUE] (the string is record's own argv). */
            char *name = a + 7;
            char *opt = a + 5; /* "--NAME..." overlapping the original */
            opt[0] = '-';
            opt[1] = '-';
            memmove(opt + 2, name, strlen(name) + 1);
            if (push(l, opt))
                return EXIT_USAGE;
            if (!strchr(opt, '=') && !is_flag(opt + 2)) {
                if (i + 1 >= *argc) {
                    fprintf(stderr, "crux: record: %s needs a value\n", a);
                    return EXIT_USAGE;
                }
                if (push(l, argv[++i]))
                    return EXIT_USAGE;
            }
            continue;
        }
        argv[out++] = a;
    }
    for (; i < *argc; i++)
        argv[out++] = argv[i];
    argv[out] = NULL;
    *argc = out;
    if (l->argc > 1 && !url) {
        fprintf(stderr, "crux: record: --load-* options need --load URL\n");
        return EXIT_USAGE;
    }
    if (url) {
        l->on = true;
        if (push(l, url))
            return EXIT_USAGE;
    }
    return 0;
}

static bool url_host_port(const char *url, char *host, size_t nh, char *port, size_t np);

int record_load_parse(struct record_load *l)
{
    if (!l->on)
        return 0;
    int rc = load_cli_parse(l->argc, l->argv, &l->cli);
    if (rc)
        return rc;
    if (l->cli.label || l->cli.store) {
        fprintf(stderr, "crux: record: the recording is the run kept: give --label and --store "
                        "to record itself, not as --load-label or --load-store\n");
        return EXIT_USAGE;
    }
    /* A host that does not resolve fails now, before a target is launched or attached. */
    char host[256], port[16];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (url_host_port(l->cli.o.url, host, sizeof(host), port, sizeof(port))) {
        int g = getaddrinfo(host, port, &hints, &res);
        if (g != 0) {
            fprintf(stderr,
                    "crux: record: cannot resolve host '%s' of --load %s: %s: check the "
                    "URL's host name\n",
                    host, l->cli.o.url, gai_strerror(g));
            return EXIT_USAGE;
        }
        freeaddrinfo(res);
    }
    return 0;
}

/* host and port of an http:// URL (IPv6 in brackets), for the wait. */
static bool url_host_port(const char *url, char *host, size_t nh, char *port, size_t np)
{
    size_t skip = strncmp(url, "http://", 7) == 0 ? 7 : strncmp(url, "https://", 8) == 0 ? 8 : 0;
    if (!skip)
        return false;
    const char *h = url + skip, *end = h + strcspn(h, "/?#");
    const char *colon = NULL;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb)
            return false;
        snprintf(host, nh, "%.*s", (int)(rb - h - 1), h + 1);
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        snprintf(host, nh, "%.*s", (int)((colon ? colon : end) - h), h);
    }
    if (colon)
        snprintf(port, np, "%.*s", (int)(end - colon - 1), colon + 1);
    else
        snprintf(port, np, "%s", skip == 8 ? "443" : "80");
    return host[0] && port[0];
}

static bool accepts(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return false;
    bool ok = false;
    for (struct addrinfo *ai = res; ai && !ok; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        ok = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
        close(fd);
    }
    freeaddrinfo(res);
    return ok;
}

int record_load_wait_listening(const struct record_load *l, pid_t pid, double wait_s)
{
    char host[256], port[16];
    if (!url_host_port(l->cli.o.url, host, sizeof(host), port, sizeof(port)))
        return 0; /* crux load reports a bad URL itself */
    struct timespec pause = {0, 50 * 1000 * 1000};
    for (double waited = 0; waited < wait_s; waited += 0.05) {
        if (accepts(host, port))
            return 0;
        if (pid && !proc_alive(pid))
            return ERR_PROC_GONE;
        nanosleep(&pause, NULL);
    }
    return ERR_IO;
}

static void *load_main(void *arg)
{
    struct record_load *l = arg;
    struct errbuf eb = {{0}};
    l->rc = load_run(&l->cli.o, &l->res, &l->stop, &eb);
    snprintf(l->err, sizeof(l->err), "%s", eb.msg);
    *l->done = 1; /* the recording ends with the load */
    return NULL;
}

int record_load_start(struct record_load *l, volatile sig_atomic_t *done)
{
    l->done = done;
    atomic_store(&l->inflight, 0);
    l->cli.o.inflight = &l->inflight;
    reqlog_init(&l->reqs, PROFILE_MAX_REQS);
    l->cli.o.reqlog = &l->reqs;
    if (pthread_create(&l->thread, NULL, load_main, l) != 0)
        return ERR_SYS;
    l->started = l->ran = true;
    return 0;
}

/* The text one of the printers writes to a FILE, as a string. */
static char *captured_load_text(const struct load_result *res)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    load_print_text(res, f);
    fclose(f);
    return text;
}

int record_load_finish(struct record_load *l, struct profile *p, struct stagestats *spans,
                       uint64_t spans_lost, bool quiet)
{
    int status = 0;
    if (l->started) {
        l->stop = 1;
        pthread_join(l->thread, NULL);
        l->started = false;
        if (l->rc) {
            fprintf(stderr, "crux: load: %s\n", l->err[0] ? l->err : err_str(l->rc));
            status = EXIT_FAIL;
        } else {
            struct buf jb;
            buf_init(&jb, 0);
            struct jsonw jw;
            jsonw_init(&jw, &jb, 0);
            load_write_json(&l->res, &jw);
            if (jsonw_error(&jw) == 0)
                profile_set_str(&p->meta.load_json, buf_cstr(&jb));
            buf_fini(&jb);
            char *text = captured_load_text(&l->res);
            if (text) {
                profile_set_str(&p->meta.load_text, text);
                if (!quiet)
                    fputs(text, stderr);
                free(text);
            }
            if (load_cli_write(&l->cli, &l->res))
                status = EXIT_FAIL;
        }
    }
    if (spans && spans->nspans) {
        stagestats_finish(spans);
        struct buf b;
        buf_init(&b, 0);
        struct stagestats_opts so = {.source = "the crux agent", .slowest = 3, .lost = spans_lost};
        if (stagestats_write_text(spans, &so, &b) == 0 && b.len) {
            profile_set_str(&p->meta.stages_text, buf_cstr(&b));
            if (!quiet)
                fputs(buf_cstr(&b), stderr);
        }
        buf_fini(&b);
    }
    return status;
}

/* `t` (CLOCK_MONOTONIC) as ns since `start_ns`, within 0 .. `end`. */
static uint64_t on_recording(uint64_t t, uint64_t start_ns, uint64_t end)
{
    uint64_t v = t > start_ns ? t - start_ns : 0;
    return v < end ? v : end;
}

void record_load_keep_requests(const struct record_load *l, struct profile *p, uint64_t start_ns)
{
    if (!l->ran || l->started)
        return;
    uint64_t end = p->meta.duration_ns ? p->meta.duration_ns : UINT64_MAX;
    for (size_t i = 0; i < l->reqs.n; i++) {
        const struct reqlog_rec *r = reqlog_at(&l->reqs, i);
        const char *err = reqlog_err_name(r->err);
        struct preq q = {
            .start_ns = on_recording(r->t_start, start_ns, end),
            .end_ns = on_recording(r->t_end, start_ns, end),
            .bytes = r->bytes,
            .ttft_ns =
                r->t_first_token > r->t_start ? (int64_t)(r->t_first_token - r->t_start) : -1,
            .status = r->status,
            .error = err ? profile_str(p, err, strlen(err)) : 0,
        };
        profile_add_req(p, &q);
    }
    p->reqs_dropped += l->reqs.dropped;
}

void record_load_phase_stages(struct profile *p, bool quiet)
{
    struct phasesplit *ps = xmalloc(sizeof(*ps));
    phasesplit_compute(p, ps);
    struct buf b;
    buf_init(&b, 0);
    int rc = p->meta.stages_text ? buf_printf(&b, "%s\n", p->meta.stages_text) : 0;
    size_t before = b.len;
    if (!rc && phasesplit_write_text(ps, p, &b) == 0 && b.len > before) {
        if (!quiet)
            fputs(buf_cstr(&b) + before, stderr);
        profile_set_str(&p->meta.stages_text, buf_cstr(&b));
    }
    buf_fini(&b);
    free(ps);
}

void record_load_fini(struct record_load *l)
{
    if (l->started) {
        l->stop = 1;
        pthread_join(l->thread, NULL);
        l->started = false;
    }
    if (l->ran) {
        load_result_fini(&l->res);
        reqlog_fini(&l->reqs);
    }
}
