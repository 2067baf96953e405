// SPDX-License-Identifier: MIT
// Decoding of code-object line tables: co_lnotab (3.8, 3.9), the 3.10 co_linetable and the
// 3.11+ location table, into runs of byte offsets that map to one line (and, 3.11+, one start
// column).
#ifndef CRUX_LINETABLE_H
#define CRUX_LINETABLE_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

enum linetable_format {
    LINETABLE_LNOTAB = 0, /* 3.8, 3.9 */
    LINETABLE_310 = 1,    /* 3.10 */
    LINETABLE_311 = 2,    /* 3.11+ location table */
};

/* Bytecode byte offsets [previous run's end, end) execute `line` (-1: no line), starting at
 * column `col` (1-based, as tracebacks and editors count; 0 = unknown: 3.8-3.10 tables, 3.11+
 * entries without columns). */
struct line_run {
    uint32_t end;
    int32_t line;
    uint32_t col;
};

/* Returns the table format of CPython 3.`minor`. */
enum linetable_format linetable_format_for(uint32_t minor);

/* Decodes `tab` (`n` bytes) for a code object starting at `firstlineno` whose bytecode is
 * `code_bytes` long. Returns a new array through *out (the caller frees it) of *nout runs
 * sorted by end. ERR_CORRUPT on a malformed table, ERR_TOO_LARGE past 1,000,000 runs. */
int linetable_decode(enum linetable_format fmt, const uint8_t *tab, size_t n, int32_t firstlineno,
                     uint32_t code_bytes, struct line_run **out, size_t *nout) MUST_CHECK;

/* Returns the line executing at byte offset `b`, as PyCode_Addr2Line does: `firstlineno`
 * for b < 0, -1 when no run covers b or the run has no line. */
int32_t linetable_lookup(const struct line_run *runs, size_t n, int64_t b, int32_t firstlineno);

/* Returns the index of the run covering byte offset `b`: `n` when none does (b past the
 * table), SIZE_MAX for b < 0 (the code's first line, no column). */
size_t linetable_find(const struct line_run *runs, size_t n, int64_t b);

#endif
