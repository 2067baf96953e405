// SPDX-License-Identifier: MIT
// crux exp: the results of an experiment: per variant throughput and latency with 95%
// intervals across repeats (Welch against the reference variant, the first), CV, drift with
// run order, output agreement with the reference, the SLO, the winner and the Pareto front;
// written as text, JSON and a self-contained HTML page.
#ifndef CRUX_EXPREPORT_H
#define CRUX_EXPREPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "analysis/compare.h"
#include "cmd/expdef.h"
#include "cmd/expstate.h"
#include "util/buf.h"
#include "util/jsonw.h"

/* A drift warning needs this p-value of Kendall's tau against run order, or less. */
#define EXP_TREND_P 0.05

/* One metric of one variant over its measured runs that succeeded. */
struct exp_metric {
    double mean, lo, hi;   /* mean and its 95% t-interval (lo = hi = mean with one run) */
    double cv;             /* run-to-run coefficient of variation (NaN with one run) */
    struct cmp_est vs_ref; /* Welch: this variant (new) against the reference (base) */
    double tau, trend_p;   /* Kendall's tau of the values against their run order */
};

/* One variant's results. */
struct exp_vsum {
    const char *name;       /* borrowed from the variants */
    size_t n;               /* measured runs that succeeded */
    size_t nfail;           /* measured runs that failed */
    size_t ndone;           /* measured runs done (n + nfail) */
    struct exp_metric tput; /* runs/s, or requests/s under load */
    struct exp_metric lat;  /* seconds: wall per run, or p99 latency under load */
    struct exp_metric p50;  /* under load: p50 latency (s) */
    double cpu_s;           /* mean CPU seconds per run */
    double errors;          /* under load: failed requests / requests */
    double cost_per_1000;   /* USD per 1,000 runs or requests; NaN without cost-per-hour */
    bool differ;            /* OUTPUTS DIFFER from the reference */
    char differ_why[256];
    bool slo_ok;
    char slo_why[128];
    bool eligible;     /* may win: runs succeeded, outputs agree, SLO met */
    bool pareto;       /* on the front of throughput against latency */
    char verdict[200]; /* profile = yes: the verdict of its last recorded run, or "" */
};

struct exp_summary {
    struct exp_vsum *v;
    size_t n;
    bool server;
    const char *tput_unit, *lat_name; /* "runs/s" / "wall/run", or "req/s" / "p99" */
    int winner;                       /* index, or -1: no clear winner */
    char why[512];                    /* the winner's case, or why there is none */
    char **warnings;
    size_t nwarnings;
    size_t done, total; /* measured runs done, scheduled */
};

/* Computes the summary from the state. `outdir` holds the kept outputs (out/HASH) that
 * tolerance and token checks read. Never fails: what cannot be judged is said in `why` and
 * the warnings. */
void exp_summarize(const struct exp_def *d, const struct exp_state *st, const char *outdir,
                   struct exp_summary *s);
void exp_summary_fini(struct exp_summary *s);

/* The text table, winner, front and warnings. */
void exp_print_text(const struct exp_summary *s, const struct exp_def *d,
                    const struct exp_state *st, FILE *f);
/* One JSON object: the definition's identity, the variants' results, the winner and the run
 * order with every run's metrics. */
void exp_write_json(const struct exp_summary *s, const struct exp_def *d,
                    const struct exp_state *st, struct jsonw *w);
/* A self-contained page (no scripts): the table, and inline SVG plots of throughput with its
 * interval, the Pareto front and every run by run order. Names are escaped. */
int exp_write_html(const struct exp_summary *s, const struct exp_def *d, const struct exp_state *st,
                   struct buf *b) MUST_CHECK;

#endif
