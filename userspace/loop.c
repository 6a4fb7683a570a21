/*
 * A worker's event loop: its thread, its io_uring, the dispatch of every
 * completion by the op in its cookie, the ready list, drain and stop.
 * Owns the ring and the worker's lifetime; what a completion means belongs
 * to accept.c, conn.c, handshake.c and mailbox.c.
 *
 * Readiness comes from io_uring: a multishot accept per listener and one
 * multishot poll per socket, armed once for the socket's lifetime. Multishot
 * poll reports wake-ups (edge-triggered), so every event runs the whole
 * connection pump until each side has hit EAGAIN, a full buffer or EOF; a
 * pump that runs out of budget puts the connection on the ready list so one
 * busy connection never starves the others.
 */
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "gateway.h"
#include "ktls.h"
#include "log.h"
#include "loop.h"

#define KG_RING_ENTRIES 1024
#define KG_SQE_TRIES 64		/* submits to free a full SQ ring before giving up */

static uint64_t kg_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * A ring that fails cannot be served around: its SO_REUSEPORT sockets would
 * keep taking connections that nobody answers. Stop the whole process with
 * a non-zero status so the service manager restarts it; revocations are
 * durable, connections are re-established by clients.
 */
static void __attribute__((noreturn)) kg_loop_fatal(struct kg_worker *w, const char *what, int rc)
{
	kg_err("worker %u: %s: %s; stopping the gateway (exit 1) so that the service manager "
	       "restarts it", w->idx, what, strerror(-rc));
	_exit(1);
}

/* Test seam (kg_fault): KTLSGW_FAULT=sqfull:N makes the SQ ring look full
 * to every request from each worker's Nth on, to prove the bound below. */
static struct io_uring_sqe *kg_get_sqe(struct kg_worker *w)
{
	static __thread unsigned fault_at, calls;
	static __thread bool fault_read;

	if (!fault_read) {
		fault_at = kg_fault("sqfull");
		fault_read = true;
	}
	if (fault_at && ++calls >= fault_at)
		return NULL;
	return io_uring_get_sqe(&w->ring);
}

struct io_uring_sqe *kg_loop_sqe(struct kg_worker *w)
{
	struct io_uring_sqe *sqe = kg_get_sqe(w);
	int rc = 0;

	for (unsigned i = 0; !sqe && i < KG_SQE_TRIES; i++) {
		/* The SQ ring is full: hand what we have to the kernel. */
		rc = io_uring_submit(&w->ring);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
			break;
		sqe = kg_get_sqe(w);
	}
	if (!sqe)
		kg_loop_fatal(w, "io_uring submission queue stays full", rc ? rc : -EBUSY);
	return sqe;
}

void kg_loop_poll_arm(struct kg_worker *w, struct kg_conn *c, bool client)
{
	int fd = client ? c->cfd : c->bfd;
	struct io_uring_sqe *sqe;

	if (fd < 0)
		return;
	sqe = kg_loop_sqe(w);
	io_uring_prep_poll_multishot(sqe, fd, POLLIN | POLLOUT | POLLRDHUP | POLLERR | POLLHUP);
	io_uring_sqe_set_data64(sqe, kg_cookie(client ? KG_OP_CPOLL : KG_OP_BPOLL, c->slot, c->gen));
	if (client)
		c->cpoll_armed = true;
	else
		c->bpoll_armed = true;
}

void kg_loop_poll_cancel(struct kg_worker *w, struct kg_conn *c, bool client)
{
	struct io_uring_sqe *sqe;

	if (!(client ? c->cpoll_armed : c->bpoll_armed))
		return;
	sqe = kg_loop_sqe(w);
	/* ASYNC_CANCEL, not POLL_REMOVE: a poll remove finding the poll busy
	 * with an event (its completion queued, not yet run) fails with
	 * -EALREADY and the multishot poll lives on, holding the socket open
	 * after our close(): no RST, no FIN. A cancel marks it cancelled
	 * whoever holds it. Seen with DEFER_TASKRUN on 6.1, where queued
	 * completions wait for the next loop: a revoked connection's client
	 * never got its RST. */
	io_uring_prep_cancel64(sqe, kg_cookie(client ? KG_OP_CPOLL : KG_OP_BPOLL, c->slot, c->gen), 0);
	io_uring_sqe_set_data64(sqe, kg_cookie(KG_OP_IGNORE, 0, 0));
	if (client)
		c->cpoll_armed = false;
	else
		c->bpoll_armed = false;
}

/* Squeeze out the holes that closed connections left. */
static void kg_ready_compact(struct kg_worker *w)
{
	uint32_t i, j = 0;

	for (i = 0; i < w->n_ready; i++)
		if (w->ready[i])
			w->ready[j++] = w->ready[i];
	w->n_ready = j;
}

/*
 * The list has room for twice the table (kg_conn_table_grow). Outside a run
 * of the list, compacting leaves at most one entry per live connection;
 * a run starts compacted and each connection re-queues itself at most once,
 * so it never needs more than that either.
 */
void kg_loop_ready_push(struct kg_worker *w, struct kg_conn *c)
{
	if (c->on_ready)
		return;
	if (w->n_ready == 2 * w->cap && !w->running_ready)
		kg_ready_compact(w);
	if (w->n_ready == 2 * w->cap)
		return;		/* cannot happen (see above); its next event pumps it */
	c->on_ready = true;
	w->ready[w->n_ready++] = c;
}

void kg_loop_ready_drop(struct kg_worker *w, struct kg_conn *c)
{
	if (!c->on_ready)
		return;
	for (uint32_t j = 0; j < w->n_ready; j++)
		if (w->ready[j] == c)
			w->ready[j] = NULL;
	c->on_ready = false;
}

/*
 * Return the heap a burst of handshakes left free to the kernel once the
 * burst is over: a handshake's peak (OpenSSL's session, the peer chain,
 * transcript buffers) is far above what a connection keeps, and glibc holds
 * freed chunks for reuse, so after a storm of N handshakes the process stays
 * at the storm's peak. malloc_trim() gives back the free pages of every
 * arena (live memory is untouched), and kg_slab_trim() the connections'
 * empty slab pages, after one second in which no connection
 * opened or closed, if at least KG_TRIM_MIN_CHURN opens and closes came
 * since the last trim; otherwise a minute after the first open or close
 * since the last trim, so that steady traffic or a health check every few
 * seconds costs one trim a minute, not one a second.
 */
static void kg_heap_tick(struct kg_worker *w)
{
	/* opens + closes: every open counts in conns_total, and the closes are
	 * the opens no longer live */
	uint64_t all = 2 * __atomic_load_n(&w->stats.conns_total, __ATOMIC_RELAXED) - w->n_live;
	uint64_t churn = all - w->trim_churn;	/* since the last trim */
	bool quiet, overdue;

	if (all != w->quiet_churn) {
		w->quiet_churn = all;
		w->trim_quiet_ms = w->now_ms;
	}
	/* the minute counts from the first open or close after a trim, so a
	 * connection after a long idle spell is not trimmed mid-handshake */
	if (!churn) {
		w->trim_last_ms = w->now_ms;
		return;
	}
	quiet = w->now_ms - w->trim_quiet_ms >= KG_TRIM_QUIET_MS;
	overdue = w->now_ms - w->trim_last_ms >= KG_TRIM_MAX_MS;
	if (!(quiet && churn >= KG_TRIM_MIN_CHURN) && !overdue)
		return;
	if (!KG_SANITIZER_MALLOC)
		malloc_trim(0);
	/* and the pages of the connections' own objects that the burst
	 * left empty (slab.h) */
	kg_slab_trim(&w->conn_mem);
	kg_slab_trim(&w->cn_mem[0]);
	kg_slab_trim(&w->cn_mem[1]);
	kg_slab_trim(&w->keys_mem);
	w->trim_churn = all;
	w->trim_last_ms = w->now_ms;
	KG_STAT_ADD(&w->stats, heap_trims, 1);
	__atomic_store_n(&w->stats.heap_trim_conns,
			 __atomic_load_n(&w->stats.conns_total, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
	__atomic_store_n(&w->stats.heap_trim_live, (uint64_t)w->n_live, __ATOMIC_RELAXED);
}

static void kg_tick_arm(struct kg_worker *w)
{
	struct io_uring_sqe *sqe = kg_loop_sqe(w);

	io_uring_prep_timeout(sqe, &w->tick_ts, 0, 0);
	io_uring_sqe_set_data64(sqe, kg_cookie(KG_OP_TICK, 0, 0));
}

static void kg_event_arm(struct kg_worker *w)
{
	struct io_uring_sqe *sqe = kg_loop_sqe(w);

	io_uring_prep_read(sqe, w->efd, &w->efd_val, sizeof(w->efd_val), 0);
	io_uring_sqe_set_data64(sqe, kg_cookie(KG_OP_EVENT, 0, 0));
}

static void kg_dispatch(struct kg_worker *w, uint64_t ck, int res, unsigned flags)
{
	struct kg_conn *c;

	switch (kg_cookie_op(ck)) {
	case KG_OP_ACCEPT:
		kg_accept_event(w, kg_cookie_idx(ck), res, flags);
		break;
	case KG_OP_ACCEPT_RETRY:
		kg_accept_retry_event(w, kg_cookie_idx(ck));
		break;
	case KG_OP_CPOLL:
	case KG_OP_BPOLL:
		c = kg_conn_lookup(w, ck);
		if (c)
			kg_conn_event(w, c, kg_cookie_op(ck) == KG_OP_CPOLL, res, flags);
		break;
	case KG_OP_TICK:
		kg_conn_tick(w);
		kg_heap_tick(w);
		kg_tick_arm(w);
		break;
	case KG_OP_EVENT:
		kg_mbox_run(w);
		kg_event_arm(w);
		break;
	case KG_OP_IGNORE:
		break;
	}
}

/* Pumps that ran out of budget, in the order they did. Pumps may re-queue
 * (appended past cnt) or close connections (their entries become NULL). */
static void kg_run_ready(struct kg_worker *w)
{
	uint32_t cnt, j;

	kg_ready_compact(w);
	cnt = w->n_ready;
	w->running_ready = true;
	for (j = 0; j < cnt; j++) {
		struct kg_conn *c = w->ready[j];

		if (!c)
			continue;
		w->ready[j] = NULL;
		c->on_ready = false;
		if (c->state == KG_ST_PROXY)
			kg_conn_pump(w, c);
	}
	memmove(w->ready, w->ready + cnt, (w->n_ready - cnt) * sizeof(*w->ready));
	w->n_ready -= cnt;
	w->running_ready = false;
}

static int kg_wait(struct kg_worker *w)
{
	int rc;

	/* with pumps waiting, run the completions without waiting for one
	 * (a deferred ring runs them only when asked) */
	if (w->n_ready)
		return w->ring_deferred ? io_uring_submit_and_get_events(&w->ring) : io_uring_submit(&w->ring);
	if (!w->gw->wait_poll)
		return io_uring_submit_and_wait(&w->ring, 1);
	/* KTLSGW_WAIT_POLL=1: block in poll(2) on the ring, not in
	 * io_uring_enter(2). Valgrind does not treat the latter as blocking,
	 * so one idle worker would stall every thread. */
	rc = io_uring_submit(&w->ring);
	if (rc >= 0 && !io_uring_cq_ready(&w->ring)) {
		struct pollfd pfd = { .fd = w->ring.ring_fd, .events = POLLIN };

		(void)poll(&pfd, 1, -1);
	}
	return rc;
}

static void *kg_worker_main(void *arg)
{
	struct kg_worker *w = arg;
	struct io_uring_cqe *cqe;
	unsigned fault = kg_fault("ring"), submits = 0;
	int stop_seen = 0, rc;

	w->now_ms = kg_now_ms();
	/* the single issuer is this thread (Debian 12's liburing 2.3 declares
	 * io_uring_enable_rings() but its library does not export it) */
	if (w->ring_deferred &&
	    syscall(__NR_io_uring_register, w->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
		kg_loop_fatal(w, "io_uring_register(ENABLE_RINGS)", -errno);
	for (size_t i = 0; i < w->gw->n_lst; i++)
		kg_accept_arm(w, (unsigned)i);
	kg_tick_arm(w);
	kg_event_arm(w);
	for (;;) {
		rc = kg_wait(w);
		if (fault && ++submits >= fault)
			rc = -EIO;
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
			kg_loop_fatal(w, "io_uring_enter", rc);
		w->now_ms = kg_now_ms();
		/* Each completion leaves the CQ ring before it is handled: a
		 * handler that fills the SQ ring can then always submit (a full
		 * CQ ring would make io_uring_enter answer EBUSY). Only those
		 * ready now: a busy stream posts new ones as fast as they are
		 * handled, and the stop and mailbox checks below must not starve. */
		for (unsigned batch = io_uring_cq_ready(&w->ring);
		     batch && io_uring_peek_cqe(&w->ring, &cqe) == 0; batch--) {
			uint64_t ck = io_uring_cqe_get_data64(cqe);
			int res = cqe->res;
			unsigned flags = cqe->flags;

			io_uring_cqe_seen(&w->ring, cqe);
			kg_dispatch(w, ck, res, flags);
		}
		if (w->n_ready)
			kg_run_ready(w);

		rc = __atomic_load_n(&w->gw->stop, __ATOMIC_ACQUIRE);
		if (rc && rc != stop_seen) {
			stop_seen = rc;
			kg_accept_stop(w);
			if (rc >= 2) {
				kg_conn_close_all(w, KG_CLOSE_SHUTDOWN);
			} else if (!w->draining) {
				w->draining = true;
				w->drain_deadline = w->now_ms + w->gw->drain_timeout_ms;
			}
		}
		if (w->draining && w->now_ms >= w->drain_deadline)
			kg_conn_close_all(w, KG_CLOSE_SHUTDOWN);
		if (stop_seen && w->n_live == 0)
			break;
	}
	/* From now on requests are answered by their poster (mailbox.c):
	 * this worker has no connection left. */
	pthread_mutex_lock(&w->mbox_lock);
	w->loop_done = true;
	pthread_mutex_unlock(&w->mbox_lock);
	kg_mbox_run(w);
	{
		uint64_t one = 1;

		__atomic_add_fetch(&w->gw->workers_done, 1, __ATOMIC_ACQ_REL);
		if (w->gw->done_fd >= 0 && write(w->gw->done_fd, &one, sizeof(one)) < 0)
			kg_warn("worker %u: cannot report its end: %s", w->idx, strerror(errno));
	}
	return NULL;
}

/* ---- the worker's lifetime --------------------------------------------- */

struct kg_stats *kg_worker_stats(struct kg_worker *w)
{
	return &w->stats;
}

unsigned kg_conn_id_worker(uint64_t conn_id)
{
	return (unsigned)(conn_id & ((1U << KG_ID_WORKER_BITS) - 1));
}

int kg_worker_new(struct kg_gw *gw, unsigned idx, struct kg_worker **out)
{
	struct io_uring_params p = { 0 };
	struct kg_worker *w;
	char err[256];
	size_t i;
	int rc;

	*out = NULL;
	if (idx >= 1U << KG_ID_WORKER_BITS)
		return -E2BIG;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->gw = gw;
	w->idx = idx;
	w->efd = -1;
	w->ring.ring_fd = -1;
	kg_pool_init(&w->pool, NULL);
	kg_slab_init(&w->conn_mem, sizeof(struct kg_conn));
	kg_slab_init(&w->cn_mem[0], KG_CN_SLAB_SMALL);
	kg_slab_init(&w->cn_mem[1], KG_CN_SLAB);
	kg_slab_init(&w->keys_mem, sizeof(struct kg_ktls_keys));
	pthread_mutex_init(&w->mbox_lock, NULL);
	w->tick_ts.tv_nsec = KG_TICK_MS * 1000000LL;
	w->retry_ts.tv_nsec = 100 * 1000000LL;
	w->lfd = calloc(gw->n_lst, sizeof(*w->lfd));
	w->accepting = calloc(gw->n_lst, sizeof(*w->accepting));
	w->tokens = calloc(gw->n_lst, sizeof(*w->tokens));
	w->tokens_ms = calloc(gw->n_lst, sizeof(*w->tokens_ms));
	if (!w->lfd || !w->accepting || !w->tokens || !w->tokens_ms) {
		rc = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < gw->n_lst; i++)
		w->lfd[i] = -1;
	/*
	 * DEFER_TASKRUN (6.1+): completions are run only when this worker asks
	 * for them, once per loop, not whenever it enters the kernel. Measured
	 * with 64 request/response clients on 2 cores: p99 37.5 -> 17.1 ms and
	 * the requests served per connection 400-3,105 -> 799-1,776 in 5 s
	 * (README, "Tail latency, profiled"). It wants a single issuer: the ring starts disabled
	 * and the worker thread enables it (kg_worker_main), so no other thread
	 * may submit to it. Not under KTLSGW_WAIT_POLL (valgrind), whose
	 * poll(2) on the ring would see deferred work and never run it.
	 * Off unless KTLSGW_DEFER_TASKRUN=1: with it, the ThreadSanitizer
	 * reload soak's RSS grew by 6 MB over 1,000 reloads (1.5 MB allowed;
	 * flat without it, and flat in the plain build), not yet explained.
	 */
	p.flags = IORING_SETUP_SUBMIT_ALL;
	if (gw->defer_taskrun && !gw->wait_poll)
		p.flags |= IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_R_DISABLED;
	else
		p.flags |= IORING_SETUP_COOP_TASKRUN;
	rc = io_uring_queue_init_params(KG_RING_ENTRIES, &w->ring, &p);
	if (rc == -EINVAL && (p.flags & IORING_SETUP_DEFER_TASKRUN)) {	/* before 6.1 */
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
		rc = io_uring_queue_init_params(KG_RING_ENTRIES, &w->ring, &p);
	}
	if (rc == -EINVAL) {	/* older kernels: plain ring */
		memset(&p, 0, sizeof(p));
		rc = io_uring_queue_init_params(KG_RING_ENTRIES, &w->ring, &p);
	}
	w->ring_deferred = !rc && (p.flags & IORING_SETUP_DEFER_TASKRUN);
	if (rc) {
		kg_err("worker %u: io_uring_queue_init: %s; io_uring may be disabled "
		       "(sysctl kernel.io_uring_disabled) or RLIMIT_MEMLOCK too low", idx,
		       strerror(-rc));
		w->ring.ring_fd = -1;
		goto fail;
	}
	w->efd = eventfd(0, EFD_CLOEXEC);
	if (w->efd < 0) {
		rc = -errno;
		goto fail;
	}
	for (i = 0; i < gw->n_lst; i++) {
		rc = kg_accept_listen(&gw->lst[i], idx == 0, err, sizeof(err));
		if (rc < 0) {
			kg_err("listener %s: %s", gw->lst[i].conf->name, err);
			goto fail;
		}
		w->lfd[i] = rc;
	}
	rc = kg_conn_table_grow(w);
	if (rc)
		goto fail;
	*out = w;
	return 0;
fail:
	kg_worker_join_free(w);
	return rc;
}

int kg_worker_start(struct kg_worker *w)
{
	int rc = pthread_create(&w->th, NULL, kg_worker_main, w);

	if (rc)
		return -rc;
	w->started = true;
	return 0;
}

void kg_worker_kick(struct kg_worker *w)
{
	uint64_t one = 1;

	if (w && w->efd >= 0 && write(w->efd, &one, sizeof(one)) < 0)
		kg_warn("worker %u: cannot wake: %s", w->idx, strerror(errno));
}

void kg_worker_join_free(struct kg_worker *w)
{
	size_t i;

	if (!w)
		return;
	if (w->started) {
		pthread_join(w->th, NULL);
		kg_mbox_run(w);	/* answer what came after the loop ended */
	}
	for (i = 0; w->lfd && i < w->gw->n_lst; i++)
		if (w->lfd[i] >= 0)
			close(w->lfd[i]);
	if (w->ring.ring_fd >= 0) {
		kg_conn_close_all(w, KG_CLOSE_SHUTDOWN);
		io_uring_queue_exit(&w->ring);
	}
	if (w->efd >= 0)
		close(w->efd);
	kg_pool_release(&w->pool);
	kg_slab_release(&w->conn_mem);
	kg_slab_release(&w->cn_mem[0]);
	kg_slab_release(&w->cn_mem[1]);
	kg_slab_release(&w->keys_mem);
	free(w->conns);
	free(w->gens);
	free(w->free_slots);
	free(w->ready);
	free(w->lfd);
	free(w->accepting);
	free(w->tokens);
	free(w->tokens_ms);
	free(w->mbox);
	pthread_mutex_destroy(&w->mbox_lock);
	free(w);
}
