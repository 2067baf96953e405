// SPDX-License-Identifier: MIT
// crux serve's HTTP endpoint (libmicrohttpd, a thread per connection): /debug/pprof/profile,
// /metrics and an index page, answered from the shared state in serve/live.
#ifndef CRUX_HTTPD_H
#define CRUX_HTTPD_H

#include <stdint.h>

#include "serve/live.h"
#include "util/err.h"

struct httpd;

/* The longest profile /debug/pprof/profile?seconds=N accepts by default (Go answers up to its
 * server's write timeout; continuous profilers ask for 10 to 60 s). */
#define HTTPD_MAX_SECONDS_DEFAULT 600.0

/* Listens on `addr` ("HOST:PORT", ":PORT", "PORT" or "[V6]:PORT"; port 0 picks a free one)
 * and answers from `l`, which must outlive the server. NULL on failure, with the cause and
 * the fix in `eb`. */
struct httpd *httpd_start(struct live *l, const char *addr, double max_seconds, struct errbuf *eb);
/* The address it listens on, as http://HOST:PORT (static storage of the server). */
const char *httpd_url(const struct httpd *h);
/* Stops listening, waits for the connections in progress (call live_finish first so that
 * profile requests end) and frees the server. */
void httpd_stop(struct httpd *h);

#endif
