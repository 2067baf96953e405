// SPDX-License-Identifier: MIT
// The sampling loop. Ticks are scheduled on absolute deadlines (clock_nanosleep
// TIMER_ABSTIME) so the rate does not drift with the cost of a round; a round that overruns
// skips the ticks it missed instead of bursting to catch up, and counts them.
#include "sampler/sampler.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cpython/asyncio.h"
#include "cpython/pyreader.h"
#include "native/native.h"
#include "sampler/categorize.h"
#include "sampler/stackmemo.h"
#include "sampler/taskstacks.h"
#include "sampler/threadlabels.h"
#include "stages/ring.h"
#include "target/children.h"
#include "target/pause.h"
#include "target/proc.h"
#include "util/hmap.h"
#include "util/xalloc.h"

#define PROGRESS_NS 250000000ULL
#define DRAIN_NS 100000000ULL
#define SLEEP_SLICE_NS 50000000ULL /* wake at least this often to notice a stop request */

static uint64_t cpu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t sampler_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Resident memory is read at most every 2 ms: a pread of statm costs ~3 us here, as much as
 * the stack read of a shallow thread. The change between two reads goes to the stacks that
 * ran in the rounds between them (at most GROW_PENDING of them). */
#define MEM_READ_NS 2000000ULL
#define GROW_PENDING 256
/* Whether the target still runs is asked every 10 ms rather than every tick (a kill or a
 * waitpid per tick costs ~0.6 us); a round in between reads a process that exited as gone. */
#define ALIVE_NS 10000000ULL
/* crux's thread CPU time inside rounds: every round among the first 64, then one in 16,
 * weighted (each clock read is a system call of ~0.7 us, two per timed round). */
#define CPU_TIMED_FIRST 64
#define CPU_TIMED_EVERY 16

/* One sampled process: the target, or a child followed with --subprocesses. */
struct sproc {
    pid_t pid, ppid;
    bool root;              /* the target itself */
    bool python;            /* rt and r are valid */
    bool gone;              /* exited; kept for its record */
    uint64_t find_until_ns; /* not Python yet: look for a runtime again until then */
    struct pyruntime rt;
    struct pyreader r;
    struct threadlabels tl; /* what each thread is called */
    struct proc_statcache sc;
    struct pauser pz;
    struct categorizer cat;
    bool cat_on;
    struct hmap frames;    /* (code entry id, position run) -> profile frame id */
    struct stackmemo memo; /* each reader slot's last stack (thread_stack) */
    struct native nt;      /* --native */
    struct native_stack nst;
    bool native_on, native_warned;
    struct hmap native_frames; /* native_sym address -> profile frame id */
    struct asyncreader ar;     /* --async */
    bool async_on;
    struct hmap task_w;       /* this round: suspended tasks' stack id -> count */
    struct stagering ring;    /* the crux agent's ring, when the target imported it */
    struct hmap alloc_stacks; /* the agent's allocation stack entry -> profile stack id */
    bool ring_on;
    uint64_t ring_retry_ns;
    uint32_t proc_frame; /* "NAME (PID)" frame rooting its stacks with --subprocesses */
    char name[64];       /* its short command line, the name of proc_frame */
    int statm_fd;
    uint64_t rss, point_ns, point_rss;
    uint64_t statm_ns; /* when statm was last read (t_rel); valid with statm_read */
    bool statm_read;
    uint32_t grow[GROW_PENDING]; /* stacks that ran since: the next change in RSS is theirs */
    uint32_t ngrow;
    uint64_t exec_id;
    unsigned failures;                     /* rounds in a row that could not read it */
    uint32_t stacks[PYREADER_MAX_THREADS]; /* this round's stack per reader thread */
};

struct sampler {
    const struct sampler_opts *o;
    struct profile *p;
    struct sampler_stats *st;
    struct sproc **procs;
    size_t nprocs, cap;
    struct childscan scan;
    uint64_t start, period, next_scan, next_prune, next_alive;
    uint64_t cpu_draw; /* xorshift state choosing the rounds whose CPU time is read */
    uint32_t marker_truncated;
    bool no_request; /* this round: record --load had no request in flight */
    long page_size;
};

#define SAMPLER_DETUNE 1.01      /* sampling interval over the asked one: see sampler_run */
#define SCAN_NS 100000000ULL     /* look for new children ten times a second */
#define PRUNE_NS 2000000000ULL   /* forget exited threads' files every two seconds */
#define MEM_POINT_NS 10000000ULL /* at most 100 memory points a second per process */
#define MAX_PROCS 256
#define MAX_CHILD_FAILURES 100
#define FIND_RETRY_NS 2000000000ULL /* a new program gets 2 s to map its runtime */
#define RING_RETRY_NS 1000000000ULL /* look for the agent's ring once a second */
#define CAT_IP_NS 2000000ULL        /* the shortest period of the category samples */

/* What identifies the profile frame of a Python frame: its code entry and position run (the
 * column costs no more than the line did: decoded once per code object, found in the same
 * search). */
static uint64_t frame_key(const struct sproc *sp, const struct pyframe *f)
{
    const struct pycode *c = pyreader_code(&sp->r, f);
    uint64_t key = ((uint64_t)c->id << 32) | f->loc;
    return key ? key : ~(uint64_t)0; /* 0 is the empty key; loc never reaches 2^32 - 1 */
}

/* The profile frame of a Python frame whose frame_key is `key`. */
static uint32_t frame_of_key(struct sampler *s, struct sproc *sp, const struct pyframe *f,
                             uint64_t key)
{
    uint64_t v;
    if (hmap_get(&sp->frames, key, &v))
        return (uint32_t)v;
    const struct pycode *c = pyreader_code(&sp->r, f);
    struct profile *p = s->p;
    uint32_t name = profile_str(p, c->qualname, strlen(c->qualname));
    uint32_t file = profile_str(p, c->filename, strlen(c->filename));
    uint32_t id =
        profile_frame_col(p, name, file, f->line, s->o->columns ? f->col : 0, FRAME_PYTHON);
    hmap_put(&sp->frames, key, id);
    return id;
}

static uint32_t frame_of(struct sampler *s, struct sproc *sp, const struct pyframe *f)
{
    return frame_of_key(s, sp, f, frame_key(sp, f));
}

/* The frames every stack of a thread starts with: [process], [thread], [truncated]. */
static uint32_t stack_root(struct sampler *s, struct sproc *sp, const struct pythread *th,
                           bool truncated)
{
    struct profile *p = s->p;
    uint32_t st = 0;
    if (s->o->subprocesses)
        st = profile_push(p, st, sp->proc_frame);
    if (s->o->threads)
        st = profile_push(
            p, st, profile_frame(p, threadlabels_name(&sp->tl, p, th), 0, th->tid, FRAME_THREAD));
    if (truncated)
        st = profile_push(p, st, s->marker_truncated);
    return st;
}

/* The stack of one thread, root first: the root frames, then the Python frames. The frames
 * it shares with the thread's previous stack, from the outermost on, come from the memo. */
static uint32_t thread_stack(struct sampler *s, struct sproc *sp, const struct pythread *th)
{
    struct profile *p = s->p;
    uint32_t st = stack_root(s, sp, th, th->truncated);
    struct stackmemo_slot *m =
        stackmemo_begin(&sp->memo, (size_t)(th - sp->r.threads), th->tstate, th->ts_id, st);
    uint32_t depth = 0;
    bool same = true;
    for (uint32_t k = th->nframes; k > 0; k--, depth++) {
        const struct pyframe *f = &sp->r.frames[th->first + k - 1];
        uint64_t key = frame_key(sp, f);
        if (same && stackmemo_hit(&sp->memo, m, depth, key, &st))
            continue;
        same = false;
        st = profile_push(p, st, frame_of_key(s, sp, f, key));
        stackmemo_put(m, depth, key, st);
    }
    stackmemo_end(m, depth);
    return st;
}

static uint32_t native_frame_of(struct sampler *s, struct sproc *sp, const struct native_sym *sym)
{
    uint64_t key = (uint64_t)(uintptr_t)sym, v;
    if (hmap_get(&sp->native_frames, key, &v))
        return (uint32_t)v;
    struct profile *p = s->p;
    uint32_t name = profile_str(p, sym->name, strlen(sym->name));
    uint32_t file = profile_str(p, sym->module, strlen(sym->module));
    uint32_t id = profile_frame(p, name, file, 0, FRAME_NATIVE);
    hmap_put(&sp->native_frames, key, id);
    return id;
}

/* The merged stack of --native, root first: the root frames, then Python and native. */
static uint32_t merged_stack(struct sampler *s, struct sproc *sp, const struct pythread *th,
                             const struct native_stack *ns)
{
    struct profile *p = s->p;
    uint32_t st = stack_root(s, sp, th, ns->truncated);
    for (size_t k = 0; k < ns->n; k++) {
        const struct native_frame *f = &ns->v[k];
        st = profile_push(p, st,
                          f->kind == NATIVE_FRAME_PY ? frame_of(s, sp, &f->py)
                                                     : native_frame_of(s, sp, f->sym));
    }
    return st;
}

/* The merged stack of reader slot `t`: the thread's last one when it has not run since
 * (natreuse.h), else a new native sample: the thread stopped alone, its Python stack re-read
 * at that instant (on failure the round's Python frames alone). */
static uint32_t native_thread_stack(struct sampler *s, struct sproc *sp, size_t t)
{
    struct pyreader *r = &sp->r;
    const struct pythread *th = &r->threads[t];
    uint32_t st;
    if (natreuse_check(&sp->nt.reuse, th->tid, r, th, stack_root(s, sp, th, th->truncated), &st))
        return st;
    struct errbuf neb = {{0}};
    int nrc = native_sample_thread(&sp->nt, &sp->pz, r, t, sampler_now_ns(), &sp->nst, &neb);
    if (nrc == ERR_PERM && !sp->native_warned) {
        fprintf(stderr,
                "crux: native frames unavailable: %s: run crux as root or with "
                "CAP_SYS_PTRACE\n",
                neb.msg[0] ? neb.msg : err_str(nrc));
        sp->native_warned = true;
    }
    th = &r->threads[t]; /* the Python stack re-read while stopped */
    st = merged_stack(s, sp, th, &sp->nst);
    if (!nrc && sp->nst.native)
        natreuse_keep(&sp->nt.reuse, th->tid, r, th, stack_root(s, sp, th, sp->nst.truncated), st);
    return st;
}

/* --- record --async ----------------------------------------------------------------------- */

static uint32_t task_frame(void *arg, const struct pyframe *f)
{
    struct sampler *s = ((void **)arg)[0];
    struct sproc *sp = ((void **)arg)[1];
    return frame_of(s, sp, f);
}

/* The first thread of the round running an event loop (BaseEventLoop._run_once on its
 * stack), or -1. */
static int loop_thread(const struct pyreader *r)
{
    for (size_t t = 0; t < r->nthreads; t++) {
        const struct pythread *th = &r->threads[t];
        if (th->err)
            continue;
        for (uint32_t k = 0; k < th->nframes; k++) {
            const struct pycode *c = pyreader_code(r, &r->frames[th->first + k]);
            if (taskstacks_code_is(c, "BaseEventLoop._run_once", "asyncio/base_events.py"))
                return (int)t;
        }
    }
    return -1;
}

/* The stack of a thread running a task: the root frames, `<task NAME>` (under its awaiters),
 * then the frames from the task's coroutine to the leaf. 0 when it runs none. */
static uint32_t running_task_stack(struct sampler *s, struct sproc *sp, const struct pythread *th)
{
    void *arg[2] = {s, sp};
    struct taskstacks ts = {s->p, &sp->r, &sp->ar, task_frame, arg};
    int task = -1;
    int k = taskstacks_running(&ts, th, &task);
    if (k < 0)
        return 0;
    uint32_t st = taskstacks_prefix(&ts, stack_root(s, sp, th, th->truncated), (size_t)task);
    for (int j = k; j >= 0; j--)
        st = profile_push(s->p, st, frame_of(s, sp, &sp->r.frames[th->first + (uint32_t)j]));
    return st;
}

/* One sample per suspended task (weighted by tasks sharing a stack), attributed to the loop
 * thread `lt`: idle, SAMPLE_TASK. */
static void suspended_tasks(struct sampler *s, struct sproc *sp, const struct pythread *lt,
                            uint64_t t_rel)
{
    void *arg[2] = {s, sp};
    struct taskstacks ts = {s->p, &sp->r, &sp->ar, task_frame, arg};
    uint32_t root = stack_root(s, sp, lt, false);
    hmap_clear(&sp->task_w);
    uint32_t order[ASYNCIO_MAX_TASKS];
    size_t n = 0;
    for (size_t i = 0; i < sp->ar.ntasks; i++) {
        if (!taskstacks_emits(&sp->ar, i))
            continue;
        uint32_t st = taskstacks_suspended(&ts, root, i);
        bool fresh = false;
        uint64_t *c = hmap_slot(&sp->task_w, st, 0, &fresh);
        if (fresh)
            order[n++] = st;
        (*c)++;
    }
    for (size_t k = 0; k < n; k++) {
        uint64_t w = 0;
        (void)hmap_get(&sp->task_w, order[k], &w);
        while (w > 0) {
            uint16_t part = w > 65535 ? 65535 : (uint16_t)w;
            w -= part;
            profile_add(
                s->p, &(struct psample){
                          .t_ns = t_rel,
                          .stack = order[k],
                          .tid = (uint32_t)lt->tid,
                          .pid = (uint32_t)sp->pid,
                          .state = TSTATE_IDLE,
                          .flags = (uint8_t)(SAMPLE_TASK | (s->no_request ? SAMPLE_NO_REQUEST : 0)),
                          .cat = sp->cat_on ? CAT_SYSTEM : CAT_NONE,
                          .weight = part});
            s->st->recorded += part;
            s->st->kept += part;
        }
    }
}

/* Every span the agent wrote since the last round goes to the stage statistics. */
static void drain_spans(struct sampler *s, struct sproc *sp)
{
    struct stage_span buf[256];
    uint64_t lost0 = sp->ring.lost;
    for (int batch = 0; batch < 64; batch++) { /* bounded: the agent may write faster */
        size_t n = stagering_drain(&sp->ring, buf, sizeof(buf) / sizeof(buf[0]));
        for (size_t i = 0; i < n; i++)
            stagestats_add(s->o->spans, &buf[i]);
        if (n < sizeof(buf) / sizeof(buf[0]))
            break;
    }
    if (s->o->spans_lost)
        *s->o->spans_lost += sp->ring.lost - lost0;
}

/* The profile stack of the agent's allocation stack entry `id` (innermost first there). */
static uint32_t alloc_stack(struct sampler *s, struct sproc *sp, uint32_t id)
{
    uint64_t v;
    if (!id)
        return 0;
    if (hmap_get(&sp->alloc_stacks, id, &v))
        return (uint32_t)v;
    struct agentshm_stack e;
    if (stagering_alloc_stack(&sp->ring, id, &e))
        return 0; /* not yet valid: looked up again next time */
    struct profile *p = s->p;
    uint32_t st = 0;
    if (s->o->subprocesses)
        st = profile_push(p, st, sp->proc_frame);
    if (e.truncated)
        st = profile_push(p, st, s->marker_truncated);
    for (uint32_t k = e.depth; k > 0; k--) {
        const char *file = "";
        const char *name = stagering_code(&sp->ring, e.code[k - 1], &file);
        if (!name)
            name = "[unknown]";
        uint32_t f = profile_frame(p, profile_str(p, name, strlen(name)),
                                   profile_str(p, file, strlen(file)), e.line[k - 1], FRAME_PYTHON);
        st = profile_push(p, st, f);
    }
    hmap_put(&sp->alloc_stacks, id, st);
    return st;
}

/* Every allocation record the agent wrote since the last round goes to the profile. */
static void drain_allocs(struct sampler *s, struct sproc *sp)
{
    static struct agentshm_arec buf[1024];
    uint64_t lost0 = sp->ring.alost;
    for (int batch = 0; batch < 4096; batch++) { /* bounded: 4M records a round */
        size_t n = stagering_drain_allocs(&sp->ring, buf, sizeof(buf) / sizeof(buf[0]));
        for (size_t i = 0; i < n; i++) {
            const struct agentshm_arec *r = &buf[i];
            uint64_t t = r->t_ns > s->start ? r->t_ns - s->start : 0;
            uint64_t born = r->born_ns > s->start ? r->born_ns - s->start : 0;
            profile_add_alloc(
                s->p, &(struct palloc){
                          .t_ns = t,
                          .bytes = r->weight,
                          .born_ns = r->kind == PALLOC_FREE ? born : t,
                          .stack = alloc_stack(s, sp, r->stack),
                          .count = r->size ? (float)((double)r->weight / (double)r->size) : 1.0f,
                          .kind = r->kind,
                          .tid = r->tid});
        }
        if (n < sizeof(buf) / sizeof(buf[0]))
            break;
    }
    s->p->allocs_dropped += sp->ring.alost - lost0;
    if (sp->ring.allocs && !s->p->allocations) {
        s->p->allocations = true;
        uint64_t sb = 0;
        if (pread(sp->ring.fd, &sb, sizeof(sb), offsetof(struct agentshm_hdr, sample_bytes)) ==
            (ssize_t)sizeof(sb))
            s->p->alloc_sample_bytes = sb;
        if (pread(sp->ring.fd, &sb, sizeof(sb), offsetof(struct agentshm_hdr, copy_sample_bytes)) ==
            (ssize_t)sizeof(sb))
            s->p->copy_sample_bytes = sb;
    }
}

static void native_start(struct sampler *s, struct sproc *sp)
{
    struct errbuf eb = {{0}};
    int rc = native_open(&sp->nt, sp->pid, &eb);
    if (rc) {
        if (sp->root)
            fprintf(stderr, "crux: native frames unavailable for process %d: %s\n", (int)sp->pid,
                    eb.msg[0] ? eb.msg : err_str(rc));
        return;
    }
    native_stack_init(&sp->nst);
    hmap_init(&sp->native_frames);
    sp->native_on = true;
    (void)s;
}

static void native_stop(struct sampler *s, struct sproc *sp)
{
    if (!sp->native_on)
        return;
    struct native_stats ns;
    native_get_stats(&sp->nt, &ns);
    s->st->native_samples += ns.samples;
    s->st->native_failed += ns.stop_failed;
    s->st->native_mismatch += ns.mismatches;
    s->st->native_reused += ns.reused;
    if (sp->root) {
        s->st->native_stop_median_ns = ns.stop_median_ns;
        s->st->native_stop_p99_ns = ns.stop_p99_ns;
    }
    native_stack_fini(&sp->nst);
    native_close(&sp->nt);
    hmap_fini(&sp->native_frames);
    sp->native_on = false;
}

/* The function a thread is in (its innermost frame's code entry), 0 for an empty stack. */
static uint64_t leaf_key(const struct pyreader *r, const struct pythread *th)
{
    if (!th->nframes)
        return 0;
    return (uint64_t)pyreader_code(r, &r->frames[th->first])->id + 1;
}

/* The address range of the GIL structure of the thread's interpreter (for GIL-wait). */
static void gil_range(const struct sproc *sp, uint64_t *lo, uint64_t *hi)
{
    const struct py_offsets *o = &sp->rt.off;
    uint64_t size = o->gil_size > 0 ? (uint64_t)o->gil_size : 256;
    *lo = 0;
    if (o->rt_gil >= 0)
        *lo = sp->rt.runtime + (uint64_t)o->rt_gil;
    else if (sp->r.ninterps)
        *lo = sp->r.interp_fields[0][3];
    *hi = *lo ? *lo + size : 0;
}

static void short_name(pid_t pid, char *out, size_t n)
{
    char cmd[512];
    if (proc_cmdline(pid, cmd, sizeof(cmd)) || !cmd[0]) {
        snprintf(out, n, "process");
        return;
    }
    /* "/usr/bin/python3 /app/worker.py --x" -> "python3 worker.py --x": paths cut to base
     * names, at most four words. Control characters (a `python -c` script's newlines) and
     * runs of blanks separate words, so that the name stays one line. */
    for (char *c = cmd; *c; c++)
        if ((unsigned char)*c < ' ' || *c == 0x7f)
            *c = ' ';
    size_t k = 0;
    const char *w = cmd;
    for (int words = 0; *w && words < 4 && k + 1 < n; words++) {
        while (*w == ' ')
            w++;
        if (!*w)
            break;
        const char *e = strchr(w, ' ');
        size_t len = e ? (size_t)(e - w) : strlen(w);
        const char *b = w;
        for (size_t i = 0; i < len; i++)
            if (w[i] == '/' && i + 1 < len)
                b = w + i + 1;
        size_t bl = len - (size_t)(b - w);
        if (k && k + 1 < n)
            out[k++] = ' ';
        for (size_t i = 0; i < bl && k + 1 < n; i++)
            out[k++] = b[i];
        w = e ? e + 1 : w + len;
    }
    out[k] = 0;
    if (k > 48)
        memcpy(out + 45, "...", 4);
}

static void proc_open_runtime(struct sampler *s, struct sproc *sp)
{
    struct errbuf eb = {{0}};
    sp->exec_id = children_exec_id(sp->pid);
    if (!sp->root) {
        if (pyruntime_find(sp->pid, &sp->rt, &eb))
            return; /* not Python, or not yet: follow_children looks again for a while */
    }
    pyreader_init(&sp->r, &sp->rt, s->o->max_depth);
    threadlabels_init(&sp->tl, &sp->rt, s->p);
    proc_statcache_init(&sp->sc, sp->pid);
    pause_init(&sp->pz, sp->pid, sp->root ? s->o->child : 0);
    hmap_init(&sp->frames);
    stackmemo_init(&sp->memo);
    if (s->o->async_tasks) {
        asyncreader_init(&sp->ar, &sp->rt);
        sp->async_on = asyncio_supported(&sp->ar);
        if (!sp->async_on)
            s->st->async_unsupported = true; /* cmd/record.c says so, once */
        hmap_init(&sp->task_w);
    }
    hmap_init(&sp->alloc_stacks);
    if (s->o->categories) {
        /* At most one kernel sample per round of a busy thread, and at least CAT_IP_NS of
         * its CPU time apart: each interrupts the target, ~20 us on a nested-virtualised VM
         * (bench/perf_tick.c, docs/benchmarks.md), so one per round cost a busy thread 20%
         * at 10 kHz; one per 2 ms costs it 1%. Rounds between samples take the category of
         * the thread's last sample in the same function (categorize.c). */
        uint64_t per = s->period > CAT_IP_NS ? s->period : CAT_IP_NS;
        cat_init(&sp->cat, sp->pid, sp->rt.elf_path, per);
        sp->cat_on = true;
    }
    if (s->o->native)
        native_start(s, sp);
    sp->python = true;
    struct pproc *pr = profile_proc(s->p, (uint32_t)sp->pid);
    profile_set_str(&pr->python_version, sp->rt.version);
}

static void proc_close_runtime(struct sampler *s, struct sproc *sp)
{
    if (!sp->python)
        return;
    native_stop(s, sp);
    if (sp->ring_on && s->o->spans)
        drain_spans(s, sp);
    if (sp->ring_on && sp->ring.allocs)
        drain_allocs(s, sp);
    if (sp->ring_on)
        stagering_close(&sp->ring);
    hmap_fini(&sp->alloc_stacks);
    sp->ring_on = false;
    if (s->o->blocking || s->o->native)
        pause_fini(&sp->pz);
    if (sp->cat_on)
        cat_fini(&sp->cat);
    sp->cat_on = false;
    hmap_fini(&sp->frames);
    stackmemo_fini(&sp->memo);
    if (s->o->async_tasks) {
        s->st->async_rounds += sp->ar.rounds;
        s->st->async_tasks += sp->ar.tasks_read;
        s->st->async_dropped += sp->ar.dropped;
        s->st->async_reads += sp->ar.reads;
        s->st->async_ns += sp->ar.busy_ns;
        s->st->async_cpu_ns += sp->ar.cpu_ns;
        s->st->async_full += sp->ar.full_walks;
        s->st->async_checked += sp->ar.checked;
        s->st->async_rewalked += sp->ar.rewalked;
        s->st->async_reg_ns += sp->ar.reg_cpu_ns;
        s->st->async_check_ns += sp->ar.check_cpu_ns;
        s->st->async_walk_ns += sp->ar.walk_cpu_ns;
        asyncreader_fini(&sp->ar);
        hmap_fini(&sp->task_w);
    }
    sp->async_on = false;
    proc_statcache_fini(&sp->sc);
    s->st->names_refreshes += sp->tl.names.refreshes;
    s->st->names_syscalls += sp->tl.names.dict.reads;
    s->st->names_ns += sp->tl.names.busy_ns;
    threadlabels_fini(&sp->tl);
    pyreader_fini(&sp->r);
    sp->python = false;
}

static struct sproc *proc_add(struct sampler *s, pid_t pid, pid_t ppid, const struct pyruntime *rt)
{
    if (s->nprocs == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->procs = xrealloc(s->procs, s->cap * sizeof(*s->procs));
    }
    struct sproc *sp = xcalloc(1, sizeof(*sp));
    s->procs[s->nprocs++] = sp;
    sp->pid = pid;
    sp->ppid = ppid;
    sp->root = rt != NULL;
    if (rt)
        sp->rt = *rt;
    short_name(pid, sp->name, sizeof(sp->name));
    struct pproc *pr = profile_proc(s->p, (uint32_t)pid);
    pr->ppid = (uint32_t)(ppid > 0 ? ppid : 0);
    profile_set_str(&pr->name, sp->name);
    sp->proc_frame =
        profile_frame(s->p, profile_str(s->p, sp->name, strlen(sp->name)), 0, pid, FRAME_PROCESS);
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
    sp->statm_fd = s->o->memory ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    proc_open_runtime(s, sp);
    s->st->processes++;
    return sp;
}

static void proc_gone(struct sampler *s, struct sproc *sp)
{
    if (sp->gone)
        return;
    sp->gone = true;
    proc_close_runtime(s, sp);
    if (sp->statm_fd >= 0)
        close(sp->statm_fd);
    sp->statm_fd = -1;
}

/* New children, and children that exec'd (their runtime moved or appeared). */
static void follow_children(struct sampler *s, uint64_t now)
{
    pid_t known[MAX_PROCS], found[MAX_PROCS], ppids[MAX_PROCS];
    size_t n = 0;
    for (size_t i = 0; i < s->nprocs; i++) {
        struct sproc *sp = s->procs[i];
        if (sp->gone)
            continue;
        if (!sp->root && !proc_alive(sp->pid)) {
            proc_gone(s, sp);
            continue;
        }
        known[n++] = sp->pid;
        uint64_t id = sp->root ? 0 : children_exec_id(sp->pid);
        if (!sp->root && !sp->python && id == sp->exec_id && now < sp->find_until_ns) {
            /* Found between exec and the loader mapping libpython: look again. */
            proc_open_runtime(s, sp);
        } else if (!sp->root && id && id != sp->exec_id) {
            proc_close_runtime(s, sp); /* a new program: find its runtime again */
            sp->find_until_ns = now + FIND_RETRY_NS;
            short_name(sp->pid, sp->name, sizeof(sp->name));
            profile_set_str(&profile_proc(s->p, (uint32_t)sp->pid)->name, sp->name);
            sp->proc_frame = profile_frame(s->p, profile_str(s->p, sp->name, strlen(sp->name)), 0,
                                           sp->pid, FRAME_PROCESS);
            proc_open_runtime(s, sp);
        }
    }
    if (s->nprocs >= MAX_PROCS)
        return;
    size_t got = children_scan(&s->scan, known, n, found, ppids, MAX_PROCS - s->nprocs);
    for (size_t i = 0; i < got; i++)
        proc_add(s, found[i], ppids[i], NULL)->find_until_ns = now + FIND_RETRY_NS;
}

static uint64_t read_rss(struct sampler *s, struct sproc *sp)
{
    char text[128];
    ssize_t n = pread(sp->statm_fd, text, sizeof(text) - 1, 0);
    if (n <= 0)
        return 0;
    text[n] = 0;
    char *end;
    (void)strtoull(text, &end, 10); /* size */
    return strtoull(end, NULL, 10) * (uint64_t)s->page_size;
}

/* Resident memory, read at most every MEM_READ_NS; the change since the last read goes to the
 * stacks that ran in the rounds since (`states` NULL: not a Python process). */
static void sample_memory(struct sampler *s, struct sproc *sp, uint64_t t_rel, const char *states)
{
    if (sp->statm_fd < 0)
        return;
    if (sp->python && states) {
        /* This round's owners: running threads first; else the GIL holder; else every
         * thread with a stack. */
        const struct pyreader *r = &sp->r;
        bool any = false;
        for (int pass = 0; pass < 3 && !any; pass++)
            for (size_t t = 0; t < r->nthreads; t++) {
                if (!sp->stacks[t])
                    continue;
                if ((pass == 0 && states[t] == 'R') || (pass == 1 && r->threads[t].gil) ||
                    pass == 2) {
                    any = true;
                    if (sp->ngrow < GROW_PENDING)
                        sp->grow[sp->ngrow++] = sp->stacks[t];
                }
            }
    }
    if (sp->statm_read && t_rel - sp->statm_ns < MEM_READ_NS)
        return;
    sp->statm_read = true;
    sp->statm_ns = t_rel;
    s->st->statm_reads++;
    uint64_t rss = read_rss(s, sp);
    uint32_t n = sp->ngrow;
    sp->ngrow = 0;
    if (!rss)
        return;
    int64_t delta = sp->rss ? (int64_t)(rss - sp->rss) : 0;
    sp->rss = rss;
    struct pproc *pr = profile_proc(s->p, (uint32_t)sp->pid);
    if (rss > pr->peak_rss)
        pr->peak_rss = rss;
    if (!sp->point_ns || t_rel - sp->point_ns >= MEM_POINT_NS || rss > sp->point_rss * 2 ||
        rss < sp->point_rss / 2) {
        profile_add_mem(s->p, t_rel, (uint32_t)sp->pid, rss);
        sp->point_ns = t_rel ? t_rel : 1;
        sp->point_rss = rss;
    }
    if (!delta || !n)
        return;
    for (uint32_t i = 0; i < n; i++)
        profile_add_growth(s->p, sp->grow[i], delta / (int64_t)n);
}

/* One round over one process: read every thread (paused if asked) and add what passes the
 * filters. */
static int round_proc(struct sampler *s, struct sproc *sp, uint64_t t_rel, struct errbuf *eb)
{
    const struct sampler_opts *o = s->o;
    struct sampler_stats *st = s->st;
    struct pyreader *r = &sp->r;
    /* With --blocking, thread states come from /proc before the pause: a stopped thread
     * reads as 't'. Threads seized in earlier rounds are known by tid. */
    char states[PYREADER_MAX_THREADS];
    pid_t pre_tid[PYREADER_MAX_THREADS];
    char pre_state[PYREADER_MAX_THREADS];
    size_t npre = 0;
    int rc;
    if (o->blocking) {
        for (size_t i = 0; i < sp->pz.n && npre < PYREADER_MAX_THREADS; i++, npre++) {
            pre_tid[npre] = sp->pz.v[i].tid;
            pre_state[npre] = proc_statcache_state(&sp->sc, sp->pz.v[i].tid);
        }
        rc = pause_stop_all(&sp->pz, eb);
        if (rc)
            return rc;
    }
    uint64_t t0 = sampler_now_ns(); /* vDSO: cheap, unlike the thread CPU clock */
    rc = pyreader_sample(r, t0, eb);
    st->read_ns += sampler_now_ns() - t0;
    if (o->blocking)
        pause_resume_all(&sp->pz);
    if (rc)
        return rc;
    threadlabels_round(&sp->tl, r, t0);
    int lt = -1;
    if (sp->async_on) {
        lt = loop_thread(r);
        if (lt >= 0 && asyncreader_round(&sp->ar, r, r->threads[lt].interp, t0) != 0)
            lt = -1;
    }
    if (sp->cat_on)
        cat_round(&sp->cat, t0);
    for (size_t t = 0; t < r->nthreads; t++) {
        pid_t tid = r->threads[t].tid;
        states[t] = 0;
        for (size_t i = 0; i < npre && !states[t]; i++)
            if (pre_tid[i] == tid)
                states[t] = pre_state[i];
        /* The switch records say without a read of /proc that a thread is running, or
         * that one off CPU in the previous round has not run since (the same state). */
        if (!states[t] && tid && sp->cat_on && !o->blocking &&
            cat_known_state(&sp->cat, tid, &states[t]))
            continue;
        if (!states[t]) {
            states[t] = tid ? proc_statcache_state(&sp->sc, tid) : 'R';
            st->state_reads += tid != 0;
        }
    }
    uint64_t gil_lo = 0, gil_hi = 0;
    if (sp->cat_on)
        gil_range(sp, &gil_lo, &gil_hi);
    if (o->stages && !sp->ring_on && t0 >= sp->ring_retry_ns) {
        struct errbuf reb = {{0}};
        sp->ring_on = stagering_open(&sp->ring, sp->pid, &reb) == 0;
        sp->ring_retry_ns = t0 + (o->allocations ? 0 : RING_RETRY_NS);
    }
    bool staged = sp->ring_on && stagering_refresh_threads(&sp->ring) == 0;
    if (sp->ring_on && o->spans)
        drain_spans(s, sp);
    if (sp->ring_on && sp->ring.allocs)
        drain_allocs(s, sp);
    struct pproc *pr = NULL;
    for (size_t t = 0; t < r->nthreads; t++) {
        const struct pythread *th = &r->threads[t];
        sp->stacks[t] = 0;
        if (th->err) {
            st->errors++;
            continue;
        }
        if (!th->nframes)
            continue;
        st->thread_samples++;
        if (th->tid)
            (void)threadlabels_name(&sp->tl, s->p, th); /* the name the thread table shows */
        /* A tid read from the target is used for perf and ptrace only once /proc lists it
         * among the target's own threads ('?': not there): a stale thread state's tid may
         * have been reused by another process by now. */
        bool ours = th->tid && states[t] != '?';
        uint8_t cat = CAT_NONE;
        struct cat_evidence ev = {EV_NONE, "", false};
        if (sp->cat_on && ours)
            cat = cat_of(&sp->cat, th->tid, &states[t], th->gil, gil_lo, gil_hi, leaf_key(r, th),
                         &ev);
        /* A thread waiting for the GIL wants to run: it is not idle. Idle samples are kept
         * whatever --idle says: the verdict is about wall time (the profile leaves them out
         * of the views unless --idle). */
        bool idle = (states[t] != 'R' || ev.waited) && cat != CAT_GIL;
        bool keep = !(o->gil_only && !th->gil);
        if (!keep && !(sp->statm_fd >= 0 && (states[t] == 'R' || th->gil)))
            continue;
        if (keep && sp->native_on && ours && (!idle || o->idle)) {
            sp->stacks[t] = native_thread_stack(s, sp, t);
            th = &r->threads[t];
        } else {
            sp->stacks[t] = lt >= 0 ? running_task_stack(s, sp, th) : 0;
            if (!sp->stacks[t])
                sp->stacks[t] = thread_stack(s, sp, th);
        }
        if (!keep)
            continue; /* its stack may still own memory growth */
        uint32_t stage = 0;
        if (staged) {
            const char *name = stagering_current(&sp->ring, th->tid);
            if (name) {
                stage = profile_str(s->p, name, strlen(name));
                st->staged++;
            }
        }
        enum thread_state ts = states[t] == 'R' && !ev.waited ? TSTATE_RUNNING : TSTATE_IDLE;
        uint8_t flags =
            (uint8_t)((th->gil ? SAMPLE_GIL : 0) | (th->truncated ? SAMPLE_TRUNCATED : 0) |
                      (s->no_request ? SAMPLE_NO_REQUEST : 0));
        uint16_t evid = ev.kind != EV_NONE ? profile_evidence(s->p, ev.kind, ev.label) : 0;
        profile_add(s->p, &(struct psample){.t_ns = t_rel,
                                            .stack = sp->stacks[t],
                                            .tid = (uint32_t)th->tid,
                                            .pid = (uint32_t)sp->pid,
                                            .state = (uint8_t)ts,
                                            .flags = flags,
                                            .cat = cat,
                                            .stage = stage,
                                            .weight = 1,
                                            .ev = evid});
        st->recorded++;
        if (idle && !o->idle)
            continue; /* kept for the verdict, not shown */
        st->kept++;
        if (!pr)
            pr = profile_proc(s->p, (uint32_t)sp->pid);
        if (!pr->samples)
            pr->first_ns = t_rel;
        pr->samples++;
        pr->last_ns = t_rel;
    }
    if (lt >= 0)
        suspended_tasks(s, sp, &r->threads[lt], t_rel);
    if (sp->native_on)
        pause_release_pending(&sp->pz); /* a thread whose late stop arrived since */
    sample_memory(s, sp, t_rel, states);
    return 0;
}

/* One round over every process. Only the target's failure ends the recording. */
static int round_all(struct sampler *s, uint64_t t_rel, struct errbuf *eb)
{
    for (size_t i = 0; i < s->nprocs; i++) {
        struct sproc *sp = s->procs[i];
        if (sp->gone || !sp->python) {
            if (!sp->gone && !sp->python)
                sample_memory(s, sp, t_rel, NULL);
            continue;
        }
        struct errbuf peb = {{0}};
        int rc = round_proc(s, sp, t_rel, sp->root ? eb : &peb);
        if (!rc) {
            sp->failures = 0;
            continue;
        }
        if (sp->root)
            return rc;
        /* A child that exits is normal; one read while it forks or execs may fail a few
         * rounds; one that keeps failing is left out. */
        if (!proc_alive(sp->pid) || ++sp->failures >= MAX_CHILD_FAILURES) {
            if (getenv("CRUX_DEBUG"))
                fprintf(stderr, "crux-debug: process %d left: %s\n", (int)sp->pid,
                        peb.msg[0] ? peb.msg : err_str(rc));
            proc_gone(s, sp);
        }
    }
    return 0;
}

/* The profile was emptied (profile_clear): intern again what every process's stacks start
 * with and forget the frame ids cached since. */
static void forget_ids(struct sampler *s)
{
    struct profile *p = s->p;
    s->marker_truncated = profile_frame(p, profile_str(p, "[truncated]", 11), 0, 0, FRAME_MARKER);
    for (size_t i = 0; i < s->nprocs; i++) {
        struct sproc *sp = s->procs[i];
        if (sp->gone)
            continue;
        struct pproc *pr = profile_proc(p, (uint32_t)sp->pid);
        pr->ppid = (uint32_t)(sp->ppid > 0 ? sp->ppid : 0);
        profile_set_str(&pr->name, sp->name);
        sp->proc_frame =
            profile_frame(p, profile_str(p, sp->name, strlen(sp->name)), 0, sp->pid, FRAME_PROCESS);
        sp->ngrow = 0; /* their ids are gone */
        if (!sp->python)
            continue;
        profile_set_str(&pr->python_version, sp->rt.version);
        hmap_clear(&sp->frames);
        stackmemo_forget(&sp->memo);
        hmap_clear(&sp->alloc_stacks);
        if (sp->native_on) {
            hmap_clear(&sp->native_frames);
            natreuse_forget(&sp->nt.reuse); /* its stack ids are gone */
        }
        threadlabels_forget(&sp->tl, p);
    }
}

/* Frees the records of children that exited, so that a server whose workers come and go keeps
 * being followed (MAX_PROCS bounds the live ones). Their counters were taken when they left. */
static void forget_gone(struct sampler *s)
{
    size_t k = 0;
    for (size_t i = 0; i < s->nprocs; i++) {
        struct sproc *sp = s->procs[i];
        if (sp->gone && !sp->root)
            free(sp);
        else
            s->procs[k++] = sp;
    }
    s->nprocs = k;
}

static bool child_gone(const struct sampler_opts *o, struct pauser *pz)
{
    if (!o->child)
        return kill(pz->pid, 0) != 0 && errno == ESRCH; /* a zombie fails the next read */
    if (pz->child_exited) {
        *o->child_status = pz->child_status;
        *o->child_exited = true;
        return true;
    }
    int status;
    pid_t got = waitpid(o->child, &status, WNOHANG);
    if (got == o->child && (WIFEXITED(status) || WIFSIGNALED(status))) {
        *o->child_status = status;
        *o->child_exited = true;
        return true;
    }
    return false;
}

static void sleep_until(uint64_t deadline, volatile sig_atomic_t *stop)
{
    for (;;) {
        uint64_t now = sampler_now_ns();
        if (now >= deadline || (stop && *stop))
            return;
        uint64_t until = deadline - now > SLEEP_SLICE_NS ? now + SLEEP_SLICE_NS : deadline;
        struct timespec ts = {(time_t)(until / 1000000000ULL), (long)(until % 1000000000ULL)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
}

int sampler_run(const struct pyruntime *rt, const struct sampler_opts *o, struct profile *p,
                struct sampler_stats *st, struct errbuf *eb)
{
    memset(st, 0, sizeof(*st));
    struct sampler s = {.o = o, .p = p, .st = st, .cpu_draw = 0x9e3779b97f4a7c15ULL};
    s.page_size = sysconf(_SC_PAGESIZE);
    s.marker_truncated = profile_frame(p, profile_str(p, "[truncated]", 11), 0, 0, FRAME_MARKER);
    /* The interval is 1% longer than the rate asks: ticks exactly on a round period stay in
     * lockstep with work that repeats at a multiple of it (timers, a fixed-rate load:
     * 25 req/s against 250 Hz never sampled the first 2 ms of a request) and see the same
     * phase of it forever. 1% moves the ticks across such a cycle within 100 ticks, the
     * reason DTrace profiles at 997 Hz. */
    s.period = (uint64_t)(1e9 * SAMPLER_DETUNE / (o->rate_hz > 0 ? o->rate_hz : 100));
    struct sproc *root = proc_add(&s, rt->pid, children_ppid(rt->pid), rt);
    p->meta.categories = o->categories;
    p->meta.native = o->native;
    p->hide_idle = !o->idle;
    if (o->categories)
        profile_set_str(&p->meta.categories_note, cat_note(&root->cat));
    if (o->subprocesses) {
        pid_t none = 0;
        s.scan.last_pid = -2;
        (void)children_scan(&s.scan, &none, 0, NULL, NULL, 0); /* prime the newest pid */
        s.scan.last_pid = -2;
    }

    /* Each sampled thread may hold three files (its stat, syscall and perf event): lift the
     * soft limit on open files to the hard one so that a few hundred threads fit. */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &nofile);
    }
    /* The default 50 us timer slack makes every wake-up late by about 75 us here, which
     * caps the achievable rate near 6 kHz; 1 us slack keeps the schedule. */
    (void)prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
    uint64_t period = s.period;
    uint64_t thread_cpu0 = cpu_now_ns();
    uint64_t start = sampler_now_ns();
    s.start = start;
    st->start_ns = start;
    uint64_t end = o->duration_s > 0 ? start + (uint64_t)(o->duration_s * 1e9) : UINT64_MAX;
    uint64_t next = start, last_progress = start, last_drain = start;
    uint64_t drain_ns = o->drain_ns ? o->drain_ns : DRAIN_NS;
    s.next_prune = start + PRUNE_NS;
    int rc = 0;
    while (!(o->stop && *o->stop)) {
        uint64_t now = sampler_now_ns();
        if (now >= end)
            break;
        if (o->blocking)
            pause_poll(&root->pz);
        if (now >= s.next_alive) {
            st->alive_checks++;
            if (child_gone(o, &root->pz))
                break;
            s.next_alive = now + ALIVE_NS;
        }
        if (o->subprocesses && now >= s.next_scan) {
            follow_children(&s, now);
            s.next_scan = now + SCAN_NS;
        }
        if (now >= s.next_prune) {
            for (size_t i = 0; i < s.nprocs; i++) {
                if (s.procs[i]->cat_on)
                    cat_prune(&s.procs[i]->cat);
                if (s.procs[i]->native_on)
                    natreuse_prune(&s.procs[i]->nt.reuse);
            }
            forget_gone(&s);
            s.next_prune = now + PRUNE_NS;
        }
        st->ticks++;
        s.no_request =
            o->load_inflight && atomic_load_explicit(o->load_inflight, memory_order_relaxed) == 0;
        /* Which rounds are timed is drawn (xorshift), not every 16th: work done every
         * other round (the memory read) would otherwise always or never be in them. */
        s.cpu_draw ^= s.cpu_draw << 13;
        s.cpu_draw ^= s.cpu_draw >> 7;
        s.cpu_draw ^= s.cpu_draw << 17;
        uint64_t weight = st->ticks <= CPU_TIMED_FIRST        ? 1
                          : s.cpu_draw % CPU_TIMED_EVERY == 0 ? CPU_TIMED_EVERY
                                                              : 0;
        uint64_t cpu0 = weight ? cpu_now_ns() : 0;
        rc = round_all(&s, now - start, eb);
        uint64_t after = sampler_now_ns();
        st->busy_ns += after - now;
        if (weight)
            st->busy_cpu_ns += (cpu_now_ns() - cpu0) * weight;
        if (rc) {
            /* The process went away mid-round: what was collected stands. */
            if (rc == ERR_PROC_GONE || !proc_alive(rt->pid))
                rc = 0;
            break;
        }
        if (o->progress && after - last_progress >= PROGRESS_NS) {
            st->elapsed_ns = after - start;
            o->progress(st, o->progress_arg);
            last_progress = after;
        }
        if (o->drain && after - last_drain >= drain_ns) {
            st->elapsed_ns = after - start;
            if (o->drain(p, st, after - start, o->drain_arg))
                forget_ids(&s);
            last_drain = after;
        }
        next += period;
        if (next <= after) {
            uint64_t missed = (after - next) / period + 1;
            st->late_ticks += missed;
            next += missed * period;
        }
        sleep_until(next < end ? next : end, o->stop);
    }
    st->elapsed_ns = sampler_now_ns() - start;
    st->thread_cpu_ns = cpu_now_ns() - thread_cpu0;
    if (o->child && !*o->child_exited)
        (void)child_gone(o, &root->pz);
    for (size_t i = 0; i < s.nprocs; i++) {
        struct sproc *sp = s.procs[i];
        if (sp->python) {
            st->errors += sp->r.dropped;
            if (getenv("CRUX_DEBUG"))
                fprintf(stderr,
                        "crux-debug: process %d: rounds %llu retries %llu trimmed %llu missed %llu "
                        "torn %llu needed %llu moved %llu slow %llu unbracketed %llu\n",
                        (int)sp->pid, (unsigned long long)sp->r.rounds,
                        (unsigned long long)sp->r.retries, (unsigned long long)sp->r.trimmed,
                        (unsigned long long)sp->r.missed, (unsigned long long)sp->r.torn,
                        (unsigned long long)sp->r.needed, (unsigned long long)sp->r.moved,
                        (unsigned long long)sp->r.slow, (unsigned long long)sp->r.unbracketed);
            if (getenv("CRUX_DEBUG"))
                for (int k = 0; k < 16; k++)
                    if (sp->r.err_counts[k])
                        fprintf(stderr, "crux-debug: process %d: %llu stacks dropped: %s\n",
                                (int)sp->pid, (unsigned long long)sp->r.err_counts[k], err_str(-k));
        }
        if (sp->cat_on) {
            st->perf_samples += sp->cat.perf.samples;
            st->perf_lost += sp->cat.perf.lost;
            st->perf_switches += sp->cat.perf.switch_records;
            st->states_reused += sp->cat.states_reused;
            st->syscall_reads += sp->cat.syscall_reads;
        }
        proc_gone(&s, sp);
        free(sp);
    }
    free(s.procs);
    if (o->child && *o->child_exited) {
        struct pproc *pr = profile_proc(p, (uint32_t)rt->pid);
        pr->exit_status = *o->child_status;
    }
    p->meta.ticks = st->ticks;
    p->meta.errors = st->errors;
    p->meta.duration_ns = st->elapsed_ns;
    if (o->drain)
        (void)o->drain(p, st, st->elapsed_ns, o->drain_arg);
    return rc;
}
