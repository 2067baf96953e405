// SPDX-License-Identifier: MIT
// libcrux_alloc.so, the allocation sampler's engine: the malloc family interposed with
// LD_PRELOAD, the per-thread Poisson countdown, the table of sampled live blocks and the
// writer of allocation records, and the PyMem hooks themselves (plain C: the allocator functions
// of CPython's PyMemAllocatorEx). Knows nothing of Python: crux._agent gives it a stack function
// and installs its hooks with PyMem_SetAllocator (docs/memory.md).
#ifndef CRUX_ALLOCSHIM_H
#define CRUX_ALLOCSHIM_H

#include <stddef.h>
#include <stdint.h>

#include "agentshm.h"

/* Returns the stack entry id of the calling thread's Python stack (0: none). Called with the
 * thread's guard held, so allocations inside it are not seen; must not take the GIL. */
typedef uint32_t (*crux_alloc_stack_fn)(void);

struct crux_alloc_cfg {
    struct agentshm_hdr *hdr;  /* the ring, with its allocation section */
    crux_alloc_stack_fn stack; /* the agent's stack capture */
    uint64_t sample_bytes;     /* mean bytes between samples; 0 = every allocation */
    uint64_t copy_bytes;       /* mean bytes copied (memcpy, memmove) between copy samples;
                                * 0 = copies not sampled */
};

/* A PyMem domain's saved allocator: its first five members are laid out as CPython's
 * PyMemAllocatorEx (stable since 3.5), so that the agent copies them over. The context of the
 * crux_alloc_hook_* functions; owned by the caller, alive as long as the hooks are installed. */
struct crux_alloc_dom {
    void *ctx;
    void *(*malloc)(void *ctx, size_t size);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *ptr, size_t new_size);
    void (*free)(void *ctx, void *ptr);
    uint32_t domain; /* AGENTSHM_DOM_RAW, _MEM or _OBJ */
};

/* The PyMem hooks, `ctx` a struct crux_alloc_dom: they call its allocator and count the call
 * when it is the thread's outermost; thread-safe (CPython calls RAW without the GIL). */
void *crux_alloc_hook_malloc(void *ctx, size_t size);
void *crux_alloc_hook_calloc(void *ctx, size_t nelem, size_t elsize);
void *crux_alloc_hook_realloc(void *ctx, void *ptr, size_t new_size);
void crux_alloc_hook_free(void *ctx, void *ptr);

/* Starts sampling into `cfg->hdr` (copied); a second call restarts with an empty live table.
 * Returns 0, or -1 when the live table cannot be mapped. Not thread-safe with itself. */
int crux_alloc_start(const struct crux_alloc_cfg *cfg);
/* Stops sampling (the hooks become a flag check). */
void crux_alloc_stop(void);
/* Enters the calling thread's guard: 1 when it was free (the caller must crux_alloc_leave),
 * 0 when this thread is already inside a hook (the caller just passes the call on). */
int crux_alloc_enter(void);
void crux_alloc_leave(void);
/* Counts an allocation of `size` bytes at `p` through `domain` (AGENTSHM_DOM_*); samples it
 * when the thread's countdown runs out. Call with the guard held (or from a hook of its own
 * that no allocator call can nest in). */
void crux_alloc_note(void *p, size_t size, uint32_t domain);
/* Forgets `p` before it is freed, writing a free record when it was sampled. One bit of a
 * filter looked at when it was not. */
void crux_alloc_note_free(void *p);

#endif
