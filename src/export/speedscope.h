// SPDX-License-Identifier: MIT
// speedscope JSON (https://www.speedscope.app/file-format-schema.json), one sampled profile.
#ifndef CRUX_SPEEDSCOPE_H
#define CRUX_SPEEDSCOPE_H

#include "export/export.h"
#include "profile/profile.h"
#include "util/buf.h"
#include "util/err.h"

/* Appends a speedscope file: shared.frames (name, file, line) and one "sampled" profile in
 * unit "none" whose samples are the distinct stacks with a non-zero count (frame indexes,
 * root first) and whose weights are their counts. Strings are valid UTF-8 JSON (invalid
 * bytes become U+FFFD). ERR_TOO_LARGE at `out`'s cap. */
int speedscope_write(const struct profile *p, const struct export_opts *o,
                     struct buf *out) MUST_CHECK;

#endif
