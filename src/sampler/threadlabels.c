// SPDX-License-Identifier: MIT
// Thread names for recordings: Python's, else the OS's, interned once per thread and name.
#include "sampler/threadlabels.h"

#include <string.h>

#include "target/proc.h"

void threadlabels_init(struct threadlabels *tl, const struct pyruntime *rt, struct profile *p)
{
    memset(tl, 0, sizeof(*tl));
    threadnames_init(&tl->names, rt);
    hmap_init(&tl->names_of);
    tl->pid = (uint32_t)rt->pid;
    tl->str_thread = profile_str(p, "thread", 6);
}

void threadlabels_forget(struct threadlabels *tl, struct profile *p)
{
    hmap_clear(&tl->names_of);
    tl->str_thread = profile_str(p, "thread", 6);
}

void threadlabels_fini(struct threadlabels *tl)
{
    threadnames_fini(&tl->names);
    hmap_fini(&tl->names_of);
    memset(tl, 0, sizeof(*tl));
}

void threadlabels_round(struct threadlabels *tl, const struct pyreader *r, uint64_t now_ns)
{
    if (threadnames_update(&tl->names, r->threads, r->nthreads, now_ns) &&
        tl->names_of.len > 2 * PYREADER_MAX_THREADS)
        hmap_clear(&tl->names_of); /* tids of threads gone long ago */
}

/* The name thread `th` goes by now, interned; records it when it changed. */
static uint32_t derive(struct threadlabels *tl, struct profile *p, const struct pythread *th)
{
    const char *name = threadnames_get(&tl->names, th);
    char os[64];
    if (!name && th->tid && proc_task_comm((pid_t)tl->pid, th->tid, os, sizeof(os)) == 0 && os[0])
        name = os; /* not started by threading (or not yet seen by a read) */
    if (!name)
        return tl->str_thread;
    size_t n = strlen(name);
    uint32_t id = profile_str(p, name, n);
    if (th->tid) {
        const char *was = profile_thread_name_of(p, tl->pid, (uint32_t)th->tid);
        if (!was || strcmp(was, name) != 0)
            profile_thread_name(p, tl->pid, (uint32_t)th->tid, name, n);
    }
    return id;
}

uint32_t threadlabels_name(struct threadlabels *tl, struct profile *p, const struct pythread *th)
{
    uint64_t epoch = tl->names.epoch & 0xffffffffu, v;
    uint64_t key = (uint64_t)(uint32_t)th->tid;
    if (key && hmap_get(&tl->names_of, key, &v) && v >> 32 == epoch)
        return (uint32_t)v;
    uint32_t name = derive(tl, p, th);
    if (key)
        hmap_put(&tl->names_of, key, epoch << 32 | name);
    return name;
}
