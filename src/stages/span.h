// SPDX-License-Identifier: MIT
// The stage span model shared by the ring reader, the OTLP importer and the statistics.
#ifndef CRUX_SPAN_H
#define CRUX_SPAN_H

#include <stdint.h>

/* What a span is. The values equal the ring's record kinds (agent/agentshm.h). */
enum stage_kind {
    STAGE_SPAN = 1,    /* one stage of a request */
    STAGE_REQUEST = 2, /* a whole request (its stages fall inside it) */
    STAGE_MARK = 3,    /* an instant event */
};

/* One span. `name` is owned by whoever produced the span (the ring or the OTLP import) and
 * stays valid until that producer is closed; stagestats copies what it keeps. */
struct stage_span {
    uint64_t request; /* request id; 0 = none */
    uint64_t start_ns;
    uint64_t end_ns; /* end >= start */
    const char *name;
    uint32_t tid;  /* 0 = unknown */
    uint32_t kind; /* enum stage_kind */
    uint32_t pid;  /* the writing process; 0 = not known (OTLP). Requests are per process. */
};

/* A thread and the stage it is in now (the ring's thread slots). `stage` is owned by the
 * producer, like stage_span.name. */
struct stage_current {
    uint32_t tid;
    const char *stage;
};

#endif
