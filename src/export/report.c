// SPDX-License-Identifier: MIT
// The HTML report: static, escaped markup for the verdict and the tables (readable before any
// script runs), the flame graph's data and viewer reused from flamegraph.c, and a small script
// for colouring by stage or category and drawing the thread and memory timelines.
#include "export/report.h"
#include "export/reportgpu.h"
#include "export/reportmem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "analysis/verdict.h"
#include "export/flamegraph.h"
#include "export/flamegraph_assets.h"
#include "export/flametree.h"
#include "export/report_assets.h"
#include "store/store.h"
#include "util/jsonw.h"
#include "util/xalloc.h"

#define TABLE_ROWS 50
#define TIMELINE_BINS 240
#define TIMELINE_THREADS 24
#define MEM_POINTS 1000

/* Writer with a sticky error, so that long runs of markup stay readable. */
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
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    o->rc = buf_append(o->b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static double pct(double v, double of)
{
    return of > 0 ? 100.0 * v / of : 0.0;
}

/* Short file name: the last two path components. */
static const char *short_path(const char *file)
{
    const char *slash = strrchr(file, '/');
    if (!slash)
        return file;
    const char *prev = slash;
    while (prev > file && prev[-1] != '/')
        prev--;
    return prev > file ? prev : slash + 1;
}

static const char *const cat_colors[PCAT_N] = {"#cfcfcf", "#f0a040", "#5aa6d6",
                                               "#9a9a9a", "#d64545", "#e0c040"};

/* A bar of the category split of `cat` (counts), `n` their sum. */
static void split_bar(struct out *o, const uint64_t *cat, uint64_t n)
{
    put(o, "<span class=\"split\">");
    for (int k = 0; k < PCAT_N; k++) {
        if (!cat[k] || !n)
            continue;
        putf(o, "<i style=\"width:%.1f%%;background:%s\" title=\"%s %.1f%%\"></i>",
             pct((double)cat[k], (double)n), cat_colors[k], sample_cat_names[k],
             pct((double)cat[k], (double)n));
    }
    put(o, "</span>");
}

static void frame_cells(struct out *o, const struct profile *p, uint32_t frame, bool line)
{
    const struct pframe *f = profile_frame_at(p, frame);
    const char *name = profile_string(p, f->name);
    const char *file = profile_string(p, f->file);
    put(o, "<td class=\"fn\">");
    esc(o, name[0] ? name : "?");
    put(o, "</td><td class=\"file\" title=\"");
    esc(o, file);
    put(o, "\">");
    esc(o, short_path(file));
    if (line && f->line > 0)
        putf(o, ":%d", (int)f->line);
    put(o, "</td>");
}

static void write_verdict(struct out *o, const struct profile *p, const struct analysis *a)
{
    const struct candidate *v = &a->verdict;
    put(o, a->has_verdict ? "<section id=\"verdict\" class=\"found\">\n"
                          : "<section id=\"verdict\" class=\"none\">\n");
    if (a->has_verdict) {
        put(o, "<h2 id=\"verdict-title\">Bottleneck: ");
        esc(o, btype_label(v->type));
        put(o, "</h2>\n<p class=\"big\">");
        putf(o, "%.0f%% of wall time (95%% CI %.0f&ndash;%.0f%%), mostly in stage <q>",
             100 * v->s.p, 100 * v->s.lo, 100 * v->s.hi);
        esc(o, a->stage_names[v->stage]);
        putf(o, "</q> (%.0f%%).</p>\n", 100 * v->stage_s.p);
        struct buf eb;
        buf_init(&eb, 4096);
        verdict_evidence_text(p, v->ev, &eb);
        putf(o, "<p class=\"evidence\"><strong>Evidence:</strong> %.0f%% of it ",
             100 * v->ev_share);
        esc(o, buf_cstr(&eb));
        put(o, ".</p>\n");
        buf_fini(&eb);
        if (a->reason[0]) {
            put(o, "<p>");
            esc(o, a->reason);
            put(o, ".</p>\n");
        }
        if (a->nbehind) {
            put(o, "<p>Behind it:</p>\n<ol class=\"behind\">\n");
            for (uint32_t i = 0; i < a->nbehind && i < 5; i++) {
                const struct pframe *f = profile_frame_at(p, a->behind[i].frame);
                put(o, "<li><code>");
                esc(o, profile_string(p, f->name));
                put(o, "</code> <span class=\"file\">");
                esc(o, short_path(profile_string(p, f->file)));
                if (f->line > 0)
                    putf(o, ":%d", (int)f->line);
                putf(o, "</span> &mdash; %.1f%% of wall time</li>\n",
                     pct(a->behind[i].vw, a->wall));
            }
            put(o, "</ol>\n");
        }
        put(o, "<p class=\"fix\"><strong>What usually fixes it:</strong> ");
        esc(o, verdict_fix(p, a, v));
        put(o, "</p>\n");
    } else {
        put(o, "<h2 id=\"verdict-title\">No clear bottleneck</h2>\n<p class=\"big\">");
        esc(o, a->reason);
        put(o, ".</p>\n");
    }
    if (a->has_second) {
        put(o, "<p class=\"second\">");
        put(o, a->has_verdict ? "Close second: " : "Next: ");
        esc(o, btype_label(a->second.type));
        putf(o, ", %.0f%% (%.0f&ndash;%.0f%%), stage <q>", 100 * a->second.s.p,
             100 * a->second.s.lo, 100 * a->second.s.hi);
        esc(o, a->stage_names[a->second.stage]);
        put(o, "</q>.</p>\n");
    }
    putf(o,
         "<p class=\"method\">Shares are of wall time over %.0f %s%s; intervals are 95%% "
         "Wilson intervals on that count. Unmatched time is shown as <q>other</q>.",
         a->wall, a->per_tick ? "sampling ticks" : "samples",
         a->no_request > 0 ? " with requests in flight" : "");
    if (a->no_request > 0)
        putf(o,
             " The %.0f ticks (%.0f%% of the recording) when the load had no request in "
             "flight, with the server idle or starting, are left out.",
             a->no_request, 100 * a->no_request / (a->no_request + a->wall));
    put(o, "</p>\n");
    put(o, "</section>\n");
}

static void write_stages(struct out *o, const struct analysis *a)
{
    put(o, "<section id=\"stages\">\n<h2>Stages</h2>\n<table class=\"t\"><thead><tr><th>stage"
           "</th><th>type (on CPU / waiting)</th><th class=\"r\">share of wall</th><th "
           "class=\"r\">95% CI</th><th class=\"barc\"></th></tr></thead><tbody>\n");
    uint32_t *idx = xmalloc(((size_t)a->nstages + 1) * sizeof(*idx));
    uint32_t k = analysis_stage_order(a, idx);
    for (uint32_t i = 0; i < k; i++) {
        uint32_t s = idx[i];
        const struct share *sh = &a->stage[s];
        putf(o, "<tr data-stage=\"%u\"><td><i class=\"sw st%u\"></i>", s, s % 12);
        esc(o, a->stage_names[s]);
        put(o, "</td><td>");
        esc(o, btype_name(a->stage_run_type[s]));
        put(o, " / ");
        esc(o, btype_name(a->stage_wait_type[s]));
        putf(o,
             "</td><td class=\"r\">%.1f%%</td><td class=\"r\">%.1f&ndash;%.1f%%</td>"
             "<td class=\"barc\"><span class=\"bar\" style=\"width:%.1f%%\"></span></td></tr>\n",
             100 * sh->p, 100 * sh->lo, 100 * sh->hi, 100 * sh->p);
    }
    free(idx);
    put(o, "</tbody></table>\n<p class=\"method\">By bottleneck type:");
    for (int t = 0; t < BT_N; t++)
        if (a->type[t].w > 0)
            putf(o, " %s %.1f%%;", btype_name((enum btype)t), 100 * a->type[t].p);
    put(o, "</p>\n</section>\n");
}

static void legend(struct out *o)
{
    put(o, "<p class=\"legend2\">");
    for (int k = 1; k < PCAT_N; k++)
        putf(o, "<span><i class=\"sw\" style=\"background:%s\"></i>%s</span> ", cat_colors[k],
             sample_cat_names[k]);
    putf(o, "<span><i class=\"sw\" style=\"background:%s\"></i>unknown</span></p>\n",
         cat_colors[0]);
}

static void write_hot(struct out *o, const struct profile *p, const struct analysis *a, bool lines)
{
    const struct hot *h = lines ? a->lines : a->funcs;
    uint32_t n = lines ? a->nlines : a->nfuncs;
    put(o, lines ? "<section id=\"lines\">\n<h2>Hottest lines</h2>\n"
                 : "<section id=\"functions\">\n<h2>Hottest functions</h2>\n");
    put(o, "<table class=\"t\"><thead><tr><th>function</th><th>file</th><th class=\"r\">self"
           "</th><th class=\"r\">total</th><th>self by category</th><th>stage</th></tr></thead>"
           "<tbody>\n");
    for (uint32_t i = 0; i < n && i < TABLE_ROWS; i++) {
        put(o, "<tr>");
        frame_cells(o, p, h[i].frame, lines);
        putf(o, "<td class=\"r\">%.1f%%</td><td class=\"r\">%.1f%%</td><td>",
             pct((double)h[i].self, (double)a->samples),
             pct((double)h[i].total, (double)a->samples));
        split_bar(o, h[i].cat, h[i].self);
        put(o, "</td><td>");
        esc(o, a->stage_names[h[i].stage]);
        put(o, "</td></tr>\n");
    }
    put(o, "</tbody></table>\n");
    legend(o);
    put(o, "</section>\n");
}

static void write_threads(struct out *o, const struct profile *p, const struct analysis *a)
{
    put(o, "<section id=\"threads\">\n<h2>Threads</h2>\n");
    if (!a->nthreads) {
        put(o, "<p class=\"method\">No per-thread data: the recording kept neither samples nor "
               "thread frames (record with --threads).</p>\n");
    } else {
        put(o, "<table class=\"t\"><thead><tr><th class=\"r\">pid</th><th class=\"r\">tid</th>"
               "<th>thread</th><th class=\"r\">samples</th><th class=\"r\">on CPU</th><th "
               "class=\"r\">waiting"
               "</th><th>by category</th><th>top stage</th></tr></thead><tbody>\n");
        for (uint32_t i = 0; i < a->nthreads && i < 200; i++) {
            const struct thread_stat *t = &a->threads[i];
            const char *name = profile_thread_name_of(p, t->pid, t->tid);
            putf(o, "<tr><td class=\"r\">%u</td><td class=\"r\">%u</td><td>", t->pid, t->tid);
            esc(o, name ? name : "");
            putf(o,
                 "</td><td class=\"r\">%llu</td><td class=\"r\">%.1f%%</td><td class=\"r\">"
                 "%.1f%%</td><td>",
                 (unsigned long long)t->samples, pct((double)t->running, (double)t->samples),
                 pct((double)t->idle, (double)t->samples));
            split_bar(o, t->cat, t->samples);
            put(o, "</td><td>");
            esc(o, a->stage_names[t->top_stage]);
            putf(o, " (%.0f%%)</td></tr>\n", 100 * t->top_stage_share);
        }
        put(o, "</tbody></table>\n");
    }
    put(o, "</section>\n<section id=\"procs\">\n<h2>Processes</h2>\n");
    if (!p->nprocs) {
        putf(o, "<p class=\"method\">One process recorded: pid %u.</p>\n", p->meta.pid);
    } else {
        put(o, "<table class=\"t\"><thead><tr><th class=\"r\">pid</th><th class=\"r\">ppid</th>"
               "<th>command</th><th>Python</th><th class=\"r\">samples</th><th class=\"r\">peak "
               "RSS</th><th class=\"r\">exit</th></tr></thead><tbody>\n");
        for (size_t i = 0; i < p->nprocs; i++) {
            const struct pproc *r = &p->procs[i];
            putf(o, "<tr><td class=\"r\">%u</td><td class=\"r\">%u</td><td>", r->pid, r->ppid);
            esc(o, r->name ? r->name : "");
            put(o, "</td><td>");
            esc(o, r->python_version ? r->python_version : "");
            putf(o,
                 "</td><td class=\"r\">%llu</td><td class=\"r\">%.1f MiB</td><td "
                 "class=\"r\">",
                 (unsigned long long)r->samples, (double)r->peak_rss / 1048576.0);
            if (r->exit_status >= 0)
                putf(o, "%d", r->exit_status);
            put(o, "</td></tr>\n");
        }
        put(o, "</tbody></table>\n");
    }
    put(o, "</section>\n");
}

static void fact(struct out *o, const char *k, const char *v)
{
    put(o, "<tr><th>");
    esc(o, k);
    put(o, "</th><td>");
    esc(o, v);
    put(o, "</td></tr>\n");
}

/* record --load: the load generator's figures and the per-stage latencies next to the
 * profile, as the tools print them. */
static void write_serving(struct out *o, const struct profile *p)
{
    const struct pmeta *m = &p->meta;
    if (!m->load_text && !m->stages_text)
        return;
    put(o, "<section id=\"serving\">\n<h2>Load and request stages</h2>\n");
    if (m->load_text) {
        put(o, "<h3>Latency under load (crux load)</h3>\n<pre class=\"load\">");
        esc(o, m->load_text);
        put(o, "</pre>\n");
    }
    if (m->stages_text) {
        put(o, "<h3>Request stages (crux agent)</h3>\n<pre class=\"stages\">");
        esc(o, m->stages_text);
        put(o, "</pre>\n");
    }
    put(o, "</section>\n");
}

static void write_facts(struct out *o, const struct profile *p, const struct analysis *a)
{
    const struct pmeta *m = &p->meta;
    char tmp[512];
    put(o, "<section id=\"facts\">\n<h2>Run</h2>\n<table class=\"facts\">\n");
    fact(o, "command", m->command ? m->command : "");
    fact(o, "Python", m->python_version ? m->python_version : "unknown");
    fact(o, "crux", STORE_CRUX_VERSION);
    snprintf(tmp, sizeof(tmp), "%g Hz requested", m->rate_hz);
    fact(o, "rate", tmp);
    snprintf(tmp, sizeof(tmp), "%.2f s", (double)m->duration_ns / 1e9);
    fact(o, "duration", tmp);
    snprintf(tmp, sizeof(tmp), "%llu thread-samples, %llu kept with time",
             (unsigned long long)p->total, (unsigned long long)p->nsamples);
    fact(o, "samples", tmp);
    uint64_t tried = p->total + m->errors;
    snprintf(tmp, sizeof(tmp), "%llu (%.2f%% of thread-samples)", (unsigned long long)m->errors,
             pct((double)m->errors, (double)tried));
    fact(o, "errors", tmp);
    fact(o, "time categories",
         m->categories ? (m->categories_note ? m->categories_note : "yes")
                       : (a->has_state ? "on CPU / waiting from thread states only"
                                       : "none (on CPU assumed)"));
    struct utsname u;
    if (uname(&u) == 0) {
        snprintf(tmp, sizeof(tmp), "%s %s %s, %ld CPUs (where this report was made)", u.sysname,
                 u.release, u.machine, sysconf(_SC_NPROCESSORS_ONLN));
        fact(o, "machine", tmp);
    }
    if (!o->rc)
        o->rc = reportgpu_facts(o->b, p);
    put(o, "</table>\n</section>\n");
}

/* JSON of the verdict, shared by the report's data and the verdict format. */
static void share_json(struct jsonw *w, const struct share *s)
{
    jsonw_key(w, "share");
    jsonw_double(w, s->p);
    jsonw_key(w, "lo");
    jsonw_double(w, s->lo);
    jsonw_key(w, "hi");
    jsonw_double(w, s->hi);
}

static void candidate_json(struct jsonw *w, const struct profile *p, const struct analysis *a,
                           const struct candidate *c)
{
    jsonw_obj_begin(w);
    jsonw_key(w, "type");
    jsonw_str(w, btype_name(c->type));
    jsonw_key(w, "label");
    jsonw_str(w, btype_label(c->type));
    jsonw_key(w, "stage");
    jsonw_str(w, a->stage_names[c->stage]);
    share_json(w, &c->s);
    jsonw_key(w, "stage_share");
    jsonw_double(w, c->stage_s.p);
    jsonw_key(w, "fix");
    jsonw_str(w, verdict_fix(p, a, c));
    jsonw_key(w, "evidence");
    jsonw_obj_begin(w);
    const struct pevid *e = c->ev && c->ev <= p->nevs ? &p->evs[c->ev - 1] : NULL;
    jsonw_key(w, "kind");
    jsonw_str(w, ev_kind_names[e ? e->kind : EV_NONE]);
    jsonw_key(w, "label");
    jsonw_str(w, e ? profile_string(p, e->label) : "");
    jsonw_key(w, "share");
    jsonw_double(w, c->ev_share);
    struct buf b;
    buf_init(&b, 4096);
    verdict_evidence_text(p, c->ev, &b);
    jsonw_key(w, "text");
    jsonw_str(w, buf_cstr(&b));
    buf_fini(&b);
    jsonw_obj_end(w);
    jsonw_obj_end(w);
}

static void hot_json(struct jsonw *w, const struct profile *p, const struct analysis *a,
                     const struct hot *h, uint32_t n, bool behind)
{
    jsonw_arr_begin(w);
    for (uint32_t i = 0; i < n; i++) {
        const struct pframe *f = profile_frame_at(p, h[i].frame);
        jsonw_obj_begin(w);
        jsonw_key(w, "name");
        jsonw_str(w, profile_string(p, f->name));
        jsonw_key(w, "file");
        jsonw_str(w, profile_string(p, f->file));
        jsonw_key(w, "line");
        jsonw_i64(w, f->line);
        jsonw_key(w, "self");
        jsonw_u64(w, h[i].self);
        jsonw_key(w, "total");
        jsonw_u64(w, h[i].total);
        jsonw_key(w, "stage");
        jsonw_str(w, a->stage_names[h[i].stage]);
        if (behind) {
            jsonw_key(w, "wall_share");
            jsonw_double(w, a->wall > 0 ? h[i].vw / a->wall : 0);
        }
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
}

static void verdict_json(struct jsonw *w, const struct profile *p, const struct analysis *a)
{
    jsonw_key(w, "verdict");
    if (a->has_verdict)
        candidate_json(w, p, a, &a->verdict);
    else
        jsonw_null(w);
    jsonw_key(w, "reason");
    jsonw_str(w, a->reason);
    jsonw_key(w, "second");
    if (a->has_second)
        candidate_json(w, p, a, &a->second);
    else
        jsonw_null(w);
    jsonw_key(w, "wall");
    jsonw_double(w, a->wall);
    jsonw_key(w, "no_request_ticks");
    jsonw_double(w, a->no_request);
    jsonw_key(w, "per_tick");
    jsonw_bool(w, a->per_tick);
    jsonw_key(w, "samples");
    jsonw_u64(w, a->samples);
    jsonw_key(w, "types");
    jsonw_obj_begin(w);
    for (int t = 0; t < BT_N; t++) {
        jsonw_key(w, btype_name((enum btype)t));
        jsonw_obj_begin(w);
        share_json(w, &a->type[t]);
        jsonw_obj_end(w);
    }
    jsonw_obj_end(w);
    jsonw_key(w, "stages");
    jsonw_arr_begin(w);
    for (uint32_t s = 0; s < a->nstages; s++) {
        jsonw_obj_begin(w);
        jsonw_key(w, "name");
        jsonw_str(w, a->stage_names[s]);
        jsonw_key(w, "run_type");
        jsonw_str(w, btype_name((enum btype)a->stage_run_type[s]));
        jsonw_key(w, "wait_type");
        jsonw_str(w, btype_name((enum btype)a->stage_wait_type[s]));
        share_json(w, &a->stage[s]);
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
    jsonw_key(w, "behind");
    hot_json(w, p, a, a->behind, a->nbehind, true);
    jsonw_key(w, "functions");
    hot_json(w, p, a, a->funcs, a->nfuncs < 20 ? a->nfuncs : 20, false);
    reportgpu_json(w, p, a);
    reportmem_json(w, p, a);
}

/* Stack id of every flame tree node, in the tree's preorder. */
static uint32_t *node_stacks(const struct profile *p, const struct flametree *t)
{
    uint32_t *st = xmalloc(((size_t)t->n + 1) * sizeof(*st));
    uint32_t *path = xmalloc(((size_t)t->max_depth + 2) * sizeof(*path));
    path[0] = 0;
    st[0] = 0;
    for (uint32_t i = 1; i < t->n; i++) {
        uint32_t d = t->depth[i];
        uint64_t key = ((uint64_t)path[d - 1] << 32) | t->frames[t->rank[i]];
        key = key ? key : ~(uint64_t)0;
        uint64_t v = 0;
        (void)hmap_get(&p->node_index, key, &v);
        st[i] = (uint32_t)v;
        path[d] = (uint32_t)v;
    }
    free(path);
    return st;
}

static void node_arrays(struct jsonw *w, const struct profile *p, const struct flametree *t,
                        const struct analysis *a)
{
    uint32_t *st = node_stacks(p, t);
    jsonw_key(w, "node_stage");
    jsonw_arr_begin(w);
    for (uint32_t i = 1; i < t->n; i++)
        jsonw_u64(w, a->stack_stage[st[i]]);
    jsonw_arr_end(w);
    /* Dominant category of each node's subtree, when any sample has one. */
    bool any = false;
    for (uint32_t s = 1; s < p->nnodes && !any; s++)
        for (int k = 1; k < PCAT_N && !any; k++)
            any = p->cat_counts[(size_t)s * PCAT_N + k] != 0;
    jsonw_key(w, "node_cat");
    if (!any) {
        jsonw_null(w);
        free(st);
        return;
    }
    uint64_t *sub = xmalloc((size_t)p->nnodes * PCAT_N * sizeof(*sub));
    memcpy(sub, p->cat_counts, (size_t)p->nnodes * PCAT_N * sizeof(*sub));
    for (uint32_t s = p->nnodes - 1; s > 0; s--)
        for (int k = 0; k < PCAT_N; k++)
            sub[(size_t)p->nodes[s].parent * PCAT_N + k] += sub[(size_t)s * PCAT_N + k];
    jsonw_arr_begin(w);
    for (uint32_t i = 1; i < t->n; i++) {
        int best = 0;
        for (int k = 1; k < PCAT_N; k++)
            if (sub[(size_t)st[i] * PCAT_N + k] > sub[(size_t)st[i] * PCAT_N + best])
                best = k;
        jsonw_u64(w, (uint64_t)best);
    }
    jsonw_arr_end(w);
    free(sub);
    free(st);
}

/* Thread timeline: per thread (the busiest TIMELINE_THREADS), per time bin, the dominant
 * stage + 1 (0: no sample) and the share of its samples on CPU in percent. */
static void timeline_json(struct jsonw *w, const struct profile *p, const struct analysis *a)
{
    jsonw_key(w, "timeline");
    if (!p->nsamples || !a->nthreads) {
        jsonw_null(w);
        return;
    }
    uint64_t t0 = p->samples[0].t_ns, t1 = t0;
    for (size_t i = 0; i < p->nsamples; i++) {
        t0 = p->samples[i].t_ns < t0 ? p->samples[i].t_ns : t0;
        t1 = p->samples[i].t_ns > t1 ? p->samples[i].t_ns : t1;
    }
    uint32_t nt = a->nthreads < TIMELINE_THREADS ? a->nthreads : TIMELINE_THREADS;
    /* The busiest threads, by index into a->threads. */
    uint32_t *pick = xmalloc(nt * sizeof(*pick));
    bool *used = xcalloc(a->nthreads, sizeof(*used));
    for (uint32_t k = 0; k < nt; k++) {
        uint32_t best = UINT32_MAX;
        for (uint32_t i = 0; i < a->nthreads; i++)
            if (!used[i] &&
                (best == UINT32_MAX || a->threads[i].samples > a->threads[best].samples))
                best = i;
        used[best] = true;
        pick[k] = best;
    }
    free(used);
    uint32_t ns = a->nstages;
    size_t cells = (size_t)nt * TIMELINE_BINS;
    uint32_t *cnt = xcalloc(cells * ns, sizeof(*cnt));
    uint32_t *all = xcalloc(cells, sizeof(*all));
    uint32_t *run = xcalloc(cells, sizeof(*run));
    double span = t1 > t0 ? (double)(t1 - t0) : 1.0;
    for (size_t i = 0; i < p->nsamples; i++) {
        const struct psample *s = &p->samples[i];
        uint32_t k = 0;
        while (k < nt && (a->threads[pick[k]].tid != s->tid || a->threads[pick[k]].pid != s->pid))
            k++;
        if (k == nt)
            continue;
        size_t b = (size_t)((double)(s->t_ns - t0) / span * (TIMELINE_BINS - 1) + 0.5);
        size_t c = (size_t)k * TIMELINE_BINS + b;
        uint32_t stg = analysis_sample_stage(a, p, s);
        if (stg < ns)
            cnt[c * ns + stg]++;
        all[c]++;
        if (s->cat == CAT_PYTHON || s->cat == CAT_NATIVE || s->cat == CAT_CPU ||
            (s->cat == CAT_NONE && s->state == TSTATE_RUNNING))
            run[c]++;
    }
    jsonw_obj_begin(w);
    jsonw_key(w, "t0_ns");
    jsonw_u64(w, t0);
    jsonw_key(w, "t1_ns");
    jsonw_u64(w, t1);
    jsonw_key(w, "bins");
    jsonw_u64(w, TIMELINE_BINS);
    jsonw_key(w, "threads");
    jsonw_arr_begin(w);
    for (uint32_t k = 0; k < nt; k++) {
        const struct thread_stat *t = &a->threads[pick[k]];
        jsonw_obj_begin(w);
        jsonw_key(w, "pid");
        jsonw_u64(w, t->pid);
        jsonw_key(w, "tid");
        jsonw_u64(w, t->tid);
        const char *name = profile_thread_name_of(p, t->pid, t->tid);
        jsonw_key(w, "name");
        jsonw_str(w, name ? name : "");
        jsonw_key(w, "stage");
        jsonw_arr_begin(w);
        for (size_t b = 0; b < TIMELINE_BINS; b++) {
            size_t c = (size_t)k * TIMELINE_BINS + b;
            uint32_t best = 0, bw = 0;
            for (uint32_t s = 0; s < ns; s++)
                if (cnt[c * ns + s] > bw) {
                    bw = cnt[c * ns + s];
                    best = s + 1;
                }
            jsonw_u64(w, best);
        }
        jsonw_arr_end(w);
        jsonw_key(w, "active");
        jsonw_arr_begin(w);
        for (size_t b = 0; b < TIMELINE_BINS; b++) {
            size_t c = (size_t)k * TIMELINE_BINS + b;
            jsonw_u64(w, all[c] ? (uint64_t)(100.0 * run[c] / all[c] + 0.5) : 0);
        }
        jsonw_arr_end(w);
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
    jsonw_obj_end(w);
    free(cnt);
    free(all);
    free(run);
    free(pick);
}

/* Memory timeline per process, thinned to at most MEM_POINTS points each. */
static void memory_json(struct jsonw *w, const struct profile *p)
{
    jsonw_key(w, "memory");
    jsonw_arr_begin(w);
    uint32_t *pids = xmalloc((p->nmem + 1) * sizeof(*pids));
    size_t npids = 0;
    for (size_t i = 0; i < p->nmem; i++) {
        size_t k = 0;
        while (k < npids && pids[k] != p->mem[i].pid)
            k++;
        if (k == npids)
            pids[npids++] = p->mem[i].pid;
    }
    for (size_t k = 0; k < npids && k < 16; k++) {
        size_t n = 0;
        for (size_t i = 0; i < p->nmem; i++)
            n += p->mem[i].pid == pids[k];
        size_t step = n > MEM_POINTS ? (n + MEM_POINTS - 1) / MEM_POINTS : 1;
        jsonw_obj_begin(w);
        jsonw_key(w, "pid");
        jsonw_u64(w, pids[k]);
        jsonw_key(w, "points");
        jsonw_arr_begin(w);
        size_t j = 0;
        for (size_t i = 0; i < p->nmem; i++) {
            if (p->mem[i].pid != pids[k])
                continue;
            if (j++ % step == 0) {
                jsonw_u64(w, p->mem[i].t_ns);
                jsonw_u64(w, p->mem[i].rss);
            }
        }
        jsonw_arr_end(w);
        jsonw_obj_end(w);
    }
    free(pids);
    jsonw_arr_end(w);
}

static int write_data(struct buf *out, const struct profile *p, const struct flametree *t,
                      const struct buf *title, const struct analysis *a)
{
    struct jsonw w;
    jsonw_init(&w, out, JSONW_HTML_SAFE);
    jsonw_obj_begin(&w);
    flamegraph_write_members(&w, p, t, title);
    jsonw_key(&w, "report");
    jsonw_obj_begin(&w);
    verdict_json(&w, p, a);
    node_arrays(&w, p, t, a);
    timeline_json(&w, p, a);
    memory_json(&w, p);
    jsonw_obj_end(&w);
    jsonw_obj_end(&w);
    return jsonw_error(&w);
}

static void write_page(struct out *o, const struct profile *p, const struct flametree *t,
                       const struct buf *title, const struct analysis *a)
{
    const char *tt = title->data ? title->data : "";
    put(o, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
           "<meta name=\"viewport\" content=\"width=device-width\">\n"
           "<meta name=\"generator\" content=\"crux\">\n<title>");
    if (!o->rc)
        o->rc = export_xml_escape(o->b, tt, title->len);
    put(o, "</title>\n<style>\n");
    put(o, flamegraph_assets_css);
    put(o, report_assets_css);
    put(o, "</style>\n</head>\n<body>\n<div class=\"rep\">\n<h1 class=\"rt\">");
    if (!o->rc)
        o->rc = export_xml_escape(o->b, tt, title->len);
    put(o, "</h1>\n");
    write_verdict(o, p, a);
    write_serving(o, p);
    write_stages(o, a);
    if (!o->rc)
        o->rc = reportgpu_html(o->b, p, a);
    if (!o->rc)
        o->rc = reportmem_html(o->b, p, a);
    put(o, report_assets_flame_intro);
    put(o, "</div>\n");
    put(o, flamegraph_assets_head);
    put(o, "Flame graph");
    put(o, flamegraph_assets_body);
    put(o, "<div class=\"rep\">\n");
    write_hot(o, p, a, false);
    write_hot(o, p, a, true);
    write_threads(o, p, a);
    put(o, report_assets_timeline);
    write_facts(o, p, a);
    put(o, "</div>\n<script type=\"application/json\" id=\"crux-data\">");
    if (!o->rc)
        o->rc = write_data(o->b, p, t, title, a);
    put(o, "</script>\n<script>\n");
    put(o, flamegraph_assets_js);
    put(o, report_assets_js);
    put(o, "</script>\n</body>\n</html>\n");
}

int report_write(const struct profile *p, const struct export_opts *o, struct buf *out)
{
    struct buf title;
    buf_init(&title, 0);
    int rc = export_title(p, o, &title);
    if (rc) {
        buf_fini(&title);
        return rc;
    }
    struct analysis a;
    analysis_run(&a, p, o ? o->rules : NULL);
    struct flametree t;
    flametree_init(&t, p);
    struct out w = {out, 0};
    write_page(&w, p, &t, &title, &a);
    flametree_fini(&t);
    analysis_fini(&a);
    buf_fini(&title);
    return w.rc;
}

int report_write_summary(const struct profile *p, const struct export_opts *o, struct buf *out)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return ERR_NOMEM;
    verdict_print_summary(p, o ? o->rules : NULL, f);
    fclose(f);
    int rc = buf_append(out, text, len);
    free(text);
    return rc;
}

int report_write_verdict(const struct profile *p, const struct export_opts *o, struct buf *out)
{
    struct analysis a;
    analysis_run(&a, p, o ? o->rules : NULL);
    struct jsonw w;
    jsonw_init(&w, out, 0);
    jsonw_obj_begin(&w);
    verdict_json(&w, p, &a);
    jsonw_key(&w, "lines");
    hot_json(&w, p, &a, a.lines, a.nlines < 20 ? a.nlines : 20, false);
    jsonw_obj_end(&w);
    analysis_fini(&a);
    int rc = jsonw_error(&w);
    return rc ? rc : buf_putc(out, '\n');
}
