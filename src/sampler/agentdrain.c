// SPDX-License-Identifier: MIT
// What the in-process agent (src/agent) wrote to its shared ring since the last round: stage
// spans to the stage statistics, allocation records to the profile.
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "sampler/sproc.h"
#include "stages/stagestats.h"

/* Every span the agent wrote since the last round goes to the stage statistics. */
void agentdrain_spans(struct sampler *s, struct sproc *sp)
{
    struct stage_span buf[256];
    uint64_t lost0 = sp->ring.lost;
    for (int batch = 0; batch < 64; batch++) { /* bounded: the agent may write faster */
        size_t n = stagering_drain(&sp->ring, buf, sizeof(buf) / sizeof(buf[0]));
        for (size_t i = 0; i < n; i++)
            stagestats_add(s->o->spans, &buf[i]);
        if (n < sizeof(buf) / sizeof(buf[0]))
            break;
    }
    if (s->o->spans_lost)
        *s->o->spans_lost += sp->ring.lost - lost0;
}

/* The profile stack of the agent's allocation stack entry `id` (innermost first there). */
static uint32_t alloc_stack(struct sampler *s, struct sproc *sp, uint32_t id)
{
    uint64_t v;
    if (!id)
        return 0;
    if (hmap_get(&sp->alloc_stacks, id, &v))
        return (uint32_t)v;
    struct agentshm_stack e;
    if (stagering_alloc_stack(&sp->ring, id, &e))
        return 0; /* not yet valid: looked up again next time */
    struct profile *p = s->p;
    uint32_t st = 0;
    if (s->o->subprocesses)
        st = profile_push(p, st, sp->proc_frame);
    if (e.truncated)
        st = profile_push(p, st, s->marker_truncated);
    for (uint32_t k = e.depth; k > 0; k--) {
        const char *file = "";
        const char *name = stagering_code(&sp->ring, e.code[k - 1], &file);
        if (!name)
            name = "[unknown]";
        uint32_t f = profile_frame(p, profile_str(p, name, strlen(name)),
                                   profile_str(p, file, strlen(file)), e.line[k - 1], FRAME_PYTHON);
        st = profile_push(p, st, f);
    }
    hmap_put(&sp->alloc_stacks, id, st);
    return st;
}

/* Every allocation record the agent wrote since the last round goes to the profile. */
void agentdrain_allocs(struct sampler *s, struct sproc *sp)
{
    static struct agentshm_arec buf[1024];
    uint64_t lost0 = sp->ring.alost;
    for (int batch = 0; batch < 4096; batch++) { /* bounded: 4M records a round */
        size_t n = stagering_drain_allocs(&sp->ring, buf, sizeof(buf) / sizeof(buf[0]));
        for (size_t i = 0; i < n; i++) {
            const struct agentshm_arec *r = &buf[i];
            uint64_t t = r->t_ns > s->start ? r->t_ns - s->start : 0;
            uint64_t born = r->born_ns > s->start ? r->born_ns - s->start : 0;
            profile_add_alloc(
                s->p, &(struct palloc){
                          .t_ns = t,
                          .bytes = r->weight,
                          .born_ns = r->kind == PALLOC_FREE ? born : t,
                          .stack = alloc_stack(s, sp, r->stack),
                          .count = r->size ? (float)((double)r->weight / (double)r->size) : 1.0f,
                          .kind = r->kind,
                          .tid = r->tid});
        }
        if (n < sizeof(buf) / sizeof(buf[0]))
            break;
    }
    s->p->allocs_dropped += sp->ring.alost - lost0;
    if (sp->ring.allocs && !s->p->allocations) {
        s->p->allocations = true;
        uint64_t sb = 0;
        if (pread(sp->ring.fd, &sb, sizeof(sb), offsetof(struct agentshm_hdr, sample_bytes)) ==
            (ssize_t)sizeof(sb))
            s->p->alloc_sample_bytes = sb;
        if (pread(sp->ring.fd, &sb, sizeof(sb), offsetof(struct agentshm_hdr, copy_sample_bytes)) ==
            (ssize_t)sizeof(sb))
            s->p->copy_sample_bytes = sb;
    }
}
