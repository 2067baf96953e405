// SPDX-License-Identifier: MIT
// The line-level view: every Python line and function with its total (inclusive) and self
// samples and the split of its time into categories (python, native, system, gil), the
// processes seen and the memory timeline. Text for people, JSON for scripts.
#ifndef CRUX_EXPORT_LINES_H
#define CRUX_EXPORT_LINES_H

#include <stdbool.h>
#include <stdint.h>

#include "profile/profile.h"
#include "util/buf.h"

/* One line or function of the view. */
struct line_row {
    uint32_t frame;       /* a profile frame with this name/file (and line for lines) */
    uint64_t total;       /* samples whose stack contains it */
    uint64_t self;        /* samples where it is the innermost Python frame */
    uint64_t cat[PCAT_N]; /* `total` split by category */
    uint64_t self_cat[PCAT_N];
    int64_t growth; /* resident bytes gained while it was the innermost frame */
};

/* The aggregated view of a profile. */
struct lines_view {
    struct line_row *lines, *funcs;
    size_t nlines, nfuncs;
    uint64_t total;       /* samples in the profile */
    uint64_t cat[PCAT_N]; /* all samples by category */
};

/* Aggregates `p` (rows sorted by total, then self, descending). */
void lines_view_build(const struct profile *p, struct lines_view *v);
/* The same for the stacks of process `pid` alone (rooted at its process frame, as
 * record --subprocesses roots them); pid 0: every stack. */
void lines_view_build_proc(const struct profile *p, uint32_t pid, struct lines_view *v);
void lines_view_fini(struct lines_view *v);

/* Appends the view of `p` as text (json false) or JSON. */
int lines_write(const struct profile *p, bool json, struct buf *out) MUST_CHECK;

#endif
