// SPDX-License-Identifier: MIT
// Format selection, dispatch to one writer per format, and the frame label all formats share.
#include "export/export.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "export/chrometrace.h"
#include "export/collapsed.h"
#include "export/flamegraph.h"
#include "export/flamesvg.h"
#include "export/gecko.h"
#include "export/lines.h"
#include "export/pprof.h"
#include "export/pstats.h"
#include "export/report.h"
#include "export/speedscope.h"
#include "util/jsonw.h"

struct format_word {
    const char *word;
    enum export_format format;
};

static const struct format_word extensions[] = {
    {".txt", EXPORT_COLLAPSED},   {".collapsed", EXPORT_COLLAPSED}, {".folded", EXPORT_COLLAPSED},
    {".json", EXPORT_SPEEDSCOPE}, {".html", EXPORT_HTML},           {".htm", EXPORT_HTML},
    {".svg", EXPORT_SVG},         {".pb.gz", EXPORT_PPROF},         {".pstats", EXPORT_PSTATS},
};

/* Extensions that end in one of the above, looked at first. */
static const struct format_word long_extensions[] = {
    {".gecko.json", EXPORT_GECKO},
    {".trace.json", EXPORT_CHROME},
};

static const struct format_word names[] = {
    {"flamegraph", EXPORT_FLAMEGRAPH}, {"report", EXPORT_HTML},     {"summary", EXPORT_SUMMARY},
    {"verdict", EXPORT_VERDICT},       {"html", EXPORT_HTML},       {"svg", EXPORT_SVG},
    {"speedscope", EXPORT_SPEEDSCOPE}, {"json", EXPORT_SPEEDSCOPE}, {"collapsed", EXPORT_COLLAPSED},
    {"folded", EXPORT_COLLAPSED},      {"txt", EXPORT_COLLAPSED},   {"lines", EXPORT_LINES},
    {"lines-json", EXPORT_LINES_JSON}, {"pprof", EXPORT_PPROF},     {"pstats", EXPORT_PSTATS},
    {"gecko", EXPORT_GECKO},           {"firefox", EXPORT_GECKO},   {"chrome", EXPORT_CHROME},
    {"perfetto", EXPORT_CHROME},       {"trace", EXPORT_CHROME},
};

static bool ends_with(const char *path, size_t n, const char *ext)
{
    size_t m = strlen(ext);
    /* The base name must not be the extension alone ("dir/.json" is not a file name with an
     * extension). */
    return n > m && path[n - m - 1] != '/' && strcasecmp(path + n - m, ext) == 0;
}

int export_format_from_path(const char *path, enum export_format *out)
{
    size_t n = strlen(path);
    for (size_t i = 0; i < sizeof(long_extensions) / sizeof(long_extensions[0]); i++) {
        if (ends_with(path, n, long_extensions[i].word)) {
            *out = long_extensions[i].format;
            return 0;
        }
    }
    for (size_t i = 0; i < sizeof(extensions) / sizeof(extensions[0]); i++) {
        if (ends_with(path, n, extensions[i].word)) {
            *out = extensions[i].format;
            return 0;
        }
    }
    return ERR_ARG;
}

int export_format_from_name(const char *name, enum export_format *out)
{
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(name, names[i].word) == 0) {
            *out = names[i].format;
            return 0;
        }
    }
    return ERR_ARG;
}

const char *export_format_name(enum export_format f)
{
    switch (f) {
    case EXPORT_COLLAPSED:
        return "collapsed";
    case EXPORT_SPEEDSCOPE:
        return "speedscope";
    case EXPORT_HTML:
        return "html";
    case EXPORT_SVG:
        return "svg";
    case EXPORT_FLAMEGRAPH:
        return "flamegraph";
    case EXPORT_SUMMARY:
        return "summary";
    case EXPORT_VERDICT:
        return "verdict";
    case EXPORT_LINES:
        return "lines";
    case EXPORT_LINES_JSON:
        return "lines-json";
    case EXPORT_PPROF:
        return "pprof";
    case EXPORT_PSTATS:
        return "pstats";
    case EXPORT_GECKO:
        return "gecko";
    case EXPORT_CHROME:
        return "chrome";
    }
    return "?";
}

bool export_wants_columns(enum export_format f)
{
    return f == EXPORT_SPEEDSCOPE || f == EXPORT_LINES || f == EXPORT_LINES_JSON;
}

int export_write(const struct profile *p, enum export_format f, const struct export_opts *o,
                 struct buf *out, struct errbuf *eb)
{
    static const struct export_opts defaults = {0};
    if (!o)
        o = &defaults;
    size_t start = out->len;
    int rc;
    switch (f) {
    case EXPORT_COLLAPSED:
        rc = collapsed_write(p, out);
        break;
    case EXPORT_SPEEDSCOPE:
        rc = speedscope_write(p, o, out);
        break;
    case EXPORT_HTML:
        rc = report_write(p, o, out);
        break;
    case EXPORT_FLAMEGRAPH:
        rc = flamegraph_write(p, o, out);
        break;
    case EXPORT_SUMMARY:
        rc = report_write_summary(p, o, out);
        break;
    case EXPORT_VERDICT:
        rc = report_write_verdict(p, o, out);
        break;
    case EXPORT_SVG:
        rc = flamesvg_write(p, o, out);
        break;
    case EXPORT_LINES:
        rc = lines_write(p, false, out);
        break;
    case EXPORT_LINES_JSON:
        rc = lines_write(p, true, out);
        break;
    case EXPORT_PPROF:
        rc = pprof_write(p, o, out);
        break;
    case EXPORT_PSTATS:
        rc = pstats_write(p, out);
        break;
    case EXPORT_GECKO:
        rc = gecko_write(p, o, out);
        break;
    case EXPORT_CHROME:
        rc = chrometrace_write(p, o, out);
        break;
    default:
        return errbuf_set(eb, ERR_ARG, "unknown output format %d", (int)f);
    }
    if (rc == ERR_TOO_LARGE)
        return errbuf_set(eb, rc, "%s output passed its size limit of %zu bytes",
                          export_format_name(f), out->limit - start);
    if (rc)
        return errbuf_set(eb, rc, "writing %s output: %s", export_format_name(f), err_str(rc));
    return 0;
}

static int put_or(struct buf *out, const struct profile *p, uint32_t id, const char *dflt)
{
    if (strtab_len(&p->strs, id) == 0)
        return buf_puts(out, dflt);
    return buf_append(out, profile_string(p, id), strtab_len(&p->strs, id));
}

/* Appends " (" FILE [":" LINE] ")"; LINE only when positive. */
static int put_place(struct buf *out, const struct profile *p, uint32_t file, int32_t line,
                     bool with_line)
{
    int rc = buf_puts(out, " (");
    if (!rc)
        rc = put_or(out, p, file, "?");
    if (!rc && with_line && line > 0)
        rc = buf_printf(out, ":%d", (int)line);
    if (!rc)
        rc = buf_putc(out, ')');
    return rc;
}

int export_frame_label(const struct profile *p, uint32_t id, struct buf *out)
{
    const struct pframe *f = profile_frame_at(p, id);
    int rc;
    switch (f->kind) {
    case FRAME_PYTHON:
        rc = put_or(out, p, f->name, "?");
        if (!rc)
            rc = put_place(out, p, f->file, f->line, true);
        return rc;
    case FRAME_NATIVE:
        rc = put_or(out, p, f->name, "?");
        if (!rc && strtab_len(&p->strs, f->file) > 0)
            rc = put_place(out, p, f->file, 0, false);
        return rc;
    case FRAME_THREAD:
    case FRAME_PROCESS:
        /* The TID or PID is kept in `line` (a u32 stored in an i32). */
        rc = put_or(out, p, f->name, f->kind == FRAME_THREAD ? "thread" : "process");
        if (!rc)
            rc = buf_printf(out, " (%u)", (unsigned)(uint32_t)f->line);
        return rc;
    default:
        return put_or(out, p, f->name, "?");
    }
}

int export_title(const struct profile *p, const struct export_opts *o, struct buf *out)
{
    if (o && o->title)
        return buf_puts(out, o->title);
    if (p->meta.command && p->meta.command[0]) {
        int rc = buf_puts(out, "crux: ");
        if (!rc)
            rc = buf_puts(out, p->meta.command);
        return rc;
    }
    return buf_puts(out, "crux");
}

/* The replacement for the byte sequence at `s` (*used set to its length), or NULL to copy it. */
static const char *xml_replacement(const unsigned char *s, size_t n, size_t *used)
{
    *used = 1;
    switch (s[0]) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '"':
        return "&quot;";
    case '\'':
        return "&#39;";
    case '\t':
    case '\n':
    case '\r':
        return NULL;
    default:
        break;
    }
    if (s[0] < 0x20 || s[0] == 0x7f)
        return " ";
    if (s[0] < 0x80)
        return NULL;
    uint32_t cp;
    size_t len = jsonw_utf8_len(s, n, &cp);
    if (len == 0)
        return "\xef\xbf\xbd";
    *used = len;
    if (cp == 0xfffe || cp == 0xffff)
        return "\xef\xbf\xbd";
    return NULL;
}

int export_xml_escape(struct buf *out, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t run = 0;
    size_t i = 0;
    int rc = 0;
    while (!rc && i < n) {
        size_t used;
        const char *rep = xml_replacement(s + i, n - i, &used);
        if (rep) {
            rc = buf_append(out, s + run, i - run);
            if (!rc)
                rc = buf_puts(out, rep);
            run = i + used;
        }
        i += used;
    }
    if (!rc)
        rc = buf_append(out, s + run, n - run);
    return rc;
}

size_t export_utf8_clean_len(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t len = 0;
    size_t i = 0;
    while (i < n) {
        size_t used = s[i] < 0x80 ? 1 : jsonw_utf8_len(s + i, n - i, NULL);
        len += used ? used : 3; /* U+FFFD is 3 bytes */
        i += used ? used : 1;
    }
    return len;
}

int export_utf8_clean(struct buf *out, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t run = 0;
    size_t i = 0;
    int rc = 0;
    while (!rc && i < n) {
        size_t used = s[i] < 0x80 ? 1 : jsonw_utf8_len(s + i, n - i, NULL);
        if (used) {
            i += used;
            continue;
        }
        rc = buf_append(out, s + run, i - run);
        if (!rc)
            rc = buf_append(out, "\xef\xbf\xbd", 3);
        i++;
        run = i;
    }
    if (!rc)
        rc = buf_append(out, s + run, n - run);
    return rc;
}
