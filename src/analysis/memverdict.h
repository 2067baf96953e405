// SPDX-License-Identifier: MIT
// The memory side of the verdict, from record --allocations' views (docs/memory.md,
// "Verdict"): copy-bound (a line copies fast and is where the CPU is) and growing heap (a leak
// was found). Printed under the CPU verdict; it does not change it.
#ifndef CRUX_MEMVERDICT_H
#define CRUX_MEMVERDICT_H

#include <stdint.h>
#include <stdio.h>

#include "profile/profile.h"

/* Copy-bound: the top copying line copies at least this many bytes per second of the
 * recording, and holds at least this share of the on-CPU samples (innermost Python frame). */
#define MEMV_COPY_RATE (256.0 * 1024 * 1024)
#define MEMV_COPY_CPU_SHARE 0.10

enum mem_kind {
    MEMK_NONE = 0,    /* no allocation views, or no rule fits */
    MEMK_COPY = 1,    /* copy-bound */
    MEMK_GROWING = 2, /* growing heap: a leak */
};

struct mem_verdict {
    enum mem_kind kind;
    uint32_t frame;      /* the line (a profile frame); UINT32_MAX none */
    double copy_rate;    /* MEMK_COPY: bytes per second copied there */
    double cpu_share;    /* MEMK_COPY: its share of on-CPU samples */
    int64_t growth;      /* MEMK_GROWING: live bytes the leak grew by */
    double growth_share; /* of the heap's growth */
};

/* Judges `p` (copy-bound first: it is about time; a growing heap is about memory). */
void memverdict_run(struct mem_verdict *m, const struct profile *p);
/* Prints "  memory: ..." and its fix when a rule fits; nothing otherwise. */
void memverdict_print(const struct profile *p, FILE *f);

#endif
