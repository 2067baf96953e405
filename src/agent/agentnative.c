// SPDX-License-Identifier: MIT
// Native allocations on attach (agentnative.h): the engine's GOT patch, and a watcher thread
// that restores the slots and the PyMem allocators once crux has detached, so that the
// process runs as before it (docs/memory.md, "Attaching").
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "agentalloc.h"
#include "agentnative.h"
#include "gotpatch.h"

#define WATCH_PERIOD_NS 20000000ull    /* 20 ms between looks at the ring */
#define ATTACH_GRACE_NS 10000000000ull /* an attach crux never marked attached: given up after */

static int (*s_patch)(struct crux_got_report *);
static int (*s_restore)(struct crux_got_report *);

/* Written with the GIL only. */
static struct agentshm_hdr *g_h;
static pid_t g_watch_pid; /* the process whose watcher runs (a fork's child has none) */
static uint32_t g_gen;    /* attaches so far (read by the watcher) */
static uint64_t g_gen_ns; /* when the last one happened */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Whether a crux reads the ring: `attached`, and a heartbeat not stale (a SIGKILLed crux never
 * clears the flag). */
static int read_now(const struct agentshm_hdr *h)
{
    if (!__atomic_load_n(&h->attached, __ATOMIC_ACQUIRE))
        return 0;
    uint64_t beat = __atomic_load_n(&h->reader_ns, __ATOMIC_RELAXED);
    uint64_t now = now_ns();
    return !(beat && now > beat && now - beat > AGENTSHM_READER_TIMEOUT_NS);
}

static int finalizing(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
}

/* With the GIL: the slots back, then the PyMem allocators (or, where another hook was put over
 * ours, ours left in place and inert). */
static void undo(void)
{
    struct crux_got_report r;
    if (s_restore && s_restore(&r)) {
        /* cannot fail */
    }
    agentalloc_stop();
    agentalloc_unhook();
}

/* Looks at the ring every 20 ms; once no crux reads it and no attach came since crux last
 * did, takes the GIL, looks again (an attach runs with the GIL, so none can slip in), undoes
 * everything and ends. */
static void *watch(void *arg)
{
    (void)arg;
    uint32_t seen = UINT32_MAX; /* the attach under which crux was last seen reading */
    for (;;) {
        struct timespec ts = {0, (long)WATCH_PERIOD_NS};
        nanosleep(&ts, NULL);
        uint32_t gen = __atomic_load_n(&g_gen, __ATOMIC_ACQUIRE);
        if (read_now(g_h)) {
            seen = gen;
            continue;
        }
        if (seen != gen &&
            now_ns() - __atomic_load_n(&g_gen_ns, __ATOMIC_RELAXED) < ATTACH_GRACE_NS)
            continue; /* crux has not marked the ring yet */
        if (finalizing())
            return NULL; /* the process is ending: nothing to give back */
        PyGILState_STATE gs = PyGILState_Ensure();
        int done = __atomic_load_n(&g_gen, __ATOMIC_ACQUIRE) == gen && !read_now(g_h);
        if (done) {
            undo();
            g_watch_pid = 0;
        }
        PyGILState_Release(gs);
        if (done)
            return NULL;
    }
}

static int start_watcher(void)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* signal delivery in the process unchanged */
    pthread_t th;
    int rc = pthread_create(&th, &attr, watch, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return rc ? -1 : 0;
}

int agentnative_attach(struct agentshm_hdr *h, char *msg, size_t cap)
{
    void *engine = agentalloc_engine();
    if (!engine || dlsym(RTLD_DEFAULT, "crux_alloc_start")) {
        /* launched under crux: the preloaded engine already sees every malloc */
        snprintf(msg, cap, "native=preloaded");
        s_patch = NULL;
    } else {
        *(void **)&s_patch = dlsym(engine, "crux_got_patch");
        *(void **)&s_restore = dlsym(engine, "crux_got_restore");
    }
    g_h = h;
    __atomic_store_n(&g_gen_ns, now_ns(), __ATOMIC_RELAXED);
    __atomic_store_n(&g_gen, g_gen + 1, __ATOMIC_RELEASE);
    if (g_watch_pid != getpid()) {
        if (start_watcher()) {
            snprintf(msg, cap, "native=0 (no watcher thread: nothing patched)");
            return -1;
        }
        g_watch_pid = getpid();
    }
    if (!s_patch)
        return 0;
    struct crux_got_report r = {0};
    if (s_patch(&r)) {
        snprintf(msg, cap, "native=0 (the process's malloc not found)");
        return 0;
    }
    snprintf(msg, cap, "native=1 got_slots=%u objects=%u skipped=%u", r.slots, r.objects,
             r.skipped);
    return 0;
}
