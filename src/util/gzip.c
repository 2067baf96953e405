// SPDX-License-Identifier: MIT
// gzip through zlib's deflate with the gzip wrapper (windowBits 15 + 16).
#include "util/gzip.h"

#include <limits.h>
#include <stdint.h>
#include <zlib.h>

#define CHUNK 65536

/* Runs deflate over the whole input (fed in pieces of at most UINT_MAX bytes, zlib's counts
 * being `unsigned`), appending its output to `out` a chunk at a time. */
static int pump(z_stream *zs, const unsigned char *data, size_t n, struct buf *out)
{
    unsigned char chunk[CHUNK];
    size_t fed = 0;
    int zrc = Z_OK;
    while (zrc != Z_STREAM_END) {
        if (zs->avail_in == 0 && fed < n) {
            size_t take = n - fed < UINT_MAX ? n - fed : UINT_MAX;
            zs->next_in = (unsigned char *)(uintptr_t)(data + fed);
            zs->avail_in = (unsigned)take;
            fed += take;
        }
        zs->next_out = chunk;
        zs->avail_out = CHUNK;
        zrc = deflate(zs, fed == n ? Z_FINISH : Z_NO_FLUSH);
        if (zrc != Z_OK && zrc != Z_STREAM_END && zrc != Z_BUF_ERROR)
            return ERR_ARG;
        int rc = buf_append(out, chunk, CHUNK - zs->avail_out);
        if (rc)
            return rc;
    }
    return 0;
}

int gzip_compress(const void *data, size_t n, int level, struct buf *out)
{
    if (level < 1 || level > 9)
        return ERR_ARG;
    z_stream zs = {0};
    int zrc = deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    if (zrc == Z_MEM_ERROR)
        return ERR_NOMEM;
    if (zrc != Z_OK)
        return ERR_ARG;
    int rc = pump(&zs, data, n, out);
    deflateEnd(&zs);
    return rc;
}
