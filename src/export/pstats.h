// SPDX-License-Identifier: MIT
// pstats export: the marshalled statistics dict that cProfile writes, for pstats and snakeviz.
#ifndef CRUX_PSTATS_H
#define CRUX_PSTATS_H

#include "profile/profile.h"
#include "util/buf.h"
#include "util/err.h"

/* Appends the file that `pstats.Stats(path)` loads (docs/formats.md, "pstats"): a marshalled
 * dict {(file, line, name): (calls, calls, self_s, cumulative_s, callers)} with callers
 * {(file, line, name): (calls, calls, self_s, cumulative_s)}, built from the per-stack counts:
 *
 * - a Python function is keyed by (file, qualname), shown with the smallest line seen in its
 *   frames (the call sites and executing lines, so near its first line); a native function
 *   is ('~', 0, '<symbol>') as cProfile writes built-ins, a marker ('~', 0, '[name]'); thread
 *   and process frames are left out.
 * - calls (primitive = total) and cumulative count the samples with the function on the
 *   stack, recursion once; self counts those where it is the leaf; a sample is 1 / rate_hz
 *   seconds. A caller entry counts the samples where the caller directly calls the function
 *   (once per sample), self those where the function is also the leaf.
 *
 * Entries are in first-appearance order of the frame table. ERR_TOO_LARGE at out's cap. */
int pstats_write(const struct profile *p, struct buf *out) MUST_CHECK;

#endif
