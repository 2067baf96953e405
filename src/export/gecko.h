// SPDX-License-Identifier: MIT
// Firefox Profiler export: the "processed profile" format (preprocessedProfileVersion 57) that
// profiler.firefox.com loads from a file, one thread per recorded thread.
#ifndef CRUX_GECKO_H
#define CRUX_GECKO_H

#include "export/export.h"
#include "profile/profile.h"
#include "util/buf.h"
#include "util/err.h"

/* The processed-profile version written, and the Gecko profile version that went with it
 * (meta.version). The Firefox Profiler upgrades older processed profiles when it loads them. */
#define GECKO_PROCESSED_VERSION 57
#define GECKO_PROFILE_VERSION 31

/* Appends a processed profile (docs/formats.md, "Firefox Profiler"): meta (interval, the time
 * categories with colours, a marker schema for the agent's spans), one thread per track of
 * export/tracks.h with its samples (stack, time in ms since the start, weight), stack, frame,
 * function and resource tables, and the spans on that thread as markers; one memory counter
 * (resident set size) per process with a memory timeline; shared.stringArray. Strings are
 * valid UTF-8 JSON. ERR_TOO_LARGE at `out`'s cap. */
int gecko_write(const struct profile *p, const struct export_opts *o, struct buf *out) MUST_CHECK;

#endif
