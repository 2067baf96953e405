// SPDX-License-Identifier: MIT
// Unit tests of the OTLP trace encoder (read back with pb_read, field numbers from
// opentelemetry-proto), the response parser, the URL rule and the protobuf additions.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "export/otlpout.h"
#include "export/otlpsend.h"
#include "export/protobuf.h"
#include "profile/profile.h"
#include "util/buf.h"

#define EPOCH 1700000000000000000ull
#define MS 1000000ull

/* One span as read back. */
struct got {
    unsigned char trace[16];
    unsigned char id[8], parent[8];
    bool has_parent;
    char name[64];
    uint64_t kind, start, end;
    char attr_kind[64], attr_stage[64], attr_request[64];
    uint64_t tid;
    bool synthesized;
    uint64_t pid;     /* the resource's process.pid */
    char service[64]; /* the resource's service.name */
};

struct decoded {
    struct got spans[64];
    size_t n;
    size_t resources;
};

static void copy_str(char *out, size_t n, const struct pb_field *f)
{
    snprintf(out, n, "%.*s", (int)f->len, (const char *)f->data);
}

/* Reads a KeyValue: its key into `key` and its AnyValue's string or varint. */
static int read_kv(const struct pb_field *kvf, char *key, size_t nk, char *str, size_t ns,
                   uint64_t *num)
{
    const unsigned char *p = kvf->data, *end = p + kvf->len;
    struct pb_field f;
    key[0] = str[0] = 0;
    *num = 0;
    while (p < end) {
        if (pb_read(&p, end, &f))
            return -1;
        if (f.field == 1)
            copy_str(key, nk, &f);
        if (f.field != 2)
            continue;
        const unsigned char *q = f.data, *qe = q + f.len;
        struct pb_field v;
        while (q < qe) {
            if (pb_read(&q, qe, &v))
                return -1;
            if (v.wire == PB_LEN)
                copy_str(str, ns, &v);
            else
                *num = v.value;
        }
    }
    return 0;
}

static int read_span(const struct pb_field *sf, struct got *g)
{
    const unsigned char *p = sf->data, *end = p + sf->len;
    struct pb_field f;
    while (p < end) {
        if (pb_read(&p, end, &f))
            return -1;
        char key[32], str[64];
        uint64_t num;
        switch (f.field) {
        case 1:
            if (f.len != 16)
                return -1;
            memcpy(g->trace, f.data, 16);
            break;
        case 2:
        case 4:
            if (f.len != 8)
                return -1;
            memcpy(f.field == 2 ? g->id : g->parent, f.data, 8);
            g->has_parent |= f.field == 4;
            break;
        case 5:
            copy_str(g->name, sizeof(g->name), &f);
            break;
        case 6:
            g->kind = f.value;
            break;
        case 7:
        case 8:
            if (f.wire != PB_I64)
                return -1;
            *(f.field == 7 ? &g->start : &g->end) = f.value;
            break;
        case 9:
            if (read_kv(&f, key, sizeof(key), str, sizeof(str), &num))
                return -1;
            if (strcmp(key, "crux.kind") == 0)
                snprintf(g->attr_kind, sizeof(g->attr_kind), "%s", str);
            else if (strcmp(key, "crux.stage") == 0)
                snprintf(g->attr_stage, sizeof(g->attr_stage), "%s", str);
            else if (strcmp(key, "crux.request") == 0)
                snprintf(g->attr_request, sizeof(g->attr_request), "%s", str);
            else if (strcmp(key, "thread.id") == 0)
                g->tid = num;
            else if (strcmp(key, "crux.synthesized") == 0)
                g->synthesized = num != 0;
            break;
        }
    }
    return 0;
}

/* ResourceSpans: the resource's attributes, then every span of every ScopeSpans. */
static int read_resource_spans(const struct pb_field *rf, struct decoded *d)
{
    const unsigned char *p = rf->data, *end = p + rf->len;
    struct pb_field f, g, h;
    uint64_t pid = 0;
    char service[64] = "";
    d->resources++;
    while (p < end) {
        if (pb_read(&p, end, &f))
            return -1;
        const unsigned char *q = f.data, *qe = q + f.len;
        while (f.wire == PB_LEN && q < qe) {
            if (pb_read(&q, qe, &g))
                return -1;
            char key[32], str[64];
            uint64_t num;
            if (f.field == 1 && g.field == 1) { /* Resource.attributes */
                if (read_kv(&g, key, sizeof(key), str, sizeof(str), &num))
                    return -1;
                if (strcmp(key, "process.pid") == 0)
                    pid = num;
                if (strcmp(key, "service.name") == 0)
                    snprintf(service, sizeof(service), "%s", str);
            } else if (f.field == 2 && g.field == 2) { /* ScopeSpans.spans */
                if (d->n == sizeof(d->spans) / sizeof(d->spans[0]))
                    return -1;
                struct got *s = &d->spans[d->n++];
                memset(s, 0, sizeof(*s));
                if (read_span(&g, s))
                    return -1;
                s->pid = pid;
                snprintf(s->service, sizeof(s->service), "%s", service);
            } else if (f.field == 2 && g.field == 1) { /* the scope: name "crux" */
                const unsigned char *r = g.data, *re = r + g.len;
                if (pb_read(&r, re, &h) || h.field != 1 || h.len != 4 || memcmp(h.data, "crux", 4))
                    return -1;
            }
        }
    }
    return 0;
}

static int decode(const struct buf *b, struct decoded *d)
{
    const unsigned char *p = (const unsigned char *)b->data, *end = p + b->len;
    struct pb_field f;
    while (p < end) {
        if (pb_read(&p, end, &f) || f.field != 1 || f.wire != PB_LEN)
            return -1;
        if (read_resource_spans(&f, d))
            return -1;
    }
    return 0;
}

static void add(struct profile *p, uint64_t req, uint64_t start, uint64_t end, const char *name,
                uint32_t tid, uint32_t pid, uint32_t kind)
{
    struct pspan s = {start, end, req, profile_str(p, name, strlen(name)), tid, pid, kind};
    profile_add_span(p, &s);
}

/* Request 7 of pid 100 with its own span, two stages and a mark (one stage's name hostile);
 * request 8 with stages only; a stage bound to no request; request 7 of pid 200. */
static void sample_profile(struct profile *p)
{
    profile_init(p);
    p->meta.epoch_ns = EPOCH;
    add(p, 7, 1 * MS, 2 * MS, "say \"hi\"\n\xff\xe2\x82", 11, 100, PSPAN_STAGE);
    add(p, 7, 3 * MS, 9 * MS, "model", 11, 100, PSPAN_STAGE);
    add(p, 7, 9 * MS, 9 * MS, "done", 11, 100, PSPAN_MARK);
    add(p, 7, 0, 10 * MS, "GET /x", 11, 100, PSPAN_REQUEST);
    add(p, 8, 20 * MS, 25 * MS, "parse", 12, 100, PSPAN_STAGE);
    add(p, 8, 26 * MS, 30 * MS, "model", 12, 100, PSPAN_STAGE);
    add(p, 0, 40 * MS, 41 * MS, "loose", 0, 100, PSPAN_STAGE);
    add(p, 7, 50 * MS, 60 * MS, "model", 0, 200, PSPAN_STAGE);
}

static const struct got *find(const struct decoded *d, const char *name, uint64_t pid)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->spans[i].name, name) == 0 && d->spans[i].pid == pid)
            return &d->spans[i];
    return NULL;
}

static uint64_t be64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

static int test_encodes_traces_with_roots_and_children(void)
{
    struct profile p;
    sample_profile(&p);
    struct otlpout x;
    otlpout_init(&x, &p);
    CHECK(otlpout_count(&x) == 10, "8 spans + 2 made-up roots, got %zu", otlpout_count(&x));
    struct buf b;
    buf_init(&b, 0);
    struct otlpout_opts o = {"svc", "0.1.0"};
    CHECK(otlpout_encode(&x, &o, 0, 100, &b) == 0, "encode");
    static struct decoded d;
    memset(&d, 0, sizeof(d));
    CHECK(decode(&b, &d) == 0, "decodes");
    CHECK(d.n == 10 && d.resources == 2, "%zu spans, %zu resources", d.n, d.resources);
    const struct got *root = find(&d, "GET /x", 100), *model = find(&d, "model", 100);
    const struct got *done = find(&d, "done", 100);
    CHECK(root && model && done, "spans found");
    CHECK(!root->has_parent && root->kind == 2, "the request span is a SERVER root");
    CHECK(be64(root->trace + 8) == 7, "trace id's low 8 bytes are the request id");
    unsigned char want[16];
    otlpout_trace_id(EPOCH, 100, 7, want);
    CHECK(memcmp(root->trace, want, 16) == 0, "otlpout_trace_id agrees");
    CHECK(memcmp(model->trace, root->trace, 16) == 0 && model->has_parent &&
              memcmp(model->parent, root->id, 8) == 0 && model->kind == 1,
          "a stage is an INTERNAL child of its request");
    CHECK(model->start == EPOCH + 3 * MS && model->end == EPOCH + 9 * MS, "unix times");
    CHECK(done->start == done->end && strcmp(done->attr_kind, "mark") == 0, "a mark");
    CHECK(strcmp(model->attr_stage, "model") == 0 && strcmp(model->attr_request, "7") == 0 &&
              model->tid == 11 && strcmp(model->attr_kind, "stage") == 0,
          "stage attributes: %s %s %llu", model->attr_stage, model->attr_request,
          (unsigned long long)model->tid);
    CHECK(strcmp(root->service, "svc") == 0 && root->pid == 100, "resource attributes");
    /* The hostile name: quotes and newline kept, each invalid byte replaced by U+FFFD. */
    const char *clean = "say \"hi\"\n\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd";
    const struct got *hostile = find(&d, clean, 100);
    CHECK(hostile && memcmp(hostile->trace, root->trace, 16) == 0, "hostile name cleaned");
    /* Request 8 has a made-up root over its stages. */
    const struct got *made = NULL;
    for (size_t i = 0; i < d.n; i++)
        if (d.spans[i].synthesized && be64(d.spans[i].trace + 8) == 8)
            made = &d.spans[i];
    CHECK(made && !made->has_parent && strcmp(made->name, "request") == 0, "made-up root");
    CHECK(made->start == EPOCH + 20 * MS && made->end == EPOCH + 30 * MS, "its extent");
    const struct got *parse = find(&d, "parse", 100);
    CHECK(parse && memcmp(parse->parent, made->id, 8) == 0, "parse's parent is it");
    /* Pid 200's request 7 is another trace; the loose span a trace of its own. */
    const struct got *other = find(&d, "model", 200), *loose = find(&d, "loose", 100);
    CHECK(other && memcmp(other->trace, root->trace, 16) != 0 && other->pid == 200,
          "other process, other trace");
    CHECK(loose && !loose->has_parent, "loose span is a root");
    /* Span ids: nonzero and distinct. */
    for (size_t i = 0; i < d.n; i++) {
        CHECK(be64(d.spans[i].id) != 0, "span id 0");
        for (size_t j = 0; j < i; j++)
            CHECK(memcmp(d.spans[i].id, d.spans[j].id, 8) != 0 ||
                      memcmp(d.spans[i].trace, d.spans[j].trace, 16) != 0,
                  "span ids %zu and %zu equal", i, j);
    }
    /* Deterministic: the same bytes again. */
    struct buf again;
    buf_init(&again, 0);
    CHECK(otlpout_encode(&x, &o, 0, 100, &again) == 0, "encode again");
    CHECK(again.len == b.len && memcmp(again.data, b.data, b.len) == 0, "deterministic");
    buf_fini(&again);
    buf_fini(&b);
    otlpout_fini(&x);
    profile_fini(&p);
    return 0;
}

static int test_batches_cover_every_span_once(void)
{
    struct profile p;
    sample_profile(&p);
    struct otlpout x;
    otlpout_init(&x, &p);
    static struct decoded all;
    memset(&all, 0, sizeof(all));
    struct otlpout_opts o = {NULL, NULL};
    for (size_t first = 0; first < otlpout_count(&x); first += 3) {
        struct buf b;
        buf_init(&b, 0);
        CHECK(otlpout_encode(&x, &o, first, 3, &b) == 0, "encode batch %zu", first);
        CHECK(decode(&b, &all) == 0, "decode batch %zu", first);
        buf_fini(&b);
    }
    CHECK(all.n == otlpout_count(&x), "%zu spans in batches", all.n);
    CHECK(strcmp(all.spans[0].service, "crux") == 0, "default service name");
    /* Past the end: nothing. */
    struct buf b;
    buf_init(&b, 0);
    CHECK(otlpout_encode(&x, &o, otlpout_count(&x), 5, &b) == 0 && b.len == 0, "empty");
    /* At a small cap: ERR_TOO_LARGE, not a crash. */
    struct buf small;
    buf_init(&small, 40);
    CHECK(otlpout_encode(&x, &o, 0, 10, &small) == ERR_TOO_LARGE, "cap");
    buf_fini(&small);
    buf_fini(&b);
    otlpout_fini(&x);
    profile_fini(&p);
    return 0;
}

static int test_response_partial_success(void)
{
    int64_t rejected = -1;
    char msg[32];
    CHECK(otlpout_parse_response("", 0, &rejected, msg, sizeof(msg)) == 0 && rejected == 0 &&
              !msg[0],
          "empty body: success");
    /* partial_success { rejected_spans: 3, error_message: "bad\nspan" } */
    static const char body[] = "\x0a\x0c\x08\x03\x12\x08"
                               "bad\nspan";
    CHECK(otlpout_parse_response(body, sizeof(body) - 1, &rejected, msg, sizeof(msg)) == 0,
          "parses");
    CHECK(rejected == 3 && strcmp(msg, "bad span") == 0, "%lld '%s'", (long long)rejected, msg);
    CHECK(otlpout_parse_response("\x0a\x05\x08", 3, &rejected, msg, sizeof(msg)) == ERR_CORRUPT,
          "truncated");
    return 0;
}

static int test_url_rule(void)
{
    static const struct {
        const char *in, *out;
    } ok[] = {
        {"http://localhost:4318", "http://localhost:4318/v1/traces"},
        {"http://localhost:4318/", "http://localhost:4318/v1/traces"},
        {"https://otel.example:443/base", "https://otel.example:443/base/v1/traces"},
        {"http://h:4318/v1/traces", "http://h:4318/v1/traces"},
        {"http://[::1]:4318/v1/traces", "http://[::1]:4318/v1/traces"},
    };
    char url[OTLPSEND_URL_MAX];
    struct errbuf eb = {""};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        CHECK(otlpsend_url(ok[i].in, url, sizeof(url), &eb) == 0, "%s: %s", ok[i].in, eb.msg);
        CHECK(strcmp(url, ok[i].out) == 0, "%s -> %s", ok[i].in, url);
    }
    static const char *const bad[] = {"localhost:4318", "ftp://h/", "http://", "http:///x",
                                      "http://h/?a=b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(otlpsend_url(bad[i], url, sizeof(url), &eb) == ERR_ARG, "%s accepted", bad[i]);
    CHECK(otlpsend_url("http://h", url, 10, &eb) == ERR_ARG, "too long for the buffer");
    return 0;
}

static int test_fixed64_and_read(void)
{
    struct buf b;
    buf_init(&b, 0);
    CHECK(pb_fixed64(&b, 7, 0) == 0 && b.len == 0, "0 is not written");
    CHECK(pb_fixed64(&b, 7, 0x0102030405060708ull) == 0, "fixed64");
    CHECK(b.len == 9 && memcmp(b.data, "\x39\x08\x07\x06\x05\x04\x03\x02\x01", 9) == 0,
          "tag 7<<3|1 then little-endian");
    CHECK(pb_uint(&b, 2, 300) == 0 && pb_bytes(&b, 3, "ab", 2) == 0, "more fields");
    const unsigned char *p = (const unsigned char *)b.data, *end = p + b.len;
    struct pb_field f;
    CHECK(pb_read(&p, end, &f) == 0 && f.field == 7 && f.wire == PB_I64 &&
              f.value == 0x0102030405060708ull,
          "read fixed64");
    CHECK(pb_read(&p, end, &f) == 0 && f.field == 2 && f.value == 300, "read varint");
    CHECK(pb_read(&p, end, &f) == 0 && f.field == 3 && f.len == 2 && memcmp(f.data, "ab", 2) == 0,
          "read bytes");
    CHECK(p == end, "all read");
    /* Hostile input: a length past the end, an endless varint, field 0, a group. */
    static const char *const bad[] = {"\x1a\x05\x61",
                                      "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff"
                                      "\xff\xff",
                                      "\x00\x01", "\x0b"};
    static const size_t nbad[] = {3, 12, 2, 1};
    for (size_t i = 0; i < 4; i++) {
        p = (const unsigned char *)bad[i];
        CHECK(pb_read(&p, p + nbad[i], &f) == ERR_CORRUPT, "bad input %zu read", i);
    }
    buf_fini(&b);
    return 0;
}

int main(void)
{
    RUN(test_encodes_traces_with_roots_and_children);
    RUN(test_batches_cover_every_span_once);
    RUN(test_response_partial_success);
    RUN(test_url_rule);
    RUN(test_fixed64_and_read);
    return TEST_SUMMARY("otlpout");
}
