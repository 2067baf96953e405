// SPDX-License-Identifier: MIT
// Resident memory of a sampled process from /proc/PID/statm, read at most every MEM_READ_NS:
// a memory point for the timeline, and the growth since the last read for the stacks that ran.
#include <stdlib.h>
#include <unistd.h>

#include "sampler/sproc.h"

/* A pread of statm costs ~3 us here, as much as the stack read of a shallow thread. */
#define MEM_READ_NS 2000000ULL
#define MEM_POINT_NS 10000000ULL /* at most 100 memory points a second per process */

static uint64_t read_rss(struct sampler *s, struct sproc *sp)
{
    char text[128];
    ssize_t n = pread(sp->statm_fd, text, sizeof(text) - 1, 0);
    if (n <= 0)
        return 0;
    text[n] = 0;
    char *end;
    (void)strtoull(text, &end, 10); /* size */
    return strtoull(end, NULL, 10) * (uint64_t)s->page_size;
}

/* Resident memory, read at most every MEM_READ_NS; the change since the last read goes to the
 * stacks that ran in the rounds since (`states` NULL: not a Python process). */
void memsample_round(struct sampler *s, struct sproc *sp, uint64_t t_rel, const char *states)
{
    if (sp->statm_fd < 0)
        return;
    if (sp->python && states) {
        /* This round's owners: running threads first; else the GIL holder; else every
         * thread with a stack. */
        const struct pyreader *r = &sp->r;
        bool any = false;
        for (int pass = 0; pass < 3 && !any; pass++)
            for (size_t t = 0; t < r->nthreads; t++) {
                if (!sp->stacks[t])
                    continue;
                if ((pass == 0 && states[t] == 'R') || (pass == 1 && r->threads[t].gil) ||
                    pass == 2) {
                    any = true;
                    if (sp->ngrow < GROW_PENDING)
                        sp->grow[sp->ngrow++] = sp->stacks[t];
                }
            }
    }
    if (sp->statm_read && t_rel - sp->statm_ns < MEM_READ_NS)
        return;
    sp->statm_read = true;
    sp->statm_ns = t_rel;
    s->st->statm_reads++;
    uint64_t rss = read_rss(s, sp);
    uint32_t n = sp->ngrow;
    sp->ngrow = 0;
    if (!rss)
        return;
    int64_t delta = sp->rss ? (int64_t)(rss - sp->rss) : 0;
    sp->rss = rss;
    struct pproc *pr = profile_proc(s->p, (uint32_t)sp->pid);
    if (rss > pr->peak_rss)
        pr->peak_rss = rss;
    if (!sp->point_ns || t_rel - sp->point_ns >= MEM_POINT_NS || rss > sp->point_rss * 2 ||
        rss < sp->point_rss / 2) {
        profile_add_mem(s->p, t_rel, (uint32_t)sp->pid, rss);
        sp->point_ns = t_rel ? t_rel : 1;
        sp->point_rss = rss;
    }
    if (!delta || !n)
        return;
    for (uint32_t i = 0; i < n; i++)
        profile_add_growth(s->p, sp->grow[i], delta / (int64_t)n);
}
