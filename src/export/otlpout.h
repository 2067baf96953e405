// SPDX-License-Identifier: MIT
// OTLP trace export: the profile's request spans as OpenTelemetry ExportTraceServiceRequest
// messages (protobuf), one trace per request; otlpsend.h posts them to a collector.
#ifndef CRUX_OTLPOUT_H
#define CRUX_OTLPOUT_H

#include <stddef.h>
#include <stdint.h>

#include "profile/profile.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/hmap.h"

/* How the spans map to OpenTelemetry (docs/stages.md, "Sending spans to a collector"):
 *
 * - A request is a (process, request id) pair and becomes one trace. Its trace id is 16
 *   bytes: the first 8 a hash of the process id and the recording's start time (so that runs,
 *   and processes numbering their requests alike, do not share traces), the last 8 the
 *   request id, big-endian: the trace id's low 16 hex digits are the request id, which is how
 *   `crux stages --otlp` names a trace when it reads the spans back.
 * - The request's own span (enum pspan_kind PSPAN_REQUEST, the first when there are several)
 *   is the root of its trace, span kind SERVER. A request with stages but no request span
 *   gets a made-up root named "request" over its stages' extent (attribute
 *   crux.synthesized = true), so that the stages have a parent.
 * - Stages and marks are INTERNAL children of the root (parent_span_id); a mark is a span of
 *   zero length. A span bound to no request (request id 0) is a trace of its own.
 * - Span ids are 8 bytes, a hash of the trace id and the span's number: 0 for the root, the
 *   span's index in profile.spans plus 1 for the others. Never 0.
 * - Times are unix nanoseconds: profile.meta.epoch_ns plus the span's time, so the caller
 *   sets meta.epoch_ns (the wall clock at the profile's time 0).
 * - Resource attributes: service.name, process.pid (when known). Span attributes: crux.kind
 *   ("request", "stage", "mark"), crux.request (the request id in decimal), crux.stage (the
 *   stage's name, on stages and marks), thread.id (when known).
 * - Strings are made valid UTF-8 (export_utf8_clean): a protobuf string must be. */

#define OTLPOUT_BATCH 1024 /* spans per ExportTraceServiceRequest */

struct otlpout_opts {
    const char *service;       /* resource service.name; NULL or "": "crux" */
    const char *scope_version; /* the instrumentation scope's version (crux's); NULL: none */
};

/* A root made up for a request that has stages but no request span of its own. */
struct otlpout_root {
    uint64_t request;
    uint64_t start_ns, end_ns; /* profile time: the extent of the request's spans */
    uint32_t pid;
};

/* An export plan: items [0, p->nspans) are the profile's spans, items from p->nspans on are
 * the made-up roots. It points at the profile, which must outlive it and not change. */
struct otlpout {
    const struct profile *p;
    struct hmap keys; /* hash of (pid, request) -> first request span index + 1, or
                       * the top bit | made-up root index */
    struct otlpout_root *roots;
    size_t nroots, caproots;
};

/* Plans the export of p's spans: finds each request's root, making up the missing ones. */
void otlpout_init(struct otlpout *x, const struct profile *p);
/* Releases the plan (not the profile). */
void otlpout_fini(struct otlpout *x);
/* Number of spans to send: the profile's plus the made-up roots. */
size_t otlpout_count(const struct otlpout *x);
/* Appends to `out` one ExportTraceServiceRequest holding items [first, first + n) (n at most
 * what remains), one ResourceSpans per process among them. ERR_TOO_LARGE at out's cap. */
int otlpout_encode(const struct otlpout *x, const struct otlpout_opts *o, size_t first, size_t n,
                   struct buf *out) MUST_CHECK;

/* Writes the trace id of request `request` (not 0) of process `pid` in a recording begun at
 * unix time `epoch_ns` into `out` (16 bytes), as described above. */
void otlpout_trace_id(uint64_t epoch_ns, uint32_t pid, uint64_t request, unsigned char out[16]);

/* Reads an ExportTraceServiceResponse body (protobuf): the partial success's rejected span
 * count into *rejected and its error message into `msg` (`msgsz` bytes, NUL-terminated, cut
 * to fit; "" when none). An empty body is a full success. ERR_CORRUPT when it does not
 * parse. */
int otlpout_parse_response(const void *body, size_t len, int64_t *rejected, char *msg,
                           size_t msgsz) MUST_CHECK;

#endif
