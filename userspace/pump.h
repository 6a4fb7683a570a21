/*
 * The data pump: moves one connection's bytes between the client and the
 * backend, by userspace TLS (OpenSSL) or by splice on kernel TLS sockets.
 * Each leg (the client's, the origin's) is TLS in userspace, TLS in the
 * kernel (per direction) or plain TCP; a direction is spliced when the
 * kernel does both its ends, else copied through a buffer.
 * It knows nothing of io_uring or of workers: it is given two non-blocking
 * sockets, a pool of buffers and pipes, and a budget, and says what the
 * connection needs next. A unit test drives it over loopback sockets.
 */
#ifndef KG_PUMP_H
#define KG_PUMP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "conn.h"

#define KG_PIPE_CAP (64 * 1024)	/* the default pipe size: 16 pages */
#define KG_PIPE_CACHE 64	/* empty pipes kept per pool */
#define KG_BUF_CACHE 64		/* free buffers kept per pool */

/* The kernel calls the splice path makes: swapped by unit tests, which
 * have no kernel TLS to read control records from. */
struct kg_pump_sys {
	/* splice(2), non-blocking: bytes moved, 0 at EOF, -1 with errno */
	ssize_t (*splice)(int fd_in, int fd_out, size_t len);
	/* kg_ktls_recv_record() */
	int (*recv_record)(int fd, uint8_t *buf, size_t len, size_t *got);
	/* kg_ktls_send_alert() */
	int (*send_alert)(int fd, uint8_t level, uint8_t desc);
	/* recv(2) of decrypted bytes from a kTLS receive socket whose other
	 * end is copied in userspace (MSG_DONTWAIT); NULL: recv(2) itself */
	ssize_t (*recv)(int fd, void *buf, size_t len);
	/* kg_ktls_rekey() and kg_ktls_send_keyupdate(): TLS 1.3 KeyUpdates
	 * followed in the kernel; NULL: a KeyUpdate ends the connection */
	int (*rekey)(int fd, struct kg_ktls_keys *k, int dir);
	int (*send_keyupdate)(int fd, bool request);
};

extern const struct kg_pump_sys kg_pump_sys_kernel;

/* Buffers and pipes for the connections of one thread. */
struct kg_pool {
	const struct kg_pump_sys *sys;
	struct kg_buf *bufs;
	unsigned n_bufs;
	int pipes[KG_PIPE_CACHE][2];
	unsigned n_pipes;
};

void kg_pool_init(struct kg_pool *p, const struct kg_pump_sys *sys);
/* Free every cached buffer and pipe. */
void kg_pool_release(struct kg_pool *p);
/* Release what @c holds (buffers, pipes); pending bytes in them are lost. */
void kg_pool_put_conn(struct kg_pool *p, struct kg_conn *c);
/* For pump.c: the buffer in *@slot, or a pooled or new one put there
 * (NULL: out of memory); give one back (idle connections hold none). */
struct kg_buf *kg_buf_get(struct kg_pool *p, struct kg_buf **slot);
void kg_buf_put(struct kg_pool *p, struct kg_buf **slot);
/* A pipe into @fds unless it has one: 0 or -errno. Only an empty pipe goes
 * back to the pool; one with bytes in it is closed. */
int kg_pipe_get(struct kg_pool *p, int fds[2]);
void kg_pipe_put(struct kg_pool *p, int fds[2], bool empty);

enum kg_pump_verdict {
	KG_PUMP_WAIT,		/* every side waits for readiness */
	KG_PUMP_MORE,		/* the budget ran out with work left: call again soon */
	KG_PUMP_FINISHED,	/* both directions ended cleanly: close the connection */
	KG_PUMP_FAILED,		/* *why and c->detail say what broke */
};

/*
 * Move bytes both ways for at most @budget rounds. Half-closes are passed on
 * as they come (close_notify from the client becomes a FIN to the backend, a
 * FIN from the backend becomes close_notify + FIN to the client). On
 * KG_PUMP_FAILED, *@why is the close reason: KG_CLOSE_CLIENT_ERROR,
 * KG_CLOSE_BACKEND_ERROR, KG_CLOSE_TRUNCATED (client EOF without
 * close_notify), KG_CLOSE_KEYUPDATE or KG_CLOSE_INTERNAL (out of memory).
 * *@progress tells whether any byte or EOF moved.
 */
enum kg_pump_verdict kg_pump_run(struct kg_pool *pool, struct kg_conn *c, unsigned budget,
				 bool *progress, enum kg_close_reason *why);

/* Check SO_ERROR on the sides whose poll reported POLLERR (KG_CF_C_ERR,
 * KG_CF_B_ERR): a reset peer must end the connection even while nothing
 * reads its socket. Returns the close reason, or KG_CLOSE_NONE. */
enum kg_close_reason kg_pump_check_errors(struct kg_conn *c);

/* Send close_notify to the client, through OpenSSL or the kernel.
 * Returns 0, -EAGAIN when the socket is full, or -EPIPE, sending nothing,
 * while bytes for the client are pending (kg_pump_pending_to_client): a
 * close_notify then would make a truncated stream look whole. */
int kg_pump_close_notify(struct kg_pool *pool, struct kg_conn *c);

/* True while bytes for the client sit in our buffer or pipe. */
bool kg_pump_pending_to_client(const struct kg_conn *c);
/* True while bytes for the backend sit in our buffer or pipe. */
bool kg_pump_pending_to_backend(const struct kg_conn *c);

#endif
