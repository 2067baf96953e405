// SPDX-License-Identifier: MIT
// Allocation sampling, the Python side (agentalloc.h): wraps the three PyMem domains' allocators
// around the engine of libcrux_alloc.so, and captures the allocating thread's Python stack from
// its own frame chain (no GIL, no allocation) into the ring's code and stack tables.
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#if PY_VERSION_HEX >= 0x030B0000
/* _PyInterpreterFrame is internal from 3.11 on: its layout is fixed within a minor version,
 * and this module is built per interpreter. */
#define Py_BUILD_CORE 1
#include <internal/pycore_frame.h>
#undef Py_BUILD_CORE
#endif

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentalloc.h"
#include "allocshim.h"

/* The engine's entry points (from the preloaded library, or dlopen'd from $CRUX_ALLOC_SHIM). */
static int (*s_start)(const struct crux_alloc_cfg *);
static void (*s_stop)(void);
/* The PyMem hooks live in the engine, beside its thread-locals: the unsampled path is then
 * the guard, the saved allocator's call and the countdown, with no call between modules. */
static void *(*s_hmalloc)(void *, size_t);
static void *(*s_hcalloc)(void *, size_t, size_t);
static void *(*s_hrealloc)(void *, void *, size_t);
static void (*s_hfree)(void *, void *);

static struct agentshm_hdr *g_ah;
static struct agentshm_code *g_codes;
static struct agentshm_stack *g_stacks;
static int g_ilock; /* guards the two intern tables below and the ring's code and stack tables */

/* Code object -> code entry; the file and name pointers are checked too, so that a code
 * object freed and another made at its address is not taken for it. */
struct cslot {
    PyCodeObject *code;
    PyObject *file, *name;
    uint32_t id;
};
#define CSLOTS (2 * AGENTSHM_CODES)
static struct cslot g_cslots[CSLOTS];
/* Stack hash -> stack entry (compared whole against the entry). */
struct sslot {
    uint64_t hash;
    uint32_t id;
};
#define SSLOTS (2 * AGENTSHM_STACKS)
static struct sslot g_sslots[SSLOTS];

static struct crux_alloc_dom g_dom[3];
static int g_hooked;
static void *g_engine;          /* the engine's dlopen handle, or RTLD_DEFAULT when preloaded */
static int g_skip_raw;          /* attached to a running process: RAW is not hooked */
static const char *g_shim_path; /* the engine's path given by an attach, else NULL */
static char g_dlerr[160];       /* why the engine could not be loaded */
static uint32_t g_beat_count;   /* samples since the reader's heartbeat was last looked at */

int agentalloc_wanted(uint64_t *sample_bytes)
{
    const char *s = getenv("CRUX_ALLOCATIONS");
    if (!s || !*s)
        return 0;
    *sample_bytes = 0;
    if (!strcmp(s, "all"))
        return 1;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || !v)
        v = 512 * 1024;
    *sample_bytes = v;
    return 1;
}

uint64_t agentalloc_bytes(uint32_t nrec)
{
    return (uint64_t)nrec * sizeof(struct agentshm_arec) +
           (uint64_t)AGENTSHM_CODES * sizeof(struct agentshm_code) +
           (uint64_t)AGENTSHM_STACKS * sizeof(struct agentshm_stack);
}

void agentalloc_layout(struct agentshm_hdr *h, uint64_t off, uint32_t nrec, uint64_t sample_bytes)
{
    h->arec_size = sizeof(struct agentshm_arec);
    h->arec_count = nrec;
    h->arecs_off = off;
    h->codes_off = off + (uint64_t)nrec * sizeof(struct agentshm_arec);
    h->stacks_off = h->codes_off + (uint64_t)AGENTSHM_CODES * sizeof(struct agentshm_code);
    h->code_size = sizeof(struct agentshm_code);
    h->code_count = AGENTSHM_CODES;
    h->stack_size = sizeof(struct agentshm_stack);
    h->stack_count = AGENTSHM_STACKS;
    h->codes_used = 1;
    h->stacks_used = 1;
    h->sample_bytes = sample_bytes;
    /* copy volume: $CRUX_COPIES bytes between samples (crux sets it; 0 = off) */
    const char *c = getenv("CRUX_COPIES");
    char *end = NULL;
    unsigned long long cb = c && *c ? strtoull(c, &end, 10) : 0;
    h->copy_sample_bytes = end && !*end ? cb : 0;
}

static void ilock(void)
{
    while (__atomic_exchange_n(&g_ilock, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&g_ilock, __ATOMIC_RELAXED))
            ;
}

static void iunlock(void)
{
    __atomic_store_n(&g_ilock, 0, __ATOMIC_RELEASE);
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

/* Writes `s` as UTF-8 into dst (at most cap bytes, whole characters); returns the length.
 * Reads the string's storage directly: PyUnicode_AsUTF8 may allocate. */
static size_t utf8_of(PyObject *s, char *dst, size_t cap)
{
    if (!s || !PyUnicode_Check(s))
        return 0;
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    size_t k = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        unsigned char b[4];
        size_t m;
        if (c < 0x80) {
            b[0] = (unsigned char)c;
            m = 1;
        } else if (c < 0x800) {
            b[0] = (unsigned char)(0xC0 | (c >> 6));
            b[1] = (unsigned char)(0x80 | (c & 0x3F));
            m = 2;
        } else if (c < 0x10000) {
            b[0] = (unsigned char)(0xE0 | (c >> 12));
            b[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
            b[2] = (unsigned char)(0x80 | (c & 0x3F));
            m = 3;
        } else {
            b[0] = (unsigned char)(0xF0 | (c >> 18));
            b[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
            b[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
            b[3] = (unsigned char)(0x80 | (c & 0x3F));
            m = 4;
        }
        if (k + m > cap)
            break;
        memcpy(dst + k, b, m);
        k += m;
    }
    return k;
}

/* The code entry of `co`, made on first sight; 0 when the table is full. Under g_ilock. */
static uint32_t code_id(PyCodeObject *co)
{
    PyObject *file = co->co_filename;
#if PY_VERSION_HEX >= 0x030B0000
    PyObject *name = co->co_qualname;
#else
    PyObject *name = co->co_name;
#endif
    uint64_t i = mix((uint64_t)(uintptr_t)co) % CSLOTS;
    for (uint32_t probe = 0; probe < CSLOTS; probe++, i = (i + 1) % CSLOTS) {
        struct cslot *c = &g_cslots[i];
        if (c->code == co && c->file == file && c->name == name)
            return c->id;
        if (c->code && c->code != co)
            continue;
        /* empty, or the same address with other strings: a new code object there */
        uint32_t id = g_ah->codes_used;
        if (id >= AGENTSHM_CODES)
            return 0;
        g_ah->codes_used = id + 1;
        struct agentshm_code *e = &g_codes[id];
        size_t fl = utf8_of(file, e->text, AGENTSHM_CODE_TEXT / 2);
        size_t nl = utf8_of(name, e->text + fl, AGENTSHM_CODE_TEXT - fl);
        e->file_len = (uint16_t)fl;
        e->name_len = (uint16_t)nl;
        __atomic_store_n(&e->state, AGENTSHM_NAME_READY, __ATOMIC_RELEASE);
        c->code = co;
        c->file = file;
        c->name = name;
        c->id = id;
        return id;
    }
    return 0;
}

/* A recorder killed with SIGKILL never clears `attached`: every 256 samples the reader's
 * heartbeat is looked at, and a stale one clears it, so that the hooks go back to a flag check
 * (stages do the same in agent.c). */
static void check_reader(void)
{
    if (__atomic_add_fetch(&g_beat_count, 1, __ATOMIC_RELAXED) % 256)
        return;
    uint64_t beat = __atomic_load_n(&g_ah->reader_ns, __ATOMIC_RELAXED);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    if (beat && now > beat && now - beat > AGENTSHM_READER_TIMEOUT_NS)
        __atomic_store_n(&g_ah->attached, 0, __ATOMIC_RELAXED);
}

/* The calling thread's Python frames, innermost first: code objects and lines. Reads only
 * this thread's own frame chain, which does not change while it is in here. */
static int capture(PyCodeObject **codes, int32_t *lines, int max, int *truncated)
{
    PyThreadState *ts = PyGILState_GetThisThreadState();
    int n = 0;
    *truncated = 0;
    if (!ts)
        return 0;
#if PY_VERSION_HEX < 0x030B0000
    for (PyFrameObject *f = ts->frame; f; f = f->f_back) {
        if (n == max) {
            *truncated = 1;
            break;
        }
        int b = f->f_lasti;
#if PY_VERSION_HEX >= 0x030A0000
        b *= 2; /* 3.10 counts code units */
#endif
        codes[n] = f->f_code;
        lines[n] = b < 0 ? f->f_code->co_firstlineno : PyCode_Addr2Line(f->f_code, b);
        n++;
    }
#else
#if PY_VERSION_HEX >= 0x030D0000
    _PyInterpreterFrame *f = ts->current_frame;
#else
    _PyInterpreterFrame *f = ts->cframe ? ts->cframe->current_frame : NULL;
#endif
    for (int steps = 0; f && steps < 4096; f = f->previous, steps++) {
#if PY_VERSION_HEX >= 0x030C0000
        if (f->owner == FRAME_OWNED_BY_CSTACK)
            continue;
#endif
#if PY_VERSION_HEX >= 0x030D0000
        if (!f->f_executable || !PyCode_Check(f->f_executable))
            continue;
        PyCodeObject *co = (PyCodeObject *)f->f_executable;
#else
        PyCodeObject *co = f->f_code;
#endif
        if (n == max) {
            *truncated = 1;
            break;
        }
        int b = _PyInterpreterFrame_LASTI(f) * (int)sizeof(_Py_CODEUNIT);
        codes[n] = co;
        lines[n] = b < 0 ? co->co_firstlineno : PyCode_Addr2Line(co, b);
        n++;
    }
#endif
    return n;
}

/* crux_alloc_stack_fn: the stack entry of the calling thread's Python stack. */
static uint32_t stack_now(void)
{
    PyCodeObject *codes[AGENTSHM_STACK_DEPTH];
    int32_t lines[AGENTSHM_STACK_DEPTH];
    int truncated = 0;
    int n = capture(codes, lines, AGENTSHM_STACK_DEPTH, &truncated);
    if (!n || !g_ah)
        return 0;
    check_reader();
    uint32_t ids[AGENTSHM_STACK_DEPTH];
    uint32_t out = 0;
    ilock();
    uint64_t h = (uint64_t)n;
    for (int i = 0; i < n; i++) {
        ids[i] = code_id(codes[i]);
        h = mix(h ^ (((uint64_t)ids[i] << 32) | (uint32_t)lines[i])) + 0x9e3779b97f4a7c15ull;
    }
    h |= 1;
    uint64_t i = h % SSLOTS;
    for (uint32_t probe = 0; probe < SSLOTS; probe++, i = (i + 1) % SSLOTS) {
        struct sslot *s = &g_sslots[i];
        if (s->hash == h) {
            const struct agentshm_stack *e = &g_stacks[s->id];
            if (e->depth == n && !memcmp(e->code, ids, (size_t)n * sizeof(ids[0])) &&
                !memcmp(e->line, lines, (size_t)n * sizeof(lines[0]))) {
                out = s->id;
                break;
            }
            continue;
        }
        if (s->hash)
            continue;
        uint32_t id = g_ah->stacks_used;
        if (id >= AGENTSHM_STACKS) {
            __atomic_fetch_add(&g_ah->alloc_dropped, 1, __ATOMIC_RELAXED);
            break;
        }
        g_ah->stacks_used = id + 1;
        struct agentshm_stack *e = &g_stacks[id];
        e->depth = (uint16_t)n;
        e->truncated = (uint16_t)truncated;
        memcpy(e->code, ids, (size_t)n * sizeof(ids[0]));
        memcpy(e->line, lines, (size_t)n * sizeof(lines[0]));
        __atomic_store_n(&e->state, AGENTSHM_NAME_READY, __ATOMIC_RELEASE);
        s->hash = h;
        s->id = id;
        out = id;
        break;
    }
    iunlock();
    return out;
}

static int resolve(void)
{
    if (s_start)
        return 0;
    void *h = RTLD_DEFAULT;
    if (!dlsym(h, "crux_alloc_start")) {
        const char *path = g_shim_path ? g_shim_path : getenv("CRUX_ALLOC_SHIM");
        /* RTLD_LOCAL when attaching: the engine's malloc family must not join the global
         * scope (it is not interposed in a running process, and never should be). */
        h = path && *path ? dlopen(path, RTLD_NOW | (g_shim_path ? RTLD_LOCAL : RTLD_GLOBAL))
                          : NULL;
        if (!h) {
            const char *e = dlerror();
            snprintf(g_dlerr, sizeof(g_dlerr), "%s", e ? e : "not found");
            return -1;
        }
    }
    g_engine = h;
    *(void **)&s_hmalloc = dlsym(h, "crux_alloc_hook_malloc");
    *(void **)&s_hcalloc = dlsym(h, "crux_alloc_hook_calloc");
    *(void **)&s_hrealloc = dlsym(h, "crux_alloc_hook_realloc");
    *(void **)&s_hfree = dlsym(h, "crux_alloc_hook_free");
    *(void **)&s_stop = dlsym(h, "crux_alloc_stop");
    *(void **)&s_start = dlsym(h, "crux_alloc_start");
    return s_hmalloc && s_hcalloc && s_hrealloc && s_hfree && s_stop && s_start ? 0 : -1;
}

static void hook(void)
{
    static const PyMemAllocatorDomain doms[3] = {PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM,
                                                 PYMEM_DOMAIN_OBJ};
    static const uint32_t kinds[3] = {AGENTSHM_DOM_RAW, AGENTSHM_DOM_MEM, AGENTSHM_DOM_OBJ};
    /* RAW is called without the GIL: replacing its allocator while another thread reads it
     * could tear. Attached to a running process, only the two domains the GIL guards are
     * hooked (an object's memory is seen at the OBJ or MEM level anyway). */
    for (int i = g_skip_raw ? 1 : 0; i < 3; i++) {
        PyMemAllocatorEx orig;
        PyMem_GetAllocator(doms[i], &orig);
        g_dom[i] = (struct crux_alloc_dom){orig.ctx,     orig.malloc, orig.calloc,
                                           orig.realloc, orig.free,   kinds[i]};
        PyMemAllocatorEx a = {&g_dom[i], s_hmalloc, s_hcalloc, s_hrealloc, s_hfree};
        PyMem_SetAllocator(doms[i], &a);
    }
    g_hooked = 1;
}

void agentalloc_unhook(void)
{
    static const PyMemAllocatorDomain doms[3] = {PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM,
                                                 PYMEM_DOMAIN_OBJ};
    if (!g_hooked)
        return;
    /* A hook put over ours since (tracemalloc's) would be dropped by restoring under it:
     * ours then stay, inert. */
    for (int i = g_skip_raw ? 1 : 0; i < 3; i++) {
        PyMemAllocatorEx cur;
        PyMem_GetAllocator(doms[i], &cur);
        if (cur.ctx != &g_dom[i] || cur.malloc != s_hmalloc)
            return;
    }
    for (int i = g_skip_raw ? 1 : 0; i < 3; i++) {
        PyMemAllocatorEx orig = {g_dom[i].ctx, g_dom[i].malloc, g_dom[i].calloc, g_dom[i].realloc,
                                 g_dom[i].free};
        PyMem_SetAllocator(doms[i], &orig);
    }
    g_hooked = 0;
}

void *agentalloc_engine(void)
{
    return g_engine;
}

int agentalloc_start(struct agentshm_hdr *h)
{
    if (resolve())
        return -1;
    g_ilock = 0;
    memset(g_cslots, 0, sizeof(g_cslots));
    memset(g_sslots, 0, sizeof(g_sslots));
    g_ah = h;
    g_codes = (struct agentshm_code *)((char *)h + h->codes_off);
    g_stacks = (struct agentshm_stack *)((char *)h + h->stacks_off);
    g_codes[0].state = AGENTSHM_NAME_READY;
    g_stacks[0].state = AGENTSHM_NAME_READY;
    struct crux_alloc_cfg cfg = {h, stack_now, h->sample_bytes, h->copy_sample_bytes};
    if (s_start(&cfg))
        return -1;
    if (!g_hooked)
        hook();
    return 0;
}

int agentalloc_attach(struct agentshm_hdr *h, const char *shim)
{
    if (!g_hooked)
        g_skip_raw = 1;
    if (!s_start)
        g_shim_path = shim;
    int rc = agentalloc_start(h);
    g_shim_path = NULL;
    return rc;
}

const char *agentalloc_error(void)
{
    return g_dlerr[0] ? g_dlerr : "missing entry points";
}

void agentalloc_stop(void)
{
    if (s_stop)
        s_stop();
}
