// SPDX-License-Identifier: MIT
// Interned frames, a stack trie and counters.
#include "profile/profile.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

const char *const sample_cat_names[PCAT_N] = {"none", "python", "native", "system", "gil", "cpu"};
const char *const ev_kind_names[EV_N] = {
    "none",       "cpu-python", "cpu-model",    "cpu-serialize", "cpu-tokenize",
    "cpu-native", "cpu-kernel", "wait-network", "wait-process",  "wait-file",
    "wait-lock",  "wait-gil",   "sleep",        "wait-idle",     "wait-other"};

void profile_init(struct profile *p)
{
    memset(p, 0, sizeof(*p));
    strtab_init(&p->strs);
    hmap_init(&p->frame_index);
    hmap_init(&p->node_index);
    hmap_init(&p->ev_index);
    hmap_init(&p->tname_index);
    p->capnodes = 1024;
    p->nodes = xcalloc(p->capnodes, sizeof(*p->nodes));
    p->counts = xcalloc(p->capnodes, sizeof(*p->counts));
    p->cat_counts = xcalloc((size_t)p->capnodes * PCAT_N, sizeof(*p->cat_counts));
    p->mem_growth = xcalloc(p->capnodes, sizeof(*p->mem_growth));
    p->nnodes = 1; /* id 0: the empty stack */
    p->max_samples = PROFILE_MAX_SAMPLES_DEFAULT;
}

void profile_fini(struct profile *p)
{
    strtab_fini(&p->strs);
    hmap_fini(&p->frame_index);
    hmap_fini(&p->node_index);
    hmap_fini(&p->ev_index);
    hmap_fini(&p->tname_index);
    free(p->tnames);
    free(p->evs);
    free(p->frames);
    free(p->nodes);
    free(p->counts);
    free(p->cat_counts);
    free(p->mem_growth);
    free(p->samples);
    free(p->mem);
    for (size_t i = 0; i < p->nprocs; i++) {
        free(p->procs[i].name);
        free(p->procs[i].python_version);
    }
    free(p->procs);
    free(p->spans);
    free(p->allocs);
    free(p->reqs);
    pgpu_fini(&p->gpu);
    free(p->meta.command);
    free(p->meta.python_version);
    free(p->meta.categories_note);
    free(p->meta.load_text);
    free(p->meta.stages_text);
    free(p->meta.load_json);
    free(p->meta.fingerprint);
    memset(p, 0, sizeof(*p));
}

void profile_clear(struct profile *p)
{
    struct pmeta meta = p->meta;
    bool keep = p->keep_samples, hide = p->hide_idle;
    size_t max = p->max_samples;
    p->meta = (struct pmeta){0};
    profile_fini(p);
    profile_init(p);
    p->meta = meta;
    p->keep_samples = keep;
    p->hide_idle = hide;
    p->max_samples = max;
}

uint32_t profile_str(struct profile *p, const char *s, size_t n)
{
    return strtab_intern(&p->strs, s, n);
}

static uint64_t frame_key(uint32_t name, uint32_t file, int32_t line, uint32_t col, uint32_t kind)
{
    uint64_t k = hmap_hash64(((uint64_t)name << 32) | file);
    k = hmap_hash64(k ^ (((uint64_t)(uint32_t)line << 8) | kind));
    if (col)
        k = hmap_hash64(k ^ col);
    return k ? k : 1;
}

uint32_t profile_frame(struct profile *p, uint32_t name, uint32_t file, int32_t line,
                       enum frame_kind kind)
{
    return profile_frame_col(p, name, file, line, 0, kind);
}

uint32_t profile_frame_col(struct profile *p, uint32_t name, uint32_t file, int32_t line,
                           uint32_t col, enum frame_kind kind)
{
    /* The index maps a frame hash to id + 1; on a hash collision between different frames
     * we probe with a rehashed key until an equal frame or a free key is found. */
    uint64_t key = frame_key(name, file, line, col, (uint32_t)kind);
    for (;;) {
        uint64_t v;
        if (!hmap_get(&p->frame_index, key, &v))
            break;
        const struct pframe *f = &p->frames[v - 1];
        if (f->name == name && f->file == file && f->line == line && f->col == col &&
            f->kind == (uint32_t)kind)
            return (uint32_t)(v - 1);
        key = hmap_hash64(key + 0x9e3779b97f4a7c15ULL);
        key = key ? key : 1;
    }
    if (p->nframes == p->capframes) {
        p->capframes = p->capframes ? p->capframes * 2 : 1024;
        p->frames = xrealloc(p->frames, p->capframes * sizeof(*p->frames));
    }
    uint32_t id = p->nframes++;
    p->frames[id] = (struct pframe){name, file, line, (uint32_t)kind, col};
    hmap_put(&p->frame_index, key, (uint64_t)id + 1);
    if (col)
        p->columns = true;
    return id;
}

/* Re-interns every frame without its column; returns old id -> new id (the caller frees). */
static uint32_t *merge_frames(struct profile *p)
{
    struct pframe *old = p->frames;
    uint32_t n = p->nframes;
    uint32_t *map = xmalloc(((size_t)n + 1) * sizeof(*map));
    p->frames = NULL;
    p->nframes = p->capframes = 0;
    hmap_fini(&p->frame_index);
    hmap_init(&p->frame_index);
    for (uint32_t i = 0; i < n; i++)
        map[i] =
            profile_frame(p, old[i].name, old[i].file, old[i].line, (enum frame_kind)old[i].kind);
    free(old);
    return map;
}

void profile_drop_columns(struct profile *p)
{
    if (!p->columns)
        return;
    uint32_t *fmap = merge_frames(p);
    /* A parent's id is below its children's, so one pass in id order re-interns each stack
     * after its parent; counts move from the old id to the new (the tail is zeroed first). */
    uint32_t n = p->nnodes;
    struct pnode *old = xmalloc((size_t)n * sizeof(*old));
    memcpy(old, p->nodes, (size_t)n * sizeof(*old));
    uint32_t *smap = xmalloc((size_t)n * sizeof(*smap));
    hmap_fini(&p->node_index);
    hmap_init(&p->node_index);
    p->nnodes = 1;
    smap[0] = 0;
    for (uint32_t s = 1; s < n; s++) {
        smap[s] = profile_push(p, smap[old[s].parent], fmap[old[s].frame]);
        if (smap[s] == s)
            continue;
        p->counts[smap[s]] += p->counts[s];
        p->counts[s] = 0;
        p->mem_growth[smap[s]] += p->mem_growth[s];
        p->mem_growth[s] = 0;
        for (int c = 0; c < PCAT_N; c++) {
            p->cat_counts[(size_t)smap[s] * PCAT_N + c] += p->cat_counts[(size_t)s * PCAT_N + c];
            p->cat_counts[(size_t)s * PCAT_N + c] = 0;
        }
    }
    for (size_t i = 0; i < p->nsamples; i++)
        p->samples[i].stack = smap[p->samples[i].stack];
    for (size_t i = 0; i < p->nallocs; i++)
        p->allocs[i].stack = smap[p->allocs[i].stack];
    free(smap);
    free(old);
    free(fmap);
    p->columns = false;
}

uint32_t profile_push(struct profile *p, uint32_t parent, uint32_t frame)
{
    uint64_t key = ((uint64_t)parent << 32) | frame;
    key = key ? key : ~(uint64_t)0; /* (0, 0) is a valid pair; 0 is the empty key */
    bool fresh;
    uint64_t *slot = hmap_slot(&p->node_index, key, p->nnodes, &fresh);
    if (!fresh)
        return (uint32_t)*slot;
    if (p->nnodes == p->capnodes) {
        uint32_t ncap = p->capnodes * 2;
        p->nodes = xrealloc(p->nodes, ncap * sizeof(*p->nodes));
        p->counts = xrealloc(p->counts, ncap * sizeof(*p->counts));
        memset(p->counts + p->capnodes, 0, (ncap - p->capnodes) * sizeof(*p->counts));
        p->cat_counts = xrealloc(p->cat_counts, (size_t)ncap * PCAT_N * sizeof(*p->cat_counts));
        memset(p->cat_counts + (size_t)p->capnodes * PCAT_N, 0,
               (size_t)(ncap - p->capnodes) * PCAT_N * sizeof(*p->cat_counts));
        p->mem_growth = xrealloc(p->mem_growth, ncap * sizeof(*p->mem_growth));
        memset(p->mem_growth + p->capnodes, 0, (ncap - p->capnodes) * sizeof(*p->mem_growth));
        p->capnodes = ncap;
    }
    uint32_t id = p->nnodes++;
    p->nodes[id] = (struct pnode){parent, frame, p->nodes[parent].depth + 1};
    return id;
}

uint32_t profile_stack(struct profile *p, const uint32_t *frames, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i < n; i++)
        s = profile_push(p, s, frames[i]);
    return s;
}

void profile_add(struct profile *p, const struct psample *s)
{
    uint32_t w = s->weight ? s->weight : 1;
    if (!(p->hide_idle && psample_idle(s))) {
        p->counts[s->stack] += w;
        p->cat_counts[(size_t)s->stack * PCAT_N + (s->cat < PCAT_N ? s->cat : CAT_NONE)] += w;
        p->total += w;
    }
    if (!p->keep_samples)
        return;
    if (p->nsamples >= p->max_samples) {
        p->samples_capped = true;
        return;
    }
    if (p->nsamples == p->capsamples) {
        p->capsamples = p->capsamples ? p->capsamples * 2 : 4096;
        p->samples = xrealloc(p->samples, p->capsamples * sizeof(*p->samples));
    }
    p->samples[p->nsamples] = *s;
    p->samples[p->nsamples].weight = (uint16_t)w;
    p->nsamples++;
}

uint16_t profile_evidence(struct profile *p, enum ev_kind kind, const char *label)
{
    uint32_t l = profile_str(p, label, strlen(label));
    uint64_t key = (((uint64_t)kind << 32) | l) + 1; /* unique, never 0 */
    uint64_t v;
    if (hmap_get(&p->ev_index, key, &v))
        return (uint16_t)v;
    if (p->nevs >= UINT16_MAX)
        return 0;
    if (p->nevs == p->capevs) {
        p->capevs = p->capevs ? p->capevs * 2 : 64;
        p->evs = xrealloc(p->evs, p->capevs * sizeof(*p->evs));
    }
    p->evs[p->nevs++] = (struct pevid){(uint32_t)kind, l};
    hmap_put(&p->ev_index, key, p->nevs);
    return (uint16_t)p->nevs;
}

void profile_add_growth(struct profile *p, uint32_t stack, int64_t bytes)
{
    p->mem_growth[stack] += bytes;
}

void profile_add_mem(struct profile *p, uint64_t t_ns, uint32_t pid, uint64_t rss)
{
    if (p->nmem == p->capmem) {
        p->capmem = p->capmem ? p->capmem * 2 : 1024;
        p->mem = xrealloc(p->mem, p->capmem * sizeof(*p->mem));
    }
    p->mem[p->nmem++] = (struct pmem){.t_ns = t_ns, .rss = rss, .pid = pid};
    struct pproc *pr = profile_proc(p, pid);
    if (rss > pr->peak_rss)
        pr->peak_rss = rss;
}

void profile_add_alloc(struct profile *p, const struct palloc *a)
{
    if (p->nallocs >= PROFILE_MAX_ALLOCS) {
        p->allocs_dropped++;
        return;
    }
    if (p->nallocs == p->capallocs) {
        p->capallocs = p->capallocs ? p->capallocs * 2 : 1024;
        p->allocs = xrealloc(p->allocs, p->capallocs * sizeof(*p->allocs));
    }
    p->allocs[p->nallocs++] = *a;
}

void profile_add_span(struct profile *p, const struct pspan *s)
{
    if (p->nspans >= PROFILE_MAX_SPANS) {
        p->spans_dropped++;
        return;
    }
    if (p->nspans == p->capspans) {
        p->capspans = p->capspans ? p->capspans * 2 : 256;
        p->spans = xrealloc(p->spans, p->capspans * sizeof(*p->spans));
    }
    p->spans[p->nspans++] = *s;
}

void profile_add_req(struct profile *p, const struct preq *r)
{
    if (p->nreqs >= PROFILE_MAX_REQS) {
        p->reqs_dropped++;
        return;
    }
    if (p->nreqs == p->capreqs) {
        p->capreqs = p->capreqs ? p->capreqs * 2 : 256;
        p->reqs = xrealloc(p->reqs, p->capreqs * sizeof(*p->reqs));
    }
    p->reqs[p->nreqs++] = *r;
}

struct pproc *profile_proc(struct profile *p, uint32_t pid)
{
    for (size_t i = 0; i < p->nprocs; i++)
        if (p->procs[i].pid == pid)
            return &p->procs[i];
    if (p->nprocs == p->capprocs) {
        p->capprocs = p->capprocs ? p->capprocs * 2 : 8;
        p->procs = xrealloc(p->procs, p->capprocs * sizeof(*p->procs));
    }
    struct pproc *pr = &p->procs[p->nprocs++];
    memset(pr, 0, sizeof(*pr));
    pr->pid = pid;
    pr->exit_status = -1;
    return pr;
}

static uint64_t tname_key(uint32_t pid, uint32_t tid)
{
    return ((uint64_t)pid << 32 | tid) + 1; /* never 0: pid < 2^32 - 1 */
}

void profile_thread_name(struct profile *p, uint32_t pid, uint32_t tid, const char *name, size_t n)
{
    bool fresh;
    uint64_t *slot = hmap_slot(&p->tname_index, tname_key(pid, tid), p->ntnames + 1, &fresh);
    if (fresh) {
        if (p->ntnames == p->captnames) {
            p->captnames = p->captnames ? p->captnames * 2 : 16;
            p->tnames = xrealloc(p->tnames, p->captnames * sizeof(*p->tnames));
        }
        p->tnames[p->ntnames++] = (struct pthreadname){pid, tid, 0};
    }
    p->tnames[*slot - 1].name = profile_str(p, name, n);
}

uint32_t profile_thread_name_id(const struct profile *p, uint32_t pid, uint32_t tid)
{
    uint64_t v;
    return hmap_get(&p->tname_index, tname_key(pid, tid), &v) ? p->tnames[v - 1].name : 0;
}

const char *profile_thread_name_of(const struct profile *p, uint32_t pid, uint32_t tid)
{
    uint32_t id = profile_thread_name_id(p, pid, tid);
    return id ? profile_string(p, id) : NULL;
}

size_t profile_stack_frames(const struct profile *p, uint32_t stack, uint32_t *out, size_t max)
{
    size_t depth = p->nodes[stack].depth;
    size_t i = depth;
    while (stack) {
        i--;
        if (i < max)
            out[i] = p->nodes[stack].frame;
        stack = p->nodes[stack].parent;
    }
    return depth;
}

void profile_set_str(char **field, const char *s)
{
    free(*field);
    *field = s ? xstrdup(s) : NULL;
}
