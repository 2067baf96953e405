// SPDX-License-Identifier: MIT
// record --allocations: the environment a launched program gets so that crux's agent samples
// its allocations (the preloaded engine, the startup hook, the rate); docs/memory.md.
#ifndef CRUX_ALLOCENV_H
#define CRUX_ALLOCENV_H

#include <stddef.h>

#include "util/err.h"

#define ALLOCENV_DEFAULT_BYTES (512u * 1024u)
#define ALLOCENV_VARS 6
/* Mean bytes copied (memcpy, memmove) between copy samples, unless $CRUX_COPIES says (0: off). */
#define ALLOCENV_COPY_BYTES (1024u * 1024u)

/* The variables set, with their previous values, to put back after the launch. */
struct allocenv {
    char *old[ALLOCENV_VARS]; /* owned; NULL = was unset */
    int set;
};

/* Parses --allocations' value: NULL (the default, 512 KiB), "all", or bytes with an optional
 * K, M or G suffix (powers of 1024). Writes what $CRUX_ALLOCATIONS gets into out (32 bytes).
 * Returns 0 or ERR_ARG. */
int allocenv_parse(const char *arg, char *out, size_t cap) MUST_CHECK;
/* Sets LD_PRELOAD, PYTHONPATH, CRUX_ALLOCATIONS, CRUX_ALLOC_SHIM and CRUX_AGENT_ATTACHED for
 * a child about to be launched, finding the agent in $CRUX_AGENT_DIR or beside the crux
 * executable (build/agent). ERR_NOT_FOUND, with the fix in eb, when it is not built. */
int allocenv_setup(struct allocenv *e, const char *value, struct errbuf *eb) MUST_CHECK;
/* Writes the agent's directory ($CRUX_AGENT_DIR, else agent/ beside or one above the crux
 * executable) into out. ERR_NOT_FOUND when libcrux_alloc.so is not there. */
int allocenv_agent_dir(char *out, size_t cap) MUST_CHECK;
/* Puts the environment back as it was. */
void allocenv_restore(struct allocenv *e);

#endif
