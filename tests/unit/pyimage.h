// SPDX-License-Identifier: MIT
// Test-only builders of CPython object images in this process's own memory (strs, ints, dict
// keys, dicts, values, type objects), laid out with the generated offsets of one version:
// pydict and threadnames read them with process_vm_readv on our own pid, as they read a
// target. Static functions: each unit test that includes this is one translation unit.
#ifndef CRUX_TEST_PYIMAGE_H
#define CRUX_TEST_PYIMAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpython/offsets.h"

/* Not every test uses every builder. */
#define PYIMAGE_FN static __attribute__((unused))

/* A bump arena for the images: addresses in it are real, so pydict reads them with
 * process_vm_readv on our own pid like it reads a target. */
static _Alignas(64) uint8_t arena[1 << 18];
static size_t used;

PYIMAGE_FN uint8_t *alloc(size_t n)
{
    used = (used + 15) & ~(size_t)15;
    uint8_t *p = arena + used;
    used += n;
    if (used > sizeof(arena))
        abort();
    memset(p, 0, n);
    return p;
}

PYIMAGE_FN uint64_t addr(const void *p)
{
    return (uint64_t)(uintptr_t)p;
}

PYIMAGE_FN void put64(uint8_t *p, int32_t off, uint64_t v)
{
    memcpy(p + off, &v, 8);
}

/* Stand-ins for the type objects the reader checks against. */
static _Alignas(16) uint8_t type_dict[64], type_str[64], type_long[64];

static const struct py_offsets *O; /* the version the images are laid out for */

/* A compact ASCII str. */
PYIMAGE_FN uint64_t mk_str(const char *s)
{
    size_t n = strlen(s);
    uint8_t *p = alloc((size_t)O->str_ascii_size + n + 1);
    put64(p, 0, 1);
    put64(p, O->ob_type, addr(type_str));
    put64(p, O->str_length, n);
    put64(p, O->str_length + 8, (uint64_t)-1); /* hash unset */
    uint32_t state = (1u << 2) | (1u << 5) | (1u << 6) | (O->minor <= 11 ? 1u << 7 : 0);
    memcpy(p + O->str_state, &state, 4);
    memcpy(p + O->str_ascii_size, s, n + 1);
    return addr(p);
}

/* A compact Latin-1 str (kind 1, not ASCII): the data follows PyCompactUnicodeObject. */
PYIMAGE_FN uint64_t mk_str_latin1(const char *s)
{
    size_t n = strlen(s);
    uint8_t *p = alloc((size_t)O->str_compact_size + n + 1);
    put64(p, 0, 1);
    put64(p, O->ob_type, addr(type_str));
    put64(p, O->str_length, n);
    put64(p, O->str_length + 8, (uint64_t)-1);
    uint32_t state = (1u << 2) | (1u << 5) | (O->minor <= 11 ? 1u << 7 : 0);
    memcpy(p + O->str_state, &state, 4);
    memcpy(p + O->str_compact_size, s, n + 1);
    return addr(p);
}

/* A non-negative int of up to three 30-bit digits. */
PYIMAGE_FN uint64_t mk_int(uint64_t v, uint64_t type)
{
    uint8_t *p = alloc((size_t)O->long_digits + 12);
    put64(p, O->ob_type, type);
    uint64_t nd = 0;
    for (uint64_t x = v; x; x >>= 30) {
        uint32_t dg = (uint32_t)(x & ((1u << 30) - 1));
        memcpy(p + O->long_digits + 4 * nd, &dg, 4);
        nd++;
    }
    put64(p, O->long_tag, O->minor >= 12 ? (nd << 3) | (v == 0 ? 1 : 0) : nd);
    return addr(p);
}

struct ent {
    uint64_t hash, key, value;
};

/* A keys object of 2^log2 slots holding `n` entries, laid out for O's version: `kind` 0
 * general, 1 str-only, 2 split (3.11+; ignored on 3.8-3.10, where entries are general). */
PYIMAGE_FN uint64_t mk_keys(unsigned log2, int kind, const struct ent *e, size_t n)
{
    size_t size = (size_t)1 << log2;
    size_t ix = log2 <= 7 ? 1 : log2 <= 15 ? 2 : 4;
    bool general = O->dk_kind < 0 || kind == 0;
    size_t esz = general ? 24 : 16;
    uint8_t *p = alloc((size_t)O->dk_indices + size * ix + n * esz);
    put64(p, 0, 1);
    if (O->dk_size >= 0) {
        put64(p, O->dk_size, size);
    } else {
        p[O->dk_log2_size] = (uint8_t)log2;
        p[O->dk_log2_index_bytes] = (uint8_t)(log2 + (ix == 1 ? 0 : ix == 2 ? 1 : 2));
        p[O->dk_kind] = (uint8_t)kind;
    }
    put64(p, O->dk_nentries, n);
    memset(p + O->dk_indices, 0xff, size * ix); /* DKIX_EMPTY: never read */
    uint8_t *ents = p + O->dk_indices + size * ix;
    for (size_t i = 0; i < n; i++) {
        uint8_t *q = ents + i * esz;
        if (general) {
            put64(q, 0, e[i].hash);
            put64(q, 8, e[i].key);
            put64(q, 16, e[i].value);
        } else {
            put64(q, 0, e[i].key);
            put64(q, 8, e[i].value);
        }
    }
    return addr(p);
}

/* Values for a split table: 3.13 {capacity, size, embedded, valid} then the pointers. */
PYIMAGE_FN uint64_t mk_values(const uint64_t *v, size_t n, uint8_t valid)
{
    uint8_t *p = alloc((size_t)O->dv_values + 8 * (n + 1));
    if (O->dv_valid >= 0) {
        p[0] = (uint8_t)(n + 1);
        p[1] = (uint8_t)n;
        p[O->dv_valid] = valid;
    }
    for (size_t i = 0; i < n; i++)
        put64(p, O->dv_values + 8 * (int32_t)i, v[i]);
    return addr(p);
}

PYIMAGE_FN uint64_t mk_dict(uint64_t keys, uint64_t values, uint64_t nused)
{
    uint8_t *p = alloc((size_t)O->dict_size);
    put64(p, 0, 1);
    put64(p, O->ob_type, addr(type_dict));
    put64(p, O->dict_used, nused);
    put64(p, O->dict_keys, keys);
    put64(p, O->dict_values, values);
    return addr(p);
}

/* A type object with the given flags, dict offset and (heap types) shared keys. */
PYIMAGE_FN uint64_t mk_type(uint64_t flags, int64_t dictoffset, int64_t basicsize, uint64_t keys)
{
    uint8_t *p = alloc(1024);
    put64(p, O->tp_flags, flags);
    put64(p, O->tp_dictoffset, (uint64_t)dictoffset);
    put64(p, O->tp_basicsize, (uint64_t)basicsize);
    if (O->ht_cached_keys >= 0)
        put64(p, O->ht_cached_keys, keys);
    return addr(p);
}

#endif
