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

struct gpu_sampler {
    pthread_t thread;
    bool started;
    pthread_mutex_t lock; /* guards stop (the thread waits on `wake` between rounds) */
    pthread_cond_t wake;
    bool stop;
    double rate_hz;
    struct pgpu data; /* the thread's until joined; times are CLOCK_MONOTONIC ns until finish */
    uint64_t rounds;  /* rounds taken (every device read once) */
    uint64_t round_cpu_ns; /* crux's CPU time in those rounds (the thread's own clock) */
};

/* Starts the thread, sampling at `rate_hz` (<= 0: GPUSAMPLER_RATE_HZ). Never fails in a way
 * the caller must handle: a thread that cannot start leaves a note for gpusampler_finish. */
void gpusampler_start(struct gpu_sampler *gs, double rate_hz);
/* Stops and joins the thread, then moves what it read into p->gpu with times rebased to the
 * samples' clock (`start_ns`, CLOCK_MONOTONIC, as sampler_stats.start_ns), keeping the
 * per-process figures of the processes the profile sampled (p->procs, p->meta.pid) only. */
void gpusampler_finish(struct gpu_sampler *gs, uint64_t start_ns, struct profile *p);

#endif
