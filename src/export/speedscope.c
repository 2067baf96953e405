// SPDX-License-Identifier: MIT
// speedscope export: the frame table as shared.frames, each counted stack as one weighted sample.
#include "export/speedscope.h"

#include <stdlib.h>

#include "util/jsonw.h"
#include "util/xalloc.h"

#define SPEEDSCOPE_SCHEMA "https://www.speedscope.app/file-format-schema.json"

/* Python frames keep name, file and line apart (speedscope shows them in its own columns);
 * native frames put the library in `file`; thread, process and marker frames are named by
 * their collapsed label, which carries the TID or PID. */
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
    }
    jsonw_obj_end(w);
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
 * array of frame indexes root first. The empty stack has no frames and is left out. */
static void write_samples(struct jsonw *w, const struct profile *p)
{
    uint32_t maxd = 0;
    for (uint32_t s = 1; s < p->nnodes; s++)
        maxd = p->nodes[s].depth > maxd ? p->nodes[s].depth : maxd;
    uint32_t *frames = xmalloc(((size_t)maxd + 1) * sizeof(*frames));
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
            jsonw_u64(w, p->counts[s]);
    }
    jsonw_arr_end(w);
    free(frames);
}

static void write_profile(struct jsonw *w, const struct profile *p, const struct buf *title)
{
    uint64_t total = p->total - p->counts[0];
    jsonw_key(w, "profiles");
    jsonw_arr_begin(w);
    jsonw_obj_begin(w);
    jsonw_key(w, "type");
    jsonw_str(w, "sampled");
    jsonw_key(w, "name");
    jsonw_strn(w, title->data ? title->data : "", title->len);
    jsonw_key(w, "unit");
    jsonw_str(w, "none");
    jsonw_key(w, "startValue");
    jsonw_u64(w, 0);
    jsonw_key(w, "endValue");
    jsonw_u64(w, total);
    write_samples(w, p);
    jsonw_obj_end(w);
    jsonw_arr_end(w);
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
    write_profile(&w, p, &title);
    jsonw_obj_end(&w);
    jsonw_raw(&w, "\n", 1);
    buf_fini(&title);
    return jsonw_error(&w);
}
