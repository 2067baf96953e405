// SPDX-License-Identifier: MIT
// Stage rules: the built-in table, the rules-file parser and classification of a profile's
// stacks (innermost matching frame wins, computed once per stack over the trie).
#include "analysis/stages.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/hmap.h"
#include "util/xalloc.h"

static const char *const type_names[BT_N] = {"none",  "host",  "gil", "io",   "serialization",
                                             "queue", "model", "gpu", "sleep"};

static const char *const type_labels[BT_N] = {
    "unattributed waiting",
    "host bound (CPU or data pipeline saturated)",
    "GIL bound",
    "I/O or network bound",
    "serialization bound (pickle, json, copies between processes)",
    "queueing or batching wait",
    "model compute",
    "GPU underused (the GPU waits on the host)",
    "deliberate sleep or waiting for work from outside",
};

static const char *const type_fixes[BT_N] = {
    "Most time is spent waiting in code no rule names (time.sleep or a C call); add a stage "
    "rule for it.",
    "Take Python work out of the hot loop: vectorise it, use a compiled library (a fast "
    "tokenizer), cache results, or spread it over processes.",
    "Threads queue for the GIL: move CPU-bound Python work to processes or to native code "
    "that releases the GIL.",
    "Overlap the waits: issue requests concurrently or in batches, reuse connections, and "
    "prefetch or cache reads.",
    "Send less between processes: pass indices or shared memory instead of pickled objects, "
    "and use a faster codec (orjson, msgpack).",
    "Balance producers and consumers: raise batch sizes or worker counts, and look upstream "
    "for the slow stage that starves this one.",
    "The model itself dominates: batch inputs, use a smaller or quantised model, tune "
    "torch/BLAS threads, or move it to a GPU.",
    "Keep the GPU fed: prefetch with DataLoader workers and pinned memory, avoid per-step "
    ".item()/.cpu() syncs, and use larger batches.",
    "Not a bottleneck: the program sleeps on purpose (time.sleep, timers) or waits for work "
    "(accept, a terminal); shorten the sleeps or send it more work to see what limits it.",
};

const char *btype_name(enum btype t)
{
    return (unsigned)t < BT_N ? type_names[t] : "?";
}

const char *btype_label(enum btype t)
{
    return (unsigned)t < BT_N ? type_labels[t] : "?";
}

const char *btype_fix(enum btype t)
{
    return (unsigned)t < BT_N ? type_fixes[t] : "";
}

int btype_from_name(const char *s)
{
    for (int i = 0; i < BT_N; i++)
        if (strcmp(s, type_names[i]) == 0)
            return i;
    return -1;
}

/* The built-in rules, in the user rules format (docs/report.md). Order matters: the first
 * rule matching a frame wins, so specific rules come before general ones. */
const char stage_rules_builtin[] =
    "# stage NAME RUN_TYPE [WAIT_TYPE]\n"
    "stage import host host\n"
    "stage tokenize host host\n"
    "stage text-split host host\n"
    "stage model model model\n"
    "stage serialize serialization queue\n"
    "stage ipc serialization queue\n"
    "stage network io io\n"
    "stage io-wait io io\n"
    "stage file-io io io\n"
    "stage dataset io io\n"
    "stage queue-wait queue queue\n"
    "stage gpu-sync gpu gpu\n"
    "# imports and interpreter start-up\n"
    "match import module importlib\n"
    "match import file <frozen importlib*\n"
    "match import module pkg_resources\n"
    "# GPU synchronisation\n"
    "match gpu-sync call torch.cuda *synchronize*\n"
    "match gpu-sync native cudaStreamSynchronize*\n"
    "match gpu-sync native cudaDeviceSynchronize*\n"
    "match gpu-sync native cuCtxSynchronize*\n"
    "match gpu-sync native cuStreamSynchronize*\n"
    "# datasets and data loaders\n"
    "match dataset module torch.utils.data\n"
    "match dataset module datasets\n"
    "match dataset module webdataset\n"
    "match dataset module tensorflow.python.data\n"
    "# serialization and transport between processes\n"
    "match serialize module torch.serialization\n"
    "match ipc module multiprocessing.connection\n"
    "match ipc module multiprocessing.queues\n"
    "match ipc module multiprocessing.reduction\n"
    "match ipc module multiprocessing.shared_memory\n"
    "match serialize module pickle\n"
    "match serialize module copyreg\n"
    "match serialize module copy\n"
    "match serialize module json\n"
    "match serialize module simplejson\n"
    "match serialize module ujson\n"
    "match serialize module orjson\n"
    "match serialize module msgpack\n"
    "match serialize module marshal\n"
    "match serialize module cloudpickle\n"
    "match serialize module dill\n"
    "match serialize function *serializ*\n"
    "match serialize function *Serializ*\n"
    "match serialize function *pickl*\n"
    "match serialize native *orjson*\n"
    "match serialize native *_pickle*\n"
    "match serialize native *_json*\n"
    "# tokenizers and text splitting\n"
    "match tokenize module tokenizers\n"
    "match tokenize module tiktoken\n"
    "match tokenize module sentencepiece\n"
    "match tokenize module nltk.tokenize\n"
    "match tokenize module spacy.tokenizer\n"
    "match tokenize file */transformers/tokenization_*\n"
    "match tokenize native *tokenizers*\n"
    "match tokenize native *tiktoken*\n"
    "match tokenize function *tokeni[sz]*\n"
    "match tokenize function *Tokeni[sz]*\n"
    "match tokenize function *wordpiece*\n"
    "match tokenize function *bpe*\n"
    "match text-split module langchain_text_splitters\n"
    "match text-split module langchain.text_splitter\n"
    "match text-split module llama_index.core.node_parser\n"
    "match text-split module semantic_text_splitter\n"
    "match text-split function *chunk*\n"
    "match text-split function *split_text*\n"
    "match text-split function *split_sentences*\n"
    "match text-split function *text_split*\n"
    "# waits on queues, locks, events, futures\n"
    "match queue-wait call queue *.get\n"
    "match queue-wait call queue *.put\n"
    "match queue-wait call queue *.join\n"
    "match queue-wait call threading *.wait\n"
    "match queue-wait call threading *.wait_for\n"
    "match queue-wait call threading *.join\n"
    "match queue-wait call threading *._wait_for_tstate_lock\n"
    "match queue-wait call threading Semaphore.acquire\n"
    "match queue-wait call threading BoundedSemaphore.acquire\n"
    "match queue-wait call concurrent.futures *.result\n"
    "match queue-wait call concurrent.futures wait\n"
    "match queue-wait call concurrent.futures as_completed\n"
    "match queue-wait call concurrent.futures *.shutdown\n"
    "match queue-wait call multiprocessing.pool *.get\n"
    "match queue-wait call multiprocessing.pool *.wait\n"
    "match queue-wait call multiprocessing.pool *.join\n"
    "match queue-wait module multiprocessing.synchronize\n"
    "match queue-wait call multiprocessing.process *.join\n"
    "match queue-wait module asyncio.queues\n"
    "match queue-wait module asyncio.locks\n"
    "match queue-wait call asyncio.tasks gather\n"
    "match queue-wait call asyncio.tasks wait\n"
    "match queue-wait call asyncio.tasks wait_for\n"
    "# network\n"
    "match network module socket\n"
    "match network module ssl\n"
    "match network module http\n"
    "match network module urllib\n"
    "match network module urllib3\n"
    "match network module requests\n"
    "match network module httpx\n"
    "match network module httpcore\n"
    "match network module h11\n"
    "match network module aiohttp\n"
    "match network module grpc\n"
    "match network module websockets\n"
    "match network module asyncio.streams\n"
    "match network module asyncio.sslproto\n"
    "match network call asyncio.selector_events *sock_*\n"
    "match network call asyncio.selector_events *._read_ready*\n"
    "match network call asyncio.selector_events *._write_*\n"
    "match network native libssl*\n"
    "match network native */libssl*\n"
    "match io-wait module selectors\n"
    "match io-wait call asyncio.base_events *._run_once\n"
    "# files\n"
    "match file-io module numpy.lib.npyio\n"
    "match file-io module numpy.lib.format\n"
    "match file-io module safetensors\n"
    "match file-io module h5py\n"
    "match file-io module pyarrow\n"
    "match file-io module pandas.io\n"
    "match file-io module gzip\n"
    "match file-io module bz2\n"
    "match file-io module lzma\n"
    "match file-io module zipfile\n"
    "match file-io module tarfile\n"
    "match file-io module shutil\n"
    "match file-io module csv\n"
    "match file-io module _pyio\n"
    "match file-io module codecs\n"
    "match file-io call pathlib *.read_*\n"
    "match file-io call pathlib *.write_*\n"
    "match file-io call pathlib *.open\n"
    "# model compute: torch, numpy, sklearn and friends, and nn.Module.forward anywhere\n"
    "match model module torch\n"
    "match model module transformers\n"
    "match model module sentence_transformers\n"
    "match model module sklearn\n"
    "match model module numpy\n"
    "match model module scipy\n"
    "match model module jax\n"
    "match model module jaxlib\n"
    "match model module tensorflow\n"
    "match model module keras\n"
    "match model module onnxruntime\n"
    "match model module xgboost\n"
    "match model module lightgbm\n"
    "match model module faiss\n"
    "match model function forward\n"
    "match model function *embed*\n"
    "match model function *Embed*\n"
    "match model function *.forward\n"
    "match model native libtorch*\n"
    "match model native */libtorch*\n"
    "match model native *openblas*\n"
    "match model native *libblas*\n"
    "match model native *liblapack*\n"
    "match model native *libmkl*\n"
    "match model native *libgomp*\n"
    "match model native *_multiarray_umath*\n"
    "match model native *onnxruntime*\n";

/* The id of stage `name`, or UINT32_MAX. A hash collision (two names, one 64-bit hash)
 * falls back to a scan. */
static uint32_t find_stage(const struct stage_rules *r, const char *name)
{
    uint64_t id;
    if (!hmap_get(&r->by_name, hmap_hash_bytes(name, strlen(name)), &id))
        return UINT32_MAX; /* every stage's hash is in the map */
    if (strcmp(r->stages[id].name, name) == 0)
        return (uint32_t)id;
    for (uint32_t i = 0; i < r->nstages; i++)
        if (strcmp(r->stages[i].name, name) == 0)
            return i;
    return UINT32_MAX;
}

static uint32_t add_stage(struct stage_rules *r, const char *name, uint8_t run, uint8_t wait)
{
    uint32_t i = find_stage(r, name);
    if (i != UINT32_MAX) {
        r->stages[i].run_type = run;
        r->stages[i].wait_type = wait;
        return i;
    }
    if (r->nstages == r->capstages) {
        r->capstages = r->capstages ? r->capstages * 2 : 16;
        r->stages = xrealloc(r->stages, r->capstages * sizeof(*r->stages));
    }
    r->stages[r->nstages] = (struct stage_def){xstrdup(name), run, wait};
    /* A colliding name keeps the first one's slot; find_stage scans for it. */
    (void)hmap_slot(&r->by_name, hmap_hash_bytes(name, strlen(name)), r->nstages, NULL);
    return r->nstages++;
}

uint32_t stage_rules_stage(struct stage_rules *r, const char *name)
{
    uint32_t i = find_stage(r, name);
    return i != UINT32_MAX ? i : add_stage(r, name, BT_HOST, BT_QUEUE);
}

void stage_rules_init(struct stage_rules *r)
{
    memset(r, 0, sizeof(*r));
    hmap_init(&r->by_name);
    (void)add_stage(r, "other", BT_HOST, BT_NONE);
    int rc =
        stage_rules_parse(r, stage_rules_builtin, strlen(stage_rules_builtin), "built-in", NULL);
    (void)rc; /* the built-in text is checked by tests/unit/test_analysis.c */
}

static void rule_free(struct stage_rule *x)
{
    free(x->module);
    free(x->glob);
}

void stage_rules_fini(struct stage_rules *r)
{
    for (size_t i = 0; i < r->nrules; i++)
        rule_free(&r->rules[i]);
    free(r->rules);
    for (uint32_t i = 0; i < r->nstages; i++)
        free(r->stages[i].name);
    free(r->stages);
    hmap_fini(&r->by_name);
    memset(r, 0, sizeof(*r));
}

/* Splits the line at `s` into at most `max` blank-separated words (NUL-terminating them in
 * place); the last word takes the rest of the line when `rest` is set. Returns the count. */
static int split_words(char *s, char **w, int max)
{
    int n = 0;
    while (*s && n < max) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '#')
            break;
        w[n++] = s;
        if (n == max)
            break;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        if (*s)
            *s++ = '\0';
    }
    if (n == max) { /* the last word runs to the end of the line, trailing blanks cut */
        char *e = w[n - 1] + strlen(w[n - 1]);
        while (e > w[n - 1] && (e[-1] == ' ' || e[-1] == '\t'))
            *--e = '\0';
    }
    return n;
}

static char *module_path(const char *dotted)
{
    char *m = xstrdup(dotted);
    for (char *c = m; *c; c++)
        if (*c == '.')
            *c = '/';
    return m;
}

static int parse_line(struct stage_rules *r, char *line, struct stage_rule *out, bool *has_rule,
                      const char *origin, int lineno, struct errbuf *eb)
{
    char *w[5];
    *has_rule = false;
    int n = split_words(line, w, 5);
    if (n == 0)
        return 0;
    if (strcmp(w[0], "stage") == 0) {
        if (n < 3 || n > 4)
            return errbuf_set(eb, ERR_ARG, "%s:%d: expected 'stage NAME RUN_TYPE [WAIT_TYPE]'",
                              origin, lineno);
        int run = btype_from_name(w[2]);
        int wait = n == 4 ? btype_from_name(w[3]) : run;
        if (run < 0 || wait < 0)
            return errbuf_set(eb, ERR_ARG,
                              "%s:%d: unknown bottleneck type: use host, gil, io, "
                              "serialization, queue, model, gpu or none",
                              origin, lineno);
        (void)add_stage(r, w[1], (uint8_t)run, (uint8_t)wait);
        return 0;
    }
    if (strcmp(w[0], "match") != 0 || n < 4)
        return errbuf_set(eb, ERR_ARG,
                          "%s:%d: expected 'stage NAME TYPE' or 'match STAGE KIND PATTERN' "
                          "(KIND: module, function, call, file, native)",
                          origin, lineno);
    struct stage_rule x = {0};
    const char *kind = w[2];
    if (strcmp(kind, "call") == 0) {
        if (n < 5)
            return errbuf_set(eb, ERR_ARG, "%s:%d: expected 'match STAGE call MODULE GLOB'", origin,
                              lineno);
        x.kind = RULE_CALL;
        x.module = module_path(w[3]);
        x.glob = xstrdup(w[4]);
    } else {
        if (n == 5) { /* a pattern with blanks: put the split back together */
            w[3][strlen(w[3])] = ' ';
        }
        if (strcmp(kind, "module") == 0) {
            x.kind = RULE_MODULE;
            x.module = module_path(w[3]);
        } else if (strcmp(kind, "function") == 0) {
            x.kind = RULE_FUNCTION;
            x.glob = xstrdup(w[3]);
        } else if (strcmp(kind, "file") == 0) {
            x.kind = RULE_FILE;
            x.glob = xstrdup(w[3]);
        } else if (strcmp(kind, "native") == 0) {
            x.kind = RULE_NATIVE;
            x.glob = xstrdup(w[3]);
        } else {
            return errbuf_set(eb, ERR_ARG,
                              "%s:%d: unknown match kind '%s': use module, function, call, "
                              "file or native",
                              origin, lineno, kind);
        }
    }
    x.stage = stage_rules_stage(r, w[1]);
    x.builtin = strcmp(origin, "built-in") == 0;
    *out = x;
    *has_rule = true;
    return 0;
}

int stage_rules_parse(struct stage_rules *r, const char *text, size_t n, const char *origin,
                      struct errbuf *eb)
{
    struct stage_rule *fresh = NULL;
    size_t nfresh = 0, capfresh = 0;
    int rc = 0;
    int lineno = 0;
    size_t i = 0;
    while (i < n && !rc) {
        size_t e = i;
        while (e < n && text[e] != '\n')
            e++;
        lineno++;
        char *line = xstrndup(text + i, e - i);
        if (e > i && line[e - i - 1] == '\r')
            line[e - i - 1] = '\0';
        struct stage_rule x;
        bool has;
        rc = parse_line(r, line, &x, &has, origin, lineno, eb);
        free(line);
        if (!rc && has) {
            if (nfresh == capfresh) {
                capfresh = capfresh ? capfresh * 2 : 64;
                fresh = xrealloc(fresh, capfresh * sizeof(*fresh));
            }
            fresh[nfresh++] = x;
        }
        i = e + 1;
    }
    if (rc) {
        for (size_t k = 0; k < nfresh; k++)
            rule_free(&fresh[k]);
        free(fresh);
        return rc;
    }
    /* New rules go first: they override the ones already there. */
    size_t total = nfresh + r->nrules;
    if (total > r->caprules) {
        r->caprules = total;
        r->rules = xrealloc(r->rules, r->caprules * sizeof(*r->rules));
    }
    if (r->nrules)
        memmove(r->rules + nfresh, r->rules, r->nrules * sizeof(*r->rules));
    if (nfresh)
        memcpy(r->rules, fresh, nfresh * sizeof(*fresh));
    r->nrules = total;
    free(fresh);
    return 0;
}

int stage_rules_load(struct stage_rules *r, const char *path, struct errbuf *eb)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errbuf_set(eb, ERR_IO, "cannot open rules file %s: %s", path, strerror(errno));
    struct buf b;
    buf_init(&b, 16u << 20);
    char chunk[8192];
    size_t got;
    int rc = 0;
    while (!rc && (got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = buf_append(&b, chunk, got);
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (rc || err) {
        buf_fini(&b);
        return errbuf_set(eb, ERR_IO, "cannot read rules file %s: %s: give a text file of rules",
                          path, rc ? "larger than 16 MiB" : strerror(err));
    }
    rc = stage_rules_parse(r, b.data ? b.data : "", b.len, path, eb);
    buf_fini(&b);
    return rc;
}

/* True when `path` lies in module `mod` ("a/b" form): a path component sequence "a/b" that
 * ends in ".py", "/", or is the whole path's start. */
static bool in_module(const char *path, const char *mod)
{
    size_t m = strlen(mod);
    for (const char *s = strstr(path, mod); s; s = strstr(s + 1, mod)) {
        if (s != path && s[-1] != '/')
            continue;
        const char *e = s + m;
        if (*e == '/' || strncmp(e, ".py", 3) == 0 || strncmp(e, ".cpython", 8) == 0 ||
            strncmp(e, ".so", 3) == 0 || strncmp(e, ".abi3", 5) == 0)
            return true;
    }
    return false;
}

/* Glob on a function name; a pattern "Class.meth" or "*.meth" also matches a bare "meth"
 * (3.8-3.10 report co_name, not the qualified name). */
static bool name_matches(const char *glob, const char *name)
{
    if (fnmatch(glob, name, 0) == 0)
        return true;
    const char *dot = strrchr(glob, '.');
    return dot && !strchr(name, '.') && fnmatch(dot + 1, name, 0) == 0;
}

static bool rule_matches(const struct stage_rule *x, const struct pframe *f, const char *name,
                         const char *file)
{
    if (f->kind == FRAME_NATIVE) {
        if (x->kind != RULE_NATIVE)
            return x->kind == RULE_MODULE && file[0] && in_module(file, x->module);
        return fnmatch(x->glob, name, 0) == 0 || (file[0] && fnmatch(x->glob, file, 0) == 0);
    }
    if (f->kind != FRAME_PYTHON)
        return false;
    switch (x->kind) {
    case RULE_MODULE:
        return in_module(file, x->module);
    case RULE_FUNCTION:
        return name_matches(x->glob, name);
    case RULE_CALL:
        return in_module(file, x->module) && name_matches(x->glob, name);
    case RULE_FILE:
        return fnmatch(x->glob, file, 0) == 0;
    case RULE_NATIVE:
        return false;
    }
    return false;
}

/* Stage of one frame + 1, or 0 when no rule matches; *weak says whether the rule that
 * matched is a built-in one on the function's name alone. */
static uint32_t frame_stage(const struct stage_rules *r, const struct profile *p,
                            const struct pframe *f, bool *weak)
{
    const char *name = profile_string(p, f->name);
    const char *file = profile_string(p, f->file);
    *weak = false;
    for (size_t i = 0; i < r->nrules; i++)
        if (rule_matches(&r->rules[i], f, name, file)) {
            *weak = r->rules[i].builtin && r->rules[i].kind == RULE_FUNCTION;
            return r->rules[i].stage + 1;
        }
    return 0;
}

static bool waiting_type(uint8_t t)
{
    return t == BT_IO || t == BT_QUEUE || t == BT_NONE || t == BT_SLEEP;
}

static uint32_t *classify(const struct stage_rules *r, const struct profile *p, uint8_t **weak,
                          bool cpu);

uint32_t *stage_classify(const struct stage_rules *r, const struct profile *p, uint8_t **weak)
{
    return classify(r, p, weak, false);
}

uint32_t *stage_classify_cpu(const struct stage_rules *r, const struct profile *p, uint8_t **weak)
{
    return classify(r, p, weak, true);
}

static uint32_t *classify(const struct stage_rules *r, const struct profile *p, uint8_t **weak,
                          bool cpu)
{
    /* Per frame first (cached by name and file, as lines of a function share them), then per
     * stack over the trie: a parent's id is below its child's. The cache holds stage + 1 and
     * the weak flag in bit 32. */
    uint32_t *fst = xmalloc(((size_t)p->nframes + 1) * sizeof(*fst));
    uint8_t *fweak = xcalloc((size_t)p->nframes + 1, 1);
    struct hmap cache;
    hmap_init(&cache);
    for (uint32_t i = 0; i < p->nframes; i++) {
        const struct pframe *f = profile_frame_at(p, i);
        if (f->kind != FRAME_PYTHON && f->kind != FRAME_NATIVE) {
            fst[i] = 0;
            continue;
        }
        uint64_t key = hmap_hash64(((uint64_t)f->name << 32 | f->file) ^ ((uint64_t)f->kind << 63));
        key = key ? key : 1;
        uint64_t v;
        if (hmap_get(&cache, key, &v)) {
            fst[i] = (uint32_t)v;
            fweak[i] = (uint8_t)(v >> 32);
            continue;
        }
        bool wk;
        fst[i] = frame_stage(r, p, f, &wk);
        if (cpu && fst[i] && waiting_type(r->stages[fst[i] - 1].run_type))
            fst[i] = 0; /* a waiting primitive: on CPU, its time is the caller's */
        fweak[i] = fst[i] ? wk : 0;
        hmap_put(&cache, key, (uint64_t)fst[i] | ((uint64_t)wk << 32));
    }
    hmap_fini(&cache);
    uint32_t *st = xmalloc(((size_t)p->nnodes + 1) * sizeof(*st));
    uint8_t *sw = xcalloc((size_t)p->nnodes + 1, 1);
    st[0] = STAGE_OTHER;
    for (uint32_t s = 1; s < p->nnodes; s++) {
        uint32_t fr = p->nodes[s].frame;
        uint32_t m = fst[fr];
        st[s] = m ? m - 1 : st[p->nodes[s].parent];
        sw[s] = m ? fweak[fr] : sw[p->nodes[s].parent];
    }
    free(fst);
    free(fweak);
    if (weak)
        *weak = sw;
    else
        free(sw);
    return st;
}
