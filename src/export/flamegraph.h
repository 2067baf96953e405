// SPDX-License-Identifier: MIT
// Interactive flame graph: one self-contained HTML file (inline CSS and JavaScript, no network).
#ifndef CRUX_FLAMEGRAPH_H
#define CRUX_FLAMEGRAPH_H

#include "export/export.h"
#include "export/flametree.h"
#include "profile/profile.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/jsonw.h"

/* Appends the HTML page: the title and run facts, then a canvas flame graph with zoom,
 * search and tooltips. The profile is embedded as JSON (a string table, a frame table and
 * the preorder node list of the flame tree) inside <script type="application/json"> with
 * '<', '>' and '&' escaped, so no name can end the element. ERR_TOO_LARGE at `out`'s cap. */
int flamegraph_write(const struct profile *p, const struct export_opts *o,
                     struct buf *out) MUST_CHECK;

/* Writes the members of the page's data object ("version", "title", "total", "meta",
 * "strings", "frames", "nodes"; docs/formats.md) into the object `w` has open, for pages
 * that embed the flame graph (the report). Errors are sticky in `w`. */
void flamegraph_write_members(struct jsonw *w, const struct profile *p, const struct flametree *t,
                              const struct buf *title);

#endif
