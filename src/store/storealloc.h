// SPDX-License-Identifier: MIT
// The allocation part of a saved recording (record --allocations, docs/memory.md): table
// alloc_events, one row per sampled allocation or free, and meta keys alloc_*, added without a
// format bump (older files lack them and load with no allocation data; older crux ignores them).
// The events themselves are kept, not the views: they are few (two per sample, a sample per
// 512 KiB allocated by default), and `crux report` rebuilds every view from them exactly as
// the live run did. Called by store.c inside its transaction.
#ifndef CRUX_STOREALLOC_H
#define CRUX_STOREALLOC_H

#include <sqlite3.h>

#include "profile/profile.h"
#include "util/err.h"

/* Writes p->allocs and the allocation meta keys into `db` (a recording being saved, its meta
 * and stacks tables already there); nothing when allocations were not recorded. Returns 0 or
 * ERR_IO. */
int storealloc_save(sqlite3 *db, const struct profile *p) MUST_CHECK;
/* Reads the allocation events of `db` into `p` (its stacks already loaded), if the file has
 * them. Returns 0, or an ERR_* with context naming `path`. */
int storealloc_load(sqlite3 *db, struct profile *p, struct errbuf *eb, const char *path) MUST_CHECK;

#endif
