// SPDX-License-Identifier: MIT
// Line tables against PyCode_Addr2Line of every installed CPython (tests/golden/linetable/,
// written by tools/gen_linetable_golden.py; 3.11+ also start columns against
// PyCode_Addr2Location) and against malformed input.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cpython/linetable.h"
#include "util/xalloc.h"

#define GOLDEN_DIR "tests/golden/linetable/"
#define MAX_TABLE 1000000

/* Decodes from an exact-size heap copy of `tab`, so that ASan sees any read past `n`. */
static int decode_exact(enum linetable_format fmt, const uint8_t *tab, size_t n,
                        int32_t firstlineno, uint32_t code_bytes, struct line_run **out,
                        size_t *nout)
{
    uint8_t *copy = n ? xmalloc(n) : NULL;
    if (n)
        memcpy(copy, tab, n);
    int rc = linetable_decode(fmt, copy, n, firstlineno, code_bytes, out, nout);
    free(copy);
    return rc;
}

/* True when runs are non-empty, strictly increasing, inside the code, and merged. */
static int runs_valid(const struct line_run *runs, size_t n, uint32_t code_bytes)
{
    for (size_t i = 0; i < n; i++) {
        if (runs[i].end == 0 || runs[i].end > code_bytes)
            return 0;
        if (i && (runs[i].end <= runs[i - 1].end ||
                  (runs[i].line == runs[i - 1].line && runs[i].col == runs[i - 1].col)))
            return 0;
    }
    return 1;
}

/* Returns the next space-separated token of *p (NUL-terminated in place), or NULL. */
static char *next_token(char **p)
{
    char *s = *p;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    if (!*s)
        return NULL;
    char *e = s;
    while (*e && *e != ' ' && *e != '\t' && *e != '\n' && *e != '\r')
        e++;
    if (*e)
        *e++ = '\0';
    *p = e;
    return s;
}

static int parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    *out = strtol(s, &end, 10);
    return *s && !*end && !errno;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes hex `s` ('-' = empty) into a new buffer the caller frees; returns -1 on bad hex. */
static long parse_hex(const char *s, uint8_t **out)
{
    size_t len = strcmp(s, "-") ? strlen(s) : 0;
    *out = xmalloc(len / 2 + 1);
    if (len % 2 || len / 2 > MAX_TABLE)
        return -1;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hexval(s[2 * i]);
        int lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        (*out)[i] = (uint8_t)(hi << 4 | lo);
    }
    return (long)(len / 2);
}

/* One golden row, parsed. `rest` points at the run-length coded expectations. */
struct row {
    const char *name;
    long minor;
    long firstlineno;
    long code_bytes;
    long line_neg;
    uint8_t *tab;
    long n;
    char *rest;
};

static int parse_row(char *line, struct row *r)
{
    char *p = line;
    const char *f[6];
    for (int i = 0; i < 6; i++) {
        f[i] = next_token(&p);
        if (!f[i])
            return 0;
    }
    r->name = f[0];
    r->n = parse_hex(f[4], &r->tab);
    r->rest = p;
    return parse_long(f[1], &r->minor) && parse_long(f[2], &r->firstlineno) &&
           parse_long(f[3], &r->code_bytes) && parse_long(f[5], &r->line_neg) && r->n >= 0 &&
           r->code_bytes >= 0 && r->code_bytes <= UINT32_MAX;
}

/* Checks every expectation of one row; adds the offsets checked to *offsets. */
static int check_row(struct row *r, long minor, long *offsets)
{
    struct line_run *runs;
    size_t nruns;
    CHECK(r->minor == minor, "%s: minor %ld in the 3.%ld file", r->name, r->minor, minor);
    int rc = decode_exact(linetable_format_for((uint32_t)minor), r->tab, (size_t)r->n,
                          (int32_t)r->firstlineno, (uint32_t)r->code_bytes, &runs, &nruns);
    CHECK(rc == 0, "%s: decode: %s", r->name, err_str(rc));
    CHECK(runs_valid(runs, nruns, (uint32_t)r->code_bytes), "%s: runs malformed", r->name);
    int32_t got = linetable_lookup(runs, nruns, -2, (int32_t)r->firstlineno);
    CHECK(got == r->line_neg, "%s: offset -2: %d, expected %ld", r->name, got, r->line_neg);
    long b = 0;
    int cols = 0;
    const char *tok;
    while ((tok = next_token(&r->rest)) != NULL) {
        if (strcmp(tok, "|") == 0) { /* 3.11+: the start columns follow */
            CHECK(!cols && b == r->code_bytes + (r->code_bytes & 1), "%s: misplaced |", r->name);
            cols = 1;
            b = 0;
            continue;
        }
        char buf[32];
        long want;
        long count = 1;
        const char *star = strchr(tok, '*');
        size_t len = star ? (size_t)(star - tok) : strlen(tok);
        CHECK(len < sizeof(buf), "%s: bad token %s", r->name, tok);
        memcpy(buf, tok, len);
        buf[len] = '\0';
        CHECK(parse_long(buf, &want), "%s: bad token %s", r->name, tok);
        CHECK(!star || (parse_long(star + 1, &count) && count > 0), "%s: bad %s", r->name, tok);
        for (long k = 0; k < count; k++, b += 2) {
            size_t i = linetable_find(runs, nruns, b);
            got = cols ? (i < nruns ? (int32_t)runs[i].col : 0)
                       : linetable_lookup(runs, nruns, b, (int32_t)r->firstlineno);
            CHECK(got == want, "%s (3.%ld): offset %ld: %s %d, expected %ld", r->name, minor, b,
                  cols ? "column" : "line", got, want);
        }
    }
    CHECK(b == r->code_bytes + (r->code_bytes & 1), "%s: %ld offsets for %ld bytes", r->name, b / 2,
          r->code_bytes);
    CHECK(cols == (minor >= 11), "%s: columns %s", r->name, cols ? "unexpected" : "missing");
    *offsets += (b / 2 + 1) * (cols ? 2 : 1);
    free(runs);
    return 0;
}

/* Checks every row of tests/golden/linetable/3.`minor`.txt and prints the counts. */
static int check_golden(long minor)
{
    char path[64];
    snprintf(path, sizeof(path), GOLDEN_DIR "3.%ld.txt", minor);
    FILE *f = fopen(path, "r");
    CHECK(f, "%s: %s (run from the repository root)", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    long objects = 0;
    long offsets = 0;
    int failed = 0;
    while (!failed && getline(&line, &cap, f) > 0) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        struct row r = {0};
        if (!parse_row(line, &r)) {
            fprintf(stderr, "%s: unparsable row %ld\n", path, objects + 1);
            failed = 1;
        } else {
            failed = check_row(&r, minor, &offsets);
        }
        free(r.tab);
        objects++;
    }
    free(line);
    fclose(f);
    CHECK(!failed, "%s: row %ld failed", path, objects);
    CHECK(objects > 0, "%s: no code objects", path);
    printf("linetable 3.%ld: %ld code objects, %ld offsets checked\n", minor, objects, offsets);
    return 0;
}

static int test_golden_3_8(void)
{
    return check_golden(8);
}

static int test_golden_3_9(void)
{
    return check_golden(9);
}

static int test_golden_3_10(void)
{
    return check_golden(10);
}

static int test_golden_3_11(void)
{
    return check_golden(11);
}

static int test_golden_3_12(void)
{
    return check_golden(12);
}

static int test_golden_3_13(void)
{
    return check_golden(13);
}

static int test_format_for(void)
{
    CHECK(linetable_format_for(8) == LINETABLE_LNOTAB, "3.8");
    CHECK(linetable_format_for(9) == LINETABLE_LNOTAB, "3.9");
    CHECK(linetable_format_for(10) == LINETABLE_310, "3.10");
    CHECK(linetable_format_for(11) == LINETABLE_311, "3.11");
    CHECK(linetable_format_for(13) == LINETABLE_311, "3.13");
    CHECK(linetable_format_for(14) == LINETABLE_311, "3.14");
    return 0;
}

/* Returns the result code of decoding `tab`, freeing any runs. */
static int decode_rc(enum linetable_format fmt, const uint8_t *tab, size_t n, uint32_t code_bytes)
{
    struct line_run *runs;
    size_t nruns;
    int rc = decode_exact(fmt, tab, n, 10, code_bytes, &runs, &nruns);
    if (rc == 0 && !runs_valid(runs, nruns, code_bytes))
        rc = 1;
    free(runs);
    return rc;
}

static int test_empty_tables(void)
{
    struct line_run *runs;
    size_t n;
    /* 3.8/3.9: a one-line code object has an empty co_lnotab; all of it is firstlineno. */
    CHECK(linetable_decode(LINETABLE_LNOTAB, NULL, 0, 7, 8, &runs, &n) == 0, "lnotab");
    CHECK(n == 1 && runs[0].end == 8 && runs[0].line == 7, "lnotab run");
    CHECK(linetable_lookup(runs, n, 6, 7) == 7 && linetable_lookup(runs, n, 8, 7) == -1, "look");
    free(runs);
    /* 3.10+: no ranges, so no offset has a line (PyCode_Addr2Line returns -1). */
    CHECK(linetable_decode(LINETABLE_310, NULL, 0, 7, 8, &runs, &n) == 0 && n == 0, "3.10");
    CHECK(linetable_lookup(runs, n, 0, 7) == -1 && linetable_lookup(runs, n, -2, 7) == 7, "3.10");
    free(runs);
    CHECK(linetable_decode(LINETABLE_311, NULL, 0, 7, 8, &runs, &n) == 0 && n == 0, "3.11");
    CHECK(linetable_lookup(runs, n, 0, 7) == -1, "3.11 lookup");
    free(runs);
    CHECK(linetable_decode(LINETABLE_LNOTAB, NULL, 0, 7, 0, &runs, &n) == 0 && n == 0, "0 B");
    free(runs);
    CHECK(linetable_decode(LINETABLE_311, NULL, 4, 7, 8, &runs, &n) == ERR_ARG, "NULL table");
    CHECK(linetable_decode((enum linetable_format)9, NULL, 0, 7, 8, &runs, &n) == ERR_ARG, "fmt");
    return 0;
}

static int test_lnotab_malformed(void)
{
    static const uint8_t ok[] = {6, 1, 0, 0x81, 4, 2};
    static const uint8_t odd[] = {6, 1, 4};
    CHECK(decode_rc(LINETABLE_LNOTAB, ok, sizeof(ok), 12) == 0, "valid");
    CHECK(decode_rc(LINETABLE_LNOTAB, odd, sizeof(odd), 12) == ERR_CORRUPT, "odd length");
    CHECK(decode_rc(LINETABLE_LNOTAB, ok, sizeof(ok), 8) == ERR_CORRUPT, "past the code");
    CHECK(decode_rc(LINETABLE_LNOTAB, ok, sizeof(ok), 10) == 0, "ends at the code");
    return 0;
}

static int test_lnotab_lines(void)
{
    /* +1 at 6, -127 at 6 (same address: only the sum shows), +2 at 10. */
    static const uint8_t tab[] = {6, 1, 0, 0x81, 4, 2};
    struct line_run *runs;
    size_t n;
    CHECK(linetable_decode(LINETABLE_LNOTAB, tab, sizeof(tab), 200, 14, &runs, &n) == 0, "ok");
    static const int32_t want[] = {200, 200, 200, 74, 74, 76, 76};
    for (int b = 0; b < 14; b += 2)
        CHECK(linetable_lookup(runs, n, b, 200) == want[b / 2], "offset %d", b);
    CHECK(linetable_lookup(runs, n, -2, 200) == 200, "negative");
    CHECK(linetable_lookup(runs, n, INT64_MAX, 200) == -1, "far past the end");
    free(runs);
    return 0;
}

static int test_310_malformed(void)
{
    static const uint8_t ok[] = {4, 1, 0, 3, 2, 0x80, 254, 0xff};
    static const uint8_t odd[] = {4, 1, 2};
    CHECK(decode_rc(LINETABLE_310, ok, sizeof(ok), 260) == 0, "valid");
    CHECK(decode_rc(LINETABLE_310, odd, sizeof(odd), 260) == ERR_CORRUPT, "odd length");
    CHECK(decode_rc(LINETABLE_310, ok, sizeof(ok), 259) == ERR_CORRUPT, "past the code");
    struct line_run *runs;
    size_t n;
    CHECK(linetable_decode(LINETABLE_310, ok, sizeof(ok), 5, 262, &runs, &n) == 0, "ok");
    CHECK(linetable_lookup(runs, n, 2, 5) == 6, "first range");
    CHECK(linetable_lookup(runs, n, 4, 5) == -1, "no line (-128)");
    CHECK(linetable_lookup(runs, n, 6, 5) == 8, "line after the empty pair");
    CHECK(linetable_lookup(runs, n, 260, 5) == -1, "past the last range");
    free(runs);
    return 0;
}

static int test_311_malformed(void)
{
    /* short form, one-line +1, no-columns -3 (svarint 7), long +200 (svarint 400 = 2 groups),
     * none. Lengths 1, 2, 1, 8, 1 code units = 26 bytes. */
    static const uint8_t ok[] = {0x80, 0x05, 0xd9, 0x01, 0x02, 0xe8, 0x07,
                                 0xf7, 0x50, 0x06, 0x00, 0x01, 0x02, 0xf8};
    CHECK(decode_rc(LINETABLE_311, ok, sizeof(ok), 26) == 0, "valid");
    CHECK(decode_rc(LINETABLE_311, ok, sizeof(ok), 24) == ERR_CORRUPT, "past the code");
    /* 3.13's _Py_InitCleanup: 3 code units, one no-location entry of 4 (NO_LOC_4). The last
     * entry may run past the code, but only the last: an earlier one is still refused. */
    static const uint8_t init_cleanup[] = {0xfb};
    CHECK(decode_rc(LINETABLE_311, init_cleanup, 1, 6) == 0, "_Py_InitCleanup's table");
    static const uint8_t two_over[] = {0xfb, 0xf8};
    CHECK(decode_rc(LINETABLE_311, two_over, 2, 6) == ERR_CORRUPT, "not the last entry");
    CHECK(decode_rc(LINETABLE_311, ok, sizeof(ok), 25) == 0, "last entry clamped");
    CHECK(decode_rc(LINETABLE_311, ok, sizeof(ok), 23) == ERR_CORRUPT, "last starts past");
    static const uint8_t no_start[] = {0x05, 0x80, 0x05};
    CHECK(decode_rc(LINETABLE_311, no_start, 3, 26) == ERR_CORRUPT, "no first byte");
    static const uint8_t trunc_varint[] = {0xe8, 0x47};
    CHECK(decode_rc(LINETABLE_311, trunc_varint, 2, 26) == ERR_CORRUPT, "truncated varint");
    static const uint8_t varint_into_entry[] = {0xe8, 0x47, 0x80, 0x00};
    CHECK(decode_rc(LINETABLE_311, varint_into_entry, 4, 26) == ERR_CORRUPT, "varint end");
    static const uint8_t long_varint[] = {0xe8, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x01};
    CHECK(decode_rc(LINETABLE_311, long_varint, 8, 26) == ERR_CORRUPT, "seven groups");
    static const uint8_t short_missing[] = {0x80, 0x80, 0x05};
    CHECK(decode_rc(LINETABLE_311, short_missing, 3, 26) == ERR_CORRUPT, "short, no column");
    static const uint8_t extra[] = {0x80, 0x05, 0x05};
    CHECK(decode_rc(LINETABLE_311, extra, 3, 26) == ERR_CORRUPT, "extra column byte");
    static const uint8_t long_trunc[] = {0xf0, 0x02, 0x00, 0x01};
    CHECK(decode_rc(LINETABLE_311, long_trunc, 4, 26) == ERR_CORRUPT, "long form truncated");
    for (size_t k = 0; k < sizeof(ok); k++) {
        int rc = decode_rc(LINETABLE_311, ok, k, 26);
        CHECK(rc == 0 || rc == ERR_CORRUPT, "prefix %zu: %d", k, rc);
    }
    struct line_run *runs;
    size_t n;
    CHECK(linetable_decode(LINETABLE_311, ok, sizeof(ok), 10, 26, &runs, &n) == 0, "ok");
    static const int32_t want[] = {10, 11, 11, 8, 208, 208, 208, 208, 208, 208, 208, 208, -1};
    for (int b = 0; b < 26; b += 2)
        CHECK(linetable_lookup(runs, n, b, 10) == want[b / 2], "offset %d", b);
    free(runs);
    return 0;
}

/* Start columns of each entry form, 1-based: short (code * 8 + bits 4-6 of its byte), one-line
 * (its first byte), no-columns (0), long (stored + 1 already: 0 = none), none (0). */
static int test_311_columns(void)
{
    static const uint8_t tab[] = {0x80, 0x05, 0x98, 0x25, 0xd9, 0x01, 0x02, 0xe8, 0x07, 0xf0, 0x00,
                                  0x00, 0x45, 0x02, 0x00, 0xf0, 0x00, 0x00, 0x00, 0x00, 0xf8};
    struct line_run *runs;
    size_t n;
    CHECK(linetable_decode(LINETABLE_311, tab, sizeof(tab), 10, 18, &runs, &n) == 0, "decode");
    static const uint32_t want[] = {1, 27, 2, 2, 0, 133, 0, 0};
    static const int32_t lines[] = {10, 10, 11, 11, 8, 8, 8, -1};
    for (int b = 0; b < 16; b += 2) {
        size_t i = linetable_find(runs, n, b);
        CHECK(i < n && runs[i].col == want[b / 2], "offset %d: column %u", b,
              i < n ? runs[i].col : 0);
        CHECK(runs[i].line == lines[b / 2], "offset %d: line %d", b, runs[i].line);
    }
    CHECK(linetable_find(runs, n, -2) == SIZE_MAX && linetable_find(runs, n, 18) == n, "ends");
    free(runs);
    static const uint8_t huge[] = {0xf0, 0x00, 0x00, 0x40, 0x40, 0x40, 0x40, 0x40, 0x3f, 0x00};
    CHECK(decode_rc(LINETABLE_311, huge, sizeof(huge), 2) == ERR_CORRUPT, "column past int");
    static const uint8_t line_only[] = {0x80, 0x05};
    CHECK(linetable_decode(LINETABLE_310, line_only, 2, 1, 128, &runs, &n) == 0, "3.10");
    CHECK(n == 1 && runs[0].col == 0, "3.10 has no columns");
    free(runs);
    return 0;
}

static int test_line_overflow(void)
{
    struct line_run *runs;
    size_t n;
    static const uint8_t up[] = {0xd8, 0x00, 0x00};
    CHECK(linetable_decode(LINETABLE_311, up, 3, INT32_MAX, 2, &runs, &n) == ERR_CORRUPT, "311");
    static const uint8_t lnotab_up[] = {2, 1};
    CHECK(linetable_decode(LINETABLE_LNOTAB, lnotab_up, 2, INT32_MAX, 4, &runs, &n) == ERR_CORRUPT,
          "lnotab");
    static const uint8_t big[] = {0xe8, 0x7e, 0x7f, 0x7f, 0x7f, 0x7f, 0x3f};
    CHECK(linetable_decode(LINETABLE_311, big, 7, 0, 2, &runs, &n) == ERR_CORRUPT, "svarint");
    return 0;
}

/* Builds a table of `count` entries, each a new line on one code unit, and decodes it. */
static void decode_many(enum linetable_format fmt, size_t count, int *rc, size_t *nruns)
{
    size_t per = fmt == LINETABLE_311 ? 3 : 2;
    uint8_t *tab = xmalloc(count * per);
    for (size_t i = 0; i < count; i++) {
        uint8_t *e = tab + i * per;
        if (fmt == LINETABLE_311) {
            e[0] = 0xd8; /* one-line form, +1, one code unit */
            e[1] = 0;
            e[2] = 1;
        } else {
            e[0] = 2;
            e[1] = 1;
        }
    }
    struct line_run *runs;
    *rc = linetable_decode(fmt, tab, count * per, 1, (uint32_t)(count * 2), &runs, nruns);
    free(tab);
    free(runs);
}

static int test_too_many_runs(void)
{
    int rc;
    size_t n;
    decode_many(LINETABLE_310, 1000000, &rc, &n);
    CHECK(rc == 0 && n == 1000000, "3.10 at the cap: %d %zu", rc, n);
    decode_many(LINETABLE_310, 1000001, &rc, &n);
    CHECK(rc == ERR_TOO_LARGE, "3.10 past the cap: %d", rc);
    decode_many(LINETABLE_311, 1000001, &rc, &n);
    CHECK(rc == ERR_TOO_LARGE, "3.11 past the cap: %d", rc);
    decode_many(LINETABLE_LNOTAB, 1000000, &rc, &n);
    CHECK(rc == 0 && n == 1000000, "lnotab at the cap: %d %zu", rc, n);
    decode_many(LINETABLE_LNOTAB, 1000001, &rc, &n);
    CHECK(rc == ERR_TOO_LARGE, "lnotab past the cap: %d", rc);
    return 0;
}

/* Every prefix and a fixed set of byte flips of every golden table of 3.`minor` decode to
 * either valid runs or ERR_CORRUPT, without reading past the table (ASan checks). */
static int mangle_golden(long minor)
{
    char path[64];
    snprintf(path, sizeof(path), GOLDEN_DIR "3.%ld.txt", minor);
    FILE *f = fopen(path, "r");
    CHECK(f, "%s: %s", path, strerror(errno));
    enum linetable_format fmt = linetable_format_for((uint32_t)minor);
    char *line = NULL;
    size_t cap = 0;
    uint32_t seed = 12345;
    int bad = 0;
    while (!bad && getline(&line, &cap, f) > 0) {
        struct row r = {0};
        if (line[0] != '#' && parse_row(line, &r)) {
            uint32_t cb = (uint32_t)r.code_bytes;
            for (long k = 0; k < r.n && !bad; k++) {
                int rc = decode_rc(fmt, r.tab, (size_t)k, cb);
                bad = rc != 0 && rc != ERR_CORRUPT;
                seed = seed * 1103515245u + 12345u;
                r.tab[seed % (uint32_t)r.n] ^= (uint8_t)(1u << (seed >> 16 & 7));
                rc = decode_rc(fmt, r.tab, (size_t)r.n, cb);
                bad = bad || (rc != 0 && rc != ERR_CORRUPT);
            }
        }
        free(r.tab);
    }
    free(line);
    fclose(f);
    CHECK(!bad, "%s: a mangled table gave neither runs nor ERR_CORRUPT", path);
    return 0;
}

static int test_mangled_golden(void)
{
    for (long minor = 8; minor <= 13; minor++)
        CHECK(mangle_golden(minor) == 0, "3.%ld", minor);
    return 0;
}

int main(void)
{
    RUN(test_format_for);
    RUN(test_golden_3_8);
    RUN(test_golden_3_9);
    RUN(test_golden_3_10);
    RUN(test_golden_3_11);
    RUN(test_golden_3_12);
    RUN(test_golden_3_13);
    RUN(test_empty_tables);
    RUN(test_lnotab_malformed);
    RUN(test_lnotab_lines);
    RUN(test_310_malformed);
    RUN(test_311_malformed);
    RUN(test_311_columns);
    RUN(test_line_overflow);
    RUN(test_too_many_runs);
    RUN(test_mangled_golden);
    return TEST_SUMMARY("linetable");
}
