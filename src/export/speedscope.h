// SPDX-License-Identifier: MIT
// speedscope JSON (https://www.speedscope.app/file-format-schema.json): a combined profile and
// one per thread.
#ifndef CRUX_SPEEDSCOPE_H
#define CRUX_SPEEDSCOPE_H

#include "export/export.h"
#include "profile/profile.h"
#include "util/buf.h"
#include "util/err.h"

/* Appends a speedscope file: shared.frames (name, file, line), then "sampled" profiles in unit
 * "seconds" (each sample weighs the recording's mean tick interval): first the combined one,
 * whose samples are the distinct stacks with a non-zero count (frame indexes, root first) and
 * whose weights are their counts; then, when samples were kept, one per thread (export/tracks.h)
 * named `Thread TID "NAME"` (`Process PID Thread TID "NAME"` across processes), its samples in
 * time order, consecutive equal stacks merged, without the process and thread frames. Strings
 * are valid UTF-8 JSON (invalid bytes become U+FFFD). ERR_TOO_LARGE at `out`'s cap. */
int speedscope_write(const struct profile *p, const struct export_opts *o,
                     struct buf *out) MUST_CHECK;

#endif
