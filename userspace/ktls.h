/* Kernel TLS: hand the session keys of a finished handshake to the kernel. */
#ifndef KG_KTLS_H
#define KG_KTLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

#include "ktls_kdf.h"

struct kg_hs_info;

#define KG_KTLS_TX 1
#define KG_KTLS_RX 2

/* One cell of the capability matrix. */
struct kg_ktls_cell {
	int version;		/* TLS1_2_VERSION / TLS1_3_VERSION */
	const char *cipher;	/* OpenSSL name */
	int dir;		/* KG_KTLS_TX or KG_KTLS_RX */
	bool kernel;		/* the kernel accepts this cipher in this direction */
	bool openssl;		/* OpenSSL offloads it by itself */
	bool gateway;		/* ktlsgw installs it from the handshake secrets */
	char why[96];		/* when not offloadable: the reason */
};

/* Does this kernel offer the tls ULP (loads the module on demand)? */
bool kg_ktls_available(char *why, size_t whylen);
/* Fill @cells (12: 2 versions × 3 ciphers × 2 directions). Returns the count. */
size_t kg_ktls_matrix(struct kg_ktls_cell *cells, size_t max);

/* Prepare a server context for offload: OpenSSL's own kTLS on and the
 * key-log hook that keeps the TLS 1.3 traffic secrets for kg_ktls_offload()
 * (with the SSL: SSL_free wipes them). kg_tls_new() sees SSL_OP_ENABLE_KTLS
 * and turns read-ahead off, so no record can sit in a userspace buffer;
 * the order of the two calls does not matter. */
void kg_ktls_ctx_setup(SSL_CTX *ctx);

/*
 * After a successful handshake on @fd (as server: the client leg; as
 * client: the origin leg, whose TCP connection is established by then, so
 * the ULP is never set on a socket still connecting): see which directions OpenSSL already
 * offloaded and install the others from the handshake secrets. Returns the
 * KG_KTLS_* directions now in the kernel. Once a direction is installed the
 * connection never goes back to userspace TLS for it (point of no return).
 * The captured secrets are wiped before it returns. @hs is not used (the
 * secrets live with @ssl now); it stays until the callers drop it.
 */
int kg_ktls_offload(SSL *ssl, int fd, char *why, size_t whylen);

/*
 * TLS 1.3 rekey on the kernel path (kernel 6.14+). What an offloaded
 * connection keeps to follow KeyUpdates after its SSL is gone: the current
 * application traffic secret of each side, wiped with kg_ktls_keys_wipe().
 */
struct kg_ktls_keys {
	const EVP_MD *md;
	uint8_t secret[2][KG_KTLS_SECRET_MAX];	/* [0] client's write, [1] server's write */
	uint8_t len;				/* hash length; 0: nothing kept */
	uint8_t cipher;				/* internal cipher code */
	bool server;				/* our end of this socket is the server */
	uint64_t gen[2];			/* KeyUpdates followed: [0] RX, [1] TX */
};

/* As kg_ktls_offload(); for a TLS 1.3 connection with both directions in
 * the kernel it also copies the traffic secrets into @keep (else
 * @keep->len = 0). */
int kg_ktls_offload_keep(SSL *ssl, int fd, char *why, size_t whylen, struct kg_ktls_keys *keep);

/* Move one direction (KG_KTLS_RX: after the peer's KeyUpdate was read;
 * KG_KTLS_TX: after ours was sent) to the next generation: secret_N+1 =
 * HKDF-Expand-Label(secret_N, "traffic upd"), its key and IV installed with
 * TLS_RX/TLS_TX and the record sequence back at 0. 0, or -errno (the
 * kernel refuses: older than 6.14), or -EPROTO. @k is left as it was on
 * failure. */
int kg_ktls_rekey(int fd, struct kg_ktls_keys *k, int dir);

/* Send our KeyUpdate (update_requested when @request) as a handshake record
 * on a kTLS TX socket. 0 or -errno (-EAGAIN: the socket is full). */
int kg_ktls_send_keyupdate(int fd, bool request);

/* A handshake record's body is exactly one KeyUpdate: 1, with *@request set
 * to its update_requested flag; 0 for anything else. */
int kg_ktls_parse_keyupdate(const uint8_t *body, size_t len, bool *request);

void kg_ktls_keys_wipe(struct kg_ktls_keys *k);

/* Does this kernel accept a second TLS_TX key on a TLS 1.3 socket (rekey,
 * 6.14+)? Probed on a loopback pair; @why says what it saw. */
bool kg_ktls_can_rekey(char *why, size_t whylen);

/* Send a TLS alert (close_notify: level 1, desc 0) on a kTLS TX socket. */
int kg_ktls_send_alert(int fd, uint8_t level, uint8_t desc);

/* Read one non-data record from a kTLS RX socket. Returns the record type
 * (21 alert, 22 handshake, 23 data) with up to @len bytes of its body in
 * @buf and *@got set, or -errno (-EAGAIN: nothing there yet). */
int kg_ktls_recv_record(int fd, uint8_t *buf, size_t len, size_t *got);

#endif
