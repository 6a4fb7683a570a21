/*
 * The value syntax of the configuration file: durations, numbers,
 * addresses, TLS versions and server names. Pure functions of their text;
 * config.c owns the file, its sections and its keys.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>

#include "config.h"

int kg_duration_parse(const char *s, unsigned *ms)
{
	unsigned long long v, mult = 1000;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (!strcmp(end, "ms"))
		mult = 1;
	else if (!strcmp(end, "s") || !*end)
		mult = 1000;
	else if (!strcmp(end, "m"))
		mult = 60000;
	else if (!strcmp(end, "h"))
		mult = 3600000;
	else
		return -EINVAL;
	if (v > UINT_MAX / mult)
		return -EINVAL;
	*ms = (unsigned)(v * mult);
	return 0;
}

int kg_uint_parse(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int kg_addr_parse(const char *s, bool passive, struct kg_addr *a, char *err, size_t errlen)
{
	char host[256];
	const char *port, *h = s;
	struct addrinfo hints = { 0 }, *res = NULL;
	size_t hl;
	unsigned long pn;
	int rc;

	memset(a, 0, sizeof(*a));
	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':') {
			snprintf(err, errlen, "'%s' is not [IPv6]:PORT", s);
			return -EINVAL;
		}
		h = s + 1;
		hl = (size_t)(close - h);
		port = close + 2;
	} else {
		port = strrchr(s, ':');
		if (!port) {
			snprintf(err, errlen, "'%s' has no port; write HOST:PORT, e.g. 127.0.0.1:8443", s);
			return -EINVAL;
		}
		hl = (size_t)(port - s);
		port++;
	}
	if (hl >= sizeof(host) || kg_uint_parse(port, 65535, &pn)) {
		snprintf(err, errlen, "'%s': port must be a number 0-65535", s);
		return -EINVAL;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (!passive && pn == 0) {
		snprintf(err, errlen, "'%s': a backend needs a non-zero port", s);
		return -EINVAL;
	}
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	rc = getaddrinfo((hl == 0 || !strcmp(host, "*")) ? NULL : host, port, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "'%s': cannot resolve '%s': %s", s, host, gai_strerror(rc));
		return -EINVAL;
	}
	/* A wildcard listener binds IPv4 any unless the address says otherwise. */
	memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	freeaddrinfo(res);
	snprintf(a->text, sizeof(a->text), "%s", s);
	return 0;
}

int kg_tls_version_parse(const char *s)
{
	if (!strcmp(s, "1.2") || !strcasecmp(s, "TLSv1.2"))
		return TLS1_2_VERSION;
	if (!strcmp(s, "1.3") || !strcasecmp(s, "TLSv1.3"))
		return TLS1_3_VERSION;
	return 0;
}

bool kg_server_name_match(const char *pattern, const char *host)
{
	const char *dot;

	if (pattern[0] != '*')
		return !strcasecmp(pattern, host);
	/* "*.example.com" covers "a.example.com", not "example.com" nor "a.b.example.com" */
	dot = strchr(host, '.');
	return dot && dot != host && !strcasecmp(pattern + 1, dot);
}

/* A DNS name as SNI carries it (RFC 6066: no trailing dot, no address
 * literal), or "*." followed by one. */
bool kg_server_name_valid(const char *s)
{
	size_t len = strlen(s), label = 0, i;

	if (!strncmp(s, "*.", 2)) {
		s += 2;
		len -= 2;
	}
	if (!len || len > KG_SERVER_NAME_MAX || s[len - 1] == '.' || s[0] == '.')
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (!label)
				return false;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return false;
		if (++label > 63)
			return false;
	}
	return true;
}

