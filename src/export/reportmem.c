// SPDX-License-Identifier: MIT
// The report's allocation section (reportmem.h), from analysis/allocs.h's views and the memory
// verdict. Static markup and SVG: readable before any script runs.
#include "export/reportmem.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/allocreq.h"
#include "analysis/allocs.h"
#include "export/export.h"
#include "util/xalloc.h"

#define CHART_W 960
#define CHART_H 160
#define RSS_POINTS 480
#define ROWS 15
#define STACK_MAX 48

static double mb(double bytes)
{
    return bytes / (1024.0 * 1024.0);
}

static const char *kind_name(enum mem_kind k)
{
    return k == MEMK_GROWING ? "growing_heap" : k == MEMK_CHURN ? "churn" : "none";
}

void reportmem_json(struct jsonw *w, const struct profile *p, const struct analysis *a)
{
    jsonw_key(w, "allocations");
    const struct mem_verdict *v = &a->mem;
    if (!v->recorded) {
        jsonw_null(w);
        return;
    }
    char fig[512];
    mem_verdict_figures(v, p, fig, sizeof(fig));
    jsonw_obj_begin(w);
    jsonw_key(w, "kind");
    jsonw_str(w, kind_name(v->kind));
    jsonw_key(w, "label");
    jsonw_str(w, mem_kind_label(v->kind));
    jsonw_key(w, "figures");
    jsonw_str(w, fig);
    jsonw_key(w, "fix");
    jsonw_str(w, mem_kind_fix(v->kind));
    jsonw_key(w, "total_bytes");
    jsonw_u64(w, v->total_bytes);
    jsonw_key(w, "bytes_per_s");
    jsonw_double(w, v->rate);
    jsonw_key(w, "temp_share");
    jsonw_double(w, v->temp_share);
    jsonw_key(w, "peak_live_bytes");
    jsonw_i64(w, v->peak_live);
    jsonw_key(w, "heap_growth_bytes");
    jsonw_i64(w, v->heap_growth);
    jsonw_key(w, "leaks");
    jsonw_u64(w, v->nleaks);
    jsonw_key(w, "rss_at_peak");
    jsonw_u64(w, v->rss_at_peak);
    jsonw_key(w, "gap_bytes");
    jsonw_i64(w, v->gap);
    jsonw_key(w, "copy_sample_bytes");
    jsonw_u64(w, p->copy_sample_bytes);
    jsonw_key(w, "killed_signal"); /* 0: the target was not killed */
    jsonw_i64(w, p->meta.killed_signal);
    jsonw_key(w, "out_of_memory"); /* null: cannot be told, or not killed by SIGKILL */
    if (p->meta.killed_signal == SIGKILL && p->meta.oom_kills >= 0)
        jsonw_bool(w, p->meta.oom_kills > 0);
    else
        jsonw_null(w);
    jsonw_obj_end(w);
}

/* Writer with a sticky error (as report.c's). */
struct out {
    struct buf *b;
    int rc;
};

static void put(struct out *o, const char *s)
{
    if (!o->rc)
        o->rc = buf_puts(o->b, s);
}

static void esc(struct out *o, const char *s)
{
    if (!o->rc && s)
        o->rc = export_xml_escape(o->b, s, strlen(s));
}

static void putf(struct out *o, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void putf(struct out *o, const char *fmt, ...)
{
    if (o->rc)
        return;
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        o->rc = buf_append(o->b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void frame_text(struct out *o, const struct profile *p, uint32_t frame)
{
    if (frame == UINT32_MAX) {
        put(o, "[no Python frame]");
        return;
    }
    const struct pframe *f = &p->frames[frame];
    put(o, "<code>");
    esc(o, profile_string(p, f->name));
    put(o, "</code> <span class=\"file\">");
    esc(o, profile_string(p, f->file));
    putf(o, ":%d</span>", (int)f->line);
}

/* The site's line, and its stack (root first) folded under it. */
static void site_cell(struct out *o, const struct profile *p, const struct alloc_site *s)
{
    put(o, "<td>");
    frame_text(o, p, s->frame);
    uint32_t frames[STACK_MAX];
    size_t d = s->stack ? profile_stack_frames(p, s->stack, frames, STACK_MAX) : 0;
    d = d < STACK_MAX ? d : STACK_MAX;
    if (d > 1) {
        put(o, "<details><summary>stack</summary><ol class=\"mstack\">");
        for (size_t k = 0; k < d; k++) {
            put(o, "<li>");
            frame_text(o, p, frames[k]);
            put(o, "</li>");
        }
        put(o, "</ol></details>");
    }
    put(o, "</td>");
}

/* RSS of the main process (else the first seen), thinned, as SVG points over `span`. */
static void rss_line(struct out *o, const struct profile *p, uint64_t span, double ymax)
{
    uint32_t pid = p->meta.pid;
    size_t n = 0;
    for (size_t i = 0; i < p->nmem; i++)
        n += p->mem[i].pid == pid;
    if (!n && p->nmem) {
        pid = p->mem[0].pid;
        for (size_t i = 0; i < p->nmem; i++)
            n += p->mem[i].pid == pid;
    }
    if (!n)
        return;
    size_t step = n > RSS_POINTS ? (n + RSS_POINTS - 1) / RSS_POINTS : 1, j = 0;
    put(o, "<polyline class=\"mrss\" fill=\"none\" points=\"");
    for (size_t i = 0; i < p->nmem; i++) {
        const struct pmem *m = &p->mem[i];
        if (m->pid != pid || j++ % step)
            continue;
        putf(o, "%.1f,%.1f ", (double)m->t_ns / (double)span * CHART_W,
             CHART_H - (double)m->rss / ymax * (CHART_H - 14));
    }
    put(o, "\"/>\n");
}

static void chart(struct out *o, const struct profile *p, const struct alloc_view *v)
{
    uint64_t span = v->duration_ns > p->meta.duration_ns ? v->duration_ns : p->meta.duration_ns;
    double ymax = (double)v->peak_live, rmax = 0;
    for (size_t i = 0; i < p->nmem; i++) {
        span = p->mem[i].t_ns + 1 > span ? p->mem[i].t_ns + 1 : span;
        ymax = (double)p->mem[i].rss > ymax ? (double)p->mem[i].rss : ymax;
    }
    for (int b = 0; b < ALLOCS_TIMELINE; b++)
        rmax = (double)v->rate[b] > rmax ? (double)v->rate[b] : rmax;
    if (!span || ymax <= 0)
        return;
    double bw = (double)v->duration_ns / ALLOCS_TIMELINE / (double)span * CHART_W;
    putf(o,
         "<svg class=\"memchart\" viewBox=\"0 0 %d %d\" width=\"100%%\" "
         "preserveAspectRatio=\"none\" role=\"img\">\n",
         CHART_W, CHART_H);
    for (int b = 0; b < ALLOCS_TIMELINE && rmax > 0; b++)
        if (v->rate[b])
            putf(o,
                 "<rect class=\"mrate\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>\n",
                 b * bw, CHART_H - (double)v->rate[b] / rmax * (CHART_H - 14), bw,
                 (double)v->rate[b] / rmax * (CHART_H - 14));
    rss_line(o, p, span, ymax);
    put(o, "<polyline class=\"mlive\" fill=\"none\" points=\"");
    for (int b = 0; b < ALLOCS_TIMELINE; b++)
        putf(o, "%.1f,%.1f ", (b + 1) * bw, CHART_H - (double)v->live[b] / ymax * (CHART_H - 14));
    put(o, "\"/>\n");
    putf(o, "<text x=\"4\" y=\"11\" class=\"gax\">%.1f MB</text>\n", mb(ymax));
    put(o, "</svg>\n");
    double bucket_s = (double)v->duration_ns / ALLOCS_TIMELINE / 1e9;
    putf(o,
         "<p class=\"gkey\"><span style=\"color:#1f77b4\">&#9632; live sampled bytes</span>"
         "<span style=\"color:#d62728\">&#9632; RSS</span><span style=\"color:#e8b04a\">"
         "&#9632; allocation rate (bars, peak %.0f MB/s)</span> over %.1f s</p>\n",
         bucket_s > 0 ? mb(rmax) / bucket_s : 0.0, (double)span / 1e9);
}

static const struct alloc_site *g_sites; /* qsort has no context argument */

static int by_peak(const void *x, const void *y)
{
    const struct alloc_site *a = &g_sites[*(const size_t *)x], *b = &g_sites[*(const size_t *)y];
    if (a->peak_live != b->peak_live)
        return a->peak_live > b->peak_live ? -1 : 1;
    return *(const size_t *)x < *(const size_t *)y ? -1 : 1;
}

static int by_temp(const void *x, const void *y)
{
    const struct alloc_site *a = &g_sites[*(const size_t *)x], *b = &g_sites[*(const size_t *)y];
    if (a->temp != b->temp)
        return a->temp > b->temp ? -1 : 1;
    return *(const size_t *)x < *(const size_t *)y ? -1 : 1;
}

static size_t *order(const struct alloc_view *v, int (*cmp)(const void *, const void *))
{
    size_t *idx = xmalloc((v->nlines + 1) * sizeof(*idx));
    for (size_t i = 0; i < v->nlines; i++)
        idx[i] = i;
    g_sites = v->lines;
    qsort(idx, v->nlines, sizeof(*idx), cmp);
    return idx;
}

static void peak_table(struct out *o, const struct profile *p, const struct alloc_view *v)
{
    putf(o,
         "<h3>Lines holding the heap at its peak (%.1f MB live at %.2f s)</h3>\n"
         "<table class=\"t\" id=\"mempeak\"><thead><tr><th class=\"r\">at peak MB</th>"
         "<th class=\"r\">share</th><th class=\"r\">allocated MB</th><th class=\"r\">count</th>"
         "<th class=\"r\">at end MB</th><th>line</th></tr></thead><tbody>\n",
         mb((double)v->peak_live), (double)v->peak_ns / 1e9);
    size_t *idx = order(v, by_peak);
    for (size_t i = 0; i < v->nlines && i < ROWS; i++) {
        const struct alloc_site *s = &v->lines[idx[i]];
        if (s->peak_live <= 0)
            break;
        putf(o,
             "<tr><td class=\"r\">%.1f</td><td class=\"r\">%.0f%%</td><td class=\"r\">%.1f</td>"
             "<td class=\"r\">%.0f</td><td class=\"r\">%.1f</td>",
             mb((double)s->peak_live),
             v->peak_live > 0 ? 100.0 * (double)s->peak_live / (double)v->peak_live : 0,
             mb((double)s->bytes), s->count, mb((double)s->end_live));
        site_cell(o, p, s);
        put(o, "</tr>\n");
    }
    put(o, "</tbody></table>\n");
    free(idx);
}

static void leak_table(struct out *o, const struct profile *p, const struct alloc_view *v)
{
    put(o, "<h3>Leaks</h3>\n");
    size_t n = 0;
    for (size_t i = 0; i < v->nlines; i++) {
        const struct alloc_site *s = &v->lines[i];
        if (!s->leak)
            continue;
        if (!n++)
            put(o, "<table class=\"t\" id=\"memleaks\"><thead><tr><th class=\"r\">growth MB</th>"
                   "<th class=\"r\">of the heap's growth</th><th class=\"r\">likelihood</th>"
                   "<th class=\"r\">at end MB</th><th>line</th></tr></thead><tbody>\n");
        putf(o,
             "<tr><td class=\"r\">%+.1f</td><td class=\"r\">%.0f%%</td><td class=\"r\">%.3f</td>"
             "<td class=\"r\">%.1f</td>",
             mb((double)s->growth),
             v->heap_growth > 0 ? 100.0 * (double)s->growth / (double)v->heap_growth : 0,
             s->likelihood, mb((double)s->end_live));
        site_cell(o, p, s);
        put(o, "</tr>\n");
    }
    if (n)
        put(o, "</tbody></table>\n");
    put(o, n ? "<p class=\"method\">" : "<p id=\"memnoleak\">None found. <span class=\"method\">");
    put(o, "A leak: the line's live bytes at the end of 20 equal spans trend upward (one-sided "
           "Mann-Kendall, likelihood &ge; 0.95), grow by &ge; 1% of the peak heap and still grow "
           "over the second half.");
    put(o, n ? "</p>\n" : "</span></p>\n");
}

static void temp_table(struct out *o, const struct profile *p, const struct alloc_view *v)
{
    size_t *idx = order(v, by_temp);
    if (v->nlines && v->lines[idx[0]].temp) {
        put(o, "<h3>Temporaries (freed within 10 ms)</h3>\n<table class=\"t\" id=\"memtemp\">"
               "<thead><tr><th class=\"r\">temporary MB</th><th class=\"r\">of the line's "
               "bytes</th><th class=\"r\">allocated MB</th><th class=\"r\">count</th><th>line"
               "</th></tr></thead><tbody>\n");
        for (size_t i = 0; i < v->nlines && i < ROWS; i++) {
            const struct alloc_site *s = &v->lines[idx[i]];
            if (!s->temp)
                break;
            putf(o,
                 "<tr><td class=\"r\">%.1f</td><td class=\"r\">%.0f%%</td><td class=\"r\">%.1f"
                 "</td><td class=\"r\">%.0f</td>",
                 mb((double)s->temp), s->bytes ? 100.0 * (double)s->temp / (double)s->bytes : 0,
                 mb((double)s->bytes), s->count);
            site_cell(o, p, s);
            put(o, "</tr>\n");
        }
        put(o, "</tbody></table>\n");
    }
    free(idx);
}

static void gap_text(struct out *o, const struct mem_verdict *m)
{
    put(o, "<h3>RSS against live bytes</h3>\n<p id=\"memgap\">");
    if (!m->rss_at_peak) {
        put(o, "No RSS was read during the recording.</p>\n");
        return;
    }
    putf(o,
         "At the heap's peak RSS was %.1f MB and live sampled bytes %.1f MB: a gap of "
         "<b>%.1f MB</b> (%.0f%% of RSS). ",
         mb((double)m->rss_at_peak), mb((double)m->peak_live), mb((double)m->gap),
         100.0 * (double)m->gap / (double)m->rss_at_peak);
    if (m->gap < 0)
        put(o, "RSS is below the estimate of live bytes: the gap is within the sampling error "
               "(and RSS is read once a round, up to a round from the peak), so nothing is "
               "retained beyond live objects. ");
    put(o, "<span class=\"method\">The gap is not all fragmentation: it holds the interpreter and "
           "its libraries (code, data, loaded modules), memory allocated before the hooks were "
           "installed, pymalloc arenas kept for freed objects, and memory glibc malloc keeps on "
           "its free lists instead of returning it to the kernel. A gap that grows while live "
           "bytes do not is retention (arenas and free lists), not live objects. Live bytes are "
           "an estimate from samples (Horvitz-Thompson): at the default 512 KiB their error is a "
           "few MB.</span></p>\n");
}

/* Copy volume (memcpy/memmove, PALLOC_COPY): the lines that copy most, with MB/s over the
 * recording. */
static void copy_table(struct out *o, const struct profile *p, const struct alloc_view *v)
{
    put(o, "<h3>Copies (memcpy, memmove)</h3>\n<p id=\"memcopy\">");
    if (!p->copy_sample_bytes) {
        put(o, "Copies were not sampled.</p>\n");
        return;
    }
    putf(o,
         "%.1f MB copied in all (%.0f MB/s over the recording; a sample every %.1f MB copied on "
         "average).</p>\n",
         mb((double)v->copy_total), mb(allocs_rate(p, v->copy_total)),
         mb((double)p->copy_sample_bytes));
    if (!v->ncopy_lines)
        return;
    put(o, "<table class=\"t\" id=\"memcopies\"><thead><tr><th class=\"r\">copied MB</th>"
           "<th class=\"r\">share</th><th class=\"r\">MB/s</th><th class=\"r\">copies</th>"
           "<th>line</th></tr></thead><tbody>\n");
    for (size_t i = 0; i < v->ncopy_lines && i < ROWS; i++) {
        const struct alloc_site *s = &v->copy_lines[i];
        putf(o,
             "<tr><td class=\"r\">%.1f</td><td class=\"r\">%.0f%%</td><td class=\"r\">%.1f"
             "</td><td class=\"r\">%.0f</td>",
             mb((double)s->copy_bytes),
             v->copy_total ? 100.0 * (double)s->copy_bytes / (double)v->copy_total : 0,
             mb(allocs_rate(p, s->copy_bytes)), s->copies);
        site_cell(o, p, s);
        put(o, "</tr>\n");
    }
    put(o, "</tbody></table>\n");
}

/* Bytes per request: with the crux agent's request spans only. */
static void request_table(struct out *o, const struct profile *p)
{
    struct allocreq_view r;
    allocreq_build(p, &r);
    if (!r.requests)
        return;
    putf(o,
         "<h3>Bytes per request</h3>\n<p id=\"memreq\">Over %zu requests (the crux agent's "
         "request spans): <b>%.1f KB retained per request</b> (live when the request ended; "
         "%.1f KB of it never freed while recorded), %.1f KB allocated per request, at most "
         "%.1f KB retained by one request. <span class=\"method\">An allocation belongs to the "
         "request open on its thread when it was made.</span></p>\n",
         r.requests, r.retained / 1024.0, r.kept / 1024.0, r.allocated / 1024.0,
         (double)r.max_retained / 1024.0);
    if (!r.nlines)
        return;
    put(o, "<table class=\"t\" id=\"memreqlines\"><thead><tr><th class=\"r\">retained KB "
           "per request</th><th class=\"r\">never freed KB per request</th><th>line</th></tr>"
           "</thead><tbody>\n");
    for (size_t i = 0; i < r.nlines; i++) {
        struct alloc_site s = {.frame = r.lines[i].frame, .stack = r.lines[i].stack};
        putf(o, "<tr><td class=\"r\">%.1f</td><td class=\"r\">%.1f</td>",
             r.lines[i].retained / 1024.0, r.lines[i].kept / 1024.0);
        site_cell(o, p, &s);
        put(o, "</tr>\n");
    }
    put(o, "</tbody></table>\n");
}

/* A target that died of a signal: said before everything else, with what the heap held. */
static void killed_text(struct out *o, const struct profile *p, const struct alloc_view *v)
{
    int sig = p->meta.killed_signal;
    if (!sig)
        return;
    const char *why = sig != SIGKILL           ? "not for memory"
                      : p->meta.oom_kills > 0  ? "out of memory: the kernel's OOM killer acted"
                      : p->meta.oom_kills == 0 ? "not by the OOM killer"
                                               : "whether for memory cannot be told";
    putf(o,
         "<p class=\"mkilled\" id=\"memkilled\"><b>The target was killed by signal %d</b> "
         "(%s); the heap peaked at %.1f MB live at %.2f s. Lines holding it then:</p>\n",
         sig, why, mb((double)v->peak_live), (double)v->peak_ns / 1e9);
}

static const char STYLE[] =
    "<style>\n"
    ".memchart{border:1px solid #ccc;height:160px;background:#fafafa}\n"
    ".memchart polyline{stroke-width:1.5;vector-effect:non-scaling-stroke}\n"
    ".mlive{stroke:#1f77b4}.mrss{stroke:#d62728}.mrate{fill:#e8b04a;opacity:.45}\n"
    ".mstack{margin:2px 0;padding-left:22px;font-size:11px}\n"
    "#allocations .gkey span{margin-right:14px}\n"
    "</style>\n";

int reportmem_html(struct buf *b, const struct profile *p, const struct analysis *a)
{
    const struct mem_verdict *m = &a->mem;
    if (!m->recorded)
        return 0;
    struct out o = {b, 0};
    struct alloc_view v;
    allocs_view_build(p, &v);
    put(&o, STYLE);
    put(&o, "<section id=\"allocations\">\n<h2>Memory: allocations</h2>\n<p class=\"mverdict\">");
    char fig[512];
    mem_verdict_figures(m, p, fig, sizeof(fig));
    if (m->kind != MEMK_NONE) {
        put(&o, "<b>");
        esc(&o, mem_kind_label(m->kind));
        put(&o, "</b>: ");
    }
    esc(&o, fig);
    putf(&o, " (%s", p->alloc_sample_bytes ? "sampled" : "every allocation");
    if (p->allocs_dropped)
        putf(&o, "; %llu events lost: live bytes may be overstated",
             (unsigned long long)p->allocs_dropped);
    put(&o, ")</p>\n");
    if (m->kind != MEMK_NONE) {
        put(&o, "<p class=\"mfix\">Fix: ");
        esc(&o, mem_kind_fix(m->kind));
        put(&o, "</p>\n");
    }
    killed_text(&o, p, &v);
    if (p->meta.killed_signal)
        peak_table(&o, p, &v);
    chart(&o, p, &v);
    gap_text(&o, m);
    if (!p->meta.killed_signal)
        peak_table(&o, p, &v);
    leak_table(&o, p, &v);
    temp_table(&o, p, &v);
    request_table(&o, p);
    copy_table(&o, p, &v);
    put(&o, "</section>\n");
    allocs_view_fini(&v);
    return o.rc;
}
