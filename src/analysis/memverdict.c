// SPDX-License-Identifier: MIT
// The memory verdict (memverdict.h), from the allocation views of analysis/allocs.h.
#include "analysis/memverdict.h"

#include <stdio.h>
#include <string.h>

#include "analysis/allocs.h"

static double mb(double bytes)
{
    return bytes / (1024.0 * 1024.0);
}

const char *mem_kind_label(enum mem_kind k)
{
    return k == MEMK_COPY      ? "copy-bound"
           : k == MEMK_GROWING ? "growing heap"
           : k == MEMK_CHURN   ? "allocation churn"
                               : "";
}

const char *mem_kind_fix(enum mem_kind k)
{
    if (k == MEMK_GROWING)
        return "find what keeps a reference to what the leaking line allocates (a list, cache "
               "or dict that is only appended to): bound it, or drop entries when done";
    if (k == MEMK_COPY)
        return "copy less: keep data in one array or buffer and pass views (memoryview, "
               "np.asarray, slices of arrays), reuse output buffers (out=), and move copies out "
               "of the loop";
    if (k == MEMK_CHURN)
        return "reuse buffers instead of building temporaries in a loop: in-place operations "
               "(out=, +=), preallocated arrays, join once instead of concatenating";
    return "";
}

/* RSS of the recording's main process (else the first one seen) nearest time `t`. */
static uint64_t rss_near(const struct profile *p, uint64_t t)
{
    uint32_t pid = p->meta.pid;
    bool seen = false;
    for (size_t i = 0; i < p->nmem && !seen; i++)
        seen = p->mem[i].pid == pid;
    if (!seen && p->nmem)
        pid = p->mem[0].pid;
    uint64_t best = 0, dist = UINT64_MAX;
    for (size_t i = 0; i < p->nmem; i++) {
        const struct pmem *m = &p->mem[i];
        uint64_t d = m->t_ns > t ? m->t_ns - t : t - m->t_ns;
        if (m->pid == pid && d < dist) {
            dist = d;
            best = m->rss;
        }
    }
    return best;
}

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

/* Copy-bound comes first: it is about time, a growing heap about memory. */
static bool copy_bound(struct mem_verdict *v, const struct profile *p, const struct alloc_view *av)
{
    if (!av->ncopy_lines || av->copy_lines[0].frame == UINT32_MAX)
        return false;
    const struct alloc_site *c = &av->copy_lines[0];
    double rate = allocs_rate(p, c->copy_bytes);
    double share = rate >= MEMV_COPY_RATE ? cpu_share_at(p, c->frame) : 0;
    if (share < MEMV_COPY_CPU_SHARE)
        return false;
    v->kind = MEMK_COPY;
    v->frame = c->frame;
    v->copy_rate = rate;
    v->cpu_share = share;
    return true;
}

static void pick_top(struct mem_verdict *v, const struct alloc_view *av)
{
    uint64_t temp = 0;
    const struct alloc_site *leak = NULL, *churn = NULL;
    for (size_t i = 0; i < av->nlines; i++) {
        const struct alloc_site *s = &av->lines[i];
        temp += s->temp;
        if (s->leak && (!leak || s->growth > leak->growth))
            leak = s;
        if (!churn || s->temp > churn->temp)
            churn = s;
        v->nleaks += s->leak;
        v->count += s->count;
    }
    v->temp_share = av->total_bytes ? (double)temp / (double)av->total_bytes : 0;
    if (leak) {
        v->frame = leak->frame;
        v->frame_bytes = leak->growth;
        v->frame_share = av->heap_growth > 0 ? (double)leak->growth / (double)av->heap_growth : 0;
        v->likelihood = leak->likelihood;
    } else if (churn && churn->temp) {
        v->frame = churn->frame;
        v->frame_bytes = (int64_t)churn->temp;
        v->frame_share = temp ? (double)churn->temp / (double)temp : 0;
    }
}

void mem_verdict_run(struct mem_verdict *v, const struct profile *p)
{
    memset(v, 0, sizeof(*v));
    v->frame = UINT32_MAX;
    if (!p->allocations)
        return;
    v->recorded = true;
    struct alloc_view av;
    allocs_view_build(p, &av);
    v->seconds = (double)av.duration_ns / 1e9;
    v->total_bytes = av.total_bytes;
    v->peak_live = av.peak_live;
    v->end_live = av.end_live;
    v->heap_growth = av.heap_growth;
    v->rate = v->seconds > 0 ? (double)av.total_bytes / v->seconds : 0;
    pick_top(v, &av);
    v->rss_at_peak = rss_near(p, av.peak_ns);
    v->gap = v->rss_at_peak ? (int64_t)v->rss_at_peak - av.peak_live : 0;
    if (copy_bound(v, p, &av)) {
        /* kind, line and figures set */
    } else if (v->nleaks && av.heap_growth > 0 &&
               (double)av.heap_growth >= MEMV_GROWTH_MIN_SHARE * (double)av.peak_live) {
        v->kind = MEMK_GROWING;
    } else if (v->rate >= MEMV_CHURN_RATE && v->temp_share >= MEMV_CHURN_TEMP_SHARE) {
        v->kind = MEMK_CHURN;
    }
    allocs_view_fini(&av);
}

static void site_text(const struct profile *p, uint32_t frame, char *out, size_t cap)
{
    if (frame == UINT32_MAX) {
        snprintf(out, cap, "[no Python frame]");
        return;
    }
    const struct pframe *f = &p->frames[frame];
    const char *file = profile_string(p, f->file);
    const char *slash = strrchr(file, '/');
    snprintf(out, cap, "%s:%d (%s)", slash ? slash + 1 : file, f->line, profile_string(p, f->name));
}

void mem_verdict_figures(const struct mem_verdict *v, const struct profile *p, char *out,
                         size_t cap)
{
    char site[256];
    site_text(p, v->frame, site, sizeof(site));
    if (v->kind == MEMK_COPY)
        snprintf(out, cap,
                 "%s copies %.0f MB/s (memcpy/memmove) and holds %.0f%% of the CPU samples", site,
                 mb(v->copy_rate), 100 * v->cpu_share);
    else if (v->kind == MEMK_GROWING)
        snprintf(out, cap,
                 "live heap grew %.1f MB (peak %.1f MB) over %.1f s; %.0f%% of the growth at %s "
                 "(trend likelihood %.3f)",
                 mb((double)v->heap_growth), mb((double)v->peak_live), v->seconds,
                 100 * v->frame_share, site, v->likelihood);
    else if (v->kind == MEMK_CHURN)
        snprintf(out, cap,
                 "%.0f MB/s allocated (%.0f allocations/s), %.0f%% of the bytes freed within "
                 "10 ms; %.0f%% of those temporaries at %s",
                 mb(v->rate), v->seconds > 0 ? v->count / v->seconds : 0, 100 * v->temp_share,
                 100 * v->frame_share, site);
    else
        snprintf(out, cap, "%.1f MB allocated, peak live %.1f MB, %.1f MB live at the end",
                 mb((double)v->total_bytes), mb((double)v->peak_live), mb((double)v->end_live));
}
