// SPDX-License-Identifier: MIT
// crux record: sample a process (attached or launched) and write a profile.
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cmd/allocattach.h"
#include "cmd/allocenv.h"
#include "cmd/cmd.h"
#include "cmd/keep.h"
#include "cmd/otlpexport.h"
#include "cmd/recordload.h"
#include "cmd/session.h"
#include "analysis/stages.h"
#include "analysis/verdict.h"
#include "export/export.h"
#include "profile/profile.h"
#include "sampler/gpusampler.h"
#include "sampler/sampler.h"
#include "store/fingerprint.h"
#include "store/runs.h"
#include "store/store.h"
#include "target/mem.h"
#include "target/oomwatch.h"
#include "util/buf.h"
#include "util/xalloc.h"

/* 100 Hz: py-spy's default too; bench/overhead shows it costs well under 1% of a target,
 * and 100 samples a second give a share within ~2 points after 30 s. */
#define DEFAULT_RATE 100.0
#define DEFAULT_MAX_DEPTH 2048
#define MAX_RATE 100000.0

struct record_args {
    pid_t pid;
    char **command;
    const char *output;
    const char *format;
    double rate;
    double duration;
    bool idle, gil, threads, blocking, quiet, stats;
    bool subprocesses, no_categories, no_memory, native, no_summary;
    bool no_gpu;          /* --no-gpu: no NVML sampling */
    bool keep_running;    /* --keep-running: leave a launched command running at the end */
    bool async_tasks;     /* --async: asyncio task stacks */
    const char *save;     /* --save FILE: the raw recording as SQLite */
    const char *rules;    /* --rules FILE: stage rules for the report and the summary */
    const char *label;    /* --label NAME: keep the run in the store under NAME */
    const char *store;    /* --store DIR: the run store (--label keeps it in .crux/runs) */
    char allocations[32]; /* --allocations: $CRUX_ALLOCATIONS for the child; "" = off */
    unsigned max_depth;
    struct otlpexport otlp_out; /* --otlp-endpoint, --otlp-service */
};

/* Copies the agents' spans into the profile, on the samples' clock (both are CLOCK_MONOTONIC:
 * the agent's spans count from boot, samples from `start_ns`). */
static void keep_spans(struct profile *p, const struct stagestats *spans, uint64_t start_ns)
{
    for (size_t i = 0; i < spans->nspans; i++) {
        const struct sspan *sp = &spans->spans[i];
        const char *name = strtab_get(&spans->names, sp->name);
        struct pspan ps = {
            .start_ns = sp->start_ns > start_ns ? sp->start_ns - start_ns : 0,
            .end_ns = sp->end_ns > start_ns ? sp->end_ns - start_ns : 0,
            .request = sp->request,
            .name = profile_str(p, name, strlen(name)),
            .tid = sp->tid,
            .pid = sp->pid,
            .kind = sp->kind,
        };
        profile_add_span(p, &ps);
    }
    p->spans_dropped += spans->dropped;
}

static const char USAGE[] =
    "usage: crux record [options] (--pid PID | -- COMMAND [ARGS...])\n"
    "  -o, --output FILE    output file; format from the extension: .html (the report:\n"
    "                       verdict, stages, flame graph, tables; keeps idle samples),\n"
    "                       .svg, .json (speedscope: all threads, then one profile per\n"
    "                       thread), .gecko.json (Firefox Profiler), .trace.json\n"
    "                       (Chrome trace for Perfetto), .txt (collapsed stacks), .pb.gz\n"
    "                       (pprof: go tool pprof), .pstats (pstats.Stats, snakeviz)\n"
    "  -f, --format NAME    report | flamegraph | svg | speedscope | gecko | chrome |\n"
    "                       collapsed | lines | summary | verdict | pprof | pstats\n"
    "                       (lines: per line and function with time categories, JSON\n"
    "                       when FILE ends in .json)\n"
    "  -p, --pid PID        attach to a running process\n"
    "  -r, --rate HZ        samples per second (default 100)\n"
    "  -d, --duration SEC   stop after SEC seconds (default: until the target exits);\n"
    "                       the output is written, then a launched command and its\n"
    "                       descendants are ended: SIGINT, SIGTERM 1 s later, SIGKILL\n"
    "                       1 s after that; crux then exits 0\n"
    "      --keep-running   leave a launched command running when recording stops\n"
    "                       (it keeps writing to crux's stdout and stderr)\n"
    "  -i, --idle           show samples of idle (sleeping, blocked) threads in the\n"
    "                       outputs (the verdict always counts them)\n"
    "      --async          asyncio task stacks (3.8-3.13): the running task's await\n"
    "                       chain under <task NAME>, and one sample per suspended task\n"
    "                       per tick ending in [await] WHAT (docs/async.md)\n"
    "  -g, --gil            keep only samples of the thread holding the GIL\n"
    "  -t, --threads        split stacks by thread\n"
    "  -b, --blocking       pause the target while reading it (exact, slower)\n"
    "  -s, --subprocesses   follow child processes; stacks start with the process\n"
    "  -n, --native         merge native frames (C, C++, Rust) into the Python stacks;\n"
    "                       each thread is stopped alone for a few microseconds\n"
    "      --save FILE      also keep the raw recording as a SQLite database (see\n"
    "                       crux report and docs/formats.md)\n"
    "      --label NAME     keep the run in the run store under NAME, with its command,\n"
    "                       git commit and environment (crux runs; docs/loop.md)\n"
    "      --store DIR      the run store folder (default .crux/runs); keeps the run\n"
    "                       even without --label\n"
    "      --rules FILE     stage rules adding to or overriding the built-in ones\n"
    "      --no-summary     do not print the verdict summary at the end\n"
    "      --load URL       generate HTTP load on URL while recording (the server under\n"
    "                       test); --load-NAME VALUE passes --NAME VALUE to crux load\n"
    "                       (--load-rate 50, --load-duration 20, --load-concurrency 8,\n"
    "                       --load-json FILE ...); the recording ends with the load and\n"
    "                       its latencies go next to the profile\n"
    "      --otlp-endpoint URL  send the request spans of the crux agent (docs/stages.md)\n"
    "                       to an OpenTelemetry collector over OTLP/HTTP once the output\n"
    "                       is written (http://HOST:4318, or a URL ending in\n"
    "                       /v1/traces); a failed export is reported, nothing else changes\n"
    "      --otlp-service NAME  service.name of the spans sent (default: the script or\n"
    "                       program name)\n"
    "      --no-categories  do not split time into python/native/system/gil\n"
    "      --no-memory      do not record resident memory over time\n"
    "      --no-gpu         do not sample NVIDIA GPUs (on when libnvidia-ml.so.1 loads)\n"
    "      --allocations[=BYTES|all]  sample the launched program's allocations (Python's\n"
    "                       and native), a sample every BYTES allocated on average (512K);\n"
    "                       per-line bytes, peak, live at the end, temporaries, leaks;\n"
    "                       with --pid, injected with ptrace: Python's allocators only\n"
    "                       (docs/memory.md)\n"
    "      --max-depth N    frames kept per stack (default 2048)\n"
    "  -q, --quiet          no status line\n"
    "      --stats          print the sampler's own costs (for benchmarks)\n";

static void usage(FILE *f)
{
    fputs(USAGE, f);
}

static const struct option OPTS[] = {{"output", required_argument, 0, 'o'},
                                     {"format", required_argument, 0, 'f'},
                                     {"pid", required_argument, 0, 'p'},
                                     {"rate", required_argument, 0, 'r'},
                                     {"duration", required_argument, 0, 'd'},
                                     {"idle", no_argument, 0, 'i'},
                                     {"gil", no_argument, 0, 'g'},
                                     {"threads", no_argument, 0, 't'},
                                     {"blocking", no_argument, 0, 'b'},
                                     {"max-depth", required_argument, 0, 'm'},
                                     {"quiet", no_argument, 0, 'q'},
                                     {"help", no_argument, 0, 'h'},
                                     {"stats", no_argument, 0, 'S'},
                                     {"subprocesses", no_argument, 0, 's'},
                                     {"no-categories", no_argument, 0, 'C'},
                                     {"no-memory", no_argument, 0, 'M'},
                                     {"no-gpu", no_argument, 0, 'G'},
                                     {"allocations", optional_argument, 0, 'W'},
                                     {"native", no_argument, 0, 'n'},
                                     {"async", no_argument, 0, 'A'},
                                     {"save", required_argument, 0, 'V'},
                                     {"rules", required_argument, 0, 'R'},
                                     {"no-summary", no_argument, 0, 'Y'},
                                     {"keep-running", no_argument, 0, 'K'},
                                     {"label", required_argument, 0, 'L'},
                                     {"store", required_argument, 0, 'T'},
                                     {"otlp-endpoint", required_argument, 0, 'E'},
                                     {"otlp-service", required_argument, 0, 'N'},
                                     {0, 0, 0, 0}};
static const char SHORTS[] = "+o:f:p:r:d:igtbsnqh";

static int parse_args(int argc, char **argv, struct record_args *a)
{
    memset(a, 0, sizeof(*a));
    a->rate = DEFAULT_RATE;
    a->max_depth = DEFAULT_MAX_DEPTH;
    optind = 1;
    opterr = 0; /* our own one-line messages, starting with crux: */
    int c;
    double v;
    struct errbuf eb = {{0}};
    while ((c = getopt_long(argc, argv, SHORTS, OPTS, NULL)) != -1) {
        switch (c) {
        case 'o':
            a->output = optarg;
            break;
        case 'f':
            a->format = optarg;
            break;
        case 'p':
            if (session_parse_pid(optarg, &a->pid)) {
                fprintf(stderr, "crux: --pid needs a process id, got '%s'\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'r':
            if (session_parse_number(optarg, 0.1, MAX_RATE, &a->rate)) {
                fprintf(stderr,
                        "crux: --rate needs a number of samples per second "
                        "(0.1 to 100000), got '%s'\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'd':
            if (session_parse_number(optarg, 0.001, 1e7, &a->duration)) {
                fprintf(stderr, "crux: --duration needs seconds, got '%s'\n", optarg);
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
        case 'g':
            a->gil = true;
            break;
        case 't':
            a->threads = true;
            break;
        case 'b':
            a->blocking = true;
            break;
        case 'q':
            a->quiet = true;
            break;
        case 'S':
            a->stats = true;
            break;
        case 'A':
            a->async_tasks = true;
            break;
        case 's':
            a->subprocesses = true;
            break;
        case 'C':
            a->no_categories = true;
            break;
        case 'M':
            a->no_memory = true;
            break;
        case 'G':
            a->no_gpu = true;
            break;
        case 'n':
            a->native = true;
            break;
        case 'V':
            a->save = optarg;
            break;
        case 'R':
            a->rules = optarg;
            break;
        case 'Y':
            a->no_summary = true;
            break;
        case 'K':
            a->keep_running = true;
            break;
        case 'L':
            if (runs_label_check(optarg, &eb)) {
                fprintf(stderr, "crux: record: %s\n", eb.msg);
                return EXIT_USAGE;
            }
            a->label = optarg;
            break;
        case 'T':
            a->store = optarg;
            break;
        case 'E':
            a->otlp_out.endpoint = optarg;
            break;
        case 'N':
            a->otlp_out.service = optarg;
            break;
        case 'W':
            if (allocenv_parse(optarg, a->allocations, sizeof(a->allocations))) {
                fprintf(stderr,
                        "crux: --allocations takes 'all' or bytes between samples (512K, 1M), "
                        "got '%s'\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            fprintf(stderr, "crux: record: unknown option or missing value: %s\n",
                    argv[optind - 1]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc)
        a->command = argv + optind;
    if (!a->pid == !a->command) {
        fprintf(stderr, "crux: record needs either --pid PID or -- COMMAND: see crux record "
                        "--help\n");
        return EXIT_USAGE;
    }
    return otlpexport_check(&a->otlp_out, "record");
}

/* --allocations --pid: loads the agent into the running process (docs/memory.md,
 * "Attaching"); prints the one-line reason and returns -1 when it cannot. */
static int attach_allocations(const struct record_args *a, const struct session *s)
{
    struct allocattach at;
    if (allocattach_start(s->pid, a->allocations, &at)) {
        fprintf(stderr, "crux: %s\n", at.msg);
        return -1;
    }
    if (a->stats)
        fprintf(stderr, "crux-stats: attach_ms=%.1f thread_stopped_ms=%.2f stops=%u tid=%d %s\n",
                (double)at.total_us / 1000.0, (double)at.inject.elapsed_us / 1000.0,
                at.inject.tries, (int)at.inject.tid, at.native);
    return 0;
}

static void progress(const struct sampler_stats *st, void *arg)
{
    (void)arg;
    double secs = (double)st->elapsed_ns / 1e9;
    fprintf(stderr, "\r\x1b[Kcrux: %.1f s, %llu samples, %.1f Hz, %llu errors", secs,
            (unsigned long long)st->kept, secs > 0 ? (double)st->ticks / secs : 0.0,
            (unsigned long long)st->errors);
}

/* The wall-clock time now, ns since the epoch: when the recording began (pprof's time_nanos). */
static uint64_t unix_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void command_line(const struct record_args *a, struct buf *b)
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

static int write_output(const struct record_args *a, struct profile *p, enum export_format fmt,
                        const struct stage_rules *rules, const struct sampler_stats *st)
{
    struct buf out;
    struct errbuf eb = {{0}};
    buf_init(&out, 0);
    struct export_opts eo = {.rules = rules};
    int rc = export_write(p, fmt, &eo, &out, &eb);
    if (!rc)
        rc = buf_write_file(&out, a->output, &eb);
    buf_fini(&out);
    if (rc) {
        session_report(rc, &eb);
        return rc;
    }
    double secs = (double)st->elapsed_ns / 1e9;
    uint64_t tried = st->thread_samples + st->errors;
    fprintf(stderr,
            "crux: wrote %s (%s): %llu samples, %llu errors (%.2f%% of %llu thread-samples), "
            "%.1f Hz achieved over %.2f s\n",
            a->output, export_format_name(fmt), (unsigned long long)st->kept,
            (unsigned long long)st->errors, tried ? 100.0 * (double)st->errors / (double)tried : 0,
            (unsigned long long)tried, secs > 0 ? (double)st->ticks / secs : 0.0, secs);
    if (a->stats) {
        uint64_t per = st->thread_samples + st->errors;
        fprintf(
            stderr,
            "crux-stats: ticks=%llu late=%llu thread_samples=%llu errors=%llu kept=%llu "
            "busy_ns=%llu elapsed_ns=%llu syscalls=%llu us_per_round=%.3f "
            "us_per_thread_sample=%.3f cpu_us_per_thread_sample=%.3f "
            "read_us_per_thread_sample=%.3f processes=%llu perf_samples=%llu "
            "perf_lost=%llu native_samples=%llu native_reused=%llu native_failed=%llu "
            "native_mismatch=%llu native_stop_median_us=%.1f native_stop_p99_us=%.1f staged=%llu "
            "names_refreshes=%llu names_syscalls=%llu names_us=%.1f\n",
            (unsigned long long)st->ticks, (unsigned long long)st->late_ticks,
            (unsigned long long)st->thread_samples, (unsigned long long)st->errors,
            (unsigned long long)st->kept, (unsigned long long)st->busy_ns,
            (unsigned long long)st->elapsed_ns, (unsigned long long)mem_syscalls(),
            st->ticks ? (double)st->busy_ns / 1e3 / (double)st->ticks : 0.0,
            per ? (double)st->busy_ns / 1e3 / (double)per : 0.0,
            per ? (double)st->busy_cpu_ns / 1e3 / (double)per : 0.0,
            per ? (double)st->read_ns / 1e3 / (double)per : 0.0, (unsigned long long)st->processes,
            (unsigned long long)st->perf_samples, (unsigned long long)st->perf_lost,
            (unsigned long long)st->native_samples, (unsigned long long)st->native_reused,
            (unsigned long long)st->native_failed, (unsigned long long)st->native_mismatch,
            (double)st->native_stop_median_ns / 1e3, (double)st->native_stop_p99_ns / 1e3,
            (unsigned long long)st->staged, (unsigned long long)st->names_refreshes,
            (unsigned long long)st->names_syscalls, (double)st->names_ns / 1e3);
        /* The cost split: system calls by kind, and the interrupts the target took. */
        uint64_t mem = mem_syscalls();
        uint64_t calls =
            mem + st->state_reads + st->syscall_reads + st->statm_reads + st->alive_checks;
        double rounds = st->ticks ? (double)st->ticks : 1.0;
        fprintf(stderr,
                "crux-stats: syscalls_per_round=%.2f mem_reads=%llu mem_ranges_per_round=%.1f "
                "state_reads=%llu "
                "states_reused=%llu syscall_reads=%llu statm_reads=%llu alive_checks=%llu "
                "cpu_us_per_round=%.3f thread_cpu_us_per_thread_sample=%.3f "
                "target_perf_interrupts=%llu perf_interrupts_per_s=%.1f perf_switch_records=%llu\n",
                (double)calls / rounds, (unsigned long long)mem, (double)mem_ranges() / rounds,
                (unsigned long long)st->state_reads, (unsigned long long)st->states_reused,
                (unsigned long long)st->syscall_reads, (unsigned long long)st->statm_reads,
                (unsigned long long)st->alive_checks, (double)st->busy_cpu_ns / 1e3 / rounds,
                per ? (double)st->thread_cpu_ns / 1e3 / (double)per : 0.0,
                (unsigned long long)st->perf_samples,
                st->elapsed_ns ? (double)st->perf_samples * 1e9 / (double)st->elapsed_ns : 0.0,
                (unsigned long long)st->perf_switches);
        if (a->async_tasks)
            fprintf(stderr,
                    "crux-stats: async_rounds=%llu async_tasks=%llu async_dropped=%llu "
                    "async_reads=%llu async_us_per_round=%.1f async_cpu_us_per_round=%.1f\n",
                    (unsigned long long)st->async_rounds, (unsigned long long)st->async_tasks,
                    (unsigned long long)st->async_dropped, (unsigned long long)st->async_reads,
                    st->async_rounds ? (double)st->async_ns / 1e3 / (double)st->async_rounds : 0.0,
                    st->async_rounds ? (double)st->async_cpu_ns / 1e3 / (double)st->async_rounds
                                     : 0.0);
        if (a->async_tasks) {
            double n = st->async_rounds ? (double)st->async_rounds : 1.0;
            fprintf(stderr,
                    "crux-stats: async_full_walks=%llu async_checked=%llu async_rewalked=%llu "
                    "async_registry_cpu_us_per_round=%.1f async_check_cpu_us_per_round=%.1f "
                    "async_walk_cpu_us_per_round=%.1f\n",
                    (unsigned long long)st->async_full, (unsigned long long)st->async_checked,
                    (unsigned long long)st->async_rewalked, (double)st->async_reg_ns / 1e3 / n,
                    (double)st->async_check_ns / 1e3 / n, (double)st->async_walk_ns / 1e3 / n);
        }
    }
    if (st->async_unsupported)
        fprintf(stderr,
                "crux: --async: task stacks need CPython 3.8-3.13; recorded without them\n");
    if (st->late_ticks)
        fprintf(stderr,
                "crux: %llu ticks were late (the rate was higher than crux could "
                "sustain)\n",
                (unsigned long long)st->late_ticks);
    return 0;
}

/* The raw recording: to --save FILE, and for a run kept in the store to the file it keeps
 * (the --save file, or a staging file in the store). */
static int save_recording(const struct record_args *a, const struct profile *p, struct keep *k)
{
    bool wanted = a->save || k->on;
    const char *path = keep_file(k, RUN_RECORDING, a->save);
    if (!path)
        return wanted ? ERR_IO : 0;
    struct errbuf seb = {{0}};
    if (store_save(p, path, &seb)) {
        fprintf(stderr, "crux: cannot save the recording: %s: check the path and free space\n",
                seb.msg);
        keep_drop(k);
        return ERR_IO;
    }
    if (a->save)
        fprintf(stderr, "crux: saved the recording to %s (crux report %s -o report.html)\n",
                a->save, a->save);
    if (k->on && p->meta.command)
        k->run.command = xstrdup(p->meta.command);
    return 0;
}

/* The environment of the run, into the recording (with --save) and the kept run. */
static void fingerprint(const struct record_args *a, const struct session *s, struct profile *p,
                        struct keep *k)
{
    if (!a->save && !k->on)
        return;
    char *json, *hash;
    fingerprint_collect((int)s->pid, s->rt.version, &json, &hash);
    profile_set_str(&p->meta.fingerprint, json);
    if (k->on) {
        k->run.fingerprint = json;
        k->run.fp_hash = hash;
    } else {
        free(json);
        free(hash);
    }
}

/* A target killed by a signal: said, and kept in the profile; what was recorded is written as
 * usual. For SIGKILL, whether the kernel's OOM killer acted meanwhile (the likely killer). */
static void note_killed(struct profile *p, struct session *s, const struct oomwatch *oom)
{
    /* The sampler stops when the target's threads are gone, before the kernel has torn the
     * process down (freeing a big heap takes a while): reap it here (session_finish would),
     * waiting up to 2 s while it is exiting. */
    for (int i = 0; s->launched && !s->child_exited && i < 200; i++) {
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->child_status = status;
            s->child_exited = true;
        } else if (oomwatch_exiting(s->pid)) {
            nanosleep(&(struct timespec){0, 10000000}, NULL);
        } else {
            break;
        }
    }
    if (!s->launched || !s->child_exited || !WIFSIGNALED(s->child_status))
        return;
    p->meta.killed_signal = WTERMSIG(s->child_status);
    if (p->meta.killed_signal != SIGKILL)
        return;
    p->meta.oom_kills = oomwatch_kills(oom);
    if (p->meta.oom_kills > 0)
        fprintf(stderr,
                "crux: the target was killed by SIGKILL: out of memory (the kernel's OOM killer "
                "acted %lld time(s) meanwhile); what was recorded is kept\n",
                (long long)p->meta.oom_kills);
    else
        fprintf(stderr, "crux: the target was killed by SIGKILL (%s); what was recorded is kept\n",
                p->meta.oom_kills ? "whether for memory cannot be told: /proc/vmstat unreadable"
                                  : "not by the OOM killer");
}

int cmd_record(int argc, char **argv)
{
    static struct record_load load; /* large; one recording per process */
    int rc = record_load_split(&argc, argv, &load);
    if (rc)
        return rc;
    struct record_args a;
    rc = parse_args(argc, argv, &a);
    if (!rc)
        rc = record_load_parse(&load);
    if (rc)
        return rc;
    char default_out[64];
    if (!a.output) {
        snprintf(default_out, sizeof(default_out), "crux-%d.html", (int)(a.pid ? a.pid : getpid()));
        a.output = default_out;
    }
    enum export_format fmt;
    if (a.format ? export_format_from_name(a.format, &fmt)
                 : export_format_from_path(a.output, &fmt)) {
        fprintf(stderr,
                "crux: cannot tell the output format of '%s': use a .html, .svg, .json, "
                ".gecko.json, .trace.json, .txt, .pb.gz or .pstats file name, or --format\n",
                a.format ? a.format : a.output);
        return EXIT_USAGE;
    }
    if (fmt == EXPORT_LINES && export_format_from_path(a.output, &(enum export_format){0}) == 0) {
        size_t n = strlen(a.output);
        if (n >= 5 && strcasecmp(a.output + n - 5, ".json") == 0)
            fmt = EXPORT_LINES_JSON;
    }
    struct errbuf eb = {{0}};
    struct stage_rules rules;
    stage_rules_init(&rules);
    if (a.rules && stage_rules_load(&rules, a.rules, &eb)) {
        fprintf(stderr, "crux: %s: fix the rules file (format: docs/report.md)\n", eb.msg);
        stage_rules_fini(&rules);
        return EXIT_USAGE;
    }
    static volatile sig_atomic_t stop;
    session_trap_signals(&stop);
    struct keep keep;
    keep_begin(&keep, a.label, a.store);
    struct session s;
    struct allocenv aenv = {{0}, 0};
    rc = a.allocations[0] && !a.pid ? allocenv_setup(&aenv, a.allocations, &eb) : 0;
    if (!rc)
        rc = a.pid ? session_attach(&s, a.pid, &eb) : session_launch(&s, a.command, 10.0, &eb);
    allocenv_restore(&aenv);
    if (rc) {
        session_report(rc, &eb);
        stage_rules_fini(&rules);
        keep_fini(&keep);
        return EXIT_FAIL;
    }
    if (a.allocations[0] && a.pid && attach_allocations(&a, &s)) {
        (void)session_finish(&s);
        stage_rules_fini(&rules);
        keep_fini(&keep);
        return EXIT_FAIL;
    }
    struct profile p;
    profile_init(&p);
    /* The report's verdict is about wall time: it needs the samples of waiting threads. */
    if (fmt == EXPORT_HTML)
        a.idle = true;
    /* The verdict weighs each tick of wall time (split among the threads doing something at
     * it), the report's timelines and the saved recording need every sample: keep them. */
    p.keep_samples = true;
    struct buf cmdline;
    buf_init(&cmdline, 1 << 16);
    command_line(&a, &cmdline);
    profile_set_str(&p.meta.command, buf_cstr(&cmdline));
    buf_fini(&cmdline);
    profile_set_str(&p.meta.python_version, s.rt.version);
    p.meta.pid = (uint32_t)s.pid;
    p.meta.rate_hz = a.rate;
    fingerprint(&a, &s, &p, &keep);
    char service[256]; /* for --otlp-endpoint, named while the process is there */
    if (a.otlp_out.service)
        snprintf(service, sizeof(service), "%s", a.otlp_out.service);
    else
        otlpexport_service_name(a.command, a.pid, service, sizeof(service));
    struct sampler_stats st = {0};
    bool load_failed = false;
    if (!s.child_exited) {
        struct sampler_opts so = {.rate_hz = a.rate,
                                  .duration_s = a.duration,
                                  .idle = a.idle,
                                  .gil_only = a.gil,
                                  .threads = a.threads,
                                  .blocking = a.blocking,
                                  .categories = !a.no_categories,
                                  .memory = !a.no_memory,
                                  .subprocesses = a.subprocesses,
                                  .native = a.native,
                                  .async_tasks = a.async_tasks,
                                  .stages = true,
                                  .columns = true,
                                  .allocations = a.allocations[0] != 0,
                                  .max_depth = a.max_depth,
                                  .stop = &stop,
                                  .child = s.launched ? s.pid : 0,
                                  .child_status = &s.child_status,
                                  .child_exited = &s.child_exited,
                                  .progress = !a.quiet && isatty(2) ? progress : NULL};
        /* Every span of the agents' rings: the statistics of --load, and the timelines'
         * markers (kept in the profile by keep_spans) */
        struct stagestats spans;
        uint64_t spans_lost = 0;
        stagestats_init(&spans, load.on ? 0 : PROFILE_MAX_SPANS);
        so.spans = &spans;
        so.spans_lost = &spans_lost;
        if (load.on) {
            int lrc = s.launched ? record_load_wait_listening(&load, s.pid, 30.0) : 0;
            if (lrc)
                fprintf(stderr, "crux: %s did not accept connections %s: load not sent\n",
                        load.cli.o.url,
                        lrc == ERR_PROC_GONE ? "before the server exited" : "within 30 s");
            else if (record_load_start(&load, &stop))
                fprintf(stderr, "crux: cannot start the load thread\n");
            else
                so.load_inflight = &load.inflight;
        }
        p.meta.epoch_ns = unix_now_ns();
        struct oomwatch oom;
        oomwatch_start(&oom);
        static struct gpu_sampler gpu; /* NVML in its own thread, beside the stack sampler */
        if (!a.no_gpu)
            gpusampler_start(&gpu, GPUSAMPLER_RATE_HZ);
        rc = sampler_run(&s.rt, &so, &p, &st, &eb);
        note_killed(&p, &s, &oom);
        if (!a.no_gpu) {
            gpusampler_finish(&gpu, st.start_ns, &p);
            if (a.stats)
                fprintf(stderr, "crux-gpu-stats: devices=%u rounds=%llu cpu_us_per_round=%.1f\n",
                        p.gpu.ndevs, (unsigned long long)gpu.rounds,
                        gpu.rounds ? (double)gpu.round_cpu_ns / 1e3 / (double)gpu.rounds : 0.0);
        }
        if (load.on && record_load_finish(&load, &p, &spans, spans_lost, a.quiet))
            load_failed = true;
        keep_spans(&p, &spans, st.start_ns);
        if (load.on) {
            record_load_keep_requests(&load, &p, st.start_ns);
            record_load_phase_stages(&p, a.quiet);
        }
        stagestats_fini(&spans);
        if (so.progress)
            fputs("\r\x1b[K", stderr);
        if (rc) {
            session_report(rc, &eb);
            if (!st.recorded) {
                profile_fini(&p);
                stage_rules_fini(&rules);
                keep_fini(&keep);
                return EXIT_FAIL;
            }
        }
    }
    /* The recording keeps the columns; only speedscope and the lines view show them, the other
     * formats and the summary one frame per line. */
    int src = save_recording(&a, &p, &keep);
    if (!export_wants_columns(fmt))
        profile_drop_columns(&p);
    int wrc = write_output(&a, &p, fmt, &rules, &st);
    wrc = wrc ? wrc : src;
    /* After the output and the recording are written: a collector that is down loses
     * nothing else, and the exit status stays what it would be without the export. */
    if (a.otlp_out.endpoint)
        (void)otlpexport_send(&a.otlp_out, &p, service, a.quiet);
    profile_drop_columns(&p);
    if (!a.no_summary && !a.quiet && st.recorded)
        verdict_print_summary(&p, &rules, stderr);
    profile_fini(&p);
    stage_rules_fini(&rules);
    record_load_fini(&load);
    if (load_failed && !wrc)
        wrc = EXIT_FAIL;
    /* A launched command still running after Ctrl-C or SIGTERM gets the same signal. One
     * still running when --duration is over is ended (SIGINT first), and a launched server
     * under --load when the load is done (SIGTERM first, as servers expect); crux's exit status
     * is then 0 (or the load's outcome), not what our signal made of the command's. */
    bool duration_over = a.duration > 0 && (double)st.elapsed_ns >= a.duration * 1e9;
    bool stop_server = load.on && !session_signal();
    struct session_stop how = {.keep_running = a.keep_running,
                               .end = duration_over || stop_server,
                               .first_sig = stop_server ? SIGTERM : SIGINT,
                               .why = stop_server ? "the load is done" : "--duration is over"};
    int status = session_stop(&s, &how);
    /* after the session: git runs as a child, and the session reaps any child while it ends */
    int krc = keep_finish(&keep);
    keep_fini(&keep);
    if (wrc || (krc && !status))
        return EXIT_FAIL;
    return status;
}

const struct cmd_spec *cmd_record_spec(void)
{
    static const struct cmd_spec spec = {OPTS, SHORTS, USAGE};
    return &spec;
}
