// SPDX-License-Identifier: MIT
// Differential flame graph: the HTML page around an HTML-safe JSON copy of the merged tree, and
// difffolded.pl's 3-column folded text.
#include "export/diffflame.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/diffflame_assets.h"
#include "export/export.h"
#include "util/jsonw.h"
#include "util/xalloc.h"

/* Checks that `t` has a root and its nodes are in preorder: each node's parent is the previous
 * node or one of its ancestors, so every subtree is a contiguous run of ids (the viewer and
 * the folded writer rely on it). */
static int check_tree(const struct diff_tree *t, struct errbuf *eb)
{
    if (!t || !t->v || t->n == 0)
        return errbuf_set(eb, ERR_ARG, "differential flame graph: the tree has no root");
    uint32_t *path = xmalloc(t->n * sizeof(*path));
    uint32_t top = 0;
    int rc = 0;
    path[top++] = 0;
    for (uint32_t i = 1; i < t->n && !rc; i++) {
        uint32_t p = t->v[i].parent;
        while (top > 0 && path[top - 1] != p)
            top--;
        if (top == 0)
            rc = errbuf_set(eb, ERR_ARG,
                            "differential flame graph: node %u's parent %u is not on the path "
                            "to it (nodes must be in preorder)",
                            i, p);
        path[top++] = i;
    }
    free(path);
    return rc;
}

static int too_large(int rc, const struct buf *out, struct errbuf *eb, const char *what)
{
    if (rc == ERR_TOO_LARGE)
        return errbuf_set(eb, rc, "%s: output reached its cap of %zu bytes", what, out->limit);
    return rc;
}

/* ---- JSON ---------------------------------------------------------------------------------- */

/* Six significant digits are plenty for a tooltip and keep a large tree's page small;
 * non-finite values (rel of a frame new on the base side) are written null. */
static void num(struct jsonw *w, double v)
{
    char s[40];
    if (!isfinite(v)) {
        jsonw_null(w);
        return;
    }
    int n = snprintf(s, sizeof(s), "%.6g", v);
    jsonw_raw(w, s, (size_t)n);
}

/* One estimate: [base, new, diff, lo, hi, rel, rel_lo, rel_hi, q, nb, nn, method, flagged]. */
static void write_est(struct jsonw *w, const struct cmp_est *e)
{
    jsonw_arr_begin(w);
    num(w, e->base);
    num(w, e->new_);
    num(w, e->diff);
    num(w, e->lo);
    num(w, e->hi);
    num(w, e->rel);
    num(w, e->rel_lo);
    num(w, e->rel_hi);
    num(w, e->q);
    jsonw_u64(w, e->nb);
    jsonw_u64(w, e->nn);
    jsonw_u64(w, e->method);
    jsonw_u64(w, e->flagged ? 1 : 0);
    jsonw_arr_end(w);
}

/* Node i's name id, the empty string's for an id the table does not hold. */
static uint32_t name_of(const struct diff_tree *t, uint32_t i)
{
    return t->v[i].name < t->strs.len ? t->v[i].name : 0;
}

/* Names used by the nodes, numbered in order of first use; returns the map string id -> local
 * index (UINT32_MAX unused), which the caller frees, and the local order in `*ids`. */
static uint32_t *name_map(const struct diff_tree *t, uint32_t **ids, uint32_t *n)
{
    size_t nstr = (size_t)t->strs.len + 1;
    uint32_t *local = xmalloc(nstr * sizeof(*local));
    memset(local, 0xff, nstr * sizeof(*local));
    *ids = xmalloc((size_t)t->n * sizeof(**ids));
    *n = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        uint32_t s = name_of(t, i);
        if (local[s] == UINT32_MAX) {
            local[s] = *n;
            (*ids)[(*n)++] = s;
        }
    }
    return local;
}

/* "nodes": per node [parent (-1 for the root), name, kind, flags (1 in_base, 2 in_new),
 * total_rel, self_rel, total_abs, self_abs], each estimate an array as write_est writes it. */
static void write_nodes(struct jsonw *w, const struct diff_tree *t)
{
    uint32_t *ids, nids;
    uint32_t *local = name_map(t, &ids, &nids);
    jsonw_key(w, "strings");
    jsonw_arr_begin(w);
    for (uint32_t k = 0; k < nids && !jsonw_error(w); k++)
        jsonw_strn(w, strtab_get(&t->strs, ids[k]), strtab_len(&t->strs, ids[k]));
    jsonw_arr_end(w);
    jsonw_key(w, "nodes");
    jsonw_arr_begin(w);
    for (uint32_t i = 0; i < t->n && !jsonw_error(w); i++) {
        const struct diff_node *d = &t->v[i];
        jsonw_arr_begin(w);
        jsonw_i64(w, i == 0 ? -1 : (int64_t)d->parent);
        jsonw_u64(w, local[name_of(t, i)]);
        jsonw_u64(w, d->kind);
        jsonw_u64(w, (d->in_base ? 1u : 0u) | (d->in_new ? 2u : 0u));
        write_est(w, &d->total_rel);
        write_est(w, &d->self_rel);
        write_est(w, &d->total_abs);
        write_est(w, &d->self_abs);
        jsonw_arr_end(w);
    }
    jsonw_arr_end(w);
    free(local);
    free(ids);
}

static int write_data(struct buf *out, const struct diff_tree *t, const char *title,
                      const char *headline)
{
    struct jsonw w;
    jsonw_init(&w, out, JSONW_HTML_SAFE);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "version");
    jsonw_u64(&w, 1);
    jsonw_key(&w, "title");
    jsonw_str(&w, title);
    jsonw_key(&w, "headline");
    jsonw_str(&w, headline);
    jsonw_key(&w, "unit");
    jsonw_str(&w, t->unit ? t->unit : "run");
    jsonw_key(&w, "nbase");
    jsonw_u64(&w, t->nbase);
    jsonw_key(&w, "nnew");
    jsonw_u64(&w, t->nnew);
    write_nodes(&w, t);
    jsonw_obj_end(&w);
    return jsonw_error(&w);
}

/* ---- HTML ---------------------------------------------------------------------------------- */

static int put_escaped(struct buf *out, const char *s)
{
    return export_xml_escape(out, s, strlen(s));
}

/* Appends the pieces in order, stopping at the first error; title and headline are escaped. */
static int write_page(struct buf *out, const struct diff_tree *t, const char *title,
                      const char *headline)
{
    int rc = buf_puts(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                           "<meta name=\"viewport\" content=\"width=device-width\">\n"
                           "<meta name=\"generator\" content=\"crux\">\n<title>");
    if (!rc)
        rc = put_escaped(out, title);
    if (!rc)
        rc = buf_puts(out, "</title>\n<style>\n");
    if (!rc)
        rc = buf_puts(out, diffflame_assets_css);
    if (!rc)
        rc = buf_puts(out, "</style>\n</head>\n<body>\n");
    if (!rc)
        rc = buf_puts(out, diffflame_assets_head);
    if (!rc)
        rc = put_escaped(out, title);
    if (!rc)
        rc = buf_puts(out, "</h1>\n");
    if (!rc && headline)
        rc = buf_puts(out, "<p id=\"headline\">");
    if (!rc && headline)
        rc = put_escaped(out, headline);
    if (!rc && headline)
        rc = buf_puts(out, "</p>\n");
    if (!rc)
        rc = buf_puts(out, diffflame_assets_body);
    if (!rc)
        rc = buf_puts(out, "<script type=\"application/json\" id=\"crux-data\">");
    if (!rc)
        rc = write_data(out, t, title, headline);
    if (!rc)
        rc = buf_puts(out, "</script>\n<script>\n");
    if (!rc)
        rc = buf_puts(out, diffflame_assets_js);
    if (!rc)
        rc = buf_puts(out, "</script>\n</body>\n</html>\n");
    return rc;
}

int diffflame_write_html(const struct diff_tree *t, const char *title, const char *headline,
                         struct buf *out, struct errbuf *eb)
{
    int rc = check_tree(t, eb);
    if (rc)
        return rc;
    rc = write_page(out, t, title ? title : "crux diff", headline);
    return too_large(rc, out, eb, "differential flame graph");
}

/* ---- folded -------------------------------------------------------------------------------- */

/* One output line before it is written: the text (not NUL-terminated) and the two counts.
 * `off` places the text in its buffer until that stops growing, then `text` points at it. */
struct fline {
    const char *text;
    size_t off, len;
    uint64_t base, new_;
};

static uint64_t folded_count(double share)
{
    if (!isfinite(share) || share <= 0)
        return 0;
    return (uint64_t)llround(share * DIFFFLAME_FOLDED_SCALE);
}

/* Appends node i's name as collapsed stacks write a frame: ';' separates frames and '\n' ends
 * a line, so ';' becomes ':' and every control character a space (which also keeps whole-line
 * order equal to stack order). */
static int put_frame(struct buf *text, const struct diff_tree *t, uint32_t i)
{
    const char *s = strtab_get(&t->strs, t->v[i].name);
    size_t n = strtab_len(&t->strs, t->v[i].name);
    int rc = 0;
    for (size_t k = 0; k < n && !rc; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c == ';')
            c = ':';
        else if (c < 0x20 || c == 0x7f)
            c = ' ';
        rc = buf_putc(text, (char)c);
    }
    return rc;
}

/* Appends the stack of node i below the root, root side first. `path` has room for t->n. */
static int put_stack(struct buf *text, const struct diff_tree *t, uint32_t i, uint32_t *path)
{
    uint32_t np = 0;
    for (uint32_t k = i; k != 0; k = t->v[k].parent)
        path[np++] = k;
    int rc = 0;
    while (np > 0 && !rc) {
        rc = put_frame(text, t, path[--np]);
        if (!rc && np > 0)
            rc = buf_putc(text, ';');
    }
    return rc;
}

static int cmp_text(const void *a, const void *b)
{
    const struct fline *x = a;
    const struct fline *y = b;
    int c = memcmp(x->text, y->text, x->len < y->len ? x->len : y->len);
    if (c)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

/* Points each line at its bytes in `b`, which no longer grows. */
static void set_text(struct buf *b, struct fline *lines, size_t n)
{
    const char *base = buf_cstr(b);
    for (size_t k = 0; k < n; k++)
        lines[k].text = base + lines[k].off;
}

/* Collects the stacks of the nodes with a count on either side into `text` and `*lines` (the
 * caller frees it). */
static int collect(const struct diff_tree *t, struct buf *text, struct fline **lines, size_t *n)
{
    uint32_t *path = xmalloc(t->n * sizeof(*path));
    *lines = xmalloc(t->n * sizeof(**lines));
    *n = 0;
    int rc = 0;
    for (uint32_t i = 1; i < t->n && !rc; i++) {
        uint64_t b = folded_count(t->v[i].self_rel.base);
        uint64_t w = folded_count(t->v[i].self_rel.new_);
        if (b == 0 && w == 0)
            continue;
        size_t off = text->len;
        rc = put_stack(text, t, i, path);
        (*lines)[(*n)++] = (struct fline){.off = off, .len = text->len - off, .base = b, .new_ = w};
    }
    free(path);
    set_text(text, *lines, *n);
    return rc;
}

/* Sums the counts of lines with equal text (adjacent after sorting); returns the new count. */
static size_t merge_equal(struct fline *lines, size_t n)
{
    size_t m = 0;
    for (size_t k = 0; k < n; k++) {
        if (m > 0 && cmp_text(&lines[m - 1], &lines[k]) == 0) {
            lines[m - 1].base += lines[k].base;
            lines[m - 1].new_ += lines[k].new_;
        } else {
            lines[m++] = lines[k];
        }
    }
    return m;
}

/* Writes each line whole, counts included, into a buffer, orders those bytewise as
 * `LC_ALL=C sort` would (a stack that is a prefix of another's text sorts by what follows),
 * and appends them to `out`. */
static int emit(struct buf *out, struct fline *lines, size_t n)
{
    struct buf all;
    buf_init(&all, out->limit);
    int rc = 0;
    for (size_t k = 0; k < n && !rc; k++) {
        size_t off = all.len;
        rc = buf_append(&all, lines[k].text, lines[k].len);
        if (!rc)
            rc = buf_printf(&all, " %llu %llu\n", (unsigned long long)lines[k].base,
                            (unsigned long long)lines[k].new_);
        lines[k].off = off;
        lines[k].len = all.len - off;
    }
    if (!rc && n > 0) {
        set_text(&all, lines, n);
        qsort(lines, n, sizeof(*lines), cmp_text);
    }
    for (size_t k = 0; k < n && !rc; k++)
        rc = buf_append(out, lines[k].text, lines[k].len);
    buf_fini(&all);
    return rc;
}

int diffflame_write_folded(const struct diff_tree *t, struct buf *out, struct errbuf *eb)
{
    int rc = check_tree(t, eb);
    if (rc)
        return rc;
    struct buf text;
    buf_init(&text, out->limit);
    struct fline *lines;
    size_t n;
    rc = collect(t, &text, &lines, &n);
    if (!rc && n > 0) {
        qsort(lines, n, sizeof(*lines), cmp_text);
        rc = emit(out, lines, merge_equal(lines, n));
    }
    free(lines);
    buf_fini(&text);
    return too_large(rc, out, eb, "differential folded stacks");
}
