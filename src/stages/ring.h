// SPDX-License-Identifier: MIT
// Reads a target's stage ring (written by the agent, layout in agent/agentshm.h): attach,
// drain stage records, and tell which stage each thread is in for tagging samples.
#ifndef CRUX_RING_H
#define CRUX_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent/agentshm.h"
#include "stages/span.h"
#include "util/err.h"

/* Records copied per drain call at most (the caller may call again). */
#define STAGERING_BATCH 4096

struct stagering {
    int fd;
    bool opened; /* fd is open */
    pid_t pid;
    char path[256];
    struct agentshm_hdr hdr; /* validated at open */
    uint64_t read_idx;       /* next record to read */
    uint64_t lost;           /* records overwritten before they were read, or skipped */
    uint64_t bad;            /* records that failed validation */
    uint64_t drained;        /* records returned */
    uint64_t stall_idx;      /* an unpublished record seen at read_idx, and how often */
    uint32_t stall_count;
    bool attached;
    char (*names)[AGENTSHM_NAME_MAX + 1]; /* copied names, AGENTSHM_NAMES of them */
    uint8_t *names_ok;
    struct agentshm_slot *slots; /* copy made by stagering_refresh_threads */
    bool slots_ok;
    struct agentshm_rec *a, *b; /* two copies of a batch (see drain) */
    /* The allocation section (record --allocations), when the file has a valid one. */
    bool allocs;
    uint64_t aread_idx; /* next allocation record to read */
    uint64_t alost;     /* allocation records overwritten before they were read */
    uint64_t astall_idx;
    uint32_t astall_count;
    struct agentshm_arec *aa, *ab; /* two copies of a batch */
    char **cfile, **cname;         /* code entries read so far (AGENTSHM_CODES each) */
};

/* Opens /dev/shm/crux-agent-PID and attaches (the agent in `pid` starts recording).
 * ERR_NOT_FOUND when the process has no ring (it did not import crux), ERR_PERM, ERR_CORRUPT
 * or ERR_VERSION for a file that fails validation; `eb` then holds a complete one-line
 * message with the cause and the fix (print it as is). */
int stagering_open(struct stagering *r, pid_t pid, struct errbuf *eb) MUST_CHECK;
/* Same for a ring file at `path`; `pid` 0 accepts any writer pid. */
int stagering_open_path(struct stagering *r, const char *path, pid_t pid,
                        struct errbuf *eb) MUST_CHECK;
/* Detaches (the agent stops recording) and releases everything. Safe on a zeroed struct. */
void stagering_close(struct stagering *r);

/* Copies up to `max` new complete records into `out` (names point into `r`, valid until
 * stagering_close) and returns how many. Never blocks; every index, size and name read from
 * the file is checked, so a garbage file yields nothing rather than a crash. */
size_t stagering_drain(struct stagering *r, struct stage_span *out, size_t max);

/* Re-reads every thread's current stage; call once per sampling round, before
 * stagering_current. Returns 0 or ERR_IO (then stagering_current returns NULL). */
int stagering_refresh_threads(struct stagering *r) MUST_CHECK;
/* The stage thread `tid` was in at the last refresh, or NULL (none, or unknown). The string
 * is owned by `r`. */
const char *stagering_current(struct stagering *r, pid_t tid);
/* Lists up to `max` threads that were in a stage at the last refresh; returns how many. */
size_t stagering_list_current(struct stagering *r, struct stage_current *out, size_t max);
/* Copies up to `max` new complete allocation records into `out`; 0 when the ring has no
 * allocation section. Validated like stagering_drain. */
size_t stagering_drain_allocs(struct stagering *r, struct agentshm_arec *out, size_t max);
/* Reads stack entry `id` into `out`: 0, or ERR_CORRUPT when it is not (yet) valid. */
int stagering_alloc_stack(struct stagering *r, uint32_t id, struct agentshm_stack *out) MUST_CHECK;
/* The function name of code entry `id` and its file in *file, or NULL when not (yet) valid.
 * Both owned by `r`. */
const char *stagering_code(struct stagering *r, uint32_t id, const char **file);

/* The text of name index `id`, or NULL when the entry is not (yet) valid. Owned by `r`. */
const char *stagering_name(struct stagering *r, uint32_t id);

#endif
