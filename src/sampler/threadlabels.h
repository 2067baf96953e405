// SPDX-License-Identifier: MIT
// The name each sampled thread goes by in a recording: its Python name (cpython/threadnames)
// or, for a thread `threading` does not know, its OS name (/proc/PID/task/TID/comm). Kept per
// thread and re-derived only when the names were read again: a round costs a hash lookup per
// thread, never a read of the target or of /proc.
#ifndef CRUX_THREADLABELS_H
#define CRUX_THREADLABELS_H

#include <stdint.h>

#include "cpython/pyreader.h"
#include "cpython/threadnames.h"
#include "profile/profile.h"
#include "util/hmap.h"

struct threadlabels {
    struct threadnames names;
    struct hmap names_of; /* tid -> epoch << 32 | name's string id */
    uint32_t pid;
    uint32_t str_thread; /* "thread": a thread with neither name (its tid unknown) */
};

/* Initializes `tl` for the process of runtime `rt` (which must outlive it), recording into
 * `p`. */
void threadlabels_init(struct threadlabels *tl, const struct pyruntime *rt, struct profile *p);
/* Forgets every string id of `p` it cached: `p` was emptied (profile_clear). */
void threadlabels_forget(struct threadlabels *tl, struct profile *p);
/* Releases everything. */
void threadlabels_fini(struct threadlabels *tl);
/* Once per round, after the reader's round and before threadlabels_name: reads the Python
 * names again when due (see threadnames_update). */
void threadlabels_round(struct threadlabels *tl, const struct pyreader *r, uint64_t now_ns);
/* The name thread `th` of the reader's round goes by, as a string id of `p` ("thread" when it
 * has none); when it is new or changed, it is recorded in p's thread names. */
uint32_t threadlabels_name(struct threadlabels *tl, struct profile *p, const struct pythread *th);

#endif
