/*
 * The PROXY protocol v2 header toward the backend, built into a caller's
 * buffer. Pure: no sockets, fuzzed and unit-tested.
 */
#include <errno.h>
#include <string.h>
#include <netinet/in.h>

#include "proxy_proto.h"

static const uint8_t kg_pp2_sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
};

struct kg_w {
	uint8_t *p;
	size_t len, cap;
	int err;
};

static void kg_put(struct kg_w *w, const void *src, size_t n)
{
	if (w->err || w->len + n > w->cap) {
		w->err = -ENOSPC;
		return;
	}
	memcpy(w->p + w->len, src, n);
	w->len += n;
}

static void kg_put16(struct kg_w *w, size_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	kg_put(w, b, 2);
}

static void kg_tlv(struct kg_w *w, uint8_t type, const void *val, size_t len)
{
	if (len > 0xffff) {
		w->err = -ENOSPC;
		return;
	}
	kg_put(w, &type, 1);
	kg_put16(w, len);
	kg_put(w, val, len);
}

int kg_pp2_build(uint8_t *out, size_t cap, const struct kg_pp2_info *in)
{
	struct kg_w w = { .p = out, .cap = cap };
	size_t len_at, ssl_len_at, ssl_start;
	uint8_t vc = 0x21, fam, client, verify4[4] = { 0 };

	if (in->src->ss_family != in->dst->ss_family)
		return -EAFNOSUPPORT;
	if (in->src->ss_family == AF_INET)
		fam = 0x11;
	else if (in->src->ss_family == AF_INET6)
		fam = 0x21;
	else
		return -EAFNOSUPPORT;
	kg_put(&w, kg_pp2_sig, sizeof(kg_pp2_sig));
	kg_put(&w, &vc, 1);
	kg_put(&w, &fam, 1);
	len_at = w.len;
	kg_put16(&w, 0);	/* patched below */
	if (fam == 0x11) {
		const struct sockaddr_in *s = (const void *)in->src, *d = (const void *)in->dst;

		kg_put(&w, &s->sin_addr, 4);
		kg_put(&w, &d->sin_addr, 4);
		kg_put(&w, &s->sin_port, 2);
		kg_put(&w, &d->sin_port, 2);
	} else {
		const struct sockaddr_in6 *s = (const void *)in->src, *d = (const void *)in->dst;

		kg_put(&w, &s->sin6_addr, 16);
		kg_put(&w, &d->sin6_addr, 16);
		kg_put(&w, &s->sin6_port, 2);
		kg_put(&w, &d->sin6_port, 2);
	}
	if (in->no_tls)
		goto tail;
	/* PP2_TYPE_SSL: client flags, verify result (0 = a certificate was
	 * presented and verified, non-zero otherwise), sub-TLVs. Without a
	 * certificate the backend sees CERT_CONN clear and may ask for a
	 * password instead. */
	client = KG_PP2_CLIENT_SSL | (in->no_cert ? 0 : KG_PP2_CLIENT_CERT_CONN);
	if (in->no_cert)
		verify4[3] = 1;
	kg_put(&w, (uint8_t[]){ KG_PP2_TYPE_SSL }, 1);
	ssl_len_at = w.len;
	kg_put16(&w, 0);
	ssl_start = w.len;
	kg_put(&w, &client, 1);
	kg_put(&w, verify4, 4);
	if (in->version && *in->version)
		kg_tlv(&w, KG_PP2_SUBTYPE_SSL_VERSION, in->version, strlen(in->version));
	if (in->cn && *in->cn)
		kg_tlv(&w, KG_PP2_SUBTYPE_SSL_CN, in->cn, strlen(in->cn));
	if (in->cipher && *in->cipher)
		kg_tlv(&w, KG_PP2_SUBTYPE_SSL_CIPHER, in->cipher, strlen(in->cipher));
	if (in->cert_der && in->cert_len)
		kg_tlv(&w, KG_PP2_SUBTYPE_SSL_CLIENT_CERT, in->cert_der, in->cert_len);
	if (w.err)
		return w.err;
	if (w.len - ssl_start > 0xffff)
		return -ENOSPC;
	out[ssl_len_at] = (uint8_t)((w.len - ssl_start) >> 8);
	out[ssl_len_at + 1] = (uint8_t)(w.len - ssl_start);
tail:
	if (in->sha256)
		kg_tlv(&w, KG_PP2_TYPE_KTLSGW_SHA256, in->sha256, 32);
	if (w.err)
		return w.err;
	if (w.len - 16 > 0xffff)
		return -ENOSPC;
	out[len_at] = (uint8_t)((w.len - 16) >> 8);
	out[len_at + 1] = (uint8_t)(w.len - 16);
	return (int)w.len;
}
