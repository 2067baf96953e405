// SPDX-License-Identifier: MIT
// gzip compression of a whole buffer in memory (zlib), for formats that are stored gzipped.
#ifndef CRUX_GZIP_H
#define CRUX_GZIP_H

#include <stddef.h>

#include "util/buf.h"
#include "util/err.h"

#define GZIP_LEVEL_FAST 1    /* fastest: what Go's runtime/pprof writes with */
#define GZIP_LEVEL_DEFAULT 6 /* zlib's default: within a few % of level 9, several times faster */

/* Appends the gzip file (RFC 1952: header with mtime 0, deflate stream, CRC-32 and size) of
 * the `n` bytes at `data` to `out`, compressed at `level` (1 fastest .. 9 smallest). The
 * output depends only on the input and level, so equal inputs give equal files.
 * ERR_TOO_LARGE at out's cap, ERR_ARG for a bad level, ERR_NOMEM when zlib cannot allocate
 * its state. */
int gzip_compress(const void *data, size_t n, int level, struct buf *out) MUST_CHECK;

#endif
