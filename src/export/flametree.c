// SPDX-License-Identifier: MIT
// Flame graph tree: subtree totals over the profile's stack trie, frames ranked by name, and a
// preorder walk with siblings in rank order.
#include "export/flametree.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

struct frame_key {
    const char *name;
    const char *file;
    int32_t line;
    uint32_t kind;
    uint32_t id;
};

static int cmp_frame_key(const void *a, const void *b)
{
    const struct frame_key *x = a;
    const struct frame_key *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    c = strcmp(x->file, y->file);
    if (c)
        return c;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return 0; /* distinct frames never compare equal: (name, file, line, kind) is the key */
}

/* Sums every stack's count into its ancestors. A parent's id is always below its child's
 * (profile_push creates the child after the parent), so one backward pass suffices. */
static uint64_t *subtree_totals(const struct profile *p)
{
    uint64_t *total = xmalloc((size_t)p->nnodes * sizeof(*total));
    memcpy(total, p->counts, (size_t)p->nnodes * sizeof(*total));
    for (uint32_t i = p->nnodes - 1; i > 0; i--)
        total[p->nodes[i].parent] += total[i];
    return total;
}

/* Ranks the frames used by kept nodes; returns frame id -> rank (UINT32_MAX if unused) and
 * fills t->frames and t->nframes. */
static uint32_t *rank_frames(struct flametree *t, const struct profile *p, const uint64_t *total)
{
    uint32_t *rank = xmalloc((size_t)(p->nframes + 1) * sizeof(*rank));
    memset(rank, 0xff, (size_t)(p->nframes + 1) * sizeof(*rank));
    uint32_t used = 0;
    for (uint32_t i = 1; i < p->nnodes; i++) {
        uint32_t f = p->nodes[i].frame;
        if (total[i] && rank[f] == UINT32_MAX) {
            rank[f] = 0;
            used++;
        }
    }
    struct frame_key *keys = xmalloc(((size_t)used + 1) * sizeof(*keys));
    uint32_t k = 0;
    for (uint32_t f = 0; f < p->nframes; f++) {
        if (rank[f] == UINT32_MAX)
            continue;
        const struct pframe *pf = profile_frame_at(p, f);
        keys[k++] = (struct frame_key){profile_string(p, pf->name), profile_string(p, pf->file),
                                       pf->line, pf->kind, f};
    }
    qsort(keys, used, sizeof(*keys), cmp_frame_key);
    t->frames = xmalloc(((size_t)used + 1) * sizeof(*t->frames));
    t->nframes = used;
    for (uint32_t r = 0; r < used; r++) {
        t->frames[r] = keys[r].id;
        rank[keys[r].id] = r;
    }
    free(keys);
    return rank;
}

/* Children lists in CSR form, each sorted by rank: kept nodes are counting-sorted by rank
 * first, then dealt to their parents in that order. `first` has nnodes + 1 entries. */
static void child_lists(const struct profile *p, const uint64_t *total, const uint32_t *rank,
                        uint32_t nframes, uint32_t **first_out, uint32_t **kids_out)
{
    uint32_t nn = p->nnodes;
    uint32_t *byrank = xcalloc((size_t)nframes + 1, sizeof(*byrank));
    uint32_t *first = xcalloc((size_t)nn + 1, sizeof(*first));
    uint32_t kept = 0;
    for (uint32_t i = 1; i < nn; i++) {
        if (!total[i])
            continue;
        byrank[rank[p->nodes[i].frame] + 1]++;
        first[p->nodes[i].parent + 1]++;
        kept++;
    }
    for (uint32_t r = 0; r < nframes; r++)
        byrank[r + 1] += byrank[r];
    for (uint32_t i = 0; i < nn; i++)
        first[i + 1] += first[i];
    uint32_t *order = xmalloc(((size_t)kept + 1) * sizeof(*order));
    for (uint32_t i = 1; i < nn; i++) {
        if (total[i])
            order[byrank[rank[p->nodes[i].frame]]++] = i;
    }
    uint32_t *fill = xmalloc(((size_t)nn + 1) * sizeof(*fill));
    memcpy(fill, first, ((size_t)nn + 1) * sizeof(*fill));
    uint32_t *kids = xmalloc(((size_t)kept + 1) * sizeof(*kids));
    for (uint32_t k = 0; k < kept; k++) {
        uint32_t i = order[k];
        kids[fill[p->nodes[i].parent]++] = i;
    }
    free(fill);
    free(order);
    free(byrank);
    *first_out = first;
    *kids_out = kids;
}

static void alloc_nodes(struct flametree *t, uint32_t n)
{
    t->rank = xmalloc((size_t)n * sizeof(*t->rank));
    t->depth = xmalloc((size_t)n * sizeof(*t->depth));
    t->end = xmalloc((size_t)n * sizeof(*t->end));
    t->total = xmalloc((size_t)n * sizeof(*t->total));
}

/* Preorder walk with an explicit stack (stacks can be deep; no recursion). */
static void walk(struct flametree *t, const struct profile *p, const uint64_t *total,
                 const uint32_t *rank, const uint32_t *first, const uint32_t *kids)
{
    uint32_t maxd = 0;
    for (uint32_t i = 1; i < p->nnodes; i++)
        maxd = p->nodes[i].depth > maxd ? p->nodes[i].depth : maxd;
    uint32_t *src = xmalloc(((size_t)maxd + 1) * sizeof(*src));   /* profile node per level */
    uint32_t *dst = xmalloc(((size_t)maxd + 1) * sizeof(*dst));   /* tree node per level */
    uint32_t *next = xmalloc(((size_t)maxd + 1) * sizeof(*next)); /* next child per level */
    uint32_t n = 0;
    int level = 0;
    src[0] = 0;
    next[0] = first[0];
    dst[0] = n++;
    t->rank[0] = UINT32_MAX;
    t->depth[0] = 0;
    t->total[0] = total[0];
    while (level >= 0) {
        uint32_t s = src[level];
        if (next[level] == first[s + 1]) {
            t->end[dst[level]] = n;
            level--;
            continue;
        }
        uint32_t c = kids[next[level]++];
        level++;
        src[level] = c;
        next[level] = first[c];
        dst[level] = n;
        t->rank[n] = rank[p->nodes[c].frame];
        t->depth[n] = (uint32_t)level;
        t->total[n] = total[c];
        t->max_depth = (uint32_t)level > t->max_depth ? (uint32_t)level : t->max_depth;
        n++;
    }
    t->n = n;
    free(src);
    free(dst);
    free(next);
}

void flametree_init(struct flametree *t, const struct profile *p)
{
    memset(t, 0, sizeof(*t));
    uint64_t *total = subtree_totals(p);
    uint32_t *rank = rank_frames(t, p, total);
    uint32_t kept = 1;
    for (uint32_t i = 1; i < p->nnodes; i++)
        kept += total[i] != 0;
    uint32_t *first;
    uint32_t *kids;
    child_lists(p, total, rank, t->nframes, &first, &kids);
    alloc_nodes(t, kept);
    walk(t, p, total, rank, first, kids);
    free(first);
    free(kids);
    free(rank);
    free(total);
}

void flametree_fini(struct flametree *t)
{
    free(t->rank);
    free(t->depth);
    free(t->end);
    free(t->total);
    free(t->frames);
    memset(t, 0, sizeof(*t));
}
