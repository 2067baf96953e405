// SPDX-License-Identifier: MIT
// What the GPU did, judged from the NVML figures of a recording (profile.gpu): starved,
// busy but inefficient (launch bound), memory-bandwidth bound, compute bound, or busy with no
// rule that fits. Each rule and threshold is in docs/gpu.md. The host side of the answer
// (which stage starves the GPU) is the CPU verdict's: analysis/verdict.c joins the two.
#ifndef CRUX_GPUVERDICT_H
#define CRUX_GPUVERDICT_H

#include <stdbool.h>
#include <stdint.h>

#include "profile/profile.h"

/* Thresholds, percent (docs/gpu.md says why each). */
#define GPUV_STARVED_BELOW 50.0    /* any-kernel-running share under this: starved */
#define GPUV_SATURATED_FROM 90.0   /* any-kernel-running share at least this: saturated */
#define GPUV_SM_POOR_BELOW 50.0    /* SM active under this while saturated: launch bound */
#define GPUV_DRAM_HIGH_FROM 60.0   /* DRAM bandwidth at least this ... */
#define GPUV_TENSOR_LOW_BELOW 30.0 /* ... with tensor pipes under this: memory-bandwidth bound */
#define GPUV_TENSOR_HIGH_FROM 50.0 /* tensor pipes at least this: compute bound */
#define GPUV_SM_HIGH_FROM 80.0     /* or SM active at least this: compute bound */

enum gpu_kind {
    GPUK_NONE = 0,    /* no GPU figures (or none in the window) */
    GPUK_IDLE = 1,    /* kernels rarely ran, and there was no work for them either */
    GPUK_STARVED = 2, /* kernels ran under half the time while work was there */
    GPUK_LAUNCH = 3,  /* busy but inefficient: saturated by small kernels, SMs mostly idle */
    GPUK_MEMORY = 4,  /* memory-bandwidth bound */
    GPUK_COMPUTE = 5, /* compute bound */
    GPUK_BUSY = 6,    /* busy; no finer rule could be applied or fits */
};

struct gpu_verdict {
    enum gpu_kind kind;
    uint32_t ndevs;       /* devices judged (those the target used, else all) */
    uint32_t npoints;     /* timeline points in the window */
    bool window_requests; /* the window is the time requests were in flight (record --load) */
    bool gpm;             /* GPM figures were there */
    double busy;          /* mean share of time any kernel ran, percent */
    double sm_active, occupancy, tensor, dram; /* GPM means, percent; -1 not known */
    double proc_sm;        /* the target's own SM utilization (per-process), percent; -1 */
    uint64_t proc_mem;     /* the target's peak GPU memory, bytes; 0 not known */
    char not_applied[192]; /* rules that could not be applied and why; "" none */
};

/* Judges the GPU figures of `p` into `v`. `host_waiting`: the CPU profile shows work for the
 * GPU to do (it is not mostly asleep waiting for work), used when no request window exists. */
void gpu_verdict_run(struct gpu_verdict *v, const struct profile *p, bool host_waiting);
/* Short name of a kind: "GPU starved", "busy but inefficient (launch bound)", ... */
const char *gpu_kind_label(enum gpu_kind k);
/* One sentence on the usual fix for a kind (static text). */
const char *gpu_kind_fix(enum gpu_kind k);
/* True when the GPU itself is the limit (launch, memory, compute bound or busy). */
bool gpu_kind_gpu_bound(enum gpu_kind k);
/* Writes "kernels ran 38% of the time (any kernel running, NVML) on 1 GPU; SM active 20%,
 * ..." into `out`. */
void gpu_verdict_figures(const struct gpu_verdict *v, char *out, size_t cap);

#endif
