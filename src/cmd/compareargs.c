// SPDX-License-Identifier: MIT
// Shared by crux diff and crux gate (compareargs.h).
#include "cmd/compareargs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "profile/profile.h"
#include "store/store.h"
#include "util/xalloc.h"

void compare_args_init(struct compare_args *ca)
{
    memset(ca, 0, sizeof(*ca));
    ca->conf = 0.95;
    ca->fdr = 0.05;
    stage_rules_init(&ca->rules);
    buf_init(&ca->env_notes, 0);
}

void compare_args_fini(struct compare_args *ca)
{
    stage_rules_fini(&ca->rules);
    run_list_fini(&ca->base);
    run_list_fini(&ca->new_);
    buf_fini(&ca->env_notes);
}

static int unit_interval(const char *name, const char *arg, double *out)
{
    char *end = NULL;
    double v = strtod(arg, &end);
    if (!end || *end || !(v > 0 && v < 1)) {
        fprintf(stderr, "crux: --%s wants a number between 0 and 1 (0.95), not '%s'\n", name, arg);
        return EXIT_USAGE;
    }
    *out = v;
    return 0;
}

int compare_args_option(struct compare_args *ca, int c, const char *arg)
{
    char *end = NULL;
    switch (c) {
    case CA_STORE:
        ca->store = arg;
        return 0;
    case CA_NO_IDLE:
        ca->no_idle = true;
        return 0;
    case CA_RULES:
        ca->rules_path = arg;
        return 0;
    case CA_CONF:
        return unit_interval("confidence", arg, &ca->conf);
    case CA_FDR:
        return unit_interval("fdr", arg, &ca->fdr);
    case CA_COST:
        ca->cost_per_hour = strtod(arg, &end);
        if (!end || *end || !(ca->cost_per_hour > 0) || !isfinite(ca->cost_per_hour)) {
            fprintf(stderr, "crux: --cost-per-hour wants a price in dollars (2.50), not '%s'\n",
                    arg);
            return EXIT_USAGE;
        }
        return 0;
    default:
        return -1;
    }
}

static bool is_json(const struct run *r)
{
    size_t n = strlen(r->path);
    return r->kind == RUN_LOAD || (n > 5 && strcmp(r->path + n - 5, ".json") == 0);
}

/* Adds run `r` as run `i` of `d`; false (after a one-line message) when it cannot be read. */
static bool load_one(struct compare_args *ca, struct diff *d, uint32_t i, const struct run *r)
{
    struct errbuf eb = {{0}};
    if (is_json(r)) {
        FILE *f = fopen(r->path, "rb");
        if (!f) {
            fprintf(stderr, "crux: cannot read %s: %m: give a crux load --json file\n", r->path);
            return false;
        }
        struct buf b;
        buf_init(&b, (size_t)256 << 20);
        char chunk[65536];
        size_t n;
        int rc = 0;
        while (!rc && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
            rc = buf_append(&b, chunk, n);
        fclose(f);
        rc = rc ? rc : diff_add_load_json(d, i, b.data ? b.data : "", b.len, &eb);
        buf_fini(&b);
        if (rc) {
            fprintf(stderr, "crux: skipped %s: %s\n", r->path, eb.msg[0] ? eb.msg : err_str(rc));
            return false;
        }
        return true;
    }
    struct profile p;
    profile_init(&p);
    int rc = store_load(r->path, &p, &eb);
    if (rc) {
        fprintf(stderr, "crux: skipped %s: %s\n", r->path, eb.msg);
        profile_fini(&p);
        return false;
    }
    profile_drop_columns(&p); /* runs are compared line by line */
    diff_add_profile(d, i, &p, ca->rules_loaded ? &ca->rules : NULL);
    profile_fini(&p);
    return true;
}

static int note(struct compare_args *ca, const char *fmt, const char *a, const char *b)
{
    char line[600];
    snprintf(line, sizeof(line), fmt, a ? a : "unknown", b ? b : "unknown");
    if (strstr(buf_cstr(&ca->env_notes), line))
        return 0;
    return buf_printf(&ca->env_notes, "%s\n", line);
}

/* Compares fingerprints and commands across the two sides. */
static void check_env(struct compare_args *ca)
{
    const struct run *b0 = ca->base.n ? &ca->base.v[0] : NULL;
    if (!b0)
        return;
    for (int side = 0; side < 2; side++) {
        const struct run_list *l = side ? &ca->new_ : &ca->base;
        for (size_t i = 0; i < l->n; i++) {
            const struct run *r = &l->v[i];
            if (b0->fp_hash && r->fp_hash && strcmp(b0->fp_hash, r->fp_hash) != 0) {
                ca->env_mismatch = true;
                if (note(ca, "environments differ (fingerprint %s against %s): see crux runs",
                         b0->fp_hash, r->fp_hash))
                    return;
            }
            if (b0->command && r->command && strcmp(b0->command, r->command) != 0 && side) {
                ca->cmd_mismatch = true;
                if (note(ca, "commands differ: '%s' against '%s'", b0->command, r->command))
                    return;
            }
        }
    }
}

int compare_args_load(struct compare_args *ca, const char *base, const char *new_, struct diff *d)
{
    struct errbuf eb = {{0}};
    if (ca->rules_path) {
        if (stage_rules_load(&ca->rules, ca->rules_path, &eb)) {
            fprintf(stderr, "crux: %s\n", eb.msg);
            return EXIT_USAGE;
        }
        ca->rules_loaded = true;
    }
    const char *dir = ca->store ? ca->store : RUNS_DEFAULT_DIR;
    if (runs_resolve(dir, base, &ca->base, &eb) || runs_resolve(dir, new_, &ca->new_, &eb)) {
        fprintf(stderr, "crux: %s\n", eb.msg);
        return EXIT_FAIL;
    }
    diff_init(d, (uint32_t)ca->base.n, (uint32_t)ca->new_.n);
    d->conf = ca->conf;
    d->alpha = ca->fdr;
    d->idle = !ca->no_idle;
    size_t ok[2] = {0, 0};
    for (size_t i = 0; i < ca->base.n; i++)
        ok[0] += load_one(ca, d, (uint32_t)i, &ca->base.v[i]);
    for (size_t i = 0; i < ca->new_.n; i++)
        ok[1] += load_one(ca, d, (uint32_t)(ca->base.n + i), &ca->new_.v[i]);
    if (!ok[0] || !ok[1]) {
        fprintf(stderr, "crux: no readable run on the %s side ('%s'): nothing to compare\n",
                ok[0] ? "new" : "base", ok[0] ? new_ : base);
        diff_fini(d);
        return EXIT_FAIL;
    }
    check_env(ca);
    diff_finish(d);
    return 0;
}

int compare_args_env_text(const struct compare_args *ca, struct buf *out)
{
    const char *s = buf_cstr((struct buf *)&ca->env_notes);
    int rc = 0;
    while (!rc && *s) {
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        rc = buf_printf(out, "warning: %.*s; compared anyway\n", (int)n, s);
        s += n + (nl ? 1 : 0);
    }
    return rc;
}

void compare_args_cost_text(const struct diff *d, double usd, struct buf *b)
{
    if (!(usd > 0))
        return;
    int rc = 0;
    if (d->any_load) {
        const struct cmp_est *t = &d->load_est[LM_THROUGHPUT];
        if (t->base > 0 && t->new_ > 0) {
            double cb = usd / (t->base * 3600.0) * 1000.0, cn = usd / (t->new_ * 3600.0) * 1000.0;
            /* cost is inversely proportional to throughput: its interval from throughput's */
            double lo = t->new_ > 0 && t->hi + t->base > 0 ? cb * t->base / (t->base + t->hi) : NAN;
            double hi = t->lo + t->base > 0 ? cb * t->base / (t->base + t->lo) : INFINITY;
            rc = buf_printf(b,
                            "\ncost at $%.2f/h: $%.4f -> $%.4f per 1,000 requests (%+.1f%%; new "
                            "cost 95%% interval $%.4f to $%.4f)\n",
                            usd, cb, cn, 100 * (cn / cb - 1), lo, hi);
        }
        const struct cmp_est *tk = &d->load_est[LM_TOKENS];
        if (!rc && tk->base > 0 && tk->new_ > 0)
            rc = buf_printf(b, "cost at $%.2f/h: $%.4f -> $%.4f per million output tokens\n", usd,
                            usd / (tk->base * 3600.0) * 1e6, usd / (tk->new_ * 3600.0) * 1e6);
    } else if (d->any_profile) {
        double wb = 0, wn = 0;
        uint32_t nb = 0, nn = 0;
        for (uint32_t r = 0; r < d->nruns; r++) {
            if (!d->has_profile[r])
                continue;
            if (r < d->nbase) {
                wb += d->wall_s[r];
                nb++;
            } else {
                wn += d->wall_s[r];
                nn++;
            }
        }
        if (nb && nn && wb > 0)
            rc = buf_printf(b,
                            "\ncost at $%.2f/h: $%.5f -> $%.5f per run (wall time of the "
                            "recordings: %.2f s -> %.2f s)\n",
                            usd, usd * wb / nb / 3600.0, usd * wn / nn / 3600.0, wb / nb, wn / nn);
    }
    (void)rc;
}
