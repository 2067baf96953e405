// SPDX-License-Identifier: MIT
// crux dump: every thread's Python stack now, as text or JSON; with --native, merged with the
// native frames of each thread (each thread stopped alone, for a few microseconds).
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/cmd.h"
#include "cmd/session.h"
#include "cpython/pyreader.h"
#include "cpython/threadnames.h"
#include "native/native.h"
#include "sampler/sampler.h"
#include "target/pause.h"
#include "target/proc.h"
#include "util/buf.h"
#include "util/jsonw.h"
#include "util/xalloc.h"

#define DUMP_TRIES 20
#define DUMP_MAX_DEPTH 4096

struct dump_args {
    pid_t pid;
    bool json;
    bool blocking;
    bool native;
    bool stats;      /* --stats: native sampling costs on stderr */
    unsigned repeat; /* --repeat N: take N native snapshots, print the last (benchmarks) */
    double interval; /* --interval SEC between those snapshots */
};

#define DUMP_USAGE                                                                                 \
    "usage: crux dump --pid PID [--json] [--blocking] [--native [--stats] [--repeat N "            \
    "[--interval SEC]]]\n"

static const struct option OPTS[] = {{"pid", required_argument, 0, 'p'},
                                     {"json", no_argument, 0, 'j'},
                                     {"blocking", no_argument, 0, 'b'},
                                     {"native", no_argument, 0, 'n'},
                                     {"stats", no_argument, 0, 's'},
                                     {"repeat", required_argument, 0, 'r'},
                                     {"interval", required_argument, 0, 'i'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
static const char SHORTS[] = "p:jbh";

static int parse_args(int argc, char **argv, struct dump_args *a)
{
    memset(a, 0, sizeof(*a));
    optind = 1;
    opterr = 0; /* our own one-line messages, starting with crux: */
    int c;
    a->repeat = 1;
    double num;
    while ((c = getopt_long(argc, argv, SHORTS, OPTS, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (session_parse_pid(optarg, &a->pid)) {
                fprintf(stderr, "crux: --pid needs a process id, got '%s'\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'j':
            a->json = true;
            break;
        case 'b':
            a->blocking = true;
            break;
        case 'n':
            a->native = true;
            break;
        case 's':
            a->stats = true;
            break;
        case 'r':
            if (session_parse_number(optarg, 1, 1e6, &num)) {
                fprintf(stderr, "crux: --repeat needs a count from 1 to 1000000, got '%s'\n",
                        optarg);
                return EXIT_USAGE;
            }
            a->repeat = (unsigned)num;
            break;
        case 'i':
            if (session_parse_number(optarg, 0, 3600, &a->interval)) {
                fprintf(stderr, "crux: --interval needs seconds from 0 to 3600, got '%s'\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'h':
            fputs(DUMP_USAGE, stdout);
            exit(0);
        default:
            fprintf(stderr, "crux: dump: unknown option or missing value: %s\n", argv[optind - 1]);
            fputs(DUMP_USAGE, stderr);
            return EXIT_USAGE;
        }
    }
    if (!a->pid || optind < argc) {
        fputs("crux: dump needs --pid PID: see crux dump --help\n", stderr);
        return EXIT_USAGE;
    }
    return 0;
}

/* Reads until every thread's stack is consistent (a few tries: a running thread can change
 * its stack while it is read), or pauses the process once with --blocking. */
static int snapshot(const struct dump_args *a, struct pyreader *r, struct errbuf *eb)
{
    struct pauser pz;
    pause_init(&pz, a->pid, 0);
    int rc = 0;
    for (int i = 0; i < DUMP_TRIES; i++) {
        if (a->blocking) {
            rc = pause_stop_all(&pz, eb);
            if (rc)
                break;
        }
        rc = pyreader_sample(r, sampler_now_ns(), eb);
        if (a->blocking)
            pause_resume_all(&pz);
        if (rc)
            break;
        bool clean = r->nthreads > 0;
        for (size_t t = 0; t < r->nthreads; t++)
            clean &= r->threads[t].err == 0;
        if (clean)
            break;
    }
    if (a->blocking)
        pause_fini(&pz);
    return rc;
}

/* --native: each thread's merged stack, taken after the snapshot one thread at a time. */
struct dump_native {
    struct native nt;
    struct native_stack *st; /* per thread slot of the reader's round */
    bool open;
};

/* ptrace is refused: say it once, with the fix; the Python stacks are still printed. */
static void report_native_error(int rc, const struct errbuf *eb)
{
    if (rc == ERR_PERM)
        fprintf(stderr,
                "crux: %s: native frames need ptrace: run crux as root or with CAP_SYS_PTRACE "
                "(kernel.yama.ptrace_scope >= 1 refuses non-descendants; in a container add "
                "--cap-add SYS_PTRACE); showing Python frames only\n",
                eb->msg[0] ? eb->msg : err_str(rc));
    else
        fprintf(stderr, "crux: %s: showing Python frames only\n",
                eb->msg[0] ? eb->msg : err_str(rc));
}

static void native_round(const struct dump_args *a, struct pyreader *r, struct dump_native *d,
                         struct pauser *pz, bool *reported)
{
    uint64_t now = sampler_now_ns();
    for (size_t t = 0; t < r->nthreads; t++) {
        struct errbuf eb = {{0}};
        int rc = native_sample_thread(&d->nt, pz, r, t, now, &d->st[t], &eb);
        if (rc == ERR_PERM && !*reported) {
            report_native_error(rc, &eb);
            *reported = true;
        }
    }
    (void)a;
}

static void native_phase(const struct dump_args *a, struct pyreader *r, struct dump_native *d)
{
    struct errbuf eb = {{0}};
    d->st = xcalloc(PYREADER_MAX_THREADS, sizeof(*d->st));
    int rc = native_open(&d->nt, a->pid, &eb);
    if (rc) {
        report_native_error(rc, &eb);
        return;
    }
    d->open = true;
    struct pauser pz;
    pause_init(&pz, a->pid, 0);
    bool reported = false;
    /* --repeat (measurements): Ctrl-C or SIGTERM ends the rounds, the stats still print. */
    static volatile sig_atomic_t stop;
    if (a->repeat > 1)
        session_trap_signals(&stop);
    for (unsigned i = 0; i < a->repeat && !stop; i++) {
        if (i > 0 && a->interval > 0) {
            struct timespec ts = {(time_t)a->interval,
                                  (long)((a->interval - (double)(time_t)a->interval) * 1e9)};
            nanosleep(&ts, NULL);
        }
        if (i > 0 && (stop || pyreader_sample(r, sampler_now_ns(), &eb)))
            break;
        native_round(a, r, d, &pz, &reported);
    }
    pause_fini(&pz);
    if (a->stats) {
        struct native_stats st;
        native_get_stats(&d->nt, &st);
        fprintf(stderr,
                "crux: native: %llu thread samples, %llu merged, %llu mismatched, %llu not "
                "stopped; thread stopped median %.1f us, p99 %.1f us, max %.1f us (mean %.1f "
                "us to stop, %.1f us to read); unwind CPU median %.1f us, p99 %.1f us, mean "
                "%.1f us per sample; %.1f native frames\n",
                (unsigned long long)st.samples, (unsigned long long)st.merged,
                (unsigned long long)st.mismatches, (unsigned long long)st.stop_failed,
                (double)st.stop_median_ns / 1e3, (double)st.stop_p99_ns / 1e3,
                (double)st.stop_max_ns / 1e3, (double)st.wait_mean_ns / 1e3,
                (double)st.read_mean_ns / 1e3, (double)st.unwind_median_ns / 1e3,
                (double)st.unwind_p99_ns / 1e3, (double)st.unwind_mean_ns / 1e3, st.frames_mean);
    }
}

static void native_fini(struct dump_native *d)
{
    if (d->st)
        for (size_t t = 0; t < PYREADER_MAX_THREADS; t++)
            native_stack_fini(&d->st[t]);
    free(d->st);
    if (d->open)
        native_close(&d->nt);
}

/* The merged stack of slot t when --native produced one. */
static const struct native_stack *merged(const struct dump_native *d, size_t t)
{
    return d && d->st && d->open ? &d->st[t] : NULL;
}

/* Reads the thread's OS name into `name` (left as is when unknown) and returns its state. */
static char thread_state(pid_t pid, pid_t tid, char *name, size_t n)
{
    char st = '?';
    if (!tid)
        return st;
    if (proc_task_comm(pid, tid, name, n))
        name[0] = '\0';
    if (proc_task_state(pid, tid, &st))
        st = '?';
    return st;
}

static const char *state_name(char st)
{
    return st == 'R' ? "running" : "idle";
}

static void print_merged_text(const struct pyreader *r, const struct native_stack *ms)
{
    for (size_t k = ms->n; k-- > 0;) {
        const struct native_frame *f = &ms->v[k];
        if (f->kind == NATIVE_FRAME_C) {
            printf("    %s (%s)\n", f->sym->name, f->sym->module);
        } else {
            const struct pycode *c = pyreader_code(r, &f->py);
            printf("    %s (%s:%d)\n", c->qualname, c->filename, f->py.line);
        }
    }
    if (!ms->native && ms->err && ms->err != ERR_PERM)
        printf("    [no native frames: %s]\n", err_str(ms->err));
}

static void print_text(const struct dump_args *a, const struct session *s, struct pyreader *r,
                       const struct dump_native *d, const struct threadnames *tn)
{
    char cmd[512] = "";
    if (proc_cmdline(a->pid, cmd, sizeof(cmd)))
        cmd[0] = '\0';
    printf("Process %d: %s\nPython %s\n", (int)a->pid, cmd, s->rt.version);
    for (size_t t = 0; t < r->nthreads; t++) {
        const struct pythread *th = &r->threads[t];
        char name[64] = "?";
        char st = thread_state(a->pid, th->tid, name, sizeof(name));
        const char *py = threadnames_get(tn, th);
        printf("\nThread %d (%s): %s%s\n", (int)th->tid, py ? py : name, state_name(st),
               th->gil ? ", holds the GIL" : "");
        if (th->err)
            printf("    [unreadable: %s]\n", err_str(th->err));
        const struct native_stack *ms = merged(d, t);
        if (ms) {
            print_merged_text(r, ms);
            if (ms->truncated)
                printf("    [truncated]\n");
            continue;
        }
        for (uint32_t k = 0; k < th->nframes; k++) {
            const struct pyframe *f = &r->frames[th->first + k];
            const struct pycode *c = pyreader_code(r, f);
            printf("    %s (%s:%d)\n", c->qualname, c->filename, f->line);
        }
        if (th->truncated)
            printf("    [truncated]\n");
    }
}

static void json_pyframe(struct jsonw *w, const struct pyreader *r, const struct pyframe *f,
                         bool kind)
{
    const struct pycode *c = pyreader_code(r, f);
    jsonw_obj_begin(w);
    if (kind) {
        jsonw_key(w, "kind");
        jsonw_str(w, "python");
    }
    jsonw_key(w, "name");
    jsonw_str(w, c->qualname);
    jsonw_key(w, "file");
    jsonw_str(w, c->filename);
    jsonw_key(w, "line");
    jsonw_i64(w, f->line);
    jsonw_obj_end(w);
}

static void json_merged(struct jsonw *w, const struct pyreader *r, const struct native_stack *ms)
{
    jsonw_key(w, "native");
    jsonw_bool(w, ms->native);
    if (ms->err) {
        jsonw_key(w, "native_error");
        jsonw_str(w, err_str(ms->err));
    }
    jsonw_key(w, "native_mismatch");
    jsonw_bool(w, ms->mismatch);
    jsonw_key(w, "frames");
    jsonw_arr_begin(w);
    for (size_t k = ms->n; k-- > 0;) {
        const struct native_frame *f = &ms->v[k];
        if (f->kind == NATIVE_FRAME_PY) {
            json_pyframe(w, r, &f->py, true);
            continue;
        }
        jsonw_obj_begin(w);
        jsonw_key(w, "kind");
        jsonw_str(w, "native");
        jsonw_key(w, "name");
        jsonw_str(w, f->sym->name);
        jsonw_key(w, "module");
        jsonw_str(w, f->sym->module);
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
}

static int print_json(const struct dump_args *a, const struct session *s, struct pyreader *r,
                      const struct dump_native *d, const struct threadnames *tn)
{
    struct buf out;
    buf_init(&out, 0);
    struct jsonw w;
    jsonw_init(&w, &out, 0);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "pid");
    jsonw_i64(&w, a->pid);
    jsonw_key(&w, "python_version");
    jsonw_str(&w, s->rt.version);
    jsonw_key(&w, "threads");
    jsonw_arr_begin(&w);
    for (size_t t = 0; t < r->nthreads; t++) {
        const struct pythread *th = &r->threads[t];
        char name[64] = "";
        char st = thread_state(a->pid, th->tid, name, sizeof(name));
        const char *py = threadnames_get(tn, th);
        jsonw_obj_begin(&w);
        jsonw_key(&w, "tid");
        jsonw_i64(&w, th->tid);
        jsonw_key(&w, "name");
        jsonw_str(&w, py ? py : name);
        jsonw_key(&w, "python_name");
        if (py)
            jsonw_str(&w, py);
        else
            jsonw_null(&w);
        jsonw_key(&w, "os_name");
        jsonw_str(&w, name);
        jsonw_key(&w, "gil");
        jsonw_bool(&w, th->gil);
        jsonw_key(&w, "state");
        jsonw_str(&w, state_name(st));
        jsonw_key(&w, "truncated");
        jsonw_bool(&w, th->truncated);
        if (th->err) {
            jsonw_key(&w, "error");
            jsonw_str(&w, err_str(th->err));
        }
        const struct native_stack *ms = merged(d, t);
        if (ms) {
            json_merged(&w, r, ms);
        } else {
            jsonw_key(&w, "frames");
            jsonw_arr_begin(&w);
            for (uint32_t k = 0; k < th->nframes; k++)
                json_pyframe(&w, r, &r->frames[th->first + k], false);
            jsonw_arr_end(&w);
        }
        jsonw_obj_end(&w);
    }
    jsonw_arr_end(&w);
    jsonw_obj_end(&w);
    int rc = jsonw_error(&w);
    if (!rc)
        rc = buf_putc(&out, '\n');
    if (!rc)
        fwrite(out.data, 1, out.len, stdout);
    buf_fini(&out);
    return rc;
}

int cmd_dump(int argc, char **argv)
{
    struct dump_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    struct session s;
    struct errbuf eb = {{0}};
    rc = session_attach(&s, a.pid, &eb);
    if (rc) {
        session_report(rc, &eb);
        return EXIT_FAIL;
    }
    struct pyreader r;
    pyreader_init(&r, &s.rt, DUMP_MAX_DEPTH);
    rc = snapshot(&a, &r, &eb);
    if (rc) {
        session_report(rc, &eb);
        pyreader_fini(&r);
        return EXIT_FAIL;
    }
    struct dump_native d;
    memset(&d, 0, sizeof(d));
    if (a.native)
        native_phase(&a, &r, &d);
    /* After the stacks: the names are read once, for the threads of the last snapshot. */
    struct threadnames tn;
    threadnames_init(&tn, &s.rt);
    (void)threadnames_update(&tn, r.threads, r.nthreads, sampler_now_ns());
    if (a.json)
        rc = print_json(&a, &s, &r, a.native ? &d : NULL, &tn);
    else
        print_text(&a, &s, &r, a.native ? &d : NULL, &tn);
    threadnames_fini(&tn);
    native_fini(&d);
    pyreader_fini(&r);
    return rc ? EXIT_FAIL : 0;
}

const struct cmd_spec *cmd_dump_spec(void)
{
    static const struct cmd_spec spec = {OPTS, SHORTS, DUMP_USAGE};
    return &spec;
}
