// SPDX-License-Identifier: MIT
// Native allocations on attach (part of libcrux_alloc.so): the GOT slots of malloc, calloc,
// realloc, free, posix_memalign, aligned_alloc, memalign, mmap and munmap in every loaded
// object are pointed at sampling wrappers that forward to the process's own functions, and
// put back exactly on detach (docs/memory.md, "Attaching").
#ifndef CRUX_GOTPATCH_H
#define CRUX_GOTPATCH_H

#include <stdint.h>

/* What a patch or a restore did. */
struct crux_got_report {
    uint32_t objects; /* loaded objects whose slots were patched (patch) or visited (restore) */
    uint32_t slots;   /* slots patched (patch) or restored to their saved value (restore) */
    uint32_t saved;   /* slots saved by the last patch (restore: how many should come back) */
    uint32_t skipped; /* slots left alone: not holding the process's own function (patch), or
                       * no longer holding the wrapper or their object gone (restore) */
};

/* Points the allocation slots of every loaded object at the wrappers (once: a second call
 * without a restore does nothing and reports the first). Skips the objects that define the
 * allocator (libc, or a preloaded jemalloc), libcrux_*, the loader and the vDSO, and every
 * slot that does not hold what dlsym(RTLD_DEFAULT) finds (an unresolved lazy slot, another
 * tool's hook). Callers serialize patch and restore (crux._agent does both with the GIL).
 * Returns 0, or -1 when the process's allocator cannot be found. */
int crux_got_patch(struct crux_got_report *out);
/* Writes every saved slot back, when it still holds the wrapper and its object is still
 * loaded at the same address; afterwards the wrappers are unreachable from new calls (a call
 * already inside one completes: the library is never unloaded). Returns 0. */
int crux_got_restore(struct crux_got_report *out);

#endif
