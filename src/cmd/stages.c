// SPDX-License-Identifier: MIT
// crux stages: per-stage latency percentiles and the slowest requests' waterfalls, from the
// stage ring of a process that imports the agent, or from an OTLP/JSON file.
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/otlpexport.h"
#include "cmd/session.h"
#include "profile/profile.h"
#include "sampler/sampler.h"
#include "stages/otlp.h"
#include "stages/ring.h"
#include "stages/ringset.h"
#include "stages/stagestats.h"
#include "target/proc.h"
#include "util/buf.h"
#include "util/xalloc.h"

#define STAGES_POLL_NS 10000000ull  /* drain every 10 ms */
#define STAGES_SCAN_NS 100000000ull /* look for new rings every 100 ms */
#define STAGES_SLOWEST_DEFAULT 5

static const char usage_text[] =
    "usage: crux stages [options] (--pid PID | --ring FILE | --otlp FILE.json | -- COMMAND)\n"
    "  --pid PID        attach to the stage ring of a process that imports crux\n"
    "  -- COMMAND ARGS  launch COMMAND and record its stages until it exits\n"
    "  --ring FILE      read a ring file directly (a process run with CRUX_AGENT_PATH)\n"
    "  --otlp FILE      import OpenTelemetry spans from an OTLP/JSON file\n"
    "  --duration SEC   stop after SEC (default: when the process exits, or Ctrl-C); a\n"
    "                   launched COMMAND is then ended (SIGINT, SIGTERM 1 s later,\n"
    "                   SIGKILL 1 s after that) once the report is written\n"
    "  --keep-running   leave a launched COMMAND running when recording stops\n"
    "  --wait SEC       wait up to SEC for the process to create its ring (default 0)\n"
    "  -o FILE          write the report to FILE (.json: JSON, else text; default stdout)\n"
    "  --json           JSON on stdout\n"
    "  --slowest N      waterfalls of the N slowest requests (default 5)\n"
    "  --subprocesses   also the rings of the process's descendants (worker processes)\n"
    "  --otlp-endpoint URL  also send the spans to an OpenTelemetry collector over OTLP/HTTP\n"
    "                   (http://HOST:4318, or a URL ending in /v1/traces), a trace per\n"
    "                   request; a failed export is reported and changes nothing else\n"
    "  --otlp-service NAME  service.name of the spans sent (default: the script or\n"
    "                   program name, else crux)\n";

struct stages_args {
    pid_t pid;
    const char *ring;
    const char *otlp;
    const char *out;
    double duration; /* 0: none */
    double wait;
    bool json;
    size_t slowest;
    bool subprocesses;
    bool keep_running;          /* --keep-running: leave a launched command running at the end */
    char **cmd;                 /* -- COMMAND ARGS..., NULL-terminated (argv's tail) */
    struct otlpexport otlp_out; /* --otlp-endpoint, --otlp-service */
};

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "crux: stages: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}

static const struct option OPTS[] = {{"pid", required_argument, 0, 'p'},
                                     {"ring", required_argument, 0, 'r'},
                                     {"otlp", required_argument, 0, 'O'},
                                     {"duration", required_argument, 0, 'd'},
                                     {"wait", required_argument, 0, 'w'},
                                     {"output", required_argument, 0, 'o'},
                                     {"json", no_argument, 0, 'j'},
                                     {"slowest", required_argument, 0, 'n'},
                                     {"subprocesses", no_argument, 0, 's'},
                                     {"keep-running", no_argument, 0, 'K'},
                                     {"otlp-endpoint", required_argument, 0, 'E'},
                                     {"otlp-service", required_argument, 0, 'N'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
static const char SHORTS[] = "+p:o:jh";

static int parse_args(int argc, char **argv, struct stages_args *a)
{
    memset(a, 0, sizeof(*a));
    a->slowest = STAGES_SLOWEST_DEFAULT;
    optind = 1;
    opterr = 0;
    int c;
    double v = 0;
    while ((c = getopt_long(argc, argv, SHORTS, OPTS, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (session_parse_pid(optarg, &a->pid))
                return usage_error("--pid needs a process id", optarg);
            break;
        case 'r':
            a->ring = optarg;
            break;
        case 'O':
            a->otlp = optarg;
            break;
        case 'd':
            if (session_parse_number(optarg, 0.001, 1e7, &a->duration))
                return usage_error("--duration needs seconds > 0", optarg);
            break;
        case 'w':
            if (session_parse_number(optarg, 0, 3600, &a->wait))
                return usage_error("--wait needs seconds", optarg);
            break;
        case 'o':
            a->out = optarg;
            break;
        case 'j':
            a->json = true;
            break;
        case 's':
            a->subprocesses = true;
            break;
        case 'K':
            a->keep_running = true;
            break;
        case 'E':
            a->otlp_out.endpoint = optarg;
            break;
        case 'N':
            a->otlp_out.service = optarg;
            break;
        case 'n':
            if (session_parse_number(optarg, 0, 100000, &v))
                return usage_error("--slowest needs a count", optarg);
            a->slowest = (size_t)v;
            break;
        case 'h':
            fputs(usage_text, stdout);
            exit(0);
        default:
            return usage_error("unknown option or missing value", argv[optind - 1]);
        }
    }
    if (optind < argc)
        a->cmd = argv + optind;
    int sources = (a->pid != 0) + (a->ring != NULL) + (a->otlp != NULL) + (a->cmd != NULL);
    if (sources != 1)
        return usage_error("give exactly one of --pid, --ring, --otlp, -- COMMAND", NULL);
    return otlpexport_check(&a->otlp_out, "stages");
}

static bool json_output(const struct stages_args *a)
{
    if (a->json)
        return true;
    size_t n = a->out ? strlen(a->out) : 0;
    return n >= 5 && strcasecmp(a->out + n - 5, ".json") == 0;
}

static int write_report(const struct stages_args *a, const struct stagestats *st,
                        const struct stagestats_opts *o)
{
    struct buf out;
    buf_init(&out, 0);
    int rc =
        json_output(a) ? stagestats_write_json(st, o, &out) : stagestats_write_text(st, o, &out);
    struct errbuf eb = {""};
    if (rc)
        errbuf_set(&eb, rc, "the report is larger than the output buffer's cap");
    else
        rc = buf_write_file(&out, a->out ? a->out : "-", &eb);
    fflush(stdout);
    if (rc)
        session_report(rc, &eb);
    buf_fini(&out);
    return rc ? EXIT_FAIL : 0;
}

/* The wall-clock time now, ns since the epoch. */
static uint64_t unix_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sends the spans to --otlp-endpoint, after the report: a profile holds them on a clock whose
 * zero is `base` (no later than the earliest span), which is unix time `base_unix`. */
static void send_spans(const struct stages_args *a, const struct stagestats *st, uint64_t base,
                       uint64_t base_unix, const char *service)
{
    if (!a->otlp_out.endpoint)
        return;
    struct profile p;
    profile_init(&p);
    p.meta.epoch_ns = base_unix;
    for (size_t i = 0; i < st->nspans; i++) {
        const struct sspan *sp = &st->spans[i];
        struct pspan ps = {
            .start_ns = sp->start_ns - base,
            .end_ns = sp->end_ns - base,
            .request = sp->request,
            .name =
                profile_str(&p, strtab_get(&st->names, sp->name), strtab_len(&st->names, sp->name)),
            .tid = sp->tid,
            .pid = sp->pid,
            .kind = sp->kind,
        };
        profile_add_span(&p, &ps);
    }
    if (p.spans_dropped)
        fprintf(stderr, "crux: OTLP export: only the first %zu spans are sent\n", p.nspans);
    (void)otlpexport_send(&a->otlp_out, &p, service, false); /* it prints its outcome */
    profile_fini(&p);
}

/* The earliest span start, or `limit` if earlier. */
static uint64_t earliest(const struct stagestats *st, uint64_t limit)
{
    for (size_t i = 0; i < st->nspans; i++)
        limit = st->spans[i].start_ns < limit ? st->spans[i].start_ns : limit;
    return limit;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    nanosleep(&ts, NULL);
}

/* Opens the ring of --ring FILE or --pid PID (waiting up to a->wait seconds for the process
 * to make it) into the set. *ring_err tells that `eb` holds the ring's own complete message
 * rather than a process error that session_report completes with a fix. */
static int open_first(const struct stages_args *a, struct ringset *set, struct errbuf *eb,
                      bool *ring_err)
{
    struct stagering r;
    *ring_err = true;
    if (a->ring) {
        int rc = stagering_open_path(&r, a->ring, 0, eb);
        if (!rc)
            ringset_add(set, &r);
        return rc;
    }
    *ring_err = false;
    int rc = proc_check(a->pid, eb);
    if (rc)
        return rc;
    *ring_err = true;
    uint64_t deadline = sampler_now_ns() + (uint64_t)(a->wait * 1e9);
    for (;;) {
        rc = stagering_open(&r, a->pid, eb);
        if (!rc)
            ringset_add(set, &r);
        if (rc != ERR_NOT_FOUND || sampler_now_ns() >= deadline || !proc_alive(a->pid))
            return rc;
        sleep_ns(STAGES_POLL_NS);
    }
}

static void add_span(void *ctx, const struct stage_span *sp)
{
    stagestats_add(ctx, sp);
}

/* The recording loop: drains every 10 ms until the root process exits, the duration passes
 * or a signal arrives; every 100 ms it looks for new rings (a launched command's, or a
 * descendant's with --subprocesses). */
static void record_loop(const struct stages_args *a, struct ringset *set, pid_t root,
                        struct stagestats *st, volatile sig_atomic_t *stop)
{
    uint64_t end = a->duration > 0 ? sampler_now_ns() + (uint64_t)(a->duration * 1e9) : UINT64_MAX;
    uint64_t next_scan = 0;
    bool scan = set->follow || set->n == 0;
    bool gone = false;
    while (!*stop && !gone && sampler_now_ns() < end) {
        gone = root > 0 && !proc_alive(root); /* drain once more after it exits */
        if (scan && sampler_now_ns() >= next_scan) {
            ringset_scan(set);
            next_scan = sampler_now_ns() + STAGES_SCAN_NS;
        }
        ringset_drain(set, add_span, st);
        if (!gone)
            sleep_ns(STAGES_POLL_NS);
    }
    ringset_drain(set, add_span, st);
}

static int run_ring(const struct stages_args *a, char **cmd)
{
    struct session sess = {0};
    struct errbuf eb = {""};
    struct ringset set;
    pid_t root = a->pid;
    bool ring_err = false;
    int rc;
    if (cmd) {
        /* The agent in the command (our child: it checks its parent's pid) starts recording
         * at import, so that early requests count. */
        char me[24];
        snprintf(me, sizeof(me), "%d", (int)getpid());
        setenv("CRUX_AGENT_ATTACHED", me, 1);
        rc = session_launch(&sess, cmd, 10.0, &eb);
        unsetenv("CRUX_AGENT_ATTACHED");
        root = sess.pid;
        ringset_init(&set, root, a->subprocesses);
    } else {
        ringset_init(&set, root, a->subprocesses);
        rc = open_first(a, &set, &eb, &ring_err);
        if (!rc && !root)
            root = (pid_t)set.rings[0].hdr.pid;
    }
    if (rc && ring_err) {
        fprintf(stderr, "crux: %s\n", eb.msg);
        ringset_fini(&set);
        return EXIT_FAIL;
    }
    if (rc) {
        session_report(rc, &eb);
        ringset_fini(&set);
        return EXIT_FAIL;
    }
    /* Named now: the process may be gone when the spans are sent. */
    char service[256];
    if (a->otlp_out.service)
        snprintf(service, sizeof(service), "%s", a->otlp_out.service);
    else
        otlpexport_service_name(cmd, cmd ? 0 : root, service, sizeof(service));
    volatile sig_atomic_t stop = 0;
    session_trap_signals(&stop);
    struct stagestats st;
    stagestats_init(&st, 0);
    uint64_t t0 = sampler_now_ns();
    if (!sess.child_exited)
        record_loop(a, &set, root, &st, &stop);
    double secs = (double)(sampler_now_ns() - t0) / 1e9;
    /* What each thread is doing as recording ends (the slots the sampler tags by). */
    struct stage_current cur[64];
    size_t ncur = ringset_list_current(&set, cur, sizeof(cur) / sizeof(cur[0]));
    stagestats_finish(&st);
    char source[96];
    if (set.n > 1)
        snprintf(source, sizeof(source), "pid %d and %zu more processes, %.1f s", (int)root,
                 set.n - 1, secs);
    else
        snprintf(source, sizeof(source), "pid %d, %.1f s", (int)root, secs);
    struct stagestats_opts o = {a->ring ? a->ring : source, a->slowest, false,
                                ringset_lost(&set),         cur,        ncur};
    rc = write_report(a, &st, &o);
    const char *note = "";
    if (!set.n)
        note = " (the command never imported crux: run it with PYTHONPATH=build/agent/TAG)";
    else if (!st.nspans && ringset_lost(&set))
        note = " (every record was lost or failed validation: is the ring written by another "
               "crux version? rebuild the agent with make agent)";
    else if (!st.nspans)
        note = " (the program recorded no stage: does it run crux.stage?)";
    fprintf(stderr, "crux: %zu spans in %zu requests over %.1f s%s\n", st.nspans, st.nreqs, secs,
            note);
    /* The agent's times are CLOCK_MONOTONIC, like sampler_now_ns. */
    uint64_t base = earliest(&st, t0);
    uint64_t mono = sampler_now_ns(), wall = unix_now_ns();
    send_spans(a, &st, base, wall - (mono - base), service);
    ringset_fini(&set); /* after the report: `cur` points at the rings' names */
    stagestats_fini(&st);
    if (cmd) {
        struct session_stop how = {.keep_running = a->keep_running,
                                   .end = a->duration > 0 && secs >= a->duration,
                                   .first_sig = SIGINT,
                                   .why = "--duration is over"};
        int status = session_stop(&sess, &how);
        return rc ? rc : status;
    }
    return rc;
}

static int run_otlp(const struct stages_args *a)
{
    struct otlp o;
    otlp_init(&o, STAGESTATS_MAX_SPANS_DEFAULT);
    struct errbuf eb = {""};
    int rc = otlp_read_file(&o, a->otlp, &eb);
    if (rc) {
        fprintf(stderr, "crux: %s\n", eb.msg); /* the message names its fix */
        otlp_fini(&o);
        return EXIT_FAIL;
    }
    struct stagestats st;
    stagestats_init(&st, 0);
    for (size_t i = 0; i < o.nspans; i++)
        stagestats_add(&st, &o.spans[i]);
    stagestats_finish(&st);
    struct stagestats_opts so = {a->otlp, a->slowest, true, o.skipped, NULL, 0};
    rc = write_report(a, &st, &so);
    fprintf(stderr, "crux: %zu spans in %zu traces from %s%s\n", st.nspans, st.nreqs, a->otlp,
            o.skipped ? " (some spans lacked a name or times and were skipped)" : "");
    if (o.bad_lines)
        fprintf(stderr,
                "crux: warning: %zu lines of %s are not OTLP/JSON and were skipped (the first "
                "is line %zu): check that the export finished\n",
                o.bad_lines, a->otlp, o.first_bad);
    /* OTLP times are unix nanoseconds already. */
    uint64_t base = earliest(&st, UINT64_MAX);
    send_spans(a, &st, base, base, a->otlp_out.service ? a->otlp_out.service : "crux");
    stagestats_fini(&st);
    otlp_fini(&o);
    return rc;
}

int cmd_stages(int argc, char **argv)
{
    struct stages_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    if (a.otlp)
        return run_otlp(&a);
    return run_ring(&a, a.cmd);
}

const struct cmd_spec *cmd_stages_spec(void)
{
    static const struct cmd_spec spec = {OPTS, SHORTS, usage_text};
    return &spec;
}
