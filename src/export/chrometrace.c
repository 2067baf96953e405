// SPDX-License-Identifier: MIT
// Chrome trace export: each thread's samples as nested slices (one per run of samples in the
// same function at a depth), the agent's spans and the load generator's requests as slices on
// lanes of their own, memory and the GPUs as counters.
#include "export/chrometrace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/tracks.h"
#include "util/jsonw.h"
#include "util/xalloc.h"

static const char *const kind_cats[] = {"python", "native", "thread", "process", "marker"};
static const char *const span_cats[] = {"span", "stage", "request", "mark"};

/* One slice: the first frame of its function at its depth, and its bounds in ns. */
struct slice {
    uint32_t frame;
    uint64_t start, end;
};

struct slices {
    struct slice *v;
    size_t n, cap;
};

static size_t slice_open(struct slices *s, uint32_t frame, uint64_t start)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n] = (struct slice){frame, start, start};
    return s->n++;
}

/* Whether frames `a` and `b` are the same function (they may be different lines of it). */
static bool same_func(const struct profile *p, uint32_t a, uint32_t b)
{
    if (a == b)
        return true;
    const struct pframe *x = profile_frame_at(p, a), *y = profile_frame_at(p, b);
    return x->name == y->name && x->file == y->file && x->kind == y->kind;
}

/* The slices of one thread, in the order they open (a parent before its children). A sample
 * covers its tick: up to the thread's next sample when that comes within one and a half
 * ticks, else one tick (the thread then was idle, or not sampled). */
static void thread_slices(const struct profile *p, const struct tracks *t, const struct track *tr,
                          uint32_t *frames, uint32_t maxd, struct slices *out)
{
    size_t *open = xmalloc(((size_t)maxd + 1) * sizeof(*open));
    size_t nopen = 0;
    uint64_t tick = (uint64_t)(t->interval_s * 1e9);
    tick = tick ? tick : 1;
    uint64_t cover_end = 0, limit = 0;
    for (size_t i = tr->first; i < tr->first + tr->n; i++) {
        const struct psample *s = &p->samples[t->order[i]];
        uint64_t w = s->weight ? s->weight : 1;
        size_t depth = profile_stack_frames(p, s->stack, frames, maxd);
        size_t k = tracks_root_frames(p, frames, depth);
        if (nopen && s->t_ns > limit) {
            for (size_t d = 0; d < nopen; d++)
                out->v[open[d]].end = cover_end;
            nopen = 0;
        }
        size_t common = 0;
        while (common < nopen && k + common < depth &&
               same_func(p, out->v[open[common]].frame, frames[k + common]))
            common++;
        for (size_t d = common; d < nopen; d++)
            out->v[open[d]].end = s->t_ns;
        nopen = common;
        for (size_t d = k + common; d < depth; d++)
            open[nopen++] = slice_open(out, frames[d], s->t_ns);
        cover_end = s->t_ns + tick * w;
        limit = s->t_ns + tick * w + tick / 2;
    }
    for (size_t d = 0; d < nopen; d++)
        out->v[open[d]].end = cover_end;
    free(open);
}

static void write_us(struct jsonw *w, const char *key, uint64_t ns)
{
    jsonw_key(w, key);
    jsonw_double(w, (double)ns / 1e3);
}

/* The members every event has: phase, time, process and thread. */
static void event_head(struct jsonw *w, const char *ph, uint64_t ts_ns, uint32_t pid, uint32_t tid)
{
    jsonw_key(w, "ph");
    jsonw_str(w, ph);
    write_us(w, "ts", ts_ns);
    jsonw_key(w, "pid");
    jsonw_u64(w, pid);
    jsonw_key(w, "tid");
    jsonw_u64(w, tid);
}

static void write_str_of(struct jsonw *w, const struct profile *p, uint32_t id, const char *dflt)
{
    if (strtab_len(&p->strs, id))
        jsonw_strn(w, profile_string(p, id), strtab_len(&p->strs, id));
    else
        jsonw_str(w, dflt);
}

/* A metadata event: `what` (process_name, thread_name, ..._sort_index) with one argument. */
static void write_meta(struct jsonw *w, const char *what, uint32_t pid, uint32_t tid,
                       const char *name, size_t len, int64_t sort)
{
    jsonw_obj_begin(w);
    jsonw_key(w, "name");
    jsonw_str(w, what);
    event_head(w, "M", 0, pid, tid);
    jsonw_key(w, "args");
    jsonw_obj_begin(w);
    if (name) {
        jsonw_key(w, "name");
        jsonw_strn(w, name, len);
    } else {
        jsonw_key(w, "sort_index");
        jsonw_i64(w, sort);
    }
    jsonw_obj_end(w);
    jsonw_obj_end(w);
}

static void write_slice(struct jsonw *w, const struct profile *p, const struct track *tr,
                        const struct slice *s, struct buf *tmp)
{
    const struct pframe *f = profile_frame_at(p, s->frame);
    jsonw_obj_begin(w);
    jsonw_key(w, "name");
    if (f->kind == FRAME_THREAD || f->kind == FRAME_PROCESS) {
        buf_reset(tmp);
        jsonw_fail(w, export_frame_label(p, s->frame, tmp));
        jsonw_strn(w, buf_cstr(tmp), tmp->len);
    } else {
        write_str_of(w, p, f->name, "?");
    }
    jsonw_key(w, "cat");
    jsonw_str(w, kind_cats[f->kind <= FRAME_MARKER ? f->kind : FRAME_MARKER]);
    event_head(w, "X", s->start, tr->pid, tr->tid);
    write_us(w, "dur", s->end - s->start);
    if ((f->kind == FRAME_PYTHON || f->kind == FRAME_NATIVE) && strtab_len(&p->strs, f->file)) {
        jsonw_key(w, "args");
        jsonw_obj_begin(w);
        jsonw_key(w, f->kind == FRAME_PYTHON ? "file" : "library");
        write_str_of(w, p, f->file, "?");
        if (f->kind == FRAME_PYTHON && f->line > 0) {
            jsonw_key(w, "line"); /* of the slice's first sample */
            jsonw_i64(w, f->line);
        }
        jsonw_obj_end(w);
    }
    jsonw_obj_end(w);
}

static void write_threads(struct jsonw *w, const struct profile *p, const struct tracks *t)
{
    uint32_t maxd = tracks_max_depth(p);
    uint32_t *frames = xmalloc(((size_t)maxd + 1) * sizeof(*frames));
    struct slices sl = {0};
    struct buf tmp;
    buf_init(&tmp, 0);
    for (size_t i = 0; i < t->n && !jsonw_error(w); i++) {
        const struct track *tr = &t->v[i];
        if (i == 0 || t->v[i - 1].pid != tr->pid) {
            const char *name = tracks_process_name(p, tr->pid);
            buf_reset(&tmp);
            jsonw_fail(w, name && name[0] ? buf_puts(&tmp, name)
                                          : buf_printf(&tmp, "Process %u", (unsigned)tr->pid));
            write_meta(w, "process_name", tr->pid, 0, buf_cstr(&tmp), tmp.len, 0);
            write_meta(w, "process_sort_index", tr->pid, 0, NULL, 0, (int64_t)i);
        }
        buf_reset(&tmp);
        jsonw_fail(w, tr->name ? buf_append(&tmp, profile_string(p, tr->name),
                                            strtab_len(&p->strs, tr->name))
                               : buf_printf(&tmp, "Thread %u", (unsigned)tr->tid));
        write_meta(w, "thread_name", tr->pid, tr->tid, buf_cstr(&tmp), tmp.len, 0);
        write_meta(w, "thread_sort_index", tr->pid, tr->tid, NULL, 0, (int64_t)i);
        sl.n = 0;
        thread_slices(p, t, tr, frames, maxd, &sl);
        for (size_t k = 0; k < sl.n && !jsonw_error(w); k++)
            write_slice(w, p, tr, &sl.v[k], &tmp);
    }
    buf_fini(&tmp);
    free(sl.v);
    free(frames);
}

/* Spans in the order lanes are filled: by process, then start, the longer first (a request
 * before the stages it holds). */
struct span_key {
    uint32_t pid;
    uint32_t idx;
    uint64_t start, end;
    uint32_t outer; /* 0 for a request: first among equal bounds */
};

static int cmp_span(const void *a, const void *b)
{
    const struct span_key *x = a, *y = b;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->end != y->end)
        return x->end > y->end ? -1 : 1;
    if (x->outer != y->outer)
        return x->outer < y->outer ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* A lane: the ends of its open spans, innermost last. A span goes to the first lane where it
 * nests in the innermost open span or starts after every open span ended, so that the slices
 * of a lane nest properly, as the trace viewers require of one track. */
struct lane {
    uint64_t *ends;
    size_t n, cap;
};

static size_t lane_of(struct lane **lanes, size_t *nlanes, uint64_t start, uint64_t end)
{
    size_t l = 0;
    for (; l < *nlanes; l++) {
        struct lane *ln = &(*lanes)[l];
        while (ln->n && ln->ends[ln->n - 1] <= start) /* ended: touching is sequential */
            ln->n--;
        if (!ln->n || ln->ends[ln->n - 1] >= end)
            break;
    }
    if (l == *nlanes) {
        *lanes = xrealloc(*lanes, (*nlanes + 1) * sizeof(**lanes));
        (*lanes)[(*nlanes)++] = (struct lane){0};
    }
    struct lane *ln = &(*lanes)[l];
    if (ln->n == ln->cap) {
        ln->cap = ln->cap ? ln->cap * 2 : 8;
        ln->ends = xrealloc(ln->ends, ln->cap * sizeof(*ln->ends));
    }
    ln->ends[ln->n++] = end;
    return l;
}

static void write_span(struct jsonw *w, const struct profile *p, const struct pspan *s,
                       uint32_t pid, size_t lane)
{
    jsonw_obj_begin(w);
    jsonw_key(w, "name");
    write_str_of(w, p, s->name, s->kind == PSPAN_REQUEST ? "request" : "?");
    jsonw_key(w, "cat");
    jsonw_str(w, span_cats[s->kind <= PSPAN_MARK ? s->kind : 0]);
    event_head(w, "X", s->start_ns, pid, CHROMETRACE_SPAN_TID + (uint32_t)lane);
    write_us(w, "dur", s->end_ns - s->start_ns);
    jsonw_key(w, "args");
    jsonw_obj_begin(w);
    if (s->request) {
        char num[24];
        jsonw_key(w, "request");
        jsonw_strn(w, num, jsonw_fmt_u64(num, s->request)); /* a string: ids pass 2^53 */
    }
    jsonw_key(w, "tid");
    jsonw_u64(w, s->tid);
    jsonw_obj_end(w);
    jsonw_obj_end(w);
}

/* Names the lanes of process `pid`, after its threads. */
static void name_lanes(struct jsonw *w, uint32_t pid, size_t nlanes)
{
    char name[32];
    for (size_t l = 0; l < nlanes; l++) {
        int len = snprintf(name, sizeof(name), "crux spans %zu", l + 1);
        write_meta(w, "thread_name", pid, CHROMETRACE_SPAN_TID + (uint32_t)l, name, (size_t)len, 0);
        write_meta(w, "thread_sort_index", pid, CHROMETRACE_SPAN_TID + (uint32_t)l, NULL, 0,
                   (int64_t)(1000000 + l));
    }
}

static void write_spans(struct jsonw *w, const struct profile *p)
{
    struct span_key *keys = xmalloc((p->nspans ? p->nspans : 1) * sizeof(*keys));
    for (size_t i = 0; i < p->nspans; i++) {
        const struct pspan *s = &p->spans[i];
        keys[i] = (struct span_key){s->pid ? s->pid : p->meta.pid, (uint32_t)i, s->start_ns,
                                    s->end_ns, s->kind != PSPAN_REQUEST};
    }
    qsort(keys, p->nspans, sizeof(*keys), cmp_span);
    struct lane *lanes = NULL;
    size_t nlanes = 0;
    for (size_t i = 0; i < p->nspans && !jsonw_error(w); i++) {
        if (i && keys[i].pid != keys[i - 1].pid) {
            name_lanes(w, keys[i - 1].pid, nlanes);
            for (size_t l = 0; l < nlanes; l++)
                lanes[l].n = 0;
            nlanes = 0; /* the lanes (and their memory) are reused */
        }
        size_t l = lane_of(&lanes, &nlanes, keys[i].start, keys[i].end);
        write_span(w, p, &p->spans[keys[i].idx], keys[i].pid, l);
    }
    if (p->nspans)
        name_lanes(w, keys[p->nspans - 1].pid, nlanes);
    for (size_t l = 0; l < nlanes; l++)
        free(lanes[l].ends);
    free(lanes);
    free(keys);
}

/* A request's slice name: "HTTP 200" for a response (an error status included), else its
 * failure ("timeout", "connect", "cancelled"). */
static int req_name(const struct profile *p, const struct preq *r, struct buf *tmp)
{
    buf_reset(tmp);
    if (r->status > 0)
        return buf_printf(tmp, "HTTP %d", (int)r->status);
    return buf_puts(tmp, r->error ? profile_string(p, r->error) : "?");
}

static void write_req(struct jsonw *w, const struct profile *p, const struct preq *r, size_t lane,
                      struct buf *tmp)
{
    jsonw_fail(w, req_name(p, r, tmp));
    jsonw_obj_begin(w);
    jsonw_key(w, "name");
    jsonw_strn(w, buf_cstr(tmp), tmp->len);
    jsonw_key(w, "cat");
    jsonw_str(w, "load");
    event_head(w, "X", r->start_ns, p->meta.pid, CHROMETRACE_LOAD_TID + (uint32_t)lane);
    write_us(w, "dur", r->end_ns - r->start_ns);
    jsonw_key(w, "args");
    jsonw_obj_begin(w);
    jsonw_key(w, "status");
    jsonw_i64(w, r->status);
    jsonw_key(w, "outcome");
    jsonw_str(w, r->error ? profile_string(p, r->error) : "ok");
    jsonw_key(w, "bytes");
    jsonw_u64(w, r->bytes);
    if (r->ttft_ns >= 0) {
        jsonw_key(w, "ttft_ms");
        jsonw_double(w, (double)r->ttft_ns / 1e6);
    }
    jsonw_obj_end(w);
    jsonw_obj_end(w);
}

/* Requests by start, the longer first, then in the order kept. */
static int cmp_req(const void *a, const void *b, void *arg)
{
    const struct preq *v = arg;
    uint32_t i = *(const uint32_t *)a, k = *(const uint32_t *)b;
    if (v[i].start_ns != v[k].start_ns)
        return v[i].start_ns < v[k].start_ns ? -1 : 1;
    if (v[i].end_ns != v[k].end_ns)
        return v[i].end_ns > v[k].end_ns ? -1 : 1;
    return (i > k) - (i < k);
}

/* The load requests on "load generator N" tracks of the recorded process: each request in the
 * first lane whose last request ended by its start, so that no two slices of a track overlap
 * (requests run side by side, they do not nest). As many lanes as requests were in flight at
 * once, at most the load's connections. */
static void write_reqs(struct jsonw *w, const struct profile *p)
{
    if (!p->nreqs)
        return;
    uint32_t *ix = xmalloc(p->nreqs * sizeof(*ix));
    for (size_t i = 0; i < p->nreqs; i++)
        ix[i] = (uint32_t)i;
    qsort_r(ix, p->nreqs, sizeof(*ix), cmp_req, p->reqs);
    uint64_t *ends = NULL;
    size_t nlanes = 0;
    struct buf tmp;
    buf_init(&tmp, 0);
    for (size_t i = 0; i < p->nreqs && !jsonw_error(w); i++) {
        const struct preq *r = &p->reqs[ix[i]];
        size_t l = 0;
        while (l < nlanes && ends[l] > r->start_ns)
            l++;
        if (l == nlanes)
            ends = xrealloc(ends, ++nlanes * sizeof(*ends));
        ends[l] = r->end_ns;
        write_req(w, p, r, l, &tmp);
    }
    char name[40];
    for (size_t l = 0; l < nlanes; l++) {
        int len = snprintf(name, sizeof(name), "load generator %zu", l + 1);
        write_meta(w, "thread_name", p->meta.pid, CHROMETRACE_LOAD_TID + (uint32_t)l, name,
                   (size_t)len, 0);
        write_meta(w, "thread_sort_index", p->meta.pid, CHROMETRACE_LOAD_TID + (uint32_t)l, NULL, 0,
                   (int64_t)(2000000 + l));
    }
    buf_fini(&tmp);
    free(ends);
    free(ix);
}

static void write_memory(struct jsonw *w, const struct profile *p)
{
    for (size_t i = 0; i < p->nmem && !jsonw_error(w); i++) {
        jsonw_obj_begin(w);
        jsonw_key(w, "name");
        jsonw_str(w, "memory");
        event_head(w, "C", p->mem[i].t_ns, p->mem[i].pid, 0);
        jsonw_key(w, "args");
        jsonw_obj_begin(w);
        jsonw_key(w, "rss");
        jsonw_u64(w, p->mem[i].rss);
        jsonw_obj_end(w);
        jsonw_obj_end(w);
    }
}

/* One counter event `name` (one value under `key`) on the target's process track. */
static void write_counter(struct jsonw *w, const struct profile *p, const char *name, uint64_t t_ns,
                          const char *key, double v)
{
    jsonw_obj_begin(w);
    jsonw_key(w, "name");
    jsonw_str(w, name);
    event_head(w, "C", t_ns, p->meta.pid, 0);
    jsonw_key(w, "args");
    jsonw_obj_begin(w);
    jsonw_key(w, key);
    jsonw_double(w, v);
    jsonw_obj_end(w);
    jsonw_obj_end(w);
}

/* The GPUs as counter tracks of the target's process (a GPU is no process of its own, and
 * the viewers draw counters per process): per device, any kernel running %, SM active %
 * (GPM only) and memory used. */
static void write_gpu(struct jsonw *w, const struct profile *p)
{
    char busy[64], sm[64], mem[64];
    for (size_t i = 0; i < p->gpu.npts && !jsonw_error(w); i++) {
        const struct pgpu_point *pt = &p->gpu.pts[i];
        uint32_t idx = pt->dev < p->gpu.ndevs ? p->gpu.devs[pt->dev].index : pt->dev;
        snprintf(busy, sizeof(busy), "GPU %u any kernel running %%", idx);
        snprintf(sm, sizeof(sm), "GPU %u SM active %%", idx);
        snprintf(mem, sizeof(mem), "GPU %u memory used", idx);
        if (pt->util_gpu >= 0)
            write_counter(w, p, busy, pt->t_ns, "percent", pt->util_gpu);
        if (pt->sm_active >= 0)
            write_counter(w, p, sm, pt->t_ns, "percent", pt->sm_active);
        if (pt->mem_used != PGPU_NA_U64)
            write_counter(w, p, mem, pt->t_ns, "bytes", (double)pt->mem_used);
    }
}

static void write_other(struct jsonw *w, const struct profile *p, const struct export_opts *o,
                        const struct tracks *t)
{
    struct buf title;
    buf_init(&title, 0);
    jsonw_fail(w, export_title(p, o, &title));
    jsonw_key(w, "otherData");
    jsonw_obj_begin(w);
    jsonw_key(w, "producer");
    jsonw_str(w, "crux");
    jsonw_key(w, "title");
    jsonw_strn(w, buf_cstr(&title), title.len);
    if (p->meta.python_version) {
        jsonw_key(w, "python");
        jsonw_str(w, p->meta.python_version);
    }
    jsonw_key(w, "interval_ms");
    jsonw_double(w, t->interval_s * 1e3);
    jsonw_obj_end(w);
    buf_fini(&title);
}

int chrometrace_write(const struct profile *p, const struct export_opts *o, struct buf *out)
{
    struct tracks t;
    tracks_build(p, &t);
    struct jsonw w;
    jsonw_init(&w, out, 0);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "traceEvents");
    jsonw_arr_begin(&w);
    write_threads(&w, p, &t);
    write_spans(&w, p);
    write_reqs(&w, p);
    write_memory(&w, p);
    write_gpu(&w, p);
    jsonw_arr_end(&w);
    jsonw_key(&w, "displayTimeUnit");
    jsonw_str(&w, "ms");
    write_other(&w, p, o, &t);
    jsonw_obj_end(&w);
    jsonw_raw(&w, "\n", 1);
    tracks_fini(&t);
    return jsonw_error(&w);
}
