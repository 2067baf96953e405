// SPDX-License-Identifier: MIT
// What memory did, judged from record --allocations (docs/memory.md): copy-bound (a line copies
// fast and is where the CPU is), a growing heap (a leak found and the live heap grew) or
// allocation churn (a high allocation rate, mostly temporaries), with the figures behind it; and
// the gap between RSS and live sampled bytes (fragmentation and everything the hooks do not see).
// Additive to the CPU verdict: it is its own line, the CPU verdict is unchanged.
#ifndef CRUX_MEMVERDICT_H
#define CRUX_MEMVERDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile/profile.h"

/* Growing heap: a leak found, and the heap grew by at least this share of its peak. */
#define MEMV_GROWTH_MIN_SHARE 0.10
/* Churn: at least this many bytes a second allocated (1 GiB/s: fresh memory then costs page
 * faults and cache misses; a count rule would flag every Python arithmetic loop, whose ints are
 * allocated millions of times a second) ... */
#define MEMV_CHURN_RATE (1024.0 * 1024.0 * 1024.0)
/* ... and at least this share of them freed within ALLOCS_TEMP_NS (temporaries). */
#define MEMV_CHURN_TEMP_SHARE 0.5

/* Copy-bound: the top copying line copies at least this many bytes per second of the
 * recording, and holds at least this share of the on-CPU samples (innermost Python frame). */
#define MEMV_COPY_RATE (256.0 * 1024 * 1024)
#define MEMV_COPY_CPU_SHARE 0.10

enum mem_kind {
    MEMK_NONE = 0,    /* no allocations recorded, or nothing stands out */
    MEMK_GROWING = 1, /* growing heap: live bytes keep growing (a leak found) */
    MEMK_CHURN = 2,   /* allocation churn: many bytes allocated and soon freed */
    MEMK_COPY = 3,    /* copy-bound: memcpy/memmove volume at a line that holds the CPU */
};

struct mem_verdict {
    bool recorded; /* allocations were recorded (the rest is meaningful) */
    enum mem_kind kind;
    double seconds;       /* span of the allocation events */
    uint64_t total_bytes; /* allocated (estimated) */
    double count;         /* allocations (estimated) */
    double rate;          /* bytes a second */
    double temp_share;    /* of bytes allocated, freed within ALLOCS_TEMP_NS */
    int64_t peak_live, end_live, heap_growth;
    uint32_t nleaks;
    uint32_t frame;       /* the top leak's line, the line with most temporaries, or (copy)
                           * the top copying line; UINT32_MAX none */
    double copy_rate;     /* MEMK_COPY: bytes a second copied at `frame` */
    double cpu_share;     /* MEMK_COPY: its share of the on-CPU samples */
    int64_t frame_bytes;  /* its growth (growing) or temporary bytes (churn) */
    double frame_share;   /* of the heap's growth, or of all temporary bytes */
    double likelihood;    /* the top leak's trend likelihood */
    uint64_t rss_at_peak; /* RSS of the main process nearest the heap's peak; 0 unknown */
    int64_t gap;          /* rss_at_peak - peak_live: fragmentation and unseen memory */
};

/* Judges the allocation events of `p` into `v` (v->recorded false when there are none). */
void mem_verdict_run(struct mem_verdict *v, const struct profile *p);
/* "copy-bound" / "growing heap" / "allocation churn" / "" for MEMK_NONE. */
const char *mem_kind_label(enum mem_kind k);
/* One sentence on the usual fix for a kind (static text; "" for MEMK_NONE). */
const char *mem_kind_fix(enum mem_kind k);
/* Writes the figures behind the verdict ("live heap grew 60.1 MB (peak 61.0 MB) over 3.2 s;
 * 98% of the growth at job.py:12 (trend likelihood 1.000)") into `out`. */
void mem_verdict_figures(const struct mem_verdict *v, const struct profile *p, char *out,
                         size_t cap);

#endif
