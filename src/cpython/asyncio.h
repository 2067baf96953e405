// SPDX-License-Identifier: MIT
// asyncio tasks of a CPython process, read from outside: the task registry, each task's name,
// its coroutine chain through every `await` (code and line per coroutine), what the innermost
// coroutine awaits and which task awaits which (a Task awaited directly, or the children of a
// gather). A round reads level by level in batched reads (registry, weak references, tasks,
// coroutines, then one level of the await chain per read), every object's type checked, every
// walk bounded (tasks, chain depth, cycle check); a task that fails a check is dropped and
// counted, never guessed. Supported on 3.8-3.13 (C tasks; coroutine frames on the heap before
// 3.11, embedded after); asyncio_supported() says so for a runtime. docs/async.md explains
// the layouts and checks.
#ifndef CRUX_ASYNCIO_H
#define CRUX_ASYNCIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpython/pydict.h"
#include "cpython/pyreader.h"
#include "cpython/pyruntime.h"
#include "target/mem.h"
#include "util/hmap.h"

#define ASYNCIO_MAX_TASKS 4096           /* tasks read per round; more are counted as skipped */
#define ASYNCIO_MAX_DEPTH 64             /* coroutines of one task's await chain */
#define ASYNCIO_MAX_CHILDREN 256         /* children of one gather followed */
#define ASYNCIO_NAME_LEN 96              /* bytes of a task name kept (UTF-8, NUL included) */
#define ASYNCIO_LABEL_LEN 80             /* bytes of an "[await] ..." label kept */
#define ASYNCIO_REFIND_NS 1000000000ULL  /* the registry is looked up again this often */
#define ASYNCIO_TYPES 64                 /* type names remembered */
#define ASYNCIO_VALIDATE_NS 100000000ULL /* every cached task is re-checked within this */
#define ASYNCIO_LEVEL_MAX 4096           /* bytes of one coroutine level re-read to check it */

/* A task's state in a round. */
enum atask_state {
    ATASK_SUSPENDED = 1, /* its coroutine waits in an await */
    ATASK_RUNNING = 2,   /* its coroutine runs now: its frames are on the loop thread's stack */
    ATASK_CREATED = 3,   /* scheduled, not started yet */
    ATASK_DONE = 4,      /* its coroutine returned (a done task still referenced): not shown */
};

/* One task of a round. */
struct atask {
    uint64_t addr;            /* the Task object */
    uint64_t coro;            /* its coroutine */
    uint64_t loop;            /* its event loop */
    uint64_t waiter;          /* _fut_waiter: the future it waits on; 0 none */
    uint64_t root_code;       /* code object address of its coroutine */
    uint64_t name_obj;        /* its name object (re-checked with the cache) */
    uint8_t pick;             /* cache: 1 re-walk it this round, 2 also its copy is parsed */
    uint64_t wtype, wtype_of; /* the type of its waiter, read when the waiter was wtype_of */
    uint32_t first, nframes;  /* its await chain in asyncreader.frames, outermost first */
    int32_t parent;           /* index of the task awaiting it (directly or through a gather
                               * with it as a child), -1 none */
    uint16_t nawaiters;       /* tasks awaiting it */
    bool via_gather;          /* the parent awaits it through asyncio.gather */
    bool awaits_tasks;        /* it waits on another task or a gather of tasks */
    bool default_name;        /* "Task-N" (or 3.13's lazy int): shown by its coroutine's name */
    uint8_t state;            /* enum atask_state */
    char name[ASYNCIO_NAME_LEN];
    char awaits[ASYNCIO_LABEL_LEN]; /* what the innermost coroutine awaits, "" unknown */
};

/* How one coroutine level of a cached await chain is re-checked (parallel to a frame of
 * asyncreader.frames): the bytes [addr, addr + len) are re-read (the coroutine on 3.11+, its
 * frame object before), and the level is unchanged when its state, code, instruction,
 * stack depth and the awaited object on top of the stack are. len 0: cannot be checked. */
struct alevel {
    uint64_t addr;
    uint64_t code, instr;   /* code object; instruction pointer (3.11+) or f_lasti */
    uint64_t slot;          /* the object awaited (top of the value stack), 0 none */
    int64_t top;            /* value stack depth */
    uint32_t len, slot_off; /* bytes re-read; offset of the awaited object's slot (0: none) */
    int8_t state;           /* raw frame state byte */
};

/* Per-version layouts of _asyncio's Task (Modules/_asynciomodule.c, not installed) and of the
 * generator object (installed headers). -1: absent. */
struct asyncio_offsets {
    uint32_t minor;
    int32_t tk_size, tk_loop, tk_waiter, tk_coro, tk_name; /* TaskObj */
    int32_t gen_iframe, gen_state; /* PyGenObject (3.11+): embedded frame, int8 frame state */
    int32_t gen_frame;             /* PyGenObject.gi_frame (3.8-3.10): the frame object */
    /* PyFrameObject (3.8-3.10): f_valuestack, f_stacktop (3.8, 3.9: NULL while it runs),
     * f_stackdepth (3.10, int) */
    int32_t fr_valuestack, fr_stacktop, fr_stackdepth;
    int8_t st_created, st_suspended, st_yield_from, st_executing; /* frame states */
    const char *registry; /* asyncio.tasks' WeakSet of tasks */
};

struct asyncreader {
    const struct pyruntime *rt;
    const struct asyncio_offsets *ao; /* NULL: version unsupported */
    struct pydict dict;
    uint64_t interp, set, type_task, type_gather, type_weakref, type_coro, type_gen;
    uint64_t current;  /* asyncio.tasks._current_tasks: loop -> running task */
    uint64_t set_seen; /* the registry the cache was filled from */
    uint64_t found_ns;

    /* The cache of tasks between rounds (docs/async.md "Cost"): tasks[] and frames[] are
     * kept; each round re-reads the registry's table, re-walks the running tasks, new tasks
     * and those whose check (a re-read of the task and each level of its chain) failed. */
    bool cached;           /* tasks[] holds the tasks of an earlier round */
    bool hash_bad;         /* a registry entry's hash did not give its task: walk all each round */
    uint32_t code_resets;  /* the code cache's resets when the cache was filled */
    uint64_t last_ns;      /* the previous round */
    size_t vnext;          /* the next task to check */
    struct alevel *levels; /* parallel to frames */
    struct pyframe *frames2; /* scratch for compacting frames and levels */
    struct alevel *levels2;
    uint64_t *regtab, *regprev; /* the registry's table this round and the one before */
    size_t regn;                /* entries of regprev */
    uint32_t *sel;              /* tasks re-walked this round */
    uint8_t *vbuf;              /* copies of the levels checked */
    struct mem_span *vspans;
    uint8_t *vok;
    uint32_t *vtask;  /* per span: its task */
    struct hmap seen; /* registry addresses of a round */

    struct atask *tasks; /* this round's tasks (ASYNCIO_MAX_TASKS) */
    size_t ntasks;
    struct pyframe *frames; /* this round's await-chain frames */
    size_t nframes, capframes;
    struct hmap index; /* task address -> index + 1, this round */
    struct hmap names; /* hash(task, name object) -> name arena offset + 1 */
    char *arena;       /* names read before, NUL-terminated one after another */
    size_t arena_len, arena_cap;
    struct {
        uint64_t addr;
        char name[48];
    } types[ASYNCIO_TYPES]; /* tp_name per type address */
    size_t ntypes;

    /* Scratch for the batched levels (ASYNCIO_MAX_TASKS each). */
    uint64_t *table;  /* the set's entries */
    size_t table_cap; /* in entries */
    uint64_t *addr;   /* objects of the current level */
    uint8_t *buf;     /* their copies */
    uint8_t *ok;
    struct mem_span *spans;
    uint64_t *cur;   /* per task: the coroutine of its chain being followed (0: done) */
    uint64_t *known; /* per task: the object in cur's slot when its copy held it, else 0 */
    uint16_t *depth;
    uint8_t *fbuf;   /* 3.8-3.10: the frame objects of the level's coroutines */
    uint8_t *fok;    /* per object of the level: its frame was read */
    uint8_t *ok2;    /* per span of the frames' read */
    uint32_t *fidx;  /* per span: its object */
    uint64_t *codes; /* the level's code objects (checked in one batch on 3.8-3.10) */

    /* Figures over the recording. */
    uint64_t rounds, tasks_read, dropped, torn, skipped, missing, reads, busy_ns, cpu_ns;
    uint64_t full_walks, checked, rewalked; /* rounds that walked all; tasks checked, re-walked */
    uint64_t reg_cpu_ns, check_cpu_ns, walk_cpu_ns; /* CPU split: registry and running task,
                                                     * checks, walks (full walks included) */
};

/* Sets up a reader for runtime `rt` (which must outlive it). Allocates its buffers only when
 * the version is supported. */
void asyncreader_init(struct asyncreader *a, const struct pyruntime *rt);
/* Releases everything. */
void asyncreader_fini(struct asyncreader *a);
/* Whether the runtime's version is one the reader knows (3.8-3.13). */
static inline bool asyncio_supported(const struct asyncreader *a)
{
    return a->ao != NULL;
}
/* Reads every task of the event loops of interpreter `interp` (a thread of it runs a loop)
 * into a->tasks, their await chains' frames into a->frames (code entries of `r`'s cache,
 * valid for r's round). Tasks that fail a check are dropped (a->torn). The first round walks
 * every task; later ones keep the tasks of the round before and re-walk only the running
 * ones (asyncio.tasks._current_tasks), the new ones (the registry's table, read every round)
 * and those whose re-check failed, re-checking a share of the tasks each round so that every
 * task is re-checked within ASYNCIO_VALIDATE_NS; tasks gone from the registry are dropped. Returns
 * ERR_PROC_GONE or ERR_PERM when the process cannot be read; ERR_NOT_FOUND when asyncio is not
 * imported; other errors when the registry is unreadable this round (no tasks then). */
int asyncreader_round(struct asyncreader *a, struct pyreader *r, uint64_t interp,
                      uint64_t now_ns) MUST_CHECK;
/* The index of the running task whose coroutine runs code `code_addr`, or -1. */
int asyncreader_running(const struct asyncreader *a, uint64_t code_addr);

/* The built-in layout for 3.`minor`, or NULL. */
const struct asyncio_offsets *asyncio_offsets_for(uint32_t minor);

#endif
