// SPDX-License-Identifier: MIT
// Collapsed ("folded") stacks: one line per distinct stack, as FlameGraph and inferno read.
#ifndef CRUX_COLLAPSED_H
#define CRUX_COLLAPSED_H

#include "profile/profile.h"
#include "util/buf.h"
#include "util/err.h"

/* Appends one line "FRAME;FRAME;... COUNT\n" per stack with a non-zero count, frames root
 * first, each written by export_frame_label with ';' replaced by ':' and control characters
 * (newlines included) by a space. Stacks whose text comes out equal are merged. Lines are in
 * byte order (as `LC_ALL=C sort` orders them). ERR_TOO_LARGE at `out`'s cap. */
int collapsed_write(const struct profile *p, struct buf *out) MUST_CHECK;

/* Appends the collapsed-format text of frame `id` (its label, sanitized as above). */
int collapsed_frame(const struct profile *p, uint32_t id, struct buf *out) MUST_CHECK;

#endif
