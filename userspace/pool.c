/*
 * The pool of one thread's buffers and splice pipes, and the kernel calls
 * the splice path makes (pump.h's kg_pump_sys). Moves no byte itself: the
 * copy and splice paths are pump.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ktls.h"
#include "pump.h"

static ssize_t kg_sys_splice(int fd_in, int fd_out, size_t len)
{
	return splice(fd_in, NULL, fd_out, NULL, len, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
}

const struct kg_pump_sys kg_pump_sys_kernel = {
	.splice = kg_sys_splice,
	.recv_record = kg_ktls_recv_record,
	.send_alert = kg_ktls_send_alert,
	.recv = NULL,
	.rekey = kg_ktls_rekey,
	.send_keyupdate = kg_ktls_send_keyupdate,
};

void kg_pool_init(struct kg_pool *p, const struct kg_pump_sys *sys)
{
	memset(p, 0, sizeof(*p));
	p->sys = sys ? sys : &kg_pump_sys_kernel;
}

void kg_pool_release(struct kg_pool *p)
{
	while (p->n_pipes) {
		p->n_pipes--;
		close(p->pipes[p->n_pipes][0]);
		close(p->pipes[p->n_pipes][1]);
	}
	while (p->bufs) {
		struct kg_buf *b = p->bufs;

		p->bufs = b->next;
		free(b);
	}
	p->n_bufs = 0;
}

struct kg_buf *kg_buf_get(struct kg_pool *p, struct kg_buf **slot)
{
	struct kg_buf *b = *slot;

	if (b)
		return b;
	b = p->bufs;
	if (b) {
		p->bufs = b->next;
		p->n_bufs--;
	} else {
		b = malloc(sizeof(*b));
		if (!b)
			return NULL;
	}
	b->off = b->len = 0;
	b->next = NULL;
	*slot = b;
	return b;
}

/* Give a buffer back: idle connections hold none. */
void kg_buf_put(struct kg_pool *p, struct kg_buf **slot)
{
	struct kg_buf *b = *slot;

	if (!b)
		return;
	*slot = NULL;
	if (p->n_bufs < KG_BUF_CACHE) {
		b->next = p->bufs;
		p->bufs = b;
		p->n_bufs++;
	} else {
		free(b);
	}
}

int kg_pipe_get(struct kg_pool *p, int fds[2])
{
	if (fds[0] >= 0)
		return 0;
	if (p->n_pipes) {
		p->n_pipes--;
		fds[0] = p->pipes[p->n_pipes][0];
		fds[1] = p->pipes[p->n_pipes][1];
		return 0;
	}
	return pipe2(fds, O_NONBLOCK | O_CLOEXEC) ? -errno : 0;
}

/* Only an empty pipe may be reused: a pipe with bytes in it is closed. */
void kg_pipe_put(struct kg_pool *p, int fds[2], bool empty)
{
	if (fds[0] < 0)
		return;
	if (empty && p->n_pipes < KG_PIPE_CACHE) {
		p->pipes[p->n_pipes][0] = fds[0];
		p->pipes[p->n_pipes][1] = fds[1];
		p->n_pipes++;
	} else {
		close(fds[0]);
		close(fds[1]);
	}
	fds[0] = fds[1] = -1;
}

void kg_pool_put_conn(struct kg_pool *p, struct kg_conn *c)
{
	kg_buf_put(p, &c->c2b);
	kg_buf_put(p, &c->b2c);
	kg_pipe_put(p, c->pc2b, c->pc2b_len == 0);
	kg_pipe_put(p, c->pb2c, c->pb2c_len == 0);
	c->pc2b_len = c->pb2c_len = 0;
}

