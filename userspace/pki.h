/* Demo and test PKI generated with the OpenSSL library (no openssl CLI). */
#ifndef KG_PKI_H
#define KG_PKI_H

#include <stdbool.h>

/*
 * Write a demo PKI into @dir (created 0700 if missing):
 *   ca.pem / ca.key            root CA (ECDSA P-256)
 *   client-ca.pem / .key       intermediate that issues client certs (signed by root)
 *   client-ca-chain.pem        client-ca.pem + ca.pem
 *   server.pem / server.key    server cert for DNS:localhost, IP:127.0.0.1, IP:::1
 *                              (server.pem holds leaf + root)
 *   alice.pem / alice.key      client (ECDSA), chain file holds leaf + intermediate
 *   bob.pem / bob.key          client (RSA 2048), leaf + intermediate
 * With @test_set, also the certificates the test-suite needs:
 *   rsa-*: an RSA variant of the chain (rsa-ca, rsa-client-ca, rsa-client)
 *   expired, notyet, serverauth (EKU serverAuth only), rootsigned (client cert
 *   signed directly by the root), selfsigned, stranger (from an unrelated CA),
 *   deep (leaf under 4 intermediates), carol, dave and erin (more clients),
 *   client-ca.crl.pem (revokes erin), client-ca-stale.crl.pem (past its
 *   nextUpdate), client-ca-empty.crl.pem (revokes nothing).
 * Keys are written 0600. Returns 0 or -errno / -EPROTO; logs the cause.
 */
int kg_pki_init(const char *dir, bool test_set) __attribute__((warn_unused_result));

#endif
