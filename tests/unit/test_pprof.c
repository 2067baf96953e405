// SPDX-License-Identifier: MIT
// Unit tests of the protobuf encoder (exact bytes, from the protobuf encoding guide) and of the
// pprof export, read back with a small profile.proto decoder after gunzip.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "check.h"
#include "export/export.h"
#include "export/pprof.h"
#include "export/protobuf.h"
#include "profile/profile.h"
#include "util/buf.h"

/* Whether `b` holds exactly the `n` bytes at `want`; prints both in hex when not. */
static int same_bytes(const struct buf *b, const char *want, size_t n)
{
    if (b->len == n && (n == 0 || memcmp(b->data, want, n) == 0))
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

static int test_varints(void)
{
    static const struct {
        uint64_t v;
        const char *want;
        size_t n;
    } cases[] = {
        {0, "\x00", 1},
        {1, "\x01", 1},
        {127, "\x7f", 1},
        {128, "\x80\x01", 2},
        {150, "\x96\x01", 2}, /* the guide's example */
        {300, "\xac\x02", 2},
        {16384, "\x80\x80\x01", 3},
        {UINT64_MAX, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10},
    };
    struct buf b;
    buf_init(&b, 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_reset(&b);
        CHECK(pb_varint(&b, cases[i].v) == 0, "varint %llu", (unsigned long long)cases[i].v);
        CHECK(same_bytes(&b, cases[i].want, cases[i].n), "varint %llu",
              (unsigned long long)cases[i].v);
        CHECK(pb_varint_size(cases[i].v) == cases[i].n, "size of %llu",
              (unsigned long long)cases[i].v);
    }
    buf_fini(&b);
    return 0;
}

static int test_fields(void)
{
    struct buf b;
    buf_init(&b, 0);
    CHECK(pb_uint(&b, 1, 150) == 0 && SAME(&b, "\x08\x96\x01"), "uint field 1 = 150");
    buf_reset(&b);
    CHECK(pb_uint(&b, 1, 0) == 0 && pb_int(&b, 2, 0) == 0 && pb_bool(&b, 3, false) == 0 &&
              b.len == 0,
          "proto3 defaults are not written");
    CHECK(pb_int(&b, 2, -1) == 0 && SAME(&b, "\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
          "int64 -1 takes ten bytes");
    buf_reset(&b);
    CHECK(pb_bool(&b, 3, true) == 0 && SAME(&b, "\x18\x01"), "bool");
    buf_reset(&b);
    CHECK(pb_tag(&b, 16, PB_VARINT) == 0 && SAME(&b, "\x80\x01"), "field 16: two-byte tag");
    buf_reset(&b);
    CHECK(pb_bytes(&b, 2, "testing", 7) == 0 && SAME(&b, "\x12\x07testing"), "string");
    buf_reset(&b);
    CHECK(pb_bytes(&b, 6, "", 0) == 0 && SAME(&b, "\x32\x00"), "empty string is written");
    buf_reset(&b);
    uint64_t v[] = {3, 270, 86942};
    CHECK(pb_packed(&b, 4, v, 3) == 0 && SAME(&b, "\x22\x06\x03\x8e\x02\x9e\xa7\x05"), "packed");
    buf_reset(&b);
    CHECK(pb_packed(&b, 4, v, 0) == 0 && b.len == 0, "empty packed field is not written");
    struct buf inner;
    buf_init(&inner, 0);
    CHECK(pb_uint(&inner, 1, 150) == 0, "inner");
    CHECK(pb_message(&b, 3, &inner) == 0 && SAME(&b, "\x1a\x03\x08\x96\x01"), "nested message");
    buf_fini(&inner);
    buf_fini(&b);
    buf_init(&b, 2);
    CHECK(pb_uint(&b, 1, 150) == ERR_TOO_LARGE, "cap");
    CHECK(pb_bytes(&b, 1, "abc", 3) == ERR_TOO_LARGE, "cap");
    buf_fini(&b);
    return 0;
}

/* -- a profile.proto reader for the tests --------------------------------------------------- */

struct field {
    uint32_t num;
    uint32_t wire;
    uint64_t v;             /* varint value */
    const unsigned char *p; /* length-delimited payload */
    size_t n;
};

static int read_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        unsigned char c = *(*p)++;
        *v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return 0;
    }
    return -1;
}

/* The next field of [*p, end): 1, 0 at the end, -1 on malformed input. */
static int next_field(const unsigned char **p, const unsigned char *end, struct field *f)
{
    if (*p >= end)
        return 0;
    uint64_t tag;
    if (read_varint(p, end, &tag))
        return -1;
    f->num = (uint32_t)(tag >> 3);
    f->wire = (uint32_t)(tag & 7);
    if (f->wire == PB_VARINT)
        return read_varint(p, end, &f->v) ? -1 : 1;
    if (f->wire != PB_LEN || read_varint(p, end, &f->v) || f->v > (uint64_t)(end - *p))
        return -1;
    f->p = *p;
    f->n = (size_t)f->v;
    *p += f->n;
    return 1;
}

#define MAXN 64

/* The parts of a Profile the tests look at, each a span of the decoded (gunzipped) message. */
struct decoded {
    struct field strings[256];
    size_t nstrings;
    struct field samples[MAXN], locations[MAXN], functions[MAXN], mappings[MAXN];
    size_t nsamples, nlocations, nfunctions, nmappings, nsample_types;
    uint64_t time_nanos, duration_nanos, period, default_type, comment;
    struct field period_type;
};

static int decode(const struct buf *raw, struct decoded *d)
{
    memset(d, 0, sizeof(*d));
    const unsigned char *p = (const unsigned char *)raw->data;
    const unsigned char *end = p + raw->len;
    struct field f;
    int r;
    while ((r = next_field(&p, end, &f)) == 1) {
        switch (f.num) {
        case 1:
            d->nsample_types++;
            break;
        case 2:
            if (d->nsamples < MAXN)
                d->samples[d->nsamples++] = f;
            break;
        case 3:
            if (d->nmappings < MAXN)
                d->mappings[d->nmappings++] = f;
            break;
        case 4:
            if (d->nlocations < MAXN)
                d->locations[d->nlocations++] = f;
            break;
        case 5:
            if (d->nfunctions < MAXN)
                d->functions[d->nfunctions++] = f;
            break;
        case 6:
            if (d->nstrings < 256)
                d->strings[d->nstrings++] = f;
            break;
        case 9:
            d->time_nanos = f.v;
            break;
        case 10:
            d->duration_nanos = f.v;
            break;
        case 11:
            d->period_type = f;
            break;
        case 12:
            d->period = f.v;
            break;
        case 13:
            d->comment = f.v;
            break;
        case 14:
            d->default_type = f.v;
            break;
        default:
            return -1;
        }
    }
    return r;
}

/* Whether string `i` of the table is `s`. */
static int str_is(const struct decoded *d, uint64_t i, const char *s)
{
    return i < d->nstrings && d->strings[i].n == strlen(s) &&
           memcmp(d->strings[i].p, s, d->strings[i].n) == 0;
}

/* Varint field `num` of message `m` (0 when absent). */
static uint64_t msg_uint(const struct field *m, uint32_t num)
{
    const unsigned char *p = m->p;
    struct field f;
    uint64_t v = 0;
    while (next_field(&p, m->p + m->n, &f) == 1)
        if (f.num == num && f.wire == PB_VARINT)
            v = f.v;
    return v;
}

/* The first length-delimited field `num` of `m`; 0 when there is none. */
static int msg_sub(const struct field *m, uint32_t num, struct field *out)
{
    const unsigned char *p = m->p;
    while (next_field(&p, m->p + m->n, out) == 1)
        if (out->num == num && out->wire == PB_LEN)
            return 1;
    return 0;
}

/* The packed varints of field `num` of `m` into v (at most max); returns how many. */
static size_t msg_packed(const struct field *m, uint32_t num, uint64_t *v, size_t max)
{
    struct field f;
    if (!msg_sub(m, num, &f))
        return 0;
    const unsigned char *p = f.p;
    size_t n = 0;
    while (p < f.p + f.n && n < max && read_varint(&p, f.p + f.n, &v[n]) == 0)
        n++;
    return n;
}

/* The message with id `id` among `v` (Location, Function, Mapping: id is field 1). */
static const struct field *by_id(const struct field *v, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (msg_uint(&v[i], 1) == id)
            return &v[i];
    return NULL;
}

/* The name of the function of location `loc` (its one Line), and its line. */
static int loc_function(const struct decoded *d, uint64_t loc, const struct field **fn,
                        int64_t *line)
{
    const struct field *l = by_id(d->locations, d->nlocations, loc);
    struct field ln;
    if (!l || !msg_sub(l, 4, &ln))
        return 0;
    *fn = by_id(d->functions, d->nfunctions, msg_uint(&ln, 1));
    *line = (int64_t)msg_uint(&ln, 2);
    return *fn != NULL;
}

/* Label `key` of sample `s`: its str index or num, and whether it is there. */
static int sample_label(const struct decoded *d, const struct field *s, const char *key,
                        uint64_t *str, uint64_t *num)
{
    const unsigned char *p = s->p;
    struct field f;
    while (next_field(&p, s->p + s->n, &f) == 1) {
        if (f.num != 3 || f.wire != PB_LEN)
            continue;
        if (str_is(d, msg_uint(&f, 1), key)) {
            *str = msg_uint(&f, 2);
            *num = msg_uint(&f, 3);
            return 1;
        }
    }
    return 0;
}

static int gunzip(const struct buf *in, struct buf *out)
{
    z_stream zs = {0};
    if (inflateInit2(&zs, 15 + 16) != Z_OK)
        return -1;
    zs.next_in = (unsigned char *)in->data;
    zs.avail_in = (unsigned)in->len;
    unsigned char chunk[4096];
    int zrc;
    do {
        zs.next_out = chunk;
        zs.avail_out = sizeof(chunk);
        zrc = inflate(&zs, Z_NO_FLUSH);
        if ((zrc != Z_OK && zrc != Z_STREAM_END) ||
            buf_append(out, chunk, sizeof(chunk) - zs.avail_out))
            break;
    } while (zrc != Z_STREAM_END);
    inflateEnd(&zs);
    return zrc == Z_STREAM_END ? 0 : -1;
}

/* -- the export ------------------------------------------------------------------------------ */

static uint32_t str(struct profile *p, const char *s)
{
    return profile_str(p, s, strlen(s));
}

/* Two threads of one process: the main thread runs work() in Python and memcpy in libc, in the
 * stage "tokenize"; the other thread is idle in a marker frame. */
static void build(struct profile *p, bool keep)
{
    profile_init(p);
    p->keep_samples = keep;
    p->meta.rate_hz = 250;
    p->meta.duration_ns = 1500000000ull;
    p->meta.epoch_ns = 1700000000123456789ull;
    p->meta.categories = true;
    profile_set_str(&p->meta.command, "python3 app.py");
    uint32_t proc = profile_frame(p, str(p, "python3 app.py"), 0, 40, FRAME_PROCESS);
    uint32_t t1 = profile_frame(p, str(p, "MainThread"), 0, 41, FRAME_THREAD);
    uint32_t t2 = profile_frame(p, str(p, ""), 0, 42, FRAME_THREAD);
    uint32_t mod = profile_frame(p, str(p, "<module>"), str(p, "app.py"), 9, FRAME_PYTHON);
    uint32_t work = profile_frame(p, str(p, "work\xff"), str(p, "app.py"), 3, FRAME_PYTHON);
    uint32_t mc = profile_frame(p, str(p, "memcpy"), str(p, "libc.so.6"), 0, FRAME_NATIVE);
    uint32_t idle = profile_frame(p, str(p, "[idle]"), 0, 0, FRAME_MARKER);
    uint32_t s1 = profile_stack(p, (uint32_t[]){proc, t1, mod, work}, 4);
    uint32_t s2 = profile_stack(p, (uint32_t[]){proc, t1, mod, work, mc}, 5);
    uint32_t s3 = profile_stack(p, (uint32_t[]){proc, t2, idle}, 3);
    uint32_t tok = str(p, "tokenize");
    struct psample base = {.pid = 40, .tid = 41, .state = TSTATE_RUNNING, .weight = 1};
    for (int i = 0; i < 5; i++) {
        struct psample s = base;
        s.stack = s1;
        s.cat = CAT_PYTHON;
        s.stage = i < 3 ? tok : 0;
        profile_add(p, &s);
    }
    struct psample s = base;
    s.stack = s2;
    s.cat = CAT_NATIVE;
    s.stage = tok;
    s.weight = 2;
    profile_add(p, &s);
    s = (struct psample){
        .stack = s3, .pid = 40, .tid = 42, .state = TSTATE_IDLE, .weight = 4, .cat = CAT_SYSTEM};
    profile_add(p, &s);
}

static int write_decoded(const struct profile *p, struct buf *raw, struct decoded *d)
{
    struct buf gz;
    buf_init(&gz, 0);
    int rc = export_write(p, EXPORT_PPROF, NULL, &gz, NULL);
    if (!rc &&
        (gz.len < 2 || (unsigned char)gz.data[0] != 0x1f || (unsigned char)gz.data[1] != 0x8b))
        rc = -1;
    if (!rc)
        rc = gunzip(&gz, raw);
    buf_fini(&gz);
    return rc ? rc : decode(raw, d);
}

/* The sample whose leaf is function `leaf` and whose label `key` has str `val` (NULL: any). */
static const struct field *find_sample(const struct decoded *d, const char *leaf, const char *key,
                                       const char *val)
{
    for (size_t i = 0; i < d->nsamples; i++) {
        uint64_t locs[16];
        size_t n = msg_packed(&d->samples[i], 1, locs, 16);
        const struct field *fn;
        int64_t line;
        if (!n || !loc_function(d, locs[0], &fn, &line) || !str_is(d, msg_uint(fn, 2), leaf))
            continue;
        uint64_t s = 0, num = 0;
        if (!key || (sample_label(d, &d->samples[i], key, &s, &num) && str_is(d, s, val)))
            return &d->samples[i];
    }
    return NULL;
}

static int test_pprof_samples(void)
{
    struct profile p;
    build(&p, true);
    struct buf raw;
    buf_init(&raw, 0);
    struct decoded *d = malloc(sizeof(*d));
    CHECK(write_decoded(&p, &raw, d) == 0, "gunzip and decode");
    CHECK(d->nstrings > 0 && d->strings[0].n == 0, "string 0 is empty");
    CHECK(d->nsample_types == 3, "samples, wall, cpu: %zu types", d->nsample_types);
    CHECK(d->period == 4000000, "period %llu", (unsigned long long)d->period);
    CHECK(str_is(d, msg_uint(&d->period_type, 1), "wall") &&
              str_is(d, msg_uint(&d->period_type, 2), "nanoseconds"),
          "period type");
    CHECK(str_is(d, d->default_type, "wall"), "default sample type");
    CHECK(d->time_nanos == 1700000000123456789ull && d->duration_nanos == 1500000000ull, "times");
    CHECK(str_is(d, d->comment, "crux: python3 app.py"), "comment");
    /* (stack, thread, stage, category): s1 tokenize, s1 none, s2 tokenize, s3 */
    CHECK(d->nsamples == 4, "%zu samples", d->nsamples);
    uint64_t total = 0, wall = 0;
    for (size_t i = 0; i < d->nsamples; i++) {
        uint64_t v[3];
        CHECK(msg_packed(&d->samples[i], 2, v, 3) == 3, "three values");
        CHECK(v[1] == v[0] * 4000000, "wall = samples x period");
        total += v[0];
        wall += v[1];
    }
    CHECK(total == p.total && total == 5 + 2 + 4, "total %llu", (unsigned long long)total);
    /* leaf first; invalid UTF-8 replaced; the process and thread frames are labels */
    const struct field *s = find_sample(d, "memcpy", NULL, NULL);
    CHECK(s, "memcpy sample");
    uint64_t locs[8], v[3], str_i, num;
    CHECK(msg_packed(s, 1, locs, 8) == 3, "memcpy, work, <module>: no thread or process");
    const struct field *fn;
    int64_t line;
    CHECK(loc_function(d, locs[1], &fn, &line) && str_is(d, msg_uint(fn, 2), "work\xef\xbf\xbd"),
          "work's name, U+FFFD for the invalid byte");
    CHECK(line == 3 && str_is(d, msg_uint(fn, 4), "app.py"), "work's line and file");
    CHECK(loc_function(d, locs[2], &fn, &line) && str_is(d, msg_uint(fn, 2), "<module>"), "root");
    CHECK(msg_packed(s, 2, v, 3) == 3 && v[0] == 2 && v[2] == 2 * 4000000, "memcpy values");
    CHECK(sample_label(d, s, "thread", &str_i, &num) && str_is(d, str_i, "MainThread"), "thread");
    CHECK(sample_label(d, s, "thread_id", &str_i, &num) && num == 41, "thread_id");
    CHECK(sample_label(d, s, "pid", &str_i, &num) && num == 40, "pid");
    CHECK(sample_label(d, s, "process", &str_i, &num) && str_is(d, str_i, "python3 app.py"),
          "process");
    CHECK(sample_label(d, s, "stage", &str_i, &num) && str_is(d, str_i, "tokenize"), "stage");
    CHECK(sample_label(d, s, "category", &str_i, &num) && str_is(d, str_i, "native"), "cat");
    /* the native function's location is in its library's mapping */
    const struct field *loc = by_id(d->locations, d->nlocations, locs[0]);
    const struct field *map = loc ? by_id(d->mappings, d->nmappings, msg_uint(loc, 2)) : NULL;
    CHECK(map && str_is(d, msg_uint(map, 5), "libc.so.6") && msg_uint(map, 7) == 1,
          "libc mapping with has_functions");
    CHECK(d->nmappings == 1, "one mapping");
    /* the work samples: split by stage, 3 in tokenize and 2 in none */
    s = find_sample(d, "work\xef\xbf\xbd", "stage", "tokenize");
    CHECK(s && msg_packed(s, 2, v, 3) == 3 && v[0] == 3, "work in tokenize");
    /* the idle thread: not running, no cpu time; an empty thread name is "thread" */
    s = find_sample(d, "[idle]", "category", "system");
    CHECK(s && msg_packed(s, 2, v, 3) == 3 && v[0] == 4 && v[2] == 0, "idle: no cpu time");
    CHECK(sample_label(d, s, "thread", &str_i, &num) && str_is(d, str_i, "thread"), "no name");
    CHECK(!sample_label(d, s, "stage", &str_i, &num), "no stage label");
    free(d);
    buf_fini(&raw);
    profile_fini(&p);
    return 0;
}

/* Without kept samples: one Sample per (stack, category), the thread and process from the
 * frames, cpu time from the category; hidden idle samples left out. */
static int test_pprof_from_counts(void)
{
    struct profile p;
    build(&p, false);
    struct buf raw;
    buf_init(&raw, 0);
    struct decoded *d = malloc(sizeof(*d));
    CHECK(write_decoded(&p, &raw, d) == 0, "decode");
    CHECK(d->nsamples == 3, "%zu samples", d->nsamples);
    uint64_t v[3], str_i, num;
    const struct field *s = find_sample(d, "work\xef\xbf\xbd", NULL, NULL);
    CHECK(s && msg_packed(s, 2, v, 3) == 3 && v[0] == 5 && v[2] == 5 * 4000000, "work");
    CHECK(sample_label(d, s, "thread_id", &str_i, &num) && num == 41, "tid from the frame");
    CHECK(sample_label(d, s, "pid", &str_i, &num) && num == 40, "pid from the frame");
    CHECK(!sample_label(d, s, "stage", &str_i, &num), "no stages in counts");
    s = find_sample(d, "[idle]", NULL, NULL);
    CHECK(s && msg_packed(s, 2, v, 3) == 3 && v[0] == 4 && v[2] == 0, "system is not cpu");
    free(d);
    buf_fini(&raw);
    profile_fini(&p);

    /* hide_idle: idle samples are kept but not counted, in samples and counts alike */
    profile_init(&p);
    p.hide_idle = true;
    p.keep_samples = true;
    uint32_t f = profile_frame(&p, str(&p, "f"), str(&p, "a.py"), 1, FRAME_PYTHON);
    uint32_t st = profile_stack(&p, &f, 1);
    profile_add(&p, &(struct psample){.stack = st, .tid = 1, .state = TSTATE_RUNNING});
    profile_add(&p, &(struct psample){.stack = st, .tid = 1, .state = TSTATE_IDLE});
    buf_reset(&raw);
    d = malloc(sizeof(*d));
    CHECK(write_decoded(&p, &raw, d) == 0, "decode");
    CHECK(d->nsamples == 1 && d->nsample_types == 2, "one sample, no cpu type");
    CHECK(msg_packed(&d->samples[0], 2, v, 3) == 2 && v[0] == 1 && v[1] == 10000000,
          "the idle one hidden; 100 Hz without a rate");
    free(d);
    buf_fini(&raw);
    profile_fini(&p);
    return 0;
}

static int test_pprof_empty_and_cap(void)
{
    struct profile p;
    profile_init(&p);
    struct buf raw;
    buf_init(&raw, 0);
    struct decoded *d = malloc(sizeof(*d));
    CHECK(write_decoded(&p, &raw, d) == 0 && d->nsamples == 0 && d->nsample_types == 2,
          "an empty profile is a valid one");
    free(d);
    buf_fini(&raw);
    profile_fini(&p);
    build(&p, true);
    buf_init(&raw, 100);
    CHECK(pprof_write(&p, NULL, &raw) == ERR_TOO_LARGE, "cap");
    buf_fini(&raw);
    profile_fini(&p);
    return 0;
}

int main(void)
{
    RUN(test_varints);
    RUN(test_fields);
    RUN(test_pprof_samples);
    RUN(test_pprof_from_counts);
    RUN(test_pprof_empty_and_cap);
    return TEST_SUMMARY("pprof");
}
