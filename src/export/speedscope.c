// SPDX-License-Identifier: MIT
// speedscope export: the frame table as shared.frames, the counted stacks as one combined
// profile, then one profile per thread in time order, named as py-spy names them.
#include "export/speedscope.h"

#include <stdlib.h>
#include <string.h>

#include "export/tracks.h"

#include "util/jsonw.h"
#include "util/xalloc.h"

#define SPEEDSCOPE_SCHEMA "https://www.speedscope.app/file-format-schema.json"

/* Python frames keep name, file and line apart (speedscope shows them in its own columns), and
 * the 1-based start column where known (3.11+; py-spy writes `"col": null` always, crux leaves
 * it out when unknown, as it does `line`); native frames put the library in `file`; thread,
 * process and marker frames are named by their collapsed label, which carries the TID or PID. */
static void write_frame(struct jsonw *w, const struct profile *p, uint32_t id, struct buf *tmp)
{
    const struct pframe *f = profile_frame_at(p, id);
    jsonw_obj_begin(w);
    jsonw_key(w, "name");
    if (f->kind == FRAME_PYTHON || f->kind == FRAME_NATIVE) {
        const char *name = profile_string(p, f->name);
        jsonw_str(w, name[0] ? name : "?");
    } else {
        buf_reset(tmp);
        jsonw_fail(w, export_frame_label(p, id, tmp));
        jsonw_strn(w, buf_cstr(tmp), tmp->len);
    }
    if ((f->kind == FRAME_PYTHON || f->kind == FRAME_NATIVE) && strtab_len(&p->strs, f->file)) {
        jsonw_key(w, "file");
        jsonw_str(w, profile_string(p, f->file));
    }
    if (f->kind == FRAME_PYTHON && f->line > 0) {
        jsonw_key(w, "line");
        jsonw_i64(w, f->line);
        if (f->col > 0) {
            jsonw_key(w, "col");
            jsonw_u64(w, f->col);
        }
    }
    jsonw_obj_end(w);
}

/* The members every sampled profile starts with; weights are in seconds, as py-spy writes. */
static void write_head(struct jsonw *w, const char *name, size_t len, double end)
{
    jsonw_key(w, "type");
    jsonw_str(w, "sampled");
    jsonw_key(w, "name");
    jsonw_strn(w, name, len);
    jsonw_key(w, "unit");
    jsonw_str(w, "seconds");
    jsonw_key(w, "startValue");
    jsonw_u64(w, 0);
    jsonw_key(w, "endValue");
    jsonw_double(w, end);
}

static void write_shared(struct jsonw *w, const struct profile *p)
{
    struct buf tmp;
    buf_init(&tmp, 0);
    jsonw_key(w, "shared");
    jsonw_obj_begin(w);
    jsonw_key(w, "frames");
    jsonw_arr_begin(w);
    for (uint32_t i = 0; i < p->nframes && !jsonw_error(w); i++)
        write_frame(w, p, i, &tmp);
    jsonw_arr_end(w);
    jsonw_obj_end(w);
    buf_fini(&tmp);
}

/* Samples are the counted stacks in id order (deterministic for a given profile), each an
 * array of frame indexes root first, weighted by their count in seconds. The empty stack has
 * no frames and is left out. */
static void write_combined(struct jsonw *w, const struct profile *p, const struct buf *title,
                           double interval)
{
    uint32_t maxd = tracks_max_depth(p);
    uint32_t *frames = xmalloc(((size_t)maxd + 1) * sizeof(*frames));
    jsonw_obj_begin(w);
    write_head(w, title->data ? title->data : "", title->len,
               (double)(p->total - p->counts[0]) * interval);
    jsonw_key(w, "samples");
    jsonw_arr_begin(w);
    for (uint32_t s = 1; s < p->nnodes && !jsonw_error(w); s++) {
        if (!p->counts[s])
            continue;
        size_t depth = profile_stack_frames(p, s, frames, maxd);
        jsonw_arr_begin(w);
        for (size_t i = 0; i < depth; i++)
            jsonw_u64(w, frames[i]);
        jsonw_arr_end(w);
    }
    jsonw_arr_end(w);
    jsonw_key(w, "weights");
    jsonw_arr_begin(w);
    for (uint32_t s = 1; s < p->nnodes && !jsonw_error(w); s++) {
        if (p->counts[s])
            jsonw_double(w, (double)p->counts[s] * interval);
    }
    jsonw_arr_end(w);
    jsonw_obj_end(w);
    free(frames);
}

/* py-spy's name for a thread's profile: `Thread TID "NAME"`, with `Process PID ` before it
 * when the recording spans processes (py-spy --subprocesses). */
static int thread_title(const struct profile *p, const struct tracks *t, const struct track *tr,
                        struct buf *out)
{
    buf_reset(out);
    int rc = 0;
    if (t->by_process)
        rc = buf_printf(out, "Process %u ", (unsigned)tr->pid);
    if (!rc)
        rc = buf_printf(out, "Thread %u \"", (unsigned)tr->tid);
    if (!rc)
        rc = buf_append(out, profile_string(p, tr->name), strtab_len(&p->strs, tr->name));
    if (!rc)
        rc = buf_putc(out, '"');
    return rc;
}

/* One run of samples of a thread with the same stack, in time order. */
struct run {
    uint32_t stack;
    uint64_t weight;
};

/* Collapses the track's samples into runs of equal consecutive stacks (speedscope draws a run
 * as one block in its time-order view, as it would the samples apart). */
static size_t track_runs(const struct profile *p, const struct tracks *t, const struct track *tr,
                         struct run *runs)
{
    size_t n = 0;
    for (size_t i = tr->first; i < tr->first + tr->n; i++) {
        const struct psample *s = &p->samples[t->order[i]];
        if (n && runs[n - 1].stack == s->stack) {
            runs[n - 1].weight += s->weight ? s->weight : 1;
            continue;
        }
        runs[n++] = (struct run){s->stack, s->weight ? s->weight : 1};
    }
    return n;
}

static void write_thread(struct jsonw *w, const struct profile *p, const struct tracks *t,
                         const struct track *tr, uint32_t *frames, uint32_t maxd, struct buf *tmp)
{
    struct run *runs = xmalloc(tr->n * sizeof(*runs));
    size_t nruns = track_runs(p, t, tr, runs);
    uint64_t total = 0;
    for (size_t i = 0; i < nruns; i++)
        total += runs[i].weight;
    jsonw_fail(w, thread_title(p, t, tr, tmp));
    jsonw_obj_begin(w);
    write_head(w, buf_cstr(tmp), tmp->len, (double)total * t->interval_s);
    jsonw_key(w, "samples");
    jsonw_arr_begin(w);
    for (size_t i = 0; i < nruns && !jsonw_error(w); i++) {
        size_t depth = profile_stack_frames(p, runs[i].stack, frames, maxd);
        jsonw_arr_begin(w);
        for (size_t k = tracks_root_frames(p, frames, depth); k < depth; k++)
            jsonw_u64(w, frames[k]);
        jsonw_arr_end(w);
    }
    jsonw_arr_end(w);
    jsonw_key(w, "weights");
    jsonw_arr_begin(w);
    for (size_t i = 0; i < nruns && !jsonw_error(w); i++)
        jsonw_double(w, (double)runs[i].weight * t->interval_s);
    jsonw_arr_end(w);
    jsonw_obj_end(w);
    free(runs);
}

/* The combined profile first (what the other formats show, and what profiles[0] held before
 * there were per-thread profiles), then one per thread in track order. */
static void write_profiles(struct jsonw *w, const struct profile *p, const struct buf *title)
{
    struct tracks t;
    tracks_build(p, &t);
    jsonw_key(w, "profiles");
    jsonw_arr_begin(w);
    write_combined(w, p, title, t.interval_s);
    uint32_t maxd = tracks_max_depth(p);
    uint32_t *frames = xmalloc(((size_t)maxd + 1) * sizeof(*frames));
    struct buf tmp;
    buf_init(&tmp, 0);
    for (size_t i = 0; i < t.n && !jsonw_error(w); i++)
        if (t.v[i].n) /* a thread seen only in spans has nothing to show here */
            write_thread(w, p, &t, &t.v[i], frames, maxd, &tmp);
    buf_fini(&tmp);
    free(frames);
    jsonw_arr_end(w);
    tracks_fini(&t);
}

int speedscope_write(const struct profile *p, const struct export_opts *o, struct buf *out)
{
    struct buf title;
    buf_init(&title, 0);
    struct jsonw w;
    jsonw_init(&w, out, 0);
    jsonw_fail(&w, export_title(p, o, &title));
    jsonw_obj_begin(&w);
    jsonw_key(&w, "$schema");
    jsonw_str(&w, SPEEDSCOPE_SCHEMA);
    jsonw_key(&w, "exporter");
    jsonw_str(&w, "crux");
    jsonw_key(&w, "name");
    jsonw_strn(&w, buf_cstr(&title), title.len);
    jsonw_key(&w, "activeProfileIndex");
    jsonw_u64(&w, 0);
    write_shared(&w, p);
    write_profiles(&w, p, &title);
    jsonw_obj_end(&w);
    jsonw_raw(&w, "\n", 1);
    buf_fini(&title);
    return jsonw_error(&w);
}
