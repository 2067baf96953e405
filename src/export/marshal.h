// SPDX-License-Identifier: MIT
// Python's marshal format, the few types a pstats file needs, readable by every CPython 3.
#ifndef CRUX_MARSHAL_H
#define CRUX_MARSHAL_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/err.h"

/* marshal.load() reads a stream of objects, each a one-byte type code and its payload, all
 * integers little-endian (CPython's Python/marshal.c). Only codes of marshal version 2 are
 * written, which every Python 3 reads (later versions add references, short strings and
 * small tuples, all optional to a writer), and no object is flagged for back-references:
 *
 *   int    'i' int32, or 'l' int32 digit count (negative for a negative number) and that many
 *          uint16 digits of 15 bits, least significant first, when outside int32
 *   float  'g' the IEEE 754 double, 8 bytes
 *   str    'u' int32 byte length, then UTF-8 (read with "surrogatepass")
 *   tuple  '(' int32 length, then the items
 *   dict   '{' then key, value, key, value ..., then '0' (TYPE_NULL)
 *
 * Each function appends to `b` and returns 0 or ERR_TOO_LARGE at b's cap. */

/* An int. */
int marshal_int(struct buf *b, int64_t v) MUST_CHECK;
/* A float. */
int marshal_float(struct buf *b, double v) MUST_CHECK;
/* A str of the `n` bytes at `s`, invalid UTF-8 bytes replaced by U+FFFD (export_utf8_clean). */
int marshal_str(struct buf *b, const char *s, size_t n) MUST_CHECK;
/* The head of a tuple of `n` items; the caller writes the items next. */
int marshal_tuple(struct buf *b, uint32_t n) MUST_CHECK;
/* The head of a dict; the caller writes key and value pairs, then marshal_dict_end. */
int marshal_dict(struct buf *b) MUST_CHECK;
/* The end of a dict. */
int marshal_dict_end(struct buf *b) MUST_CHECK;

#endif
