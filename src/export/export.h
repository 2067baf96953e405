// SPDX-License-Identifier: MIT
// Output formats of a profile: choosing one by file name or by name, and writing it.
#ifndef CRUX_EXPORT_H
#define CRUX_EXPORT_H

#include <stdbool.h>

#include "profile/profile.h"
#include "util/buf.h"
#include "util/err.h"

enum export_format {
    EXPORT_COLLAPSED = 0,  /* folded stacks, one line per stack (FlameGraph, inferno) */
    EXPORT_SPEEDSCOPE = 1, /* speedscope JSON, one "sampled" profile */
    EXPORT_HTML = 2,       /* self-contained report: verdict, stages, flame graph, tables */
    EXPORT_SVG = 3,        /* static flame graph, flamegraph.pl style, with click-to-zoom */
    EXPORT_LINES = 4,      /* per line and function: total, self, time categories (text) */
    EXPORT_LINES_JSON = 5, /* the same as JSON */
    EXPORT_FLAMEGRAPH = 6, /* self-contained interactive flame graph alone */
    EXPORT_SUMMARY = 7,    /* the verdict as text: what `record` prints at the end */
    EXPORT_VERDICT = 8,    /* the verdict, stages and hottest lines as JSON (docs/report.md) */
    EXPORT_PPROF = 9,      /* gzipped profile.proto, for go tool pprof and its viewers */
    EXPORT_PSTATS = 10,    /* marshalled cProfile statistics, for pstats.Stats and snakeviz */
    EXPORT_GECKO = 11,     /* Firefox Profiler processed profile: threads, timelines, markers */
    EXPORT_CHROME = 12,    /* Chrome trace (Perfetto, chrome://tracing): per-thread timelines */
};

struct stage_rules;

/* Options common to every format; a zeroed struct (or NULL) gives the defaults. */
struct export_opts {
    const char *title; /* shown in HTML/SVG and named in speedscope; NULL: "crux" + command */
    const struct stage_rules *rules; /* stage rules for the report formats; NULL: built-in */
};

/* Picks the format from `path`'s extension (case-insensitive): .txt .collapsed .folded →
 * collapsed, .gecko.json → gecko, .trace.json → chrome, .json → speedscope, .html .htm →
 * html, .svg → svg, .pb.gz → pprof, .pstats → pstats. ERR_ARG otherwise. */
int export_format_from_path(const char *path, enum export_format *out) MUST_CHECK;

/* Picks the format from a --format name: html|report, flamegraph, svg, speedscope|json,
 * collapsed|folded|txt, lines, lines-json, summary, verdict, pprof, pstats, gecko|firefox,
 * chrome|perfetto|trace. ERR_ARG otherwise. */
int export_format_from_name(const char *name, enum export_format *out) MUST_CHECK;

/* Returns the canonical name of a format ("collapsed", "speedscope", "html", "svg"), or "?"
 * for an unknown value. The string is static. */
const char *export_format_name(enum export_format f);

/* Whether format `f` shows Python frames' columns (speedscope, the lines view). The others
 * show one frame per line: give them the profile after profile_drop_columns, or a frame that
 * ran at two columns of a line shows twice (docs/internals.md, "Columns"). */
bool export_wants_columns(enum export_format f);

/* Appends the whole export of `p` in format `f` to `out`. `o` may be NULL. Reads `p` only.
 * ERR_TOO_LARGE when `out` reaches its cap, ERR_ARG for an unknown format; `eb` (may be NULL)
 * receives the details. */
int export_write(const struct profile *p, enum export_format f, const struct export_opts *o,
                 struct buf *out, struct errbuf *eb) MUST_CHECK;

/* Appends the display text of frame `id` as collapsed stacks write it, before ';' and
 * control characters are replaced: Python `qualname (path:line)` (`qualname (path)` when
 * line <= 0), native `symbol (library)` (`symbol` without one), thread `NAME (TID)`,
 * process `NAME (PID)`, marker `NAME`, with the TID or PID taken from `line`. An empty name is
 * written "thread", "process" or "?", an empty Python path "?". */
int export_frame_label(const struct profile *p, uint32_t id, struct buf *out) MUST_CHECK;

/* Appends the title to show: o->title if set, else "crux: COMMAND", else "crux". */
int export_title(const struct profile *p, const struct export_opts *o, struct buf *out) MUST_CHECK;

/* Appends `n` bytes of `s` escaped for XML and HTML text and attribute values: & < > " '
 * become entities, control characters other than tab, LF and CR become a space, and invalid
 * UTF-8 bytes and U+FFFE/U+FFFF (not XML characters) become U+FFFD. */
int export_xml_escape(struct buf *out, const char *s, size_t n) MUST_CHECK;

/* The length of `n` bytes of `s` once made valid UTF-8 as export_utf8_clean does: `n` when
 * they already are. */
size_t export_utf8_clean_len(const char *s, size_t n);

/* Appends `n` bytes of `s` with each byte of an invalid UTF-8 sequence (truncated, overlong,
 * a surrogate, past U+10FFFF) replaced by U+FFFD, for formats whose strings must be UTF-8
 * (protobuf strings, Python str). Other bytes, control characters included, are copied. */
int export_utf8_clean(struct buf *out, const char *s, size_t n) MUST_CHECK;

#endif
