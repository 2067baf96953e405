// SPDX-License-Identifier: MIT
// crux exp: output agreement by numeric tolerance and by tokens.
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/expcheck.h"

/* Numbers are read from a NUL-terminated copy of at most this many bytes at a time. */
#define NUM_MAX 64

static bool space(char c)
{
    return isspace((unsigned char)c) != 0;
}

static size_t skip_space(const char *s, size_t n, size_t i)
{
    while (i < n && space(s[i]))
        i++;
    return i;
}

/* Reads a number at s[i] (not past n) into *v; returns its length, or 0 when none starts
 * there. strtod's hex, "inf" and "nan" forms are not numbers here: only decimal text. */
static size_t number_at(const char *s, size_t n, size_t i, double *v)
{
    size_t j = i;
    if (j < n && (s[j] == '+' || s[j] == '-'))
        j++;
    if (j < n && s[j] == '.')
        j++;
    if (j >= n || !isdigit((unsigned char)s[j]))
        return 0;
    char tmp[NUM_MAX + 1];
    size_t len = n - i < NUM_MAX ? n - i : NUM_MAX;
    memcpy(tmp, s + i, len);
    tmp[len] = 0;
    /* stop before an 'x' so that "0x1f" reads as 0 then text, the same on both sides */
    char *x = strpbrk(tmp, "xX");
    if (x)
        *x = 0;
    char *end;
    *v = strtod(tmp, &end);
    return (size_t)(end - tmp);
}

static bool close_enough(double a, double b, double rel)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    if (a == b)
        return true;
    double m = fmax(fabs(a), fabs(b));
    return isfinite(m) && fabs(a - b) <= rel * m;
}

bool exp_agree_tolerance(const char *a, size_t na, const char *b, size_t nb, double rel)
{
    size_t i = 0, j = 0;
    for (;;) {
        bool sa = i < na && space(a[i]), sb = j < nb && space(b[j]);
        i = skip_space(a, na, i);
        j = skip_space(b, nb, j);
        if (i == na || j == nb)
            return i == na && j == nb;
        double va, vb;
        size_t la = number_at(a, na, i, &va), lb = number_at(b, nb, j, &vb);
        if (la && lb) {
            if (!close_enough(va, vb, rel))
                return false;
            i += la;
            j += lb;
            continue;
        }
        /* whitespace separates tokens: "a b" and "ab" differ */
        if (sa != sb || la || lb || a[i] != b[j])
            return false;
        i++;
        j++;
    }
}

/* Finds the next token at or after *i: its start and length (0 at the end). */
static size_t next_token(const char *s, size_t n, size_t *i)
{
    *i = skip_space(s, n, *i);
    size_t k = *i;
    while (k < n && !space(s[k]))
        k++;
    return k - *i;
}

double exp_agree_tokens(const char *a, size_t na, const char *b, size_t nb)
{
    size_t i = 0, j = 0, same = 0, ta = 0, tb = 0;
    for (;;) {
        size_t la = next_token(a, na, &i), lb = next_token(b, nb, &j);
        if (!la && !lb)
            break;
        ta += la > 0;
        tb += lb > 0;
        same += la && la == lb && !memcmp(a + i, b + j, la);
        i += la;
        j += lb;
    }
    size_t most = ta > tb ? ta : tb;
    return most ? (double)same / (double)most : 1.0;
}
