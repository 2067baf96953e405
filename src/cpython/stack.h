// SPDX-License-Identifier: MIT
// The reader's stack walks, per interpreter generation: heap frames on 3.8-3.10 (stack38.c)
// and data stacks on 3.11+ (stack311.c), with the helpers they share (pyreader.c). Internal
// to the reader: only pyreader.c and the two walks include it.
#ifndef CRUX_STACK_H
#define CRUX_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpython/pyreader.h"
#include "target/mem.h"

/* _PyInterpreterFrame.owner (3.11+). */
#define OWNER_THREAD 0       /* in the thread's data stack */
#define OWNER_GENERATOR 1    /* inside a generator or coroutine object */
#define OWNER_FRAME_OBJECT 2 /* copied into a frame object that outlived its call */
#define OWNER_CSTACK 3       /* 3.12, 3.13: the entry frame each eval call pushes on the C stack */

#define FRAME_READ_MAX 512 /* bytes of one frame header read (3.8-3.10 frame objects) */

/* --- pyreader.c -------------------------------------------------------------------------- */

/* The thread-state bytes of slot `t` copied by this round's structure batch. */
uint8_t *stack_blob(struct pyreader *r, size_t t);
/* Starts a walk: a fresh generation of the cycle check. */
void stack_walk_begin(struct pyreader *r);
/* Whether the walk met frame `addr` before (a cycle; also true past the table's size). */
bool stack_seen_before(struct pyreader *r, uint64_t addr);
/* Appends a frame to `th`'s stack; `addr` (3.8-3.10: the frame object) kept beside it. */
void stack_push_frame(struct pyreader *r, struct pythread *th, uint32_t code, struct pyloc pos,
                      bool entry, uint64_t addr);

/* mem_readv, timed: sets r->batch_slow when the call took much longer than its spans need
 * (the reader was preempted or the target's memory map was locked meanwhile). */
int stack_readv(struct pyreader *r, const struct mem_span *sp, size_t n, uint8_t *ok);
/* Moves per-slot state (an array of `elem`-byte slots) along with the threads after the
 * thread list was read again: old_tstates[i] was slot i's thread state, r->tstates[] is the
 * new order; a slot whose thread is new gets another slot's buffers and `forget` is called
 * on it. */
void stack_remap(struct pyreader *r, void *slots, size_t elem, const uint64_t *old_tstates,
                 size_t nold, void (*forget)(void *slot));

/* --- 3.11+: stack311.c ------------------------------------------------------------------- */

/* Sets up the per-slot state (the reader's offsets must be 3.11+). */
void stack311_init(struct pyreader *r);
/* Releases the slots' buffers. */
void stack311_fini(struct pyreader *r);
/* Forgets every slot's predictions (buffers are kept). */
void stack311_forget_all(struct pyreader *r);
/* Moves the slots' state along with their threads after the thread list was read again:
 * old_tstates[i] was slot i's thread state; r->tstates[] is the new order. */
void stack311_remap(struct pyreader *r, const uint64_t *old_tstates, size_t nold);
/* Appends slot `t`'s group of spans to `sp` at index `n`: the predicted copies of its data
 * stack and outside frames, then the thread state again. With `alone` the group also reads
 * the thread state first (otherwise the structure batch's copy, read just before, is the
 * "before"). Returns the new span count; at most stack311_max_spans() are added. */
size_t stack311_group(struct pyreader *r, size_t t, struct mem_span *sp, size_t n, bool alone);
/* The most spans one group adds. */
size_t stack311_max_spans(void);
/* After the batch holding slot `t`'s group was read (`ok` is the batch's per-span flags):
 * 0 when the thread state read the same before and after and the copies cover its stack;
 * ERR_AGAIN when it moved or a prediction missed (read the slot again); ERR_READ. */
int stack311_check(struct pyreader *r, size_t t, const uint8_t *ok);
/* Walks slot `t` from its checked copies into r->frames. ERR_AGAIN when frames outside the
 * copies were needed, ERR_CORRUPT when the frames do not tile the data stack or fail another
 * check, ERR_PROC_GONE. */
int stack311_walk(struct pyreader *r, size_t t, uint64_t now_ns);
/* The kernel thread id in the thread state slot `t`'s last attempt read itself (a read
 * alone, later than the round's batch); false when it used the batch's copy. */
bool stack311_fresh_tid(const struct pyreader *r, size_t t, pid_t *tid);
/* Sets what slot `t`'s next group copies, from the freshest thread state the slot has and
 * what its last walk met (called after every attempt, so the next round starts from it). */
void stack311_predict(struct pyreader *r, size_t t);
/* Reads slot `t`'s group alone (one call, predictions refreshed from what the last attempt
 * saw), checks and walks it. Returns what stack311_check or stack311_walk returned. */
int stack311_read_alone(struct pyreader *r, size_t t, uint64_t now_ns);

/* --- 3.8-3.10: stack38.c ----------------------------------------------------------------- */

/* Sets up the per-slot state (the reader's offsets must be 3.8-3.10). */
void stack38_init(struct pyreader *r);
/* Releases it. */
void stack38_fini(struct pyreader *r);
/* Forgets every slot's predictions (buffers are kept). */
void stack38_forget_all(struct pyreader *r);
/* Moves the slots' state along with their threads (see stack_remap). */
void stack38_remap(struct pyreader *r, const uint64_t *old_tstates, size_t nold);
/* Appends slot `t`'s group to `sp` at index `n`: its predicted frames copied twice (with
 * `alone`, after the thread state). Returns the new span count, at most stack38_max_spans()
 * more. */
size_t stack38_group(struct pyreader *r, size_t t, struct mem_span *sp, size_t n, bool alone);
size_t stack38_max_spans(void);
/* After the batch holding slot `t`'s group was read (`ok`: its per-span flags), walks the
 * stack from the thread state's frame through the copies. ERR_AGAIN when frames outside the
 * copies were met or the copies disagree (read the slot again), ERR_CORRUPT, ERR_PROC_GONE. */
int stack38_walk_group(struct pyreader *r, size_t t, const uint8_t *ok, uint64_t now_ns);
/* Sets what slot `t`'s next group copies from what its last walk met. */
void stack38_predict(struct pyreader *r, size_t t);
/* Reads slot `t`'s group alone (thread state first, predictions refreshed) and walks it. */
int stack38_read_alone(struct pyreader *r, size_t t, uint64_t now_ns);
/* Walks the frame objects of `th` from its current frame `f`, one read each (a stopped
 * thread). */
int stack38_walk(struct pyreader *r, struct pythread *th, uint64_t f, uint64_t now_ns);
/* Reads the frames of `th` at this round's addresses in one call, for a re-read. */
void stack38_preread(struct pyreader *r, const struct pythread *th);
/* Drops the stacks of two threads whose walks ended at the same outermost frame. */
void stack38_drop_shared_roots(struct pyreader *r);

#endif
