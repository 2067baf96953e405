// SPDX-License-Identifier: MIT
// Reads a command's --help text for what `crux man` says of each option. The usage texts
// are written for people, so this reads only the regular lines and leaves the rest alone:
// an option it cannot read is listed without a description, never with a wrong one.
#include "cmd/optdoc.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static size_t line_len(const char *s)
{
    const char *nl = strchr(s, '\n');
    return nl ? (size_t)(nl - s) : strlen(s);
}

static size_t spaces(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && s[i] == ' ')
        i++;
    return i;
}

/* Appends s[0..n) to out (holding *len bytes), a space first when out is not empty. */
static void append(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
    if (*len && *len + 1 < cap)
        out[(*len)++] = ' ';
    while (n && *len + 1 < cap) {
        out[(*len)++] = *s++;
        n--;
    }
    out[*len] = 0;
}

/* Where "--name" starts a regular option line `l` of length n; 0 when it does not. */
static size_t option_start(const char *l, size_t n, const char *name)
{
    size_t i = spaces(l, n);
    if (i == 0)
        return 0;
    if (i + 4 <= n && l[i] == '-' && isalnum((unsigned char)l[i + 1]) && l[i + 2] == ',' &&
        l[i + 3] == ' ')
        i += 4; /* "-o, " */
    size_t nl = strlen(name);
    if (i + 2 + nl > n || strncmp(l + i, "--", 2) != 0 || strncmp(l + i + 2, name, nl) != 0)
        return 0;
    if (i + 2 + nl < n && l[i + 2 + nl] != ' ')
        return 0; /* --log is not --log-bodies */
    return i + 2 + nl;
}

/* Reads "[ META]  TEXT" after the option name at l[i..n); false when irregular. */
static bool read_line(const char *l, size_t n, size_t i, struct optdoc *out, size_t *col)
{
    size_t len = 0;
    if (i < n && l[i] == ' ' && i + 1 < n && l[i + 1] != ' ') {
        size_t m = i + 1;
        while (m < n && l[m] != ' ')
            m++;
        if (m - i - 1 >= OPTDOC_META_MAX)
            return false;
        memcpy(out->meta, l + i + 1, m - i - 1);
        out->meta[m - i - 1] = 0;
        i = m;
    }
    size_t gap = spaces(l + i, n - i);
    if (i + gap < n && gap < 2)
        return false; /* a second word: the line names several options or a value phrase */
    i += gap;
    *col = i < n ? i : 0; /* no description: nothing continues it */
    append(out->text, sizeof(out->text), &len, l + i, n - i);
    return true;
}

bool optdoc_find(const char *usage, const char *name, struct optdoc *out)
{
    for (const char *l = usage; *l;) {
        size_t n = line_len(l);
        const char *next = l[n] ? l + n + 1 : l + n;
        size_t i = option_start(l, n, name), col = 0;
        memset(out, 0, sizeof(*out));
        if (i && read_line(l, n, i, out, &col)) {
            size_t len = strlen(out->text);
            /* continuation lines are indented past the option's own (to about the
             * description's column) and do not start another option */
            size_t indent = spaces(l, n);
            for (l = next; *l && col;) {
                n = line_len(l);
                size_t sp = spaces(l, n);
                if (sp < indent + 4 || sp == n || l[sp] == '-')
                    break;
                append(out->text, sizeof(out->text), &len, l + sp, n - sp);
                l = l[n] ? l + n + 1 : l + n;
            }
            return true;
        }
        l = next;
    }
    memset(out, 0, sizeof(*out));
    return false;
}

bool optdoc_synopsis(const char *usage, size_t k, char *out, size_t cap)
{
    size_t idx = 0;
    for (const char *l = usage; *l;) {
        size_t n = line_len(l), s = spaces(l, n);
        const char *text = NULL;
        if (idx == 0 && !strncmp(l, "usage: ", 7))
            text = l + 7;
        else if (idx > 0 && s > 0 && n - s >= 5 && !strncmp(l + s, "crux ", 5))
            text = l + s;
        if (!text)
            return false;
        if (idx++ == k) {
            size_t len = 0;
            out[0] = 0;
            append(out, cap, &len, text, n - (size_t)(text - l));
            return true;
        }
        l = l[n] ? l + n + 1 : l + n;
    }
    return false;
}

const char *optdoc_exit_status(const char *usage)
{
    for (const char *l = usage; *l;) {
        if (!strncmp(l, "exit status:", 12))
            return l;
        size_t n = line_len(l);
        l = l[n] ? l + n + 1 : l + n;
    }
    return NULL;
}

bool optdoc_meta(const char *usage, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(usage, "--"); p; p = strstr(p + 2, "--")) {
        if (strncmp(p + 2, name, nl) != 0 || p[2 + nl] != ' ' || !isupper((unsigned char)p[3 + nl]))
            continue;
        const char *w = p + 3 + nl;
        size_t n = 0;
        while (w[n] && (isalnum((unsigned char)w[n]) || w[n] == '_' || w[n] == '.'))
            n++;
        while (n && w[n - 1] == '.')
            n--;
        if (n + 1 > cap)
            return false;
        memcpy(out, w, n);
        out[n] = 0;
        return true;
    }
    return false;
}
