// SPDX-License-Identifier: MIT
// The machine's state at a moment, kept with a run to explain an outlier: how loaded it was
// and which other processes were busy (docs/loop.md, "Machine state").
#ifndef CRUX_MACHSTATE_H
#define CRUX_MACHSTATE_H

/* The interval over which processes' CPU use is measured. */
#define MACHSTATE_MS 100
/* Processes looked at, at most. */
#define MACHSTATE_MAX_PIDS 4096

/* The machine's state now: load averages, procs_running and procs_blocked, and the three
 * processes other than crux that used the most CPU over MACHSTATE_MS. Returns a new JSON
 * object; the caller frees it. Takes about MACHSTATE_MS. */
char *machstate_now(void);

#endif
