// SPDX-License-Identifier: MIT
// The bottleneck verdict: weights every sample as a share of wall time (one tick of one
// process is one unit, split among the threads doing something at that tick), sums them per
// stage and bottleneck type, and names the dominant type only when the data supports it.
#include "analysis/verdict.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/memverdict.h"
#include "util/buf.h"
#include "util/hmap.h"
#include "util/xalloc.h"

#define TOP_HOT 200
#define TOP_BEHIND 10

void verdict_wilson(double k, double n, double *lo, double *hi)
{
    if (n <= 0) {
        *lo = 0;
        *hi = 1;
        return;
    }
    const double z = 1.959963984540054;
    double p = k / n;
    if (p < 0)
        p = 0;
    if (p > 1)
        p = 1;
    double z2 = z * z;
    double den = 1 + z2 / n;
    double mid = (p + z2 / (2 * n)) / den;
    double half = z * sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / den;
    *lo = k <= 0 || mid - half < 0 ? 0 : mid - half;
    *hi = k >= n || mid + half > 1 ? 1 : mid + half;
}

static void share_set(struct share *s, double w, double wall)
{
    s->w = w;
    s->p = wall > 0 ? w / wall : 0;
    verdict_wilson(w, wall, &s->lo, &s->hi);
}

/* The category a sample counts under for its type and wall weight: kernel time of a running
 * thread counts as on CPU. */
static unsigned sample_tcls(const struct psample *s);

/* The category a sample counts under: its own, or one derived from its thread state. */
static unsigned sample_cls(const struct psample *s)
{
    if (s->cat != CAT_NONE && s->cat < PCAT_N)
        return s->cat;
    if (s->state == TSTATE_RUNNING)
        return CAT_CPU;
    if (s->state == TSTATE_IDLE)
        return CAT_SYSTEM;
    return CAT_NONE;
}

static unsigned sample_tcls(const struct psample *s)
{
    unsigned cls = sample_cls(s);
    return cls == CAT_SYSTEM && s->state == TSTATE_RUNNING ? CAT_CPU : cls;
}

static uint8_t unit_type(const struct analysis *a, uint32_t stage, unsigned cls)
{
    if (cls == CAT_GIL)
        return BT_GIL;
    if (cls == CAT_SYSTEM)
        return a->stage_wait_type[stage];
    return a->stage_run_type[stage];
}

/* The evidence kind of sample `s` (enum ev_kind). */
static uint8_t sample_ev(const struct profile *p, const struct psample *s)
{
    return s->ev && s->ev <= p->nevs ? (uint8_t)p->evs[s->ev - 1].kind : EV_NONE;
}

/* The bottleneck type of one sample, from the strongest evidence there is: first the
 * kernel's (the library the CPU was in; the system call a blocked thread sleeps in and what
 * its descriptor is), then the modules of the frames (the stage's types), names last. Time on
 * CPU is never a wait, whatever frame encloses it. `weak`: the stage rests on a name alone. */
static uint8_t sample_type(const struct analysis *a, const struct profile *p,
                           const struct psample *s, uint32_t stage, bool weak)
{
    unsigned cls = sample_tcls(s);
    if (cls == CAT_GIL)
        return BT_GIL;
    uint8_t run = a->stage_run_type[stage], wait = a->stage_wait_type[stage];
    switch (sample_ev(p, s)) {
    case EV_CPU_MODEL:
        return BT_MODEL;
    case EV_CPU_SERIAL:
        return BT_SERIAL;
    case EV_CPU_TOKEN:
    case EV_CPU_NATIVE:
        return BT_HOST;
    case EV_CPU_PYTHON:
        /* The interpreter runs Python code: serialization or model code by their modules
         * (pickle.py, json's encoder, a model library's Python), never on a name alone. */
        if (run == BT_SERIAL || run == BT_GPU || (run == BT_MODEL && !weak))
            return run;
        return BT_HOST;
    case EV_CPU_KERNEL:
        return run == BT_IO || run == BT_SERIAL || run == BT_GPU || (run == BT_MODEL && !weak)
                   ? run
                   : BT_HOST;
    case EV_WAIT_NET:
    case EV_WAIT_FILE:
        return BT_IO;
    case EV_WAIT_IPC:
    case EV_WAIT_LOCK:
        return wait == BT_GPU ? BT_GPU : BT_QUEUE;
    case EV_WAIT_GIL:
        return BT_GIL;
    case EV_WAIT_SLEEP:
    case EV_WAIT_IDLE:
        return BT_SLEEP;
    default:
        break;
    }
    if (cls == CAT_SYSTEM)
        return wait;
    /* On CPU with no kernel evidence (categories off): the stage's type, but never a wait. */
    if (run == BT_IO || run == BT_QUEUE || run == BT_NONE || run == BT_SLEEP)
        return BT_HOST;
    return run;
}

/* The built-in stage the kernel's evidence of kind `kind` points at, or STAGE_OTHER. */
static uint32_t evidence_stage(const struct analysis *a, uint8_t kind)
{
    static const char *const names[EV_N] = {
        [EV_CPU_MODEL] = "model",     [EV_CPU_SERIAL] = "serialize", [EV_CPU_TOKEN] = "tokenize",
        [EV_WAIT_NET] = "network",    [EV_WAIT_IPC] = "ipc",         [EV_WAIT_FILE] = "file-io",
        [EV_WAIT_LOCK] = "queue-wait"};
    const char *name = kind < EV_N ? names[kind] : NULL;
    for (uint32_t i = 0; name && i < a->nstages; i++)
        if (strcmp(a->stage_names[i], name) == 0)
            return i;
    return STAGE_OTHER;
}

/* Priority of a waiting sample's type at a tick where no thread was doing anything: the
 * tick goes to the deepest thing waited on (I/O over another process over a lock), and to a
 * deliberate sleep only when nothing else waits. Higher wins. */
static int wait_rank(uint8_t type)
{
    switch (type) {
    case BT_IO:
        return 5;
    case BT_GPU:
    case BT_SERIAL:
        return 4;
    case BT_QUEUE:
        return 3;
    case BT_NONE:
    case BT_HOST:
    case BT_MODEL:
        return 2;
    case BT_SLEEP:
        return 1;
    default:
        return 2;
    }
}

/* wait_rank of a waiting sample, with one refinement: a lock no rule names (a bare
 * `lock.acquire()` or `with lock:` in the program's own code) is contention on something
 * another thread holds while it works or waits, and ranks with I/O; the waits the rules name
 * (queue.get, Condition.wait, Event.wait, joins) are threads parked until work arrives. */
static int sample_wait_rank(const struct profile *p, const struct psample *s, uint8_t type,
                            uint32_t stage)
{
    if (type == BT_QUEUE && stage == STAGE_OTHER && sample_ev(p, s) == EV_WAIT_LOCK)
        return 5;
    return wait_rank(type);
}

static bool code_frame(const struct pframe *f)
{
    return f->kind == FRAME_PYTHON || f->kind == FRAME_NATIVE;
}

/* Working state of one analysis run. */
struct acc {
    struct analysis *a;
    const struct profile *p;
    uint64_t *sn;        /* stack * PCAT_N + cls -> thread-samples */
    double *stw;         /* stack * BT_N + type -> wall weight */
    double *sw;          /* stack -> wall weight */
    uint64_t *sleep_n;   /* stack -> thread-samples asleep or waiting for outside work */
    struct hmap tags;    /* stage tag strtab id -> stage id + 1 */
    struct hmap thr;     /* pid << 32 | tid -> thread index + 1 */
    uint64_t *thr_stage; /* thread * nstages -> samples */
    uint32_t capthreads;
};

static uint32_t tag_stage(struct acc *c, uint32_t tag)
{
    uint64_t v;
    if (hmap_get(&c->tags, tag, &v))
        return (uint32_t)v - 1;
    struct analysis *a = c->a;
    const char *name = profile_string(c->p, tag);
    uint32_t id = a->nstages;
    for (uint32_t i = 0; i < a->nstages; i++)
        if (strcmp(a->stage_names[i], name) == 0)
            id = i;
    if (id == a->nstages) {
        a->nstages++;
        a->stage_names = xrealloc(a->stage_names, a->nstages * sizeof(*a->stage_names));
        a->stage_run_type = xrealloc(a->stage_run_type, a->nstages);
        a->stage_wait_type = xrealloc(a->stage_wait_type, a->nstages);
        a->stage_names[id] = name;
        a->stage_run_type[id] = BT_HOST;
        a->stage_wait_type[id] = BT_QUEUE;
    }
    hmap_put(&c->tags, tag, (uint64_t)id + 1);
    return id;
}

static void thread_add(struct acc *c, const struct psample *s, unsigned cls, uint64_t n)
{
    struct analysis *a = c->a;
    uint64_t key = ((uint64_t)s->pid << 32 | s->tid);
    key = key ? key : 1;
    bool fresh;
    uint64_t *slot = hmap_slot(&c->thr, key, a->nthreads, &fresh);
    uint32_t t = (uint32_t)*slot;
    if (fresh) {
        if (a->nthreads == c->capthreads) {
            c->capthreads = c->capthreads ? c->capthreads * 2 : 16;
            a->threads = xrealloc(a->threads, c->capthreads * sizeof(*a->threads));
        }
        a->threads[t] = (struct thread_stat){.pid = s->pid, .tid = s->tid, .first_ns = s->t_ns};
        a->nthreads++;
    }
    struct thread_stat *th = &a->threads[t];
    th->samples += n;
    if (cls == CAT_SYSTEM)
        th->idle += n;
    else if (cls != CAT_NONE)
        th->running += n;
    th->cat[cls] += n;
    th->last_ns = s->t_ns;
}

/* `cls` is the sample's category (for the category split), `tcls` the one its type follows:
 * kernel time of a running thread (SYSTEM while RUNNING) is work, not waiting. */
static void add_unit(struct acc *c, uint32_t stack, uint32_t stage, unsigned cls, uint8_t type,
                     uint64_t n, double w)
{
    struct analysis *a = c->a;
    c->sn[(size_t)stack * PCAT_N + cls] += n;
    c->sw[stack] += w;
    if (type == BT_SLEEP)
        c->sleep_n[stack] += n;
    c->stw[(size_t)stack * BT_N + type] += w;
    a->stage[stage].w += w;
    a->stage_type_w[(size_t)stage * BT_N + type] += w;
    a->type[type].w += w;
    a->cat[cls] += n;
    a->samples += n;
    a->wall += w;
}

/* Kept samples: each tick is one unit of wall time, split evenly among the samples (of every
 * process) doing something: on CPU, or waiting for the GIL. When every sampled thread waits,
 * the unit goes to the deepest thing waited on (wait_rank: I/O, then another process, then a
 * lock), split among the samples waiting on it; a deliberate sleep gets it only when nothing
 * else is waited on, so a heartbeat thread's sleep never hides what the program waits for. */
static void from_samples(struct acc *c)
{
    struct analysis *a = c->a;
    const struct profile *p = c->p;
    size_t ns = p->nsamples;
    size_t cap = 64;
    uint8_t *types = xmalloc(cap);
    uint32_t *stages = xmalloc(cap * sizeof(*stages));
    uint8_t *ranks = xmalloc(cap);
    size_t i = 0;
    while (i < ns) {
        const struct psample *g = &p->samples[i];
        size_t j = i;
        while (j < ns && p->samples[j].t_ns == g->t_ns)
            j++;
        if (j - i > cap) {
            cap = j - i;
            types = xrealloc(types, cap);
            ranks = xrealloc(ranks, cap);
            stages = xrealloc(stages, cap * sizeof(*stages));
        }
        double active = 0, waiting[8] = {0};
        int top_rank = 0;
        bool served = false;
        for (size_t k = i; k < j; k++) {
            const struct psample *s = &p->samples[k];
            if (s->flags & SAMPLE_TASK)
                continue; /* a suspended asyncio task (record --async), not a thread's time */
            double wt = s->weight ? s->weight : 1;
            served = served || !(s->flags & SAMPLE_NO_REQUEST);
            uint32_t stage = s->stage ? tag_stage(c, s->stage) : a->stack_stage[s->stack];
            bool weak = !s->stage && a->stack_weak[s->stack];
            bool cpu = sample_tcls(s) != CAT_SYSTEM;
            if (cpu && !s->stage &&
                (a->stage_run_type[stage] == BT_IO || a->stage_run_type[stage] == BT_QUEUE ||
                 a->stage_run_type[stage] == BT_NONE)) {
                /* On CPU inside a waiting primitive (a selector's poll loop, a queue's
                 * bookkeeping): the time is the enclosing work's (Pool's result wakeups are
                 * its IPC, an event loop's callbacks its host work). */
                stage = a->stack_cpu_stage[s->stack];
                weak = a->stack_cpu_weak[s->stack] != 0;
            }
            uint8_t type = sample_type(a, p, s, stage, weak);
            uint32_t rule_stage = stage;
            /* A stage named by a function's name alone, or none, gives way to the kernel's
             * evidence when they disagree: `embed_chunk` running BLAS is model, not
             * text-split; a bare recv() is network. */
            if ((weak || (!s->stage && stage == STAGE_OTHER)) && sample_ev(p, s) != EV_NONE &&
                type != (cpu ? a->stage_run_type[stage] : a->stage_wait_type[stage]))
                stage = evidence_stage(a, sample_ev(p, s));
            stages[k - i] = stage;
            types[k - i] = type;
            if (sample_tcls(s) != CAT_SYSTEM) {
                active += wt;
            } else {
                int rk = sample_wait_rank(p, s, types[k - i], rule_stage);
                ranks[k - i] = (uint8_t)rk;
                waiting[rk] += wt;
                top_rank = rk > top_rank ? rk : top_rank;
            }
        }
        for (size_t k = i; k < j; k++) {
            const struct psample *s = &p->samples[k];
            if (s->flags & SAMPLE_TASK)
                continue;
            unsigned cls = sample_cls(s);
            uint64_t n = s->weight ? s->weight : 1;
            if (s->state != TSTATE_UNKNOWN || s->cat != CAT_NONE)
                a->has_state = true;
            thread_add(c, s, cls, n);
            if (!served)
                continue; /* record --load, no request in flight: what the server does then
                           * (waiting for requests, starting) is not what a request waits for */
            double w;
            if (sample_tcls(s) != CAT_SYSTEM)
                w = (double)n / active;
            else if (active > 0 || ranks[k - i] != top_rank)
                w = 0;
            else
                w = (double)n / waiting[top_rank];
            uint8_t type = types[k - i];
            add_unit(c, s->stack, stages[k - i], cls, type, n, w);
            if (w > 0 && a->ev_w)
                a->ev_w[(size_t)type * (a->nevs + 1) + (s->ev <= a->nevs ? s->ev : 0)] += w;
        }
        if (!served)
            a->no_request += 1;
        i = j;
    }
    free(types);
    free(ranks);
    free(stages);
}

/* True when `s` is a stack of a child process (its root is a process frame of another pid
 * than the recorded one) or its outermost code frame starts a non-main Python thread
 * (threading.Thread._bootstrap). */
static bool background_thread(const struct profile *p, uint32_t s)
{
    uint32_t root = 0, top = s;
    for (uint32_t u = s; u; u = p->nodes[u].parent) {
        if (code_frame(profile_frame_at(p, p->nodes[u].frame)))
            root = u;
        top = u;
    }
    const struct pframe *tf = profile_frame_at(p, p->nodes[top].frame);
    if (tf->kind == FRAME_PROCESS && p->meta.pid && (uint32_t)tf->line != p->meta.pid)
        return true;
    if (!root)
        return false;
    const struct pframe *f = profile_frame_at(p, p->nodes[root].frame);
    const char *file = profile_string(p, f->file);
    size_t n = strlen(file);
    return strstr(profile_string(p, f->name), "_bootstrap") && n >= 12 &&
           strcmp(file + n - 12, "threading.py") == 0;
}

/* Counts only: one sample is one unit of wall time (thread time; see docs/report.md), except
 * that a non-main thread or a child process parked in a wait (queue, lock, unnamed) is not:
 * it is not what the program waits for. With kept samples, the per-tick split does this
 * properly. */
static void from_counts(struct acc *c)
{
    struct analysis *a = c->a;
    const struct profile *p = c->p;
    for (uint32_t s = 1; s < p->nnodes; s++) {
        if (!p->counts[s])
            continue;
        for (unsigned k = 0; k < PCAT_N; k++) {
            uint64_t n = p->cat_counts[(size_t)s * PCAT_N + k];
            if (!n)
                continue;
            uint32_t st = a->stack_stage[s];
            uint8_t type = unit_type(a, st, k);
            bool parked = (type == BT_QUEUE || type == BT_NONE) && background_thread(p, s);
            add_unit(c, s, st, k, type, n, parked ? 0.0 : (double)n);
        }
    }
    /* Threads from thread root frames (--threads), when present. */
    struct hmap idx;
    hmap_init(&idx);
    uint32_t cap = 0;
    for (uint32_t s = 1; s < p->nnodes; s++) {
        if (!p->counts[s])
            continue;
        uint32_t r = s;
        while (p->nodes[r].parent)
            r = p->nodes[r].parent;
        const struct pframe *f = profile_frame_at(p, p->nodes[r].frame);
        if (f->kind != FRAME_THREAD)
            continue;
        uint64_t key = (uint64_t)(uint32_t)f->line + 1;
        bool fresh;
        uint64_t *slot = hmap_slot(&idx, key, a->nthreads, &fresh);
        uint32_t t = (uint32_t)*slot;
        if (fresh) {
            if (a->nthreads == cap) {
                cap = cap ? cap * 2 : 16;
                a->threads = xrealloc(a->threads, cap * sizeof(*a->threads));
            }
            a->threads[t] = (struct thread_stat){.pid = p->meta.pid, .tid = (uint32_t)f->line};
            a->nthreads++;
        }
        struct thread_stat *th = &a->threads[t];
        for (unsigned k = 0; k < PCAT_N; k++) {
            uint64_t n = p->cat_counts[(size_t)s * PCAT_N + k];
            th->samples += n;
            th->cat[k] += n;
            if (k == CAT_SYSTEM)
                th->idle += n;
            else if (k != CAT_NONE)
                th->running += n;
        }
    }
    hmap_fini(&idx);
}

/* Per-thread top stage, from the stacks of kept samples (or thread roots). */
static void thread_stages(struct acc *c)
{
    struct analysis *a = c->a;
    const struct profile *p = c->p;
    if (!a->nthreads)
        return;
    uint64_t *w = xcalloc((size_t)a->nthreads * a->nstages, sizeof(*w));
    if (a->per_tick) {
        for (size_t i = 0; i < p->nsamples; i++) {
            const struct psample *s = &p->samples[i];
            uint64_t key = ((uint64_t)s->pid << 32 | s->tid), v;
            if ((s->flags & SAMPLE_TASK) || !hmap_get(&c->thr, key ? key : 1, &v))
                continue;
            uint32_t st = s->stage ? tag_stage(c, s->stage) : a->stack_stage[s->stack];
            if (st < a->nstages)
                w[v * a->nstages + st] += s->weight ? s->weight : 1;
        }
    } else {
        for (uint32_t s = 1; s < p->nnodes; s++) {
            if (!p->counts[s])
                continue;
            uint32_t r = s;
            while (p->nodes[r].parent)
                r = p->nodes[r].parent;
            const struct pframe *f = profile_frame_at(p, p->nodes[r].frame);
            if (f->kind != FRAME_THREAD)
                continue;
            for (uint32_t t = 0; t < a->nthreads; t++)
                if (a->threads[t].tid == (uint32_t)f->line)
                    w[(size_t)t * a->nstages + a->stack_stage[s]] += p->counts[s];
        }
    }
    for (uint32_t t = 0; t < a->nthreads; t++) {
        uint64_t best = 0;
        for (uint32_t k = 0; k < a->nstages; k++) {
            if (w[(size_t)t * a->nstages + k] > best) {
                best = w[(size_t)t * a->nstages + k];
                a->threads[t].top_stage = k;
            }
        }
        a->threads[t].top_stage_share =
            a->threads[t].samples ? (double)best / (double)a->threads[t].samples : 0;
    }
    free(w);
}

/* Function and line tables. */
struct hotset {
    struct hot *v;
    uint32_t n, cap;
    uint32_t *stamp; /* last stack that counted it in `total` */
    uint64_t *best;  /* heaviest leaf stack's samples, for its stage */
    struct hmap idx;
};

static uint32_t hot_get(struct hotset *h, uint64_t key, uint32_t frame)
{
    bool fresh;
    uint64_t *slot = hmap_slot(&h->idx, key ? key : 1, h->n, &fresh);
    uint32_t i = (uint32_t)*slot;
    if (fresh) {
        if (h->n == h->cap) {
            h->cap = h->cap ? h->cap * 2 : 256;
            h->v = xrealloc(h->v, h->cap * sizeof(*h->v));
            h->stamp = xrealloc(h->stamp, h->cap * sizeof(*h->stamp));
            h->best = xrealloc(h->best, h->cap * sizeof(*h->best));
        }
        memset(&h->v[i], 0, sizeof(h->v[i]));
        h->v[i].frame = frame;
        h->stamp[i] = 0;
        h->best[i] = 0;
        h->n++;
    }
    return i;
}

static uint64_t func_key(const struct pframe *f)
{
    return hmap_hash64(((uint64_t)f->name << 32 | f->file) ^ ((uint64_t)f->kind << 62));
}

static int cmp_self(const void *x, const void *y)
{
    const struct hot *a = x, *b = y;
    if (a->wself != b->wself)
        return a->wself < b->wself ? 1 : -1;
    if (a->self != b->self)
        return a->self < b->self ? 1 : -1;
    if (a->total != b->total)
        return a->total < b->total ? 1 : -1;
    return a->frame < b->frame ? -1 : a->frame > b->frame;
}

static int cmp_vw(const void *x, const void *y)
{
    const struct hot *a = x, *b = y;
    if (a->vw != b->vw)
        return a->vw < b->vw ? 1 : -1;
    return a->frame < b->frame ? -1 : a->frame > b->frame;
}

static int cmp_asleep(const void *x, const void *y)
{
    const struct hot *a = x, *b = y;
    if (a->self != b->self)
        return a->self < b->self ? 1 : -1;
    return a->frame < b->frame ? -1 : a->frame > b->frame;
}

/* The functions threads slept in (or waited for outside work in), apart from the work. */
static void asleep_table(struct acc *c)
{
    struct analysis *a = c->a;
    const struct profile *p = c->p;
    struct hotset h = {0};
    hmap_init(&h.idx);
    for (uint32_t s = 1; s < p->nnodes; s++) {
        if (!c->sleep_n[s])
            continue;
        uint32_t leaf = s;
        while (leaf && !code_frame(profile_frame_at(p, p->nodes[leaf].frame)))
            leaf = p->nodes[leaf].parent;
        if (!leaf)
            continue;
        const struct pframe *lf = profile_frame_at(p, p->nodes[leaf].frame);
        uint32_t i = hot_get(&h, func_key(lf), p->nodes[leaf].frame);
        h.v[i].self += c->sleep_n[s];
        a->asleep_samples += c->sleep_n[s];
    }
    if (h.n)
        qsort(h.v, h.n, sizeof(*h.v), cmp_asleep);
    a->nasleep = h.n < TOP_BEHIND ? h.n : TOP_BEHIND;
    a->asleep = xmalloc(((size_t)a->nasleep + 1) * sizeof(*a->asleep));
    if (a->nasleep)
        memcpy(a->asleep, h.v, (size_t)a->nasleep * sizeof(*a->asleep));
    free(h.v);
    free(h.stamp);
    free(h.best);
    hmap_fini(&h.idx);
}

static void hot_tables(struct acc *c)
{
    struct analysis *a = c->a;
    const struct profile *p = c->p;
    struct hotset fn = {0}, ln = {0};
    hmap_init(&fn.idx);
    hmap_init(&ln.idx);
    uint8_t vt = a->has_verdict ? (uint8_t)a->verdict.type : BT_N;
    if (vt == BT_GPU)
        vt = a->stage_run_type[a->verdict.stage];
    for (uint32_t s = 1; s < p->nnodes; s++) {
        if (!p->counts[s])
            continue;
        uint64_t n = 0;
        for (unsigned k = 0; k < PCAT_N; k++)
            n += c->sn[(size_t)s * PCAT_N + k];
        if (!n)
            continue;
        /* The leaf: the innermost code frame. */
        uint32_t leaf = s;
        while (leaf && !code_frame(profile_frame_at(p, p->nodes[leaf].frame)))
            leaf = p->nodes[leaf].parent;
        if (!leaf)
            continue;
        const struct pframe *lf = profile_frame_at(p, p->nodes[leaf].frame);
        uint32_t fi = hot_get(&fn, func_key(lf), p->nodes[leaf].frame);
        uint32_t li = hot_get(&ln, (uint64_t)p->nodes[leaf].frame + 1, p->nodes[leaf].frame);
        struct hot *hs[2] = {&fn.v[fi], &ln.v[li]};
        uint64_t *bests[2] = {&fn.best[fi], &ln.best[li]};
        for (int q = 0; q < 2; q++) {
            hs[q]->self += n;
            hs[q]->wself += c->sw[s];
            for (unsigned k = 0; k < PCAT_N; k++)
                hs[q]->cat[k] += c->sn[(size_t)s * PCAT_N + k];
            if (n > *bests[q]) {
                *bests[q] = n;
                hs[q]->stage = a->stack_stage[s];
            }
            if (vt < BT_N)
                hs[q]->vw += c->stw[(size_t)s * BT_N + vt];
        }
        for (uint32_t u = s; u; u = p->nodes[u].parent) {
            const struct pframe *f = profile_frame_at(p, p->nodes[u].frame);
            if (!code_frame(f))
                continue;
            uint32_t x = hot_get(&fn, func_key(f), p->nodes[u].frame);
            if (fn.stamp[x] != s) {
                fn.stamp[x] = s;
                fn.v[x].total += n;
                fn.v[x].wtotal += c->sw[s];
            }
            uint32_t y = hot_get(&ln, (uint64_t)p->nodes[u].frame + 1, p->nodes[u].frame);
            if (ln.stamp[y] != s) {
                ln.stamp[y] = s;
                ln.v[y].total += n;
                ln.v[y].wtotal += c->sw[s];
            }
        }
    }
    if (vt < BT_N && ln.n) {
        qsort(ln.v, ln.n, sizeof(*ln.v), cmp_vw);
        uint32_t k = 0;
        while (k < ln.n && k < TOP_BEHIND && ln.v[k].vw > 0)
            k++;
        a->nbehind = k;
        a->behind = xmalloc(((size_t)k + 1) * sizeof(*a->behind));
        memcpy(a->behind, ln.v, (size_t)k * sizeof(*a->behind));
    }
    if (fn.n)
        qsort(fn.v, fn.n, sizeof(*fn.v), cmp_self);
    if (ln.n)
        qsort(ln.v, ln.n, sizeof(*ln.v), cmp_self);
    a->nfuncs = fn.n < TOP_HOT ? fn.n : TOP_HOT;
    a->nlines = ln.n < TOP_HOT ? ln.n : TOP_HOT;
    a->funcs = xmalloc(((size_t)a->nfuncs + 1) * sizeof(*a->funcs));
    a->lines = xmalloc(((size_t)a->nlines + 1) * sizeof(*a->lines));
    if (a->nfuncs)
        memcpy(a->funcs, fn.v, (size_t)a->nfuncs * sizeof(*a->funcs));
    if (a->nlines)
        memcpy(a->lines, ln.v, (size_t)a->nlines * sizeof(*a->lines));
    for (struct hotset *h = &fn; h; h = h == &fn ? &ln : NULL) {
        free(h->v);
        free(h->stamp);
        free(h->best);
        hmap_fini(&h->idx);
    }
}

static bool gpu_in_use(const struct profile *p)
{
    for (uint32_t i = 0; i < p->nframes; i++) {
        const struct pframe *f = profile_frame_at(p, i);
        const char *file = profile_string(p, f->file);
        const char *name = profile_string(p, f->name);
        if (f->kind == FRAME_PYTHON && strstr(file, "/torch/cuda/") &&
            !strstr(file, "/torch/cuda/__init__.py"))
            return true;
        if (f->kind == FRAME_NATIVE && (strstr(file, "libcuda") || strstr(name, "cudaLaunch")))
            return true;
    }
    return false;
}

/* The piece of evidence carrying most of type `t`'s wall time, and its share of it. */
static void candidate_evidence(const struct analysis *a, struct candidate *c)
{
    c->ev = 0;
    c->ev_share = 0;
    if (!a->ev_w || a->type[c->type].w <= 0)
        return;
    const double *w = a->ev_w + (size_t)c->type * (a->nevs + 1);
    double best = 0;
    for (uint32_t e = 0; e <= a->nevs; e++)
        if (w[e] > best) {
            best = w[e];
            c->ev = e;
        }
    c->ev_share = best / a->type[c->type].w;
}

/* "host 26%, model 25%, ..." for the types with time, heaviest first, into `out`. */
static void list_shares(const struct analysis *a, const int *order, int n, char *out, size_t cap)
{
    size_t k = 0;
    out[0] = '\0';
    for (int i = 0; i < n && i < 5 && k < cap; i++) {
        int m = snprintf(out + k, cap - k, "%s%s %.0f%%", i ? ", " : "",
                         btype_name((enum btype)order[i]), 100 * a->type[order[i]].p);
        if (m < 0)
            break;
        k += (size_t)m;
    }
}

static void decide(struct analysis *a)
{
    for (unsigned t = 0; t < BT_N; t++)
        share_set(&a->type[t], a->type[t].w, a->wall);
    for (uint32_t s = 0; s < a->nstages; s++)
        share_set(&a->stage[s], a->stage[s].w, a->wall);
    /* Candidates: every type of work; unattributed waiting and deliberate sleep are not. */
    int order[BT_N];
    int n = 0;
    for (int t = 1; t < BT_N; t++)
        if (t != BT_SLEEP && a->type[t].w > 0)
            order[n++] = t;
    for (int i = 1; i < n; i++) /* insertion sort by weight, heaviest first */
        for (int j = i; j > 0 && a->type[order[j]].w > a->type[order[j - 1]].w; j--) {
            int x = order[j];
            order[j] = order[j - 1];
            order[j - 1] = x;
        }
    struct candidate cand[2] = {{0}, {0}};
    for (int i = 0; i < 2 && i < n; i++) {
        cand[i].type = (enum btype)order[i];
        cand[i].s = a->type[order[i]];
        double best = -1;
        for (uint32_t s = 0; s < a->nstages; s++) {
            double w = a->stage_type_w[(size_t)s * BT_N + order[i]];
            if (w > best) {
                best = w;
                cand[i].stage = s;
            }
        }
        share_set(&cand[i].stage_s, best, a->wall);
        candidate_evidence(a, &cand[i]);
    }
    a->reason[0] = '\0';
    if (a->wall < VERDICT_MIN_WALL) {
        bool load = a->no_request > 0;
        snprintf(a->reason, sizeof(a->reason),
                 "too few samples%s (%.0f ticks; a verdict needs %.0f): %s",
                 load ? " while requests were in flight" : "", a->wall, VERDICT_MIN_WALL,
                 load ? "send more load (--load-rate, --load-concurrency) or record longer"
                      : "record longer or at a higher rate");
        return;
    }
    if (a->type[BT_SLEEP].p >= VERDICT_MIN_SHARE && (n == 0 || a->type[BT_SLEEP].w > cand[0].s.w)) {
        char shares[160];
        list_shares(a, order, n, shares, sizeof(shares));
        snprintf(a->reason, sizeof(a->reason),
                 "%.0f%% of wall time is deliberate sleep or waiting for work from outside "
                 "(time.sleep, timers, accept, a terminal), not a bottleneck%s%s",
                 100 * a->type[BT_SLEEP].p, n ? "; the rest: " : "", shares);
        a->verdict = cand[0];
        a->second = cand[1];
        a->has_second = n > 1;
        return;
    }
    if (n == 0) {
        snprintf(a->reason, sizeof(a->reason), "no time could be attributed to a stage");
        return;
    }
    if (cand[0].s.p < VERDICT_MIN_SHARE || cand[0].s.lo < VERDICT_MIN_LOWER) {
        char shares[160];
        list_shares(a, order, n, shares, sizeof(shares));
        snprintf(a->reason, sizeof(a->reason),
                 "no type of work holds %.0f%% of wall time (95%% interval above %.0f%%): %s",
                 100 * VERDICT_MIN_SHARE, 100 * VERDICT_MIN_LOWER, shares);
        a->verdict = cand[0];
        a->second = cand[1];
        a->has_second = n > 1;
        return;
    }
    if (a->type[BT_NONE].w > cand[0].s.w) {
        snprintf(a->reason, sizeof(a->reason),
                 "most time (%.0f%%) is waiting in code no rule names (time.sleep or a C call)",
                 100 * a->type[BT_NONE].p);
        a->verdict = cand[0];
        return;
    }
    a->has_verdict = true;
    a->verdict = cand[0];
    if (n > 1 && (cand[1].s.hi >= cand[0].s.lo || cand[1].s.p >= 0.6 * cand[0].s.p)) {
        a->has_second = true;
        a->second = cand[1];
    }
}

static bool host_like(enum btype t)
{
    return t == BT_HOST || t == BT_IO || t == BT_SERIAL || t == BT_QUEUE || t == BT_GIL;
}

/* Joins what the GPU did (NVML, docs/gpu.md) with the CPU verdict. Without GPU figures the
 * older guess from torch.cuda frames stays, and says what it rests on. */
static void apply_gpu(struct analysis *a, const struct profile *p)
{
    bool asleep = !a->has_verdict && a->type[BT_SLEEP].p >= VERDICT_MIN_SHARE;
    gpu_verdict_run(&a->gpu, p, !asleep && a->wall >= VERDICT_MIN_WALL);
    if (!a->has_verdict)
        return;
    enum btype t = a->verdict.type;
    char fig[256];
    if (a->gpu.kind == GPUK_NONE) {
        if (a->gpu_present && host_like(t) && t != BT_GIL) {
            snprintf(a->reason, sizeof(a->reason),
                     "a CUDA device is in use while %s dominates: the GPU waits on the host "
                     "(a guess from torch.cuda frames: no GPU figures were recorded)",
                     btype_label(t));
            a->verdict.type = BT_GPU;
        }
        return;
    }
    gpu_verdict_figures(&a->gpu, fig, sizeof(fig));
    if (a->gpu.kind == GPUK_STARVED && host_like(t)) {
        snprintf(a->reason, sizeof(a->reason),
                 "GPU starved: kernels ran %.0f%% of the time (any kernel running, NVML) while "
                 "%s; the host stage '%s' (%s) is what it waits for",
                 a->gpu.busy,
                 a->gpu.window_requests ? "requests were in flight" : "the program worked",
                 a->stage_names[a->verdict.stage], btype_name(t));
        a->verdict.type = BT_GPU;
    } else if (a->gpu.kind == GPUK_STARVED) {
        snprintf(a->reason, sizeof(a->reason), "GPU starved: %s", fig);
    } else if (gpu_kind_gpu_bound(a->gpu.kind) && t == BT_GPU) {
        /* threads wait on the GPU (synchronize, .item()) and NVML says it is busy: the GPU
         * is the limit, not underused */
        snprintf(a->reason, sizeof(a->reason), "%s: %s", gpu_kind_label(a->gpu.kind), fig);
        a->verdict.type = BT_MODEL;
    }
}

void analysis_run(struct analysis *a, const struct profile *p, const struct stage_rules *rules)
{
    struct stage_rules builtin;
    bool own = !rules;
    if (own) {
        stage_rules_init(&builtin);
        rules = &builtin;
    }
    memset(a, 0, sizeof(*a));
    a->nstages = rules->nstages;
    a->stage_names = xmalloc((rules->nstages + 1) * sizeof(*a->stage_names));
    a->stage_run_type = xmalloc(rules->nstages + 1);
    a->stage_wait_type = xmalloc(rules->nstages + 1);
    for (uint32_t i = 0; i < rules->nstages; i++) {
        a->stage_names[i] = rules->stages[i].name;
        a->stage_run_type[i] = rules->stages[i].run_type;
        a->stage_wait_type[i] = rules->stages[i].wait_type;
    }
    a->stack_stage = stage_classify(rules, p, &a->stack_weak);
    a->stack_cpu_stage = stage_classify_cpu(rules, p, &a->stack_cpu_weak);
    a->has_cats = p->meta.categories;
    a->gpu_present = gpu_in_use(p);
    struct acc c = {.a = a, .p = p};
    c.sn = xcalloc((size_t)p->nnodes * PCAT_N, sizeof(*c.sn));
    c.stw = xcalloc((size_t)p->nnodes * BT_N, sizeof(*c.stw));
    c.sw = xcalloc((size_t)p->nnodes + 1, sizeof(*c.sw));
    c.sleep_n = xcalloc((size_t)p->nnodes + 1, sizeof(*c.sleep_n));
    a->nevs = p->nevs;
    a->ev_w = xcalloc((size_t)BT_N * (p->nevs + 1), sizeof(*a->ev_w));
    hmap_init(&c.tags);
    hmap_init(&c.thr);
    /* Stage tags may add stages: size the per-stage arrays for the worst case. */
    uint32_t maxst = rules->nstages + 1;
    if (p->keep_samples && p->nsamples) {
        struct hmap seen;
        hmap_init(&seen);
        for (size_t i = 0; i < p->nsamples; i++)
            if (p->samples[i].stage && !hmap_get(&seen, p->samples[i].stage, &(uint64_t){0})) {
                hmap_put(&seen, p->samples[i].stage, 1);
                maxst++;
            }
        hmap_fini(&seen);
    }
    a->stage = xcalloc(maxst, sizeof(*a->stage));
    a->stage_type_w = xcalloc((size_t)maxst * BT_N, sizeof(*a->stage_type_w));
    uint64_t kept = 0;
    for (size_t i = 0; i < p->nsamples; i++)
        kept += p->samples[i].weight ? p->samples[i].weight : 1;
    /* Per tick when every sample was kept: with hide_idle the counts leave idle samples out,
     * so the kept ones may outnumber them. */
    a->per_tick = p->keep_samples && p->nsamples && !p->samples_capped &&
                  (p->hide_idle ? kept >= p->total : kept == p->total);
    if (a->per_tick)
        from_samples(&c);
    else
        from_counts(&c);
    if (!a->has_state)
        a->has_state = a->has_cats;
    decide(a);
    apply_gpu(a, p);
    mem_verdict_run(&a->mem, p);
    hot_tables(&c);
    asleep_table(&c);
    thread_stages(&c);
    free(c.sn);
    free(c.stw);
    free(c.sw);
    free(c.sleep_n);
    hmap_fini(&c.tags);
    hmap_fini(&c.thr);
    if (own) {
        /* Stage names are borrowed from the rules: keep copies that outlive them. */
        for (uint32_t i = 0; i < rules->nstages; i++)
            a->stage_names[i] = xstrdup(a->stage_names[i]);
        a->owns_names = rules->nstages;
        stage_rules_fini(&builtin);
    }
}

void analysis_fini(struct analysis *a)
{
    for (uint32_t i = 0; i < a->owns_names; i++)
        free((char *)a->stage_names[i]);
    free(a->stage_names);
    free(a->stage_run_type);
    free(a->stage_wait_type);
    free(a->stack_stage);
    free(a->stack_weak);
    free(a->stack_cpu_stage);
    free(a->stack_cpu_weak);
    free(a->ev_w);
    free(a->asleep);
    free(a->stage);
    free(a->stage_type_w);
    free(a->funcs);
    free(a->lines);
    free(a->behind);
    free(a->threads);
    memset(a, 0, sizeof(*a));
}

uint32_t analysis_stage_order(const struct analysis *a, uint32_t *out)
{
    uint32_t k = 0;
    for (uint32_t s = 0; s < a->nstages; s++) {
        if (a->stage[s].w <= 0)
            continue;
        uint32_t j = k++;
        while (j > 0 && a->stage[out[j - 1]].w < a->stage[s].w) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = s;
    }
    return k;
}

uint32_t analysis_sample_stage(const struct analysis *a, const struct profile *p,
                               const struct psample *s)
{
    if (s->stage) {
        const char *name = profile_string(p, s->stage);
        for (uint32_t i = 0; i < a->nstages; i++)
            if (strcmp(a->stage_names[i], name) == 0)
                return i;
    }
    return a->stack_stage[s->stack];
}

/* "name (file:line)" of a frame, shortened to its last path components. */
static void hot_label(const struct profile *p, const struct hot *h, bool line, struct buf *b)
{
    const struct pframe *f = profile_frame_at(p, h->frame);
    const char *file = profile_string(p, f->file);
    const char *slash = strrchr(file, '/');
    if (slash && f->kind == FRAME_PYTHON) {
        const char *prev = slash;
        while (prev > file && prev[-1] != '/')
            prev--;
        if (prev > file)
            slash = prev - 1;
    }
    const char *shown = slash ? slash + 1 : file;
    int rc = buf_puts(b, profile_string(p, f->name)[0] ? profile_string(p, f->name) : "?");
    if (!rc && shown[0])
        rc = line && f->line > 0 ? buf_printf(b, " (%s:%d)", shown, (int)f->line)
                                 : buf_printf(b, " (%s)", shown);
    (void)rc;
}

void verdict_evidence_text(const struct profile *p, uint32_t ev, struct buf *b)
{
    if (!ev || ev > p->nevs) {
        int rc = buf_puts(b, "with no kernel evidence: by the stage rules (modules, names)");
        (void)rc;
        return;
    }
    const struct pevid *e = &p->evs[ev - 1];
    const char *label = profile_string(p, e->label);
    int rc;
    switch (e->kind) {
    case EV_CPU_PYTHON:
        rc = buf_printf(b, "on CPU in the interpreter (%s)", label);
        break;
    case EV_CPU_MODEL:
    case EV_CPU_SERIAL:
    case EV_CPU_TOKEN:
    case EV_CPU_NATIVE:
        rc = buf_printf(b, "on CPU in %s", label);
        break;
    case EV_CPU_KERNEL:
        rc = buf_puts(b, "on CPU in the kernel");
        break;
    case EV_WAIT_GIL:
        rc = buf_puts(b, "blocked taking the GIL");
        break;
    default:
        rc = buf_printf(b, "blocked in %s", label);
        break;
    }
    (void)rc;
}

const char *verdict_fix(const struct profile *p, const struct analysis *a,
                        const struct candidate *c)
{
    uint8_t kind = c->ev && c->ev <= p->nevs ? (uint8_t)p->evs[c->ev - 1].kind : EV_NONE;
    if (c->type == BT_HOST && kind == EV_CPU_NATIVE && c->ev_share >= 0.5)
        return "Native code does this work, not Python: call it less often or on larger "
               "batches, lower its cost (compression level, cheaper codec or query), or spread "
               "it over processes or threads (it may release the GIL).";
    if (c->type == BT_HOST && kind == EV_CPU_TOKEN && c->ev_share >= 0.5)
        return "A compiled tokenizer does this work: call it on batches (encode_batch) rather "
               "than one text at a time, cache repeated inputs, or tokenize in worker processes.";
    (void)a;
    return btype_fix(c->type);
}

/* The GPU's lines: its verdict and figures, the rules not applied, and any NVML note. */
static void gpu_print(const struct profile *p, const struct analysis *a, FILE *f)
{
    if (a->gpu.kind != GPUK_NONE) {
        char fig[256];
        gpu_verdict_figures(&a->gpu, fig, sizeof(fig));
        fprintf(f, "  gpu: %s: %s\n", gpu_kind_label(a->gpu.kind), fig);
        if (a->gpu.kind != GPUK_IDLE)
            fprintf(f, "  gpu fix: %s\n", gpu_kind_fix(a->gpu.kind));
        if (a->gpu.not_applied[0])
            fprintf(f, "  gpu rules not applied: %s\n", a->gpu.not_applied);
    }
    if (p->gpu.note)
        fprintf(f, "  gpu note: %s\n", p->gpu.note);
}

/* The memory line (record --allocations): growing heap or churn with its figures. */
static void mem_print(const struct profile *p, const struct analysis *a, FILE *f)
{
    if (a->mem.kind == MEMK_NONE)
        return;
    char fig[512];
    mem_verdict_figures(&a->mem, p, fig, sizeof(fig));
    fprintf(f, "  memory: %s: %s\n", mem_kind_label(a->mem.kind), fig);
    fprintf(f, "  memory fix: %s\n", mem_kind_fix(a->mem.kind));
}

void verdict_print(const struct profile *p, const struct analysis *a, FILE *f)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    if (a->has_verdict) {
        const struct candidate *v = &a->verdict;
        fprintf(f,
                "crux verdict: %s: %.0f%% of wall time (95%% CI %.0f-%.0f%%), mostly in "
                "stage '%s'\n",
                btype_label(v->type), 100 * v->s.p, 100 * v->s.lo, 100 * v->s.hi,
                a->stage_names[v->stage]);
        buf_reset(&b);
        verdict_evidence_text(p, v->ev, &b);
        fprintf(f, "  evidence: %.0f%% of it %s\n", 100 * v->ev_share, buf_cstr(&b));
        if (a->reason[0])
            fprintf(f, "  note: %s\n", a->reason);
        for (uint32_t i = 0; i < a->nbehind && i < 3; i++) {
            buf_reset(&b);
            hot_label(p, &a->behind[i], true, &b);
            fprintf(f, "  %s %s %.0f%%\n", i ? "          " : "behind it:", buf_cstr(&b),
                    a->wall > 0 ? 100 * a->behind[i].vw / a->wall : 0);
        }
        fprintf(f, "  fix: %s\n", verdict_fix(p, a, v));
        if (a->has_second)
            fprintf(f, "  close second: %s: %.0f%% (%.0f-%.0f%%), stage '%s'\n",
                    btype_label(a->second.type), 100 * a->second.s.p, 100 * a->second.s.lo,
                    100 * a->second.s.hi, a->stage_names[a->second.stage]);
    } else {
        fprintf(f, "crux verdict: no clear bottleneck: %s\n", a->reason);
    }
    gpu_print(p, a, f);
    mem_print(p, a, f);
    if (a->no_request > 0)
        fprintf(f,
                "  scope: %.0f ticks with requests in flight; the %.0f%% of the recording with "
                "none (server idle or starting) is left out\n",
                a->wall, 100 * a->no_request / (a->no_request + a->wall));
    /* Top five stages by wall share. */
    uint32_t *idx = xmalloc(((size_t)a->nstages + 1) * sizeof(*idx));
    uint32_t k = analysis_stage_order(a, idx);
    fputs("  stages:", f);
    for (uint32_t i = 0; i < k && i < 5; i++)
        fprintf(f, "%s %s %.1f%%", i ? "," : "", a->stage_names[idx[i]], 100 * a->stage[idx[i]].p);
    fputc('\n', f);
    free(idx);
    /* The work, by share of wall time; what slept or waited for outside work, apart. */
    fputs("  functions (self, wall):", f);
    for (uint32_t i = 0, shown = 0; i < a->nfuncs && shown < 5; i++) {
        if (a->funcs[i].wself <= 0)
            break;
        buf_reset(&b);
        hot_label(p, &a->funcs[i], false, &b);
        fprintf(f, "%s %s %.1f%%", shown++ ? "," : "", buf_cstr(&b),
                a->wall > 0 ? 100.0 * a->funcs[i].wself / a->wall : 0);
    }
    fputc('\n', f);
    if (a->nasleep && a->samples) {
        fputs("  asleep or waiting for outside work (thread-samples):", f);
        for (uint32_t i = 0; i < a->nasleep && i < 3; i++) {
            buf_reset(&b);
            hot_label(p, &a->asleep[i], false, &b);
            fprintf(f, "%s %s %.1f%%", i ? "," : "", buf_cstr(&b),
                    100.0 * (double)a->asleep[i].self / (double)a->samples);
        }
        fputc('\n', f);
    }
    buf_fini(&b);
}

void verdict_print_summary(const struct profile *p, const struct stage_rules *rules, FILE *f)
{
    struct analysis a;
    analysis_run(&a, p, rules);
    verdict_print(p, &a, f);
    analysis_fini(&a);
}
