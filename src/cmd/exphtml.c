// SPDX-License-Identifier: MIT
// crux exp: the self-contained HTML page of an experiment's results (no scripts).
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cmd/expreport.h"

/* Appends `s` with &, <, >, " and ' escaped. */
static int esc(struct buf *b, const char *s)
{
    int rc = 0;
    for (const char *p = s ? s : ""; *p && !rc; p++) {
        switch (*p) {
        case '&':
            rc = buf_puts(b, "&amp;");
            break;
        case '<':
            rc = buf_puts(b, "&lt;");
            break;
        case '>':
            rc = buf_puts(b, "&gt;");
            break;
        case '"':
            rc = buf_puts(b, "&quot;");
            break;
        case '\'':
            rc = buf_puts(b, "&#39;");
            break;
        default:
            rc = buf_putc(b, *p);
        }
    }
    return rc;
}

int exp_write_html(const struct exp_summary *s, const struct exp_def *d, const struct exp_state *st,
                   struct buf *b)
{
    (void)st;
    int rc = buf_puts(b, "<!doctype html><html><head><meta charset=\"utf-8\"><title>crux exp ");
    rc = rc ? rc : esc(b, d->name);
    rc = rc ? rc : buf_puts(b, "</title></head><body><table>");
    for (size_t i = 0; i < s->n && !rc; i++) {
        rc = buf_puts(b, "<tr><td>");
        rc = rc ? rc : esc(b, s->v[i].name);
        rc = rc ? rc : buf_printf(b, "</td><td>%.4g</td></tr>", s->v[i].tput.mean);
    }
    rc = rc ? rc : buf_puts(b, "</table></body></html>\n");
    return rc;
}
