// SPDX-License-Identifier: MIT
// crux exp: the seeded schedule and the state file that lets an experiment resume.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cmd/expstate.h"
#include "util/buf.h"
#include "util/jsonw.h"
#include "util/xalloc.h"

/* The largest state file read back: about 1 KB per run, so far past EXP_MAX_VARIANTS runs. */
#define STATE_MAX_BYTES ((size_t)256 << 20)

/* splitmix64 (Steele, Lea, Flood 2014): a small generator whose stream depends only on the
 * seed, on every platform: the schedule must be the same wherever the seed is replayed. */
static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, bound) without modulo bias (rejection of the short top range). */
static uint64_t below(uint64_t *s, uint64_t bound)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t r;
    do
        r = splitmix64(s);
    while (r >= limit);
    return r % bound;
}

void exp_schedule(struct exp_state *st, size_t nvariants, int repeats, int warmup, uint64_t seed)
{
    size_t nwarm = nvariants * (size_t)warmup, nmeas = nvariants * (size_t)repeats;
    free(st->slots);
    st->nslots = nwarm + nmeas;
    st->slots = xcalloc(st->nslots ? st->nslots : 1, sizeof(*st->slots));
    size_t k = 0;
    for (int w = 0; w < warmup; w++)
        for (size_t v = 0; v < nvariants; v++)
            st->slots[k++] = (struct exp_slot){(uint32_t)v, -1 - w, true};
    for (size_t v = 0; v < nvariants; v++)
        for (int r = 0; r < repeats; r++)
            st->slots[k++] = (struct exp_slot){(uint32_t)v, r, false};
    /* Fisher-Yates over the measured runs: slow drift of the machine (thermal, other jobs)
     * then spreads over every variant instead of landing on whichever ran last. */
    struct exp_slot *m = st->slots + nwarm;
    uint64_t s = seed;
    for (size_t i = nmeas; i > 1; i--) {
        size_t j = (size_t)below(&s, i);
        struct exp_slot t = m[i - 1];
        m[i - 1] = m[j];
        m[j] = t;
    }
    st->seed = seed;
}

uint64_t exp_random_seed(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
    }
    /* printed and typed back by people: keep it to 9 digits */
    return s % 1000000000ull;
}

bool exp_state_done(const struct exp_state *st, uint32_t slot)
{
    for (size_t i = 0; i < st->nresults; i++)
        if (st->results[i].slot == slot)
            return true;
    return false;
}

void exp_state_add(struct exp_state *st, struct exp_result *r)
{
    if (st->nresults == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 16;
        st->results = xrealloc(st->results, st->cap * sizeof(*st->results));
    }
    st->results[st->nresults++] = *r;
    memset(r, 0, sizeof(*r));
}

void exp_result_fini(struct exp_result *r)
{
    free(r->outs);
    free(r->recording);
    free(r->note);
    memset(r, 0, sizeof(*r));
}

void exp_state_fini(struct exp_state *st)
{
    free(st->name);
    for (size_t i = 0; i < st->nvariants; i++)
        free(st->variants[i]);
    free(st->variants);
    free(st->slots);
    for (size_t i = 0; i < st->nresults; i++)
        exp_result_fini(&st->results[i]);
    free(st->results);
    memset(st, 0, sizeof(*st));
}

/* -- writing ------------------------------------------------------------------------------ */

static void write_result(struct jsonw *w, const struct exp_result *r)
{
    jsonw_obj_begin(w);
    jsonw_key(w, "slot");
    jsonw_u64(w, r->slot);
    jsonw_key(w, "variant");
    jsonw_u64(w, r->variant);
    jsonw_key(w, "repeat");
    jsonw_i64(w, r->repeat);
    jsonw_key(w, "warmup");
    jsonw_bool(w, r->warmup);
    jsonw_key(w, "ok");
    jsonw_bool(w, r->ok);
    jsonw_key(w, "status");
    jsonw_i64(w, r->status);
    jsonw_key(w, "start");
    jsonw_double(w, r->start);
    jsonw_key(w, "wall_s");
    jsonw_double(w, r->wall_s);
    jsonw_key(w, "cpu_s");
    jsonw_double(w, r->cpu_s);
    jsonw_key(w, "maxrss_kb");
    jsonw_i64(w, r->maxrss_kb);
    jsonw_key(w, "throughput");
    jsonw_double(w, r->tput);
    jsonw_key(w, "p50_s");
    jsonw_double(w, r->lat_p50_s);
    jsonw_key(w, "p90_s");
    jsonw_double(w, r->lat_p90_s);
    jsonw_key(w, "p99_s");
    jsonw_double(w, r->lat_p99_s);
    jsonw_key(w, "p999_s");
    jsonw_double(w, r->lat_p999_s);
    jsonw_key(w, "mean_s");
    jsonw_double(w, r->lat_mean_s);
    jsonw_key(w, "requests");
    jsonw_u64(w, r->requests);
    jsonw_key(w, "errors");
    jsonw_u64(w, r->errors);
    jsonw_key(w, "outputs");
    jsonw_arr_begin(w);
    for (size_t i = 0; i < r->nouts; i++) {
        jsonw_arr_begin(w);
        jsonw_u64(w, r->outs[i].tmpl);
        jsonw_str(w, r->outs[i].hash);
        jsonw_arr_end(w);
    }
    jsonw_arr_end(w);
    jsonw_key(w, "outputs_mixed");
    jsonw_bool(w, r->outs_mixed);
    jsonw_key(w, "recording");
    jsonw_str(w, r->recording);
    jsonw_key(w, "run_id");
    jsonw_i64(w, r->run_id);
    jsonw_key(w, "note");
    jsonw_str(w, r->note);
    jsonw_obj_end(w);
}

static void write_state(struct jsonw *w, const struct exp_state *st)
{
    jsonw_obj_begin(w);
    jsonw_key(w, "format");
    jsonw_u64(w, EXP_STATE_FORMAT);
    jsonw_key(w, "name");
    jsonw_str(w, st->name);
    jsonw_key(w, "definition");
    jsonw_str(w, st->def_hash);
    jsonw_key(w, "seed");
    jsonw_u64(w, st->seed);
    jsonw_key(w, "created");
    jsonw_double(w, st->created);
    jsonw_key(w, "variants");
    jsonw_arr_begin(w);
    for (size_t i = 0; i < st->nvariants; i++)
        jsonw_str(w, st->variants[i]);
    jsonw_arr_end(w);
    jsonw_key(w, "schedule");
    jsonw_arr_begin(w);
    for (size_t i = 0; i < st->nslots; i++) {
        jsonw_arr_begin(w);
        jsonw_u64(w, st->slots[i].variant);
        jsonw_i64(w, st->slots[i].repeat);
        jsonw_arr_end(w);
    }
    jsonw_arr_end(w);
    jsonw_key(w, "runs");
    jsonw_arr_begin(w);
    for (size_t i = 0; i < st->nresults; i++)
        write_result(w, &st->results[i]);
    jsonw_arr_end(w);
    jsonw_obj_end(w);
}

int exp_state_save(const struct exp_state *st, const char *path, struct errbuf *eb)
{
    struct buf b;
    buf_init(&b, 0);
    struct jsonw w;
    jsonw_init(&w, &b, 0);
    write_state(&w, st);
    int rc = jsonw_error(&w);
    if (!rc)
        rc = buf_putc(&b, '\n');
    char tmp[4096];
    if (!rc && snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        rc = errbuf_set(eb, ERR_ARG, "state path too long: %s", path);
    if (!rc) {
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            rc = errbuf_set(eb, ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
        } else {
            size_t off = 0;
            while (off < b.len) {
                ssize_t n = write(fd, b.data + off, b.len - off);
                if (n < 0 && errno == EINTR)
                    continue;
                if (n <= 0)
                    break;
                off += (size_t)n;
            }
            /* fsync before the rename: after a crash the name points at whole contents */
            if (off != b.len || fsync(fd) != 0)
                rc = errbuf_set(eb, ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
            close(fd);
            if (!rc && rename(tmp, path) != 0)
                rc = errbuf_set(eb, ERR_IO, "cannot rename %s to %s: %s", tmp, path,
                                strerror(errno));
        }
    }
    buf_fini(&b);
    return rc;
}

/* -- reading ------------------------------------------------------------------------------ */

static int read_all(const char *path, char **out, struct errbuf *eb)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return ERR_NOT_FOUND;
        return errbuf_set(eb, ERR_IO, "cannot open %s: %s", path, strerror(errno));
    }
    struct buf b;
    buf_init(&b, STATE_MAX_BYTES);
    char chunk[65536];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = buf_append(&b, chunk, n);
    if (!rc && ferror(f))
        rc = ERR_IO;
    fclose(f);
    if (rc) {
        buf_fini(&b);
        return errbuf_set(eb, rc == ERR_TOO_LARGE ? ERR_CORRUPT : rc, "cannot read %s", path);
    }
    *out = buf_take(&b, NULL);
    return 0;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && v->valuestring ? xstrdup(v->valuestring) : NULL;
}

static bool flag(const cJSON *o, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static int load_result(struct exp_state *st, const cJSON *o)
{
    struct exp_result r = {0};
    double slot = num(o, "slot");
    if (!(slot >= 0 && slot < (double)st->nslots) || exp_state_done(st, (uint32_t)slot))
        return ERR_CORRUPT;
    r.slot = (uint32_t)slot;
    r.variant = st->slots[r.slot].variant;
    r.repeat = st->slots[r.slot].repeat;
    r.warmup = st->slots[r.slot].warmup;
    r.ok = flag(o, "ok");
    r.status = (int)num(o, "status");
    r.start = num(o, "start");
    r.wall_s = num(o, "wall_s");
    r.cpu_s = num(o, "cpu_s");
    r.maxrss_kb = (long)num(o, "maxrss_kb");
    r.tput = num(o, "throughput");
    r.lat_p50_s = num(o, "p50_s");
    r.lat_p90_s = num(o, "p90_s");
    r.lat_p99_s = num(o, "p99_s");
    r.lat_p999_s = num(o, "p999_s");
    r.lat_mean_s = num(o, "mean_s");
    r.requests = (uint64_t)num(o, "requests");
    r.errors = (uint64_t)num(o, "errors");
    r.outs_mixed = flag(o, "outputs_mixed");
    r.recording = str(o, "recording");
    r.run_id = (int64_t)num(o, "run_id");
    r.note = str(o, "note");
    const cJSON *outs = cJSON_GetObjectItemCaseSensitive(o, "outputs");
    int n = cJSON_IsArray(outs) ? cJSON_GetArraySize(outs) : 0;
    r.outs = xcalloc(n ? (size_t)n : 1, sizeof(*r.outs));
    const cJSON *e;
    cJSON_ArrayForEach(e, outs)
    {
        const cJSON *t = cJSON_GetArrayItem(e, 0), *h = cJSON_GetArrayItem(e, 1);
        if (!cJSON_IsNumber(t) || !cJSON_IsString(h) || strlen(h->valuestring) != 64) {
            exp_result_fini(&r);
            return ERR_CORRUPT;
        }
        r.outs[r.nouts].tmpl = (uint32_t)t->valuedouble;
        memcpy(r.outs[r.nouts++].hash, h->valuestring, 65);
    }
    exp_state_add(st, &r);
    return 0;
}

static int load_state(struct exp_state *st, const cJSON *root)
{
    if (num(root, "format") != EXP_STATE_FORMAT)
        return ERR_VERSION;
    st->name = str(root, "name");
    char *h = str(root, "definition");
    if (!st->name || !h || strlen(h) != 64) {
        free(h);
        return ERR_CORRUPT;
    }
    memcpy(st->def_hash, h, 65);
    free(h);
    st->seed = (uint64_t)num(root, "seed");
    st->created = num(root, "created");
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(root, "variants");
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(root, "schedule");
    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(root, "runs");
    if (!cJSON_IsArray(vs) || !cJSON_IsArray(sc) || !cJSON_IsArray(runs))
        return ERR_CORRUPT;
    const cJSON *e;
    st->variants = xcalloc((size_t)cJSON_GetArraySize(vs) + 1, sizeof(char *));
    cJSON_ArrayForEach(e, vs)
    {
        if (!cJSON_IsString(e))
            return ERR_CORRUPT;
        st->variants[st->nvariants++] = xstrdup(e->valuestring);
    }
    st->slots = xcalloc((size_t)cJSON_GetArraySize(sc) + 1, sizeof(*st->slots));
    cJSON_ArrayForEach(e, sc)
    {
        const cJSON *v = cJSON_GetArrayItem(e, 0), *r = cJSON_GetArrayItem(e, 1);
        if (!cJSON_IsNumber(v) || !cJSON_IsNumber(r) || v->valuedouble < 0 ||
            v->valuedouble >= (double)st->nvariants)
            return ERR_CORRUPT;
        st->slots[st->nslots++] = (struct exp_slot){(uint32_t)v->valuedouble,
                                                    (int32_t)r->valuedouble, r->valuedouble < 0};
    }
    cJSON_ArrayForEach(e, runs)
    {
        int rc = load_result(st, e);
        if (rc)
            return rc;
    }
    return 0;
}

int exp_state_load(struct exp_state *st, const char *path, struct errbuf *eb)
{
    char *text;
    int rc = read_all(path, &text, eb);
    if (rc)
        return rc;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root)
        return errbuf_set(eb, ERR_CORRUPT, "%s is not JSON", path);
    rc = load_state(st, root);
    cJSON_Delete(root);
    if (rc) {
        exp_state_fini(st);
        return errbuf_set(eb, ERR_CORRUPT, "%s: %s", path,
                          rc == ERR_VERSION ? "written by another crux version"
                                            : "damaged (a field is missing or out of range)");
    }
    return 0;
}
