/* Configuration: an INI file parsed into an immutable object. */
#ifndef KG_CONFIG_H
#define KG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "fleet.h"

#define KG_NAME_MAX 64

enum kg_lkey {
	KG_LK_SECTION, KG_LK_LISTEN, KG_LK_CERT, KG_LK_KEY, KG_LK_CLIENT_CA, KG_LK_TRUST,
	KG_LK_VERIFY_DEPTH, KG_LK_BACKEND, KG_LK_TLS_MIN, KG_LK_TLS_MAX, KG_LK_CIPHERS,
	KG_LK_CIPHERSUITES, KG_LK_HANDSHAKE_TIMEOUT, KG_LK_CONNECT_TIMEOUT,
	KG_LK_IDLE_TIMEOUT, KG_LK_BACKLOG, KG_LK_MAX_CONNECTIONS, KG_LK_KTLS, KG_LK_CRL,
	KG_LK_CRL_STALE, KG_LK_MAX_LIFETIME, KG_LK_PROXY_PROTOCOL, KG_LK_PROXY_PROTOCOL_CERT,
	KG_LK_HANDSHAKE_RATE, KG_LK_TLS, KG_LK_CLIENT_AUTH,
	/* the origin leg */
	KG_LK_BACKEND_TLS, KG_LK_BACKEND_CA, KG_LK_BACKEND_NAME, KG_LK_BACKEND_CERT,
	KG_LK_BACKEND_KEY, KG_LK_BACKEND_TLS_MIN, KG_LK_BACKEND_TLS_MAX, KG_LK_BACKEND_CIPHERS,
	KG_LK_BACKEND_CIPHERSUITES,
	KG_LK__COUNT
};

/* The key's name as written in the file ("backend_cert"), for messages. */
const char *kg_lkey_name(enum kg_lkey k);

enum kg_ktls_mode { KG_KTLS_AUTO, KG_KTLS_ON, KG_KTLS_OFF };

struct kg_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[80];			/* as written in the config */
};

/* TLS toward the backend (backend_tls = on): we are the TLS client. */
struct kg_origin_conf {
	bool on;
	char *ca;				/* owned; NULL = the system's trust store */
	char *cert, *key;			/* owned; both or neither: origin mTLS */
	char *ciphers, *ciphersuites;		/* owned, NULL = library default */
	int tls_min, tls_max;
	/* backend_name, or the host part of backend when that is a name: sent
	 * as SNI and checked against the origin's certificate. "" when backend
	 * is an address and no name is given: then the address is checked. */
	char name[256];
	char ip[64];				/* the address to check when name is "" */
};

struct kg_listener_conf {
	char name[KG_NAME_MAX];
	struct kg_addr listen;
	struct kg_addr backend;
	char *cert, *key, *client_ca, *trust;	/* owned */
	char *crl;				/* owned, NULL = no CRL check */
	bool crl_stale_ok;			/* crl_stale = warn */
	char *ciphers, *ciphersuites;		/* owned, NULL = library default */
	int verify_depth;
	int tls_min, tls_max;			/* TLS1_2_VERSION / TLS1_3_VERSION */
	unsigned handshake_timeout_ms, connect_timeout_ms, idle_timeout_ms;
	int backlog;
	unsigned max_connections;		/* all workers together, 0 = unlimited */
	unsigned max_lifetime_ms;		/* 0 = unlimited */
	unsigned handshake_rate;		/* new connections/s, all workers; 0 = unlimited */
	bool proxy_v2, proxy_cert;		/* PROXY v2 header to the backend (+ client cert) */
	enum kg_ktls_mode ktls;
	bool tls_off;				/* tls = off: plain TCP in (client mode) */
	bool client_auth_optional;		/* client_auth = optional */
	struct kg_origin_conf origin;
	unsigned line[KG_LK__COUNT];		/* where each key was set, 0 = default */
	/* SNI groups ([sni LISTENER HOST]): each is a full copy of its listener
	 * with its own cert, key, client_ca, trust, crl, crl_stale, verify_depth,
	 * client_auth */
	char server_name[256];			/* "" for a listener itself */
	char parent[KG_NAME_MAX];		/* sni group: its listener's name */
	size_t n_sni;
	struct kg_listener_conf *sni;		/* owned array */
};

#define KG_SERVER_NAME_MAX 253

/* Does @pattern ("api.example.com" or "*.example.com") cover @host? Case-
 * insensitive; a wildcard covers exactly one leftmost label. */
bool kg_server_name_match(const char *pattern, const char *host);
/* confval.c: a DNS name as SNI carries it, or "*." followed by one. */
bool kg_server_name_valid(const char *s);
/* confval.c: a decimal number up to @max. 0 or -EINVAL. */
int kg_uint_parse(const char *s, unsigned long max, unsigned long *out)
	__attribute__((warn_unused_result));
/* confval.c: "1.2"/"1.3" (also "TLSv1.2"...) → TLS1_2_VERSION..., 0 if neither. */
int kg_tls_version_parse(const char *s);

enum kg_revocation_mode { KG_REV_REQUIRED, KG_REV_BEST_EFFORT, KG_REV_OFF };

#define KG_STATE_DIR_DEFAULT "/var/lib/ktlsgw"

/* The keys of [global], as config.c's kg_global_key() takes them; the
 * front (front_args.c) hands a configuration with any other key in
 * [global] to the full binary. A key added there and not here only costs
 * the front's speed, never a wrong answer. */
#define KG_GLOBAL_KEYS { "workers", "max_connections", "log_level", "log_format", "state_dir", \
			 "bpf_pin_root", "revocation", "revocation_scan_interval", "drain_timeout", \
			 "admin_socket", "metrics", "user", NULL }

#define KG_WORKERS_MAX 1024	/* also the width of the worker field of a connection ID */

struct kg_config {
	char *path;				/* owned */
	char state_dir[256];
	char pin_root[256];
	enum kg_revocation_mode revocation;
	unsigned scan_interval_ms;		/* periodic revocation pass */
	unsigned drain_timeout_ms;
	char admin_socket[108];			/* "" = none */
	char user[64];				/* "" = keep running as the starting user */
	unsigned user_line;
	struct kg_addr metrics;			/* .len 0 = no metrics endpoint */
	unsigned workers;			/* 0 in the file = one per online CPU */
	unsigned max_connections;		/* per worker share computed at start */
	int log_level;				/* enum kg_log_level */
	bool log_json;
	size_t n_listeners;
	struct kg_listener_conf *listeners;	/* owned array */
	struct kg_fleet_conf fleet;		/* [fleet]: shared revocation (fleet.h) */
};

/*
 * Parse @path. On success *@out owns a new config (free with kg_config_free).
 * On failure returns -EINVAL (bad content) or -errno (unreadable file) and
 * writes "FILE:LINE: what is wrong; what to do" into @err.
 */
int kg_config_load(const char *path, struct kg_config **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
void kg_config_free(struct kg_config *cfg);

/* "host:port", "[v6]:port", "*:port" → @a. Returns 0 or -EINVAL with @err set. */
int kg_addr_parse(const char *s, bool passive, struct kg_addr *a, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* "10", "10s", "250ms", "2m" → milliseconds. Returns 0 or -EINVAL. */
int kg_duration_parse(const char *s, unsigned *ms) __attribute__((warn_unused_result));

#endif
