// SPDX-License-Identifier: MIT
// pstats export: per-function and per-caller sample counts of the stack trie, marshalled as
// the dict cProfile.Profile.dump_stats writes.
#include "export/pstats.h"

#include <stdlib.h>
#include <string.h>

#include "export/marshal.h"
#include "util/hmap.h"
#include "util/xalloc.h"

/* One pstats entry: a Python function (file, qualname), a native symbol or a marker. */
struct fn {
    uint32_t kind; /* enum frame_kind: Python, native or marker */
    uint32_t name, file;
    int32_t line;   /* smallest positive line seen in its frames, 0 none */
    uint32_t stamp; /* the last stack that counted it (recursion counts once) */
    uint64_t self, cum;
};

/* caller -> callee, adjacent on some stack. */
struct edge {
    uint32_t caller, callee; /* fn indexes */
    uint32_t stamp;
    uint64_t self, cum;
};

struct stats {
    const struct profile *p;
    double interval; /* seconds a sample stands for */
    struct fn *fns;
    uint32_t nfns;
    uint32_t *fn_of; /* frame id -> fn index + 1; 0 for thread and process frames */
    struct edge *edges;
    size_t nedges, capedges;
    struct hmap edge_index; /* (caller << 32 | callee) + 1 -> edge index + 1 */
};

/* Gives every frame its function: Python frames by (name, file), whatever their line; native
 * ones by symbol alone and markers by name, since that is all their key holds. */
static void map_functions(struct stats *st)
{
    const struct profile *p = st->p;
    struct hmap index[3];
    for (size_t i = 0; i < 3; i++)
        hmap_init(&index[i]);
    st->fns = xcalloc((size_t)p->nframes + 1, sizeof(*st->fns));
    st->fn_of = xcalloc((size_t)p->nframes + 1, sizeof(*st->fn_of));
    for (uint32_t id = 0; id < p->nframes; id++) {
        const struct pframe *f = profile_frame_at(p, id);
        if (f->kind == FRAME_THREAD || f->kind == FRAME_PROCESS)
            continue;
        size_t which = f->kind == FRAME_PYTHON ? 0 : f->kind == FRAME_NATIVE ? 1 : 2;
        uint32_t file = which == 0 ? f->file : 0;
        uint64_t key = (((uint64_t)f->name << 32) | file) + 1;
        bool fresh;
        uint64_t *slot = hmap_slot(&index[which], key, st->nfns, &fresh);
        if (fresh)
            st->fns[st->nfns++] = (struct fn){.kind = which == 0   ? FRAME_PYTHON
                                                      : which == 1 ? FRAME_NATIVE
                                                                   : FRAME_MARKER,
                                              .name = f->name,
                                              .file = file};
        struct fn *fn = &st->fns[*slot];
        if (which == 0 && f->line > 0 && (fn->line == 0 || f->line < fn->line))
            fn->line = f->line;
        st->fn_of[id] = (uint32_t)*slot + 1;
    }
    for (size_t i = 0; i < 3; i++)
        hmap_fini(&index[i]);
}

static struct edge *edge_of(struct stats *st, uint32_t caller, uint32_t callee)
{
    uint64_t key = (((uint64_t)caller << 32) | callee) + 1;
    bool fresh;
    uint64_t *slot = hmap_slot(&st->edge_index, key, st->nedges, &fresh);
    if (fresh) {
        if (st->nedges == st->capedges) {
            st->capedges = st->capedges ? st->capedges * 2 : 256;
            st->edges = xrealloc(st->edges, st->capedges * sizeof(*st->edges));
        }
        st->edges[st->nedges++] = (struct edge){.caller = caller, .callee = callee};
    }
    return &st->edges[*slot];
}

/* Counts the `c` samples of stack `s`, whose functions, leaf first, are fns[0..n). */
static void count_stack(struct stats *st, uint32_t s, const uint32_t *fns, size_t n, uint64_t c)
{
    st->fns[fns[0]].self += c;
    for (size_t i = 0; i < n; i++) {
        struct fn *f = &st->fns[fns[i]];
        if (f->stamp != s) {
            f->stamp = s;
            f->cum += c;
        }
    }
    for (size_t i = 0; i + 1 < n; i++) {
        struct edge *e = edge_of(st, fns[i + 1], fns[i]);
        if (e->stamp == s)
            continue;
        e->stamp = s;
        e->cum += c;
        if (i == 0)
            e->self += c;
    }
}

static void count_stacks(struct stats *st)
{
    const struct profile *p = st->p;
    uint32_t maxd = 0;
    for (uint32_t s = 1; s < p->nnodes; s++)
        maxd = p->nodes[s].depth > maxd ? p->nodes[s].depth : maxd;
    uint32_t *fns = xmalloc(((size_t)maxd + 1) * sizeof(*fns));
    for (uint32_t s = 1; s < p->nnodes; s++) {
        if (!p->counts[s])
            continue;
        size_t n = 0;
        for (uint32_t k = s; k; k = p->nodes[k].parent) {
            uint32_t fn = st->fn_of[p->nodes[k].frame];
            if (fn)
                fns[n++] = fn - 1;
        }
        if (n)
            count_stack(st, s, fns, n, p->counts[s]);
    }
    free(fns);
}

/* (file, line, name): a Python function's file and qualname; ('~', 0, '<symbol>') for a
 * native one, as cProfile keys built-ins; ('~', 0, name) for a marker. Empty names are '?'. */
static int write_key(struct buf *b, const struct stats *st, const struct fn *f, struct buf *tmp)
{
    const struct profile *p = st->p;
    const char *name = profile_string(p, f->name);
    size_t nlen = strtab_len(&p->strs, f->name);
    if (!nlen) {
        name = "?";
        nlen = 1;
    }
    int rc = marshal_tuple(b, 3);
    if (f->kind == FRAME_PYTHON) {
        rc = rc ? rc : marshal_str(b, profile_string(p, f->file), strtab_len(&p->strs, f->file));
        rc = rc ? rc : marshal_int(b, f->line);
        return rc ? rc : marshal_str(b, name, nlen);
    }
    rc = rc ? rc : marshal_str(b, "~", 1);
    rc = rc ? rc : marshal_int(b, 0);
    if (f->kind == FRAME_MARKER)
        return rc ? rc : marshal_str(b, name, nlen);
    buf_reset(tmp);
    rc = rc ? rc : buf_putc(tmp, '<');
    rc = rc ? rc : buf_append(tmp, name, nlen);
    rc = rc ? rc : buf_putc(tmp, '>');
    return rc ? rc : marshal_str(b, tmp->data, tmp->len);
}

/* (calls, calls, self seconds, cumulative seconds): calls are samples, primitive = total. */
static int write_counts(struct buf *b, const struct stats *st, uint64_t self, uint64_t cum)
{
    int rc = marshal_int(b, (int64_t)cum);
    rc = rc ? rc : marshal_int(b, (int64_t)cum);
    rc = rc ? rc : marshal_float(b, (double)self * st->interval);
    return rc ? rc : marshal_float(b, (double)cum * st->interval);
}

static int cmp_edge(const void *a, const void *b)
{
    const struct edge *x = a;
    const struct edge *y = b;
    if (x->callee != y->callee)
        return x->callee < y->callee ? -1 : 1;
    return (x->caller > y->caller) - (x->caller < y->caller);
}

/* The dict: each counted function with its callers (the edges sorted by callee, in order). */
static int write_dict(struct buf *b, struct stats *st)
{
    if (st->nedges)
        qsort(st->edges, st->nedges, sizeof(*st->edges), cmp_edge);
    struct buf tmp;
    buf_init(&tmp, 0);
    int rc = marshal_dict(b);
    size_t e = 0;
    for (uint32_t i = 0; i < st->nfns && !rc; i++) {
        const struct fn *f = &st->fns[i];
        if (!f->cum)
            continue;
        rc = write_key(b, st, f, &tmp);
        rc = rc ? rc : marshal_tuple(b, 5);
        rc = rc ? rc : write_counts(b, st, f->self, f->cum);
        rc = rc ? rc : marshal_dict(b);
        while (e < st->nedges && st->edges[e].callee < i)
            e++;
        for (; !rc && e < st->nedges && st->edges[e].callee == i; e++) {
            rc = write_key(b, st, &st->fns[st->edges[e].caller], &tmp);
            rc = rc ? rc : marshal_tuple(b, 4);
            rc = rc ? rc : write_counts(b, st, st->edges[e].self, st->edges[e].cum);
        }
        rc = rc ? rc : marshal_dict_end(b);
    }
    rc = rc ? rc : marshal_dict_end(b);
    buf_fini(&tmp);
    return rc;
}

int pstats_write(const struct profile *p, struct buf *out)
{
    struct stats st = {.p = p};
    st.interval = 1.0 / (p->meta.rate_hz > 0 ? p->meta.rate_hz : 100.0);
    hmap_init(&st.edge_index);
    map_functions(&st);
    count_stacks(&st);
    int rc = write_dict(out, &st);
    free(st.fns);
    free(st.fn_of);
    free(st.edges);
    hmap_fini(&st.edge_index);
    return rc;
}
