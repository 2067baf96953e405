// SPDX-License-Identifier: MIT
// Server-Sent Events parser for streamed completions: events across read boundaries, tokens.
#ifndef CRUX_SSE_H
#define CRUX_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An event's data larger than this is a protocol error. */
#define SSE_EVENT_MAX (1u << 20)
#define SSE_USAGE_MAX ((int64_t)1 << 32) /* largest usage.completion_tokens believed */

/* Token counting (the choice crux documents in docs/load.md): each event whose data is
 * `[DONE]` ends the stream and is no token; an event whose data is a JSON object with a
 * "choices" key counts as one token event when that array is non-empty and as none when it is
 * empty (a usage-only event); any other event (plain text, other JSON) counts as one token
 * event. When an event carries "usage": {"completion_tokens": N}, N becomes the request's
 * output token count (used for TPOT) in place of the number of token events, and its
 * "prompt_tokens" the request's prompt length for prefill.h. This is how
 * vLLM's benchmark_serving reads OpenAI-compatible streams. */
struct sse {
    uint64_t events;       /* dispatched events (all kinds) */
    uint64_t token_events; /* events counted as tokens */
    int64_t usage_tokens;  /* completion_tokens from a usage object, -1 when none seen */
    int64_t usage_prompt;  /* prompt_tokens from a usage object, -1 when none seen */
    bool done;             /* `data: [DONE]` seen */
    bool error;            /* an event was too large; parsing stopped */
    bool cr;               /* the last byte was '\r' (a following '\n' is the same line end) */
    bool has_data;         /* the pending event has a data field */
    size_t line_start;     /* start of the current line within `data` */
    char *data;            /* pending event data and current line; owned, grows to the cap */
    size_t len, cap;
};

/* Initializes an empty parser (no memory yet). */
void sse_init(struct sse *s);
/* Prepares for a new stream; keeps the buffer. */
void sse_reset(struct sse *s);
/* Releases the buffer. */
void sse_fini(struct sse *s);
/* Parses `n` bytes of the body; returns the number of new token events they completed. */
uint64_t sse_feed(struct sse *s, const char *p, size_t n);

#endif
