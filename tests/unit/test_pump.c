/*
 * cmocka tests for the data pump, without io_uring: real loopback TCP
 * sockets, a real OpenSSL session on the client leg, and for the kTLS
 * splice path a swapped splice/recv_record seam (this host need not have
 * kernel TLS) that stops at a scripted control record, as the kernel does.
 *
 *   client (test, TLS) ── cfd │ pump │ bfd ── backend (test, plain)
 *
 * and, for the origin leg, with either end swapped: a TLS origin (the
 * gateway is its TLS client), a plain client (tls = off).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "ktls.h"
#include "pki.h"
#include "pump.h"
#include "kg_test.h"

#define SMALL_BUF (64 * 1024)	/* socket buffers, so backpressure comes fast */

static char dir[256];
static SSL_CTX *sctx, *cctx;

/* One proxied connection under test. */
struct rig {
	int client;		/* the client's socket (TLS) */
	int backend;		/* the backend's socket (plain) */
	SSL *cssl;		/* the client's TLS session, NULL for a plain client */
	SSL *osrv;		/* a TLS origin's session (the backend's side), or NULL */
	struct kg_conn c;	/* the gateway's side: cfd, bfd, SSL, bssl */
	struct kg_hs_info bhs;	/* c.bhs */
	struct kg_pool pool;
};

static void set_nonblock(int fd)
{
	assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

static void small_buffers(int fd)
{
	int sz = SMALL_BUF, one = 1;

	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)), 0);
	assert_int_equal(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), 0);
}

/* A connected loopback TCP pair, both ends non-blocking. */
static void tcp_pair(int *a, int *b)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&sin, &sl), 0);
	*a = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(*a >= 0);
	small_buffers(*a);
	assert_int_equal(connect(*a, (struct sockaddr *)&sin, sizeof(sin)), 0);
	*b = accept(l, NULL, NULL);
	assert_true(*b >= 0);
	small_buffers(*b);
	close(l);
	set_nonblock(*a);
	set_nonblock(*b);
}

static int group_setup(void **state)
{
	char path[512], key[512];

	if (kg_test_pki(dir, sizeof(dir), "pump", false))
		return -1;
	sctx = SSL_CTX_new(TLS_server_method());
	cctx = SSL_CTX_new(TLS_client_method());
	snprintf(path, sizeof(path), "%s/server.pem", dir);
	snprintf(key, sizeof(key), "%s/server.key", dir);
	if (!sctx || !cctx || SSL_CTX_use_certificate_chain_file(sctx, path) != 1 ||
	    SSL_CTX_use_PrivateKey_file(sctx, key, SSL_FILETYPE_PEM) != 1)
		return -1;
	/* as the gateway sets them (tls.c) */
	SSL_CTX_set_mode(sctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_mode(cctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_read_ahead(sctx, 1);
	SSL_CTX_set_num_tickets(sctx, 0);
	return 0;
}

static int group_teardown(void **state)
{
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	return kg_test_rmdir(dir);
}

/* A TLS handshake between two non-blocking sessions on connected sockets:
 * @cl connects, @sv accepts. */
static void tls_pair(SSL **cl, int cfd, SSL **sv, int sfd)
{
	int done_c = 0, done_s = 0, n;

	*cl = SSL_new(cctx);
	*sv = SSL_new(sctx);
	assert_non_null(*cl);
	assert_non_null(*sv);
	SSL_set_fd(*cl, cfd);
	SSL_set_fd(*sv, sfd);
	for (n = 0; n < 10000 && !(done_c && done_s); n++) {
		if (!done_c)
			done_c = SSL_connect(*cl) == 1;
		if (!done_s)
			done_s = SSL_accept(*sv) == 1;
		if (!(done_c && done_s))
			usleep(100);	/* polling a loopback handshake: progress, not timing */
	}
	assert_true(done_c && done_s);
}

/* Connect both legs and finish their TLS handshakes: the client's unless
 * @plain_client (tls = off), the origin's when @tls_origin (backend_tls). */
static void rig_up_legs(struct rig *r, const struct kg_pump_sys *sys, bool plain_client,
			bool tls_origin)
{
	int cfd, bfd;

	memset(r, 0, sizeof(*r));
	tcp_pair(&r->client, &cfd);
	tcp_pair(&bfd, &r->backend);
	r->c.cfd = cfd;
	r->c.bfd = bfd;
	r->c.pc2b[0] = r->c.pc2b[1] = r->c.pb2c[0] = r->c.pb2c[1] = -1;
	r->c.state = KG_ST_PROXY;
	r->c.bhs = &r->bhs;
	kg_pool_init(&r->pool, sys);
	if (!plain_client)
		tls_pair(&r->cssl, r->client, &r->c.ssl, cfd);
	if (tls_origin)
		tls_pair(&r->c.bssl, bfd, &r->osrv, r->backend);
}

static void rig_up(struct rig *r, const struct kg_pump_sys *sys)
{
	rig_up_legs(r, sys, false, false);
}

static void rig_down(struct rig *r)
{
	SSL_free(r->cssl);
	SSL_free(r->c.ssl);
	SSL_free(r->osrv);
	SSL_free(r->c.bssl);
	kg_pool_put_conn(&r->pool, &r->c);
	kg_conn_detail_free(&r->c);
	kg_pool_release(&r->pool);
	close(r->client);
	close(r->backend);
	if (r->c.cfd >= 0)
		close(r->c.cfd);
	if (r->c.bfd >= 0)
		close(r->c.bfd);
}

/* Run the pump the way the worker does: again at once while it says MORE. */
static enum kg_pump_verdict pump(struct rig *r, enum kg_close_reason *why)
{
	enum kg_pump_verdict v;
	bool progress;
	int rounds = 0;

	do {
		v = kg_pump_run(&r->pool, &r->c, 16, &progress, why);
	} while (v == KG_PUMP_MORE && ++rounds < 1000);
	return v;
}

static void fill_pattern(unsigned char *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)((i * 131 + seed) >> 3);
}

/* The two ends of a direction: each writes and reads through its TLS
 * session when it has one, else through its plain socket. */
static ssize_t end_write(struct rig *r, bool client, const unsigned char *p, size_t len)
{
	SSL *ssl = client ? r->cssl : r->osrv;

	if (ssl)
		return SSL_write(ssl, p, (int)(len > 16384 ? 16384 : len));
	return send(client ? r->client : r->backend, p, len, MSG_NOSIGNAL);
}

static ssize_t end_read(struct rig *r, bool client, unsigned char *p, size_t len)
{
	SSL *ssl = client ? r->cssl : r->osrv;

	if (ssl)
		return SSL_read(ssl, p, (int)len);
	return recv(client ? r->client : r->backend, p, len, 0);
}

/* Stream through the pump, client → backend when @c2b, else backward: the
 * source writes @len bytes while the sink reads @want bytes, or nothing
 * when @sink_reads is false. Returns what the sink received, or what the
 * source could send when the sink does not read. */
static size_t stream(struct rig *r, bool c2b, const unsigned char *src, size_t len,
		     unsigned char *dst, size_t want, bool sink_reads)
{
	size_t sent = 0, got = 0;
	enum kg_close_reason why;
	int idle = 0;

	while ((sink_reads ? got < want : sent < len) && idle < 2000) {
		bool moved = false;
		ssize_t n;

		if (sent < len && (n = end_write(r, c2b, src + sent, len - sent)) > 0) {
			sent += (size_t)n;
			moved = true;
		}
		assert_int_not_equal(pump(r, &why), KG_PUMP_FAILED);
		if (sink_reads && (n = end_read(r, !c2b, dst + got, want - got)) > 0) {
			got += (size_t)n;
			moved = true;
		}
		if (!sink_reads && !moved)
			break;
		idle = moved ? 0 : idle + 1;
		if (!moved)
			usleep(200);
	}
	return sink_reads ? got : sent;
}

/* Read what the peer sends until it waits; returns the count. */
static size_t drain_plain(int fd, unsigned char *dst, size_t cap)
{
	size_t got = 0;
	ssize_t n;

	while (got < cap && (n = recv(fd, dst + got, cap - got, 0)) > 0)
		got += (size_t)n;
	return got;
}

static void test_pump_copies_both_ways(void **state)
{
	enum { LEN = 1 << 20 };
	unsigned char *a = malloc(LEN), *b = malloc(LEN);
	struct rig r;

	rig_up(&r, NULL);
	fill_pattern(a, LEN, 1);
	assert_int_equal(stream(&r, true, a, LEN, b, LEN, true), LEN);
	assert_memory_equal(a, b, LEN);
	fill_pattern(a, LEN, 2);
	memset(b, 0, LEN);
	assert_int_equal(stream(&r, false, a, LEN, b, LEN, true), LEN);
	assert_memory_equal(a, b, LEN);
	assert_int_equal(r.c.bytes_in, LEN);
	assert_int_equal(r.c.bytes_out, LEN);
	rig_down(&r);
	free(a);
	free(b);
}

/* A backend that stops reading: the pump waits with one buffer held,
 * loses nothing, and resumes when the backend reads again. */
static void test_pump_backpressure_to_backend(void **state)
{
	enum { LEN = 2 << 20 };
	unsigned char *a = malloc(LEN), *b = malloc(LEN);
	enum kg_close_reason why;
	size_t sent, got;
	struct rig r;

	rig_up(&r, NULL);
	fill_pattern(a, LEN, 3);
	sent = stream(&r, true, a, LEN, b, 0, false);
	assert_true(sent < LEN);		/* the client was pushed back */
	assert_int_equal(pump(&r, &why), KG_PUMP_WAIT);
	assert_non_null(r.c.c2b);		/* partial write: bytes wait in our buffer */
	assert_true(r.c.c2b->len > 0);
	assert_true(r.c.c2b->len <= KG_BUF_SIZE);
	/* now the backend reads everything, and the client finishes */
	got = drain_plain(r.backend, b, LEN);
	got += stream(&r, true, a + sent, LEN - sent, b + got, LEN - got, true);
	assert_int_equal(got, LEN);
	assert_memory_equal(a, b, LEN);
	rig_down(&r);
	free(a);
	free(b);
}

static void test_pump_backpressure_to_client(void **state)
{
	enum { LEN = 2 << 20 };
	unsigned char *a = malloc(LEN), *b = malloc(LEN);
	enum kg_close_reason why;
	size_t sent, got = 0;
	struct rig r;
	int n;

	rig_up(&r, NULL);
	fill_pattern(a, LEN, 4);
	sent = stream(&r, false, a, LEN, b, 0, false);
	assert_true(sent < LEN);
	assert_int_equal(pump(&r, &why), KG_PUMP_WAIT);
	assert_true(kg_pump_pending_to_client(&r.c));
	while ((n = SSL_read(r.cssl, b + got, (int)(LEN - got))) > 0)
		got += (size_t)n;
	got += stream(&r, false, a + sent, LEN - sent, b + got, LEN - got, true);
	assert_int_equal(got, LEN);
	assert_memory_equal(a, b, LEN);
	rig_down(&r);
	free(a);
	free(b);
}

/* Wait until the client's TLS read says something other than "wait". */
static int client_read(struct rig *r, unsigned char *buf, int len, int *err)
{
	enum kg_close_reason why;

	for (int i = 0; i < 5000; i++) {
		int n = SSL_read(r->cssl, buf, len);

		*err = n > 0 ? SSL_ERROR_NONE : SSL_get_error(r->cssl, n);
		if (n > 0 || *err != SSL_ERROR_WANT_READ)
			return n;
		(void)pump(r, &why);
		usleep(200);
	}
	fail_msg("the client never heard back");
	return -1;
}

static ssize_t backend_read(struct rig *r, unsigned char *buf, size_t len)
{
	enum kg_close_reason why;

	for (int i = 0; i < 5000; i++) {
		ssize_t n;

		if (r->osrv) {
			int e;

			n = SSL_read(r->osrv, buf, (int)len);
			e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(r->osrv, (int)n);
			if (n > 0)
				return n;
			if (e == SSL_ERROR_ZERO_RETURN)
				return 0;	/* close_notify: the origin leg's clean end */
			assert_int_equal(e, SSL_ERROR_WANT_READ);
		} else {
			n = recv(r->backend, buf, len, 0);
			if (n >= 0)
				return n;
			assert_int_equal(errno, EAGAIN);
		}
		(void)pump(r, &why);
		usleep(200);
	}
	fail_msg("the backend never heard anything");
	return -1;
}

/* close_notify from the client: the backend sees a FIN, yet can still
 * answer; its FIN becomes close_notify + FIN, and the pump is finished. */
static void test_pump_client_half_close(void **state)
{
	unsigned char buf[64];
	enum kg_close_reason why;
	struct rig r;
	int err;

	rig_up(&r, NULL);
	assert_int_equal(SSL_write(r.cssl, "ping", 4), 4);
	assert_int_equal(backend_read(&r, buf, sizeof(buf)), 4);
	(void)SSL_shutdown(r.cssl);
	assert_int_equal(backend_read(&r, buf, sizeof(buf)), 0);	/* FIN */
	assert_true(r.c.flags & KG_CF_B_WR_SHUT);
	assert_int_equal(send(r.backend, "pong", 4, 0), 4);
	assert_int_equal(client_read(&r, buf, sizeof(buf), &err), 4);
	assert_memory_equal(buf, "pong", 4);
	assert_int_equal(shutdown(r.backend, SHUT_WR), 0);
	assert_int_equal(client_read(&r, buf, sizeof(buf), &err), 0);
	assert_int_equal(err, SSL_ERROR_ZERO_RETURN);		/* close_notify, not a bare FIN */
	assert_int_equal(pump(&r, &why), KG_PUMP_FINISHED);
	rig_down(&r);
}

/* The backend finishes first: the client gets close_notify and can still
 * send; its close_notify then ends the connection. */
static void test_pump_backend_half_close(void **state)
{
	unsigned char buf[64];
	enum kg_close_reason why;
	struct rig r;
	int err;

	rig_up(&r, NULL);
	assert_int_equal(shutdown(r.backend, SHUT_WR), 0);
	assert_int_equal(client_read(&r, buf, sizeof(buf), &err), 0);
	assert_int_equal(err, SSL_ERROR_ZERO_RETURN);
	assert_true(r.c.flags & KG_CF_C_WR_SHUT);
	assert_int_equal(SSL_write(r.cssl, "late", 4), 4);
	assert_int_equal(backend_read(&r, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "late", 4);
	(void)SSL_shutdown(r.cssl);
	assert_int_equal(backend_read(&r, buf, sizeof(buf)), 0);
	assert_int_equal(pump(&r, &why), KG_PUMP_FINISHED);
	rig_down(&r);
}

/* A FIN with no close_notify may be a truncation attack or a crash: the
 * bytes before it are delivered, but the backend is not given a clean end. */
static void test_pump_fin_without_close_notify(void **state)
{
	unsigned char buf[64];
	enum kg_close_reason why = KG_CLOSE_NONE;
	enum kg_pump_verdict v = KG_PUMP_WAIT;
	struct rig r;

	rig_up(&r, NULL);
	assert_int_equal(SSL_write(r.cssl, "data", 4), 4);
	assert_int_equal(backend_read(&r, buf, sizeof(buf)), 4);
	assert_int_equal(shutdown(r.client, SHUT_WR), 0);	/* FIN, no TLS alert */
	for (int i = 0; i < 5000 && v != KG_PUMP_FAILED; i++) {
		v = pump(&r, &why);
		if (v != KG_PUMP_FAILED)
			usleep(200);
	}
	assert_int_equal(v, KG_PUMP_FAILED);
	assert_int_equal(why, KG_CLOSE_TRUNCATED);
	assert_false(r.c.flags & KG_CF_B_WR_SHUT);
	assert_int_equal(recv(r.backend, buf, sizeof(buf), 0), -1);	/* no FIN was passed on */
	assert_int_equal(errno, EAGAIN);
	rig_down(&r);
}

static void abort_socket(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(fd);
}

static enum kg_pump_verdict pump_until_failed(struct rig *r, enum kg_close_reason *why)
{
	enum kg_pump_verdict v = KG_PUMP_WAIT;

	for (int i = 0; i < 5000 && v != KG_PUMP_FAILED; i++) {
		v = pump(r, why);
		if (v != KG_PUMP_FAILED)
			usleep(200);
	}
	return v;
}

/* An RST from the client in the middle of a stream is a client error. */
static void test_pump_client_reset_mid_stream(void **state)
{
	unsigned char buf[64];
	enum kg_close_reason why;
	struct rig r;

	rig_up(&r, NULL);
	assert_int_equal(SSL_write(r.cssl, "data", 4), 4);
	assert_int_equal(backend_read(&r, buf, sizeof(buf)), 4);
	abort_socket(r.client);
	r.client = socket(AF_INET, SOCK_STREAM, 0);	/* rig_down closes it */
	assert_int_equal(pump_until_failed(&r, &why), KG_PUMP_FAILED);
	assert_int_equal(why, KG_CLOSE_CLIENT_ERROR);
	assert_non_null(strstr(kg_conn_detail(&r.c), "reset"));
	rig_down(&r);
}

/* An RST from the backend while the client still sends. */
static void test_pump_backend_reset_mid_stream(void **state)
{
	enum { LEN = 1 << 20 };
	unsigned char *a = malloc(LEN);
	enum kg_close_reason why;
	struct rig r;

	rig_up(&r, NULL);
	fill_pattern(a, LEN, 5);
	abort_socket(r.backend);
	r.backend = socket(AF_INET, SOCK_STREAM, 0);
	for (size_t sent = 0, i = 0; sent < LEN && i < 100; i++) {
		int n = SSL_write(r.cssl, a + sent, 16384);

		if (n > 0)
			sent += (size_t)n;
		if (pump(&r, &why) == KG_PUMP_FAILED)
			break;
	}
	assert_int_equal(pump_until_failed(&r, &why), KG_PUMP_FAILED);
	assert_int_equal(why, KG_CLOSE_BACKEND_ERROR);
	assert_non_null(strstr(kg_conn_detail(&r.c), "backend"));
	rig_down(&r);
	free(a);
}

/* A backend that resets while the client is idle: nothing to send, so the
 * reset is met by the read; it must end the connection as an error, never
 * as the backend's clean end (which would give the client close_notify). */
static void test_pump_backend_reset_idle(void **state)
{
	enum kg_close_reason why;
	struct rig r;

	rig_up(&r, NULL);
	abort_socket(r.backend);
	r.backend = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(pump_until_failed(&r, &why), KG_PUMP_FAILED);
	assert_int_equal(why, KG_CLOSE_BACKEND_ERROR);
	assert_false(r.c.flags & KG_CF_C_WR_SHUT);	/* no close_notify toward the client */
	rig_down(&r);
}

/* ---- the origin leg: TLS toward the backend, plain clients ------------- */

static void send_plain(int fd, const unsigned char *p, size_t len);

/* TLS on both legs: 1 MiB each way, intact, counted on the client leg. */
static void test_pump_tls_origin_copies_both_ways(void **state)
{
	enum { LEN = 1 << 20 };
	unsigned char *a = malloc(LEN), *b = malloc(LEN);
	struct rig r;

	rig_up_legs(&r, NULL, false, true);
	fill_pattern(a, LEN, 11);
	assert_int_equal(stream(&r, true, a, LEN, b, LEN, true), LEN);
	assert_memory_equal(a, b, LEN);
	fill_pattern(a, LEN, 12);
	memset(b, 0, LEN);
	assert_int_equal(stream(&r, false, a, LEN, b, LEN, true), LEN);
	assert_memory_equal(a, b, LEN);
	assert_int_equal(r.c.bytes_in, LEN);
	assert_int_equal(r.c.bytes_out, LEN);
	assert_true(r.c.flags & KG_CF_B_DATA);
	rig_down(&r);
	free(a);
	free(b);
}

/* An origin that stops reading: the pump holds what it could not encrypt
 * and send, loses nothing, and resumes. */
static void test_pump_tls_origin_backpressure(void **state)
{
	enum { LEN = 2 << 20 };
	unsigned char *a = malloc(LEN), *b = malloc(LEN);
	enum kg_close_reason why;
	size_t sent, got;
	struct rig r;

	rig_up_legs(&r, NULL, false, true);
	fill_pattern(a, LEN, 13);
	sent = stream(&r, true, a, LEN, b, 0, false);
	assert_true(sent < LEN);
	assert_int_equal(pump(&r, &why), KG_PUMP_WAIT);
	assert_true(kg_pump_pending_to_backend(&r.c));
	got = stream(&r, true, a + sent, LEN - sent, b, LEN, true);
	assert_int_equal(got, LEN);
	assert_memory_equal(a, b, LEN);
	rig_down(&r);
	free(a);
	free(b);
}

/* Half-closes cross the legs as close_notify both ways: the client's
 * close_notify reaches the origin as close_notify (and a FIN), the origin
 * can still answer, and its close_notify reaches the client as one. */
static void test_pump_tls_origin_half_close(void **state)
{
	unsigned char buf[64];
	enum kg_close_reason why;
	struct rig r;
	int err;

	rig_up_legs(&r, NULL, false, true);
	assert_int_equal(SSL_write(r.cssl, "ping", 4), 4);
	assert_int_equal(backend_read(&r, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "ping", 4);
	(void)SSL_shutdown(r.cssl);
	assert_int_equal(backend_read(&r, buf, sizeof(buf)), 0);	/* close_notify */
	assert_true(r.c.flags & KG_CF_B_WR_SHUT);
	assert_int_equal(SSL_write(r.osrv, "pong", 4), 4);
	assert_int_equal(client_read(&r, buf, sizeof(buf), &err), 4);
	assert_memory_equal(buf, "pong", 4);
	(void)SSL_shutdown(r.osrv);
	assert_int_equal(shutdown(r.backend, SHUT_WR), 0);
	assert_int_equal(client_read(&r, buf, sizeof(buf), &err), 0);
	assert_int_equal(err, SSL_ERROR_ZERO_RETURN);
	assert_int_equal(pump(&r, &why), KG_PUMP_FINISHED);
	rig_down(&r);
}

/* An origin that closes without close_notify (many HTTPS servers do) is
 * taken at its word: the client gets a clean close_notify, no error. */
static void test_pump_tls_origin_fin_without_close_notify(void **state)
{
	unsigned char buf[64];
	struct rig r;
	int err;

	rig_up_legs(&r, NULL, false, true);
	assert_int_equal(SSL_write(r.osrv, "bye", 3), 3);
	assert_int_equal(shutdown(r.backend, SHUT_WR), 0);
	assert_int_equal(client_read(&r, buf, sizeof(buf), &err), 3);
	assert_memory_equal(buf, "bye", 3);
	assert_int_equal(client_read(&r, buf, sizeof(buf), &err), 0);
	assert_int_equal(err, SSL_ERROR_ZERO_RETURN);
	assert_true(r.c.flags & KG_CF_B_RD_EOF);
	assert_true(r.c.flags & KG_CF_C_WR_SHUT);
	rig_down(&r);
}

/* A broken origin record (bytes that are not TLS) is a backend error named
 * as a TLS one, after what came before it was delivered. */
static void test_pump_tls_origin_garbage(void **state)
{
	unsigned char buf[64];
	enum kg_close_reason why;
	struct rig r;
	int err;

	rig_up_legs(&r, NULL, false, true);
	assert_int_equal(SSL_write(r.osrv, "ok", 2), 2);
	assert_int_equal(client_read(&r, buf, sizeof(buf), &err), 2);
	send_plain(r.backend, (const unsigned char *)"\x17\x03\x03\x00\x05hello", 10);
	assert_int_equal(pump_until_failed(&r, &why), KG_PUMP_FAILED);
	assert_int_equal(why, KG_CLOSE_BACKEND_ERROR);
	assert_non_null(strstr(kg_conn_detail(&r.c), "backend tls"));
	rig_down(&r);
}

/* Client mode (tls = off): a plain client, a TLS origin. The client's FIN
 * is a clean end on plain TCP: it becomes close_notify to the origin. */
static void test_pump_plain_client_tls_origin(void **state)
{
	enum { LEN = 512 * 1024 };
	unsigned char *a = malloc(LEN), *b = malloc(LEN);
	enum kg_close_reason why;
	struct rig r;

	rig_up_legs(&r, NULL, true, true);
	assert_null(r.c.ssl);
	fill_pattern(a, LEN, 14);
	assert_int_equal(stream(&r, true, a, LEN, b, LEN, true), LEN);
	assert_memory_equal(a, b, LEN);
	fill_pattern(a, LEN, 15);
	assert_int_equal(stream(&r, false, a, LEN, b, LEN, true), LEN);
	assert_memory_equal(a, b, LEN);
	assert_int_equal(r.c.bytes_in, LEN);
	assert_int_equal(r.c.bytes_out, LEN);
	assert_int_equal(shutdown(r.client, SHUT_WR), 0);
	assert_int_equal(backend_read(&r, b, 16), 0);		/* close_notify, no truncation */
	assert_false(r.c.flags & KG_CF_TRUNCATED);
	(void)SSL_shutdown(r.osrv);
	assert_int_equal(shutdown(r.backend, SHUT_WR), 0);
	for (int i = 0; i < 5000 && pump(&r, &why) != KG_PUMP_FINISHED; i++)
		usleep(200);
	assert_int_equal(pump(&r, &why), KG_PUMP_FINISHED);
	assert_int_equal(recv(r.client, b, 16, 0), 0);		/* our FIN to the client */
	rig_down(&r);
	free(a);
	free(b);
}

/* ---- the splice path, with the kernel's control records scripted -------- */

static struct {
	int cfd;
	size_t data_left;	/* bytes the "kernel" hands out before the record */
	int type;		/* the control record's type, 0 for none */
	uint8_t body[512];
	size_t body_len;
	int alerts_sent[4][3];	/* level, description, fd */
	int n_alerts;
	char calls[16];		/* rekey script: R (rx key), T (tx key), K (our KeyUpdate sent),
				 * k (it met a full socket), > (a splice into the client) */
	int n_calls;
	int ku_eagain;		/* KeyUpdates that meet a full socket first */
} k;

static void note(char what)
{
	if (k.n_calls < (int)sizeof(k.calls) - 1 && (k.n_calls == 0 || k.calls[k.n_calls - 1] != what))
		k.calls[k.n_calls++] = what;
}

static ssize_t fake_splice(int fd_in, int fd_out, size_t len)
{
	ssize_t n;

	if (fd_in != k.cfd) {
		if (fd_out == k.cfd)
			note('>');
		return splice(fd_in, NULL, fd_out, NULL, len, SPLICE_F_NONBLOCK);
	}
	if (k.type && !k.data_left) {
		errno = EINVAL;	/* what kTLS says when a non-data record is next */
		return -1;
	}
	if (k.type && len > k.data_left)
		len = k.data_left;
	n = splice(fd_in, NULL, fd_out, NULL, len, SPLICE_F_NONBLOCK);
	if (n > 0 && k.type)
		k.data_left -= (size_t)n;
	return n;
}

static int fake_rekey(int fd, struct kg_ktls_keys *keys, int which)
{
	assert_int_equal(fd, k.cfd);
	assert_non_null(keys);
	note(which == KG_KTLS_RX ? 'R' : 'T');
	return 0;
}

static int fake_send_keyupdate(int fd, bool request)
{
	assert_int_equal(fd, k.cfd);
	assert_false(request);		/* our answer never asks for another */
	if (k.ku_eagain) {
		k.ku_eagain--;
		note('k');
		return -EAGAIN;
	}
	note('K');
	return 0;
}

static int fake_recv_record(int fd, uint8_t *buf, size_t len, size_t *got)
{
	int type = k.type;

	assert_int_equal(fd, k.cfd);
	assert_true(type != 0);
	memcpy(buf, k.body, k.body_len < len ? k.body_len : len);
	*got = k.body_len;
	k.type = 0;		/* consumed */
	return type;
}

static int fake_send_alert(int fd, uint8_t level, uint8_t desc)
{
	if (k.n_alerts < 4) {
		k.alerts_sent[k.n_alerts][0] = level;
		k.alerts_sent[k.n_alerts][1] = desc;
		k.alerts_sent[k.n_alerts][2] = fd;
	}
	k.n_alerts++;
	return 0;
}

/* recv(2) of decrypted bytes, stopping at the scripted record with EIO as
 * kTLS does when no control-message buffer is given */
static ssize_t fake_recv(int fd, void *buf, size_t len)
{
	ssize_t n;

	if (fd == k.cfd && k.type && !k.data_left) {
		errno = EIO;
		return -1;
	}
	if (fd == k.cfd && k.type && len > k.data_left)
		len = k.data_left;
	n = recv(fd, buf, len, MSG_DONTWAIT);
	if (n > 0 && fd == k.cfd && k.type)
		k.data_left -= (size_t)n;
	return n;
}

static const struct kg_pump_sys fake_kernel = {
	.splice = fake_splice, .recv_record = fake_recv_record, .send_alert = fake_send_alert,
	.recv = fake_recv,
};

/* The same "kernel", able to rekey (6.14+) */
static const struct kg_pump_sys fake_kernel_rekey = {
	.splice = fake_splice, .recv_record = fake_recv_record, .send_alert = fake_send_alert,
	.recv = fake_recv, .rekey = fake_rekey, .send_keyupdate = fake_send_keyupdate,
};

/* The rig with "kernel TLS" on the client leg: the client writes plain
 * bytes, which stand for what the kernel decrypted. */
static void rig_ktls(struct rig *r, int type, const uint8_t *body, size_t body_len,
		     size_t data_before)
{
	rig_up(r, &fake_kernel);
	SSL_free(r->c.ssl);
	r->c.ssl = NULL;
	r->c.ktls = KG_KTLS_TX | KG_KTLS_RX;
	memset(&k, 0, sizeof(k));
	k.cfd = r->c.cfd;
	k.type = type;
	memcpy(k.body, body, body_len);
	k.body_len = body_len;
	k.data_left = data_before;
}

static void send_plain(int fd, const unsigned char *p, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(fd, p + off, len - off, MSG_NOSIGNAL);

		assert_true(n > 0);
		off += (size_t)n;
	}
}

/* Issue 12, item 10: the connection ends (max_lifetime, drain, KeyUpdate)
 * while bytes for the client still sit in the pipe, the client not reading.
 * Those bytes are dropped, so no close_notify may follow them: the kernel
 * would send it as soon as the client makes room, and the client would take
 * its cut-short stream for a whole one. With nothing pending it is sent. */
static void test_pump_no_close_notify_over_pending_bytes(void **state)
{
	enum { LEN = 1 << 20 };
	unsigned char *a = malloc(LEN), *b = malloc(LEN);
	enum kg_close_reason why;
	size_t got = 0, sent;
	struct rig r;

	fill_pattern(a, LEN, 30);
	rig_ktls(&r, 0, NULL, 0, 0);
	sent = stream(&r, false, a, LEN, b, 0, false);
	assert_true(sent < LEN);				/* backpressure reached the backend */
	assert_int_equal(pump(&r, &why), KG_PUMP_WAIT);
	assert_true(kg_pump_pending_to_client(&r.c));
	got = drain_plain(r.client, b, LEN);			/* room again, the pump not run */
	assert_true(got > 0);
	assert_true(kg_pump_pending_to_client(&r.c));
	assert_int_equal(kg_pump_close_notify(&r.pool, &r.c), -EPIPE);
	assert_int_equal(k.n_alerts, 0);
	rig_down(&r);

	rig_ktls(&r, 0, NULL, 0, 0);
	assert_false(kg_pump_pending_to_client(&r.c));
	assert_int_equal(kg_pump_close_notify(&r.pool, &r.c), 0);
	assert_int_equal(k.n_alerts, 1);
	assert_int_equal(k.alerts_sent[0][1], 0);		/* close_notify */
	assert_int_equal(k.alerts_sent[0][2], r.c.cfd);
	rig_down(&r);
	free(a);
	free(b);
}

/* A close_notify met in the middle of a splice: the data before it reaches
 * the backend intact, then the backend gets a clean FIN. */
static void test_pump_splice_close_notify_mid_stream(void **state)
{
	const uint8_t close_notify[] = { 1, 0 };
	unsigned char a[6000], b[6000];
	enum kg_close_reason why;
	size_t got = 0;
	ssize_t n;
	struct rig r;

	fill_pattern(a, sizeof(a), 6);
	rig_ktls(&r, 21, close_notify, sizeof(close_notify), 4000);
	send_plain(r.client, a, sizeof(a));
	while (got < 4000 && (n = backend_read(&r, b + got, sizeof(b) - got)) > 0)
		got += (size_t)n;
	assert_int_equal(got, 4000);
	assert_memory_equal(a, b, 4000);
	assert_int_equal(backend_read(&r, b, sizeof(b)), 0);	/* the FIN */
	assert_true(r.c.flags & KG_CF_C_RD_EOF);
	assert_false(r.c.flags & KG_CF_TRUNCATED);
	assert_int_equal(pump(&r, &why), KG_PUMP_WAIT);		/* backend may still answer */
	rig_down(&r);
}

/* A KeyUpdate this kernel cannot follow ends the stream, named as such,
 * after the data before it was delivered. */
static void test_pump_splice_keyupdate(void **state)
{
	const uint8_t keyupdate[] = { 24, 0, 0, 1, 0 };
	unsigned char a[3000], b[3000];
	enum kg_close_reason why;
	size_t got = 0;
	ssize_t n;
	struct rig r;

	fill_pattern(a, sizeof(a), 7);
	rig_ktls(&r, 22, keyupdate, sizeof(keyupdate), 1000);
	send_plain(r.client, a, sizeof(a));
	assert_int_equal(pump_until_failed(&r, &why), KG_PUMP_FAILED);
	assert_int_equal(why, KG_CLOSE_KEYUPDATE);
	while ((n = recv(r.backend, b + got, sizeof(b) - got, 0)) > 0)
		got += (size_t)n;
	assert_int_equal(got, 1000);	/* what came before the KeyUpdate, nothing after */
	assert_memory_equal(a, b, 1000);
	assert_int_equal(k.n_alerts, 0);	/* a clean end is the caller's to send */
	rig_down(&r);
}

/* On a kernel that can rekey, a client KeyUpdate with update_requested is
 * followed: the client's next key, then ours (our KeyUpdate out first), and
 * the stream goes on intact on the kernel path. */
static void test_pump_splice_rekey(void **state)
{
	const uint8_t keyupdate[] = { 24, 0, 0, 1, 1 };
	struct kg_ktls_keys keys = { .len = 32 };
	unsigned char a[3000], b[3000];
	enum kg_close_reason why;
	size_t got = 0;
	ssize_t n;
	struct rig r;

	fill_pattern(a, sizeof(a), 8);
	rig_ktls(&r, 22, keyupdate, sizeof(keyupdate), 1000);
	r.pool.sys = &fake_kernel_rekey;
	r.c.kk[0] = &keys;
	send_plain(r.client, a, sizeof(a));
	while (got < sizeof(a) && (n = backend_read(&r, b + got, sizeof(b) - got)) > 0)
		got += (size_t)n;
	assert_int_equal(got, sizeof(a));	/* before and after the KeyUpdate */
	assert_memory_equal(a, b, sizeof(a));
	k.calls[k.n_calls] = '\0';
	assert_string_equal(k.calls, "RKT");
	assert_int_equal(r.c.rekeys[0], 1);
	assert_int_equal(r.c.rekeys[1], 1);
	assert_false(r.c.flags & (KG_CF_KU_OWED_C | KG_CF_KEYUPDATE));
	assert_int_equal(pump(&r, &why), KG_PUMP_WAIT);
	r.c.kk[0] = NULL;
	rig_down(&r);
}

/* Our KeyUpdate meets a full socket: it stays owed, and the next bytes for
 * the client wait behind it (none goes out under the old key). */
static void test_pump_splice_rekey_owed(void **state)
{
	const uint8_t keyupdate[] = { 24, 0, 0, 1, 1 };
	struct kg_ktls_keys keys = { .len = 32 };
	unsigned char a[500], b[600];
	enum kg_close_reason why;
	size_t got = 0;
	ssize_t n;
	struct rig r;

	fill_pattern(a, sizeof(a), 9);
	rig_ktls(&r, 22, keyupdate, sizeof(keyupdate), 0);
	r.pool.sys = &fake_kernel_rekey;
	r.c.kk[0] = &keys;
	k.ku_eagain = 1;
	send_plain(r.client, a, 1);	/* wakes the pump: the record comes first */
	assert_int_equal(pump(&r, &why), KG_PUMP_WAIT);
	assert_true(r.c.flags & KG_CF_KU_OWED_C);
	send_plain(r.backend, a, sizeof(a));
	for (int i = 0; i < 1000 && got < sizeof(a); i++) {
		(void)pump(&r, &why);
		n = recv(r.client, b + got, sizeof(b) - got, MSG_DONTWAIT);
		if (n > 0)
			got += (size_t)n;
	}
	assert_int_equal(got, sizeof(a));
	assert_memory_equal(a, b, sizeof(a));
	k.calls[k.n_calls] = '\0';
	assert_string_equal(k.calls, "RkKT>");
	assert_false(r.c.flags & KG_CF_KU_OWED_C);
	r.c.kk[0] = NULL;
	rig_down(&r);
}

/* A KeyUpdate the kernel could follow but sent wrong: a request that is
 * neither 0 nor 1 gets illegal_parameter, one with more after it in its
 * record unexpected_message, both through the kernel, and no key moves. */
static void test_pump_splice_rekey_malformed(void **state)
{
	const uint8_t bad_request[] = { 24, 0, 0, 1, 2 };
	const uint8_t trailing[] = { 24, 0, 0, 1, 0, 24, 0, 0, 1, 0 };
	struct kg_ktls_keys keys = { .len = 32 };
	enum kg_close_reason why;
	unsigned char a[10] = { 0 };
	struct rig r;

	for (int i = 0; i < 2; i++) {
		rig_ktls(&r, 22, i ? trailing : bad_request, i ? sizeof(trailing) : sizeof(bad_request), 0);
		r.pool.sys = &fake_kernel_rekey;
		r.c.kk[0] = &keys;
		send_plain(r.client, a, 1);
		assert_int_equal(pump_until_failed(&r, &why), KG_PUMP_FAILED);
		assert_int_equal(why, KG_CLOSE_CLIENT_ERROR);
		assert_non_null(strstr(kg_conn_detail(&r.c), "malformed KeyUpdate"));
		assert_int_equal(k.n_alerts, 1);
		assert_int_equal(k.alerts_sent[0][1], i ? 10 : 47);
		assert_int_equal(k.n_calls, 0);		/* no key moved */
		r.c.kk[0] = NULL;
		rig_down(&r);
	}
}

/* An unexpected handshake message is a client error, and the client is
 * told so with unexpected_message, through the kernel. */
static void test_pump_splice_unexpected_record(void **state)
{
	const uint8_t hello[] = { 1, 0, 0, 0 };
	enum kg_close_reason why;
	struct rig r;

	rig_ktls(&r, 22, hello, sizeof(hello), 0);
	send_plain(r.client, (const unsigned char *)"x", 1);
	assert_int_equal(pump_until_failed(&r, &why), KG_PUMP_FAILED);
	assert_int_equal(why, KG_CLOSE_CLIENT_ERROR);
	assert_int_equal(k.n_alerts, 1);
	assert_int_equal(k.alerts_sent[0][0], 2);
	assert_int_equal(k.alerts_sent[0][1], 10);
	rig_down(&r);
}

/* The backend's FIN on the splice path becomes close_notify through the
 * kernel (an alert record), then a FIN. */
static void test_pump_splice_backend_fin(void **state)
{
	unsigned char buf[16];
	enum kg_close_reason why;
	struct rig r;

	rig_ktls(&r, 0, NULL, 0, 0);
	send_plain(r.backend, (const unsigned char *)"bye", 3);
	assert_int_equal(shutdown(r.backend, SHUT_WR), 0);
	for (int i = 0; i < 5000 && !(r.c.flags & KG_CF_C_WR_SHUT); i++) {
		(void)pump(&r, &why);
		usleep(200);
	}
	assert_true(r.c.flags & KG_CF_C_WR_SHUT);
	assert_int_equal(k.n_alerts, 1);
	assert_int_equal(k.alerts_sent[0][0], 1);	/* warning */
	assert_int_equal(k.alerts_sent[0][1], 0);	/* close_notify */
	assert_int_equal(drain_plain(r.client, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "bye", 3);
	assert_int_equal(r.c.bytes_out, 3);
	rig_down(&r);
}

/* A bare FIN on the kernel-TLS client leg (the kernel reports EOF with no
 * close_notify record before it): the bytes before it are delivered, the
 * end is a truncation, and the backend is not given a clean FIN. */
static void test_pump_splice_fin_without_close_notify(void **state)
{
	unsigned char a[3000], b[3000];
	enum kg_close_reason why = KG_CLOSE_NONE;
	size_t got = 0;
	ssize_t n;
	struct rig r;

	fill_pattern(a, sizeof(a), 27);
	rig_ktls(&r, 0, NULL, 0, 0);
	send_plain(r.client, a, sizeof(a));
	while (got < sizeof(a) && (n = backend_read(&r, b + got, sizeof(b) - got)) > 0)
		got += (size_t)n;
	assert_int_equal(got, sizeof(a));
	assert_memory_equal(a, b, sizeof(a));
	assert_int_equal(shutdown(r.client, SHUT_WR), 0);
	assert_int_equal(pump_until_failed(&r, &why), KG_PUMP_FAILED);
	assert_int_equal(why, KG_CLOSE_TRUNCATED);
	assert_true(r.c.flags & KG_CF_TRUNCATED);
	assert_false(r.c.flags & KG_CF_B_WR_SHUT);
	assert_int_equal(recv(r.backend, b, sizeof(b), 0), -1);	/* no FIN was passed on */
	assert_int_equal(errno, EAGAIN);
	rig_down(&r);
}

/* The same bare FIN where the kTLS client leg is read with recv(2) (a TLS
 * origin in userspace on the other leg): still a truncation, and the origin
 * gets no close_notify. */
static void test_pump_ktls_recv_fin_without_close_notify(void **state)
{
	unsigned char buf[64];
	enum kg_close_reason why = KG_CLOSE_NONE;
	struct rig r;
	int err = 0;

	rig_up_legs(&r, &fake_kernel, false, true);
	SSL_free(r.c.ssl);
	SSL_free(r.cssl);
	r.c.ssl = r.cssl = NULL;
	r.c.ktls = KG_KTLS_TX | KG_KTLS_RX;
	memset(&k, 0, sizeof(k));
	k.cfd = r.c.cfd;
	send_plain(r.client, (const unsigned char *)"data", 4);
	assert_int_equal(backend_read(&r, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "data", 4);
	assert_int_equal(shutdown(r.client, SHUT_WR), 0);
	assert_int_equal(pump_until_failed(&r, &why), KG_PUMP_FAILED);
	assert_int_equal(why, KG_CLOSE_TRUNCATED);
	assert_false(r.c.flags & KG_CF_B_WR_SHUT);
	/* the origin reads nothing more: neither bytes nor a close_notify */
	assert_int_equal(SSL_read(r.osrv, buf, sizeof(buf)), -1);
	err = SSL_get_error(r.osrv, -1);
	assert_int_equal(err, SSL_ERROR_WANT_READ);
	rig_down(&r);
}

/* A buffer given back with bytes still in it (a connection torn down
 * mid-stream) is handed out empty to the next connection: one client's
 * bytes never reach another. */
static void test_pool_recycled_buffer_is_empty(void **state)
{
	struct kg_pool p;
	struct kg_conn c;
	struct kg_buf *b, *slot = NULL;

	memset(&c, 0, sizeof(c));
	c.pc2b[0] = c.pc2b[1] = c.pb2c[0] = c.pb2c[1] = -1;
	kg_pool_init(&p, NULL);
	b = kg_buf_get(&p, &c.c2b);
	assert_non_null(b);
	memcpy(b->data, "secret of the last client", 25);
	b->off = 3;
	b->len = 22;
	kg_pool_put_conn(&p, &c);
	assert_null(c.c2b);
	assert_ptr_equal(kg_buf_get(&p, &slot), b);	/* the same buffer, from the cache */
	assert_int_equal(slot->off, 0);
	assert_int_equal(slot->len, 0);
	kg_buf_put(&p, &slot);
	kg_pool_release(&p);
}

/* ---- kernel TLS on the origin leg ------------------------------------- */

/* Both legs offloaded: each side writes plain bytes standing for what its
 * kernel decrypts; the scripted control record sits on @rec_fd. */
static void rig_ktls_both(struct rig *r, bool record_on_origin, int type, const uint8_t *body,
			  size_t body_len, size_t data_before)
{
	rig_ktls(r, type, body, body_len, data_before);
	r->c.bktls = KG_KTLS_TX | KG_KTLS_RX;
	if (record_on_origin)
		k.cfd = r->c.bfd;
}

/* An origin's NewSessionTickets on the offloaded leg (two in one record,
 * longer than any alert: the whole record must be read) are skipped; its
 * data then flows to the client through the pipe. */
static void test_pump_ktls_origin_ticket_skipped(void **state)
{
	uint8_t tickets[2 * 200];
	unsigned char a[5000], b[5000];
	enum kg_close_reason why;
	size_t got = 0;
	struct rig r;

	memset(tickets, 0xab, sizeof(tickets));
	for (int i = 0; i < 2; i++) {
		tickets[i * 200] = 4;			/* NewSessionTicket */
		tickets[i * 200 + 1] = 0;
		tickets[i * 200 + 2] = 0;
		tickets[i * 200 + 3] = 196;		/* body length */
	}
	fill_pattern(a, sizeof(a), 21);
	rig_ktls_both(&r, true, 22, tickets, sizeof(tickets), 0);
	send_plain(r.backend, a, sizeof(a));
	for (int i = 0; i < 5000 && got < sizeof(a); i++) {
		ssize_t n;

		(void)pump(&r, &why);
		n = recv(r.client, b + got, sizeof(b) - got, MSG_DONTWAIT);
		if (n > 0)
			got += (size_t)n;
		else
			usleep(200);
	}
	assert_int_equal(got, sizeof(a));
	assert_memory_equal(a, b, sizeof(a));
	assert_int_equal(k.type, 0);			/* the record was read */
	assert_true(r.c.flags & KG_CF_B_DATA);
	assert_int_equal(k.n_alerts, 0);
	rig_down(&r);
}

/* close_notify from the origin on its kTLS leg, after data: the client gets
 * the data, then close_notify through its own kernel TLS, then a FIN. */
static void test_pump_ktls_origin_close_notify(void **state)
{
	const uint8_t close_notify[] = { 1, 0 };
	unsigned char a[3000], b[3000];
	enum kg_close_reason why;
	struct rig r;

	fill_pattern(a, sizeof(a), 22);
	rig_ktls_both(&r, true, 21, close_notify, sizeof(close_notify), 2000);
	send_plain(r.backend, a, sizeof(a));
	for (int i = 0; i < 5000 && !(r.c.flags & KG_CF_C_WR_SHUT); i++) {
		(void)pump(&r, &why);
		usleep(200);
	}
	assert_true(r.c.flags & KG_CF_B_RD_EOF);
	assert_true(r.c.flags & KG_CF_C_WR_SHUT);
	assert_int_equal(drain_plain(r.client, b, sizeof(b)), 2000);	/* nothing after it */
	assert_memory_equal(a, b, 2000);
	assert_int_equal(k.n_alerts, 1);
	assert_int_equal(k.alerts_sent[0][1], 0);			/* close_notify */
	assert_int_equal(k.alerts_sent[0][2], r.c.cfd);			/* to the client */
	rig_down(&r);
}

/* close_notify from the client: the origin gets close_notify through its
 * leg's kernel TLS (not a bare FIN), then the FIN. */
static void test_pump_ktls_client_close_notify_to_origin(void **state)
{
	const uint8_t close_notify[] = { 1, 0 };
	unsigned char a[1000], b[1000];
	struct rig r;

	fill_pattern(a, sizeof(a), 23);
	rig_ktls_both(&r, false, 21, close_notify, sizeof(close_notify), sizeof(a));
	send_plain(r.client, a, sizeof(a));
	assert_int_equal(backend_read(&r, b, sizeof(b)), sizeof(a));
	assert_memory_equal(a, b, sizeof(a));
	assert_int_equal(backend_read(&r, b, sizeof(b)), 0);	/* the FIN */
	assert_true(r.c.flags & KG_CF_B_WR_SHUT);
	assert_int_equal(k.n_alerts, 1);
	assert_int_equal(k.alerts_sent[0][0], 1);
	assert_int_equal(k.alerts_sent[0][1], 0);
	assert_int_equal(k.alerts_sent[0][2], r.c.bfd);		/* to the origin */
	rig_down(&r);
}

/* An origin KeyUpdate this kernel cannot follow ends the connection as
 * keyupdate_unsupported, after the data before it. */
static void test_pump_ktls_origin_keyupdate(void **state)
{
	const uint8_t keyupdate[] = { 24, 0, 0, 1, 0 };
	unsigned char a[2000], b[2000];
	enum kg_close_reason why;
	struct rig r;

	fill_pattern(a, sizeof(a), 24);
	rig_ktls_both(&r, true, 22, keyupdate, sizeof(keyupdate), 500);
	send_plain(r.backend, a, sizeof(a));
	assert_int_equal(pump_until_failed(&r, &why), KG_PUMP_FAILED);
	assert_int_equal(why, KG_CLOSE_KEYUPDATE);
	assert_non_null(strstr(kg_conn_detail(&r.c), "origin KeyUpdate"));
	assert_int_equal(drain_plain(r.client, b, sizeof(b)), 500);
	rig_down(&r);
}

/* An origin alert on its kTLS leg is a backend error, remembered for the
 * refusal check (TLS 1.3 origins judge our certificate after our Finished). */
static void test_pump_ktls_origin_alert(void **state)
{
	const uint8_t required[] = { 2, 116 };
	enum kg_close_reason why;
	struct rig r;

	rig_ktls_both(&r, true, 21, required, sizeof(required), 0);
	send_plain(r.backend, (const unsigned char *)"x", 1);
	assert_int_equal(pump_until_failed(&r, &why), KG_PUMP_FAILED);
	assert_int_equal(why, KG_CLOSE_BACKEND_ERROR);
	assert_int_equal(r.c.bhs->alert_rcvd, 116);
	assert_false(r.c.flags & KG_CF_B_DATA);
	rig_down(&r);
}

/* One leg offloaded, the other not (the kernel refused its cipher): each
 * direction is copied through userspace, reading the offloaded leg with
 * recv(2) and its control records by the slow path. */
static void test_pump_mixed_legs(void **state)
{
	enum { LEN = 256 * 1024 };
	const uint8_t close_notify[] = { 1, 0 };
	unsigned char *a = malloc(LEN), *b = malloc(LEN);
	enum kg_close_reason why;
	size_t got = 0;
	struct rig r;

	rig_up_legs(&r, &fake_kernel, false, true);
	SSL_free(r.c.ssl);		/* the client leg: kTLS both ways */
	SSL_free(r.cssl);
	r.c.ssl = r.cssl = NULL;
	r.c.ktls = KG_KTLS_TX | KG_KTLS_RX;
	memset(&k, 0, sizeof(k));
	k.cfd = r.c.cfd;
	k.type = 21;
	memcpy(k.body, close_notify, sizeof(close_notify));
	k.body_len = sizeof(close_notify);
	k.data_left = LEN;
	fill_pattern(a, LEN, 25);
	/* origin → client: SSL_read on the origin leg, send(2) into kTLS */
	got = stream(&r, false, a, LEN, b, LEN, true);
	assert_int_equal(got, LEN);
	assert_memory_equal(a, b, LEN);
	/* client → origin, then the client's close_notify as a control record */
	fill_pattern(a, LEN, 26);
	got = stream(&r, true, a, LEN, b, LEN, true);
	assert_int_equal(got, LEN);
	assert_memory_equal(a, b, LEN);
	assert_int_equal(backend_read(&r, b, 16), 0);		/* close_notify at the origin */
	assert_true(r.c.flags & KG_CF_C_RD_EOF);
	assert_false(r.c.flags & KG_CF_TRUNCATED);
	assert_int_equal(pump(&r, &why), KG_PUMP_WAIT);
	rig_down(&r);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pump_copies_both_ways),
		cmocka_unit_test(test_pump_backpressure_to_backend),
		cmocka_unit_test(test_pump_backpressure_to_client),
		cmocka_unit_test(test_pump_client_half_close),
		cmocka_unit_test(test_pump_backend_half_close),
		cmocka_unit_test(test_pump_fin_without_close_notify),
		cmocka_unit_test(test_pump_client_reset_mid_stream),
		cmocka_unit_test(test_pump_backend_reset_mid_stream),
		cmocka_unit_test(test_pump_backend_reset_idle),
		cmocka_unit_test(test_pump_tls_origin_copies_both_ways),
		cmocka_unit_test(test_pump_tls_origin_backpressure),
		cmocka_unit_test(test_pump_tls_origin_half_close),
		cmocka_unit_test(test_pump_tls_origin_fin_without_close_notify),
		cmocka_unit_test(test_pump_tls_origin_garbage),
		cmocka_unit_test(test_pump_plain_client_tls_origin),
		cmocka_unit_test(test_pump_no_close_notify_over_pending_bytes),
		cmocka_unit_test(test_pump_splice_close_notify_mid_stream),
		cmocka_unit_test(test_pump_splice_keyupdate),
		cmocka_unit_test(test_pump_splice_rekey),
		cmocka_unit_test(test_pump_splice_rekey_owed),
		cmocka_unit_test(test_pump_splice_rekey_malformed),
		cmocka_unit_test(test_pump_splice_unexpected_record),
		cmocka_unit_test(test_pump_splice_backend_fin),
		cmocka_unit_test(test_pump_splice_fin_without_close_notify),
		cmocka_unit_test(test_pump_ktls_recv_fin_without_close_notify),
		cmocka_unit_test(test_pool_recycled_buffer_is_empty),
		cmocka_unit_test(test_pump_ktls_origin_ticket_skipped),
		cmocka_unit_test(test_pump_ktls_origin_close_notify),
		cmocka_unit_test(test_pump_ktls_client_close_notify_to_origin),
		cmocka_unit_test(test_pump_ktls_origin_keyupdate),
		cmocka_unit_test(test_pump_ktls_origin_alert),
		cmocka_unit_test(test_pump_mixed_legs),
	};

	return cmocka_run_group_tests_name("pump", tests, group_setup, group_teardown);
}
