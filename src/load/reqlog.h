// SPDX-License-Identifier: MIT
// The requests of a load run, one record each, for the timelines of `record --load`: the load
// thread appends a record as each request ends; the caller reads them once the run is over.
// Cheap on the open-loop hot path: an append copies 48 bytes into a chunk allocated ahead of
// time (the first at init, the next one once every REQLOG_CHUNK requests); past `cap`
// records a request is only counted. Not thread-safe: one writer, read after it is done.
#ifndef CRUX_REQLOG_H
#define CRUX_REQLOG_H

#include <stddef.h>
#include <stdint.h>

#define REQLOG_CHUNK 4096     /* records per chunk (192 KiB) */
#define REQLOG_OK (-1)        /* reqlog_rec.err of a complete response with status < 400 */
#define REQLOG_CANCELLED (-2) /* reqlog_rec.err of a request in flight when the run was stopped */

/* One request. Times are CLOCK_MONOTONIC nanoseconds (loop_now_ns). */
struct reqlog_rec {
    uint64_t t_start;       /* sent (the actual send, not the intended time) */
    uint64_t t_end;         /* response complete, or the request failed */
    uint64_t t_first_token; /* streamed responses: first token event; 0 none */
    uint64_t bytes;         /* response body bytes */
    int32_t status;         /* HTTP status code; 0 when no status line came */
    int32_t err;            /* enum load_err, REQLOG_OK or REQLOG_CANCELLED */
};

struct reqlog {
    struct reqlog_rec **chunks; /* maxchunks slots, nchunks allocated */
    size_t nchunks, maxchunks;
    size_t n, cap;    /* records kept, and the most kept */
    uint64_t dropped; /* requests past `cap`, only counted */
};

/* Initializes `l` (caller storage) to keep at most `cap` records (> 0); allocates the first
 * chunk. Release with reqlog_fini. */
void reqlog_init(struct reqlog *l, size_t cap);
/* Releases the chunks. */
void reqlog_fini(struct reqlog *l);
/* Appends a copy of `r`, or counts it in `dropped` past the cap. */
void reqlog_add(struct reqlog *l, const struct reqlog_rec *r);
/* Record `i` (< l->n); the pointer belongs to `l`. */
const struct reqlog_rec *reqlog_at(const struct reqlog *l, size_t i);
/* The name of a record's failure ("timeout", "http", "cancelled"), or NULL for REQLOG_OK.
 * Static storage. */
const char *reqlog_err_name(int32_t err);

#endif
