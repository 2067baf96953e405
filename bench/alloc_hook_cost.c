// SPDX-License-Identifier: MIT
// The cost of the allocation hooks alone (docs/memory.md, "Cost"): ns per malloc+free pair of
// 64 bytes through a PyMem hook (the way crux._agent installs them around CPython's allocator;
// here the saved allocator is glibc's) and through the engine's own malloc/free, with the
// engine started at 512 KiB and a reader attached (samples are made and written to a private
// ring, with an empty stack). Loads the engine named on the command line with RTLD_LOCAL, so
// that two builds compare in one run; an engine without crux_alloc_hook_* (before issue 11's
// fast path) is driven the way its agent did: enter, the saved allocator, note, leave, each a
// call through a pointer.
// Build: cc -O2 -Isrc/agent -o build/alloc_hook_cost bench/alloc_hook_cost.c -ldl
// Run:   build/alloc_hook_cost build/agent/libcrux_alloc.so [OLD/libcrux_alloc.so ...]
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "allocshim.h"

#define N 5000000L /* pairs a round; the fastest of ROUNDS rounds is reported (a shared machine) */
#define ROUNDS 10
#define SIZE 64

extern void *__libc_malloc(size_t n);
extern void __libc_free(void *p);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *raw_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return __libc_malloc(n);
}

static void *raw_calloc(void *ctx, size_t n, size_t m)
{
    (void)ctx;
    return __libc_malloc(n * m);
}

static void *raw_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    (void)p;
    return __libc_malloc(n);
}

static void raw_free(void *ctx, void *p)
{
    (void)ctx;
    __libc_free(p);
}

static uint32_t no_stack(void)
{
    return 0;
}

/* The engine's entry points, old and new. */
static int (*e_enter)(void);
static void (*e_leave)(void);
static void (*e_note)(void *, size_t, uint32_t);
static void (*e_note_free)(void *);
static void *(*e_hmalloc)(void *, size_t);
static void (*e_hfree)(void *, void *);
static void *(*e_malloc)(size_t);
static void (*e_free)(void *);

static struct crux_alloc_dom g_dom = {NULL, raw_malloc, raw_calloc, raw_realloc, raw_free, 2};

/* The agent's hooks before issue 11's fast path (agentalloc.c at 36a6fae). */
static void *old_malloc(void *ctx, size_t n)
{
    struct crux_alloc_dom *d = ctx;
    if (!e_enter())
        return d->malloc(d->ctx, n);
    void *p = d->malloc(d->ctx, n);
    e_note(p, n, d->domain);
    e_leave();
    return p;
}

static void old_free(void *ctx, void *p)
{
    struct crux_alloc_dom *d = ctx;
    if (!e_enter()) {
        d->free(d->ctx, p);
        return;
    }
    e_note_free(p);
    d->free(d->ctx, p);
    e_leave();
}

static int start(void *h)
{
    int (*st)(const struct crux_alloc_cfg *) =
        (int (*)(const struct crux_alloc_cfg *))dlsym(h, "crux_alloc_start");
    if (!st)
        return -1;
    size_t recs = 1u << 16, size = 4096 + recs * sizeof(struct agentshm_arec);
    struct agentshm_hdr *hdr =
        mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (hdr == MAP_FAILED)
        return -1;
    hdr->arecs_off = 4096;
    hdr->arec_count = (uint32_t)recs;
    hdr->attached = 1;
    struct crux_alloc_cfg cfg = {hdr, no_stack, 512 * 1024, 0};
    return st(&cfg);
}

static volatile void *g_sink;

static double pairs(void *(*m)(void *, size_t), void (*f)(void *, void *))
{
    double best = 1e30;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now();
        for (long i = 0; i < N; i++) {
            void *p = m(&g_dom, SIZE);
            g_sink = p;
            f(&g_dom, p);
        }
        double ns = (now() - t0) / N * 1e9;
        best = ns < best ? ns : best;
    }
    return best;
}

static double native_pairs(void)
{
    double best = 1e30;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now();
        for (long i = 0; i < N; i++) {
            void *p = e_malloc(SIZE);
            g_sink = p;
            e_free(p);
        }
        double ns = (now() - t0) / N * 1e9;
        best = ns < best ? ns : best;
    }
    return best;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s LIBCRUX_ALLOC.so...\n", argv[0]);
        return 2;
    }
    printf("no hook (glibc through a pointer): %.2f ns per malloc+free\n",
           pairs(raw_malloc, raw_free));
    for (int a = 1; a < argc; a++) {
        void *h = dlopen(argv[a], RTLD_NOW | RTLD_LOCAL);
        if (!h || start(h)) {
            fprintf(stderr, "%s: cannot load or start\n", argv[a]);
            return 1;
        }
        *(void **)&e_enter = dlsym(h, "crux_alloc_enter");
        *(void **)&e_leave = dlsym(h, "crux_alloc_leave");
        *(void **)&e_note = dlsym(h, "crux_alloc_note");
        *(void **)&e_note_free = dlsym(h, "crux_alloc_note_free");
        *(void **)&e_hmalloc = dlsym(h, "crux_alloc_hook_malloc");
        *(void **)&e_hfree = dlsym(h, "crux_alloc_hook_free");
        *(void **)&e_malloc = dlsym(h, "malloc");
        *(void **)&e_free = dlsym(h, "free");
        double py = e_hmalloc ? pairs(e_hmalloc, e_hfree) : pairs(old_malloc, old_free);
        printf("%s: PyMem hook %.2f ns, native malloc+free %.2f ns per pair\n", argv[a], py,
               native_pairs());
    }
    return 0;
}
