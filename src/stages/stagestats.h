// SPDX-License-Identifier: MIT
// Stage statistics: per-stage latency percentiles and the stage waterfalls of the slowest
// requests, from spans of the ring or of an OTLP file; text and JSON output.
#ifndef CRUX_STAGESTATS_H
#define CRUX_STAGESTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile/strtab.h"
#include "stages/span.h"
#include "util/buf.h"
#include "util/err.h"

#define STAGESTATS_MAX_SPANS_DEFAULT ((size_t)4 * 1000 * 1000)

/* One kept span: the name is a strtab id. */
struct sspan {
    uint64_t request, start_ns, end_ns;
    uint32_t name, tid, kind, pid;
};

/* Latency of one stage (or of whole requests), in ns. */
struct stagerow {
    uint32_t name; /* strtab id */
    uint64_t count, p50, p90, p99, max, total;
    uint64_t first_ns; /* earliest start: rows are listed in this order */
};

/* One request: its bounds (its own request span, else its stages' extent) and its spans,
 * sorted by start: spans[first .. first + n). */
struct sreq {
    uint64_t id, start_ns, end_ns;
    uint32_t pid; /* a request is (pid, id): processes number their requests independently */
    size_t first, n;
};

struct stagestats {
    struct strtab names;
    struct sspan *spans;
    size_t nspans, capspans, max_spans;
    uint64_t dropped; /* spans past max_spans, not kept */
    /* Filled by stagestats_finish: */
    struct stagerow *rows;
    size_t nrows;
    struct stagerow req; /* whole requests; count 0 when no request was seen */
    struct sreq *reqs;   /* every request, slowest first */
    size_t nreqs;
};

/* Output options. */
struct stagestats_opts {
    const char *source;                  /* "pid 1234" or the file name, for the title */
    size_t slowest;                      /* waterfalls to write (the N slowest requests) */
    bool hex_ids;                        /* request ids in hex (trace ids) rather than decimal */
    uint64_t lost;                       /* spans the source lost (ring overwritten), reported */
    const struct stage_current *current; /* threads in a stage when recording ended */
    size_t ncurrent;
};

/* Initializes empty statistics keeping at most `max_spans` spans (0: the default). */
void stagestats_init(struct stagestats *s, size_t max_spans);
/* Releases everything. */
void stagestats_fini(struct stagestats *s);
/* Adds one span (its name is copied). Past the cap the span is only counted as dropped. */
void stagestats_add(struct stagestats *s, const struct stage_span *sp);
/* Sorts the spans and computes rows, request latency and the request list. Call once, after
 * the last add. */
void stagestats_finish(struct stagestats *s);

/* Appends the text report (a table of stages, then the waterfalls) to `out`. */
int stagestats_write_text(const struct stagestats *s, const struct stagestats_opts *o,
                          struct buf *out) MUST_CHECK;
/* Appends the JSON report (docs/stages.md) to `out`. */
int stagestats_write_json(const struct stagestats *s, const struct stagestats_opts *o,
                          struct buf *out) MUST_CHECK;

/* The nearest-rank percentile `p` (0-100] of the `n` sorted values; 0 when n is 0. */
uint64_t stagestats_percentile(const uint64_t *sorted, size_t n, double p);

#endif
