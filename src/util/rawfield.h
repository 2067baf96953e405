// SPDX-License-Identifier: MIT
// Fields of a structure copied from the target: unaligned-safe loads at a byte offset.
#ifndef CRUX_RAWFIELD_H
#define CRUX_RAWFIELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The 8 bytes at `p + off` as a native-endian uint64_t. */
static inline uint64_t raw_u64(const uint8_t *p, int32_t off)
{
    uint64_t v;
    memcpy(&v, p + off, sizeof(v));
    return v;
}

/* The 4 bytes at `p + off` as a native-endian int32_t. */
static inline int32_t raw_i32(const uint8_t *p, int32_t off)
{
    int32_t v;
    memcpy(&v, p + off, sizeof(v));
    return v;
}

/* Whether [addr, addr + len) lies inside a copy of [base, base + blen). Differences, not
 * sums: an address read from a torn structure may lie near the top of the address space,
 * and `addr + len` would wrap around into the copy. */
static inline bool raw_span_holds(uint64_t base, size_t blen, uint64_t addr, size_t len)
{
    return addr >= base && len <= blen && addr - base <= blen - len;
}

#endif
