/* Counters: one set per worker, written only by that worker, read by the
 * main thread (admin socket, metrics) with relaxed atomic loads. */
#ifndef KG_STATS_H
#define KG_STATS_H

#include <stdint.h>

enum kg_rej {
	KG_REJ_NO_CERT, KG_REJ_UNKNOWN_CA, KG_REJ_EXPIRED, KG_REJ_BAD_CERT, KG_REJ_UNSUPPORTED,
	KG_REJ_REVOKED, KG_REJ_CRL, KG_REJ_TIMEOUT, KG_REJ_CLIENT_CLOSED, KG_REJ_CLIENT_ALERT,
	KG_REJ_OTHER, KG_REJ_RATE, KG_REJ_NOT_TLS, KG_REJ_PROTOCOL, KG_REJ_MAX_CONN,
	KG_REJ_REVOCATION_UNAVAILABLE, KG_REJ_NOT_PRIVATE, KG_REJ__COUNT
};

/* data path × TLS version × cipher, for the metrics */
enum kg_path_kind { KG_PATH_KTLS, KG_PATH_KTLS_TX, KG_PATH_KTLS_RX, KG_PATH_USER, KG_PATH__COUNT };
#define KG_STAT_CIPHERS 4	/* AES-128-GCM, AES-256-GCM, CHACHA20-POLY1305, other */

#define KG_CLOSES_MAX 24	/* >= KG_CLOSE__COUNT (checked in conn.c) */

struct kg_stats {
	uint64_t conns_total;
	uint64_t conns_active;
	uint64_t handshakes_ok;
	uint64_t rejects[KG_REJ__COUNT];
	uint64_t bytes_in, bytes_out;
	uint64_t backend_connect_fail;
	uint64_t backend_errors;
	uint64_t backend_tls_fail;	/* origin handshakes that failed or were refused */
	uint64_t revoked_cuts;
	uint64_t keyupdate_ends;
	uint64_t rekeys_rx, rekeys_tx;	/* KeyUpdates followed in the kernel (rekey) */
	uint64_t accept_errors;
	uint64_t tag_errors;		/* sockets that could not be tagged for revocation */
	uint64_t conn_snapshots;	/* connection lists built (`conn list`), never for a kill */
	uint64_t heap_trims;		/* free heap returned to the kernel after a burst */
	uint64_t heap_trim_conns;	/* conns_total when the last trim ran, */
	uint64_t heap_trim_live;	/* and the connections open then (summed over
					 * workers: conns_total and 0 when every worker's
					 * last trim came after its last open and close) */
	uint64_t paths[KG_PATH__COUNT][2][KG_STAT_CIPHERS];
	uint64_t closes[KG_CLOSES_MAX];	/* by enum kg_close_reason */
};

#define KG_STAT_ADD(st, field, n) __atomic_add_fetch(&(st)->field, (n), __ATOMIC_RELAXED)
#define KG_STAT_SUB(st, field, n) __atomic_sub_fetch(&(st)->field, (n), __ATOMIC_RELAXED)

enum kg_rej kg_rej_of(const char *reason);
const char *kg_rej_name(enum kg_rej r);
const char *kg_path_name(enum kg_path_kind p);
/* "client-C,origin-O" for a path kind of each leg, -1 for a plain (no TLS)
 * leg: a static string. */
const char *kg_path_pair(int client, int origin);
const char *kg_stat_cipher_name(int i);
int kg_stat_cipher_of(const char *openssl_name);
/* Sum @n worker sets into @out (relaxed loads). */
void kg_stats_sum(struct kg_stats *out, struct kg_stats *const *sets, unsigned n);

#endif
