// SPDX-License-Identifier: MIT
// The memory part of the HTML report and of the verdict JSON (record --allocations): the
// memory verdict, a timeline of live sampled bytes and allocation rate beside RSS (inline SVG),
// the lines holding the heap at its peak with their stacks, leaks, temporaries, and the gap
// between RSS and live bytes (fragmentation and memory the hooks do not see).
#ifndef CRUX_REPORTMEM_H
#define CRUX_REPORTMEM_H

#include "analysis/verdict.h"
#include "profile/profile.h"
#include "util/buf.h"
#include "util/jsonw.h"

/* Adds key "allocations" to the object being written: null without allocation data, else
 * {kind, label, figures, fix, total_bytes, rate, temp_share, peak_live_bytes, heap_growth_bytes,
 * leaks, rss_at_peak, gap_bytes}. */
void reportmem_json(struct jsonw *w, const struct profile *p, const struct analysis *a);
/* Appends the report's allocation section (nothing without allocation data). Returns 0 or
 * ERR_*. */
int reportmem_html(struct buf *b, const struct profile *p, const struct analysis *a) MUST_CHECK;

#endif
