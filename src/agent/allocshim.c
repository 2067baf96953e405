// SPDX-License-Identifier: MIT
// libcrux_alloc.so: the allocation sampler's engine (allocshim.h). Preloaded into a program
// that `crux record --allocations` launches; inert (one flag check per call) until crux._agent
// starts it. Everything here runs inside malloc: no allocation, no stdio, no GIL, no lock
// held across a call out, and a per-thread guard so that nothing recurses.
#include "allocshim.h"

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
/* The preloaded library's thread-locals live in the static TLS block: no __tls_get_addr, which
 * may itself call malloc on a thread's first access. */
#define TLS __thread __attribute__((tls_model("initial-exec")))

/* glibc's own entry points: no dlsym (which allocates) needed to reach the real allocator. */
extern void *__libc_malloc(size_t n);
extern void __libc_free(void *p);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);

/* A sampled block still live. */
struct live {
    uint64_t addr; /* 0 = empty */
    uint64_t size, weight, born_ns;
    uint32_t stack, domain;
};

#define LIVE_SAMPLED (1u << 16) /* entries: ~45,000 live samples, 20+ GiB at 512 KiB */
#define LIVE_ALL (1u << 23)     /* entries with every allocation sampled */
/* The free-side filter: 2^FILTER_BITS buckets of addresses. A free looks at one bit (an 8 KiB
 * bitmap, in L1); the counts behind the bits are touched only under the lock. */
#define FILTER_BITS 16
/* Gap of a thread's countdown while the engine is off (no logarithm, no clock). */
#define OFF_GAP ((int64_t)1 << 20)

static struct crux_alloc_cfg g_cfg;
static struct agentshm_arec *g_recs;
static uint64_t g_rec_mask;
static volatile int g_on;
static struct live *g_live;
static uint64_t g_live_mask, g_live_used;
static uint32_t g_fcount[1u << FILTER_BITS]; /* sampled blocks live per bucket (under g_lock) */
static uint64_t g_fbits[(1u << FILTER_BITS) / 64]; /* bucket's count > 0 */
static uint32_t g_epoch = 1; /* bumped by each start: a thread's countdown from before is stale */
static int g_lock;

/* Copy volume (docs/memory.md): memcpy and memmove are sampled by bytes copied, like
 * allocations, with their own countdown and mean. */
typedef void *(*copy_fn)(void *, const void *, size_t);
static void *copy_early(void *d, const void *s, size_t n);
static void *move_early(void *d, const void *s, size_t n);
/* glibc's (IFUNC-resolved) implementations, looked up once in the constructor; until then a
 * plain loop. */
static copy_fn g_memcpy = copy_early, g_memmove = move_early;
static int g_copy_on;
static uint64_t g_copy_mean;

static TLS int t_guard;
static TLS int64_t t_copy_left; /* bytes to copy before this thread's next copy sample */
static TLS int t_copy_init;
/* Bytes to allocate before this thread's next sample. Starts at 0, so that a thread's first
 * allocation takes the slow path, which draws its first gap. */
static TLS int64_t t_left;
static TLS uint32_t t_epoch; /* the g_epoch t_left was drawn in */
static TLS uint64_t t_rng;
static TLS uint32_t t_tid;

static void lock(void)
{
    while (__atomic_exchange_n(&g_lock, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&g_lock, __ATOMIC_RELAXED))
            __builtin_ia32_pause();
}

static void unlock(void)
{
    __atomic_store_n(&g_lock, 0, __ATOMIC_RELEASE);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* Bytes to the next sample: exponential with mean sample_bytes, so that sample points form a
 * Poisson process along each thread's allocated bytes (memoryless: a block of n bytes holds
 * one with probability 1 - exp(-n / mean), whatever came before). */
static int64_t draw_gap_mean(uint64_t mean)
{
    if (!t_rng)
        t_rng = mix(((uint64_t)syscall(SYS_gettid) << 32) ^ now_ns()) | 1;
    t_rng ^= t_rng << 13;
    t_rng ^= t_rng >> 7;
    t_rng ^= t_rng << 17;
    double u = ((double)(t_rng >> 11) + 1.0) * 0x1.0p-53; /* (0, 1] */
    return (int64_t)(-log(u) * (double)mean) + 1;
}

static int64_t draw_gap(void)
{
    return draw_gap_mean(g_cfg.sample_bytes);
}

static int attached(void)
{
    return g_cfg.hdr && __atomic_load_n(&g_cfg.hdr->attached, __ATOMIC_RELAXED) != 0;
}

static void emit(uint16_t kind, const struct live *b, uint64_t t)
{
    struct agentshm_hdr *h = g_cfg.hdr;
    uint64_t idx = __atomic_fetch_add(&h->alloc_write_idx, 1, __ATOMIC_RELAXED);
    struct agentshm_arec *r = &g_recs[idx & g_rec_mask];
    if (!t_tid)
        t_tid = (uint32_t)syscall(SYS_gettid);
    r->addr = b->addr;
    r->size = b->size;
    r->weight = b->weight;
    r->t_ns = t;
    r->born_ns = b->born_ns;
    r->tid = t_tid;
    r->stack = b->stack;
    r->kind = kind;
    r->domain = (uint16_t)b->domain;
    r->flags = 0;
    __atomic_store_n(&r->seq, idx + 1, __ATOMIC_RELEASE);
}

/* Fibonacci hashing: one multiply. Blocks are at least 16-byte aligned; the high bits of the
 * product mix all of the address's. */
static inline uint64_t filter_slot(uint64_t addr)
{
    return (addr * 0x9e3779b97f4a7c15ull) >> (64 - FILTER_BITS);
}

/* One load and a bit test: can `p` be a sampled block still live? False positives are rare
 * (live samples / 2^FILTER_BITS) and cost a lookup under the lock. */
static inline int maybe_sampled(const void *p)
{
    uint64_t i = filter_slot((uint64_t)(uintptr_t)p);
    return (int)((__atomic_load_n(&g_fbits[i >> 6], __ATOMIC_RELAXED) >> (i & 63)) & 1);
}

/* Under g_lock. */
static void filter_add(uint64_t addr)
{
    uint64_t i = filter_slot(addr);
    if (!g_fcount[i]++)
        __atomic_fetch_or(&g_fbits[i >> 6], 1ull << (i & 63), __ATOMIC_RELEASE);
}

/* Under g_lock. */
static void filter_del(uint64_t addr)
{
    uint64_t i = filter_slot(addr);
    if (g_fcount[i] && !--g_fcount[i])
        __atomic_fetch_and(&g_fbits[i >> 6], ~(1ull << (i & 63)), __ATOMIC_RELEASE);
}

/* Adds `b` to the live table; 0 when it is full (the sample is dropped, not half-made). */
static int live_put(const struct live *b)
{
    int ok = 0;
    lock();
    if (g_live_used * 4 < (g_live_mask + 1) * 3) {
        uint64_t i = mix(b->addr) & g_live_mask;
        while (g_live[i].addr && g_live[i].addr != b->addr)
            i = (i + 1) & g_live_mask;
        if (!g_live[i].addr) {
            g_live_used++;
            filter_add(b->addr);
        }
        g_live[i] = *b;
        ok = 1;
    }
    unlock();
    return ok;
}

/* Removes `addr` (backward-shift deletion keeps linear probing exact); 1 when it was there. */
static int live_take(uint64_t addr, struct live *out)
{
    int found = 0;
    lock();
    uint64_t i = mix(addr) & g_live_mask;
    while (g_live[i].addr) {
        if (g_live[i].addr == addr) {
            found = 1;
            break;
        }
        i = (i + 1) & g_live_mask;
    }
    if (found) {
        *out = g_live[i];
        g_live_used--;
        filter_del(addr);
        uint64_t j = i;
        for (;;) {
            j = (j + 1) & g_live_mask;
            if (!g_live[j].addr)
                break;
            uint64_t home = mix(g_live[j].addr) & g_live_mask;
            /* j's entry may move into the hole at i when its home is not within (i, j] */
            if ((i <= j) ? (home <= i || home > j) : (home <= i && home > j)) {
                g_live[i] = g_live[j];
                i = j;
            }
        }
        g_live[i].addr = 0;
    }
    unlock();
    return found;
}

EXPORT int crux_alloc_enter(void)
{
    if (t_guard)
        return 0;
    t_guard = 1;
    return 1;
}

EXPORT void crux_alloc_leave(void)
{
    t_guard = 0;
}

/* The thread's countdown ran out within a block of `size` bytes at `p` (or the countdown is
 * stale: the first allocation of a thread, or one since a restart): draws the next gap, and
 * samples the block when a sample point fell in it. Saves and restores the guard. */
__attribute__((noinline, cold)) static void sample_slow(void *p, size_t size, uint32_t domain)
{
    if (!g_on) {
        /* off: come back in a while, without a logarithm (the gap is redrawn on restart) */
        t_left = OFF_GAP;
        return;
    }
    uint64_t weight = size;
    if (g_cfg.sample_bytes) {
        if (t_epoch != g_epoch) {
            /* a fresh countdown from this block on: what came before was not recorded */
            t_epoch = g_epoch;
            t_left = draw_gap() - (int64_t)size;
            if (t_left > 0)
                return;
        }
        while (t_left <= 0)
            t_left += draw_gap();
        /* Horvitz-Thompson: a block is sampled with probability 1 - exp(-size / mean), so
         * weighting it by size over that probability makes every sum of weights unbiased. */
        double m = (double)g_cfg.sample_bytes;
        double pr = -expm1(-(double)size / m);
        weight = pr > 0 ? (uint64_t)((double)size / pr + 0.5) : (uint64_t)m;
    } else {
        t_left = 0; /* every allocation */
    }
    if (!p || !attached())
        return;
    int guard = t_guard;
    t_guard = 1;
    struct live b = {(uint64_t)(uintptr_t)p, size, weight, now_ns(), 0, domain};
    b.stack = g_cfg.stack ? g_cfg.stack() : 0;
    if (!live_put(&b))
        __atomic_fetch_add(&g_cfg.hdr->alloc_dropped, 1, __ATOMIC_RELAXED);
    else
        emit(AGENTSHM_ALLOC, &b, b.born_ns);
    t_guard = guard;
}

/* The unsampled path of every counted allocation: a thread-local subtract and a branch. */
static inline __attribute__((always_inline)) void count(void *p, size_t size, uint32_t domain)
{
    int64_t left = t_left - (int64_t)size;
    t_left = left;
    if (__builtin_expect(left <= 0, 0))
        sample_slow(p, size, domain);
}

/* A block the filter says may be sampled is being freed: its free record, if it is one.
 * Saves and restores the guard. */
__attribute__((noinline, cold)) static void free_slow(void *p)
{
    if (!g_on || !p)
        return;
    int guard = t_guard;
    t_guard = 1;
    struct live b;
    if (live_take((uint64_t)(uintptr_t)p, &b) && attached())
        emit(AGENTSHM_FREE, &b, now_ns());
    t_guard = guard;
}

EXPORT void crux_alloc_note(void *p, size_t size, uint32_t domain)
{
    count(p, size, domain);
}

EXPORT void crux_alloc_note_free(void *p)
{
    if (maybe_sampled(p))
        free_slow(p);
}

/* ---- the PyMem hooks (crux._agent installs them with a struct crux_alloc_dom as context) ----
 * The outermost allocator call counts; calls made inside it (pymalloc falling back to
 * PyMem_RawMalloc and malloc, its arenas' mmap) see the guard and pass through. The saved
 * allocator is called directly, and the unsampled path is the guard, the call, the countdown. */

EXPORT void *crux_alloc_hook_malloc(void *ctx, size_t n)
{
    const struct crux_alloc_dom *d = ctx;
    if (__builtin_expect(t_guard, 0))
        return d->malloc(d->ctx, n);
    t_guard = 1;
    void *p = d->malloc(d->ctx, n);
    t_guard = 0;
    count(p, n, d->domain);
    return p;
}

EXPORT void *crux_alloc_hook_calloc(void *ctx, size_t n, size_t m)
{
    const struct crux_alloc_dom *d = ctx;
    if (__builtin_expect(t_guard, 0))
        return d->calloc(d->ctx, n, m);
    t_guard = 1;
    void *p = d->calloc(d->ctx, n, m);
    t_guard = 0;
    count(p, n * m, d->domain);
    return p;
}

EXPORT void *crux_alloc_hook_realloc(void *ctx, void *p, size_t n)
{
    const struct crux_alloc_dom *d = ctx;
    if (__builtin_expect(t_guard, 0))
        return d->realloc(d->ctx, p, n);
    if (__builtin_expect(maybe_sampled(p), 0))
        free_slow(p);
    t_guard = 1;
    void *q = d->realloc(d->ctx, p, n);
    t_guard = 0;
    count(q, n, d->domain);
    return q;
}

/* No guard on the unsampled path: a free calls no allocator that could count, and a nested
 * free of a sampled block finds it already taken by the outer one. */
EXPORT void crux_alloc_hook_free(void *ctx, void *p)
{
    const struct crux_alloc_dom *d = ctx;
    if (__builtin_expect(maybe_sampled(p), 0) && !t_guard)
        free_slow(p);
    d->free(d->ctx, p);
}

static void *map_anon(size_t n)
{
    void *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

EXPORT int crux_alloc_start(const struct crux_alloc_cfg *cfg)
{
    g_on = 0;
    struct agentshm_hdr *h = cfg->hdr;
    if (!h || !h->arecs_off || !h->arec_count)
        return -1;
    uint64_t want = cfg->sample_bytes ? LIVE_SAMPLED : LIVE_ALL;
    /* A fresh table (after a fork, the parent's blocks are not this process's samples). */
    if (g_live)
        munmap(g_live, (g_live_mask + 1) * sizeof(*g_live));
    g_live = map_anon(want * sizeof(*g_live));
    if (!g_live)
        return -1;
    memset(g_fcount, 0, sizeof(g_fcount));
    for (size_t i = 0; i < sizeof(g_fbits) / sizeof(g_fbits[0]); i++)
        __atomic_store_n(&g_fbits[i], 0, __ATOMIC_RELAXED);
    g_epoch++;
    g_live_mask = want - 1;
    g_live_used = 0;
    g_lock = 0;
    g_cfg = *cfg;
    g_copy_mean = cfg->copy_bytes;
    g_recs = (struct agentshm_arec *)((char *)h + h->arecs_off);
    g_rec_mask = h->arec_count - 1;
    __atomic_store_n(&g_on, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&g_copy_on, cfg->copy_bytes != 0, __ATOMIC_RELEASE);
    return 0;
}

EXPORT void crux_alloc_stop(void)
{
    __atomic_store_n(&g_copy_on, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&g_on, 0, __ATOMIC_RELEASE);
}

/* A forked child has the parent's table and maybe its lock held by a thread that is not
 * there: it stays off until the agent starts it on the child's own ring. */
static void after_fork_child(void)
{
    g_on = 0;
    g_copy_on = 0;
    g_lock = 0;
    t_guard = 0;
}

__attribute__((constructor)) static void shim_init(void)
{
    /* dlsym resolves the IFUNC to the implementation glibc chose for this CPU; anything dlsym
     * copies meanwhile goes through the early loops. */
    copy_fn f = (copy_fn)dlsym(RTLD_NEXT, "memcpy");
    copy_fn m = (copy_fn)dlsym(RTLD_NEXT, "memmove");
    if (f)
        __atomic_store_n(&g_memcpy, f, __ATOMIC_RELEASE);
    if (m)
        __atomic_store_n(&g_memmove, m, __ATOMIC_RELEASE);
    pthread_atfork(NULL, NULL, after_fork_child);
}

/* ---- the interposed malloc family ----------------------------------------------------------- */

EXPORT void *malloc(size_t n)
{
    void *p = __libc_malloc(n);
    if (!t_guard)
        count(p, n, AGENTSHM_DOM_NATIVE);
    return p;
}

EXPORT void *calloc(size_t n, size_t m)
{
    void *p = __libc_calloc(n, m);
    if (!t_guard)
        count(p, n * m, AGENTSHM_DOM_NATIVE);
    return p;
}

EXPORT void free(void *p)
{
    if (__builtin_expect(maybe_sampled(p), 0) && !t_guard)
        free_slow(p);
    __libc_free(p);
}

EXPORT void *realloc(void *p, size_t n)
{
    if (t_guard)
        return __libc_realloc(p, n);
    if (__builtin_expect(maybe_sampled(p), 0))
        free_slow(p);
    void *q = __libc_realloc(p, n);
    count(q, n, AGENTSHM_DOM_NATIVE);
    return q;
}

static void *aligned(size_t align, size_t n)
{
    void *p = __libc_memalign(align, n);
    if (!t_guard)
        count(p, n, AGENTSHM_DOM_NATIVE);
    return p;
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    if (!align || (align & (align - 1)) || align % sizeof(void *))
        return EINVAL;
    void *p = aligned(align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

EXPORT void *aligned_alloc(size_t align, size_t n)
{
    return aligned(align, n);
}

EXPORT void *memalign(size_t align, size_t n)
{
    return aligned(align, n);
}

/* ---- the interposed memcpy family ------------------------------------------------------------ */

/* Before the constructor: byte loops through volatile pointers, which the compiler cannot turn
 * back into a call to memcpy (that would be this function). */
static void *copy_early(void *d, const void *s, size_t n)
{
    volatile unsigned char *dst = d;
    const volatile unsigned char *src = s;
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i];
    return d;
}

static void *move_early(void *d, const void *s, size_t n)
{
    volatile unsigned char *dst = d;
    const volatile unsigned char *src = s;
    if (dst <= src || dst >= src + n)
        return copy_early(d, s, n);
    for (size_t i = n; i > 0; i--)
        dst[i - 1] = src[i - 1];
    return d;
}

/* The thread's copy countdown ran out within a copy of `n` bytes: one sample, weighted like an
 * allocation's (Horvitz-Thompson), with the copying thread's Python stack. */
__attribute__((noinline, cold)) static void copy_sample(size_t n, uint32_t which)
{
    if (!t_copy_init) {
        /* the first gap of a thread is drawn here: t_copy_left started at 0 */
        t_copy_init = 1;
        t_copy_left += draw_gap_mean(g_copy_mean);
        if (t_copy_left > 0)
            return;
    }
    while (t_copy_left <= 0)
        t_copy_left += draw_gap_mean(g_copy_mean);
    if (t_guard || !g_on || !attached())
        return;
    t_guard = 1;
    double m = (double)g_copy_mean;
    double pr = -expm1(-(double)n / m);
    uint64_t weight = pr > 0 ? (uint64_t)((double)n / pr + 0.5) : (uint64_t)m;
    struct live b = {0, n, weight, now_ns(), 0, which};
    b.stack = g_cfg.stack ? g_cfg.stack() : 0;
    emit(AGENTSHM_COPY, &b, b.born_ns);
    t_guard = 0;
}

/* The sampled path: the sample, then glibc's copy (a tail call from the hooks, so that their
 * unsampled path saves no registers). */
__attribute__((noinline, cold)) static void *copy_slow(void *d, const void *s, size_t n,
                                                       uint32_t which)
{
    copy_sample(n, which);
    copy_fn f = which == AGENTSHM_COPY_MEMCPY ? g_memcpy : g_memmove;
    return f(d, s, n);
}

extern void __chk_fail(void) __attribute__((noreturn));

/* The unsampled path is a flag load, a thread-local subtract and two branches before the jump
 * to glibc's (docs/memory.md has its measured cost). */
static inline __attribute__((always_inline)) void *copy_hook(copy_fn *fn, uint32_t which, void *d,
                                                             const void *s, size_t n)
{
    if (__builtin_expect(__atomic_load_n(&g_copy_on, __ATOMIC_RELAXED), 0)) {
        int64_t left = t_copy_left - (int64_t)n;
        t_copy_left = left;
        if (__builtin_expect(left <= 0, 0))
            return copy_slow(d, s, n, which);
    }
    return __atomic_load_n(fn, __ATOMIC_RELAXED)(d, s, n);
}

EXPORT void *memcpy(void *d, const void *s, size_t n)
{
    return copy_hook(&g_memcpy, AGENTSHM_COPY_MEMCPY, d, s, n);
}

EXPORT void *memmove(void *d, const void *s, size_t n)
{
    return copy_hook(&g_memmove, AGENTSHM_COPY_MEMMOVE, d, s, n);
}

/* _FORTIFY_SOURCE's checked forms (CPython and numpy import them): the same check glibc makes. */
EXPORT void *__memcpy_chk(void *d, const void *s, size_t n, size_t dlen)
{
    if (n > dlen)
        __chk_fail();
    return copy_hook(&g_memcpy, AGENTSHM_COPY_MEMCPY, d, s, n);
}

EXPORT void *__memmove_chk(void *d, const void *s, size_t n, size_t dlen)
{
    if (n > dlen)
        __chk_fail();
    return copy_hook(&g_memmove, AGENTSHM_COPY_MEMMOVE, d, s, n);
}

/* ---- anonymous mmap/munmap (docs/memory.md) ---------------------------------------------------
 * Counted only when called from outside any hooked allocator: glibc malloc's own mmap of a large
 * block and pymalloc's arenas happen inside a hooked call (the guard is set) and pass through,
 * so each byte is counted once, at the level the program asked for it. Left out: file mappings,
 * MAP_FIXED (remapping part of an existing mapping, the loader's .bss), MAP_STACK (thread
 * stacks) and PROT_NONE reservations (address space, no memory). A munmap is matched by its
 * start address only: unmapping part of a sampled mapping leaves it counted whole. The real
 * calls are raw syscalls: glibc's __mmap is GLIBC_PRIVATE and dlsym may allocate. */

static void *sys_mmap(void *a, size_t n, int prot, int flags, int fd, off_t off)
{
    return (void *)syscall(SYS_mmap, a, n, prot, flags, fd, off);
}

EXPORT void *mmap(void *a, size_t n, int prot, int flags, int fd, off_t off)
{
    void *p = sys_mmap(a, n, prot, flags, fd, off);
    if (g_on && !t_guard && p != MAP_FAILED && (flags & MAP_ANONYMOUS) &&
        !(flags & (MAP_FIXED | MAP_STACK)) && prot != PROT_NONE)
        count(p, n, AGENTSHM_DOM_MMAP);
    return p;
}

EXPORT void *mmap64(void *a, size_t n, int prot, int flags, int fd, off_t off)
{
    return mmap(a, n, prot, flags, fd, off);
}

EXPORT int munmap(void *a, size_t n)
{
    if (maybe_sampled(a) && !t_guard)
        free_slow(a);
    return (int)syscall(SYS_munmap, a, n);
}
