/* Kernel TLS: hand the session keys of a finished handshake to the kernel. */
#ifndef KG_KTLS_H
#define KG_KTLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

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

/* Send a TLS alert (close_notify: level 1, desc 0) on a kTLS TX socket. */
int kg_ktls_send_alert(int fd, uint8_t level, uint8_t desc);

/* Read one non-data record from a kTLS RX socket. Returns the record type
 * (21 alert, 22 handshake, 23 data) with up to @len bytes of its body in
 * @buf and *@got set, or -errno (-EAGAIN: nothing there yet). */
int kg_ktls_recv_record(int fd, uint8_t *buf, size_t len, size_t *got);

#endif
