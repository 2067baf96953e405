// SPDX-License-Identifier: MIT
// One batched walk of asyncio tasks, for cpython/asyncio.c (which keeps tasks between rounds):
// the registry, the tasks, their coroutine chains one level per batched read, the check of a
// cached chain level, and the links between tasks. Every walk bounded, every object's type
// checked; a task that fails a check gets state 0 (counted in a->torn), never a guess.
#ifndef CRUX_ASYNCWALK_H
#define CRUX_ASYNCWALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpython/asyncio.h"
#include "cpython/pyreader.h"
#include "target/mem.h"

#define ASYNCWALK_SET_MAX 65536 /* entries of the set's table copied */
/* Bytes of a coroutine (header + frame) or another object copied. */
#define ASYNCWALK_OBJ_READ 160
/* Bytes between copies in a->buf: a Task (192 on 3.10) or ASYNCWALK_OBJ_WIDE. */
#define ASYNCWALK_OBJ_STRIDE 512
/* Bytes of a coroutine copied on 3.11+ (of a frame object before: ASYNCWALK_FRAME_WIDE), so that
 * the top of its value stack, the awaited object, comes with it and needs no read of its own; a
 * copy that fails (the end of a mapping) is read again with ASYNCWALK_OBJ_READ
 * (ASYNCWALK_FRAME38_READ) bytes. */
#define ASYNCWALK_OBJ_WIDE 512
#define ASYNCWALK_FRAME_WIDE 1024
#define ASYNCWALK_FRAME38_READ 120      /* PyFrameObject (3.8-3.10) up to f_executing / f_state */
#define ASYNCWALK_VBUF_BYTES (2u << 20) /* bytes of level copies checked per round, at most */
#define ASYNCWALK_VSPANS 8192           /* spans read to check cached tasks per round, at most */

/* Reads `n` objects of `len` bytes at a->addr[] into a->buf (ASYNCWALK_OBJ_STRIDE apart);
 * a->ok[i] says which were read. Errors: the process cannot be read. */
int asyncwalk_read(struct asyncreader *a, size_t n, size_t len) MUST_CHECK;
/* Reads spans[0..n) as given, then those that failed again with `narrow` bytes: ok[i] is 2
 * for a full copy, 1 for a narrow one, 0 for none. */
int asyncwalk_readv_wide(struct asyncreader *a, struct mem_span *spans, size_t n, uint8_t *ok,
                         size_t narrow) MUST_CHECK;
/* asyncwalk_read of ASYNCWALK_OBJ_WIDE bytes, `narrow` where that fails (ok[] as above). */
int asyncwalk_read_wide(struct asyncreader *a, size_t n, size_t narrow) MUST_CHECK;
/* Finds asyncio.tasks' set of tasks, _current_tasks and the Task and _GatheringFuture types
 * (again at most once per ASYNCIO_REFIND_NS); clears a->cached when the registry changed. */
int asyncwalk_find_registry(struct asyncreader *a, uint64_t interp, uint64_t now_ns) MUST_CHECK;
/* Copies the registry set's table into a->regtab; *n gets its number of entries. */
int asyncwalk_table(struct asyncreader *a, size_t *n) MUST_CHECK;
/* The task address a registry entry's hash names, 0 when it cannot be one. */
uint64_t asyncwalk_hash_task(uint64_t hash);
/* The live tasks of the registry (through their weak references) into a->addr, *n their
 * count; copies the table to a->regprev and sets a->hash_bad when an entry's hash does not
 * name its task. */
int asyncwalk_registry(struct asyncreader *a, size_t *n) MUST_CHECK;
/* Whether the copy `c` (lv->len bytes at lv->addr) still shows chain level `lv`. */
bool asyncwalk_level_same(const struct asyncreader *a, const uint8_t *c, const struct alevel *lv);
/* Parses the copy `b` of the task at `addr` into `t` (reset first); false when it is not a
 * Task. */
bool asyncwalk_parse_task(struct asyncreader *a, struct atask *t, const uint8_t *b, uint64_t addr);
/* Parses the copies of the n tasks read at a->addr into a->tasks[0..], dropping non-Tasks. */
void asyncwalk_parse_tasks(struct asyncreader *a, size_t n);
/* Reads the coroutines of tasks sel[0..n) and follows their await chains, appending their
 * frames (and check levels) to a->frames (a->levels); sets each task's state. */
int asyncwalk_chains(struct asyncreader *a, struct pyreader *r, const uint32_t *sel, size_t n,
                     uint64_t now_ns) MUST_CHECK;
/* Links tasks that wait on another task, or on a gather of tasks, to it (reads the types of
 * waiters not seen before and the children of gathers), and rebuilds a->index. */
void asyncwalk_link(struct asyncreader *a);

#endif
