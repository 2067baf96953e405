// SPDX-License-Identifier: MIT
// The stack trie of a profile as flame graphs draw it: subtree totals, empty subtrees pruned,
// children in a stable order, nodes in preorder.
#ifndef CRUX_FLAMETREE_H
#define CRUX_FLAMETREE_H

#include <stdint.h>

#include "profile/profile.h"

/* Node 0 is the root (the empty stack). Every other node is one profile stack with a
 * non-zero subtree total; a node's descendants follow it, so the subtree of node i is
 * [i, end[i]). Siblings are ordered by frame rank. All arrays are owned by the tree. */
struct flametree {
    uint32_t n;         /* nodes, root included */
    uint32_t *rank;     /* node -> frame rank (index into `frames`); unused for the root */
    uint32_t *depth;    /* node -> frames on its stack; root 0 */
    uint32_t *end;      /* node -> one past its last descendant */
    uint64_t *total;    /* node -> samples in its subtree */
    uint32_t nframes;   /* frames used by the kept nodes */
    uint32_t *frames;   /* rank -> profile frame id; sorted by name, file, line, kind */
    uint32_t max_depth; /* deepest node's depth */
};

/* Builds the tree of `p` into caller storage (reads `p` only). Never fails (aborts when out
 * of memory); release with flametree_fini. */
void flametree_init(struct flametree *t, const struct profile *p);
/* Releases the arrays. */
void flametree_fini(struct flametree *t);

#endif
