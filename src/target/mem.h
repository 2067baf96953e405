// SPDX-License-Identifier: MIT
// Reading another process's memory without stopping it (process_vm_readv).
#ifndef CRUX_MEM_H
#define CRUX_MEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/err.h"

/* One piece of a batched read: `len` bytes at target address `addr` into `dst`. */
struct mem_span {
    uint64_t addr;
    void *dst;
    size_t len;
};

/* Reads exactly `len` bytes at `addr` of process `pid` into `dst`, retrying short reads.
 * ERR_READ when unmapped, ERR_PROC_GONE when the process is gone, ERR_PERM when denied. */
int mem_read(pid_t pid, uint64_t addr, void *dst, size_t len) MUST_CHECK;

/* Reads `n` spans with as few system calls as possible (one per 1024 spans when nothing
 * fails; one more after each unreadable span). Sets ok[i] to 1 for each span read whole and
 * 0 for the others, and returns the number of unreadable spans, or a negative ERR_PROC_GONE
 * / ERR_PERM when the process cannot be read at all (then `ok` is undefined). */
int mem_readv(pid_t pid, const struct mem_span *spans, size_t n, uint8_t *ok) MUST_CHECK;

/* Counts system calls made by this module, and the remote ranges they read (what the kernel
 * pays per call is mostly per range); for benchmarks, not thread-safe. */
uint64_t mem_syscalls(void);
uint64_t mem_ranges(void);

#endif
