// SPDX-License-Identifier: MIT
// Comparing two sets of runs: per-metric estimates of the change with 95% intervals and
// p-values (Welch over runs when both sides have repeats, the sampling interval of one
// recording otherwise), Benjamini-Hochberg across many metrics, and the merged stack tree a
// differential flame graph draws (docs/loop.md, "Statistics").
#ifndef CRUX_COMPARE_H
#define CRUX_COMPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile/strtab.h"

/* How an estimate's interval was made. */
enum cmp_method {
    CMP_NONE = 0,     /* no interval: a side has no data */
    CMP_RUNS = 1,     /* the run is the unit: Welch's t over per-run values */
    CMP_SAMPLING = 2, /* one run a side: the sampling interval only (run-to-run noise unseen) */
};

/* The change of one metric from base to new. */
struct cmp_est {
    double base, new_;          /* mean per run (or the one run's value) */
    double diff, lo, hi;        /* new - base and its interval */
    double rel, rel_lo, rel_hi; /* the same relative to base (NaN when base is 0) */
    double p;                   /* two-sided p-value of "no change" (1 when unknown) */
    double q;                   /* p adjusted for false discoveries (cmp_bh); = p until then */
    double cv_base, cv_new;     /* run-to-run coefficient of variation (NaN with 1 run) */
    uint32_t nb, nn;            /* runs on each side */
    uint8_t method;             /* enum cmp_method */
    bool flagged;               /* the interval excludes zero and q <= alpha */
};

/* Two-sided Welch comparison of per-run values `a` (base, na) and `b` (new, nb), both >= 2,
 * at confidence `conf` (0.95). With na or nb < 2 it falls back to cmp_none. */
void cmp_welch(const double *a, size_t na, const double *b, size_t nb, double conf,
               struct cmp_est *e);
/* The same, with each side's run-to-run variance at least floor_a / floor_b (the variance
 * that sampling alone gives a run's value: a smaller sample variance is chance). */
void cmp_welch_floor(const double *a, size_t na, const double *b, size_t nb, double floor_a,
                     double floor_b, double conf, struct cmp_est *e);
/* One run a side: counts `ka` over exposure `ta` against `kb` over `tb` (Poisson), the
 * metric being count * scale / exposure (e.g. samples / rate per request). */
void cmp_poisson(double ka, double ta, double kb, double tb, double scale, double conf,
                 struct cmp_est *e);
/* One run a side: `ka` of `na` against `kb` of `nb` (a share; normal approximation of two
 * binomials, with the interval of a share of 0 or 1 kept away from zero width). */
void cmp_share(double ka, double na, double kb, double nb, double conf, struct cmp_est *e);
/* Fills q of `n` estimates (pointers) by Benjamini-Hochberg and sets `flagged` where the
 * interval excludes zero and q <= alpha. */
void cmp_bh(struct cmp_est **es, size_t n, double alpha);

/* Student's t: upper-tail probability of `t` with `df` degrees of freedom, and the quantile
 * with that upper-tail probability. */
double cmp_t_sf(double t, double df);
double cmp_t_quantile(double upper, double df);
/* Standard normal upper-tail probability and quantile. */
double cmp_norm_sf(double z);
double cmp_norm_quantile(double upper);
/* Kendall's tau of values against their order (drift): tau and its two-sided p-value. */
void cmp_trend(const double *v, size_t n, double *tau, double *p);

/* A node of the merged stack tree: frames are keyed by function ("qualname (file)" or
 * "symbol (library)"), not by line, so that an edit that moves lines keeps the tree. */
struct diff_node {
    uint32_t parent; /* node id; node 0 is the root */
    uint32_t name;   /* strtab id of the frame text */
    uint32_t depth;  /* root 0 */
    uint8_t kind;    /* enum frame_kind of the frame */
    bool in_base;    /* present in any base run */
    bool in_new;     /* present in any new run */
    /* Relative: share of each run's samples; absolute: seconds per unit of work. */
    struct cmp_est total_rel, self_rel, total_abs, self_abs;
};

/* The merged tree of two sets of recordings, nodes in preorder (children after their parent,
 * siblings by name). */
struct diff_tree {
    struct strtab strs;
    struct diff_node *v;
    uint32_t n, cap;
    const char *unit; /* static: "run" or "request" */
    uint32_t nbase, nnew;
};

#endif
