// SPDX-License-Identifier: MIT
// What crux serve shares between its one sampler and the HTTP threads: the profile windows
// that /debug/pprof/profile requests are waiting for, and the running totals /metrics shows.
// The sampler's thread feeds it between rounds (live_drain, a sampler_drain_fn); everything
// else happens on HTTP threads. One mutex guards it all; no call holds it for long.
#ifndef CRUX_LIVE_H
#define CRUX_LIVE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "profile/profile.h"
#include "sampler/gpusampler.h"
#include "sampler/sampler.h"
#include "stages/stagestats.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/hmap.h"

/* Windows at once: more profile requests are refused (503) until one ends. */
#define LIVE_MAX_WINDOWS 16
/* Samples a window keeps one by one (for exact thread, stage and category labels): 8 MB. Past
 * it the window still counts every sample, per stack and category. */
#define LIVE_WINDOW_SAMPLES ((size_t)256 * 1024)
/* Stage names /metrics tells apart; later ones are counted under "other". */
#define LIVE_MAX_STAGES 64
/* Processes whose resident memory /metrics shows (the target and its followed children). */
#define LIVE_MAX_PROCS 256
/* Upper bounds of the latency histograms' buckets, in seconds (the +Inf bucket follows). */
#define LIVE_NBUCKETS 14

struct live_window;

/* One latency histogram, Prometheus-style (cumulative buckets written at scrape time). */
struct live_hist {
    uint64_t n[LIVE_NBUCKETS + 1]; /* per bucket, not cumulative; the last is +Inf */
    uint64_t count;
    uint64_t sum_ns;
};

struct live_stage {
    char name[64];
    uint64_t samples[2]; /* [0] samples of threads working in it, [1] of idle ones */
    struct live_hist lat;
};

struct live_rss {
    uint32_t pid;
    uint64_t rss;
    uint64_t t_ns; /* sampler clock of the last point */
};

struct live_opts {
    double rate_hz;
    uint64_t max_stacks; /* the shared profile is emptied past this many stacks */
    const char *command; /* for the profiles' meta: "--pid N" or the launched command */
    const char *python_version;
    bool categories;
    bool idle;                /* windows keep idle threads' samples (--idle) */
    struct stagestats *spans; /* the sampler's span sink, emptied at each drain */
    struct gpu_sampler *gpu;  /* a live GPU sampler whose latest figures /metrics shows; NULL */
};

struct live {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct live_opts o;
    bool started;        /* the sampler drained once: start_mono is known */
    bool finished;       /* the sampler returned: no more samples will come */
    uint64_t start_mono; /* CLOCK_MONOTONIC of the sampler's time 0 */
    uint64_t now_ns;     /* sampler clock: every sample before it has been drained */
    struct live_window *win[LIVE_MAX_WINDOWS];
    /* totals for /metrics; they only grow */
    uint64_t samples[2][PCAT_N]; /* [idle][category] */
    uint64_t evidence[EV_N];
    struct live_stage stages[LIVE_MAX_STAGES + 1]; /* the last is "other" */
    size_t nstages;
    struct hmap stage_of;      /* shared string id + 1 -> index in stages */
    struct live_hist requests; /* whole requests (the agent's request spans) */
    struct live_rss rss[LIVE_MAX_PROCS];
    size_t nrss;
    struct sampler_stats st;    /* the sampler's, as of the last drain */
    uint64_t resets;            /* times the shared profile was emptied */
    uint64_t stacks;            /* stacks in the shared profile now */
    uint64_t profiles, refused; /* profile windows served; refused as too many */
};

/* Initializes `l` with options `o` (copied; the strings must outlive `l`). */
void live_init(struct live *l, const struct live_opts *o);
/* Releases everything. No window may be in use. */
void live_fini(struct live *l);

/* The sampler_drain_fn (arg: the struct live): moves the new samples into the waiting
 * windows and the totals, ends the windows whose time is over, and empties the shared profile
 * when it holds more than max_stacks stacks. */
bool live_drain(struct profile *p, const struct sampler_stats *st, uint64_t now_ns, void *arg);
/* The sampler returned: windows still open end with what they have. */
void live_finish(struct live *l);

/* Opens a window of `seconds` from now. NULL when LIVE_MAX_WINDOWS are open or the sampler
 * has finished (*why says which). */
struct live_window *live_window_open(struct live *l, double seconds, const char **why);
/* Waits until window `w` is over (or the sampler finished), closes it and appends its
 * profile to `out` as gzipped pprof. */
int live_window_pprof(struct live *l, struct live_window *w, struct buf *out) MUST_CHECK;

/* The profile window `w` has collected so far (for tests; take it only while no drain runs). */
const struct profile *live_window_profile(const struct live_window *w);

/* Appends the Prometheus text exposition (version 0.0.4) of the totals to `out`. */
int live_metrics(struct live *l, struct buf *out) MUST_CHECK;

#endif
