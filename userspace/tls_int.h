/*
 * Between tls.c (the contexts) and tls_verify.c (the certificate checks
 * those contexts call): nothing else includes this.
 */
#ifndef KG_TLS_INT_H
#define KG_TLS_INT_H

#include <openssl/ssl.h>

/* SSL_CTX_set_verify callback of a listener: keeps the leaf and the first
 * error for the log, applies crl_stale, the direct-issuer rule and the
 * revocation check at depth 0. */
int kg_tls_verify_cb(int ok, X509_STORE_CTX *xs);
/* SSL_CTX_set_cert_verify_callback of a listener: caps the chain's length
 * and completes a leaf-only chain from client_ca before verifying. */
int kg_tls_cert_verify_cb(X509_STORE_CTX *xs, void *arg);
/* SSL_CTX_set_verify callback toward the origin: keeps its leaf and the
 * first error. */
int kg_tls_origin_verify_cb(int ok, X509_STORE_CTX *xs);

#endif
