// SPDX-License-Identifier: MIT
// Unit tests of export/diffflame: the folded text exactly, the HTML page's escaping and data,
// tree checks and caps. `test_diffflame --write-demo PATH` writes the demo page that
// tests/integration/test_diff_browser.py opens in a browser.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/compare.h"
#include "check.h"
#include "export/diffflame.h"
#include "profile/strtab.h"
#include "util/buf.h"
#include "util/xalloc.h"

#define HOSTILE "<img src=x onerror=alert(1)> (evil.py)"
#define HOSTILE2 "</script><script>alert(2)</script> (x.py)"

enum { IN_BASE = 1, IN_NEW = 2, IN_BOTH = 3 };

static void tree_init(struct diff_tree *t, uint32_t cap)
{
    memset(t, 0, sizeof(*t));
    strtab_init(&t->strs);
    t->v = xcalloc(cap, sizeof(*t->v));
    t->cap = cap;
    t->unit = "run";
    t->nbase = 5;
    t->nnew = 5;
}

static void tree_fini(struct diff_tree *t)
{
    strtab_fini(&t->strs);
    free(t->v);
}

/* An estimate over 5 runs a side: the change new - base with the interval diff +- half. */
static struct cmp_est est(double base, double new_, double half, double q, bool flagged)
{
    double diff = new_ - base;
    struct cmp_est e = {
        .base = base,
        .new_ = new_,
        .diff = diff,
        .lo = diff - half,
        .hi = diff + half,
        .rel = base > 0 ? diff / base : NAN,
        .rel_lo = base > 0 ? (diff - half) / base : NAN,
        .rel_hi = base > 0 ? (diff + half) / base : NAN,
        .p = q / 2,
        .q = q,
        .cv_base = 0.05,
        .cv_new = 0.05,
        .nb = 5,
        .nn = 5,
        .method = CMP_RUNS,
        .flagged = flagged,
    };
    return e;
}

/* Appends a node; its four estimates are set by the caller. Returns its id. */
static uint32_t node(struct diff_tree *t, uint32_t parent, const char *name, unsigned sides)
{
    uint32_t i = t->n++;
    struct diff_node *d = &t->v[i];
    d->parent = parent;
    d->name = strtab_intern(&t->strs, name, strlen(name));
    d->depth = i == 0 ? 0 : t->v[parent].depth + 1;
    d->kind = 0;
    d->in_base = (sides & IN_BASE) != 0;
    d->in_new = (sides & IN_NEW) != 0;
    return i;
}

/* A node whose self equals its total (a leaf), the same in shares and in seconds per run
 * (base runs take 2.0 s, new runs 2.4 s). */
static uint32_t leaf(struct diff_tree *t, uint32_t parent, const char *name, unsigned sides,
                     struct cmp_est rel)
{
    uint32_t i = node(t, parent, name, sides);
    struct diff_node *d = &t->v[i];
    d->total_rel = rel;
    d->self_rel = rel;
    d->total_abs =
        est(rel.base * 2.0, rel.new_ * 2.4, (rel.hi - rel.diff) * 2.4, rel.q, rel.flagged);
    d->self_abs = d->total_abs;
    return i;
}

/* The demo: one flagged slower frame (parse), one flagged faster (tokenize), one unflagged
 * with a large raw change (render, +200%), a new frame (cache_lookup, unflagged: from 0 to a
 * few samples), a vanished one (legacy_io, flagged faster) and two hostile names. */
static void build_demo(struct diff_tree *t)
{
    tree_init(t, 16);
    uint32_t root = node(t, 0, "", IN_BOTH);
    t->v[root].total_rel = est(1, 1, 0, 1, false);
    t->v[root].self_rel = est(0, 0, 0, 1, false);
    t->v[root].total_abs = est(2.0, 2.4, 0.15, 0.001, true);
    t->v[root].self_abs = est(0, 0, 0, 1, false);
    uint32_t m = node(t, root, "main (app.py)", IN_BOTH);
    t->v[m].total_rel = t->v[root].total_rel;
    t->v[m].self_rel = est(0.23, 0.298, 0.09, 0.4, false);
    t->v[m].total_abs = t->v[root].total_abs;
    t->v[m].self_abs = est(0.46, 0.715, 0.3, 0.3, false);
    (void)leaf(t, m, HOSTILE, IN_BOTH, est(0.08, 0.09, 0.03, 0.6, false));
    (void)leaf(t, m, "cache_lookup (cache.py)", IN_NEW, est(0, 0.002, 0.004, 0.5, false));
    (void)leaf(t, m, "legacy_io (old.py)", IN_BASE, est(0.12, 0, 0.01, 0.002, true));
    uint32_t parse = node(t, m, "parse (app.py)", IN_BOTH);
    t->v[parse].total_rel = est(0.20, 0.35, 0.05, 0.004, true);
    t->v[parse].self_rel = est(0.10, 0.20, 0.04, 0.006, true);
    t->v[parse].total_abs = est(0.40, 0.84, 0.12, 0.003, true);
    t->v[parse].self_abs = est(0.20, 0.48, 0.1, 0.004, true);
    (void)leaf(t, parse, "json.loads (json/__init__.py)", IN_BOTH,
               est(0.10, 0.15, 0.07, 0.2, false));
    uint32_t render = leaf(t, m, "render (view.py)", IN_BOTH, est(0.02, 0.06, 0.05, 0.3, false));
    t->v[render].self_rel = est(0.01, 0.03, 0.04, 0.5, false);
    (void)leaf(t, render, HOSTILE2, IN_BOTH, est(0.01, 0.03, 0.03, 0.5, false));
    uint32_t tok = leaf(t, m, "tokenize (lex.py)", IN_BOTH, est(0.35, 0.20, 0.05, 0.001, true));
    /* Not proportional to the shares, so that the two scales give different widths. */
    t->v[tok].total_abs = est(0.70, 0.40, 0.1, 0.001, true);
    t->v[tok].self_abs = t->v[tok].total_abs;
}

static const char *demo_headline =
    "parse (app.py) is slower by 15 pp of samples [+10, +20]; <b>not bold</b> & more";

static int write_demo(const char *path)
{
    struct diff_tree t;
    build_demo(&t);
    struct buf out;
    buf_init(&out, 0);
    struct errbuf eb = {{0}};
    int rc = diffflame_write_html(&t, "crux diff: demo <i>title</i>", demo_headline, &out, &eb);
    if (!rc)
        rc = buf_write_file(&out, path, &eb);
    if (rc)
        fprintf(stderr, "write-demo: %s: %s\n", err_str(rc), eb.msg);
    buf_fini(&out);
    tree_fini(&t);
    return rc ? 1 : 0;
}

static size_t count_of(const char *h, const char *needle)
{
    size_t n = 0;
    for (const char *s = strstr(h, needle); s; s = strstr(s + 1, needle))
        n++;
    return n;
}

/* Folded: one line per node with a self on either side (mean share x 1e6, rounded), names
 * cleaned, equal stacks merged, whole lines in byte order. */
static int test_folded_exact(void)
{
    struct diff_tree t;
    tree_init(&t, 16);
    (void)node(&t, 0, "", IN_BOTH);
    uint32_t m = leaf(&t, 0, "main", IN_BOTH, est(1, 1, 0, 1, false));
    t.v[m].self_rel = est(0.1, 0.05, 0.01, 0.1, false);
    (void)leaf(&t, m, "a;b\nc", IN_BASE, est(0.01, 0, 0.001, 0.1, false));
    (void)leaf(&t, m, "gone", IN_BASE, est(4e-7, 0, 0.001, 0.1, false)); /* rounds to 0 0 */
    (void)leaf(&t, m, "new_fn", IN_NEW, est(0, 0.02, 0.001, 0.1, false));
    uint32_t parse = leaf(&t, m, "parse", IN_BOTH, est(0.25, 0.4, 0.01, 0.1, true));
    t.v[parse].self_rel = est(0.2, 0.35, 0.01, 0.1, true);
    (void)leaf(&t, parse, "json.loads", IN_BOTH, est(0.05, 0.05, 0.01, 1, false));
    (void)leaf(&t, m, "parse !", IN_BOTH, est(0.001, 0.002, 0.01, 1, false));
    (void)leaf(&t, m, "x:y", IN_BOTH, est(0.002, 0.003, 0.01, 1, false));
    (void)leaf(&t, m, "x;y", IN_BOTH, est(0.001, 0.001, 0.01, 1, false));
    uint32_t zero = leaf(&t, m, "zero", IN_BOTH, est(0.3, 0.3, 0.01, 1, false));
    t.v[zero].self_rel = est(0, 0, 0, 1, false);
    (void)leaf(&t, zero, "child", IN_BOTH, est(0.3, 0.3, 0.01, 1, false));
    t.v[0].self_rel = est(0.5, 0.5, 0, 1, false); /* the root's own self is never written */
    struct buf out;
    buf_init(&out, 0);
    struct errbuf eb = {{0}};
    CHECK(diffflame_write_folded(&t, &out, &eb) == 0, "folded: %s", eb.msg);
    const char *want = "main 100000 50000\n"
                       "main;a:b c 10000 0\n"
                       "main;new_fn 0 20000\n"
                       "main;parse ! 1000 2000\n"
                       "main;parse 200000 350000\n"
                       "main;parse;json.loads 50000 50000\n"
                       "main;x:y 3000 4000\n"
                       "main;zero;child 300000 300000\n";
    CHECK(strcmp(buf_cstr(&out), want) == 0, "got:\n%s", buf_cstr(&out));
    buf_fini(&out);
    tree_fini(&t);
    return 0;
}

/* A tree with only a root writes nothing; NaN or negative shares count as 0. */
static int test_folded_empty(void)
{
    struct diff_tree t;
    tree_init(&t, 4);
    (void)node(&t, 0, "", IN_BOTH);
    uint32_t a = leaf(&t, 0, "a", IN_BOTH, est(0, 0, 0, 1, false));
    t.v[a].self_rel.base = NAN;
    t.v[a].self_rel.new_ = -0.5;
    struct buf out;
    buf_init(&out, 0);
    CHECK(diffflame_write_folded(&t, &out, NULL) == 0, "folded");
    CHECK(out.len == 0, "nothing written: %s", buf_cstr(&out));
    buf_fini(&out);
    tree_fini(&t);
    return 0;
}

/* Hostile names, title and headline never reach the page as markup. */
static int test_html_escapes(void)
{
    struct diff_tree t;
    build_demo(&t);
    struct buf out;
    buf_init(&out, 0);
    struct errbuf eb = {{0}};
    CHECK(diffflame_write_html(&t, "demo <i>title</i>", demo_headline, &out, &eb) == 0, "html: %s",
          eb.msg);
    const char *h = buf_cstr(&out);
    CHECK(strncmp(h, "<!DOCTYPE html>", 15) == 0, "doctype");
    CHECK(!strstr(h, "<img"), "no raw <img");
    CHECK(!strstr(h, "<i>") && !strstr(h, "<b>"), "title and headline escaped");
    CHECK(count_of(h, "<script") == 2 && count_of(h, "</script") == 2, "two script elements");
    CHECK(!strstr(h, "<!--"), "no comment opener");
    CHECK(strstr(h, "\\u003cimg src=x onerror=alert(1)\\u003e (evil.py)"), "name kept, escaped");
    CHECK(strstr(h, "\\u003c/script\\u003e\\u003cscript\\u003ealert(2)"), "second name escaped");
    CHECK(strstr(h, "<title>demo &lt;i&gt;title&lt;/i&gt;</title>"), "title");
    CHECK(strstr(h, "<p id=\"headline\">parse (app.py) is slower by 15 pp of samples [+10, +20]; "
                    "&lt;b&gt;not bold&lt;/b&gt; &amp; more</p>"),
          "headline");
    CHECK(strstr(h, "no change beyond noise"), "legend");
    CHECK(strstr(h, "\"unit\":\"run\",\"nbase\":5,\"nnew\":5"), "unit and runs");
    buf_fini(&out);
    tree_fini(&t);
    return 0;
}

/* The data: per node [parent, name, kind, flags, 4 estimates of 13 numbers]; NaN is null. */
static int test_html_data(void)
{
    struct diff_tree t;
    tree_init(&t, 4);
    (void)node(&t, 0, "", IN_BOTH);
    t.v[0].total_rel = est(1, 1, 0, 1, false);
    uint32_t a = leaf(&t, 0, "f (a.py)", IN_NEW, est(0, 0.25, 0.125, 0.03125, true));
    t.v[a].self_abs.method = CMP_SAMPLING;
    t.v[a].self_abs.nb = 1;
    struct buf out;
    buf_init(&out, 0);
    CHECK(diffflame_write_html(&t, NULL, NULL, &out, NULL) == 0, "html");
    const char *h = buf_cstr(&out);
    CHECK(strstr(h, "<title>crux diff</title>"), "default title");
    CHECK(!strstr(h, "id=\"headline\""), "no headline element");
    CHECK(strstr(h, "\"headline\":null"), "headline null in the data");
    CHECK(strstr(h, "\"strings\":[\"\",\"f (a.py)\"],\"nodes\":[[-1,0,0,3,"
                    "[1,1,0,0,0,0,0,0,1,5,5,1,0],"),
          "root");
    CHECK(strstr(h, "[0,1,0,2,[0,0.25,0.25,0.125,0.375,null,null,null,0.03125,5,5,1,1],"),
          "new node: flags 2, rel null");
    CHECK(strstr(h, "[0,0.6,0.6,0.3,0.9,null,null,null,0.03125,1,5,2,1]]]}"), "sampling, nb 1");
    buf_fini(&out);
    tree_fini(&t);
    return 0;
}

/* Nodes out of preorder, or no root, are ERR_ARG with a reason. */
static int test_bad_trees(void)
{
    struct diff_tree t;
    tree_init(&t, 8);
    struct buf out;
    buf_init(&out, 0);
    struct errbuf eb = {{0}};
    CHECK(diffflame_write_html(&t, NULL, NULL, &out, &eb) == ERR_ARG, "no root");
    CHECK(strstr(eb.msg, "no root"), "%s", eb.msg);
    (void)node(&t, 0, "", IN_BOTH);
    uint32_t a = node(&t, 0, "a", IN_BOTH);
    (void)node(&t, a, "b", IN_BOTH);
    (void)node(&t, 0, "c", IN_BOTH);
    (void)node(&t, 2, "d", IN_BOTH); /* under b, which the walk has left */
    CHECK(diffflame_write_folded(&t, &out, &eb) == ERR_ARG, "not preorder");
    CHECK(strstr(eb.msg, "node 4") && strstr(eb.msg, "preorder"), "%s", eb.msg);
    t.v[4].parent = 7; /* a later node */
    CHECK(diffflame_write_html(&t, NULL, NULL, &out, &eb) == ERR_ARG, "parent after");
    t.v[4].parent = 3;
    CHECK(diffflame_write_html(&t, NULL, NULL, &out, &eb) == 0, "fixed");
    buf_fini(&out);
    tree_fini(&t);
    return 0;
}

static int test_caps(void)
{
    struct diff_tree t;
    build_demo(&t);
    struct buf out;
    buf_init(&out, 1000);
    struct errbuf eb = {{0}};
    CHECK(diffflame_write_html(&t, NULL, NULL, &out, &eb) == ERR_TOO_LARGE, "html cap");
    CHECK(strstr(eb.msg, "1000 bytes"), "%s", eb.msg);
    buf_fini(&out);
    buf_init(&out, 40);
    CHECK(diffflame_write_folded(&t, &out, &eb) == ERR_TOO_LARGE, "folded cap");
    buf_fini(&out);
    tree_fini(&t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-demo") == 0)
        return write_demo(argv[2]);
    RUN(test_folded_exact);
    RUN(test_folded_empty);
    RUN(test_html_escapes);
    RUN(test_html_data);
    RUN(test_bad_trees);
    RUN(test_caps);
    return TEST_SUMMARY("diffflame");
}
