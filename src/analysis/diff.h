// SPDX-License-Identifier: MIT
// What changed between two sets of runs: per function, line, stage and bottleneck type the
// time per unit of work and the share of samples, the load generator's figures, the merged
// stack tree, each with its interval (compare.h), and one sentence on what moved
// (docs/loop.md, "crux diff").
#ifndef CRUX_DIFF_H
#define CRUX_DIFF_H

#include <stdbool.h>
#include <stdint.h>

#include "analysis/compare.h"
#include "analysis/stages.h"
#include "profile/profile.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/hmap.h"

/* Figures of a load run (crux load --json, or record --load's). */
enum load_metric {
    LM_THROUGHPUT = 0, /* ok responses per second */
    LM_P50,
    LM_P90,
    LM_P99,
    LM_P999,     /* corrected latency percentiles, seconds */
    LM_TTFT_P50, /* time to first token, seconds */
    LM_TTFT_P99,
    LM_ITL_P50, /* inter-token latency, seconds */
    LM_ITL_P99,
    LM_ERROR_RATE, /* failed / (ok + failed) */
    LM_TOKENS,     /* output tokens per second */
    LM_PREFILL,    /* prefill share of streamed request time (stats.prefill_decode), 0-1 */
    LM_N,
};
extern const char *const load_metric_names[LM_N];
/* Whether a larger value of the metric is better (throughput, tokens). */
bool load_metric_higher_better(enum load_metric m);

/* A function, line, stage or bottleneck type, with its per-run values. */
struct diff_entity {
    uint32_t name; /* strtab id (diff.tree.strs) */
    uint8_t kind;  /* enum frame_kind for functions and lines */
    uint32_t func; /* lines: index + 1 of the line's function in `funcs`; 0 otherwise */
    double *self;  /* per run: self samples (functions, lines), share of wall (stages, types) */
    double *total; /* per run: samples with it on the stack (functions); = self otherwise */
    struct cmp_est self_abs, total_abs, self_rel, total_rel;
};

struct diff_table {
    struct diff_entity *v;
    uint32_t n, cap;
    struct hmap index; /* name id -> index + 1 */
};

struct diff {
    uint32_t nbase, nnew, nruns; /* runs 0..nbase-1 are the base */
    double conf, alpha;          /* 0.95 and 0.05 unless changed before diff_finish */
    bool idle;                   /* count samples of idle threads (default true: wall time) */
    struct diff_tree tree;
    double *node_self;  /* node * nruns + run -> self samples */
    double *node_total; /* filled by diff_finish */
    struct diff_table funcs, lines, stages, types;
    /* per run */
    double *samples, *rate, *units, *wall_s;
    double *norm;           /* machine speed factor of the run (1: none); see machine_factors */
    double *loo;            /* per reference function (loo_row), its factors without it */
    uint32_t *loo_row;      /* funcs index -> row of `loo` + 1; 0: not a reference function */
    double *ones;           /* nruns ones: no factor */
    const double *cur_norm; /* the factors of the estimate being made */
    bool normalized;        /* per-function times are divided by the factors */
    int8_t *verdict;        /* enum btype of the run's verdict; -1 none */
    uint8_t *has_profile;   /* a recording */
    uint8_t *has_load;      /* load figures known */
    double *load;           /* run * LM_N + metric; NAN when unknown */
    double *errors;         /* run -> failed requests (load), 0 when none or unknown */
    double **lat_buckets;   /* run -> [lo, hi, count] * n, single-run percentile intervals */
    size_t *nlat_buckets;
    const char *unit; /* "request" when every recording has its load's requests, else "run" */
    /* after diff_finish */
    struct cmp_est time_abs; /* thread-seconds sampled per unit */
    struct cmp_est wall_est; /* wall time of the recordings per unit (exact: no sampling) */
    struct cmp_est load_est[LM_N];
    bool any_profile, any_load;
    int verdict_base, verdict_new; /* enum btype agreed by most runs of a side; -1 none */
    struct buf headline;           /* one sentence */
    struct buf warnings;           /* one warning per line */
    /* per-run loading scratch */
    uint32_t *map;
    uint32_t cap_map;
};

/* Starts a comparison of `nbase` base runs and `nnew` new runs (each >= 1). */
void diff_init(struct diff *d, uint32_t nbase, uint32_t nnew);
void diff_fini(struct diff *d);
/* Adds run `run` (base first) from a recording. `rules` NULL: the built-in stage rules. */
void diff_add_profile(struct diff *d, uint32_t run, const struct profile *p,
                      const struct stage_rules *rules);
/* Adds the load figures of run `run` from crux load's JSON (the text `json`, `len` bytes);
 * ERR_ARG with the cause in `eb` when it is not crux load's output. */
int diff_add_load_json(struct diff *d, uint32_t run, const char *json, size_t len,
                       struct errbuf *eb) MUST_CHECK;
/* Computes every estimate, the false-discovery flags, the tree's preorder and the headline.
 */
void diff_finish(struct diff *d);

/* Writes the comparison as text (top `top` rows per table) or as JSON. */
int diff_write_text(const struct diff *d, unsigned top, struct buf *out) MUST_CHECK;
int diff_write_json(const struct diff *d, struct buf *out) MUST_CHECK;

/* Finds an entity by name; NULL when absent. */
const struct diff_entity *diff_find(const struct diff *d, const struct diff_table *t,
                                    const char *name);

#endif
