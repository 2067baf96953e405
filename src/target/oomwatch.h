// SPDX-License-Identifier: MIT
// Was a SIGKILLed target killed for memory? The kernel's OOM-kill counters (/proc/vmstat
// oom_kill, system-wide, every OOM kill whether global or of a cgroup's limit) read before the
// target starts and after it dies (docs/memory.md, "Out of memory"). dmesg is not needed.
#ifndef CRUX_OOMWATCH_H
#define CRUX_OOMWATCH_H

#include <stdbool.h>
#include <stdint.h>

struct oomwatch {
    bool known;      /* the counter was readable at the start */
    uint64_t kills0; /* its value then */
};

/* Reads the counter now. Never fails: an unreadable counter leaves `known` false. */
void oomwatch_start(struct oomwatch *w);
/* OOM kills the kernel counted since oomwatch_start (any process: on a shared host another's
 * kill counts too), or -1 when that cannot be told. */
int64_t oomwatch_kills(const struct oomwatch *w);
/* True while process `pid` is being torn down (PF_EXITING in /proc/PID/stat): a killed target
 * whose threads are gone but whose exit status is not yet there to reap. */
bool oomwatch_exiting(int pid);
/* The counter in `vmstat`, the text of /proc/vmstat; false when it has none. */
bool oomwatch_parse(const char *vmstat, uint64_t *kills);

#endif
