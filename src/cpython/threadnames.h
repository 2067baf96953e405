// SPDX-License-Identifier: MIT
// Python thread names, as `threading` knows them (and py-spy shows them): each interpreter's
// sys.modules['threading']._active maps a thread's ident (pthread_self(), the thread state's
// thread_id) to its Thread, whose instance dict holds `_name`. The registry is read at most
// once a second, and sooner (at most every THREADNAMES_MIN_GAP_NS) when a thread appears that
// the last read did not see; between reads a name costs a hash lookup, never a read.
#ifndef CRUX_THREADNAMES_H
#define CRUX_THREADNAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpython/pydict.h"
#include "cpython/pyreader.h"
#include "cpython/pyruntime.h"
#include "util/hmap.h"

#define THREADNAMES_PERIOD_NS 1000000000ULL  /* names re-read (renames seen) this often */
#define THREADNAMES_MIN_GAP_NS 100000000ULL  /* a new thread triggers a read, at most this often */
#define THREADNAMES_MAX PYREADER_MAX_THREADS /* threads named per read, all interpreters */
#define THREADNAMES_LEN 128                  /* bytes of a name kept (UTF-8, NUL included) */
#define THREADNAMES_INTERPS 8                /* interpreters whose registries are read */

/* One named thread. */
struct tname {
    uint64_t interp, ident; /* PyInterpreterState address, threading ident */
    uint64_t key, thread;   /* the ident's int object and the Thread object, as read */
    char name[THREADNAMES_LEN];
};

/* Where an interpreter's registry was found: the threading module and its _active dict. */
struct tn_chain {
    uint64_t interp, module;
    uint64_t found_ns; /* when sys.modules was last scanned for it */
};

struct threadnames {
    const struct pyruntime *rt;
    bool enabled; /* the version's object offsets fit the readers; else no names at all */
    struct pydict dict;
    struct tname *v, *next; /* names of the last read; the next read fills `next` */
    size_t n, nnext;
    size_t cap;          /* of v, next and items */
    struct hmap index;   /* hash(interp, ident) -> index into v + 1 */
    struct hmap covered; /* hash(tstate, id, pthread id) of the threads the last read saw */
    struct hmap seen;    /* scratch: pthread ids of a round, to find shared ones */
    struct pydict_item *items;
    struct tn_chain chain[THREADNAMES_INTERPS];
    size_t nchain;
    uint64_t last_ns;              /* the last read */
    bool absent;                   /* the last read found an interpreter without threading */
    uint64_t retry_ns, backoff_ns; /* then: when to read again (0: at the period), how soon */
    uint64_t epoch;                /* bumped by each read: callers' caches compare it */
    uint64_t refreshes, names_read, failures, busy_ns; /* for cost figures */
};

/* Initializes `tn` for the runtime `rt` (which must outlive it); allocates its buffers. */
void threadnames_init(struct threadnames *tn, const struct pyruntime *rt);
/* Releases everything. */
void threadnames_fini(struct threadnames *tn);
/* Given a round's threads (r->threads, r->nthreads), reads the registries again when due:
 * THREADNAMES_PERIOD_NS after the last read, or THREADNAMES_MIN_GAP_NS after it when a
 * thread is not covered by it. Returns whether it read (and bumped the epoch). A registry
 * that cannot be read keeps its interpreter's previous names. */
bool threadnames_update(struct threadnames *tn, const struct pythread *th, size_t n,
                        uint64_t now_ns);
/* The Python name of thread `th` of the round given to the last update, or NULL when it has
 * none (not started by `threading`, started after the last read, or unreadable). The string
 * is valid until the next update. */
const char *threadnames_get(const struct threadnames *tn, const struct pythread *th);

#endif
