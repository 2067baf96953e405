// SPDX-License-Identifier: MIT
// Open-addressing (linear probing) hash map of u64 -> u64; deletion is not needed by crux.
#include "util/hmap.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

void hmap_init(struct hmap *m)
{
    memset(m, 0, sizeof(*m));
}

void hmap_fini(struct hmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

void hmap_clear(struct hmap *m)
{
    if (m->keys)
        memset(m->keys, 0, m->cap * sizeof(*m->keys));
    m->len = 0;
}

uint64_t hmap_hash64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

uint64_t hmap_hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    h = hmap_hash64(h ^ n);
    return h ? h : 1;
}

static size_t find(const struct hmap *m, uint64_t key)
{
    size_t mask = m->cap - 1;
    size_t i = hmap_hash64(key) & mask;
    while (m->keys[i] && m->keys[i] != key)
        i = (i + 1) & mask;
    return i;
}

static void grow(struct hmap *m)
{
    size_t ocap = m->cap;
    uint64_t *ok = m->keys;
    uint64_t *ov = m->vals;
    m->cap = ocap ? ocap * 2 : 64;
    m->keys = xcalloc(m->cap, sizeof(*m->keys));
    m->vals = xmalloc(m->cap * sizeof(*m->vals));
    for (size_t i = 0; i < ocap; i++) {
        if (ok[i]) {
            size_t j = find(m, ok[i]);
            m->keys[j] = ok[i];
            m->vals[j] = ov[i];
        }
    }
    free(ok);
    free(ov);
}

bool hmap_get(const struct hmap *m, uint64_t key, uint64_t *val)
{
    if (!m->cap)
        return false;
    size_t i = find(m, key);
    if (!m->keys[i])
        return false;
    if (val)
        *val = m->vals[i];
    return true;
}

uint64_t *hmap_slot(struct hmap *m, uint64_t key, uint64_t dflt, bool *inserted)
{
    if ((m->len + 1) * 4 >= m->cap * 3)
        grow(m);
    size_t i = find(m, key);
    bool fresh = m->keys[i] == 0;
    if (fresh) {
        m->keys[i] = key;
        m->vals[i] = dflt;
        m->len++;
    }
    if (inserted)
        *inserted = fresh;
    return &m->vals[i];
}

void hmap_put(struct hmap *m, uint64_t key, uint64_t val)
{
    *hmap_slot(m, key, val, NULL) = val;
}
