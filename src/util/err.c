// SPDX-License-Identifier: MIT
// Error code text, fatality table and errno translation.
#include "util/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

const char *err_str(int rc)
{
    switch (rc) {
    case ERR_OK:
        return "success";
    case ERR_NOMEM:
        return "out of memory";
    case ERR_PROC_GONE:
        return "process no longer exists";
    case ERR_PERM:
        return "permission denied";
    case ERR_READ:
        return "memory not readable";
    case ERR_NOT_PYTHON:
        return "not a Python process";
    case ERR_VERSION:
        return "unsupported Python version";
    case ERR_CORRUPT:
        return "inconsistent data";
    case ERR_TOO_LARGE:
        return "size limit reached";
    case ERR_IO:
        return "input/output error";
    case ERR_ARG:
        return "invalid argument";
    case ERR_NOT_FOUND:
        return "not found";
    case ERR_SYS:
        return "system call failed";
    case ERR_AGAIN:
        return "changed while read";
    default:
        return "unknown error";
    }
}

bool err_is_fatal(int rc)
{
    switch (rc) {
    case ERR_PROC_GONE:
    case ERR_PERM:
    case ERR_NOT_PYTHON:
    case ERR_VERSION:
    case ERR_NOMEM:
        return true;
    default:
        return false;
    }
}

int err_from_errno(int e)
{
    switch (e) {
    case 0:
        return ERR_OK;
    case ESRCH:
        return ERR_PROC_GONE;
    case EPERM:
    case EACCES:
        return ERR_PERM;
    case EFAULT:
    case EIO:
        return ERR_READ;
    case ENOMEM:
        return ERR_NOMEM;
    case ENOENT:
        return ERR_NOT_FOUND;
    default:
        return ERR_SYS;
    }
}

int errbuf_set(struct errbuf *eb, int rc, const char *fmt, ...)
{
    if (eb) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(eb->msg, sizeof(eb->msg), fmt, ap);
        va_end(ap);
    }
    return rc;
}
