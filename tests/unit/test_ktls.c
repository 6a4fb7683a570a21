/* cmocka tests for the kTLS key derivation (ktls_kdf.c), against published
 * vectors, so they run on any host: no kernel TLS and no VM needed.
 *
 *   - RFC 8448 §3 ("Simple 1-RTT Handshake", TLS_AES_128_GCM_SHA256): the
 *     handshake and application traffic secrets and the key/IV expanded
 *     from each;
 *   - the TLS 1.2 PRF (P_SHA256) vector published on the IETF TLS list
 *     (secret 9bbe436b…, label "test label", 100 bytes);
 *   - "traffic upd" and the TLS 1.2 key block have no published vector:
 *     their expected values were computed with Python's hmac module, an
 *     HKDF/P_hash implementation independent of OpenSSL's.
 * And the life of the captured secrets: a rejected handshake must leave no
 * copy behind (OpenSSL's allocator is swapped to see every block freed). */
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "ktls.h"
#include "ktls_kdf.h"
#include "pki.h"
#include "tls.h"
#include "kg_test.h"

static size_t unhex(const char *s, uint8_t *out, size_t max)
{
	size_t n = 0;
	unsigned v;

	while (s[0] && s[1] && n < max && sscanf(s, "%2x", &v) == 1) {
		out[n++] = (uint8_t)v;
		s += 2;
	}
	assert_int_equal(s[0], '\0');
	return n;
}

static void assert_hex_equal(const uint8_t *got, size_t len, const char *want_hex, const char *what)
{
	uint8_t want[128];
	size_t n = unhex(want_hex, want, sizeof(want));

	if (n != len || memcmp(got, want, len)) {
		char gh[257];
		size_t i;

		for (i = 0; i < len && i < 128; i++)
			snprintf(gh + 2 * i, 3, "%02x", got[i]);
		fail_msg("%s: got %s, want %s", what, gh, want_hex);
	}
}

/* RFC 8448 §3: the secrets and the "key"/"iv" expansions the document
 * shows under "derive write/read traffic keys for … data". */
static const struct {
	const char *what, *secret, *key, *iv;
} rfc8448_keys[] = {
	{ "server handshake",
	  "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38",
	  "3fce516009c21727d0f2e4e86ee403bc", "5d313eb2671276ee13000b30" },
	{ "client handshake",
	  "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21",
	  "dbfaa693d1762c5b666af5d950258d01", "5bd3c71b836e0b76bb73265f" },
	{ "server application",
	  "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643",
	  "9f02283b6c9c07efc26bb9f2ac92e356", "cf782b88dd83549aadf1e984" },
	{ "client application",
	  "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5",
	  "17422dda596ed5d9acd890e3c63f5051", "5b78923dee08579033e523d9" },
};

static void test_ktls_tls13_traffic_keys_rfc8448(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(rfc8448_keys) / sizeof(rfc8448_keys[0]); i++) {
		uint8_t secret[32], key[16], iv[KG_KTLS_IV_LEN];

		assert_int_equal(unhex(rfc8448_keys[i].secret, secret, sizeof(secret)), 32);
		assert_int_equal(kg_ktls_tls13_keys(EVP_sha256(), secret, 32, key, sizeof(key), iv), 0);
		assert_hex_equal(key, sizeof(key), rfc8448_keys[i].key, rfc8448_keys[i].what);
		assert_hex_equal(iv, sizeof(iv), rfc8448_keys[i].iv, rfc8448_keys[i].what);
	}
}

/* The label encoding itself (RFC 8448 prints the HkdfLabel it hashes as
 * "key info" 00 10 09 "tls13 key" 00): expand_label with "key" must equal
 * kg_ktls_tls13_keys' key, and a different label must give other bytes. */
static void test_ktls_expand_label_is_the_key_label(void **state)
{
	uint8_t secret[32], a[16], b[16];

	unhex(rfc8448_keys[2].secret, secret, sizeof(secret));
	assert_int_equal(kg_ktls_expand_label(EVP_sha256(), secret, 32, "key", a, 16), 0);
	assert_hex_equal(a, 16, rfc8448_keys[2].key, "expand_label key");
	assert_int_equal(kg_ktls_expand_label(EVP_sha256(), secret, 32, "kez", b, 16), 0);
	assert_memory_not_equal(a, b, 16);
}

/* AES-256-GCM suites hash with SHA-384: 48-byte secrets, 32-byte keys. */
static void test_ktls_tls13_sha384_keys(void **state)
{
	uint8_t secret[48], key[32], iv[KG_KTLS_IV_LEN];
	size_t i;

	for (i = 0; i < sizeof(secret); i++)
		secret[i] = (uint8_t)i;
	assert_int_equal(kg_ktls_tls13_keys(EVP_sha384(), secret, 48, key, 32, iv), 0);
	assert_hex_equal(key, 32, "6877d022f1c61d24ebb7487c16752d9a4798e40431c75b39320e537c90e23225",
			 "sha384 key");
	assert_hex_equal(iv, 12, "42822531a0fe88648fc09e9f", "sha384 iv");
}

/* KeyUpdate: application_traffic_secret_1 of RFC 8448's connection, and
 * the keys of that next generation. */
static void test_ktls_key_update_next_secret(void **state)
{
	uint8_t secret[32], next[32], key[16], iv[KG_KTLS_IV_LEN], s384[48];
	size_t i;

	unhex(rfc8448_keys[3].secret, secret, sizeof(secret));
	assert_int_equal(kg_ktls_tls13_next_secret(EVP_sha256(), secret, 32, next), 0);
	assert_hex_equal(next, 32, "fcdfcc72725aaee48bf64e4fd8b749cdbdbab39d90da0b26e2245ca6ea167207",
			 "client traffic secret 1");
	assert_int_equal(kg_ktls_tls13_keys(EVP_sha256(), next, 32, key, 16, iv), 0);
	assert_hex_equal(key, 16, "3879d82f5f14056e623f2ce5bfc66fce", "client key 1");
	assert_hex_equal(iv, 12, "5dfb2c5938c3379b6cc5d1f2", "client iv 1");

	/* in place, as a rekey loop would call it */
	unhex(rfc8448_keys[2].secret, secret, sizeof(secret));
	assert_int_equal(kg_ktls_tls13_next_secret(EVP_sha256(), secret, 32, secret), 0);
	assert_hex_equal(secret, 32, "51921b8aa3001976eb401d0a4319a8516416a6c56001a357e5d162031e84f916",
			 "server traffic secret 1");

	/* the next secret is Hash.length long: 48 bytes under SHA-384 */
	for (i = 0; i < sizeof(s384); i++)
		s384[i] = (uint8_t)i;
	assert_int_equal(kg_ktls_tls13_next_secret(EVP_sha384(), s384, 48, s384), 0);
	assert_hex_equal(s384, 48, "401331b63e9d59f202e8f041042d9516f4cd7fa2e2ee14631d3b49fc340d7af3"
			 "7fc2c0c9f252d8036f81ec5b85cbe5db", "sha384 next");
	/* a secret that is not the hash's length is a caller bug, not a key */
	assert_int_equal(kg_ktls_tls13_next_secret(EVP_sha384(), s384, 32, next), -EINVAL);
}

static void test_ktls_tls12_prf_published_vector(void **state)
{
	uint8_t secret[16], seed[16], out[100];

	unhex("9bbe436ba940f017b17652849a71db35", secret, sizeof(secret));
	unhex("a0ba9f936cda311827a6f796ffd5198c", seed, sizeof(seed));
	assert_int_equal(kg_ktls_tls12_prf(EVP_sha256(), secret, 16, "test label", seed, 16,
					   NULL, 0, out, sizeof(out)), 0);
	assert_hex_equal(out, sizeof(out),
			 "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a"
			 "6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab"
			 "4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701"
			 "87347b66", "TLS 1.2 PRF");
}

/* master = 30..5f, server_random = 80..9f, client_random = a0..bf. */
static void key_block_inputs(uint8_t master[48], uint8_t sr[32], uint8_t cr[32])
{
	int i;

	for (i = 0; i < 48; i++)
		master[i] = (uint8_t)(0x30 + i);
	for (i = 0; i < 32; i++) {
		sr[i] = (uint8_t)(0x80 + i);
		cr[i] = (uint8_t)(0xa0 + i);
	}
}

static void test_ktls_tls12_key_block(void **state)
{
	uint8_t master[48], sr[32], cr[32], block[72];

	key_block_inputs(master, sr, cr);
	/* AES-128-GCM (SHA-256 PRF): 2 × 16-byte keys + 2 × 4-byte salts */
	assert_int_equal(kg_ktls_tls12_key_block(EVP_sha256(), master, 48, sr, cr, block, 40), 0);
	assert_hex_equal(block, 40, "7858f0af0ea70efbb418f605c6029ab3623d8553b07ac3f6ca47ec6ab7e319fb"
			 "4dfb3212120d80d4", "key block AES-128-GCM");
	/* AES-256-GCM (SHA-384 PRF) and ChaCha20 sizes: 2 × 32 + 2 × 4 */
	assert_int_equal(kg_ktls_tls12_key_block(EVP_sha384(), master, 48, sr, cr, block, 72), 0);
	assert_hex_equal(block, 72, "3070befab79f010ec0077aaef74a22702fdf415fcba1e1a8861104afac6b46e1"
			 "c62bf81e3110476baa1c3b77568422fe6ea7c328eacbb8775d2a682e21467871"
			 "7cd705b3f4c1f2de", "key block AES-256-GCM");
}

static void test_ktls_expand_label_rejects_what_tls_cannot_encode(void **state)
{
	uint8_t secret[32] = { 0 }, out[16];
	char label[251];

	memset(label, 'a', sizeof(label) - 1);
	label[sizeof(label) - 1] = '\0';	/* "tls13 " + 250 > 255 */
	assert_int_equal(kg_ktls_expand_label(EVP_sha256(), secret, 32, label, out, 16), -EINVAL);
	assert_int_equal(kg_ktls_expand_label(NULL, secret, 32, "key", out, 16), -EINVAL);
}

/* ---- the captured secrets are wiped -------------------------------------- */

static char pkidir[256];

/* OpenSSL's allocator, watched: while a needle is set, every block the
 * gateway's own code frees through it is searched for it (a secret freed
 * without OPENSSL_cleanse). OpenSSL's own frees are not searched: 3.0 frees
 * the SSL structure, which holds the traffic secrets too, without wiping
 * it, and that is not the gateway's to change. */
static bool ours(const char *file)
{
	return file && !strncmp(file, "userspace/", 10);
}

static const uint8_t (*watch_needles)[48];	/* two of them, watch_len bytes each */
static size_t watch_len;
static int watch_found;
static char watch_where[128];

static bool watch_hit(const void *p, size_t n, const char *file, int line, const char *what)
{
	int i;

	if (!p || !watch_needles || !ours(file))
		return false;
	for (i = 0; i < 2; i++)
		if (memmem(p, n, watch_needles[i], watch_len)) {
			watch_found++;
			snprintf(watch_where, sizeof(watch_where), "the %s secret, %s at %s:%d",
				 i ? "server" : "client", what, file, line);
			return true;
		}
	return false;
}

static void *watch_malloc(size_t n, const char *file, int line)
{
	return malloc(n);
}

static void *watch_realloc(void *p, size_t n, const char *file, int line)
{
	size_t old = p ? malloc_usable_size(p) : 0;

	/* a shrink may drop the tail unwiped: check before it goes */
	if (n < old)
		(void)watch_hit(p, old, file, line, "realloc");
	return realloc(p, n);
}

static void watch_free(void *p, const char *file, int line)
{
	if (p)
		(void)watch_hit(p, malloc_usable_size(p), file, line, "free");
	free(p);
}

/* What the client learns of the session: the two application secrets. */
static uint8_t cli_secret[2][48];
static size_t cli_secret_len;

static void client_keylog(const SSL *ssl, const char *line)
{
	const char *hex = strrchr(line, ' ');
	int which = !strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) ? 0 :
		    !strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24) ? 1 : -1;

	if (which < 0 || !hex)
		return;
	cli_secret_len = unhex(hex + 1, cli_secret[which], sizeof(cli_secret[which]));
}

static int reject_all(int ok, X509_STORE_CTX *xs)
{
	X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
	return 0;
}

static SSL_CTX *ctx_with(const SSL_METHOD *m, const char *cert, const char *key)
{
	char c[512], k[512];
	SSL_CTX *ctx = SSL_CTX_new(m);

	assert_non_null(ctx);
	snprintf(c, sizeof(c), "%s/%s", pkidir, cert);
	snprintf(k, sizeof(k), "%s/%s", pkidir, key);
	assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, c), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, k, SSL_FILETYPE_PEM), 1);
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	return ctx;
}

/*
 * A TLS 1.3 client certificate is checked after the server has derived its
 * application secrets, so a rejected client leaves them captured. Neither
 * the connection's own memory (struct kg_hs_info, freed with free(3) by its
 * owner) nor any block OpenSSL frees may still hold them afterwards.
 */
static void test_ktls_rejected_handshake_leaves_no_secret(void **state)
{
	SSL_CTX *sctx = ctx_with(TLS_server_method(), "server.pem", "server.key");
	SSL_CTX *cctx = ctx_with(TLS_client_method(), "alice.pem", "alice.key");
	struct kg_hs_info hs = { .alert_sent = -1, .alert_rcvd = -1 };
	SSL *srv, *cli;
	BIO *bs, *bc;
	int i, rs = 0, w;

	SSL_CTX_set_verify(sctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, reject_all);
	kg_ktls_ctx_setup(sctx);
	SSL_CTX_set_keylog_callback(cctx, client_keylog);
	srv = SSL_new(sctx);
	cli = SSL_new(cctx);
	assert_true(srv && cli);
	assert_int_equal(BIO_new_bio_pair(&bs, 0, &bc, 0), 1);
	SSL_set_bio(srv, bs, bs);
	SSL_set_bio(cli, bc, bc);
	SSL_set_app_data(srv, &hs);
	SSL_set_accept_state(srv);
	SSL_set_connect_state(cli);
	memset(cli_secret, 0, sizeof(cli_secret));
	for (i = 0; i < 50; i++) {
		(void)SSL_do_handshake(cli);
		rs = SSL_do_handshake(srv);
		if (rs <= 0 && SSL_get_error(srv, rs) == SSL_ERROR_SSL)
			break;
	}
	assert_true(rs <= 0);	/* the server refused the client */
	assert_true(cli_secret_len == 32 || cli_secret_len == 48);
	for (w = 0; w < 2; w++)
		if (memmem(&hs, sizeof(hs), cli_secret[w], cli_secret_len))
			fail_msg("the %s traffic secret is still in the connection's memory",
				 w ? "server" : "client");
	watch_found = 0;
	watch_needles = (const uint8_t (*)[48])cli_secret;
	watch_len = cli_secret_len;
	SSL_free(srv);
	SSL_free(cli);
	watch_needles = NULL;
	if (watch_found)
		fail_msg("a traffic secret was freed unwiped: %s", watch_where);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

static int pki_setup(void **state)
{
	return kg_test_pki(pkidir, sizeof(pkidir), "ktls", false);
}

static int pki_teardown(void **state)
{
	return kg_test_rmdir(pkidir);
}

static void check_gcm(const unsigned char *k, size_t klen, const unsigned char *salt,
		      const unsigned char *nonce, const unsigned char *rec_seq, const uint8_t *key,
		      const uint8_t *iv, const uint8_t *want_nonce, const uint8_t *seqbe)
{
	assert_memory_equal(k, key, klen);
	assert_memory_equal(salt, iv, 4);
	assert_memory_equal(nonce, want_nonce, 8);
	assert_memory_equal(rec_seq, seqbe, 8);
}

/*
 * What the kernel is given (linux/tls.h): for AES-GCM the salt is the
 * IV's first 4 bytes; the 8-byte iv field is the IV's other 8 bytes in
 * TLS 1.3 and the record sequence number in TLS 1.2; rec_seq is the
 * sequence number, big-endian. ChaCha20 takes the whole 12-byte IV.
 */
static void test_ktls_crypto_info_layout(void **state)
{
	const uint8_t seqbe[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	const uint64_t seq = 0x0102030405060708ULL;
	uint8_t key[32], iv[12];
	union kg_crypto_info ci;

	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(0xa0 + i);
	for (int i = 0; i < 12; i++)
		iv[i] = (uint8_t)(0x10 + i);

	/* TLS 1.3 AES-128-GCM: the explicit nonce is the IV's last 8 bytes */
	assert_int_equal(kg_ktls_crypto_info(&ci, TLS1_3_VERSION, KG_C_AES128, key, iv, seq),
			 sizeof(ci.aes128));
	assert_int_equal(ci.info.version, TLS_1_3_VERSION);
	assert_int_equal(ci.info.cipher_type, TLS_CIPHER_AES_GCM_128);
	check_gcm(ci.aes128.key, 16, ci.aes128.salt, ci.aes128.iv, ci.aes128.rec_seq, key, iv,
		  iv + 4, seqbe);
	/* TLS 1.2 AES-256-GCM: the explicit nonce is the sequence number */
	assert_int_equal(kg_ktls_crypto_info(&ci, TLS1_2_VERSION, KG_C_AES256, key, iv, seq),
			 sizeof(ci.aes256));
	assert_int_equal(ci.info.version, TLS_1_2_VERSION);
	assert_int_equal(ci.info.cipher_type, TLS_CIPHER_AES_GCM_256);
	check_gcm(ci.aes256.key, 32, ci.aes256.salt, ci.aes256.iv, ci.aes256.rec_seq, key, iv,
		  seqbe, seqbe);

	assert_int_equal(kg_ktls_crypto_info(&ci, TLS1_3_VERSION, KG_C_CHACHA, key, iv, 0),
			 sizeof(ci.chacha));
	assert_int_equal(ci.info.cipher_type, TLS_CIPHER_CHACHA20_POLY1305);
	assert_memory_equal(ci.chacha.key, key, 32);
	assert_memory_equal(ci.chacha.iv, iv, 12);
	for (int i = 0; i < 8; i++)
		assert_int_equal(ci.chacha.rec_seq[i], 0);

	assert_int_equal(kg_ktls_crypto_info(&ci, TLS1_3_VERSION, KG_C_NONE, key, iv, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ktls_tls13_traffic_keys_rfc8448),
		cmocka_unit_test(test_ktls_expand_label_is_the_key_label),
		cmocka_unit_test(test_ktls_tls13_sha384_keys),
		cmocka_unit_test(test_ktls_key_update_next_secret),
		cmocka_unit_test(test_ktls_tls12_prf_published_vector),
		cmocka_unit_test(test_ktls_tls12_key_block),
		cmocka_unit_test(test_ktls_expand_label_rejects_what_tls_cannot_encode),
		cmocka_unit_test(test_ktls_rejected_handshake_leaves_no_secret),
		cmocka_unit_test(test_ktls_crypto_info_layout),
	};

	/* before OpenSSL allocates anything */
	if (!CRYPTO_set_mem_functions(watch_malloc, watch_realloc, watch_free))
		return 1;
	return cmocka_run_group_tests(tests, pki_setup, pki_teardown);
}
