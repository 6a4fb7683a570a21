/*
 * Counter names and the sum of the workers' counters. Workers write their
 * own set; this file only reads.
 */
#include <string.h>

#include "conn.h"
#include "stats.h"

static const char *const kg_rej_names[KG_REJ__COUNT] = {
	[KG_REJ_NO_CERT] = "no_certificate",
	[KG_REJ_UNKNOWN_CA] = "unknown_ca",
	[KG_REJ_EXPIRED] = "certificate_expired",
	[KG_REJ_BAD_CERT] = "bad_certificate",
	[KG_REJ_UNSUPPORTED] = "unsupported_certificate",
	[KG_REJ_REVOKED] = "certificate_revoked",
	[KG_REJ_CRL] = "crl_unusable",
	[KG_REJ_TIMEOUT] = "handshake_timeout",
	[KG_REJ_CLIENT_CLOSED] = "client_closed",
	[KG_REJ_CLIENT_ALERT] = "client_alert",
	[KG_REJ_OTHER] = "handshake_error",
	[KG_REJ_RATE] = "rate_limited",
	[KG_REJ_NOT_TLS] = "not_tls",
	[KG_REJ_PROTOCOL] = "protocol_error",
	[KG_REJ_MAX_CONN] = "max_connections",
	[KG_REJ_REVOCATION_UNAVAILABLE] = "revocation_unavailable",
	[KG_REJ_NOT_PRIVATE] = "client_not_private",
};

enum kg_rej kg_rej_of(const char *reason)
{
	int i;

	for (i = 0; i < KG_REJ__COUNT; i++)
		if (!strcmp(reason, kg_rej_names[i]))
			return (enum kg_rej)i;
	return KG_REJ_OTHER;
}

const char *kg_rej_name(enum kg_rej r)
{
	return r < KG_REJ__COUNT ? kg_rej_names[r] : "handshake_error";
}

const char *kg_path_name(enum kg_path_kind p)
{
	static const char *const n[KG_PATH__COUNT] = { "ktls", "ktls-tx", "ktls-rx", "userspace" };

	return p < KG_PATH__COUNT ? n[p] : "?";
}

const char *kg_path_pair(int client, int origin)
{
	/* every pair spelt out: a connection points at its path for life,
	 * so no per-connection buffer holds the text */
#define KG_PP(c) "client-" c ",origin-plain", "client-" c ",origin-ktls", "client-" c ",origin-ktls-tx", \
		 "client-" c ",origin-ktls-rx", "client-" c ",origin-userspace"
	static const char *const n[KG_PATH__COUNT + 1][KG_PATH__COUNT + 1] = {
		{ KG_PP("plain") }, { KG_PP("ktls") }, { KG_PP("ktls-tx") }, { KG_PP("ktls-rx") },
		{ KG_PP("userspace") },
	};
#undef KG_PP
	_Static_assert(KG_PATH__COUNT == 4, "kg_path_pair's table names 4 path kinds and plain");

	if (client < -1 || client >= KG_PATH__COUNT || origin < -1 || origin >= KG_PATH__COUNT)
		return "?";
	return n[client + 1][origin + 1];
}

const char *kg_stat_cipher_name(int i)
{
	static const char *const n[KG_STAT_CIPHERS] = {
		"AES-128-GCM", "AES-256-GCM", "CHACHA20-POLY1305", "other",
	};

	return i >= 0 && i < KG_STAT_CIPHERS ? n[i] : "other";
}

int kg_stat_cipher_of(const char *s)
{
	if (strstr(s, "CHACHA20"))
		return 2;
	if (strstr(s, "AES_128_GCM") || strstr(s, "AES128-GCM"))
		return 0;
	if (strstr(s, "AES_256_GCM") || strstr(s, "AES256-GCM"))
		return 1;
	return 3;
}

void kg_stats_sum(struct kg_stats *out, struct kg_stats *const *sets, unsigned n)
{
	const uint64_t *src;
	uint64_t *dst = (uint64_t *)out;
	size_t words = sizeof(*out) / sizeof(uint64_t), k;
	unsigned i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < n; i++) {
		src = (const uint64_t *)sets[i];
		for (k = 0; k < words; k++)
			dst[k] += __atomic_load_n(&src[k], __ATOMIC_RELAXED);
	}
}

const char *kg_close_reason_str(enum kg_close_reason r)
{
	switch (r) {
	case KG_CLOSE_NONE: return "none";
	case KG_CLOSE_DONE: return "done";
	case KG_CLOSE_REJECTED: return "rejected";
	case KG_CLOSE_HANDSHAKE_TIMEOUT: return "handshake_timeout";
	case KG_CLOSE_BACKEND_CONNECT: return "backend_connect_failed";
	case KG_CLOSE_BACKEND_ERROR: return "backend_error";
	case KG_CLOSE_CLIENT_ERROR: return "client_error";
	case KG_CLOSE_IDLE_TIMEOUT: return "idle_timeout";
	case KG_CLOSE_SHUTDOWN: return "shutdown";
	case KG_CLOSE_INTERNAL: return "internal_error";
	case KG_CLOSE_REVOKED: return "revoked";
	case KG_CLOSE_KILLED: return "killed";
	case KG_CLOSE_KEYUPDATE: return "keyupdate_unsupported";
	case KG_CLOSE_KTLS_REQUIRED: return "ktls_required";
	case KG_CLOSE_MAX_LIFETIME: return "max_lifetime";
	case KG_CLOSE_TRUNCATED: return "client_truncated";
	case KG_CLOSE_BACKEND_TLS: return "backend_tls_failed";
	case KG_CLOSE__COUNT: break;
	}
	return "?";
}

_Static_assert(KG_CLOSE__COUNT <= KG_CLOSES_MAX, "struct kg_stats.closes is too small");
