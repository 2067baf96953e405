// SPDX-License-Identifier: MIT
// Allocation wrappers: one policy for running out of memory (print and abort).
#ifndef CRUX_XALLOC_H
#define CRUX_XALLOC_H

#include <stddef.h>

/* Each returns memory the caller frees with free(); never NULL (aborts instead). */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
/* Returns a new copy of `s`; the caller frees it. */
char *xstrdup(const char *s);
/* Returns a new NUL-terminated copy of the first `n` bytes of `s`; the caller frees it. */
char *xstrndup(const char *s, size_t n);

#endif
