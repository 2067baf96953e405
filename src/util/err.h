// SPDX-License-Identifier: MIT
// Error codes shared by every layer, their text, and a caller-owned context buffer.
#ifndef CRUX_ERR_H
#define CRUX_ERR_H

#include <stdbool.h>

#define MUST_CHECK __attribute__((warn_unused_result))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))

/* Fallible functions return 0 or one of these (always negative). */
enum {
    ERR_OK = 0,
    ERR_NOMEM = -1,      /* allocation refused (only where xmalloc is not used) */
    ERR_PROC_GONE = -2,  /* the target process or thread no longer exists (ESRCH) */
    ERR_PERM = -3,       /* not allowed to read or trace the target (EPERM, EACCES) */
    ERR_READ = -4,       /* address not mapped in the target, or a short read (EFAULT) */
    ERR_NOT_PYTHON = -5, /* no CPython runtime found in the target */
    ERR_VERSION = -6,    /* a CPython version crux cannot read */
    ERR_CORRUPT = -7,    /* data read from the target failed validation (torn or freed) */
    ERR_TOO_LARGE = -8,  /* a bounded buffer or walk reached its cap */
    ERR_IO = -9,         /* a local file or pipe failed */
    ERR_ARG = -10,       /* bad argument or input format */
    ERR_NOT_FOUND = -11, /* a symbol, section or entry was not found */
    ERR_SYS = -12,       /* another system call failure */
    ERR_AGAIN = -13,     /* the target changed while it was read, or the read missed: again */
};

#define ERRBUF_LEN 256

/* Context for the caller: the innermost failure's details, filled below cmd/. */
struct errbuf {
    char msg[ERRBUF_LEN];
};

/* Returns a static, human-readable text for an ERR_* code. */
const char *err_str(int rc);

/* True for errors that end a session (process gone, no permission, unsupported);
 * false for per-sample failures that only drop one sample. */
bool err_is_fatal(int rc);

/* Maps an errno value to an ERR_* code. */
int err_from_errno(int e);

/* Formats a message into `eb` (may be NULL, then nothing happens); returns `rc` so that
 * callers can write `return errbuf_set(eb, ERR_READ, "...", ...);`. */
int errbuf_set(struct errbuf *eb, int rc, const char *fmt, ...) PRINTF_LIKE(3, 4);

#endif
