// SPDX-License-Identifier: MIT
// Growable byte buffer with a size cap, used to build output text and JSON.
#ifndef CRUX_BUF_H
#define CRUX_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "util/err.h"

struct buf {
    char *data; /* NUL-terminated when len > 0 or after buf_cstr() */
    size_t len;
    size_t cap;   /* allocated bytes */
    size_t limit; /* ERR_TOO_LARGE past this many bytes */
};

#define BUF_DEFAULT_LIMIT ((size_t)1 << 31)

/* Initializes an empty buffer in caller storage; limit 0 means BUF_DEFAULT_LIMIT. */
void buf_init(struct buf *b, size_t limit);
/* Releases the memory; the buffer is empty and reusable afterwards. */
void buf_fini(struct buf *b);
/* Empties the buffer and keeps its memory. */
void buf_reset(struct buf *b);
/* Appends `n` bytes; ERR_TOO_LARGE when the limit would be passed (nothing appended). */
int buf_append(struct buf *b, const void *p, size_t n) MUST_CHECK;
/* Appends a NUL-terminated string. */
int buf_puts(struct buf *b, const char *s) MUST_CHECK;
/* Appends one byte. */
int buf_putc(struct buf *b, char c) MUST_CHECK;
/* Appends formatted text. */
int buf_printf(struct buf *b, const char *fmt, ...) MUST_CHECK PRINTF_LIKE(2, 3);
/* Returns the contents as a C string (never NULL); valid until the next change. */
const char *buf_cstr(struct buf *b);
/* Hands the contents to the caller, who frees them; the buffer is left empty. */
char *buf_take(struct buf *b, size_t *len);
/* Writes the whole buffer to `path` ("-" = stdout); ERR_IO with context on failure. */
int buf_write_file(const struct buf *b, const char *path, struct errbuf *eb) MUST_CHECK;

#endif
