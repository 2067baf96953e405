// SPDX-License-Identifier: MIT
// --otlp-endpoint for crux stages and crux record (otlpexport.h).
#include "cmd/otlpexport.h"

#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/commands.h"
#include "export/otlpsend.h"
#include "target/proc.h"

int otlpexport_check(struct otlpexport *x, const char *cmd)
{
    if (!x->endpoint)
        return 0;
    struct errbuf eb = {""};
    if (otlpsend_url(x->endpoint, x->url, sizeof(x->url), &eb)) {
        fprintf(stderr,
                "crux: %s: --otlp-endpoint: %s: give the collector's OTLP/HTTP URL, e.g. "
                "http://localhost:4318\n",
                cmd, eb.msg);
        return EXIT_USAGE;
    }
    if (x->service && !x->service[0]) {
        fprintf(stderr, "crux: %s: --otlp-service needs a name\n", cmd);
        return EXIT_USAGE;
    }
    return 0;
}

static const char *base_name(const char *s)
{
    const char *slash = strrchr(s, '/');
    return slash ? slash + 1 : s;
}

/* The service name of the command words `w[0..n)`. */
static const char *service_of(char *const *w, size_t n)
{
    if (!n || !w[0][0])
        return "crux";
    const char *prog = base_name(w[0]);
    if (strncmp(prog, "python", 6) != 0)
        return prog;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(w[i], "-m") == 0)
            return i + 1 < n ? w[i + 1] : prog;
        if (strcmp(w[i], "-c") == 0)
            return prog;
        if (strcmp(w[i], "-X") == 0 || strcmp(w[i], "-W") == 0)
            i++; /* an option with a value */
        else if (w[i][0] != '-')
            return base_name(w[i]);
    }
    return prog;
}

void otlpexport_service_name(char *const *command, pid_t pid, char *out, size_t n)
{
    const char *name = "crux";
    char line[4096];
    char *words[64];
    if (command) {
        size_t k = 0;
        while (command[k])
            k++;
        name = service_of(command, k);
    } else if (pid > 0 && proc_cmdline(pid, line, sizeof(line)) == 0) {
        /* Arguments joined by spaces: one with a space inside splits, which only matters
         * for a script path with spaces. */
        size_t k = 0;
        for (char *save = NULL, *t = strtok_r(line, " ", &save); t && k < 64;
             t = strtok_r(NULL, " ", &save))
            words[k++] = t;
        name = service_of(words, k);
    }
    snprintf(out, n, "%s", name);
}

int otlpexport_send(const struct otlpexport *x, const struct profile *p, const char *service,
                    bool quiet)
{
    struct otlpsend_opts o = {.url = x->url, .out = {service, CRUX_VERSION}};
    struct otlpsend_result r;
    struct errbuf eb = {""};
    int rc = otlpsend_profile(p, &o, &r, &eb);
    if (rc) {
        fprintf(stderr, "crux: OTLP export to %s failed: %s (%zu of %zu spans sent)\n", x->url,
                eb.msg, r.sent, r.spans);
        return ERR_IO;
    }
    if (!r.spans) {
        if (!quiet)
            fprintf(stderr,
                    "crux: no request spans to send to %s (does the program use the crux "
                    "agent? docs/stages.md)\n",
                    x->url);
        return 0;
    }
    if (r.rejected > 0 || r.message[0])
        fprintf(stderr, "crux: OTLP export to %s: the collector rejected %lld of %zu spans%s%s\n",
                x->url, (long long)r.rejected, r.spans, r.message[0] ? ": " : "", r.message);
    else if (!quiet)
        fprintf(stderr, "crux: sent %zu spans to %s as service %s\n", r.spans, x->url, service);
    return 0;
}
