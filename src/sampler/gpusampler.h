// SPDX-License-Identifier: MIT
// The GPU sampler: one thread beside the stack sampler that reads every NVIDIA GPU through
// NVML (target/gpu.h) about ten times a second, into a series it owns until gpusampler_finish
// hands it to the profile. The target process is never touched: every NVML call happens in
// crux. Any failure (no library, no device, no permission, a device lost, a call failing)
// becomes one note in the series and never stops the stack sampler.
#ifndef CRUX_GPUSAMPLER_H
#define CRUX_GPUSAMPLER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "profile/gpuseries.h"
#include "profile/profile.h"

#define GPUSAMPLER_RATE_HZ 10.0
/* Per-process figures a live sampler keeps (the latest per device and process). */
#define GPUSAMPLER_LIVE_PROCS 64
/* A live figure not renewed for this long is dropped (a device failing, a process gone). */
#define GPUSAMPLER_LIVE_STALE_NS 5000000000ull

/* One device as a live sampler last saw it. */
struct gpu_live_dev {
    uint32_t index; /* NVML index */
    char name[96];
    uint64_t mem_total; /* bytes; 0 unknown */
    bool gpm;
    bool gone;              /* lost or given up: no figures from it any more */
    bool have;              /* `last` holds a reading */
    struct pgpu_point last; /* t_ns on CLOCK_MONOTONIC */
};

/* The latest figures of every device, for crux serve: fixed size, so a sampler that runs for
 * days holds no more than this. */
struct gpu_live {
    bool on; /* NVML answered and the devices are listed */
    uint32_t ndevs;
    struct gpu_live_dev dev[PGPU_MAX_DEVS];
    struct pgpu_proc procs[GPUSAMPLER_LIVE_PROCS]; /* latest per (dev, pid); t_ns monotonic */
    size_t nprocs;
    uint32_t lost; /* devices given up (lost, or reads failing) */
};

struct gpu_sampler {
    pthread_t thread;
    bool started;
    pthread_mutex_t lock; /* guards stop (the thread waits on `wake` between rounds) */
    pthread_cond_t wake;
    bool stop;
    double rate_hz;
    struct pgpu data; /* the thread's until joined; times are CLOCK_MONOTONIC ns until finish */
    uint64_t rounds;  /* rounds taken (every device read once) */
    uint64_t round_cpu_ns;  /* crux's CPU time in those rounds (the thread's own clock) */
    bool live;              /* keep only the latest figures (in `latest`), not a series */
    struct gpu_live latest; /* live mode; guarded by `lock` */
};

/* Starts the thread, sampling at `rate_hz` (<= 0: GPUSAMPLER_RATE_HZ). Never fails in a way
 * the caller must handle: a thread that cannot start leaves a note for gpusampler_finish. */
void gpusampler_start(struct gpu_sampler *gs, double rate_hz);
/* Stops and joins the thread, then moves what it read into p->gpu with times rebased to the
 * samples' clock (`start_ns`, CLOCK_MONOTONIC, as sampler_stats.start_ns), keeping the
 * per-process figures of the processes the profile sampled (p->procs, p->meta.pid) only. */
void gpusampler_finish(struct gpu_sampler *gs, uint64_t start_ns, struct profile *p);

/* Starts the thread in live mode (crux serve): the same reads, but only each device's latest
 * figures are kept, so memory stays bounded however long it runs. Read them with
 * gpusampler_latest; end with gpusampler_stop. */
void gpusampler_start_live(struct gpu_sampler *gs, double rate_hz);
/* Copies the latest figures into `out` (any thread; takes the sampler's lock briefly). */
void gpusampler_latest(struct gpu_sampler *gs, struct gpu_live *out);
/* Stops and joins the thread and releases what it holds (live mode, or a sampler whose
 * figures are not wanted). */
void gpusampler_stop(struct gpu_sampler *gs);

#endif
