// SPDX-License-Identifier: MIT
// Unit tests of prefill/decode: the least-squares line against exact and noisy data with a
// large offset, the shares and the unit choice against a hand-computed run, the scatter's
// bounded sample, the reading, and the prompt length of OpenAI-style bodies.
#include <math.h>
#include <string.h>

#include "check.h"
#include "load/prefill.h"

static int test_fit_exact_line(void)
{
    struct prefill_fit f = {0};
    double slope, icpt, r2;
    CHECK(!prefill_fit_line(&f, &slope, &icpt, &r2), "no points, no line");
    prefill_fit_add(&f, 10, 7);
    CHECK(!prefill_fit_line(&f, &slope, &icpt, &r2), "one point, no line");
    prefill_fit_add(&f, 10, 9);
    CHECK(!prefill_fit_line(&f, &slope, &icpt, &r2), "no spread in x, no line");
    struct prefill_fit g = {0};
    for (int x = 0; x < 50; x++)
        prefill_fit_add(&g, x, 5000 + 500.0 * x);
    CHECK(prefill_fit_line(&g, &slope, &icpt, &r2), "a line");
    CHECK(fabs(slope - 500) < 1e-9 && fabs(icpt - 5000) < 1e-6 && fabs(r2 - 1) < 1e-12,
          "slope %g intercept %g r2 %g", slope, icpt, r2);
    return 0;
}

/* Against the textbook formulas on a large offset (x near 1e9): co-moments do not cancel. */
static int test_fit_noisy_offset(void)
{
    struct prefill_fit f = {0};
    double xs[200], ys[200], mx = 0, my = 0;
    uint64_t s = 12345;
    for (int i = 0; i < 200; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double noise = (double)(s >> 40) / (double)(1ULL << 24) - 0.5; /* [-0.5, 0.5) */
        xs[i] = 1e9 + i;
        ys[i] = 3.0 * i + 40 * noise;
        prefill_fit_add(&f, xs[i], ys[i]);
        mx += xs[i] / 200;
        my += ys[i] / 200;
    }
    double sxx = 0, sxy = 0, syy = 0;
    for (int i = 0; i < 200; i++) {
        sxx += (xs[i] - mx) * (xs[i] - mx);
        sxy += (xs[i] - mx) * (ys[i] - my);
        syy += (ys[i] - my) * (ys[i] - my);
    }
    double slope, icpt, r2;
    CHECK(prefill_fit_line(&f, &slope, &icpt, &r2), "a line");
    CHECK(fabs(slope - sxy / sxx) < 1e-6, "slope %g vs %g", slope, sxy / sxx);
    CHECK(fabs(r2 - sxy * sxy / (sxx * syy)) < 1e-6, "r2 %g", r2);
    CHECK(fabs(slope - 3) < 0.05, "slope %g near 3", slope);
    /* the fitted line passes through the means */
    CHECK(fabs(icpt + slope * mx - my) < 1e-3 * fabs(my) + 1e-3, "through the means");
    return 0;
}

static void add(struct prefill *p, uint32_t words, int64_t usage, uint64_t out, double ttft_ms,
                double total_ms)
{
    struct prefill_req r = {.prompt_words = words,
                            .prompt_usage = usage,
                            .out_tokens = out,
                            .ttft_ns = (uint64_t)(ttft_ms * 1e6),
                            .total_ns = (uint64_t)(total_ms * 1e6)};
    prefill_add(p, &r);
}

static int test_shares_and_fits(void)
{
    struct prefill p;
    prefill_init(&p);
    /* TTFT = 5 ms + 0.5 ms/word, 8 ms per token after it */
    static const uint32_t words[] = {20, 400, 100, 250};
    static const uint64_t outs[] = {16, 4, 8, 12};
    double ttft_sum = 0, total_sum = 0;
    for (int i = 0; i < 4; i++) {
        double ttft = 5 + 0.5 * words[i], total = ttft + 8.0 * (double)(outs[i] - 1);
        ttft_sum += ttft;
        total_sum += total;
        add(&p, words[i], -1, outs[i], ttft, total);
    }
    struct prefill_summary s;
    prefill_summarize(&p, &s);
    CHECK(s.n == 4 && fabs(s.prefill_share - ttft_sum / total_sum) < 1e-9, "share %g vs %g",
          s.prefill_share, ttft_sum / total_sum);
    CHECK(fabs(s.prefill_share + s.decode_share - 1) < 1e-12, "shares add up");
    CHECK(!s.usage && fabs(s.mean_prompt - 192.5) < 1e-9 && fabs(s.mean_out - 10) < 1e-9,
          "words: mean prompt %g, out %g", s.mean_prompt, s.mean_out);
    CHECK(s.ttft_ok && fabs(s.ttft_slope_us - 500) < 0.01 && fabs(s.ttft_intercept_us - 5000) < 1,
          "ttft fit %g %g", s.ttft_slope_us, s.ttft_intercept_us);
    CHECK(s.tpot_ok && fabs(s.tpot_slope_us) < 0.01 && fabs(s.tpot_intercept_us - 8000) < 1 &&
              s.tpot_r2 == 1,
          "tpot fit %g %g r2 %g", s.tpot_slope_us, s.tpot_intercept_us, s.tpot_r2);
    CHECK(p.npts == 4 && p.pts[1].prompt_words == 400 && p.pts[1].tpot_us == 8000 &&
              p.pts[1].ttft_us == 205000,
          "points kept");
    CHECK(strstr(s.reading, "long prompts, short outputs: prefill and decode are about even "
                            "(prefill 58% of request time)") == s.reading,
          "reading: %s", s.reading);
    CHECK(strstr(s.reading, "TTFT grows 0.5 ms per prompt word"), "reading: %s", s.reading);
    prefill_fini(&p);
    return 0;
}

static int test_usage_unit_and_decode(void)
{
    struct prefill p;
    prefill_init(&p);
    /* usage.prompt_tokens from every stream: it is the unit; short prompts, long outputs */
    add(&p, 10, 20, 100, 10, 110);
    add(&p, 20, 40, 100, 20, 120);
    add(&p, 1, 2, 100, 1, 101);
    struct prefill_summary s;
    prefill_summarize(&p, &s);
    CHECK(s.usage && s.ttft_n == 3, "usage unit");
    CHECK(s.ttft_ok && fabs(s.ttft_slope_us - 500) < 1e-6, "slope per usage token %g",
          s.ttft_slope_us);
    CHECK(s.tpot_n == 3 && !s.tpot_ok, "same output length: no tpot line (n %llu)",
          (unsigned long long)s.tpot_n);
    CHECK(
        strstr(s.reading, "short prompts, long outputs: decode dominates (91% of request time)") ==
            s.reading,
        "reading: %s", s.reading);
    /* one stream without usage: back to words for all; one token: decode counts, no TPOT */
    add(&p, 30, -1, 1, 30, 31);
    prefill_summarize(&p, &s);
    CHECK(!s.usage && s.ttft_n == 4 && s.tpot_n == 3, "mixed: words");
    CHECK(p.pts[3].tpot_us == -1, "no tpot for one token");
    prefill_fini(&p);
    struct prefill e;
    prefill_init(&e);
    prefill_summarize(&e, &s);
    CHECK(s.n == 0 && isnan(s.prefill_share) && !s.ttft_ok && !s.reading[0], "empty run");
    prefill_fini(&e);
    return 0;
}

static int test_scatter_sample_is_bounded(void)
{
    struct prefill p;
    prefill_init(&p);
    uint64_t n = 10 * PREFILL_MAX_POINTS;
    for (uint64_t i = 0; i < n; i++)
        add(&p, (uint32_t)i, -1, 2, 1, 2);
    CHECK(p.npts == PREFILL_MAX_POINTS && p.n == n, "bounded: %zu", p.npts);
    /* a uniform sample: about a tenth of the kept points from the first tenth */
    size_t early = 0;
    for (size_t i = 0; i < p.npts; i++)
        early += p.pts[i].prompt_words < n / 10;
    CHECK(early > PREFILL_MAX_POINTS / 20 && early < PREFILL_MAX_POINTS / 5, "early %zu", early);
    prefill_fini(&p);
    return 0;
}

static uint32_t words_of(const char *body)
{
    return prefill_prompt_words(body, strlen(body));
}

static int test_prompt_words(void)
{
    CHECK(words_of("{\"prompt\": \"a bb  ccc\\nd\\te\"}") == 5, "string prompt");
    CHECK(words_of("{\"prompt\": [\"a b\", \"c\"]}") == 3, "prompt strings");
    CHECK(words_of("{\"prompt\": [1, 2, 3, 4]}") == 4, "token ids");
    CHECK(words_of("{\"prompt\": [[1, 2], [3]]}") == 3, "batches of token ids");
    CHECK(words_of("{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                   "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"one two "
                   "three\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]}") == 5,
          "messages: string and parts");
    CHECK(words_of("{\"prompt\": \"\"}") == 0, "empty prompt");
    CHECK(words_of("{\"prompt\": \"caf\\u00e9 \\u4e2d\\u6587\"}") == 2, "escapes decoded");
    CHECK(words_of("{\"input\": \"x y\"}") == PREFILL_NO_PROMPT, "no prompt key");
    CHECK(words_of("not json") == PREFILL_NO_PROMPT, "not JSON");
    CHECK(words_of("[\"prompt\"]") == PREFILL_NO_PROMPT, "not an object");
    CHECK(prefill_prompt_words(NULL, 0) == PREFILL_NO_PROMPT, "no body");
    return 0;
}

int main(void)
{
    RUN(test_fit_exact_line);
    RUN(test_fit_noisy_offset);
    RUN(test_shares_and_fits);
    RUN(test_usage_unit_and_decode);
    RUN(test_scatter_sample_is_bounded);
    RUN(test_prompt_words);
    return TEST_SUMMARY("prefill");
}
