/* Client certificate policy and SHA-256 fingerprints. Pure functions on
 * OpenSSL objects, no sockets: the unit tests drive them directly. */
#ifndef KG_VERIFY_H
#define KG_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>

#define KG_FP_LEN 32
#define KG_FP_HEX_LEN (KG_FP_LEN * 2 + 1)
#define KG_FP_COLON_LEN (KG_FP_LEN * 3)

/* SHA-256 of the DER encoding, the bytes `openssl x509 -fingerprint -sha256` shows. */
int kg_fp_x509(X509 *x, uint8_t fp[KG_FP_LEN]) __attribute__((warn_unused_result));
/* First certificate of a PEM or DER file. -ENOENT/-EACCES for the file, -EPROTO if no cert. */
int kg_fp_file(const char *path, uint8_t fp[KG_FP_LEN]) __attribute__((warn_unused_result));
/* 0..15 for a hex digit of either case, -1 for anything else. */
int kg_hex_nibble(int c);
/*
 * The one hex decoder (fingerprints from operators, key-log secrets from
 * OpenSSL): exactly @nchars digits of @s into @out, @nchars / 2 bytes.
 * Returns the byte count, or -EINVAL if @nchars is odd, a character is not
 * a hex digit, or the bytes do not fit in @outsz. @out may be partly
 * written on failure; callers holding secrets wipe it.
 */
int kg_hex_decode(const char *s, size_t nchars, uint8_t *out, size_t outsz)
	__attribute__((warn_unused_result));

/* Lower-case hex; with @colons "ab:cd:…" (out needs KG_FP_COLON_LEN). */
void kg_fp_format(const uint8_t fp[KG_FP_LEN], bool colons, char *out, size_t outsz);
/* 64 hex digits, colons optional (all or none), any case, surrounding blanks
 * ignored, optional "sha256:" / "SHA256 Fingerprint=" prefix. 0 or -EINVAL. */
int kg_fp_parse(const char *s, uint8_t fp[KG_FP_LEN]) __attribute__((warn_unused_result));

/*
 * The issuer policy: the leaf (chain[0]) must be issued by one of @issuers
 * (the listener's client_ca), i.e. chain[1] equals one of them, or has the
 * same subject and public key (a re-issued CA certificate). Returns
 * X509_V_OK or the X509_V_ERR_* code to fail with.
 */
int kg_verify_issuer(STACK_OF(X509) *issuers, STACK_OF(X509) *chain);

/* The verify error of a client refused because its revocation could not be
 * checked or enforced (revocation = required): OpenSSL answers an
 * application verification failure with a handshake_failure alert. */
#define KG_V_ERR_REVOCATION_UNAVAILABLE X509_V_ERR_APPLICATION_VERIFICATION

/* "unknown_ca", "certificate_expired", … : the reject reason for @x509_err
 * (named after the alert OpenSSL sends, where there is one). */
const char *kg_verify_reason(int x509_err);

/* One-line description for logs: subject, issuer, serial, fingerprint. */
void kg_cert_describe(X509 *x, char *out, size_t outsz);
/* The subject CN (or the whole subject if no CN) into @out. */
void kg_cert_cn(X509 *x, char *out, size_t outsz);

/* Read all certificates from a PEM file. Caller owns the stack
 * (sk_X509_pop_free(…, X509_free)). -errno for the file, -EPROTO if none. */
int kg_certs_load(const char *path, STACK_OF(X509) **out) __attribute__((warn_unused_result));

#endif
