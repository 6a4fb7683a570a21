/* The deterministic byte stream shared by kg-loadgen and kg-backend, and a
 * thin SHA-256 wrapper: both ends can check what crossed the gateway. */
#ifndef KG_STREAM_H
#define KG_STREAM_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

/* splitmix64: each 8-byte little-endian output word in sequence. */
struct kg_stream {
	uint64_t state;
	uint8_t carry[8];
	unsigned ncarry;
};

static inline void kg_stream_init(struct kg_stream *s, uint64_t seed)
{
	s->state = seed;
	s->ncarry = 0;
}

static inline uint64_t kg_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline void kg_stream_fill(struct kg_stream *s, uint8_t *out, size_t len)
{
	while (len && s->ncarry) {
		*out++ = s->carry[8 - s->ncarry--];
		len--;
	}
	while (len >= 8) {
		uint64_t v = kg_splitmix64(&s->state);

		memcpy(out, &v, 8);	/* little-endian hosts only (x86-64, arm64) */
		out += 8;
		len -= 8;
	}
	if (len) {
		uint64_t v = kg_splitmix64(&s->state);

		memcpy(s->carry, &v, 8);
		s->ncarry = 8;
		while (len--)
			*out++ = s->carry[8 - s->ncarry--];
	}
}

struct kg_sha256 {
	EVP_MD_CTX *ctx;
};

static inline void kg_sha256_init(struct kg_sha256 *h)
{
	h->ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL);
}

static inline void kg_sha256_update(struct kg_sha256 *h, const void *p, size_t n)
{
	EVP_DigestUpdate(h->ctx, p, n);
}

/* Finish into 64 hex digits + NUL and release the context. */
static inline void kg_sha256_hex(struct kg_sha256 *h, char hex[65])
{
	unsigned char md[32];
	unsigned int n = 0, i;

	EVP_DigestFinal_ex(h->ctx, md, &n);
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* "N" with an optional binary suffix K, M, G, T (64M = 64 MiB); shared by
 * kg-loadgen and kg-backend. 0 or -EINVAL. */
static inline int kg_parse_size(const char *s, unsigned long long *out)
{
	unsigned long long v, mul = 1;
	char *end;

	errno = 0;
	if (!*s || *s == '-')
		return -EINVAL;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': mul = 1ULL << 10; end++; break;
	case 'm': case 'M': mul = 1ULL << 20; end++; break;
	case 'g': case 'G': mul = 1ULL << 30; end++; break;
	case 't': case 'T': mul = 1ULL << 40; end++; break;
	}
	if (mul > 1 && (*end == 'i' || *end == 'I') && (end[1] == 'b' || end[1] == 'B'))
		end += 2;
	if (*end || (v && mul > ~0ULL / v))
		return -EINVAL;
	*out = v * mul;
	return 0;
}

#endif
