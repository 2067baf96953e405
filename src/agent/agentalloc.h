// SPDX-License-Identifier: MIT
// The Python side of allocation sampling in crux._agent: the PyMem hooks, the stack capture
// and the code and stack tables of the ring's allocation section (docs/memory.md).
#ifndef CRUX_AGENTALLOC_H
#define CRUX_AGENTALLOC_H

#include <stdint.h>

#include "agentshm.h"

/* Whether $CRUX_ALLOCATIONS asks for allocation sampling ("all", or mean bytes between
 * samples; empty or unset: no). Sets *sample_bytes (0 = every allocation). */
int agentalloc_wanted(uint64_t *sample_bytes);
/* Bytes the allocation section takes with `nrec` records. */
uint64_t agentalloc_bytes(uint32_t nrec);
/* Fills the header's allocation fields for a section at byte offset `off`. */
void agentalloc_layout(struct agentshm_hdr *h, uint64_t off, uint32_t nrec, uint64_t sample_bytes);
/* Installs the hooks (once; needs the GIL the first time) and starts sampling into `h`
 * (again after a fork, on the child's ring). Returns 0, or -1 when the engine
 * (libcrux_alloc.so) cannot be found: nothing is then sampled. */
int agentalloc_start(struct agentshm_hdr *h);
/* Stops sampling: the hooks stay, as flag checks. */
void agentalloc_stop(void);
/* As agentalloc_start, for a process crux attached to: the engine is dlopen'd from `shim`
 * (kept local: it is not a preload there) and, when the hooks are installed now, the RAW
 * domain is left alone (it runs without the GIL). Needs the GIL. */
int agentalloc_attach(struct agentshm_hdr *h, const char *shim);
/* With the GIL: puts back the PyMem allocators agentalloc_attach replaced, when ours are still
 * the ones installed (else they stay, inert); a later attach hooks again. */
void agentalloc_unhook(void);
/* The engine's dlopen handle (RTLD_DEFAULT when it is preloaded); NULL before a start. */
void *agentalloc_engine(void);
/* Why the engine could not be loaded (dlerror's text); a static string. */
const char *agentalloc_error(void);

#endif
