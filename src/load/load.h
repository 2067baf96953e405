// SPDX-License-Identifier: MIT
// crux's HTTP load generator: open loop (fixed or Poisson arrivals, latency from the intended
// send time) or closed loop, sweeps to the SLO knee, streamed-completion metrics.
//
// Use from C (for example `crux record --load URL` on a thread of its own):
//
//     struct load_opts o;
//     load_opts_defaults(&o);
//     o.url = "http://127.0.0.1:8000/v1/completions";
//     o.rate = 50;                          // open loop; or o.concurrency = 8
//     o.duration_s = 30;
//     struct load_result res;
//     struct errbuf eb;
//     if (load_run(&o, &res, &stop_flag, &eb) == 0) {
//         load_print_text(&res, stdout);    // or load_write_json(&res, &w) into a jsonw
//         load_result_fini(&res);
//     }
//
// load_run blocks the calling thread until the run ends (duration, request count, or *stop
// set from elsewhere: a signal handler or another thread) and touches no global state except
// the calling thread's timer slack (set to 1 us, as the sampler does). It never prints.
#ifndef CRUX_LOAD_H
#define CRUX_LOAD_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "load/hist.h"
#include "load/prefill.h"
#include "util/err.h"
#include "util/jsonw.h"

struct reqlog;

enum load_arrivals {
    LOAD_CONSTANT, /* every 1/rate seconds */
    LOAD_POISSON,  /* exponential gaps with mean 1/rate */
};

/* Error classes: a failed request is counted in one, never in the latency histograms. */
enum load_err {
    LOAD_ERR_CONNECT,    /* connect or TLS handshake failed (refused, unreachable, untrusted) */
    LOAD_ERR_TIMEOUT,    /* no complete response within --timeout of the send */
    LOAD_ERR_HTTP,       /* a complete response with status >= 400 (codes in status[]) */
    LOAD_ERR_PROTOCOL,   /* malformed status line, headers, chunk size, oversized headers */
    LOAD_ERR_TRUNCATED,  /* the connection ended inside a response or stream (no [DONE]) */
    LOAD_ERR_CLOSED,     /* the connection was closed or reset before any response byte */
    LOAD_ERR_UNFINISHED, /* scheduled but not finished when the run's drain time ran out */
    LOAD_ERR_COUNT,
};

/* Distinct HTTP error status codes counted per run (the rest are summed under code 0). */
#define LOAD_MAX_CODES 16
/* Lateness above this is "late" (send lag) in the summary. */
#define LOAD_LATE_US 1000

/* What to run. Strings are borrowed from the caller for the duration of load_run. */
struct load_opts {
    const char *url;            /* http:// or https://host[:port][/path] */
    bool insecure;              /* https: do not verify the server's certificate */
    const char *method;         /* NULL: GET, or POST with a body */
    const char *const *headers; /* "Name: value" each */
    size_t nheaders;
    const char *body_file;     /* request body, read once */
    const char *requests_file; /* JSONL of {method, path, headers, body}, cycled */
    double rate;               /* > 0: open loop at this many requests per second */
    enum load_arrivals arrivals;
    int connections;      /* open loop: most connections open at once */
    int concurrency;      /* closed loop (rate == 0): requests in flight */
    double duration_s;    /* schedule length (0 with `requests`: until they are done) */
    uint64_t requests;    /* > 0: this many requests, then stop */
    double timeout_s;     /* per request, from its send */
    const char *log_path; /* per-request JSONL, or NULL */
    bool log_bodies;      /* each log line also carries body_sha256 and the body (64 KiB) */
    uint64_t seed;        /* Poisson arrivals */
    /* Sweep: double the load from the start value (rate, or concurrency when rate == 0)
     * until the SLO fails, then bisect until hi/lo - 1 < precision. */
    bool sweep;
    double sweep_max;       /* highest load tried */
    double sweep_precision; /* relative width at which bisection stops */
    const char *slo;        /* "p99=200ms,errors=1%": required with sweep */
    double cost_per_hour;   /* USD per hour of the server: cost per 1,000 requests; 0 none */
    /* When set, kept equal to the number of requests in flight (sent, response not yet
     * complete), for a reader on another thread: record --load tags its samples with it. */
    _Atomic uint32_t *inflight;
    /* When set, each request's record is appended to it by the thread running load_run, as
     * the request ends (a request in flight when the run stops, as it stops). The caller
     * owns it and reads it after load_run has returned. */
    struct reqlog *reqlog;
};

/* One tick of the timeline. */
struct load_tick {
    uint32_t ok, errors; /* responses that ended in this tick */
    uint32_t n;          /* successful requests intended in this tick */
    int64_t lat_max;     /* their corrected latency, us */
    double lat_sum;
};

#define LOAD_MAX_TICKS 3600

/* Counters and histograms of one run or sweep step. Histograms are in microseconds. */
struct load_stats {
    double load; /* offered rate (req/s) or concurrency */
    bool open_loop;
    uint64_t scheduled; /* requests the schedule asked for */
    uint64_t sent;      /* requests started (connect or write) */
    uint64_t ok;        /* complete responses with status < 400 */
    uint64_t errors;    /* sum of err[] */
    uint64_t err[LOAD_ERR_COUNT];
    int codes[LOAD_MAX_CODES]; /* HTTP error codes seen (0 = other) */
    uint64_t code_counts[LOAD_MAX_CODES];
    uint64_t retries;   /* requests resent once after a reused connection closed */
    uint64_t cancelled; /* in flight when *stop was set */
    uint64_t connects;  /* connections opened */
    uint64_t bytes_in, bytes_out;
    uint64_t late;           /* started more than LOAD_LATE_US after the intended time */
    uint64_t waited_conn;    /* of those, late because every connection was busy */
    uint64_t self_late;      /* of those, late although a connection was free: crux's own lag */
    uint64_t streams;        /* responses with Content-Type text/event-stream */
    uint64_t tokens;         /* output tokens over all streams */
    double elapsed_s;        /* first intended send to the last completion */
    double cpu_s;            /* CPU time of the thread that ran the loop */
    double throughput;       /* ok / elapsed_s */
    struct hist latency;     /* from the intended send time (corrected) */
    struct hist latency_raw; /* from the actual send */
    struct hist send_lag;    /* actual send - intended send */
    struct hist self_lag;    /* the part of the send lag caused by crux itself */
    struct hist ttft;        /* streams: actual send to first token */
    struct hist ttft_sched;  /* streams: intended send to first token */
    struct hist itl;         /* streams: gaps between successive token events */
    struct hist tpot;        /* streams: (latency - ttft) / (tokens - 1), tokens > 1 */
    struct prefill prefill;  /* streams: prefill/decode shares and fits (prefill.h) */
    /* Timeline in ticks of tick_s seconds from the first intended send (at most
     * LOAD_MAX_TICKS; later ones land in the last): completions and errors by the time they
     * ended, corrected latency (mean, max) by the time the requests were intended. */
    double tick_s;
    size_t nticks;           /* ticks used */
    struct load_tick *ticks; /* LOAD_MAX_TICKS entries, owned */
    bool slo_checked, slo_met;
    char slo_detail[160]; /* which SLO term failed, with the measured value */
};

/* One sweep step: the load and a summary (the full histograms are kept for the knee only). */
struct load_step {
    double load, throughput;
    uint64_t ok, errors;
    int64_t p50, p90, p99, p999, max; /* corrected latency, us */
    int64_t ttft_p50, ttft_p99;       /* 0 without streams */
    bool slo_met;
    char slo_detail[160];
};

#define LOAD_MAX_STEPS 64

struct load_result {
    char url[512];
    char method[16];
    bool open_loop;
    enum load_arrivals arrivals;
    int connections, concurrency;
    double duration_s, timeout_s;
    uint64_t requests;
    bool sweep;
    char slo[160];
    size_t nsteps;
    struct load_step steps[LOAD_MAX_STEPS];
    int knee;                /* index into steps of the highest load meeting the SLO, or -1 */
    struct load_stats stats; /* the single run, or the knee step (else the last step) */
    bool stopped;            /* *stop ended the run early */
    double cost_per_hour;    /* from the options; 0 none */
    char warnings[4][320];   /* crux-is-the-bottleneck and connection warnings */
    int nwarnings;
};

/* Fills `o` with the defaults: GET, closed loop at concurrency 1, 10 s, 128 connections for
 * open loop, timeout 30 s, constant arrivals, sweep precision 0.05. */
void load_opts_defaults(struct load_opts *o);
/* Checks options without running anything; ERR_ARG with a one-line cause and fix in `eb`. */
int load_opts_check(const struct load_opts *o, struct errbuf *eb) MUST_CHECK;
/* Runs the load (a single run or a sweep) to the end and fills `res` (load_result_fini frees
 * it, also after a failure). `stop` may be NULL; setting *stop ends the run early and keeps
 * what was measured. Returns 0 (request failures are data, in res->stats.err), or ERR_ARG
 * (bad options, unresolvable host, unreadable files), ERR_IO (log file), ERR_SYS. */
int load_run(const struct load_opts *o, struct load_result *res, volatile sig_atomic_t *stop,
             struct errbuf *eb) MUST_CHECK;
/* Releases the histograms held by `res`. */
void load_result_fini(struct load_result *res);

/* Writes the text summary (with the metric definitions) to `f`. */
void load_print_text(const struct load_result *res, FILE *f);
/* Writes the result as one JSON object value into `w` (the caller checks jsonw_error). */
void load_write_json(const struct load_result *res, struct jsonw *w);
/* Writes a self-contained HTML page (inline SVG, no scripts or network) into `out`. */
int load_write_html(const struct load_result *res, struct buf *out) MUST_CHECK;

/* The short name of an error class ("connect", "timeout", ...). */
const char *load_err_name(enum load_err e);

#endif
