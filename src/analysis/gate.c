// SPDX-License-Identifier: MIT
// The regression gate (gate.h): parsing thresholds, judging them against intervals, and the
// three outputs.
#include "analysis/gate.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/jsonw.h"
#include "util/xalloc.h"

void gate_init(struct gate *g)
{
    memset(g, 0, sizeof(*g));
}

void gate_fini(struct gate *g)
{
    for (int i = 0; i < g->n; i++) {
        free(g->v[i].name);
        free(g->v[i].text);
    }
    free(g->v);
    memset(g, 0, sizeof(*g));
}

struct metric_word {
    const char *word;
    enum gate_metric metric;
    int sub;
    bool named;
};

static const struct metric_word words[] = {
    {"throughput", GM_LOAD, LM_THROUGHPUT, false},
    {"token_throughput", GM_LOAD, LM_TOKENS, false},
    {"p50", GM_LOAD, LM_P50, false},
    {"p90", GM_LOAD, LM_P90, false},
    {"p99", GM_LOAD, LM_P99, false},
    {"p99.9", GM_LOAD, LM_P999, false},
    {"ttft_p50", GM_LOAD, LM_TTFT_P50, false},
    {"ttft_p99", GM_LOAD, LM_TTFT_P99, false},
    {"itl_p50", GM_LOAD, LM_ITL_P50, false},
    {"itl_p99", GM_LOAD, LM_ITL_P99, false},
    {"error_rate", GM_LOAD, LM_ERROR_RATE, false},
    {"prefill_share", GM_LOAD, LM_PREFILL, false},
    {"errors", GM_ERRORS, 0, false},
    {"time", GM_TIME, 0, false},
    {"wall", GM_WALL, 0, false},
    {"stage", GM_STAGE, 0, true},
    {"type", GM_TYPE, 0, true},
    {"function", GM_FUNCTION, 0, true},
    {"function_total", GM_FUNCTION_TOTAL, 0, true},
    {"line", GM_LINE, 0, true},
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

/* Edit distance, for "did you mean". */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    size_t row[41];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t sub = prev + (a[i - 1] != b[j - 1]);
            size_t del = row[j] + 1, ins = row[j - 1] + 1;
            row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            prev = cur;
        }
    }
    return row[lb];
}

/* Parses a limit: "+5%", "-3%", "+2pt", "0" (errors). */
static bool parse_limit(const char *s, bool errors, double *v, bool *points)
{
    char *end = NULL;
    double x = strtod(s, &end);
    if (!end || end == s || !isfinite(x))
        return false;
    *points = false;
    if (errors) {
        *v = x;
        return *end == 0 && x >= 0;
    }
    if (strcmp(end, "%") == 0)
        *v = x / 100.0;
    else if (strcmp(end, "pt") == 0) {
        *v = x / 100.0;
        *points = true;
    } else
        return false;
    return (s[0] == '+' || s[0] == '-') && x != 0;
}

static int bad(struct errbuf *eb, const char *path, int line, const char *fmt, const char *a)
{
    char msg[200];
    snprintf(msg, sizeof(msg), fmt, a);
    return errbuf_set(eb, ERR_ARG, "%s:%d: %s", path, line, msg);
}

int gate_parse(struct gate *g, const char *text, const char *path, struct errbuf *eb)
{
    int lineno = 0;
    const char *s = text;
    while (*s) {
        lineno++;
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        char *line = xstrndup(s, n);
        s += n + (nl ? 1 : 0);
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *b = line;
        while (isspace((unsigned char)*b))
            b++;
        char *e = b + strlen(b);
        while (e > b && isspace((unsigned char)e[-1]))
            *--e = 0;
        if (!*b) {
            free(line);
            continue;
        }
        char *sp = b;
        while (*sp && !isspace((unsigned char)*sp))
            sp++;
        char *last = e;
        while (last > b && !isspace((unsigned char)last[-1]))
            last--;
        char word[64];
        snprintf(word, sizeof(word), "%.*s", (int)(sp - b), b);
        const struct metric_word *m = NULL;
        for (size_t i = 0; i < NWORDS; i++)
            if (strcmp(words[i].word, word) == 0)
                m = &words[i];
        int rc = 0;
        if (!m) {
            const char *best = NULL;
            size_t bd = 99;
            for (size_t i = 0; i < NWORDS; i++) {
                size_t dd = distance(word, words[i].word);
                if (dd < bd) {
                    bd = dd;
                    best = words[i].word;
                }
            }
            char msg[160];
            if (bd <= 3)
                snprintf(msg, sizeof(msg), "unknown metric '%.40s': did you mean '%s'?", word,
                         best);
            else
                snprintf(msg, sizeof(msg),
                         "unknown metric '%.40s': throughput, p50, p99, ttft_p99, itl_p99, "
                         "errors, error_rate, time, stage, type, function, line, ...",
                         word);
            rc = errbuf_set(eb, ERR_ARG, "%s:%d: %s", path, lineno, msg);
        } else if (last <= sp) {
            rc = bad(eb, path, lineno, "'%s' needs a limit, e.g. +5%%, -3%% or +2pt", word);
        } else {
            struct gate_rule r = {.metric = m->metric, .sub = m->sub, .line = lineno};
            char *name = NULL;
            if (m->named) {
                char *nb = sp, *ne = last;
                while (nb < ne && isspace((unsigned char)*nb))
                    nb++;
                while (ne > nb && isspace((unsigned char)ne[-1]))
                    ne--;
                if (nb == ne)
                    rc = bad(eb, path, lineno, "'%s' needs a name before its limit", word);
                else
                    name = xstrndup(nb, (size_t)(ne - nb));
            } else {
                const char *mid = sp;
                while (mid < last && isspace((unsigned char)*mid))
                    mid++;
                if (mid != last)
                    rc = bad(eb, path, lineno, "'%s' takes no name: write it as 'METRIC LIMIT'",
                             word);
            }
            if (!rc && !parse_limit(last, m->metric == GM_ERRORS, &r.limit, &r.points))
                rc = bad(eb, path, lineno,
                         m->metric == GM_ERRORS
                             ? "bad limit '%s': errors takes a count (0)"
                             : "bad limit '%s': write a signed change, +5%% (at most 5%% "
                               "higher), -3%% (at most 3%% lower) or +2pt (share points)",
                         last);
            if (!rc && r.points && m->metric != GM_STAGE && m->metric != GM_TYPE &&
                !(m->metric == GM_LOAD && (m->sub == LM_ERROR_RATE || m->sub == LM_PREFILL)))
                rc = bad(eb, path, lineno,
                         "'%s': points (pt) are for shares: stage, type, "
                         "error_rate, prefill_share",
                         word);
            if (rc) {
                free(name);
            } else {
                r.name = name;
                r.text = xstrdup(b);
                if (g->n == g->cap) {
                    g->cap = g->cap ? g->cap * 2 : 8;
                    g->v = xrealloc(g->v, (size_t)g->cap * sizeof(*g->v));
                }
                g->v[g->n++] = r;
            }
        }
        free(line);
        if (rc)
            return rc;
    }
    if (!g->n)
        return errbuf_set(eb, ERR_ARG, "%s: no thresholds (write one per line: 'p99 +5%%')", path);
    return 0;
}

/* The estimate a rule reads; NULL when the runs do not have it (why in `why`). */
static const struct cmp_est *rule_est(const struct gate_rule *r, const struct diff *d, char *why,
                                      size_t cap)
{
    const struct diff_entity *e = NULL;
    switch (r->metric) {
    case GM_LOAD:
        if (!d->any_load) {
            snprintf(why, cap,
                     "no load figures in these runs (record with --load, or compare "
                     "crux load --json results)");
            return NULL;
        }
        if (d->load_est[r->sub].method == CMP_NONE && isnan(d->load_est[r->sub].base)) {
            snprintf(why, cap, "%s is not in these load results", load_metric_names[r->sub]);
            return NULL;
        }
        return &d->load_est[r->sub];
    case GM_TIME:
        if (!d->any_profile) {
            snprintf(why, cap, "no recordings to time");
            return NULL;
        }
        return &d->time_abs;
    case GM_STAGE:
        e = diff_find(d, &d->stages, r->name);
        break;
    case GM_TYPE:
        e = diff_find(d, &d->types, r->name);
        break;
    case GM_FUNCTION:
    case GM_FUNCTION_TOTAL:
        e = diff_find(d, &d->funcs, r->name);
        if (!e) {
            /* a bare name matches "name (file)" when only one function has it */
            size_t n = strlen(r->name);
            const struct diff_entity *hit = NULL;
            int hits = 0;
            for (uint32_t i = 0; i < d->funcs.n; i++) {
                const char *s = strtab_get(&d->tree.strs, d->funcs.v[i].name);
                if (strncmp(s, r->name, n) == 0 && s[n] == ' ' && s[n + 1] == '(') {
                    hit = &d->funcs.v[i];
                    hits++;
                }
            }
            if (hits == 1)
                e = hit;
            else if (hits > 1) {
                snprintf(why, cap, "'%.80s' names %d functions: write 'name (file)'", r->name,
                         hits);
                return NULL;
            }
        }
        break;
    case GM_LINE:
        e = diff_find(d, &d->lines, r->name);
        break;
    case GM_WALL:
        if (!d->any_profile) {
            snprintf(why, cap, "no recordings to time");
            return NULL;
        }
        return &d->wall_est;
    case GM_ERRORS:
        return NULL;
    }
    if (!e) {
        snprintf(why, cap, "'%.100s' is in no run (see crux diff for the names)", r->name);
        return NULL;
    }
    if (r->metric == GM_STAGE || r->metric == GM_TYPE)
        return &e->self_rel;
    if (r->metric == GM_FUNCTION_TOTAL)
        return &e->total_abs;
    return &e->self_abs;
}

enum gate_status gate_judge(struct gate *g, const struct diff *d, double new_errors)
{
    enum gate_status all = GATE_PASS;
    double z80 = cmp_norm_quantile(0.2);
    for (int i = 0; i < g->n; i++) {
        struct gate_rule *r = &g->v[i];
        r->why[0] = 0;
        r->mde = NAN;
        r->repeats_needed = 0;
        r->value = r->lo = r->hi = NAN;
        if (r->metric == GM_ERRORS) {
            if (new_errors < 0) {
                r->status = GATE_INCONCLUSIVE;
                snprintf(r->why, sizeof(r->why), "no load figures: errors unknown");
            } else {
                r->value = r->lo = r->hi = new_errors;
                r->status = new_errors > r->limit ? GATE_REGRESSION : GATE_PASS;
                snprintf(r->why, sizeof(r->why),
                         "%.0f failed requests on the new side (at most "
                         "%.0f allowed)",
                         new_errors, r->limit);
            }
        } else {
            const struct cmp_est *e = rule_est(r, d, r->why, sizeof(r->why));
            if (!e) {
                r->status = GATE_INCONCLUSIVE;
            } else {
                bool pts = r->points;
                r->value = pts ? e->diff : e->rel;
                r->lo = pts ? e->lo : e->rel_lo;
                r->hi = pts ? e->hi : e->rel_hi;
                /* a larger value is worse unless the limit is a floor (negative) */
                bool floor = r->limit < 0;
                double lim = r->limit;
                bool past_all = floor ? r->hi < lim : r->lo > lim;
                bool within_all = floor ? r->lo >= lim : r->hi <= lim;
                bool past_point = floor ? r->value < lim : r->value > lim;
                if (e->method == CMP_NONE || isnan(r->value)) {
                    r->status = GATE_INCONCLUSIVE;
                    snprintf(r->why, sizeof(r->why), "no interval: %s",
                             e->method == CMP_NONE ? "a side has no data"
                                                   : "the base value is zero");
                } else if (past_all) {
                    r->status = GATE_REGRESSION;
                } else if (within_all) {
                    r->status = GATE_PASS;
                } else {
                    r->status = GATE_INCONCLUSIVE;
                }
                double zc = (r->hi - r->lo) / 2.0; /* half-width */
                double zq = cmp_norm_quantile((1.0 - d->conf) / 2.0);
                if (isfinite(zc) && zc > 0) {
                    r->mde = zc + z80 * zc / zq;
                    uint32_t n = e->nb < e->nn ? e->nb : e->nn;
                    if (n < 1)
                        n = 1;
                    double need = ceil((double)n * (r->mde / fabs(lim)) * (r->mde / fabs(lim)));
                    r->repeats_needed = need > 1e6 ? 1000000 : (int)need;
                    if (e->method == CMP_SAMPLING && r->repeats_needed < 5)
                        r->repeats_needed = 5;
                }
                if (r->status == GATE_INCONCLUSIVE && !r->why[0])
                    snprintf(r->why, sizeof(r->why),
                             "%s: these runs detect a change of %.1f%s (80%% power); about %d "
                             "runs a side would detect one of the limit's size",
                             past_point ? "looks past the limit, but the interval reaches back "
                                          "over it"
                                        : "within the limit, but the interval reaches past it",
                             100 * r->mde, pts ? " pt" : "%", r->repeats_needed);
            }
        }
        if (r->status == GATE_REGRESSION)
            all = GATE_REGRESSION;
        else if (r->status == GATE_INCONCLUSIVE && all == GATE_PASS)
            all = GATE_INCONCLUSIVE;
    }
    return all;
}

static const char *status_word(enum gate_status s)
{
    return s == GATE_PASS ? "pass" : s == GATE_REGRESSION ? "REGRESSION" : "inconclusive";
}

static int range_text(struct buf *b, const struct gate_rule *r)
{
    if (r->metric == GM_ERRORS)
        return isnan(r->value) ? buf_puts(b, "unknown") : buf_printf(b, "%.0f", r->value);
    if (isnan(r->value))
        return buf_puts(b, "n/a");
    const char *u = r->points ? " pt" : "%";
    return buf_printf(b, "%+.1f%s [%+.1f, %+.1f]", 100 * r->value, u, 100 * r->lo, 100 * r->hi);
}

int gate_write_text(const struct gate *g, enum gate_status st, const char *notes, struct buf *b)
{
    int rc = buf_printf(b, "gate: %s\n", status_word(st));
    for (int i = 0; i < g->n && !rc; i++) {
        const struct gate_rule *r = &g->v[i];
        rc = buf_printf(b, "  %-12s %-40s ", status_word(r->status), r->text);
        rc = rc ? rc : range_text(b, r);
        if (!rc && isfinite(r->mde) && r->metric != GM_ERRORS)
            rc = buf_printf(b, "  (detects %.1f%s)", 100 * r->mde, r->points ? " pt" : "%");
        rc = rc ? rc : buf_putc(b, '\n');
        if (!rc && r->why[0] && r->status != GATE_PASS)
            rc = buf_printf(b, "               %s\n", r->why);
    }
    if (!rc && notes && *notes)
        rc = buf_puts(b, notes);
    return rc;
}

/* Markdown table cells must not hold '|' or newlines. */
static int md_cell(struct buf *b, const char *s)
{
    int rc = 0;
    for (; *s && !rc; s++)
        rc = *s == '|' ? buf_puts(b, "\\|") : buf_putc(b, *s == '\n' ? ' ' : *s);
    return rc;
}

int gate_write_markdown(const struct gate *g, enum gate_status st, const struct diff *d,
                        const char *notes, struct buf *b)
{
    static const char *const icon[] = {"✅", "❌", "⚠️"};
    int rc = buf_printf(b, "### crux gate: %s %s\n\n", icon[st], status_word(st));
    rc = rc ? rc : buf_puts(b, "> ");
    rc = rc ? rc : md_cell(b, buf_cstr((struct buf *)&d->headline));
    rc = rc ? rc
            : buf_printf(b, "\n\n%u base run%s, %u new run%s; %.0f%% intervals.\n\n", d->nbase,
                         d->nbase == 1 ? "" : "s", d->nnew, d->nnew == 1 ? "" : "s", 100 * d->conf);
    rc = rc ? rc
            : buf_puts(b, "| threshold | change [interval] | result | note |\n|---|---|---|---|\n");
    for (int i = 0; i < g->n && !rc; i++) {
        const struct gate_rule *r = &g->v[i];
        rc = buf_puts(b, "| `");
        rc = rc ? rc : md_cell(b, r->text);
        rc = rc ? rc : buf_puts(b, "` | ");
        rc = rc ? rc : range_text(b, r);
        rc = rc ? rc : buf_printf(b, " | %s %s | ", icon[r->status], status_word(r->status));
        rc = rc ? rc : md_cell(b, r->status != GATE_PASS ? r->why : "");
        rc = rc ? rc : buf_puts(b, " |\n");
    }
    if (!rc && notes && *notes) {
        rc = buf_puts(b, "\n");
        rc = rc ? rc : md_cell(b, notes);
        rc = rc ? rc : buf_puts(b, "\n");
    }
    return rc;
}

int gate_write_json(const struct gate *g, enum gate_status st, const struct diff *d,
                    const char *notes, struct buf *b)
{
    struct jsonw w;
    jsonw_init(&w, b, 0);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "status");
    jsonw_str(&w, st == GATE_PASS ? "pass" : st == GATE_REGRESSION ? "regression" : "inconclusive");
    jsonw_key(&w, "exit_status");
    jsonw_i64(&w, st);
    jsonw_key(&w, "headline");
    jsonw_str(&w, buf_cstr((struct buf *)&d->headline));
    jsonw_key(&w, "base_runs");
    jsonw_u64(&w, d->nbase);
    jsonw_key(&w, "new_runs");
    jsonw_u64(&w, d->nnew);
    jsonw_key(&w, "notes");
    jsonw_str(&w, notes ? notes : "");
    jsonw_key(&w, "thresholds");
    jsonw_arr_begin(&w);
    for (int i = 0; i < g->n; i++) {
        const struct gate_rule *r = &g->v[i];
        jsonw_obj_begin(&w);
        jsonw_key(&w, "rule");
        jsonw_str(&w, r->text);
        jsonw_key(&w, "line");
        jsonw_i64(&w, r->line);
        jsonw_key(&w, "status");
        jsonw_str(&w, r->status == GATE_PASS         ? "pass"
                      : r->status == GATE_REGRESSION ? "regression"
                                                     : "inconclusive");
        jsonw_key(&w, "limit");
        jsonw_double(&w, r->limit);
        jsonw_key(&w, "unit");
        jsonw_str(&w, r->metric == GM_ERRORS ? "count" : r->points ? "points" : "relative");
        jsonw_key(&w, "change");
        jsonw_double(&w, r->value);
        jsonw_key(&w, "lo");
        jsonw_double(&w, r->lo);
        jsonw_key(&w, "hi");
        jsonw_double(&w, r->hi);
        jsonw_key(&w, "mde");
        jsonw_double(&w, r->mde);
        jsonw_key(&w, "repeats_needed");
        jsonw_i64(&w, r->repeats_needed);
        jsonw_key(&w, "why");
        jsonw_str(&w, r->why);
        jsonw_obj_end(&w);
    }
    jsonw_arr_end(&w);
    jsonw_obj_end(&w);
    int rc = jsonw_error(&w);
    return rc ? rc : buf_putc(b, '\n');
}
