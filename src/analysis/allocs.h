// SPDX-License-Identifier: MIT
// The allocation views of record --allocations (docs/memory.md): per line and per function,
// bytes and count allocated, live bytes at the heap's high-water mark and at the end,
// temporaries; the live-bytes timeline; and leaks, scored by a trend test.
#ifndef CRUX_ALLOCS_H
#define CRUX_ALLOCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile/profile.h"

/* A block freed within this long of its allocation is a temporary. */
#define ALLOCS_TEMP_NS 10000000ull
/* Points of each site's live-bytes series that the leak test looks at. */
#define ALLOCS_SERIES 20
#define ALLOCS_TIMELINE 40
/* A leak: a trend this likely, growing by at least this share of the peak heap. */
#define ALLOCS_LEAK_LIKELIHOOD 0.95
#define ALLOCS_LEAK_MIN_SHARE 0.01

/* One allocation site: a line (the innermost Python frame) or a function. */
struct alloc_site {
    uint32_t frame;    /* a profile frame with this file and line (name and file for functions) */
    uint32_t stack;    /* the stack that allocated most of its bytes */
    uint64_t bytes;    /* bytes allocated (estimated) */
    double count;      /* allocations (estimated) */
    int64_t peak_live; /* its live bytes when the whole heap peaked */
    int64_t end_live;  /* its live bytes at the end */
    uint64_t temp;     /* bytes freed within ALLOCS_TEMP_NS of their allocation */
    double likelihood; /* the leak test: probability its live bytes trend upward */
    int64_t growth;    /* live bytes at the end of its series over the start */
    bool leak;
    uint64_t copy_bytes; /* bytes copied by memcpy/memmove here (estimated, PALLOC_COPY) */
    double copies;       /* copy calls (estimated) */
};

struct alloc_view {
    struct alloc_site *lines, *funcs; /* sorted by bytes, descending */
    size_t nlines, nfuncs;
    uint64_t total_bytes; /* allocated, all sites */
    int64_t peak_live;    /* the heap's high-water mark (live sampled bytes) */
    uint64_t peak_ns;     /* when */
    int64_t end_live;
    int64_t heap_growth;            /* live bytes at the end over those at the start */
    uint64_t duration_ns;           /* last event time */
    int64_t live[ALLOCS_TIMELINE];  /* live bytes at the end of each timeline bucket */
    uint64_t rate[ALLOCS_TIMELINE]; /* bytes allocated in each bucket */
    /* Copy volume: the sites with copy_bytes > 0, sorted by copy_bytes, descending (copies of
     * the entries above, owned by the view). */
    struct alloc_site *copy_lines, *copy_funcs;
    size_t ncopy_lines, ncopy_funcs;
    uint64_t copy_total; /* bytes copied, all sites */
    uint64_t copy_events;
};

/* Builds the views of `p`'s allocation and copy events; allocs_view_fini frees them. */
void allocs_view_build(const struct profile *p, struct alloc_view *v);
void allocs_view_fini(struct alloc_view *v);

/* The Mann-Kendall trend test, one-sided: the probability (normal approximation, no ties
 * correction: conservative with ties) that the series `x` of `n` points trends upward. */
double allocs_trend_likelihood(const double *x, size_t n);
/* The Horvitz-Thompson weight of a block of `size` bytes sampled with mean gap `mean`: size
 * over its probability 1 - exp(-size / mean) of holding a sample point. */
double allocs_ht_weight(double size, double mean);
/* The lines holding the most live bytes at the heap's peak, most first: up to `max` pointers
 * into v->lines (valid until allocs_view_fini) in `out`; returns how many (peak_live > 0). */
size_t allocs_peak_holders(const struct alloc_view *v, const struct alloc_site **out, size_t max);
/* Bytes per second of `bytes` over the recording `p` (meta.duration_ns; 0 when unknown). */
double allocs_rate(const struct profile *p, uint64_t bytes);

#endif
