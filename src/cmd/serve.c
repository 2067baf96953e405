// SPDX-License-Identifier: MIT
// crux serve: one sampler on a process for as long as it runs, and an HTTP endpoint that
// answers pprof profiles of any window (/debug/pprof/profile?seconds=N, the URL Parca,
// Grafana Alloy/Pyroscope and go tool pprof scrape) and Prometheus metrics (/metrics).
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/session.h"
#include "profile/profile.h"
#include "sampler/gpusampler.h"
#include "sampler/sampler.h"
#include "serve/httpd.h"
#include "serve/live.h"
#include "stages/stagestats.h"
#include "util/buf.h"

#define DEFAULT_RATE 100.0
#define DEFAULT_LISTEN "127.0.0.1:6060"
#define DEFAULT_MAX_STACKS 200000.0
#define DEFAULT_MAX_DEPTH 2048

static const char USAGE[] =
    "usage: crux serve [options] (--pid PID | -- COMMAND [ARGS...])\n"
    "\n"
    "Samples the process for as long as it runs and serves, over HTTP:\n"
    "  /debug/pprof/profile?seconds=N  a pprof profile of the next N seconds (default 30),\n"
    "                                  as go tool pprof, Parca and Grafana Pyroscope scrape it\n"
    "  /metrics                        Prometheus metrics: time categories, request stages,\n"
    "                                  latency histograms, memory, crux's own costs\n"
    "One sampler serves every request; the target is never stopped (docs/serve.md).\n"
    "\n"
    "options:\n"
    "  -p, --pid PID          attach to a running process\n"
    "  -l, --listen ADDR      HOST:PORT, :PORT or PORT to listen on (default " DEFAULT_LISTEN ";\n"
    "                         port 0 picks a free one; the address is printed)\n"
    "  -r, --rate HZ          samples per second per thread (default 100)\n"
    "  -i, --idle             profiles include threads that were not running\n"
    "  -s, --subprocesses     follow child processes (worker pools, forked servers)\n"
    "  -n, --native           native frames merged in (stops each thread briefly)\n"
    "      --no-categories    no time categories (no perf events)\n"
    "      --no-gpu           no NVIDIA GPU gauges (on when libnvidia-ml.so.1 loads)\n"
    "      --max-seconds SEC  the longest profile a request may ask for (default 600)\n"
    "      --max-stacks N     distinct stacks kept before crux starts its table over,\n"
    "                         bounding its memory (default 200000)\n"
    "      --max-depth N      frames kept per stack (default 2048)\n"
    "  -q, --quiet            no start-up line\n"
    "  -h, --help             this help\n"
    "\n"
    "crux serve stops on SIGINT or SIGTERM (answering the profiles in progress with what they\n"
    "have), or when the target exits. A launched command is then ended the way crux record\n"
    "ends it.\n";

static const struct option OPTS[] = {{"pid", required_argument, 0, 'p'},
                                     {"listen", required_argument, 0, 'l'},
                                     {"rate", required_argument, 0, 'r'},
                                     {"idle", no_argument, 0, 'i'},
                                     {"subprocesses", no_argument, 0, 's'},
                                     {"native", no_argument, 0, 'n'},
                                     {"no-categories", no_argument, 0, 'C'},
                                     {"no-gpu", no_argument, 0, 'G'},
                                     {"max-seconds", required_argument, 0, 'X'},
                                     {"max-stacks", required_argument, 0, 'K'},
                                     {"max-depth", required_argument, 0, 'm'},
                                     {"quiet", no_argument, 0, 'q'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
static const char SHORTS[] = "+p:l:r:isnqh";

struct serve_args {
    pid_t pid;
    char **command;
    const char *listen;
    double rate, max_seconds, max_stacks;
    unsigned max_depth;
    bool idle, subprocesses, native, no_categories, no_gpu, quiet;
};

static int parse_args(int argc, char **argv, struct serve_args *a)
{
    memset(a, 0, sizeof(*a));
    a->listen = DEFAULT_LISTEN;
    a->rate = DEFAULT_RATE;
    a->max_seconds = HTTPD_MAX_SECONDS_DEFAULT;
    a->max_stacks = DEFAULT_MAX_STACKS;
    a->max_depth = DEFAULT_MAX_DEPTH;
    optind = 1;
    opterr = 0;
    int c;
    double v;
    while ((c = getopt_long(argc, argv, SHORTS, OPTS, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (session_parse_pid(optarg, &a->pid)) {
                fprintf(stderr, "crux: --pid needs a process id, got '%s'\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'l':
            a->listen = optarg;
            break;
        case 'r':
            if (session_parse_number(optarg, 0.1, 100000, &a->rate)) {
                fprintf(stderr,
                        "crux: --rate needs a number of samples per second (0.1 to 100000), "
                        "got '%s'\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'X':
            if (session_parse_number(optarg, 0.1, 86400, &a->max_seconds)) {
                fprintf(stderr, "crux: --max-seconds needs seconds (0.1 to 86400), got '%s'\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'K':
            if (session_parse_number(optarg, 100, 1e8, &a->max_stacks)) {
                fprintf(stderr, "crux: --max-stacks needs a number (100 to 1e8), got '%s'\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'm':
            if (session_parse_number(optarg, 1, 1 << 20, &v)) {
                fprintf(stderr, "crux: --max-depth needs a number of frames, got '%s'\n", optarg);
                return EXIT_USAGE;
            }
            a->max_depth = (unsigned)v;
            break;
        case 'i':
            a->idle = true;
            break;
        case 's':
            a->subprocesses = true;
            break;
        case 'n':
            a->native = true;
            break;
        case 'C':
            a->no_categories = true;
            break;
        case 'G':
            a->no_gpu = true;
            break;
        case 'q':
            a->quiet = true;
            break;
        case 'h':
            fputs(USAGE, stdout);
            exit(0);
        default:
            fprintf(stderr, "crux: serve: unknown option or missing value: %s\n", argv[optind - 1]);
            fputs(USAGE, stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc)
        a->command = argv + optind;
    if (!a->pid == !a->command) {
        fprintf(stderr,
                "crux: serve needs either --pid PID or -- COMMAND: see crux serve --help\n");
        return EXIT_USAGE;
    }
    return 0;
}

static void command_line(const struct serve_args *a, struct buf *b)
{
    if (a->pid) {
        if (buf_printf(b, "--pid %d", (int)a->pid))
            return;
        return;
    }
    for (char **p = a->command; *p; p++)
        if (buf_printf(b, "%s%s", p == a->command ? "" : " ", *p))
            return;
}

int cmd_serve(int argc, char **argv)
{
    struct serve_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    signal(SIGPIPE, SIG_IGN);
    static volatile sig_atomic_t stop;
    session_trap_signals(&stop);
    struct errbuf eb = {{0}};
    struct session s;
    rc = a.pid ? session_attach(&s, a.pid, &eb) : session_launch(&s, a.command, 10.0, &eb);
    if (rc) {
        session_report(rc, &eb);
        return EXIT_FAIL;
    }
    if (s.child_exited) {
        fprintf(stderr, "crux: the command exited before it could be sampled\n");
        return session_finish(&s);
    }
    struct buf cmdline;
    buf_init(&cmdline, 1 << 16);
    command_line(&a, &cmdline);
    struct stagestats spans;
    stagestats_init(&spans, 0);
    /* NVML in its own thread, keeping only the latest figures (bounded over days) */
    static struct gpu_sampler gpu;
    if (!a.no_gpu)
        gpusampler_start_live(&gpu, GPUSAMPLER_RATE_HZ);
    struct live live;
    live_init(&live, &(struct live_opts){.rate_hz = a.rate,
                                         .max_stacks = (uint64_t)a.max_stacks,
                                         .command = buf_cstr(&cmdline),
                                         .python_version = s.rt.version,
                                         .categories = !a.no_categories,
                                         .idle = a.idle,
                                         .spans = &spans,
                                         .gpu = a.no_gpu ? NULL : &gpu});
    struct httpd *h = httpd_start(&live, a.listen, a.max_seconds, &eb);
    int status = 0;
    if (!h) {
        fprintf(stderr, "crux: %s\n", eb.msg);
        status = EXIT_FAIL;
    } else {
        if (!a.quiet)
            fprintf(stderr,
                    "crux: serving pid %d at %s/debug/pprof/profile?seconds=30 and %s/metrics "
                    "(Ctrl-C to stop)\n",
                    (int)s.pid, httpd_url(h), httpd_url(h));
        struct profile p;
        profile_init(&p);
        p.keep_samples = true; /* drained ten times a second by live_drain */
        profile_set_str(&p.meta.command, buf_cstr(&cmdline));
        struct sampler_stats st = {0};
        struct sampler_opts so = {.rate_hz = a.rate,
                                  .idle = a.idle,
                                  .threads = true, /* pprof's thread labels */
                                  .categories = !a.no_categories,
                                  .memory = true,
                                  .subprocesses = a.subprocesses,
                                  .native = a.native,
                                  .stages = true,
                                  .spans = &spans,
                                  .max_depth = a.max_depth,
                                  .stop = &stop,
                                  .child = s.launched ? s.pid : 0,
                                  .child_status = &s.child_status,
                                  .child_exited = &s.child_exited,
                                  .drain = live_drain,
                                  .drain_arg = &live};
        rc = sampler_run(&s.rt, &so, &p, &st, &eb);
        live_finish(&live);
        httpd_stop(h);
        if (rc) {
            session_report(rc, &eb);
            status = EXIT_FAIL;
        } else if (!stop && !a.quiet) {
            fprintf(stderr, "crux: process %d exited; crux serve stops\n", (int)s.pid);
        }
        profile_fini(&p);
    }
    live_fini(&live);
    if (!a.no_gpu)
        gpusampler_stop(&gpu);
    stagestats_fini(&spans);
    buf_fini(&cmdline);
    int cstatus = session_stop(&s, &(struct session_stop){.first_sig = SIGINT});
    return status ? status : cstatus;
}

const struct cmd_spec *cmd_serve_spec(void)
{
    static const struct cmd_spec spec = {OPTS, SHORTS, USAGE};
    return &spec;
}
