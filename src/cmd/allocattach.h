// SPDX-License-Identifier: MIT
// record --allocations --pid: loads crux's agent into a running Python process (through
// target/inject.c) and starts its allocation hooks; docs/memory.md, "Attaching".
#ifndef CRUX_ALLOCATTACH_H
#define CRUX_ALLOCATTACH_H

#include <stdint.h>
#include <sys/types.h>

#include "target/inject.h"
#include "util/err.h"

#define ALLOCATTACH_STATUS_WAIT_US 5000000 /* longest wait for the agent's thread to report */

struct allocattach {
    struct inject_result inject; /* the borrowed thread, its stops, the time it was ours */
    uint64_t total_us;           /* from the first stop to the hooks reported running */
    char msg[512];               /* on failure: one line, cause and fix */
    char native[160];            /* on success: the agent's report of the native hooks
                                  * ("native=1 got_slots=N objects=M skipped=K") */
};

/* Attaches to `pid` with `value` (what allocenv_parse() wrote: bytes or "all"). Returns 0 when
 * the hooks run (crux's sampler then finds the ring /dev/shm/crux-agent-PID); else an ERR_*
 * with at->msg set. Refuses, before any ptrace, another architecture or a seccomp filter. */
int allocattach_start(pid_t pid, const char *value, struct allocattach *at) MUST_CHECK;

#endif
