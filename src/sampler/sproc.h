// SPDX-License-Identifier: MIT
// The sampler's state, shared by its files: one sampled process (struct sproc) and the
// loop's own (struct sampler). sampler.c runs the rounds; stackbuild.c turns what the reader
// saw into profile stacks; sproc.c opens, follows and closes processes; memsample.c reads
// resident memory; agentdrain.c takes what the in-process agent wrote.
#ifndef CRUX_SPROC_H
#define CRUX_SPROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cpython/asyncio.h"
#include "cpython/pyreader.h"
#include "native/native.h"
#include "sampler/categorize.h"
#include "sampler/sampler.h"
#include "sampler/stackmemo.h"
#include "sampler/threadlabels.h"
#include "stages/ring.h"
#include "target/children.h"
#include "target/pause.h"
#include "target/proc.h"
#include "util/hmap.h"

/* Stacks that ran since the last read of resident memory, which its next change goes to. */
#define GROW_PENDING 256

/* One sampled process: the target, or a child followed with --subprocesses. */
struct sproc {
    pid_t pid, ppid;
    bool root;              /* the target itself */
    bool python;            /* rt and r are valid */
    bool gone;              /* exited; kept for its record */
    uint64_t find_until_ns; /* not Python yet: look for a runtime again until then */
    struct pyruntime rt;
    struct pyreader r;
    struct threadlabels tl; /* what each thread is called */
    struct proc_statcache sc;
    struct pauser pz;
    struct categorizer cat;
    bool cat_on;
    struct hmap frames;    /* (code entry id, position run) -> profile frame id */
    struct stackmemo memo; /* each reader slot's last stack (thread_stack) */
    struct native nt;      /* --native */
    struct native_stack nst;
    bool native_on, native_warned;
    struct hmap native_frames; /* native_sym address -> profile frame id */
    struct asyncreader ar;     /* --async */
    bool async_on;
    struct hmap task_w;       /* this round: suspended tasks' stack id -> count */
    struct stagering ring;    /* the crux agent's ring, when the target imported it */
    struct hmap alloc_stacks; /* the agent's allocation stack entry -> profile stack id */
    bool ring_on;
    uint64_t ring_retry_ns;
    uint32_t proc_frame; /* "NAME (PID)" frame rooting its stacks with --subprocesses */
    char name[64];       /* its short command line, the name of proc_frame */
    int statm_fd;
    uint64_t rss, point_ns, point_rss;
    uint64_t statm_ns; /* when statm was last read (t_rel); valid with statm_read */
    bool statm_read;
    uint32_t grow[GROW_PENDING]; /* stacks that ran since: the next change in RSS is theirs */
    uint32_t ngrow;
    uint64_t exec_id;
    unsigned failures;                     /* rounds in a row that could not read it */
    uint32_t stacks[PYREADER_MAX_THREADS]; /* this round's stack per reader thread */
};

struct sampler {
    const struct sampler_opts *o;
    struct profile *p;
    struct sampler_stats *st;
    struct sproc **procs;
    size_t nprocs, cap;
    struct childscan scan;
    uint64_t start, period, next_scan, next_prune, next_alive;
    uint64_t cpu_draw; /* xorshift state choosing the rounds whose CPU time is read */
    uint32_t marker_truncated;
    bool no_request; /* this round: record --load had no request in flight */
    long page_size;
};

/* stackbuild.c: the profile stack of a thread this round, root first. */
uint32_t stackbuild_thread(struct sampler *s, struct sproc *sp, const struct pythread *th);
/* With --native: reader slot `t`'s merged Python and native stack (natreuse.h). */
uint32_t stackbuild_native(struct sampler *s, struct sproc *sp, size_t t);
/* With --async: the stack of a thread running a task, under `<task NAME>`; 0 when it runs
 * none. */
uint32_t stackbuild_task(struct sampler *s, struct sproc *sp, const struct pythread *th);
/* With --async: one idle sample per suspended task, on the loop thread `lt`. */
void stackbuild_suspended(struct sampler *s, struct sproc *sp, const struct pythread *lt,
                          uint64_t t_rel);
/* The first thread of the round running an event loop, or -1. */
int stackbuild_loop_thread(const struct pyreader *r);

/* sproc.c: a new process record (`rt`: the target's runtime; NULL for a child, whose
 * runtime is looked for). */
struct sproc *sproc_add(struct sampler *s, pid_t pid, pid_t ppid, const struct pyruntime *rt);
/* Closes what a process that exited held; its record stays until forgotten. */
void sproc_gone(struct sampler *s, struct sproc *sp);
/* New children, and children that exec'd. */
void sproc_follow_children(struct sampler *s, uint64_t now);

/* memsample.c: resident memory, read at most every 2 ms; its change goes to the stacks that
 * ran since (`states`: this round's thread states, NULL for a process not read as Python). */
void memsample_round(struct sampler *s, struct sproc *sp, uint64_t t_rel, const char *states);

/* agentdrain.c: the stage spans and allocation records the agent wrote since the last round. */
void agentdrain_spans(struct sampler *s, struct sproc *sp);
void agentdrain_allocs(struct sampler *s, struct sproc *sp);

#endif
