// SPDX-License-Identifier: MIT
// Prefill and decode of streamed completions (prefill.h): shares, fits, the scatter's sample
// and the prompt length of a request body.
#include "load/prefill.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "load/jscan.h"
#include "util/buf.h"
#include "util/xalloc.h"

void prefill_init(struct prefill *p)
{
    *p = (struct prefill){0};
    p->pts = xcalloc(PREFILL_MAX_POINTS, sizeof(*p->pts));
    p->rng = 0x9e3779b97f4a7c15ULL;
}

void prefill_fini(struct prefill *p)
{
    free(p->pts);
    p->pts = NULL;
    p->npts = 0;
}

void prefill_fit_add(struct prefill_fit *f, double x, double y)
{
    f->n += 1;
    double dx = x - f->mx;
    f->mx += dx / f->n;
    double dy = y - f->my;
    f->my += dy / f->n;
    /* co-moments with the old deviation of one term and the new of the other */
    f->cxx += dx * (x - f->mx);
    f->cxy += dx * (y - f->my);
    f->cyy += dy * (y - f->my);
}

bool prefill_fit_line(const struct prefill_fit *f, double *slope, double *intercept, double *r2)
{
    /* a variance of x below 1e-24 of its mean's square is rounding, not spread */
    if (f->n < 2 || !(f->cxx > 0) || f->cxx / f->n < 1e-24 * f->mx * f->mx)
        return false;
    *slope = f->cxy / f->cxx;
    *intercept = f->my - *slope * f->mx;
    if (f->cyy <= 0) {
        *r2 = 1; /* every y equal, and the line (slope 0) goes through them */
    } else {
        *r2 = f->cxy * f->cxy / (f->cxx * f->cyy);
        *r2 = *r2 > 1 ? 1 : *r2;
    }
    return true;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Keeps `pt` in a uniform sample of the first `seen` requests (Vitter's algorithm R). */
static void keep_point(struct prefill *p, const struct prefill_point *pt, uint64_t seen)
{
    if (!p->pts)
        return;
    if (p->npts < PREFILL_MAX_POINTS) {
        p->pts[p->npts++] = *pt;
        return;
    }
    uint64_t j = splitmix64(&p->rng) % seen;
    if (j < PREFILL_MAX_POINTS)
        p->pts[j] = *pt;
}

void prefill_add(struct prefill *p, const struct prefill_req *r)
{
    double ttft = (double)r->ttft_ns / 1e3, total = (double)r->total_ns / 1e3;
    p->n++;
    p->ttft_sum_us += ttft;
    p->total_sum_us += total;
    p->out_sum += (double)r->out_tokens;
    if (r->prompt_words != PREFILL_NO_PROMPT) {
        p->n_words++;
        p->words_sum += r->prompt_words;
        prefill_fit_add(&p->ttft_words, r->prompt_words, ttft);
    }
    if (r->prompt_usage >= 0) {
        p->n_usage++;
        p->usage_sum += (double)r->prompt_usage;
        prefill_fit_add(&p->ttft_usage, (double)r->prompt_usage, ttft);
    }
    int64_t tpot = -1;
    if (r->out_tokens > 1) {
        tpot = (int64_t)((r->total_ns - r->ttft_ns) / (r->out_tokens - 1) / 1000);
        prefill_fit_add(&p->tpot_out, (double)r->out_tokens,
                        (double)(total - ttft) / (double)(r->out_tokens - 1));
    }
    struct prefill_point pt = {
        .prompt_words = r->prompt_words,
        .out_tokens = r->out_tokens > UINT32_MAX ? UINT32_MAX : (uint32_t)r->out_tokens,
        .prompt_usage = r->prompt_usage,
        .ttft_us = (int64_t)(ttft + 0.5),
        .tpot_us = tpot,
    };
    keep_point(p, &pt, p->n);
}

/* "long prompts, short outputs: " and the like, from the mean lengths. */
static const char *lengths_phrase(double prompt, double out)
{
    if (!(prompt > 0) || !(out > 0))
        return "";
    if (prompt >= 4 * out)
        return "long prompts, short outputs: ";
    if (out >= 4 * prompt)
        return "short prompts, long outputs: ";
    return "";
}

static void write_reading(struct prefill_summary *s)
{
    char *o = s->reading;
    size_t cap = sizeof(s->reading);
    int n;
    const char *lp = lengths_phrase(s->mean_prompt, s->mean_out);
    if (s->prefill_share >= PREFILL_DOMINATES)
        n = snprintf(o, cap, "%sprefill dominates (%.0f%% of request time)", lp,
                     100 * s->prefill_share);
    else if (s->decode_share >= PREFILL_DOMINATES)
        n = snprintf(o, cap, "%sdecode dominates (%.0f%% of request time)", lp,
                     100 * s->decode_share);
    else
        n = snprintf(o, cap, "%sprefill and decode are about even (prefill %.0f%% of request time)",
                     lp, 100 * s->prefill_share);
    if (n < 0 || (size_t)n >= cap)
        return;
    const char *unit = s->usage ? "prompt token" : "prompt word";
    if (!isnan(s->mean_prompt))
        n += snprintf(o + n, cap - (size_t)n, "; mean prompt %.0f %ss, %.0f output tokens",
                      s->mean_prompt, unit, s->mean_out);
    if (n < 0 || (size_t)n >= cap || !s->ttft_ok)
        return;
    if (s->ttft_r2 >= 0.5)
        snprintf(o + n, cap - (size_t)n, "; TTFT grows %.3g ms per %s (R\xc2\xb2 %.2f)",
                 s->ttft_slope_us / 1e3, unit, s->ttft_r2);
    else
        snprintf(o + n, cap - (size_t)n,
                 "; TTFT hardly follows prompt length (R\xc2\xb2 %.2f): queueing or a fixed "
                 "cost makes most of it",
                 s->ttft_r2);
}

void prefill_summarize(const struct prefill *p, struct prefill_summary *s)
{
    *s = (struct prefill_summary){
        .prefill_share = NAN, .decode_share = NAN, .mean_prompt = NAN, .mean_out = NAN};
    s->n = p->n;
    if (!p->n || !(p->total_sum_us > 0))
        return;
    s->prefill_share = p->ttft_sum_us / p->total_sum_us;
    s->decode_share = 1 - s->prefill_share;
    s->mean_out = p->out_sum / (double)p->n;
    /* usage.prompt_tokens when every stream reported it: a mix of units would not fit */
    s->usage = p->n_usage == p->n;
    const struct prefill_fit *tf = s->usage ? &p->ttft_usage : &p->ttft_words;
    uint64_t np = s->usage ? p->n_usage : p->n_words;
    if (np)
        s->mean_prompt = (s->usage ? p->usage_sum : p->words_sum) / (double)np;
    s->ttft_n = np;
    s->ttft_ok = prefill_fit_line(tf, &s->ttft_slope_us, &s->ttft_intercept_us, &s->ttft_r2);
    s->tpot_n = (uint64_t)p->tpot_out.n;
    s->tpot_ok =
        prefill_fit_line(&p->tpot_out, &s->tpot_slope_us, &s->tpot_intercept_us, &s->tpot_r2);
    write_reading(s);
}

/* ---- prompt length ---- */

static uint32_t count_words(const char *s, size_t n)
{
    uint32_t words = 0;
    bool in = false;
    for (size_t i = 0; i < n; i++) {
        bool space = s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r' || s[i] == '\f' ||
                     s[i] == '\v';
        if (!space && !in)
            words++;
        in = !space;
    }
    return words;
}

/* Words of a JSON string value, added to *words; false when `v` is not a string. */
static bool string_words(struct jspan v, struct buf *tmp, uint64_t *words)
{
    if (jscan_type(v) != '"')
        return false;
    buf_reset(tmp);
    if (jscan_decode_str(v, tmp) == 0)
        *words += count_words(tmp->data ? tmp->data : "", tmp->len);
    return true;
}

/* `prompt`: a string, an array of strings, an array of token ids, or an array of those. */
static void prompt_words(struct jspan v, struct buf *tmp, uint64_t *words, int depth)
{
    if (string_words(v, tmp, words))
        return;
    if (jscan_type(v) == '0') {
        (*words)++; /* a token id */
        return;
    }
    if (jscan_type(v) != '[' || depth > 2)
        return;
    size_t pos = 0;
    struct jspan e;
    while (jscan_next_elem(v, &pos, &e))
        prompt_words(e, tmp, words, depth + 1);
}

/* `messages`: each entry's `content`, a string or an array of parts with a `text`. */
static void messages_words(struct jspan v, struct buf *tmp, uint64_t *words)
{
    size_t pos = 0;
    struct jspan m, content, part, text;
    while (jscan_next_elem(v, &pos, &m)) {
        if (!jscan_get(m, "content", &content) || string_words(content, tmp, words) ||
            jscan_type(content) != '[')
            continue;
        size_t k = 0;
        while (jscan_next_elem(content, &k, &part))
            if (jscan_get(part, "text", &text))
                (void)string_words(text, tmp, words);
    }
}

uint32_t prefill_prompt_words(const char *body, size_t n)
{
    struct jspan obj, v;
    if (!body || jscan_value((struct jspan){body, n}, true, &obj) || jscan_type(obj) != '{')
        return PREFILL_NO_PROMPT;
    struct buf tmp;
    buf_init(&tmp, 0);
    uint64_t words = 0;
    bool found = false;
    if (jscan_get(obj, "prompt", &v)) {
        found = true;
        prompt_words(v, &tmp, &words, 0);
    }
    if (jscan_get(obj, "messages", &v) && jscan_type(v) == '[') {
        found = true;
        messages_words(v, &tmp, &words);
    }
    buf_fini(&tmp);
    if (!found)
        return PREFILL_NO_PROMPT;
    return words >= PREFILL_NO_PROMPT ? PREFILL_NO_PROMPT - 1 : (uint32_t)words;
}
