// SPDX-License-Identifier: MIT
// The GPU sampler thread: NVML reads at 10 Hz into a series it owns, merged once at the end.
#include "sampler/gpusampler.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "target/gpu.h"
#include "util/hmap.h"

#define PROC_CAP 256
/* A device whose reads fail this many times in a row is given up (one note says so). */
#define MAX_FAILS 20

static uint64_t clock_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static float pct(double v)
{
    return v < 0 ? PGPU_NA : (float)v;
}

/* Per-device state of the thread. */
struct devstate {
    bool gone;      /* lost or given up */
    bool no_procs;  /* per-process figures refused or failing */
    unsigned fails; /* reads failed in a row */
};

struct gpu_thread {
    struct gpu_sampler *gs;
    struct gpu_nvml *nv;
    struct devstate dev[GPU_MAX_DEVICES];
    struct gpu_procfig procs[PROC_CAP];
    uint64_t t0; /* CLOCK_MONOTONIC at open: the notes' "at 3.2 s" */
};

static void note(struct gpu_thread *t, const char *what, const struct errbuf *eb)
{
    char msg[320];
    snprintf(msg, sizeof(msg), "%s: %s", what, eb->msg);
    pgpu_add_note(&t->gs->data, msg);
}

static void read_failed(struct gpu_thread *t, unsigned i, int rc, const struct errbuf *eb,
                        uint64_t now)
{
    struct devstate *d = &t->dev[i];
    char what[128];
    if (rc == ERR_PROC_GONE) {
        d->gone = true;
        snprintf(what, sizeof(what), "GPU %u lost after %.1f s, no figures from it after that", i,
                 (double)(now - t->t0) / 1e9);
    } else if (++d->fails >= MAX_FAILS) {
        d->gone = true;
        snprintf(what, sizeof(what), "GPU %u failed %u reads in a row, no figures after %.1f s", i,
                 d->fails, (double)(now - t->t0) / 1e9);
    } else {
        snprintf(what, sizeof(what), "GPU %u: some reads failed", i);
    }
    note(t, what, eb);
    if (d->gone && t->gs->live) {
        pthread_mutex_lock(&t->gs->lock);
        t->gs->latest.dev[i].gone = true;
        t->gs->latest.lost++;
        pthread_mutex_unlock(&t->gs->lock);
    }
}

/* Live mode: device `i`'s process figure `pp` replaces the one kept for its pid (a figure
 * the call did not give keeps its last value); figures not renewed for a while go. */
static void live_proc(struct gpu_live *lv, const struct pgpu_proc *pp)
{
    size_t k = 0;
    while (k < lv->nprocs && (lv->procs[k].dev != pp->dev || lv->procs[k].pid != pp->pid))
        k++;
    if (k == lv->nprocs) {
        if (lv->nprocs == GPUSAMPLER_LIVE_PROCS)
            return;
        lv->procs[lv->nprocs++] = *pp;
        return;
    }
    struct pgpu_proc *q = &lv->procs[k];
    q->t_ns = pp->t_ns;
    if (pp->sm_util >= 0)
        q->sm_util = pp->sm_util;
    if (pp->mem_util >= 0)
        q->mem_util = pp->mem_util;
    if (pp->mem_used != PGPU_NA_U64)
        q->mem_used = pp->mem_used;
}

static void live_prune(struct gpu_live *lv, uint64_t now)
{
    size_t k = 0;
    for (size_t i = 0; i < lv->nprocs; i++)
        if (lv->procs[i].t_ns + GPUSAMPLER_LIVE_STALE_NS >= now)
            lv->procs[k++] = lv->procs[i];
    lv->nprocs = k;
}

static void read_procs(struct gpu_thread *t, unsigned i, uint64_t now)
{
    struct errbuf eb = {{0}};
    size_t n = 0;
    int rc = gpu_procs(t->nv, i, t->procs, PROC_CAP, &n, &eb);
    if (rc) {
        t->dev[i].no_procs = true; /* asking again would give the same answer */
        note(t,
             rc == ERR_PERM ? "per-process GPU figures not allowed (run crux as root or as the "
                              "target's user)"
                            : "per-process GPU figures not read",
             &eb);
    }
    for (size_t k = 0; k < n; k++) {
        const struct gpu_procfig *f = &t->procs[k];
        struct pgpu_proc pp = {.t_ns = now,
                               .dev = i,
                               .pid = f->pid,
                               .sm_util = pct(f->sm_util),
                               .mem_util = pct(f->mem_util),
                               .mem_used = f->mem_used};
        if (t->gs->live) {
            pthread_mutex_lock(&t->gs->lock);
            live_proc(&t->gs->latest, &pp);
            pthread_mutex_unlock(&t->gs->lock);
        } else {
            pgpu_add_proc(&t->gs->data, &pp);
        }
    }
}

/* One round: every device that is still there. Returns false when none is. */
static bool round_once(struct gpu_thread *t)
{
    bool any = false;
    for (unsigned i = 0; i < gpu_count(t->nv); i++) {
        if (t->dev[i].gone)
            continue;
        uint64_t now = clock_ns(CLOCK_MONOTONIC);
        struct gpu_reading r;
        struct errbuf eb = {{0}};
        int rc = gpu_read(t->nv, i, &r, &eb);
        if (rc) {
            read_failed(t, i, rc, &eb, now);
            any |= !t->dev[i].gone;
            continue;
        }
        any = true;
        t->dev[i].fails = 0;
        struct pgpu_point pt = pgpu_point_empty(now, i);
        pt.util_gpu = pct(r.util_gpu);
        pt.util_mem = pct(r.util_mem);
        pt.sm_active = pct(r.sm_active);
        pt.sm_occupancy = pct(r.sm_occupancy);
        pt.tensor_active = pct(r.tensor_active);
        pt.dram_bw = pct(r.dram_bw);
        pt.mem_used = r.mem_used;
        pt.throttle = r.throttle;
        pt.sm_clock = r.sm_clock;
        pt.power_mw = r.power_mw;
        pt.pcie_tx_kbs = r.pcie_tx_kbs;
        pt.pcie_rx_kbs = r.pcie_rx_kbs;
        if (t->gs->live) {
            pthread_mutex_lock(&t->gs->lock);
            t->gs->latest.dev[i].last = pt;
            t->gs->latest.dev[i].have = true;
            live_prune(&t->gs->latest, now);
            pthread_mutex_unlock(&t->gs->lock);
        } else {
            pgpu_add_point(&t->gs->data, &pt);
        }
        if (!t->dev[i].no_procs)
            read_procs(t, i, now);
    }
    return any;
}

static void describe(struct gpu_thread *t)
{
    struct pgpu *g = &t->gs->data;
    char driver[96], nvml[96];
    gpu_versions(t->nv, driver, sizeof(driver), nvml, sizeof(nvml));
    pgpu_set_str(&g->driver, driver[0] ? driver : NULL);
    pgpu_set_str(&g->nvml_version, nvml[0] ? nvml : NULL);
    for (unsigned i = 0; i < gpu_count(t->nv); i++) {
        struct gpu_devinfo di;
        struct errbuf eb = {{0}};
        if (gpu_devinfo(t->nv, i, &di, &eb)) {
            note(t, "GPU facts not read", &eb);
            snprintf(di.name, sizeof(di.name), "GPU %u", i);
            di.uuid[0] = '\0';
            di.mem_total = 0;
            di.gpm = false;
        }
        int k = pgpu_add_dev(g, i, di.name, di.uuid[0] ? di.uuid : NULL, di.mem_total);
        if (k >= 0)
            g->devs[k].gpm = di.gpm;
        if (t->gs->live && i < PGPU_MAX_DEVS) {
            pthread_mutex_lock(&t->gs->lock);
            struct gpu_live_dev *ld = &t->gs->latest.dev[i];
            ld->index = i;
            snprintf(ld->name, sizeof(ld->name), "%s", di.name);
            ld->mem_total = di.mem_total;
            ld->gpm = di.gpm;
            t->gs->latest.ndevs = i + 1;
            pthread_mutex_unlock(&t->gs->lock);
        }
    }
    g->on = true;
    pthread_mutex_lock(&t->gs->lock);
    t->gs->latest.on = true;
    pthread_mutex_unlock(&t->gs->lock);
}

/* Waits until the next round is due or stop is set; returns true to go on. */
static bool wait_next(struct gpu_sampler *gs, uint64_t due_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(due_ns / 1000000000ull),
                          .tv_nsec = (long)(due_ns % 1000000000ull)};
    pthread_mutex_lock(&gs->lock);
    while (!gs->stop)
        if (pthread_cond_timedwait(&gs->wake, &gs->lock, &ts) == ETIMEDOUT)
            break;
    bool go = !gs->stop;
    pthread_mutex_unlock(&gs->lock);
    return go;
}

static void *run(void *arg)
{
    struct gpu_thread t = {.gs = arg};
    struct gpu_sampler *gs = t.gs;
    struct errbuf eb = {{0}};
    int rc = gpu_open(&t.nv, &eb);
    if (rc) {
        /* no library: no driver, nothing to say; anything else is worth one note */
        if (rc != ERR_NOT_FOUND)
            note(&t, "GPU sampling off", &eb);
        return NULL;
    }
    t.t0 = clock_ns(CLOCK_MONOTONIC);
    describe(&t);
    uint64_t period = (uint64_t)(1e9 / gs->rate_hz), due = t.t0;
    for (;;) {
        uint64_t c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        bool any = round_once(&t);
        gs->round_cpu_ns += clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
        gs->rounds++;
        if (!any)
            break;
        due += period;
        uint64_t now = clock_ns(CLOCK_MONOTONIC);
        if (due < now)
            due = now; /* a slow driver call: skip the missed rounds rather than burst */
        if (!wait_next(gs, due))
            break;
    }
    gpu_close(t.nv);
    return NULL;
}

static void start(struct gpu_sampler *gs, double rate_hz, bool live)
{
    memset(gs, 0, sizeof(*gs));
    gs->live = live;
    pgpu_init(&gs->data);
    gs->rate_hz = rate_hz > 0 ? rate_hz : GPUSAMPLER_RATE_HZ;
    pthread_mutex_init(&gs->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&gs->wake, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&gs->thread, NULL, run, gs);
    gs->started = rc == 0;
    if (!gs->started)
        pgpu_add_note(&gs->data, "GPU sampling off: cannot start its thread");
}

void gpusampler_start(struct gpu_sampler *gs, double rate_hz)
{
    start(gs, rate_hz, false);
}

void gpusampler_start_live(struct gpu_sampler *gs, double rate_hz)
{
    start(gs, rate_hz, true);
}

void gpusampler_latest(struct gpu_sampler *gs, struct gpu_live *out)
{
    pthread_mutex_lock(&gs->lock);
    *out = gs->latest;
    pthread_mutex_unlock(&gs->lock);
}

/* Keeps the process figures of sampled processes only; rebases every time. */
static void rebase(struct pgpu *g, uint64_t start_ns, const struct profile *p)
{
    for (size_t i = 0; i < g->npts; i++)
        g->pts[i].t_ns = g->pts[i].t_ns > start_ns ? g->pts[i].t_ns - start_ns : 0;
    struct hmap pids;
    hmap_init(&pids);
    hmap_put(&pids, (uint64_t)p->meta.pid + 1, 1);
    for (size_t i = 0; i < p->nprocs; i++)
        hmap_put(&pids, (uint64_t)p->procs[i].pid + 1, 1);
    size_t k = 0;
    for (size_t i = 0; i < g->nprocs; i++) {
        uint64_t v;
        if (!hmap_get(&pids, (uint64_t)g->procs[i].pid + 1, &v))
            continue;
        g->procs[k] = g->procs[i];
        g->procs[k].t_ns = g->procs[k].t_ns > start_ns ? g->procs[k].t_ns - start_ns : 0;
        k++;
    }
    g->nprocs = k;
    hmap_fini(&pids);
}

static void join(struct gpu_sampler *gs)
{
    if (gs->started) {
        pthread_mutex_lock(&gs->lock);
        gs->stop = true;
        pthread_cond_signal(&gs->wake);
        pthread_mutex_unlock(&gs->lock);
        pthread_join(gs->thread, NULL);
    }
    pthread_cond_destroy(&gs->wake);
    pthread_mutex_destroy(&gs->lock);
}

void gpusampler_finish(struct gpu_sampler *gs, uint64_t start_ns, struct profile *p)
{
    join(gs);
    rebase(&gs->data, start_ns, p);
    pgpu_move(&p->gpu, &gs->data);
}

void gpusampler_stop(struct gpu_sampler *gs)
{
    join(gs);
    pgpu_fini(&gs->data);
}
