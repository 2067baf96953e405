// SPDX-License-Identifier: MIT
// crux exp: the self-contained HTML page of an experiment's results: the table, and inline SVG
// plots of throughput with intervals, the Pareto front and every run by run order. No
// scripts, fonts or links; every name is escaped.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cmd/expreport.h"

/* Plot geometry (px). */
#define W 720
#define LEFT 190
#define RIGHT 20
#define ROW 26
#define TOP 20
#define AXIS 40

/* Eight distinguishable colours (Okabe-Ito), cycled over the variants. */
static const char *const COLORS[] = {"#0072b2", "#e69f00", "#009e73", "#cc79a7",
                                     "#56b4e9", "#d55e00", "#f0e442", "#000000"};
#define NCOLORS (sizeof(COLORS) / sizeof(COLORS[0]))

/* Appends `s` with &, <, >, " and ' escaped. */
static int esc(struct buf *b, const char *s)
{
    int rc = 0;
    for (const char *p = s ? s : ""; *p && !rc; p++) {
        switch (*p) {
        case '&':
            rc = buf_puts(b, "&amp;");
            break;
        case '<':
            rc = buf_puts(b, "&lt;");
            break;
        case '>':
            rc = buf_puts(b, "&gt;");
            break;
        case '"':
            rc = buf_puts(b, "&quot;");
            break;
        case '\'':
            rc = buf_puts(b, "&#39;");
            break;
        default:
            rc = buf_putc(b, *p);
        }
    }
    return rc;
}

/* An axis range: the data's [lo, hi] padded by a tenth of its width on each side (not below
 * 0: every value here is a rate or a time), so that small differences stay visible. */
struct range {
    double lo, hi;
};

static struct range pad(double lo, double hi)
{
    if (!isfinite(lo) || !isfinite(hi) || hi < lo)
        return (struct range){0, 1};
    double w = hi - lo > 0 ? hi - lo : fmax(fabs(hi), 1e-9);
    struct range r = {lo - w / 10, hi + w / 10};
    if (r.lo < 0)
        r.lo = 0;
    return r;
}

static double scale(double v, struct range r, double px)
{
    return isfinite(v) && r.hi > r.lo ? (v - r.lo) / (r.hi - r.lo) * px : 0;
}

/* Five ticks on a horizontal axis over `r` at y. */
static int x_axis(struct buf *b, struct range r, int y, const char *label)
{
    int rc = buf_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\"/>", LEFT,
                        y, W - RIGHT, y);
    for (int t = 0; t <= 4 && !rc; t++) {
        double x = LEFT + (W - LEFT - RIGHT) * t / 4.0;
        rc = buf_printf(b,
                        "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%.3g"
                        "</text>",
                        x, y + 14, r.lo + (r.hi - r.lo) * t / 4.0);
    }
    if (!rc)
        rc = buf_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">",
                        (LEFT + W - RIGHT) / 2, y + 30);
    if (!rc)
        rc = esc(b, label);
    return rc ? rc : buf_puts(b, "</text>");
}

/* Each variant's mean throughput as a dot with its 95% interval as a bar. */
static int plot_throughput(struct buf *b, const struct exp_summary *s)
{
    double lo = INFINITY, hi = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (!s->v[i].n)
            continue;
        lo = fmin(lo, s->v[i].tput.lo);
        hi = fmax(hi, s->v[i].tput.hi);
    }
    struct range max = pad(lo, hi);
    int h = TOP + ROW * (int)s->n + AXIS;
    int pw = W - LEFT - RIGHT;
    int rc = buf_printf(b,
                        "<h2>Throughput (%s, mean and 95%% interval)</h2><svg width=\"%d\" "
                        "height=\"%d\" role=\"img\">",
                        s->tput_unit, W, h);
    for (size_t i = 0; i < s->n && !rc; i++) {
        const struct exp_vsum *v = &s->v[i];
        int y = TOP + ROW * (int)i + ROW / 2;
        const char *col = v->differ ? "#c00" : COLORS[i % NCOLORS];
        rc = buf_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\">",
                        LEFT - 8, y + 4);
        rc = rc ? rc : esc(b, v->name);
        rc = rc ? rc : buf_puts(b, v->differ ? " (differs)</text>" : "</text>");
        if (rc || !v->n)
            continue;
        rc = buf_printf(b,
                        "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\" "
                        "stroke-width=\"3\"/><circle cx=\"%.1f\" cy=\"%d\" r=\"5\" fill=\"%s\"/>",
                        LEFT + scale(v->tput.lo, max, pw), y, LEFT + scale(v->tput.hi, max, pw), y,
                        col, LEFT + scale(v->tput.mean, max, pw), y, col);
    }
    rc = rc ? rc : x_axis(b, max, TOP + ROW * (int)s->n, s->tput_unit);
    return rc ? rc : buf_puts(b, "</svg>");
}

/* Throughput (x) against latency (y), the Pareto front joined by a line. */
static int plot_pareto(struct buf *b, const struct exp_summary *s)
{
    double x0 = INFINITY, x1 = 0, y0 = INFINITY, y1 = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (!s->v[i].n)
            continue;
        x0 = fmin(x0, s->v[i].tput.mean);
        x1 = fmax(x1, s->v[i].tput.mean);
        y0 = fmin(y0, s->v[i].lat.mean * 1e3); /* ms */
        y1 = fmax(y1, s->v[i].lat.mean * 1e3);
    }
    struct range xmax = pad(x0, x1), ymax = pad(y0, y1);
    int ph = 260, pw = W - LEFT - RIGHT, h = TOP + ph + AXIS;
    char label[64];
    snprintf(label, sizeof(label), "%s (ms)", s->lat_name);
    int rc = buf_printf(b,
                        "<h2>Throughput against %s: the Pareto front</h2><svg width=\"%d\" "
                        "height=\"%d\" role=\"img\">",
                        s->lat_name, W, h);
    for (int t = 0; t <= 4 && !rc; t++)
        rc = buf_printf(b,
                        "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%.3g"
                        "</text>",
                        LEFT - 6, TOP + ph - ph * t / 4.0 + 4,
                        ymax.lo + (ymax.hi - ymax.lo) * t / 4.0);
    rc = rc ? rc
            : buf_printf(b,
                         "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\">%s"
                         "</text>",
                         LEFT - 30, TOP + ph / 2, label);
    /* the front, in throughput order */
    rc = rc ? rc : buf_puts(b, "<polyline fill=\"none\" stroke=\"#999\" points=\"");
    double last = -1;
    for (size_t k = 0; k < s->n && !rc; k++) {
        int best = -1;
        for (size_t i = 0; i < s->n; i++)
            if (s->v[i].pareto && s->v[i].tput.mean > last &&
                (best < 0 || s->v[i].tput.mean < s->v[best].tput.mean))
                best = (int)i;
        if (best < 0)
            break;
        last = s->v[best].tput.mean;
        rc = buf_printf(b, "%.1f,%.1f ", LEFT + scale(last, xmax, pw),
                        TOP + ph - scale(s->v[best].lat.mean * 1e3, ymax, ph));
    }
    rc = rc ? rc : buf_puts(b, "\"/>");
    for (size_t i = 0; i < s->n && !rc; i++) {
        const struct exp_vsum *v = &s->v[i];
        if (!v->n)
            continue;
        double x = LEFT + scale(v->tput.mean, xmax, pw);
        double y = TOP + ph - scale(v->lat.mean * 1e3, ymax, ph);
        rc = buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%d\" fill=\"%s\"/>", x, y,
                        v->pareto ? 6 : 4, v->differ ? "#c00" : COLORS[i % NCOLORS]);
        rc = rc ? rc : buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">", x + 8, y - 6);
        rc = rc ? rc : esc(b, v->name);
        rc = rc ? rc : buf_puts(b, "</text>");
    }
    rc = rc ? rc : x_axis(b, xmax, TOP + ph, s->tput_unit);
    return rc ? rc : buf_puts(b, "</svg>");
}

/* Every measured run's throughput by its position in the run order, coloured by variant. */
static int plot_runs(struct buf *b, const struct exp_summary *s, const struct exp_state *st)
{
    double y0 = INFINITY, y1 = 0;
    size_t n = 0;
    for (size_t i = 0; i < st->nresults; i++) {
        if (st->results[i].warmup || !st->results[i].ok)
            continue;
        y0 = fmin(y0, st->results[i].tput);
        y1 = fmax(y1, st->results[i].tput);
        n++;
    }
    struct range ymax = pad(y0, y1);
    int ph = 200, pw = W - LEFT - RIGHT, h = TOP + ph + AXIS + 20 * ((int)s->n + 1);
    int rc = buf_printf(b,
                        "<h2>Every run by run order (%s): a slope is drift</h2><svg "
                        "width=\"%d\" height=\"%d\" role=\"img\">",
                        s->tput_unit, W, h);
    for (int t = 0; t <= 4 && !rc; t++)
        rc = buf_printf(b,
                        "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%.3g"
                        "</text>",
                        LEFT - 6, TOP + ph - ph * t / 4.0 + 4,
                        ymax.lo + (ymax.hi - ymax.lo) * t / 4.0);
    size_t k = 0;
    for (size_t i = 0; i < st->nresults && !rc; i++) {
        const struct exp_result *r = &st->results[i];
        if (r->warmup || !r->ok)
            continue;
        double x = LEFT + (n > 1 ? pw * (double)k / (double)(n - 1) : 0);
        k++;
        rc = buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>", x,
                        TOP + ph - scale(r->tput, ymax, ph), COLORS[r->variant % NCOLORS]);
    }
    char label[64];
    snprintf(label, sizeof(label), "run order (measured runs 1 to %zu)", n);
    rc = rc ? rc : x_axis(b, (struct range){1, n > 1 ? (double)n : 2}, TOP + ph, label);
    for (size_t i = 0; i < s->n && !rc; i++) {
        int y = TOP + ph + AXIS + 20 * ((int)i + 1);
        rc = buf_printf(b,
                        "<circle cx=\"%d\" cy=\"%d\" r=\"5\" fill=\"%s\"/><text x=\"%d\" "
                        "y=\"%d\" font-size=\"12\">",
                        LEFT, y - 4, COLORS[i % NCOLORS], LEFT + 10, y);
        rc = rc ? rc : esc(b, s->v[i].name);
        rc = rc ? rc : buf_puts(b, "</text>");
    }
    return rc ? rc : buf_puts(b, "</svg>");
}

static int table_row(struct buf *b, const struct exp_summary *s, size_t i)
{
    const struct exp_vsum *v = &s->v[i];
    int rc = buf_puts(b, "<tr><td>");
    rc = rc ? rc : esc(b, v->name);
    rc = rc ? rc
            : buf_printf(b, "</td><td>%zu/%zu</td><td>%.4g [%.4g, %.4g]</td><td>", v->n, v->ndone,
                         v->tput.mean, v->tput.lo, v->tput.hi);
    if (!rc && i > 0 && v->tput.vs_ref.method == CMP_RUNS)
        rc = buf_printf(b, "%+.1f%% [%+.1f, %+.1f]", v->tput.vs_ref.rel * 100,
                        v->tput.vs_ref.rel_lo * 100, v->tput.vs_ref.rel_hi * 100);
    else if (!rc && i == 0)
        rc = buf_puts(b, "reference");
    rc = rc ? rc
            : buf_printf(b, "</td><td>%.4g ms [%.4g, %.4g]</td><td>%.1f%%</td><td>",
                         v->lat.mean * 1e3, v->lat.lo * 1e3, v->lat.hi * 1e3, v->tput.cv * 100);
    if (!rc && isfinite(v->cost_per_1000))
        rc = buf_printf(b, "$%.4g", v->cost_per_1000);
    rc = rc ? rc : buf_puts(b, "</td><td>");
    if (!rc && (int)i == s->winner)
        rc = buf_puts(b, "<b>WINNER</b> ");
    if (!rc && v->pareto)
        rc = buf_puts(b, "Pareto ");
    if (!rc && v->differ) {
        rc = buf_puts(b, "<span class=\"bad\">OUTPUTS DIFFER</span>: ");
        rc = rc ? rc : esc(b, v->differ_why);
    }
    if (!rc && !v->slo_ok) {
        rc = buf_puts(b, " <span class=\"bad\">SLO missed</span>: ");
        rc = rc ? rc : esc(b, v->slo_why);
    }
    if (!rc && v->nfail)
        rc = buf_printf(b, " <span class=\"bad\">%zu failed runs</span>", v->nfail);
    if (!rc && v->verdict[0]) {
        rc = buf_puts(b, " verdict: ");
        rc = rc ? rc : esc(b, v->verdict);
    }
    return rc ? rc : buf_puts(b, "</td></tr>\n");
}

static int head(struct buf *b, const struct exp_summary *s, const struct exp_def *d,
                const struct exp_state *st)
{
    int rc = buf_puts(b, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>crux exp ");
    rc = rc ? rc : esc(b, d->name);
    rc = rc ? rc
            : buf_puts(b, "</title><style>body{font:14px sans-serif;margin:2em;max-width:72em}"
                          "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:"
                          "3px 8px;text-align:left}.bad{color:#c00;font-weight:bold}"
                          "</style></head><body><h1>crux exp ");
    rc = rc ? rc : esc(b, d->name);
    rc = rc ? rc
            : buf_printf(b,
                         "</h1><p>%zu variants, %d measured runs each (+%d warm-up), %zu of %zu "
                         "done; seed %llu; %s mode; the reference is ",
                         s->n, d->repeats, d->warmup, s->done, s->total,
                         (unsigned long long)st->seed, s->server ? "server" : "command");
    rc = rc ? rc : esc(b, st->variants[0]);
    rc = rc ? rc : buf_puts(b, ".</p><p><b>");
    rc = rc ? rc : buf_puts(b, s->winner >= 0 ? "Winner: " : "");
    rc = rc ? rc : esc(b, s->why);
    return rc ? rc : buf_puts(b, "</b></p>\n");
}

int exp_write_html(const struct exp_summary *s, const struct exp_def *d, const struct exp_state *st,
                   struct buf *b)
{
    int rc = head(b, s, d, st);
    rc = rc ? rc
            : buf_printf(b,
                         "<table><tr><th>variant</th><th>runs</th><th>%s [95%%]</th><th>vs "
                         "reference</th><th>%s [95%%]</th><th>CV</th><th>$/1k</th><th></th>"
                         "</tr>\n",
                         s->tput_unit, s->lat_name);
    for (size_t i = 0; i < s->n && !rc; i++)
        rc = table_row(b, s, i);
    rc = rc ? rc : buf_puts(b, "</table>\n");
    if (!rc && s->nwarnings) {
        rc = buf_puts(b, "<h2>Warnings</h2><ul>");
        for (size_t i = 0; i < s->nwarnings && !rc; i++) {
            rc = buf_puts(b, "<li>");
            rc = rc ? rc : esc(b, s->warnings[i]);
            rc = rc ? rc : buf_puts(b, "</li>");
        }
        rc = rc ? rc : buf_puts(b, "</ul>\n");
    }
    rc = rc ? rc : plot_throughput(b, s);
    rc = rc ? rc : plot_pareto(b, s);
    rc = rc ? rc : plot_runs(b, s, st);
    return rc ? rc : buf_puts(b, "\n</body></html>\n");
}
