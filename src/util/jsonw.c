// SPDX-License-Identifier: MIT
// Streaming JSON writer: separators by nesting state, escaping with UTF-8 repair.
#include "util/jsonw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jsonw_init(struct jsonw *w, struct buf *out, unsigned flags)
{
    memset(w, 0, sizeof(*w));
    w->out = out;
    w->flags = flags;
}

int jsonw_error(const struct jsonw *w)
{
    return w->rc;
}

void jsonw_fail(struct jsonw *w, int rc)
{
    if (!w->rc)
        w->rc = rc;
}

static void emit(struct jsonw *w, const char *s, size_t n)
{
    if (w->rc)
        return;
    w->rc = buf_append(w->out, s, n);
}

/* Writes the comma a value needs when it is not the first in its container. */
static void separate(struct jsonw *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->depth == 0)
        return;
    uint64_t bit = (uint64_t)1 << (w->depth - 1);
    if (w->nonempty & bit)
        emit(w, ",", 1);
    w->nonempty |= bit;
}

static void open_container(struct jsonw *w, char c)
{
    separate(w);
    if (!w->rc && w->depth >= JSONW_MAX_DEPTH)
        w->rc = ERR_TOO_LARGE;
    emit(w, &c, 1);
    if (w->rc)
        return;
    w->depth++;
    w->nonempty &= ~((uint64_t)1 << (w->depth - 1));
}

static void close_container(struct jsonw *w, char c)
{
    if (!w->rc && w->depth == 0)
        w->rc = ERR_ARG;
    emit(w, &c, 1);
    if (!w->rc)
        w->depth--;
}

void jsonw_obj_begin(struct jsonw *w)
{
    open_container(w, '{');
}

void jsonw_obj_end(struct jsonw *w)
{
    close_container(w, '}');
}

void jsonw_arr_begin(struct jsonw *w)
{
    open_container(w, '[');
}

void jsonw_arr_end(struct jsonw *w)
{
    close_container(w, ']');
}

void jsonw_key(struct jsonw *w, const char *key)
{
    separate(w);
    if (!w->rc)
        w->rc = jsonw_escape(w->out, key, strlen(key), w->flags);
    emit(w, ":", 1);
    w->after_key = true;
}

void jsonw_str(struct jsonw *w, const char *s)
{
    if (!s) {
        jsonw_null(w);
        return;
    }
    jsonw_strn(w, s, strlen(s));
}

void jsonw_strn(struct jsonw *w, const char *s, size_t n)
{
    separate(w);
    if (!w->rc)
        w->rc = jsonw_escape(w->out, s, n, w->flags);
}

size_t jsonw_fmt_u64(char *dst, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        dst[i] = tmp[n - 1 - i];
    return n;
}

void jsonw_u64(struct jsonw *w, uint64_t v)
{
    char tmp[20];
    separate(w);
    emit(w, tmp, jsonw_fmt_u64(tmp, v));
}

void jsonw_i64(struct jsonw *w, int64_t v)
{
    char tmp[21];
    size_t n = 0;
    uint64_t mag = (uint64_t)v;
    if (v < 0) {
        tmp[n++] = '-';
        mag = 0 - mag; /* well defined for INT64_MIN, unlike -v */
    }
    n += jsonw_fmt_u64(tmp + n, mag);
    separate(w);
    emit(w, tmp, n);
}

void jsonw_double(struct jsonw *w, double v)
{
    if (!isfinite(v)) {
        jsonw_null(w);
        return;
    }
    /* %.17g always reads back exactly but prints 0.1 as 0.10000000000000001; try the
     * shorter form first. Neither yields a form JSON rejects for a finite value. */
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%.15g", v);
    if (strtod(tmp, NULL) != v)
        n = snprintf(tmp, sizeof(tmp), "%.17g", v);
    separate(w);
    emit(w, tmp, (size_t)n);
}

void jsonw_bool(struct jsonw *w, bool v)
{
    separate(w);
    if (v)
        emit(w, "true", 4);
    else
        emit(w, "false", 5);
}

void jsonw_null(struct jsonw *w)
{
    separate(w);
    emit(w, "null", 4);
}

void jsonw_raw(struct jsonw *w, const char *s, size_t n)
{
    separate(w);
    emit(w, s, n);
}

size_t jsonw_utf8_len(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t v;
    uint32_t min;
    if (c < 0x80) {
        if (cp)
            *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        v = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        v = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0; /* a continuation byte, 0xc0/0xc1 (always overlong) or 0xf5.. */
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    if (cp)
        *cp = v;
    return len;
}

/* The escape for one ASCII byte, or NULL when it is written as is. `hex` receives \u00XX
 * forms. */
static const char *ascii_escape(unsigned char c, unsigned flags, char hex[7])
{
    switch (c) {
    case '"':
        return "\\\"";
    case '\\':
        return "\\\\";
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    case '\t':
        return "\\t";
    case '\b':
        return "\\b";
    case '\f':
        return "\\f";
    default:
        break;
    }
    bool html = (flags & JSONW_HTML_SAFE) && (c == '<' || c == '>' || c == '&');
    if (c < 0x20 || c == 0x7f || html) {
        snprintf(hex, 7, "\\u%04x", c);
        return hex;
    }
    return NULL;
}

/* Returns the replacement text for the byte sequence at `s` (setting *used to its length), or
 * NULL when it is copied as is: U+FFFD for an invalid byte, \u2028 and \u2029 in HTML-safe
 * mode (they end a line in pre-2019 JavaScript), \uXXXX and short escapes for ASCII. */
static const char *escape_at(const unsigned char *s, size_t n, unsigned flags, char hex[7],
                             size_t *used)
{
    *used = 1;
    if (s[0] < 0x80)
        return ascii_escape(s[0], flags, hex);
    uint32_t cp;
    size_t len = jsonw_utf8_len(s, n, &cp);
    if (len == 0)
        return "\xef\xbf\xbd";
    *used = len;
    if ((flags & JSONW_HTML_SAFE) && cp == 0x2028)
        return "\\u2028";
    if ((flags & JSONW_HTML_SAFE) && cp == 0x2029)
        return "\\u2029";
    return NULL;
}

int jsonw_escape(struct buf *b, const char *str, size_t n, unsigned flags)
{
    const unsigned char *s = (const unsigned char *)str;
    int rc = buf_putc(b, '"');
    size_t run = 0; /* start of the pending run of bytes copied as is */
    size_t i = 0;
    while (!rc && i < n) {
        char hex[7];
        size_t used;
        const char *esc = escape_at(s + i, n - i, flags, hex, &used);
        if (esc) {
            rc = buf_append(b, s + run, i - run);
            if (!rc)
                rc = buf_puts(b, esc);
            run = i + used;
        }
        i += used;
    }
    if (!rc)
        rc = buf_append(b, s + run, n - run);
    if (!rc)
        rc = buf_putc(b, '"');
    return rc;
}
