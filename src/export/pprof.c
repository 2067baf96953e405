// SPDX-License-Identifier: MIT
// pprof export: samples aggregated per (stack, thread, process, stage, category), encoded as
// profile.proto and gzipped.
#include "export/pprof.h"

#include <stdlib.h>
#include <string.h>

#include "export/protobuf.h"
#include "util/gzip.h"
#include "util/hmap.h"
#include "util/xalloc.h"

/* Field numbers of profile.proto (github.com/google/pprof/proto/profile.proto). */
enum {
    PROFILE_SAMPLE_TYPE = 1,
    PROFILE_SAMPLE = 2,
    PROFILE_MAPPING = 3,
    PROFILE_LOCATION = 4,
    PROFILE_FUNCTION = 5,
    PROFILE_STRING_TABLE = 6,
    PROFILE_TIME_NANOS = 9,
    PROFILE_DURATION_NANOS = 10,
    PROFILE_PERIOD_TYPE = 11,
    PROFILE_PERIOD = 12,
    PROFILE_COMMENT = 13,
    PROFILE_DEFAULT_SAMPLE_TYPE = 14,
};
enum { VALUETYPE_TYPE = 1, VALUETYPE_UNIT = 2 };
enum { SAMPLE_LOCATION_ID = 1, SAMPLE_VALUE = 2, SAMPLE_LABEL = 3 };
enum { LABEL_KEY = 1, LABEL_STR = 2, LABEL_NUM = 3 };
enum { MAPPING_ID = 1, MAPPING_FILENAME = 5, MAPPING_HAS_FUNCTIONS = 7 };
enum { LOCATION_ID = 1, LOCATION_MAPPING_ID = 2, LOCATION_LINE = 4 };
enum { LINE_FUNCTION_ID = 1, LINE_LINE = 2 };
enum { FUNCTION_ID = 1, FUNCTION_NAME = 2, FUNCTION_FILENAME = 4 };

/* The strings every file starts its string table with, in this order (index 0 is ""). */
enum {
    STR_EMPTY,
    STR_SAMPLES,
    STR_COUNT,
    STR_WALL,
    STR_NANOSECONDS,
    STR_CPU,
    STR_THREAD,
    STR_THREAD_ID,
    STR_PID,
    STR_PROCESS,
    STR_STAGE,
    STR_CATEGORY,
    STR_UNKNOWN,
    STR_CAT0, /* then one per enum sample_cat */
    STR_FIXED = STR_CAT0 + PCAT_N,
};
static const char *const fixed_strings[STR_CAT0] = {
    "",          "samples", "count",   "wall",  "nanoseconds", "cpu", "thread",
    "thread_id", "pid",     "process", "stage", "category",    "?"};

/* What one pprof Sample aggregates. 20 bytes, no padding: hashed as bytes. */
struct agg_key {
    uint32_t stack;
    uint32_t tid;
    uint32_t pid;
    uint32_t stage; /* strtab id, 0 = none */
    uint32_t cat;   /* enum sample_cat */
};

struct agg {
    struct agg_key k;
    uint64_t n;       /* samples */
    uint64_t running; /* of which the thread was running */
};

/* The distinct keys in order of first sight, found through a hash of the key (a collision
 * moves on to a rehash of the hash until the key or an empty slot is found). */
struct aggs {
    struct agg *v;
    size_t n, cap;
    struct hmap index; /* hash -> position + 1 */
};

struct writer {
    const struct profile *p;
    uint64_t period;                                    /* ns a sample stands for */
    bool cpu;                                           /* a cpu/nanoseconds value */
    struct buf strings, mappings, locations, functions; /* encoded repeated fields */
    uint64_t nstrings, nmappings, nlocations, nfunctions;
    uint64_t *str_of;      /* profile string id -> string table index + 1 (0: not yet) */
    uint64_t *loc_of;      /* frame id -> location id (0: not yet) */
    struct hmap funcs[3];  /* per frame kind (Python, native, marker): name/file -> id */
    struct hmap map_index; /* library string id + 1 -> mapping id */
    struct buf msg, sub;   /* scratch: the message being built and a nested one */
};

static void aggs_add(struct aggs *a, const struct agg_key *k, uint64_t n, uint64_t running)
{
    uint64_t h = hmap_hash_bytes(k, sizeof(*k));
    for (;;) {
        bool fresh;
        uint64_t *slot = hmap_slot(&a->index, h, a->n + 1, &fresh);
        if (fresh) {
            if (a->n == a->cap) {
                a->cap = a->cap ? a->cap * 2 : 256;
                a->v = xrealloc(a->v, a->cap * sizeof(*a->v));
            }
            a->v[a->n++] = (struct agg){*k, n, running};
            return;
        }
        struct agg *e = &a->v[*slot - 1];
        if (memcmp(&e->k, k, sizeof(*k)) == 0) {
            e->n += n;
            e->running += running;
            return;
        }
        h = hmap_hash64(h);
        h = h ? h : 1;
    }
}

static bool sample_hidden(const struct profile *p, const struct psample *s)
{
    return s->stack == 0 || (p->hide_idle && psample_idle(s));
}

/* Whether the kept samples account for every counted one (they may have been capped, or a
 * saved recording made by hand may have none). */
static bool samples_complete(const struct profile *p)
{
    if (!p->keep_samples || !p->nsamples || p->samples_capped)
        return false;
    uint64_t kept = 0;
    for (size_t i = 0; i < p->nsamples; i++)
        if (!(p->hide_idle && psample_idle(&p->samples[i])))
            kept += p->samples[i].weight ? p->samples[i].weight : 1;
    return kept == p->total;
}

static void from_samples(const struct profile *p, struct aggs *a)
{
    for (size_t i = 0; i < p->nsamples; i++) {
        const struct psample *s = &p->samples[i];
        if (sample_hidden(p, s))
            continue;
        uint64_t w = s->weight ? s->weight : 1;
        struct agg_key k = {s->stack, s->tid, s->pid, s->stage, s->cat < PCAT_N ? s->cat : 0};
        aggs_add(a, &k, w, s->state == TSTATE_RUNNING ? w : 0);
    }
}

/* Per-stack counts: the thread and process come from the stack's frames (with --threads and
 * --subprocesses), running from the category (on CPU in Python, native code or either). */
static void from_counts(const struct profile *p, struct aggs *a)
{
    for (uint32_t s = 1; s < p->nnodes; s++) {
        if (!p->counts[s])
            continue;
        struct agg_key k = {s, 0, 0, 0, 0};
        for (uint32_t n = s; n; n = p->nodes[n].parent) {
            const struct pframe *f = profile_frame_at(p, p->nodes[n].frame);
            if (f->kind == FRAME_THREAD)
                k.tid = (uint32_t)f->line;
            else if (f->kind == FRAME_PROCESS)
                k.pid = (uint32_t)f->line;
        }
        uint64_t sum = 0;
        for (uint32_t c = 0; c < PCAT_N; c++) {
            uint64_t n = p->cat_counts[(size_t)s * PCAT_N + c];
            if (!n)
                continue;
            k.cat = c;
            bool on_cpu = c == CAT_PYTHON || c == CAT_NATIVE || c == CAT_CPU;
            aggs_add(a, &k, n, on_cpu ? n : 0);
            sum += n;
        }
        if (sum < p->counts[s]) {
            k.cat = CAT_NONE;
            aggs_add(a, &k, p->counts[s] - sum, 0);
        }
    }
}

/* Adds `n` bytes of `s` to the string table (made valid UTF-8); returns its index. */
static int add_string(struct writer *w, const char *s, size_t n, uint64_t *index)
{
    size_t clean = export_utf8_clean_len(s, n);
    int rc = pb_tag(&w->strings, PROFILE_STRING_TABLE, PB_LEN);
    if (!rc)
        rc = pb_varint(&w->strings, clean);
    if (!rc)
        rc = clean == n ? buf_append(&w->strings, s, n) : export_utf8_clean(&w->strings, s, n);
    *index = w->nstrings++;
    return rc;
}

/* The string table index of profile string `id`, added on first use. */
static int str_index(struct writer *w, uint32_t id, uint64_t *index)
{
    if (w->str_of[id]) {
        *index = w->str_of[id] - 1;
        return 0;
    }
    int rc = add_string(w, profile_string(w->p, id), strtab_len(&w->p->strs, id), index);
    w->str_of[id] = *index + 1;
    return rc;
}

/* A name's index, or that of "?" for an empty one (as the other formats write it). */
static int name_index(struct writer *w, uint32_t id, uint64_t *index)
{
    if (strtab_len(&w->p->strs, id) == 0) {
        *index = STR_UNKNOWN;
        return 0;
    }
    return str_index(w, id, index);
}

static int mapping_id(struct writer *w, uint32_t library, uint64_t *id)
{
    uint64_t v;
    if (hmap_get(&w->map_index, (uint64_t)library + 1, &v)) {
        *id = v;
        return 0;
    }
    uint64_t file;
    int rc = str_index(w, library, &file);
    *id = ++w->nmappings;
    hmap_put(&w->map_index, (uint64_t)library + 1, *id);
    buf_reset(&w->sub);
    rc = rc ? rc : pb_uint(&w->sub, MAPPING_ID, *id);
    rc = rc ? rc : pb_uint(&w->sub, MAPPING_FILENAME, file);
    /* has_functions: the names are already there; pprof then does not try to symbolize the
     * library from its addresses (which crux does not record). */
    rc = rc ? rc : pb_bool(&w->sub, MAPPING_HAS_FUNCTIONS, true);
    return rc ? rc : pb_message(&w->mappings, PROFILE_MAPPING, &w->sub);
}

static int function_id(struct writer *w, const struct pframe *f, uint64_t *id)
{
    size_t which = f->kind == FRAME_PYTHON ? 0 : f->kind == FRAME_NATIVE ? 1 : 2;
    uint32_t file = which == 2 ? 0 : f->file;
    uint64_t key = (((uint64_t)f->name << 32) | file) + 1;
    uint64_t v;
    if (hmap_get(&w->funcs[which], key, &v)) {
        *id = v;
        return 0;
    }
    uint64_t name, filename = 0;
    int rc = name_index(w, f->name, &name);
    rc = rc ? rc : str_index(w, file, &filename);
    *id = ++w->nfunctions;
    hmap_put(&w->funcs[which], key, *id);
    buf_reset(&w->sub);
    rc = rc ? rc : pb_uint(&w->sub, FUNCTION_ID, *id);
    rc = rc ? rc : pb_uint(&w->sub, FUNCTION_NAME, name);
    rc = rc ? rc : pb_uint(&w->sub, FUNCTION_FILENAME, filename);
    return rc ? rc : pb_message(&w->functions, PROFILE_FUNCTION, &w->sub);
}

/* The location of frame `frame` (Python, native or marker), added on first use: one Line
 * with its function and, for Python, its line; native frames in their library's mapping. */
static int location_id(struct writer *w, uint32_t frame, uint64_t *id)
{
    if (w->loc_of[frame]) {
        *id = w->loc_of[frame];
        return 0;
    }
    const struct pframe *f = profile_frame_at(w->p, frame);
    uint64_t fn, mapping = 0;
    int rc = function_id(w, f, &fn);
    if (!rc && f->kind == FRAME_NATIVE && strtab_len(&w->p->strs, f->file))
        rc = mapping_id(w, f->file, &mapping);
    *id = w->loc_of[frame] = ++w->nlocations;
    struct buf line;
    buf_init(&line, 0);
    rc = rc ? rc : pb_uint(&line, LINE_FUNCTION_ID, fn);
    rc = rc ? rc : pb_int(&line, LINE_LINE, f->kind == FRAME_PYTHON && f->line > 0 ? f->line : 0);
    buf_reset(&w->sub);
    rc = rc ? rc : pb_uint(&w->sub, LOCATION_ID, *id);
    rc = rc ? rc : pb_uint(&w->sub, LOCATION_MAPPING_ID, mapping);
    rc = rc ? rc : pb_message(&w->sub, LOCATION_LINE, &line);
    buf_fini(&line);
    return rc ? rc : pb_message(&w->locations, PROFILE_LOCATION, &w->sub);
}

/* Appends a Label {key, str} or {key, num} to the sample being built in w->msg. */
static int label(struct writer *w, uint64_t key, bool is_str, uint64_t v)
{
    buf_reset(&w->sub);
    int rc = pb_uint(&w->sub, LABEL_KEY, key);
    rc = rc ? rc : pb_uint(&w->sub, is_str ? LABEL_STR : LABEL_NUM, v);
    return rc ? rc : pb_message(&w->msg, SAMPLE_LABEL, &w->sub);
}

/* The labels of one sample; `thread`, `process` are the names on its stack (UINT32_MAX when
 * it has no such frame). */
static int sample_labels(struct writer *w, const struct agg_key *k, uint32_t thread,
                         uint32_t process)
{
    int rc = 0;
    uint64_t s;
    if (thread != UINT32_MAX) {
        rc = strtab_len(&w->p->strs, thread) ? str_index(w, thread, &s) : 0;
        rc = rc ? rc : label(w, STR_THREAD, true, strtab_len(&w->p->strs, thread) ? s : STR_THREAD);
    }
    if (!rc && k->tid)
        rc = label(w, STR_THREAD_ID, false, k->tid);
    if (!rc && k->pid)
        rc = label(w, STR_PID, false, k->pid);
    if (!rc && process != UINT32_MAX && strtab_len(&w->p->strs, process)) {
        rc = str_index(w, process, &s);
        rc = rc ? rc : label(w, STR_PROCESS, true, s);
    }
    if (!rc && k->stage) {
        rc = str_index(w, k->stage, &s);
        rc = rc ? rc : label(w, STR_STAGE, true, s);
    }
    if (!rc && k->cat != CAT_NONE)
        rc = label(w, STR_CATEGORY, true, STR_CAT0 + k->cat);
    return rc;
}

/* Appends one Sample: its locations leaf first (the trie's parent chain is that order), its
 * values and its labels. `locs` holds the deepest stack. */
static int write_sample(struct writer *w, const struct agg *a, uint64_t *locs, struct buf *out)
{
    const struct profile *p = w->p;
    size_t n = 0;
    uint32_t thread = UINT32_MAX, process = UINT32_MAX;
    int rc = 0;
    for (uint32_t s = a->k.stack; s && !rc; s = p->nodes[s].parent) {
        uint32_t frame = p->nodes[s].frame;
        const struct pframe *f = profile_frame_at(p, frame);
        if (f->kind == FRAME_THREAD)
            thread = f->name;
        else if (f->kind == FRAME_PROCESS)
            process = f->name;
        else
            rc = location_id(w, frame, &locs[n++]);
    }
    uint64_t values[3] = {a->n, a->n * w->period, a->running * w->period};
    buf_reset(&w->msg);
    rc = rc ? rc : pb_packed(&w->msg, SAMPLE_LOCATION_ID, locs, n);
    rc = rc ? rc : pb_packed(&w->msg, SAMPLE_VALUE, values, w->cpu ? 3 : 2);
    rc = rc ? rc : sample_labels(w, &a->k, thread, process);
    return rc ? rc : pb_message(out, PROFILE_SAMPLE, &w->msg);
}

static int value_type(struct buf *out, uint32_t field, uint64_t type, uint64_t unit)
{
    struct buf m;
    buf_init(&m, 0);
    int rc = pb_uint(&m, VALUETYPE_TYPE, type);
    rc = rc ? rc : pb_uint(&m, VALUETYPE_UNIT, unit);
    rc = rc ? rc : pb_message(out, field, &m);
    buf_fini(&m);
    return rc;
}

static void writer_init(struct writer *w, const struct profile *p)
{
    memset(w, 0, sizeof(*w));
    w->p = p;
    double rate = p->meta.rate_hz > 0 ? p->meta.rate_hz : 100.0;
    w->period = (uint64_t)(1e9 / rate + 0.5);
    w->cpu = p->meta.categories;
    buf_init(&w->strings, 0);
    buf_init(&w->mappings, 0);
    buf_init(&w->locations, 0);
    buf_init(&w->functions, 0);
    buf_init(&w->msg, 0);
    buf_init(&w->sub, 0);
    w->str_of = xcalloc((size_t)p->strs.len + 1, sizeof(*w->str_of));
    w->str_of[0] = STR_EMPTY + 1;
    w->loc_of = xcalloc((size_t)p->nframes + 1, sizeof(*w->loc_of));
    for (size_t i = 0; i < 3; i++)
        hmap_init(&w->funcs[i]);
    hmap_init(&w->map_index);
}

static void writer_fini(struct writer *w)
{
    buf_fini(&w->strings);
    buf_fini(&w->mappings);
    buf_fini(&w->locations);
    buf_fini(&w->functions);
    buf_fini(&w->msg);
    buf_fini(&w->sub);
    free(w->str_of);
    free(w->loc_of);
    for (size_t i = 0; i < 3; i++)
        hmap_fini(&w->funcs[i]);
    hmap_fini(&w->map_index);
}

static int fixed_table(struct writer *w)
{
    uint64_t index;
    int rc = 0;
    for (size_t i = 0; i < STR_CAT0 && !rc; i++)
        rc = add_string(w, fixed_strings[i], strlen(fixed_strings[i]), &index);
    for (size_t c = 0; c < PCAT_N && !rc; c++)
        rc = add_string(w, sample_cat_names[c], strlen(sample_cat_names[c]), &index);
    return rc;
}

/* The profile's own fields: sample types, period, times, the comment, the default type. */
static int header(struct writer *w, const struct export_opts *o, struct buf *out)
{
    const struct pmeta *m = &w->p->meta;
    int rc = value_type(out, PROFILE_SAMPLE_TYPE, STR_SAMPLES, STR_COUNT);
    rc = rc ? rc : value_type(out, PROFILE_SAMPLE_TYPE, STR_WALL, STR_NANOSECONDS);
    if (w->cpu)
        rc = rc ? rc : value_type(out, PROFILE_SAMPLE_TYPE, STR_CPU, STR_NANOSECONDS);
    rc = rc ? rc : pb_int(out, PROFILE_TIME_NANOS, (int64_t)m->epoch_ns);
    rc = rc ? rc : pb_int(out, PROFILE_DURATION_NANOS, (int64_t)m->duration_ns);
    rc = rc ? rc : value_type(out, PROFILE_PERIOD_TYPE, STR_WALL, STR_NANOSECONDS);
    rc = rc ? rc : pb_int(out, PROFILE_PERIOD, (int64_t)w->period);
    rc = rc ? rc : pb_int(out, PROFILE_DEFAULT_SAMPLE_TYPE, STR_WALL);
    struct buf title;
    buf_init(&title, 0);
    uint64_t index;
    rc = rc ? rc : export_title(w->p, o, &title);
    rc = rc ? rc : add_string(w, buf_cstr(&title), title.len, &index);
    rc = rc ? rc : pb_int(out, PROFILE_COMMENT, (int64_t)index);
    buf_fini(&title);
    return rc;
}

static int write_samples(struct writer *w, struct buf *out)
{
    const struct profile *p = w->p;
    struct aggs a = {0};
    hmap_init(&a.index);
    if (samples_complete(p))
        from_samples(p, &a);
    else
        from_counts(p, &a);
    uint32_t maxd = 0;
    for (uint32_t s = 1; s < p->nnodes; s++)
        maxd = p->nodes[s].depth > maxd ? p->nodes[s].depth : maxd;
    uint64_t *locs = xmalloc(((size_t)maxd + 1) * sizeof(*locs));
    int rc = 0;
    for (size_t i = 0; i < a.n && !rc; i++)
        rc = write_sample(w, &a.v[i], locs, out);
    free(locs);
    free(a.v);
    hmap_fini(&a.index);
    return rc;
}

int pprof_write_raw(const struct profile *p, const struct export_opts *o, struct buf *out)
{
    struct writer w;
    writer_init(&w, p);
    int rc = fixed_table(&w);
    rc = rc ? rc : header(&w, o, out);
    rc = rc ? rc : write_samples(&w, out);
    /* Fields may come in any order: the tables go after the samples that filled them. */
    rc = rc ? rc : buf_append(out, w.mappings.data, w.mappings.len);
    rc = rc ? rc : buf_append(out, w.locations.data, w.locations.len);
    rc = rc ? rc : buf_append(out, w.functions.data, w.functions.len);
    rc = rc ? rc : buf_append(out, w.strings.data, w.strings.len);
    writer_fini(&w);
    return rc;
}

int pprof_write(const struct profile *p, const struct export_opts *o, struct buf *out)
{
    struct buf raw;
    buf_init(&raw, out->limit);
    int rc = pprof_write_raw(p, o, &raw);
    /* Level 1, as Go's runtime/pprof: on 10^6 samples (13.6 MB of protobuf) it compresses
     * 3.4x faster than level 6 for a file 10% larger (6.8 against 6.2 MB). */
    rc = rc ? rc : gzip_compress(raw.data, raw.len, GZIP_LEVEL_FAST, out);
    buf_fini(&raw);
    return rc;
}
