// SPDX-License-Identifier: MIT
// The run store: every kept recording (record --save / --label) and load result (load --json
// / --label) with when, what, which commit and which machine, in one SQLite index beside the
// files (docs/loop.md, "The run store"). Comparisons (diff, gate, exp) find their runs here.
#ifndef CRUX_RUNS_H
#define CRUX_RUNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Default store folder, relative to the current directory. */
#define RUNS_DEFAULT_DIR ".crux/runs"

enum run_kind {
    RUN_RECORDING = 0, /* a saved recording (SQLite, store.h) */
    RUN_LOAD = 1,      /* a crux load --json result */
};

/* One kept run. Strings are owned by the struct (run_fini). */
struct run {
    int64_t id; /* store row id; 0 for a file given directly */
    enum run_kind kind;
    char *path;        /* the recording or load JSON, absolute or relative to the cwd */
    char *label;       /* NULL when none */
    char *command;     /* the recorded command line or the load URL */
    double time;       /* when it ended, Unix seconds */
    char *git_commit;  /* of the working directory at the time; NULL when not in git */
    bool git_dirty;    /* uncommitted changes then */
    char *fingerprint; /* environment fingerprint, a JSON object (RUN_FP_* keys) */
    char *fp_hash;     /* a short hash of the fields that make results comparable */
    char *machine;     /* machine state at the run: JSON (load average, busy processes) */
    char *experiment;  /* crux exp: experiment id; NULL otherwise */
    char *variant;     /* crux exp: variant name */
    int repeat;        /* crux exp: repeat index; -1 otherwise */
};

/* A set of runs (one side of a comparison). */
struct run_list {
    struct run *v;
    size_t n, cap;
};

void run_fini(struct run *r);
void run_list_fini(struct run_list *l);

/* Collects the environment fingerprint of this machine and of the Python process `pid`
 * (0: none; site-packages found through its maps and executable) into a JSON object, and its
 * comparability hash. Never fails: unreadable fields are left out. Caller frees both. */
void runs_fingerprint(int pid, char **json, char **hash);
/* Machine state now (load average, procs running, busiest other processes): JSON, caller
 * frees. */
char *runs_machine_state(void);

/* Adds a run to the store at `dir` (created when missing): the file at r->path is copied
 * (or moved when `move`) into the store, r->path is updated to the stored copy and r->id set.
 * Fields left NULL are filled where they can be (time, git commit of the cwd). r->kind is
 * taken from the file's content; command and fingerprint, when NULL, from the file (a
 * recording's meta, a load result's url), else the fingerprint of this machine. Safe against
 * other processes adding at the same time. On failure nothing is kept and the file is where
 * it was: ERR_ARG (a bad label, not a run file), ERR_IO, ERR_CORRUPT (a damaged index), with
 * the cause and the fix in `eb`. */
int runs_add(const char *dir, struct run *r, bool move, struct errbuf *eb) MUST_CHECK;

/* Lists the runs of the store, oldest first, keeping those whose label equals `label` and
 * whose command contains `command` (NULL: any). A store that does not exist is an empty
 * list; a row whose file is missing or damaged is skipped with a one-line warning on stderr.
 * A damaged index is ERR_CORRUPT, one of a newer crux ERR_ARG (cause and fix in `eb`). */
int runs_list(const char *dir, const char *label, const char *command, struct run_list *out,
              struct errbuf *eb) MUST_CHECK;

/* Resolves one side of a comparison into runs, appended to `out`:
 *   FILE.db | FILE.json    a file (not in the store: id 0, fingerprint from the file's facts)
 *   a glob ('base-*.db')   every match, in name order
 *   A,B,C                  each part in turn
 *   N                      the store's run N
 *   LABEL                  every run with that label
 *   LABEL@N                the N-th run with that label (1 the oldest; -1 the newest)
 * ERR_NOT_FOUND with the cause and the fix in `eb` when nothing matches. */
int runs_resolve(const char *dir, const char *spec, struct run_list *out,
                 struct errbuf *eb) MUST_CHECK;

/* Creates the store folder `dir` when missing and an empty file in it where a run of `kind`
 * can be written before runs_add moves it in (*path: a new string, the caller frees it).
 * ERR_IO with the cause in `eb`. */
int runs_incoming(const char *dir, enum run_kind kind, char **path, struct errbuf *eb) MUST_CHECK;

/* Checks that `label` can name runs: not empty, not a number (that names a run id), without
 * ',', '@', '/' or glob characters (they have a meaning in runs_resolve) or control
 * characters. ERR_ARG with the cause and the fix in `eb`. */
int runs_label_check(const char *label, struct errbuf *eb) MUST_CHECK;

#endif
