// SPDX-License-Identifier: MIT
// Sends the profile's request spans to an OpenTelemetry collector over OTLP/HTTP (protobuf,
// POST to .../v1/traces) with libcurl: batches, bounded timeouts, one retry.
#ifndef CRUX_OTLPSEND_H
#define CRUX_OTLPSEND_H

#include <stddef.h>
#include <stdint.h>

#include "export/otlpout.h"
#include "profile/profile.h"
#include "util/err.h"

#define OTLPSEND_CONNECT_MS 2000  /* to connect (TCP and TLS) */
#define OTLPSEND_TIMEOUT_MS 10000 /* for one whole request, connecting included */
#define OTLPSEND_RETRY_MS 1000    /* before the one retry, unless Retry-After asks for more */
#define OTLPSEND_RETRY_MAX_MS 3000
#define OTLPSEND_URL_MAX 2048

struct otlpsend_opts {
    const char *url;         /* the URL to post to, as otlpsend_url gives it */
    struct otlpout_opts out; /* service name and scope version */
    size_t batch;            /* spans per request; 0: OTLPOUT_BATCH */
};

struct otlpsend_result {
    size_t spans;      /* spans to send (otlpout_count) */
    size_t sent;       /* spans in requests the collector answered with 2xx */
    size_t requests;   /* HTTP requests made, retries included */
    int64_t rejected;  /* spans the collector said it rejected (partial_success) */
    char message[160]; /* the first partial_success error message, "" if none */
};

/* Writes the URL to post to into `out` (`n` bytes): `endpoint` as it is when its path ends
 * in /v1/traces (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT's convention), else with /v1/traces
 * appended (OTEL_EXPORTER_OTLP_ENDPOINT's). ERR_ARG, with the reason in `eb`, when it is not
 * an http:// or https:// URL with a host, or does not fit. */
int otlpsend_url(const char *endpoint, char *out, size_t n, struct errbuf *eb) MUST_CHECK;

/* Sends p's spans (otlpout.h tells how they map) in batches, reusing one connection. A
 * connection failure, a timeout or HTTP 429, 502, 503 or 504 is retried once; the first batch
 * that still fails ends the export: ERR_IO (ERR_ARG for a bad URL), with the cause and the
 * fix in `eb` (one line, without the URL). A 2xx reply with a partial_success counts in
 * r->rejected and r->message and is not an error. Not thread-safe: it initializes libcurl
 * (curl_global_init) and cleans it up again, so call it while no other thread uses libcurl. */
int otlpsend_profile(const struct profile *p, const struct otlpsend_opts *o,
                     struct otlpsend_result *r, struct errbuf *eb) MUST_CHECK;

#endif
