// SPDX-License-Identifier: MIT
// The memory map of a process, parsed from /proc/PID/maps.
#ifndef CRUX_MAPS_H
#define CRUX_MAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/err.h"

struct map {
    uint64_t start, end; /* [start, end) */
    uint64_t offset;     /* file offset of start */
    char perms[5];       /* "r-xp" */
    char *path;          /* owned; "" for anonymous mappings, "[heap]" etc. kept as is */
};

struct maps {
    struct map *v;
    size_t n;
};

/* Parses /proc/PID/maps into `m` (caller storage). ERR_PROC_GONE, ERR_PERM with context. */
int maps_load(pid_t pid, struct maps *m, struct errbuf *eb) MUST_CHECK;
/* Parses maps text (for tests); `text` is NUL-terminated. */
int maps_parse(const char *text, struct maps *m) MUST_CHECK;
/* Releases the entries. */
void maps_fini(struct maps *m);
/* Returns the mapping containing `addr`, or NULL. */
const struct map *maps_find(const struct maps *m, uint64_t addr);
/* True when [addr, addr + len) lies in readable mappings. */
bool maps_readable(const struct maps *m, uint64_t addr, uint64_t len);
/* Returns the first mapping (lowest address) whose path's basename starts with `prefix`,
 * or NULL. */
const struct map *maps_find_lib(const struct maps *m, const char *prefix);
/* Returns the lowest mapping of exactly `path`, or NULL. */
const struct map *maps_first_of(const struct maps *m, const char *path);

#endif
