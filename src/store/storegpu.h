// SPDX-License-Identifier: MIT
// The GPU part of a saved recording: tables gpu_devices, gpu_samples and gpu_processes and
// meta keys gpu_*, added without a format bump (older files lack them and load with no GPU
// data; older crux ignores them). Called by store.c inside its transaction.
#ifndef CRUX_STOREGPU_H
#define CRUX_STOREGPU_H

#include <sqlite3.h>

#include "profile/profile.h"
#include "util/err.h"

/* Writes p->gpu into `db` (a recording being saved, its meta table already there); nothing
 * when the recording has no GPU data and no GPU note. Returns 0 or ERR_IO. */
int storegpu_save(sqlite3 *db, const struct profile *p) MUST_CHECK;
/* Reads the GPU tables of `db` into p->gpu, if the file has them. Returns 0, or an ERR_* with
 * context naming `path`. */
int storegpu_load(sqlite3 *db, struct profile *p, struct errbuf *eb, const char *path) MUST_CHECK;

#endif
