// SPDX-License-Identifier: MIT
// The allocation tables (alloclines.h), from analysis/allocs.h's views.
#include "export/alloclines.h"

#include <signal.h>
#include <stdio.h>

#include "analysis/allocreq.h"
#include "analysis/allocs.h"

#define TEXT_ROWS 25
#define JSON_ROWS 200
#define STACK_MAX 64
#define HOLDERS 5

static double mb(int64_t bytes)
{
    return (double)bytes / (1024.0 * 1024.0);
}

static const char *frame_text(const struct profile *p, uint32_t frame, char *tmp, size_t cap,
                              bool with_line)
{
    if (frame == UINT32_MAX)
        return "[no Python frame]";
    const struct pframe *f = &p->frames[frame];
    if (with_line)
        snprintf(tmp, cap, "%s:%d %s", profile_string(p, f->file), f->line,
                 profile_string(p, f->name));
    else
        snprintf(tmp, cap, "%s (%s)", profile_string(p, f->name), profile_string(p, f->file));
    return tmp;
}

static int table(struct buf *out, const struct profile *p, const struct alloc_site *v, size_t n,
                 bool lines)
{
    int rc = buf_printf(out,
                        "\nallocations by %s\n  alloc MB     count  peak MB   end MB  temp MB  "
                        "%s\n",
                        lines ? "line" : "function", lines ? "line" : "function");
    char tmp[512];
    for (size_t i = 0; !rc && i < n && i < TEXT_ROWS; i++) {
        const struct alloc_site *s = &v[i];
        rc = buf_printf(out, "  %8.1f %9.0f %8.1f %8.1f %8.1f  %s%s\n", mb((int64_t)s->bytes),
                        s->count, mb(s->peak_live), mb(s->end_live), mb((int64_t)s->temp),
                        frame_text(p, s->frame, tmp, sizeof(tmp), lines),
                        lines && s->leak ? "  [leak]" : "");
    }
    return rc;
}

static int copy_table(struct buf *out, const struct profile *p, const struct alloc_site *v,
                      size_t n, bool lines)
{
    int rc = buf_printf(out, "\ncopies by %s\n   copy MB     MB/s     calls  %s\n",
                        lines ? "line" : "function", lines ? "line" : "function");
    char tmp[512];
    for (size_t i = 0; !rc && i < n && i < TEXT_ROWS; i++) {
        const struct alloc_site *s = &v[i];
        rc = buf_printf(out, "  %8.1f %8.1f %9.0f  %s\n", mb((int64_t)s->copy_bytes),
                        allocs_rate(p, s->copy_bytes) / (1024.0 * 1024.0), s->copies,
                        frame_text(p, s->frame, tmp, sizeof(tmp), lines));
    }
    return rc;
}

/* Copy volume: what memcpy and memmove copied, per line and function. */
static int copies_text(struct buf *out, const struct profile *p, const struct alloc_view *v)
{
    if (!p->copy_sample_bytes)
        return buf_puts(out, "\ncopies: not sampled (CRUX_COPIES=0)\n");
    int rc = buf_printf(out,
                        "\ncopies (memcpy/memmove, a sample every %.1f MB copied): %.1f MB "
                        "copied, %.1f MB/s over the recording\n",
                        mb((int64_t)p->copy_sample_bytes), mb((int64_t)v->copy_total),
                        allocs_rate(p, v->copy_total) / (1024.0 * 1024.0));
    if (!rc && v->ncopy_lines)
        rc = copy_table(out, p, v->copy_lines, v->ncopy_lines, true);
    if (!rc && v->ncopy_funcs)
        rc = copy_table(out, p, v->copy_funcs, v->ncopy_funcs, false);
    return rc;
}

/* A target killed by SIGKILL: said first, with the lines that held the most at the peak. */
static int killed_text(struct buf *out, const struct profile *p, const struct alloc_view *v)
{
    if (p->meta.killed_signal != SIGKILL)
        return 0;
    const char *why = p->meta.oom_kills > 0    ? "out of memory: the kernel's OOM killer acted"
                      : p->meta.oom_kills == 0 ? "not by the OOM killer"
                                               : "whether for memory cannot be told";
    int rc = buf_printf(out,
                        "\nthe target was killed by SIGKILL (%s); held at the peak (%.1f MB live "
                        "at %.2f s):\n",
                        why, mb(v->peak_live), (double)v->peak_ns / 1e9);
    const struct alloc_site *top[HOLDERS];
    size_t n = allocs_peak_holders(v, top, HOLDERS);
    char tmp[512];
    for (size_t i = 0; !rc && i < n; i++)
        rc = buf_printf(out, "  %8.1f MB  %s\n", mb(top[i]->peak_live),
                        frame_text(p, top[i]->frame, tmp, sizeof(tmp), true));
    return rc;
}

static double kb(double bytes)
{
    return bytes / 1024.0;
}

/* Bytes per request, when the target marked its requests with the crux agent. */
static int requests_text(struct buf *out, const struct profile *p)
{
    struct allocreq_view r;
    allocreq_build(p, &r);
    if (!r.requests)
        return 0;
    int rc = buf_printf(out,
                        "\nbytes per request (%zu requests of the crux agent): %.1f KB allocated, "
                        "%.1f KB retained (live at the request's end; %.1f KB never freed), at "
                        "most %.1f KB in one request\n",
                        r.requests, kb(r.allocated), kb(r.retained), kb(r.kept),
                        kb((double)r.max_retained));
    char tmp[512];
    for (size_t i = 0; !rc && i < r.nlines; i++)
        rc = buf_printf(out, "  retains %8.1f KB per request (%.1f KB never freed) at %s\n",
                        kb(r.lines[i].retained), kb(r.lines[i].kept),
                        frame_text(p, r.lines[i].frame, tmp, sizeof(tmp), true));
    return rc;
}

static void json_frame(struct jsonw *w, const struct profile *p, uint32_t frame);

/* "requests": null without request spans. */
static void json_requests(struct jsonw *w, const struct profile *p)
{
    struct allocreq_view r;
    allocreq_build(p, &r);
    jsonw_key(w, "requests");
    if (!r.requests) {
        jsonw_null(w);
        return;
    }
    jsonw_obj_begin(w);
    jsonw_key(w, "count");
    jsonw_u64(w, r.requests);
    jsonw_key(w, "allocated_bytes_per_request");
    jsonw_double(w, r.allocated);
    jsonw_key(w, "retained_bytes_per_request");
    jsonw_double(w, r.retained);
    jsonw_key(w, "never_freed_bytes_per_request");
    jsonw_double(w, r.kept);
    jsonw_key(w, "max_retained_bytes");
    jsonw_u64(w, r.max_retained);
    jsonw_key(w, "lines");
    jsonw_arr_begin(w);
    for (size_t i = 0; i < r.nlines; i++) {
        jsonw_obj_begin(w);
        json_frame(w, p, r.lines[i].frame);
        jsonw_key(w, "retained_bytes_per_request");
        jsonw_double(w, r.lines[i].retained);
        jsonw_key(w, "never_freed_bytes_per_request");
        jsonw_double(w, r.lines[i].kept);
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
    jsonw_obj_end(w);
}

static int stack_text(struct buf *out, const struct profile *p, uint32_t stack)
{
    uint32_t frames[STACK_MAX];
    size_t d = profile_stack_frames(p, stack, frames, STACK_MAX);
    d = d < STACK_MAX ? d : STACK_MAX;
    int rc = 0;
    char tmp[512];
    for (size_t k = d; !rc && k > 0; k--)
        rc = buf_printf(out, "      %s\n", frame_text(p, frames[k - 1], tmp, sizeof(tmp), true));
    return rc;
}

int alloclines_text(const struct profile *p, struct buf *out)
{
    if (!p->allocations)
        return 0;
    struct alloc_view v;
    allocs_view_build(p, &v);
    int rc = buf_printf(out,
                        "\nallocations (%s): %.1f MB allocated, peak live %.1f MB at %.2f s, "
                        "%.1f MB live at the end",
                        p->alloc_sample_bytes ? "sampled" : "every allocation",
                        mb((int64_t)v.total_bytes), mb(v.peak_live), (double)v.peak_ns / 1e9,
                        mb(v.end_live));
    if (!rc && p->allocs_dropped)
        rc = buf_printf(out, " (%llu events lost: live bytes may be overstated)",
                        (unsigned long long)p->allocs_dropped);
    if (!rc)
        rc = killed_text(out, p, &v);
    if (!rc)
        rc = buf_puts(out, "\npeak: live at the heap's high-water mark; end: live at the end; "
                           "temp: freed within 10 ms\n");
    if (!rc)
        rc = table(out, p, v.lines, v.nlines, true);
    if (!rc)
        rc = table(out, p, v.funcs, v.nfuncs, false);
    int leaks = 0;
    for (size_t i = 0; !rc && i < v.nlines; i++) {
        const struct alloc_site *s = &v.lines[i];
        if (!s->leak)
            continue;
        char tmp[512];
        if (!leaks++)
            rc = buf_puts(out, "\nleaks: live bytes that keep growing (trend likelihood >= 0.95, "
                               "growth >= 1% of the peak heap)\n");
        if (!rc)
            rc = buf_printf(out, "  %+.1f MB (%.0f%% of the heap's growth), likelihood %.3f: %s\n",
                            mb(s->growth),
                            v.heap_growth > 0 ? 100.0 * (double)s->growth / (double)v.heap_growth
                                              : 0.0,
                            s->likelihood, frame_text(p, s->frame, tmp, sizeof(tmp), true));
        if (!rc)
            rc = stack_text(out, p, s->stack);
    }
    if (!rc && !leaks)
        rc = buf_puts(out, "\nleaks: none found\n");
    if (!rc)
        rc = requests_text(out, p);
    if (!rc)
        rc = copies_text(out, p, &v);
    if (!rc)
        rc = buf_puts(out, "\nlive MB and allocation rate over time\n");
    for (int b = 0; !rc && b < ALLOCS_TIMELINE; b += 4) {
        double t = (double)v.duration_ns * (b + 1) / ALLOCS_TIMELINE / 1e9;
        double span = (double)v.duration_ns / ALLOCS_TIMELINE / 1e9;
        rc = buf_printf(out, "  %7.2f s  %8.1f MB live  %8.1f MB/s\n", t, mb(v.live[b]),
                        span > 0 ? mb((int64_t)v.rate[b]) / span : 0.0);
    }
    allocs_view_fini(&v);
    return rc;
}

static void json_frame(struct jsonw *w, const struct profile *p, uint32_t frame)
{
    if (frame == UINT32_MAX) {
        jsonw_key(w, "function");
        jsonw_null(w);
        jsonw_key(w, "file");
        jsonw_null(w);
        jsonw_key(w, "line");
        jsonw_null(w);
        return;
    }
    const struct pframe *f = &p->frames[frame];
    jsonw_key(w, "function");
    jsonw_str(w, profile_string(p, f->name));
    jsonw_key(w, "file");
    jsonw_str(w, profile_string(p, f->file));
    jsonw_key(w, "line");
    jsonw_i64(w, f->line);
}

static void json_copy_sites(struct jsonw *w, const struct profile *p, const struct alloc_site *v,
                            size_t n)
{
    jsonw_arr_begin(w);
    for (size_t i = 0; i < n && i < JSON_ROWS; i++) {
        jsonw_obj_begin(w);
        json_frame(w, p, v[i].frame);
        jsonw_key(w, "bytes");
        jsonw_u64(w, v[i].copy_bytes);
        jsonw_key(w, "calls");
        jsonw_double(w, v[i].copies);
        jsonw_key(w, "bytes_per_s");
        jsonw_double(w, allocs_rate(p, v[i].copy_bytes));
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
}

/* "killed": null unless the target died of a signal; "peak_holders": the top lines at the peak. */
static void json_killed(struct jsonw *w, const struct profile *p, const struct alloc_view *v)
{
    jsonw_key(w, "killed");
    if (!p->meta.killed_signal) {
        jsonw_null(w);
    } else {
        jsonw_obj_begin(w);
        jsonw_key(w, "signal");
        jsonw_i64(w, p->meta.killed_signal);
        jsonw_key(w, "out_of_memory"); /* null: cannot be told */
        if (p->meta.killed_signal != SIGKILL)
            jsonw_bool(w, false);
        else if (p->meta.oom_kills < 0)
            jsonw_null(w);
        else
            jsonw_bool(w, p->meta.oom_kills > 0);
        jsonw_obj_end(w);
    }
    jsonw_key(w, "peak_holders");
    jsonw_arr_begin(w);
    const struct alloc_site *top[HOLDERS];
    size_t n = allocs_peak_holders(v, top, HOLDERS);
    for (size_t i = 0; i < n; i++) {
        jsonw_obj_begin(w);
        json_frame(w, p, top[i]->frame);
        jsonw_key(w, "peak_live_bytes");
        jsonw_i64(w, top[i]->peak_live);
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
}

/* "copies": null when copies were not sampled. */
static void json_copies(struct jsonw *w, const struct profile *p, const struct alloc_view *v)
{
    jsonw_key(w, "copies");
    if (!p->copy_sample_bytes) {
        jsonw_null(w);
        return;
    }
    jsonw_obj_begin(w);
    jsonw_key(w, "sample_bytes");
    jsonw_u64(w, p->copy_sample_bytes);
    jsonw_key(w, "events");
    jsonw_u64(w, v->copy_events);
    jsonw_key(w, "total_bytes");
    jsonw_u64(w, v->copy_total);
    jsonw_key(w, "bytes_per_s");
    jsonw_double(w, allocs_rate(p, v->copy_total));
    jsonw_key(w, "lines");
    json_copy_sites(w, p, v->copy_lines, v->ncopy_lines);
    jsonw_key(w, "functions");
    json_copy_sites(w, p, v->copy_funcs, v->ncopy_funcs);
    jsonw_obj_end(w);
}

static void json_sites(struct jsonw *w, const struct profile *p, const struct alloc_site *v,
                       size_t n)
{
    jsonw_arr_begin(w);
    for (size_t i = 0; i < n && i < JSON_ROWS; i++) {
        const struct alloc_site *s = &v[i];
        jsonw_obj_begin(w);
        json_frame(w, p, s->frame);
        jsonw_key(w, "bytes");
        jsonw_u64(w, s->bytes);
        jsonw_key(w, "count");
        jsonw_double(w, s->count);
        jsonw_key(w, "peak_live_bytes");
        jsonw_i64(w, s->peak_live);
        jsonw_key(w, "end_live_bytes");
        jsonw_i64(w, s->end_live);
        jsonw_key(w, "temp_bytes");
        jsonw_u64(w, s->temp);
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
}

void alloclines_json(struct jsonw *w, const struct profile *p)
{
    jsonw_key(w, "allocations");
    if (!p->allocations) {
        jsonw_null(w);
        return;
    }
    struct alloc_view v;
    allocs_view_build(p, &v);
    jsonw_obj_begin(w);
    jsonw_key(w, "sample_bytes");
    jsonw_u64(w, p->alloc_sample_bytes);
    jsonw_key(w, "events");
    jsonw_u64(w, p->nallocs);
    jsonw_key(w, "events_lost");
    jsonw_u64(w, p->allocs_dropped);
    jsonw_key(w, "total_bytes");
    jsonw_u64(w, v.total_bytes);
    jsonw_key(w, "peak_live_bytes");
    jsonw_i64(w, v.peak_live);
    jsonw_key(w, "peak_s");
    jsonw_double(w, (double)v.peak_ns / 1e9);
    jsonw_key(w, "end_live_bytes");
    jsonw_i64(w, v.end_live);
    jsonw_key(w, "heap_growth_bytes");
    jsonw_i64(w, v.heap_growth);
    jsonw_key(w, "lines");
    json_sites(w, p, v.lines, v.nlines);
    jsonw_key(w, "functions");
    json_sites(w, p, v.funcs, v.nfuncs);
    jsonw_key(w, "leaks");
    jsonw_arr_begin(w);
    for (size_t i = 0; i < v.nlines; i++) {
        const struct alloc_site *s = &v.lines[i];
        if (!s->leak)
            continue;
        jsonw_obj_begin(w);
        json_frame(w, p, s->frame);
        jsonw_key(w, "growth_bytes");
        jsonw_i64(w, s->growth);
        jsonw_key(w, "growth_share");
        jsonw_double(w, v.heap_growth > 0 ? (double)s->growth / (double)v.heap_growth : 0);
        jsonw_key(w, "likelihood");
        jsonw_double(w, s->likelihood);
        jsonw_key(w, "stack");
        jsonw_arr_begin(w);
        uint32_t frames[STACK_MAX];
        size_t d = profile_stack_frames(p, s->stack, frames, STACK_MAX);
        d = d < STACK_MAX ? d : STACK_MAX;
        for (size_t k = d; k > 0; k--) {
            jsonw_obj_begin(w);
            json_frame(w, p, frames[k - 1]);
            jsonw_obj_end(w);
        }
        jsonw_arr_end(w);
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
    jsonw_key(w, "timeline"); /* [seconds, live bytes, bytes allocated in the bucket] */
    jsonw_arr_begin(w);
    for (int b = 0; b < ALLOCS_TIMELINE; b++) {
        jsonw_arr_begin(w);
        jsonw_double(w, (double)v.duration_ns * (b + 1) / ALLOCS_TIMELINE / 1e9);
        jsonw_i64(w, v.live[b]);
        jsonw_u64(w, v.rate[b]);
        jsonw_arr_end(w);
    }
    jsonw_arr_end(w);
    json_copies(w, p, &v);
    json_killed(w, p, &v);
    json_requests(w, p);
    jsonw_obj_end(w);
    allocs_view_fini(&v);
}
