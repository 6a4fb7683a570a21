/*
 * libFuzzer target: SHA-256 fingerprints as operators type them
 * (kg_fp_parse, used by `revoke add|del FP`) and as ktlsgw prints them
 * (kg_fp_format).
 *
 * The input, NUL-terminated, is parsed. A success must agree with the
 * grammar of verify.h, decoded here independently, and must survive the
 * round trip: formatted with and without colons, each text parses back to
 * the same 32 bytes. A failure must be an input that grammar refuses.
 * kg_fp_format is also given short buffers, which it must cut, not overrun.
 */
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "verify.h"
#include "kg_fuzz.h"

static int kg_ref_hex(int c)
{
	static const char digits[] = "0123456789abcdef";
	const char *p;

	if (!c)
		return -1;
	p = strchr(digits, tolower(c));
	return p ? (int)(p - digits) : -1;
}

/*
 * The grammar of verify.h, written from the comment and not from the code:
 * blanks around; an optional "sha256:" or "SHA256 Fingerprint=" (any case)
 * first; then 64 hex digits, or 32 pairs joined by single colons.
 */
static int kg_ref_parse(const char *s, uint8_t fp[KG_FP_LEN])
{
	size_t len, step, i;

	while (isspace((unsigned char)*s))
		s++;
	if (!strncasecmp(s, "sha256 fingerprint=", strlen("sha256 fingerprint=")))
		s += strlen("sha256 fingerprint=");
	else if (!strncasecmp(s, "sha256:", strlen("sha256:")))
		s += strlen("sha256:");
	len = strlen(s);
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	if (len == 2 * KG_FP_LEN)
		step = 2;
	else if (len == 3 * KG_FP_LEN - 1)
		step = 3;
	else
		return -EINVAL;
	for (i = 0; i < KG_FP_LEN; i++) {
		const char *d = s + i * step;
		int hi = kg_ref_hex((unsigned char)d[0]), lo = kg_ref_hex((unsigned char)d[1]);

		if (hi < 0 || lo < 0 || (step == 3 && i + 1 < KG_FP_LEN && d[2] != ':'))
			return -EINVAL;
		fp[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* Format into a buffer of exactly @outsz bytes (so AddressSanitizer sees
 * any overrun) and check the text is the start of @full, cut at a byte. */
static void kg_check_short_format(const uint8_t fp[KG_FP_LEN], bool colons, const char *full,
				  size_t outsz)
{
	char *out = malloc(outsz ? outsz : 1);
	size_t n;

	kg_fuzz_check(out, "out of memory");
	kg_fp_format(fp, colons, out, outsz);
	if (outsz) {
		kg_fuzz_check(memchr(out, '\0', outsz), "not terminated in %zu bytes", outsz);
		n = strlen(out);
		kg_fuzz_check(!strncmp(out, full, n), "'%s' is not the start of '%s'", out, full);
		/* never half a byte: a cut fingerprint must not look like another */
		kg_fuzz_check(colons ? (n == 0 || n % 3 == 2) : n % 2 == 0,
			      "cut inside a byte: '%s'", out);
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t fp[KG_FP_LEN], ref[KG_FP_LEN], back[KG_FP_LEN];
	char hex[KG_FP_HEX_LEN], colon[KG_FP_COLON_LEN];
	char *s = malloc(size + 1);	/* exactly the string: overreads show */
	int rc, ref_rc;
	size_t i;

	kg_fuzz_check(s, "out of memory");
	memcpy(s, data, size);
	s[size] = '\0';
	rc = kg_fp_parse(s, fp);
	ref_rc = kg_ref_parse(s, ref);
	kg_fuzz_check(rc == 0 || rc == -EINVAL, "rc %d", rc);
	kg_fuzz_check(rc == ref_rc, "kg_fp_parse says %d, the grammar says %d for '%s'",
		      rc, ref_rc, s);
	if (rc) {
		free(s);
		return 0;
	}
	kg_fuzz_check(!memcmp(fp, ref, KG_FP_LEN), "bytes differ from the grammar's for '%s'", s);

	/* round trip, both ways of writing */
	kg_fp_format(fp, false, hex, sizeof(hex));
	kg_fuzz_check(strlen(hex) == 2 * KG_FP_LEN, "hex '%s'", hex);
	memset(back, 0, sizeof(back));
	kg_fuzz_check(!kg_fp_parse(hex, back) && !memcmp(back, fp, KG_FP_LEN),
		      "'%s' does not parse back to the bytes of '%s'", hex, s);
	kg_fp_format(fp, true, colon, sizeof(colon));
	kg_fuzz_check(strlen(colon) == 3 * KG_FP_LEN - 1, "colons '%s'", colon);
	memset(back, 0, sizeof(back));
	kg_fuzz_check(!kg_fp_parse(colon, back) && !memcmp(back, fp, KG_FP_LEN),
		      "'%s' does not parse back to the bytes of '%s'", colon, s);
	/* the output is lower-case and plain: what `openssl x509` would show */
	for (i = 0; hex[i]; i++)
		kg_fuzz_check(isdigit((unsigned char)hex[i]) || (hex[i] >= 'a' && hex[i] <= 'f'),
			      "not lower-case hex: '%s'", hex);

	/* short buffers, sizes chosen by the parsed bytes so all get tried */
	kg_check_short_format(fp, false, hex, fp[0] % (KG_FP_HEX_LEN + 1));
	kg_check_short_format(fp, true, colon, fp[1] % (KG_FP_COLON_LEN + 1));
	free(s);
	return 0;
}
