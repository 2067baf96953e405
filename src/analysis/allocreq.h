// SPDX-License-Identifier: MIT
// Bytes per request (docs/memory.md): the sampled allocations of record --allocations matched
// to the crux agent's request spans by thread and time; per request, bytes allocated and bytes
// still live when the request ended (retained), and the lines that retain them.
#ifndef CRUX_ALLOCREQ_H
#define CRUX_ALLOCREQ_H

#include <stddef.h>
#include <stdint.h>

#include "profile/profile.h"

/* Lines kept in the view, most retained first. */
#define ALLOCREQ_LINES 10

/* A line that retains bytes across requests. Means are over all requests. */
struct allocreq_line {
    uint32_t frame;  /* the innermost Python frame of the allocating stack; UINT32_MAX none */
    uint32_t stack;  /* the stack that retained most of its bytes */
    double retained; /* mean bytes per request allocated here and live at the request's end */
    double kept;     /* of those, mean bytes per request never freed in the recording */
};

struct allocreq_view {
    size_t requests;       /* request spans with a known thread */
    double allocated;      /* mean bytes allocated per request (estimated) */
    double retained;       /* mean bytes per request still live at its end */
    double kept;           /* mean bytes per request never freed while recorded */
    uint64_t max_retained; /* the most one request retained */
    struct allocreq_line lines[ALLOCREQ_LINES];
    size_t nlines; /* lines with retained > 0, at most ALLOCREQ_LINES */
};

/* Builds the view of `p` into `v` (v->requests 0 when there are no request spans or no
 * allocation events with a thread). Each allocation made on a thread while one of its request
 * spans was open belongs to that request; its free, matched by the block's allocation time and
 * stack, says whether it outlived the request. Needs no freeing. */
void allocreq_build(const struct profile *p, struct allocreq_view *v);

#endif
