// SPDX-License-Identifier: MIT
// Differential flame graph of two sets of runs: a self-contained HTML page and 3-column folded
// text.
#ifndef CRUX_DIFFFLAME_H
#define CRUX_DIFFFLAME_H

#include "analysis/compare.h"
#include "util/buf.h"
#include "util/err.h"

/* Scale of the folded counts: a count is the mean self share of a run times this, rounded. */
#define DIFFFLAME_FOLDED_SCALE 1000000.0

/* Appends one self-contained HTML page (inline CSS and script, no network) drawing the merged
 * tree `t` as an icicle: a frame's width is its total on the new side (a vanished frame's on
 * the base side), its colour red (slower) or blue (faster) only where the shown estimate is
 * flagged, grey otherwise; toggles for share of samples / seconds per unit and total / self,
 * a tooltip with the estimate and its interval, click to zoom, search. `title` (NULL: "crux
 * diff") and `headline` (NULL: none) are HTML-escaped; the tree is embedded as HTML-safe JSON
 * (docs/formats.md, "Differential flame graph"). Reads `t` only. ERR_ARG for a tree that is
 * empty or not in preorder, ERR_TOO_LARGE at `out`'s cap; `eb` (may be NULL) gets details. */
int diffflame_write_html(const struct diff_tree *t, const char *title, const char *headline,
                         struct buf *out, struct errbuf *eb) MUST_CHECK;

/* Appends the tree as difffolded.pl writes it: one line "frame;frame;frame BASE NEW" per node
 * below the root whose self is non-zero on either side, BASE and NEW being the mean self
 * share (self_rel) times DIFFFLAME_FOLDED_SCALE, rounded; names cleaned as collapsed stacks
 * clean them, lines sorted by their bytes, equal stacks merged. Errors as above. */
int diffflame_write_folded(const struct diff_tree *t, struct buf *out,
                           struct errbuf *eb) MUST_CHECK;

#endif
