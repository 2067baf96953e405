// SPDX-License-Identifier: MIT
// The git commit of the current directory and whether it has uncommitted changes, asked of
// git itself (a child process with a timeout, no shell), for the runs a store keeps.
#ifndef CRUX_GITSTATE_H
#define CRUX_GITSTATE_H

#include <stdbool.h>
#include <stddef.h>

/* Seconds one git command may take before it is killed. */
#define GITSTATE_TIMEOUT_S 3.0

/* Reads `git rev-parse HEAD` and `git status --porcelain` in the current directory. Returns a
 * new string with the full commit hash (the caller frees it) and sets *dirty when tracked or
 * untracked files differ from it; untracked files under `ignore_dir` (the run store, relative
 * to the cwd or absolute; may be NULL) and under .crux/ do not count, and a status that cannot
 * be read counts as dirty. Returns NULL when the
 * cwd is not in a git work tree, git is missing or does not answer in time. */
char *gitstate_head(const char *ignore_dir, bool *dirty);

/* Runs `argv` (argv[0] looked up in PATH) with stdin and stderr on /dev/null and returns a
 * new string with its stdout (at most `cap` bytes), or NULL when it cannot be started, exits
 * with a status other than 0, or runs past `timeout_s` (then it is killed). The caller frees
 * the string. */
char *gitstate_run(char *const argv[], double timeout_s, size_t cap);

#endif
