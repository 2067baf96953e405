// SPDX-License-Identifier: MIT
// crux exp: the experiment's definition (from a file of `key = value` lines or from the
// command line), its variants (the matrix of `vary` values less the `exclude`d ones) and the
// `{param}` templates filled per run (docs/loop.md, "Experiments").
#ifndef CRUX_EXPDEF_H
#define CRUX_EXPDEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Bounds of a definition: a matrix past these is a mistake, not an experiment. */
#define EXP_MAX_PARAMS 16
#define EXP_MAX_VALUES 256
#define EXP_MAX_VARIANTS 4096
#define EXP_MAX_REPEATS 10000
#define EXP_MAX_LINE 4096

/* How the outputs of two variants must agree. */
enum exp_check {
    EXP_CHECK_EXACT = 0,     /* byte for byte (SHA-256) */
    EXP_CHECK_TOLERANCE = 1, /* same text, numbers within a relative tolerance */
    EXP_CHECK_TOKENS = 2,    /* whitespace tokens: the share that match at least tokens_min */
    EXP_CHECK_NONE = 3,      /* `check = none`: not compared */
};

/* A `NAME = value` pair: an environment entry, or one term of an `exclude` line. */
struct exp_kv {
    char *name, *value;
};

/* One `vary NAME = v1 v2 ...` line. */
struct exp_param {
    char *name;
    char **values;
    size_t n;
};

/* One `exclude NAME=v NAME=v` line: a combination matching every term is dropped. */
struct exp_exclude {
    struct exp_kv *terms;
    size_t n;
};

/* One SLO term: `metric` is "p50", "p90", "p99", "p999", "mean" (seconds: of the requests'
 * latency under load, of the runs' wall time in command mode) or "errors" (a share). */
struct exp_slo_term {
    const char *metric; /* static */
    double limit;
};
#define EXP_MAX_SLO 8

/* The definition. Every string and array is owned (exp_def_fini). */
struct exp_def {
    char *name;   /* the experiment's name (state file exp-NAME.json) */
    char *source; /* the file it was read from, or "the command line" */
    /* The command template: its words (exec'd directly, each word filled), or, when `shell`,
     * the text run by /bin/sh -c (filled as text). */
    char *command;
    char **words;
    size_t nwords;
    bool shell;
    struct exp_kv *env;
    size_t nenv;
    struct exp_param *params;
    size_t nparams;
    struct exp_exclude *excludes;
    size_t nexcludes;
    int repeats;       /* measured runs per variant (default 5) */
    int warmup;        /* discarded runs per variant, before the measured ones (default 1) */
    double cooldown_s; /* pause between runs (default 0) */
    uint64_t seed;
    bool seed_set;
    char *output; /* a file path template the command writes, or NULL: its stdout */
    enum exp_check check;
    double tolerance;     /* EXP_CHECK_TOLERANCE: relative */
    double tokens_min;    /* EXP_CHECK_TOKENS: least share of matching tokens (default 1) */
    double cost_per_hour; /* USD; 0: none */
    bool profile;         /* each run under crux record --save */
    /* Server mode: start `server`, poll `ready`, run `crux load` with `load`'s arguments. */
    char *server;
    char *ready;
    double ready_timeout_s; /* default 60 */
    char *load;
    char *slo;                                  /* "p99=200ms,errors=1%"; NULL: none */
    struct exp_slo_term slo_terms[EXP_MAX_SLO]; /* parsed by exp_def_check */
    size_t nslo;
};

/* One variant: the index of its value for each parameter, and its name ("batch=8,workers=2",
 * or "default" when nothing varies). */
struct exp_variant {
    char *name;
    uint16_t vals[EXP_MAX_PARAMS];
};

/* Sets the defaults into caller storage (nothing allocated yet). */
void exp_def_init(struct exp_def *d);
/* Frees everything the definition owns; it is left as after exp_def_init. */
void exp_def_fini(struct exp_def *d);

/* Reads the definition file `path` into `d` (initialized by the caller). A mistake is
 * ERR_ARG with "FILE:LINE: what: fix" in `eb` (an unknown key names the closest known one). */
int exp_def_read_file(struct exp_def *d, const char *path, struct errbuf *eb) MUST_CHECK;
/* Applies one line of definition text (`key = value`, `vary ...`, `exclude ...`, a comment
 * or a blank line) as the file reader does; `where` prefixes errors ("exp.conf:7"). */
int exp_def_line(struct exp_def *d, const char *line, const char *where,
                 struct errbuf *eb) MUST_CHECK;
/* Sets the command from words given on the command line (each word one argument, never a
 * shell). Copies them. */
void exp_def_set_words(struct exp_def *d, char *const *words, size_t n);
/* Checks the definition as a whole (a command or a server, placeholders that name a
 * parameter, exclude terms that name a value) and fills the name when missing. ERR_ARG with
 * the cause and fix in `eb`. */
int exp_def_check(struct exp_def *d, struct errbuf *eb) MUST_CHECK;

/* Expands the matrix into variants, in the order of the `vary` lines (the first varies
 * slowest), less the excluded combinations. Returns a new array the caller frees with
 * exp_variants_free. ERR_ARG when nothing is left or there are more than EXP_MAX_VARIANTS. */
int exp_variants(const struct exp_def *d, struct exp_variant **out, size_t *n,
                 struct errbuf *eb) MUST_CHECK;
void exp_variants_free(struct exp_variant *v, size_t n);

/* Values of the built-in placeholders of one run ({variant} and {param}s come from `v`). */
struct exp_fill {
    int repeat;      /* {repeat}: repeat index (warm-up runs: -1, -2, ...) */
    int run;         /* {run}: position in the schedule */
    int port;        /* {port}: a free TCP port chosen for the run (0: none chosen) */
    const char *dir; /* {dir}: the experiment's folder */
};

/* Fills the `{param}` placeholders of `tmpl` for variant `v` ("{{" and "}}" are literal
 * braces). Returns a new string; the caller frees it. ERR_ARG for an unknown placeholder. */
int exp_fill(const struct exp_def *d, const struct exp_variant *v, const struct exp_fill *f,
             const char *tmpl, char **out, struct errbuf *eb) MUST_CHECK;
/* Splits command text into words as a POSIX shell would for plain words ('...', "...",
 * backslash); *needs_shell is set when the text uses what only a shell does (pipes,
 * redirections, $, globs, ;, &&). Returns a new NULL-terminated array (exp_words_free). */
int exp_split(const char *s, char ***words, size_t *n, bool *needs_shell,
              struct errbuf *eb) MUST_CHECK;
void exp_words_free(char **w, size_t n);

/* The definition's identity: SHA-256 (hex, 64 characters and a NUL) of every field that
 * changes what a run does; `check`, `slo` and `cost-per-hour` only change the report, and
 * the seed counts only when it was given. */
void exp_def_hash(const struct exp_def *d, char hex[65]);

#endif
