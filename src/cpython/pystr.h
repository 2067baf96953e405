// SPDX-License-Identifier: MIT
// Reading Python str objects from the target and converting them to UTF-8.
#ifndef CRUX_PYSTR_H
#define CRUX_PYSTR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cpython/offsets.h"
#include "util/err.h"

/* Reads the str object at `addr` of process `pid` into `out` as UTF-8 (NUL-terminated, at most
 * `cap` - 1 bytes; longer strings are cut at a character boundary). `type_str` is the address
 * of PyUnicode_Type (0 skips the type check). Stores the byte length in *len.
 * ERR_CORRUPT when the object is not a well-formed str, ERR_READ when unreadable. */
int pystr_read(pid_t pid, const struct py_offsets *o, uint64_t type_str, uint64_t addr, char *out,
               size_t cap, size_t *len) MUST_CHECK;

/* Converts `count` code units of width `kind` (1 = Latin-1, 2 = UCS-2, 4 = UCS-4) to UTF-8
 * in `out` (capacity `cap`, NUL-terminated, cut at a character boundary). Invalid code points
 * (surrogates, > 0x10FFFF) become U+FFFD. Returns the bytes written. */
size_t pystr_to_utf8(const uint8_t *data, size_t count, int kind, char *out, size_t cap);

#endif
