// SPDX-License-Identifier: MIT
// Chrome trace (Trace Event Format JSON) export, for Perfetto's UI and chrome://tracing: each
// thread's samples drawn as a timeline of nested slices.
#ifndef CRUX_CHROMETRACE_H
#define CRUX_CHROMETRACE_H

#include "export/export.h"
#include "profile/profile.h"
#include "util/buf.h"
#include "util/err.h"

/* The synthetic thread id of the `lane`-th (0-based) track of the agent's spans in a process:
 * far above any Linux thread id (at most 2^22). */
#define CHROMETRACE_SPAN_TID 1000000000u
/* The synthetic thread id of the `lane`-th (0-based) "load generator" track of the recorded
 * process: the requests of `record --load`, none overlapping another of its lane. */
#define CHROMETRACE_LOAD_TID 1100000000u

/* Appends a trace (docs/formats.md, "Chrome trace"): {"traceEvents": [...], "displayTimeUnit":
 * "ms", "otherData": {...}}. Per thread of export/tracks.h, complete ('X') events: consecutive
 * samples whose stacks share a function at a depth make one slice there, so the slices nest
 * like the stacks; process and thread names and order as metadata ('M') events; resident
 * memory as counter ('C') events; the agent's spans as slices on tracks of their own, one per
 * lane of properly nested spans; the load requests of `record --load` as slices on "load
 * generator" tracks of the recorded process, one per lane of requests that do not overlap.
 * Times in microseconds since the start of the recording.
 * Strings are valid UTF-8 JSON. ERR_TOO_LARGE at `out`'s cap. */
int chrometrace_write(const struct profile *p, const struct export_opts *o,
                      struct buf *out) MUST_CHECK;

#endif
