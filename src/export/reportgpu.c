// SPDX-License-Identifier: MIT
// The report's GPU section: the GPU verdict, an SVG timeline and the run facts of the GPUs.
#include "export/reportgpu.h"

#include <stdlib.h>
#include <string.h>

#include "analysis/phasesplit.h"
#include "export/export.h"
#include "util/xalloc.h"

#define CHART_W 960
#define CHART_H 160
#define CHART_BINS 240

static const char *kind_name(enum gpu_kind k)
{
    static const char *const n[] = {"none",         "idle",          "starved", "launch_bound",
                                    "memory_bound", "compute_bound", "busy"};
    return (unsigned)k <= GPUK_BUSY ? n[k] : "none";
}

static void pct_json(struct jsonw *w, const char *key, double v)
{
    jsonw_key(w, key);
    if (v >= 0)
        jsonw_double(w, v);
    else
        jsonw_null(w);
}

/* "phases": the GPU's means during prefill, decode and mixed (record --load of a streaming
 * server; docs/load.md), or null when no GPU point fell into a phase. */
static void phases_json(struct jsonw *w, const struct profile *p)
{
    static const char *const names[] = {"prefill", "decode", "mixed"};
    struct phase_seg *segs;
    size_t n;
    phasesplit_segments(p, &segs, &n);
    struct phasesplit_gpu g;
    phasesplit_gpu(p, segs, n, &g);
    free(segs);
    jsonw_key(w, "phases");
    if (!g.npts[PHASE_PREFILL] && !g.npts[PHASE_DECODE] && !g.npts[PHASE_MIXED]) {
        jsonw_null(w);
        return;
    }
    jsonw_obj_begin(w);
    for (int k = 0; k < 3; k++) {
        jsonw_key(w, names[k]);
        jsonw_obj_begin(w);
        jsonw_key(w, "points");
        jsonw_u64(w, g.npts[k]);
        pct_json(w, "any_kernel_running", g.busy[k]);
        pct_json(w, "sm_active", g.sm_active[k]);
        jsonw_obj_end(w);
    }
    jsonw_obj_end(w);
}

void reportgpu_json(struct jsonw *w, const struct profile *p, const struct analysis *a)
{
    jsonw_key(w, "gpu");
    const struct gpu_verdict *v = &a->gpu;
    if (!p->gpu.on && !p->gpu.note) {
        jsonw_null(w);
        return;
    }
    jsonw_obj_begin(w);
    jsonw_key(w, "kind");
    jsonw_str(w, kind_name(v->kind));
    jsonw_key(w, "label");
    jsonw_str(w, gpu_kind_label(v->kind));
    char fig[256] = "";
    if (v->kind != GPUK_NONE)
        gpu_verdict_figures(v, fig, sizeof(fig));
    jsonw_key(w, "figures");
    jsonw_str(w, fig);
    jsonw_key(w, "fix");
    jsonw_str(w, gpu_kind_fix(v->kind));
    jsonw_key(w, "not_applied");
    jsonw_str(w, v->not_applied);
    jsonw_key(w, "note");
    if (p->gpu.note)
        jsonw_str(w, p->gpu.note);
    else
        jsonw_null(w);
    jsonw_key(w, "devices");
    jsonw_u64(w, p->gpu.ndevs);
    jsonw_key(w, "window_requests");
    jsonw_bool(w, v->window_requests);
    jsonw_key(w, "points");
    jsonw_u64(w, v->npoints);
    pct_json(w, "any_kernel_running", v->kind != GPUK_NONE ? v->busy : -1);
    pct_json(w, "sm_active", v->sm_active);
    pct_json(w, "sm_occupancy", v->occupancy);
    pct_json(w, "tensor_active", v->tensor);
    pct_json(w, "dram_bandwidth", v->dram);
    pct_json(w, "target_sm_util", v->proc_sm);
    phases_json(w, p);
    jsonw_obj_end(w);
}

/* Series of one figure of device `dev`, averaged per bin; bins with no point are < 0. */
static void bin_series(const struct profile *p, uint32_t dev, int fig, uint64_t span, double *out)
{
    double sum[CHART_BINS] = {0};
    unsigned n[CHART_BINS] = {0};
    for (size_t i = 0; i < p->gpu.npts; i++) {
        const struct pgpu_point *pt = &p->gpu.pts[i];
        if (pt->dev != dev)
            continue;
        float v = fig == 0   ? pt->util_gpu
                  : fig == 1 ? pt->sm_active
                  : fig == 2 ? pt->tensor_active
                             : pt->dram_bw;
        if (v < 0)
            continue;
        size_t b = (size_t)((double)pt->t_ns / (double)span * CHART_BINS);
        b = b >= CHART_BINS ? CHART_BINS - 1 : b;
        sum[b] += v;
        n[b]++;
    }
    for (int b = 0; b < CHART_BINS; b++)
        out[b] = n[b] ? sum[b] / n[b] : -1;
}

static int polyline(struct buf *b, const double *s, const char *cls)
{
    int rc = buf_printf(b, "<polyline class=\"%s\" fill=\"none\" points=\"", cls);
    for (int i = 0; i < CHART_BINS && !rc; i++)
        if (s[i] >= 0)
            rc = buf_printf(b, "%.1f,%.1f ", (i + 0.5) * CHART_W / CHART_BINS,
                            CHART_H - s[i] / 100.0 * CHART_H);
    return rc ? rc : buf_puts(b, "\"/>\n");
}

/* Requests in flight per bin (record --load), shaded behind the lines, scaled to the peak. */
static int requests_band(struct buf *b, const struct profile *p, uint64_t span)
{
    if (!p->nreqs)
        return 0;
    double w[CHART_BINS] = {0}, peak = 0, bin = (double)span / CHART_BINS;
    for (size_t i = 0; i < p->nreqs; i++) {
        const struct preq *r = &p->reqs[i];
        for (int k = 0; k < CHART_BINS; k++) {
            double lo = k * bin, hi = lo + bin;
            double a = (double)r->start_ns > lo ? (double)r->start_ns : lo;
            double z = (double)r->end_ns < hi ? (double)r->end_ns : hi;
            if (z > a)
                w[k] += (z - a) / bin;
        }
    }
    for (int k = 0; k < CHART_BINS; k++)
        peak = w[k] > peak ? w[k] : peak;
    int rc = 0;
    for (int k = 0; k < CHART_BINS && !rc && peak > 0; k++)
        if (w[k] > 0)
            rc = buf_printf(b,
                            "<rect class=\"greq\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                            "height=\"%.1f\"/>\n",
                            (double)k * CHART_W / CHART_BINS, CHART_H - w[k] / peak * CHART_H,
                            (double)CHART_W / CHART_BINS, w[k] / peak * CHART_H);
    return rc ? rc
              : buf_printf(b,
                           "<text x=\"4\" y=\"%d\" class=\"gax\">requests in flight "
                           "(shaded, peak %.0f)</text>\n",
                           CHART_H - 4, peak);
}

static int chart(struct buf *b, const struct profile *p, uint32_t dev)
{
    uint64_t span = p->meta.duration_ns;
    for (size_t i = 0; i < p->gpu.npts; i++)
        span = p->gpu.pts[i].t_ns + 1 > span ? p->gpu.pts[i].t_ns + 1 : span;
    double s[CHART_BINS];
    int rc = buf_printf(b,
                        "<svg class=\"gpuchart\" viewBox=\"0 0 %d %d\" width=\"100%%\" "
                        "preserveAspectRatio=\"none\" role=\"img\">\n",
                        CHART_W, CHART_H);
    rc = rc ? rc : requests_band(b, p, span);
    static const char *const cls[4] = {"gbusy", "gsm", "gtensor", "gdram"};
    for (int f = 0; f < 4 && !rc; f++) {
        bin_series(p, dev, f, span, s);
        rc = polyline(b, s, cls[f]);
    }
    rc = rc ? rc : buf_printf(b, "<text x=\"4\" y=\"12\" class=\"gax\">100%%</text>\n");
    return rc ? rc : buf_puts(b, "</svg>\n");
}

static int esc(struct buf *b, const char *s)
{
    return export_xml_escape(b, s, strlen(s));
}

static const char STYLE[] =
    "<style>\n"
    ".gpuchart{border:1px solid #ccc;height:160px;background:#fafafa}\n"
    ".gpuchart polyline{stroke-width:1.5;vector-effect:non-scaling-stroke}\n"
    ".gbusy{stroke:#d62728}.gsm{stroke:#1f77b4}.gtensor{stroke:#2ca02c}.gdram{stroke:#9467bd}\n"
    ".greq{fill:#ffdd99;opacity:.6}.gax{font:10px sans-serif;fill:#666}\n"
    ".gkey span{margin-right:14px}\n"
    "</style>\n";

static const char KEY[] =
    "<p class=\"gkey\"><span style=\"color:#d62728\">&#9632; any kernel running % (NVML "
    "utilization.gpu: one tiny kernel reads as 100%)</span><span style=\"color:#1f77b4\">"
    "&#9632; SM active % (GPM)</span><span style=\"color:#2ca02c\">&#9632; tensor active % "
    "(GPM)</span><span style=\"color:#9467bd\">&#9632; DRAM bandwidth % (GPM)</span></p>\n";

int reportgpu_html(struct buf *b, const struct profile *p, const struct analysis *a)
{
    if (!p->gpu.on && !p->gpu.note)
        return 0;
    const struct gpu_verdict *v = &a->gpu;
    int rc = buf_puts(b, STYLE);
    rc = rc ? rc : buf_puts(b, "<section id=\"gpu\">\n<h2>GPU</h2>\n");
    if (!rc && v->kind != GPUK_NONE) {
        char fig[256];
        gpu_verdict_figures(v, fig, sizeof(fig));
        rc = buf_puts(b, "<p class=\"gverdict\"><b>");
        rc = rc ? rc : esc(b, gpu_kind_label(v->kind));
        rc = rc ? rc : buf_puts(b, "</b>: ");
        rc = rc ? rc : esc(b, fig);
        rc = rc ? rc
                : buf_printf(b, " (%s)</p>\n",
                             v->window_requests ? "while requests were in flight"
                                                : "over the recording");
        if (!rc && v->kind != GPUK_IDLE) {
            rc = buf_puts(b, "<p class=\"gfix\">Fix: ");
            rc = rc ? rc : esc(b, gpu_kind_fix(v->kind));
            rc = rc ? rc : buf_puts(b, "</p>\n");
        }
    }
    if (!rc && v->not_applied[0]) {
        rc = buf_puts(b, "<p class=\"gna\">Rules not applied: ");
        rc = rc ? rc : esc(b, v->not_applied);
        rc = rc ? rc : buf_puts(b, "</p>\n");
    }
    if (!rc && p->gpu.note) {
        rc = buf_puts(b, "<p class=\"gnote\">Note: ");
        rc = rc ? rc : esc(b, p->gpu.note);
        rc = rc ? rc : buf_puts(b, "</p>\n");
    }
    for (uint32_t d = 0; d < p->gpu.ndevs && d < 8 && !rc && p->gpu.npts; d++) {
        rc = buf_printf(b, "<h3>GPU %u: ", p->gpu.devs[d].index);
        rc = rc ? rc : esc(b, p->gpu.devs[d].name);
        rc = rc ? rc : buf_puts(b, "</h3>\n");
        rc = rc ? rc : chart(b, p, d);
    }
    if (!rc && p->gpu.npts)
        rc = buf_puts(b, KEY);
    return rc ? rc : buf_puts(b, "</section>\n");
}

int reportgpu_facts(struct buf *b, const struct profile *p)
{
    const struct pgpu *g = &p->gpu;
    if (!g->on)
        return 0;
    int rc = buf_printf(b, "<tr><th>GPUs</th><td>%u: ", g->ndevs);
    for (uint32_t i = 0; i < g->ndevs && !rc; i++) {
        rc = buf_puts(b, i ? "; " : "");
        rc = rc ? rc : esc(b, g->devs[i].name);
        rc = rc ? rc
                : buf_printf(b, " (%.1f GiB%s)", (double)g->devs[i].mem_total / (1 << 30),
                             g->devs[i].gpm ? ", GPM" : "");
    }
    rc = rc ? rc : buf_puts(b, "</td></tr>\n<tr><th>GPU driver</th><td>");
    rc = rc ? rc : esc(b, g->driver ? g->driver : "unknown");
    if (!rc && g->nvml_version) {
        rc = buf_puts(b, " (NVML ");
        rc = rc ? rc : esc(b, g->nvml_version);
        rc = rc ? rc : buf_puts(b, ")");
    }
    return rc ? rc : buf_puts(b, "</td></tr>\n");
}
