// SPDX-License-Identifier: MIT
// The line-level view (lines.h). A line's total counts every sample whose stack holds it
// once, however deep the recursion; its self counts the samples where it is the innermost
// Python frame, native frames above it included (the line that called into numpy owns the
// BLAS time). Category shares are of the row's own total, so each row reads as "what this
// line's time is made of". On 3.11+ a row is one position (line and start column) of a
// recording that kept its columns: two calls on one line are two rows.
#include "export/lines.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/alloclines.h"
#include "export/export.h"
#include "util/hmap.h"
#include "util/jsonw.h"
#include "util/xalloc.h"

#define TEXT_MAX_LINES 50
#define TEXT_MAX_FUNCS 30
#define TEXT_MAX_PROC_LINES 10 /* lines per process, below the combined tables */
#define JSON_MAX_PROC_LINES 20
#define TIMELINE_ROWS 20
#define GROWTH_ROWS 5

struct rows {
    struct line_row *v;
    size_t n, cap;
    uint32_t *seen; /* stack id that last counted the row, per row */
    struct hmap index;
};

static size_t row_of(struct rows *r, uint64_t key, uint32_t frame)
{
    uint64_t v;
    if (hmap_get(&r->index, key, &v))
        return (size_t)v;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 256;
        r->v = xrealloc(r->v, r->cap * sizeof(*r->v));
        r->seen = xrealloc(r->seen, r->cap * sizeof(*r->seen));
    }
    memset(&r->v[r->n], 0, sizeof(r->v[r->n]));
    r->v[r->n].frame = frame;
    r->seen[r->n] = 0;
    hmap_put(&r->index, key, r->n);
    return r->n++;
}

static void count_row(struct rows *r, size_t i, uint32_t stack, uint64_t n, const uint64_t *cats)
{
    if (r->seen[i] == stack)
        return; /* recursion: a stack counts a row once */
    r->seen[i] = stack;
    r->v[i].total += n;
    for (int c = 0; c < PCAT_N; c++)
        r->v[i].cat[c] += cats[c];
}

static void count_self(struct rows *r, size_t i, uint64_t n, const uint64_t *cats, int64_t grow)
{
    r->v[i].self += n;
    r->v[i].growth += grow;
    for (int c = 0; c < PCAT_N; c++)
        r->v[i].self_cat[c] += cats[c];
}

static int by_total(const void *a, const void *b)
{
    const struct line_row *x = a, *y = b;
    if (x->total != y->total)
        return x->total < y->total ? 1 : -1;
    if (x->self != y->self)
        return x->self < y->self ? 1 : -1;
    return x->frame < y->frame ? -1 : x->frame > y->frame;
}

static int by_self(const void *a, const void *b)
{
    const struct line_row *x = a, *y = b;
    if (x->self != y->self)
        return x->self < y->self ? 1 : -1;
    return by_total(a, b);
}

/* Process `pr`'s own view, rows by self (by total, a worker's first rows would be its call
 * chain at 100%). A recording without process roots (no --subprocesses) has one process,
 * whose lines are all of them. */
static void proc_view(const struct profile *p, const struct pproc *pr, struct lines_view *pv)
{
    lines_view_build_proc(p, pr->pid, pv);
    if (!pv->total && p->nprocs == 1) {
        lines_view_fini(pv);
        lines_view_build_proc(p, 0, pv);
    }
    if (pv->nlines)
        qsort(pv->lines, pv->nlines, sizeof(*pv->lines), by_self);
}

static uint64_t func_key(const struct pframe *f)
{
    return hmap_hash64(((uint64_t)f->name << 32) | f->file) | 1;
}

void lines_view_build(const struct profile *p, struct lines_view *v)
{
    lines_view_build_proc(p, 0, v);
}

void lines_view_build_proc(const struct profile *p, uint32_t pid, struct lines_view *v)
{
    memset(v, 0, sizeof(*v));
    struct rows lines = {0}, funcs = {0};
    hmap_init(&lines.index);
    hmap_init(&funcs.index);
    uint32_t maxdepth = 1;
    for (uint32_t s = 1; s < p->nnodes; s++)
        if (p->nodes[s].depth > maxdepth)
            maxdepth = p->nodes[s].depth;
    uint32_t *frames = xcalloc(maxdepth, sizeof(*frames));
    for (uint32_t s = 1; s < p->nnodes; s++) {
        uint64_t n = p->counts[s];
        int64_t grow = p->mem_growth[s];
        if (!n && !grow)
            continue;
        const uint64_t *cats = &p->cat_counts[(size_t)s * PCAT_N];
        size_t depth = profile_stack_frames(p, s, frames, maxdepth);
        if (pid) {
            const struct pframe *root = depth ? profile_frame_at(p, frames[0]) : NULL;
            if (!root || root->kind != FRAME_PROCESS || (uint32_t)root->line != pid)
                continue;
        }
        v->total += n;
        for (int c = 0; c < PCAT_N; c++)
            v->cat[c] += cats[c];
        size_t leaf = SIZE_MAX;
        for (size_t k = 0; k < depth; k++) {
            const struct pframe *f = profile_frame_at(p, frames[k]);
            if (f->kind != FRAME_PYTHON)
                continue;
            leaf = k;
            count_row(&lines, row_of(&lines, (uint64_t)frames[k] + 1, frames[k]), s, n, cats);
            count_row(&funcs, row_of(&funcs, func_key(f), frames[k]), s, n, cats);
        }
        if (leaf == SIZE_MAX)
            continue;
        const struct pframe *f = profile_frame_at(p, frames[leaf]);
        count_self(&lines, row_of(&lines, (uint64_t)frames[leaf] + 1, frames[leaf]), n, cats, grow);
        count_self(&funcs, row_of(&funcs, func_key(f), frames[leaf]), n, cats, grow);
    }
    free(frames);
    if (lines.n) /* an empty view (a process without Python frames) has no array */
        qsort(lines.v, lines.n, sizeof(*lines.v), by_total);
    if (funcs.n)
        qsort(funcs.v, funcs.n, sizeof(*funcs.v), by_total);
    v->lines = lines.v;
    v->nlines = lines.n;
    v->funcs = funcs.v;
    v->nfuncs = funcs.n;
    free(lines.seen);
    free(funcs.seen);
    hmap_fini(&lines.index);
    hmap_fini(&funcs.index);
}

void lines_view_fini(struct lines_view *v)
{
    free(v->lines);
    free(v->funcs);
    memset(v, 0, sizeof(*v));
}

/* ---- text ---- */

static double pct(uint64_t part, uint64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

/* Category columns shown: the four always when categories were collected, plus "cpu" and
 * "none" when some samples have them. */
static int shown_cats(const struct profile *p, const struct lines_view *v, int *out)
{
    int n = 0;
    if (!p->meta.categories)
        return 0;
    out[n++] = CAT_PYTHON;
    out[n++] = CAT_NATIVE;
    out[n++] = CAT_SYSTEM;
    out[n++] = CAT_GIL;
    if (v->cat[CAT_CPU])
        out[n++] = CAT_CPU;
    if (v->cat[CAT_NONE])
        out[n++] = CAT_NONE;
    return n;
}

static int put_label(struct buf *out, const struct profile *p, uint32_t frame, bool with_line)
{
    const struct pframe *f = profile_frame_at(p, frame);
    int rc = buf_puts(out, strtab_len(&p->strs, f->name) ? profile_string(p, f->name) : "?");
    if (!rc)
        rc = buf_printf(out, " (%s",
                        strtab_len(&p->strs, f->file) ? profile_string(p, f->file) : "?");
    if (!rc && with_line && f->line > 0)
        rc = buf_printf(out, ":%d", (int)f->line);
    if (!rc && with_line && f->line > 0 && f->col > 0)
        rc = buf_printf(out, ":%u", (unsigned)f->col);
    if (!rc)
        rc = buf_putc(out, ')');
    return rc;
}

static int text_table(struct buf *out, const struct profile *p, const struct lines_view *v,
                      const struct line_row *rows, size_t n, size_t max, bool with_line,
                      const char *what, const char *order)
{
    int cats[PCAT_N];
    int nc = shown_cats(p, v, cats);
    int rc = buf_printf(out, "\n%s (%zu of %zu, by %s)\n  total    self", what, n < max ? n : max,
                        n, order);
    for (int c = 0; !rc && c < nc; c++)
        rc = buf_printf(out, " %7s", sample_cat_names[cats[c]]);
    if (!rc)
        rc = buf_puts(out, "  where\n");
    for (size_t i = 0; !rc && i < n && i < max; i++) {
        const struct line_row *r = &rows[i];
        rc = buf_printf(out, "%6.1f%% %6.1f%%", pct(r->total, v->total), pct(r->self, v->total));
        for (int c = 0; !rc && c < nc; c++)
            rc = buf_printf(out, " %6.0f%%", pct(r->cat[cats[c]], r->total));
        if (!rc)
            rc = buf_puts(out, "  ");
        if (!rc)
            rc = put_label(out, p, r->frame, with_line);
        if (!rc)
            rc = buf_putc(out, '\n');
    }
    return rc;
}

static double mb(uint64_t bytes)
{
    return (double)bytes / (1024.0 * 1024.0);
}

/* Memory of one process: start, peak, end, a coarse timeline and where it grew. */
static int text_memory(struct buf *out, const struct profile *p, const struct lines_view *v,
                       const struct pproc *pr)
{
    const struct pmem *first = NULL, *last = NULL, *peak = NULL;
    for (size_t i = 0; i < p->nmem; i++) {
        const struct pmem *m = &p->mem[i];
        if (m->pid != pr->pid)
            continue;
        if (!first)
            first = m;
        last = m;
        if (!peak || m->rss > peak->rss)
            peak = m;
    }
    if (!first)
        return 0;
    int rc = buf_printf(out,
                        "\nmemory of process %u (%s): start %.1f MB, peak %.1f MB at %.2f s, "
                        "end %.1f MB\n",
                        (unsigned)pr->pid, pr->name ? pr->name : "?", mb(first->rss), mb(peak->rss),
                        (double)peak->t_ns / 1e9, mb(last->rss));
    /* The timeline in TIMELINE_ROWS buckets of time, each showing its highest point. */
    uint64_t t0 = first->t_ns, span = last->t_ns - first->t_ns + 1;
    uint64_t hi[TIMELINE_ROWS] = {0};
    bool any[TIMELINE_ROWS] = {false};
    for (size_t i = 0; i < p->nmem; i++) {
        const struct pmem *m = &p->mem[i];
        if (m->pid != pr->pid)
            continue;
        size_t b = (size_t)((m->t_ns - t0) * TIMELINE_ROWS / span);
        b = b < TIMELINE_ROWS ? b : TIMELINE_ROWS - 1;
        any[b] = true;
        if (m->rss > hi[b])
            hi[b] = m->rss;
    }
    for (size_t b = 0; !rc && b < TIMELINE_ROWS; b++) {
        if (!any[b])
            continue;
        int bar = peak->rss ? (int)(40.0 * (double)hi[b] / (double)peak->rss + 0.5) : 0;
        rc = buf_printf(out, "  %8.2f s %9.1f MB  %.*s\n",
                        (double)(t0 + span * b / TIMELINE_ROWS) / 1e9, mb(hi[b]), bar,
                        "########################################");
    }
    (void)v;
    return rc;
}

static int text_growth(struct buf *out, const struct profile *p, const struct lines_view *v)
{
    /* Functions by resident memory gained while they were the innermost frame. */
    size_t order[GROWTH_ROWS];
    size_t n = 0;
    for (size_t i = 0; i < v->nfuncs; i++) {
        if (v->funcs[i].growth < (int64_t)(1 << 20))
            continue;
        size_t k = n < GROWTH_ROWS ? n++ : GROWTH_ROWS;
        if (k == GROWTH_ROWS) {
            if (v->funcs[i].growth <= v->funcs[order[GROWTH_ROWS - 1]].growth)
                continue;
            k = GROWTH_ROWS - 1;
        }
        while (k > 0 && v->funcs[order[k - 1]].growth < v->funcs[i].growth) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = i;
    }
    if (!n)
        return 0;
    int rc = buf_puts(out, "\nmemory grew while running (resident, attributed to the innermost "
                           "Python function)\n");
    for (size_t i = 0; !rc && i < n; i++) {
        rc = buf_printf(out, "  %+10.1f MB  ", mb((uint64_t)v->funcs[order[i]].growth));
        if (!rc)
            rc = put_label(out, p, v->funcs[order[i]].frame, false);
        if (!rc)
            rc = buf_putc(out, '\n');
    }
    return rc;
}

static int write_text(const struct profile *p, const struct lines_view *v, struct buf *out)
{
    int rc = buf_printf(out, "crux lines: %llu samples over %.2f s", (unsigned long long)v->total,
                        (double)p->meta.duration_ns / 1e9);
    if (!rc && p->meta.command)
        rc = buf_printf(out, " of %s", p->meta.command);
    if (!rc)
        rc = buf_putc(out, '\n');
    if (!rc && p->meta.categories) {
        rc = buf_puts(out, "time categories:");
        for (int c = CAT_PYTHON; !rc && c < PCAT_N; c++)
            if (v->cat[c] || c <= CAT_GIL)
                rc = buf_printf(out, " %s %.1f%%", sample_cat_names[c], pct(v->cat[c], v->total));
        if (!rc && p->meta.categories_note)
            rc = buf_printf(out, " (%s)", p->meta.categories_note);
        if (!rc)
            rc = buf_putc(out, '\n');
    }
    if (!rc)
        rc = buf_puts(out, "total: samples whose stack holds the line; self: samples where it is "
                           "the innermost Python frame;\ncategory columns: share of the row's "
                           "total\n");
    if (!rc)
        rc = text_table(out, p, v, v->lines, v->nlines, TEXT_MAX_LINES, true, "lines", "total");
    if (!rc)
        rc =
            text_table(out, p, v, v->funcs, v->nfuncs, TEXT_MAX_FUNCS, false, "functions", "total");
    if (!rc && p->nprocs > 1) {
        rc = buf_puts(out, "\nprocesses\n  samples     pid    ppid  peak MB  python    command\n");
        for (size_t i = 0; !rc && i < p->nprocs; i++) {
            const struct pproc *pr = &p->procs[i];
            rc = buf_printf(out, "  %7llu %7u %7u %8.1f  %-9s %s\n",
                            (unsigned long long)pr->samples, (unsigned)pr->pid, (unsigned)pr->ppid,
                            mb(pr->peak_rss), pr->python_version ? pr->python_version : "-",
                            pr->name ? pr->name : "?");
        }
    }
    for (size_t i = 0; !rc && i < p->nprocs && p->nprocs > 1; i++) {
        const struct pproc *pr = &p->procs[i];
        struct lines_view pv;
        proc_view(p, pr, &pv);
        if (pv.total) {
            char what[160];
            snprintf(what, sizeof(what), "lines of process %u (%s), of its %llu samples",
                     (unsigned)pr->pid, pr->name ? pr->name : "?", (unsigned long long)pv.total);
            rc = text_table(out, p, &pv, pv.lines, pv.nlines, TEXT_MAX_PROC_LINES, true, what,
                            "self");
        }
        lines_view_fini(&pv);
    }
    for (size_t i = 0; !rc && i < p->nprocs; i++)
        rc = text_memory(out, p, v, &p->procs[i]);
    if (!rc)
        rc = text_growth(out, p, v);
    if (!rc)
        rc = alloclines_text(p, out);
    return rc;
}

/* ---- JSON ---- */

static void json_label(struct jsonw *w, const struct profile *p, uint32_t frame, bool with_line)
{
    const struct pframe *f = profile_frame_at(p, frame);
    jsonw_key(w, "function");
    jsonw_strn(w, profile_string(p, f->name), strtab_len(&p->strs, f->name));
    jsonw_key(w, "file");
    jsonw_strn(w, profile_string(p, f->file), strtab_len(&p->strs, f->file));
    if (with_line) {
        jsonw_key(w, "line");
        jsonw_i64(w, f->line);
        if (f->col > 0) { /* 3.11+: 1-based start column; absent when unknown */
            jsonw_key(w, "col");
            jsonw_u64(w, f->col);
        }
    }
}

static void json_cats(struct jsonw *w, const char *key, const uint64_t *cats)
{
    jsonw_key(w, key);
    jsonw_obj_begin(w);
    for (int c = 0; c < PCAT_N; c++) {
        jsonw_key(w, sample_cat_names[c]);
        jsonw_u64(w, cats[c]);
    }
    jsonw_obj_end(w);
}

static void json_rows(struct jsonw *w, const struct profile *p, const struct lines_view *v,
                      const struct line_row *rows, size_t n, bool with_line)
{
    jsonw_arr_begin(w);
    for (size_t i = 0; i < n; i++) {
        const struct line_row *r = &rows[i];
        jsonw_obj_begin(w);
        json_label(w, p, r->frame, with_line);
        jsonw_key(w, "total");
        jsonw_u64(w, r->total);
        jsonw_key(w, "self");
        jsonw_u64(w, r->self);
        jsonw_key(w, "total_share");
        jsonw_double(w, v->total ? (double)r->total / (double)v->total : 0);
        jsonw_key(w, "self_share");
        jsonw_double(w, v->total ? (double)r->self / (double)v->total : 0);
        json_cats(w, "categories", r->cat);
        json_cats(w, "self_categories", r->self_cat);
        jsonw_key(w, "memory_growth_bytes");
        jsonw_i64(w, r->growth);
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
}

static void json_str_or_null(struct jsonw *w, const char *s)
{
    if (s)
        jsonw_str(w, s);
    else
        jsonw_null(w);
}

static int write_json(const struct profile *p, const struct lines_view *v, struct buf *out)
{
    struct jsonw w;
    jsonw_init(&w, out, 0);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "samples");
    jsonw_u64(&w, v->total);
    jsonw_key(&w, "duration_s");
    jsonw_double(&w, (double)p->meta.duration_ns / 1e9);
    jsonw_key(&w, "command");
    json_str_or_null(&w, p->meta.command);
    jsonw_key(&w, "python_version");
    json_str_or_null(&w, p->meta.python_version);
    jsonw_key(&w, "categories_collected");
    jsonw_bool(&w, p->meta.categories);
    jsonw_key(&w, "categories_note");
    json_str_or_null(&w, p->meta.categories_note);
    json_cats(&w, "categories", v->cat);
    jsonw_key(&w, "lines");
    json_rows(&w, p, v, v->lines, v->nlines, true);
    jsonw_key(&w, "functions");
    json_rows(&w, p, v, v->funcs, v->nfuncs, false);
    jsonw_key(&w, "processes");
    jsonw_arr_begin(&w);
    for (size_t i = 0; i < p->nprocs; i++) {
        const struct pproc *pr = &p->procs[i];
        jsonw_obj_begin(&w);
        jsonw_key(&w, "pid");
        jsonw_u64(&w, pr->pid);
        jsonw_key(&w, "ppid");
        jsonw_u64(&w, pr->ppid);
        jsonw_key(&w, "name");
        json_str_or_null(&w, pr->name);
        jsonw_key(&w, "python_version");
        json_str_or_null(&w, pr->python_version);
        jsonw_key(&w, "samples");
        jsonw_u64(&w, pr->samples);
        jsonw_key(&w, "first_s");
        jsonw_double(&w, (double)pr->first_ns / 1e9);
        jsonw_key(&w, "last_s");
        jsonw_double(&w, (double)pr->last_ns / 1e9);
        jsonw_key(&w, "peak_rss_bytes");
        jsonw_u64(&w, pr->peak_rss);
        /* Its own hottest lines by self, shares of its own samples. */
        struct lines_view pv;
        proc_view(p, pr, &pv);
        jsonw_key(&w, "lines");
        json_rows(&w, p, &pv, pv.lines,
                  pv.nlines < JSON_MAX_PROC_LINES ? pv.nlines : JSON_MAX_PROC_LINES, true);
        lines_view_fini(&pv);
        jsonw_obj_end(&w);
    }
    jsonw_arr_end(&w);
    jsonw_key(&w, "memory");
    jsonw_arr_begin(&w); /* [seconds, pid, rss bytes] */
    for (size_t i = 0; i < p->nmem; i++) {
        jsonw_arr_begin(&w);
        jsonw_double(&w, (double)p->mem[i].t_ns / 1e9);
        jsonw_u64(&w, p->mem[i].pid);
        jsonw_u64(&w, p->mem[i].rss);
        jsonw_arr_end(&w);
    }
    jsonw_arr_end(&w);
    alloclines_json(&w, p);
    jsonw_obj_end(&w);
    int rc = jsonw_error(&w);
    if (!rc)
        rc = buf_putc(out, '\n');
    return rc;
}

int lines_write(const struct profile *p, bool json, struct buf *out)
{
    struct lines_view v;
    lines_view_build(p, &v);
    int rc = json ? write_json(p, &v, out) : write_text(p, &v, out);
    lines_view_fini(&v);
    return rc;
}
