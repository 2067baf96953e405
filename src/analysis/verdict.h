// SPDX-License-Identifier: MIT
// The bottleneck verdict: time per stage and per bottleneck type as shares of wall time with
// confidence intervals, the dominant type (or "no clear bottleneck"), the functions and lines
// behind it, hottest functions and lines with their category split, and per-thread figures.
#ifndef CRUX_VERDICT_H
#define CRUX_VERDICT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "analysis/gpuverdict.h"
#include "analysis/memverdict.h"
#include "analysis/stages.h"
#include "profile/profile.h"
#include "util/buf.h"

/* A verdict needs at least this many ticks of wall time (below: "too few samples"). */
#define VERDICT_MIN_WALL 50.0
/* The dominant type must hold at least this share of wall time ... */
#define VERDICT_MIN_SHARE 0.40
/* ... with the lower end of its 95% interval at least this. */
#define VERDICT_MIN_LOWER 0.33

/* A share of wall time with its 95% Wilson score interval. */
struct share {
    double w; /* weight (ticks of wall time) */
    double p, lo, hi;
};

struct candidate {
    enum btype type;
    uint32_t stage; /* the stage holding most of the type's time */
    struct share s;
    struct share stage_s; /* that stage's own share */
    uint32_t ev;          /* the evidence (profile.evs index + 1) carrying most of it; 0 none */
    double ev_share;      /* that evidence's share of the type's time */
};

/* Per function (line < 0) or per line: samples (thread-samples) with the category split. */
struct hot {
    uint32_t frame;       /* a representative frame (name, file, kind; line for lines) */
    uint64_t self;        /* samples where it is the leaf */
    uint64_t total;       /* samples with it anywhere on the stack */
    double wself, wtotal; /* the same in ticks of wall time (the tables rank by wself) */
    uint64_t cat[PCAT_N]; /* self samples by category (enum sample_cat) */
    uint32_t stage;       /* stage most of its self time falls in */
    double vw;            /* wall weight inside the verdict's type (top lines behind it) */
};

struct thread_stat {
    uint32_t pid, tid;
    uint64_t samples, running, idle;
    uint64_t cat[PCAT_N];
    uint64_t first_ns, last_ns;
    uint32_t top_stage;
    double top_stage_share; /* of this thread's samples */
};

struct analysis {
    uint32_t nstages;         /* rules' stages + stage tags seen in samples */
    const char **stage_names; /* stage id -> name (borrowed from the rules or the profile) */
    uint8_t *stage_run_type, *stage_wait_type;
    uint32_t *stack_stage;     /* stack id -> stage by rules (p->nnodes) */
    uint8_t *stack_weak;       /* stack id -> 1 when that stage rests on a name alone */
    uint32_t *stack_cpu_stage; /* stack id -> the stage on-CPU time belongs to (the innermost
                                * that does work: not a selector, queue or lock) */
    uint8_t *stack_cpu_weak;
    double wall;             /* total weight: ticks of wall time (see docs/report.md) */
    double no_request;       /* record --load: ticks with no request in flight, left out */
    bool per_tick;           /* weights from kept samples grouped by tick; else per sample */
    bool has_state;          /* running/idle known for the samples */
    bool has_cats;           /* categories present */
    bool gpu_present;        /* frames show a CUDA device in use */
    struct gpu_verdict gpu;  /* what the GPU did, from NVML (gpu.kind GPUK_NONE: no figures) */
    struct mem_verdict mem;  /* what memory did (record --allocations; mem.recorded) */
    uint64_t samples;        /* thread-samples */
    uint64_t cat[PCAT_N];    /* thread-samples per category (state mapped in when no cat) */
    struct share *stage;     /* per stage, share of wall */
    double *stage_type_w;    /* stage * BT_N + type -> wall weight */
    struct share type[BT_N]; /* per type, share of wall */
    bool has_verdict, has_second;
    struct candidate verdict, second;
    char reason[384];          /* why no verdict, or a note on the verdict */
    struct hot *funcs, *lines; /* hottest first, by self samples */
    uint32_t nfuncs, nlines;
    struct hot *behind; /* lines behind the verdict, by wall weight in its type */
    uint32_t nbehind;
    struct hot *asleep; /* functions where threads slept or waited for outside work, by
                         * thread-samples: shown apart from the work */
    uint32_t nasleep;
    uint64_t asleep_samples; /* thread-samples of that kind */
    double *ev_w;            /* type * (nevs + 1) + evidence -> wall weight */
    uint32_t nevs;           /* evidence entries (the profile's) */
    struct thread_stat *threads;
    uint32_t nthreads;
    uint32_t owns_names; /* stage names [0, owns_names) are owned copies */
};

/* Analyses `p` with `rules` (NULL: the built-in rules). Never fails (aborts when out of
 * memory). Release with analysis_fini. Reads `p` and `rules` only; both must outlive `a`. */
void analysis_run(struct analysis *a, const struct profile *p, const struct stage_rules *rules);
void analysis_fini(struct analysis *a);

/* Writes the ids of stages with time into `out` (nstages long), heaviest first; returns
 * their count. */
uint32_t analysis_stage_order(const struct analysis *a, uint32_t *out);

/* The stage of one kept sample: its own tag when set, else the stage of its stack. */
uint32_t analysis_sample_stage(const struct analysis *a, const struct profile *p,
                               const struct psample *s);

/* 95% Wilson score interval of `k` successes in `n` trials into lo, hi (0, 1 when n == 0). */
void verdict_wilson(double k, double n, double *lo, double *hi);

/* Prints the short terminal summary: the verdict (or "no clear bottleneck" and why), then
 * the top five stages and functions. `rules` NULL: built-in rules. */
void verdict_print_summary(const struct profile *p, const struct stage_rules *rules, FILE *f);
/* The same from a finished analysis. */
void verdict_print(const struct profile *p, const struct analysis *a, FILE *f);
/* Appends what piece of evidence `ev` (profile.evs index + 1, 0 none) says, e.g. "on CPU in
 * libopenblasp-r0.3.21.so" or "blocked in recv: TCP/UDP socket", to `b`. */
void verdict_evidence_text(const struct profile *p, uint32_t ev, struct buf *b);
/* One sentence on what usually fixes candidate `c`, chosen by its type and its evidence
 * (native host work gets other advice than Python host work). Static text. */
const char *verdict_fix(const struct profile *p, const struct analysis *a,
                        const struct candidate *c);

#endif
