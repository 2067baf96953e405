// SPDX-License-Identifier: MIT
// Host stages during prefill and decode (`crux record --load` of a streaming LLM server):
// the load's requests cut the recording into segments by phase (some request waits for its
// first token, some request streams tokens after it, both, or neither), and each stage span
// of the crux agent is split over those segments by time.
//
// Why by time and not by request: the agent's request ids are the server's own and the load
// generator's requests carry no id the server sees, so a span cannot be tied to one load
// request. At concurrency 1 the phases never overlap and the split is exact; under
// concurrency the time where both phases run is its own column ("mixed"), never guessed.
//
// The GPU's figures (p->gpu, on the samples' clock) are averaged over the same segments:
// each GPU point counts in the phase of the segment that holds its time.
#ifndef CRUX_PHASESPLIT_H
#define CRUX_PHASESPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "profile/profile.h"
#include "util/buf.h"
#include "util/err.h"

enum phase {
    PHASE_PREFILL, /* some request waits for its first token, none streams */
    PHASE_DECODE,  /* some request streams after its first token, none waits */
    PHASE_MIXED,   /* both at once (concurrent requests) */
    PHASE_IDLE,    /* no streamed request in flight */
    PHASE_N,
};

/* A stretch of the recording in one phase; times on the samples' clock. */
struct phase_seg {
    uint64_t start_ns, end_ns;
    enum phase phase;
};

#define PHASESPLIT_MAX_STAGES 64 /* distinct stage names; more are summed as "(other)" */

struct phasesplit_row {
    uint32_t name; /* strtab id in the profile; 0 for "(other)" */
    uint64_t ns[PHASE_N];
};

/* Means of the GPU points (every device together) that fall in each phase. */
struct phasesplit_gpu {
    uint64_t npts[PHASE_N];    /* points with "any kernel running" in the phase */
    double busy[PHASE_N];      /* mean "any kernel running" %; -1 with no point */
    double sm_active[PHASE_N]; /* mean GPM SM active %; -1 with no point that has it */
};

struct phasesplit {
    uint64_t phase_ns[PHASE_N]; /* length of each phase over the recording's requests */
    struct phasesplit_gpu gpu;  /* from p->gpu; npts all 0 without GPU figures */
    struct phasesplit_row rows[PHASESPLIT_MAX_STAGES + 1];
    size_t nrows;
};

/* The phase segments of the profile's load requests (p->reqs with ttft_ns >= 0; others are
 * not streams and are left out), in time order, consecutive segments of one phase merged,
 * idle gaps included. *out is a new array the caller frees; *n its length (0 and NULL when
 * there is no streamed request). */
void phasesplit_segments(const struct profile *p, struct phase_seg **out, size_t *n);
/* Splits each PSPAN_STAGE span of `p` over the segments. */
void phasesplit_compute(const struct profile *p, struct phasesplit *ps);
/* The GPU's figures per phase (phasesplit_compute fills ps->gpu with it). */
void phasesplit_gpu(const struct profile *p, const struct phase_seg *segs, size_t n,
                    struct phasesplit_gpu *out);
/* A text table (stage, ms and share in prefill, decode, mixed) into `b`, then a line of the
 * GPU's figures per phase; nothing when no stage span and no GPU point fell into a phase.
 * ERR_TOO_LARGE at the buffer's cap. */
int phasesplit_write_text(const struct phasesplit *ps, const struct profile *p,
                          struct buf *b) MUST_CHECK;

#endif
