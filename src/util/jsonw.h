// SPDX-License-Identifier: MIT
// A small streaming JSON writer into a struct buf, with string escaping and UTF-8 repair.
#ifndef CRUX_JSONW_H
#define CRUX_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/err.h"

/* Escaping flags. */
enum {
    /* Also escape '<', '>', '&' and U+2028/U+2029 as \uXXXX, so that the JSON can be
     * embedded in an HTML <script> element (no "</script>" or "<!--" can appear). */
    JSONW_HTML_SAFE = 1u << 0,
};

/* Deepest nesting of arrays and objects the writer tracks. */
#define JSONW_MAX_DEPTH 64

/* Writer state. Errors are sticky: after the first failure (the buffer's cap, too deep a
 * nesting) every call does nothing, and jsonw_error() reports the first error. This keeps
 * long sequences of writes readable; check jsonw_error() once at the end. */
struct jsonw {
    struct buf *out;   /* not owned */
    unsigned flags;    /* JSONW_* */
    int rc;            /* first error, 0 if none */
    uint32_t depth;    /* open arrays and objects */
    uint64_t nonempty; /* bit d: the container at depth d already holds a value */
    bool after_key;    /* a key was written; the next value needs no comma */
};

/* Starts writing into `out` (appending; `out` stays owned by the caller). */
void jsonw_init(struct jsonw *w, struct buf *out, unsigned flags);
/* Returns 0 or the first error of any call since jsonw_init. */
int jsonw_error(const struct jsonw *w) MUST_CHECK;
/* Records `rc` (when non-zero) as the writer's error unless one is already set, for callers
 * whose own step failed between writes. */
void jsonw_fail(struct jsonw *w, int rc);

/* Opens and closes an object or an array. */
void jsonw_obj_begin(struct jsonw *w);
void jsonw_obj_end(struct jsonw *w);
void jsonw_arr_begin(struct jsonw *w);
void jsonw_arr_end(struct jsonw *w);
/* Writes an object key (escaped); the next call writes its value. */
void jsonw_key(struct jsonw *w, const char *key);
/* Writes a string value: the NUL-terminated `s` (NULL writes null), or `n` bytes at `s`. */
void jsonw_str(struct jsonw *w, const char *s);
void jsonw_strn(struct jsonw *w, const char *s, size_t n);
/* Writes a number, a boolean or null. Doubles are written in the shortest form that reads
 * back exactly; non-finite ones as null. */
void jsonw_u64(struct jsonw *w, uint64_t v);
void jsonw_i64(struct jsonw *w, int64_t v);
void jsonw_double(struct jsonw *w, double v);
void jsonw_bool(struct jsonw *w, bool v);
void jsonw_null(struct jsonw *w);
/* Appends already-formed JSON text `s` as the next value (the caller vouches for it). */
void jsonw_raw(struct jsonw *w, const char *s, size_t n);

/* Appends `n` bytes of `s` as a quoted JSON string: '"', '\\' and every control character
 * escaped, valid UTF-8 kept as is, each byte of an invalid UTF-8 sequence replaced by U+FFFD;
 * `flags` as above. ERR_TOO_LARGE at the buffer's cap. */
int jsonw_escape(struct buf *b, const char *s, size_t n, unsigned flags) MUST_CHECK;

/* Returns the length (1-4) of the valid UTF-8 sequence at the start of the `n` bytes at `s`,
 * or 0 when it is invalid (truncated, overlong, a surrogate, above U+10FFFF). n must be > 0.
 * *cp receives the code point when valid (may be NULL). */
size_t jsonw_utf8_len(const unsigned char *s, size_t n, uint32_t *cp);

/* Writes `v` in decimal into `dst` (at least 20 bytes) without a NUL; returns the length. */
size_t jsonw_fmt_u64(char *dst, uint64_t v);

#endif
