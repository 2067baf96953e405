// SPDX-License-Identifier: MIT
// OTLP/JSON import through cJSON (Debian's libcjson: a small, maintained parser; crux writes
// JSON itself but needs a reader only here). Walks resourceSpans[].scopeSpans[].spans[].
#include "stages/otlp.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/hmap.h"
#include "util/text.h"
#include "util/xalloc.h"

void otlp_init(struct otlp *o, size_t max_spans)
{
    memset(o, 0, sizeof(*o));
    strtab_init(&o->names);
    o->max_spans = max_spans;
}

void otlp_fini(struct otlp *o)
{
    free(o->spans);
    strtab_fini(&o->names);
    memset(o, 0, sizeof(*o));
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

uint64_t otlp_id64(const char *s)
{
    if (!s || !*s)
        return 0;
    size_t n = strlen(s);
    if (n == 32 || n == 16) {
        uint64_t v = 0;
        bool ok = true;
        for (size_t i = 0; i < n && ok; i++) {
            int h = hexval(s[i]);
            ok = h >= 0;
            if (i >= n - 16)
                v = v << 4 | (uint64_t)(h < 0 ? 0 : h);
        }
        if (ok && v)
            return v;
    }
    return hmap_hash_bytes(s, n);
}

/* A time in ns: a decimal string (the OTLP/JSON encoding of a 64-bit integer) or a number. */
static bool get_time(const cJSON *obj, const char *key, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsNumber(v)) {
        if (!(v->valuedouble >= 0 && v->valuedouble < 1.8e19))
            return false;
        *out = (uint64_t)v->valuedouble;
        return true;
    }
    if (!cJSON_IsString(v) || !v->valuestring || !*v->valuestring)
        return false;
    uint64_t x = 0;
    for (const char *p = v->valuestring; *p; p++) {
        if (*p < '0' || *p > '9' || x > (UINT64_MAX - 9) / 10)
            return false;
        x = x * 10 + (uint64_t)(*p - '0');
    }
    *out = x;
    return true;
}

static const char *get_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void add_span(struct otlp *o, const cJSON *sp)
{
    const char *name = get_str(sp, "name");
    uint64_t start = 0, end = 0;
    if (!name || !get_time(sp, "startTimeUnixNano", &start) ||
        !get_time(sp, "endTimeUnixNano", &end) || end < start) {
        o->skipped++;
        return;
    }
    if (o->max_spans && o->nspans >= o->max_spans) {
        o->skipped++;
        return;
    }
    if (o->nspans == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 256;
        o->spans = xrealloc(o->spans, o->cap * sizeof(*o->spans));
    }
    const char *parent = get_str(sp, "parentSpanId");
    struct stage_span *s = &o->spans[o->nspans++];
    s->request = otlp_id64(get_str(sp, "traceId"));
    s->start_ns = start;
    s->end_ns = end;
    char *clean = xstrdup(name);
    text_scrub(clean, strlen(clean));
    s->name = strtab_get(&o->names, strtab_intern(&o->names, clean, strlen(clean)));
    free(clean);
    s->tid = 0;
    s->kind = parent && *parent ? STAGE_SPAN : STAGE_REQUEST;
    s->pid = 0;
}

/* Adds the spans of one ExportTraceServiceRequest; false when it has no resourceSpans. */
static bool add_request(struct otlp *o, const cJSON *root)
{
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "resourceSpans");
    if (!cJSON_IsArray(rs))
        return false;
    const cJSON *r;
    cJSON_ArrayForEach(r, rs)
    {
        const cJSON *scopes = cJSON_GetObjectItemCaseSensitive(r, "scopeSpans");
        if (!cJSON_IsArray(scopes)) /* the name before OTLP 0.19 */
            scopes = cJSON_GetObjectItemCaseSensitive(r, "instrumentationLibrarySpans");
        if (!cJSON_IsArray(scopes))
            continue;
        const cJSON *sc;
        cJSON_ArrayForEach(sc, scopes)
        {
            const cJSON *spans = cJSON_GetObjectItemCaseSensitive(sc, "spans");
            if (!cJSON_IsArray(spans))
                continue;
            const cJSON *sp;
            cJSON_ArrayForEach(sp, spans)
            {
                if (cJSON_IsObject(sp))
                    add_span(o, sp);
            }
        }
    }
    return true;
}

static bool parse_one(struct otlp *o, const char *text, size_t len)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root)
        return false;
    /* One document only: what follows it must be blank (else it is JSON lines). */
    while (end && end < text + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (!end || end != text + len) {
        cJSON_Delete(root);
        return false;
    }
    bool ok = add_request(o, root);
    cJSON_Delete(root);
    return ok;
}

int otlp_parse(struct otlp *o, const char *text, size_t len, struct errbuf *eb)
{
    if (parse_one(o, text, len))
        return 0;
    /* JSON lines: one request per line. */
    size_t docs = 0, lineno = 0, bad_line = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        lineno++;
        const char *q = p;
        while (q < le && (*q == ' ' || *q == '\t' || *q == '\r'))
            q++;
        if (q < le) {
            if (parse_one(o, q, (size_t)(le - q))) {
                docs++;
            } else {
                o->bad_lines++;
                if (!bad_line)
                    bad_line = lineno;
            }
        }
        p = nl ? nl + 1 : end;
    }
    o->first_bad = bad_line;
    if (!docs && bad_line == 1) {
        /* Nothing parsed: valid JSON without spans, or one document cut short. */
        cJSON *root = cJSON_ParseWithLength(text, len);
        cJSON_Delete(root);
        if (!root)
            return errbuf_set(eb, ERR_ARG,
                              "not OTLP/JSON trace data (not valid JSON: cut short?): export "
                              "spans with the OTLP JSON encoding");
    }
    if (!docs && bad_line > 1)
        return errbuf_set(eb, ERR_ARG,
                          "not OTLP/JSON trace data (line %zu does not parse): export spans "
                          "with the OTLP JSON encoding",
                          bad_line);
    if (!docs)
        return errbuf_set(eb, ERR_ARG,
                          "not OTLP/JSON trace data (no resourceSpans): export spans with the "
                          "OTLP JSON encoding");
    return 0;
}

int otlp_read_file(struct otlp *o, const char *path, struct errbuf *eb)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errbuf_set(eb, ERR_IO, "cannot open %s: check the path", path);
    char *data = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len == cap) {
            if (cap >= OTLP_MAX_FILE) {
                rc = errbuf_set(eb, ERR_TOO_LARGE,
                                "%s is larger than %zu MiB: split it (one request per line)", path,
                                OTLP_MAX_FILE >> 20);
                break;
            }
            cap = cap ? cap * 2 : 65536;
            data = xrealloc(data, cap);
        }
        size_t got = fread(data + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                rc = errbuf_set(eb, ERR_IO, "cannot read %s: check that it is a file", path);
            break;
        }
    }
    fclose(f);
    if (!rc)
        rc = otlp_parse(o, data ? data : "", len, eb);
    free(data);
    return rc;
}
