// SPDX-License-Identifier: MIT
// crux top: a live view of the hottest functions, own and total share, refreshed while the
// sampler runs. On a terminal it redraws in place and reads keys (q quits, o/t sort); in a
// pipe it prints plain tables, one per refresh, with no escape codes.
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/session.h"
#include "profile/profile.h"
#include "sampler/sampler.h"
#include "util/hmap.h"
#include "util/xalloc.h"

#define TOP_DEFAULT_ROWS 20
#define TOP_MAX_DEPTH 2048

enum top_sort { SORT_OWN, SORT_TOTAL };

struct top_args {
    pid_t pid;
    char **command;
    double rate, duration, interval;
    bool idle;
    bool keep_running; /* --keep-running: leave a launched command running at the end */
    enum top_sort sort;
    int rows;
};

struct top_row {
    uint32_t name, file;
    uint64_t own, total;
};

struct top_view {
    const struct top_args *a;
    struct profile *p;
    bool tty_out;
    bool tty_in;
    uint64_t last_draw_ns;
    enum top_sort sort;
    volatile sig_atomic_t *stop;
    struct termios saved;
    bool raw;
};

static const char USAGE[] =
    "usage: crux top [options] (--pid PID | -- COMMAND [ARGS...])\n"
    "  -p, --pid PID        attach to a running process\n"
    "  -r, --rate HZ        samples per second (default 100)\n"
    "  -d, --duration SEC   stop after SEC seconds; a launched command is then ended\n"
    "                       (SIGINT, SIGTERM 1 s later, SIGKILL 1 s after that), as on q\n"
    "      --keep-running   leave a launched command running when top stops\n"
    "      --interval SEC   refresh period (default 1)\n"
    "  -i, --idle           count idle threads too\n"
    "  -s, --sort own|total order of the rows (keys o and t switch it; q quits)\n"
    "  -n, --rows N         rows shown (default: fits the terminal, 20 in a pipe)\n";

static void usage(FILE *f)
{
    fputs(USAGE, f);
}

static const struct option OPTS[] = {
    {"pid", required_argument, 0, 'p'},      {"rate", required_argument, 0, 'r'},
    {"duration", required_argument, 0, 'd'}, {"interval", required_argument, 0, 'I'},
    {"idle", no_argument, 0, 'i'},           {"sort", required_argument, 0, 's'},
    {"rows", required_argument, 0, 'n'},     {"keep-running", no_argument, 0, 'K'},
    {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
static const char SHORTS[] = "+p:r:d:is:n:h";

static int parse_args(int argc, char **argv, struct top_args *a)
{
    memset(a, 0, sizeof(*a));
    a->rate = 100;
    a->interval = 1;
    optind = 1;
    opterr = 0; /* our own one-line messages, starting with crux: */
    int c;
    double v = 0;
    while ((c = getopt_long(argc, argv, SHORTS, OPTS, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'p':
            bad = session_parse_pid(optarg, &a->pid);
            break;
        case 'r':
            bad = session_parse_number(optarg, 0.1, 100000, &a->rate);
            break;
        case 'd':
            bad = session_parse_number(optarg, 0.001, 1e7, &a->duration);
            break;
        case 'I':
            bad = session_parse_number(optarg, 0.05, 3600, &a->interval);
            break;
        case 'i':
            a->idle = true;
            break;
        case 'K':
            a->keep_running = true;
            break;
        case 's':
            bad = strcmp(optarg, "own") && strcmp(optarg, "total");
            a->sort = strcmp(optarg, "total") == 0 ? SORT_TOTAL : SORT_OWN;
            break;
        case 'n':
            bad = session_parse_number(optarg, 1, 10000, &v);
            a->rows = (int)v;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            fprintf(stderr, "crux: top: unknown option or missing value: %s\n", argv[optind - 1]);
            usage(stderr);
            return EXIT_USAGE;
        }
        if (bad) {
            fprintf(stderr, "crux: bad value '%s' for a top option: see crux top --help\n", optarg);
            return EXIT_USAGE;
        }
    }
    if (optind < argc)
        a->command = argv + optind;
    if (!a->pid == !a->command) {
        fputs("crux: top needs either --pid PID or -- COMMAND: see crux top --help\n", stderr);
        return EXIT_USAGE;
    }
    return 0;
}

static int cmp_own(const void *x, const void *y)
{
    const struct top_row *a = x, *b = y;
    if (a->own != b->own)
        return a->own < b->own ? 1 : -1;
    return a->total < b->total ? 1 : a->total > b->total ? -1 : 0;
}

static int cmp_total(const void *x, const void *y)
{
    const struct top_row *a = x, *b = y;
    if (a->total != b->total)
        return a->total < b->total ? 1 : -1;
    return a->own < b->own ? 1 : a->own > b->own ? -1 : 0;
}

/* Aggregates the profile by function (name and file, any line): own = samples where the
 * function is the leaf, total = samples where it is anywhere in the stack (once). Returns a
 * new array of *n rows; the caller frees it. */
static struct top_row *aggregate(const struct profile *p, size_t *n)
{
    struct hmap idx;
    hmap_init(&idx);
    size_t cap = 256, len = 0;
    struct top_row *rows = xmalloc(cap * sizeof(*rows));
    uint32_t frames[TOP_MAX_DEPTH + 2];
    uint64_t *stamp = xcalloc(cap, sizeof(*stamp));
    for (uint32_t s = 1; s < p->nnodes; s++) {
        if (!p->counts[s])
            continue;
        size_t depth = profile_stack_frames(p, s, frames, TOP_MAX_DEPTH + 2);
        if (depth > TOP_MAX_DEPTH + 2)
            depth = TOP_MAX_DEPTH + 2;
        for (size_t k = 0; k < depth; k++) {
            const struct pframe *f = profile_frame_at(p, frames[k]);
            if (f->kind != FRAME_PYTHON)
                continue;
            uint64_t key = ((uint64_t)f->name << 32 | f->file) + 1;
            bool fresh;
            uint64_t *slot = hmap_slot(&idx, key, len, &fresh);
            if (fresh) {
                if (len == cap) {
                    cap *= 2;
                    rows = xrealloc(rows, cap * sizeof(*rows));
                    stamp = xrealloc(stamp, cap * sizeof(*stamp));
                }
                rows[len] = (struct top_row){f->name, f->file, 0, 0};
                stamp[len] = 0;
                len++;
            }
            struct top_row *r = &rows[*slot];
            if (stamp[*slot] != s) { /* count a recursive function once per stack */
                r->total += p->counts[s];
                stamp[*slot] = s;
            }
            if (k + 1 == depth)
                r->own += p->counts[s];
        }
    }
    free(stamp);
    hmap_fini(&idx);
    *n = len;
    return rows;
}

static int screen_rows(const struct top_view *v)
{
    if (v->a->rows)
        return v->a->rows;
    struct winsize ws;
    if (v->tty_out && ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 8)
        return ws.ws_row - 6;
    return TOP_DEFAULT_ROWS;
}

static void draw(struct top_view *v, const struct sampler_stats *st)
{
    size_t n;
    struct top_row *rows = aggregate(v->p, &n);
    qsort(rows, n, sizeof(*rows), v->sort == SORT_OWN ? cmp_own : cmp_total);
    uint64_t total = v->p->total;
    double secs = (double)st->elapsed_ns / 1e9;
    if (v->tty_out)
        fputs("\x1b[H\x1b[2J", stdout);
    printf("crux top: pid %d, %.1f s, %llu samples, %.1f Hz, %llu errors, sorted by %s%s\n",
           (int)v->p->meta.pid, secs, (unsigned long long)total,
           secs > 0 ? (double)st->ticks / secs : 0.0, (unsigned long long)st->errors,
           v->sort == SORT_OWN ? "own" : "total", v->tty_in ? "  (q quit, o own, t total)" : "");
    printf("\n%7s %7s %9s %9s  %s\n", "%Own", "%Total", "Own", "Total", "Function (file)");
    int max = screen_rows(v);
    for (size_t i = 0; i < n && (int)i < max; i++) {
        const struct top_row *r = &rows[i];
        double own = total ? 100.0 * (double)r->own / (double)total : 0;
        double tot = total ? 100.0 * (double)r->total / (double)total : 0;
        printf("%6.1f%% %6.1f%% %9llu %9llu  %s (%s)\n", own, tot, (unsigned long long)r->own,
               (unsigned long long)r->total, profile_string(v->p, r->name),
               profile_string(v->p, r->file));
    }
    if (!v->tty_out)
        putchar('\n');
    fflush(stdout);
    free(rows);
}

static void read_keys(struct top_view *v)
{
    if (!v->tty_in)
        return;
    struct pollfd pfd = {0, POLLIN, 0};
    while (poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN)) {
        char ch;
        if (read(0, &ch, 1) != 1)
            return;
        if (ch == 'q' || ch == 'Q')
            *v->stop = 1;
        else if (ch == 'o')
            v->sort = SORT_OWN;
        else if (ch == 't')
            v->sort = SORT_TOTAL;
    }
}

static void on_progress(const struct sampler_stats *st, void *arg)
{
    struct top_view *v = arg;
    read_keys(v);
    uint64_t now = sampler_now_ns();
    if (now - v->last_draw_ns >= (uint64_t)(v->a->interval * 1e9)) {
        draw(v, st);
        v->last_draw_ns = now;
    }
}

static void raw_mode(struct top_view *v, bool on)
{
    if (!v->tty_in)
        return;
    if (on) {
        if (tcgetattr(0, &v->saved) != 0) {
            v->tty_in = false;
            return;
        }
        struct termios t = v->saved;
        t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        t.c_cc[VMIN] = 0;
        t.c_cc[VTIME] = 0;
        v->raw = tcsetattr(0, TCSANOW, &t) == 0;
    } else if (v->raw) {
        tcsetattr(0, TCSANOW, &v->saved);
    }
}

int cmd_top(int argc, char **argv)
{
    struct top_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    static volatile sig_atomic_t stop;
    session_trap_signals(&stop);
    struct session s;
    struct errbuf eb = {{0}};
    rc = a.pid ? session_attach(&s, a.pid, &eb) : session_launch(&s, a.command, 10.0, &eb);
    if (rc) {
        session_report(rc, &eb);
        return EXIT_FAIL;
    }
    struct profile p;
    profile_init(&p);
    p.meta.pid = (uint32_t)s.pid;
    struct top_view v = {.a = &a,
                         .p = &p,
                         .tty_out = isatty(1),
                         .tty_in = isatty(0),
                         .sort = a.sort,
                         .stop = &stop,
                         .last_draw_ns = sampler_now_ns()};
    raw_mode(&v, true);
    struct sampler_stats st = {0};
    if (!s.child_exited) {
        struct sampler_opts so = {.rate_hz = a.rate,
                                  .duration_s = a.duration,
                                  .idle = a.idle,
                                  .max_depth = TOP_MAX_DEPTH,
                                  .stop = &stop,
                                  .child = s.launched ? s.pid : 0,
                                  .child_status = &s.child_status,
                                  .child_exited = &s.child_exited,
                                  .progress = on_progress,
                                  .progress_arg = &v};
        rc = sampler_run(&s.rt, &so, &p, &st, &eb);
        if (rc)
            session_report(rc, &eb);
    }
    raw_mode(&v, false);
    draw(&v, &st);
    profile_fini(&p);
    /* q (the stop flag without a signal) and the end of --duration both mean the user is
     * done: a launched command is ended rather than waited for behind a frozen view. */
    bool duration_over = a.duration > 0 && (double)st.elapsed_ns >= a.duration * 1e9;
    bool quit = stop && !session_signal();
    struct session_stop how = {.keep_running = a.keep_running,
                               .end = !rc && (duration_over || quit),
                               .first_sig = SIGINT,
                               .why = quit ? "top quit" : "--duration is over"};
    int status = session_stop(&s, &how);
    return rc ? EXIT_FAIL : status;
}

const struct cmd_spec *cmd_top_spec(void)
{
    static const struct cmd_spec spec = {OPTS, SHORTS, USAGE};
    return &spec;
}
