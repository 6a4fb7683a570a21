/*
 * libFuzzer target: requests on the admin socket (kg_admin_parse).
 *
 * The admin socket is root-only, but its parser still reads bytes from a
 * peer: it must never read past them and must accept only the documented
 * lines. The input is passed as it would arrive, in a buffer of exactly
 * its size with no terminator, so AddressSanitizer sees any overread.
 *
 * Checked: the request line is the input up to its first NUL, CR or LF;
 * "conn list" and "stats" are recognised only when the line is exactly
 * that; KG_ADM_CONN_KILL only when the line is "conn kill " and one or
 * more decimal digits whose value fits in unsigned long long, and then the
 * id is that value (strtoull of the digits); the id is left alone
 * otherwise.
 *
 * With KG_FUZZ_STRICT=1 in the environment the converse is checked too:
 * every "conn kill DIGITS" line whose value fits must be accepted.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "admin.h"
#include "kg_fuzz.h"

#define KG_ID_UNTOUCHED 0x5a5a5a5a5a5a5a5aULL

static bool kg_strict;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *s = getenv("KG_FUZZ_STRICT");

	kg_strict = s && *s && strcmp(s, "0");
	return 0;
}

/* "conn kill DIGITS" with a value that fits: *@id gets it. */
static bool kg_kill_line(const char *line, size_t n, unsigned long long *id)
{
	static const char prefix[] = "conn kill ";
	size_t plen = sizeof(prefix) - 1, i;
	char digits[64];

	if (n <= plen || memcmp(line, prefix, plen))
		return false;
	for (i = plen; i < n; i++)
		if (line[i] < '0' || line[i] > '9')
			return false;
	/* leading zeros do not change the value: drop them for strtoull's sake
	 * and the buffer's */
	while (n - plen > 1 && line[plen] == '0')
		plen++;
	if (n - plen >= sizeof(digits))
		return false;	/* more than 63 significant digits never fit */
	memcpy(digits, line + plen, n - plen);
	digits[n - plen] = '\0';
	errno = 0;
	*id = strtoull(digits, NULL, 10);
	return errno != ERANGE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	unsigned long long id = KG_ID_UNTOUCHED, want = 0;
	enum kg_admin_req req;
	size_t n = 0;
	bool kill;

	kg_fuzz_check(buf, "out of memory");
	memcpy(buf, data, size);
	req = kg_admin_parse(buf, size, &id);

	while (n < size && buf[n] != '\0' && buf[n] != '\r' && buf[n] != '\n')
		n++;
	kg_fuzz_check(req == KG_ADM_BAD || req == KG_ADM_CONN_LIST || req == KG_ADM_STATS ||
		      req == KG_ADM_CONN_KILL, "request %d", (int)req);
	kg_fuzz_check((req == KG_ADM_CONN_LIST) == (n == 9 && !memcmp(buf, "conn list", 9)),
		      "conn list: %d for '%.*s'", (int)req, (int)n, buf);
	kg_fuzz_check((req == KG_ADM_STATS) == (n == 5 && !memcmp(buf, "stats", 5)),
		      "stats: %d for '%.*s'", (int)req, (int)n, buf);
	kill = kg_kill_line(buf, n, &want);
	if (req == KG_ADM_CONN_KILL) {
		kg_fuzz_check(kill, "conn kill accepted for '%.*s'", (int)n, buf);
		kg_fuzz_check(id == want, "id %llu, the digits say %llu", id, want);
	} else {
		kg_fuzz_check(id == KG_ID_UNTOUCHED, "id written for request %d", (int)req);
		if (kg_strict)
			kg_fuzz_check(!kill, "'%.*s' (id %llu fits) refused", (int)n, buf, want);
	}
	free(buf);
	return 0;
}
