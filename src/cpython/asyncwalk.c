// SPDX-License-Identifier: MIT
// One batched walk of asyncio tasks (see asyncwalk.h); the layouts and the round are in
// asyncio.c, the reasons for each check in docs/async.md.
#include "cpython/asyncwalk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpython/pystr.h"
#include "util/xalloc.h"

#define SET_HEAD 48   /* PySetObject up to `table` (used 24, mask 32, table 40; 3.8-3.13) */
#define FI_FUTURE 16  /* FutureIterObject.future (3.8-3.13) */
#define WR_OBJECT 16  /* PyWeakReference.wr_object */
#define TP_NAME 24    /* PyTypeObject.tp_name */
#define LIST_ITEMS 24 /* PyListObject.ob_item */
#define STACKTOP_MAX 4096
#define VALUESTACK_MAX (1u << 20) /* bytes from a frame object to its value stack, at most */

static uint64_t u64(const uint8_t *b, int32_t off)
{
    uint64_t v;
    memcpy(&v, b + off, 8);
    return v;
}

/* Reads `n` objects of `len` bytes at a->addr[] into a->buf (ASYNCWALK_OBJ_STRIDE apart); a->ok[i]
 * says which were read. */
int asyncwalk_read(struct asyncreader *a, size_t n, size_t len)
{
    for (size_t i = 0; i < n; i++)
        a->spans[i] = (struct mem_span){a->addr[i], a->buf + i * ASYNCWALK_OBJ_STRIDE, len};
    a->reads++;
    int rc = mem_readv(a->rt->pid, a->spans, n, a->ok);
    return rc < 0 ? rc : 0;
}

/* Reads spans[0..n) (ok[] says which were read) wide, then those that failed again with
 * `narrow` bytes: ok[i] is 2 for a wide copy, 1 for a narrow one. */
int asyncwalk_readv_wide(struct asyncreader *a, struct mem_span *spans, size_t n, uint8_t *ok,
                         size_t narrow)
{
    a->reads++;
    int rc = mem_readv(a->rt->pid, spans, n, ok);
    if (rc < 0)
        return rc;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        ok[i] *= 2;
        if (!ok[i] && m < ASYNCWALK_VSPANS) {
            a->vtask[m] = (uint32_t)i;
            a->vspans[m++] = (struct mem_span){spans[i].addr, spans[i].dst, narrow};
        }
    }
    if (!m)
        return 0;
    a->reads++;
    rc = mem_readv(a->rt->pid, a->vspans, m, a->vok);
    if (rc < 0)
        return rc;
    for (size_t k = 0; k < m; k++)
        ok[a->vtask[k]] = a->vok[k];
    return 0;
}

/* asyncwalk_read with ASYNCWALK_OBJ_WIDE bytes (3.11+ coroutines), narrow ones where they fail. */
int asyncwalk_read_wide(struct asyncreader *a, size_t n, size_t narrow)
{
    for (size_t i = 0; i < n; i++)
        a->spans[i] =
            (struct mem_span){a->addr[i], a->buf + i * ASYNCWALK_OBJ_STRIDE, ASYNCWALK_OBJ_WIDE};
    return asyncwalk_readv_wide(a, a->spans, n, a->ok, narrow);
}

/* --- The registry ------------------------------------------------------------------------- */

static int module_attr(struct asyncreader *a, uint64_t module, const char *key, uint64_t *out)
{
    const struct py_offsets *o = &a->rt->off;
    uint8_t head[64];
    int rc = mem_read(a->rt->pid, module, head, (size_t)o->mod_dict + 8);
    a->reads++;
    if (rc)
        return rc;
    if (a->rt->type_module && u64(head, o->ob_type) != a->rt->type_module)
        return ERR_CORRUPT;
    return pydict_get_str(&a->dict, u64(head, o->mod_dict), key, out);
}

/* Finds asyncio.tasks' set of tasks and the Task and _GatheringFuture types. */
int asyncwalk_find_registry(struct asyncreader *a, uint64_t interp, uint64_t now_ns)
{
    if (a->set && a->interp == interp && now_ns - a->found_ns < ASYNCIO_REFIND_NS)
        return 0;
    a->set = 0;
    pydict_pass(&a->dict);
    uint64_t modules = 0, module = 0, weakset = 0, set = 0, task = 0, gather = 0;
    int rc = mem_read(a->rt->pid, interp + (uint64_t)a->rt->off.is_modules, &modules, 8);
    a->reads++;
    if (!rc)
        rc = pydict_get_str(&a->dict, modules, "asyncio.tasks", &module);
    if (!rc)
        rc = module_attr(a, module, a->ao->registry, &weakset);
    if (!rc)
        rc = module_attr(a, module, "Task", &task);
    if (!rc)
        rc = module_attr(a, module, "_GatheringFuture", &gather);
    if (!rc)
        rc = pydict_attr_str(&a->dict, weakset, "data", &set);
    uint64_t current = 0;
    if (!rc && module_attr(a, module, "_current_tasks", &current) != 0)
        current = 0; /* the running task is then found by walking every task */
    a->reads += a->dict.reads;
    a->dict.reads = 0;
    if (rc)
        return rc;
    if (set != a->set_seen || interp != a->interp)
        a->cached = false; /* another registry: walk every task */
    a->set_seen = set;
    a->current = current;
    a->interp = interp;
    a->set = set;
    a->type_task = task;
    a->type_gather = gather;
    a->found_ns = now_ns;
    return 0;
}

/* Copies the registry set's table into a->regtab; *n gets its number of entries. */
int asyncwalk_table(struct asyncreader *a, size_t *n)
{
    *n = 0;
    uint8_t head[SET_HEAD];
    int rc = mem_read(a->rt->pid, a->set, head, sizeof(head));
    a->reads++;
    if (rc)
        return rc;
    uint64_t used = u64(head, 24), mask = u64(head, 32), table = u64(head, 40);
    if ((a->rt->type_set && u64(head, 8) != a->rt->type_set) || mask + 1 > ASYNCWALK_SET_MAX ||
        ((mask + 1) & mask) || used > mask + 1 || !table)
        return ERR_CORRUPT;
    rc = mem_read(a->rt->pid, table, a->regtab, (mask + 1) * 16);
    a->reads++;
    if (rc)
        return rc;
    *n = (size_t)mask + 1;
    return 0;
}

/* The task a registry entry's hash names: a weak reference hashes as its referent, and a
 * Task (no __hash__ of its own) as its address rotated right by 4 bits (_Py_HashPointer,
 * 3.8-3.13). 0 when the hash cannot be an object's. */
uint64_t asyncwalk_hash_task(uint64_t hash)
{
    uint64_t addr = (hash << 4) | (hash >> 60);
    return (addr & 15) || !addr || hash == (uint64_t)-2 ? 0 : addr;
}

/* The addresses of the live tasks in the registry into a->addr; *n gets their count. Checks
 * that each entry's hash names its task (a->hash_bad otherwise). */
int asyncwalk_registry(struct asyncreader *a, size_t *n)
{
    size_t entries = 0;
    int rc = asyncwalk_table(a, &entries);
    *n = 0;
    if (rc)
        return rc;
    /* Entries: {key, hash}; NULL keys are free, a dummy key is a deleted entry (its type is not
     * a weak reference: dropped at the next level). */
    size_t k = 0;
    uint64_t *hashes = a->cur; /* scratch until the chains are read */
    for (size_t i = 0; i < entries; i++) {
        uint64_t key = a->regtab[2 * i];
        if (!key || key & 7)
            continue;
        if (k == ASYNCIO_MAX_TASKS) {
            a->skipped++;
            continue;
        }
        hashes[k] = a->regtab[2 * i + 1];
        a->addr[k++] = key;
    }
    memcpy(a->regprev, a->regtab, entries * 16);
    a->regn = entries;
    /* The weak references: each names its task (None once the task is gone). */
    rc = asyncwalk_read(a, k, WR_OBJECT + 8);
    if (rc)
        return rc;
    const struct py_offsets *o = &a->rt->off;
    for (size_t i = 0; i < k; i++) {
        const uint8_t *b = a->buf + i * ASYNCWALK_OBJ_STRIDE;
        if (!a->ok[i] || (a->rt->type_weakref && u64(b, o->ob_type) != a->rt->type_weakref))
            continue;
        uint64_t t = u64(b, WR_OBJECT);
        if (t && t != a->rt->type_none && !(t & 7)) {
            if (asyncwalk_hash_task(hashes[i]) != t)
                a->hash_bad = true;
            a->addr[(*n)++] = t;
        }
    }
    return 0;
}

/* --- Names -------------------------------------------------------------------------------- */

/* The task's name: a str (read once per task and name object, then cached), or 3.13's lazy
 * int counter (a default name). */
static void task_name(struct asyncreader *a, struct atask *t, uint64_t name)
{
    uint64_t key = hmap_hash64(hmap_hash64(t->addr) ^ name) | 1, v;
    if (hmap_get(&a->names, key, &v) && v && v - 1 < a->arena_len) {
        snprintf(t->name, sizeof(t->name), "%s", a->arena + v - 1);
    } else {
        size_t len = 0;
        a->reads++;
        if (pystr_read(a->rt->pid, &a->rt->off, a->rt->type_str, name, t->name, sizeof(t->name),
                       &len) != 0) {
            t->name[0] = 0; /* an int (3.13 names lazily) or unreadable: a default name */
        }
        if (a->arena_len + len + 1 > (1u << 20)) {
            a->arena_len = 0; /* bounded: start over */
            hmap_clear(&a->names);
        }
        if (a->arena_len + len + 1 > a->arena_cap) {
            a->arena_cap = a->arena_cap ? a->arena_cap * 2 : 4096;
            a->arena = xrealloc(a->arena, a->arena_cap);
        }
        memcpy(a->arena + a->arena_len, t->name, len + 1);
        hmap_put(&a->names, key, a->arena_len + 1);
        a->arena_len += len + 1;
    }
    const char *s = t->name;
    bool dflt = !s[0];
    if (!dflt && strncmp(s, "Task-", 5) == 0) {
        dflt = s[5] != 0;
        for (const char *c = s + 5; *c && dflt; c++)
            dflt = *c >= '0' && *c <= '9';
    }
    t->default_name = dflt;
}

/* The name of the type at `type` ("Future", "_GatheringFuture"), cached by address. */
static const char *type_name(struct asyncreader *a, uint64_t type)
{
    for (size_t i = 0; i < a->ntypes; i++)
        if (a->types[i].addr == type)
            return a->types[i].name;
    size_t slot = a->ntypes < ASYNCIO_TYPES ? a->ntypes++ : (size_t)(type % ASYNCIO_TYPES);
    a->types[slot].addr = type;
    char *out = a->types[slot].name;
    uint64_t p = 0;
    out[0] = 0;
    a->reads += 2;
    if (mem_read(a->rt->pid, type + TP_NAME, &p, 8) == 0 && p &&
        mem_read(a->rt->pid, p, out, sizeof(a->types[slot].name) - 1) == 0) {
        out[sizeof(a->types[slot].name) - 1] = 0;
        for (char *c = out; *c; c++)
            if ((unsigned char)*c < 32 || (unsigned char)*c > 126)
                *c = '?';
        const char *dot = strrchr(out, '.');
        if (dot)
            memmove(out, dot + 1, strlen(dot + 1) + 1);
    }
    if (!out[0])
        snprintf(out, sizeof(a->types[slot].name), "?");
    return out;
}

/* --- Tasks and coroutines ----------------------------------------------------------------- */

/* Appends frame (code, line) to task `t`'s chain; false at the caps. */
static bool push_frame(struct asyncreader *a, struct atask *t, uint32_t code, int32_t line)
{
    if (a->nframes == a->capframes || t->nframes >= ASYNCIO_MAX_DEPTH)
        return false;
    if (t->first + t->nframes != a->nframes)
        return false; /* chains are built one task at a time within a level: never */
    a->frames[a->nframes++] = (struct pyframe){.code = code, .line = line, .entry = false};
    t->nframes++;
    return true;
}

/* A coroutine's state in a round. */
enum coro_st {
    CS_OTHER = 0,  /* finished, or not a frame in use: the chain moved since it was copied */
    CS_SUSPENDED,  /* suspended in a plain yield (3.13 says so; a generator-based coroutine) */
    CS_YIELD_FROM, /* suspended in an await */
    CS_RUNNING,
    CS_CREATED,
};

/* The frame of the j-th object of the level, whose copy is `b`: embedded in the coroutine
 * (3.11+), or the copy frames38 read (3.8-3.10; NULL when it has none). */
static const uint8_t *frame_of(const struct asyncreader *a, const uint8_t *b, size_t j)
{
    if (a->ao->gen_frame < 0)
        return b + a->ao->gen_iframe;
    return a->fok[j] ? a->fbuf + j * ASYNCWALK_FRAME_WIDE : NULL;
}

static uint64_t frame_code(const struct asyncreader *a, const uint8_t *f)
{
    return u64(f, a->ao->gen_frame < 0 ? a->rt->off.if_code : a->rt->off.fo_code);
}

/* Whether the coroutine with copy `b` has returned: 3.11+ its frame state is COMPLETED or
 * CLEARED (above EXECUTING on 3.11-3.13); before, gi_frame is NULL once it finished. */
static bool coro_finished(const struct asyncreader *a, const uint8_t *b)
{
    if (a->ao->gen_frame < 0)
        return (int8_t)b[a->ao->gen_state] > a->ao->st_executing;
    return u64(b, a->ao->gen_frame) == 0;
}

/* Bytes of the j-th copy of the level that hold the value stack: the wide copy of the
 * coroutine (3.11+) or of its frame object, 0 when only a narrow copy was read. */
static size_t wide_len(const struct asyncreader *a, size_t j)
{
    if (a->ao->gen_frame < 0)
        return a->ok[j] == 2 ? ASYNCWALK_OBJ_WIDE : 0;
    return a->fok[j] == 2 ? ASYNCWALK_FRAME_WIDE : 0;
}

/* 3.8-3.10: a coroutine's frame is an object of its own (gi_frame, NULL once it finished):
 * reads the frames of the level's n objects (a->addr, copies in a->buf) that are coroutines
 * or generators into a->fbuf, in one batched read; a->fok says which were read. */
static int frames38(struct asyncreader *a, struct pyreader *r, size_t n, uint64_t now_ns)
{
    if (a->ao->gen_frame < 0)
        return 0;
    const struct py_offsets *o = &a->rt->off;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *b = a->buf + i * ASYNCWALK_OBJ_STRIDE;
        uint64_t type = u64(b, o->ob_type), f = u64(b, a->ao->gen_frame);
        a->fok[i] = 0;
        if (!a->ok[i] || (type != a->rt->type_coro && type != a->rt->type_gen) || !f || (f & 7))
            continue;
        a->fidx[m] = (uint32_t)i;
        a->spans[m++] =
            (struct mem_span){f, a->fbuf + i * ASYNCWALK_FRAME_WIDE, ASYNCWALK_FRAME_WIDE};
    }
    if (!m)
        return 0;
    int rc = asyncwalk_readv_wide(a, a->spans, m, a->ok2, ASYNCWALK_FRAME38_READ);
    if (rc < 0)
        return rc;
    for (size_t k = 0; k < m; k++)
        a->fok[a->fidx[k]] = a->ok2[k];
    /* Their code objects: a frame gives no bytecode pointer to check a cached entry against
     * (a freed code object's address reused), so entries are re-checked in one batch. */
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (a->fok[i])
            a->codes[c++] = u64(a->fbuf + i * ASYNCWALK_FRAME_WIDE, o->fo_code);
    return codecache_check_many(&r->codes, a->codes, c, now_ns);
}

/* The state of the coroutine with copy `b` and frame copy `f` (NULL: none). */
static enum coro_st coro_state(const struct asyncreader *a, const uint8_t *b, const uint8_t *f)
{
    const struct asyncio_offsets *ao = a->ao;
    const struct py_offsets *o = &a->rt->off;
    if (ao->gen_frame < 0) {
        int8_t st = (int8_t)b[ao->gen_state];
        if (st == ao->st_executing)
            return CS_RUNNING;
        if (st == ao->st_created)
            return CS_CREATED;
        /* 3.11, 3.12 have one suspended state: a coroutine only suspends in an await. */
        if (st == ao->st_yield_from)
            return CS_YIELD_FROM;
        return st == ao->st_suspended ? CS_SUSPENDED : CS_OTHER;
    }
    /* A frame on a free list or cleared has no references. */
    if (!f || (int64_t)u64(f, 0) <= 0)
        return CS_OTHER;
    int8_t st = (int8_t)f[o->fo_state];
    if (o->minor >= 10) /* f_state: CREATED -2, SUSPENDED -1, EXECUTING 0 */
        return st == 0 ? CS_RUNNING : st == -2 ? CS_CREATED : st == -1 ? CS_YIELD_FROM : CS_OTHER;
    if (st) /* f_executing */
        return CS_RUNNING;
    int32_t lasti;
    memcpy(&lasti, f + o->fo_lasti, 4);
    if (lasti == -1)
        return CS_CREATED;
    /* f_stacktop is NULL once the frame returned (and while it runs). */
    return u64(f, ao->fr_stacktop) ? CS_YIELD_FROM : CS_OTHER;
}

/* 3.8-3.10: the line of suspended frame copy `f` and the address of the top of its value
 * stack (what _PyGen_yf returns when suspended in YIELD_FROM: the awaited object). `faddr`:
 * the frame's address. Returns 1 with *yf set, 0 when the stack is empty (a plain yield),
 * ERR_CORRUPT when it fails a check. */
static int frame38_top(const struct asyncreader *a, const uint8_t *f, uint64_t faddr, uint64_t *yf)
{
    const struct asyncio_offsets *ao = a->ao;
    uint64_t vs = u64(f, ao->fr_valuestack);
    if ((vs & 7) || vs < faddr + (uint64_t)ao->fr_valuestack || vs - faddr > VALUESTACK_MAX)
        return ERR_CORRUPT; /* the value stack ends the frame object's own allocation */
    int64_t depth;
    if (ao->fr_stacktop >= 0) {
        uint64_t top = u64(f, ao->fr_stacktop);
        if (top < vs || ((top - vs) & 7))
            return ERR_CORRUPT;
        depth = (int64_t)((top - vs) / 8);
    } else {
        int32_t d;
        memcpy(&d, f + ao->fr_stackdepth, 4);
        depth = d;
    }
    if (depth < 0 || depth > STACKTOP_MAX)
        return ERR_CORRUPT;
    if (depth == 0)
        return 0;
    *yf = vs + 8 * (uint64_t)(depth - 1);
    return 1;
}

/* The words that say a coroutine level is unchanged, from the copy `c` of the bytes at `base`
 * (the coroutine on 3.11+, its frame object before): its state, code, instruction, stack
 * depth and where the awaited object lies (lv->slot is not read here: it lies past the
 * copy a walk makes, and is set when the next level reads it). */
static void level_words(const struct asyncreader *a, const uint8_t *c, uint64_t base,
                        struct alevel *lv)
{
    const struct py_offsets *o = &a->rt->off;
    const struct asyncio_offsets *ao = a->ao;
    uint64_t head, slot_off = 0;
    lv->addr = base;
    if (ao->gen_frame < 0) {
        const uint8_t *f = c + ao->gen_iframe;
        int32_t top;
        memcpy(&top, f + o->if_stacktop, 4);
        lv->state = (int8_t)c[ao->gen_state];
        lv->code = u64(f, o->if_code);
        lv->instr = u64(f, o->if_instr);
        lv->top = top;
        head = (uint64_t)ao->gen_iframe + (uint64_t)o->if_size;
        if (top >= 1 && top <= STACKTOP_MAX)
            slot_off = head + 8 * (uint64_t)(top - 1);
    } else {
        int32_t lasti;
        memcpy(&lasti, c + o->fo_lasti, 4);
        lv->state = (int8_t)c[o->fo_state];
        lv->code = u64(c, o->fo_code);
        lv->instr = (uint32_t)lasti;
        head = ASYNCWALK_FRAME38_READ;
        uint64_t top = 0;
        lv->top = frame38_top(a, c, base, &top) == 1 ? (int64_t)(top - base) : -1;
        if (lv->top > 0)
            slot_off = (uint64_t)lv->top;
    }
    lv->slot_off = slot_off <= ASYNCIO_LEVEL_MAX ? (uint32_t)slot_off : 0;
    uint64_t len = slot_off + 8 > head ? slot_off + 8 : head;
    lv->len = len <= ASYNCIO_LEVEL_MAX ? (uint32_t)len : 0; /* too deep a stack: not cached */
}

/* Whether the level copy `c` (lv->len bytes at lv->addr) still shows level `lv`. */
bool asyncwalk_level_same(const struct asyncreader *a, const uint8_t *c, const struct alevel *lv)
{
    const struct py_offsets *o = &a->rt->off;
    struct alevel now;
    if ((int64_t)u64(c, 0) <= 0)
        return false; /* freed, or a frame on a free list */
    if (a->ao->gen_frame < 0) {
        uint64_t type = u64(c, o->ob_type);
        if (type != a->rt->type_coro && type != a->rt->type_gen)
            return false;
        if (o->if_owner >= 0 && c[a->ao->gen_iframe + o->if_owner] != 1)
            return false;
    }
    level_words(a, c, lv->addr, &now);
    return now.state == lv->state && now.code == lv->code && now.instr == lv->instr &&
           now.top == lv->top && now.slot_off == lv->slot_off && now.len == lv->len &&
           (!lv->slot_off || u64(c, lv->slot_off) == lv->slot);
}

/* Checks the copy `b` of the coroutine (or generator) at `addr`, with frame copy `f`, and
 * appends its frame to task `t`. Returns 1 when it is suspended in an await (*yf gets the
 * address of the slot holding the awaited object; *yv its value when it lies within the first
 * `clen` bytes of the copy holding the stack, else 0), 0 when it ends the chain, ERR_CORRUPT
 * when it fails a check. */
static int coro_frame(struct asyncreader *a, struct pyreader *r, struct atask *t, const uint8_t *b,
                      const uint8_t *f, uint64_t addr, uint64_t now_ns, size_t clen, uint64_t *yf,
                      uint64_t *yv)
{
    *yf = 0;
    *yv = 0;
    const struct py_offsets *o = &a->rt->off;
    const struct asyncio_offsets *ao = a->ao;
    enum coro_st state = coro_state(a, b, f);
    if (state != CS_SUSPENDED && state != CS_YIELD_FROM)
        return ERR_CORRUPT; /* finished or running: the chain moved since the caller's copy */
    if (ao->gen_frame < 0 && o->if_owner >= 0 && f[o->if_owner] != 1 /* FRAME_OWNED_BY_GENERATOR */)
        return ERR_CORRUPT;
    const struct pycode *c;
    if (codecache_get(&r->codes, frame_code(a, f), now_ns, &c))
        return ERR_CORRUPT;
    int64_t off;
    if (ao->gen_frame >= 0) {
        /* f_lasti: bytes (3.8, 3.9) or code units (3.10); in YIELD_FROM it names the
         * instruction before it (re-run on resume), on the await's line. */
        int32_t lasti;
        memcpy(&lasti, f + o->fo_lasti, 4);
        off = o->minor >= 10 ? (int64_t)lasti * 2 : lasti;
        if (off < 0 || off >= (int64_t)c->code_bytes)
            return ERR_CORRUPT;
    } else {
        off = (int64_t)(u64(f, o->if_instr) - c->code_start);
        if (off < -2 || off >= (int64_t)c->code_bytes)
            return ERR_CORRUPT;
    }
    if (!push_frame(a, t, (uint32_t)(c - r->codes.v), codecache_line(c, off)))
        return 0;
    struct alevel *lv = &a->levels[a->nframes - 1];
    if (ao->gen_frame >= 0)
        level_words(a, f, u64(b, ao->gen_frame), lv);
    else
        level_words(a, b, addr, lv);
    lv->slot = 0;
    if (state != CS_YIELD_FROM) {
        lv->slot_off = 0; /* a plain yield: nothing awaited to check */
        lv->len = lv->len ? (uint32_t)(ao->gen_frame >= 0 ? ASYNCWALK_FRAME38_READ
                                                          : ao->gen_iframe + o->if_size)
                          : 0;
        return 0;
    }
    if (ao->gen_frame >= 0) {
        int k = frame38_top(a, f, u64(b, ao->gen_frame), yf);
        if (k == 1 && *yf - u64(b, ao->gen_frame) + 8 <= clen)
            *yv = u64(f, (int32_t)(*yf - u64(b, ao->gen_frame)));
        return k;
    }
    int32_t top;
    memcpy(&top, f + o->if_stacktop, 4);
    if (top < 1 || top > STACKTOP_MAX)
        return ERR_CORRUPT;
    *yf = addr + (uint64_t)ao->gen_iframe + (uint64_t)o->if_size + 8 * (uint64_t)(top - 1);
    if (*yf - addr + 8 <= clen)
        *yv = u64(b, (int32_t)(*yf - addr)); /* the slot came with the copy */
    return 1; /* the slot's address: read at the next level unless *yv has it */
}

/* Parses the copy `b` of the task at `addr` into `t`; false when it is not a Task (a Python
 * Task subclass, or freed since the reference was read). */
bool asyncwalk_parse_task(struct asyncreader *a, struct atask *t, const uint8_t *b, uint64_t addr)
{
    const struct asyncio_offsets *ao = a->ao;
    if ((int64_t)u64(b, 0) <= 0 || u64(b, a->rt->off.ob_type) != a->type_task)
        return false;
    memset(t, 0, sizeof(*t));
    t->addr = addr;
    t->loop = u64(b, ao->tk_loop);
    t->waiter = u64(b, ao->tk_waiter);
    t->coro = u64(b, ao->tk_coro);
    t->parent = -1;
    t->name_obj = u64(b, ao->tk_name);
    if (!t->coro || (t->coro & 7))
        return false;
    task_name(a, t, t->name_obj);
    return true;
}

/* Parses the copies of the n tasks read at a->addr into a->tasks, dropping what is not a
 * Task. */
void asyncwalk_parse_tasks(struct asyncreader *a, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (a->ok[i] &&
            asyncwalk_parse_task(a, &a->tasks[k], a->buf + i * ASYNCWALK_OBJ_STRIDE, a->addr[i]))
            k++;
    a->ntasks = k;
}

/* Reads the coroutines of tasks sel[0..n) and follows their await chains, one level per
 * batched read, appending their frames to a->frames. */
int asyncwalk_chains(struct asyncreader *a, struct pyreader *r, const uint32_t *sel, size_t n,
                     uint64_t now_ns)
{
    const struct py_offsets *o = &a->rt->off;
    const struct asyncio_offsets *ao = a->ao;
    for (size_t i = 0; i < n; i++)
        a->addr[i] = a->tasks[sel[i]].coro;
    size_t len = ao->gen_frame >= 0 ? (size_t)ao->gen_frame + 8
                                    : (size_t)ao->gen_iframe + (size_t)o->if_size;
    int rc = ao->gen_frame < 0 ? asyncwalk_read_wide(a, n, len) : asyncwalk_read(a, n, len);
    if (!rc)
        rc = frames38(a, r, n, now_ns);
    if (rc)
        return rc;
    /* Level 0: the task's own coroutine. cur[i] = the value-stack slot holding what it awaits. */
    for (size_t i = 0; i < n; i++) {
        struct atask *t = &a->tasks[sel[i]];
        const uint8_t *b = a->buf + i * ASYNCWALK_OBJ_STRIDE;
        a->cur[i] = 0;
        a->depth[i] = 0;
        t->first = (uint32_t)a->nframes;
        uint64_t type = u64(b, o->ob_type);
        const uint8_t *f = frame_of(a, b, i);
        if (a->ok[i] && (type == a->rt->type_coro || type == a->rt->type_gen) &&
            coro_finished(a, b)) {
            t->state = ATASK_DONE; /* a done task still referenced: nothing to show */
            continue;
        }
        if (!a->ok[i] || (type != a->rt->type_coro && type != a->rt->type_gen) || !f) {
            t->state = 0;
            a->torn++;
            continue;
        }
        t->root_code = frame_code(a, f);
        enum coro_st st = coro_state(a, b, f);
        if (st == CS_RUNNING) {
            t->state = ATASK_RUNNING;
            continue;
        }
        if (st == CS_CREATED) {
            t->state = ATASK_CREATED;
            continue;
        }
        uint64_t yf = 0;
        int k = coro_frame(a, r, t, b, f, t->coro, now_ns, wide_len(a, i), &yf, &a->known[i]);
        if (k < 0) {
            t->state = 0;
            a->torn++;
            continue;
        }
        t->state = ATASK_SUSPENDED;
        a->cur[i] = k == 1 ? yf : 0;
    }
    uint64_t *leaf_fut = a->table + ASYNCIO_MAX_TASKS; /* scratch past slot_of */
    memset(leaf_fut, 0, n * sizeof(*leaf_fut));
    /* Each further level: the slots, then the objects they name. Tasks are handled in order,
     * so each one's frames stay contiguous only if a level appends for one task at a time:
     * frames of later levels go to a second pass per task (see append below). */
    for (unsigned level = 1; level < ASYNCIO_MAX_DEPTH; level++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (a->cur[i])
                m++;
        if (!m)
            break;
        /* Slots first (8 bytes each). */
        uint64_t *slot_of = a->table; /* scratch: per task, the object in its slot */
        size_t j = 0;
        for (size_t i = 0; i < n; i++)
            if (a->cur[i] && !a->known[i])
                a->addr[j++] = a->cur[i];
        rc = asyncwalk_read(a, j, 8);
        if (rc)
            return rc;
        j = 0;
        for (size_t i = 0; i < n; i++) {
            if (!a->cur[i])
                continue;
            const struct atask *t = &a->tasks[sel[i]];
            if (a->known[i]) {
                slot_of[i] = a->known[i];
            } else {
                slot_of[i] = a->ok[j] ? u64(a->buf + j * ASYNCWALK_OBJ_STRIDE, 0) : 0;
                j++;
            }
            if (t->nframes)
                a->levels[t->first + t->nframes - 1].slot = slot_of[i];
        }
        j = 0;
        for (size_t i = 0; i < n; i++) {
            if (!a->cur[i])
                continue;
            /* None on top: the coroutine is being resumed (gen_send_ex pushed the sent value
             * before the frame's state says it runs): torn. */
            if (!slot_of[i] || (slot_of[i] & 7) || slot_of[i] == a->rt->type_none) {
                a->cur[i] = 0;
                a->tasks[sel[i]].state = 0;
                a->torn++;
                continue;
            }
            a->addr[j++] = slot_of[i];
        }
        rc = ao->gen_frame < 0 ? asyncwalk_read_wide(a, j, ASYNCWALK_OBJ_READ)
                               : asyncwalk_read(a, j, ASYNCWALK_OBJ_READ);
        if (!rc)
            rc = frames38(a, r, j, now_ns);
        if (rc)
            return rc;
        j = 0;
        for (size_t i = 0; i < n; i++) {
            if (!a->cur[i])
                continue;
            struct atask *t = &a->tasks[sel[i]];
            const uint8_t *b = a->buf + j * ASYNCWALK_OBJ_STRIDE;
            const uint8_t *f = frame_of(a, b, j);
            uint64_t obj = a->addr[j];
            bool ok = a->ok[j];
            j++;
            a->cur[i] = 0;
            if (!ok) {
                t->state = 0;
                a->torn++;
                continue;
            }
            uint64_t type = u64(b, o->ob_type);
            if (type == a->rt->type_coro || type == a->rt->type_gen) {
                /* Frames of one task must stay contiguous: a deeper frame can be appended only
                 * while this task's chain is the last one written. Chains are therefore
                 * rebuilt at the end (see relink); here record the object. */
                if (t->first + t->nframes != a->nframes) {
                    /* Move this task's chain to the end (bounded copy). */
                    if (a->nframes + t->nframes + 1 > a->capframes) {
                        snprintf(t->awaits, sizeof(t->awaits), "[truncated]");
                        continue;
                    }
                    memmove(a->frames + a->nframes, a->frames + t->first,
                            t->nframes * sizeof(*a->frames));
                    memmove(a->levels + a->nframes, a->levels + t->first,
                            t->nframes * sizeof(*a->levels));
                    t->first = (uint32_t)a->nframes;
                    a->nframes += t->nframes;
                }
                if (obj == t->coro || a->depth[i] >= ASYNCIO_MAX_DEPTH - 1) {
                    snprintf(t->awaits, sizeof(t->awaits), "[truncated]");
                    continue; /* a cycle or too deep */
                }
                a->depth[i]++;
                uint64_t yf = 0;
                int k = f ? coro_frame(a, r, t, b, f, obj, now_ns, wide_len(a, j - 1), &yf,
                                       &a->known[i])
                          : ERR_CORRUPT;
                if (k < 0) {
                    t->state = 0;
                    a->torn++;
                    continue;
                }
                a->cur[i] = k == 1 ? yf : 0;
                continue;
            }
            /* The leaf: what the innermost coroutine awaits. */
            const char *tn = type_name(a, type);
            if (strcmp(tn, "FutureIter") == 0 && !(u64(b, FI_FUTURE) & 7))
                leaf_fut[i] = u64(b, FI_FUTURE); /* named by its future's type, below */
            snprintf(t->awaits, sizeof(t->awaits), "%s", tn);
        }
    }
    /* The futures the FutureIters wrap, in one read: their types name the leaves. */
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        if (leaf_fut[i])
            a->addr[j++] = leaf_fut[i];
    rc = asyncwalk_read(a, j, 16);
    if (rc)
        return rc;
    j = 0;
    for (size_t i = 0; i < n; i++) {
        if (!leaf_fut[i])
            continue;
        uint64_t ft = a->ok[j] ? u64(a->buf + j * ASYNCWALK_OBJ_STRIDE, o->ob_type) : 0;
        j++;
        if (ft && !(ft & 7))
            snprintf(a->tasks[sel[i]].awaits, sizeof(a->tasks[sel[i]].awaits), "%s",
                     type_name(a, ft));
    }
    return 0;
}

/* Whether task t's waiter's type is to be read (not yet read for this waiter). */
static bool wants_wtype(const struct atask *t)
{
    return t->state == ATASK_SUSPENDED && t->waiter && !(t->waiter & 7) && t->wtype_of != t->waiter;
}

/* Links tasks that wait on another task, or on a gather of tasks, to it. */
void asyncwalk_link(struct asyncreader *a)
{
    const struct py_offsets *o = &a->rt->off;
    hmap_clear(&a->index);
    for (size_t i = 0; i < a->ntasks; i++) {
        struct atask *t = &a->tasks[i];
        hmap_put(&a->index, t->addr, i + 1);
        t->parent = -1;
        t->nawaiters = 0;
        t->via_gather = false;
        t->awaits_tasks = false;
    }
    /* The waiters' types not read yet, in one read (a gather's children are read singly, at
     * most 64). A task's waiter is kept until the task runs: its type is read once. */
    size_t j = 0;
    for (size_t i = 0; i < a->ntasks; i++)
        if (wants_wtype(&a->tasks[i]))
            a->addr[j++] = a->tasks[i].waiter;
    if (asyncwalk_read(a, j, 16) != 0)
        return;
    j = 0;
    for (size_t i = 0; i < a->ntasks; i++) {
        struct atask *t = &a->tasks[i];
        if (wants_wtype(t)) {
            t->wtype = a->ok[j] ? u64(a->buf + j * ASYNCWALK_OBJ_STRIDE, o->ob_type) : 0;
            t->wtype_of = t->waiter;
            j++;
        }
    }
    unsigned gathers = 0;
    for (size_t i = 0; i < a->ntasks; i++) {
        struct atask *t = &a->tasks[i];
        uint64_t v;
        if (t->state != ATASK_SUSPENDED || !t->waiter)
            continue;
        if (hmap_get(&a->index, t->waiter, &v) && v) {
            struct atask *c = &a->tasks[v - 1];
            if (c != t) {
                c->parent = (int32_t)i;
                c->nawaiters++;
                t->awaits_tasks = true;
            }
            continue;
        }
        if (!a->type_gather || gathers >= 64)
            continue;
        if (t->wtype_of != t->waiter || t->wtype != a->type_gather)
            continue;
        gathers++;
        uint64_t list = 0, items = 0, size = 0;
        if (pydict_attr_str(&a->dict, t->waiter, "_children", &list) != 0)
            continue;
        uint8_t head[32];
        a->reads += 2;
        if (mem_read(a->rt->pid, list, head, sizeof(head)) != 0)
            continue;
        size = u64(head, o->var_size);
        items = u64(head, LIST_ITEMS);
        if (size == 0 || size > ASYNCIO_MAX_CHILDREN || !items)
            continue;
        uint64_t kids[ASYNCIO_MAX_CHILDREN];
        if (mem_read(a->rt->pid, items, kids, size * 8) != 0)
            continue;
        snprintf(t->awaits, sizeof(t->awaits), "gather (%llu)", (unsigned long long)size);
        for (uint64_t k = 0; k < size; k++) {
            if (!hmap_get(&a->index, kids[k], &v) || !v)
                continue;
            struct atask *c = &a->tasks[v - 1];
            if (c == t)
                continue;
            c->parent = (int32_t)i;
            c->via_gather = true;
            c->nawaiters++;
            t->awaits_tasks = true;
        }
    }
}
