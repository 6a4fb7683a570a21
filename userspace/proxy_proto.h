/* PROXY protocol v2 header towards the backend: addresses plus the TLS
 * facts (PP2_TYPE_SSL with version, cipher, CN and optionally the client
 * certificate) and the certificate's SHA-256 in a custom TLV. */
#ifndef KG_PROXY_PROTO_H
#define KG_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define KG_PP2_TYPE_SSL		0x20
#define KG_PP2_SUBTYPE_SSL_VERSION	0x21
#define KG_PP2_SUBTYPE_SSL_CN		0x22
#define KG_PP2_SUBTYPE_SSL_CIPHER	0x23
#define KG_PP2_SUBTYPE_SSL_CLIENT_CERT	0x28
#define KG_PP2_TYPE_KTLSGW_SHA256	0xE0	/* custom range: 32 raw bytes */
#define KG_PP2_CLIENT_SSL		0x01
#define KG_PP2_CLIENT_CERT_CONN		0x02

struct kg_pp2_info {
	const struct sockaddr_storage *src, *dst;
	const char *version, *cipher, *cn;	/* NULL or "" to leave out */
	const uint8_t *sha256;			/* 32 bytes or NULL */
	const uint8_t *cert_der;		/* NULL to leave out */
	size_t cert_len;
	bool no_cert;		/* TLS, but the client sent no certificate (client_auth = optional) */
	bool no_tls;		/* the client spoke plain TCP (tls = off): no PP2_TYPE_SSL at all */
};

/* Write the header into @out. Returns its length, -ENOSPC if @cap is too
 * small, -EAFNOSUPPORT for mixed or non-IP address families. */
int kg_pp2_build(uint8_t *out, size_t cap, const struct kg_pp2_info *in);

#endif
