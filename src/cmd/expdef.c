// SPDX-License-Identifier: MIT
// crux exp: reading an experiment's definition, expanding its matrix and filling templates.
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cmd/expdef.h"
#include "util/buf.h"
#include "util/xalloc.h"

/* Keys of a definition file; `vary`, `exclude` and `env.NAME` have their own syntax. */
enum key {
    K_NAME,
    K_COMMAND,
    K_REPEATS,
    K_WARMUP,
    K_COOLDOWN,
    K_SEED,
    K_OUTPUT,
    K_CHECK,
    K_COST,
    K_PROFILE,
    K_SERVER,
    K_READY,
    K_READY_TIMEOUT,
    K_LOAD,
    K_SLO,
    K_VARY,
    K_EXCLUDE,
    K_ENV,
    K_COUNT
};

static const char *const KEYS[K_COUNT] = {
    "name",          "command", "repeats",       "warmup",  "cooldown", "seed",
    "output",        "check",   "cost-per-hour", "profile", "server",   "ready",
    "ready-timeout", "load",    "slo",           "vary",    "exclude",  "env.NAME"};

/* Placeholders every template may use besides the parameters. */
static const char *const BUILTINS[] = {"variant", "repeat", "run", "port", "dir"};
#define NBUILTINS (sizeof(BUILTINS) / sizeof(BUILTINS[0]))

void exp_def_init(struct exp_def *d)
{
    memset(d, 0, sizeof(*d));
    d->repeats = 5;
    d->warmup = 1;
    d->tokens_min = 1.0;
    d->ready_timeout_s = 60;
}

static void kv_free(struct exp_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].name);
        free(kv[i].value);
    }
    free(kv);
}

void exp_words_free(char **w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(w[i]);
    free(w);
}

static void param_free(struct exp_param *p)
{
    free(p->name);
    exp_words_free(p->values, p->n);
}

void exp_def_fini(struct exp_def *d)
{
    free(d->name);
    free(d->source);
    free(d->command);
    exp_words_free(d->words, d->nwords);
    kv_free(d->env, d->nenv);
    for (size_t i = 0; i < d->nparams; i++)
        param_free(&d->params[i]);
    free(d->params);
    for (size_t i = 0; i < d->nexcludes; i++)
        kv_free(d->excludes[i].terms, d->excludes[i].n);
    free(d->excludes);
    free(d->output);
    free(d->server);
    free(d->ready);
    free(d->load);
    free(d->slo);
    exp_def_init(d);
}

/* Edit distance of two short strings (each cut at 63 bytes): for "did you mean". */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strnlen(a, 63), lb = strnlen(b, 63);
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The closest of `names` to `s` when it is close enough to be a typo, or NULL. */
static const char *closest(const char *s, const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t bd = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        size_t dist = edit_distance(s, names[i]);
        if (dist < bd) {
            bd = dist;
            best = names[i];
        }
    }
    size_t len = strlen(s);
    size_t limit = len / 3 > 2 ? len / 3 : 2;
    return bd <= limit ? best : NULL;
}

static bool is_name(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

static bool is_builtin(const char *s, size_t n)
{
    for (size_t i = 0; i < NBUILTINS; i++)
        if (strlen(BUILTINS[i]) == n && !memcmp(BUILTINS[i], s, n))
            return true;
    return false;
}

/* -- words -------------------------------------------------------------------------------- */

static void word_end(struct buf *w, bool *in_word, char ***words, size_t *n, size_t *cap)
{
    if (!*in_word)
        return;
    if (*n + 2 > *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *words = xrealloc(*words, *cap * sizeof(**words));
    }
    (*words)[(*n)++] = xstrdup(buf_cstr(w));
    (*words)[*n] = NULL;
    buf_reset(w);
    *in_word = false;
}

int exp_split(const char *s, char ***words, size_t *n, bool *needs_shell, struct errbuf *eb)
{
    struct buf w;
    buf_init(&w, EXP_MAX_LINE * 4);
    char **v = xcalloc(1, sizeof(*v));
    size_t nv = 0, cap = 1;
    bool in_word = false, shell = false;
    char quote = 0;
    int rc = 0;
    for (const char *p = s; *p && !rc; p++) {
        char c = *p;
        if (quote == '\'') {
            if (c == '\'')
                quote = 0;
            else
                rc = buf_putc(&w, c);
        } else if (quote == '"') {
            if (c == '"')
                quote = 0;
            else if (c == '\\' && p[1] && strchr("\"\\$`", p[1]))
                rc = buf_putc(&w, *++p);
            else
                rc = buf_putc(&w, c);
            if (c == '$' || c == '`')
                shell = true;
        } else if (c == ' ' || c == '\t') {
            word_end(&w, &in_word, &v, &nv, &cap);
        } else if (c == '\'' || c == '"') {
            quote = c;
            in_word = true;
        } else if (c == '\\' && p[1]) {
            rc = buf_putc(&w, *++p);
            in_word = true;
        } else {
            /* What only a shell does: pipes, lists, redirections, expansions, globs, comments,
             * a leading ~ (a '$' inside '{..}' placeholders never occurs: names are plain). */
            if (strchr("|&;<>()$`*?[\n", c) || ((c == '~' || c == '#') && !in_word))
                shell = true;
            rc = buf_putc(&w, c);
            in_word = true;
        }
    }
    if (!rc && quote)
        rc = errbuf_set(eb, ERR_ARG, "unterminated %c quote in '%s'", quote, s);
    if (!rc)
        word_end(&w, &in_word, &v, &nv, &cap);
    buf_fini(&w);
    if (!rc && nv == 0)
        rc = errbuf_set(eb, ERR_ARG, "an empty command");
    if (rc) {
        if (rc == ERR_TOO_LARGE)
            rc = errbuf_set(eb, ERR_ARG, "a command of more than %d bytes", EXP_MAX_LINE * 4);
        exp_words_free(v, nv);
        return rc;
    }
    *words = v;
    *n = nv;
    *needs_shell = shell;
    return 0;
}

/* -- values ------------------------------------------------------------------------------- */

static int bad(struct errbuf *eb, const char *where, const char *key, const char *val,
               const char *fix)
{
    return errbuf_set(eb, ERR_ARG, "%s: %s '%s': %s", where, key, val, fix);
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi)
        return ERR_ARG;
    *out = v;
    return 0;
}

/* Seconds with an optional unit: ms, s, m. */
static int parse_secs(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || v < 0)
        return ERR_ARG;
    if (!strcmp(end, "ms"))
        v /= 1e3;
    else if (!strcmp(end, "m") || !strcmp(end, "min"))
        v *= 60;
    else if (*end && strcmp(end, "s"))
        return ERR_ARG;
    if (v > 86400)
        return ERR_ARG;
    *out = v;
    return 0;
}

static int parse_check(struct exp_def *d, const char *v)
{
    char *end;
    if (!strcmp(v, "exact")) {
        d->check = EXP_CHECK_EXACT;
    } else if (!strcmp(v, "none")) {
        d->check = EXP_CHECK_NONE;
    } else if (!strcmp(v, "tokens")) {
        d->check = EXP_CHECK_TOKENS;
        d->tokens_min = 1.0;
    } else if (!strncmp(v, "tolerance=", 10)) {
        double t = strtod(v + 10, &end);
        if (end == v + 10 || *end || !(t >= 0 && t < 1e6))
            return ERR_ARG;
        d->check = EXP_CHECK_TOLERANCE;
        d->tolerance = t;
    } else if (!strncmp(v, "tokens=", 7)) {
        double t = strtod(v + 7, &end);
        if (end == v + 7 || *end || !(t > 0 && t <= 1))
            return ERR_ARG;
        d->check = EXP_CHECK_TOKENS;
        d->tokens_min = t;
    } else {
        return ERR_ARG;
    }
    return 0;
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = xstrdup(v);
}

static int set_command(struct exp_def *d, const char *v, struct errbuf *eb)
{
    char **w;
    size_t n;
    bool shell;
    int rc = exp_split(v, &w, &n, &shell, eb);
    if (rc)
        return rc;
    exp_words_free(d->words, d->nwords);
    d->words = w;
    d->nwords = n;
    d->shell = shell;
    set_str(&d->command, v);
    return 0;
}

/* Applies `key = v` (a scalar key): one case per key, each a parse and a one-line fix. */
static int set_key(struct exp_def *d, enum key k, const char *v, const char *where,
                   struct errbuf *eb)
{
    long l;
    double x;
    switch (k) {
    case K_NAME:
        if (!is_name(v, strlen(v)) || strlen(v) > 64)
            return bad(eb, where, "name", v, "use letters, digits, '_' and '-' (up to 64)");
        set_str(&d->name, v);
        return 0;
    case K_COMMAND: {
        int rc = set_command(d, v, eb);
        if (rc && eb) {
            struct errbuf inner = *eb;
            rc = errbuf_set(eb, rc, "%s: command: %s", where, inner.msg);
        }
        return rc;
    }
    case K_REPEATS:
        if (parse_int(v, 1, EXP_MAX_REPEATS, &l))
            return bad(eb, where, "repeats", v, "give a whole number from 1 to 10000");
        d->repeats = (int)l;
        return 0;
    case K_WARMUP:
        if (parse_int(v, 0, 1000, &l))
            return bad(eb, where, "warmup", v, "give a whole number of runs from 0 to 1000");
        d->warmup = (int)l;
        return 0;
    case K_COOLDOWN:
        if (parse_secs(v, &d->cooldown_s))
            return bad(eb, where, "cooldown", v, "give seconds, e.g. 2, 500ms or 1m");
        return 0;
    case K_SEED: {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        if (end == v || *end || errno || v[0] == '-')
            return bad(eb, where, "seed", v, "give a whole number");
        d->seed = s;
        d->seed_set = true;
        return 0;
    }
    case K_OUTPUT:
        set_str(&d->output, v);
        return 0;
    case K_CHECK:
        if (parse_check(d, v))
            return bad(eb, where, "check", v,
                       "use exact, tolerance=REL (e.g. 1e-6), tokens, tokens=SHARE or none");
        return 0;
    case K_COST:
        if (parse_secs(v, &x) || strpbrk(v, "ms"))
            return bad(eb, where, "cost-per-hour", v, "give US dollars per hour, e.g. 2.5");
        d->cost_per_hour = x;
        return 0;
    case K_PROFILE:
        if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"))
            d->profile = true;
        else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0"))
            d->profile = false;
        else
            return bad(eb, where, "profile", v, "use yes or no");
        return 0;
    case K_SERVER:
        set_str(&d->server, v);
        return 0;
    case K_READY:
        if (strncmp(v, "http://", 7))
            return bad(eb, where, "ready", v, "give an http:// URL that answers 2xx when ready");
        set_str(&d->ready, v);
        return 0;
    case K_READY_TIMEOUT:
        if (parse_secs(v, &d->ready_timeout_s) || d->ready_timeout_s <= 0)
            return bad(eb, where, "ready-timeout", v, "give seconds, e.g. 60");
        return 0;
    case K_LOAD:
        set_str(&d->load, v);
        return 0;
    case K_SLO:
        set_str(&d->slo, v);
        return 0;
    default:
        return errbuf_set(eb, ERR_ARG, "%s: internal: key %d", where, (int)k);
    }
}

/* `vary NAME = v1 v2 ...`: `rest` starts after "vary". */
static int set_vary(struct exp_def *d, const char *rest, const char *where, bool replace,
                    struct errbuf *eb)
{
    while (*rest == ' ' || *rest == '\t')
        rest++;
    size_t nl = 0;
    while (rest[nl] && rest[nl] != '=' && rest[nl] != ' ' && rest[nl] != '\t')
        nl++;
    const char *eq = strchr(rest, '=');
    if (!eq || !is_name(rest, nl) || is_builtin(rest, nl) ||
        strspn(rest + nl, " \t") + nl != (size_t)(eq - rest))
        return errbuf_set(eb, ERR_ARG,
                          "%s: vary needs 'vary NAME = V1 V2 ...' with NAME made of letters, "
                          "digits, '_' and '-' (not variant, repeat, run, port or dir)",
                          where);
    struct exp_param p = {xstrndup(rest, nl), NULL, 0};
    bool shell;
    int rc = exp_split(eq + 1, &p.values, &p.n, &shell, NULL);
    if (rc || p.n > EXP_MAX_VALUES) {
        param_free(&p);
        return errbuf_set(eb, ERR_ARG, "%s: vary %s: give 1 to %d values separated by spaces",
                          where, rest, EXP_MAX_VALUES);
    }
    for (size_t i = 0; i < d->nparams; i++) {
        if (strcmp(d->params[i].name, p.name))
            continue;
        if (!replace) {
            rc = errbuf_set(eb, ERR_ARG, "%s: vary %s given twice: list all its values on one line",
                            where, p.name);
            param_free(&p);
            return rc;
        }
        param_free(&d->params[i]);
        d->params[i] = p;
        return 0;
    }
    if (d->nparams == EXP_MAX_PARAMS) {
        param_free(&p);
        return errbuf_set(eb, ERR_ARG, "%s: more than %d vary lines", where, EXP_MAX_PARAMS);
    }
    d->params = xrealloc(d->params, (d->nparams + 1) * sizeof(*d->params));
    d->params[d->nparams++] = p;
    return 0;
}

/* `exclude NAME=v NAME=v`: `rest` starts after "exclude". */
static int set_exclude(struct exp_def *d, const char *rest, const char *where, struct errbuf *eb)
{
    char **w;
    size_t n;
    bool shell;
    if (exp_split(rest, &w, &n, &shell, NULL))
        return errbuf_set(eb, ERR_ARG, "%s: exclude needs NAME=VALUE terms", where);
    struct exp_exclude x = {xcalloc(n, sizeof(struct exp_kv)), n};
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        char *eq = strchr(w[i], '=');
        if (!eq || eq == w[i]) {
            rc = errbuf_set(eb, ERR_ARG, "%s: exclude term '%s': write NAME=VALUE", where, w[i]);
            break;
        }
        x.terms[i].name = xstrndup(w[i], (size_t)(eq - w[i]));
        x.terms[i].value = xstrdup(eq + 1);
    }
    exp_words_free(w, n);
    if (rc) {
        kv_free(x.terms, x.n);
        return rc;
    }
    d->excludes = xrealloc(d->excludes, (d->nexcludes + 1) * sizeof(*d->excludes));
    d->excludes[d->nexcludes++] = x;
    return 0;
}

static int set_env(struct exp_def *d, const char *name, size_t nl, const char *v, const char *where,
                   struct errbuf *eb)
{
    if (!is_name(name, nl) || memchr(name, '-', nl))
        return errbuf_set(eb, ERR_ARG, "%s: env.%.*s: a variable name is letters, digits and '_'",
                          where, (int)nl, name);
    for (size_t i = 0; i < d->nenv; i++) {
        if (strlen(d->env[i].name) == nl && !memcmp(d->env[i].name, name, nl)) {
            set_str(&d->env[i].value, v);
            return 0;
        }
    }
    d->env = xrealloc(d->env, (d->nenv + 1) * sizeof(*d->env));
    d->env[d->nenv].name = xstrndup(name, nl);
    d->env[d->nenv++].value = xstrdup(v);
    return 0;
}

static int lookup_key(const char *k, size_t kl)
{
    for (int i = 0; i < K_COUNT; i++)
        if (strlen(KEYS[i]) == kl && !memcmp(KEYS[i], k, kl) && i != K_ENV)
            return i;
    return -1;
}

/* One line; `seen` (may be NULL: later values replace earlier ones) catches repeated keys. */
static int apply_line(struct exp_def *d, const char *line, const char *where, uint32_t *seen,
                      struct errbuf *eb)
{
    while (*line == ' ' || *line == '\t')
        line++;
    size_t len = strlen(line);
    while (len && strchr(" \t\r\n", line[len - 1]))
        len--;
    if (!len || line[0] == '#')
        return 0;
    char *l = xstrndup(line, len);
    size_t kl = strcspn(l, " \t=");
    int rc = 0;
    int k = lookup_key(l, kl);
    if (k == K_VARY) {
        rc = set_vary(d, l + kl, where, seen == NULL, eb);
    } else if (k == K_EXCLUDE) {
        rc = set_exclude(d, l + kl, where, eb);
    } else {
        const char *eq = l + kl + strspn(l + kl, " \t");
        const char *v = eq + 1 + strspn(eq + 1, " \t");
        if (k < 0 && !(kl > 4 && !strncmp(l, "env.", 4))) {
            char key[64];
            snprintf(key, sizeof(key), "%.*s", (int)(kl < 63 ? kl : 63), l);
            const char *near = closest(key, KEYS, K_COUNT);
            if (near)
                rc = errbuf_set(eb, ERR_ARG, "%s: unknown key '%s': did you mean '%s'?", where, key,
                                near);
            else
                rc = errbuf_set(eb, ERR_ARG,
                                "%s: unknown key '%s': the keys are listed in docs/loop.md "
                                "(Experiments)",
                                where, key);
        } else if (*eq != '=') {
            rc = errbuf_set(eb, ERR_ARG, "%s: write '%.*s = VALUE'", where, (int)kl, l);
        } else if (k < 0) {
            rc = set_env(d, l + 4, kl - 4, v, where, eb);
        } else if (seen && (*seen & (1u << k))) {
            rc = errbuf_set(eb, ERR_ARG, "%s: '%s' given twice: keep one", where, KEYS[k]);
        } else if (!*v && k != K_OUTPUT) {
            rc = errbuf_set(eb, ERR_ARG, "%s: '%s' needs a value", where, KEYS[k]);
        } else {
            rc = set_key(d, (enum key)k, v, where, eb);
            if (seen)
                *seen |= 1u << k;
        }
    }
    free(l);
    return rc;
}

int exp_def_line(struct exp_def *d, const char *line, const char *where, struct errbuf *eb)
{
    return apply_line(d, line, where, NULL, eb);
}

int exp_def_read_file(struct exp_def *d, const char *path, struct errbuf *eb)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errbuf_set(eb, ERR_IO, "cannot open %s: %s", path, strerror(errno));
    char line[EXP_MAX_LINE + 2];
    char where[512];
    uint32_t seen = 0;
    int rc = 0, lineno = 0;
    while (!rc && fgets(line, sizeof(line), f)) {
        lineno++;
        snprintf(where, sizeof(where), "%s:%d", path, lineno);
        size_t n = strlen(line);
        if (n == sizeof(line) - 1 && line[n - 1] != '\n')
            rc = errbuf_set(eb, ERR_ARG, "%s: a line longer than %d bytes", where, EXP_MAX_LINE);
        else
            rc = apply_line(d, line, where, &seen, eb);
    }
    if (!rc && ferror(f))
        rc = errbuf_set(eb, ERR_IO, "reading %s failed", path);
    fclose(f);
    if (!rc)
        set_str(&d->source, path);
    return rc;
}

void exp_def_set_words(struct exp_def *d, char *const *words, size_t n)
{
    exp_words_free(d->words, d->nwords);
    d->words = xcalloc(n + 1, sizeof(*d->words));
    struct buf b;
    buf_init(&b, 0);
    for (size_t i = 0; i < n; i++) {
        d->words[i] = xstrdup(words[i]);
        int rc = buf_puts(&b, i ? " " : "");
        if (!rc)
            rc = buf_puts(&b, words[i]);
        (void)rc; /* the default cap (2 GiB) is past any argv */
    }
    d->nwords = n;
    d->shell = false;
    free(d->command);
    d->command = buf_take(&b, NULL);
}

/* -- templates ---------------------------------------------------------------------------- */

/* The value of placeholder `name` (n bytes) into `tmp` or a parameter's string; NULL when
 * unknown. */
static const char *lookup(const struct exp_def *d, const struct exp_variant *v,
                          const struct exp_fill *f, const char *name, size_t n, char tmp[24])
{
    for (size_t i = 0; i < d->nparams; i++)
        if (strlen(d->params[i].name) == n && !memcmp(d->params[i].name, name, n))
            return d->params[i].values[v->vals[i]];
    if (n == 7 && !memcmp(name, "variant", 7))
        return v->name;
    if (n == 3 && !memcmp(name, "dir", 3))
        return f->dir ? f->dir : ".";
    int x;
    if (n == 6 && !memcmp(name, "repeat", 6))
        x = f->repeat;
    else if (n == 3 && !memcmp(name, "run", 3))
        x = f->run;
    else if (n == 4 && !memcmp(name, "port", 4))
        x = f->port;
    else
        return NULL;
    snprintf(tmp, 24, "%d", x);
    return tmp;
}

static int unknown_placeholder(const struct exp_def *d, const char *name, size_t n,
                               struct errbuf *eb)
{
    const char *names[EXP_MAX_PARAMS + NBUILTINS];
    size_t k = 0;
    for (size_t i = 0; i < d->nparams; i++)
        names[k++] = d->params[i].name;
    for (size_t i = 0; i < NBUILTINS; i++)
        names[k++] = BUILTINS[i];
    char key[64];
    snprintf(key, sizeof(key), "%.*s", (int)(n < 63 ? n : 63), name);
    const char *near = closest(key, names, k);
    if (near)
        return errbuf_set(eb, ERR_ARG, "unknown placeholder '{%s}': did you mean '{%s}'?", key,
                          near);
    return errbuf_set(eb, ERR_ARG,
                      "unknown placeholder '{%s}': a vary line names each parameter (built in: "
                      "variant, repeat, run, port, dir; '{{' is a literal brace)",
                      key);
}

int exp_fill(const struct exp_def *d, const struct exp_variant *v, const struct exp_fill *f,
             const char *tmpl, char **out, struct errbuf *eb)
{
    struct buf b;
    buf_init(&b, (size_t)1 << 24);
    int rc = 0;
    for (const char *p = tmpl; *p && !rc; p++) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            rc = buf_putc(&b, *p++);
            continue;
        }
        size_t n = p[0] == '{' ? strcspn(p + 1, "}") : 0;
        /* "${x}" is the shell's, and "{a b}" or "{print $1}" is no placeholder: both literal */
        if (!n || !p[1 + n] || (p > tmpl && p[-1] == '$') || !is_name(p + 1, n)) {
            rc = buf_putc(&b, *p);
            continue;
        }
        char tmp[24];
        const char *val = lookup(d, v, f, p + 1, n, tmp);
        if (!val) {
            rc = unknown_placeholder(d, p + 1, n, eb);
            break;
        }
        rc = buf_puts(&b, val);
        p += n + 1;
    }
    if (rc) {
        buf_fini(&b);
        return rc == ERR_TOO_LARGE ? errbuf_set(eb, ERR_ARG, "a filled template over 16 MiB") : rc;
    }
    *out = buf_take(&b, NULL);
    return 0;
}

/* -- checks and the matrix ---------------------------------------------------------------- */

static int check_template(const struct exp_def *d, const struct exp_variant *v, const char *key,
                          const char *tmpl, struct errbuf *eb)
{
    if (!tmpl)
        return 0;
    struct exp_fill f = {0, 0, 0, "."};
    char *s;
    int rc = exp_fill(d, v, &f, tmpl, &s, eb);
    if (!rc) {
        free(s);
        return 0;
    }
    struct errbuf inner = *eb;
    return errbuf_set(eb, rc, "%s: %s: %s", d->source ? d->source : "the command line", key,
                      inner.msg);
}

static int check_excludes(const struct exp_def *d, struct errbuf *eb)
{
    for (size_t i = 0; i < d->nexcludes; i++) {
        for (size_t t = 0; t < d->excludes[i].n; t++) {
            const struct exp_kv *kv = &d->excludes[i].terms[t];
            const struct exp_param *p = NULL;
            for (size_t j = 0; j < d->nparams; j++)
                if (!strcmp(d->params[j].name, kv->name))
                    p = &d->params[j];
            if (!p)
                return errbuf_set(eb, ERR_ARG, "exclude %s=%s: no vary line names %s", kv->name,
                                  kv->value, kv->name);
            bool found = false;
            for (size_t j = 0; j < p->n; j++)
                found |= !strcmp(p->values[j], kv->value);
            if (!found)
                return errbuf_set(eb, ERR_ARG,
                                  "exclude %s=%s: %s is never %s (check its vary line)", kv->name,
                                  kv->value, kv->name, kv->value);
        }
    }
    return 0;
}

/* "p99=200ms,errors=1%" into d->slo_terms. */
static int parse_slo(struct exp_def *d, struct errbuf *eb)
{
    static const char *const metrics[] = {"p50", "p90", "p99", "p999", "mean", "errors"};
    d->nslo = 0;
    if (!d->slo)
        return 0;
    char *copy = xstrdup(d->slo);
    int rc = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        size_t m = 0;
        while (m < 6 && (!eq || strlen(metrics[m]) != (size_t)(eq - t) ||
                         strncmp(metrics[m], t, (size_t)(eq - t))))
            m++;
        double v;
        if (m == 6 || d->nslo == EXP_MAX_SLO) {
            rc = ERR_ARG;
        } else if (m == 5) {
            char *end;
            v = strtod(eq + 1, &end);
            rc = end == eq + 1 || strcmp(end, "%") || !(v >= 0 && v <= 100) ? ERR_ARG : 0;
            v /= 100;
        } else {
            rc = parse_secs(eq + 1, &v);
            if (!rc && strchr(eq + 1, 'u'))
                rc = ERR_ARG;
        }
        if (!rc) {
            d->slo_terms[d->nslo].metric = metrics[m];
            d->slo_terms[d->nslo++].limit = v;
        }
    }
    free(copy);
    if (rc)
        return errbuf_set(eb, ERR_ARG,
                          "slo '%s': write terms like p99=200ms, p50=1s, mean=50ms, errors=1%% "
                          "joined by commas",
                          d->slo);
    return 0;
}

static void default_name(struct exp_def *d)
{
    if (d->name)
        return;
    const char *base = d->source ? strrchr(d->source, '/') : NULL;
    base = base ? base + 1 : d->source;
    char name[65] = "exp";
    if (base) {
        size_t n = 0;
        for (const char *p = base; *p && *p != '.' && n < 64; p++)
            name[n++] = (isalnum((unsigned char)*p) || *p == '-' || *p == '_') ? *p : '_';
        name[n] = 0;
        if (!n)
            snprintf(name, sizeof(name), "exp");
    }
    d->name = xstrdup(name);
}

int exp_def_check(struct exp_def *d, struct errbuf *eb)
{
    const char *src = d->source ? d->source : "the command line";
    if (!d->command && !d->server)
        return errbuf_set(eb, ERR_ARG,
                          "%s: no command: give 'command = ...' (or 'server = ...' with 'load' "
                          "and 'ready'), or -- COMMAND after the options",
                          src);
    if (d->command && d->server)
        return errbuf_set(eb, ERR_ARG, "%s: both a command and a server: a run is one or the other",
                          src);
    if (d->server && (!d->load || !d->ready))
        return errbuf_set(eb, ERR_ARG,
                          "%s: a server needs 'ready = URL' (polled until it answers 2xx) and "
                          "'load = URL [crux load options]'",
                          src);
    if (!d->server && (d->load || d->ready))
        return errbuf_set(eb, ERR_ARG, "%s: 'load' and 'ready' need 'server = COMMAND'", src);
    if (d->server && d->output)
        return errbuf_set(eb, ERR_ARG,
                          "%s: 'output' is for command mode: under load the response bodies are "
                          "compared",
                          src);
    if (d->server && d->profile)
        return errbuf_set(eb, ERR_ARG,
                          "%s: 'profile = yes' works in command mode only (crux record --load "
                          "profiles one server run)",
                          src);
    int rc = check_excludes(d, eb);
    if (!rc)
        rc = parse_slo(d, eb);
    if (rc) {
        struct errbuf inner = *eb;
        return errbuf_set(eb, rc, "%s: %s", src, inner.msg);
    }
    default_name(d);
    struct exp_variant v = {.name = d->name};
    rc = check_template(d, &v, "command", d->command, eb);
    for (size_t i = 0; i < d->nwords && !rc && !d->shell; i++)
        rc = check_template(d, &v, "command", d->words[i], eb);
    for (size_t i = 0; i < d->nenv && !rc; i++)
        rc = check_template(d, &v, "env", d->env[i].value, eb);
    if (!rc)
        rc = check_template(d, &v, "output", d->output, eb);
    if (!rc)
        rc = check_template(d, &v, "server", d->server, eb);
    if (!rc)
        rc = check_template(d, &v, "ready", d->ready, eb);
    if (!rc)
        rc = check_template(d, &v, "load", d->load, eb);
    return rc;
}

static bool excluded(const struct exp_def *d, const uint16_t *vals)
{
    for (size_t i = 0; i < d->nexcludes; i++) {
        bool all = true;
        for (size_t t = 0; t < d->excludes[i].n && all; t++) {
            const struct exp_kv *kv = &d->excludes[i].terms[t];
            for (size_t j = 0; j < d->nparams; j++)
                if (!strcmp(d->params[j].name, kv->name))
                    all = !strcmp(d->params[j].values[vals[j]], kv->value);
        }
        if (all)
            return true;
    }
    return false;
}

static char *variant_name(const struct exp_def *d, const uint16_t *vals)
{
    if (!d->nparams)
        return xstrdup("default");
    struct buf b;
    buf_init(&b, 0);
    int rc = 0;
    for (size_t j = 0; j < d->nparams && !rc; j++)
        rc = buf_printf(&b, "%s%s=%s", j ? "," : "", d->params[j].name,
                        d->params[j].values[vals[j]]);
    (void)rc; /* bounded by the definition's lines */
    return buf_take(&b, NULL);
}

int exp_variants(const struct exp_def *d, struct exp_variant **out, size_t *n, struct errbuf *eb)
{
    size_t total = 1;
    for (size_t j = 0; j < d->nparams; j++) {
        total *= d->params[j].n;
        if (total > (size_t)EXP_MAX_VARIANTS * 64)
            break;
    }
    struct exp_variant *v = NULL;
    size_t nv = 0;
    uint16_t vals[EXP_MAX_PARAMS] = {0};
    for (size_t k = 0; k < total && nv <= EXP_MAX_VARIANTS; k++) {
        /* odometer: the last parameter turns fastest */
        size_t rem = k;
        for (size_t j = d->nparams; j-- > 0;) {
            vals[j] = (uint16_t)(rem % d->params[j].n);
            rem /= d->params[j].n;
        }
        if (excluded(d, vals))
            continue;
        if (nv == EXP_MAX_VARIANTS) {
            nv++;
            break;
        }
        v = xrealloc(v, (nv + 1) * sizeof(*v));
        memset(&v[nv], 0, sizeof(*v));
        memcpy(v[nv].vals, vals, sizeof(vals));
        v[nv].name = variant_name(d, vals);
        nv++;
    }
    if (nv == 0 || nv > EXP_MAX_VARIANTS) {
        exp_variants_free(v, nv > EXP_MAX_VARIANTS ? EXP_MAX_VARIANTS : nv);
        if (nv == 0)
            return errbuf_set(eb, ERR_ARG, "every combination is excluded: nothing to run");
        return errbuf_set(eb, ERR_ARG, "more than %d variants: vary fewer values",
                          EXP_MAX_VARIANTS);
    }
    *out = v;
    *n = nv;
    return 0;
}

void exp_variants_free(struct exp_variant *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

/* -- identity ----------------------------------------------------------------------------- */

static int hash_field(struct buf *b, const char *key, const char *val)
{
    int rc = buf_printf(b, "%s=", key);
    if (!rc && val)
        rc = buf_append(b, val, strlen(val));
    if (!rc)
        rc = buf_putc(b, '\0');
    return rc;
}

void exp_def_hash(const struct exp_def *d, char hex[65])
{
    struct buf b;
    buf_init(&b, 0);
    int rc = hash_field(&b, "name", d->name);
    rc = rc ? rc : buf_printf(&b, "shell=%d", d->shell);
    for (size_t i = 0; i < d->nwords && !rc; i++)
        rc = hash_field(&b, "word", d->words[i]);
    for (size_t i = 0; i < d->nenv && !rc; i++)
        rc = hash_field(&b, d->env[i].name, d->env[i].value);
    for (size_t i = 0; i < d->nparams && !rc; i++)
        for (size_t j = 0; j < d->params[i].n && !rc; j++)
            rc = hash_field(&b, d->params[i].name, d->params[i].values[j]);
    for (size_t i = 0; i < d->nexcludes && !rc; i++)
        for (size_t t = 0; t < d->excludes[i].n && !rc; t++)
            rc = hash_field(&b, d->excludes[i].terms[t].name, d->excludes[i].terms[t].value);
    rc = rc ? rc
            : buf_printf(&b, "repeats=%d warmup=%d cooldown=%.17g profile=%d", d->repeats,
                         d->warmup, d->cooldown_s, d->profile);
    if (!rc && d->seed_set)
        rc = buf_printf(&b, "seed=%llu", (unsigned long long)d->seed);
    rc = rc ? rc : hash_field(&b, "output", d->output);
    rc = rc ? rc : hash_field(&b, "server", d->server);
    rc = rc ? rc : hash_field(&b, "ready", d->ready);
    rc = rc ? rc : hash_field(&b, "load", d->load);
    (void)rc; /* the default cap (2 GiB) is past any definition */
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(b.data ? b.data : "", b.len, md, &mdlen, EVP_sha256(), NULL);
    for (size_t i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    buf_fini(&b);
}
