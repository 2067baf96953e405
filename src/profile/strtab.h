// SPDX-License-Identifier: MIT
// String interning: equal strings get one small integer id.
#ifndef CRUX_STRTAB_H
#define CRUX_STRTAB_H

#include <stddef.h>
#include <stdint.h>

struct strtab {
    char **strs;    /* id -> NUL-terminated copy, owned */
    uint32_t *lens; /* id -> length in bytes */
    uint32_t len;   /* number of strings */
    uint32_t cap;
    uint32_t *slots; /* open addressing: id + 1, 0 = empty */
    uint32_t nslots; /* power of two */
};

/* Initializes an empty table; id 0 is always the empty string. */
void strtab_init(struct strtab *t);
/* Releases every string. */
void strtab_fini(struct strtab *t);
/* Returns the id of the `n` bytes at `s`, copying them on first sight. Never fails. */
uint32_t strtab_intern(struct strtab *t, const char *s, size_t n);
/* Returns the string of `id` (NUL-terminated, owned by the table); "" for an unknown id. */
const char *strtab_get(const struct strtab *t, uint32_t id);
/* Returns the length in bytes of string `id`. */
uint32_t strtab_len(const struct strtab *t, uint32_t id);

#endif
