// SPDX-License-Identifier: MIT
// The environment a run was made in (docs/loop.md, "The run store"): this machine's CPU,
// kernel, libc, cgroup limits and GPU, and the Python process's version, build and package
// versions, as one flat JSON object, and a short hash of the fields that make results
// comparable.
#ifndef CRUX_FINGERPRINT_H
#define CRUX_FINGERPRINT_H

#include <stdbool.h>

/* Hex digits of a fingerprint hash. */
#define FINGERPRINT_HASH_LEN 12
/* Site-packages folders searched per process, at most. */
#define FINGERPRINT_MAX_FOLDERS 16

/* Collects the fingerprint of this machine and of the Python process `pid` (0: none) into a
 * new JSON object (*json) and its hash (*hash); the caller frees both. `python_version`
 * ("3.12.1", read from the process's memory by the caller; NULL: none) replaces the version
 * read from the interpreter's file names ("3.12"). Unreadable fields are left out. */
void fingerprint_collect(int pid, const char *python_version, char **json, char **hash);

/* The hash of the fingerprint `json`: FINGERPRINT_HASH_LEN hex digits over the comparable
 * keys it holds (docs/loop.md), or with `machine_only` over those of the machine alone (to
 * compare a run with this machine, where there is no process to look at). Returns a new
 * string (the caller frees it), or NULL when `json` is not a JSON object. */
char *fingerprint_hash(const char *json, bool machine_only);

#endif
