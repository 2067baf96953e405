// SPDX-License-Identifier: MIT
// The load generator's HTML page: summary, latency histogram and sweep curves as inline SVG.
// Self-contained: no scripts, no fonts, no links; the JSON result is embedded as data.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "load/load.h"

#define W 760
#define H 300
#define ML 70 /* left margin */
#define MB 40 /* bottom margin */
#define MT 20
#define MR 20
#define NBINS 48

static int esc(struct buf *b, const char *s)
{
    int rc = 0;
    for (; *s && !rc; s++) {
        switch (*s) {
        case '<':
            rc = buf_puts(b, "&lt;");
            break;
        case '>':
            rc = buf_puts(b, "&gt;");
            break;
        case '&':
            rc = buf_puts(b, "&amp;");
            break;
        case '"':
            rc = buf_puts(b, "&quot;");
            break;
        default:
            rc = buf_putc(b, *s);
        }
    }
    return rc;
}

/* Latency histogram: counts in NBINS log-spaced bins between the min and max, as bars. */
static int histogram_svg(struct buf *b, const struct hist *h, const char *title)
{
    int rc = buf_printf(b, "<h2>%s</h2>\n", title);
    if (rc || !h->total)
        return rc ? rc : buf_puts(b, "<p>no successful requests</p>\n");
    double lo = h->min > 0 ? (double)h->min : 1, hi = (double)h->max + 1;
    if (hi <= lo * 1.01)
        hi = lo * 1.01 + 1;
    double lg_lo = log10(lo), lg_hi = log10(hi);
    double bins[NBINS] = {0};
    size_t pos = 0;
    int64_t blo, bhi;
    uint64_t c;
    while (hist_next(h, &pos, &blo, &bhi, &c)) {
        double mid = ((double)blo + (double)bhi) / 2;
        int k = mid <= lo ? 0 : (int)((log10(mid) - lg_lo) / (lg_hi - lg_lo) * NBINS);
        if (k >= NBINS)
            k = NBINS - 1;
        bins[k] += (double)c;
    }
    double top = 1;
    for (int k = 0; k < NBINS; k++)
        top = bins[k] > top ? bins[k] : top;
    double pw = W - ML - MR, ph = H - MT - MB;
    rc = buf_printf(b,
                    "<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n"
                    "<rect x=\"%d\" y=\"%d\" width=\"%g\" height=\"%g\" class=\"frame\"/>\n",
                    W, H, W, H, ML, MT, pw, ph);
    for (int k = 0; k < NBINS && !rc; k++) {
        double bh = bins[k] / top * ph;
        double b_lo = pow(10, lg_lo + (lg_hi - lg_lo) * k / NBINS);
        double b_hi = pow(10, lg_lo + (lg_hi - lg_lo) * (k + 1) / NBINS);
        rc = buf_printf(b,
                        "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                        "height=\"%.1f\"><title>%.3f-%.3f ms: %.0f requests</title></rect>\n",
                        ML + pw * k / NBINS, MT + ph - bh, pw / NBINS - 1, bh, b_lo / 1e3,
                        b_hi / 1e3, bins[k]);
    }
    for (int t = 0; t <= 4 && !rc; t++) {
        double v = pow(10, lg_lo + (lg_hi - lg_lo) * t / 4);
        rc = buf_printf(b, "<text x=\"%.1f\" y=\"%d\" class=\"tick\">%.3g ms</text>\n",
                        ML + pw * t / 4, H - MB + 16, v / 1e3);
    }
    if (!rc)
        rc = buf_printf(b,
                        "<text x=\"%d\" y=\"%d\" class=\"ytick\">%.0f</text>\n"
                        "<text x=\"%d\" y=\"%d\" class=\"axis\">latency (log scale); bar "
                        "height: requests</text>\n</svg>\n",
                        4, MT + 10, top, ML, H - 6);
    return rc;
}

/* One curve panel of the sweep: x = offered load, y = the given series. */
static int curve_svg(struct buf *b, const struct load_result *r, bool latency)
{
    double xmax = 0, ymax = 0;
    for (size_t i = 0; i < r->nsteps; i++) {
        const struct load_step *s = &r->steps[i];
        xmax = s->load > xmax ? s->load : xmax;
        double y = latency ? (double)s->p99 / 1e3 : s->throughput;
        ymax = y > ymax ? y : ymax;
    }
    if (xmax <= 0)
        xmax = 1;
    if (ymax <= 0)
        ymax = 1;
    ymax *= 1.1;
    double pw = W - ML - MR, ph = H - MT - MB;
    int rc = buf_printf(b,
                        "<h2>%s</h2>\n<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                        "role=\"img\">\n<rect x=\"%d\" y=\"%d\" width=\"%g\" height=\"%g\" "
                        "class=\"frame\"/>\n",
                        latency ? "Latency against offered load (p50, p99)"
                                : "Throughput against offered load",
                        W, H, W, H, ML, MT, pw, ph);
    int nseries = latency ? 2 : 1;
    for (int sidx = 0; sidx < nseries && !rc; sidx++) {
        rc = buf_printf(b, "<polyline class=\"s%d\" points=\"", sidx);
        /* points in order of load */
        double last = -1;
        for (size_t n = 0; n < r->nsteps && !rc; n++) {
            double best = -1;
            size_t bi = 0;
            for (size_t i = 0; i < r->nsteps; i++)
                if (r->steps[i].load > last && (best < 0 || r->steps[i].load < best)) {
                    best = r->steps[i].load;
                    bi = i;
                }
            if (best < 0)
                break;
            last = best;
            const struct load_step *s = &r->steps[bi];
            double y = latency ? (double)(sidx ? s->p99 : s->p50) / 1e3 : s->throughput;
            rc = buf_printf(b, "%.1f,%.1f ", ML + pw * s->load / xmax, MT + ph - ph * y / ymax);
        }
        if (!rc)
            rc = buf_puts(b, "\"/>\n");
    }
    for (size_t i = 0; i < r->nsteps && !rc; i++) {
        const struct load_step *s = &r->steps[i];
        double y = latency ? (double)s->p99 / 1e3 : s->throughput;
        rc = buf_printf(b,
                        "<circle class=\"%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\"><title>load %g: "
                        "throughput %.1f/s, p50 %.3f ms, p99 %.3f ms, SLO %s</title></circle>\n",
                        s->slo_met ? "met" : "miss", ML + pw * s->load / xmax,
                        MT + ph - ph * y / ymax, s->load, s->throughput, s->p50 / 1e3, s->p99 / 1e3,
                        s->slo_met ? "met" : "not met");
    }
    if (!rc && r->knee >= 0)
        rc = buf_printf(b,
                        "<line class=\"knee\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%.1f\"/>"
                        "\n",
                        ML + pw * r->steps[r->knee].load / xmax,
                        ML + pw * r->steps[r->knee].load / xmax, MT, MT + ph);
    for (int t = 0; t <= 4 && !rc; t++)
        rc = buf_printf(b,
                        "<text x=\"%.1f\" y=\"%d\" class=\"tick\">%.4g</text>\n"
                        "<text x=\"4\" y=\"%.1f\" class=\"ytick\">%.4g</text>\n",
                        ML + pw * t / 4, H - MB + 16, xmax * t / 4, MT + ph - ph * t / 4 + 4,
                        ymax * t / 4);
    if (!rc)
        rc = buf_printf(b,
                        "<text x=\"%d\" y=\"%d\" class=\"axis\">offered load (%s); y: %s"
                        "</text>\n</svg>\n",
                        ML, H - 6, r->open_loop ? "requests/s" : "concurrent requests",
                        latency ? "ms (thin: p50, thick: p99; red dots miss the SLO)"
                                : "successful requests/s");
    return rc;
}

/* The timeline: successful responses per second (bars) and the corrected latency of the
 * requests intended in each tick (mean: thin line, max: thick line), one panel each. */
static int timeline_svg(struct buf *b, const struct load_stats *st)
{
    size_t n = st->nticks;
    if (n < 2)
        return 0;
    double rmax = 1, lmax = 1;
    for (size_t i = 0; i < n; i++) {
        double r = st->ticks[i].ok / st->tick_s;
        rmax = r > rmax ? r : rmax;
        double l = (double)st->ticks[i].lat_max / 1e3;
        lmax = l > lmax ? l : lmax;
    }
    rmax *= 1.1;
    lmax *= 1.1;
    double pw = W - ML - MR, ph = (H - MT - MB) / 2.0 - 10;
    int rc = buf_printf(b,
                        "<h2>Over time</h2>\n<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 "
                        "%d %d\" role=\"img\">\n<rect x=\"%d\" y=\"%d\" width=\"%g\" "
                        "height=\"%g\" class=\"frame\"/>\n<rect x=\"%d\" y=\"%g\" width=\"%g\" "
                        "height=\"%g\" class=\"frame\"/>\n",
                        W, H, W, H, ML, MT, pw, ph, ML, MT + ph + 20, pw, ph);
    for (size_t i = 0; i < n && !rc; i++) {
        double r = st->ticks[i].ok / st->tick_s, bh = r / rmax * ph;
        rc = buf_printf(b,
                        "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.2f\" "
                        "height=\"%.1f\"><title>%g-%g s: %.1f ok/s, %u errors</title></rect>\n",
                        ML + pw * i / n, MT + ph - bh, pw / n > 1.5 ? pw / n - 0.5 : pw / n, bh,
                        i * st->tick_s, (i + 1) * st->tick_s, r, st->ticks[i].errors);
    }
    double y0 = MT + ph + 20;
    for (int k = 0; k < 2 && !rc; k++) {
        rc = buf_printf(b, "<polyline class=\"s%d\" points=\"", k ? 1 : 0);
        for (size_t i = 0; i < n && !rc; i++) {
            const struct load_tick *t = &st->ticks[i];
            double l = (k ? (double)t->lat_max : (t->n ? t->lat_sum / t->n : 0)) / 1e3;
            rc = buf_printf(b, "%.1f,%.1f ", ML + pw * (i + 0.5) / n, y0 + ph - ph * l / lmax);
        }
        if (!rc)
            rc = buf_puts(b, "\"/>\n");
    }
    if (!rc)
        rc = buf_printf(b,
                        "<text x=\"4\" y=\"%d\" class=\"ytick\">%.4g/s</text>\n"
                        "<text x=\"4\" y=\"%.1f\" class=\"ytick\">%.4g ms</text>\n"
                        "<text x=\"%d\" y=\"%d\" class=\"tick\">0</text>\n"
                        "<text x=\"%d\" y=\"%d\" class=\"tick\">%g s</text>\n"
                        "<text x=\"%d\" y=\"%d\" class=\"axis\">top: successful responses per "
                        "second; bottom: corrected latency of the requests intended then (thin: "
                        "mean, thick: max)</text>\n</svg>\n",
                        MT + 10, rmax, y0 + 10, lmax, ML, H - MB + 16, W - MR, H - MB + 16,
                        n * st->tick_s, ML, H - 6);
    return rc;
}

/* One scatter of the prefill/decode section. */
struct scatter {
    const char *id, *title, *xlabel, *ylabel;
    bool ok;                 /* the fit exists */
    double slope, intercept; /* of y (us) on x */
};

/* x and y of point `pt` for scatter `k` (0: TTFT on prompt, 1: TPOT on output); false when
 * the point has no such pair. */
static bool scatter_xy(int k, bool usage, const struct prefill_point *pt, double *x, double *y)
{
    if (k == 0) {
        if (usage ? pt->prompt_usage < 0 : pt->prompt_words == PREFILL_NO_PROMPT)
            return false;
        *x = usage ? (double)pt->prompt_usage : pt->prompt_words;
        *y = (double)pt->ttft_us;
        return true;
    }
    if (pt->tpot_us < 0)
        return false;
    *x = pt->out_tokens;
    *y = (double)pt->tpot_us;
    return true;
}

/* Points (x: length, y: ms) with the least-squares line; axes start at 0. */
static int scatter_svg(struct buf *b, const struct prefill *p, int k, bool usage,
                       const struct scatter *sc)
{
    double xmax = 0, ymax = 0, x, y;
    size_t n = 0;
    for (size_t i = 0; i < p->npts; i++)
        if (scatter_xy(k, usage, &p->pts[i], &x, &y)) {
            xmax = x > xmax ? x : xmax;
            ymax = y > ymax ? y : ymax;
            n++;
        }
    if (!n)
        return 0;
    xmax = xmax > 0 ? xmax * 1.05 : 1;
    ymax = ymax > 0 ? ymax * 1.1 : 1;
    double pw = W - ML - MR, ph = H - MT - MB;
    int rc = buf_printf(b,
                        "<h3>%s</h3>\n<svg id=\"%s\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d "
                        "%d\" role=\"img\">\n<rect x=\"%d\" y=\"%d\" width=\"%g\" "
                        "height=\"%g\" class=\"frame\"/>\n",
                        sc->title, sc->id, W, H, W, H, ML, MT, pw, ph);
    for (size_t i = 0; i < p->npts && !rc; i++) {
        if (!scatter_xy(k, usage, &p->pts[i], &x, &y))
            continue;
        rc = buf_printf(b,
                        "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" "
                        "data-x=\"%g\" data-y=\"%g\"><title>%s %g: %.3f ms</title></circle>\n",
                        ML + pw * x / xmax, MT + ph - ph * y / ymax, x, y / 1e3, sc->xlabel, x,
                        y / 1e3);
    }
    if (!rc && sc->ok) {
        /* the line, clipped to the plot */
        double y0 = sc->intercept, y1 = sc->intercept + sc->slope * xmax;
        double c0 = y0 < 0 ? 0 : y0 > ymax ? ymax : y0, c1 = y1 < 0 ? 0 : y1 > ymax ? ymax : y1;
        rc = buf_printf(b,
                        "<line class=\"fit\" x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                        "\n",
                        ML, MT + ph - ph * c0 / ymax, ML + pw, MT + ph - ph * c1 / ymax);
    }
    for (int t = 0; t <= 4 && !rc; t++)
        rc = buf_printf(b,
                        "<text x=\"%.1f\" y=\"%d\" class=\"tick\">%.4g</text>\n"
                        "<text x=\"4\" y=\"%.1f\" class=\"ytick\">%.4g ms</text>\n",
                        ML + pw * t / 4, H - MB + 16, xmax * t / 4, MT + ph - ph * t / 4 + 4,
                        ymax * t / 4 / 1e3);
    if (!rc)
        rc = buf_printf(b,
                        "<text x=\"%d\" y=\"%d\" class=\"axis\">x: %s; y: %s (ms); dashed: the "
                        "least-squares line</text>\n</svg>\n",
                        ML, H - 6, sc->xlabel, sc->ylabel);
    return rc;
}

/* The prefill/decode section: the reading, the shares, the fits and the two scatters. */
static int prefill_section(struct buf *b, const struct load_stats *st)
{
    struct prefill_summary s;
    prefill_summarize(&st->prefill, &s);
    if (!s.n || isnan(s.prefill_share))
        return 0;
    const char *unit = s.usage ? "prompt tokens (usage.prompt_tokens)" : "prompt words";
    int rc = buf_puts(b, "<h2>Prefill and decode</h2>\n<p id=\"crux-prefill-reading\">");
    if (!rc)
        rc = esc(b, s.reading);
    if (!rc)
        rc = buf_printf(b,
                        ".</p>\n<table>\n<tr><th>phase</th><th>share of request time</th>"
                        "<th>fit</th><th>R&#178;</th><th>n</th></tr>\n"
                        "<tr><td>prefill: send to first token (queueing included)</td>"
                        "<td>%.1f%%</td><td>",
                        100 * s.prefill_share);
    if (!rc && s.ttft_ok)
        rc = buf_printf(b, "TTFT = %.3f ms %s %.4f ms &#215; %s</td><td>%.3f</td><td>%llu",
                        s.ttft_intercept_us / 1e3, s.ttft_slope_us < 0 ? "&#8722;" : "+",
                        fabs(s.ttft_slope_us) / 1e3, unit, s.ttft_r2, (unsigned long long)s.ttft_n);
    else if (!rc)
        rc = buf_puts(b, "no fit</td><td></td><td>");
    if (!rc)
        rc = buf_printf(b,
                        "</td></tr>\n<tr><td>decode: first token to last byte</td><td>%.1f%%</td>"
                        "<td>",
                        100 * s.decode_share);
    if (!rc && s.tpot_ok)
        rc = buf_printf(b,
                        "TPOT = %.3f ms %s %.4f ms &#215; output tokens</td><td>%.3f</td><td>%llu",
                        s.tpot_intercept_us / 1e3, s.tpot_slope_us < 0 ? "&#8722;" : "+",
                        fabs(s.tpot_slope_us) / 1e3, s.tpot_r2, (unsigned long long)s.tpot_n);
    else if (!rc)
        rc = buf_puts(b, "no fit</td><td></td><td>");
    if (!rc)
        rc = buf_printf(b,
                        "</td></tr>\n</table>\n<p>The scatters show %zu of %llu streams (a uniform "
                        "sample when there were more); the fits use all of them.</p>\n",
                        st->prefill.npts, (unsigned long long)s.n);
    struct scatter ttft = {
        "crux-scatter-ttft", "TTFT against prompt length", unit, "TTFT", s.ttft_ok,
        s.ttft_slope_us,     s.ttft_intercept_us};
    struct scatter tpot = {
        "crux-scatter-tpot", "TPOT against output length", "output tokens", "TPOT", s.tpot_ok,
        s.tpot_slope_us,     s.tpot_intercept_us};
    if (!rc)
        rc = scatter_svg(b, &st->prefill, 0, s.usage, &ttft);
    if (!rc)
        rc = scatter_svg(b, &st->prefill, 1, s.usage, &tpot);
    return rc;
}

static int steps_table(struct buf *b, const struct load_result *r)
{
    int rc = buf_printf(b,
                        "<h2>Sweep steps (in the order run)</h2>\n<table>\n<tr><th>%s</th>"
                        "<th>throughput</th><th>ok</th><th>errors</th><th>p50</th><th>p90</th>"
                        "<th>p99</th><th>p99.9</th><th>max</th><th>SLO</th></tr>\n",
                        r->open_loop ? "rate (req/s)" : "concurrency");
    for (size_t i = 0; i < r->nsteps && !rc; i++) {
        const struct load_step *s = &r->steps[i];
        rc = buf_printf(b,
                        "<tr><td>%g</td><td>%.1f/s</td><td>%llu</td><td>%llu</td>"
                        "<td>%.3f ms</td><td>%.3f ms</td><td>%.3f ms</td><td>%.3f ms</td>"
                        "<td>%.3f ms</td><td>",
                        s->load, s->throughput, (unsigned long long)s->ok,
                        (unsigned long long)s->errors, s->p50 / 1e3, s->p90 / 1e3, s->p99 / 1e3,
                        s->p999 / 1e3, s->max / 1e3);
        if (!rc)
            rc = esc(b, s->slo_met ? "met" : s->slo_detail);
        if (!rc)
            rc = buf_puts(b, "</td></tr>\n");
    }
    if (!rc)
        rc = buf_puts(b, "</table>\n");
    return rc;
}

static int summary_rows(struct buf *b, const struct load_result *r)
{
    const struct load_stats *st = &r->stats;
    int rc = buf_puts(b, "<table>\n<tr><th>metric</th><th>count</th><th>p50</th><th>p90</th>"
                         "<th>p95</th><th>p99</th><th>p99.9</th><th>max</th><th>mean</th></tr>\n");
    const struct {
        const char *name;
        const struct hist *h;
    } rows[] = {{"latency (corrected, from intended send)", &st->latency},
                {"latency (raw, from actual send)", &st->latency_raw},
                {"send lag", &st->send_lag},
                {"TTFT", &st->ttft},
                {"ITL", &st->itl},
                {"TPOT", &st->tpot}};
    static const double p[] = {50, 90, 95, 99, 99.9};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]) && !rc; i++) {
        const struct hist *h = rows[i].h;
        if (!h->total && i >= 3)
            continue;
        rc = buf_printf(b, "<tr><td>%s</td><td>%llu</td>", rows[i].name,
                        (unsigned long long)h->total);
        for (size_t k = 0; k < 5 && !rc; k++)
            rc = buf_printf(b, "<td>%.3f ms</td>", hist_percentile(h, p[k]) / 1e3);
        if (!rc)
            rc = buf_printf(b, "<td>%.3f ms</td><td>%.3f ms</td></tr>\n", h->max / 1e3,
                            hist_mean(h) / 1e3);
    }
    if (!rc)
        rc = buf_puts(b, "</table>\n");
    return rc;
}

int load_write_html(const struct load_result *r, struct buf *b)
{
    const struct load_stats *st = &r->stats;
    int rc = buf_puts(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n"
                         "<title>crux load</title>\n<style>\n"
                         "body{font:14px sans-serif;margin:2em;color:#222}"
                         "table{border-collapse:collapse}td,th{border:1px solid #ccc;"
                         "padding:3px 8px;text-align:right}td:first-child{text-align:left}"
                         ".frame{fill:none;stroke:#999}.bar{fill:#4a7fb5}.tick,.axis{font-size:"
                         "11px;fill:#444}.tick{text-anchor:middle}.ytick{font-size:11px;fill:#444}."
                         "s0{fill:none;stroke:#4a7fb5;stroke-width:1}"
                         ".s1{fill:none;stroke:#4a7fb5;stroke-width:3}.met{fill:#2a2}"
                         ".miss{fill:#d22}.knee{stroke:#2a2;stroke-dasharray:4}"
                         ".warn{color:#b00}.pt{fill:#4a7fb5;fill-opacity:.6}"
                         ".fit{stroke:#d22;stroke-width:1.5;stroke-dasharray:6 "
                         "3}\n</style></head><body>\n<h1>crux load: ");
    if (!rc)
        rc = esc(b, r->url);
    if (!rc)
        rc = buf_printf(b,
                        "</h1>\n<p>%s; %s; %llu ok, %llu errors, %.1f requests/s over %.2f "
                        "s.</p>\n",
                        r->method,
                        r->open_loop ? (r->sweep ? "open loop sweep" : "open loop")
                                     : (r->sweep ? "closed loop sweep" : "closed loop"),
                        (unsigned long long)st->ok, (unsigned long long)st->errors, st->throughput,
                        st->elapsed_s);
    if (!rc && r->sweep) {
        rc = buf_puts(b, "<p>SLO ");
        if (!rc)
            rc = esc(b, r->slo);
        if (!rc && r->knee >= 0)
            rc = buf_printf(b,
                            ": knee at %g (highest load meeting it). The tables below are "
                            "for the knee step.</p>\n",
                            r->steps[r->knee].load);
        else if (!rc)
            rc = buf_puts(b, ": no load met it. The tables below are for the last step.</p>\n");
        if (!rc)
            rc = curve_svg(b, r, true);
        if (!rc)
            rc = curve_svg(b, r, false);
        if (!rc)
            rc = steps_table(b, r);
    }
    for (int i = 0; i < r->nwarnings && !rc; i++) {
        rc = buf_puts(b, "<p class=\"warn\">warning: ");
        if (!rc)
            rc = esc(b, r->warnings[i]);
        if (!rc)
            rc = buf_puts(b, "</p>\n");
    }
    if (!rc)
        rc = summary_rows(b, r);
    if (!rc)
        rc = histogram_svg(b, &st->latency, "Latency histogram (corrected)");
    if (!rc)
        rc = timeline_svg(b, st);
    if (!rc)
        rc = prefill_section(b, st);
    if (!rc)
        rc = buf_puts(b, "<p>Latency counts from each request's intended send time (the "
                         "schedule), so time spent queued behind a slow server is included; "
                         "TTFT, ITL and TPOT follow vLLM's benchmark_serving.</p>\n"
                         "<script type=\"application/json\" id=\"crux-load-data\">");
    if (!rc) {
        struct jsonw w;
        jsonw_init(&w, b, JSONW_HTML_SAFE);
        load_write_json(r, &w);
        rc = jsonw_error(&w);
    }
    if (!rc)
        rc = buf_puts(b, "</script>\n</body></html>\n");
    return rc;
}
