/* cmocka tests for the PROXY v2 encoder, checked by an independent strict
 * parser written here from the protocol's definition. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "proxy_proto.h"

struct parsed {
	int fam;
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	uint8_t client;
	uint32_t verify;
	char version[32], cn[128], cipher[64];
	uint8_t cert[600];
	size_t cert_len;
	uint8_t sha[32];
	int have_sha;
	int have_ssl;
};

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* Returns 0 if @buf is exactly one valid header, -1 otherwise. */
static int parse(const uint8_t *buf, size_t n, struct parsed *o)
{
	static const uint8_t sig[12] = { 13, 10, 13, 10, 0, 13, 10, 'Q', 'U', 'I', 'T', 10 };
	size_t len, off, alen;

	memset(o, 0, sizeof(*o));
	if (n < 16 || memcmp(buf, sig, 12) || buf[12] != 0x21)
		return -1;
	len = be16(buf + 14);
	if (16 + len != n)
		return -1;
	if (buf[13] == 0x11) {
		o->fam = 4;
		alen = 12;
		memcpy(o->src, buf + 16, 4);
		memcpy(o->dst, buf + 20, 4);
		o->sport = be16(buf + 24);
		o->dport = be16(buf + 26);
	} else if (buf[13] == 0x21) {
		o->fam = 6;
		alen = 36;
		memcpy(o->src, buf + 16, 16);
		memcpy(o->dst, buf + 32, 16);
		o->sport = be16(buf + 48);
		o->dport = be16(buf + 50);
	} else {
		return -1;
	}
	if (alen > len)
		return -1;
	for (off = 16 + alen; off < n;) {
		uint8_t type;
		size_t tl;

		if (off + 3 > n)
			return -1;
		type = buf[off];
		tl = be16(buf + off + 1);
		if (off + 3 + tl > n)
			return -1;
		if (type == 0x20) {
			size_t s = off + 3 + 5, end = off + 3 + tl;

			if (tl < 5)
				return -1;
			o->have_ssl = 1;
			o->client = buf[off + 3];
			o->verify = (uint32_t)buf[off + 4] << 24 | (uint32_t)buf[off + 5] << 16 |
				    (uint32_t)buf[off + 6] << 8 | buf[off + 7];
			while (s < end) {
				uint8_t st;
				size_t sl;

				if (s + 3 > end)
					return -1;
				st = buf[s];
				sl = be16(buf + s + 1);
				if (s + 3 + sl > end)
					return -1;
				if (st == 0x21 && sl < sizeof(o->version))
					memcpy(o->version, buf + s + 3, sl);
				else if (st == 0x22 && sl < sizeof(o->cn))
					memcpy(o->cn, buf + s + 3, sl);
				else if (st == 0x23 && sl < sizeof(o->cipher))
					memcpy(o->cipher, buf + s + 3, sl);
				else if (st == 0x28 && sl <= sizeof(o->cert)) {
					memcpy(o->cert, buf + s + 3, sl);
					o->cert_len = sl;
				}
				s += 3 + sl;
			}
		} else if (type == 0xE0) {
			if (tl != 32)
				return -1;
			memcpy(o->sha, buf + off + 3, 32);
			o->have_sha = 1;
		}
		off += 3 + tl;
	}
	return 0;
}

static void test_proxy_proto_ipv4_full(void **state)
{
	struct sockaddr_storage s = { 0 }, d = { 0 };
	struct sockaddr_in *s4 = (void *)&s, *d4 = (void *)&d;
	uint8_t sha[32], cert[500], out[2048];
	struct parsed p;
	int n;

	s4->sin_family = d4->sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.7", &s4->sin_addr);
	inet_pton(AF_INET, "198.51.100.1", &d4->sin_addr);
	s4->sin_port = htons(51234);
	d4->sin_port = htons(443);
	memset(sha, 0xab, sizeof(sha));
	memset(cert, 0x30, sizeof(cert));
	struct kg_pp2_info in = { .src = &s, .dst = &d, .version = "TLSv1.3",
		.cipher = "TLS_AES_256_GCM_SHA384", .cn = "alice", .sha256 = sha,
		.cert_der = cert, .cert_len = sizeof(cert) };
	n = kg_pp2_build(out, sizeof(out), &in);
	assert_true(n > 0);
	assert_int_equal(parse(out, (size_t)n, &p), 0);
	assert_int_equal(p.fam, 4);
	assert_memory_equal(p.src, &s4->sin_addr, 4);
	assert_memory_equal(p.dst, &d4->sin_addr, 4);
	assert_int_equal(p.sport, 51234);
	assert_int_equal(p.dport, 443);
	assert_int_equal(p.client, 0x03);
	assert_int_equal(p.verify, 0);
	assert_string_equal(p.version, "TLSv1.3");
	assert_string_equal(p.cn, "alice");
	assert_string_equal(p.cipher, "TLS_AES_256_GCM_SHA384");
	assert_int_equal(p.cert_len, sizeof(cert));
	assert_memory_equal(p.cert, cert, sizeof(cert));
	assert_true(p.have_sha);
	assert_memory_equal(p.sha, sha, 32);
}

static void test_proxy_proto_ipv6_minimal(void **state)
{
	struct sockaddr_storage s = { 0 }, d = { 0 };
	struct sockaddr_in6 *s6 = (void *)&s, *d6 = (void *)&d;
	uint8_t out[512];
	struct parsed p;
	int n;

	s6->sin6_family = d6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", &s6->sin6_addr);
	inet_pton(AF_INET6, "2001:db8::2", &d6->sin6_addr);
	s6->sin6_port = htons(1);
	d6->sin6_port = htons(2);
	struct kg_pp2_info in = { .src = &s, .dst = &d };
	n = kg_pp2_build(out, sizeof(out), &in);
	assert_true(n > 0);
	assert_int_equal(parse(out, (size_t)n, &p), 0);
	assert_int_equal(p.fam, 6);
	assert_memory_equal(p.src, &s6->sin6_addr, 16);
	assert_int_equal(p.sport, 1);
	assert_int_equal(p.dport, 2);
	assert_int_equal(p.cn[0], 0);
	assert_false(p.have_sha);
}

static void test_proxy_proto_errors(void **state)
{
	struct sockaddr_storage s = { 0 }, d = { 0 };
	uint8_t out[20];

	s.ss_family = AF_INET;
	d.ss_family = AF_INET6;
	struct kg_pp2_info in = { .src = &s, .dst = &d, .cn = "x" };
	assert_int_equal(kg_pp2_build(out, sizeof(out), &in), -EAFNOSUPPORT);
	d.ss_family = AF_INET;
	assert_int_equal(kg_pp2_build(out, sizeof(out), &in), -ENOSPC);
	s.ss_family = d.ss_family = AF_UNIX;
	assert_int_equal(kg_pp2_build(out, sizeof(out), &in), -EAFNOSUPPORT);
}

/* client_auth = optional without a certificate: the TLS facts, but
 * CERT_CONN clear and a non-zero verify result, so the backend knows no
 * certificate vouches for this client. tls = off: no SSL TLV at all. */
static void test_proxy_proto_no_certificate(void **state)
{
	struct sockaddr_storage s = { 0 }, d = { 0 };
	struct sockaddr_in *s4 = (void *)&s, *d4 = (void *)&d;
	struct kg_pp2_info in = { .src = &s, .dst = &d, .version = "TLSv1.3",
				  .cipher = "TLS_AES_128_GCM_SHA256", .no_cert = true };
	uint8_t out[512];
	struct parsed p;
	int n;

	s4->sin_family = d4->sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", &s4->sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &d4->sin_addr);
	n = kg_pp2_build(out, sizeof(out), &in);
	assert_true(n > 0);
	assert_int_equal(parse(out, (size_t)n, &p), 0);
	assert_true(p.have_ssl);
	assert_int_equal(p.client, KG_PP2_CLIENT_SSL);		/* no CERT_CONN */
	assert_int_not_equal(p.verify, 0);
	assert_string_equal(p.version, "TLSv1.3");
	assert_string_equal(p.cn, "");
	assert_false(p.have_sha);

	in = (struct kg_pp2_info){ .src = &s, .dst = &d, .no_tls = true };
	n = kg_pp2_build(out, sizeof(out), &in);
	assert_int_equal(n, 16 + 12);				/* addresses only */
	assert_int_equal(parse(out, (size_t)n, &p), 0);
	assert_false(p.have_ssl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proxy_proto_ipv4_full),
		cmocka_unit_test(test_proxy_proto_ipv6_minimal),
		cmocka_unit_test(test_proxy_proto_errors),
		cmocka_unit_test(test_proxy_proto_no_certificate),
	};

	return cmocka_run_group_tests_name("proxy_proto", tests, NULL, NULL);
}
