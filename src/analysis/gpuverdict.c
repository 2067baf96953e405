// SPDX-License-Identifier: MIT
// The GPU rules: averages of the NVML timeline over the window work was there, then the first
// rule that fits (docs/gpu.md).
#include "analysis/gpuverdict.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/hmap.h"
#include "util/xalloc.h"

static const char *const labels[] = {
    [GPUK_NONE] = "no GPU figures",
    [GPUK_IDLE] = "GPU idle (no work for it)",
    [GPUK_STARVED] = "GPU starved",
    [GPUK_LAUNCH] = "GPU busy but inefficient (small kernels, launch bound)",
    [GPUK_MEMORY] = "GPU memory-bandwidth bound",
    [GPUK_COMPUTE] = "GPU compute bound",
    [GPUK_BUSY] = "GPU busy",
};

static const char *const fixes[] = {
    [GPUK_NONE] = "",
    [GPUK_IDLE] = "Not a GPU problem: the program had no work for the GPU; send it more.",
    [GPUK_STARVED] = "Fix the host path that feeds the GPU: move preprocessing to DataLoader "
                     "workers or another process, overlap it with the GPU (prefetch, pinned "
                     "memory, non_blocking copies), and batch more work per launch.",
    [GPUK_LAUNCH] = "Launch fewer, larger kernels: batch requests, fuse small ops "
                    "(torch.compile), or capture the step in a CUDA graph.",
    [GPUK_MEMORY] = "Move fewer bytes: fuse elementwise ops (torch.compile), use lower "
                    "precision or quantized weights (bf16, int8), and larger batches so that "
                    "each weight read does more work.",
    [GPUK_COMPUTE] = "The GPU is doing real work: use tensor-core dtypes (bf16/fp16, TF32), "
                     "quantize, a smaller model, or more GPUs.",
    [GPUK_BUSY] = "The GPU is busy; GPM figures (Hopper and later) would tell compute from "
                  "memory or launch bound.",
};

const char *gpu_kind_label(enum gpu_kind k)
{
    return (unsigned)k <= GPUK_BUSY ? labels[k] : "?";
}

const char *gpu_kind_fix(enum gpu_kind k)
{
    return (unsigned)k <= GPUK_BUSY ? fixes[k] : "";
}

bool gpu_kind_gpu_bound(enum gpu_kind k)
{
    return k == GPUK_LAUNCH || k == GPUK_MEMORY || k == GPUK_COMPUTE || k == GPUK_BUSY;
}

/* Request intervals merged, sorted by start. Returns their count; *out is new (caller frees). */
static int cmp_iv(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

static size_t req_windows(const struct profile *p, uint64_t **out)
{
    uint64_t *iv = xmalloc((p->nreqs + 1) * 2 * sizeof(*iv));
    for (size_t i = 0; i < p->nreqs; i++) {
        iv[2 * i] = p->reqs[i].start_ns;
        iv[2 * i + 1] = p->reqs[i].end_ns;
    }
    qsort(iv, p->nreqs, 2 * sizeof(*iv), cmp_iv);
    size_t k = 0;
    for (size_t i = 0; i < p->nreqs; i++) {
        if (k && iv[2 * i] <= iv[2 * (k - 1) + 1]) {
            if (iv[2 * i + 1] > iv[2 * (k - 1) + 1])
                iv[2 * (k - 1) + 1] = iv[2 * i + 1];
            continue;
        }
        iv[2 * k] = iv[2 * i];
        iv[2 * k + 1] = iv[2 * i + 1];
        k++;
    }
    *out = iv;
    return k;
}

static bool in_windows(const uint64_t *iv, size_t n, uint64_t t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) { /* first window ending at or after t */
        size_t mid = (lo + hi) / 2;
        if (iv[2 * mid + 1] < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && iv[2 * lo] <= t;
}

/* Devices the target's processes were seen on (bit i: pgpu.devs[i]); 0 when none were. */
static uint32_t target_devices(const struct profile *p, double *proc_sm, uint64_t *proc_mem)
{
    uint32_t mask = 0;
    double sum = 0;
    uint64_t n = 0;
    *proc_mem = 0;
    for (size_t i = 0; i < p->gpu.nprocs; i++) {
        const struct pgpu_proc *pp = &p->gpu.procs[i];
        if (pp->dev < 32)
            mask |= 1u << pp->dev;
        if (pp->sm_util >= 0) {
            sum += pp->sm_util;
            n++;
        }
        if (pp->mem_used != PGPU_NA_U64 && pp->mem_used > *proc_mem)
            *proc_mem = pp->mem_used;
    }
    *proc_sm = n ? sum / (double)n : -1;
    return mask;
}

struct sums {
    double v[5]; /* busy, sm_active, occupancy, tensor, dram */
    uint64_t n[5];
};

static void add(struct sums *s, int k, float x)
{
    if (x >= 0) {
        s->v[k] += x;
        s->n[k]++;
    }
}

static double mean(const struct sums *s, int k)
{
    return s->n[k] ? s->v[k] / (double)s->n[k] : -1;
}

/* The first rule that fits, from the means. */
static enum gpu_kind decide(struct gpu_verdict *v, bool work)
{
    if (v->busy < GPUV_STARVED_BELOW)
        return work ? GPUK_STARVED : GPUK_IDLE;
    if (!v->gpm) {
        snprintf(v->not_applied, sizeof(v->not_applied),
                 "busy but inefficient, memory-bandwidth bound and compute bound need GPM "
                 "figures (SM active, tensor, DRAM), which this GPU or driver does not give "
                 "(Hopper and later do)");
        return GPUK_BUSY;
    }
    if (v->busy >= GPUV_SATURATED_FROM && v->sm_active >= 0 && v->sm_active < GPUV_SM_POOR_BELOW)
        return GPUK_LAUNCH;
    if (v->dram >= GPUV_DRAM_HIGH_FROM && v->tensor >= 0 && v->tensor < GPUV_TENSOR_LOW_BELOW)
        return GPUK_MEMORY;
    if (v->tensor >= GPUV_TENSOR_HIGH_FROM || v->sm_active >= GPUV_SM_HIGH_FROM)
        return GPUK_COMPUTE;
    return GPUK_BUSY;
}

void gpu_verdict_run(struct gpu_verdict *v, const struct profile *p, bool host_waiting)
{
    memset(v, 0, sizeof(*v));
    v->sm_active = v->occupancy = v->tensor = v->dram = v->proc_sm = -1;
    const struct pgpu *g = &p->gpu;
    if (!g->on || !g->npts)
        return;
    uint32_t mask = target_devices(p, &v->proc_sm, &v->proc_mem);
    uint64_t *iv = NULL;
    size_t niv = p->nreqs ? req_windows(p, &iv) : 0;
    v->window_requests = niv > 0;
    struct sums s = {{0}, {0}};
    uint32_t seen = 0;
    for (size_t i = 0; i < g->npts; i++) {
        const struct pgpu_point *pt = &g->pts[i];
        if (mask && (pt->dev >= 32 || !(mask & (1u << pt->dev))))
            continue;
        if (niv && !in_windows(iv, niv, pt->t_ns))
            continue;
        if (pt->util_gpu < 0)
            continue;
        v->npoints++;
        if (pt->dev < 32)
            seen |= 1u << pt->dev;
        add(&s, 0, pt->util_gpu);
        add(&s, 1, pt->sm_active);
        add(&s, 2, pt->sm_occupancy);
        add(&s, 3, pt->tensor_active);
        add(&s, 4, pt->dram_bw);
    }
    free(iv);
    if (!v->npoints)
        return;
    v->ndevs = (uint32_t)__builtin_popcount(seen);
    v->busy = mean(&s, 0);
    v->sm_active = mean(&s, 1);
    v->occupancy = mean(&s, 2);
    v->tensor = mean(&s, 3);
    v->dram = mean(&s, 4);
    v->gpm = v->sm_active >= 0 || v->tensor >= 0 || v->dram >= 0;
    v->kind = decide(v, v->window_requests || host_waiting);
}

void gpu_verdict_figures(const struct gpu_verdict *v, char *out, size_t cap)
{
    int n =
        snprintf(out, cap, "kernels ran %.0f%% of the time (any kernel running, NVML) on %u GPU%s",
                 v->busy, v->ndevs, v->ndevs == 1 ? "" : "s");
    if (n < 0 || (size_t)n >= cap)
        return;
    size_t k = (size_t)n;
    if (v->gpm)
        n = snprintf(out + k, cap - k,
                     "; SM active %.0f%%, SM occupancy %.0f%%, tensor %.0f%%, "
                     "DRAM bandwidth %.0f%% (GPM)",
                     v->sm_active, v->occupancy, v->tensor, v->dram);
    else
        n = snprintf(out + k, cap - k, "; no GPM figures (SM active, tensor, DRAM)");
    if (n < 0 || (size_t)n >= cap - k)
        return;
    k += (size_t)n;
    if (v->proc_sm >= 0)
        snprintf(out + k, cap - k, "; the target's own SM utilization %.0f%%", v->proc_sm);
}
