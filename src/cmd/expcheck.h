// SPDX-License-Identifier: MIT
// crux exp: whether two outputs agree beyond byte equality: numbers within a relative
// tolerance with the text around them equal, or the share of whitespace tokens that match.
#ifndef CRUX_EXPCHECK_H
#define CRUX_EXPCHECK_H

#include <stdbool.h>
#include <stddef.h>

/* True when `a` and `b` are the same text up to whitespace runs, and every number (a digit, or
 * a sign or '.' before one, read by strtod) in one is matched by a number in the other that
 * differs by at most `rel` times the larger magnitude (NaN equals NaN, infinities their own
 * sign). */
bool exp_agree_tolerance(const char *a, size_t na, const char *b, size_t nb, double rel);
/* The share of whitespace-separated tokens equal at the same position, over the longer
 * output's token count (1 when both are empty). */
double exp_agree_tokens(const char *a, size_t na, const char *b, size_t nb);

#endif
