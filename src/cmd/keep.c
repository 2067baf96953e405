// SPDX-License-Identifier: MIT
// crux record and crux load keeping their runs (keep.h).
#include "cmd/keep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "util/xalloc.h"

void keep_begin(struct keep *k, const char *label, const char *dir)
{
    memset(k, 0, sizeof(*k));
    k->run.repeat = -1;
    k->on = label || dir;
    k->dir = dir ? dir : RUNS_DEFAULT_DIR;
    if (!k->on)
        return;
    k->run.label = label ? xstrdup(label) : NULL;
    /* before the run: what else was busy then is what may have disturbed it */
    k->run.machine = runs_machine_state();
}

const char *keep_file(struct keep *k, enum run_kind kind, const char *given)
{
    if (!k->on)
        return given;
    k->run.kind = kind;
    free(k->run.path);
    k->run.path = NULL;
    if (given) {
        k->run.path = xstrdup(given);
        k->staged = false;
        return given;
    }
    struct errbuf eb = {{0}};
    if (runs_incoming(k->dir, kind, &k->run.path, &eb)) {
        fprintf(stderr, "crux: cannot keep the run: %s: check --store\n", eb.msg);
        k->on = false;
        return NULL;
    }
    k->staged = true;
    return k->run.path;
}

void keep_drop(struct keep *k)
{
    if (k->staged && k->run.path)
        (void)unlink(k->run.path);
    k->on = false;
    k->staged = false;
}

int keep_finish(struct keep *k)
{
    if (!k->on || !k->run.path)
        return 0;
    k->tried = true;
    struct errbuf eb = {{0}};
    if (runs_add(k->dir, &k->run, k->staged, &eb)) {
        fprintf(stderr, "crux: cannot keep the run in %s: %s%s%s\n", k->dir, eb.msg,
                k->staged ? "; the file stays at " : "", k->staged ? k->run.path : "");
        return EXIT_FAIL;
    }
    bool other = strcmp(k->dir, RUNS_DEFAULT_DIR) != 0;
    fprintf(stderr, "crux: kept run %lld%s%s%s in %s (crux runs%s%s%s%s)\n", (long long)k->run.id,
            k->run.label ? " as '" : "", k->run.label ? k->run.label : "", k->run.label ? "'" : "",
            k->dir, other ? " --store " : "", other ? k->dir : "", k->run.label ? " --label " : "",
            k->run.label ? k->run.label : "");
    return 0;
}

void keep_fini(struct keep *k)
{
    if (k->on && k->staged && !k->tried && k->run.path)
        (void)unlink(k->run.path);
    run_fini(&k->run);
    memset(k, 0, sizeof(*k));
}
