// SPDX-License-Identifier: MIT
// Firefox Profiler export: per thread, the samples in time order and the tables they index
// (stacks, frames, functions, resources), each sample's time category on its frames, the
// agent's spans as markers, and the requests of `record --load` as markers on the recorded
// process's main thread.
#include "export/gecko.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/tracks.h"
#include "profile/strtab.h"
#include "util/hmap.h"
#include "util/jsonw.h"
#include "util/xalloc.h"

#define NONE UINT32_MAX       /* null (or -1) in a column */
#define CAT_STAGE PCAT_N      /* the category of the span markers */
#define CAT_LOAD (PCAT_N + 1) /* the category of the load request markers */

/* The categories, indexed by enum sample_cat, then the markers' one. The first grey category
 * is the Firefox Profiler's default: samples without a category. */
static const struct {
    const char *name, *color;
} categories[CAT_LOAD + 1] = {
    [CAT_NONE] = {"Other", "grey"},    [CAT_PYTHON] = {"Python", "yellow"},
    [CAT_NATIVE] = {"Native", "blue"}, [CAT_SYSTEM] = {"System", "lightblue"},
    [CAT_GIL] = {"GIL", "red"},        [CAT_CPU] = {"CPU", "orange"},
    [CAT_STAGE] = {"Stage", "green"},  [CAT_LOAD] = {"Load", "purple"},
};

static const char *const span_kinds[] = {"?", "stage", "request", "mark"};

/* A growable column of u32 values; NONE is written as null or -1. */
struct col {
    uint32_t *v;
    size_t n, cap;
};

static void push(struct col *c, uint32_t x)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->v = xrealloc(c->v, c->cap * sizeof(*c->v));
    }
    c->v[c->n++] = x;
}

/* What the whole file shares. */
struct gecko {
    const struct profile *p;
    struct tracks t;
    struct strtab strs;   /* shared.stringArray */
    uint32_t *path;       /* stack walk buffer: the deepest stack */
    uint32_t *span_order; /* span indexes by track, then start */
    size_t *span_first;   /* track -> first of its spans in span_order; n + 1 entries */
    size_t load_track;    /* the track the load requests go on (SIZE_MAX: none) */
    struct buf tmp;
};

/* One thread's tables. Frames are (crux frame, category): a sample's category is that of its
 * stack's frames, so a stack seen in two categories is two stacks that share functions. */
struct gthread {
    struct hmap stacks, frames, res;
    struct hmap funcs[FRAME_MARKER + 1]; /* per frame kind */
    struct col st_frame, st_prefix;
    struct col fr_func, fr_cat, fr_line;
    struct col fn_name, fn_file, fn_js, fn_res;
    struct col res_name;
    struct col s_stack;
};

static void gthread_fini(struct gthread *th)
{
    hmap_fini(&th->stacks);
    hmap_fini(&th->frames);
    hmap_fini(&th->res);
    for (size_t i = 0; i <= FRAME_MARKER; i++)
        hmap_fini(&th->funcs[i]);
    struct col *cols[] = {&th->st_frame, &th->st_prefix, &th->fr_func, &th->fr_cat,
                          &th->fr_line,  &th->fn_name,   &th->fn_file, &th->fn_js,
                          &th->fn_res,   &th->res_name,  &th->s_stack};
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
        free(cols[i]->v);
}

static uint32_t str_n(struct gecko *g, const char *s, size_t n)
{
    return strtab_intern(&g->strs, s, n);
}

static uint32_t str_of(struct gecko *g, uint32_t id)
{
    return str_n(g, profile_string(g->p, id), strtab_len(&g->p->strs, id));
}

static uint32_t resource_of(struct gthread *th, uint32_t lib)
{
    uint64_t v;
    if (hmap_get(&th->res, (uint64_t)lib + 1, &v))
        return (uint32_t)v;
    push(&th->res_name, lib);
    hmap_put(&th->res, (uint64_t)lib + 1, th->res_name.n - 1);
    return (uint32_t)(th->res_name.n - 1);
}

/* A function is a name and a file (Python) or library (native): the frames of its lines and
 * of its categories share it, so the call tree merges them. */
static uint32_t func_of(struct gecko *g, struct gthread *th, uint32_t frame)
{
    const struct pframe *f = profile_frame_at(g->p, frame);
    uint32_t kind = f->kind <= FRAME_MARKER ? f->kind : FRAME_MARKER;
    uint32_t name;
    if (kind == FRAME_PYTHON || kind == FRAME_NATIVE || kind == FRAME_MARKER) {
        name = strtab_len(&g->p->strs, f->name) ? str_of(g, f->name) : str_n(g, "?", 1);
    } else { /* a thread or process frame below the root: its label */
        buf_reset(&g->tmp);
        if (export_frame_label(g->p, frame, &g->tmp))
            buf_reset(&g->tmp);
        name = str_n(g, buf_cstr(&g->tmp), g->tmp.len);
    }
    bool has_file =
        (kind == FRAME_PYTHON || kind == FRAME_NATIVE) && strtab_len(&g->p->strs, f->file) > 0;
    uint32_t file = has_file ? str_of(g, f->file) : NONE;
    uint64_t key = (((uint64_t)name << 32) | file) + 1;
    uint64_t v;
    if (hmap_get(&th->funcs[kind], key, &v))
        return (uint32_t)v;
    uint32_t id = (uint32_t)th->fn_name.n;
    push(&th->fn_name, name);
    push(&th->fn_file, kind == FRAME_PYTHON ? file : NONE);
    push(&th->fn_js, kind == FRAME_PYTHON);
    push(&th->fn_res, kind == FRAME_NATIVE && has_file ? resource_of(th, file) : NONE);
    hmap_put(&th->funcs[kind], key, id);
    return id;
}

static uint32_t frame_of(struct gecko *g, struct gthread *th, uint32_t frame, uint32_t cat)
{
    uint64_t key = (((uint64_t)frame << 3) | cat) + 1;
    uint64_t v;
    if (hmap_get(&th->frames, key, &v))
        return (uint32_t)v;
    const struct pframe *f = profile_frame_at(g->p, frame);
    uint32_t func = func_of(g, th, frame);
    push(&th->fr_func, func);
    push(&th->fr_cat, cat);
    push(&th->fr_line, f->kind == FRAME_PYTHON && f->line > 0 ? (uint32_t)f->line : NONE);
    hmap_put(&th->frames, key, th->fr_func.n - 1);
    return (uint32_t)(th->fr_func.n - 1);
}

/* Whether stack node `s` is a process frame at the root or the thread frame under it: the
 * track itself, left out of its stacks (as tracks_root_frames counts them). */
static bool track_root(const struct profile *p, uint32_t s)
{
    const struct pnode *n = &p->nodes[s];
    uint32_t kind = profile_frame_at(p, n->frame)->kind;
    if (kind == FRAME_PROCESS)
        return n->depth == 1;
    if (kind != FRAME_THREAD)
        return false;
    return n->depth == 1 ||
           (n->depth == 2 && profile_frame_at(p, p->nodes[n->parent].frame)->kind == FRAME_PROCESS);
}

/* The thread's stack for crux stack `s` in category `cat`, made with its missing prefixes;
 * NONE when `s` holds only the track's own frames. */
static uint32_t stack_of(struct gecko *g, struct gthread *th, uint32_t s, uint32_t cat)
{
    const struct profile *p = g->p;
    size_t k = 0;
    uint32_t prefix = NONE;
    while (s && !track_root(p, s)) {
        uint64_t v;
        if (hmap_get(&th->stacks, (((uint64_t)s << 3) | cat) + 1, &v)) {
            prefix = (uint32_t)v;
            break;
        }
        g->path[k++] = s;
        s = p->nodes[s].parent;
    }
    while (k-- > 0) {
        uint32_t node = g->path[k];
        push(&th->st_frame, frame_of(g, th, p->nodes[node].frame, cat));
        push(&th->st_prefix, prefix);
        prefix = (uint32_t)(th->st_frame.n - 1);
        hmap_put(&th->stacks, (((uint64_t)node << 3) | cat) + 1, prefix);
    }
    return prefix;
}

/* Appends already-formed members ("k":v,...) to the open object. */
static void members(struct jsonw *w, const char *s)
{
    jsonw_raw(w, s, strlen(s));
}

/* Writes a column: its values, NONE as `none` ("null" or "-1"). */
static void write_col(struct jsonw *w, const char *key, const struct col *c, const char *none)
{
    jsonw_key(w, key);
    jsonw_arr_begin(w);
    for (size_t i = 0; i < c->n && !jsonw_error(w); i++) {
        if (c->v[i] == NONE)
            jsonw_raw(w, none, strlen(none));
        else
            jsonw_u64(w, c->v[i]);
    }
    jsonw_arr_end(w);
}

/* Writes a column of `n` copies of the JSON value `v`. */
static void write_same(struct jsonw *w, const char *key, size_t n, const char *v)
{
    jsonw_key(w, key);
    jsonw_arr_begin(w);
    for (size_t i = 0; i < n && !jsonw_error(w); i++)
        jsonw_raw(w, v, strlen(v));
    jsonw_arr_end(w);
}

static void write_bools(struct jsonw *w, const char *key, const struct col *c)
{
    jsonw_key(w, key);
    jsonw_arr_begin(w);
    for (size_t i = 0; i < c->n && !jsonw_error(w); i++)
        jsonw_bool(w, c->v[i] != 0);
    jsonw_arr_end(w);
}

static void write_length(struct jsonw *w, size_t n)
{
    jsonw_key(w, "length");
    jsonw_u64(w, n);
}

static void write_tables(struct jsonw *w, const struct gthread *th)
{
    jsonw_key(w, "stackTable");
    jsonw_obj_begin(w);
    write_col(w, "frame", &th->st_frame, "null");
    write_col(w, "prefix", &th->st_prefix, "null");
    write_length(w, th->st_frame.n);
    jsonw_obj_end(w);
    size_t nf = th->fr_func.n;
    jsonw_key(w, "frameTable");
    jsonw_obj_begin(w);
    write_same(w, "address", nf, "-1");
    write_same(w, "inlineDepth", nf, "0");
    write_col(w, "category", &th->fr_cat, "null");
    write_same(w, "subcategory", nf, "0");
    write_col(w, "func", &th->fr_func, "null");
    write_same(w, "nativeSymbol", nf, "null");
    write_same(w, "innerWindowID", nf, "null");
    write_col(w, "line", &th->fr_line, "null");
    write_same(w, "column", nf, "null");
    write_length(w, nf);
    jsonw_obj_end(w);
    size_t nfn = th->fn_name.n;
    jsonw_key(w, "funcTable");
    jsonw_obj_begin(w);
    write_col(w, "name", &th->fn_name, "null");
    write_bools(w, "isJS", &th->fn_js);
    write_same(w, "relevantForJS", nfn, "false");
    write_col(w, "resource", &th->fn_res, "-1");
    write_col(w, "fileName", &th->fn_file, "null");
    write_same(w, "lineNumber", nfn, "null");
    write_same(w, "columnNumber", nfn, "null");
    write_length(w, nfn);
    jsonw_obj_end(w);
    size_t nr = th->res_name.n;
    jsonw_key(w, "resourceTable");
    jsonw_obj_begin(w);
    write_length(w, nr);
    write_same(w, "lib", nr, "null");
    write_col(w, "name", &th->res_name, "null");
    write_same(w, "host", nr, "null");
    write_same(w, "type", nr, "1"); /* library */
    jsonw_obj_end(w);
    members(w, "\"nativeSymbols\":{\"libIndex\":[],\"address\":[],\"name\":[],"
               "\"functionSize\":[],\"length\":0}");
}

/* The samples table: stack, time in ms since the start, weight (null when every sample weighs
 * one). */
static void write_samples(struct jsonw *w, const struct gecko *g, const struct track *tr,
                          const struct gthread *th)
{
    const struct profile *p = g->p;
    bool weighted = false;
    for (size_t i = tr->first; i < tr->first + tr->n; i++)
        weighted |= p->samples[g->t.order[i]].weight > 1;
    jsonw_key(w, "samples");
    jsonw_obj_begin(w);
    write_col(w, "stack", &th->s_stack, "null");
    jsonw_key(w, "time");
    jsonw_arr_begin(w);
    for (size_t i = tr->first; i < tr->first + tr->n && !jsonw_error(w); i++)
        jsonw_double(w, (double)p->samples[g->t.order[i]].t_ns / 1e6);
    jsonw_arr_end(w);
    jsonw_key(w, "weight");
    if (weighted) {
        jsonw_arr_begin(w);
        for (size_t i = tr->first; i < tr->first + tr->n && !jsonw_error(w); i++) {
            uint16_t wt = p->samples[g->t.order[i]].weight;
            jsonw_u64(w, wt ? wt : 1);
        }
        jsonw_arr_end(w);
    } else {
        jsonw_null(w);
    }
    jsonw_key(w, "weightType");
    jsonw_str(w, "samples");
    write_length(w, tr->n);
    jsonw_obj_end(w);
}

static uint32_t span_name(struct gecko *g, const struct pspan *s)
{
    if (strtab_len(&g->p->strs, s->name))
        return str_of(g, s->name);
    return s->kind == PSPAN_REQUEST ? str_n(g, "request", 7) : str_n(g, "?", 1);
}

/* A load request's marker data: its outcome, size and time to first token. */
static void write_req_data(struct jsonw *w, const struct profile *p, const struct preq *r)
{
    jsonw_obj_begin(w);
    jsonw_key(w, "type");
    jsonw_str(w, "CruxLoadRequest");
    jsonw_key(w, "status");
    jsonw_i64(w, r->status);
    jsonw_key(w, "outcome");
    jsonw_str(w, r->error ? profile_string(p, r->error) : "ok");
    jsonw_key(w, "bytes");
    jsonw_u64(w, r->bytes);
    if (r->ttft_ns >= 0) {
        jsonw_key(w, "ttft");
        jsonw_double(w, (double)r->ttft_ns / 1e6);
    }
    jsonw_obj_end(w);
}

static void write_span_data(struct jsonw *w, const struct pspan *s)
{
    jsonw_obj_begin(w);
    jsonw_key(w, "type");
    jsonw_str(w, "CruxSpan");
    jsonw_key(w, "kind");
    jsonw_str(w, span_kinds[s->kind <= PSPAN_MARK ? s->kind : 0]);
    if (s->request) {
        char num[24];
        size_t len = jsonw_fmt_u64(num, s->request);
        jsonw_key(w, "request");
        jsonw_strn(w, num, len); /* a string: ids pass 2^53 */
    }
    jsonw_key(w, "tid");
    jsonw_u64(w, s->tid);
    jsonw_obj_end(w);
}

/* The markers of track `ti`: its spans as interval markers (instant ones for marks), in start
 * order, then, on the load track, every load request as an interval marker named "load
 * request", in the order the requests ended. */
static void write_markers(struct jsonw *w, struct gecko *g, size_t ti)
{
    const struct profile *p = g->p;
    size_t first = g->span_first[ti], n = g->span_first[ti + 1] - first;
    size_t nr = ti == g->load_track ? p->nreqs : 0;
    const uint32_t *ix = g->span_order + first;
    jsonw_key(w, "markers");
    jsonw_obj_begin(w);
    jsonw_key(w, "data");
    jsonw_arr_begin(w);
    for (size_t i = 0; i < n && !jsonw_error(w); i++)
        write_span_data(w, &p->spans[ix[i]]);
    for (size_t i = 0; i < nr && !jsonw_error(w); i++)
        write_req_data(w, p, &p->reqs[i]);
    jsonw_arr_end(w);
    jsonw_key(w, "name");
    jsonw_arr_begin(w);
    for (size_t i = 0; i < n && !jsonw_error(w); i++)
        jsonw_u64(w, span_name(g, &p->spans[ix[i]]));
    uint32_t req_name = nr ? str_n(g, "load request", 12) : 0;
    for (size_t i = 0; i < nr && !jsonw_error(w); i++)
        jsonw_u64(w, req_name);
    jsonw_arr_end(w);
    jsonw_key(w, "startTime");
    jsonw_arr_begin(w);
    for (size_t i = 0; i < n && !jsonw_error(w); i++)
        jsonw_double(w, (double)p->spans[ix[i]].start_ns / 1e6);
    for (size_t i = 0; i < nr && !jsonw_error(w); i++)
        jsonw_double(w, (double)p->reqs[i].start_ns / 1e6);
    jsonw_arr_end(w);
    jsonw_key(w, "endTime");
    jsonw_arr_begin(w);
    for (size_t i = 0; i < n && !jsonw_error(w); i++) {
        const struct pspan *s = &p->spans[ix[i]];
        if (s->kind == PSPAN_MARK)
            jsonw_null(w);
        else
            jsonw_double(w, (double)s->end_ns / 1e6);
    }
    for (size_t i = 0; i < nr && !jsonw_error(w); i++)
        jsonw_double(w, (double)p->reqs[i].end_ns / 1e6);
    jsonw_arr_end(w);
    jsonw_key(w, "phase"); /* 0 instant, 1 interval */
    jsonw_arr_begin(w);
    for (size_t i = 0; i < n && !jsonw_error(w); i++)
        jsonw_u64(w, p->spans[ix[i]].kind == PSPAN_MARK ? 0 : 1);
    for (size_t i = 0; i < nr && !jsonw_error(w); i++)
        jsonw_u64(w, 1);
    jsonw_arr_end(w);
    jsonw_key(w, "category");
    jsonw_arr_begin(w);
    for (size_t i = 0; i < n + nr && !jsonw_error(w); i++)
        jsonw_u64(w, i < n ? CAT_STAGE : CAT_LOAD);
    jsonw_arr_end(w);
    write_length(w, n + nr);
    jsonw_obj_end(w);
}

static void write_thread(struct jsonw *w, struct gecko *g, size_t ti)
{
    const struct profile *p = g->p;
    const struct track *tr = &g->t.v[ti];
    struct gthread th;
    memset(&th, 0, sizeof(th));
    for (size_t i = tr->first; i < tr->first + tr->n; i++) {
        const struct psample *s = &p->samples[g->t.order[i]];
        push(&th.s_stack, stack_of(g, &th, s->stack, s->cat < PCAT_N ? s->cat : CAT_NONE));
    }
    const char *proc = tracks_process_name(p, tr->pid);
    jsonw_obj_begin(w);
    members(w, "\"processType\":\"default\",\"processStartupTime\":0,"
               "\"processShutdownTime\":null,\"registerTime\":0,\"unregisterTime\":null,"
               "\"pausedRanges\":[],\"showMarkersInTimeline\":true");
    jsonw_key(w, "name");
    buf_reset(&g->tmp);
    if (tr->name)
        jsonw_fail(
            w, buf_append(&g->tmp, profile_string(p, tr->name), strtab_len(&p->strs, tr->name)));
    else
        jsonw_fail(w, buf_printf(&g->tmp, "Thread %u", (unsigned)tr->tid));
    jsonw_strn(w, buf_cstr(&g->tmp), g->tmp.len);
    jsonw_key(w, "isMainThread");
    jsonw_bool(w, tr->tid == tr->pid);
    jsonw_key(w, "processName");
    buf_reset(&g->tmp);
    if (proc && proc[0])
        jsonw_fail(w, buf_puts(&g->tmp, proc));
    else
        jsonw_fail(w, buf_printf(&g->tmp, "Process %u", (unsigned)tr->pid));
    jsonw_strn(w, buf_cstr(&g->tmp), g->tmp.len);
    char pid[24];
    jsonw_key(w, "pid");
    jsonw_strn(w, pid, jsonw_fmt_u64(pid, tr->pid)); /* a string in this format */
    jsonw_key(w, "tid");
    jsonw_u64(w, tr->tid);
    write_samples(w, g, tr, &th);
    write_markers(w, g, ti);
    write_tables(w, &th);
    jsonw_obj_end(w);
    gthread_fini(&th);
}

static void write_categories(struct jsonw *w)
{
    jsonw_key(w, "categories");
    jsonw_arr_begin(w);
    for (size_t i = 0; i <= CAT_LOAD; i++) {
        jsonw_obj_begin(w);
        jsonw_key(w, "name");
        jsonw_str(w, categories[i].name);
        jsonw_key(w, "color");
        jsonw_str(w, categories[i].color);
        members(w, "\"subcategories\":[\"Other\"]");
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
}

/* The schemas of the span markers (their kind, request id and thread) and of the load request
 * markers (status, outcome, body bytes, time to first token) for the tooltip, sidebar and
 * table. */
static void write_marker_schema(struct jsonw *w)
{
    members(w, "\"markerSchema\":[{\"name\":\"CruxSpan\",\"tooltipLabel\":\"{marker.name}\","
               "\"tableLabel\":\"{marker.name} {marker.data.kind} {marker.data.request}\","
               "\"chartLabel\":\"{marker.name}\","
               "\"display\":[\"marker-chart\",\"marker-table\",\"timeline-overview\"],"
               "\"fields\":[{\"key\":\"kind\",\"label\":\"Kind\",\"format\":\"string\"},"
               "{\"key\":\"request\",\"label\":\"Request\",\"format\":\"string\"},"
               "{\"key\":\"tid\",\"label\":\"Thread\",\"format\":\"tid\"}],"
               "\"description\":\"A span the crux agent reported: a request, one of its "
               "stages, or a mark\"},"
               "{\"name\":\"CruxLoadRequest\",\"tooltipLabel\":\"{marker.name} "
               "{marker.data.status} {marker.data.outcome}\","
               "\"tableLabel\":\"{marker.data.status} {marker.data.outcome} "
               "{marker.data.bytes}\","
               "\"chartLabel\":\"{marker.data.status} {marker.data.outcome}\","
               "\"display\":[\"marker-chart\",\"marker-table\",\"timeline-overview\"],"
               "\"fields\":[{\"key\":\"status\",\"label\":\"HTTP status\",\"format\":\"integer\"},"
               "{\"key\":\"outcome\",\"label\":\"Outcome\",\"format\":\"string\"},"
               "{\"key\":\"bytes\",\"label\":\"Response body\",\"format\":\"bytes\"},"
               "{\"key\":\"ttft\",\"label\":\"Time to first token\","
               "\"format\":\"milliseconds\"}],"
               "\"description\":\"A request crux's load generator sent (record --load), from "
               "its send to the end of its response\"}]");
}

static void write_meta(struct jsonw *w, struct gecko *g, const struct export_opts *o)
{
    const struct profile *p = g->p;
    jsonw_key(w, "meta");
    jsonw_obj_begin(w);
    jsonw_key(w, "interval");
    jsonw_double(w, g->t.interval_s * 1e3);
    /* ms since the epoch when recording began: the date the profiler shows */
    jsonw_key(w, "startTime");
    jsonw_double(w, (double)(p->meta.epoch_ns / 1000000));
    members(w, "\"profilingStartTime\":0,\"processType\":0");
    if (p->meta.duration_ns) {
        jsonw_key(w, "profilingEndTime");
        jsonw_double(w, (double)p->meta.duration_ns / 1e6);
    }
    buf_reset(&g->tmp);
    jsonw_fail(w, export_title(p, o, &g->tmp));
    jsonw_key(w, "product");
    jsonw_strn(w, buf_cstr(&g->tmp), g->tmp.len);
    if (p->meta.command) {
        jsonw_key(w, "arguments");
        jsonw_str(w, p->meta.command);
    }
    jsonw_key(w, "stackwalk");
    jsonw_u64(w, p->meta.native ? 1 : 0);
    jsonw_key(w, "version");
    jsonw_u64(w, GECKO_PROFILE_VERSION);
    jsonw_key(w, "preprocessedProfileVersion");
    jsonw_u64(w, GECKO_PROCESSED_VERSION);
    members(w, "\"symbolicated\":true,\"importedFrom\":\"crux\",\"keepProfileThreadOrder\":true");
    write_categories(w);
    write_marker_schema(w);
    jsonw_obj_end(w);
}

/* One counter per process with a memory timeline: resident memory as the Firefox Profiler
 * draws memory, its changes (the first sample from zero). */
static void write_counter(struct jsonw *w, const struct gecko *g, uint32_t pid, size_t thread)
{
    const struct profile *p = g->p;
    char num[24];
    jsonw_obj_begin(w);
    members(w, "\"name\":\"RSS\",\"category\":\"Memory\"");
    jsonw_key(w, "description");
    jsonw_str(w, "resident set size (bytes)");
    jsonw_key(w, "pid");
    jsonw_strn(w, num, jsonw_fmt_u64(num, pid));
    jsonw_key(w, "mainThreadIndex");
    jsonw_u64(w, thread);
    jsonw_key(w, "samples");
    jsonw_obj_begin(w);
    size_t n = 0;
    jsonw_key(w, "time");
    jsonw_arr_begin(w);
    for (size_t i = 0; i < p->nmem && !jsonw_error(w); i++) {
        if (p->mem[i].pid == pid) {
            jsonw_double(w, (double)p->mem[i].t_ns / 1e6);
            n++;
        }
    }
    jsonw_arr_end(w);
    jsonw_key(w, "count");
    jsonw_arr_begin(w);
    uint64_t last = 0;
    for (size_t i = 0; i < p->nmem && !jsonw_error(w); i++) {
        if (p->mem[i].pid == pid) {
            jsonw_i64(w, (int64_t)(p->mem[i].rss - last));
            last = p->mem[i].rss;
        }
    }
    jsonw_arr_end(w);
    write_length(w, n);
    jsonw_obj_end(w);
    jsonw_obj_end(w);
}

static void write_counters(struct jsonw *w, const struct gecko *g)
{
    const struct profile *p = g->p;
    jsonw_key(w, "counters");
    jsonw_arr_begin(w);
    for (size_t ti = 0; ti < g->t.n && !jsonw_error(w); ti++) {
        uint32_t pid = g->t.v[ti].pid;
        if (ti && g->t.v[ti - 1].pid == pid)
            continue; /* tracks are grouped by process: its first thread carries the counter */
        bool any = false;
        for (size_t i = 0; i < p->nmem && !any; i++)
            any = p->mem[i].pid == pid;
        if (any)
            write_counter(w, g, pid, ti);
    }
    jsonw_arr_end(w);
}

struct span_key {
    size_t track;
    uint64_t start;
    uint32_t idx;
};

static int cmp_span(const void *a, const void *b)
{
    const struct span_key *x = a, *y = b;
    if (x->track != y->track)
        return x->track < y->track ? -1 : 1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Groups the spans by track, each group by start. */
static void order_spans(struct gecko *g)
{
    const struct profile *p = g->p;
    struct span_key *keys = xmalloc((p->nspans ? p->nspans : 1) * sizeof(*keys));
    size_t n = 0;
    for (size_t i = 0; i < p->nspans; i++) {
        size_t tr = tracks_of_span(&g->t, p, &p->spans[i]);
        if (tr != SIZE_MAX)
            keys[n++] = (struct span_key){tr, p->spans[i].start_ns, (uint32_t)i};
    }
    qsort(keys, n, sizeof(*keys), cmp_span);
    g->span_order = xmalloc((n ? n : 1) * sizeof(*g->span_order));
    g->span_first = xcalloc(g->t.n + 1, sizeof(*g->span_first));
    size_t k = 0;
    for (size_t ti = 0; ti < g->t.n; ti++) {
        g->span_first[ti] = k;
        while (k < n && keys[k].track == ti) {
            g->span_order[k] = keys[k].idx;
            k++;
        }
    }
    g->span_first[g->t.n] = k;
    free(keys);
}

/* The track of the recorded process's main thread (the one the Firefox Profiler selects and
 * shows first), else the first track; SIZE_MAX when there are no requests or no tracks. */
static size_t load_track(const struct gecko *g)
{
    if (!g->p->nreqs || !g->t.n)
        return SIZE_MAX;
    for (size_t i = 0; i < g->t.n; i++)
        if (g->t.v[i].pid == g->p->meta.pid && g->t.v[i].tid == g->t.v[i].pid)
            return i;
    return 0;
}

static void write_strings(struct jsonw *w, const struct gecko *g)
{
    jsonw_key(w, "shared");
    jsonw_obj_begin(w);
    jsonw_key(w, "stringArray");
    jsonw_arr_begin(w);
    for (uint32_t i = 0; i < g->strs.len && !jsonw_error(w); i++)
        jsonw_strn(w, strtab_get(&g->strs, i), strtab_len(&g->strs, i));
    jsonw_arr_end(w);
    jsonw_obj_end(w);
}

int gecko_write(const struct profile *p, const struct export_opts *o, struct buf *out)
{
    struct gecko g = {.p = p};
    tracks_build(p, &g.t);
    strtab_init(&g.strs);
    buf_init(&g.tmp, 0);
    g.path = xmalloc(((size_t)tracks_max_depth(p) + 1) * sizeof(*g.path));
    order_spans(&g);
    g.load_track = load_track(&g);
    struct jsonw w;
    jsonw_init(&w, out, 0);
    jsonw_obj_begin(&w);
    write_meta(&w, &g, o);
    members(&w, "\"libs\":[]");
    jsonw_key(&w, "threads");
    jsonw_arr_begin(&w);
    for (size_t i = 0; i < g.t.n && !jsonw_error(&w); i++)
        write_thread(&w, &g, i);
    jsonw_arr_end(&w);
    write_counters(&w, &g);
    write_strings(&w, &g); /* last: the threads interned them */
    jsonw_obj_end(&w);
    jsonw_raw(&w, "\n", 1);
    free(g.path);
    free(g.span_order);
    free(g.span_first);
    buf_fini(&g.tmp);
    strtab_fini(&g.strs);
    tracks_fini(&g.t);
    return jsonw_error(&w);
}
