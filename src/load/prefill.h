// SPDX-License-Identifier: MIT
// Prefill and decode of streamed completions: each request's time to first token (prefill,
// with any queueing before it) against the decode time after it, their shares over a run,
// and least-squares fits of TTFT on prompt length and TPOT on output length.
//
// Bounded and cheap on the load loop's hot path: prefill_add does a few additions (running
// sums and co-moments, no per-request arrays) and keeps at most PREFILL_MAX_POINTS requests
// for the scatter, a uniform reservoir sample of the run. The prompt length of a request
// template is measured once, before the run (prefill_prompt_words).
#ifndef CRUX_PREFILL_H
#define CRUX_PREFILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PREFILL_MAX_POINTS 2000      /* requests kept for the scatter */
#define PREFILL_NO_PROMPT UINT32_MAX /* a body with no prompt crux can read */
#define PREFILL_DOMINATES 0.6        /* a phase "dominates" at this share of request time */

/* A running least-squares line y = slope * x + intercept (Welford-style co-moments, so
 * large offsets do not cancel). Zero-initialize. */
struct prefill_fit {
    double n, mx, my, cxx, cxy, cyy;
};

/* One request kept for the scatter. */
struct prefill_point {
    uint32_t prompt_words; /* from the request body; PREFILL_NO_PROMPT none */
    uint32_t out_tokens;
    int64_t prompt_usage;     /* usage.prompt_tokens from the stream; -1 none */
    int64_t ttft_us, tpot_us; /* tpot_us -1 for a stream of one token */
};

/* Everything a run collects. prefill_init / prefill_fini; the owner is struct load_stats. */
struct prefill {
    uint64_t n;                       /* successful streams with a first token */
    double ttft_sum_us, total_sum_us; /* sums of TTFT and of the request time (raw latency) */
    uint64_t n_words, n_usage;        /* of those, with a prompt length from the body / usage */
    double words_sum, usage_sum, out_sum;
    struct prefill_fit ttft_words; /* TTFT (us) on prompt words */
    struct prefill_fit ttft_usage; /* TTFT (us) on usage.prompt_tokens */
    struct prefill_fit tpot_out;   /* TPOT (us) on output tokens, streams of > 1 token */
    struct prefill_point *pts;     /* PREFILL_MAX_POINTS slots, owned */
    size_t npts;
    uint64_t rng; /* reservoir sampling (splitmix64), fixed seed: reproducible */
};

/* One finished request, as the loop hands it over. */
struct prefill_req {
    uint32_t prompt_words; /* PREFILL_NO_PROMPT when the body had none */
    int64_t prompt_usage;  /* -1 when the stream reported none */
    uint64_t out_tokens;
    uint64_t ttft_ns;  /* actual send to the first token event */
    uint64_t total_ns; /* actual send to the end of the response */
};

/* What a run's numbers say. */
struct prefill_summary {
    uint64_t n;                   /* requests behind the shares */
    double prefill_share;         /* sum TTFT / sum request time; NAN without requests */
    double decode_share;          /* 1 - prefill_share */
    bool usage;                   /* the prompt unit is usage.prompt_tokens (else words) */
    double mean_prompt, mean_out; /* NAN when unknown */
    bool ttft_ok, tpot_ok;        /* the fits exist (2+ points with spread in x) */
    uint64_t ttft_n, tpot_n;
    double ttft_slope_us, ttft_intercept_us, ttft_r2; /* us per prompt unit, us */
    double tpot_slope_us, tpot_intercept_us, tpot_r2; /* us per output token, us */
    char reading[320]; /* one sentence: which phase dominates, and what TTFT follows */
};

/* Allocates the scatter's slots; zeroes the rest. */
void prefill_init(struct prefill *p);
/* Releases the slots. */
void prefill_fini(struct prefill *p);
/* Adds one successful stream that had a first token. Allocation-free. */
void prefill_add(struct prefill *p, const struct prefill_req *r);
/* Computes the shares, fits and the sentence. */
void prefill_summarize(const struct prefill *p, struct prefill_summary *s);

/* Adds the point (x, y) to the line. */
void prefill_fit_add(struct prefill_fit *f, double x, double y);
/* The least-squares line and its R^2 (1 when y has no spread and the line fits it); false
 * with fewer than two points or no spread in x. */
bool prefill_fit_line(const struct prefill_fit *f, double *slope, double *intercept, double *r2);

/* The prompt length of an OpenAI-style JSON request body, in words (runs of non-whitespace
 * after JSON string decoding): the string `prompt`, each string of an array `prompt`, or the
 * `content` of each `messages[]` entry (a string, or parts with a `text`); an array of token
 * ids (numbers) counts one per id. PREFILL_NO_PROMPT when the body is not a JSON object or
 * has neither key. Runs before the load (it allocates a decode buffer). */
uint32_t prefill_prompt_words(const char *body, size_t n);

#endif
