// SPDX-License-Identifier: MIT
// HTML flame graph: the page around an HTML-safe JSON copy of the flame tree.
#include "export/flamegraph.h"

#include <stdlib.h>
#include <string.h>

#include "export/flamegraph_assets.h"
#include "export/flametree.h"
#include "util/jsonw.h"
#include "util/xalloc.h"

/* Strings used by the kept frames, numbered in rank order of first use (so the output does
 * not depend on the order strings were interned in). */
struct strmap {
    uint32_t *local; /* profile string id -> local index, UINT32_MAX if unused */
    uint32_t *ids;   /* local index -> profile string id */
    uint32_t n;
};

static uint32_t strmap_use(struct strmap *m, uint32_t id)
{
    if (m->local[id] == UINT32_MAX) {
        m->local[id] = m->n;
        m->ids[m->n++] = id;
    }
    return m->local[id];
}

static void strmap_build(struct strmap *m, const struct profile *p, const struct flametree *t)
{
    size_t nstr = p->strs.len;
    m->local = xmalloc((nstr + 1) * sizeof(*m->local));
    memset(m->local, 0xff, (nstr + 1) * sizeof(*m->local));
    m->ids = xmalloc((nstr + 1) * sizeof(*m->ids));
    m->n = 0;
    for (uint32_t r = 0; r < t->nframes; r++) {
        const struct pframe *f = profile_frame_at(p, t->frames[r]);
        (void)strmap_use(m, f->name);
        (void)strmap_use(m, f->file);
    }
}

static void write_meta(struct jsonw *w, const struct profile *p)
{
    const struct pmeta *m = &p->meta;
    jsonw_key(w, "meta");
    jsonw_obj_begin(w);
    jsonw_key(w, "command");
    jsonw_str(w, m->command);
    jsonw_key(w, "python");
    jsonw_str(w, m->python_version);
    jsonw_key(w, "pid");
    jsonw_u64(w, m->pid);
    jsonw_key(w, "rate_hz");
    jsonw_double(w, m->rate_hz);
    jsonw_key(w, "duration_ns");
    jsonw_u64(w, m->duration_ns);
    jsonw_key(w, "ticks");
    jsonw_u64(w, m->ticks);
    jsonw_key(w, "errors");
    jsonw_u64(w, m->errors);
    jsonw_obj_end(w);
}

/* "frames" is flat: 4 numbers per rank (name, file as string indexes, line, kind); "nodes"
 * is flat too: 3 numbers per node in preorder without the root (frame rank, depth, subtree
 * total). Flat integer arrays keep a million-sample profile small and JSON.parse fast. */
static void write_tables(struct jsonw *w, const struct profile *p, const struct flametree *t)
{
    struct strmap m;
    strmap_build(&m, p, t);
    jsonw_key(w, "strings");
    jsonw_arr_begin(w);
    for (uint32_t i = 0; i < m.n && !jsonw_error(w); i++)
        jsonw_strn(w, profile_string(p, m.ids[i]), strtab_len(&p->strs, m.ids[i]));
    jsonw_arr_end(w);
    jsonw_key(w, "frames");
    jsonw_arr_begin(w);
    for (uint32_t r = 0; r < t->nframes && !jsonw_error(w); r++) {
        const struct pframe *f = profile_frame_at(p, t->frames[r]);
        jsonw_u64(w, m.local[f->name]);
        jsonw_u64(w, m.local[f->file]);
        jsonw_i64(w, f->line);
        jsonw_u64(w, f->kind);
    }
    jsonw_arr_end(w);
    jsonw_key(w, "nodes");
    jsonw_arr_begin(w);
    for (uint32_t i = 1; i < t->n && !jsonw_error(w); i++) {
        jsonw_u64(w, t->rank[i]);
        jsonw_u64(w, t->depth[i]);
        jsonw_u64(w, t->total[i]);
    }
    jsonw_arr_end(w);
    free(m.local);
    free(m.ids);
}

void flamegraph_write_members(struct jsonw *w, const struct profile *p, const struct flametree *t,
                              const struct buf *title)
{
    jsonw_key(w, "version");
    jsonw_u64(w, 1);
    jsonw_key(w, "title");
    jsonw_strn(w, title->data ? title->data : "", title->len);
    jsonw_key(w, "total");
    jsonw_u64(w, t->total[0]);
    write_meta(w, p);
    write_tables(w, p, t);
}

static int write_data(struct buf *out, const struct profile *p, const struct flametree *t,
                      const struct buf *title)
{
    struct jsonw w;
    jsonw_init(&w, out, JSONW_HTML_SAFE);
    jsonw_obj_begin(&w);
    flamegraph_write_members(&w, p, t, title);
    jsonw_obj_end(&w);
    return jsonw_error(&w);
}

/* Appends the pieces in order, stopping at the first error. The title pieces are escaped. */
static int write_page(struct buf *out, const struct profile *p, const struct flametree *t,
                      const struct buf *title)
{
    const char *tt = title->data ? title->data : "";
    int rc = buf_puts(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                           "<meta name=\"viewport\" content=\"width=device-width\">\n"
                           "<meta name=\"generator\" content=\"crux\">\n<title>");
    if (!rc)
        rc = export_xml_escape(out, tt, title->len);
    if (!rc)
        rc = buf_puts(out, "</title>\n<style>\n");
    if (!rc)
        rc = buf_puts(out, flamegraph_assets_css);
    if (!rc)
        rc = buf_puts(out, "</style>\n</head>\n<body>\n");
    if (!rc)
        rc = buf_puts(out, flamegraph_assets_head);
    if (!rc)
        rc = export_xml_escape(out, tt, title->len);
    if (!rc)
        rc = buf_puts(out, flamegraph_assets_body);
    if (!rc)
        rc = buf_puts(out, "<script type=\"application/json\" id=\"crux-data\">");
    if (!rc)
        rc = write_data(out, p, t, title);
    if (!rc)
        rc = buf_puts(out, "</script>\n<script>\n");
    if (!rc)
        rc = buf_puts(out, flamegraph_assets_js);
    if (!rc)
        rc = buf_puts(out, "</script>\n</body>\n</html>\n");
    return rc;
}

int flamegraph_write(const struct profile *p, const struct export_opts *o, struct buf *out)
{
    struct buf title;
    buf_init(&title, 0);
    int rc = export_title(p, o, &title);
    if (rc) {
        buf_fini(&title);
        return rc;
    }
    struct flametree t;
    flametree_init(&t, p);
    rc = write_page(out, p, &t, &title);
    flametree_fini(&t);
    buf_fini(&title);
    return rc;
}
