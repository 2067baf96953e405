// SPDX-License-Identifier: MIT
// Saved recordings: a profile written to and read back from a SQLite database whose schema
// (docs/formats.md, "Saved recordings") users may query with sqlite3.
#ifndef CRUX_STORE_H
#define CRUX_STORE_H

#include "profile/profile.h"
#include "util/err.h"

/* Schema version written to meta.format_version; store_load refuses newer ones. 2 added
 * samples.ev, the evidence table and meta.hide_idle; 3 the spans table; 4 frames.col. */
#define STORE_FORMAT_VERSION 4
/* The crux version written to meta.crux_version (kept equal to main.c's CRUX_VERSION). */
#define STORE_CRUX_VERSION "0.1.0"

/* Writes `p` (facts, strings, frames, stacks, per-stack counts and growth, kept samples,
 * the memory timeline, processes, the agent's spans) to a new database at `path`, replacing any
 * file there. ERR_IO with the cause in `eb`. */
int store_save(const struct profile *p, const char *path, struct errbuf *eb) MUST_CHECK;

/* Reads the database at `path` into `p`, which must be freshly initialized (profile_init);
 * on failure `p` holds what was read so far and must still be released with profile_fini.
 * ERR_IO when it cannot be opened or read, ERR_ARG when it is not a crux recording or a newer
 * format, ERR_CORRUPT when its rows do not fit together. */
int store_load(const char *path, struct profile *p, struct errbuf *eb) MUST_CHECK;

#endif
