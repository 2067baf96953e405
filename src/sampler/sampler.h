// SPDX-License-Identifier: MIT
// The sampling loop: a fixed-rate clock, one pyreader round per tick, and the conversion of
// each thread's stack into the profile (filters for idle threads and the GIL holder).
#ifndef CRUX_SAMPLER_H
#define CRUX_SAMPLER_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cpython/pyruntime.h"
#include "profile/profile.h"
#include "stages/stagestats.h"
#include "util/err.h"

struct sampler_stats {
    uint64_t ticks;          /* rounds attempted */
    uint64_t late_ticks;     /* rounds skipped because the previous one overran */
    uint64_t thread_samples; /* stacks read successfully (kept or filtered) */
    uint64_t kept;           /* samples added to the profile's views (idle ones with --idle) */
    uint64_t recorded;       /* samples recorded, idle ones included (for the verdict) */
    uint64_t errors;         /* thread-samples dropped as unreadable or inconsistent */
    uint64_t elapsed_ns;
    uint64_t start_ns;      /* CLOCK_MONOTONIC when sampling began: samples' t_ns count from it */
    uint64_t busy_ns;       /* wall time spent inside rounds */
    uint64_t busy_cpu_ns;   /* CPU time crux spent inside rounds (estimated from 1 in 16) */
    uint64_t thread_cpu_ns; /* the sampling thread's CPU time in all, wake-ups included */
    uint64_t statm_reads;   /* reads of /proc/PID/statm (resident memory) */
    uint64_t alive_checks;  /* kill(pid, 0) or waitpid calls asking whether the target runs */
    uint64_t read_ns;       /* wall time reading stacks (the rest: /proc states, profile) */
    uint64_t processes;     /* processes sampled (the target and its followed children) */
    uint64_t perf_samples, perf_lost; /* kernel samples behind the time categories */
    uint64_t perf_switches;           /* context-switch records read (no interrupt each) */
    uint64_t state_reads;             /* /proc/PID/task/TID/stat reads for thread states */
    uint64_t states_reused; /* states (and syscall reads) not read: not switched in since */
    uint64_t syscall_reads; /* /proc/PID/task/TID/syscall reads for off-CPU categories */
    uint64_t native_samples, native_failed, native_mismatch; /* --native: stops tried */
    uint64_t native_reused; /* --native: stacks of threads that had not run, no stop */
    uint64_t native_stop_median_ns, native_stop_p99_ns; /* one thread stopped */
    uint64_t staged;                                    /* samples tagged by stage */
    /* Python thread names: registry reads, the target reads they made, time they took */
    uint64_t names_refreshes, names_syscalls, names_ns;
    /* --async: rounds that read tasks, tasks read, tasks dropped (torn), target reads, time */
    uint64_t async_rounds, async_tasks, async_dropped, async_reads, async_ns, async_cpu_ns;
    /* --async's cache: rounds that walked every task, tasks re-checked and re-walked, CPU of
     * the registry (and running task), the checks and the walks */
    uint64_t async_full, async_checked, async_rewalked, async_reg_ns, async_check_ns, async_walk_ns;
    bool async_unsupported; /* --async asked on a version without task reading */
};

typedef void (*sampler_progress_fn)(const struct sampler_stats *st, void *arg);

/* crux serve: takes what the last rounds added to `p` (its kept samples, memory points and
 * spans, and those of sampler_opts.spans) out of it. `now_ns` is the sampler's clock, as
 * samples' t_ns: every sample taken before it has been added. Returns true when it emptied
 * the profile (profile_clear): the sampler then forgets the ids it cached. */
typedef bool (*sampler_drain_fn)(struct profile *p, const struct sampler_stats *st, uint64_t now_ns,
                                 void *arg);

struct sampler_opts {
    double rate_hz;
    double duration_s;        /* 0: until the target exits or *stop is set */
    bool idle;                /* keep samples of threads that are not running */
    bool gil_only;            /* keep only the GIL holder */
    bool threads;             /* root each stack with a thread frame */
    bool blocking;            /* stop the threads (ptrace) while reading them */
    bool categories;          /* time category per sample (perf events where permitted) */
    bool memory;              /* resident memory timeline and growth attribution */
    bool subprocesses;        /* follow child processes; stacks rooted at a process frame */
    bool native;              /* native frames merged in (each thread stopped alone, briefly) */
    bool stages;              /* tag samples with the stage the crux agent reports (if imported) */
    bool columns;             /* Python frames keep their start column (3.11+; profile.h) */
    bool async_tasks;         /* asyncio task stacks (docs/async.md) */
    bool allocations;         /* record --allocations: look for the agent's ring every round */
    struct stagestats *spans; /* when set (with stages), every span of the agents' rings */
    uint64_t *spans_lost;     /* with spans: records the rings lost (overwritten) */
    /* record --load: the load generator's count of requests in flight; the samples of a
     * round with none are flagged SAMPLE_NO_REQUEST (the server had no request to serve) */
    const _Atomic uint32_t *load_inflight;
    uint32_t max_depth;
    volatile sig_atomic_t *stop; /* set asynchronously to end the loop */
    pid_t child;                 /* launched child to watch for exit (0 in attach mode) */
    int *child_status;           /* receives the child's wait status when it exits */
    bool *child_exited;
    sampler_progress_fn progress; /* called about four times a second; may be NULL */
    void *progress_arg;
    sampler_drain_fn drain; /* called between rounds every drain_ns and at the end; may be NULL */
    void *drain_arg;
    uint64_t drain_ns; /* 0: 100 ms */
};

/* Samples process `rt->pid` (and, with o->subprocesses, its descendants) into `p` until the
 * duration elapses, the process exits or *stop is set. A process that exits is not an error
 * (returns 0 with what was collected).
 * Returns ERR_PERM and similar only when no sample could be taken at all. */
int sampler_run(const struct pyruntime *rt, const struct sampler_opts *o, struct profile *p,
                struct sampler_stats *st, struct errbuf *eb) MUST_CHECK;

/* Monotonic time in nanoseconds. */
uint64_t sampler_now_ns(void);

#endif
