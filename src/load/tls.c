// SPDX-License-Identifier: MIT
// TLS client sessions with OpenSSL on non-blocking sockets: the loop calls again on the
// readiness the last call asked for.
#include "load/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>

struct tls_ctx {
    SSL_CTX *ssl;
    bool insecure;
};

struct tls_conn {
    SSL *ssl;
};

int tls_ctx_new(bool insecure, struct tls_ctx **out, struct errbuf *eb)
{
    SSL_CTX *s = SSL_CTX_new(TLS_client_method());
    if (!s)
        return errbuf_set(eb, ERR_SYS, "TLS: cannot create an OpenSSL context");
    SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION);
    /* a failed write must not raise SIGPIPE: the loop writes with MSG_NOSIGNAL itself, and
     * OpenSSL's socket BIO does not, so the partial-write mode keeps records retryable */
    SSL_CTX_set_mode(s, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (!insecure) {
        SSL_CTX_set_verify(s, SSL_VERIFY_PEER, NULL);
        if (SSL_CTX_set_default_verify_paths(s) != 1) {
            SSL_CTX_free(s);
            return errbuf_set(eb, ERR_SYS,
                              "TLS: cannot load the system's CA certificates: "
                              "install ca-certificates or use --insecure");
        }
    }
    struct tls_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        SSL_CTX_free(s);
        return ERR_NOMEM;
    }
    c->ssl = s;
    c->insecure = insecure;
    *out = c;
    return 0;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl);
    free(ctx);
}

struct tls_conn *tls_conn_new(struct tls_ctx *ctx, int fd, const char *host)
{
    SSL *s = SSL_new(ctx->ssl);
    if (!s)
        return NULL;
    if (SSL_set_fd(s, fd) != 1 || SSL_set_tlsext_host_name(s, host) != 1 ||
        (!ctx->insecure && SSL_set1_host(s, host) != 1)) {
        SSL_free(s);
        return NULL;
    }
    SSL_set_connect_state(s);
    struct tls_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        SSL_free(s);
        return NULL;
    }
    c->ssl = s;
    return c;
}

void tls_conn_free(struct tls_conn *c)
{
    if (!c)
        return;
    SSL_free(c->ssl);
    free(c);
}

static int map_err(struct tls_conn *c, int ret)
{
    int e = SSL_get_error(c->ssl, ret);
    ERR_clear_error();
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return TLS_CLOSED;
    case SSL_ERROR_SYSCALL:
        return ret == 0 ? TLS_CLOSED : TLS_FAIL; /* EOF without close_notify: a close */
    default:
        return TLS_FAIL;
    }
}

int tls_handshake(struct tls_conn *c)
{
    int r = SSL_do_handshake(c->ssl);
    return r == 1 ? 0 : map_err(c, r);
}

ssize_t tls_read(struct tls_conn *c, void *buf, size_t n)
{
    size_t got = 0;
    int r = SSL_read_ex(c->ssl, buf, n, &got);
    return r == 1 ? (ssize_t)got : map_err(c, 0);
}

ssize_t tls_write(struct tls_conn *c, const void *buf, size_t n)
{
    size_t put = 0;
    int r = SSL_write_ex(c->ssl, buf, n, &put);
    return r == 1 ? (ssize_t)put : map_err(c, 0);
}
