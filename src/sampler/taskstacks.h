// SPDX-License-Identifier: MIT
// record --async: the logical stacks of asyncio tasks as profile stacks. A loop thread's
// sample is re-rooted at the running task (`<task NAME>` then its coroutine frames), and each
// suspended task adds one sample per round of its own (`<task NAME>`, its await chain, then
// `[await] WHAT`), state idle and flagged SAMPLE_TASK, so wall time per awaited call shows per
// task without adding to the thread's CPU. A task awaited by one other task (directly or as a
// child of a gather) is shown under its awaiter's chain; one awaited by several is marked so.
#ifndef CRUX_TASKSTACKS_H
#define CRUX_TASKSTACKS_H

#include <stddef.h>
#include <stdint.h>

#include "cpython/asyncio.h"
#include "cpython/pyreader.h"
#include "profile/profile.h"

/* Maps a frame of the reader's round to a profile frame id. */
typedef uint32_t (*taskstacks_frame_fn)(void *arg, const struct pyframe *f);

struct taskstacks {
    struct profile *p;
    const struct pyreader *r;
    const struct asyncreader *a;
    taskstacks_frame_fn frame;
    void *arg;
};

/* Whether `c` is asyncio's function `qualname` ("Handle._run") defined in a file ending in
 * `file` ("asyncio/events.py"): before 3.11 code objects have no qualified name, only the
 * name, so the file tells which class's method it is. */
bool taskstacks_code_is(const struct pycode *c, const char *qualname, const char *file);
/* Index of the frame in `th`'s stack (0 = leaf) where a running task's coroutine starts (the
 * frame Handle._run called), and that task's index in *task; -1 when the thread runs no
 * task now. */
int taskstacks_running(const struct taskstacks *ts, const struct pythread *th, int *task);
/* The stack `root` extended by task `i`'s prefix: its awaiters' chains (bounded), then its
 * `<task NAME>` marker. */
uint32_t taskstacks_prefix(const struct taskstacks *ts, uint32_t root, size_t i);
/* The stack of suspended task `i` on `root`: the prefix, its await chain, `[await] WHAT`. */
uint32_t taskstacks_suspended(const struct taskstacks *ts, uint32_t root, size_t i);
/* Whether suspended task `i` gets samples of its own: not when it only waits for other
 * tasks (their samples carry its chain). */
bool taskstacks_emits(const struct asyncreader *a, size_t i);

#endif
