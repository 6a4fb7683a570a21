/*
 * Inside a worker: its state and the io_uring primitives that the data-plane
 * files (accept.c, conn.c, handshake.c, mailbox.c) share. loop.c owns the
 * ring; only it and the functions declared here touch io_uring.
 */
#ifndef KG_LOOP_H
#define KG_LOOP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <liburing.h>

#include "conn.h"
#include "pump.h"
#include "slab.h"
#include "stats.h"
#include "worker.h"

#define KG_TICK_MS 100
#define KG_TRIM_QUIET_MS 1000	/* no open or close for this long: trim the heap, */
#define KG_TRIM_MIN_CHURN 64	/* if this many opens + closes came since the last */
#define KG_TRIM_MAX_MS 60000	/* otherwise (or never quiet): at most this often */
#define KG_PUMP_BUDGET 16		/* buffer-fulls per direction per pump */
#define KG_LINGER_MS 3000		/* wait for the peer to read our alert (a loaded client is slow) */

/* io_uring user_data: op, index (listener or table slot), generation. */
enum kg_op {
	KG_OP_ACCEPT = 1,	/* idx = listener */
	KG_OP_CPOLL,		/* client socket readiness */
	KG_OP_BPOLL,		/* backend socket readiness */
	KG_OP_TICK,
	KG_OP_EVENT,		/* eventfd: the main thread wants attention */
	KG_OP_ACCEPT_RETRY,	/* idx = listener: back-off after EMFILE */
	KG_OP_IGNORE,
};

static inline uint64_t kg_cookie(enum kg_op op, uint32_t idx, uint32_t gen)
{
	return (uint64_t)op << 56 | (uint64_t)(gen & 0xffffff) << 32 | idx;
}

static inline enum kg_op kg_cookie_op(uint64_t c) { return (enum kg_op)(c >> 56); }
static inline uint32_t kg_cookie_idx(uint64_t c) { return (uint32_t)c; }
static inline uint32_t kg_cookie_gen(uint64_t c) { return (uint32_t)(c >> 32) & 0xffffff; }

/* A connection ID: generation, table slot and worker, so any thread finds
 * the owner and the owner finds the slot without a search. */
#define KG_ID_WORKER_BITS 10		/* [global] workers <= KG_WORKERS_MAX */
#define KG_ID_SLOT_BITS 22		/* 4M connections per worker */
#define KG_ID_MAX_SLOTS (1U << KG_ID_SLOT_BITS)

static inline uint64_t kg_conn_id_make(unsigned worker, uint32_t slot, uint32_t gen)
{
	return (uint64_t)gen << (KG_ID_SLOT_BITS + KG_ID_WORKER_BITS) |
	       (uint64_t)slot << KG_ID_WORKER_BITS | worker;
}

static inline uint32_t kg_conn_id_slot(uint64_t id)
{
	return (uint32_t)(id >> KG_ID_WORKER_BITS) & (KG_ID_MAX_SLOTS - 1);
}

struct kg_kill {
	uint64_t id;
	int reason;
};

struct kg_worker {
	struct kg_gw *gw;
	unsigned idx;
	pthread_t th;
	bool started;
	struct io_uring ring;
	bool ring_deferred;		/* DEFER_TASKRUN: only this thread submits */
	int *lfd;			/* per listener; -1 once closed */
	bool *accepting;		/* multishot accept armed */
	int efd;
	uint64_t efd_val;
	struct __kernel_timespec tick_ts, retry_ts;
	uint64_t now_ms;

	/* Connection table: a slot index + generation make the io_uring cookie. */
	struct kg_conn **conns;
	uint32_t *gens;
	uint32_t *free_slots;
	uint32_t cap, n_free, n_live;

	/* Pumps that ran out of budget; as large as the table, so a push
	 * never needs memory. */
	struct kg_conn **ready;
	uint32_t n_ready;
	bool running_ready;		/* kg_run_ready is walking the list */
	bool loop_done;			/* the loop has ended (under mbox_lock) */

	struct kg_pool pool;
	/* What a connection keeps for its whole life, packed apart from the
	 * handshakes' garbage (slab.h): struct kg_conn, its CN when shorter
	 * than KG_CN_SLAB (cn_mem[0]: 32 bytes, [1]: 64), its origin leg's
	 * handshake info (cn_mem[0]), its rekey secrets. */
	struct kg_slab conn_mem, cn_mem[2], keys_mem;

	uint64_t drain_deadline;
	bool draining;

	/* Mailbox from the main thread (mailbox.c): kills and snapshots. */
	pthread_mutex_t mbox_lock;
	struct kg_kill *mbox;
	size_t mbox_n, mbox_cap;
	struct kg_snap_req *snaps[8];
	unsigned n_snaps;
	struct kg_kill_req *kill_reqs[8];
	unsigned n_kill_reqs;

	struct kg_stats stats;

	/* heap trim after a burst of handshakes (loop.c, kg_heap_tick) */
	uint64_t trim_churn, trim_last_ms;	/* opens + closes and time at the last trim */
	uint64_t quiet_churn, trim_quiet_ms;	/* since when opens + closes have not moved */

	/* handshake_rate: one token bucket per listener, this worker's share */
	double *tokens;
	uint64_t *tokens_ms;
};

/* loop.c: the ring. */
struct io_uring_sqe *kg_loop_sqe(struct kg_worker *w);
void kg_loop_poll_arm(struct kg_worker *w, struct kg_conn *c, bool client);
void kg_loop_poll_cancel(struct kg_worker *w, struct kg_conn *c, bool client);
/* Pump @c again after the others have had their turn. */
void kg_loop_ready_push(struct kg_worker *w, struct kg_conn *c);
void kg_loop_ready_drop(struct kg_worker *w, struct kg_conn *c);

/* accept.c */
void kg_accept_arm(struct kg_worker *w, unsigned li);
void kg_accept_event(struct kg_worker *w, unsigned li, int res, unsigned flags);
void kg_accept_retry_event(struct kg_worker *w, unsigned li);
void kg_accept_stop(struct kg_worker *w);
/* Bind listener @l's socket for one worker (the first resolves port 0). */
int kg_accept_listen(struct kg_listener *l, bool first, char *err, size_t errlen);

/* conn.c: the table */
int kg_conn_table_grow(struct kg_worker *w) __attribute__((warn_unused_result));
struct kg_conn *kg_conn_lookup(struct kg_worker *w, uint64_t cookie);
void kg_fmt_peer(const struct sockaddr_storage *ss, char *out, size_t outsz);

/* handshake.c */
/* Begin the handshake on a new connection (its client poll is armed). */
void kg_hs_start(struct kg_worker *w, struct kg_conn *c);
void kg_hs_event(struct kg_worker *w, struct kg_conn *c);
void kg_hs_connect_event(struct kg_worker *w, struct kg_conn *c);
/* The origin handshake (KG_ST_ORIGIN): readiness on the backend socket. */
void kg_origin_event(struct kg_worker *w, struct kg_conn *c);
/* End @c as backend_tls_failed, with c->detail saying why. */
void kg_origin_failed(struct kg_worker *w, struct kg_conn *c);
/* The origin leg failed before the origin sent any data: if that was an
 * alert (TLS 1.3 judges our certificate after our handshake is over), end
 * @c as backend_tls_failed and return true. */
bool kg_origin_refused(struct kg_worker *w, struct kg_conn *c);

/* mailbox.c: run what the main thread posted. */
void kg_mbox_run(struct kg_worker *w);

#endif
