// SPDX-License-Identifier: MIT
// The regression gate: thresholds from a small file ("throughput -3%", "p99 +5%", "stage
// model +2pt", "function tokenize +10%", "errors 0"), each judged against a comparison's
// interval: a regression only when the whole interval lies past the threshold
// (docs/loop.md, "crux gate").
#ifndef CRUX_GATE_H
#define CRUX_GATE_H

#include <stdbool.h>

#include "analysis/diff.h"
#include "util/buf.h"
#include "util/err.h"

enum gate_metric {
    GM_LOAD = 0,       /* a load_metric (sub) */
    GM_TIME,           /* time per unit of work */
    GM_STAGE,          /* a stage's share of wall time */
    GM_TYPE,           /* a bottleneck type's share */
    GM_FUNCTION,       /* a function's self time per unit */
    GM_FUNCTION_TOTAL, /* a function's time per unit with its callees */
    GM_LINE,           /* a line's self time per unit */
    GM_ERRORS,         /* failed requests on the new side, a count */
    GM_WALL,           /* wall time of the recordings per unit */
};

enum gate_status {
    GATE_PASS = 0,
    GATE_REGRESSION = 1,
    GATE_INCONCLUSIVE = 2,
};

struct gate_rule {
    enum gate_metric metric;
    int sub;      /* enum load_metric for GM_LOAD */
    char *name;   /* stage, type, function or line; NULL otherwise */
    double limit; /* signed: +0.05 = "at most 5% higher", -0.03 = "at most 3% lower" */
    bool points;  /* limit in share points (pt) rather than relative (%) */
    int line;     /* in the file */
    char *text;   /* the line as written */
    /* judged */
    enum gate_status status;
    double value, lo, hi; /* the change (relative, or points) and its interval */
    double mde;           /* smallest change these runs detect with 80% power */
    int repeats_needed;   /* per side, for an MDE of the limit; 0 when not computed */
    char why[256];
};

struct gate {
    struct gate_rule *v;
    int n, cap;
};

void gate_init(struct gate *g);
void gate_fini(struct gate *g);
/* Parses thresholds text (the file `path` names it in errors). ERR_ARG with
 * "path:LINE: ..." in `eb` on the first bad line. */
int gate_parse(struct gate *g, const char *text, const char *path, struct errbuf *eb) MUST_CHECK;
/* Judges every rule against `d` (finished); `new_errors` is the failed-request count of the
 * new side (or -1 unknown). Returns the overall status. */
enum gate_status gate_judge(struct gate *g, const struct diff *d, double new_errors);
/* Text, Markdown (a pull-request comment) and JSON of the judged rules. */
int gate_write_text(const struct gate *g, enum gate_status st, const char *notes,
                    struct buf *b) MUST_CHECK;
int gate_write_markdown(const struct gate *g, enum gate_status st, const struct diff *d,
                        const char *notes, struct buf *b) MUST_CHECK;
int gate_write_json(const struct gate *g, enum gate_status st, const struct diff *d,
                    const char *notes, struct buf *b) MUST_CHECK;

#endif
