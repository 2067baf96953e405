// SPDX-License-Identifier: MIT
// Log-linear histogram: bucket b holds sub-buckets of width 2^b, so precision is relative.
#include "load/hist.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

/* Layout: entry index = b * half_count + (v >> b), where b is 0 for v < sub_count and
 * otherwise the shift that brings v into [half_count, sub_count). Bucket 0 covers
 * [0, sub_count) with width 1; bucket b >= 1 covers [sub_count << (b-1), sub_count << b) in
 * half_count sub-buckets of width 2^b. A width is at most v / half_count, hence the precision. */

static int floor_log2(uint64_t v)
{
    return 63 - __builtin_clzll(v | 1);
}

size_t hist_index(const struct hist *h, int64_t v)
{
    uint64_t u = v < 0 ? 0 : (uint64_t)v;
    int b = floor_log2(u) - h->sub_bits + 1;
    if (b < 0)
        b = 0;
    return (size_t)b * (size_t)h->half_count + (size_t)(u >> b);
}

int64_t hist_lowest_at(const struct hist *h, size_t index)
{
    size_t half = (size_t)h->half_count;
    if (index < (size_t)h->sub_count)
        return (int64_t)index;
    size_t b = index / half - 1;
    size_t sub = index - b * half;
    return (int64_t)((uint64_t)sub << b);
}

static int64_t highest_at(const struct hist *h, size_t index)
{
    size_t half = (size_t)h->half_count;
    size_t b = index < (size_t)h->sub_count ? 0 : index / half - 1;
    return hist_lowest_at(h, index) + ((int64_t)1 << b) - 1;
}

int hist_init(struct hist *h, int64_t highest, int sigfigs)
{
    memset(h, 0, sizeof(*h));
    if (sigfigs < 1 || sigfigs > HIST_MAX_SIGFIGS || highest < 2)
        return ERR_ARG;
    int64_t need = 2;
    for (int i = 0; i < sigfigs; i++)
        need *= 10;
    int bits = floor_log2((uint64_t)need);
    if (((int64_t)1 << bits) < need)
        bits++;
    h->highest = highest;
    h->sigfigs = sigfigs;
    h->sub_bits = bits;
    h->sub_count = (int64_t)1 << bits;
    h->half_count = h->sub_count / 2;
    h->counts_len = hist_index(h, highest) + 1;
    h->counts = xcalloc(h->counts_len, sizeof(*h->counts));
    return 0;
}

void hist_fini(struct hist *h)
{
    free(h->counts);
    memset(h, 0, sizeof(*h));
}

void hist_reset(struct hist *h)
{
    if (h->counts)
        memset(h->counts, 0, h->counts_len * sizeof(*h->counts));
    h->total = 0;
    h->clamped = 0;
    h->min = 0;
    h->max = 0;
    h->sum = 0;
}

void hist_record_n(struct hist *h, int64_t v, uint64_t count)
{
    if (!count || !h->counts)
        return;
    if (v < 0)
        v = 0;
    if (v > h->highest) {
        v = h->highest;
        h->clamped += count;
    }
    h->counts[hist_index(h, v)] += count;
    if (!h->total || v < h->min)
        h->min = v;
    if (!h->total || v > h->max)
        h->max = v;
    h->total += count;
    h->sum += (double)v * (double)count;
}

void hist_record(struct hist *h, int64_t v)
{
    hist_record_n(h, v, 1);
}

int hist_add(struct hist *dst, const struct hist *src)
{
    if (dst->counts_len != src->counts_len || dst->sub_bits != src->sub_bits)
        return ERR_ARG;
    if (!src->total)
        return 0;
    for (size_t i = 0; i < src->counts_len; i++)
        dst->counts[i] += src->counts[i];
    if (!dst->total || src->min < dst->min)
        dst->min = src->min;
    if (!dst->total || src->max > dst->max)
        dst->max = src->max;
    dst->total += src->total;
    dst->clamped += src->clamped;
    dst->sum += src->sum;
    return 0;
}

int64_t hist_percentile(const struct hist *h, double p)
{
    if (!h->total)
        return 0;
    if (p < 0)
        p = 0;
    if (p > 100)
        p = 100;
    /* rank = ceil(p% of total), at least 1: the value a sorted array holds at that rank */
    double want = p / 100.0 * (double)h->total;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < h->counts_len; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            int64_t v = highest_at(h, i);
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;
}

double hist_mean(const struct hist *h)
{
    return h->total ? h->sum / (double)h->total : 0.0;
}

bool hist_next(const struct hist *h, size_t *pos, int64_t *lo, int64_t *hi, uint64_t *count)
{
    for (size_t i = *pos; i < h->counts_len; i++) {
        if (!h->counts[i])
            continue;
        *lo = hist_lowest_at(h, i);
        *hi = highest_at(h, i);
        *count = h->counts[i];
        *pos = i + 1;
        return true;
    }
    *pos = h->counts_len;
    return false;
}
