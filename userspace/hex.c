/*
 * Hex and SHA-256 fingerprint text: libc only, so that the small front
 * binary (front.c) parses and prints fingerprints as the gateway does.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "verify.h"

int kg_hex_nibble(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int kg_hex_decode(const char *s, size_t nchars, uint8_t *out, size_t outsz)
{
	size_t i;

	if (nchars % 2 || nchars / 2 > outsz || nchars / 2 > (size_t)INT32_MAX)
		return -EINVAL;
	for (i = 0; i < nchars / 2; i++) {
		int hi = kg_hex_nibble((unsigned char)s[2 * i]);
		int lo = hi < 0 ? -1 : kg_hex_nibble((unsigned char)s[2 * i + 1]);

		if (lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return (int)i;
}

void kg_fp_format(const uint8_t fp[KG_FP_LEN], bool colons, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	int i;

	for (i = 0; i < KG_FP_LEN && o + (colons && i ? 3 : 2) < outsz; i++) {
		if (colons && i)
			out[o++] = ':';
		out[o++] = hex[fp[i] >> 4];
		out[o++] = hex[fp[i] & 15];
	}
	if (outsz)
		out[o < outsz ? o : outsz - 1] = '\0';
}

int kg_fp_parse(const char *s, uint8_t fp[KG_FP_LEN])
{
	const char *p;
	size_t len;
	bool colons;
	int i;

	if (!s)
		return -EINVAL;
	while (isspace((unsigned char)*s))
		s++;
	if (!strncasecmp(s, "sha256 fingerprint=", 19))
		s += 19;
	else if (!strncasecmp(s, "sha256:", 7))
		s += 7;
	len = strlen(s);
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	if (len == KG_FP_LEN * 2)
		colons = false;
	else if (len == KG_FP_LEN * 3 - 1)
		colons = true;
	else
		return -EINVAL;
	p = s;
	for (i = 0; i < KG_FP_LEN; i++) {
		if (kg_hex_decode(p, 2, fp + i, 1) != 1)
			return -EINVAL;
		p += 2;
		if (colons && i < KG_FP_LEN - 1) {
			if (*p != ':')
				return -EINVAL;
			p++;
		}
	}
	return 0;
}
