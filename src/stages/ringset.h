// SPDX-License-Identifier: MIT
// The stage rings of a process and, when asked, of all its descendants (a server's worker
// processes): found in /dev/shm as they appear, drained together.
#ifndef CRUX_RINGSET_H
#define CRUX_RINGSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "stages/ring.h"
#include "stages/span.h"

/* Deepest parent chain followed when deciding whether a process descends from the root. */
#define RINGSET_MAX_DEPTH 64
/* Most rings followed at once. */
#define RINGSET_MAX 256
/* Batches of 256 records read from one ring per drain call at most. */
#define RINGSET_DRAIN_ROUNDS 64

struct ringset {
    struct stagering *rings;
    size_t n, cap;
    pid_t root;
    bool follow; /* descendants too */
};

/* Starts an empty set for `root`; with `follow`, rings of its descendants join as found. */
void ringset_init(struct ringset *s, pid_t root, bool follow);
/* Detaches from and closes every ring. */
void ringset_fini(struct ringset *s);
/* Takes over an open ring (the struct is copied; the caller forgets it). */
void ringset_add(struct ringset *s, const struct stagering *r);
/* True when the set has a ring for `pid`. */
bool ringset_has(const struct ringset *s, pid_t pid);
/* Opens the rings that appeared since the last scan: the root's, and with `follow` those of
 * processes descending from it. Returns how many were added. */
size_t ringset_scan(struct ringset *s);
/* Drains every ring, passing each span to fn(ctx, span); returns the number of spans. */
size_t ringset_drain(struct ringset *s, void (*fn)(void *ctx, const struct stage_span *sp),
                     void *ctx);
/* Records lost or invalid, over every ring. */
uint64_t ringset_lost(const struct ringset *s);
/* Threads inside a stage now, over every ring (refreshes each ring's slots). */
size_t ringset_list_current(struct ringset *s, struct stage_current *out, size_t max);

/* True when `pid` is `root` or descends from it (follows /proc/PID/stat parents). */
bool ringset_descends(pid_t pid, pid_t root);

#endif
