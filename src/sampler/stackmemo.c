// SPDX-License-Identifier: MIT
#include "sampler/stackmemo.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

void stackmemo_init(struct stackmemo *m)
{
    memset(m, 0, sizeof(*m));
}

void stackmemo_fini(struct stackmemo *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].key);
        free(m->v[i].node);
    }
    free(m->v);
    memset(m, 0, sizeof(*m));
}

void stackmemo_forget(struct stackmemo *m)
{
    for (size_t i = 0; i < m->n; i++) {
        m->v[i].n = 0;
        m->v[i].owner[0] = m->v[i].owner[1] = 0;
    }
}

struct stackmemo_slot *stackmemo_begin(struct stackmemo *m, size_t i, uint64_t a, uint64_t b,
                                       uint32_t root)
{
    if (i >= m->n) {
        size_t n = i + 1 > 2 * m->n ? i + 1 : 2 * m->n;
        m->v = xrealloc(m->v, n * sizeof(*m->v));
        memset(m->v + m->n, 0, (n - m->n) * sizeof(*m->v));
        m->n = n;
    }
    struct stackmemo_slot *s = &m->v[i];
    if (s->owner[0] != a || s->owner[1] != b || s->root != root) {
        s->owner[0] = a;
        s->owner[1] = b;
        s->root = root;
        s->n = 0;
    }
    return s;
}

bool stackmemo_hit(struct stackmemo *m, struct stackmemo_slot *s, uint32_t depth, uint64_t key,
                   uint32_t *node)
{
    if (depth < s->n && s->key[depth] == key) {
        *node = s->node[depth];
        m->hits++;
        return true;
    }
    m->misses++;
    return false;
}

void stackmemo_put(struct stackmemo_slot *s, uint32_t depth, uint64_t key, uint32_t node)
{
    if (depth > s->n)
        return; /* frames come in order: a gap would be a stack that never was */
    if (depth >= s->cap) {
        uint32_t cap = s->cap ? 2 * s->cap : 64;
        while (cap <= depth)
            cap *= 2;
        s->key = xrealloc(s->key, cap * sizeof(*s->key));
        s->node = xrealloc(s->node, cap * sizeof(*s->node));
        s->cap = cap;
    }
    s->key[depth] = key;
    s->node[depth] = node;
    s->n = depth + 1;
}

void stackmemo_end(struct stackmemo_slot *s, uint32_t depth)
{
    if (depth < s->n)
        s->n = depth;
}
