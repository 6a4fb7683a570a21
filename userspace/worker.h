/*
 * Workers as the rest of the gateway sees them: start, stop, and the
 * thread-safe requests (kill a connection, list connections, counters).
 * One thread and one io_uring each; a connection never changes worker.
 */
#ifndef KG_WORKER_H
#define KG_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kg_gw;
struct kg_worker;
struct kg_stats;

int kg_worker_new(struct kg_gw *gw, unsigned idx, struct kg_worker **out)
	__attribute__((warn_unused_result));
int kg_worker_start(struct kg_worker *w) __attribute__((warn_unused_result));
/* Wake a worker so it notices gw->stop or its mailbox. */
void kg_worker_kick(struct kg_worker *w);
void kg_worker_join_free(struct kg_worker *w);

/* Ask the owner of @conn_id to close it (RST both legs) for @reason
 * (enum kg_close_reason). Thread-safe. */
void kg_worker_post_kill(struct kg_worker *w, uint64_t conn_id, int reason);

/* A request for every worker's live connections, as JSON objects. */
struct kg_snap_req {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned pending;		/* workers still to answer */
	bool abandoned;			/* the requester timed out: the last worker frees it */
	char *buf;			/* "{…},{…}", owned by the requester */
	size_t len, cap;
};
void kg_worker_post_snapshot(struct kg_worker *w, struct kg_snap_req *r);

/* Close connection @conn_id of worker @w for @reason and wait (up to
 * @timeout_ms) for the worker to say whether it had it: 1 closed, 0 no such
 * connection, -ETIMEDOUT. The owner is found by the ID, the connection by
 * its slot: no search of every connection. */
int kg_worker_kill_wait(struct kg_worker *w, uint64_t conn_id, int reason, unsigned timeout_ms);
struct kg_kill_req;
struct kg_stats *kg_worker_stats(struct kg_worker *w);
/* Which worker owns @conn_id. */
unsigned kg_conn_id_worker(uint64_t conn_id);

#endif
