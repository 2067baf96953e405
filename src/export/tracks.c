// SPDX-License-Identifier: MIT
// Timeline tracks: the counted samples sorted by process, thread and time, and each thread's
// name.
#include "export/tracks.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

/* Sort key of one sample: process, thread, time, then recording order (a stable sort). */
struct skey {
    uint64_t proc;   /* (not the recorded process) << 32 | pid */
    uint64_t thread; /* (not the main thread) << 32 | tid */
    uint64_t t_ns;
    uint32_t idx;
};

static int cmp_key(const void *a, const void *b)
{
    const struct skey *x = a, *y = b;
    if (x->proc != y->proc)
        return x->proc < y->proc ? -1 : 1;
    if (x->thread != y->thread)
        return x->thread < y->thread ? -1 : 1;
    if (x->t_ns != y->t_ns)
        return x->t_ns < y->t_ns ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

static bool counted(const struct profile *p, const struct psample *s)
{
    return s->stack != 0 && s->stack < p->nnodes && !(p->hide_idle && psample_idle(s));
}

/* The frame at depth `d` (1 = the root) of `stack`, or UINT32_MAX when it is shallower. */
static uint32_t frame_at_depth(const struct profile *p, uint32_t stack, uint32_t d)
{
    if (p->nodes[stack].depth < d)
        return UINT32_MAX;
    while (p->nodes[stack].depth > d)
        stack = p->nodes[stack].parent;
    return p->nodes[stack].frame;
}

/* The name of the thread frame for `tid` among the two root frames of `stack`, or 0. */
static uint32_t thread_frame_name(const struct profile *p, uint32_t stack, uint32_t tid)
{
    for (uint32_t d = 1; d <= 2; d++) {
        uint32_t f = frame_at_depth(p, stack, d);
        if (f == UINT32_MAX)
            return 0;
        const struct pframe *fr = profile_frame_at(p, f);
        if (fr->kind == FRAME_THREAD && (uint32_t)fr->line == tid)
            return fr->name;
    }
    return 0;
}

static void add_track(const struct profile *p, struct tracks *t, size_t first, size_t n)
{
    const struct psample *s = &p->samples[t->order[first]];
    struct track *tr = &t->v[t->n++];
    tr->pid = s->pid;
    tr->tid = s->tid;
    tr->first = first;
    tr->n = n;
    /* Stacks split by thread all start with the thread frame: a few samples tell. */
    tr->name = 0;
    for (size_t i = first; i < first + n && i < first + 16 && !tr->name; i++)
        tr->name = thread_frame_name(p, p->samples[t->order[i]].stack, tr->tid);
    if (profile_frame_at(p, frame_at_depth(p, s->stack, 1))->kind == FRAME_PROCESS)
        t->by_process = true;
    if (t->n > 1 && t->v[t->n - 2].pid != tr->pid)
        t->by_process = true;
}

static struct skey key_of(const struct profile *p, uint32_t pid, uint32_t tid)
{
    return (struct skey){
        .proc = ((uint64_t)(pid != p->meta.pid) << 32) | pid,
        .thread = ((uint64_t)(tid != pid) << 32) | tid,
    };
}

static bool same_thread(const struct skey *a, const struct skey *b)
{
    return a->proc == b->proc && a->thread == b->thread;
}

/* A span's process and thread, the unknown ones filled in (tracks_of_span). */
static struct skey span_key(const struct profile *p, const struct pspan *s)
{
    uint32_t pid = s->pid ? s->pid : p->meta.pid;
    return key_of(p, pid, s->tid ? s->tid : pid);
}

/* Tracks in the order of their keys; `arg` is the profile. */
static int cmp_track(const void *a, const void *b, void *arg)
{
    const struct track *x = a, *y = b;
    struct skey kx = key_of(arg, x->pid, x->tid), ky = key_of(arg, y->pid, y->tid);
    return cmp_key(&kx, &ky);
}

/* The index of the track with key `k` among the first `n` (sorted) tracks, or SIZE_MAX. */
static size_t find(const struct profile *p, const struct track *v, size_t n, const struct skey *k)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        struct skey km = key_of(p, v[mid].pid, v[mid].tid);
        int c = cmp_key(&km, k);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return SIZE_MAX;
}

/* Tracks for the threads that only spans name, then every track in key order. */
static void add_span_tracks(const struct profile *p, struct tracks *t)
{
    if (!p->nspans)
        return;
    struct skey *keys = xmalloc(p->nspans * sizeof(*keys));
    for (size_t i = 0; i < p->nspans; i++)
        keys[i] = span_key(p, &p->spans[i]);
    qsort(keys, p->nspans, sizeof(*keys), cmp_key);
    size_t nsampled = t->n;
    t->v = xrealloc(t->v, (t->n + p->nspans) * sizeof(*t->v));
    for (size_t i = 0; i < p->nspans; i++) {
        if (i && same_thread(&keys[i], &keys[i - 1]))
            continue;
        if (find(p, t->v, nsampled, &keys[i]) != SIZE_MAX)
            continue;
        uint32_t pid = (uint32_t)keys[i].proc, tid = (uint32_t)keys[i].thread;
        t->v[t->n++] = (struct track){.pid = pid, .tid = tid};
        if (pid != t->v[0].pid)
            t->by_process = true;
    }
    free(keys);
    qsort_r(t->v, t->n, sizeof(*t->v), cmp_track, (void *)p);
}

/* Sample indexes in track order, then time, then recording order; `arg` is the profile. */
static int cmp_sample(const void *a, const void *b, void *arg)
{
    const struct profile *p = arg;
    uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
    const struct psample *x = &p->samples[i], *y = &p->samples[j];
    struct skey kx = key_of(p, x->pid, x->tid), ky = key_of(p, y->pid, y->tid);
    kx.t_ns = x->t_ns;
    kx.idx = i;
    ky.t_ns = y->t_ns;
    ky.idx = j;
    return cmp_key(&kx, &ky);
}

static bool same_track(const struct profile *p, uint32_t i, uint32_t j)
{
    return p->samples[i].pid == p->samples[j].pid && p->samples[i].tid == p->samples[j].tid;
}

void tracks_build(const struct profile *p, struct tracks *t)
{
    memset(t, 0, sizeof(*t));
    t->interval_s = tracks_interval_s(p);
    /* 4 bytes a sample: a recording may hold tens of millions */
    t->order = xmalloc((p->nsamples ? p->nsamples : 1) * sizeof(*t->order));
    size_t n = 0;
    for (size_t i = 0; i < p->nsamples; i++)
        if (counted(p, &p->samples[i]))
            t->order[n++] = (uint32_t)i;
    t->norder = n;
    qsort_r(t->order, n, sizeof(*t->order), cmp_sample, (void *)p);
    size_t ntracks = 0;
    for (size_t i = 0; i < n; i++)
        ntracks += i == 0 || !same_track(p, t->order[i], t->order[i - 1]);
    t->v = xcalloc(ntracks ? ntracks : 1, sizeof(*t->v));
    size_t start = 0;
    for (size_t i = 1; i <= n; i++) {
        if (i == n || !same_track(p, t->order[i], t->order[i - 1])) {
            add_track(p, t, start, i - start);
            start = i;
        }
    }
    add_span_tracks(p, t);
    /* The recording's thread names (Python's, else the OS's) where it kept them: every track,
     * also without --threads and for threads only spans name. */
    for (size_t i = 0; i < t->n; i++) {
        uint32_t id = profile_thread_name_id(p, t->v[i].pid, t->v[i].tid);
        if (id)
            t->v[i].name = id;
    }
}

size_t tracks_of_span(const struct tracks *t, const struct profile *p, const struct pspan *s)
{
    struct skey k = span_key(p, s);
    return find(p, t->v, t->n, &k);
}

void tracks_fini(struct tracks *t)
{
    free(t->v);
    free(t->order);
    memset(t, 0, sizeof(*t));
}

size_t tracks_root_frames(const struct profile *p, const uint32_t *frames, size_t n)
{
    size_t k = 0;
    if (k < n && profile_frame_at(p, frames[k])->kind == FRAME_PROCESS)
        k++;
    if (k < n && profile_frame_at(p, frames[k])->kind == FRAME_THREAD)
        k++;
    return k;
}

uint32_t tracks_max_depth(const struct profile *p)
{
    uint32_t maxd = 0;
    for (uint32_t s = 1; s < p->nnodes; s++)
        maxd = p->nodes[s].depth > maxd ? p->nodes[s].depth : maxd;
    return maxd;
}

double tracks_interval_s(const struct profile *p)
{
    if (p->meta.duration_ns > 0 && p->meta.ticks > 0)
        return (double)p->meta.duration_ns / 1e9 / (double)p->meta.ticks;
    if (p->meta.rate_hz > 0)
        return 1.0 / p->meta.rate_hz;
    return 0.01;
}

const char *tracks_process_name(const struct profile *p, uint32_t pid)
{
    for (size_t i = 0; i < p->nprocs; i++)
        if (p->procs[i].pid == pid)
            return p->procs[i].name;
    return NULL;
}
