// SPDX-License-Identifier: MIT
// pprof export: github.com/google/pprof/proto/profile.proto, gzipped, for go tool pprof.
#ifndef CRUX_PPROF_H
#define CRUX_PPROF_H

#include "export/export.h"
#include "profile/profile.h"
#include "util/buf.h"
#include "util/err.h"

/* Appends a gzipped profile.proto message (docs/formats.md, "pprof") to `out`:
 *
 * - sample types samples/count and wall/nanoseconds, plus cpu/nanoseconds (the samples whose
 *   thread was running) when the profile has time categories; period type wall/nanoseconds,
 *   period 1e9 / rate_hz; the default sample type is wall.
 * - one Sample per distinct (stack, thread, process, stage, category), with the labels
 *   thread (the thread frame's name), thread_id, pid (numbers), stage and category (strings)
 *   where known. The kept per-sample records are used when they account for every counted
 *   sample; otherwise the per-stack counts, with the thread and process from the stack's
 *   frames. Samples of idle threads are left out when the profile hides them, and the empty
 *   stack is left out, as in the other formats.
 * - Python frames are Functions (qualname, file) and Locations with their line; native frames
 *   are Functions (symbol, library) whose Locations belong to one Mapping per library; marker
 *   frames are Functions; thread and process frames are labels, not locations. Locations
 *   are leaf first.
 * - time_nanos, duration_nanos from the recording; one comment, the title (export_title).
 *
 * Strings are valid UTF-8 (invalid bytes become U+FFFD). ERR_TOO_LARGE at out's cap. */
int pprof_write(const struct profile *p, const struct export_opts *o, struct buf *out) MUST_CHECK;

/* The same message before gzip, for tests and tools that compress it themselves. */
int pprof_write_raw(const struct profile *p, const struct export_opts *o,
                    struct buf *out) MUST_CHECK;

#endif
