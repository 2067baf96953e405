// SPDX-License-Identifier: MIT
// What the GPUs did during a recording: growable arrays with caps, and the note.
#include "profile/gpuseries.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

void pgpu_init(struct pgpu *g)
{
    memset(g, 0, sizeof(*g));
}

void pgpu_fini(struct pgpu *g)
{
    for (uint32_t i = 0; i < g->ndevs; i++) {
        free(g->devs[i].name);
        free(g->devs[i].uuid);
    }
    free(g->driver);
    free(g->nvml_version);
    free(g->note);
    free(g->pts);
    free(g->procs);
    pgpu_init(g);
}

void pgpu_move(struct pgpu *dst, struct pgpu *src)
{
    pgpu_fini(dst);
    *dst = *src;
    pgpu_init(src);
}

void pgpu_set_str(char **field, const char *s)
{
    free(*field);
    *field = s ? xstrdup(s) : NULL;
}

int pgpu_add_dev(struct pgpu *g, uint32_t index, const char *name, const char *uuid,
                 uint64_t mem_total)
{
    if (g->ndevs >= PGPU_MAX_DEVS)
        return -1;
    struct pgpu_dev *d = &g->devs[g->ndevs];
    memset(d, 0, sizeof(*d));
    d->index = index;
    d->name = xstrdup(name ? name : "GPU");
    d->uuid = uuid ? xstrdup(uuid) : NULL;
    d->mem_total = mem_total;
    return (int)g->ndevs++;
}

void pgpu_add_point(struct pgpu *g, const struct pgpu_point *pt)
{
    if (g->npts >= PGPU_MAX_POINTS) {
        g->dropped++;
        return;
    }
    if (g->npts == g->cappts) {
        g->cappts = g->cappts ? 2 * g->cappts : 256;
        g->pts = xrealloc(g->pts, g->cappts * sizeof(*g->pts));
    }
    g->pts[g->npts++] = *pt;
}

void pgpu_add_proc(struct pgpu *g, const struct pgpu_proc *pp)
{
    if (g->nprocs >= PGPU_MAX_PROCS) {
        g->dropped++;
        return;
    }
    if (g->nprocs == g->capprocs) {
        g->capprocs = g->capprocs ? 2 * g->capprocs : 256;
        g->procs = xrealloc(g->procs, g->capprocs * sizeof(*g->procs));
    }
    g->procs[g->nprocs++] = *pp;
}

void pgpu_add_note(struct pgpu *g, const char *text)
{
    if (!text || !text[0])
        return;
    if (!g->note) {
        g->note = xstrdup(text);
        return;
    }
    if (strstr(g->note, text))
        return;
    size_t a = strlen(g->note), b = strlen(text);
    char *s = xmalloc(a + b + 3);
    memcpy(s, g->note, a);
    memcpy(s + a, "; ", 2);
    memcpy(s + a + 2, text, b + 1);
    free(g->note);
    g->note = s;
}

struct pgpu_point pgpu_point_empty(uint64_t t_ns, uint32_t dev)
{
    return (struct pgpu_point){.t_ns = t_ns,
                               .dev = dev,
                               .sm_clock = PGPU_NA_U32,
                               .util_gpu = PGPU_NA,
                               .util_mem = PGPU_NA,
                               .sm_active = PGPU_NA,
                               .sm_occupancy = PGPU_NA,
                               .tensor_active = PGPU_NA,
                               .dram_bw = PGPU_NA,
                               .mem_used = PGPU_NA_U64,
                               .throttle = PGPU_NA_U64,
                               .power_mw = PGPU_NA_U32,
                               .pcie_tx_kbs = PGPU_NA_U32,
                               .pcie_rx_kbs = PGPU_NA_U32};
}
