// SPDX-License-Identifier: MIT
// Profile stacks of asyncio tasks (record --async): see taskstacks.h.
#include "sampler/taskstacks.h"

#include <stdio.h>
#include <string.h>

#define PREFIX_DEPTH 16 /* awaiters followed above a task */

static uint32_t marker(struct profile *p, const char *text)
{
    return profile_frame(p, profile_str(p, text, strlen(text)), 0, 0, FRAME_MARKER);
}

/* The name a task is shown by: its own, or for a default name ("Task-12") the qualified name
 * of its coroutine, so that tasks of one kind aggregate. */
static void shown_name(const struct taskstacks *ts, size_t i, char *out, size_t n)
{
    const struct atask *t = &ts->a->tasks[i];
    if (!t->default_name) {
        snprintf(out, n, "%s", t->name);
        return;
    }
    const char *q = NULL;
    if (t->nframes)
        q = ts->r->codes.v[ts->a->frames[t->first].code].qualname;
    for (uint32_t k = 0; !q && k < ts->r->codes.n; k++)
        if (ts->r->codes.v[k].addr == t->root_code)
            q = ts->r->codes.v[k].qualname;
    snprintf(out, n, "%s", q ? q : "Task");
}

static uint32_t push_chain(const struct taskstacks *ts, uint32_t st, size_t i)
{
    const struct atask *t = &ts->a->tasks[i];
    for (uint32_t k = 0; k < t->nframes; k++)
        st = profile_push(ts->p, st, ts->frame(ts->arg, &ts->a->frames[t->first + k]));
    return st;
}

static uint32_t prefix_depth(const struct taskstacks *ts, uint32_t root, size_t i, unsigned d)
{
    const struct atask *t = &ts->a->tasks[i];
    uint32_t st = root;
    if (t->parent >= 0 && t->nawaiters == 1 && d < PREFIX_DEPTH) {
        st = prefix_depth(ts, root, (size_t)t->parent, d + 1);
        st = push_chain(ts, st, (size_t)t->parent);
        if (t->via_gather)
            st = profile_push(ts->p, st, marker(ts->p, "[gather]"));
    }
    char name[ASYNCIO_NAME_LEN], text[ASYNCIO_NAME_LEN + 48];
    shown_name(ts, i, name, sizeof(name));
    if (t->nawaiters > 1)
        snprintf(text, sizeof(text), "<task %s> (awaited by %u)", name, t->nawaiters);
    else
        snprintf(text, sizeof(text), "<task %s>", name);
    return profile_push(ts->p, st, marker(ts->p, text));
}

uint32_t taskstacks_prefix(const struct taskstacks *ts, uint32_t root, size_t i)
{
    return prefix_depth(ts, root, i, 0);
}

uint32_t taskstacks_suspended(const struct taskstacks *ts, uint32_t root, size_t i)
{
    const struct atask *t = &ts->a->tasks[i];
    uint32_t st = push_chain(ts, taskstacks_prefix(ts, root, i), i);
    char text[ASYNCIO_LABEL_LEN + 16];
    snprintf(text, sizeof(text), "[await] %s", t->awaits[0] ? t->awaits : "?");
    return profile_push(ts->p, st, marker(ts->p, text));
}

bool taskstacks_emits(const struct asyncreader *a, size_t i)
{
    return a->tasks[i].state == ATASK_SUSPENDED && !a->tasks[i].awaits_tasks;
}

bool taskstacks_code_is(const struct pycode *c, const char *qualname, const char *file)
{
    if (strcmp(c->qualname, qualname) == 0)
        return true;
    const char *dot = strrchr(qualname, '.');
    size_t fl = strlen(c->filename), sl = strlen(file);
    return dot && strcmp(c->qualname, dot + 1) == 0 && fl >= sl &&
           strcmp(c->filename + fl - sl, file) == 0;
}

int taskstacks_running(const struct taskstacks *ts, const struct pythread *th, int *task)
{
    /* Root first: the frame after Handle._run whose code is a running task's coroutine. */
    const struct pyframe *fr = &ts->r->frames[th->first];
    for (uint32_t k = th->nframes; k > 1; k--) {
        const struct pycode *caller = &ts->r->codes.v[fr[k - 1].code];
        if (!taskstacks_code_is(caller, "Handle._run", "asyncio/events.py"))
            continue;
        const struct pycode *c = &ts->r->codes.v[fr[k - 2].code];
        int i = asyncreader_running(ts->a, c->addr);
        if (i >= 0) {
            *task = i;
            return (int)(k - 2);
        }
    }
    return -1;
}
