/* cmocka tests for the worker loop's bookkeeping that no integration test
 * can reach: the ready list never drops a push (it has room for twice the
 * connection table and squeezes out the holes closed connections leave),
 * and a socket that linger already closed (fd -1) is never polled again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "conn.h"
#include "loop.h"

static struct kg_worker *table_worker(struct kg_conn **conns)
{
	struct kg_worker *w = calloc(1, sizeof(*w));

	assert_non_null(w);
	assert_int_equal(kg_conn_table_grow(w), 0);
	assert_int_equal(w->cap, 256);	/* the caller's array */
	for (uint32_t i = 0; i < w->cap; i++) {
		conns[i] = calloc(1, sizeof(**conns));
		assert_non_null(conns[i]);
		conns[i]->state = KG_ST_PROXY;
		conns[i]->slot = i;
	}
	return w;
}

static unsigned listed(const struct kg_worker *w, const struct kg_conn *c)
{
	unsigned n = 0;

	for (uint32_t j = 0; j < w->n_ready; j++)
		n += w->ready[j] == c;
	return n;
}

static void free_worker(struct kg_worker *w, struct kg_conn **conns)
{
	for (uint32_t i = 0; i < w->cap; i++)
		free(conns[i]);
	free(w->conns);
	free(w->gens);
	free(w->free_slots);
	free(w->ready);
	free(w);
}

/* A push that found no room (the list used to grow by realloc, which can
 * fail) left its connection stalled until idle_timeout. A full table, every connection re-queued
 * while the list is run (the list's worst case), then connections closed and
 * woken again while the list is full of holes: every push is kept, once. */
static void test_ready_push_never_drops(void **state)
{
	struct kg_conn *conns[256];
	struct kg_worker *w = table_worker(conns);
	uint32_t cap = w->cap, cnt;

	assert_int_equal(cap, 256);
	for (uint32_t i = 0; i < cap; i++) {
		kg_loop_ready_push(w, conns[i]);
		kg_loop_ready_push(w, conns[i]);	/* a second event: no second entry */
	}
	assert_int_equal(w->n_ready, cap);

	/* a run of the list: each entry taken, and its pump re-queues it */
	w->running_ready = true;
	cnt = w->n_ready;
	for (uint32_t j = 0; j < cnt; j++) {
		struct kg_conn *c = w->ready[j];

		w->ready[j] = NULL;
		c->on_ready = false;
		kg_loop_ready_push(w, c);
		assert_true(c->on_ready);
	}
	w->running_ready = false;
	assert_int_equal(w->n_ready, 2 * cap);	/* the list is full: half holes */

	/* closes and new events with the list full */
	for (uint32_t i = 0; i < cap; i += 3) {
		kg_loop_ready_drop(w, conns[i]);
		assert_int_equal(listed(w, conns[i]), 0);
		kg_loop_ready_push(w, conns[i]);
		assert_true(conns[i]->on_ready);
		assert_int_equal(listed(w, conns[i]), 1);
	}
	for (uint32_t i = 0; i < cap; i++)
		assert_int_equal(listed(w, conns[i]), 1);
	free_worker(w, conns);
}

/* After linger closed a socket (fd -1), re-arming its poll queued a
 * request on fd -1 that failed with EBADF, again and again. The run of the
 * list above mirrors kg_run_ready (static in loop.c): the two must agree. */
static void test_poll_arm_skips_closed_socket(void **state)
{
	struct kg_worker *w = calloc(1, sizeof(*w));
	struct kg_conn c = { .cfd = -1, .bfd = -1 };
	int sv[2];

	assert_non_null(w);
	if (io_uring_queue_init(8, &w->ring, 0) < 0) {
		free(w);
		skip();		/* io_uring refused here (seccomp, sysctl) */
	}
	kg_loop_poll_arm(w, &c, true);
	kg_loop_poll_arm(w, &c, false);
	assert_int_equal(io_uring_sq_ready(&w->ring), 0);
	assert_false(c.cpoll_armed);
	assert_false(c.bpoll_armed);

	/* the check of the check: an open socket is armed */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	c.cfd = sv[0];
	kg_loop_poll_arm(w, &c, true);
	assert_int_equal(io_uring_sq_ready(&w->ring), 1);
	assert_true(c.cpoll_armed);
	io_uring_queue_exit(&w->ring);
	close(sv[0]);
	close(sv[1]);
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ready_push_never_drops),
		cmocka_unit_test(test_poll_arm_skips_closed_socket),
	};

	return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
