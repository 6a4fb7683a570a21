/*
 * Kernel TLS offload.
 *
 * OpenSSL 3.0 offloads some cells itself (SSL_OP_ENABLE_KTLS): TLS 1.2
 * AES-GCM both ways, TLS 1.3 AES-GCM transmit only, ChaCha20-Poly1305 never.
 * The rest is installed here from the handshake's secrets:
 *   TLS 1.3: key = HKDF-Expand-Label(traffic_secret_0, "key"), iv = …("iv"),
 *            the secrets come from the key-log hook; sequence numbers are 0
 *            (the server sends no tickets and no application data yet);
 *   TLS 1.2: the key block = PRF(master_secret, "key expansion",
 *            server_random + client_random); sequence numbers are 1 (the
 *            Finished messages were record 0 of the new epoch).
 * Read-ahead must be off (tls.c turns it off for every SSL of a context
 * prepared here) and SSL_has_pending() must be 0, so no record of the
 * client's application data is stuck in OpenSSL's buffers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/tls.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "ktls.h"
#include "ktls_kdf.h"
#include "log.h"
#include "verify.h"

#ifndef TCP_ULP
#define TCP_ULP 31
#endif
#ifndef SOL_TLS
#define SOL_TLS 282
#endif

static enum kg_cipher kg_cipher_of(const SSL_CIPHER *c)
{
	switch (SSL_CIPHER_get_cipher_nid(c)) {
	case NID_aes_128_gcm:
		return KG_C_AES128;
	case NID_aes_256_gcm:
		return KG_C_AES256;
	case NID_chacha20_poly1305:
		return KG_C_CHACHA;
	default:
		return KG_C_NONE;
	}
}

static size_t kg_key_len(enum kg_cipher c)
{
	return c == KG_C_AES128 ? 16 : 32;
}


/* ---- key derivation (ktls_kdf.c) ----------------------------------------- */

/* TLS 1.2: the key block from the session's master secret and randoms. */
static int kg_tls12_key_block(SSL *ssl, const EVP_MD *md, uint8_t *out, size_t outlen)
{
	uint8_t master[SSL_MAX_MASTER_KEY_LENGTH], sr[SSL3_RANDOM_SIZE], cr[SSL3_RANDOM_SIZE];
	size_t mlen;
	int rc = -EPROTO;

	mlen = SSL_SESSION_get_master_key(SSL_get_session(ssl), master, sizeof(master));
	if (mlen && SSL_get_server_random(ssl, sr, sizeof(sr)) == sizeof(sr) &&
	    SSL_get_client_random(ssl, cr, sizeof(cr)) == sizeof(cr))
		rc = kg_ktls_tls12_key_block(md, master, mlen, sr, cr, out, outlen);
	OPENSSL_cleanse(master, sizeof(master));
	return rc;
}

/* ---- the key-log hook ------------------------------------------------------ */

/*
 * The TLS 1.3 application traffic secrets (0 client, 1 server) of one
 * handshake. They hang off the SSL as ex_data, not off the connection, so
 * that every way an SSL ends (offload, a rejected handshake, a timeout, a
 * reset) wipes them: SSL_free calls kg_secrets_free. kg_ktls_offload wipes
 * them as soon as the keys are in the kernel.
 */
struct kg_ktls_secrets {
	uint8_t secret[2][KG_KTLS_SECRET_MAX];
	uint8_t len, have;
};

static int kg_secrets_idx = -1;
static pthread_once_t kg_secrets_once = PTHREAD_ONCE_INIT;

static void kg_secrets_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			    void *argp)
{
	OPENSSL_clear_free(ptr, sizeof(struct kg_ktls_secrets));
}

static void kg_secrets_init(void)
{
	kg_secrets_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, kg_secrets_free);
}

static struct kg_ktls_secrets *kg_secrets_get(const SSL *ssl)
{
	return kg_secrets_idx < 0 ? NULL : SSL_get_ex_data(ssl, kg_secrets_idx);
}

/* Wipe and release @ssl's secrets now (SSL_free would do it later). */
static void kg_secrets_drop(SSL *ssl)
{
	struct kg_ktls_secrets *ks = kg_secrets_get(ssl);

	if (!ks)
		return;
	SSL_set_ex_data(ssl, kg_secrets_idx, NULL);
	OPENSSL_clear_free(ks, sizeof(*ks));
}

static void kg_keylog_cb(const SSL *cssl, const char *line)
{
	/* OpenSSL hands the callback a const SSL; the ex_data slot is ours */
	SSL *ssl = (SSL *)cssl;
	struct kg_ktls_secrets *ks = kg_secrets_get(ssl);
	const char *hex;
	int which, n;

	if (kg_secrets_idx < 0)
		return;
	if (!strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24))
		which = 0;
	else if (!strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24))
		which = 1;
	else
		return;
	hex = strchr(line + 24, ' ');	/* after the client random */
	if (!hex)
		return;
	hex++;
	if (!ks) {
		ks = OPENSSL_zalloc(sizeof(*ks));
		if (!ks)
			return;	/* no secrets: the offload says so and userspace TLS serves */
		if (SSL_set_ex_data(ssl, kg_secrets_idx, ks) != 1) {
			OPENSSL_free(ks);
			return;
		}
	}
	n = kg_hex_decode(hex, strlen(hex), ks->secret[which], sizeof(ks->secret[which]));
	if (n <= 0 || (ks->have && n != ks->len)) {
		OPENSSL_cleanse(ks->secret, sizeof(ks->secret));
		ks->have = 0;
		return;
	}
	ks->len = (uint8_t)n;
	ks->have |= (uint8_t)(1u << which);
}

void kg_ktls_ctx_setup(SSL_CTX *ctx)
{
	pthread_once(&kg_secrets_once, kg_secrets_init);
	SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
	SSL_CTX_set_keylog_callback(ctx, kg_keylog_cb);
}

/* ---- install --------------------------------------------------------------- */

static int kg_ulp(int fd)
{
	char name[16];
	socklen_t len = sizeof(name);

	/* OpenSSL may have attached the ULP already (it offloaded a direction). */
	if (!getsockopt(fd, IPPROTO_TCP, TCP_ULP, name, &len) && len && !strncmp(name, "tls", 3))
		return 0;
	if (setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")))
		return -errno;
	return 0;
}

int kg_ktls_offload(SSL *ssl, int fd, char *why, size_t whylen)
{
	return kg_ktls_offload_keep(ssl, fd, why, whylen, NULL);
}

int kg_ktls_offload_keep(SSL *ssl, int fd, char *why, size_t whylen, struct kg_ktls_keys *keep)
{
	const struct kg_ktls_secrets *ks = kg_secrets_get(ssl);
	const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
	enum kg_cipher c = kg_cipher_of(cipher);
	int version = SSL_version(ssl), done = 0, need, i, rx;
	const EVP_MD *md;
	uint8_t keys[2][32], ivs[2][12], block[2 * 32 + 2 * 12];
	uint64_t seq = version == TLS1_3_VERSION ? 0 : 1;
	size_t klen, ivlen;
	union kg_crypto_info ci;
	socklen_t cilen;

	why[0] = '\0';
	if (keep)
		kg_ktls_keys_wipe(keep);
	if (BIO_get_ktls_send(SSL_get_wbio(ssl)))
		done |= KG_KTLS_TX;
	if (BIO_get_ktls_recv(SSL_get_rbio(ssl)))
		done |= KG_KTLS_RX;
	need = (KG_KTLS_TX | KG_KTLS_RX) & ~done;
	if (!need)
		goto out;
	if (c == KG_C_NONE) {
		snprintf(why, whylen, "cipher %s has no kernel TLS support", SSL_CIPHER_get_name(cipher));
		goto out;
	}
	if (SSL_has_pending(ssl)) {
		snprintf(why, whylen, "peer data already buffered in userspace");
		need &= ~KG_KTLS_RX;
		if (!need)
			goto out;
	}
	md = SSL_CIPHER_get_handshake_digest(cipher);
	klen = kg_key_len(c);
	ivlen = (c == KG_C_CHACHA || version == TLS1_3_VERSION) ? 12 : 4;
	if (version == TLS1_3_VERSION) {
		if (!ks || (ks->have & 3) != 3 || !md) {
			snprintf(why, whylen, "TLS 1.3 traffic secrets not captured");
			goto out;
		}
		for (i = 0; i < 2; i++)
			if (kg_ktls_tls13_keys(md, ks->secret[i], ks->len, keys[i],
					       klen, ivs[i])) {
				snprintf(why, whylen, "HKDF-Expand-Label failed");
				goto out;
			}
	} else {
		/* client_write_key, server_write_key, client_write_IV, server_write_IV */
		if (!md || kg_tls12_key_block(ssl, md, block, 2 * klen + 2 * ivlen)) {
			snprintf(why, whylen, "TLS 1.2 key block derivation failed");
			goto out;
		}
		memcpy(keys[0], block, klen);
		memcpy(keys[1], block + klen, klen);
		memcpy(ivs[0], block + 2 * klen, ivlen);
		memcpy(ivs[1], block + 2 * klen + ivlen, ivlen);
	}
	if (kg_ulp(fd)) {
		snprintf(why, whylen, "TCP_ULP tls: %s", strerror(errno));
		goto out;
	}
	/* keys[0] and ivs[0] are the client's write side: a server receives
	 * with them, the client end of the origin leg sends with them */
	rx = SSL_is_server(ssl) ? 0 : 1;
	/* Receive first: if it fails nothing changed and OpenSSL keeps both
	 * directions; a transmit key installed behind OpenSSL's back is final. */
	if (need & KG_KTLS_RX) {
		cilen = kg_ktls_crypto_info(&ci, version, c, keys[rx], ivs[rx], seq);
		if (setsockopt(fd, SOL_TLS, TLS_RX, &ci, cilen)) {
			snprintf(why, whylen, "TLS_RX: %s", strerror(errno));
			need &= ~KG_KTLS_TX;	/* stay consistent: OpenSSL keeps TX too */
		} else {
			done |= KG_KTLS_RX;
		}
	}
	if (need & KG_KTLS_TX) {
		cilen = kg_ktls_crypto_info(&ci, version, c, keys[1 - rx], ivs[1 - rx], seq);
		if (setsockopt(fd, SOL_TLS, TLS_TX, &ci, cilen))
			snprintf(why, whylen, "TLS_TX: %s", strerror(errno));
		else
			done |= KG_KTLS_TX;
	}
	OPENSSL_cleanse(&ci, sizeof(ci));
	if (keep && version == TLS1_3_VERSION && done == (KG_KTLS_TX | KG_KTLS_RX) && ks &&
	    (ks->have & 3) == 3 && md) {
		keep->md = md;
		memcpy(keep->secret, ks->secret, sizeof(keep->secret));
		keep->len = ks->len;
		keep->cipher = (uint8_t)c;
		keep->server = SSL_is_server(ssl);
		keep->gen[0] = keep->gen[1] = 0;
	}
out:
	OPENSSL_cleanse(keys, sizeof(keys));
	OPENSSL_cleanse(ivs, sizeof(ivs));
	OPENSSL_cleanse(block, sizeof(block));
	kg_secrets_drop(ssl);
	return done;
}

/* ---- rekey (TLS 1.3 KeyUpdate, kernel 6.14+) -------------------------------- */

static int kg_tcp_pair(int fds[2]);

void kg_ktls_keys_wipe(struct kg_ktls_keys *k)
{
	OPENSSL_cleanse(k, sizeof(*k));
}

int kg_ktls_rekey(int fd, struct kg_ktls_keys *k, int dir)
{
	/* a server receives with the client's secret and sends with its own;
	 * the client end of the origin leg the other way round */
	int idx = (dir == KG_KTLS_RX) == k->server ? 0 : 1;
	uint8_t next[KG_KTLS_SECRET_MAX], key[KG_KTLS_KEY_MAX], iv[KG_KTLS_IV_LEN];
	union kg_crypto_info ci;
	socklen_t cilen;
	int rc = 0;

	if (!k->len)
		return -EINVAL;
	if (kg_ktls_tls13_next_secret(k->md, k->secret[idx], k->len, next) ||
	    kg_ktls_tls13_keys(k->md, next, k->len, key, kg_key_len((enum kg_cipher)k->cipher), iv)) {
		rc = -EPROTO;
		goto out;
	}
	cilen = kg_ktls_crypto_info(&ci, TLS1_3_VERSION, (enum kg_cipher)k->cipher, key, iv, 0);
	if (setsockopt(fd, SOL_TLS, dir == KG_KTLS_RX ? TLS_RX : TLS_TX, &ci, cilen))
		rc = -errno;
	else {
		memcpy(k->secret[idx], next, k->len);
		k->gen[dir == KG_KTLS_RX ? 0 : 1]++;
	}
	OPENSSL_cleanse(&ci, sizeof(ci));
out:
	OPENSSL_cleanse(next, sizeof(next));
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(iv, sizeof(iv));
	return rc;
}

/* One record of @type with @body on a kTLS TX socket. */
static int kg_ktls_send_record(int fd, uint8_t type, const uint8_t *body, size_t len)
{
	char cbuf[CMSG_SPACE(sizeof(unsigned char))];
	struct iovec iov = { .iov_base = (void *)body, .iov_len = len };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	ssize_t n;

	cm->cmsg_level = SOL_TLS;
	cm->cmsg_type = TLS_SET_RECORD_TYPE;
	cm->cmsg_len = CMSG_LEN(sizeof(unsigned char));
	*CMSG_DATA(cm) = type;
	n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;	/* a record is sent whole or not at all */
}

int kg_ktls_send_keyupdate(int fd, bool request)
{
	/* HandshakeType key_update(24), uint24 length 1, KeyUpdateRequest */
	const uint8_t body[5] = { 24, 0, 0, 1, request ? 1 : 0 };

	return kg_ktls_send_record(fd, 22, body, sizeof(body));
}

int kg_ktls_parse_keyupdate(const uint8_t *body, size_t len, bool *request)
{
	if (len != 5 || body[0] != 24 || body[1] || body[2] || body[3] != 1 || body[4] > 1)
		return 0;
	*request = body[4] == 1;
	return 1;
}

bool kg_ktls_can_rekey(char *why, size_t whylen)
{
	uint8_t key[16] = { 0 }, iv[12] = { 0 };
	union kg_crypto_info ci;
	socklen_t cl = kg_ktls_crypto_info(&ci, TLS1_3_VERSION, KG_C_AES128, key, iv, 0);
	bool ok = false;
	int fds[2];

	if (kg_tcp_pair(fds)) {
		snprintf(why, whylen, "cannot open a loopback TCP pair to probe");
		return false;
	}
	if (setsockopt(fds[0], IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) ||
	    setsockopt(fds[0], SOL_TLS, TLS_TX, &ci, cl))
		snprintf(why, whylen, "no TLS 1.3 kTLS here (%s)", strerror(errno));
	else if (setsockopt(fds[0], SOL_TLS, TLS_TX, &ci, cl))
		snprintf(why, whylen, "the kernel refuses a second TLS 1.3 key (%s): no rekey before 6.14",
			 strerror(errno));
	else {
		ok = true;
		snprintf(why, whylen, "the kernel takes the next TLS 1.3 key on a live socket");
	}
	close(fds[0]);
	close(fds[1]);
	return ok;
}

static bool kg_rekey_ok;
static pthread_once_t kg_rekey_once = PTHREAD_ONCE_INIT;

static void kg_rekey_probe(void)
{
	char why[160];

	kg_rekey_ok = kg_ktls_can_rekey(why, sizeof(why));
}

bool kg_ktls_rekey_supported(void)
{
	pthread_once(&kg_rekey_once, kg_rekey_probe);
	return kg_rekey_ok;
}

/* ---- records ---------------------------------------------------------------- */

int kg_ktls_send_alert(int fd, uint8_t level, uint8_t desc)
{
	const uint8_t body[2] = { level, desc };

	return kg_ktls_send_record(fd, 21, body, sizeof(body));
}

int kg_ktls_recv_record(int fd, uint8_t *buf, size_t len, size_t *got)
{
	char cbuf[CMSG_SPACE(sizeof(unsigned char))];
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	ssize_t n;

	n = recvmsg(fd, &msg, MSG_DONTWAIT);
	if (n < 0)
		return -errno;
	*got = (size_t)n;
	if (n == 0)
		return 0;	/* EOF */
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_TLS && cm->cmsg_type == TLS_GET_RECORD_TYPE)
			return *CMSG_DATA(cm);
	return 23;	/* no control message: application data */
}

/* ---- capability probing ------------------------------------------------------- */

/* A connected loopback TCP pair, for probing what the kernel accepts. */
static int kg_tcp_pair(int fds[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rc = -1;

	fds[0] = fds[1] = -1;
	if (l < 0)
		return -1;
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &al))
		goto out;
	fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&a, al))
		goto out;
	fds[1] = accept(l, NULL, NULL);
	rc = fds[1] < 0 ? -1 : 0;
out:
	close(l);
	return rc;
}

bool kg_ktls_available(char *why, size_t whylen)
{
	int fds[2];
	bool ok = false;

	if (kg_tcp_pair(fds)) {
		snprintf(why, whylen, "cannot open a loopback TCP pair to probe");
	} else if (setsockopt(fds[0], IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls"))) {
		snprintf(why, whylen, "the kernel has no tls ULP (%s): CONFIG_TLS is off or the module "
			 "is missing; see kernel-config/check", strerror(errno));
	} else {
		ok = true;
		why[0] = '\0';
	}
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	return ok;
}

size_t kg_ktls_matrix(struct kg_ktls_cell *cells, size_t max)
{
	static const struct { const char *name; enum kg_cipher c; } ciphers[] = {
		{ "AES-128-GCM", KG_C_AES128 },
		{ "AES-256-GCM", KG_C_AES256 },
		{ "CHACHA20-POLY1305", KG_C_CHACHA },
	};
	static const int versions[] = { TLS1_2_VERSION, TLS1_3_VERSION };
	uint8_t key[32] = { 0 }, iv[12] = { 0 };
	char ulp_why[160];
	bool ulp = kg_ktls_available(ulp_why, sizeof(ulp_why));
	size_t n = 0, v, k;
	int d;

	for (v = 0; v < 2; v++)
		for (k = 0; k < 3; k++)
			for (d = KG_KTLS_TX; d <= KG_KTLS_RX && n < max; d++) {
				struct kg_ktls_cell *cell = &cells[n++];
				union kg_crypto_info ci;
				socklen_t cl;
				int fds[2];

				memset(cell, 0, sizeof(*cell));
				cell->version = versions[v];
				cell->cipher = ciphers[k].name;
				cell->dir = d;
				/* Measured with Debian's OpenSSL 3.0 (the file header;
				 * README, "Kernel TLS"). */
				cell->openssl = ciphers[k].c != KG_C_CHACHA &&
						(versions[v] == TLS1_2_VERSION || d == KG_KTLS_TX);
				cell->gateway = true;
				if (!ulp) {
					snprintf(cell->why, sizeof(cell->why), "no tls ULP in this kernel");
					continue;
				}
				if (kg_tcp_pair(fds)) {
					snprintf(cell->why, sizeof(cell->why), "probe failed");
					continue;
				}
				cl = kg_ktls_crypto_info(&ci, versions[v], ciphers[k].c, key, iv, 0);
				if (setsockopt(fds[0], IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) ||
				    setsockopt(fds[0], SOL_TLS, d == KG_KTLS_TX ? TLS_TX : TLS_RX, &ci, cl))
					snprintf(cell->why, sizeof(cell->why), "kernel refuses it: %s%s",
						 strerror(errno), errno == ENOENT || errno == EINVAL ?
						 " (cipher or TLS 1.3 support missing)" : "");
				else
					cell->kernel = true;
				close(fds[0]);
				close(fds[1]);
			}
	return n;
}
