// SPDX-License-Identifier: MIT
// String interning with an open-addressing index of ids.
#include "profile/strtab.h"

#include <stdlib.h>
#include <string.h>

#include "util/hmap.h"
#include "util/xalloc.h"

void strtab_init(struct strtab *t)
{
    memset(t, 0, sizeof(*t));
    (void)strtab_intern(t, "", 0);
}

void strtab_fini(struct strtab *t)
{
    for (uint32_t i = 0; i < t->len; i++)
        free(t->strs[i]);
    free(t->strs);
    free(t->lens);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

static uint32_t *find_slot(const struct strtab *t, const char *s, size_t n, uint64_t h)
{
    uint32_t mask = t->nslots - 1;
    uint32_t i = (uint32_t)h & mask;
    for (;;) {
        uint32_t v = t->slots[i];
        if (!v)
            return &t->slots[i];
        uint32_t id = v - 1;
        if (t->lens[id] == n && memcmp(t->strs[id], s, n) == 0)
            return &t->slots[i];
        i = (i + 1) & mask;
    }
}

static void rehash(struct strtab *t)
{
    free(t->slots);
    t->nslots = t->nslots ? t->nslots * 2 : 256;
    t->slots = xcalloc(t->nslots, sizeof(*t->slots));
    for (uint32_t id = 0; id < t->len; id++) {
        uint64_t h = hmap_hash_bytes(t->strs[id], t->lens[id]);
        *find_slot(t, t->strs[id], t->lens[id], h) = id + 1;
    }
}

uint32_t strtab_intern(struct strtab *t, const char *s, size_t n)
{
    if ((t->len + 1) * 4 >= t->nslots * 3)
        rehash(t);
    uint64_t h = hmap_hash_bytes(s, n);
    uint32_t *slot = find_slot(t, s, n, h);
    if (*slot)
        return *slot - 1;
    if (t->len == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 256;
        t->strs = xrealloc(t->strs, t->cap * sizeof(*t->strs));
        t->lens = xrealloc(t->lens, t->cap * sizeof(*t->lens));
    }
    uint32_t id = t->len++;
    t->strs[id] = xstrndup(s, n);
    t->lens[id] = (uint32_t)n;
    *slot = id + 1;
    return id;
}

const char *strtab_get(const struct strtab *t, uint32_t id)
{
    return id < t->len ? t->strs[id] : "";
}

uint32_t strtab_len(const struct strtab *t, uint32_t id)
{
    return id < t->len ? t->lens[id] : 0;
}
