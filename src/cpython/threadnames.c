// SPDX-License-Identifier: MIT
// Python thread names from the `threading` registry. A read walks, per interpreter:
// interp->modules (sys.modules) -> 'threading' (a module) -> its md_dict -> '_active' (a
// dict of int ident -> Thread) -> each Thread's instance dict -> '_name' (a str). Threads not
// started by `threading` (_thread.start_new_thread, C threads) are not in it unless they
// called threading.current_thread() (a _DummyThread, "Dummy-N"). py-spy reads the same
// registry (src/python_threading.rs); it pauses the process, we tolerate torn reads instead:
// every object's type is checked, a key's int must equal its stored hash, and a registry that
// fails keeps its previous names.
#include "cpython/threadnames.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpython/pystr.h"
#include "target/mem.h"
#include "util/xalloc.h"

/* A full scan of sys.modules for 'threading' at least this often, even when the module found
 * before still validates (a re-import leaves the old module alive but unused). */
#define RESCAN_NS 30000000000ULL

static uint64_t key_of(uint64_t interp, uint64_t ident)
{
    return hmap_hash64(hmap_hash64(interp) ^ ident) | 1;
}

static uint64_t cover_key(const struct pythread *th)
{
    return hmap_hash64(hmap_hash64(th->tstate ^ (th->ts_id << 1)) ^ th->pthread_id) | 1;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void threadnames_init(struct threadnames *tn, const struct pyruntime *rt)
{
    memset(tn, 0, sizeof(*tn));
    tn->rt = rt;
    tn->enabled = offsets_fit_objects(&rt->off);
    pydict_init(&tn->dict, rt->pid, &rt->off, rt->type_dict, rt->type_str, rt->type_long);
    /* Grown with the threads the registry holds, up to THREADNAMES_MAX: a followed child
     * with two threads costs a few KB. */
    tn->cap = 16;
    tn->v = xcalloc(tn->cap, sizeof(*tn->v));
    tn->next = xcalloc(tn->cap, sizeof(*tn->next));
    tn->items = xcalloc(tn->cap, sizeof(*tn->items));
    hmap_init(&tn->index);
    hmap_init(&tn->covered);
    hmap_init(&tn->seen);
}

void threadnames_fini(struct threadnames *tn)
{
    pydict_fini(&tn->dict);
    free(tn->v);
    free(tn->next);
    free(tn->items);
    hmap_fini(&tn->index);
    hmap_fini(&tn->covered);
    hmap_fini(&tn->seen);
    memset(tn, 0, sizeof(*tn));
}

/* The entry of the last read for (interp, ident), or NULL. */
static const struct tname *lookup(const struct threadnames *tn, uint64_t interp, uint64_t ident)
{
    uint64_t v;
    if (!hmap_get(&tn->index, key_of(interp, ident), &v) || v == 0 || v > tn->n)
        return NULL;
    const struct tname *e = &tn->v[v - 1];
    return e->interp == interp && e->ident == ident ? e : NULL;
}

/* --- Finding the registry ----------------------------------------------------------------- */

static struct tn_chain *chain_of(struct threadnames *tn, uint64_t interp)
{
    for (size_t i = 0; i < tn->nchain; i++)
        if (tn->chain[i].interp == interp)
            return &tn->chain[i];
    if (tn->nchain == THREADNAMES_INTERPS)
        return NULL;
    struct tn_chain *c = &tn->chain[tn->nchain++];
    memset(c, 0, sizeof(*c));
    c->interp = interp;
    return c;
}

/* Forgets the registries of interpreters no thread of the round belongs to (ended
 * subinterpreters: their slots go to new ones, and a reused address starts afresh). */
static void forget_chains(struct threadnames *tn, const uint64_t *interps, size_t n)
{
    size_t kept = 0;
    for (size_t i = 0; i < tn->nchain; i++) {
        bool live = false;
        for (size_t k = 0; k < n && !live; k++)
            live = tn->chain[i].interp == interps[k];
        if (live)
            tn->chain[kept++] = tn->chain[i];
    }
    tn->nchain = kept;
}

/* `threading`'s _active through the module at `module`: its type, its md_dict, the key. */
static int active_of(struct threadnames *tn, uint64_t module, uint64_t *active)
{
    const struct py_offsets *o = &tn->rt->off;
    uint8_t head[64];
    size_t len = (size_t)o->mod_dict + 8;
    int rc = mem_read(tn->rt->pid, module, head, len);
    tn->dict.reads++;
    if (rc)
        return rc;
    uint64_t type, md_dict;
    memcpy(&type, head + o->ob_type, 8);
    memcpy(&md_dict, head + o->mod_dict, 8);
    if (tn->rt->type_module && type != tn->rt->type_module)
        return ERR_CORRUPT;
    return pydict_get_str(&tn->dict, md_dict, "_active", active);
}

/* The interpreter's _active dict: through the module found before when it still checks out,
 * else (and every RESCAN_NS) through sys.modules. */
static int registry(struct threadnames *tn, struct tn_chain *c, uint64_t now_ns, uint64_t *active)
{
    const struct py_offsets *o = &tn->rt->off;
    if (c->module && now_ns - c->found_ns < RESCAN_NS && active_of(tn, c->module, active) == 0)
        return 0;
    c->module = 0;
    uint64_t modules = 0, module = 0;
    tn->dict.reads++;
    int rc = mem_read(tn->rt->pid, c->interp + (uint64_t)o->is_modules, &modules, 8);
    if (!rc)
        rc = pydict_get_str(&tn->dict, modules, "threading", &module);
    if (!rc)
        rc = active_of(tn, module, active);
    if (rc)
        return rc;
    c->module = module;
    c->found_ns = now_ns;
    return 0;
}

/* Room for `n` names in both lists and `n` items. */
static void reserve(struct threadnames *tn, size_t n)
{
    if (n <= tn->cap)
        return;
    size_t cap = tn->cap;
    while (cap < n)
        cap *= 2;
    tn->v = xrealloc(tn->v, cap * sizeof(*tn->v));
    tn->next = xrealloc(tn->next, cap * sizeof(*tn->next));
    tn->items = xrealloc(tn->items, cap * sizeof(*tn->items));
    tn->cap = cap;
}

/* The items of the _active dict at `active`, the array grown as it needs. */
static int active_items(struct threadnames *tn, uint64_t active, size_t *n)
{
    int rc = pydict_items(&tn->dict, active, tn->items, tn->cap, n);
    while (rc == ERR_TOO_LARGE && tn->cap < THREADNAMES_MAX) {
        reserve(tn, tn->cap * 4 < THREADNAMES_MAX ? tn->cap * 4 : THREADNAMES_MAX);
        rc = pydict_items(&tn->dict, active, tn->items, tn->cap, n);
    }
    return rc;
}

/* --- Reading names ------------------------------------------------------------------------ */

/* Reads the name of the Thread at `thread` into `out`. */
static int read_name(struct threadnames *tn, uint64_t thread, char *out)
{
    uint64_t str = 0;
    int rc = pydict_attr_str(&tn->dict, thread, "_name", &str);
    size_t len = 0;
    if (!rc) {
        tn->dict.reads++;
        rc = pystr_read(tn->rt->pid, &tn->rt->off, tn->rt->type_str, str, out, THREADNAMES_LEN,
                        &len);
    }
    if (!rc && len == 0)
        rc = ERR_NOT_FOUND; /* "" names nothing: the OS name says more */
    tn->names_read += rc == 0;
    return rc;
}

/* One item of _active into the next list: its ident (the int key, which must equal the
 * hash stored beside it) and, unless `full` is false and the last read named this same
 * Thread, its name read again. */
static void add_item(struct threadnames *tn, uint64_t interp, const struct pydict_item *it,
                     bool full)
{
    const struct tname *old = NULL;
    uint64_t ident = (uint64_t)it->hash;
    if (it->hash > 0)
        old = lookup(tn, interp, ident);
    if (!old || old->key != it->key || old->thread != it->value) {
        old = NULL;
        if (pydict_read_int(&tn->dict, it->key, &ident) ||
            (it->hash && (uint64_t)it->hash != ident))
            return; /* not an int, or torn */
    }
    if (ident == 0)
        return;
    struct tname *e = &tn->next[tn->nnext];
    *e = (struct tname){.interp = interp, .ident = ident, .key = it->key, .thread = it->value};
    if (old && !full)
        memcpy(e->name, old->name, sizeof(e->name));
    else if (read_name(tn, it->value, e->name))
        return;
    tn->nnext++;
}

/* Copies the last read's names of `interp` into the next list (its registry failed). */
static void keep_old(struct threadnames *tn, uint64_t interp)
{
    reserve(tn, tn->nnext + tn->n); /* before: it may move tn->v */
    for (size_t i = 0; i < tn->n && tn->nnext < THREADNAMES_MAX; i++)
        if (tn->v[i].interp == interp)
            tn->next[tn->nnext++] = tn->v[i];
}

static void read_interp(struct threadnames *tn, uint64_t interp, bool full, uint64_t now_ns)
{
    struct tn_chain *c = chain_of(tn, interp);
    uint64_t active = 0;
    size_t nitems = 0;
    int rc = c ? registry(tn, c, now_ns, &active) : ERR_TOO_LARGE;
    if (!rc)
        rc = active_items(tn, active, &nitems);
    if (rc == ERR_NOT_FOUND) {
        tn->absent = true; /* no threading module (yet), or no _active: no names */
        return;
    }
    if (rc) {
        tn->failures++;
        keep_old(tn, interp);
        return;
    }
    reserve(tn, tn->nnext + nitems); /* before add_item keeps pointers into tn->v */
    for (size_t i = 0; i < nitems && tn->nnext < THREADNAMES_MAX; i++)
        add_item(tn, interp, &tn->items[i], full);
}

/* Makes the next list current and indexes it. */
static void publish(struct threadnames *tn)
{
    struct tname *t = tn->v;
    tn->v = tn->next;
    tn->next = t;
    tn->n = tn->nnext;
    tn->nnext = 0;
    hmap_clear(&tn->index);
    for (size_t i = 0; i < tn->n; i++)
        hmap_put(&tn->index, key_of(tn->v[i].interp, tn->v[i].ident), i + 1);
}

/* The threads of the round that this read covers: those whose pthread id is theirs alone in
 * their interpreter (a new thread state holds its creator's id until the thread runs:
 * CPYTHON.md section 2; one thread has a state in each interpreter it entered). */
static void cover(struct threadnames *tn, const struct pythread *th, size_t n)
{
    hmap_clear(&tn->seen);
    hmap_clear(&tn->covered);
    for (size_t i = 0; i < n; i++) {
        bool fresh;
        if (th[i].pthread_id)
            (*hmap_slot(&tn->seen, key_of(th[i].interp, th[i].pthread_id), 0, &fresh))++;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t count = 0;
        if (th[i].pthread_id &&
            hmap_get(&tn->seen, key_of(th[i].interp, th[i].pthread_id), &count) && count == 1)
            hmap_put(&tn->covered, cover_key(&th[i]), 1);
    }
}

/* Reads the registry of every interpreter the round's threads belong to (the first
 * THREADNAMES_INTERPS of them). */
static void refresh(struct threadnames *tn, const struct pythread *th, size_t n, bool full,
                    uint64_t now_ns)
{
    uint64_t t0 = mono_ns();
    uint64_t done[THREADNAMES_INTERPS];
    size_t ndone = 0;
    pydict_pass(&tn->dict);
    tn->nnext = 0;
    tn->absent = false;
    for (size_t i = 0; i < n && ndone < THREADNAMES_INTERPS; i++) {
        bool seen = false;
        for (size_t k = 0; k < ndone && !seen; k++)
            seen = done[k] == th[i].interp;
        if (!seen)
            done[ndone++] = th[i].interp;
    }
    forget_chains(tn, done, ndone);
    for (size_t k = 0; k < ndone; k++)
        read_interp(tn, done[k], full, now_ns);
    publish(tn);
    cover(tn, th, n);
    /* A program that has not imported threading yet (a launched one, starting) is read again
     * soon, then less and less often: its first Thread, or its main thread's name, shows
     * within 100-200 ms of the import instead of at the next periodic read. */
    if (tn->absent) {
        tn->backoff_ns = tn->backoff_ns ? tn->backoff_ns * 2 : THREADNAMES_MIN_GAP_NS;
        tn->retry_ns = tn->backoff_ns < THREADNAMES_PERIOD_NS ? now_ns + tn->backoff_ns : 0;
    } else {
        tn->backoff_ns = 0;
        tn->retry_ns = 0;
    }
    tn->refreshes++;
    tn->epoch++;
    tn->busy_ns += mono_ns() - t0;
}

bool threadnames_update(struct threadnames *tn, const struct pythread *th, size_t n,
                        uint64_t now_ns)
{
    if (!tn->enabled || !n)
        return false;
    uint64_t since = now_ns - tn->last_ns;
    bool full = !tn->last_ns || since >= THREADNAMES_PERIOD_NS;
    bool due = full || (tn->retry_ns && now_ns >= tn->retry_ns);
    for (size_t i = 0; i < n && !due && since >= THREADNAMES_MIN_GAP_NS; i++)
        due = th[i].pthread_id && !hmap_get(&tn->covered, cover_key(&th[i]), NULL);
    if (!due)
        return false;
    refresh(tn, th, n, full, now_ns);
    tn->last_ns = now_ns;
    return true;
}

const char *threadnames_get(const struct threadnames *tn, const struct pythread *th)
{
    if (!tn->enabled || !th->pthread_id || !hmap_get(&tn->covered, cover_key(th), NULL))
        return NULL;
    const struct tname *e = lookup(tn, th->interp, th->pthread_id);
    return e ? e->name : NULL;
}
