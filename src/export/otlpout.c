// SPDX-License-Identifier: MIT
// OTLP trace export (otlpout.h): request spans as an ExportTraceServiceRequest in protobuf.
#include "export/otlpout.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/export.h"
#include "export/protobuf.h"
#include "util/xalloc.h"

/* Field numbers from opentelemetry-proto (checked against the descriptors of the
 * opentelemetry-proto 1.45 package): collector/trace/v1/trace_service.proto,
 * trace/v1/trace.proto, common/v1/common.proto, resource/v1/resource.proto. */
enum {
    REQ_RESOURCE_SPANS = 1,   /* ExportTraceServiceRequest.resource_spans */
    RESP_PARTIAL_SUCCESS = 1, /* ExportTraceServiceResponse.partial_success */
    PARTIAL_REJECTED = 1,     /* ExportTracePartialSuccess.rejected_spans (int64) */
    PARTIAL_MESSAGE = 2,      /* ExportTracePartialSuccess.error_message */
    RS_RESOURCE = 1,          /* ResourceSpans.resource */
    RS_SCOPE_SPANS = 2,       /* ResourceSpans.scope_spans */
    RESOURCE_ATTRIBUTES = 1,  /* Resource.attributes */
    SS_SCOPE = 1,             /* ScopeSpans.scope */
    SS_SPANS = 2,             /* ScopeSpans.spans */
    SCOPE_NAME = 1,           /* InstrumentationScope.name */
    SCOPE_VERSION = 2,        /* InstrumentationScope.version */
    SPAN_TRACE_ID = 1,        /* bytes, 16 */
    SPAN_SPAN_ID = 2,         /* bytes, 8 */
    SPAN_PARENT_SPAN_ID = 4,  /* bytes, 8; absent on a root */
    SPAN_NAME = 5,            /* string */
    SPAN_KIND = 6,            /* enum SpanKind */
    SPAN_START = 7,           /* fixed64 start_time_unix_nano */
    SPAN_END = 8,             /* fixed64 end_time_unix_nano */
    SPAN_ATTRIBUTES = 9,      /* repeated KeyValue */
    KV_KEY = 1,               /* KeyValue.key */
    KV_VALUE = 2,             /* KeyValue.value (AnyValue) */
    ANY_STRING = 1,           /* AnyValue.string_value */
    ANY_BOOL = 2,             /* AnyValue.bool_value */
    ANY_INT = 3,              /* AnyValue.int_value */
    SPAN_KIND_INTERNAL = 1,
    SPAN_KIND_SERVER = 2,
};

#define ROOT_FLAG ((uint64_t)1 << 63)         /* keys' value: a made-up root's index follows */
#define NO_REQUEST_SALT 0x6e6f2d7265717565ull /* "no-reque": traces of spans with no request */

/* The hmap key of (pid, request): a hash, never 0. Two pairs colliding would share a root;
 * with 64 bits and at most a million spans that does not happen in practice. */
static uint64_t req_key(uint32_t pid, uint64_t request)
{
    uint64_t k = hmap_hash64(request ^ hmap_hash64((uint64_t)pid + 1));
    return k ? k : 1;
}

static void add_root(struct otlpout *x, const struct pspan *s, uint64_t *slot)
{
    if (x->nroots == x->caproots) {
        x->caproots = x->caproots ? x->caproots * 2 : 64;
        x->roots = xrealloc(x->roots, x->caproots * sizeof(*x->roots));
    }
    x->roots[x->nroots] = (struct otlpout_root){s->request, s->start_ns, s->end_ns, s->pid};
    *slot = ROOT_FLAG | x->nroots++;
}

void otlpout_init(struct otlpout *x, const struct profile *p)
{
    memset(x, 0, sizeof(*x));
    x->p = p;
    hmap_init(&x->keys);
    /* First the request spans (the first of a key is its root), then the made-up roots over
     * the spans of requests that have none. */
    for (size_t i = 0; i < p->nspans; i++) {
        const struct pspan *s = &p->spans[i];
        if (s->request && s->kind == PSPAN_REQUEST)
            hmap_slot(&x->keys, req_key(s->pid, s->request), i + 1, NULL);
    }
    for (size_t i = 0; i < p->nspans; i++) {
        const struct pspan *s = &p->spans[i];
        if (!s->request || s->kind == PSPAN_REQUEST)
            continue;
        bool added = false;
        uint64_t *slot = hmap_slot(&x->keys, req_key(s->pid, s->request), 0, &added);
        if (added) {
            add_root(x, s, slot);
        } else if (*slot & ROOT_FLAG) {
            struct otlpout_root *r = &x->roots[*slot & ~ROOT_FLAG];
            r->start_ns = s->start_ns < r->start_ns ? s->start_ns : r->start_ns;
            r->end_ns = s->end_ns > r->end_ns ? s->end_ns : r->end_ns;
        }
    }
}

void otlpout_fini(struct otlpout *x)
{
    hmap_fini(&x->keys);
    free(x->roots);
    memset(x, 0, sizeof(*x));
}

size_t otlpout_count(const struct otlpout *x)
{
    return x->p->nspans + x->nroots;
}

static void put_be64(unsigned char *out, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)(v >> (56 - 8 * i));
}

/* The trace id's first 8 bytes for process `pid` of the recording begun at `epoch_ns`. */
static uint64_t trace_hi(uint64_t epoch_ns, uint32_t pid, uint64_t salt)
{
    return hmap_hash64(hmap_hash64(epoch_ns ^ salt) ^ ((uint64_t)pid << 1 | 1));
}

void otlpout_trace_id(uint64_t epoch_ns, uint32_t pid, uint64_t request, unsigned char out[16])
{
    put_be64(out, trace_hi(epoch_ns, pid, 0));
    put_be64(out + 8, request);
}

/* Span number `n` of the trace `trace` (0: its root). */
static uint64_t span_id(const unsigned char trace[16], uint64_t n)
{
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 8; i++) {
        hi = hi << 8 | trace[i];
        lo = lo << 8 | trace[8 + i];
    }
    uint64_t id = hmap_hash64(hmap_hash64(hi ^ hmap_hash64(lo)) + n);
    return id ? id : 1;
}

/* Scratch buffers for the nested messages, innermost first. */
struct enc {
    struct buf any, kv, span, scope;
};

/* A string field, made valid UTF-8. */
static int pb_string(struct buf *b, uint32_t field, const char *s, size_t n)
{
    size_t clean = export_utf8_clean_len(s, n);
    if (clean == n)
        return pb_bytes(b, field, s, n);
    int rc = pb_tag(b, field, PB_LEN);
    rc = rc ? rc : pb_varint(b, clean);
    return rc ? rc : export_utf8_clean(b, s, n);
}

/* Appends KeyValue{key, e->any} to `dst` as field `field`; e->any holds the AnyValue. */
static int put_kv(struct enc *e, struct buf *dst, uint32_t field, const char *key)
{
    buf_reset(&e->kv);
    int rc = pb_bytes(&e->kv, KV_KEY, key, strlen(key));
    rc = rc ? rc : pb_message(&e->kv, KV_VALUE, &e->any);
    return rc ? rc : pb_message(dst, field, &e->kv);
}

static int kv_str(struct enc *e, struct buf *dst, uint32_t field, const char *key, const char *v,
                  size_t n)
{
    buf_reset(&e->any);
    int rc = pb_string(&e->any, ANY_STRING, v, n);
    return rc ? rc : put_kv(e, dst, field, key);
}

/* An int or bool AnyValue: the oneof is written even for 0 and false, which pb_int skips. */
static int kv_varint(struct enc *e, struct buf *dst, uint32_t field, const char *key,
                     uint32_t any_field, uint64_t v)
{
    buf_reset(&e->any);
    int rc = pb_tag(&e->any, any_field, PB_VARINT);
    rc = rc ? rc : pb_varint(&e->any, v);
    return rc ? rc : put_kv(e, dst, field, key);
}

/* What is known of one item while it is encoded. */
struct item {
    uint64_t request, start_ns, end_ns;
    const char *name;
    size_t name_len;
    uint32_t pid, tid, kind;
    uint64_t number; /* span number in its trace: 0 = the root */
    bool synthesized;
    unsigned char trace[16];
};

static void describe(const struct otlpout *x, size_t i, struct item *it)
{
    const struct profile *p = x->p;
    uint64_t epoch = p->meta.epoch_ns;
    memset(it, 0, sizeof(*it));
    if (i >= p->nspans) {
        const struct otlpout_root *r = &x->roots[i - p->nspans];
        *it = (struct item){r->request, r->start_ns,   r->end_ns, "request", 7,  r->pid,
                            0,          PSPAN_REQUEST, 0,         true,      {0}};
        otlpout_trace_id(epoch, r->pid, r->request, it->trace);
        return;
    }
    const struct pspan *s = &p->spans[i];
    it->request = s->request;
    it->start_ns = s->start_ns;
    it->end_ns = s->end_ns;
    it->name = strtab_get(&p->strs, s->name);
    it->name_len = strtab_len(&p->strs, s->name);
    it->pid = s->pid;
    it->tid = s->tid;
    it->kind = s->kind;
    if (!s->request) {
        /* A trace of its own: the span's index stands in for the request id. */
        put_be64(it->trace, trace_hi(epoch, s->pid, NO_REQUEST_SALT));
        put_be64(it->trace + 8, (uint64_t)i + 1);
        return;
    }
    otlpout_trace_id(epoch, s->pid, s->request, it->trace);
    uint64_t first = 0;
    bool is_root = s->kind == PSPAN_REQUEST &&
                   hmap_get(&x->keys, req_key(s->pid, s->request), &first) && first == i + 1;
    it->number = is_root ? 0 : (uint64_t)i + 1;
}

static const char *kind_name(uint32_t kind)
{
    return kind == PSPAN_REQUEST ? "request" : kind == PSPAN_MARK ? "mark" : "stage";
}

static int span_attributes(struct enc *e, const struct item *it)
{
    char req[24];
    int n = snprintf(req, sizeof(req), "%" PRIu64, it->request);
    const char *kind = kind_name(it->kind);
    int rc = kv_str(e, &e->span, SPAN_ATTRIBUTES, "crux.kind", kind, strlen(kind));
    if (!rc && it->request)
        rc = kv_str(e, &e->span, SPAN_ATTRIBUTES, "crux.request", req, (size_t)n);
    if (!rc && it->kind != PSPAN_REQUEST)
        rc = kv_str(e, &e->span, SPAN_ATTRIBUTES, "crux.stage", it->name, it->name_len);
    if (!rc && it->tid)
        rc = kv_varint(e, &e->span, SPAN_ATTRIBUTES, "thread.id", ANY_INT, it->tid);
    if (!rc && it->synthesized)
        rc = kv_varint(e, &e->span, SPAN_ATTRIBUTES, "crux.synthesized", ANY_BOOL, 1);
    return rc;
}

/* Appends item `i` as a Span to e->scope. */
static int encode_span(const struct otlpout *x, struct enc *e, size_t i)
{
    struct item it;
    describe(x, i, &it);
    uint64_t epoch = x->p->meta.epoch_ns;
    unsigned char id[8], parent[8];
    put_be64(id, span_id(it.trace, it.number));
    put_be64(parent, span_id(it.trace, 0));
    buf_reset(&e->span);
    int rc = pb_bytes(&e->span, SPAN_TRACE_ID, it.trace, sizeof(it.trace));
    rc = rc ? rc : pb_bytes(&e->span, SPAN_SPAN_ID, id, sizeof(id));
    if (!rc && it.number)
        rc = pb_bytes(&e->span, SPAN_PARENT_SPAN_ID, parent, sizeof(parent));
    rc = rc ? rc : pb_string(&e->span, SPAN_NAME, it.name, it.name_len);
    rc = rc ? rc
            : pb_uint(&e->span, SPAN_KIND,
                      it.number == 0 && it.request ? SPAN_KIND_SERVER : SPAN_KIND_INTERNAL);
    rc = rc ? rc : pb_fixed64(&e->span, SPAN_START, epoch + it.start_ns);
    rc = rc ? rc : pb_fixed64(&e->span, SPAN_END, epoch + it.end_ns);
    rc = rc ? rc : span_attributes(e, &it);
    return rc ? rc : pb_message(&e->scope, SS_SPANS, &e->span);
}

static uint32_t item_pid(const struct otlpout *x, size_t i)
{
    const struct profile *p = x->p;
    return i < p->nspans ? p->spans[i].pid : x->roots[i - p->nspans].pid;
}

/* Appends one ResourceSpans with the items of [first, first + n) whose process is `pid`. */
static int encode_process(const struct otlpout *x, const struct otlpout_opts *o, struct enc *e,
                          uint32_t pid, size_t first, size_t n, struct buf *out)
{
    const char *service = o->service && o->service[0] ? o->service : "crux";
    struct buf res, rs;
    buf_init(&res, 0);
    buf_init(&rs, 0);
    int rc = kv_str(e, &res, RESOURCE_ATTRIBUTES, "service.name", service, strlen(service));
    if (!rc && pid)
        rc = kv_varint(e, &res, RESOURCE_ATTRIBUTES, "process.pid", ANY_INT, pid);
    rc = rc ? rc : pb_message(&rs, RS_RESOURCE, &res);
    /* ScopeSpans: the scope ("crux", its version), then the spans. */
    buf_reset(&res);
    buf_reset(&e->scope);
    rc = rc ? rc : pb_bytes(&res, SCOPE_NAME, "crux", 4);
    if (!rc && o->scope_version)
        rc = pb_bytes(&res, SCOPE_VERSION, o->scope_version, strlen(o->scope_version));
    rc = rc ? rc : pb_message(&e->scope, SS_SCOPE, &res);
    for (size_t i = first; i < first + n && !rc; i++)
        if (item_pid(x, i) == pid)
            rc = encode_span(x, e, i);
    rc = rc ? rc : pb_message(&rs, RS_SCOPE_SPANS, &e->scope);
    rc = rc ? rc : pb_message(out, REQ_RESOURCE_SPANS, &rs);
    buf_fini(&res);
    buf_fini(&rs);
    return rc;
}

int otlpout_encode(const struct otlpout *x, const struct otlpout_opts *o, size_t first, size_t n,
                   struct buf *out)
{
    size_t total = otlpout_count(x);
    if (first >= total)
        return 0;
    if (n > total - first)
        n = total - first;
    struct enc e;
    buf_init(&e.any, 0);
    buf_init(&e.kv, 0);
    buf_init(&e.span, 0);
    buf_init(&e.scope, 0);
    /* One ResourceSpans per process, in order of first appearance in the batch; a batch
     * holds few processes, so a scan per process is cheap. */
    int rc = 0;
    for (size_t i = first; i < first + n && !rc; i++) {
        uint32_t pid = item_pid(x, i);
        bool seen = false;
        for (size_t j = first; j < i && !seen; j++)
            seen = item_pid(x, j) == pid;
        if (!seen)
            rc = encode_process(x, o, &e, pid, i, first + n - i, out);
    }
    buf_fini(&e.any);
    buf_fini(&e.kv);
    buf_fini(&e.span);
    buf_fini(&e.scope);
    return rc;
}

static int parse_partial(const unsigned char *p, const unsigned char *end, int64_t *rejected,
                         char *msg, size_t msgsz)
{
    struct pb_field f;
    while (p < end) {
        int rc = pb_read(&p, end, &f);
        if (rc)
            return rc;
        if (f.field == PARTIAL_REJECTED && f.wire == PB_VARINT)
            *rejected = (int64_t)f.value;
        else if (f.field == PARTIAL_MESSAGE && f.wire == PB_LEN && msgsz) {
            /* printed on one line: control characters become spaces */
            size_t k = 0;
            for (size_t i = 0; i < f.len && k + 1 < msgsz; i++)
                msg[k++] = f.data[i] >= 0x20 && f.data[i] != 0x7f ? (char)f.data[i] : ' ';
            msg[k] = 0;
        }
    }
    return 0;
}

int otlpout_parse_response(const void *body, size_t len, int64_t *rejected, char *msg, size_t msgsz)
{
    *rejected = 0;
    if (msgsz)
        msg[0] = 0;
    if (!len)
        return 0;
    const unsigned char *p = body, *end = p + len;
    struct pb_field f;
    while (p < end) {
        int rc = pb_read(&p, end, &f);
        if (rc)
            return rc;
        if (f.field == RESP_PARTIAL_SUCCESS && f.wire == PB_LEN) {
            rc = parse_partial(f.data, f.data + f.len, rejected, msg, msgsz);
            if (rc)
                return rc;
        }
    }
    return 0;
}
