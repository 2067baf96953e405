// SPDX-License-Identifier: MIT
// Dicts read from outside. Layouts [Objects/dict-common.h 3.8-3.10, Include/internal/
// pycore_dict.h 3.11+]: PyDictObject {ma_used, ma_keys, ma_values}; the keys object's header,
// then the hash indices (1, 2, 4 or 8 bytes each by table size), then the entries in
// insertion order. Entries are {hash, key, value} (3.11+ DICT_KEYS_GENERAL and all of
// 3.8-3.10) or {key, value} (3.11+ str-only and split tables). A split table keeps its values
// apart, indexed like the entries: ma_values, or on 3.11+ an object's own values. We never
// hash: a lookup walks the entries and compares each str key's bytes (str hashes are salted
// per process), so it costs one read for the entries and one batched read of the keys.
#include "cpython/pydict.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "target/mem.h"
#include "util/rawfield.h"
#include "util/xalloc.h"

#define ENTRY_MAX 24     /* sizeof(PyDictKeyEntry); the generator checks the layouts */
#define LOG2_SIZE_MAX 30 /* a table of 2^30 slots is already 8 GiB of entries */

/* tp_flags bits [Include/object.h] */
#define TPF_INLINE_VALUES (1ULL << 2) /* 3.13+ */
#define TPF_MANAGED_DICT (1ULL << 4)  /* 3.11+ */
#define TPF_HEAPTYPE (1ULL << 9)

/* PyASCIIObject.state bits (CPYTHON.md section 6): kind 2-4, compact 5, ascii 6. */
#define STATE_COMPACT_ASCII ((1u << 5) | (1u << 6))

#define KIND_SPLIT 2 /* DictKeysKind DICT_KEYS_SPLIT, 3.11+ */

void pydict_init(struct pydict *d, pid_t pid, const struct py_offsets *o, uint64_t type_dict,
                 uint64_t type_str, uint64_t type_long)
{
    memset(d, 0, sizeof(*d));
    d->pid = pid;
    d->o = o;
    d->type_dict = type_dict;
    d->type_str = type_str;
    d->type_long = type_long;
    /* The entries and values buffers grow with the largest dict read (sys.modules, some
     * hundred KB at most); a key head is sizeof(PyASCIIObject) and the key's bytes. */
    d->keyheads = xmalloc((size_t)PYDICT_KEY_BATCH * (size_t)(o->str_ascii_size + PYDICT_MAX_KEY));
    pydict_pass(d);
}

void pydict_fini(struct pydict *d)
{
    free(d->entries);
    free(d->keyheads);
    free(d->values);
    memset(d, 0, sizeof(*d));
}

void pydict_pass(struct pydict *d)
{
    d->memo_keys = 0;
    d->memo_index = -1;
    d->memo_key[0] = '\0';
    d->ntypes = 0;
}

/* Grows `*buf` to at least `need` bytes (bounded by the callers' caps). */
static void reserve(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t n = *cap ? *cap : 1024;
    while (n < need)
        n *= 2;
    *buf = xrealloc(*buf, n);
    *cap = n;
}

static int rd(struct pydict *d, uint64_t addr, void *dst, size_t len)
{
    d->reads++;
    if (!addr || (addr & 7))
        return ERR_CORRUPT;
    return mem_read(d->pid, addr, dst, len);
}

/* --- Keys objects ----------------------------------------------------------------------- */

/* Bytes per hash index for a table of 2^log2 slots [dictobject.c DK_IXSIZE]. */
static unsigned index_bytes(unsigned log2)
{
    return log2 <= 7 ? 1 : log2 <= 15 ? 2 : log2 <= 31 ? 4 : 8;
}

int pydict_parse_keys(const struct py_offsets *o, const uint8_t *head, struct pydict_keys *out)
{
    unsigned log2;
    memset(out, 0, sizeof(*out));
    out->entry_size = ENTRY_MAX;
    if (o->dk_size >= 0) {
        /* 3.8-3.10: Py_ssize_t dk_size, a power of two. */
        uint64_t size = raw_u64(head, o->dk_size);
        if (size < 8 || (size & (size - 1)) || size > (1ULL << LOG2_SIZE_MAX))
            return ERR_CORRUPT;
        log2 = (unsigned)__builtin_ctzll(size);
        out->entries = (uint64_t)o->dk_indices + (size * index_bytes(log2));
    } else {
        /* 3.11+: log2 of the size and of the index bytes, which must agree. */
        log2 = head[o->dk_log2_size];
        unsigned log2_bytes = head[o->dk_log2_index_bytes];
        unsigned kind = head[o->dk_kind];
        if (log2 < 3 || log2 > LOG2_SIZE_MAX || kind > KIND_SPLIT ||
            log2_bytes != log2 + (unsigned)__builtin_ctz(index_bytes(log2)))
            return ERR_CORRUPT;
        out->entries = (uint64_t)o->dk_indices + (1ULL << log2_bytes);
        out->entry_size = kind == 0 ? ENTRY_MAX : 16;
        out->split = kind == KIND_SPLIT;
    }
    int64_t n = (int64_t)raw_u64(head, o->dk_nentries);
    if (n < 0 || (uint64_t)n > (1ULL << log2))
        return ERR_CORRUPT;
    if (n > PYDICT_MAX_ENTRIES)
        return ERR_TOO_LARGE;
    out->nentries = (uint64_t)n;
    return 0;
}

void pydict_entry(const struct pydict_keys *k, const uint8_t *entries, uint64_t i,
                  struct pydict_item *out)
{
    const uint8_t *e = entries + i * k->entry_size;
    if (k->entry_size == ENTRY_MAX) {
        out->hash = (int64_t)raw_u64(e, 0);
        out->key = raw_u64(e, 8);
        out->value = raw_u64(e, 16);
    } else {
        out->hash = 0;
        out->key = raw_u64(e, 0);
        out->value = raw_u64(e, 8);
    }
}

/* Reads the keys object at `keys` and its entries (into d->entries). `split`: its values
 * live apart (3.8-3.10 know it only from the dict's ma_values). */
static int read_keys(struct pydict *d, uint64_t keys, bool split, struct pydict_keys *k)
{
    uint8_t head[PY_KEYS_HEAD_MAX];
    int rc = rd(d, keys, head, (size_t)d->o->dk_indices);
    if (!rc)
        rc = pydict_parse_keys(d->o, head, k);
    if (rc)
        return rc;
    if (d->o->dk_kind >= 0 && k->split != split)
        return ERR_CORRUPT; /* 3.11+: split keys always come with values, others never */
    k->split = split;
    size_t len = k->nentries * k->entry_size;
    reserve(&d->entries, &d->entries_cap, len);
    return len ? rd(d, keys + k->entries, d->entries, len) : 0;
}

/* --- Str keys --------------------------------------------------------------------------- */

/* Whether a copy of a str object's head (`len` + the ASCII header bytes) holds `key`. */
static bool key_matches(const struct pydict *d, const uint8_t *head, const char *key, size_t len)
{
    const struct py_offsets *o = d->o;
    uint32_t state;
    memcpy(&state, head + o->str_state, sizeof(state));
    return (!d->type_str || raw_u64(head, o->ob_type) == d->type_str) &&
           (state & STATE_COMPACT_ASCII) == STATE_COMPACT_ASCII && ((state >> 2) & 7) == 1 &&
           raw_u64(head, o->str_length) == len && memcmp(head + o->str_ascii_size, key, len) == 0;
}

/* Reads the heads of entries [from, to)'s keys in one call; *index gets the first entry whose
 * key is `key`, or stays -1. */
static int match_batch(struct pydict *d, const struct pydict_keys *k, uint64_t from, uint64_t to,
                       const char *key, size_t len, int64_t *index)
{
    struct mem_span sp[PYDICT_KEY_BATCH];
    uint64_t at[PYDICT_KEY_BATCH];
    uint8_t ok[PYDICT_KEY_BATCH];
    size_t head = (size_t)d->o->str_ascii_size + len, n = 0;
    for (uint64_t i = from; i < to; i++) {
        struct pydict_item it;
        pydict_entry(k, d->entries, i, &it);
        if (!it.key || (it.key & 7) || (!k->split && !it.value))
            continue; /* empty, deleted (3.8-3.10: the dummy key has no value) */
        sp[n] = (struct mem_span){it.key, d->keyheads + n * head, head};
        at[n++] = i;
    }
    if (!n)
        return 0;
    d->reads++;
    int bad = mem_readv(d->pid, sp, n, ok);
    if (bad < 0)
        return bad;
    for (size_t j = 0; j < n; j++) {
        if (ok[j] && key_matches(d, d->keyheads + j * head, key, len)) {
            *index = (int64_t)at[j];
            return 0;
        }
    }
    return 0;
}

/* The entry of keys `keys` holding str key `key`, -1 when none; the entries are in
 * d->entries afterwards unless the memo answered. */
static int find_key(struct pydict *d, uint64_t keys, bool split, struct pydict_keys *k,
                    const char *key, int64_t *index)
{
    size_t len = strlen(key);
    if (len > PYDICT_MAX_KEY)
        return ERR_ARG;
    int rc = read_keys(d, keys, split, k);
    if (rc)
        return rc;
    *index = -1;
    for (uint64_t i = 0; i < k->nentries && *index < 0 && !rc; i += PYDICT_KEY_BATCH) {
        uint64_t to = i + PYDICT_KEY_BATCH < k->nentries ? i + PYDICT_KEY_BATCH : k->nentries;
        rc = match_batch(d, k, i, to, key, len, index);
    }
    return rc;
}

/* --- Dicts ------------------------------------------------------------------------------ */

/* Reads the dict header at `dict`: its keys and values (0 unless split). */
static int read_dict(struct pydict *d, uint64_t dict, uint64_t *keys, uint64_t *values)
{
    const struct py_offsets *o = d->o;
    uint8_t head[PY_DICT_HEAD_MAX];
    int rc = rd(d, dict, head, (size_t)o->dict_size);
    if (rc)
        return rc;
    if ((d->type_dict && raw_u64(head, o->ob_type) != d->type_dict) ||
        (int64_t)raw_u64(head, o->dict_used) < 0)
        return ERR_CORRUPT;
    *keys = raw_u64(head, o->dict_keys);
    *values = raw_u64(head, o->dict_values);
    return *keys ? 0 : ERR_CORRUPT;
}

/* Value `i` of the values at `values` (a split table's or an object's). */
static int read_value(struct pydict *d, uint64_t values, int64_t i, uint64_t *value)
{
    const struct py_offsets *o = d->o;
    if (o->dv_valid >= 0) {
        /* 3.13: {capacity, size, embedded, valid} before the pointers. */
        uint8_t cap = 0;
        int rc = rd(d, values, &cap, 1);
        if (rc)
            return rc;
        if (i >= cap)
            return ERR_CORRUPT;
    }
    return rd(d, values + (uint64_t)o->dv_values + 8 * (uint64_t)i, value, 8);
}

/* Reads the first `n` values at `values` into d->values (its header first on 3.13). */
static int read_values(struct pydict *d, uint64_t values, uint64_t n)
{
    size_t len = (size_t)d->o->dv_values + 8 * n;
    reserve(&d->values, &d->values_cap, len);
    int rc = rd(d, values, d->values, len);
    if (!rc && d->o->dv_valid >= 0 && d->values[0] < n)
        rc = ERR_CORRUPT; /* 3.13: more entries than the values' capacity */
    return rc;
}

/* The value of str key `key` in keys `keys` whose values are at `values` when split. */
static int keys_get(struct pydict *d, uint64_t keys, uint64_t values, const char *key,
                    uint64_t *value)
{
    struct pydict_keys k = {0};
    int64_t idx;
    bool memo = values && keys == d->memo_keys && strcmp(key, d->memo_key) == 0;
    if (memo) {
        /* A shared (split) keys object only grows while it lives: an index found in this
         * pass still holds. */
        idx = d->memo_index;
    } else {
        int rc = find_key(d, keys, values != 0, &k, key, &idx);
        if (rc)
            return rc;
        if (values) {
            d->memo_keys = keys;
            d->memo_index = idx;
            snprintf(d->memo_key, sizeof(d->memo_key), "%s", key);
        }
    }
    if (idx < 0)
        return ERR_NOT_FOUND;
    int rc = 0;
    if (values) {
        rc = read_value(d, values, idx, value);
    } else {
        struct pydict_item it;
        pydict_entry(&k, d->entries, (uint64_t)idx, &it);
        *value = it.value;
    }
    if (rc)
        return rc;
    return *value ? 0 : ERR_NOT_FOUND; /* a split slot not set on this object */
}

int pydict_get_str(struct pydict *d, uint64_t dict, const char *key, uint64_t *value)
{
    uint64_t keys, values;
    int rc = read_dict(d, dict, &keys, &values);
    return rc ? rc : keys_get(d, keys, values, key, value);
}

int pydict_items(struct pydict *d, uint64_t dict, struct pydict_item *out, size_t cap, size_t *n)
{
    uint64_t keys, values;
    struct pydict_keys k;
    *n = 0;
    int rc = read_dict(d, dict, &keys, &values);
    if (!rc)
        rc = read_keys(d, keys, values != 0, &k);
    if (!rc && values && k.nentries)
        rc = read_values(d, values, k.nentries);
    if (rc)
        return rc;
    for (uint64_t i = 0; i < k.nentries; i++) {
        struct pydict_item it;
        pydict_entry(&k, d->entries, i, &it);
        if (!it.key)
            continue;
        if (values)
            it.value = raw_u64(d->values, d->o->dv_values + 8 * (int32_t)i);
        if (!it.value)
            continue;
        if (*n == cap)
            return ERR_TOO_LARGE;
        out[(*n)++] = it;
    }
    return 0;
}

/* --- Instance attributes ---------------------------------------------------------------- */

/* The type at `addr`, read once per pass. */
static int type_of(struct pydict *d, uint64_t addr, const struct pydict_type **out)
{
    const struct py_offsets *o = d->o;
    for (size_t i = 0; i < d->ntypes; i++)
        if (d->types[i].addr == addr) {
            *out = &d->types[i];
            return 0;
        }
    int32_t end = o->tp_flags > o->tp_dictoffset ? o->tp_flags : o->tp_dictoffset;
    end = (end > o->tp_basicsize ? end : o->tp_basicsize) + 8;
    uint8_t head[PY_TYPE_HEAD_MAX];
    int rc = rd(d, addr, head, (size_t)end);
    if (rc)
        return rc;
    struct pydict_type t = {.addr = addr,
                            .flags = raw_u64(head, o->tp_flags),
                            .basicsize = (int64_t)raw_u64(head, o->tp_basicsize),
                            .dictoffset = (int64_t)raw_u64(head, o->tp_dictoffset)};
    if (t.basicsize < 16 || t.basicsize > (1 << 20) || t.dictoffset > (1 << 20) ||
        t.dictoffset < -(1 << 20))
        return ERR_CORRUPT;
    if (o->ht_cached_keys >= 0 && (t.flags & TPF_HEAPTYPE)) {
        rc = rd(d, addr + (uint64_t)o->ht_cached_keys, &t.cached_keys, 8);
        if (rc)
            return rc;
    }
    size_t slot = d->ntypes < PYDICT_TYPES ? d->ntypes++ : PYDICT_TYPES - 1;
    d->types[slot] = t;
    *out = &d->types[slot];
    return 0;
}

/* 3.11+: an object of a type with a managed dict keeps, in the words before its header, a
 * pointer to its values (3.11: obj - 32) and to its dict (obj - 24); 3.12 one tagged word at
 * obj - 24 (the dict, or the values - 1: low bit set); 3.13 the dict at obj - 24 and
 * the values inline after the header when the type has Py_TPFLAGS_INLINE_VALUES, valid
 * while their `valid` byte is set [Include/internal/pycore_object.h]. The values' keys are
 * the type's shared ht_cached_keys. */
static int managed_attr(struct pydict *d, uint64_t obj, const struct pydict_type *t,
                        const char *key, uint64_t *value)
{
    const struct py_offsets *o = d->o;
    uint64_t pre[2]; /* obj - 32, obj - 24 */
    int rc = rd(d, obj - 32, pre, sizeof(pre));
    if (rc)
        return rc;
    uint64_t values = 0, dict = pre[1];
    if (o->minor == 11) {
        values = pre[0];
    } else if (o->minor == 12) {
        values = (dict & 1) ? dict + 1 : 0;
        dict = (dict & 1) ? 0 : dict;
    } else if (t->flags & TPF_INLINE_VALUES) {
        uint64_t inl = obj + (uint64_t)t->basicsize;
        uint8_t head[8]; /* capacity, size, embedded, valid */
        rc = rd(d, inl, head, sizeof(head));
        if (rc)
            return rc;
        values = head[o->dv_valid] ? inl : 0;
    }
    if (values) {
        if (!t->cached_keys)
            return ERR_CORRUPT;
        rc = keys_get(d, t->cached_keys, values, key, value);
        if (rc != ERR_NOT_FOUND || !dict)
            return rc;
    }
    return dict ? pydict_get_str(d, dict, key, value) : ERR_NOT_FOUND;
}

int pydict_attr_str(struct pydict *d, uint64_t obj, const char *key, uint64_t *value)
{
    const struct py_offsets *o = d->o;
    uint64_t type = 0;
    int rc = rd(d, obj + (uint64_t)o->ob_type, &type, 8);
    const struct pydict_type *t;
    if (!rc)
        rc = type_of(d, type, &t);
    if (rc)
        return rc;
    if (o->minor >= 11 && (t->flags & TPF_MANAGED_DICT))
        return managed_attr(d, obj, t, key, value);
    if (t->dictoffset <= 0)
        return ERR_NOT_FOUND; /* no __dict__, or a variable-size object's (not read) */
    uint64_t dict = 0;
    rc = rd(d, obj + (uint64_t)t->dictoffset, &dict, 8);
    if (rc)
        return rc;
    return dict ? pydict_get_str(d, dict, key, value) : ERR_NOT_FOUND;
}

/* --- Ints ------------------------------------------------------------------------------- */

int pydict_read_int(struct pydict *d, uint64_t addr, uint64_t *out)
{
    const struct py_offsets *o = d->o;
    uint8_t head[PY_LONG_HEAD_MAX];
    size_t len = (size_t)o->long_digits + 12; /* up to three digits */
    int rc = rd(d, addr, head, len);
    if (rc) {
        len = (size_t)o->long_digits + 4; /* a one-digit int ending before an unmapped page */
        rc = rd(d, addr, head, len);
    }
    if (rc)
        return rc;
    if (d->type_long && raw_u64(head, o->ob_type) != d->type_long)
        return ERR_CORRUPT;
    uint64_t tag = raw_u64(head, o->long_tag), ndigits;
    if (o->minor >= 12) {
        /* lv_tag: digits << 3 | sign (0 positive, 1 zero, 2 negative) [pycore_long.h]. */
        if ((tag & 3) == 2 || (tag & 3) == 3)
            return ERR_CORRUPT;
        ndigits = tag >> 3;
    } else {
        if ((int64_t)tag < 0)
            return ERR_CORRUPT;
        ndigits = tag;
    }
    if (ndigits * 4 + (size_t)o->long_digits > len)
        return ERR_CORRUPT;
    uint64_t v = 0;
    for (uint64_t i = 0; i < ndigits; i++) {
        uint32_t dg;
        memcpy(&dg, head + o->long_digits + 4 * i, 4);
        if (dg >> o->long_shift || (i == 2 && dg >> 3))
            return ERR_CORRUPT; /* not a digit, or past 2^63 */
        v |= (uint64_t)dg << (o->long_shift * (int32_t)i);
    }
    *out = v;
    return 0;
}
