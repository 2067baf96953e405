// SPDX-License-Identifier: MIT
// The report: one self-contained HTML page with the bottleneck verdict at the top, the stage
// breakdown, the interactive flame graph, hottest functions and lines, threads, processes,
// timelines and the run's facts; plus the verdict alone as text or JSON.
#ifndef CRUX_REPORT_H
#define CRUX_REPORT_H

#include "export/export.h"
#include "profile/profile.h"
#include "util/buf.h"
#include "util/err.h"

/* Appends the HTML report of `p` (o->rules: stage rules, NULL built-in). Names are written
 * as escaped text or inside the HTML-safe JSON data element, never as markup. ERR_TOO_LARGE
 * at `out`'s cap. */
int report_write(const struct profile *p, const struct export_opts *o, struct buf *out) MUST_CHECK;

/* Appends the terminal summary (verdict_print's text). */
int report_write_summary(const struct profile *p, const struct export_opts *o,
                         struct buf *out) MUST_CHECK;

/* Appends the verdict as JSON (docs/report.md, "Verdict JSON"). */
int report_write_verdict(const struct profile *p, const struct export_opts *o,
                         struct buf *out) MUST_CHECK;

#endif
