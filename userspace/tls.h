/* Per-listener TLS server contexts and the client-verification hook. */
#ifndef KG_TLS_H
#define KG_TLS_H

#include <stdint.h>
#include <openssl/ssl.h>

#include "config.h"

/* What the handshake learned (SSL app data): inside each connection for the
 * client leg, from the worker's slab for the origin leg (conn.h). */
struct kg_hs_info {
	int verify_err;		/* first X509_V_ERR_* seen, X509_V_OK if none */
	int alert_sent;		/* TLS alert description we sent, -1 if none */
	int alert_rcvd;		/* TLS alert description the client sent, -1 if none */
	int ssl_reason;		/* OpenSSL reason code of a failed handshake, 0 if none */
	X509 *leaf;		/* the client's certificate, kept even when rejected (owned) */
	uint64_t conn_id;	/* for the socket tag */
};

struct kg_rev_hook;	/* revoke.h */

#define KG_TLS12_DEFAULT_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20"

struct kg_tls_ctx {
	SSL_CTX *ctx;
	STACK_OF(X509) *issuers;	/* client_ca: allowed issuers of client certs */
	const struct kg_rev_hook *rev;	/* NULL: no revocation checks */
	bool crl_stale_ok;
	int refs;
	/* SNI groups: the listener's context switches a handshake to the
	 * group whose server name matches (exact names before wildcards) */
	size_t n_sni;
	struct kg_tls_ctx **sni;		/* owned references */
	char (*sni_names)[256];
	const char *server_name;		/* a group: its name (in the parent's sni_names) */
	/* backend_tls = on: the client context toward the origin (listener
	 * level only; NULL otherwise). ctx is NULL with tls = off. */
	SSL_CTX *origin;
	const struct kg_origin_conf *origin_conf;	/* in the listener's config */
};

/*
 * Build the server context for listener @l of config file @cfgpath.
 * On failure returns -EINVAL and writes "FILE:LINE: cause; next step" to @err.
 * *@out is owned by the caller: kg_tls_ctx_put().
 */
int kg_tls_ctx_new(const struct kg_listener_conf *l, const char *cfgpath,
		   struct kg_tls_ctx **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
void kg_tls_ctx_put(struct kg_tls_ctx *t);

/* A new server SSL for an accepted socket, with @hs as its app data. NULL on ENOMEM. */
SSL *kg_tls_new(struct kg_tls_ctx *t, int fd, struct kg_hs_info *hs);

/* A new client SSL toward the origin on connected socket @fd, with @hs as
 * its app data: SNI and the name to check are the listener's. NULL on
 * ENOMEM. The caller owns it. */
SSL *kg_tls_origin_new(struct kg_tls_ctx *t, int fd, struct kg_hs_info *hs);

/* "TLSv1.3"/"TLSv1.2" → "1.3"/"1.2". */
const char *kg_tls_version_short(const SSL *ssl);

/* The SNI group the handshake moved to, "" for the listener's own. The
 * string lives as long as the listener context the connection holds. */
const char *kg_tls_server_name(const SSL *ssl);

/* The group @host selects: NULL for the listener's own certificate. */
struct kg_tls_ctx *kg_tls_sni_lookup(struct kg_tls_ctx *t, const char *host);

#endif
