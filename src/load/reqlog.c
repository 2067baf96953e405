// SPDX-License-Identifier: MIT
// Per-request records of a load run (reqlog.h).
#include "load/reqlog.h"

#include <stdlib.h>

#include "load/load.h"
#include "util/xalloc.h"

void reqlog_init(struct reqlog *l, size_t cap)
{
    l->cap = cap ? cap : 1;
    l->maxchunks = (l->cap + REQLOG_CHUNK - 1) / REQLOG_CHUNK;
    l->chunks = xcalloc(l->maxchunks, sizeof(*l->chunks));
    l->chunks[0] = xmalloc(REQLOG_CHUNK * sizeof(**l->chunks));
    l->nchunks = 1;
    l->n = 0;
    l->dropped = 0;
}

void reqlog_fini(struct reqlog *l)
{
    for (size_t i = 0; i < l->nchunks; i++)
        free(l->chunks[i]);
    free(l->chunks);
    l->chunks = NULL;
    l->nchunks = l->n = 0;
}

void reqlog_add(struct reqlog *l, const struct reqlog_rec *r)
{
    if (l->n >= l->cap) {
        l->dropped++;
        return;
    }
    size_t c = l->n / REQLOG_CHUNK;
    if (c == l->nchunks) /* once every REQLOG_CHUNK requests */
        l->chunks[l->nchunks++] = xmalloc(REQLOG_CHUNK * sizeof(**l->chunks));
    l->chunks[c][l->n % REQLOG_CHUNK] = *r;
    l->n++;
}

const struct reqlog_rec *reqlog_at(const struct reqlog *l, size_t i)
{
    return &l->chunks[i / REQLOG_CHUNK][i % REQLOG_CHUNK];
}

const char *reqlog_err_name(int32_t err)
{
    if (err == REQLOG_OK)
        return NULL;
    if (err == REQLOG_CANCELLED)
        return "cancelled";
    return load_err_name((enum load_err)err);
}
