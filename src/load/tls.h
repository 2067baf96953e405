// SPDX-License-Identifier: MIT
// TLS for https:// targets (OpenSSL), on the load generator's non-blocking sockets.
#ifndef CRUX_TLS_H
#define CRUX_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/err.h"

struct tls_ctx;
struct tls_conn;

/* Results of the non-blocking calls besides a byte count. */
enum {
    TLS_WANT_READ = -1,  /* call again when the socket is readable */
    TLS_WANT_WRITE = -2, /* call again when the socket is writable */
    TLS_CLOSED = -3,     /* the peer closed the TLS session (or the connection) */
    TLS_FAIL = -4,       /* handshake or record failure; the connection is unusable */
};

/* Creates a client context: certificates verified against the system's CAs and the host
 * name, unless `insecure`. Returns 0 and *out (tls_ctx_free releases it), or ERR_SYS. */
int tls_ctx_new(bool insecure, struct tls_ctx **out, struct errbuf *eb) MUST_CHECK;
void tls_ctx_free(struct tls_ctx *ctx);

/* Starts a session on the connected (or connecting) socket `fd` for `host` (SNI and the name
 * checked). Returns NULL on failure. tls_conn_free releases it (not the socket). */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, int fd, const char *host);
void tls_conn_free(struct tls_conn *c);

/* Advances the handshake: 0 when complete, else TLS_WANT_READ/WRITE or TLS_FAIL. */
int tls_handshake(struct tls_conn *c);
/* Reads up to `n` decrypted bytes: a count > 0, or TLS_WANT_READ/WRITE, TLS_CLOSED, TLS_FAIL. */
ssize_t tls_read(struct tls_conn *c, void *buf, size_t n);
/* Writes up to `n` bytes: a count > 0, or TLS_WANT_READ/WRITE, TLS_FAIL. */
ssize_t tls_write(struct tls_conn *c, const void *buf, size_t n);

#endif
