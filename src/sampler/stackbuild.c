// SPDX-License-Identifier: MIT
// Profile stacks from what the reader saw: Python frames interned once per (code, position)
// and shared with the thread's last stack through the memo; --native's merged stacks;
// --async's task stacks.
#include <stdio.h>
#include <string.h>

#include "sampler/sproc.h"
#include "sampler/taskstacks.h"

/* What identifies the profile frame of a Python frame: its code entry and position run (the
 * column costs no more than the line did: decoded once per code object, found in the same
 * search). */
static uint64_t frame_key(const struct sproc *sp, const struct pyframe *f)
{
    const struct pycode *c = pyreader_code(&sp->r, f);
    uint64_t key = ((uint64_t)c->id << 32) | f->loc;
    return key ? key : ~(uint64_t)0; /* 0 is the empty key; loc never reaches 2^32 - 1 */
}

/* The profile frame of a Python frame whose frame_key is `key`. */
static uint32_t frame_of_key(struct sampler *s, struct sproc *sp, const struct pyframe *f,
                             uint64_t key)
{
    uint64_t v;
    if (hmap_get(&sp->frames, key, &v))
        return (uint32_t)v;
    const struct pycode *c = pyreader_code(&sp->r, f);
    struct profile *p = s->p;
    uint32_t name = profile_str(p, c->qualname, strlen(c->qualname));
    uint32_t file = profile_str(p, c->filename, strlen(c->filename));
    uint32_t id =
        profile_frame_col(p, name, file, f->line, s->o->columns ? f->col : 0, FRAME_PYTHON);
    hmap_put(&sp->frames, key, id);
    return id;
}

static uint32_t frame_of(struct sampler *s, struct sproc *sp, const struct pyframe *f)
{
    return frame_of_key(s, sp, f, frame_key(sp, f));
}

/* The frames every stack of a thread starts with: [process], [thread], [truncated]. */
static uint32_t stack_root(struct sampler *s, struct sproc *sp, const struct pythread *th,
                           bool truncated)
{
    struct profile *p = s->p;
    uint32_t st = 0;
    if (s->o->subprocesses)
        st = profile_push(p, st, sp->proc_frame);
    if (s->o->threads)
        st = profile_push(
            p, st, profile_frame(p, threadlabels_name(&sp->tl, p, th), 0, th->tid, FRAME_THREAD));
    if (truncated)
        st = profile_push(p, st, s->marker_truncated);
    return st;
}

/* The stack of one thread, root first: the root frames, then the Python frames. The frames
 * it shares with the thread's previous stack, from the outermost on, come from the memo. */
uint32_t stackbuild_thread(struct sampler *s, struct sproc *sp, const struct pythread *th)
{
    struct profile *p = s->p;
    uint32_t st = stack_root(s, sp, th, th->truncated);
    struct stackmemo_slot *m =
        stackmemo_begin(&sp->memo, (size_t)(th - sp->r.threads), th->tstate, th->ts_id, st);
    uint32_t depth = 0;
    bool same = true;
    for (uint32_t k = th->nframes; k > 0; k--, depth++) {
        const struct pyframe *f = &sp->r.frames[th->first + k - 1];
        uint64_t key = frame_key(sp, f);
        if (same && stackmemo_hit(&sp->memo, m, depth, key, &st))
            continue;
        same = false;
        st = profile_push(p, st, frame_of_key(s, sp, f, key));
        stackmemo_put(m, depth, key, st);
    }
    stackmemo_end(m, depth);
    return st;
}

static uint32_t native_frame_of(struct sampler *s, struct sproc *sp, const struct native_sym *sym)
{
    uint64_t key = (uint64_t)(uintptr_t)sym, v;
    if (hmap_get(&sp->native_frames, key, &v))
        return (uint32_t)v;
    struct profile *p = s->p;
    uint32_t name = profile_str(p, sym->name, strlen(sym->name));
    uint32_t file = profile_str(p, sym->module, strlen(sym->module));
    uint32_t id = profile_frame(p, name, file, 0, FRAME_NATIVE);
    hmap_put(&sp->native_frames, key, id);
    return id;
}

/* The merged stack of --native, root first: the root frames, then Python and native. */
static uint32_t merged_stack(struct sampler *s, struct sproc *sp, const struct pythread *th,
                             const struct native_stack *ns)
{
    struct profile *p = s->p;
    uint32_t st = stack_root(s, sp, th, ns->truncated);
    for (size_t k = 0; k < ns->n; k++) {
        const struct native_frame *f = &ns->v[k];
        st = profile_push(p, st,
                          f->kind == NATIVE_FRAME_PY ? frame_of(s, sp, &f->py)
                                                     : native_frame_of(s, sp, f->sym));
    }
    return st;
}

/* The merged stack of reader slot `t`: the thread's last one when it has not run since
 * (natreuse.h), else a new native sample: the thread stopped alone, its Python stack re-read
 * at that instant (on failure the round's Python frames alone). */
uint32_t stackbuild_native(struct sampler *s, struct sproc *sp, size_t t)
{
    struct pyreader *r = &sp->r;
    const struct pythread *th = &r->threads[t];
    uint32_t st;
    if (natreuse_check(&sp->nt.reuse, th->tid, r, th, stack_root(s, sp, th, th->truncated), &st))
        return st;
    struct errbuf neb = {{0}};
    int nrc = native_sample_thread(&sp->nt, &sp->pz, r, t, sampler_now_ns(), &sp->nst, &neb);
    if (nrc == ERR_PERM && !sp->native_warned) {
        fprintf(stderr,
                "crux: native frames unavailable: %s: run crux as root or with "
                "CAP_SYS_PTRACE\n",
                neb.msg[0] ? neb.msg : err_str(nrc));
        sp->native_warned = true;
    }
    th = &r->threads[t]; /* the Python stack re-read while stopped */
    st = merged_stack(s, sp, th, &sp->nst);
    if (!nrc && sp->nst.native)
        natreuse_keep(&sp->nt.reuse, th->tid, r, th, stack_root(s, sp, th, sp->nst.truncated), st);
    return st;
}

/* --- record --async ----------------------------------------------------------------------- */

static uint32_t task_frame(void *arg, const struct pyframe *f)
{
    struct sampler *s = ((void **)arg)[0];
    struct sproc *sp = ((void **)arg)[1];
    return frame_of(s, sp, f);
}

/* The first thread of the round running an event loop (BaseEventLoop._run_once on its
 * stack), or -1. */
int stackbuild_loop_thread(const struct pyreader *r)
{
    for (size_t t = 0; t < r->nthreads; t++) {
        const struct pythread *th = &r->threads[t];
        if (th->err)
            continue;
        for (uint32_t k = 0; k < th->nframes; k++) {
            const struct pycode *c = pyreader_code(r, &r->frames[th->first + k]);
            if (taskstacks_code_is(c, "BaseEventLoop._run_once", "asyncio/base_events.py"))
                return (int)t;
        }
    }
    return -1;
}

/* The stack of a thread running a task: the root frames, `<task NAME>` (under its awaiters),
 * then the frames from the task's coroutine to the leaf. 0 when it runs none. */
uint32_t stackbuild_task(struct sampler *s, struct sproc *sp, const struct pythread *th)
{
    void *arg[2] = {s, sp};
    struct taskstacks ts = {s->p, &sp->r, &sp->ar, task_frame, arg};
    int task = -1;
    int k = taskstacks_running(&ts, th, &task);
    if (k < 0)
        return 0;
    uint32_t st = taskstacks_prefix(&ts, stack_root(s, sp, th, th->truncated), (size_t)task);
    for (int j = k; j >= 0; j--)
        st = profile_push(s->p, st, frame_of(s, sp, &sp->r.frames[th->first + (uint32_t)j]));
    return st;
}

/* One sample per suspended task (weighted by tasks sharing a stack), attributed to the loop
 * thread `lt`: idle, SAMPLE_TASK. */
void stackbuild_suspended(struct sampler *s, struct sproc *sp, const struct pythread *lt,
                          uint64_t t_rel)
{
    void *arg[2] = {s, sp};
    struct taskstacks ts = {s->p, &sp->r, &sp->ar, task_frame, arg};
    uint32_t root = stack_root(s, sp, lt, false);
    hmap_clear(&sp->task_w);
    uint32_t order[ASYNCIO_MAX_TASKS];
    size_t n = 0;
    for (size_t i = 0; i < sp->ar.ntasks; i++) {
        if (!taskstacks_emits(&sp->ar, i))
            continue;
        uint32_t st = taskstacks_suspended(&ts, root, i);
        bool fresh = false;
        uint64_t *c = hmap_slot(&sp->task_w, st, 0, &fresh);
        if (fresh)
            order[n++] = st;
        (*c)++;
    }
    for (size_t k = 0; k < n; k++) {
        uint64_t w = 0;
        (void)hmap_get(&sp->task_w, order[k], &w);
        while (w > 0) {
            uint16_t part = w > 65535 ? 65535 : (uint16_t)w;
            w -= part;
            profile_add(
                s->p, &(struct psample){
                          .t_ns = t_rel,
                          .stack = order[k],
                          .tid = (uint32_t)lt->tid,
                          .pid = (uint32_t)sp->pid,
                          .state = TSTATE_IDLE,
                          .flags = (uint8_t)(SAMPLE_TASK | (s->no_request ? SAMPLE_NO_REQUEST : 0)),
                          .cat = sp->cat_on ? CAT_SYSTEM : CAT_NONE,
                          .weight = part});
            s->st->recorded += part;
            s->st->kept += part;
        }
    }
}
