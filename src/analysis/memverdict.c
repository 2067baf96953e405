// SPDX-License-Identifier: MIT
// The memory verdict (memverdict.h).
#include "analysis/memverdict.h"

#include <string.h>

#include "analysis/allocs.h"

#define DEPTH_MAX 256

/* The innermost Python frame of `stack`, or UINT32_MAX. */
static uint32_t leaf_python(const struct profile *p, uint32_t stack)
{
    uint32_t frames[DEPTH_MAX];
    size_t d = profile_stack_frames(p, stack, frames, DEPTH_MAX);
    d = d < DEPTH_MAX ? d : DEPTH_MAX;
    for (size_t k = d; k > 0; k--)
        if (p->frames[frames[k - 1]].kind == FRAME_PYTHON)
            return frames[k - 1];
    return UINT32_MAX;
}

/* The share of on-CPU samples whose innermost Python frame is at `frame`'s file and line. */
static double cpu_share_at(const struct profile *p, uint32_t frame)
{
    const struct pframe *want = &p->frames[frame];
    double at = 0, all = 0;
    for (size_t i = 0; i < p->nsamples; i++) {
        const struct psample *s = &p->samples[i];
        if (psample_idle(s))
            continue;
        double w = s->weight ? s->weight : 1;
        all += w;
        uint32_t leaf = leaf_python(p, s->stack);
        if (leaf != UINT32_MAX && p->frames[leaf].file == want->file &&
            p->frames[leaf].line == want->line)
            at += w;
    }
    return all > 0 ? at / all : 0;
}

void memverdict_run(struct mem_verdict *m, const struct profile *p)
{
    memset(m, 0, sizeof(*m));
    m->frame = UINT32_MAX;
    if (!p->allocations)
        return;
    struct alloc_view v;
    allocs_view_build(p, &v);
    if (v.ncopy_lines && v.copy_lines[0].frame != UINT32_MAX) {
        const struct alloc_site *c = &v.copy_lines[0];
        double rate = allocs_rate(p, c->copy_bytes);
        double share = rate >= MEMV_COPY_RATE ? cpu_share_at(p, c->frame) : 0;
        if (share >= MEMV_COPY_CPU_SHARE) {
            *m = (struct mem_verdict){MEMK_COPY, c->frame, rate, share, 0, 0};
            allocs_view_fini(&v);
            return;
        }
    }
    for (size_t i = 0; i < v.nlines; i++) {
        const struct alloc_site *s = &v.lines[i];
        if (s->leak && (m->kind == MEMK_NONE || s->growth > m->growth)) {
            m->kind = MEMK_GROWING;
            m->frame = s->frame;
            m->growth = s->growth;
            m->growth_share = v.heap_growth > 0 ? (double)s->growth / (double)v.heap_growth : 0.0;
        }
    }
    allocs_view_fini(&v);
}

void memverdict_print(const struct profile *p, FILE *f)
{
    struct mem_verdict m;
    memverdict_run(&m, p);
    if (m.kind == MEMK_NONE)
        return;
    const struct pframe *fr = &p->frames[m.frame];
    const char *file = profile_string(p, fr->file), *name = profile_string(p, fr->name);
    if (m.kind == MEMK_COPY) {
        fprintf(f,
                "  memory: copy-bound: %s (%s:%d) copies %.0f MB/s (memcpy/memmove) and holds "
                "%.0f%% of the CPU samples\n",
                name, file, fr->line, m.copy_rate / (1024.0 * 1024.0), 100 * m.cpu_share);
        fprintf(f, "  memory fix: Copy less: keep data in one array or buffer and pass views "
                   "(memoryview, np.asarray, slices of arrays), reuse output buffers (out=), "
                   "and move copies out of the loop.\n");
    } else {
        fprintf(f,
                "  memory: growing heap: %s (%s:%d) holds %+.1f MB more at the end than at the "
                "start (%.0f%% of the heap's growth)\n",
                name, file, fr->line, (double)m.growth / (1024.0 * 1024.0), 100 * m.growth_share);
        fprintf(f, "  memory fix: Something keeps what this line allocates: bound the cache "
                   "or list it goes into, or drop the references when done.\n");
    }
}
