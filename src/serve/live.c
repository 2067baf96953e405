// SPDX-License-Identifier: MIT
// crux serve's shared state: profile windows fed by the sampler's drains, and the totals of
// /metrics. A window copies the stacks its samples use out of the shared profile, so the
// shared profile can be emptied (bounding memory over days) while windows are open.
#include "serve/live.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "export/export.h"
#include "export/pprof.h"
#include "util/xalloc.h"

struct live_window {
    uint64_t t0, t1; /* sampler clock: samples in [t0, t1) belong to it */
    struct profile acc;
    struct hmap stacks; /* shared stack id -> acc stack id */
    struct hmap frames; /* shared frame id + 1 -> acc frame id */
    struct hmap strs;   /* shared string id + 1 -> acc string id (stages) */
    uint32_t *chain;    /* scratch: stacks still to copy, leaf first */
    size_t cap;
    bool done;
};

/* Bucket bounds of the latency histograms, in nanoseconds (Prometheus' default buckets
 * stretched to 30 s: model calls and whole requests can take seconds). */
static const uint64_t BUCKETS_NS[LIVE_NBUCKETS] = {
    1000000ULL,    2500000ULL,    5000000ULL,     10000000ULL,   25000000ULL,
    50000000ULL,   100000000ULL,  250000000ULL,   500000000ULL,  1000000000ULL,
    2500000000ULL, 5000000000ULL, 10000000000ULL, 30000000000ULL};

static uint64_t unix_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void live_init(struct live *l, const struct live_opts *o)
{
    memset(l, 0, sizeof(*l));
    l->o = *o;
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    hmap_init(&l->stage_of);
    snprintf(l->stages[LIVE_MAX_STAGES].name, sizeof(l->stages[0].name), "other");
}

static void window_free(struct live_window *w)
{
    profile_fini(&w->acc);
    hmap_fini(&w->stacks);
    hmap_fini(&w->frames);
    hmap_fini(&w->strs);
    free(w->chain);
    free(w);
}

void live_fini(struct live *l)
{
    for (size_t i = 0; i < LIVE_MAX_WINDOWS; i++)
        if (l->win[i])
            window_free(l->win[i]);
    hmap_fini(&l->stage_of);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
}

/* The window's copy of shared string `id`. */
static uint32_t map_str(struct live_window *w, const struct profile *src, uint32_t id)
{
    uint64_t v;
    if (hmap_get(&w->strs, (uint64_t)id + 1, &v))
        return (uint32_t)v;
    uint32_t got = profile_str(&w->acc, profile_string(src, id), strtab_len(&src->strs, id));
    hmap_put(&w->strs, (uint64_t)id + 1, got);
    return got;
}

static uint32_t map_frame(struct live_window *w, const struct profile *src, uint32_t id)
{
    uint64_t v;
    if (hmap_get(&w->frames, (uint64_t)id + 1, &v))
        return (uint32_t)v;
    const struct pframe *f = profile_frame_at(src, id);
    uint32_t got = profile_frame(&w->acc, map_str(w, src, f->name), map_str(w, src, f->file),
                                 f->line, (enum frame_kind)f->kind);
    hmap_put(&w->frames, (uint64_t)id + 1, got);
    return got;
}

/* The window's copy of shared stack `id`: the stacks not copied yet on the way to the root
 * are collected leaf first, then pushed root first onto the nearest one already copied. */
static uint32_t map_stack(struct live_window *w, const struct profile *src, uint32_t id)
{
    uint64_t v;
    size_t n = 0;
    uint32_t base = 0;
    for (uint32_t s = id; s; s = src->nodes[s].parent) {
        if (hmap_get(&w->stacks, s, &v)) {
            base = (uint32_t)v;
            break;
        }
        if (n == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 64;
            w->chain = xrealloc(w->chain, w->cap * sizeof(*w->chain));
        }
        w->chain[n++] = s;
    }
    while (n > 0) {
        uint32_t s = w->chain[--n];
        base = profile_push(&w->acc, base, map_frame(w, src, src->nodes[s].frame));
        hmap_put(&w->stacks, s, base);
    }
    return base;
}

static void window_forget(struct live_window *w)
{
    hmap_clear(&w->stacks);
    hmap_clear(&w->frames);
    hmap_clear(&w->strs);
}

static void hist_add(struct live_hist *h, uint64_t ns)
{
    size_t b = 0;
    while (b < LIVE_NBUCKETS && ns > BUCKETS_NS[b])
        b++;
    h->n[b]++;
    h->count++;
    h->sum_ns += ns;
}

/* The totals of stage `name` (`n` bytes): a new one while there is room, else "other". */
static struct live_stage *stage_named(struct live *l, const char *name, size_t n)
{
    for (size_t i = 0; i < l->nstages; i++)
        if (strlen(l->stages[i].name) == n && !memcmp(l->stages[i].name, name, n))
            return &l->stages[i];
    if (l->nstages == LIVE_MAX_STAGES || n >= sizeof(l->stages[0].name))
        return &l->stages[LIVE_MAX_STAGES];
    struct live_stage *s = &l->stages[l->nstages++];
    memcpy(s->name, name, n);
    s->name[n] = 0;
    return s;
}

/* The totals of the stage that shared string `id` names, found through a cache of ids. */
static struct live_stage *stage_of(struct live *l, const struct profile *p, uint32_t id)
{
    uint64_t v;
    if (hmap_get(&l->stage_of, (uint64_t)id + 1, &v))
        return &l->stages[v];
    struct live_stage *s = stage_named(l, profile_string(p, id), strtab_len(&p->strs, id));
    hmap_put(&l->stage_of, (uint64_t)id + 1, (uint64_t)(s - l->stages));
    return s;
}

static void drain_samples(struct live *l, struct profile *p)
{
    for (size_t i = 0; i < p->nsamples; i++) {
        const struct psample *s = &p->samples[i];
        uint64_t w = s->weight ? s->weight : 1;
        bool idle = psample_idle(s);
        l->samples[idle][s->cat < PCAT_N ? s->cat : CAT_NONE] += w;
        if (s->ev && s->ev <= p->nevs && p->evs[s->ev - 1].kind < EV_N)
            l->evidence[p->evs[s->ev - 1].kind] += w;
        if (s->stage)
            stage_of(l, p, s->stage)->samples[idle] += w;
        if (idle && !l->o.idle)
            continue;
        for (size_t k = 0; k < LIVE_MAX_WINDOWS; k++) {
            struct live_window *win = l->win[k];
            if (!win || win->done || s->t_ns < win->t0 || s->t_ns >= win->t1)
                continue;
            struct psample c = *s;
            c.t_ns = s->t_ns - win->t0;
            c.stack = map_stack(win, p, s->stack);
            c.stage = s->stage ? map_str(win, p, s->stage) : 0;
            c.ev = 0; /* the evidence is in the totals; pprof has no place for it */
            profile_add(&win->acc, &c);
        }
    }
    p->nsamples = 0;
    p->samples_capped = false;
}

static void drain_memory(struct live *l, struct profile *p, uint64_t now_ns)
{
    for (size_t i = 0; i < p->nmem; i++) {
        const struct pmem *m = &p->mem[i];
        size_t k = 0;
        while (k < l->nrss && l->rss[k].pid != m->pid)
            k++;
        if (k == l->nrss) {
            if (l->nrss == LIVE_MAX_PROCS)
                continue;
            l->nrss++;
        }
        l->rss[k] = (struct live_rss){.pid = m->pid, .rss = m->rss, .t_ns = m->t_ns};
    }
    p->nmem = 0;
    /* a process that has not had a point for 5 s is gone (points come every 10 ms or so) */
    size_t k = 0;
    for (size_t i = 0; i < l->nrss; i++)
        if (l->rss[i].t_ns + 5000000000ULL >= now_ns)
            l->rss[k++] = l->rss[i];
    l->nrss = k;
}

static void drain_spans(struct live *l)
{
    struct stagestats *ss = l->o.spans;
    if (!ss)
        return;
    for (size_t i = 0; i < ss->nspans; i++) {
        const struct sspan *sp = &ss->spans[i];
        uint64_t ns = sp->end_ns > sp->start_ns ? sp->end_ns - sp->start_ns : 0;
        if (sp->kind == STAGE_REQUEST) {
            hist_add(&l->requests, ns);
        } else if (sp->kind == STAGE_SPAN) {
            const char *name = strtab_get(&ss->names, sp->name);
            hist_add(&stage_named(l, name, strtab_len(&ss->names, sp->name))->lat, ns);
        }
    }
    ss->nspans = 0;
}

bool live_drain(struct profile *p, const struct sampler_stats *st, uint64_t now_ns, void *arg)
{
    struct live *l = arg;
    pthread_mutex_lock(&l->mu);
    if (!l->started) {
        l->start_mono = st->start_ns;
        l->started = true;
    }
    drain_samples(l, p);
    drain_memory(l, p, now_ns);
    drain_spans(l);
    l->st = *st;
    l->now_ns = now_ns;
    bool ended = false;
    for (size_t k = 0; k < LIVE_MAX_WINDOWS; k++)
        if (l->win[k] && !l->win[k]->done && l->win[k]->t1 <= now_ns)
            l->win[k]->done = ended = true;
    /* Past the cap (or with many processes seen come and go) the shared profile starts over:
     * the windows keep their copies, and only forget which shared ids they were copied from. */
    bool cleared = false;
    if (p->nnodes > l->o.max_stacks || p->nprocs > 4 * LIVE_MAX_PROCS) {
        profile_clear(p);
        for (size_t k = 0; k < LIVE_MAX_WINDOWS; k++)
            if (l->win[k])
                window_forget(l->win[k]);
        hmap_clear(&l->stage_of);
        l->resets++;
        cleared = true;
    }
    l->stacks = p->nnodes;
    if (ended)
        pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    return cleared;
}

void live_finish(struct live *l)
{
    pthread_mutex_lock(&l->mu);
    l->finished = true;
    for (size_t k = 0; k < LIVE_MAX_WINDOWS; k++)
        if (l->win[k])
            l->win[k]->done = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

struct live_window *live_window_open(struct live *l, double seconds, const char **why)
{
    pthread_mutex_lock(&l->mu);
    size_t k = 0;
    while (k < LIVE_MAX_WINDOWS && l->win[k])
        k++;
    if (l->finished || k == LIVE_MAX_WINDOWS) {
        *why = l->finished ? "the target has exited" : "too many profiles in progress";
        if (!l->finished)
            l->refused++;
        pthread_mutex_unlock(&l->mu);
        return NULL;
    }
    struct live_window *w = xcalloc(1, sizeof(*w));
    w->t0 = l->started ? sampler_now_ns() - l->start_mono : 0;
    w->t1 = w->t0 + (uint64_t)(seconds * 1e9);
    profile_init(&w->acc);
    hmap_init(&w->stacks);
    hmap_init(&w->frames);
    hmap_init(&w->strs);
    w->acc.keep_samples = true;
    w->acc.max_samples = LIVE_WINDOW_SAMPLES;
    w->acc.hide_idle = !l->o.idle;
    profile_set_str(&w->acc.meta.command, l->o.command);
    profile_set_str(&w->acc.meta.python_version, l->o.python_version);
    w->acc.meta.rate_hz = l->o.rate_hz;
    w->acc.meta.categories = l->o.categories;
    w->acc.meta.epoch_ns = unix_now_ns();
    l->win[k] = w;
    pthread_mutex_unlock(&l->mu);
    return w;
}

int live_window_pprof(struct live *l, struct live_window *w, struct buf *out)
{
    pthread_mutex_lock(&l->mu);
    /* The sampler drains ten times a second; should it stall (a target stopped by a
     * debugger), the window still ends 10 s late with what it has. */
    uint64_t give_up = l->start_mono + w->t1 + 10000000000ULL;
    if (!l->started)
        give_up = sampler_now_ns() + (w->t1 - w->t0) + 10000000000ULL;
    while (!w->done) {
        struct timespec ts = {(time_t)(give_up / 1000000000ULL), (long)(give_up % 1000000000ULL)};
        if (pthread_cond_timedwait(&l->cv, &l->mu, &ts) == ETIMEDOUT)
            break;
    }
    for (size_t k = 0; k < LIVE_MAX_WINDOWS; k++)
        if (l->win[k] == w)
            l->win[k] = NULL;
    uint64_t end = l->now_ns < w->t1 ? l->now_ns : w->t1;
    l->profiles++;
    pthread_mutex_unlock(&l->mu);
    w->acc.meta.duration_ns = end > w->t0 ? end - w->t0 : 0;
    int rc = pprof_write(&w->acc, NULL, out);
    window_free(w);
    return rc;
}

const struct profile *live_window_profile(const struct live_window *w)
{
    return &w->acc;
}

/* -- /metrics ------------------------------------------------------------------------------ */

/* A label value: valid UTF-8 with backslash, double quote and newline escaped (the text
 * exposition format's rules). */
static int label_value(struct buf *out, const char *s, size_t n)
{
    struct buf clean;
    buf_init(&clean, 1 << 16);
    int rc = export_utf8_clean(&clean, s, n);
    const char *c = rc ? "" : buf_cstr(&clean);
    for (size_t i = 0; !rc && c[i]; i++) {
        if (c[i] == '\\')
            rc = buf_puts(out, "\\\\");
        else if (c[i] == '"')
            rc = buf_puts(out, "\\\"");
        else if (c[i] == '\n')
            rc = buf_puts(out, "\\n");
        else
            rc = buf_putc(out, c[i]);
    }
    buf_fini(&clean);
    return rc;
}

static int head(struct buf *out, const char *name, const char *type, const char *help)
{
    return buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int hist(struct buf *out, const char *name, const char *stage, const struct live_hist *h)
{
    uint64_t cum = 0;
    int rc = 0;
    for (size_t b = 0; !rc && b <= LIVE_NBUCKETS; b++) {
        cum += h->n[b];
        rc = buf_printf(out, "%s_bucket{", name);
        if (!rc && stage) {
            rc = buf_puts(out, "stage=\"");
            rc = rc ? rc : label_value(out, stage, strlen(stage));
            rc = rc ? rc : buf_puts(out, "\",");
        }
        if (!rc && b < LIVE_NBUCKETS)
            rc = buf_printf(out, "le=\"%g\"} %llu\n", (double)BUCKETS_NS[b] / 1e9,
                            (unsigned long long)cum);
        else if (!rc)
            rc = buf_printf(out, "le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    }
    const char *sfx[2] = {"_sum", "_count"};
    for (int k = 0; !rc && k < 2; k++) {
        rc = buf_printf(out, "%s%s", name, sfx[k]);
        if (!rc && stage) {
            rc = buf_puts(out, "{stage=\"");
            rc = rc ? rc : label_value(out, stage, strlen(stage));
            rc = rc ? rc : buf_puts(out, "\"}");
        }
        if (!rc && k == 0)
            rc = buf_printf(out, " %.9f\n", (double)h->sum_ns / 1e9);
        else if (!rc)
            rc = buf_printf(out, " %llu\n", (unsigned long long)h->count);
    }
    return rc;
}

/* crux's own process: resident memory, CPU time, start time (the standard process_ names). */
static int self_metrics(struct buf *out)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    int rc = head(out, "process_resident_memory_bytes", "gauge",
                  "Resident memory of crux itself, in bytes.");
    rc = rc ? rc
            : buf_printf(out, "process_resident_memory_bytes %llu\n",
                         (unsigned long long)resident * (unsigned long long)page);
    rc = rc ? rc
            : head(out, "process_cpu_seconds_total", "counter",
                   "CPU time crux itself used (user and system), in seconds.");
    rc = rc ? rc : buf_printf(out, "process_cpu_seconds_total %.6f\n", cpu);
    return rc;
}

/* One GPU gauge line: NAME{gpu="I",name="N"[,pid="P"]} V. */
static int gpu_line(struct buf *out, const char *metric, const struct gpu_live_dev *d, uint32_t pid,
                    double v)
{
    int rc = buf_printf(out, "%s{gpu=\"%u\",name=\"", metric, d->index);
    rc = rc ? rc : label_value(out, d->name, strlen(d->name));
    if (!rc && pid)
        rc = buf_printf(out, "\",pid=\"%u", pid);
    return rc ? rc : buf_printf(out, "\"} %.17g\n", v);
}

/* A process `pid` is the target's (it has a resident-memory point in the last 5 s). */
static bool is_target(const struct live *l, uint32_t pid)
{
    for (size_t i = 0; i < l->nrss; i++)
        if (l->rss[i].pid == pid)
            return true;
    return false;
}

/* The GPU gauges from a live GPU sampler's latest figures (docs/serve.md): devices lost, or
 * whose figures are older than GPUSAMPLER_LIVE_STALE_NS, drop out. Called with l->mu held. */
static int gpu_metrics(struct live *l, struct buf *out)
{
    if (!l->o.gpu)
        return 0;
    struct gpu_live *g = xmalloc(sizeof(*g));
    gpusampler_latest(l->o.gpu, g);
    if (!g->on) {
        free(g);
        return 0;
    }
    uint64_t now = sampler_now_ns();
    bool fresh[PGPU_MAX_DEVS] = {false};
    uint32_t nfresh = 0;
    for (uint32_t i = 0; i < g->ndevs && i < PGPU_MAX_DEVS; i++) {
        const struct gpu_live_dev *d = &g->dev[i];
        fresh[i] = !d->gone && d->have && d->last.t_ns + GPUSAMPLER_LIVE_STALE_NS >= now;
        nfresh += fresh[i];
    }
    int rc = head(out, "crux_gpu_devices", "gauge", "NVIDIA GPUs whose figures crux reads now.");
    rc = rc ? rc : buf_printf(out, "crux_gpu_devices %u\n", nfresh);
    rc = rc ? rc
            : head(out, "crux_gpu_devices_lost_total", "counter",
                   "GPUs crux stopped reading: lost (NVML_ERROR_GPU_IS_LOST) or reads failing.");
    rc = rc ? rc : buf_printf(out, "crux_gpu_devices_lost_total %u\n", g->lost);
    enum { BUSY, SM, USED, TOTAL, POWER, CLOCK, NGAUGE };
    static const char *const gname[NGAUGE][2] = {
        {"crux_gpu_kernel_busy_ratio",
         "Share of the last NVML sample period in which any kernel ran (utilization.gpu; one "
         "tiny kernel reads as 1)."},
        {"crux_gpu_sm_active_ratio",
         "Share of the SMs busy (NVML GPM, Hopper and later only): how much of the chip the "
         "kernels used."},
        {"crux_gpu_memory_used_bytes", "Device memory used, in bytes."},
        {"crux_gpu_memory_total_bytes", "Device memory, in bytes."},
        {"crux_gpu_power_watts", "Power drawn, in watts."},
        {"crux_gpu_sm_clock_hz", "SM clock, in hertz."},
    };
    for (int m = 0; !rc && m < NGAUGE; m++) {
        rc = head(out, gname[m][0], "gauge", gname[m][1]);
        for (uint32_t i = 0; !rc && i < g->ndevs && i < PGPU_MAX_DEVS; i++) {
            const struct gpu_live_dev *d = &g->dev[i];
            const struct pgpu_point *pt = &d->last;
            if (!fresh[i])
                continue;
            double v = -1;
            if (m == BUSY && pt->util_gpu >= 0)
                v = pt->util_gpu / 100.0;
            else if (m == SM && pt->sm_active >= 0)
                v = pt->sm_active / 100.0;
            else if (m == USED && pt->mem_used != PGPU_NA_U64)
                v = (double)pt->mem_used;
            else if (m == TOTAL && d->mem_total)
                v = (double)d->mem_total;
            else if (m == POWER && pt->power_mw != PGPU_NA_U32)
                v = pt->power_mw / 1e3;
            else if (m == CLOCK && pt->sm_clock != PGPU_NA_U32)
                v = pt->sm_clock * 1e6;
            if (v >= 0)
                rc = gpu_line(out, gname[m][0], d, 0, v);
        }
    }
    /* per process: the target's only (other processes on a shared GPU are not ours to show) */
    static const char *const pname[2][2] = {
        {"crux_gpu_process_memory_used_bytes",
         "GPU memory used by each sampled process, in bytes."},
        {"crux_gpu_process_sm_utilization_ratio",
         "Share of time each sampled process had a kernel running (NVML process samples)."},
    };
    for (int m = 0; !rc && m < 2; m++) {
        rc = head(out, pname[m][0], "gauge", pname[m][1]);
        for (size_t k = 0; !rc && k < g->nprocs; k++) {
            const struct pgpu_proc *pp = &g->procs[k];
            if (pp->dev >= PGPU_MAX_DEVS || !fresh[pp->dev] || !is_target(l, pp->pid))
                continue;
            if (m == 0 && pp->mem_used != PGPU_NA_U64)
                rc = gpu_line(out, pname[m][0], &g->dev[pp->dev], pp->pid, (double)pp->mem_used);
            else if (m == 1 && pp->sm_util >= 0)
                rc = gpu_line(out, pname[m][0], &g->dev[pp->dev], pp->pid, pp->sm_util / 100.0);
        }
    }
    free(g);
    return rc;
}

int live_metrics(struct live *l, struct buf *out)
{
    static const char *const state[2] = {"working", "idle"};
    pthread_mutex_lock(&l->mu);
    int rc = head(out, "crux_samples_total", "counter",
                  "Thread-samples of the target, by time category and by whether the thread "
                  "was working (running or waiting for the GIL) or idle.");
    for (int i = 0; !rc && i < 2; i++)
        for (int c = 0; !rc && c < PCAT_N; c++)
            if (l->samples[i][c] || (c != CAT_NONE && !i))
                rc =
                    buf_printf(out, "crux_samples_total{category=\"%s\",state=\"%s\"} %llu\n",
                               sample_cat_names[c], state[i], (unsigned long long)l->samples[i][c]);
    rc = rc ? rc
            : head(out, "crux_evidence_samples_total", "counter",
                   "Thread-samples by what the kernel showed the thread doing: the library "
                   "its CPU was in, or what it was blocked on.");
    for (int k = 1; !rc && k < EV_N; k++)
        rc = buf_printf(out, "crux_evidence_samples_total{kind=\"%s\"} %llu\n", ev_kind_names[k],
                        (unsigned long long)l->evidence[k]);
    rc = rc ? rc
            : head(out, "crux_stage_samples_total", "counter",
                   "Thread-samples taken inside a request stage the crux agent reported.");
    for (size_t i = 0; !rc && i <= LIVE_MAX_STAGES; i++) {
        const struct live_stage *s = &l->stages[i];
        if (i >= l->nstages && i != LIVE_MAX_STAGES)
            continue;
        for (int k = 0; !rc && k < 2; k++) {
            if (!s->samples[k] && (i == LIVE_MAX_STAGES || k))
                continue;
            rc = buf_puts(out, "crux_stage_samples_total{stage=\"");
            rc = rc ? rc : label_value(out, s->name, strlen(s->name));
            rc = rc ? rc
                    : buf_printf(out, "\",state=\"%s\"} %llu\n", state[k],
                                 (unsigned long long)s->samples[k]);
        }
    }
    rc = rc ? rc
            : head(out, "crux_stage_duration_seconds", "histogram",
                   "Latency of each request stage the crux agent reported.");
    for (size_t i = 0; !rc && i <= LIVE_MAX_STAGES; i++)
        if ((i < l->nstages || i == LIVE_MAX_STAGES) && l->stages[i].lat.count)
            rc = hist(out, "crux_stage_duration_seconds", l->stages[i].name, &l->stages[i].lat);
    rc = rc ? rc
            : head(out, "crux_request_duration_seconds", "histogram",
                   "Latency of whole requests the crux agent reported.");
    rc = rc ? rc : hist(out, "crux_request_duration_seconds", NULL, &l->requests);
    rc = rc ? rc
            : head(out, "crux_target_resident_memory_bytes", "gauge",
                   "Resident memory of each sampled process, in bytes.");
    for (size_t i = 0; !rc && i < l->nrss; i++)
        rc = buf_printf(out, "crux_target_resident_memory_bytes{pid=\"%u\"} %llu\n", l->rss[i].pid,
                        (unsigned long long)l->rss[i].rss);
    const struct sampler_stats *st = &l->st;
    size_t open = 0;
    for (size_t k = 0; k < LIVE_MAX_WINDOWS; k++)
        open += l->win[k] != NULL;
    struct {
        const char *name, *type, *help;
        double v;
    } plain[] = {
        {"crux_sampler_rate_hz", "gauge", "Sampling rounds a second crux was asked for.",
         l->o.rate_hz},
        {"crux_sampler_rounds_total", "counter", "Sampling rounds taken.", (double)st->ticks},
        {"crux_sampler_late_rounds_total", "counter",
         "Rounds skipped because the one before overran its period.", (double)st->late_ticks},
        {"crux_sampler_thread_samples_total", "counter", "Thread stacks read.",
         (double)st->thread_samples},
        {"crux_sampler_dropped_total", "counter",
         "Thread stacks dropped as unreadable or inconsistent.", (double)st->errors},
        {"crux_sampler_busy_seconds_total", "counter", "Wall time spent inside rounds.",
         (double)st->busy_ns / 1e9},
        {"crux_sampler_cpu_seconds_total", "counter", "CPU time crux spent inside rounds.",
         (double)st->busy_cpu_ns / 1e9},
        {"crux_sampler_processes", "gauge",
         "Processes sampled so far (the target and its "
         "followed children).",
         (double)st->processes},
        {"crux_profile_stacks", "gauge", "Distinct stacks crux holds now.", (double)l->stacks},
        {"crux_profile_resets_total", "counter",
         "Times crux emptied its stack table to bound its memory (--max-stacks).",
         (double)l->resets},
        {"crux_pprof_profiles_total", "counter", "Profiles served at /debug/pprof/profile.",
         (double)l->profiles},
        {"crux_pprof_refused_total", "counter",
         "Profile requests refused because too many were in progress.", (double)l->refused},
        {"crux_pprof_windows_open", "gauge", "Profile windows in progress now.", (double)open},
    };
    for (size_t i = 0; !rc && i < sizeof(plain) / sizeof(plain[0]); i++) {
        rc = head(out, plain[i].name, plain[i].type, plain[i].help);
        rc = rc ? rc : buf_printf(out, "%s %.17g\n", plain[i].name, plain[i].v);
    }
    rc = rc ? rc : gpu_metrics(l, out);
    pthread_mutex_unlock(&l->mu);
    return rc ? rc : self_metrics(out);
}
