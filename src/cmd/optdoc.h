// SPDX-License-Identifier: MIT
// Reads a command's --help text for what `crux man` says of each option.
#ifndef CRUX_OPTDOC_H
#define CRUX_OPTDOC_H

#include <stdbool.h>
#include <stddef.h>

#define OPTDOC_META_MAX 64
#define OPTDOC_TEXT_MAX 1024

/* One option's line of a usage text. */
struct optdoc {
    char meta[OPTDOC_META_MAX]; /* the value's name ("FILE"), "" when the line names none */
    char text[OPTDOC_TEXT_MAX]; /* the description, its continuation lines joined; "" if none */
};

/* Looks in `usage` for a regular line documenting --`name`: indented, optionally "-x, "
 * first, then "--name", at most one word naming the value, two or more spaces and the
 * description, continued on the lines indented to the description's column. Lines that
 * document several options at once are irregular and skipped. Fills `out` (truncated to
 * its buffers) and returns true when such a line is found; false otherwise. */
bool optdoc_find(const char *usage, const char *name, struct optdoc *out);

/* For options without a regular line: copies the value's name from the first "--name WORD"
 * anywhere in `usage` whose WORD starts upper case ("--rate R", "--body FILE") into `out`;
 * returns false when there is none (or it does not fit). */
bool optdoc_meta(const char *usage, const char *name, char *out, size_t cap);

/* Copies the k-th synopsis line of `usage` (k from 0: the text after "usage: ", then each
 * following line that starts with spaces and "crux ") into `out`, trimmed; returns false
 * when there are fewer lines. */
bool optdoc_synopsis(const char *usage, size_t k, char *out, size_t cap);

/* Returns the part of `usage` from its "exit status:" line to the end (borrowed), or NULL. */
const char *optdoc_exit_status(const char *usage);

#endif
