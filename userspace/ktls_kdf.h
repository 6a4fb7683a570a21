/* Key derivation for kernel TLS: the TLS 1.3 traffic keys (RFC 8446 §7.1,
 * §7.3), the next-generation secret of a KeyUpdate (§7.2) and the TLS 1.2
 * key block (RFC 5246 §6.3). Pure functions on byte strings, no sockets and
 * no SSL objects, so the unit tests check them against published vectors. */
#ifndef KG_KTLS_KDF_H
#define KG_KTLS_KDF_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <linux/tls.h>

#define KG_KTLS_SECRET_MAX 48	/* SHA-384, the largest TLS 1.3 suite hash */
#define KG_KTLS_KEY_MAX 32
#define KG_KTLS_IV_LEN 12

/*
 * HKDF-Expand-Label(@secret, "tls13 " + @label, "", @outlen) with the
 * suite's hash @md. 0, or -EINVAL for a label or length TLS cannot encode,
 * or -EPROTO when OpenSSL fails (its error queue is logged).
 */
int kg_ktls_expand_label(const EVP_MD *md, const uint8_t *secret, size_t slen, const char *label,
			 uint8_t *out, size_t outlen) __attribute__((warn_unused_result));

/* The record key (@klen bytes) and the 12-byte IV of one direction from its
 * traffic secret. 0 or as kg_ktls_expand_label; @key and @iv are wiped on
 * failure. */
int kg_ktls_tls13_keys(const EVP_MD *md, const uint8_t *secret, size_t slen, uint8_t *key,
		       size_t klen, uint8_t iv[KG_KTLS_IV_LEN]) __attribute__((warn_unused_result));

/* After a KeyUpdate: application_traffic_secret_N+1 from _N, both @slen
 * (the hash length) bytes; @next may be @secret itself. 0 or as above. */
int kg_ktls_tls13_next_secret(const EVP_MD *md, const uint8_t *secret, size_t slen,
			      uint8_t *next) __attribute__((warn_unused_result));

/*
 * TLS 1.2 PRF(@secret, @label, @seed1 + @seed2) → @outlen bytes (P_hash with
 * the suite's PRF hash @md). 0, or -EPROTO when OpenSSL fails (logged).
 */
int kg_ktls_tls12_prf(const EVP_MD *md, const uint8_t *secret, size_t slen, const char *label,
		      const uint8_t *seed1, size_t s1len, const uint8_t *seed2, size_t s2len,
		      uint8_t *out, size_t outlen) __attribute__((warn_unused_result));

/* The TLS 1.2 key block: PRF(master, "key expansion", server_random +
 * client_random). The caller splits it as client key, server key, client
 * IV, server IV (no MAC keys: AEAD suites only). */
int kg_ktls_tls12_key_block(const EVP_MD *md, const uint8_t *master, size_t mlen,
			    const uint8_t server_random[32], const uint8_t client_random[32],
			    uint8_t *out, size_t outlen) __attribute__((warn_unused_result));

/* The kernel's TLS_TX / TLS_RX argument for one direction. */
union kg_crypto_info {
	struct tls_crypto_info info;
	struct tls12_crypto_info_aes_gcm_128 aes128;
	struct tls12_crypto_info_aes_gcm_256 aes256;
	struct tls12_crypto_info_chacha20_poly1305 chacha;
};

enum kg_cipher { KG_C_AES128, KG_C_AES256, KG_C_CHACHA, KG_C_NONE };

/*
 * Fill @ci for @version (TLS1_2_VERSION or TLS1_3_VERSION) and cipher @c
 * from the record key, the IV and the next record's sequence number @seq.
 * @iv is the full 12-byte nonce base for TLS 1.3 and ChaCha20; for TLS 1.2
 * AES-GCM its first 4 bytes are the salt and the explicit nonce starts at
 * the sequence number. The size to pass to setsockopt, 0 for KG_C_NONE.
 */
socklen_t kg_ktls_crypto_info(union kg_crypto_info *ci, int version, enum kg_cipher c,
			      const uint8_t *key, const uint8_t *iv, uint64_t seq);

#endif
