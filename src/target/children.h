// SPDX-License-Identifier: MIT
// Following a process tree from outside: finding new descendants of the processes being
// sampled, and noticing when a process replaced its program (exec).
#ifndef CRUX_CHILDREN_H
#define CRUX_CHILDREN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct childscan {
    long last_pid; /* newest pid the system had created at the previous scan */
    uint64_t scans, skipped;
};

/* Finds processes whose parent is in `known` (n of them) and that are not in it themselves,
 * grandchildren included (a child found in this scan counts as known). Writes up to `max` new
 * pids and their parents. Skips the /proc walk when no process was created since the last
 * call (the newest pid in /proc/loadavg did not change). Returns the number found. */
size_t children_scan(struct childscan *cs, const pid_t *known, size_t n, pid_t *out,
                     pid_t *out_ppid, size_t max);
/* A value that changes whenever `pid` execs (the AT_RANDOM address of its auxiliary vector);
 * 0 when it cannot be read. */
uint64_t children_exec_id(pid_t pid);
/* The parent of `pid` from /proc/PID/stat, or -1. */
pid_t children_ppid(pid_t pid);
/* Parses the parent pid out of a /proc/PID/stat line; -1 when malformed. */
pid_t children_parse_ppid(const char *line, size_t len);

#endif
