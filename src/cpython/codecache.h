// SPDX-License-Identifier: MIT
// Cache of code objects read from the target: names, first line, bytecode span and the
// decoded line table, keyed by address and revalidated against fields that prove identity.
#ifndef CRUX_CODECACHE_H
#define CRUX_CODECACHE_H

#include <stdint.h>
#include <sys/types.h>

#include "cpython/linetable.h"
#include "cpython/pyruntime.h"
#include "util/err.h"
#include "util/hmap.h"

/* Where an instruction is in the source: its line (as codecache_line) and 1-based start column
 * (0 = unknown: before 3.11, or an entry without columns). `loc` names the decoded run that
 * gave them (0 for b < 0, nruns + 1 past the table): within one cache entry, equal `loc` means
 * equal line and column, so (entry id, loc) can key what is derived from the position. */
struct pyloc {
    int32_t line;
    uint32_t col;
    uint32_t loc;
};

struct pycode {
    uint32_t id; /* unique for the life of the cache; a reloaded entry gets a new id */
    uint64_t addr;
    char *qualname; /* owned, UTF-8 */
    char *filename; /* owned, UTF-8 */
    int32_t firstlineno;
    uint64_t code_start;     /* 3.11+: address of co_code_adaptive; <=3.10: 0 */
    uint32_t code_bytes;     /* bytecode length in bytes */
    uint32_t firsttraceable; /* 3.11+: code units of prologue before RESUME */
    uint32_t framesize;      /* 3.11+: bytes a frame of it takes on the data stack */
    uint32_t nlocals;        /* 3.11+: co_nlocalsplus (locals, cells and frees); 0 unknown */
    uint8_t *ops; /* 3.11+: per code unit, the kind (PY_OP_*) of the instruction starting there,
                   * 0 inside one (an inline cache unit); NULL when unknown. Owned. */
    struct line_run *runs;
    size_t nruns;
    int64_t memo_b;    /* the offset codecache_loc last answered for (INT64_MIN: none) */
    struct pyloc memo; /* and its answer: a stack's frames repeat from round to round */
    int64_t kind_b;    /* the same for codecache_kind_at */
    int kind;
    uint64_t ident[3];   /* filename, name and line table pointers, re-checked on revalidation */
    uint64_t checked_ns; /* when the entry was last proved valid */
    uint64_t globals;    /* 3.11+: f_globals of the frames last seen running it; 0 none */
};

struct codecache {
    const struct pyruntime *rt;
    struct pycode *v; /* entries; index stored in `index` */
    uint32_t n, cap;
    struct hmap index; /* code address -> entry index */
    uint32_t next_id;
    uint64_t revalidate_ns; /* how old an entry may get before it is re-checked */
    uint32_t max_entries;   /* past this many, codecache_round starts over */
    uint64_t misses, reloads, resets;
};

#define CODECACHE_MAX_ENTRIES 262144
#define CODECACHE_REVALIDATE_NS 200000000ULL

/* Initializes an empty cache for runtime `rt` (which must outlive it). */
void codecache_init(struct codecache *c, const struct pyruntime *rt);
/* Releases every entry. */
void codecache_fini(struct codecache *c);
/* Called before each round of reads: empties a cache that has grown past max_entries (so
 * memory stays bounded). Never during a round: frames read in it hold entry indexes. */
void codecache_round(struct codecache *c);
/* Returns the entry for the code object at `addr`, reading it on a miss and re-reading its
 * header when older than revalidate_ns at time `now_ns`. The pointer is valid until the next
 * call. ERR_CORRUPT when `addr` is not a readable code object (torn frame, freed code). */
int codecache_get(struct codecache *c, uint64_t addr, uint64_t now_ns,
                  const struct pycode **out) MUST_CHECK;
#define CODECACHE_CHECK_BATCH 128

/* Re-checks, in one batched read, the cached entries of the code objects at `addrs` (up to
 * CODECACHE_CHECK_BATCH distinct ones not yet checked at `now_ns`): an entry whose address now
 * holds another code object expires, so that the next codecache_get reloads it. Used on
 * 3.8-3.10, where a frame gives no bytecode pointer to check a cached entry against.
 * Returns ERR_PROC_GONE / ERR_PERM when the process cannot be read, else 0. */
int codecache_check_many(struct codecache *c, const uint64_t *addrs, size_t n,
                         uint64_t now_ns) MUST_CHECK;
/* Like codecache_get, but re-reads the header of a cached entry now (used when a frame does
 * not fit the cached bytecode span: the address may hold another code object by now). */
int codecache_recheck(struct codecache *c, uint64_t addr, uint64_t now_ns,
                      const struct pycode **out) MUST_CHECK;
/* 3.11+: codecache_get for a frame that runs with globals dict `globals`. A cached entry
 * whose frames ran with other globals is re-read first: the code object it described may
 * have been freed (a module body after its import, code compiled by exec) and its address
 * reused by another, and the bytecode span check cannot see that when the new object
 * starts at the same address. Costs a read only when the globals change. */
int codecache_get_framed(struct codecache *c, uint64_t addr, uint64_t globals, uint64_t now_ns,
                         const struct pycode **out) MUST_CHECK;
/* 3.11+: 1 when byte offset `b` of `code` starts an instruction, 0 when it is inside one (an
 * inline cache unit), -1 when unknown (no table, or `b` outside the bytecode). */
int codecache_starts_at(const struct pycode *code, int64_t b);
/* 3.11+: the kind (PY_OP_*) of the instruction holding byte offset `b` of `code`, or 0 when
 * unknown. */
int codecache_kind_at(const struct pycode *code, int64_t b);
/* Returns the line executing at byte offset `b` of `code` (as PyCode_Addr2Line). */
int32_t codecache_line(const struct pycode *code, int64_t b);

/* Returns the position at byte offset `b` of `code`: one binary search of the runs decoded when
 * the code object was read (no decoding here). */
struct pyloc codecache_loc(const struct pycode *code, int64_t b);

#endif
