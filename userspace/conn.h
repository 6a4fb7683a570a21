/*
 * A proxied connection: client TLS socket + backend TCP socket, owned by one
 * worker. conn.c owns the table and the lifecycle (open, end, log lines);
 * it reaches io_uring only through loop.h.
 */
#ifndef KG_CONN_H
#define KG_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <openssl/ssl.h>

#include "gateway.h"
#include "tls.h"
#include "verify.h"

/* 64 KiB: four full TLS records per SSL_write and per recv, so a bulk
 * transfer costs few syscalls; released whenever it runs empty. */
#define KG_BUF_SIZE (64 * 1024)

struct kg_buf {
	struct kg_buf *next;	/* free list */
	uint32_t off, len;
	uint8_t data[KG_BUF_SIZE];
};

/* KG_ST_ORIGIN: the TLS handshake toward the origin (backend_tls = on),
 * after connecting and before proxying. */
enum kg_conn_state { KG_ST_HANDSHAKE, KG_ST_CONNECTING, KG_ST_PROXY, KG_ST_LINGER, KG_ST_ORIGIN };

enum kg_close_reason {
	KG_CLOSE_NONE,
	KG_CLOSE_DONE,			/* both sides finished cleanly */
	KG_CLOSE_REJECTED,		/* handshake refused (logged separately) */
	KG_CLOSE_HANDSHAKE_TIMEOUT,
	KG_CLOSE_BACKEND_CONNECT,
	KG_CLOSE_BACKEND_ERROR,
	KG_CLOSE_CLIENT_ERROR,
	KG_CLOSE_IDLE_TIMEOUT,
	KG_CLOSE_SHUTDOWN,
	KG_CLOSE_INTERNAL,
	KG_CLOSE_REVOKED,		/* certificate revoked while connected */
	KG_CLOSE_KILLED,		/* by an operator */
	KG_CLOSE_KEYUPDATE,		/* client KeyUpdate on a kernel that cannot rekey */
	KG_CLOSE_KTLS_REQUIRED,		/* ktls = on and the session could not be offloaded */
	KG_CLOSE_MAX_LIFETIME,
	KG_CLOSE_TRUNCATED,		/* client EOF without close_notify mid-stream */
	KG_CLOSE_BACKEND_TLS,		/* the TLS handshake with the origin failed or it refused us */
	KG_CLOSE__COUNT
};

#define KG_CF_C_RD_EOF	0x01	/* client sent close_notify (or FIN) */
#define KG_CF_B_WR_SHUT	0x02	/* we half-closed the backend */
#define KG_CF_B_RD_EOF	0x04	/* backend sent FIN */
#define KG_CF_C_WR_SHUT	0x08	/* we sent close_notify + FIN to the client */
#define KG_CF_ALL_DONE	0x0f
#define KG_CF_TRUNCATED	0x10	/* client EOF came without close_notify */
#define KG_CF_C_DRAINED	0x20	/* this pump: the client socket has nothing more */
#define KG_CF_B_DRAINED	0x40	/* this pump: the backend socket has nothing more */
#define KG_CF_RBIO_SHORT 0x80	/* OpenSSL's last read(2) got less than it asked */
#define KG_CF_C_HUP	0x100	/* the client's poll reported RDHUP/HUP/ERR */
#define KG_CF_B_HUP	0x200	/* the backend's poll reported RDHUP/HUP/ERR */
#define KG_CF_C_ERR	0x400	/* the client's poll reported ERR: check SO_ERROR once */
#define KG_CF_B_ERR	0x800	/* the backend's poll reported ERR: check SO_ERROR once */
#define KG_CF_KEYUPDATE	0x1000	/* a KeyUpdate this kernel cannot follow ended the stream */
#define KG_CF_B_RBIO_SHORT 0x2000 /* as KG_CF_RBIO_SHORT, for the origin's SSL */
#define KG_CF_B_DATA	0x4000	/* the origin has sent application data */
#define KG_CF_KU_OWED_C	0x8000	/* the client asked for our KeyUpdate: it goes before our next data */
#define KG_CF_KU_OWED_B	0x10000	/* the same, asked by the origin */

struct kg_conn {
	uint64_t id;
	uint32_t slot, gen;
	enum kg_conn_state state;
	enum kg_close_reason reason;
	unsigned flags;
	int cfd, bfd;
	bool cpoll_armed, bpoll_armed, on_ready, logged_reject, has_fp;
	bool detail_scratch;		/* detail is the per-thread scratch, not ours to free */
	uint8_t cn_class;		/* where cn lives: 1, 2 the worker's cn_mem[0], [1]; 0 malloc */
	SSL *ssl;			/* the client leg's TLS; NULL with tls = off or kTLS both ways */
	SSL *bssl;			/* the origin leg's TLS (backend_tls = on), NULL otherwise */
	struct kg_lsnap *snap;		/* reference: what it started with (reload-safe) */
	struct kg_tls_ctx *tls;		/* snap->tls */
	struct kg_listener *lst;
	const struct kg_listener_conf *conf;	/* snap->conf */
	struct kg_hs_info hs;
	struct kg_hs_info *bhs;		/* the origin handshake: the alerts each way (in the
					 * worker's cn_mem[0]; NULL until the origin leg
					 * starts TLS) */
	struct kg_buf *c2b, *b2c;	/* NULL while empty */
	int ktls;			/* KG_KTLS_TX | KG_KTLS_RX in the kernel: the client leg */
	int bktls;			/* the same for the origin leg (backend_tls = on) */
	struct kg_ktls_keys *kk[2];	/* TLS 1.3 rekey state of each offloaded leg ([0] client,
					 * [1] origin; kernel 6.14+), NULL when not kept */
	uint32_t rekeys[2];		/* KeyUpdates followed in the kernel: [0] receive, [1] send */
	uint32_t rekeys_counted[2];	/* already in the worker's counters */
	int pc2b[2], pb2c[2];		/* splice pipes, -1 while not held */
	uint32_t pc2b_len, pb2c_len;	/* bytes sitting in each pipe */
	uint8_t *pp;			/* PROXY v2 header still to send (owned) */
	size_t pp_len;
	uint64_t bytes_in, bytes_out;	/* application bytes from / to the client */
	uint64_t bytes_in_counted, bytes_out_counted;	/* already in the worker's counters */
	uint64_t start_ms, deadline_ms;
	const char *path;		/* data path, for the access log */
	const char *server_name;	/* SNI group ("" = listener's own), lives in tls */
	/* Never NULL: "-" until the handshake, then OpenSSL's static names
	 * (or ours), which outlive the SSL an offload frees. */
	const char *tls_version;
	const char *cipher;
	const char *origin_tls;		/* the origin leg: version and cipher, "-" for none */
	const char *origin_cipher;
	char *cn;			/* the client certificate's CN (owned, at most
					 * KG_CN_MAX bytes; kg_conn_set_cn), NULL for
					 * none, never "" */
	char *detail;			/* why it ended (owned, KG_DETAIL_LEN bytes),
					 * NULL until something is said */
	uint8_t fp[KG_FP_LEN];
	char peer[56];			/* "[v6 address]:port" */
};

/* An idle offloaded connection costs little more than this struct (the
 * kernel holds its TLS state): text it may never need lives on the heap. */
_Static_assert(sizeof(struct kg_conn) <= 448, "struct kg_conn grew past 448 bytes");
/* kg_fmt_peer: "[" INET6_ADDRSTRLEN - 1 "]:65535" and the NUL */
_Static_assert(sizeof(((struct kg_conn *)0)->peer) >= INET6_ADDRSTRLEN + 8, "peer too short");

/* The longest CN kept, in bytes: longer ones are cut, as they always were. */
#define KG_CN_MAX 255
/* A CN shorter than KG_CN_SLAB_SMALL (NUL included) sits in the worker's
 * 32-byte slab, one shorter than KG_CN_SLAB in its 64-byte slab; a longer
 * one comes from malloc. */
#define KG_CN_SLAB_SMALL 32
#define KG_CN_SLAB 64
/* The origin leg's struct kg_hs_info shares the 32-byte slab. */
_Static_assert(sizeof(struct kg_hs_info) <= KG_CN_SLAB_SMALL, "kg_hs_info outgrew cn_mem[0]");
/* The room kg_conn_detail_buf() gives, NUL included. */
#define KG_DETAIL_LEN 256

/* The client certificate's CN, "" when it has none (or sent no certificate). */
static inline const char *kg_conn_cn(const struct kg_conn *c)
{
	return c->cn ? c->cn : "";
}

/* What went wrong, "" while nothing has been said. */
static inline const char *kg_conn_detail(const struct kg_conn *c)
{
	return c->detail ? c->detail : "";
}

/* The buffer behind c->detail (KG_DETAIL_LEN bytes) for the caller to
 * write, allocated on first use and owned by @c. Never NULL: out of memory
 * it is a per-thread scratch buffer, which the next connection on this
 * worker to run out of memory may overwrite. */
char *kg_conn_detail_buf(struct kg_conn *c);
/* Forget what c->detail said; the buffer stays for the next write. */
static inline void kg_conn_detail_clear(struct kg_conn *c)
{
	if (c->detail)
		c->detail[0] = '\0';
}
/* Release c->detail (for a connection ending, or one a test made). */
void kg_conn_detail_free(struct kg_conn *c);

const char *kg_close_reason_str(enum kg_close_reason r);

struct kg_worker;

/* Keep @cn (not "", at most KG_CN_MAX bytes) as the connection's CN, in
 * one of the worker's slabs when shorter than KG_CN_SLAB, else from malloc.
 * -ENOMEM: nothing kept. */
int kg_conn_set_cn(struct kg_worker *w, struct kg_conn *c, const char *cn)
	__attribute__((warn_unused_result));
/* Release c->cn to where it came from; c->cn is NULL after. */
void kg_conn_drop_cn(struct kg_worker *w, struct kg_conn *c);

/* A connection for accepted socket @fd on listener @l, served with @snap
 * (the connection takes over that reference). -ENOMEM or -ENOSPC (table
 * full): @fd is closed and @snap released. */
int kg_conn_open(struct kg_worker *w, struct kg_listener *l, struct kg_lsnap *snap, int fd,
		 struct kg_conn **out) __attribute__((warn_unused_result));
/* The live connection with this ID on this worker, or NULL. */
struct kg_conn *kg_conn_by_id(struct kg_worker *w, uint64_t id);
/* End now: log the access line, count, release. Sockets get a FIN. */
void kg_conn_close(struct kg_worker *w, struct kg_conn *c, enum kg_close_reason r);
/*
 * End a connection the way @r asks: an RST to both legs where cutting it is
 * the point (revoked, killed); otherwise the client gets close_notify if no
 * byte meant for it was dropped, then a FIN, and we wait a moment for it to
 * read what we sent. The backend gets an RST whenever the client's stream
 * is incomplete. @c may be freed on return.
 */
void kg_conn_end(struct kg_worker *w, struct kg_conn *c, enum kg_close_reason r);
/* Readiness on the client (@client) or backend socket: run the state. */
void kg_conn_event(struct kg_worker *w, struct kg_conn *c, bool client, int res, unsigned flags);
/* Move data: the pump, then act on its verdict. */
void kg_conn_pump(struct kg_worker *w, struct kg_conn *c);
/* Timeouts and max_lifetime, once per tick. */
void kg_conn_tick(struct kg_worker *w);
void kg_conn_close_all(struct kg_worker *w, enum kg_close_reason r);
/* The reject line of a refused handshake, with its counter. */
void kg_conn_log_reject(struct kg_worker *w, struct kg_conn *c, const char *reason);

#endif
