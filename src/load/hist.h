// SPDX-License-Identifier: MIT
// Log-linear latency histogram (HdrHistogram-style buckets): bounded memory, fixed precision.
#ifndef CRUX_HIST_H
#define CRUX_HIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Most significant decimal digits a histogram can keep. */
#define HIST_MAX_SIGFIGS 5

/* Values are non-negative integers in any unit (crux records microseconds). Values up to
 * 2 * 10^sigfigs are exact; above, each bucket is at most 1 / 10^sigfigs of its value wide,
 * so every reported percentile is within that relative error of the recorded value. Memory is
 * fixed at creation (about 190 KB for 3 digits and a range of one hour in microseconds).
 * Not thread-safe: one owner records; merge histograms with hist_add at the end. */
struct hist {
    int64_t highest;    /* largest trackable value; larger ones are clamped to it */
    int sigfigs;        /* significant digits */
    int sub_bits;       /* log2 of sub-buckets per bucket */
    int64_t sub_count;  /* sub-buckets per bucket (a power of two >= 2 * 10^sigfigs) */
    int64_t half_count; /* sub_count / 2 */
    size_t counts_len;  /* entries in counts */
    uint64_t *counts;   /* owned */
    uint64_t total;     /* recorded values */
    uint64_t clamped;   /* values above `highest`, recorded as `highest` */
    int64_t min, max;   /* exact extremes (0 when empty) */
    double sum;         /* exact sum, for the mean */
};

/* Creates an empty histogram tracking 0..highest (highest >= 2) with `sigfigs` digits (1 to
 * HIST_MAX_SIGFIGS); ERR_ARG otherwise. hist_fini releases it. */
int hist_init(struct hist *h, int64_t highest, int sigfigs) MUST_CHECK;
/* Releases the counts; the struct may be hist_init'ed again. */
void hist_fini(struct hist *h);
/* Empties the histogram and keeps its memory. */
void hist_reset(struct hist *h);
/* Records `count` occurrences of `v` (negative values count as 0, values above the range are
 * clamped to `highest` and counted in `clamped`). */
void hist_record_n(struct hist *h, int64_t v, uint64_t count);
/* Records one occurrence of `v`. */
void hist_record(struct hist *h, int64_t v);
/* Adds every value of `src` into `dst`; ERR_ARG when their layouts differ. */
int hist_add(struct hist *dst, const struct hist *src) MUST_CHECK;
/* Returns the value at percentile `p` (0..100): the smallest recorded value v such that at
 * least p% of the values are <= v, to the histogram's precision (the highest value equivalent
 * to it, clipped to the exact min and max). 0 when empty. */
int64_t hist_percentile(const struct hist *h, double p);
/* Returns the mean (0 when empty). */
double hist_mean(const struct hist *h);

/* Iteration over the non-empty buckets, lowest first. Start with *pos = 0; each call that
 * returns true fills the bucket's value range [lo, hi] and its count. */
bool hist_next(const struct hist *h, size_t *pos, int64_t *lo, int64_t *hi, uint64_t *count);

/* The index of `v`'s bucket entry and the lowest value of an entry (exposed for tests). */
size_t hist_index(const struct hist *h, int64_t v);
int64_t hist_lowest_at(const struct hist *h, size_t index);

#endif
