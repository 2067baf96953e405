// SPDX-License-Identifier: MIT
// Collapsed stacks: the text of every counted stack, merged when equal, sorted as whole lines.
#include "export/collapsed.h"

#include <stdlib.h>
#include <string.h>

#include "export/export.h"
#include "util/jsonw.h"
#include "util/xalloc.h"

/* One output line before it is written: the stack text (not NUL-terminated) and its count. */
struct line {
    const char *text;
    size_t len;
    uint64_t count;
};

int collapsed_frame(const struct profile *p, uint32_t id, struct buf *out)
{
    size_t start = out->len;
    int rc = export_frame_label(p, id, out);
    if (rc)
        return rc;
    /* ';' separates frames and '\n' ends a line; other control characters would let a name
     * sort before the separator ' ' and make whole-line order differ from stack order. */
    for (size_t i = start; i < out->len; i++) {
        unsigned char c = (unsigned char)out->data[i];
        if (c == ';')
            out->data[i] = ':';
        else if (c < 0x20 || c == 0x7f)
            out->data[i] = ' ';
    }
    return 0;
}

static int cmp_text(const void *a, const void *b)
{
    const struct line *x = a;
    const struct line *y = b;
    int c = memcmp(x->text, y->text, x->len < y->len ? x->len : y->len);
    if (c)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

/* Byte k of the line "TEXT COUNT", or -1 past its end. `num` holds " COUNT", `nlen` bytes. */
static int line_byte(const struct line *l, const char *num, size_t nlen, size_t k)
{
    if (k < l->len)
        return (unsigned char)l->text[k];
    if (k - l->len < nlen)
        return (unsigned char)num[k - l->len];
    return -1;
}

/* Orders whole lines bytewise. Only when one stack's text is a prefix of the other's do the
 * counts take part, so the slow byte loop runs past the common prefix alone. */
static int cmp_line(const void *a, const void *b)
{
    const struct line *x = a;
    const struct line *y = b;
    size_t common = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->text, y->text, common);
    if (c)
        return c;
    char xn[24] = " ";
    char yn[24] = " ";
    size_t xl = 1 + jsonw_fmt_u64(xn + 1, x->count);
    size_t yl = 1 + jsonw_fmt_u64(yn + 1, y->count);
    for (size_t k = common;; k++) {
        int cx = line_byte(x, xn, xl, k);
        int cy = line_byte(y, yn, yl, k);
        if (cx != cy)
            return cx < cy ? -1 : 1;
        if (cx < 0)
            return 0;
    }
}

/* Writes the text of every counted stack into `text` and describes it in the returned array
 * (the caller frees it); pointers into `text` are set once it stops growing. */
static int stack_texts(const struct profile *p, struct buf *text, struct line **out, size_t *n)
{
    uint32_t maxd = 0;
    for (uint32_t s = 1; s < p->nnodes; s++)
        maxd = p->nodes[s].depth > maxd ? p->nodes[s].depth : maxd;
    uint32_t *frames = xmalloc(((size_t)maxd + 1) * sizeof(*frames));
    struct line *lines = xmalloc((size_t)p->nnodes * sizeof(*lines));
    size_t *offs = xmalloc((size_t)p->nnodes * sizeof(*offs));
    size_t k = 0;
    int rc = 0;
    for (uint32_t s = 1; s < p->nnodes && !rc; s++) {
        if (!p->counts[s])
            continue;
        size_t depth = profile_stack_frames(p, s, frames, maxd);
        offs[k] = text->len;
        for (size_t i = 0; i < depth && !rc; i++) {
            if (i)
                rc = buf_putc(text, ';');
            if (!rc)
                rc = collapsed_frame(p, frames[i], text);
        }
        lines[k].len = text->len - offs[k];
        lines[k].count = p->counts[s];
        k++;
    }
    for (size_t i = 0; i < k; i++)
        lines[i].text = buf_cstr(text) + offs[i];
    free(offs);
    free(frames);
    *out = lines;
    *n = k;
    return rc;
}

/* Sums the counts of lines with equal text (adjacent after sorting); returns the new count. */
static size_t merge_equal(struct line *lines, size_t n)
{
    size_t w = 0;
    for (size_t r = 0; r < n; r++) {
        if (w > 0 && cmp_text(&lines[w - 1], &lines[r]) == 0)
            lines[w - 1].count += lines[r].count;
        else
            lines[w++] = lines[r];
    }
    return w;
}

int collapsed_write(const struct profile *p, struct buf *out)
{
    struct buf text;
    buf_init(&text, out->limit);
    struct line *lines;
    size_t n;
    int rc = stack_texts(p, &text, &lines, &n);
    if (!rc) {
        qsort(lines, n, sizeof(*lines), cmp_text);
        n = merge_equal(lines, n);
        qsort(lines, n, sizeof(*lines), cmp_line);
    }
    for (size_t i = 0; i < n && !rc; i++) {
        char num[24];
        num[0] = ' ';
        size_t nl = 1 + jsonw_fmt_u64(num + 1, lines[i].count);
        num[nl++] = '\n';
        rc = buf_append(out, lines[i].text, lines[i].len);
        if (!rc)
            rc = buf_append(out, num, nl);
    }
    free(lines);
    buf_fini(&text);
    return rc;
}
