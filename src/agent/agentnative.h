// SPDX-License-Identifier: MIT
// Native allocations on attach, crux._agent's side (docs/memory.md, "Attaching"): patches the
// GOT through the engine (gotpatch.h) and keeps one watcher thread that, once crux is gone,
// puts the slots and the PyMem allocators back and ends.
#ifndef CRUX_AGENTNATIVE_H
#define CRUX_AGENTNATIVE_H

#include <stddef.h>

#include "agentshm.h"

/* After agentalloc_attach, with the GIL: patches the allocation slots of every loaded object
 * (once per attach session), and starts the watcher that undoes it and the PyMem hooks when
 * `h` is no longer attached. Writes a one-line report into msg ("native=1 slots=N objects=M",
 * or why native allocations are not sampled). Returns 0, or -1 when the watcher cannot start
 * (nothing is then patched). */
int agentnative_attach(struct agentshm_hdr *h, char *msg, size_t cap);

#endif
