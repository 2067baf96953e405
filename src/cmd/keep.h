// SPDX-License-Identifier: MIT
// Keeping a run of crux record or crux load in the run store (--label NAME, --store DIR):
// the machine state at the start, the file the run is written to, and the add at the end.
#ifndef CRUX_KEEP_H
#define CRUX_KEEP_H

#include <stdbool.h>

#include "store/runs.h"

struct keep {
    bool on;         /* --label or --store was given */
    const char *dir; /* the store folder (borrowed from argv, or RUNS_DEFAULT_DIR) */
    struct run run;  /* what is kept; callers may fill command and fingerprint */
    bool staged;     /* run.path is a staging file in the store (no --save, no --json) */
    bool tried;      /* keep_finish ran: a staging file left behind is the user's now */
};

/* Starts keeping a run when `label` or `dir` is given (`dir` NULL: RUNS_DEFAULT_DIR) and
 * samples the machine state now (about 100 ms); otherwise keeps nothing. Strings are
 * borrowed. */
void keep_begin(struct keep *k, const char *label, const char *dir);
/* The file the run is written to: `given` (--save, --json) or, when NULL and a run is kept, a
 * staging file in the store (owned by `k`). NULL when there is none: nothing given and
 * nothing kept, or the store folder cannot be written (then the one-line cause is printed and
 * the run is not kept). */
const char *keep_file(struct keep *k, enum run_kind kind, const char *given);
/* The run's file could not be written: nothing is kept. */
void keep_drop(struct keep *k);
/* Adds the file to the store with the label, and prints one line saying where it went or why
 * it could not. Returns 0, or EXIT_FAIL when the run was to be kept and was not. */
int keep_finish(struct keep *k);
/* Releases `k`; removes a staging file keep_finish never saw. */
void keep_fini(struct keep *k);

#endif
