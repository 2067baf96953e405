// SPDX-License-Identifier: MIT
// Unit tests for cpython/pystr: UCS-1/2/4 to UTF-8 conversion with truncation, and reading
// str objects laid out by hand in this process's own memory.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "cpython/offsets.h"
#include "cpython/pystr.h"

/* Converts `count` code points given as uint32 to kind-`kind` units, then to UTF-8. */
static size_t conv(const uint32_t *cps, size_t count, int kind, char *out, size_t cap)
{
    uint8_t units[256 * 4];
    for (size_t i = 0; i < count; i++) {
        if (kind == 1) {
            units[i] = (uint8_t)cps[i];
        } else if (kind == 2) {
            uint16_t v = (uint16_t)cps[i];
            memcpy(units + 2 * i, &v, 2);
        } else {
            memcpy(units + 4 * i, &cps[i], 4);
        }
    }
    return pystr_to_utf8(units, count, kind, out, cap);
}

static int test_kind1_latin1(void)
{
    /* Control characters (C0, DEL, C1: a file name given to compile()) become '?': names
     * reach terminals and line-based formats. */
    static const uint32_t s[] = {'c', 'a', 'f', 0xE9, ' ', 0xFF, 0x80, 0x7F, 0x1B, '\n', 0xA0};
    char out[64];
    size_t n = conv(s, 11, 1, out, sizeof(out));
    static const char want[] = "caf\xc3\xa9 \xc3\xbf???\?\xc2\xa0";
    CHECK(n == sizeof(want) - 1 && memcmp(out, want, sizeof(want)) == 0, "latin-1: %zu [%s]", n,
          out);
    CHECK(pystr_to_utf8((const uint8_t *)"", 0, 1, out, sizeof(out)) == 0 && out[0] == '\0',
          "empty");
    return 0;
}

static int test_kind2_cjk(void)
{
    /* 中文 and a BMP symbol past the surrogates. */
    static const uint32_t s[] = {0x4E2D, 0x6587, 'x', 0xE000, 0xFFFF, 0x0800, 0x07FF};
    char out[64];
    size_t n = conv(s, 7, 2, out, sizeof(out));
    static const char want[] =
        "\xe4\xb8\xad\xe6\x96\x87x\xee\x80\x80\xef\xbf\xbf\xe0\xa0\x80\xdf\xbf";
    CHECK(n == sizeof(want) - 1 && memcmp(out, want, sizeof(want)) == 0, "cjk: %zu", n);
    return 0;
}

static int test_kind4_emoji(void)
{
    static const uint32_t s[] = {0x1F600, 'a', 0x10FFFF, 0x10000, 0x4E2D};
    char out[64];
    size_t n = conv(s, 5, 4, out, sizeof(out));
    static const char want[] = "\xf0\x9f\x98\x80"
                               "a\xf4\x8f\xbf\xbf\xf0\x90\x80\x80\xe4\xb8\xad";
    CHECK(n == sizeof(want) - 1 && memcmp(out, want, sizeof(want)) == 0, "emoji: %zu", n);
    return 0;
}

static int test_invalid_code_points(void)
{
    char out[64];
    /* Lone surrogates in UCS-2 (a "pair" in kind 2 is two lone surrogates). */
    static const uint32_t s2[] = {0xD800, 'a', 0xDFFF, 0xD83D, 0xDE00};
    size_t n = conv(s2, 5, 2, out, sizeof(out));
    static const char want2[] = "\xef\xbf\xbd"
                                "a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd";
    CHECK(n == sizeof(want2) - 1 && memcmp(out, want2, sizeof(want2)) == 0, "ucs-2: %zu", n);
    /* Surrogates and values past U+10FFFF in UCS-4. */
    static const uint32_t s4[] = {0xDC00, 0x110000, 0xFFFFFFFF, 0xD7FF};
    n = conv(s4, 4, 4, out, sizeof(out));
    static const char want4[] = "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xed\x9f\xbf";
    CHECK(n == sizeof(want4) - 1 && memcmp(out, want4, sizeof(want4)) == 0, "ucs-4: %zu", n);
    /* A NUL code point is a control character like the others: '?' (names are C strings
     * from here on, and a NUL would cut them). */
    static const uint32_t z[] = {'a', 0, 'b'};
    n = conv(z, 3, 1, out, sizeof(out));
    CHECK(n == 3 && memcmp(out, "a?b", 4) == 0, "NUL: %zu", n);
    return 0;
}

/* Length in bytes of the UTF-8 sequence starting with byte `c`. */
static size_t seq_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/* For every capacity, the output is the longest whole-character prefix that fits with its NUL. */
static int check_truncation(const uint32_t *cps, size_t count, int kind)
{
    char full[256];
    size_t nfull = conv(cps, count, kind, full, sizeof(full));
    for (size_t cap = 0; cap <= nfull + 2; cap++) {
        char out[256];
        memset(out, 0x55, sizeof(out));
        size_t n = conv(cps, count, kind, out, cap);
        if (cap == 0) {
            CHECK(n == 0 && (unsigned char)out[0] == 0x55, "cap 0 writes nothing");
            continue;
        }
        CHECK(n < cap && out[n] == '\0', "cap %zu: %zu bytes, terminated", cap, n);
        CHECK((unsigned char)out[cap] == 0x55, "cap %zu: wrote past the capacity", cap);
        CHECK(memcmp(out, full, n) == 0, "cap %zu: a prefix of the full text", cap);
        CHECK(n == nfull || ((unsigned char)full[n] & 0xC0) != 0x80,
              "cap %zu: cut inside a character at %zu", cap, n);
        CHECK(n == nfull || n + seq_len((unsigned char)full[n]) >= cap,
              "cap %zu: stopped early at %zu", cap, n);
    }
    return 0;
}

static int test_truncation(void)
{
    static const uint32_t mixed[] = {'a', 0xE9, 0x4E2D, 0x1F600, 'z', 0x1F600, 0xFF};
    CHECK(check_truncation(mixed, 7, 4) == 0, "mixed ucs-4");
    static const uint32_t bmp[] = {0x4E2D, 'a', 0x6587, 0xE9, 0xD800, 'b'};
    CHECK(check_truncation(bmp, 6, 2) == 0, "ucs-2");
    static const uint32_t lat[] = {0xE9, 'a', 0xE9, 0xE9, 'b'};
    CHECK(check_truncation(lat, 5, 1) == 0, "latin-1");
    char out[8];
    static const uint32_t emoji[] = {0x1F600};
    CHECK(conv(emoji, 1, 4, out, 4) == 0 && out[0] == '\0', "4-byte char, cap 4");
    CHECK(conv(emoji, 1, 4, out, 5) == 4, "4-byte char, cap 5");
    return 0;
}

/* --- pystr_read on hand-made objects ------------------------------------------------------ */

#define FAKE_TYPE 0x7f00deadbee0ULL

/* Writes a str object header at `obj` for the layout `o`. */
static void put_header(uint8_t *obj, const struct py_offsets *o, int64_t length, int kind,
                       int compact, int ascii)
{
    uint64_t type = FAKE_TYPE;
    uint64_t refcnt = 1;
    memcpy(obj, &refcnt, 8);
    memcpy(obj + o->ob_type, &type, 8);
    memcpy(obj + o->str_length, &length, 8);
    uint32_t state = (uint32_t)kind << 2 | (uint32_t)compact << 5 | (uint32_t)ascii << 6;
    memcpy(obj + o->str_state, &state, 4);
}

/* Lays out a compact str of `count` code points in `obj`; returns its byte size. */
static size_t make_compact(uint8_t *obj, const struct py_offsets *o, const uint32_t *cps,
                           size_t count, int kind)
{
    int ascii = 1;
    for (size_t i = 0; i < count; i++)
        ascii &= cps[i] < 0x80;
    ascii &= kind == 1;
    size_t data = (size_t)(ascii ? o->str_ascii_size : o->str_compact_size);
    memset(obj, 0, data);
    put_header(obj, o, (int64_t)count, kind, 1, ascii);
    for (size_t i = 0; i < count; i++) {
        uint8_t *d = obj + data + i * (size_t)kind;
        if (kind == 1) {
            d[0] = (uint8_t)cps[i];
        } else if (kind == 2) {
            uint16_t v = (uint16_t)cps[i];
            memcpy(d, &v, 2);
        } else {
            memcpy(d, &cps[i], 4);
        }
    }
    memset(obj + data + count * (size_t)kind, 0, (size_t)kind);
    return data + (count + 1) * (size_t)kind;
}

static int read_local(const struct py_offsets *o, const void *obj, char *out, size_t cap,
                      size_t *len)
{
    return pystr_read(getpid(), o, FAKE_TYPE, (uint64_t)(uintptr_t)obj, out, cap, len);
}

static int test_read_compact(void)
{
    for (uint32_t minor = 8; minor <= 13; minor++) {
        const struct py_offsets *o = offsets_for_minor(minor);
        _Alignas(16) static uint8_t obj[20000 * 4 + 128];
        char out[64];
        size_t len = 0;
        static const uint32_t name[] = {'m', 'a', 'i', 'n'};
        make_compact(obj, o, name, 4, 1);
        int rc = read_local(o, obj, out, sizeof(out), &len);
        CHECK(rc == 0 && len == 4 && strcmp(out, "main") == 0, "3.%u ascii: %d [%s]", minor, rc,
              out);
        static const uint32_t lat[] = {'d', 'o', 'n', 'n', 0xE9, 'e', 's'};
        make_compact(obj, o, lat, 7, 1);
        rc = read_local(o, obj, out, sizeof(out), &len);
        CHECK(rc == 0 && strcmp(out, "donn\xc3\xa9"
                                     "es") == 0,
              "3.%u latin-1: %d", minor, rc);
        static const uint32_t cjk[] = {0x6D4B, 0x8BD5};
        make_compact(obj, o, cjk, 2, 2);
        rc = read_local(o, obj, out, sizeof(out), &len);
        CHECK(rc == 0 && len == 6 && strcmp(out, "\xe6\xb5\x8b\xe8\xaf\x95") == 0, "3.%u ucs-2: %d",
              minor, rc);
        static const uint32_t emo[] = {'f', 0x1F600};
        make_compact(obj, o, emo, 2, 4);
        rc = read_local(o, obj, out, sizeof(out), &len);
        CHECK(rc == 0 && len == 5 && strcmp(out, "f\xf0\x9f\x98\x80") == 0, "3.%u ucs-4: %d", minor,
              rc);
        make_compact(obj, o, NULL, 0, 1);
        rc = read_local(o, obj, out, sizeof(out), &len);
        CHECK(rc == 0 && len == 0 && out[0] == '\0', "3.%u empty: %d", minor, rc);
        /* A long UCS-4 name, read beyond the first 256 bytes, cut by the output buffer. */
        static uint32_t longs[300];
        for (size_t i = 0; i < 300; i++)
            longs[i] = 0x4E00 + (uint32_t)i;
        make_compact(obj, o, longs, 300, 4);
        char big[2000];
        rc = read_local(o, obj, big, sizeof(big), &len);
        CHECK(rc == 0 && len == 900, "3.%u 300 CJK: %d %zu", minor, rc, len);
        CHECK(memcmp(big, "\xe4\xb8\x80", 3) == 0 && memcmp(big + 897, "\xe4\xbc\xab", 4) == 0,
              "3.%u first U+4E00 and last U+4F2B", minor);
        rc = read_local(o, obj, out, 8, &len);
        CHECK(rc == 0 && len == 6, "3.%u cut to 2 chars in 8 bytes: %zu", minor, len);
        /* Longer than STR_MAX_CHARS (4096): only the first 4096 characters. */
        static uint32_t huge[20000];
        for (size_t i = 0; i < 20000; i++)
            huge[i] = 'a' + (uint32_t)(i % 26);
        make_compact(obj, o, huge, 20000, 1);
        static char hbuf[30000];
        rc = read_local(o, obj, hbuf, sizeof(hbuf), &len);
        CHECK(rc == 0 && len == 4096, "3.%u 20000 chars: %d %zu", minor, rc, len);
    }
    return 0;
}

static int test_read_legacy(void)
{
    const struct py_offsets *o = offsets_for_minor(11);
    _Alignas(16) static uint8_t obj[256];
    static const uint16_t units[] = {0x4E2D, 'x', 0};
    memset(obj, 0, sizeof(obj));
    put_header(obj, o, 2, 2, 0, 0);
    uint64_t data = (uint64_t)(uintptr_t)units;
    memcpy(obj + o->str_data, &data, 8);
    char out[32];
    size_t len = 0;
    int rc = read_local(o, obj, out, sizeof(out), &len);
    CHECK(rc == 0 && len == 4 && strcmp(out, "\xe4\xb8\xadx") == 0, "legacy: %d [%s]", rc, out);
    uint64_t zero = 0;
    memcpy(obj + o->str_data, &zero, 8);
    CHECK(read_local(o, obj, out, sizeof(out), &len) == ERR_CORRUPT, "legacy without data");
    return 0;
}

static int test_read_rejects(void)
{
    const struct py_offsets *o = offsets_for_minor(12);
    _Alignas(16) static uint8_t obj[256];
    char out[32];
    size_t len = 0;
    static const uint32_t name[] = {'o', 'k'};
    make_compact(obj, o, name, 2, 1);
    CHECK(read_local(o, obj, out, sizeof(out), &len) == 0, "valid");
    CHECK(pystr_read(getpid(), o, FAKE_TYPE + 8, (uint64_t)(uintptr_t)obj, out, sizeof(out),
                     &len) == ERR_CORRUPT,
          "wrong type");
    CHECK(pystr_read(getpid(), o, 0, (uint64_t)(uintptr_t)obj, out, sizeof(out), &len) == 0,
          "type check skipped");
    CHECK(read_local(o, obj + 4, out, sizeof(out), &len) == ERR_CORRUPT, "misaligned");
    CHECK(read_local(o, NULL, out, sizeof(out), &len) == ERR_CORRUPT, "NULL");
    put_header(obj, o, 2, 3, 1, 0);
    CHECK(read_local(o, obj, out, sizeof(out), &len) == ERR_CORRUPT, "kind 3");
    put_header(obj, o, 2, 0, 1, 0);
    CHECK(read_local(o, obj, out, sizeof(out), &len) == ERR_CORRUPT, "kind 0");
    put_header(obj, o, 2, 2, 1, 1);
    CHECK(read_local(o, obj, out, sizeof(out), &len) == ERR_CORRUPT, "ascii with kind 2");
    put_header(obj, o, -1, 1, 1, 1);
    CHECK(read_local(o, obj, out, sizeof(out), &len) == ERR_CORRUPT, "negative length");
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *p = mmap(NULL, (size_t)page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED, "mmap");
    int rc = read_local(o, p, out, sizeof(out), &len);
    munmap(p, (size_t)page);
    CHECK(rc == ERR_READ, "unreadable object: %d", rc);
    return 0;
}

/* Maps two pages and unmaps the second; returns the first. */
static uint8_t *page_before_hole(long page)
{
    uint8_t *p =
        mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    munmap(p + page, (size_t)page);
    return p;
}

/* An object that ends right before an unmapped page: the 256-byte first read fails and the
 * reader falls back to a shorter read. */
static int test_read_at_page_end(void)
{
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *p = page_before_hole(page);
    CHECK(p != NULL, "mmap");
    int bad = 0;
    for (uint32_t minor = 8; minor <= 13 && !bad; minor++) {
        const struct py_offsets *o = offsets_for_minor(minor);
        /* A non-ASCII compact str of 40 Latin-1 characters, 16-byte aligned at the end. */
        uint32_t lat[40];
        for (size_t i = 0; i < 40; i++)
            lat[i] = 0xC0 + (uint32_t)i;
        size_t size = (size_t)o->str_compact_size + 41;
        uint8_t *obj = p + page - ((size + 15) & ~(size_t)15);
        make_compact(obj, o, lat, 40, 1);
        char out[128];
        size_t len = 0;
        int rc = read_local(o, obj, out, sizeof(out), &len);
        bad = rc != 0 || len != 80 ? (int)minor : 0;
    }
    munmap(p, (size_t)page);
    CHECK(!bad, "3.%d: a Latin-1 str at the page end is unreadable", bad);
    return 0;
}

/* A short ASCII name ("run") in the last 16-byte block before an unmapped page: the whole
 * object is str_ascii_size + 4 bytes, less than the fallback read of str_compact_size + 8. */
static int test_read_short_ascii_at_page_end(void)
{
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *p = page_before_hole(page);
    CHECK(p != NULL, "mmap");
    char failed[128] = "";
    size_t pos = 0;
    for (uint32_t minor = 8; minor <= 13; minor++) {
        const struct py_offsets *o = offsets_for_minor(minor);
        static const uint32_t run[] = {'r', 'u', 'n'};
        size_t size = ((size_t)o->str_ascii_size + 4 + 15) & ~(size_t)15;
        uint8_t *obj = p + page - size;
        make_compact(obj, o, run, 3, 1);
        char out[16] = "";
        size_t len = 0;
        int rc = read_local(o, obj, out, sizeof(out), &len);
        if (rc != 0 || strcmp(out, "run") != 0)
            pos += (size_t)snprintf(failed + pos, sizeof(failed) - pos, " 3.%u(%zu B: %d)", minor,
                                    size, rc);
    }
    munmap(p, (size_t)page);
    CHECK(pos == 0, "ASCII \"run\" ending at an unmapped page unreadable on:%s", failed);
    return 0;
}

int main(void)
{
    RUN(test_kind1_latin1);
    RUN(test_kind2_cjk);
    RUN(test_kind4_emoji);
    RUN(test_invalid_code_points);
    RUN(test_truncation);
    RUN(test_read_compact);
    RUN(test_read_legacy);
    RUN(test_read_rejects);
    RUN(test_read_at_page_end);
    RUN(test_read_short_ascii_at_page_end);
    return TEST_SUMMARY("pystr");
}
