/*
 * Key derivation for kernel TLS, on byte strings only. OpenSSL derives the
 * same keys internally but does not hand them out; the kernel needs them
 * for the directions OpenSSL 3.0 does not offload itself (TLS 1.3 receive,
 * ChaCha20-Poly1305), so they are derived again here from the secrets the
 * key-log hook captures. tests/unit/test_ktls.c checks each function
 * against RFC 8448 and a published TLS 1.2 PRF vector.
 */
#include <errno.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>

#include "ktls_kdf.h"
#include "log.h"

/* One EVP_KDF derivation; OpenSSL failures become -EPROTO, logged. */
static int kg_kdf_derive(const char *name, const OSSL_PARAM *params, uint8_t *out, size_t outlen)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, name, NULL);
	EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	int rc = 0;

	if (!kctx || EVP_KDF_derive(kctx, out, outlen, params) != 1) {
		kg_log_ssl(KG_LOG_WARN, name);
		OPENSSL_cleanse(out, outlen);
		rc = -EPROTO;
	}
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return rc;
}

int kg_ktls_expand_label(const EVP_MD *md, const uint8_t *secret, size_t slen, const char *label,
			 uint8_t *out, size_t outlen)
{
	/* struct HkdfLabel { uint16 length; opaque label<7..255>; opaque context<0..255>; } */
	uint8_t info[2 + 1 + 255 + 1];
	size_t n = 0, ll = strlen(label);
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
	OSSL_PARAM params[5];

	if (!md || 6 + ll > 255 || outlen > 0xffff)
		return -EINVAL;
	info[n++] = (uint8_t)(outlen >> 8);
	info[n++] = (uint8_t)outlen;
	info[n++] = (uint8_t)(6 + ll);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, ll);
	n += ll;
	info[n++] = 0;	/* the traffic keys and "traffic upd" have an empty context */
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						     (char *)EVP_MD_get0_name(md), 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, slen);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n);
	params[3] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	params[4] = OSSL_PARAM_construct_end();
	return kg_kdf_derive("HKDF", params, out, outlen);
}

int kg_ktls_tls13_keys(const EVP_MD *md, const uint8_t *secret, size_t slen, uint8_t *key,
		       size_t klen, uint8_t iv[KG_KTLS_IV_LEN])
{
	int rc = kg_ktls_expand_label(md, secret, slen, "key", key, klen);

	if (!rc)
		rc = kg_ktls_expand_label(md, secret, slen, "iv", iv, KG_KTLS_IV_LEN);
	if (rc) {
		OPENSSL_cleanse(key, klen);
		OPENSSL_cleanse(iv, KG_KTLS_IV_LEN);
	}
	return rc;
}

int kg_ktls_tls13_next_secret(const EVP_MD *md, const uint8_t *secret, size_t slen, uint8_t *next)
{
	uint8_t tmp[KG_KTLS_SECRET_MAX];
	int rc;

	/* Hash.length: the secret is as long as the suite's hash output */
	if (!md || slen > sizeof(tmp) || (int)slen != EVP_MD_get_size(md))
		return -EINVAL;
	rc = kg_ktls_expand_label(md, secret, slen, "traffic upd", tmp, slen);
	if (!rc)
		memcpy(next, tmp, slen);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return rc;
}

int kg_ktls_tls12_prf(const EVP_MD *md, const uint8_t *secret, size_t slen, const char *label,
		      const uint8_t *seed1, size_t s1len, const uint8_t *seed2, size_t s2len,
		      uint8_t *out, size_t outlen)
{
	uint8_t seed[64 + 2 * 32];
	size_t ll = strlen(label);
	OSSL_PARAM params[4];
	int rc;

	if (!md || ll + s1len + s2len > sizeof(seed))
		return -EINVAL;
	memcpy(seed, label, ll);
	if (s1len)	/* a NULL seed of length 0 is allowed; memcpy's is not */
		memcpy(seed + ll, seed1, s1len);
	if (s2len)
		memcpy(seed + ll + s1len, seed2, s2len);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						     (char *)EVP_MD_get0_name(md), 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)secret, slen);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, seed,
						      ll + s1len + s2len);
	params[3] = OSSL_PARAM_construct_end();
	rc = kg_kdf_derive("TLS1-PRF", params, out, outlen);
	OPENSSL_cleanse(seed, sizeof(seed));
	return rc;
}

int kg_ktls_tls12_key_block(const EVP_MD *md, const uint8_t *master, size_t mlen,
			    const uint8_t server_random[32], const uint8_t client_random[32],
			    uint8_t *out, size_t outlen)
{
	/* RFC 5246 §6.3: the server's random comes first here (the master
	 * secret's seed has the client's first) */
	return kg_ktls_tls12_prf(md, master, mlen, "key expansion", server_random, 32,
				 client_random, 32, out, outlen);
}

/* ---- what the kernel is given ------------------------------------------- */

/* AES-GCM's crypto_info: 4 bytes of the IV are the salt; the explicit
 * nonce is the IV's other 8 bytes in TLS 1.3, the sequence number in 1.2. */
static void kg_gcm_fill(unsigned char *dkey, const uint8_t *key, size_t klen, unsigned char *salt,
			unsigned char *div, unsigned char *rec_seq, const uint8_t *iv,
			const uint8_t seqbe[8], bool tls13)
{
	memcpy(dkey, key, klen);
	memcpy(salt, iv, 4);
	memcpy(div, tls13 ? iv + 4 : seqbe, 8);
	memcpy(rec_seq, seqbe, 8);
}

socklen_t kg_ktls_crypto_info(union kg_crypto_info *ci, int version, enum kg_cipher c,
			      const uint8_t *key, const uint8_t *iv, uint64_t seq)
{
	uint8_t seqbe[8];
	int i;

	for (i = 7; i >= 0; i--, seq >>= 8)
		seqbe[i] = (uint8_t)seq;
	memset(ci, 0, sizeof(*ci));
	ci->info.version = version == TLS1_3_VERSION ? TLS_1_3_VERSION : TLS_1_2_VERSION;
	switch (c) {
	case KG_C_AES128:
		ci->info.cipher_type = TLS_CIPHER_AES_GCM_128;
		kg_gcm_fill(ci->aes128.key, key, 16, ci->aes128.salt, ci->aes128.iv,
			    ci->aes128.rec_seq, iv, seqbe, version == TLS1_3_VERSION);
		return sizeof(ci->aes128);
	case KG_C_AES256:
		ci->info.cipher_type = TLS_CIPHER_AES_GCM_256;
		kg_gcm_fill(ci->aes256.key, key, 32, ci->aes256.salt, ci->aes256.iv,
			    ci->aes256.rec_seq, iv, seqbe, version == TLS1_3_VERSION);
		return sizeof(ci->aes256);
	case KG_C_CHACHA:
		ci->info.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
		memcpy(ci->chacha.key, key, 32);
		memcpy(ci->chacha.iv, iv, 12);
		memcpy(ci->chacha.rec_seq, seqbe, 8);
		return sizeof(ci->chacha);
	case KG_C_NONE:
		break;
	}
	return 0;
}
