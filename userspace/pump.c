/*
 * The data pump (pump.h): where client bytes travel once the handshake is
 * done: the copy and splice paths and the kTLS control-record slow path.
 * Buffers and pipes come from pool.c. Must not touch io_uring, workers, logs or counters: it reports, the
 * caller (conn.c) decides.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>

#include "ktls.h"
#include "pump.h"

/* ---- the legs ------------------------------------------------------------- */
/* Each leg (the client's, the origin's) is TLS in userspace (an SSL), TLS
 * in the kernel (per direction) or plain TCP (tls = off on the client leg,
 * backend_tls = off on the origin leg). */

static inline SSL *kg_leg_ssl(const struct kg_conn *c, bool client)
{
	return client ? c->ssl : c->bssl;
}

static inline int kg_leg_ktls(const struct kg_conn *c, bool client)
{
	return client ? c->ktls : c->bktls;
}

/* Does the kernel hand out (KG_KTLS_RX) or take in (KG_KTLS_TX) this leg's
 * application bytes: kTLS in that direction, or no TLS at all? */
static bool kg_leg_kernel(const struct kg_conn *c, bool client, int dir)
{
	int k = kg_leg_ktls(c, client);

	return (k & dir) || (!kg_leg_ssl(c, client) && !k);
}

/* Splice a direction when the kernel does both its ends, one of them kTLS. */
static bool kg_dir_splice(const struct kg_conn *c, bool c2b)
{
	return (c->ktls || c->bktls) && kg_leg_kernel(c, c2b, KG_KTLS_RX) &&
	       kg_leg_kernel(c, !c2b, KG_KTLS_TX);
}

/* ---- buffer room ------------------------------------------------------ */

static inline uint32_t kg_buf_space(const struct kg_buf *b)
{
	return KG_BUF_SIZE - b->off - b->len;
}

/* Make room at the tail; OpenSSL accepts the moved buffer on retry
 * (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER). */
static inline void kg_buf_compact(struct kg_buf *b)
{
	if (b->off && (b->len == 0 || b->off >= KG_BUF_SIZE / 2)) {
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
	}
}

bool kg_pump_pending_to_client(const struct kg_conn *c)
{
	return (c->b2c && c->b2c->len) || c->pb2c_len;
}

bool kg_pump_pending_to_backend(const struct kg_conn *c)
{
	return (c->c2b && c->c2b->len) || c->pc2b_len;
}

/* ---- userspace TLS ------------------------------------------------------ */

/* Classify a failed SSL_read/SSL_write/SSL_shutdown on @ssl, the client's
 * leg or (!@client) the origin's. Returns 0 to wait for readiness, 1 on
 * EOF (from the client: KG_CF_TRUNCATED when it came without close_notify;
 * an origin that just closes is taken at its word, as HTTPS clients do),
 * -1 on error (c->detail set). */
static int kg_ssl_status(struct kg_conn *c, SSL *ssl, bool client, int ret)
{
	int e = SSL_get_error(ssl, ret), err = errno;
	unsigned trunc = client ? KG_CF_TRUNCATED : 0;
	unsigned long ec;

	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		return 1;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		if (err == 0 || err == EPIPE) {
			c->flags |= trunc;
			return 1;
		}
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN,
			 "%s socket: %s", client ? "client" : "backend", strerror(err));
		return -1;
	default:
		ec = ERR_peek_last_error();
		if (ERR_GET_REASON(ec) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_clear_error();
			c->flags |= trunc;
			return 1;
		}
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN,
			 "%s: %s", client ? "tls" : "backend tls",
			 ERR_reason_error_string(ec) ? ERR_reason_error_string(ec) : "?");
		ERR_clear_error();
		return -1;
	}
}

/* close_notify on a leg: through the kernel when it sends for that leg
 * (the record sequence is the kernel's then), else through OpenSSL.
 * 0, or -EAGAIN when the socket is full. */
static int kg_leg_close_notify(struct kg_pool *pool, struct kg_conn *c, bool client)
{
	SSL *ssl = kg_leg_ssl(c, client);
	int r;

	if (kg_leg_ktls(c, client) & KG_KTLS_TX) {
		r = pool->sys->send_alert(client ? c->cfd : c->bfd, 1, 0);
		return r == -EAGAIN ? -EAGAIN : 0;
	}
	if (ssl) {
		r = SSL_shutdown(ssl);
		if (r < 0 && kg_ssl_status(c, ssl, client, r) == 0)
			return -EAGAIN;
		ERR_clear_error();
	}
	return 0;
}

int kg_pump_close_notify(struct kg_pool *pool, struct kg_conn *c)
{
	/* close_notify says "that was everything": never while bytes meant
	 * for the client still sit in our buffer or pipe (a caller that ends
	 * the connection now drops them: the client must see the cut) */
	if (kg_pump_pending_to_client(c))
		return -EPIPE;
	return kg_leg_close_notify(pool, c, true);
}

static int kg_ktls_control(struct kg_pool *pool, struct kg_conn *c, bool client);

/*
 * The KeyUpdate a peer asked of us (update_requested), owed on its leg
 * until it is out: sent as a handshake record on the kernel socket, then
 * our transmit key moves on. Called before anything else is written to
 * that leg, so no data of ours follows the request under the old key.
 * 0 (nothing owed any more), -EAGAIN (the socket is full: later), or
 * another -errno with c->detail set.
 */
static int kg_ku_flush(struct kg_pool *pool, struct kg_conn *c, bool client)
{
	unsigned bit = client ? KG_CF_KU_OWED_C : KG_CF_KU_OWED_B;
	int fd = client ? c->cfd : c->bfd, r;

	if (!(c->flags & bit))
		return 0;
	r = pool->sys->send_keyupdate(fd, false);
	if (r == -EAGAIN)
		return r;
	if (!r) {
		r = pool->sys->rekey(fd, c->kk[client ? 0 : 1], KG_KTLS_TX);
		if (!r) {
			c->flags &= ~bit;
			c->rekeys[1]++;
			return 0;
		}
	}
	snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN, "our KeyUpdate to the %s: %s",
		 client ? "client" : "origin", strerror(-r));
	return r;
}

/* ---- the four ends of the copy path ------------------------------------- */
/* Each leg is read and written through its SSL when it has one (the client
 * leg unless tls = off, the origin leg with backend_tls = on), else through
 * its plain socket. Each returns bytes moved, 0 at EOF (reads only),
 * -EAGAIN to wait, or another -errno with c->detail set. A read sets *dry
 * when the source has nothing more, so the pump skips the read that would
 * say EAGAIN. Client bytes are counted here, where they meet the client. */

static ssize_t kg_leg_read(struct kg_pool *pool, struct kg_conn *c, bool client, void *p,
			   size_t len, bool *dry)
{
	SSL *ssl = kg_leg_ssl(c, client);
	int k = kg_leg_ktls(c, client), fd = client ? c->cfd : c->bfd;
	unsigned hup = client ? KG_CF_C_HUP : KG_CF_B_HUP;
	unsigned rshort = client ? KG_CF_RBIO_SHORT : KG_CF_B_RBIO_SHORT;
	ssize_t n;
	int r;

	if (ssl && !(k & KG_KTLS_RX)) {
		c->flags &= ~rshort;
		r = SSL_read(ssl, p, (int)len);
		if (r <= 0) {
			r = kg_ssl_status(c, ssl, client, r);
			return r == 0 ? -EAGAIN : r > 0 ? 0 : -EPROTO;
		}
		/* The socket ran dry under OpenSSL and nothing is buffered; the
		 * poll is edge-triggered, so new data brings a new event. */
		*dry = (c->flags & rshort) && !(c->flags & hup) && !SSL_has_pending(ssl);
		n = r;
	} else {
		for (;;) {
			n = pool->sys->recv ? pool->sys->recv(fd, p, len) :
					      recv(fd, p, len, MSG_DONTWAIT);
			if (n >= 0)
				break;
			r = errno;
			if (r == EAGAIN || r == EINTR)
				return -EAGAIN;
			if ((k & KG_KTLS_RX) && (r == EIO || r == EINVAL)) {
				/* a control record is next: the named slow path */
				r = kg_ktls_control(pool, c, client);
				if (r > 0)
					return 0;
				if (r < 0)
					return -EPROTO;
				continue;
			}
			snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN, "%s recv: %s",
				 client ? "client" : "backend", strerror(r));
			return -r;
		}
		if (n == 0) {
			/* kTLS reports a FIN that came without close_notify as
			 * EOF: the client's stream may be cut short */
			if (client && k)
				c->flags |= KG_CF_TRUNCATED;
			return 0;
		}
		/* a short read: the queue is empty, unless a FIN waits too */
		*dry = (size_t)n < len && !(c->flags & hup);
	}
	if (client)
		c->bytes_in += (uint64_t)n;
	else
		c->flags |= KG_CF_B_DATA;
	return n;
}

static ssize_t kg_leg_write(struct kg_pool *pool, struct kg_conn *c, bool client, const void *p,
			    size_t len)
{
	SSL *ssl = kg_leg_ssl(c, client);
	ssize_t n;
	int r;

	if (ssl && !(kg_leg_ktls(c, client) & KG_KTLS_TX)) {
		r = SSL_write(ssl, p, (int)len);
		if (r <= 0) {
			r = kg_ssl_status(c, ssl, client, r);
			if (r == 0)
				return -EAGAIN;
			if (r > 0)
				snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN, "%s stopped reading",
					 client ? "client" : "backend");
			return -EPIPE;
		}
		n = r;
	} else {
		r = c->flags & (KG_CF_KU_OWED_C | KG_CF_KU_OWED_B) ? kg_ku_flush(pool, c, client) : 0;
		if (r)
			return r == -EAGAIN ? -EAGAIN : -EPROTO;
		n = send(client ? c->cfd : c->bfd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			r = errno;
			if (r == EAGAIN || r == EINTR)
				return -EAGAIN;
			snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN, "%s send: %s",
				 client ? "client" : "backend", strerror(r));
			return -r;
		}
	}
	if (client)
		c->bytes_out += (uint64_t)n;
	return n;
}

static ssize_t kg_read_client(struct kg_pool *pool, struct kg_conn *c, void *p, size_t len,
			      bool *dry)
{
	return kg_leg_read(pool, c, true, p, len, dry);
}

static ssize_t kg_read_backend(struct kg_pool *pool, struct kg_conn *c, void *p, size_t len,
			       bool *dry)
{
	return kg_leg_read(pool, c, false, p, len, dry);
}

static ssize_t kg_write_backend(struct kg_pool *pool, struct kg_conn *c, const void *p, size_t len)
{
	return kg_leg_write(pool, c, false, p, len);
}

static ssize_t kg_write_client(struct kg_pool *pool, struct kg_conn *c, const void *p, size_t len)
{
	return kg_leg_write(pool, c, true, p, len);
}

enum { KG_HALF_OK, KG_HALF_CLIENT_ERR, KG_HALF_BACKEND_ERR, KG_HALF_NOMEM };

/* One direction of the copy path. */
struct kg_half {
	bool c2b;
	unsigned rd_eof, rd_dry;	/* flag bits of the reading side */
	ssize_t (*rd)(struct kg_pool *pool, struct kg_conn *c, void *p, size_t len, bool *dry);
	ssize_t (*wr)(struct kg_pool *pool, struct kg_conn *c, const void *p, size_t len);
	int rd_err, wr_err;
};

static const struct kg_half kg_half_c2b = {
	.c2b = true, .rd_eof = KG_CF_C_RD_EOF, .rd_dry = KG_CF_C_DRAINED,
	.rd = kg_read_client, .wr = kg_write_backend,
	.rd_err = KG_HALF_CLIENT_ERR, .wr_err = KG_HALF_BACKEND_ERR,
};

static const struct kg_half kg_half_b2c = {
	.c2b = false, .rd_eof = KG_CF_B_RD_EOF, .rd_dry = KG_CF_B_DRAINED,
	.rd = kg_read_backend, .wr = kg_write_client,
	.rd_err = KG_HALF_BACKEND_ERR, .wr_err = KG_HALF_CLIENT_ERR,
};

/* Read into the direction's buffer until it is full or the source waits,
 * then write out what the sink takes. */
static int kg_half_copy(struct kg_pool *pool, struct kg_conn *c, const struct kg_half *h,
			bool *progress)
{
	struct kg_buf **slot = h->c2b ? &c->c2b : &c->b2c, *b;
	int rd_err = KG_HALF_OK;
	ssize_t n;

	if (!(c->flags & (h->rd_eof | h->rd_dry))) {
		b = kg_buf_get(pool, slot);
		if (!b)
			return KG_HALF_NOMEM;
		kg_buf_compact(b);
		while (kg_buf_space(b)) {
			bool dry = false;

			n = h->rd(pool, c, b->data + b->off + b->len, kg_buf_space(b), &dry);
			if (n > 0) {
				b->len += (uint32_t)n;
				*progress = true;
				if (!dry)
					continue;
			}
			c->flags |= h->rd_dry;
			if (n == 0) {
				c->flags |= h->rd_eof;
				*progress = true;
			} else if (n < 0 && n != -EAGAIN) {
				rd_err = h->rd_err;	/* deliver what came before it first */
			}
			break;
		}
	}
	b = *slot;
	while (b && b->len) {
		n = h->wr(pool, c, b->data + b->off, b->len);
		if (n == -EAGAIN)
			break;
		if (n <= 0)
			return h->wr_err;
		b->off += (uint32_t)n;
		b->len -= (uint32_t)n;
		*progress = true;
	}
	if (b && !b->len)
		kg_buf_put(pool, slot);
	return rd_err;
}

/* ---- kernel TLS: splice through a pipe, control records by recvmsg ------ */

/*
 * The slow path of a kTLS receive on the client's leg (@client) or the
 * origin's: the next record is not application data. Returns 1 for
 * close_notify or FIN, 0 to go on, -1 to end the connection (c->detail
 * set; KG_CF_KEYUPDATE for a KeyUpdate).
 */
static int kg_ktls_control(struct kg_pool *pool, struct kg_conn *c, bool client)
{
	const char *who = client ? "client" : "origin";
	int fd = client ? c->cfd : c->bfd;
	/* a whole record: kTLS hands out what does not fit in the next read,
	 * and an origin's NewSessionTicket is far longer than an alert */
	uint8_t rec[16384 + 256];
	size_t got = 0, off;
	uint8_t desc = 10;	/* unexpected_message */
	bool request;
	int type = pool->sys->recv_record(fd, rec, sizeof(rec), &got);

	if (type == -EAGAIN)
		return 0;
	if (type < 0) {
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN,
			 "%s kTLS receive: %s", who, strerror(-type));
		return -1;
	}
	if (type == 0 && got == 0) {
		if (client)
			c->flags |= KG_CF_TRUNCATED;	/* a FIN with no close_notify */
		return 1;
	}
	switch (type) {
	case 21:	/* alert */
		if (got >= 2 && rec[1] == 0)
			return 1;
		if (got >= 2 && rec[1] == 90)
			return 0;	/* user_canceled: a close_notify follows */
		/* an origin leg in the kernel had a TLS handshake: bhs is there */
		if (!client && got >= 2)
			c->bhs->alert_rcvd = rec[1];	/* the origin refusing us (conn.c) */
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN, "%s alert %s", who,
			 got >= 2 ? SSL_alert_desc_string_long(rec[1]) : "?");
		return -1;
	case 22:	/* handshake */
		/* NewSessionTickets (an origin sends them after its handshake,
		 * one or more per record): nothing to do */
		for (off = 0; off + 4 <= got && rec[off] == 4;)
			off += 4 + ((size_t)rec[off + 1] << 16 | (size_t)rec[off + 2] << 8 | rec[off + 3]);
		if (got >= 1 && off >= got)
			return 0;
		if (off < got && rec[off] == 24 && c->kk[client ? 0 : 1] && pool->sys->rekey &&
		    kg_ktls_parse_keyupdate(rec + off, got - off, &request)) {
			/* The peer's next key, before anything else is read
			 * (the kernel holds its records until then); ours goes
			 * out before our next data when it asks for it. */
			int r = pool->sys->rekey(fd, c->kk[client ? 0 : 1], KG_KTLS_RX);

			if (r) {
				snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN,
					 "%s KeyUpdate: the kernel refused the next key: %s",
					 who, strerror(-r));
				c->flags |= KG_CF_KEYUPDATE;
				return -1;
			}
			c->rekeys[0]++;
			if (request) {
				c->flags |= client ? KG_CF_KU_OWED_C : KG_CF_KU_OWED_B;
				r = kg_ku_flush(pool, c, client);
				if (r && r != -EAGAIN)
					return -1;
			}
			return 0;
		}
		if (off < got && rec[off] == 24 && c->kk[client ? 0 : 1] && pool->sys->rekey) {
			/* A KeyUpdate we could follow, but not as sent: more in
			 * its record (RFC 8446 §5.1) or a request that is
			 * neither 0 nor 1 (§4.6.3). */
			snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN,
				 "malformed KeyUpdate from the %s", who);
			if (got - off == 5)
				desc = 47;	/* illegal_parameter */
			break;
		}
		if (off < got && rec[off] == 24) {
			/* The kernel cannot follow a TLS 1.3 key update before
			 * 6.14: end cleanly. */
			snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN, "%s KeyUpdate", who);
			c->flags |= KG_CF_KEYUPDATE;
			return -1;
		}
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN,
			 "unexpected handshake message %u from the %s",
			 off < got ? rec[off] : 0, who);
		break;
	default:
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN,
			 "unexpected TLS record type %d from the %s", type, who);
		break;
	}
	/* Tell the peer why, as OpenSSL would: unexpected_message, unless
	 * said otherwise above. */
	if (kg_leg_ktls(c, client) & KG_KTLS_TX)
		(void)pool->sys->send_alert(fd, 2, desc);
	return -1;
}

/* One direction of the splice path: source → pipe → sink, no copy here.
 * Client bytes are counted where they meet the client socket. */
static int kg_half_splice(struct kg_pool *pool, struct kg_conn *c, bool c2b, bool *progress)
{
	int from = c2b ? c->cfd : c->bfd, to = c2b ? c->bfd : c->cfd;
	int *p = c2b ? c->pc2b : c->pb2c;
	uint32_t *plen = c2b ? &c->pc2b_len : &c->pb2c_len;
	unsigned eof = c2b ? KG_CF_C_RD_EOF : KG_CF_B_RD_EOF;
	const char *src = c2b ? "client" : "backend", *dst = c2b ? "backend" : "client";
	int src_err = c2b ? KG_HALF_CLIENT_ERR : KG_HALF_BACKEND_ERR;
	bool src_ktls = kg_leg_ktls(c, c2b) & KG_KTLS_RX;
	int r, rd_err = KG_HALF_OK;
	ssize_t n;

	if (!(c->flags & eof)) {
		if (kg_pipe_get(pool, p))
			return KG_HALF_NOMEM;
		while (*plen < KG_PIPE_CAP) {
			n = pool->sys->splice(from, p[1], KG_PIPE_CAP - *plen);
			if (n > 0) {
				*plen += (uint32_t)n;
				if (c2b)
					c->bytes_in += (uint64_t)n;
				else
					c->flags |= KG_CF_B_DATA;
				*progress = true;
				continue;
			}
			if (n == 0) {
				/* kTLS reports a FIN that came without close_notify
				 * as EOF: the client's stream may be cut short */
				c->flags |= eof | (c2b && src_ktls ? KG_CF_TRUNCATED : 0);
				*progress = true;
				break;
			}
			if (errno == EAGAIN || errno == EINTR)
				break;
			if (!src_ktls || (errno != EINVAL && errno != EIO)) {
				snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN,
					 "%s splice: %s", src, strerror(errno));
				rd_err = src_err;
				break;
			}
			/* a control record is next: the named slow path */
			r = kg_ktls_control(pool, c, c2b);
			*progress = true;
			if (r < 0) {
				rd_err = src_err;	/* after the bytes before it */
				break;
			}
			if (r > 0) {
				c->flags |= eof;
				break;
			}
		}
	}
	if (*plen) {
		r = kg_ku_flush(pool, c, !c2b);
		if (r == -EAGAIN)
			return rd_err;
		if (r)
			return c2b ? KG_HALF_BACKEND_ERR : KG_HALF_CLIENT_ERR;
	}
	while (*plen) {
		n = pool->sys->splice(p[0], to, *plen);
		if (n > 0) {
			*plen -= (uint32_t)n;
			if (!c2b)
				c->bytes_out += (uint64_t)n;
			*progress = true;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN,
			 "%s splice: %s", dst, n ? strerror(errno) : "EOF");
		return c2b ? KG_HALF_BACKEND_ERR : KG_HALF_CLIENT_ERR;
	}
	if (!*plen)
		kg_pipe_put(pool, p, true);
	return rd_err;
}

/* ---- the pump ----------------------------------------------------------- */

enum kg_close_reason kg_pump_check_errors(struct kg_conn *c)
{
	for (int side = 0; side < 2; side++) {
		unsigned bit = side ? KG_CF_B_ERR : KG_CF_C_ERR;
		int err = 0, fd = side ? c->bfd : c->cfd;
		socklen_t len = sizeof(err);

		if (!(c->flags & bit))
			continue;
		c->flags &= ~bit;
		if (fd >= 0 && !getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) && err) {
			snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN,
				 "%s: %s", side ? "backend" : "client", strerror(err));
			return side ? KG_CLOSE_BACKEND_ERROR : KG_CLOSE_CLIENT_ERROR;
		}
	}
	return KG_CLOSE_NONE;
}

enum kg_pump_verdict kg_pump_run(struct kg_pool *pool, struct kg_conn *c, unsigned budget,
				 bool *any, enum kg_close_reason *why)
{
	bool progress;
	int st;

	*any = false;
	*why = KG_CLOSE_NONE;
	c->flags &= ~(KG_CF_C_DRAINED | KG_CF_B_DRAINED);
	do {
		progress = false;
		st = kg_dir_splice(c, true) ? kg_half_splice(pool, c, true, &progress) :
					      kg_half_copy(pool, c, &kg_half_c2b, &progress);
		if (st != KG_HALF_OK)
			goto fail;
		if ((c->flags & KG_CF_C_RD_EOF) && !kg_pump_pending_to_backend(c) &&
		    !(c->flags & KG_CF_B_WR_SHUT)) {
			if (c->flags & KG_CF_TRUNCATED) {
				/* No close_notify: the client's stream may be cut
				 * short, so the backend must not see a clean end. */
				snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN,
					 "client closed without close_notify");
				*any = true;
				*why = KG_CLOSE_TRUNCATED;
				return KG_PUMP_FAILED;
			}
			if (kg_leg_close_notify(pool, c, false) == 0) {
				(void)shutdown(c->bfd, SHUT_WR);
				c->flags |= KG_CF_B_WR_SHUT;
			}
		}

		st = kg_dir_splice(c, false) ? kg_half_splice(pool, c, false, &progress) :
					      kg_half_copy(pool, c, &kg_half_b2c, &progress);
		if (st != KG_HALF_OK)
			goto fail;
		if ((c->flags & KG_CF_B_RD_EOF) && !kg_pump_pending_to_client(c) &&
		    !(c->flags & KG_CF_C_WR_SHUT) && kg_pump_close_notify(pool, c) == 0) {
			(void)shutdown(c->cfd, SHUT_WR);
			c->flags |= KG_CF_C_WR_SHUT;
			progress = true;
		}
		*any |= progress;
		if ((c->flags & KG_CF_ALL_DONE) == KG_CF_ALL_DONE)
			return KG_PUMP_FINISHED;
	} while (progress && --budget);
	return progress ? KG_PUMP_MORE : KG_PUMP_WAIT;
fail:
	*any = true;
	switch (st) {
	case KG_HALF_NOMEM:
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN,
			 "out of memory for buffers or pipes");
		*why = KG_CLOSE_INTERNAL;
		break;
	case KG_HALF_BACKEND_ERR:
		*why = c->flags & KG_CF_KEYUPDATE ? KG_CLOSE_KEYUPDATE : KG_CLOSE_BACKEND_ERROR;
		break;
	default:
		*why = c->flags & KG_CF_KEYUPDATE ? KG_CLOSE_KEYUPDATE : KG_CLOSE_CLIENT_ERROR;
		break;
	}
	return KG_PUMP_FAILED;
}
