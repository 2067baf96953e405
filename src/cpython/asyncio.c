// SPDX-License-Identifier: MIT
// asyncio tasks read from outside. The registry: sys.modules['asyncio.tasks'] holds the C
// module's WeakSet of tasks (`_all_tasks` on 3.8-3.11, `_scheduled_tasks` on 3.12, 3.13; eager
// tasks that have suspended once are in it too); its `data` attribute is a set of weak
// references. A round copies the set's table, then every reference, every Task, every
// coroutine with its embedded _PyInterpreterFrame, each in one batched read; then follows each
// suspended coroutine's await chain one level per batched read: the object it awaits is the
// top of its frame's value stack (what _PyGen_yf returns: a suspended coroutine stopped in
// SEND/YIELD_VALUE keeps the awaited iterator there), a coroutine or generator to follow, a
// FutureIter (the future it wraps names the leaf) or another awaitable (its type names it).
// Layouts: TaskObj offsets were found per version by tools/probe_asyncio_offsets.py (a live
// Task searched for its own loop, coroutine, name and waiter) and agree with Echion's
// transcriptions of Modules/_asynciomodule.c; the generator offsets come from the headers.
// This file: the layouts, the reader's buffers and the round, which keeps tasks between rounds
// (re-walking only what changed); asyncwalk.c: one batched walk.
#include "cpython/asyncio.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpython/asyncwalk.h"
#include "util/xalloc.h"

/* 3.11/3.12 frame states (pycore_frame.h): CREATED -2, SUSPENDED -1, EXECUTING 0; 3.13 splits
 * SUSPENDED into SUSPENDED -2 and SUSPENDED_YIELD_FROM -1 and moves CREATED to -3. 3.8-3.10
 * keep the state in the frame object (f_executing; 3.10 f_state): see coro_state. PyGenObject
 * before 3.11: gi_frame right after the object header; PyFrameObject: f_valuestack at 64,
 * f_stacktop at 72 (3.8, 3.9), f_stackdepth at 80 (3.10, which dropped f_stacktop). */
static const struct asyncio_offsets TABLE[] = {
    {.minor = 8,
     .tk_size = 144,
     .tk_loop = 16,
     .tk_waiter = 104,
     .tk_coro = 112,
     .tk_name = 120,
     .gen_iframe = -1,
     .gen_state = -1,
     .gen_frame = 16,
     .fr_valuestack = 64,
     .fr_stacktop = 72,
     .fr_stackdepth = -1,
     .registry = "_all_tasks"},
    {.minor = 9,
     .tk_size = 184,
     .tk_loop = 16,
     .tk_waiter = 144,
     .tk_coro = 152,
     .tk_name = 160,
     .gen_iframe = -1,
     .gen_state = -1,
     .gen_frame = 16,
     .fr_valuestack = 64,
     .fr_stacktop = 72,
     .fr_stackdepth = -1,
     .registry = "_all_tasks"},
    {.minor = 10,
     .tk_size = 192,
     .tk_loop = 16,
     .tk_waiter = 152,
     .tk_coro = 160,
     .tk_name = 168,
     .gen_iframe = -1,
     .gen_state = -1,
     .gen_frame = 16,
     .fr_valuestack = 64,
     .fr_stacktop = -1,
     .fr_stackdepth = 80,
     .registry = "_all_tasks"},
    {11, 176, 16, 128, 136, 144, 80, 75, -1, -1, -1, -1, -2, -1, -1, 0, "_all_tasks"},
    {12, 176, 16, 128, 136, 144, 72, 67, -1, -1, -1, -1, -2, -1, -1, 0, "_scheduled_tasks"},
    {13, 144, 16, 112, 120, 128, 72, 67, -1, -1, -1, -1, -3, -2, -1, 0, "_scheduled_tasks"},
};

static uint64_t u64(const uint8_t *b, int32_t off)
{
    uint64_t v;
    memcpy(&v, b + off, 8);
    return v;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* CPU time of the calling thread: a walk's wall time on a shared machine includes the time
 * crux waited for a CPU. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

const struct asyncio_offsets *asyncio_offsets_for(uint32_t minor)
{
    for (size_t i = 0; i < sizeof(TABLE) / sizeof(TABLE[0]); i++)
        if (TABLE[i].minor == minor)
            return &TABLE[i];
    return NULL;
}

void asyncreader_init(struct asyncreader *a, const struct pyruntime *rt)
{
    memset(a, 0, sizeof(*a));
    a->rt = rt;
    const struct asyncio_offsets *ao = asyncio_offsets_for(rt->off.minor);
    const struct py_offsets *o = &rt->off;
    /* The frame fields must lie inside the copy of a coroutine (3.11+) or of its frame. */
    bool embedded = ao && ao->gen_frame < 0 && o->if_size > 0 &&
                    ao->gen_iframe + o->if_size <= ASYNCWALK_OBJ_READ && o->if_stacktop >= 0;
    bool heap = ao && ao->gen_frame >= 0 && o->fo_size > 0 &&
                o->fo_state < ASYNCWALK_FRAME38_READ && o->fo_lasti + 4 <= ASYNCWALK_FRAME38_READ &&
                o->fo_code + 8 <= ASYNCWALK_FRAME38_READ &&
                ao->fr_valuestack + 8 <= ASYNCWALK_FRAME38_READ &&
                ao->fr_stacktop + 8 <= ASYNCWALK_FRAME38_READ &&
                ao->fr_stackdepth + 4 <= ASYNCWALK_FRAME38_READ;
    if ((embedded || heap) && ao->tk_size <= ASYNCWALK_OBJ_STRIDE && offsets_fit_objects(o))
        a->ao = ao;
    if (!a->ao)
        return;
    pydict_init(&a->dict, rt->pid, &rt->off, rt->type_dict, rt->type_str, rt->type_long);
    a->tasks = xcalloc(ASYNCIO_MAX_TASKS, sizeof(*a->tasks));
    a->capframes = 4 * ASYNCIO_MAX_TASKS;
    a->frames = xcalloc(a->capframes, sizeof(*a->frames));
    a->table_cap = ASYNCWALK_SET_MAX;
    a->table = xcalloc(2 * a->table_cap, sizeof(uint64_t));
    a->addr = xcalloc(ASYNCIO_MAX_TASKS, sizeof(uint64_t));
    a->buf = xcalloc(ASYNCIO_MAX_TASKS, ASYNCWALK_OBJ_STRIDE);
    a->ok = xcalloc(ASYNCIO_MAX_TASKS, 1);
    a->spans = xcalloc(ASYNCIO_MAX_TASKS, sizeof(*a->spans));
    a->cur = xcalloc(ASYNCIO_MAX_TASKS, sizeof(uint64_t));
    a->depth = xcalloc(ASYNCIO_MAX_TASKS, sizeof(uint16_t));
    a->fbuf = xcalloc(ASYNCIO_MAX_TASKS, ASYNCWALK_FRAME_WIDE);
    a->known = xcalloc(ASYNCIO_MAX_TASKS, sizeof(uint64_t));
    a->fok = xcalloc(ASYNCIO_MAX_TASKS, 1);
    a->ok2 = xcalloc(ASYNCIO_MAX_TASKS, 1);
    a->fidx = xcalloc(ASYNCIO_MAX_TASKS, sizeof(uint32_t));
    a->codes = xcalloc(ASYNCIO_MAX_TASKS, sizeof(uint64_t));
    a->levels = xcalloc(a->capframes, sizeof(*a->levels));
    a->frames2 = xcalloc(a->capframes, sizeof(*a->frames2));
    a->levels2 = xcalloc(a->capframes, sizeof(*a->levels2));
    a->regtab = xcalloc(2 * a->table_cap, sizeof(uint64_t));
    a->regprev = xcalloc(2 * a->table_cap, sizeof(uint64_t));
    a->sel = xcalloc(ASYNCIO_MAX_TASKS, sizeof(uint32_t));
    a->vbuf = xcalloc(ASYNCWALK_VBUF_BYTES, 1);
    a->vspans = xcalloc(ASYNCWALK_VSPANS, sizeof(*a->vspans));
    a->vok = xcalloc(ASYNCWALK_VSPANS, 1);
    a->vtask = xcalloc(ASYNCWALK_VSPANS, sizeof(uint32_t));
    hmap_init(&a->index);
    hmap_init(&a->names);
    hmap_init(&a->seen);
}

void asyncreader_fini(struct asyncreader *a)
{
    if (a->ao) {
        pydict_fini(&a->dict);
        hmap_fini(&a->index);
        hmap_fini(&a->names);
        hmap_fini(&a->seen);
    }
    free(a->tasks);
    free(a->frames);
    free(a->table);
    free(a->addr);
    free(a->buf);
    free(a->ok);
    free(a->spans);
    free(a->cur);
    free(a->depth);
    free(a->fbuf);
    free(a->known);
    free(a->fok);
    free(a->ok2);
    free(a->fidx);
    free(a->codes);
    free(a->levels);
    free(a->frames2);
    free(a->levels2);
    free(a->regtab);
    free(a->regprev);
    free(a->sel);
    free(a->vbuf);
    free(a->vspans);
    free(a->vok);
    free(a->vtask);
    free(a->arena);
    memset(a, 0, sizeof(*a));
}

/* --- The cache between rounds ------------------------------------------------------------ */

/* Walks every task of the registry (the first round, and after the registry or the code
 * cache changed). Tasks that fail a check are kept with state 0: re-walked next round. */
static int full_walk(struct asyncreader *a, struct pyreader *r, uint64_t now_ns)
{
    size_t n = 0;
    a->ntasks = 0;
    a->nframes = 0;
    a->full_walks++;
    int rc = asyncwalk_registry(a, &n);
    if (!rc)
        rc = asyncwalk_read(a, n, (size_t)a->ao->tk_size);
    if (rc)
        return rc;
    asyncwalk_parse_tasks(a, n);
    for (size_t i = 0; i < a->ntasks; i++)
        a->sel[i] = (uint32_t)i;
    return asyncwalk_chains(a, r, a->sel, a->ntasks, now_ns);
}

/* Appends a task known only by address, to be walked this round; false at the cap. */
static bool add_task(struct asyncreader *a, uint64_t addr)
{
    if (a->ntasks == ASYNCIO_MAX_TASKS) {
        a->skipped++;
        return false;
    }
    struct atask *t = &a->tasks[a->ntasks++];
    memset(t, 0, sizeof(*t));
    t->addr = addr;
    t->parent = -1;
    t->pick = 1;
    hmap_put(&a->index, addr, a->ntasks);
    return true;
}

/* Re-reads the registry's table; when it changed, drops the cached tasks gone from it
 * (t->addr = 0) and adds the new ones. Returns 1 when the set of tasks changed. */
static int registry_update(struct asyncreader *a)
{
    size_t n = 0;
    int rc = asyncwalk_table(a, &n);
    if (rc)
        return rc;
    if (n == a->regn && memcmp(a->regtab, a->regprev, n * 16) == 0)
        return 0;
    hmap_clear(&a->seen);
    for (size_t i = 0; i < n; i++) {
        uint64_t key = a->regtab[2 * i], t = asyncwalk_hash_task(a->regtab[2 * i + 1]);
        if (key && !(key & 7) && t)
            hmap_put(&a->seen, t, 1);
    }
    uint64_t v;
    for (size_t i = 0; i < a->ntasks; i++)
        if (!hmap_get(&a->seen, a->tasks[i].addr, &v))
            a->tasks[i].addr = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t key = a->regtab[2 * i], t = asyncwalk_hash_task(a->regtab[2 * i + 1]);
        if (!key || (key & 7) || !t || (hmap_get(&a->index, t, &v) && v))
            continue;
        if (!add_task(a, t))
            break;
    }
    memcpy(a->regprev, a->regtab, n * 16);
    a->regn = n;
    return 1;
}

/* Marks for a re-walk the tasks that run now (asyncio.tasks._current_tasks: one per running
 * loop) and those that ran, were created or failed a check when last read (a done task waits
 * for its turn in the checks). */
static void pick_running(struct asyncreader *a)
{
    for (size_t i = 0; i < a->ntasks; i++)
        if (a->tasks[i].state != ATASK_SUSPENDED && a->tasks[i].state != ATASK_DONE)
            a->tasks[i].pick = 1;
    struct pydict_item items[8];
    size_t n = 0;
    if (!a->current || pydict_items(&a->dict, a->current, items, 8, &n) != 0)
        n = 0;
    a->reads += a->dict.reads;
    a->dict.reads = 0;
    for (size_t k = 0; k < n; k++) {
        uint64_t t = items[k].value, v;
        if (!t || (t & 7))
            continue;
        if (hmap_get(&a->index, t, &v) && v)
            a->tasks[v - 1].pick = 1;
        else
            (void)add_task(a, t);
    }
}

/* Whether cached task t can be checked (else it is re-walked): suspended, with a chain whose
 * every level can be re-read. */
static bool checkable(const struct asyncreader *a, const struct atask *t)
{
    bool can = t->state == ATASK_SUSPENDED && t->nframes > 0;
    for (uint32_t k = 0; can && k < t->nframes; k++)
        can = a->levels[t->first + k].len > 0;
    return can;
}

/* Adds to the check read the spans of cached task `i`'s chain levels [from, to), the Task
 * first when `from` is 0 (a->sel[i] keeps its span); false when they do not fit. */
static bool check_spans(struct asyncreader *a, size_t i, uint32_t from, uint32_t to, size_t *ns,
                        size_t *nb)
{
    const struct atask *t = &a->tasks[i];
    size_t tk = (size_t)a->ao->tk_size, bytes = from == 0 ? tk : 0;
    for (uint32_t k = from; k < to; k++)
        bytes += a->levels[t->first + k].len;
    if (*ns + (from == 0) + (to - from) > ASYNCWALK_VSPANS || *nb + bytes > ASYNCWALK_VBUF_BYTES)
        return false;
    if (from == 0) {
        a->sel[i] = (uint32_t)*ns;
        a->vtask[*ns] = (uint32_t)i;
        a->vspans[(*ns)++] = (struct mem_span){t->addr, a->vbuf + *nb, tk};
        *nb += tk;
    }
    for (uint32_t k = from; k < to; k++) {
        const struct alevel *lv = &a->levels[t->first + k];
        a->vtask[*ns] = (uint32_t)i;
        a->vspans[(*ns)++] = (struct mem_span){lv->addr, a->vbuf + *nb, lv->len};
        *nb += lv->len;
    }
    return true;
}

/* Whether the copy `b` of task t still shows the task the cache holds. */
static bool task_same(const struct asyncreader *a, const struct atask *t, const uint8_t *b)
{
    const struct asyncio_offsets *ao = a->ao;
    return (int64_t)u64(b, 0) > 0 && u64(b, a->rt->off.ob_type) == a->type_task &&
           u64(b, ao->tk_coro) == t->coro && u64(b, ao->tk_waiter) == t->waiter &&
           u64(b, ao->tk_name) == t->name_obj && u64(b, ao->tk_loop) == t->loop;
}

/* Task i changed: parses its fresh copy (span a->sel[i]) and picks it for a re-walk. */
static void changed(struct asyncreader *a, size_t i)
{
    struct atask *t = &a->tasks[i];
    size_t k = a->sel[i];
    if (!a->vok[k])
        t->pick = 1;
    else if (asyncwalk_parse_task(a, t, (const uint8_t *)a->vspans[k].dst, t->addr))
        t->pick = 2;
    else
        t->addr = 0; /* no longer a Task: dropped */
}

/* Whether the level copies of spans [k, k + n) show levels [from, from + n) of task t. */
static bool levels_same(const struct asyncreader *a, const struct atask *t, size_t k, uint32_t from,
                        uint32_t n)
{
    for (uint32_t l = 0; l < n; l++)
        if (!a->vok[k + l] || !asyncwalk_level_same(a, (const uint8_t *)a->vspans[k + l].dst,
                                                    &a->levels[t->first + from + l]))
            return false;
    return true;
}

/* Re-checks a share of the cached tasks: each task is re-checked within ASYNCIO_VALIDATE_NS
 * of its last check. Two batched reads: the Task and its coroutine first (where most changes
 * show: the outermost coroutine awaits another object once its task ran), then the deeper
 * levels of the tasks that passed. Tasks that changed are picked for a re-walk (pick 2: their
 * fresh Task copy is parsed already). */
static int check_share(struct asyncreader *a, uint64_t now_ns)
{
    size_t n = a->ntasks, want = n;
    uint64_t dt = now_ns > a->last_ns ? now_ns - a->last_ns : 0;
    if (dt < ASYNCIO_VALIDATE_NS)
        want = (size_t)((n * dt + ASYNCIO_VALIDATE_NS - 1) / ASYNCIO_VALIDATE_NS);
    size_t ns = 0, nb = 0, done = 0;
    for (; done < want && n; done++) {
        size_t i = (a->vnext + done) % n;
        struct atask *t = &a->tasks[i];
        if (t->pick || !t->addr)
            continue;
        if (!checkable(a, t))
            t->pick = 1;
        else if (!check_spans(a, i, 0, 1, &ns, &nb))
            break;
    }
    a->vnext = n ? (a->vnext + done) % n : 0;
    a->checked += done;
    if (!ns)
        return 0;
    a->reads++;
    int rc = mem_readv(a->rt->pid, a->vspans, ns, a->vok);
    if (rc < 0)
        return rc;
    size_t ns1 = ns;
    for (size_t k = 0; k < ns1; k += 2) {
        size_t i = a->vtask[k];
        struct atask *t = &a->tasks[i];
        if (!a->vok[k] || !task_same(a, t, (const uint8_t *)a->vspans[k].dst) ||
            !levels_same(a, t, k + 1, 0, 1))
            changed(a, i);
        else if (t->nframes > 1 && !check_spans(a, i, 1, t->nframes, &ns, &nb))
            t->pick = 1; /* no room left to check it: re-walked */
    }
    if (ns == ns1)
        return 0;
    a->reads++;
    rc = mem_readv(a->rt->pid, a->vspans + ns1, ns - ns1, a->vok + ns1);
    if (rc < 0)
        return rc;
    for (size_t k = ns1; k < ns;) {
        size_t i = a->vtask[k];
        const struct atask *t = &a->tasks[i];
        uint32_t deeper = t->nframes - 1;
        if (!levels_same(a, t, k, 1, deeper))
            changed(a, i);
        k += deeper;
    }
    return 0;
}

/* Re-walks the picked tasks: reads those not parsed yet, then their chains. */
static int rewalk(struct asyncreader *a, struct pyreader *r, uint64_t now_ns)
{
    size_t m = 0, nsel = 0;
    for (size_t i = 0; i < a->ntasks; i++)
        if (a->tasks[i].addr && a->tasks[i].pick == 1)
            a->addr[m++] = a->tasks[i].addr;
    int rc = asyncwalk_read(a, m, (size_t)a->ao->tk_size);
    if (rc)
        return rc;
    m = 0;
    for (size_t i = 0; i < a->ntasks; i++) {
        struct atask *t = &a->tasks[i];
        if (!t->addr || !t->pick)
            continue;
        if (t->pick == 1) {
            bool ok = a->ok[m] &&
                      asyncwalk_parse_task(a, t, a->buf + m * ASYNCWALK_OBJ_STRIDE, a->addr[m]);
            m++;
            if (!ok) {
                t->addr = 0; /* not a Task (any more): dropped */
                continue;
            }
        }
        t->pick = 0;
        a->sel[nsel++] = (uint32_t)i;
    }
    a->rewalked += nsel;
    return asyncwalk_chains(a, r, a->sel, nsel, now_ns);
}

/* Moves the frames (and levels) of the tasks' chains to the front once the arrays are half
 * full: re-walked chains are appended. Task indexes do not change. */
static void compact_frames(struct asyncreader *a)
{
    if (a->nframes < a->capframes / 2)
        return;
    size_t nf = 0;
    for (size_t i = 0; i < a->ntasks; i++) {
        struct atask *t = &a->tasks[i];
        memcpy(a->frames2 + nf, a->frames + t->first, t->nframes * sizeof(*a->frames));
        memcpy(a->levels2 + nf, a->levels + t->first, t->nframes * sizeof(*a->levels));
        t->first = (uint32_t)nf;
        nf += t->nframes;
    }
    struct pyframe *f = a->frames;
    struct alevel *l = a->levels;
    a->frames = a->frames2;
    a->levels = a->levels2;
    a->frames2 = f;
    a->levels2 = l;
    a->nframes = nf;
}

/* Drops the tasks marked gone (addr 0), keeping indexes dense; the next task to check
 * stays the same task, so that none waits a second period for its check. */
static void compact_tasks(struct asyncreader *a)
{
    size_t k = 0, next = a->vnext;
    for (size_t i = 0; i < a->ntasks; i++) {
        if (a->tasks[i].addr)
            a->tasks[k++] = a->tasks[i];
        else if (i < a->vnext)
            next--;
    }
    a->ntasks = k;
    a->vnext = next;
}

/* A round with the cache: the registry's table, the running tasks, a share of checks, the
 * re-walks. */
static int update(struct asyncreader *a, struct pyreader *r, uint64_t now_ns)
{
    uint64_t c0 = cpu_ns();
    int rc = registry_update(a);
    if (rc < 0)
        return rc;
    pick_running(a);
    uint64_t c1 = cpu_ns();
    rc = check_share(a, now_ns);
    uint64_t c2 = cpu_ns();
    compact_frames(a);
    if (!rc)
        rc = rewalk(a, r, now_ns);
    a->reg_cpu_ns += c1 - c0;
    a->check_cpu_ns += c2 - c1;
    a->walk_cpu_ns += cpu_ns() - c2;
    return rc;
}

int asyncreader_round(struct asyncreader *a, struct pyreader *r, uint64_t interp, uint64_t now_ns)
{
    if (!a->ao) {
        a->ntasks = 0;
        return ERR_VERSION;
    }
    uint64_t t0 = mono_ns();
    a->rounds++;
    uint64_t c0 = cpu_ns();
    int rc = asyncwalk_find_registry(a, interp, now_ns);
    if (!rc && a->cached && !a->hash_bad && r->codes.resets == a->code_resets) {
        rc = update(a, r, now_ns);
    } else if (!rc) {
        uint64_t c1 = cpu_ns();
        rc = full_walk(a, r, now_ns);
        a->walk_cpu_ns += cpu_ns() - c1;
    }
    if (rc == ERR_READ || rc == ERR_CORRUPT)
        a->set = 0; /* look it up again next round */
    if (!rc) {
        compact_tasks(a);
        for (size_t i = 0; i < a->ntasks; i++) {
            if (a->tasks[i].state)
                a->tasks_read++;
            else
                a->dropped++; /* failed a check: re-walked next round */
        }
        asyncwalk_link(a);
        a->cached = true;
        a->code_resets = r->codes.resets;
    } else {
        a->ntasks = 0;
        a->nframes = 0;
        a->cached = false;
        a->missing++;
    }
    a->last_ns = now_ns;
    a->busy_ns += mono_ns() - t0;
    a->cpu_ns += cpu_ns() - c0;
    return rc;
}

int asyncreader_running(const struct asyncreader *a, uint64_t code_addr)
{
    for (size_t i = 0; i < a->ntasks; i++)
        if (a->tasks[i].state == ATASK_RUNNING && a->tasks[i].root_code == code_addr)
            return (int)i;
    return -1;
}
