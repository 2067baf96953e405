// SPDX-License-Identifier: MIT
// A small JSON reader: a validating skip over one value, member/element iteration, strings.
#include "load/jscan.h"

#include <string.h>

static size_t skip_ws(const char *p, size_t n, size_t i)
{
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    return i;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Returns the index after the string starting at p[i] == '"', or 0 when invalid. */
static size_t skip_str(const char *p, size_t n, size_t i)
{
    for (i++; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"')
            return i + 1;
        if (c < 0x20)
            return 0;
        if (c != '\\')
            continue;
        if (++i >= n)
            return 0;
        if (p[i] == 'u') {
            if (i + 4 >= n)
                return 0;
            for (int k = 1; k <= 4; k++)
                if (hexval(p[i + k]) < 0)
                    return 0;
            i += 4;
        } else if (!strchr("\"\\/bfnrt", p[i])) {
            return 0;
        }
    }
    return 0;
}

static size_t skip_num(const char *p, size_t n, size_t i)
{
    size_t s = i;
    if (i < n && p[i] == '-')
        i++;
    size_t d = i;
    while (i < n && p[i] >= '0' && p[i] <= '9')
        i++;
    if (i == d)
        return 0;
    if (i < n && p[i] == '.') {
        size_t f = ++i;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
        if (i == f)
            return 0;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        size_t e = i;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
        if (i == e)
            return 0;
    }
    return i > s ? i : 0;
}

/* Returns the index after the value at p[i] (no leading whitespace), or 0 when invalid. */
static size_t skip_value(const char *p, size_t n, size_t i, int depth)
{
    if (i >= n || depth > JSCAN_MAX_DEPTH)
        return 0;
    char c = p[i];
    if (c == '"')
        return skip_str(p, n, i);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        i = skip_ws(p, n, i + 1);
        if (i < n && p[i] == close)
            return i + 1;
        for (;;) {
            if (c == '{') {
                if (i >= n || p[i] != '"')
                    return 0;
                i = skip_str(p, n, i);
                if (!i)
                    return 0;
                i = skip_ws(p, n, i);
                if (i >= n || p[i] != ':')
                    return 0;
                i = skip_ws(p, n, i + 1);
            }
            i = skip_value(p, n, i, depth + 1);
            if (!i)
                return 0;
            i = skip_ws(p, n, i);
            if (i < n && p[i] == ',') {
                i = skip_ws(p, n, i + 1);
                continue;
            }
            return i < n && p[i] == close ? i + 1 : 0;
        }
    }
    static const char *const words[] = {"true", "false", "null"};
    for (size_t k = 0; k < 3; k++) {
        size_t l = strlen(words[k]);
        if (n - i >= l && memcmp(p + i, words[k], l) == 0)
            return i + l;
    }
    return skip_num(p, n, i);
}

int jscan_value(struct jspan s, bool whole, struct jspan *val)
{
    size_t i = skip_ws(s.p, s.n, 0);
    size_t e = skip_value(s.p, s.n, i, 0);
    if (!e)
        return ERR_ARG;
    if (whole && skip_ws(s.p, s.n, e) != s.n)
        return ERR_ARG;
    val->p = s.p + i;
    val->n = e - i;
    return 0;
}

/* Shared by member and element iteration over a validated container. */
static bool next_in(struct jspan c, char open, size_t *pos, struct jspan *key, struct jspan *val)
{
    if (c.n < 2 || c.p[0] != open)
        return false;
    size_t i = *pos ? *pos : 1;
    i = skip_ws(c.p, c.n, i);
    if (i < c.n && c.p[i] == ',')
        i = skip_ws(c.p, c.n, i + 1);
    if (i >= c.n - 1)
        return false;
    if (key) {
        size_t ke = skip_str(c.p, c.n, i);
        if (!ke)
            return false;
        key->p = c.p + i;
        key->n = ke - i;
        i = skip_ws(c.p, c.n, ke);
        if (i >= c.n || c.p[i] != ':')
            return false;
        i = skip_ws(c.p, c.n, i + 1);
    }
    size_t ve = skip_value(c.p, c.n, i, 0);
    if (!ve)
        return false;
    val->p = c.p + i;
    val->n = ve - i;
    *pos = ve;
    return true;
}

bool jscan_next_member(struct jspan obj, size_t *pos, struct jspan *key, struct jspan *val)
{
    return next_in(obj, '{', pos, key, val);
}

bool jscan_next_elem(struct jspan arr, size_t *pos, struct jspan *val)
{
    return next_in(arr, '[', pos, NULL, val);
}

bool jscan_get(struct jspan obj, const char *key, struct jspan *val)
{
    size_t pos = 0, kl = strlen(key);
    struct jspan k, v;
    while (jscan_next_member(obj, &pos, &k, &v)) {
        if (k.n == kl + 2 && memcmp(k.p + 1, key, kl) == 0) {
            *val = v;
            return true;
        }
    }
    return false;
}

static int put_utf8(struct buf *out, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return buf_append(out, b, n);
}

static uint32_t hex4(const char *p)
{
    uint32_t v = 0;
    for (int k = 0; k < 4; k++)
        v = v * 16 + (uint32_t)hexval(p[k]);
    return v;
}

int jscan_decode_str(struct jspan str, struct buf *out)
{
    if (str.n < 2 || str.p[0] != '"' || skip_str(str.p, str.n, 0) != str.n)
        return ERR_ARG;
    const char *p = str.p;
    size_t n = str.n - 1;
    int rc = 0;
    for (size_t i = 1; i < n && !rc; i++) {
        if (p[i] != '\\') {
            size_t j = i;
            while (j < n && p[j] != '\\')
                j++;
            rc = buf_append(out, p + i, j - i);
            i = j - 1;
            continue;
        }
        char e = p[++i];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e != 'u') {
            rc = buf_putc(out, "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"]);
            continue;
        }
        uint32_t cp = hex4(p + i + 1);
        i += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && i + 6 < n && p[i + 1] == '\\' && p[i + 2] == 'u') {
            uint32_t lo = hex4(p + i + 3);
            if (lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
        }
        if (cp >= 0xD800 && cp < 0xE000)
            cp = 0xFFFD; /* a lone surrogate */
        rc = put_utf8(out, cp);
    }
    return rc;
}

bool jscan_int(struct jspan v, int64_t *out)
{
    if (!v.n || v.n > 20) /* a sign and 19 digits */
        return false;
    size_t i = 0;
    bool neg = v.p[0] == '-';
    if (neg)
        i++;
    if (i == v.n)
        return false;
    int64_t x = 0;
    for (; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return false;
        int d = v.p[i] - '0';
        if (x > (INT64_MAX - d) / 10)
            return false; /* past int64: not a number this scanner reports */
        x = x * 10 + d;
    }
    *out = neg ? -x : x;
    return true;
}

char jscan_type(struct jspan v)
{
    if (!v.n)
        return 0;
    char c = v.p[0];
    if (c == '{' || c == '[' || c == '"' || c == 'n' || c == 't' || c == 'f')
        return c;
    return '0';
}
