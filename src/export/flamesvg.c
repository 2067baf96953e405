// SPDX-License-Identifier: MIT
// SVG flame graph: root at the bottom, one group per frame wide enough to see, XML-escaped text.
#include "export/flamesvg.h"

#include <math.h>
#include <stdlib.h>

#include "export/flametree.h"
#include "util/jsonw.h"
#include "util/xalloc.h"

#define ROW 16     /* pixels per stack level */
#define PAD_X 10   /* left and right margins */
#define PAD_TOP 40 /* room for the title and the reset control */
#define PAD_BOTTOM 10
#define FONT_PX 12
#define CHAR_W 7.1 /* average glyph width at 12px (flamegraph.pl uses 0.59 em) */

/* Click-to-zoom: a frame's original geometry is in data-x/data-w/data-d; zooming rescales
 * the frames inside the clicked one, fades its ancestors and hides the rest, and re-cuts
 * labels from the <title> text. Names never pass through markup here. flamesvg_write opens
 * the element and defines W, PAD and CW before this text. */
static const char zoom_script[] =
    "  var gs = document.querySelectorAll('g.f'), un = document.getElementById('unzoom');\n"
    "  function name(g) {\n"
    "    var t = g.querySelector('title').textContent;\n"
    "    return t.replace(/ \\(\\d+ samples?, [\\d.]+%\\)$/, '');\n"
    "  }\n"
    "  function place(g, x, w, show, fade) {\n"
    "    var r = g.querySelector('rect'), t = g.querySelector('text');\n"
    "    g.style.display = show ? '' : 'none';\n"
    "    if (!show) return;\n"
    "    g.style.opacity = fade ? 0.5 : 1;\n"
    "    r.setAttribute('x', x.toFixed(2));\n"
    "    r.setAttribute('width', w.toFixed(2));\n"
    "    t.setAttribute('x', (x + 3).toFixed(2));\n"
    "    var s = name(g), max = Math.floor((w - 6) / CW);\n"
    "    t.textContent = s.length <= max ? s : (max < 3 ? '' : s.slice(0, max - 2) + '..');\n"
    "  }\n"
    "  function zoom(z) {\n"
    "    var zx = z ? +z.dataset.x : PAD, zw = z ? +z.dataset.w : W - 2 * PAD;\n"
    "    var zd = z ? +z.dataset.d : 0, k = (W - 2 * PAD) / zw;\n"
    "    un.style.display = z ? '' : 'none';\n"
    "    for (var i = 0; i < gs.length; i++) {\n"
    "      var g = gs[i], x = +g.dataset.x, w = +g.dataset.w, d = +g.dataset.d;\n"
    "      var inside = x >= zx - 1e-6 && x + w <= zx + zw + 1e-6;\n"
    "      if (d < zd && x <= zx + 1e-6 && x + w >= zx + zw - 1e-6)\n"
    "        place(g, PAD, W - 2 * PAD, true, true);\n"
    "      else\n"
    "        place(g, PAD + (x - zx) * k, w * k, d >= zd && inside, false);\n"
    "    }\n"
    "  }\n"
    "  document.addEventListener('click', function (e) {\n"
    "    var g = e.target.closest ? e.target.closest('g.f') : null;\n"
    "    if (g) zoom(+g.dataset.d === 0 ? null : g);\n"
    "    else if (e.target === un) zoom(null);\n"
    "  });\n"
    "})();\n"
    "]]></script>\n";

/* flamegraph.pl-like palette, matching the HTML viewer for ASCII names: the hue within the
 * kind's band comes from an FNV-1a hash of the name. */
static void frame_rgb(const char *name, uint32_t kind, int rgb[3])
{
    uint32_t h = 2166136261u;
    for (const unsigned char *s = (const unsigned char *)name; *s; s++)
        h = (h ^ *s) * 16777619u;
    double a = (h & 255) / 255.0;
    double b = ((h >> 8) & 255) / 255.0;
    double hue = 0, sat = 0, lig = 66 + 10 * a;
    if (kind == FRAME_PYTHON) {
        hue = 6 + 46 * a;
        sat = 78 + 17 * b;
        lig = 57 + 7 * b;
    } else if (kind == FRAME_NATIVE) {
        hue = 182 + 38 * a;
        sat = 48 + 22 * b;
        lig = 62 + 8 * b;
    } else if (kind == FRAME_THREAD || kind == FRAME_PROCESS) {
        hue = 262 + 24 * a;
        sat = 32 + 14 * b;
        lig = 74;
    }
    double l = lig / 100;
    double c = (1 - fabs(2 * l - 1)) * sat / 100;
    for (int i = 0; i < 3; i++) {
        double k = fmod((i == 0 ? 0 : i == 1 ? 8 : 4) + hue / 30, 12);
        double v = l - c / 2 * fmax(-1, fmin(fmin(k - 3, 9 - k), 1));
        rgb[i] = (int)lround(v * 255);
    }
}

/* Appends at most `max` characters of `s` (counting an invalid byte as one), escaped, with
 * ".." replacing the cut end. */
static int put_cut(struct buf *out, const char *s, size_t n, size_t max)
{
    size_t chars = 0;
    size_t cut = 0;
    size_t i = 0;
    while (i < n) {
        size_t len = jsonw_utf8_len((const unsigned char *)s + i, n - i, NULL);
        i += len ? len : 1;
        chars++;
        if (chars == (max >= 2 ? max - 2 : 0))
            cut = i;
    }
    if (chars <= max)
        return export_xml_escape(out, s, n);
    if (max < 3)
        return 0;
    int rc = export_xml_escape(out, s, cut);
    if (!rc)
        rc = buf_puts(out, "..");
    return rc;
}

struct svgctx {
    const struct profile *p;
    const struct flametree *t;
    struct buf *out;
    struct buf label;
    double scale;  /* pixels per sample */
    uint32_t rows; /* levels drawn, root included */
};

static int put_frame(struct svgctx *c, uint32_t i, double x, double w)
{
    const struct flametree *t = c->t;
    const char *name = "all";
    uint32_t kind = FRAME_MARKER;
    buf_reset(&c->label);
    int rc = 0;
    if (i == 0) {
        rc = buf_puts(&c->label, "all");
    } else {
        const struct pframe *f = profile_frame_at(c->p, t->frames[t->rank[i]]);
        name = profile_string(c->p, f->name);
        kind = f->kind;
        rc = export_frame_label(c->p, t->frames[t->rank[i]], &c->label);
    }
    int rgb[3];
    frame_rgb(name, kind, rgb);
    double y = PAD_TOP + (double)(c->rows - 1 - t->depth[i]) * ROW;
    double share = t->total[0] ? 100.0 * (double)t->total[i] / (double)t->total[0] : 0;
    if (!rc)
        rc = buf_printf(c->out,
                        "<g class=\"f\" data-x=\"%.2f\" data-w=\"%.2f\" data-d=\"%u\"><title>", x,
                        w, t->depth[i]);
    if (!rc)
        rc = export_xml_escape(c->out, buf_cstr(&c->label), c->label.len);
    if (!rc)
        rc = buf_printf(
            c->out,
            " (%llu sample%s, %.2f%%)</title><rect x=\"%.2f\" y=\"%.0f\" width=\"%.2f\""
            " height=\"%d\" fill=\"rgb(%d,%d,%d)\" rx=\"2\"/><text x=\"%.2f\" y=\"%.1f\">",
            (unsigned long long)t->total[i], t->total[i] == 1 ? "" : "s", share, x, y, w, ROW - 1,
            rgb[0], rgb[1], rgb[2], x + 3, y + ROW / 2.0 + FONT_PX / 2.0 - 2);
    if (!rc)
        rc = put_cut(c->out, buf_cstr(&c->label), c->label.len,
                     w > 6 ? (size_t)((w - 6) / CHAR_W) : 0);
    if (!rc)
        rc = buf_puts(c->out, "</text></g>\n");
    return rc;
}

/* Walks the tree in preorder, placing each node after its previous sibling; subtrees under
 * FLAMESVG_MIN_WIDTH pixels are skipped whole. With `emit` false it only counts the levels
 * drawn (the image height must be known before the first frame is written). */
static int walk(struct svgctx *c, bool emit)
{
    const struct flametree *t = c->t;
    double *pos = xcalloc((size_t)t->max_depth + 2, sizeof(*pos)); /* next child x per level */
    int rc = 0;
    uint32_t i = 0;
    while (i < t->n && !rc) {
        uint32_t d = t->depth[i];
        double x = d ? pos[d - 1] : 0;
        double w = (double)t->total[i] * c->scale;
        if (d)
            pos[d - 1] += w;
        if (w < FLAMESVG_MIN_WIDTH) {
            i = t->end[i];
            continue;
        }
        pos[d] = x;
        if (!emit && d + 1 > c->rows)
            c->rows = d + 1;
        if (emit)
            rc = put_frame(c, i, PAD_X + x, w);
        i++;
    }
    free(pos);
    return rc;
}

static int put_header(struct svgctx *c, const struct profile *p, const struct export_opts *o)
{
    int height = PAD_TOP + (int)c->rows * ROW + PAD_BOTTOM;
    struct buf title;
    buf_init(&title, 0);
    int rc = export_title(p, o, &title);
    if (!rc)
        rc =
            buf_printf(c->out,
                       "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
                       "<svg version=\"1.1\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\""
                       " xmlns=\"http://www.w3.org/2000/svg\">\n"
                       "<style>text{font-family:Verdana,sans-serif;font-size:%dpx;fill:#000}"
                       ".f{cursor:pointer}.f:hover rect{stroke:#000;stroke-width:.5}"
                       "#title{font-size:17px}#unzoom{cursor:pointer}</style>\n"
                       "<rect width=\"100%%\" height=\"100%%\" fill=\"#f8f8f8\"/>\n"
                       "<text id=\"title\" x=\"%d\" y=\"24\" text-anchor=\"middle\">",
                       FLAMESVG_WIDTH, height, FLAMESVG_WIDTH, height, FONT_PX, FLAMESVG_WIDTH / 2);
    if (!rc)
        rc = export_xml_escape(c->out, buf_cstr(&title), title.len);
    if (!rc)
        rc = buf_printf(c->out,
                        "</text>\n<text id=\"unzoom\" x=\"%d\" y=\"24\" style=\"display:none\">"
                        "Reset Zoom</text>\n<g id=\"frames\">\n",
                        PAD_X);
    buf_fini(&title);
    return rc;
}

int flamesvg_write(const struct profile *p, const struct export_opts *o, struct buf *out)
{
    struct flametree t;
    flametree_init(&t, p);
    struct svgctx c = {.p = p, .t = &t, .out = out, .rows = 1};
    buf_init(&c.label, 0);
    c.scale = t.total[0] ? (FLAMESVG_WIDTH - 2.0 * PAD_X) / (double)t.total[0] : 0;
    int rc = 0;
    if (t.total[0])
        rc = walk(&c, false);
    if (!rc)
        rc = put_header(&c, p, o);
    if (!rc && t.total[0])
        rc = walk(&c, true);
    if (!rc)
        rc = buf_puts(out, "</g>\n");
    if (!rc)
        rc = buf_printf(out,
                        "<script type=\"text/ecmascript\"><![CDATA[\n(function () {\n"
                        "  var W = %d, PAD = %d, CW = %g;\n",
                        FLAMESVG_WIDTH, PAD_X, CHAR_W);
    if (!rc)
        rc = buf_puts(out, zoom_script);
    if (!rc)
        rc = buf_puts(out, "</svg>\n");
    buf_fini(&c.label);
    flametree_fini(&t);
    return rc;
}
