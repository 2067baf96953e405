// SPDX-License-Identifier: MIT
// Open-addressing hash map from non-zero 64-bit keys to 64-bit values.
#ifndef CRUX_HMAP_H
#define CRUX_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hmap {
    uint64_t *keys; /* 0 = empty slot */
    uint64_t *vals;
    size_t cap; /* power of two */
    size_t len;
};

/* Initializes an empty map in caller storage. */
void hmap_init(struct hmap *m);
/* Releases the memory. */
void hmap_fini(struct hmap *m);
/* Removes every entry and keeps the memory. */
void hmap_clear(struct hmap *m);
/* Looks up `key` (non-zero); returns true and stores the value in *val when present. */
bool hmap_get(const struct hmap *m, uint64_t key, uint64_t *val);
/* Inserts or replaces `key` (non-zero). Grows as needed (aborts on out of memory). */
void hmap_put(struct hmap *m, uint64_t key, uint64_t val);
/* Returns a pointer to the value slot of `key`, inserting `dflt` first if absent; the pointer
 * is valid until the next insertion. *inserted tells whether it was absent (may be NULL). */
uint64_t *hmap_slot(struct hmap *m, uint64_t key, uint64_t dflt, bool *inserted);
/* A 64-bit mixing function (the splitmix64 finalizer). */
uint64_t hmap_hash64(uint64_t x);
/* FNV-1a over bytes, then mixed; never returns 0. */
uint64_t hmap_hash_bytes(const void *p, size_t n);

#endif
