// SPDX-License-Identifier: MIT
// Decoding of co_lnotab, the 3.10 co_linetable and the 3.11+ location table into line runs
// (3.11+: line and start column).
#include "cpython/linetable.h"

#include <stdlib.h>

#include "util/xalloc.h"

#define MAX_RUNS 1000000

/* 3.11+ location-entry kinds (enum _PyCodeLocationInfoKind, Include/cpython/code.h). */
enum {
    LOC_ONE_LINE0 = 10,
    LOC_ONE_LINE2 = 12,
    LOC_NO_COLUMNS = 13,
    LOC_LONG = 14,
    LOC_NONE = 15,
};

/* A growable run array being filled; adjacent runs with the same line and column are merged. */
struct runs {
    struct line_run *v;
    size_t n;
    size_t cap;
    uint32_t code_bytes;
};

enum linetable_format linetable_format_for(uint32_t minor)
{
    if (minor <= 9)
        return LINETABLE_LNOTAB;
    if (minor == 10)
        return LINETABLE_310;
    return LINETABLE_311;
}

/* Appends [previous end, end) at `line` and 1-based column `col` (0 = none); `end` must be past
 * the previous end. A run past the bytecode means a torn or foreign table: CPython never writes
 * one. */
static int push(struct runs *r, uint64_t end, int64_t line, uint32_t col)
{
    if (end > r->code_bytes)
        return ERR_CORRUPT;
    if (r->n && r->v[r->n - 1].line == line && r->v[r->n - 1].col == col) {
        r->v[r->n - 1].end = (uint32_t)end;
        return 0;
    }
    if (r->n == MAX_RUNS)
        return ERR_TOO_LARGE;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        if (cap > MAX_RUNS)
            cap = MAX_RUNS;
        r->v = xrealloc(r->v, cap * sizeof(*r->v));
        r->cap = cap;
    }
    r->v[r->n].end = (uint32_t)end;
    r->v[r->n].line = (int32_t)line;
    r->v[r->n].col = col;
    r->n++;
    return 0;
}

/* Adds `delta` to the running line. CPython keeps it in an int; a table that leaves that range
 * is not one CPython wrote. */
static int add_line(int64_t *line, int64_t delta)
{
    *line += delta;
    if (*line < INT32_MIN || *line > INT32_MAX)
        return ERR_CORRUPT;
    return 0;
}

/* co_lnotab, 3.8/3.9 (Objects/lnotab_notes.txt): pairs (addr_incr unsigned, line_incr signed);
 * the line at B is firstlineno plus every line_incr whose pair's cumulative address is <= B, so
 * a pair's increment applies from its address on. CPython ignores an odd last byte; the
 * compiler never writes one, so here it marks a torn read. */
static int decode_lnotab(const uint8_t *tab, size_t n, int32_t firstlineno, struct runs *r)
{
    if (n % 2)
        return ERR_CORRUPT;
    uint64_t addr = 0;
    int64_t line = firstlineno;
    for (size_t i = 0; i < n; i += 2) {
        uint64_t next = addr + tab[i];
        if (next > addr) {
            int rc = push(r, next, line, 0);
            if (rc)
                return rc;
        }
        addr = next;
        int rc = add_line(&line, (int8_t)tab[i + 1]);
        if (rc)
            return rc;
    }
    if (addr < r->code_bytes)
        return push(r, r->code_bytes, line, 0);
    return 0;
}

/* co_linetable, 3.10 (`advance` in Objects/codeobject.c): pairs (sdelta unsigned = bytes of
 * bytecode, ldelta signed, -128 = no line, running line unchanged). Empty pairs only carry
 * their line delta. Offsets past the last pair have no line. */
static int decode_310(const uint8_t *tab, size_t n, int32_t firstlineno, struct runs *r)
{
    if (n % 2)
        return ERR_CORRUPT;
    uint64_t end = 0;
    int64_t line = firstlineno;
    for (size_t i = 0; i < n; i += 2) {
        uint64_t start = end;
        int64_t cur = -1;
        end += tab[i];
        if ((int8_t)tab[i + 1] != -128) {
            int rc = add_line(&line, (int8_t)tab[i + 1]);
            if (rc)
                return rc;
            cur = line;
        }
        if (end > start) {
            int rc = push(r, end, cur, 0);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* Reads a 3.11 varint at tab[*i]: 6-bit groups, low first, bit 6 = more. Every byte must be a
 * continuation byte (bit 7 clear) inside the table; more than six groups is corrupt. */
static int read_varint(const uint8_t *tab, size_t n, size_t *i, uint64_t *out)
{
    uint64_t val = 0;
    for (unsigned shift = 0; shift <= 30; shift += 6) {
        if (*i >= n || (tab[*i] & 0x80))
            return ERR_CORRUPT;
        uint8_t b = tab[(*i)++];
        val |= (uint64_t)(b & 63) << shift;
        if (!(b & 64)) {
            *out = val;
            return 0;
        }
    }
    return ERR_CORRUPT;
}

static int read_svarint(const uint8_t *tab, size_t n, size_t *i, int64_t *out)
{
    uint64_t v;
    int rc = read_varint(tab, n, i, &v);
    if (rc)
        return rc;
    *out = (v & 1) ? -(int64_t)(v >> 1) : (int64_t)(v >> 1);
    return 0;
}

/* Reads the byte at tab[*i], which must continue the entry (bit 7 clear). */
static int read_byte(const uint8_t *tab, size_t n, size_t *i, uint8_t *out)
{
    if (*i >= n || (tab[*i] & 0x80))
        return ERR_CORRUPT;
    *out = tab[(*i)++];
    return 0;
}

/* One location entry's start: line delta and 1-based start column (0 = none). */
struct loc {
    int64_t delta;
    uint32_t col;
};

/* Parses the bytes after the first byte of a location entry of kind `code` at tab[*i]
 * (Objects/locations.md; get_line_delta and advance_with_locations in Objects/codeobject.c).
 * Columns are stored 0-based in the short and one-line forms and as column + 1 (0: none) in
 * the long form; `col` is 1-based either way. */
static int entry_loc(const uint8_t *tab, size_t n, size_t *i, int code, struct loc *out)
{
    uint8_t b0, b1;
    uint64_t v;
    int rc;
    *out = (struct loc){0, 0};
    if (code == LOC_NONE)
        return 0;
    if (code < LOC_ONE_LINE0) {
        /* short form: start column = code * 8 + bits 4-6 of the next byte */
        rc = read_byte(tab, n, i, &b0);
        out->col = rc ? 0 : (uint32_t)(code * 8 + ((b0 >> 4) & 7)) + 1;
        return rc;
    }
    if (code <= LOC_ONE_LINE2) {
        out->delta = code - LOC_ONE_LINE0;
        rc = read_byte(tab, n, i, &b0);
        rc = rc ? rc : read_byte(tab, n, i, &b1); /* end column, not kept */
        out->col = rc ? 0 : (uint32_t)b0 + 1;
        return rc;
    }
    rc = read_svarint(tab, n, i, &out->delta);
    if (rc || code == LOC_NO_COLUMNS)
        return rc;
    /* LOC_LONG: end line delta, start column + 1, end column + 1. */
    rc = read_varint(tab, n, i, &v);
    rc = rc ? rc : read_varint(tab, n, i, &v);
    if (!rc && v > INT32_MAX) /* CPython keeps columns in an int */
        rc = ERR_CORRUPT;
    if (!rc)
        out->col = (uint32_t)v;
    return rc ? rc : read_varint(tab, n, i, &v);
}

/* Location table, 3.11+: entries of a first byte (bit 7 set, bits 3-6 kind, bits 0-2 length - 1
 * in 2-byte code units) and the kind's column bytes. An entry of kind LOC_NONE has no line and
 * leaves the running line unchanged. Every entry must end exactly where the next begins. */
static int decode_311(const uint8_t *tab, size_t n, int32_t firstlineno, struct runs *r)
{
    uint64_t end = 0;
    int64_t line = firstlineno;
    size_t i = 0;
    while (i < n) {
        uint8_t first = tab[i++];
        if (!(first & 0x80))
            return ERR_CORRUPT;
        int code = (first >> 3) & 15;
        struct loc loc;
        int rc = entry_loc(tab, n, &i, code, &loc);
        if (rc)
            return rc;
        if (i < n && !(tab[i] & 0x80))
            return ERR_CORRUPT;
        rc = add_line(&line, loc.delta);
        if (rc)
            return rc;
        uint64_t start = end;
        end += ((first & 7) + 1) * 2;
        /* The last entry may cover code units past the end: 3.13's static _Py_InitCleanup
         * shim (the frame of a class's __init__ called from C) has 3 units and a
         * no-location entry for 4. Only the last, and only one that starts inside. */
        if (i == n && end > r->code_bytes && start < r->code_bytes)
            end = r->code_bytes;
        rc = push(r, end, code == LOC_NONE ? -1 : line, loc.col);
        if (rc)
            return rc;
    }
    return 0;
}

int linetable_decode(enum linetable_format fmt, const uint8_t *tab, size_t n, int32_t firstlineno,
                     uint32_t code_bytes, struct line_run **out, size_t *nout)
{
    struct runs r = {.code_bytes = code_bytes};
    int rc;
    *out = NULL;
    *nout = 0;
    if (!tab && n)
        return ERR_ARG;
    switch (fmt) {
    case LINETABLE_LNOTAB:
        rc = decode_lnotab(tab, n, firstlineno, &r);
        break;
    case LINETABLE_310:
        rc = decode_310(tab, n, firstlineno, &r);
        break;
    case LINETABLE_311:
        rc = decode_311(tab, n, firstlineno, &r);
        break;
    default:
        rc = ERR_ARG;
        break;
    }
    if (rc) {
        free(r.v);
        return rc;
    }
    *out = r.v;
    *nout = r.n;
    return 0;
}

size_t linetable_find(const struct line_run *runs, size_t n, int64_t b)
{
    if (b < 0)
        return SIZE_MAX;
    size_t lo = 0;
    size_t hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((int64_t)runs[mid].end > b)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

int32_t linetable_lookup(const struct line_run *runs, size_t n, int64_t b, int32_t firstlineno)
{
    size_t i = linetable_find(runs, n, b);
    if (i == SIZE_MAX)
        return firstlineno;
    return i < n ? runs[i].line : -1;
}
