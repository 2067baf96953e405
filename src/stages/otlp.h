// SPDX-License-Identifier: MIT
// Imports OpenTelemetry spans from OTLP/JSON files (ExportTraceServiceRequest, one document or
// one per line as the collector's file exporter writes) as stage spans: trace = request.
#ifndef CRUX_OTLP_H
#define CRUX_OTLP_H

#include <stddef.h>
#include <stdint.h>

#include "profile/strtab.h"
#include "stages/span.h"
#include "util/err.h"

/* Largest file read (bytes). */
#define OTLP_MAX_FILE ((size_t)512 << 20)

struct otlp {
    struct stage_span *spans; /* names point into `names` */
    size_t nspans, cap, max_spans;
    struct strtab names;
    uint64_t skipped; /* spans without a name or valid times */
    size_t bad_lines; /* JSON lines that did not parse as OTLP (beside ones that did) */
    size_t first_bad; /* the first of them, 1-based; 0 if none */
};

/* Initializes an empty import keeping at most `max_spans` spans (0: no cap but memory). */
void otlp_init(struct otlp *o, size_t max_spans);
/* Releases the spans and their names. */
void otlp_fini(struct otlp *o);
/* Adds the spans of the OTLP/JSON text `text` (`len` bytes): one JSON document, or several,
 * one per line. ERR_ARG with context when nothing in it parses as OTLP/JSON. */
int otlp_parse(struct otlp *o, const char *text, size_t len, struct errbuf *eb) MUST_CHECK;
/* Reads the file at `path` and adds its spans. ERR_IO, ERR_TOO_LARGE or ERR_ARG; `eb` then
 * holds a complete one-line message with the cause and the fix. */
int otlp_read_file(struct otlp *o, const char *path, struct errbuf *eb) MUST_CHECK;

/* Parses an OTLP/JSON id: 32 (or 16) hex digits give their low 64 bits; any other text a
 * 64-bit hash of it. Never 0 for non-empty text; 0 for empty or NULL. */
uint64_t otlp_id64(const char *s);

#endif
