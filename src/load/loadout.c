// SPDX-License-Identifier: MIT
// The load generator's text summary and JSON result.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "load/load.h"

static const double PCTS[] = {50, 90, 95, 99, 99.9};
static const char *const PCT_NAMES[] = {"p50", "p90", "p95", "p99", "p99.9"};
#define NPCTS 5

#define DEF_LATENCY                                                                                \
    "latency: from the request's intended send time (open loop: its slot in the schedule, so "     \
    "time spent waiting behind a slow server counts) to the last response byte"
#define DEF_RAW "latency_raw: from the actual send (connect or write) to the last response byte"
#define DEF_TTFT "TTFT: actual send to the first token event (vLLM benchmark_serving)"
#define DEF_ITL "ITL: gaps between successive token events of a stream"
#define DEF_TPOT "TPOT: (latency_raw - TTFT) / (output tokens - 1), streams with > 1 token"
#define DEF_TOKENS                                                                                 \
    "tokens: one per SSE event whose JSON has non-empty choices (or any non-JSON event); "         \
    "usage.completion_tokens replaces the count when the stream sends it"
#define DEF_PREFILL                                                                                \
    "prefill share: sum of TTFT / sum of request time (actual send to last byte) over "            \
    "successful streams, so queueing and connecting before the first token count as prefill; "     \
    "decode share: the rest (first token to last byte)"
#define DEF_PROMPT                                                                                 \
    "prompt length: usage.prompt_tokens when every stream reported it, else words "                \
    "(whitespace-separated) of the request body's prompt or messages[].content"

static void print_hist_line(FILE *f, const char *label, const struct hist *h)
{
    fprintf(f, "  %-10s", label);
    for (int i = 0; i < NPCTS; i++)
        fprintf(f, " %s %.3f", PCT_NAMES[i], (double)hist_percentile(h, PCTS[i]) / 1e3);
    fprintf(f, "  max %.3f  mean %.3f ms (n=%llu)\n", (double)h->max / 1e3, hist_mean(h) / 1e3,
            (unsigned long long)h->total);
}

static void print_mode(const struct load_result *r, FILE *f)
{
    fprintf(f, "crux load %s  %s, ", r->url, r->method);
    if (r->open_loop && !r->sweep)
        fprintf(f, "open loop: %s arrivals at %g req/s, up to %d connections",
                r->arrivals == LOAD_POISSON ? "Poisson" : "constant", r->stats.load,
                r->connections);
    else if (r->open_loop)
        fprintf(f, "open loop sweep over the rate (%s arrivals, up to %d connections)",
                r->arrivals == LOAD_POISSON ? "Poisson" : "constant", r->connections);
    else if (!r->sweep)
        fprintf(f, "closed loop: %d concurrent requests", (int)r->stats.load);
    else
        fprintf(f, "closed loop sweep over the concurrency");
    if (r->requests)
        fprintf(f, ", %llu requests", (unsigned long long)r->requests);
    else
        fprintf(f, ", %g s%s", r->duration_s, r->sweep ? " per step" : "");
    fprintf(f, ", timeout %g s\n", r->timeout_s);
}

static void print_errors(const struct load_stats *st, FILE *f)
{
    if (!st->errors)
        return;
    fprintf(f, "errors:");
    for (int e = 0; e < LOAD_ERR_COUNT; e++) {
        if (!st->err[e])
            continue;
        fprintf(f, " %s %llu", load_err_name((enum load_err)e), (unsigned long long)st->err[e]);
        if (e == LOAD_ERR_HTTP) {
            fprintf(f, " (");
            for (int i = 0; i < LOAD_MAX_CODES && st->code_counts[i]; i++)
                fprintf(f, "%s%d x%llu", i ? ", " : "", st->codes[i],
                        (unsigned long long)st->code_counts[i]);
            fprintf(f, ")");
        }
        fprintf(f, ";");
    }
    fprintf(f, "\n");
}

/* The prefill/decode block: the sentence, the shares and the two fits. */
static void print_prefill(const struct load_stats *st, FILE *f)
{
    struct prefill_summary s;
    prefill_summarize(&st->prefill, &s);
    if (!s.n || isnan(s.prefill_share))
        return;
    fprintf(f, "prefill/decode: %s\n", s.reading);
    fprintf(f,
            "  prefill (send to first token) %.1f%%, decode (first token to end) %.1f%% of the "
            "request time of %llu streams\n",
            100 * s.prefill_share, 100 * s.decode_share, (unsigned long long)s.n);
    const char *unit = s.usage ? "prompt tokens" : "prompt words";
    if (s.ttft_ok)
        fprintf(f, "  TTFT = %.3f ms %c %.4f ms x %s (R\xc2\xb2 %.3f, n=%llu)\n",
                s.ttft_intercept_us / 1e3, s.ttft_slope_us < 0 ? '-' : '+',
                fabs(s.ttft_slope_us) / 1e3, unit, s.ttft_r2, (unsigned long long)s.ttft_n);
    else
        fprintf(f, "  TTFT on prompt length: no fit (%s)\n",
                s.ttft_n ? "every prompt has the same length" : "no prompt in the request bodies");
    if (s.tpot_ok)
        fprintf(f, "  TPOT = %.3f ms %c %.4f ms x output tokens (R\xc2\xb2 %.3f, n=%llu)\n",
                s.tpot_intercept_us / 1e3, s.tpot_slope_us < 0 ? '-' : '+',
                fabs(s.tpot_slope_us) / 1e3, s.tpot_r2, (unsigned long long)s.tpot_n);
    else if (s.tpot_n)
        fprintf(f, "  TPOT on output length: no fit (every stream has the same length; mean "
                   "TPOT above)\n");
}

static void print_stats(const struct load_result *r, const struct load_stats *st, FILE *f)
{
    fprintf(f,
            "requests: %llu scheduled, %llu sent, %llu ok, %llu errors; %.1f req/s ok over "
            "%.2f s; %.2f MB in, %.2f MB out; %llu connections opened",
            (unsigned long long)st->scheduled, (unsigned long long)st->sent,
            (unsigned long long)st->ok, (unsigned long long)st->errors, st->throughput,
            st->elapsed_s, (double)st->bytes_in / 1e6, (double)st->bytes_out / 1e6,
            (unsigned long long)st->connects);
    if (st->retries)
        fprintf(f, ", %llu resent after a stale keep-alive close", (unsigned long long)st->retries);
    if (st->cancelled)
        fprintf(f, ", %llu cancelled by the stop", (unsigned long long)st->cancelled);
    fprintf(f, "\nlatency in ms%s:\n",
            st->open_loop ? "" : " (closed loop: intended = actual send)");
    print_hist_line(f, "corrected", &st->latency);
    print_hist_line(f, "raw", &st->latency_raw);
    if (st->open_loop) {
        double sent = st->sent ? (double)st->sent : 1;
        fprintf(f,
                "send lag: %.2f%% of requests started more than %d ms after their intended "
                "time (%.2f%% waiting for a free connection, %.2f%% crux's own lag); lag p99 "
                "%.3f ms, max %.3f ms; crux CPU %.0f%% of a core\n",
                100.0 * (double)st->late / sent, LOAD_LATE_US / 1000,
                100.0 * (double)st->waited_conn / sent, 100.0 * (double)st->self_late / sent,
                hist_percentile(&st->send_lag, 99) / 1e3, st->send_lag.max / 1e3,
                st->elapsed_s > 0 ? 100.0 * st->cpu_s / st->elapsed_s : 0.0);
    }
    if (st->streams) {
        fprintf(f, "streams: %llu responses, %llu output tokens (%.1f tokens/s)\n",
                (unsigned long long)st->streams, (unsigned long long)st->tokens,
                st->elapsed_s > 0 ? (double)st->tokens / st->elapsed_s : 0.0);
        print_hist_line(f, "TTFT", &st->ttft);
        print_hist_line(f, "TTFT sched", &st->ttft_sched);
        print_hist_line(f, "ITL", &st->itl);
        print_hist_line(f, "TPOT", &st->tpot);
        print_prefill(st, f);
    }
    print_errors(st, f);
    if (st->slo_checked && !r->sweep)
        fprintf(f, "SLO %s: %s%s%s\n", r->slo, st->slo_met ? "met" : "NOT met",
                st->slo_met ? "" : ": ", st->slo_detail);
}

static void print_sweep(const struct load_result *r, FILE *f)
{
    fprintf(f, "sweep (SLO %s):\n  %10s %12s %10s %10s %10s %10s %8s  %s\n", r->slo,
            r->open_loop ? "rate/s" : "conc", "throughput", "p50 ms", "p90 ms", "p99 ms",
            "p99.9 ms", "errors", "SLO");
    for (size_t i = 0; i < r->nsteps; i++) {
        const struct load_step *s = &r->steps[i];
        fprintf(f, "  %10g %10.1f/s %10.3f %10.3f %10.3f %10.3f %8llu  %s%s\n", s->load,
                s->throughput, s->p50 / 1e3, s->p90 / 1e3, s->p99 / 1e3, s->p999 / 1e3,
                (unsigned long long)s->errors,
                s->slo_met ? "met" : "NOT met: ", s->slo_met ? "" : s->slo_detail);
    }
    if (r->knee >= 0) {
        const struct load_step *k = &r->steps[r->knee];
        fprintf(f,
                "knee: %g %s, the highest load meeting %s (throughput %.1f req/s, p99 "
                "%.3f ms); its details:\n",
                k->load, r->open_loop ? "req/s" : "concurrent requests", r->slo, k->throughput,
                k->p99 / 1e3);
    } else {
        fprintf(f, "knee: none: no load tried met %s; the last step's details:\n", r->slo);
    }
}

void load_print_text(const struct load_result *r, FILE *f)
{
    print_mode(r, f);
    if (r->sweep)
        print_sweep(r, f);
    print_stats(r, &r->stats, f);
    fprintf(f, "definitions:\n  %s\n  %s\n", DEF_LATENCY, DEF_RAW);
    if (r->stats.streams)
        fprintf(f, "  %s\n  %s\n  %s\n  %s\n  %s\n  %s\n", DEF_TTFT, DEF_ITL, DEF_TPOT, DEF_TOKENS,
                DEF_PREFILL, DEF_PROMPT);
    if (r->stopped)
        fprintf(f, "stopped early: the figures cover what ran\n");
    const struct load_stats *cs = &r->stats;
    if (r->cost_per_hour > 0 && cs->throughput > 0) {
        fprintf(f, "cost at $%.2f/h: $%.4f per 1,000 requests", r->cost_per_hour,
                r->cost_per_hour / (cs->throughput * 3600.0) * 1000.0);
        if (cs->tokens && cs->elapsed_s > 0)
            fprintf(f, ", $%.4f per million output tokens",
                    r->cost_per_hour / ((double)cs->tokens / cs->elapsed_s * 3600.0) * 1e6);
        fprintf(f, " (at the measured throughput, %.2f req/s)\n", cs->throughput);
    }
    for (int i = 0; i < r->nwarnings; i++)
        fprintf(f, "warning: %s\n", r->warnings[i]);
}

/* ---- JSON ---- */

static void json_hist(struct jsonw *w, const char *key, const struct hist *h, bool buckets)
{
    jsonw_key(w, key);
    jsonw_obj_begin(w);
    jsonw_key(w, "count");
    jsonw_u64(w, h->total);
    for (int i = 0; i < NPCTS; i++) {
        jsonw_key(w, PCT_NAMES[i]);
        jsonw_i64(w, hist_percentile(h, PCTS[i]));
    }
    jsonw_key(w, "min");
    jsonw_i64(w, h->min);
    jsonw_key(w, "max");
    jsonw_i64(w, h->max);
    jsonw_key(w, "mean");
    jsonw_double(w, hist_mean(h));
    jsonw_key(w, "clamped"); /* values above one hour, recorded as one hour */
    jsonw_u64(w, h->clamped);
    if (buckets) {
        /* [lowest, highest, count] of every non-empty bucket */
        jsonw_key(w, "buckets");
        jsonw_arr_begin(w);
        size_t pos = 0;
        int64_t lo, hi;
        uint64_t c;
        while (hist_next(h, &pos, &lo, &hi, &c)) {
            jsonw_arr_begin(w);
            jsonw_i64(w, lo);
            jsonw_i64(w, hi);
            jsonw_u64(w, c);
            jsonw_arr_end(w);
        }
        jsonw_arr_end(w);
    }
    jsonw_obj_end(w);
}

static void json_u64(struct jsonw *w, const char *k, uint64_t v)
{
    jsonw_key(w, k);
    jsonw_u64(w, v);
}

static void json_dbl(struct jsonw *w, const char *k, double v)
{
    jsonw_key(w, k);
    jsonw_double(w, v);
}

/* {n, slope, intercept_us, r2} of a fit, or null. */
static void json_fit(struct jsonw *w, const char *key, const char *slope_key, bool ok, uint64_t n,
                     double slope, double intercept, double r2)
{
    jsonw_key(w, key);
    if (!ok) {
        jsonw_null(w);
        return;
    }
    jsonw_obj_begin(w);
    json_u64(w, "n", n);
    json_dbl(w, slope_key, slope);
    json_dbl(w, "intercept_us", intercept);
    json_dbl(w, "r2", r2);
    jsonw_obj_end(w);
}

static void json_prefill_points(struct jsonw *w, const struct prefill *p)
{
    jsonw_key(w, "points");
    jsonw_obj_begin(w);
    jsonw_key(w, "columns");
    jsonw_arr_begin(w);
    static const char *const cols[] = {"prompt_words", "prompt_tokens", "output_tokens", "ttft_us",
                                       "tpot_us"};
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
        jsonw_str(w, cols[i]);
    jsonw_arr_end(w);
    jsonw_key(w, "rows");
    jsonw_arr_begin(w);
    for (size_t i = 0; i < p->npts; i++) {
        const struct prefill_point *pt = &p->pts[i];
        jsonw_arr_begin(w);
        if (pt->prompt_words == PREFILL_NO_PROMPT)
            jsonw_null(w);
        else
            jsonw_u64(w, pt->prompt_words);
        if (pt->prompt_usage < 0)
            jsonw_null(w);
        else
            jsonw_i64(w, pt->prompt_usage);
        jsonw_u64(w, pt->out_tokens);
        jsonw_i64(w, pt->ttft_us);
        if (pt->tpot_us < 0)
            jsonw_null(w);
        else
            jsonw_i64(w, pt->tpot_us);
        jsonw_arr_end(w);
    }
    jsonw_arr_end(w);
    jsonw_obj_end(w);
}

/* "prefill_decode": shares, fits, the reading and the scatter's points (docs/load.md). */
static void json_prefill(struct jsonw *w, const struct prefill *p)
{
    struct prefill_summary s;
    prefill_summarize(p, &s);
    jsonw_key(w, "prefill_decode");
    jsonw_obj_begin(w);
    json_u64(w, "streams", s.n);
    json_dbl(w, "prefill_share", s.prefill_share);
    json_dbl(w, "decode_share", s.decode_share);
    jsonw_key(w, "prompt_unit");
    if (!s.n || isnan(s.mean_prompt))
        jsonw_null(w);
    else
        jsonw_str(w, s.usage ? "usage.prompt_tokens" : "words");
    json_dbl(w, "mean_prompt", s.mean_prompt);
    json_dbl(w, "mean_output_tokens", s.mean_out);
    json_fit(w, "ttft_fit", "slope_us_per_prompt_unit", s.ttft_ok, s.ttft_n, s.ttft_slope_us,
             s.ttft_intercept_us, s.ttft_r2);
    json_fit(w, "tpot_fit", "slope_us_per_output_token", s.tpot_ok, s.tpot_n, s.tpot_slope_us,
             s.tpot_intercept_us, s.tpot_r2);
    jsonw_key(w, "reading");
    if (s.reading[0])
        jsonw_str(w, s.reading);
    else
        jsonw_null(w);
    json_prefill_points(w, p);
    jsonw_obj_end(w);
}

static void json_stats(struct jsonw *w, const struct load_stats *st)
{
    jsonw_obj_begin(w);
    json_dbl(w, "load", st->load);
    json_u64(w, "scheduled", st->scheduled);
    json_u64(w, "sent", st->sent);
    json_u64(w, "ok", st->ok);
    json_u64(w, "errors", st->errors);
    jsonw_key(w, "errors_by_class");
    jsonw_obj_begin(w);
    for (int e = 0; e < LOAD_ERR_COUNT; e++)
        json_u64(w, load_err_name((enum load_err)e), st->err[e]);
    jsonw_obj_end(w);
    jsonw_key(w, "http_codes");
    jsonw_obj_begin(w);
    for (int i = 0; i < LOAD_MAX_CODES && st->code_counts[i]; i++) {
        char k[16];
        snprintf(k, sizeof(k), "%d", st->codes[i]);
        json_u64(w, k, st->code_counts[i]);
    }
    jsonw_obj_end(w);
    json_u64(w, "retries", st->retries);
    json_u64(w, "cancelled", st->cancelled);
    json_u64(w, "connections_opened", st->connects);
    json_u64(w, "bytes_in", st->bytes_in);
    json_u64(w, "bytes_out", st->bytes_out);
    json_dbl(w, "elapsed_s", st->elapsed_s);
    json_dbl(w, "throughput", st->throughput);
    json_dbl(w, "cpu_s", st->cpu_s);
    json_u64(w, "late", st->late);
    json_u64(w, "late_waiting_for_connection", st->waited_conn);
    json_u64(w, "late_crux_lag", st->self_late);
    json_hist(w, "latency_us", &st->latency, true);
    json_hist(w, "latency_raw_us", &st->latency_raw, true);
    json_hist(w, "send_lag_us", &st->send_lag, false);
    json_hist(w, "self_lag_us", &st->self_lag, false);
    json_u64(w, "streams", st->streams);
    json_u64(w, "tokens", st->tokens);
    json_dbl(w, "output_token_throughput",
             st->elapsed_s > 0 ? (double)st->tokens / st->elapsed_s : 0);
    json_hist(w, "ttft_us", &st->ttft, false);
    json_hist(w, "ttft_sched_us", &st->ttft_sched, false);
    json_hist(w, "itl_us", &st->itl, false);
    json_hist(w, "tpot_us", &st->tpot, false);
    json_prefill(w, &st->prefill);
    jsonw_key(w, "timeline");
    jsonw_obj_begin(w);
    json_dbl(w, "tick_s", st->tick_s);
    static const char *const series[] = {"ok", "errors", "latency_mean_us", "latency_max_us"};
    for (int k = 0; k < 4; k++) {
        jsonw_key(w, series[k]);
        jsonw_arr_begin(w);
        for (size_t i = 0; i < st->nticks; i++) {
            const struct load_tick *t = &st->ticks[i];
            if (k == 0)
                jsonw_u64(w, t->ok);
            else if (k == 1)
                jsonw_u64(w, t->errors);
            else if (k == 2)
                jsonw_double(w, t->n ? t->lat_sum / t->n : 0);
            else
                jsonw_i64(w, t->lat_max);
        }
        jsonw_arr_end(w);
    }
    jsonw_obj_end(w);
    if (st->slo_checked) {
        jsonw_key(w, "slo_met");
        jsonw_bool(w, st->slo_met);
        jsonw_key(w, "slo_detail");
        jsonw_str(w, st->slo_detail);
    }
    jsonw_obj_end(w);
}

void load_write_json(const struct load_result *r, struct jsonw *w)
{
    jsonw_obj_begin(w);
    jsonw_key(w, "url");
    jsonw_str(w, r->url);
    jsonw_key(w, "method");
    jsonw_str(w, r->method);
    jsonw_key(w, "mode");
    jsonw_str(w, r->open_loop ? "open" : "closed");
    jsonw_key(w, "arrivals");
    jsonw_str(w, r->arrivals == LOAD_POISSON ? "poisson" : "constant");
    json_u64(w, "connections", (uint64_t)r->connections);
    if (!r->sweep) {
        jsonw_key(w, r->open_loop ? "rate" : "concurrency");
        jsonw_double(w, r->stats.load);
    }
    json_dbl(w, "duration_s", r->duration_s);
    json_u64(w, "requests", r->requests);
    json_dbl(w, "timeout_s", r->timeout_s);
    jsonw_key(w, "stopped");
    jsonw_bool(w, r->stopped);
    jsonw_key(w, "stats");
    json_stats(w, &r->stats);
    if (r->sweep) {
        jsonw_key(w, "sweep");
        jsonw_obj_begin(w);
        jsonw_key(w, "slo");
        jsonw_str(w, r->slo);
        jsonw_key(w, "knee");
        if (r->knee >= 0)
            jsonw_double(w, r->steps[r->knee].load);
        else
            jsonw_null(w);
        jsonw_key(w, "steps");
        jsonw_arr_begin(w);
        for (size_t i = 0; i < r->nsteps; i++) {
            const struct load_step *s = &r->steps[i];
            jsonw_obj_begin(w);
            json_dbl(w, "load", s->load);
            json_dbl(w, "throughput", s->throughput);
            json_u64(w, "ok", s->ok);
            json_u64(w, "errors", s->errors);
            jsonw_key(w, "p50_us");
            jsonw_i64(w, s->p50);
            jsonw_key(w, "p90_us");
            jsonw_i64(w, s->p90);
            jsonw_key(w, "p99_us");
            jsonw_i64(w, s->p99);
            jsonw_key(w, "p99.9_us");
            jsonw_i64(w, s->p999);
            jsonw_key(w, "max_us");
            jsonw_i64(w, s->max);
            jsonw_key(w, "ttft_p50_us");
            jsonw_i64(w, s->ttft_p50);
            jsonw_key(w, "ttft_p99_us");
            jsonw_i64(w, s->ttft_p99);
            jsonw_key(w, "slo_met");
            jsonw_bool(w, s->slo_met);
            jsonw_key(w, "slo_detail");
            jsonw_str(w, s->slo_detail);
            jsonw_obj_end(w);
        }
        jsonw_arr_end(w);
        jsonw_obj_end(w);
    } else if (r->slo[0]) {
        jsonw_key(w, "slo");
        jsonw_str(w, r->slo);
    }
    jsonw_key(w, "warnings");
    jsonw_arr_begin(w);
    for (int i = 0; i < r->nwarnings; i++)
        jsonw_str(w, r->warnings[i]);
    jsonw_arr_end(w);
    if (r->cost_per_hour > 0) {
        const struct load_stats *cs = &r->stats;
        jsonw_key(w, "cost");
        jsonw_obj_begin(w);
        json_dbl(w, "usd_per_hour", r->cost_per_hour);
        json_dbl(w, "usd_per_1000_requests",
                 cs->throughput > 0 ? r->cost_per_hour / (cs->throughput * 3600.0) * 1000.0 : NAN);
        json_dbl(w, "usd_per_million_tokens",
                 cs->tokens && cs->elapsed_s > 0
                     ? r->cost_per_hour / ((double)cs->tokens / cs->elapsed_s * 3600.0) * 1e6
                     : NAN);
        jsonw_obj_end(w);
    }
    jsonw_key(w, "definitions");
    jsonw_obj_begin(w);
    jsonw_key(w, "latency");
    jsonw_str(w, DEF_LATENCY);
    jsonw_key(w, "latency_raw");
    jsonw_str(w, DEF_RAW);
    jsonw_key(w, "ttft");
    jsonw_str(w, DEF_TTFT);
    jsonw_key(w, "itl");
    jsonw_str(w, DEF_ITL);
    jsonw_key(w, "tpot");
    jsonw_str(w, DEF_TPOT);
    jsonw_key(w, "tokens");
    jsonw_str(w, DEF_TOKENS);
    jsonw_key(w, "prefill_share");
    jsonw_str(w, DEF_PREFILL);
    jsonw_key(w, "prompt_length");
    jsonw_str(w, DEF_PROMPT);
    jsonw_obj_end(w);
    jsonw_obj_end(w);
}
