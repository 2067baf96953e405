// SPDX-License-Identifier: MIT
// --otlp-endpoint and --otlp-service of crux stages and crux record: checking the URL, naming
// the service, and sending the request spans once the command's own output is written.
#ifndef CRUX_OTLPEXPORT_H
#define CRUX_OTLPEXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "profile/profile.h"

/* The options, filled by the command's parser. */
struct otlpexport {
    const char *endpoint; /* --otlp-endpoint URL; NULL: no export */
    const char *service;  /* --otlp-service NAME; NULL: from the command */
    char url[2048];       /* the URL posted to (OTLPSEND_URL_MAX), set by otlpexport_check */
};

/* Checks --otlp-endpoint (when given) and works out the URL to post to. Returns 0, or
 * EXIT_USAGE after a one-line error that names `cmd` ("stages", "record"). */
int otlpexport_check(struct otlpexport *x, const char *cmd);

/* The default service.name, into `out` (`n` bytes): the script or module a Python command
 * runs ("server.py", "uvicorn"), else the program's base name; `command` is the launched
 * command (NULL-terminated) or NULL, then process `pid`'s command line (0: neither, "crux"). */
void otlpexport_service_name(char *const *command, pid_t pid, char *out, size_t n);

/* Sends p's spans (meta.epoch_ns set: otlpout.h) to x->url as `service`, after the command's
 * output is written. Prints one line to stderr: what was sent (unless `quiet`), or why the
 * export failed and how to fix it. Returns 0 or ERR_IO; the commands keep their exit status
 * either way (docs/stages.md). */
int otlpexport_send(const struct otlpexport *x, const struct profile *p, const char *service,
                    bool quiet);

#endif
