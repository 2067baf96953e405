// SPDX-License-Identifier: MIT
// Flame graph as one SVG image, flamegraph.pl style: rectangles, labels, a <title> per frame.
#ifndef CRUX_FLAMESVG_H
#define CRUX_FLAMESVG_H

#include "export/export.h"
#include "profile/profile.h"
#include "util/buf.h"
#include "util/err.h"

/* Width of the image in pixels and the narrowest frame drawn (narrower subtrees are left
 * out, as flamegraph.pl's --minwidth does). */
#define FLAMESVG_WIDTH 1200
#define FLAMESVG_MIN_WIDTH 0.1

/* Appends the SVG document: one <g> per frame at least FLAMESVG_MIN_WIDTH wide, with a rect,
 * a clipped label and a <title> ("label (N samples, P%)"); names are XML-escaped. A small
 * inline script zooms into a clicked frame; the image is complete without it. ERR_TOO_LARGE
 * at `out`'s cap. */
int flamesvg_write(const struct profile *p, const struct export_opts *o,
                   struct buf *out) MUST_CHECK;

#endif
