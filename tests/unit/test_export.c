// SPDX-License-Identifier: MIT
// Unit tests of export/: format selection, collapsed text (against golden files), flame tree,
// HTML and SVG escaping, size caps.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "export/collapsed.h"
#include "export/export.h"
#include "export/flametree.h"
#include "profile/profile.h"
#include "util/buf.h"

#define GOLDEN_DIR "tests/golden/export/"

static uint32_t str(struct profile *p, const char *s)
{
    return profile_str(p, s, strlen(s));
}

static uint32_t py(struct profile *p, const char *name, const char *file, int32_t line)
{
    return profile_frame(p, str(p, name), str(p, file), line, FRAME_PYTHON);
}

static uint32_t nat(struct profile *p, const char *sym, const char *lib)
{
    return profile_frame(p, str(p, sym), str(p, lib), 0, FRAME_NATIVE);
}

static uint32_t other(struct profile *p, const char *name, uint32_t id, enum frame_kind kind)
{
    return profile_frame(p, str(p, name), 0, (int32_t)id, kind);
}

static void add(struct profile *p, const uint32_t *frames, size_t n, uint16_t count)
{
    uint32_t s = profile_stack(p, frames, n);
    profile_add(p, &(struct psample){.stack = s,
                                     .weight = count,
                                     .t_ns = 0,
                                     .pid = 1,
                                     .tid = 1,
                                     .state = TSTATE_RUNNING,
                                     .flags = 0});
}

/* A small profile using every frame kind, with threads and a process frame first. */
static void build_basic(struct profile *p)
{
    profile_init(p);
    uint32_t proc = other(p, "python3 app.py", 4242, FRAME_PROCESS);
    uint32_t main_t = other(p, "MainThread", 4242, FRAME_THREAD);
    uint32_t work_t = other(p, "", 4250, FRAME_THREAD);
    uint32_t mod = py(p, "<module>", "app.py", 10);
    uint32_t run = py(p, "run", "app.py", 5);
    uint32_t tok = py(p, "Tokenizer.encode", "/srv/tok.py", 88);
    uint32_t mm = nat(p, "at::native::matmul", "libtorch_cpu.so");
    uint32_t nolib = nat(p, "memcpy", "");
    uint32_t idle = other(p, "[idle]", 0, FRAME_MARKER);
    uint32_t noline = py(p, "lambda", "gen.py", 0);
    add(p, (uint32_t[]){proc, main_t, mod, run, tok}, 5, 7);
    add(p, (uint32_t[]){proc, main_t, mod, run, mm, nolib}, 6, 3);
    add(p, (uint32_t[]){proc, main_t, mod, run}, 4, 2);
    add(p, (uint32_t[]){proc, work_t, idle}, 3, 11);
    add(p, (uint32_t[]){proc, work_t, noline}, 3, 1);
    add(p, (uint32_t[]){proc, main_t, mod, run, tok}, 5, 1); /* same stack again: 8 in all */
    (void)profile_stack(p, (uint32_t[]){proc, main_t, mod, tok}, 4); /* interned, never counted */
    profile_set_str(&p->meta.command, "python3 app.py");
    profile_set_str(&p->meta.python_version, "3.12.1");
    p->meta.rate_hz = 100;
    p->meta.duration_ns = 2500000000ull;
    p->meta.ticks = 250;
    p->meta.errors = 3;
}

/* Compares `got` with GOLDEN_DIR CASE "/expected"; with CRUX_GOLDEN_UPDATE=1 rewrites it. On a
 * mismatch the output goes to tests/artifacts/ for `diff -u`. */
static int golden(const char *name, const struct buf *got)
{
    char path[256];
    snprintf(path, sizeof(path), GOLDEN_DIR "%s/expected", name);
    const char *update = getenv("CRUX_GOLDEN_UPDATE");
    if (update && strcmp(update, "1") == 0) {
        struct errbuf eb;
        return buf_write_file(got, path, &eb) ? 1 : 0;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "golden %s: cannot open (run from the repository root)\n", path);
        return 1;
    }
    struct buf want;
    buf_init(&want, 0);
    char chunk[4096];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = buf_append(&want, chunk, n);
    fclose(f);
    int same = !rc && want.len == got->len && memcmp(buf_cstr(&want), got->data, got->len) == 0;
    if (!same) {
        char out[256];
        snprintf(out, sizeof(out), "tests/artifacts/golden-%s.actual", name);
        struct errbuf eb;
        if (buf_write_file(got, out, &eb) == 0)
            fprintf(stderr, "golden %s differs: diff -u %s %s\n", name, path, out);
        else
            fprintf(stderr, "golden %s differs; got:\n%s\n", name, buf_cstr((struct buf *)got));
    }
    buf_fini(&want);
    return same ? 0 : 1;
}

static int test_format_from_path(void)
{
    enum export_format f;
    CHECK(export_format_from_path("out.txt", &f) == 0 && f == EXPORT_COLLAPSED, "txt");
    CHECK(export_format_from_path("a/b.collapsed", &f) == 0 && f == EXPORT_COLLAPSED, "coll");
    CHECK(export_format_from_path("p.json", &f) == 0 && f == EXPORT_SPEEDSCOPE, "json");
    CHECK(export_format_from_path("P.HTML", &f) == 0 && f == EXPORT_HTML, "HTML");
    CHECK(export_format_from_path("p.htm", &f) == 0 && f == EXPORT_HTML, "htm");
    CHECK(export_format_from_path("flame.svg", &f) == 0 && f == EXPORT_SVG, "svg");
    CHECK(export_format_from_path("cpu.pb.gz", &f) == 0 && f == EXPORT_PPROF, "pb.gz");
    CHECK(export_format_from_path("run.PSTATS", &f) == 0 && f == EXPORT_PSTATS, "pstats");
    CHECK(export_format_from_path("run.gecko.json", &f) == 0 && f == EXPORT_GECKO, "gecko");
    CHECK(export_format_from_path("run.trace.json", &f) == 0 && f == EXPORT_CHROME, "chrome");
    CHECK(export_format_from_path("trace.json", &f) == 0 && f == EXPORT_SPEEDSCOPE, "a name");
    CHECK(export_format_from_path("dir/.trace.json", &f) == 0 && f == EXPORT_SPEEDSCOPE,
          "dot file named like the extension");
    CHECK(export_format_from_path("p.gz", &f) == ERR_ARG, "unknown extension");
    CHECK(export_format_from_path("html", &f) == ERR_ARG, "no dot");
    CHECK(export_format_from_path("dir/.json", &f) == ERR_ARG, "dot file");
    CHECK(export_format_from_path("", &f) == ERR_ARG, "empty");
    return 0;
}

static int test_format_from_name(void)
{
    enum export_format f;
    CHECK(export_format_from_name("flamegraph", &f) == 0 && f == EXPORT_FLAMEGRAPH, "flamegraph");
    CHECK(export_format_from_name("html", &f) == 0 && f == EXPORT_HTML, "html");
    CHECK(export_format_from_name("svg", &f) == 0 && f == EXPORT_SVG, "svg");
    CHECK(export_format_from_name("speedscope", &f) == 0 && f == EXPORT_SPEEDSCOPE, "ss");
    CHECK(export_format_from_name("collapsed", &f) == 0 && f == EXPORT_COLLAPSED, "coll");
    CHECK(export_format_from_name("pprof", &f) == 0 && f == EXPORT_PPROF, "pprof");
    CHECK(export_format_from_name("pstats", &f) == 0 && f == EXPORT_PSTATS, "pstats");
    CHECK(export_format_from_name("gecko", &f) == 0 && f == EXPORT_GECKO, "gecko");
    CHECK(export_format_from_name("chrome", &f) == 0 && f == EXPORT_CHROME, "chrome");
    CHECK(export_format_from_name("callgrind", &f) == ERR_ARG, "unknown");
    CHECK(strcmp(export_format_name(EXPORT_PPROF), "pprof") == 0, "pprof name");
    CHECK(strcmp(export_format_name(EXPORT_PSTATS), "pstats") == 0, "pstats name");
    CHECK(strcmp(export_format_name(EXPORT_SVG), "svg") == 0, "name");
    return 0;
}

static int test_frame_labels(void)
{
    struct profile p;
    profile_init(&p);
    struct {
        uint32_t id;
        const char *want;
    } cases[] = {
        {py(&p, "f", "a.py", 3), "f (a.py:3)"},
        {py(&p, "g", "a.py", 0), "g (a.py)"},
        {py(&p, "", "", -1), "? (?)"},
        {nat(&p, "sym", "libx.so"), "sym (libx.so)"},
        {nat(&p, "sym", ""), "sym"},
        {other(&p, "", 77, FRAME_THREAD), "thread (77)"},
        {other(&p, "Worker-1", 3000000000u, FRAME_THREAD), "Worker-1 (3000000000)"},
        {other(&p, "", 12, FRAME_PROCESS), "process (12)"},
        {other(&p, "[unreadable]", 0, FRAME_MARKER), "[unreadable]"},
    };
    struct buf b;
    buf_init(&b, 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_reset(&b);
        CHECK(export_frame_label(&p, cases[i].id, &b) == 0, "label %zu", i);
        CHECK(strcmp(buf_cstr(&b), cases[i].want) == 0, "got '%s' want '%s'", buf_cstr(&b),
              cases[i].want);
    }
    buf_fini(&b);
    profile_fini(&p);
    return 0;
}

static int test_collapsed_golden(void)
{
    struct profile p;
    build_basic(&p);
    struct buf out;
    buf_init(&out, 0);
    struct errbuf eb = {{0}};
    CHECK(export_write(&p, EXPORT_COLLAPSED, NULL, &out, &eb) == 0, "export: %s", eb.msg);
    int rc = golden("collapsed_basic", &out);
    buf_fini(&out);
    profile_fini(&p);
    CHECK(rc == 0, "golden collapsed_basic");
    return 0;
}

/* ';' becomes ':', newlines and other control characters a space; stacks that become equal
 * are merged into one line. */
static int test_collapsed_sanitize(void)
{
    struct profile p;
    profile_init(&p);
    uint32_t a = py(&p, "a;b", "x.py", 1);
    uint32_t b = py(&p, "a:b", "x.py", 1);
    uint32_t c = py(&p, "multi\nline\r\tname", "we;ird.py", 2);
    add(&p, (uint32_t[]){a}, 1, 2);
    add(&p, (uint32_t[]){b}, 1, 3);
    add(&p, (uint32_t[]){a, c}, 2, 1);
    struct buf out;
    buf_init(&out, 0);
    CHECK(collapsed_write(&p, &out) == 0, "write");
    const char *want = "a:b (x.py:1) 5\n"
                       "a:b (x.py:1);multi line  name (we:ird.py:2) 1\n";
    CHECK(strcmp(buf_cstr(&out), want) == 0, "got:\n%s", buf_cstr(&out));
    buf_fini(&out);
    profile_fini(&p);
    return 0;
}

static uint32_t next_rand(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/* Random stacks over names that share prefixes and contain spaces: the lines must come out in
 * strictly increasing byte order (as whole lines), once each, with the counts preserved. */
static int test_collapsed_sorted(void)
{
    static const char *names[] = {"a", "a ", "a b", "ab", "a 1", "b", "B", "a!", "~", "é"};
    struct profile p;
    profile_init(&p);
    uint32_t seed = 7;
    uint64_t want_total = 0;
    for (int i = 0; i < 3000; i++) {
        uint32_t frames[6];
        size_t n = 1 + next_rand(&seed) % 6;
        for (size_t k = 0; k < n; k++) {
            const char *nm = names[next_rand(&seed) % 10];
            frames[k] = profile_frame(&p, str(&p, nm), 0, 0, FRAME_MARKER);
        }
        uint16_t w = (uint16_t)(1 + next_rand(&seed) % 500);
        add(&p, frames, n, w);
        want_total += w;
    }
    struct buf out;
    buf_init(&out, 0);
    CHECK(collapsed_write(&p, &out) == 0, "write");
    char *text = buf_take(&out, NULL);
    const char *prev = NULL;
    size_t prev_len = 0;
    uint64_t total = 0;
    size_t lines = 0;
    for (char *l = text; *l;) {
        char *nl = strchr(l, '\n');
        CHECK(nl, "line ends with a newline");
        size_t len = (size_t)(nl - l);
        char *sp = memrchr(l, ' ', len);
        CHECK(sp, "count separator");
        total += strtoull(sp + 1, NULL, 10);
        if (prev) {
            size_t m = len < prev_len ? len : prev_len;
            int c = memcmp(prev, l, m);
            CHECK(c < 0 || (c == 0 && prev_len < len), "line %zu out of order", lines);
        }
        prev = l;
        prev_len = len;
        lines++;
        l = nl + 1;
    }
    CHECK(total == want_total, "counts %llu want %llu", (unsigned long long)total,
          (unsigned long long)want_total);
    CHECK(lines > 100, "many distinct stacks (%zu)", lines);
    free(text);
    profile_fini(&p);
    return 0;
}

/* The tree's totals, preorder ranges and sibling order match the profile. */
static int test_flametree(void)
{
    struct profile p;
    build_basic(&p);
    struct flametree t;
    flametree_init(&t, &p);
    CHECK(t.total[0] == p.total, "root total %llu", (unsigned long long)t.total[0]);
    CHECK(t.n == 11, "kept nodes %u (the uncounted stack is pruned)", t.n);
    CHECK(t.end[0] == t.n, "root spans all");
    CHECK(t.max_depth == 6, "max depth %u", t.max_depth);
    for (uint32_t i = 0; i < t.n; i++) {
        uint64_t kids = 0;
        uint32_t prev_rank = 0;
        for (uint32_t c = i + 1; c < t.end[i]; c = t.end[c]) {
            CHECK(t.depth[c] == t.depth[i] + 1, "child depth");
            CHECK(c == i + 1 || t.rank[c] > prev_rank, "siblings in rank order");
            prev_rank = t.rank[c];
            kids += t.total[c];
        }
        CHECK(kids <= t.total[i], "children fit in node %u", i);
        CHECK(i == 0 || t.total[i] > 0, "no empty node");
    }
    for (uint32_t r = 1; r < t.nframes; r++) {
        const char *a = profile_string(&p, profile_frame_at(&p, t.frames[r - 1])->name);
        const char *b = profile_string(&p, profile_frame_at(&p, t.frames[r])->name);
        CHECK(strcmp(a, b) <= 0, "frames sorted by name: %s, %s", a, b);
    }
    flametree_fini(&t);
    profile_fini(&p);
    return 0;
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *s = strstr(hay, needle); s; s = strstr(s + 1, needle))
        n++;
    return n;
}

/* Names that try to end the data element or inject markup stay inert. */
static void build_hostile(struct profile *p)
{
    profile_init(p);
    uint32_t a = py(p, "<script>alert(1)</script>", "</script><script>alert(2)</script>", 1);
    uint32_t b = py(p, "x<!--y", "a&b\"c'd>e", 2);
    uint32_t c = py(p, "bad\xff\xfe utf8 \xe2\x80\xa8 \x01", "caf\xc3\xa9.py", 3);
    add(p, (uint32_t[]){a, b}, 2, 3);
    add(p, (uint32_t[]){a, c}, 2, 4);
    profile_set_str(&p->meta.command, "python -c '</title><script>alert(3)</script>'");
}

static int test_html_escaping(void)
{
    struct profile p;
    build_hostile(&p);
    struct buf out;
    buf_init(&out, 0);
    struct export_opts o = {.title = "T <b>&</b>"};
    CHECK(export_write(&p, EXPORT_HTML, &o, &out, NULL) == 0, "html");
    const char *h = buf_cstr(&out);
    CHECK(!strstr(h, "<script>alert"), "no injected script");
    CHECK(!strstr(h, "<b>"), "title escaped");
    CHECK(strstr(h, "<title>T &lt;b&gt;&amp;&lt;/b&gt;</title>"), "title text");
    CHECK(count_of(h, "</script") == 2, "only our two script elements close");
    CHECK(count_of(h, "<script") == 2, "only our two script elements open");
    CHECK(!strstr(h, "<!--"), "no comment opener");
    CHECK(strstr(h, "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e"), "name kept, escaped");
    CHECK(strstr(h, "caf\xc3\xa9.py"), "UTF-8 kept");
    CHECK(strstr(h, "bad\xef\xbf\xbd\xef\xbf\xbd utf8 \\u2028 \\u0001"), "bad bytes replaced");
    CHECK(!strstr(h, "innerHTML") && !strstr(h, "outerHTML") && !strstr(h, "document.write"),
          "names never go through markup");
    CHECK(strstr(h, "\"total\":7"), "total samples");
    buf_fini(&out);
    profile_fini(&p);
    return 0;
}

static int test_html_basic(void)
{
    struct profile p;
    build_basic(&p);
    struct buf out;
    buf_init(&out, 0);
    CHECK(export_write(&p, EXPORT_HTML, NULL, &out, NULL) == 0, "html");
    const char *h = buf_cstr(&out);
    CHECK(strncmp(h, "<!DOCTYPE html>", 15) == 0, "doctype");
    CHECK(strstr(h, "<title>crux: python3 app.py</title>"), "default title");
    CHECK(strstr(h, "\"python\":\"3.12.1\""), "python version");
    CHECK(strstr(h, "\"errors\":3"), "errors");
    CHECK(strstr(h, "<canvas"), "canvas");
    CHECK(!strstr(h, "http://") && !strstr(h, "https://"), "no network references");
    CHECK(strcmp(h + out.len - 8, "</html>\n") == 0, "complete");
    buf_fini(&out);
    profile_fini(&p);
    return 0;
}

static int test_svg_escaping(void)
{
    struct profile p;
    build_hostile(&p);
    struct buf out;
    buf_init(&out, 0);
    CHECK(export_write(&p, EXPORT_SVG, NULL, &out, NULL) == 0, "svg");
    const char *s = buf_cstr(&out);
    CHECK(strncmp(s, "<?xml", 5) == 0, "xml declaration");
    CHECK(!strstr(s, "<script>"), "no injected script");
    CHECK(count_of(s, "<script") == 1, "one script element");
    CHECK(strstr(s, "&lt;script&gt;alert(1)&lt;/script&gt;"), "name escaped");
    CHECK(strstr(s, "a&amp;b&quot;c&#39;d&gt;e"), "attribute characters escaped");
    CHECK(strstr(s, "bad\xef\xbf\xbd\xef\xbf\xbd utf8 \xe2\x80\xa8   ("), "bytes replaced");
    CHECK(!strchr(s, '\x01'), "no control characters");
    CHECK(strstr(s, "(7 samples, 100.00%)"), "root title");
    CHECK(strcmp(s + out.len - 7, "</svg>\n") == 0, "complete");
    buf_fini(&out);
    profile_fini(&p);
    return 0;
}

static int test_svg_basic(void)
{
    struct profile p;
    build_basic(&p);
    struct buf out;
    buf_init(&out, 0);
    CHECK(export_write(&p, EXPORT_SVG, NULL, &out, NULL) == 0, "svg");
    const char *s = buf_cstr(&out);
    CHECK(count_of(s, "<g class=\"f\"") == 11, "one group per kept node (%zu)",
          count_of(s, "<g class=\"f\""));
    CHECK(strstr(s, "<title>Tokenizer.encode (/srv/tok.py:88) (8 samples, 32.00%)</title>"),
          "frame title");
    buf_fini(&out);
    profile_fini(&p);
    return 0;
}

/* An empty profile still gives valid, complete documents. */
static int test_empty_profile(void)
{
    struct profile p;
    profile_init(&p);
    struct buf out;
    buf_init(&out, 0);
    for (int f = EXPORT_COLLAPSED; f <= EXPORT_SVG; f++) {
        buf_reset(&out);
        CHECK(export_write(&p, (enum export_format)f, NULL, &out, NULL) == 0, "format %d", f);
        CHECK(f == EXPORT_COLLAPSED ? out.len == 0 : out.len > 0, "format %d output", f);
    }
    buf_fini(&out);
    profile_fini(&p);
    return 0;
}

static int test_size_cap(void)
{
    struct profile p;
    build_basic(&p);
    struct buf out;
    for (int f = EXPORT_COLLAPSED; f <= EXPORT_SVG; f++) {
        buf_init(&out, 64);
        struct errbuf eb = {{0}};
        int rc = export_write(&p, (enum export_format)f, NULL, &out, &eb);
        CHECK(rc == ERR_TOO_LARGE, "format %d: rc %d", f, rc);
        CHECK(strstr(eb.msg, "size limit"), "message: %s", eb.msg);
        CHECK(out.len <= 64, "cap respected");
        buf_fini(&out);
    }
    CHECK(export_write(&p, (enum export_format)99, NULL, &out, NULL) == ERR_ARG, "bad format");
    profile_fini(&p);
    return 0;
}

int main(void)
{
    RUN(test_format_from_path);
    RUN(test_format_from_name);
    RUN(test_frame_labels);
    RUN(test_collapsed_golden);
    RUN(test_collapsed_sanitize);
    RUN(test_collapsed_sorted);
    RUN(test_flametree);
    RUN(test_html_escaping);
    RUN(test_html_basic);
    RUN(test_svg_escaping);
    RUN(test_svg_basic);
    RUN(test_empty_profile);
    RUN(test_size_cap);
    return TEST_SUMMARY("export");
}
