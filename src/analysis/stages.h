// SPDX-License-Identifier: MIT
// Stage attribution: rules that map frames to pipeline stages (tokenize, model, serialize,
// network, ...) and each stage to a bottleneck type. Built-in rules plus a user rules file;
// the format is documented in docs/report.md.
#ifndef CRUX_STAGES_H
#define CRUX_STAGES_H

#include <stddef.h>
#include <stdint.h>

#include "profile/profile.h"
#include "util/err.h"
#include "util/hmap.h"

/* Bottleneck types a verdict can name. */
enum btype {
    BT_NONE = 0,   /* not a bottleneck type: unattributed waiting (time.sleep, a C call) */
    BT_HOST = 1,   /* host bound: CPU or the data pipeline saturated */
    BT_GIL = 2,    /* threads waiting for the GIL */
    BT_IO = 3,     /* file, dataset or network I/O */
    BT_SERIAL = 4, /* serialization: pickle, json, copies between processes */
    BT_QUEUE = 5,  /* queueing or batching wait */
    BT_MODEL = 6,  /* model compute */
    BT_GPU = 7,    /* a GPU waits on the host */
    BT_SLEEP = 8,  /* not a bottleneck: a deliberate sleep, or waiting for work from outside */
    BT_N = 9,
};

/* Machine names ("host", "gil", "io", "serialization", "queue", "model", "gpu", "sleep",
 * "none"). */
const char *btype_name(enum btype t);
/* Human label ("host bound (CPU or data pipeline saturated)"). */
const char *btype_label(enum btype t);
/* One sentence on what usually fixes the type. */
const char *btype_fix(enum btype t);
/* BT_* for a machine name; -1 when unknown. */
int btype_from_name(const char *s);

#define STAGE_OTHER 0u /* stage id of time no rule claims */

enum rule_kind {
    RULE_MODULE = 0,   /* the frame's file belongs to a dotted module (path component match) */
    RULE_FUNCTION = 1, /* glob on the Python qualname, any file */
    RULE_CALL = 2,     /* module and qualname glob together */
    RULE_FILE = 3,     /* glob on the Python file path */
    RULE_NATIVE = 4,   /* glob on a native frame's symbol or library path */
};

struct stage_rule {
    uint32_t stage;
    enum rule_kind kind;
    bool builtin; /* from the built-in table (not a user's rules file) */
    char *module; /* RULE_MODULE, RULE_CALL: "a/b" form of "a.b" */
    char *glob;   /* RULE_FUNCTION, RULE_CALL, RULE_FILE, RULE_NATIVE */
};

struct stage_def {
    char *name;
    uint8_t run_type;  /* enum btype while on CPU (or state unknown) */
    uint8_t wait_type; /* enum btype while off CPU */
};

/* Rules in priority order (first match at a frame wins) and the stages they name. */
struct stage_rules {
    struct stage_rule *rules;
    size_t nrules, caprules;
    struct stage_def *stages; /* stage id -> definition; id 0 is "other" */
    uint32_t nstages, capstages;
    struct hmap by_name; /* hash of a stage's name -> its id (a rules file may name 10^5) */
};

/* The built-in rules (docs/report.md lists them), in storage the caller owns. */
void stage_rules_init(struct stage_rules *r);
/* Releases everything. */
void stage_rules_fini(struct stage_rules *r);

/* Parses rules text (`origin` names it in errors) and puts its rules before every rule
 * already present, so user rules override built-in ones; `stage` lines redefine types.
 * ERR_ARG with "FILE:LINE: ..." in `eb` on a malformed line (nothing is added then). */
int stage_rules_parse(struct stage_rules *r, const char *text, size_t n, const char *origin,
                      struct errbuf *eb) MUST_CHECK;
/* Reads and parses a rules file. ERR_IO or ERR_ARG with details in `eb`. */
int stage_rules_load(struct stage_rules *r, const char *path, struct errbuf *eb) MUST_CHECK;

/* The stage id named `name`, created (types host/queue) when new. */
uint32_t stage_rules_stage(struct stage_rules *r, const char *name);

/* Classifies every stack of `p`: returns an array of p->nnodes stage ids (the caller frees
 * it). A stack's stage is that of its innermost frame some rule matches; STAGE_OTHER when none.
 * A psample's own `stage` tag is applied by the verdict, not here. When `weak` is not NULL it
 * receives an array of p->nnodes flags (the caller frees it): 1 where the stage came from a
 * built-in rule on a function's name alone (weak evidence: the verdict lets the kernel's
 * evidence and modules overrule it). */
uint32_t *stage_classify(const struct stage_rules *r, const struct profile *p, uint8_t **weak);
/* Like stage_classify, but skipping frames whose stage's RUN_TYPE is a wait (io, queue, none):
 * the stage that on-CPU time inside a waiting primitive (a selector, a queue, a lock) belongs
 * to, i.e. the nearest enclosing stage that does work. `weak` as above. */
uint32_t *stage_classify_cpu(const struct stage_rules *r, const struct profile *p, uint8_t **weak);

/* The built-in rules text (for docs and tests). */
extern const char stage_rules_builtin[];

#endif
