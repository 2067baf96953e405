// SPDX-License-Identifier: MIT
// Unit tests of the pstats export: marshal encoding against CPython's own marshal.dumps(v, 2),
// and the statistics of a small profile, byte for byte.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "export/export.h"
#include "export/marshal.h"
#include "export/pstats.h"
#include "profile/profile.h"
#include "util/buf.h"

/* Whether `b` holds exactly the `n` bytes at `want`; prints both in hex when not. */
static int same_bytes(const struct buf *b, const char *want, size_t n)
{
    if (b->len == n && memcmp(b->data, want, n) == 0)
        return 1;
    fprintf(stderr, "got  %zu bytes:", b->len);
    for (size_t i = 0; i < b->len; i++)
        fprintf(stderr, " %02x", (unsigned char)b->data[i]);
    fprintf(stderr, "\nwant %zu bytes:", n);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %02x", (unsigned char)want[i]);
    fputc('\n', stderr);
    return 0;
}

#define SAME(b, lit) same_bytes((b), (lit), sizeof(lit) - 1)

/* Each expected value is what CPython 3.11's marshal.dumps(v, 2) returns. */
static int test_marshal_ints(void)
{
    struct buf b;
    buf_init(&b, 0);
    static const struct {
        int64_t v;
        const char *want;
        size_t n;
    } cases[] = {
        {0, "i\x00\x00\x00\x00", 5},
        {1, "i\x01\x00\x00\x00", 5},
        {-1, "i\xff\xff\xff\xff", 5},
        {2147483647, "i\xff\xff\xff\x7f", 5},
        {-2147483647 - 1, "i\x00\x00\x00\x80", 5},
        /* past int32: TYPE_LONG, 15-bit digits, least significant first */
        {2147483648, "l\x03\x00\x00\x00\x00\x00\x00\x00\x02\x00", 11},
        {1099511627781, "l\x03\x00\x00\x00\x05\x00\x00\x00\x00\x04", 11},
        {-35184372088832, "l\xfc\xff\xff\xff\x00\x00\x00\x00\x00\x00\x01\x00", 13},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_reset(&b);
        CHECK(marshal_int(&b, cases[i].v) == 0, "int %lld", (long long)cases[i].v);
        CHECK(same_bytes(&b, cases[i].want, cases[i].n), "int %lld", (long long)cases[i].v);
    }
    buf_fini(&b);
    return 0;
}

static int test_marshal_other(void)
{
    struct buf b;
    buf_init(&b, 0);
    CHECK(marshal_float(&b, 1.5) == 0 && SAME(&b, "g\x00\x00\x00\x00\x00\x00\xf8\x3f"), "1.5");
    buf_reset(&b);
    CHECK(marshal_float(&b, 0.03) == 0 && SAME(&b, "g\xb8\x1e\x85\xeb\x51\xb8\x9e\x3f"), "0.03");
    buf_reset(&b);
    CHECK(marshal_str(&b, "", 0) == 0 && SAME(&b, "u\x00\x00\x00\x00"), "empty str");
    buf_reset(&b);
    CHECK(marshal_str(&b, "\xc3\xa9", 2) == 0 && SAME(&b, "u\x02\x00\x00\x00\xc3\xa9"), "e acute");
    /* an invalid byte becomes U+FFFD: marshal.loads would refuse it */
    buf_reset(&b);
    CHECK(marshal_str(&b, "a\xff", 2) == 0 && SAME(&b, "u\x04\x00\x00\x00"
                                                       "a\xef\xbf\xbd"),
          "invalid UTF-8");
    buf_reset(&b);
    CHECK(marshal_str(&b, "\xed\xa0\x80", 3) == 0 &&
              SAME(&b, "u\x09\x00\x00\x00\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"),
          "an encoded surrogate: three bytes replaced");
    buf_reset(&b);
    CHECK(marshal_tuple(&b, 1) == 0 && marshal_int(&b, 1) == 0 &&
              SAME(&b, "(\x01\x00\x00\x00i\x01\x00\x00\x00"),
          "(1,)");
    buf_reset(&b);
    CHECK(marshal_dict(&b) == 0 && marshal_dict_end(&b) == 0 && SAME(&b, "{0"), "{}");
    buf_fini(&b);
    buf_init(&b, 3);
    CHECK(marshal_int(&b, 7) == ERR_TOO_LARGE, "cap");
    buf_fini(&b);
    return 0;
}

static uint32_t str(struct profile *p, const char *s)
{
    return profile_str(p, s, strlen(s));
}

static void add(struct profile *p, const uint32_t *frames, size_t n, uint16_t count)
{
    uint32_t s = profile_stack(p, frames, n);
    profile_add(p, &(struct psample){.stack = s, .weight = count, .state = TSTATE_RUNNING});
}

/* main calls f (seen at lines 12 and 10, once recursively), f calls memcpy; a second thread
 * is idle. The expected file is CPython's marshal.dumps(d, 2) of
 *   iv = 1/100
 *   d = {('a.py', 5, 'main'): (7, 7, 1*iv, 7*iv, {}),
 *        ('a.py', 10, 'f'): (6, 6, 4*iv, 6*iv, {('a.py', 5, 'main'): (6, 6, 3*iv, 6*iv),
 *                                               ('a.py', 10, 'f'): (1, 1, 1*iv, 1*iv)}),
 *        ('~', 0, '<memcpy>'): (2, 2, 2*iv, 2*iv, {('a.py', 10, 'f'): (2, 2, 2*iv, 2*iv)}),
 *        ('~', 0, '[idle]'): (2, 2, 2*iv, 2*iv, {})} */
static int test_pstats_exact(void)
{
    struct profile p;
    profile_init(&p);
    p.meta.rate_hz = 100;
    uint32_t t1 = profile_frame(&p, str(&p, "thread"), 0, 11, FRAME_THREAD);
    uint32_t t2 = profile_frame(&p, str(&p, "thread"), 0, 12, FRAME_THREAD);
    uint32_t main5 = profile_frame(&p, str(&p, "main"), str(&p, "a.py"), 5, FRAME_PYTHON);
    uint32_t f12 = profile_frame(&p, str(&p, "f"), str(&p, "a.py"), 12, FRAME_PYTHON);
    uint32_t f10 = profile_frame(&p, str(&p, "f"), str(&p, "a.py"), 10, FRAME_PYTHON);
    uint32_t mc = profile_frame(&p, str(&p, "memcpy"), str(&p, "libc.so.6"), 0, FRAME_NATIVE);
    uint32_t idle = profile_frame(&p, str(&p, "[idle]"), 0, 0, FRAME_MARKER);
    add(&p, (uint32_t[]){t1, main5, f12}, 3, 3);
    add(&p, (uint32_t[]){t1, main5, f10, mc}, 4, 2);
    add(&p, (uint32_t[]){t1, main5}, 2, 1);
    add(&p, (uint32_t[]){t1, main5, f12, f10}, 4, 1);
    add(&p, (uint32_t[]){t2, idle}, 2, 2);
    (void)profile_stack(&p, (uint32_t[]){t2, f12}, 2); /* interned, never counted */
    struct buf out;
    buf_init(&out, 0);
    CHECK(export_write(&p, EXPORT_PSTATS, NULL, &out, NULL) == 0, "write");
    static const char want[] =
        "\x7b\x28\x03\x00\x00\x00\x75\x04\x00\x00\x00\x61\x2e\x70\x79\x69\x05\x00\x00\x00\x75\x04"
        "\x00\x00\x00\x6d\x61\x69\x6e\x28\x05\x00\x00\x00\x69\x07\x00\x00\x00\x69\x07\x00\x00\x00"
        "\x67\x7b\x14\xae\x47\xe1\x7a\x84\x3f\x67\xec\x51\xb8\x1e\x85\xeb\xb1\x3f\x7b\x30\x28\x03"
        "\x00\x00\x00\x75\x04\x00\x00\x00\x61\x2e\x70\x79\x69\x0a\x00\x00\x00\x75\x01\x00\x00\x00"
        "\x66\x28\x05\x00\x00\x00\x69\x06\x00\x00\x00\x69\x06\x00\x00\x00\x67\x7b\x14\xae\x47\xe1"
        "\x7a\xa4\x3f\x67\xb8\x1e\x85\xeb\x51\xb8\xae\x3f\x7b\x28\x03\x00\x00\x00\x75\x04\x00\x00"
        "\x00\x61\x2e\x70\x79\x69\x05\x00\x00\x00\x75\x04\x00\x00\x00\x6d\x61\x69\x6e\x28\x04\x00"
        "\x00\x00\x69\x06\x00\x00\x00\x69\x06\x00\x00\x00\x67\xb8\x1e\x85\xeb\x51\xb8\x9e\x3f\x67"
        "\xb8\x1e\x85\xeb\x51\xb8\xae\x3f\x28\x03\x00\x00\x00\x75\x04\x00\x00\x00\x61\x2e\x70\x79"
        "\x69\x0a\x00\x00\x00\x75\x01\x00\x00\x00\x66\x28\x04\x00\x00\x00\x69\x01\x00\x00\x00\x69"
        "\x01\x00\x00\x00\x67\x7b\x14\xae\x47\xe1\x7a\x84\x3f\x67\x7b\x14\xae\x47\xe1\x7a\x84\x3f"
        "\x30\x28\x03\x00\x00\x00\x75\x01\x00\x00\x00\x7e\x69\x00\x00\x00\x00\x75\x08\x00\x00\x00"
        "\x3c\x6d\x65\x6d\x63\x70\x79\x3e\x28\x05\x00\x00\x00\x69\x02\x00\x00\x00\x69\x02\x00\x00"
        "\x00\x67\x7b\x14\xae\x47\xe1\x7a\x94\x3f\x67\x7b\x14\xae\x47\xe1\x7a\x94\x3f\x7b\x28\x03"
        "\x00\x00\x00\x75\x04\x00\x00\x00\x61\x2e\x70\x79\x69\x0a\x00\x00\x00\x75\x01\x00\x00\x00"
        "\x66\x28\x04\x00\x00\x00\x69\x02\x00\x00\x00\x69\x02\x00\x00\x00\x67\x7b\x14\xae\x47\xe1"
        "\x7a\x94\x3f\x67\x7b\x14\xae\x47\xe1\x7a\x94\x3f\x30\x28\x03\x00\x00\x00\x75\x01\x00\x00"
        "\x00\x7e\x69\x00\x00\x00\x00\x75\x06\x00\x00\x00\x5b\x69\x64\x6c\x65\x5d\x28\x05\x00\x00"
        "\x00\x69\x02\x00\x00\x00\x69\x02\x00\x00\x00\x67\x7b\x14\xae\x47\xe1\x7a\x94\x3f\x67\x7b"
        "\x14\xae\x47\xe1\x7a\x94\x3f\x7b\x30\x30";
    CHECK(same_bytes(&out, want, sizeof(want) - 1), "pstats bytes");
    buf_fini(&out);
    buf_init(&out, 100);
    CHECK(pstats_write(&p, &out) == ERR_TOO_LARGE, "cap");
    buf_fini(&out);
    profile_fini(&p);
    return 0;
}

/* No samples: an empty dict, which pstats loads (and then has nothing to print). */
static int test_pstats_empty(void)
{
    struct profile p;
    profile_init(&p);
    struct buf out;
    buf_init(&out, 0);
    CHECK(pstats_write(&p, &out) == 0 && SAME(&out, "{0"), "empty profile");
    buf_fini(&out);
    profile_fini(&p);
    return 0;
}

int main(void)
{
    RUN(test_marshal_ints);
    RUN(test_marshal_other);
    RUN(test_pstats_exact);
    RUN(test_pstats_empty);
    return TEST_SUMMARY("pstats");
}
