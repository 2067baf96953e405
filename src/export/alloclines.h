// SPDX-License-Identifier: MIT
// The allocation tables of the lines view and the report (record --allocations): per line and
// per function, bytes and count allocated, live at the peak and at the end, temporaries; the
// leaks with their stacks; the live-bytes timeline. docs/memory.md describes the columns.
#ifndef CRUX_ALLOCLINES_H
#define CRUX_ALLOCLINES_H

#include "profile/profile.h"
#include "util/buf.h"
#include "util/jsonw.h"

/* Appends the allocation section as text; nothing when `p` has no allocations. */
int alloclines_text(const struct profile *p, struct buf *out) MUST_CHECK;
/* Writes the key "allocations" and its object (null without allocations) into the object
 * open in `w`. */
void alloclines_json(struct jsonw *w, const struct profile *p);

#endif
