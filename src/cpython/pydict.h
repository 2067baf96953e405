// SPDX-License-Identifier: MIT
// Dicts, instance attributes and ints of a CPython process, read from outside: every walk
// bounded, every object's type checked, str keys compared as bytes. Used rarely (thread
// names: at most a few times a second), never per frame.
#ifndef CRUX_PYDICT_H
#define CRUX_PYDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cpython/offsets.h"
#include "util/err.h"

#define PYDICT_MAX_ENTRIES 16384 /* entries of one dict walked (sys.modules of a big app: ~5k) */
#define PYDICT_MAX_KEY 64        /* longest str key looked up */
#define PYDICT_KEY_BATCH 512     /* key objects read per batched call */
#define PYDICT_TYPES 8           /* type objects remembered within a pass */

/* One type object as the attribute reader needs it. */
struct pydict_type {
    uint64_t addr;
    uint64_t flags;       /* tp_flags */
    int64_t basicsize;    /* tp_basicsize */
    int64_t dictoffset;   /* tp_dictoffset */
    uint64_t cached_keys; /* ht_cached_keys of a heap type (3.11+), else 0 */
};

/* The target, the types objects are checked against (0 skips a check) and scratch buffers.
 * Memos (shared keys searched, types read) hold within one pass: pydict_pass() clears them,
 * since a freed object's address may be reused between passes. Not thread-safe. */
struct pydict {
    pid_t pid;
    const struct py_offsets *o;
    uint64_t type_dict, type_str, type_long;
    uint8_t *entries; /* one keys object's entries (grows to PYDICT_MAX_ENTRIES * 24 bytes) */
    size_t entries_cap;
    uint8_t *keyheads; /* PYDICT_KEY_BATCH key object heads */
    uint8_t *values;   /* a split table's values and their header (grown as needed) */
    size_t values_cap;
    uint64_t memo_keys; /* the last shared keys object searched with values */
    int64_t memo_index; /* where the key was (-1: absent) */
    char memo_key[PYDICT_MAX_KEY + 1];
    struct pydict_type types[PYDICT_TYPES];
    size_t ntypes;
    uint64_t reads; /* system calls made, for cost figures */
};

/* One item: the addresses of its key and value, and the stored hash (0 where the table keeps
 * none: 3.11+ str-only and split tables). */
struct pydict_item {
    uint64_t key, value;
    int64_t hash;
};

/* A keys object as parsed from a copy of its header. */
struct pydict_keys {
    uint64_t nentries;   /* entries used (live or deleted), capped by PYDICT_MAX_ENTRIES */
    uint64_t entries;    /* bytes from the keys object to its first entry */
    uint32_t entry_size; /* 24: {hash, key, value}; 16: {key, value} (3.11+ str-only, split) */
    bool split;          /* 3.11+ DICT_KEYS_SPLIT: the values live apart (ma_values, inline) */
};

/* Initializes `d` for process `pid` (buffers allocated here; pydict_fini frees them). */
void pydict_init(struct pydict *d, pid_t pid, const struct py_offsets *o, uint64_t type_dict,
                 uint64_t type_str, uint64_t type_long);
void pydict_fini(struct pydict *d);
/* Starts a pass: forgets the memos (objects may have been freed since the last one). */
void pydict_pass(struct pydict *d);

/* Parses the first o->dk_indices bytes of a keys object. ERR_CORRUPT when the sizes are
 * implausible (a table over 2^30 slots, more entries than slots, an unknown kind);
 * ERR_TOO_LARGE when it has more than PYDICT_MAX_ENTRIES entries. */
int pydict_parse_keys(const struct py_offsets *o, const uint8_t *head,
                      struct pydict_keys *out) MUST_CHECK;
/* Entry `i` of a copy of the entries of keys `k` (value 0 in split tables). */
void pydict_entry(const struct pydict_keys *k, const uint8_t *entries, uint64_t i,
                  struct pydict_item *out);

/* Reads the items of the dict at `dict` into `out` (at most `cap`; *n gets the number
 * written), values of split tables included. ERR_CORRUPT when it is not a dict, ERR_READ
 * when unreadable, ERR_TOO_LARGE when it has more than `cap` items. */
int pydict_items(struct pydict *d, uint64_t dict, struct pydict_item *out, size_t cap,
                 size_t *n) MUST_CHECK;
/* The value stored under the str key `key` (NUL-terminated, ASCII, at most PYDICT_MAX_KEY
 * bytes) in the dict at `dict`. ERR_NOT_FOUND when absent. */
int pydict_get_str(struct pydict *d, uint64_t dict, const char *key, uint64_t *value) MUST_CHECK;
/* The value of attribute `key` in the instance dict of the object at `obj`: its __dict__
 * (tp_dictoffset), its managed dict or values (3.11, 3.12), or its inline values (3.13).
 * ERR_NOT_FOUND when the object has no such attribute in its dict. */
int pydict_attr_str(struct pydict *d, uint64_t obj, const char *key, uint64_t *value) MUST_CHECK;
/* Reads the int object at `addr` (0 <= value < 2^63). ERR_CORRUPT when it is not an int, is
 * negative or does not fit. */
int pydict_read_int(struct pydict *d, uint64_t addr, uint64_t *out) MUST_CHECK;

#endif
