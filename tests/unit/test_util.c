// SPDX-License-Identifier: MIT
// Unit tests for util/: the capped buffer, the u64 hash map, error codes and xstrndup.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/gzip.h"
#include "util/hmap.h"
#include "util/rawfield.h"
#include "util/text.h"
#include "util/xalloc.h"

static int test_buf_append(void)
{
    struct buf b;
    buf_init(&b, 0);
    CHECK(b.limit == BUF_DEFAULT_LIMIT, "limit 0 means the default, got %zu", b.limit);
    CHECK(strcmp(buf_cstr(&b), "") == 0 && b.len == 0, "a new buffer is empty");
    CHECK(buf_append(&b, "abc", 3) == 0, "append");
    CHECK(buf_append(&b, "", 0) == 0, "append nothing");
    CHECK(buf_puts(&b, "de") == 0, "puts");
    CHECK(buf_putc(&b, 'f') == 0, "putc");
    CHECK(b.len == 6 && strcmp(buf_cstr(&b), "abcdef") == 0, "contents %s", buf_cstr(&b));
    /* Embedded NUL bytes are data, and the buffer stays NUL-terminated after them. */
    CHECK(buf_append(&b, "g\0h", 3) == 0, "append with NUL");
    CHECK(b.len == 9 && memcmp(b.data, "abcdefg\0h", 10) == 0, "binary contents");
    buf_reset(&b);
    CHECK(b.len == 0 && strcmp(buf_cstr(&b), "") == 0, "reset empties");
    CHECK(b.cap > 0, "reset keeps the memory");
    buf_fini(&b);
    CHECK(b.data == NULL && b.len == 0 && strcmp(buf_cstr(&b), "") == 0, "fini");
    CHECK(buf_puts(&b, "again") == 0 && strcmp(buf_cstr(&b), "again") == 0, "reuse after fini");
    buf_fini(&b);
    return 0;
}

static int test_buf_printf_growth(void)
{
    struct buf b;
    buf_init(&b, 0);
    CHECK(buf_printf(&b, "%d-%s", 42, "x") == 0, "short printf");
    CHECK(strcmp(buf_cstr(&b), "42-x") == 0, "short: %s", buf_cstr(&b));
    /* Longer than the 256-byte stack buffer: the second vsnprintf path. */
    char big[1000];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CHECK(buf_printf(&b, "[%s]", big) == 0, "long printf");
    CHECK(b.len == 4 + 1001, "len %zu", b.len);
    CHECK(b.data[4] == '[' && b.data[5] == 'q' && b.data[1004] == ']' && b.data[1005] == '\0',
          "long contents");
    CHECK(strlen(buf_cstr(&b)) == b.len, "NUL-terminated after the long path");
    /* Exactly 255 and 256 characters: both sides of the stack buffer. */
    buf_reset(&b);
    CHECK(buf_printf(&b, "%.*s", 255, big) == 0 && b.len == 255, "255");
    CHECK(buf_printf(&b, "%.*s", 256, big) == 0 && b.len == 511, "256");
    CHECK(strlen(buf_cstr(&b)) == 511, "terminated");
    /* Many appends: the capacity doubles and the contents survive every move. */
    buf_reset(&b);
    for (int i = 0; i < 20000; i++)
        CHECK(buf_printf(&b, "%05d,", i) == 0, "append %d", i);
    CHECK(b.len == 20000 * 6, "len %zu", b.len);
    for (int i = 0; i < 20000; i += 997) {
        char want[16];
        snprintf(want, sizeof(want), "%05d,", i);
        CHECK(memcmp(b.data + (size_t)i * 6, want, 6) == 0, "entry %d", i);
    }
    CHECK(b.cap >= b.len + 1 && (b.cap & (b.cap - 1)) == 0, "cap %zu", b.cap);
    buf_fini(&b);
    return 0;
}

static int test_buf_limit(void)
{
    struct buf b;
    buf_init(&b, 10);
    CHECK(buf_append(&b, "0123456789", 10) == 0, "exactly the limit fits");
    CHECK(buf_putc(&b, 'x') == ERR_TOO_LARGE, "one past the limit");
    CHECK(b.len == 10 && strcmp(buf_cstr(&b), "0123456789") == 0, "nothing appended");
    CHECK(buf_printf(&b, "%d", 1) == ERR_TOO_LARGE, "printf past the limit");
    CHECK(b.len == 10 && strcmp(buf_cstr(&b), "0123456789") == 0, "printf appended nothing");
    buf_reset(&b);
    CHECK(buf_append(&b, "abcde", 5) == 0, "half");
    CHECK(buf_append(&b, "0123456789", 6) == ERR_TOO_LARGE, "11 bytes in all");
    CHECK(b.len == 5 && strcmp(buf_cstr(&b), "abcde") == 0, "partial append refused whole");
    char big[300];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CHECK(buf_printf(&b, "%s", big) == ERR_TOO_LARGE, "long printf past the limit");
    CHECK(b.len == 5 && strcmp(buf_cstr(&b), "abcde") == 0, "long printf appended nothing");
    CHECK(buf_append(&b, "x", SIZE_MAX) == ERR_TOO_LARGE, "SIZE_MAX does not wrap");
    CHECK(buf_append(&b, "x", SIZE_MAX - 2) == ERR_TOO_LARGE, "SIZE_MAX - 2 does not wrap");
    CHECK(b.len == 5, "len %zu", b.len);
    buf_fini(&b);
    return 0;
}

static int test_buf_take(void)
{
    struct buf b;
    buf_init(&b, 0);
    size_t len = 99;
    char *p = buf_take(&b, &len);
    CHECK(p != NULL && strcmp(p, "") == 0 && len == 0, "take of an empty buffer");
    free(p);
    CHECK(buf_puts(&b, "hello") == 0, "puts");
    p = buf_take(&b, &len);
    CHECK(strcmp(p, "hello") == 0 && len == 5, "take: %s %zu", p, len);
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0, "left empty");
    CHECK(strcmp(buf_cstr(&b), "") == 0, "cstr after take");
    free(p);
    CHECK(buf_puts(&b, "again") == 0, "reuse after take");
    p = buf_take(&b, NULL);
    CHECK(strcmp(p, "again") == 0, "take without len");
    free(p);
    buf_fini(&b);
    return 0;
}

static int read_all(const char *path, char *out, size_t cap, size_t *n)
{
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "open %s: %s", path, strerror(errno));
    *n = fread(out, 1, cap, f);
    fclose(f);
    return 0;
}

static int test_buf_write_file(void)
{
    char dir[] = "/tmp/crux-test-util-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
    char path[128];
    snprintf(path, sizeof(path), "%s/out.txt", dir);
    struct buf b;
    buf_init(&b, 0);
    CHECK(buf_append(&b, "line1\n\0bin", 10) == 0, "append");
    struct errbuf eb = {{0}};
    CHECK(buf_write_file(&b, path, &eb) == 0, "write: %s", eb.msg);
    char got[64];
    size_t n = 0;
    CHECK(read_all(path, got, sizeof(got), &n) == 0, "read back");
    CHECK(n == 10 && memcmp(got, "line1\n\0bin", 10) == 0, "contents (%zu bytes)", n);
    /* An empty buffer truncates the file. */
    buf_reset(&b);
    CHECK(buf_write_file(&b, path, &eb) == 0, "write empty: %s", eb.msg);
    CHECK(read_all(path, got, sizeof(got), &n) == 0 && n == 0, "empty file, %zu bytes", n);
    buf_fini(&b);
    CHECK(buf_write_file(&b, path, &eb) == 0, "write a never-used buffer: %s", eb.msg);
    /* A directory that does not exist: ERR_IO with the path in the message. */
    char bad[160];
    snprintf(bad, sizeof(bad), "%s/missing/out.txt", dir);
    CHECK(buf_write_file(&b, bad, &eb) == ERR_IO, "missing directory");
    CHECK(strstr(eb.msg, bad) != NULL, "message names the path: %s", eb.msg);
    CHECK(buf_write_file(&b, bad, NULL) == ERR_IO, "NULL errbuf");
    CHECK(unlink(path) == 0 && rmdir(dir) == 0, "cleanup: %s", strerror(errno));
    return 0;
}

/* A deterministic sequence of distinct non-zero keys (an odd-multiplier bijection). */
static uint64_t key_of(uint64_t i)
{
    return (i + 1) * 0x9e3779b97f4a7c15ULL;
}

static int test_hmap_basic(void)
{
    struct hmap m;
    hmap_init(&m);
    uint64_t v = 7;
    CHECK(!hmap_get(&m, 1, &v) && v == 7, "get on an empty map");
    hmap_put(&m, 1, 100);
    hmap_put(&m, UINT64_MAX, 200);
    CHECK(hmap_get(&m, 1, &v) && v == 100, "get 1: %llu", (unsigned long long)v);
    CHECK(hmap_get(&m, UINT64_MAX, &v) && v == 200, "get max");
    CHECK(hmap_get(&m, 1, NULL), "get with NULL value");
    CHECK(!hmap_get(&m, 2, &v), "absent key");
    hmap_put(&m, 1, 101);
    CHECK(hmap_get(&m, 1, &v) && v == 101 && m.len == 2, "replace keeps len %zu", m.len);
    bool ins = false;
    uint64_t *s = hmap_slot(&m, 3, 55, &ins);
    CHECK(ins && *s == 55, "slot inserts the default");
    *s += 1;
    s = hmap_slot(&m, 3, 0, &ins);
    CHECK(!ins && *s == 56, "slot finds the value");
    s = hmap_slot(&m, 3, 0, NULL);
    CHECK(*s == 56 && m.len == 3, "slot with NULL inserted");
    hmap_fini(&m);
    CHECK(m.keys == NULL && m.cap == 0 && m.len == 0, "fini");
    CHECK(!hmap_get(&m, 1, &v), "get after fini");
    return 0;
}

static int test_hmap_growth(void)
{
    enum { N = 100000 };
    struct hmap m;
    hmap_init(&m);
    uint64_t *ref = xmalloc(N * sizeof(*ref));
    for (uint64_t i = 0; i < N; i++) {
        ref[i] = i * 31 + 5;
        hmap_put(&m, key_of(i), ref[i]);
        CHECK(m.len == i + 1, "len %zu after %llu puts", m.len, (unsigned long long)i + 1);
        CHECK(m.len * 4 < m.cap * 3 + 4, "load factor: len %zu cap %zu", m.len, m.cap);
    }
    CHECK((m.cap & (m.cap - 1)) == 0, "cap %zu is a power of two", m.cap);
    /* Every second key replaced, through slot. */
    for (uint64_t i = 0; i < N; i += 2) {
        bool ins = true;
        uint64_t *s = hmap_slot(&m, key_of(i), 0, &ins);
        CHECK(!ins, "key %llu present", (unsigned long long)i);
        ref[i] ^= 0xffff;
        *s = ref[i];
    }
    for (uint64_t i = 0; i < N; i++) {
        uint64_t v = 0;
        CHECK(hmap_get(&m, key_of(i), &v), "key %llu lost", (unsigned long long)i);
        CHECK(v == ref[i], "key %llu: %llu, want %llu", (unsigned long long)i,
              (unsigned long long)v, (unsigned long long)ref[i]);
    }
    for (uint64_t i = N; i < N + 1000; i++)
        CHECK(!hmap_get(&m, key_of(i), NULL), "key %llu never put", (unsigned long long)i);
    /* Sequential keys (a poor hash would cluster them). */
    struct hmap s;
    hmap_init(&s);
    for (uint64_t k = 1; k <= N; k++)
        hmap_put(&s, k, k * 2);
    for (uint64_t k = 1; k <= N; k++) {
        uint64_t v = 0;
        CHECK(hmap_get(&s, k, &v) && v == k * 2, "sequential key %llu", (unsigned long long)k);
    }
    CHECK(s.len == N, "len %zu", s.len);
    hmap_fini(&s);
    free(ref);
    hmap_fini(&m);
    return 0;
}

static int test_hmap_clear(void)
{
    struct hmap m;
    hmap_init(&m);
    hmap_clear(&m); /* on a map that never allocated */
    for (uint64_t i = 0; i < 1000; i++)
        hmap_put(&m, key_of(i), i);
    size_t cap = m.cap;
    hmap_clear(&m);
    CHECK(m.len == 0 && m.cap == cap, "clear keeps the memory: len %zu cap %zu", m.len, m.cap);
    for (uint64_t i = 0; i < 1000; i++)
        CHECK(!hmap_get(&m, key_of(i), NULL), "key %llu after clear", (unsigned long long)i);
    bool ins = false;
    uint64_t *s = hmap_slot(&m, key_of(5), 9, &ins);
    CHECK(ins && *s == 9, "re-insert after clear gets the default, not the old value");
    hmap_put(&m, key_of(6), 10);
    uint64_t v = 0;
    CHECK(hmap_get(&m, key_of(6), &v) && v == 10 && m.len == 2, "usable after clear");
    hmap_fini(&m);
    return 0;
}

static int test_hmap_hashes(void)
{
    CHECK(hmap_hash64(1) != hmap_hash64(2), "hash64 distinguishes");
    CHECK(hmap_hash64(0) == 0, "splitmix finalizer maps 0 to 0");
    CHECK(hmap_hash_bytes("", 0) != 0, "bytes hash of nothing is not 0");
    CHECK(hmap_hash_bytes("a", 1) != hmap_hash_bytes("b", 1), "bytes differ");
    CHECK(hmap_hash_bytes("a\0b", 3) != hmap_hash_bytes("a\0c", 3), "past a NUL");
    CHECK(hmap_hash_bytes("ab", 1) == hmap_hash_bytes("ac", 1), "only n bytes count");
    CHECK(hmap_hash_bytes("\0", 1) != hmap_hash_bytes("", 0), "length counts");
    for (uint32_t i = 0; i < 100000; i++)
        CHECK(hmap_hash_bytes(&i, sizeof(i)) != 0, "hash of %u is 0", i);
    return 0;
}

static int test_err_str(void)
{
    static const struct {
        int rc;
        const char *text;
        bool fatal;
    } codes[] = {
        {ERR_OK, "success", false},
        {ERR_NOMEM, "out of memory", true},
        {ERR_PROC_GONE, "process no longer exists", true},
        {ERR_PERM, "permission denied", true},
        {ERR_READ, "memory not readable", false},
        {ERR_NOT_PYTHON, "not a Python process", true},
        {ERR_VERSION, "unsupported Python version", true},
        {ERR_CORRUPT, "inconsistent data", false},
        {ERR_TOO_LARGE, "size limit reached", false},
        {ERR_IO, "input/output error", false},
        {ERR_ARG, "invalid argument", false},
        {ERR_NOT_FOUND, "not found", false},
        {ERR_SYS, "system call failed", false},
        {ERR_AGAIN, "changed while read", false},
    };
    size_t n = sizeof(codes) / sizeof(codes[0]);
    for (size_t i = 0; i < n; i++) {
        CHECK(codes[i].rc == -(int)i, "codes are 0, -1, -2, ...: %d", codes[i].rc);
        CHECK(strcmp(err_str(codes[i].rc), codes[i].text) == 0, "err_str(%d) = %s", codes[i].rc,
              err_str(codes[i].rc));
        CHECK(err_is_fatal(codes[i].rc) == codes[i].fatal, "err_is_fatal(%d)", codes[i].rc);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(err_str(codes[i].rc), err_str(codes[j].rc)) != 0, "%zu vs %zu", i, j);
    }
    CHECK(strcmp(err_str(-14), "unknown error") == 0, "-14");
    CHECK(strcmp(err_str(1), "unknown error") == 0, "positive");
    CHECK(!err_is_fatal(-14) && !err_is_fatal(1), "unknown codes are not fatal");
    return 0;
}

static int test_err_from_errno(void)
{
    CHECK(err_from_errno(0) == ERR_OK, "0");
    CHECK(err_from_errno(ESRCH) == ERR_PROC_GONE, "ESRCH");
    CHECK(err_from_errno(EPERM) == ERR_PERM, "EPERM");
    CHECK(err_from_errno(EACCES) == ERR_PERM, "EACCES");
    CHECK(err_from_errno(EFAULT) == ERR_READ, "EFAULT");
    CHECK(err_from_errno(EIO) == ERR_READ, "EIO");
    CHECK(err_from_errno(ENOMEM) == ERR_NOMEM, "ENOMEM");
    CHECK(err_from_errno(ENOENT) == ERR_NOT_FOUND, "ENOENT");
    CHECK(err_from_errno(EINVAL) == ERR_SYS, "EINVAL");
    CHECK(err_from_errno(EBADF) == ERR_SYS, "EBADF");
    CHECK(err_from_errno(-1) == ERR_SYS, "-1");
    return 0;
}

static int test_errbuf_set(void)
{
    struct errbuf eb = {{0}};
    CHECK(errbuf_set(&eb, ERR_READ, "at 0x%x: %s", 0x10u, "gone") == ERR_READ, "returns rc");
    CHECK(strcmp(eb.msg, "at 0x10: gone") == 0, "message: %s", eb.msg);
    CHECK(errbuf_set(NULL, ERR_PERM, "ignored %d", 1) == ERR_PERM, "NULL errbuf returns rc");
    CHECK(errbuf_set(&eb, 0, "%s", "") == 0 && eb.msg[0] == '\0', "empty message");
    /* A long message is cut, NUL-terminated, at ERRBUF_LEN - 1. */
    char big[ERRBUF_LEN * 2];
    memset(big, 'm', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CHECK(errbuf_set(&eb, ERR_IO, "%s", big) == ERR_IO, "long");
    CHECK(strlen(eb.msg) == ERRBUF_LEN - 1, "cut to %zu", strlen(eb.msg));
    return 0;
}

static int test_xstrndup(void)
{
    char *p = xstrndup("hello world", 5);
    CHECK(strcmp(p, "hello") == 0, "prefix: %s", p);
    free(p);
    p = xstrndup("abc", 0);
    CHECK(p[0] == '\0', "zero bytes");
    free(p);
    /* Copies exactly n bytes, NUL bytes included, then terminates. */
    p = xstrndup("a\0b", 3);
    CHECK(p[0] == 'a' && p[1] == '\0' && p[2] == 'b' && p[3] == '\0', "embedded NUL");
    free(p);
    p = xstrdup("copy");
    CHECK(strcmp(p, "copy") == 0, "xstrdup");
    free(p);
    void *q = xmalloc(0);
    CHECK(q != NULL, "xmalloc(0) is not NULL");
    q = xrealloc(q, 0);
    CHECK(q != NULL, "xrealloc(p, 0) is not NULL");
    free(q);
    uint32_t *z = xcalloc(16, sizeof(*z));
    for (int i = 0; i < 16; i++)
        CHECK(z[i] == 0, "xcalloc zeroes");
    free(z);
    q = xcalloc(0, 0);
    CHECK(q != NULL, "xcalloc(0, 0) is not NULL");
    free(q);
    return 0;
}

static int test_raw_span_holds(void)
{
    const uint64_t base = 0x7f0000001000;
    CHECK(raw_span_holds(base, 4096, base, 8), "the first field");
    CHECK(raw_span_holds(base, 4096, base + 4088, 8), "the last field");
    CHECK(!raw_span_holds(base, 4096, base + 4089, 8), "a field running past the end");
    CHECK(!raw_span_holds(base, 4096, base - 8, 8), "a field before the start");
    CHECK(!raw_span_holds(base, 4, base, 8), "a field longer than the copy");
    /* A torn pointer near the top of the address space: addr + len wraps to a small
     * number, which a sum-based check finds inside the copy (a wild read in CI). */
    CHECK(!raw_span_holds(base, 4096, UINT64_MAX - 7, 72), "a wrapping address");
    CHECK(!raw_span_holds(base, 4096, 0xfffffffffffffff8u, 8), "the last aligned address");
    return 0;
}

static int test_text_scrub(void)
{
    char s[] = "ok\x1b[31mred\n\x7f\xc2\x9b"
               "1m\xc2\xa0\xc3\xa9";
    text_scrub(s, strlen(s));
    CHECK(strcmp(s, "ok?[31mred????1m\xc2\xa0\xc3\xa9") == 0, "scrubbed: %s", s);
    char t[] = "\xc2";
    text_scrub(t, 1);
    CHECK(strcmp(t, "\xc2") == 0, "a lone lead byte at the end stays");
    return 0;
}

/* gzip output inflates back to the input, starts with the gzip magic, and is the same for the
 * same input (mtime 0). */
static int test_gzip_roundtrip(void)
{
    struct buf in, gz, gz2;
    buf_init(&in, 0);
    buf_init(&gz, 0);
    buf_init(&gz2, 0);
    for (int i = 0; i < 200000; i++)
        CHECK(buf_printf(&in, "%d,", i % 977) == 0, "input");
    CHECK(gzip_compress(in.data, in.len, GZIP_LEVEL_DEFAULT, &gz) == 0, "compress");
    CHECK(gz.len > 10 && gz.len < in.len / 2, "compressed %zu of %zu", gz.len, in.len);
    CHECK((unsigned char)gz.data[0] == 0x1f && (unsigned char)gz.data[1] == 0x8b, "magic");
    CHECK(gzip_compress(in.data, in.len, GZIP_LEVEL_DEFAULT, &gz2) == 0, "again");
    CHECK(gz.len == gz2.len && memcmp(gz.data, gz2.data, gz.len) == 0, "deterministic");
    unsigned char *back = xmalloc(in.len + 1);
    z_stream zs = {0};
    CHECK(inflateInit2(&zs, 15 + 16) == Z_OK, "inflate init");
    zs.next_in = (unsigned char *)gz.data;
    zs.avail_in = (unsigned)gz.len;
    zs.next_out = back;
    zs.avail_out = (unsigned)in.len + 1;
    int zrc = inflate(&zs, Z_FINISH);
    size_t got = in.len + 1 - zs.avail_out;
    inflateEnd(&zs);
    CHECK(zrc == Z_STREAM_END && got == in.len && memcmp(back, in.data, in.len) == 0, "round");
    free(back);
    buf_reset(&gz);
    CHECK(gzip_compress("", 0, 1, &gz) == 0 && gz.len == 20, "empty input: %zu bytes", gz.len);
    CHECK(gzip_compress("x", 1, 0, &gz) == ERR_ARG && gzip_compress("x", 1, 10, &gz) == ERR_ARG,
          "bad level");
    buf_fini(&gz2);
    buf_init(&gz2, 16);
    CHECK(gzip_compress(in.data, in.len, 1, &gz2) == ERR_TOO_LARGE, "cap");
    buf_fini(&in);
    buf_fini(&gz);
    buf_fini(&gz2);
    return 0;
}

int main(void)
{
    RUN(test_buf_append);
    RUN(test_buf_printf_growth);
    RUN(test_buf_limit);
    RUN(test_buf_take);
    RUN(test_buf_write_file);
    RUN(test_hmap_basic);
    RUN(test_hmap_growth);
    RUN(test_hmap_clear);
    RUN(test_hmap_hashes);
    RUN(test_err_str);
    RUN(test_err_from_errno);
    RUN(test_errbuf_set);
    RUN(test_xstrndup);
    RUN(test_raw_span_holds);
    RUN(test_text_scrub);
    RUN(test_gzip_roundtrip);
    return TEST_SUMMARY("util");
}
