// SPDX-License-Identifier: MIT
// A small JSON reader for the load generator: walk objects, find keys, decode strings.
#ifndef CRUX_JSCAN_H
#define CRUX_JSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/err.h"

/* A slice of JSON text; never owns its bytes. */
struct jspan {
    const char *p;
    size_t n;
};

/* Deepest nesting jscan follows before it calls the text invalid. */
#define JSCAN_MAX_DEPTH 64

/* Finds the end of the one JSON value at the start of `s` (leading whitespace allowed):
 * *val is the value without surrounding whitespace. Returns 0, or ERR_ARG when the text is
 * not one complete value (trailing non-whitespace is an error too when `whole` is true). */
int jscan_value(struct jspan s, bool whole, struct jspan *val) MUST_CHECK;
/* Iterates the members of the object `obj` (a validated value): start with *pos = 0; each
 * call that returns true sets *key (the raw quoted key) and *val. */
bool jscan_next_member(struct jspan obj, size_t *pos, struct jspan *key, struct jspan *val);
/* Iterates the elements of the array `arr` the same way. */
bool jscan_next_elem(struct jspan arr, size_t *pos, struct jspan *val);
/* Finds `key` (plain text, compared after decoding escapes only when the raw key has none)
 * among the members of the object `obj`; false when absent or `obj` is not an object. */
bool jscan_get(struct jspan obj, const char *key, struct jspan *val);
/* Appends the decoded text of the JSON string `str` (with its quotes) to `out`; ERR_ARG when
 * it is not a string, ERR_TOO_LARGE at the buffer's cap. */
int jscan_decode_str(struct jspan str, struct buf *out) MUST_CHECK;
/* Reads an integer value; false when `v` is not an integer number. */
bool jscan_int(struct jspan v, int64_t *out);
/* The type of a value by its first byte: '{', '[', '"', 'n' (null), 't'/'f', or '0' (number). */
char jscan_type(struct jspan v);

#endif
