/*
 * A worker: one thread, one io_uring, one SO_REUSEPORT socket per listener.
 * Shared-nothing: a connection lives and dies on the worker that accepted it.
 *
 * Readiness comes from io_uring: a multishot accept per listener and one
 * multishot poll per socket, armed once for the socket's lifetime. Multishot
 * poll reports wake-ups (edge-triggered), so every event runs the whole
 * connection pump until each side has hit EAGAIN, a full buffer or EOF; a
 * pump that runs out of budget puts the connection on the ready list so one
 * busy connection never starves the others.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <liburing.h>
#include <openssl/err.h>

#include "conn.h"
#include "gateway.h"
#include "ktls.h"
#include "log.h"
#include "proxy_proto.h"
#include "revoke.h"
#include "stats.h"
#include "verify.h"

#define KG_RING_ENTRIES 1024
#define KG_TICK_MS 100
#define KG_PUMP_BUDGET 16		/* buffer-fulls per direction per pump */
#define KG_BUF_CACHE 64			/* free buffers kept per worker */
#define KG_LINGER_MS 1000		/* wait for the peer to read our alert */

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

struct kg_worker {
	struct kg_gw *gw;
	unsigned idx;
	pthread_t th;
	bool started;
	struct io_uring ring;
	int *lfd;			/* per listener; -1 once closed */
	bool *accepting;		/* multishot accept armed */
	int efd;
	uint64_t efd_val;
	struct __kernel_timespec tick_ts, retry_ts;
	uint64_t now_ms;
	uint64_t seq;

	/* Connection table: a slot index + generation make the io_uring cookie. */
	struct kg_conn **conns;
	uint32_t *gens;
	uint32_t *free_slots;
	uint32_t cap, n_free, n_live;

	struct kg_conn **ready;		/* pumps that ran out of budget */
	uint32_t n_ready, ready_cap;

	struct kg_buf *buf_cache;
	unsigned n_buf_cache;
	int pipes[64][2];		/* empty splice pipes ready for reuse */
	unsigned n_pipes;

	uint64_t drain_deadline;
	bool draining;

	/* Mailbox from the main thread: connections to close, snapshots. */
	pthread_mutex_t mbox_lock;
	struct kg_kill { uint64_t id; int reason; } *mbox;
	size_t mbox_n, mbox_cap;
	struct kg_snap_req *snaps[8];
	unsigned n_snaps;

	struct kg_stats stats;

	/* handshake_rate: one token bucket per listener, this worker's share */
	double *tokens;
	uint64_t *tokens_ms;
};

struct kg_stats *kg_worker_stats(struct kg_worker *w)
{
	return &w->stats;
}

#define KG_CONN_ID_BASE 1000000000ULL

unsigned kg_conn_id_worker(uint64_t conn_id)
{
	return (unsigned)(conn_id / KG_CONN_ID_BASE) - 1;
}

static uint64_t kg_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct io_uring_sqe *kg_sqe(struct kg_worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	while (!sqe) {
		/* The SQ ring is full: hand what we have to the kernel. */
		if (io_uring_submit(&w->ring) < 0)
			continue;
		sqe = io_uring_get_sqe(&w->ring);
	}
	return sqe;
}

static void kg_pipe_put(struct kg_worker *w, int p[2], bool empty);

/* ---- buffers ------------------------------------------------------------ */

static struct kg_buf *kg_buf_get(struct kg_worker *w, struct kg_buf **slot)
{
	struct kg_buf *b = *slot;

	if (b)
		return b;
	b = w->buf_cache;
	if (b) {
		w->buf_cache = b->next;
		w->n_buf_cache--;
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

/* Give an empty buffer back: idle connections hold no buffer at all. */
static void kg_buf_put(struct kg_worker *w, struct kg_buf **slot)
{
	struct kg_buf *b = *slot;

	if (!b)
		return;
	*slot = NULL;
	if (w->n_buf_cache < KG_BUF_CACHE) {
		b->next = w->buf_cache;
		w->buf_cache = b;
		w->n_buf_cache++;
	} else {
		free(b);
	}
}

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

/* ---- connection table --------------------------------------------------- */

static int kg_table_grow(struct kg_worker *w)
{
	uint32_t ncap = w->cap ? w->cap * 2 : 256, i;
	struct kg_conn **nc;
	uint32_t *ng, *nf;

	nc = realloc(w->conns, ncap * sizeof(*nc));
	if (!nc)
		return -ENOMEM;
	w->conns = nc;
	ng = realloc(w->gens, ncap * sizeof(*ng));
	if (!ng)
		return -ENOMEM;
	w->gens = ng;
	nf = realloc(w->free_slots, ncap * sizeof(*nf));
	if (!nf)
		return -ENOMEM;
	w->free_slots = nf;
	for (i = ncap; i > w->cap; i--) {
		w->conns[i - 1] = NULL;
		w->gens[i - 1] = 0;
		w->free_slots[w->n_free++] = i - 1;
	}
	w->cap = ncap;
	return 0;
}

static struct kg_conn *kg_conn_lookup(struct kg_worker *w, uint64_t cookie)
{
	uint32_t idx = kg_cookie_idx(cookie);
	struct kg_conn *c;

	if (idx >= w->cap)
		return NULL;
	c = w->conns[idx];
	if (!c || (c->gen & 0xffffff) != kg_cookie_gen(cookie))
		return NULL;	/* a late completion for a connection already gone */
	return c;
}

/* ---- logging ------------------------------------------------------------ */

static const char *const kg_state_path[] = {
	[KG_ST_HANDSHAKE] = "handshake", [KG_ST_CONNECTING] = "connecting",
	[KG_ST_PROXY] = "userspace", [KG_ST_LINGER] = "closing",
};

static void kg_fmt_peer(const struct sockaddr_storage *ss, char *out, size_t outsz)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		port = ntohs(s4->sin_port);
		snprintf(out, outsz, "%s:%u", host, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		port = ntohs(s6->sin6_port);
		snprintf(out, outsz, "[%s]:%u", host, port);
	} else {
		snprintf(out, outsz, "?");
	}
}

static void kg_access_log(struct kg_worker *w, struct kg_conn *c)
{
	char fp[KG_FP_HEX_LEN] = "-", subj[512], line[1536];
	uint64_t dur = w->now_ms - c->start_ms;

	if (c->has_fp)
		kg_fp_format(c->fp, false, fp, sizeof(fp));
	if (kg_log_json()) {
		char esc[600];

		kg_json_escape(esc, sizeof(esc), c->cn);
		snprintf(line, sizeof(line),
			 "{\"event\":\"access\",\"conn\":%llu,\"worker\":%u,\"listener\":\"%s\","
			 "\"server_name\":\"%s\",\"client\":\"%s\",\"subject\":\"%s\",\"sha256\":\"%s\",\"tls\":\"%s\","
			 "\"cipher\":\"%s\",\"bytes_in\":%llu,\"bytes_out\":%llu,\"duration_ms\":%llu,"
			 "\"path\":\"%s\",\"reason\":\"%s\"}\n",
			 (unsigned long long)c->id, w->idx, c->conf->name, c->server_name, c->peer,
			 esc, fp, c->tls_version, c->cipher, (unsigned long long)c->bytes_in,
			 (unsigned long long)c->bytes_out, (unsigned long long)dur,
			 c->path, kg_close_reason_str(c->reason));
		kg_log_raw(line);
		return;
	}
	snprintf(subj, sizeof(subj), "%s", c->cn[0] ? c->cn : "-");
	kg_info("access conn=%llu worker=%u listener=%s%s%s client=%s subject=\"%s\" sha256=%s "
		"tls=%s cipher=%s bytes_in=%llu bytes_out=%llu duration_ms=%llu path=%s reason=%s%s%s",
		(unsigned long long)c->id, w->idx, c->conf->name,
		c->server_name[0] ? " server_name=" : "", c->server_name, c->peer, subj, fp,
		c->tls_version, c->cipher, (unsigned long long)c->bytes_in,
		(unsigned long long)c->bytes_out, (unsigned long long)dur, c->path,
		kg_close_reason_str(c->reason), c->detail[0] ? " detail=" : "", c->detail);
}

/* ---- connection lifecycle ----------------------------------------------- */

static void kg_poll_arm(struct kg_worker *w, struct kg_conn *c, int fd, enum kg_op op)
{
	struct io_uring_sqe *sqe = kg_sqe(w);

	io_uring_prep_poll_multishot(sqe, fd, POLLIN | POLLOUT | POLLRDHUP | POLLERR | POLLHUP);
	io_uring_sqe_set_data64(sqe, kg_cookie(op, c->slot, c->gen));
	if (op == KG_OP_CPOLL)
		c->cpoll_armed = true;
	else
		c->bpoll_armed = true;
}

static void kg_poll_cancel(struct kg_worker *w, struct kg_conn *c, enum kg_op op)
{
	struct io_uring_sqe *sqe = kg_sqe(w);

	io_uring_prep_poll_remove(sqe, kg_cookie(op, c->slot, c->gen));
	io_uring_sqe_set_data64(sqe, kg_cookie(KG_OP_IGNORE, 0, 0));
}

static void kg_conn_free(struct kg_worker *w, struct kg_conn *c)
{
	uint32_t j;

	if (c->on_ready)
		for (j = 0; j < w->n_ready; j++)
			if (w->ready[j] == c)
				w->ready[j] = NULL;
	if (c->cpoll_armed)
		kg_poll_cancel(w, c, KG_OP_CPOLL);
	if (c->bpoll_armed)
		kg_poll_cancel(w, c, KG_OP_BPOLL);
	if (c->cfd >= 0)
		close(c->cfd);
	if (c->bfd >= 0)
		close(c->bfd);
	SSL_free(c->ssl);
	X509_free(c->hs.leaf);
	free(c->pp);
	kg_buf_put(w, &c->c2b);
	kg_buf_put(w, &c->b2c);
	kg_pipe_put(w, c->pc2b, c->pc2b_len == 0);
	kg_pipe_put(w, c->pb2c, c->pb2c_len == 0);
	kg_tls_ctx_put(c->tls);
	KG_STAT_SUB(&w->stats, conns_active, 1);
	__atomic_sub_fetch(&c->lst->active, 1, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&w->gw->active, 1, __ATOMIC_RELAXED);
	w->conns[c->slot] = NULL;
	w->gens[c->slot]++;
	w->free_slots[w->n_free++] = c->slot;
	w->n_live--;
	free(c);
}

/* End the connection now: log its access line and release everything. */
static void kg_conn_close(struct kg_worker *w, struct kg_conn *c, enum kg_close_reason r)
{
	/* A socket aborted by bpf_sock_destroy() shows up as an I/O error:
	 * name the real cause. */
	if ((r == KG_CLOSE_CLIENT_ERROR || r == KG_CLOSE_BACKEND_ERROR) && c->has_fp &&
	    w->gw->rev && kg_ebpf_revoked(w->gw->rev->bpf, c->fp, NULL) == 1)
		r = KG_CLOSE_REVOKED;
	if (c->reason == KG_CLOSE_NONE)
		c->reason = r;
	if (!c->logged_reject)
		kg_access_log(w, c);
	KG_STAT_ADD(&w->stats, closes[c->reason < KG_CLOSE__COUNT ? c->reason : KG_CLOSE_NONE], 1);
	KG_STAT_ADD(&w->stats, bytes_in, c->bytes_in);
	KG_STAT_ADD(&w->stats, bytes_out, c->bytes_out);
	if (r == KG_CLOSE_REVOKED)
		KG_STAT_ADD(&w->stats, revoked_cuts, 1);
	else if (r == KG_CLOSE_BACKEND_ERROR)
		KG_STAT_ADD(&w->stats, backend_errors, 1);
	/* Abortive close when a side broke: the other peer must learn that the
	 * stream is incomplete, not see a clean end. */
	if ((r == KG_CLOSE_CLIENT_ERROR || r == KG_CLOSE_BACKEND_ERROR || r == KG_CLOSE_REVOKED ||
	     r == KG_CLOSE_KILLED) && c->state == KG_ST_PROXY) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		(void)setsockopt(c->cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		if (c->bfd >= 0)
			(void)setsockopt(c->bfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	kg_conn_free(w, c);
}

/*
 * Stop talking to the client but let it read what we sent (an alert or a
 * close_notify) before the socket goes: closing with unread input would turn
 * our FIN into an RST that can overtake the alert.
 */
static void kg_conn_linger(struct kg_worker *w, struct kg_conn *c, enum kg_close_reason r)
{
	if (c->reason == KG_CLOSE_NONE)
		c->reason = r;
	if (r == KG_CLOSE_BACKEND_CONNECT)
		KG_STAT_ADD(&w->stats, backend_connect_fail, 1);
	if (c->bfd >= 0) {
		if (c->bpoll_armed) {
			kg_poll_cancel(w, c, KG_OP_BPOLL);
			c->bpoll_armed = false;
		}
		close(c->bfd);
		c->bfd = -1;
	}
	kg_buf_put(w, &c->c2b);
	kg_buf_put(w, &c->b2c);
	kg_pipe_put(w, c->pc2b, c->pc2b_len == 0);
	kg_pipe_put(w, c->pb2c, c->pb2c_len == 0);
	c->pc2b_len = c->pb2c_len = 0;
	(void)shutdown(c->cfd, SHUT_WR);
	c->state = KG_ST_LINGER;
	c->deadline_ms = w->now_ms + KG_LINGER_MS;
}

static void kg_linger_event(struct kg_worker *w, struct kg_conn *c)
{
	char sink[4096];
	ssize_t n;

	for (;;) {
		n = recv(c->cfd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		break;		/* EOF or error: the client is done with us */
	}
	kg_conn_close(w, c, c->reason);
}

static void kg_ready_push(struct kg_worker *w, struct kg_conn *c)
{
	if (c->on_ready)
		return;
	if (w->n_ready == w->ready_cap) {
		uint32_t ncap = w->ready_cap ? w->ready_cap * 2 : 64;
		struct kg_conn **nr = realloc(w->ready, ncap * sizeof(*nr));

		if (!nr)
			return;	/* the next socket event pumps it instead */
		w->ready = nr;
		w->ready_cap = ncap;
	}
	c->on_ready = true;
	w->ready[w->n_ready++] = c;
}

/* ---- handshake ---------------------------------------------------------- */

static void kg_log_reject(struct kg_worker *w, struct kg_conn *c, const char *reason)
{
	char cert[900] = "no client certificate";
	const char *alert = c->hs.alert_sent < 0 ? "none" :
		/* OpenSSL 3.0 has no name for TLS 1.3's certificate_required */
		c->hs.alert_sent == SSL_AD_CERTIFICATE_REQUIRED ? "certificate required" :
		SSL_alert_desc_string_long(c->hs.alert_sent);

	if (c->hs.leaf)
		kg_cert_describe(c->hs.leaf, cert, sizeof(cert));
	KG_STAT_ADD(&w->stats, rejects[kg_rej_of(reason)], 1);
	kg_warn("reject conn=%llu listener=%s%s%s client=%s reason=%s alert=\"%s\" %s%s%s",
		(unsigned long long)c->id, c->conf->name, c->server_name[0] ? " server_name=" : "",
		c->server_name, c->peer, reason, alert, cert,
		c->detail[0] ? " detail=" : "", c->detail);
	c->logged_reject = true;
}

static const char *kg_hs_failure_reason(struct kg_conn *c)
{
	if (c->hs.verify_err != X509_V_OK)
		return kg_verify_reason(c->hs.verify_err);
	if (c->hs.alert_sent == SSL_AD_CERTIFICATE_REQUIRED ||
	    (c->hs.alert_sent == SSL_AD_HANDSHAKE_FAILURE && !c->hs.leaf &&
	     strstr(c->detail, "certificate")))
		return "no_certificate";
	if (c->hs.alert_rcvd >= 0)
		return "client_alert";
	/* Not TLS at all: plaintext HTTP, a scanner's probe, random bytes */
	if (c->hs.ssl_reason == SSL_R_WRONG_VERSION_NUMBER || c->hs.ssl_reason == SSL_R_HTTP_REQUEST ||
	    c->hs.ssl_reason == SSL_R_HTTPS_PROXY_REQUEST || c->hs.ssl_reason == SSL_R_UNKNOWN_PROTOCOL)
		return "not_tls";
	/* TLS, but malformed or abusive: we told the client with a fatal alert */
	if (c->hs.alert_sent == SSL_AD_DECODE_ERROR || c->hs.alert_sent == SSL_AD_RECORD_OVERFLOW ||
	    c->hs.alert_sent == SSL_AD_ILLEGAL_PARAMETER || c->hs.alert_sent == SSL_AD_UNEXPECTED_MESSAGE ||
	    c->hs.alert_sent == SSL_AD_PROTOCOL_VERSION || c->hs.alert_sent == SSL_AD_MISSING_EXTENSION ||
	    c->hs.alert_sent == SSL_AD_NO_RENEGOTIATION)
		return "protocol_error";
	return "handshake_error";
}

static void kg_backend_start(struct kg_worker *w, struct kg_conn *c);
static int kg_client_close_notify(struct kg_conn *c);

/*
 * Hand the keys to the kernel. Both directions offloaded: the TLS library
 * state is freed (an idle offloaded connection then holds no userspace TLS
 * memory). Returns non-zero if the connection was ended (ktls = on and the
 * session could not be offloaded).
 */
static int kg_offload(struct kg_worker *w, struct kg_conn *c)
{
	char why[96];

	c->ktls = kg_ktls_offload(c->ssl, c->cfd, &c->hs, why, sizeof(why));
	if (c->ktls != (KG_KTLS_TX | KG_KTLS_RX) && c->conf->ktls == KG_KTLS_ON) {
		snprintf(c->detail, sizeof(c->detail), "ktls = on but %s offloaded: %s",
			 c->ktls ? "only one direction" : "nothing", why[0] ? why : "?");
		kg_warn("conn=%llu listener=%s client=%s: refusing to serve: %s", (unsigned long long)c->id,
			c->conf->name, c->peer, c->detail);
		(void)kg_client_close_notify(c);
		kg_conn_linger(w, c, KG_CLOSE_KTLS_REQUIRED);
		return 1;
	}
	if (c->ktls != (KG_KTLS_TX | KG_KTLS_RX))
		kg_dbg("conn=%llu: kTLS %s: %s", (unsigned long long)c->id,
		       c->ktls == KG_KTLS_TX ? "transmit only" : c->ktls ? "receive only" : "not used", why);
	if (c->ktls == (KG_KTLS_TX | KG_KTLS_RX)) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	return 0;
}

/* Build the PROXY v2 header now: after an offload the SSL (and with it the
 * peer certificate) is gone. */
static int kg_pp2_prepare(struct kg_conn *c, X509 *peer)
{
	struct sockaddr_storage src, dst;
	socklen_t sl = sizeof(src), dl = sizeof(dst);
	struct kg_pp2_info in = { .src = &src, .dst = &dst, .cn = c->cn, .cipher = c->cipher };
	unsigned char *der = NULL;
	int derlen = 0, n;

	if (getpeername(c->cfd, (struct sockaddr *)&src, &sl) ||
	    getsockname(c->cfd, (struct sockaddr *)&dst, &dl)) {
		snprintf(c->detail, sizeof(c->detail), "PROXY header: %s", strerror(errno));
		return -1;
	}
	in.version = SSL_get_version(c->ssl);
	in.sha256 = c->has_fp ? c->fp : NULL;
	if (c->conf->proxy_cert && peer && (derlen = i2d_X509(peer, &der)) > 0) {
		in.cert_der = der;
		in.cert_len = (size_t)derlen;
	}
	c->pp = malloc(256 + (derlen > 0 ? (size_t)derlen : 0) + strlen(c->cn) + 128);
	n = c->pp ? kg_pp2_build(c->pp, 256 + (derlen > 0 ? (size_t)derlen : 0) + strlen(c->cn) + 128,
				 &in) : -ENOMEM;
	OPENSSL_free(der);
	if (n < 0) {
		snprintf(c->detail, sizeof(c->detail), "PROXY header: %s", strerror(-n));
		return -1;
	}
	c->pp_len = (size_t)n;
	return 0;
}

static void kg_handshake_event(struct kg_worker *w, struct kg_conn *c)
{
	int rc = SSL_do_handshake(c->ssl), e;
	unsigned long ec;
	X509 *peer;

	if (rc == 1) {
		peer = SSL_get0_peer_certificate(c->ssl);
		if (peer) {
			c->has_fp = kg_fp_x509(peer, c->fp) == 0;
			kg_cert_cn(peer, c->cn, sizeof(c->cn));
		}
		X509_free(c->hs.leaf);
		c->hs.leaf = NULL;
		KG_STAT_ADD(&w->stats, handshakes_ok, 1);
		snprintf(c->tls_version, sizeof(c->tls_version), "%s", kg_tls_version_short(c->ssl));
		snprintf(c->cipher, sizeof(c->cipher), "%s", SSL_get_cipher_name(c->ssl));
		c->server_name = kg_tls_server_name(c->ssl);
		if (c->conf->proxy_v2 && kg_pp2_prepare(c, peer)) {
			kg_err("conn=%llu: %s", (unsigned long long)c->id, c->detail);
			(void)kg_client_close_notify(c);
			kg_conn_linger(w, c, KG_CLOSE_INTERNAL);
			return;
		}
		if (w->gw->ktls && c->conf->ktls != KG_KTLS_OFF && kg_offload(w, c))
			return;
		kg_backend_start(w, c);
		return;
	}
	e = SSL_get_error(c->ssl, rc);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return;
	c->server_name = kg_tls_server_name(c->ssl);
	ec = ERR_peek_last_error();
	c->hs.ssl_reason = ec ? ERR_GET_REASON(ec) : 0;
	if (c->hs.verify_err != X509_V_OK)
		snprintf(c->detail, sizeof(c->detail), "certificate verify failed: %s",
			 X509_verify_cert_error_string(c->hs.verify_err));
	else if (ec)
		snprintf(c->detail, sizeof(c->detail), "%s", ERR_reason_error_string(ec) ?
			 ERR_reason_error_string(ec) : "?");
	ERR_clear_error();
	if (e == SSL_ERROR_SYSCALL && c->hs.alert_sent < 0) {
		/* The client went away mid-handshake: nothing to tell it. */
		snprintf(c->detail, sizeof(c->detail), "client closed the connection");
		kg_log_reject(w, c, c->hs.alert_rcvd >= 0 ? "client_alert" : "client_closed");
		kg_conn_close(w, c, KG_CLOSE_REJECTED);
		return;
	}
	kg_log_reject(w, c, kg_hs_failure_reason(c));
	kg_conn_linger(w, c, KG_CLOSE_REJECTED);
}

/* ---- backend ------------------------------------------------------------ */

static void kg_backend_start(struct kg_worker *w, struct kg_conn *c)
{
	const struct kg_addr *a = &c->conf->backend;
	int fd, one = 1;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(c->detail, sizeof(c->detail), "socket: %s", strerror(errno));
		kg_err("conn=%llu backend %s: cannot create a socket: %s", (unsigned long long)c->id,
		       a->text, strerror(errno));
		goto fail;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->bfd = fd;
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) && errno != EINPROGRESS) {
		snprintf(c->detail, sizeof(c->detail), "connect %s: %s", a->text, strerror(errno));
		kg_err("conn=%llu backend %s: connect failed: %s", (unsigned long long)c->id,
		       a->text, strerror(errno));
		goto fail;
	}
	c->state = KG_ST_CONNECTING;
	c->deadline_ms = w->now_ms + c->conf->connect_timeout_ms;
	kg_poll_arm(w, c, fd, KG_OP_BPOLL);
	return;
fail:
	/* Tell the client cleanly: close_notify, then FIN. */
	(void)kg_client_close_notify(c);
	kg_conn_linger(w, c, KG_CLOSE_BACKEND_CONNECT);
}

static void kg_pump(struct kg_worker *w, struct kg_conn *c);

static void kg_connect_event(struct kg_worker *w, struct kg_conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);
	struct pollfd pfd = { .fd = c->bfd, .events = POLLOUT };

	if (poll(&pfd, 1, 0) <= 0 || !(pfd.revents & (POLLOUT | POLLERR | POLLHUP)))
		return;		/* a spurious wake-up: still connecting */
	if (getsockopt(c->bfd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
		snprintf(c->detail, sizeof(c->detail), "connect %s: %s",
			 c->conf->backend.text, strerror(err ? err : errno));
		kg_err("conn=%llu listener=%s client=%s backend %s: connect failed: %s; check that "
		       "the backend is up", (unsigned long long)c->id, c->conf->name, c->peer,
		       c->conf->backend.text, strerror(err ? err : errno));
		(void)kg_client_close_notify(c);
		kg_conn_linger(w, c, KG_CLOSE_BACKEND_CONNECT);
		return;
	}
	if (c->pp) {
		/* The first bytes the backend sees; the socket is fresh and empty,
		 * so the header fits in its buffer. */
		ssize_t n = send(c->bfd, c->pp, c->pp_len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n != (ssize_t)c->pp_len) {
			snprintf(c->detail, sizeof(c->detail), "PROXY header to the backend: %s",
				 n < 0 ? strerror(errno) : "short write");
			(void)kg_client_close_notify(c);
			kg_conn_linger(w, c, KG_CLOSE_BACKEND_ERROR);
			return;
		}
		free(c->pp);
		c->pp = NULL;
	}
	if (w->gw->rev && c->has_fp && kg_ebpf_tag(w->gw->rev->bpf, c->bfd, c->fp, c->id))
		kg_warn("conn=%llu: cannot tag the backend socket for revocation",
			(unsigned long long)c->id);
	c->state = KG_ST_PROXY;
	{
		enum kg_path_kind pk = c->ktls == (KG_KTLS_TX | KG_KTLS_RX) ? KG_PATH_KTLS :
				       c->ktls == KG_KTLS_TX ? KG_PATH_KTLS_TX :
				       c->ktls == KG_KTLS_RX ? KG_PATH_KTLS_RX : KG_PATH_USER;

		c->path = pk == KG_PATH_USER ? kg_state_path[KG_ST_PROXY] : kg_path_name(pk);
		KG_STAT_ADD(&w->stats, paths[pk][strcmp(c->tls_version, "1.3") == 0]
			    [kg_stat_cipher_of(c->cipher)], 1);
	}
	c->deadline_ms = w->now_ms + c->conf->idle_timeout_ms;
	kg_dbg("conn=%llu established client=%s subject=\"%s\" tls=%s cipher=%s",
	       (unsigned long long)c->id, c->peer, c->cn, c->tls_version, c->cipher);
	kg_pump(w, c);
}

/* ---- the data pump (userspace TLS) -------------------------------------- */

/* Classify a failed SSL_read/SSL_write/SSL_shutdown. Returns 0 to wait for
 * readiness, 1 on a clean or unclean EOF from the client, -1 on error. */
static int kg_ssl_status(struct kg_conn *c, int ret)
{
	int e = SSL_get_error(c->ssl, ret);
	unsigned long ec;

	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		return 1;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		if (errno == 0 || errno == EPIPE) {
			c->flags |= KG_CF_TRUNCATED;
			return 1;
		}
		snprintf(c->detail, sizeof(c->detail), "client socket: %s", strerror(errno));
		return -1;
	default:
		ec = ERR_peek_last_error();
		if (ERR_GET_REASON(ec) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_clear_error();
			c->flags |= KG_CF_TRUNCATED;
			return 1;
		}
		snprintf(c->detail, sizeof(c->detail), "tls: %s",
			 ERR_reason_error_string(ec) ? ERR_reason_error_string(ec) : "?");
		ERR_clear_error();
		return -1;
	}
}

/* ---- kTLS: splice through a pipe, control records by recvmsg ------------ */

#define KG_PIPE_CAP (64 * 1024)	/* the default pipe size: 16 pages */
#define KG_PIPE_CACHE 64

static int kg_pipe_get(struct kg_worker *w, int p[2])
{
	if (p[0] >= 0)
		return 0;
	if (w->n_pipes) {
		w->n_pipes--;
		p[0] = w->pipes[w->n_pipes][0];
		p[1] = w->pipes[w->n_pipes][1];
		return 0;
	}
	return pipe2(p, O_NONBLOCK | O_CLOEXEC) ? -errno : 0;
}

/* Give an empty pipe back to the worker: idle connections hold none. */
static void kg_pipe_put(struct kg_worker *w, int p[2], bool empty)
{
	if (p[0] < 0)
		return;
	if (empty && w->n_pipes < KG_PIPE_CACHE) {
		w->pipes[w->n_pipes][0] = p[0];
		w->pipes[w->n_pipes][1] = p[1];
		w->n_pipes++;
	} else {
		close(p[0]);
		close(p[1]);
	}
	p[0] = p[1] = -1;
}

/*
 * The slow path of a kTLS receive: splice stopped at a record that is not
 * application data. Returns 1 for close_notify, 0 to go on, -1 to end the
 * connection (c->reason/detail set).
 */
static int kg_ktls_control(struct kg_worker *w, struct kg_conn *c)
{
	uint8_t rec[64];
	size_t got = 0;
	int type = kg_ktls_recv_record(c->cfd, rec, sizeof(rec), &got);

	if (type == -EAGAIN)
		return 0;
	if (type < 0) {
		snprintf(c->detail, sizeof(c->detail), "kTLS receive: %s", strerror(-type));
		return -1;
	}
	if (type == 0 && got == 0)
		return 1;	/* plain FIN */
	switch (type) {
	case 21:	/* alert */
		if (got >= 2 && rec[1] == 0)
			return 1;
		if (got >= 2 && rec[1] == 90)
			return 0;	/* user_canceled: a close_notify follows */
		snprintf(c->detail, sizeof(c->detail), "client alert %s",
			 got >= 2 ? SSL_alert_desc_string_long(rec[1]) : "?");
		return -1;
	case 22:	/* handshake */
		if (got >= 1 && rec[0] == 4)
			return 0;	/* NewSessionTicket: nothing to do */
		if (got >= 1 && rec[0] == 24) {
			/* The kernels this runs on cannot follow a TLS 1.3 key
			 * update (rekey arrived in 6.14): end cleanly. */
			KG_STAT_ADD(&w->stats, keyupdate_ends, 1);
			kg_warn("conn=%llu client=%s subject=\"%s\": KeyUpdate received; kernel TLS "
				"cannot rekey here, ending the connection cleanly",
				(unsigned long long)c->id, c->peer, c->cn);
			snprintf(c->detail, sizeof(c->detail), "client KeyUpdate");
			c->reason = KG_CLOSE_KEYUPDATE;
			return -1;
		}
		snprintf(c->detail, sizeof(c->detail), "unexpected handshake message %u",
			 got ? rec[0] : 0);
		return -1;
	default:
		snprintf(c->detail, sizeof(c->detail), "unexpected TLS record type %d", type);
		return -1;
	}
}

/* Tell the client we are done writing: close_notify, by OpenSSL or the kernel. */
static int kg_client_close_notify(struct kg_conn *c)
{
	int r;

	if (c->ssl) {
		r = SSL_shutdown(c->ssl);
		if (r < 0 && kg_ssl_status(c, r) == 0)
			return -EAGAIN;
		ERR_clear_error();
		return 0;
	}
	if (c->ktls & KG_KTLS_TX) {
		r = kg_ktls_send_alert(c->cfd, 1, 0);
		return r == -EAGAIN ? -EAGAIN : 0;
	}
	return 0;
}

/* ---- the data pump ------------------------------------------------------ */

enum { KG_PUMP_OK, KG_PUMP_CLIENT_ERR, KG_PUMP_BACKEND_ERR, KG_PUMP_NOMEM };

/* client → backend, userspace TLS */
static int kg_c2b_ssl(struct kg_worker *w, struct kg_conn *c, bool *progress)
{
	struct kg_buf *b;
	ssize_t n;
	int r;

	if (!(c->flags & (KG_CF_C_RD_EOF | KG_CF_C_DRAINED))) {
		b = kg_buf_get(w, &c->c2b);
		if (!b)
			return KG_PUMP_NOMEM;
		kg_buf_compact(b);
		while (kg_buf_space(b)) {
			c->flags &= ~KG_CF_RBIO_SHORT;
			r = SSL_read(c->ssl, b->data + b->off + b->len, (int)kg_buf_space(b));
			if (r > 0) {
				b->len += (uint32_t)r;
				c->bytes_in += (uint64_t)r;
				*progress = true;
				/* The socket ran dry under OpenSSL and nothing is buffered:
				 * skip the read that would only say EAGAIN. The poll is
				 * edge-triggered, so new data brings a new event. */
				if ((c->flags & KG_CF_RBIO_SHORT) && !(c->flags & KG_CF_C_HUP) &&
				    !SSL_has_pending(c->ssl)) {
					c->flags |= KG_CF_C_DRAINED;
					break;
				}
				continue;
			}
			c->flags |= KG_CF_C_DRAINED;
			r = kg_ssl_status(c, r);
			if (r < 0)
				return KG_PUMP_CLIENT_ERR;
			if (r > 0) {
				c->flags |= KG_CF_C_RD_EOF;
				*progress = true;
			}
			break;
		}
	}
	b = c->c2b;
	while (b && b->len) {
		n = send(c->bfd, b->data + b->off, b->len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			b->off += (uint32_t)n;
			b->len -= (uint32_t)n;
			*progress = true;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		snprintf(c->detail, sizeof(c->detail), "backend send: %s", strerror(errno));
		return KG_PUMP_BACKEND_ERR;
	}
	if (b && !b->len)
		kg_buf_put(w, &c->c2b);
	return KG_PUMP_OK;
}

/* client → backend, kernel TLS: splice cfd → pipe → bfd, no copy here */
static int kg_c2b_splice(struct kg_worker *w, struct kg_conn *c, bool *progress)
{
	ssize_t n;
	int r;

	if (!(c->flags & KG_CF_C_RD_EOF)) {
		if (kg_pipe_get(w, c->pc2b))
			return KG_PUMP_NOMEM;
		while (c->pc2b_len < KG_PIPE_CAP) {
			n = splice(c->cfd, NULL, c->pc2b[1], NULL, KG_PIPE_CAP - c->pc2b_len,
				   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
			if (n > 0) {
				c->pc2b_len += (uint32_t)n;
				c->bytes_in += (uint64_t)n;
				*progress = true;
				continue;
			}
			if (n == 0) {
				c->flags |= KG_CF_C_RD_EOF | KG_CF_TRUNCATED;
				*progress = true;
				break;
			}
			if (errno == EAGAIN || errno == EINTR)
				break;
			if (errno != EINVAL && errno != EIO) {
				snprintf(c->detail, sizeof(c->detail), "client splice: %s", strerror(errno));
				return KG_PUMP_CLIENT_ERR;
			}
			/* a control record is next: the named slow path */
			r = kg_ktls_control(w, c);
			if (r < 0)
				return KG_PUMP_CLIENT_ERR;
			*progress = true;
			if (r > 0) {
				c->flags |= KG_CF_C_RD_EOF;
				break;
			}
		}
	}
	while (c->pc2b_len) {
		n = splice(c->pc2b[0], NULL, c->bfd, NULL, c->pc2b_len, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (n > 0) {
			c->pc2b_len -= (uint32_t)n;
			*progress = true;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		snprintf(c->detail, sizeof(c->detail), "backend splice: %s", n ? strerror(errno) : "EOF");
		return KG_PUMP_BACKEND_ERR;
	}
	if (!c->pc2b_len)
		kg_pipe_put(w, c->pc2b, true);
	return KG_PUMP_OK;
}

/* backend → client, userspace TLS */
static int kg_b2c_ssl(struct kg_worker *w, struct kg_conn *c, bool *progress)
{
	struct kg_buf *b;
	ssize_t n;
	int r;

	if (!(c->flags & (KG_CF_B_RD_EOF | KG_CF_B_DRAINED))) {
		b = kg_buf_get(w, &c->b2c);
		if (!b)
			return KG_PUMP_NOMEM;
		kg_buf_compact(b);
		while (kg_buf_space(b)) {
			size_t want = kg_buf_space(b);

			n = recv(c->bfd, b->data + b->off + b->len, want, MSG_DONTWAIT);
			if (n > 0) {
				b->len += (uint32_t)n;
				*progress = true;
				/* a short read: the queue is empty, unless a FIN waits too */
				if ((size_t)n < want && !(c->flags & KG_CF_B_HUP)) {
					c->flags |= KG_CF_B_DRAINED;
					break;
				}
				continue;
			}
			c->flags |= KG_CF_B_DRAINED;
			if (n == 0) {
				c->flags |= KG_CF_B_RD_EOF;
				*progress = true;
				break;
			}
			if (errno == EAGAIN || errno == EINTR)
				break;
			snprintf(c->detail, sizeof(c->detail), "backend recv: %s", strerror(errno));
			return KG_PUMP_BACKEND_ERR;
		}
	}
	b = c->b2c;
	while (b && b->len) {
		r = SSL_write(c->ssl, b->data + b->off, (int)b->len);
		if (r > 0) {
			b->off += (uint32_t)r;
			b->len -= (uint32_t)r;
			c->bytes_out += (uint64_t)r;
			*progress = true;
			continue;
		}
		r = kg_ssl_status(c, r);
		if (r < 0)
			return KG_PUMP_CLIENT_ERR;
		if (r > 0) {
			snprintf(c->detail, sizeof(c->detail), "client stopped reading");
			return KG_PUMP_CLIENT_ERR;
		}
		break;
	}
	if (b && !b->len)
		kg_buf_put(w, &c->b2c);
	return KG_PUMP_OK;
}

/* backend → client, kernel TLS: splice bfd → pipe → cfd (the kernel encrypts) */
static int kg_b2c_splice(struct kg_worker *w, struct kg_conn *c, bool *progress)
{
	ssize_t n;

	if (!(c->flags & KG_CF_B_RD_EOF)) {
		if (kg_pipe_get(w, c->pb2c))
			return KG_PUMP_NOMEM;
		while (c->pb2c_len < KG_PIPE_CAP) {
			n = splice(c->bfd, NULL, c->pb2c[1], NULL, KG_PIPE_CAP - c->pb2c_len,
				   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
			if (n > 0) {
				c->pb2c_len += (uint32_t)n;
				*progress = true;
				continue;
			}
			if (n == 0) {
				c->flags |= KG_CF_B_RD_EOF;
				*progress = true;
				break;
			}
			if (errno == EAGAIN || errno == EINTR)
				break;
			snprintf(c->detail, sizeof(c->detail), "backend splice: %s", strerror(errno));
			return KG_PUMP_BACKEND_ERR;
		}
	}
	while (c->pb2c_len) {
		n = splice(c->pb2c[0], NULL, c->cfd, NULL, c->pb2c_len, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (n > 0) {
			c->pb2c_len -= (uint32_t)n;
			c->bytes_out += (uint64_t)n;
			*progress = true;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		snprintf(c->detail, sizeof(c->detail), "client splice: %s", n ? strerror(errno) : "EOF");
		return KG_PUMP_CLIENT_ERR;
	}
	if (!c->pb2c_len)
		kg_pipe_put(w, c->pb2c, true);
	return KG_PUMP_OK;
}

static void kg_pump(struct kg_worker *w, struct kg_conn *c)
{
	unsigned budget = KG_PUMP_BUDGET;
	bool progress;
	int st;

	c->flags &= ~(KG_CF_C_DRAINED | KG_CF_B_DRAINED);
	/* A reset peer must end the connection even while the other side is
	 * not reading (then nothing reads the dead socket to see it). Checked
	 * once per reported error, not on every pump. */
	for (int side = 0; side < 2 && (c->flags & (KG_CF_C_ERR | KG_CF_B_ERR)); side++) {
		unsigned bit = side ? KG_CF_B_ERR : KG_CF_C_ERR;
		int err = 0;
		socklen_t len = sizeof(err);

		if (!(c->flags & bit))
			continue;
		c->flags &= ~bit;
		if (!getsockopt(side ? c->bfd : c->cfd, SOL_SOCKET, SO_ERROR, &err, &len) && err) {
			snprintf(c->detail, sizeof(c->detail), "%s: %s", side ? "backend" : "client",
				 strerror(err));
			kg_conn_close(w, c, side ? KG_CLOSE_BACKEND_ERROR : KG_CLOSE_CLIENT_ERROR);
			return;
		}
	}

	do {
		progress = false;

		st = (c->ktls & KG_KTLS_RX) ? kg_c2b_splice(w, c, &progress) :
					      kg_c2b_ssl(w, c, &progress);
		if (st != KG_PUMP_OK)
			goto fail;
		if ((c->flags & KG_CF_C_RD_EOF) && !c->c2b && !c->pc2b_len &&
		    !(c->flags & KG_CF_B_WR_SHUT)) {
			(void)shutdown(c->bfd, SHUT_WR);
			c->flags |= KG_CF_B_WR_SHUT;
		}

		st = (c->ktls & KG_KTLS_TX) ? kg_b2c_splice(w, c, &progress) :
					      kg_b2c_ssl(w, c, &progress);
		if (st != KG_PUMP_OK)
			goto fail;
		if ((c->flags & KG_CF_B_RD_EOF) && !c->b2c && !c->pb2c_len &&
		    !(c->flags & KG_CF_C_WR_SHUT) && kg_client_close_notify(c) == 0) {
			(void)shutdown(c->cfd, SHUT_WR);
			c->flags |= KG_CF_C_WR_SHUT;
			progress = true;
		}

		if ((c->flags & KG_CF_ALL_DONE) == KG_CF_ALL_DONE) {
			kg_conn_close(w, c, KG_CLOSE_DONE);
			return;
		}
		if (progress)
			c->deadline_ms = w->now_ms + c->conf->idle_timeout_ms;
	} while (progress && --budget);
	if (progress)
		kg_ready_push(w, c);	/* more to do: come back after the others */
	return;
fail:
	switch (st) {
	case KG_PUMP_NOMEM:
		snprintf(c->detail, sizeof(c->detail), "out of memory for buffers or pipes");
		kg_conn_close(w, c, KG_CLOSE_INTERNAL);
		break;
	case KG_PUMP_BACKEND_ERR:
		kg_conn_close(w, c, KG_CLOSE_BACKEND_ERROR);
		break;
	default:
		if (c->reason == KG_CLOSE_KEYUPDATE) {
			/* Not an error: say goodbye properly. */
			(void)kg_client_close_notify(c);
			kg_conn_linger(w, c, KG_CLOSE_KEYUPDATE);
			break;
		}
		kg_conn_close(w, c, KG_CLOSE_CLIENT_ERROR);
		break;
	}
}

/* Notes when OpenSSL's read(2) came back short: the socket is empty. */
static long kg_rbio_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl,
		       int ret, size_t *processed)
{
	struct kg_conn *c;

	if (oper == (BIO_CB_READ | BIO_CB_RETURN) && ret > 0 && processed && *processed < len) {
		c = (struct kg_conn *)BIO_get_callback_arg(b);
		if (c)
			c->flags |= KG_CF_RBIO_SHORT;
	}
	return ret;
}

/* ---- accept ------------------------------------------------------------- */

static void kg_accept_arm(struct kg_worker *w, unsigned li)
{
	struct io_uring_sqe *sqe;

	if (w->lfd[li] < 0 || w->accepting[li])
		return;
	sqe = kg_sqe(w);
	io_uring_prep_multishot_accept(sqe, w->lfd[li], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, kg_cookie(KG_OP_ACCEPT, li, 0));
	w->accepting[li] = true;
}

static void kg_accept_retry_later(struct kg_worker *w, unsigned li)
{
	struct io_uring_sqe *sqe = kg_sqe(w);

	io_uring_prep_timeout(sqe, &w->retry_ts, 0, 0);
	io_uring_sqe_set_data64(sqe, kg_cookie(KG_OP_ACCEPT_RETRY, li, 0));
}

/* Token bucket: @rate per second over all workers, this worker its share,
 * with one second of burst. */
static bool kg_rate_take(struct kg_worker *w, unsigned li, unsigned rate)
{
	double share = (double)rate / w->gw->n_workers, cap = share < 1 ? 1 : share;

	if (!w->tokens_ms[li]) {
		w->tokens[li] = cap;
	} else {
		w->tokens[li] += share * (double)(w->now_ms - w->tokens_ms[li]) / 1000.0;
		if (w->tokens[li] > cap)
			w->tokens[li] = cap;
	}
	w->tokens_ms[li] = w->now_ms;
	if (w->tokens[li] < 1.0)
		return false;
	w->tokens[li] -= 1.0;
	return true;
}

/*
 * Close a just-accepted connection over a limit: counted per reason, logged
 * at most once a second per worker and reason (a flood must not become a
 * log flood), with how many were refused since the last line.
 */
static void kg_refuse(struct kg_worker *w, int fd, enum kg_rej why, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void kg_refuse(struct kg_worker *w, int fd, enum kg_rej why, const char *fmt, ...)
{
	static __thread uint64_t last_warn[KG_REJ__COUNT];
	static __thread unsigned long quiet[KG_REJ__COUNT];
	char msg[256];
	va_list ap;

	close(fd);
	KG_STAT_ADD(&w->stats, rejects[why], 1);
	if (last_warn[why] && w->now_ms - last_warn[why] < 1000) {
		quiet[why]++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kg_warn("%s (%lu more refused in the last second)", msg, quiet[why]);
	last_warn[why] = w->now_ms ? w->now_ms : 1;
	quiet[why] = 0;
}

static void kg_accept_event(struct kg_worker *w, unsigned li, int res, unsigned flags)
{
	struct kg_listener *l = &w->gw->lst[li];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct kg_conn *c;
	int one = 1;

	if (!(flags & IORING_CQE_F_MORE))
		w->accepting[li] = false;
	if (res < 0) {
		if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
			static __thread uint64_t last_warn;

			KG_STAT_ADD(&w->stats, accept_errors, 1);
			if (w->now_ms - last_warn > 5000) {
				kg_err("listener %s: accept: %s; raise the open-file limit (LimitNOFILE=) "
				       "or lower max_connections; pausing accepts for 100 ms",
				       l->conf->name, strerror(-res));
				last_warn = w->now_ms;
			}
			if (!w->accepting[li])
				kg_accept_retry_later(w, li);
			return;
		}
		if (res != -ECANCELED && res != -EINTR && res != -EAGAIN && res != -ECONNABORTED)
			kg_warn("listener %s: accept: %s", l->conf->name, strerror(-res));
		if (!w->accepting[li] && !w->gw->stop)
			kg_accept_arm(w, li);
		return;
	}
	if (!w->accepting[li] && !w->gw->stop)
		kg_accept_arm(w, li);
	if (w->gw->stop) {
		close(res);
		return;
	}
	/* Limits count every worker's connections (atomics): full means close
	 * at once, never queue. */
	if (w->gw->cfg->max_connections &&
	    __atomic_load_n(&w->gw->active, __ATOMIC_RELAXED) >= w->gw->cfg->max_connections) {
		kg_refuse(w, res, KG_REJ_MAX_CONN, "max_connections (%u, [global]) reached; closing "
			  "new connections on %s", w->gw->cfg->max_connections, l->conf->name);
		return;
	}
	if (l->conf->max_connections &&
	    __atomic_load_n(&l->active, __ATOMIC_RELAXED) >= l->conf->max_connections) {
		kg_refuse(w, res, KG_REJ_MAX_CONN, "listener %s: max_connections (%u) reached; "
			  "closing new connections", l->conf->name, l->conf->max_connections);
		return;
	}
	if (l->conf->handshake_rate && !kg_rate_take(w, li, l->conf->handshake_rate)) {
		kg_refuse(w, res, KG_REJ_RATE, "listener %s: handshake_rate (%u/s) exceeded; closing "
			  "new connections until it recovers", l->conf->name, l->conf->handshake_rate);
		return;
	}
	if (!w->n_free && kg_table_grow(w)) {
		close(res);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(res);
		return;
	}
	c->cfd = res;
	c->bfd = -1;
	c->pc2b[0] = c->pc2b[1] = c->pb2c[0] = c->pb2c[1] = -1;
	c->slot = w->free_slots[--w->n_free];
	c->gen = w->gens[c->slot];
	c->id = (uint64_t)(w->idx + 1) * KG_CONN_ID_BASE + ++w->seq;	/* readable, unique */
	c->lst = l;
	/* A reload may swap the listener's context and config: take both, and
	 * a reference, under the listener's lock. */
	pthread_mutex_lock(&l->lock);
	c->tls = l->tls;
	c->conf = l->conf;
	__atomic_add_fetch(&c->tls->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&l->lock);
	c->start_ms = w->now_ms;
	c->state = KG_ST_HANDSHAKE;
	c->path = kg_state_path[KG_ST_HANDSHAKE];
	c->deadline_ms = w->now_ms + l->conf->handshake_timeout_ms;
	snprintf(c->tls_version, sizeof(c->tls_version), "-");
	snprintf(c->cipher, sizeof(c->cipher), "-");
	c->server_name = "";
	w->conns[c->slot] = c;
	w->n_live++;
	__atomic_add_fetch(&l->active, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&w->gw->active, 1, __ATOMIC_RELAXED);
	KG_STAT_ADD(&w->stats, conns_total, 1);
	KG_STAT_ADD(&w->stats, conns_active, 1);
	if (getpeername(res, (struct sockaddr *)&ss, &sl) == 0)
		kg_fmt_peer(&ss, c->peer, sizeof(c->peer));
	else
		snprintf(c->peer, sizeof(c->peer), "?");
	(void)setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->ssl = kg_tls_new(c->tls, res, &c->hs);
	if (!c->ssl) {
		kg_conn_close(w, c, KG_CLOSE_INTERNAL);
		return;
	}
	c->hs.conn_id = c->id;
	BIO_set_callback_ex(SSL_get_rbio(c->ssl), kg_rbio_cb);
	BIO_set_callback_arg(SSL_get_rbio(c->ssl), (char *)c);
	kg_poll_arm(w, c, res, KG_OP_CPOLL);
	kg_handshake_event(w, c);
}

/* ---- events and timers --------------------------------------------------- */

static void kg_conn_event(struct kg_worker *w, struct kg_conn *c, bool client, int res,
			  unsigned flags)
{
	/* Remember a hang-up: a short read then no longer means "nothing more",
	 * the EOF itself is still to be read. */
	if (res > 0 && (res & (POLLRDHUP | POLLHUP | POLLERR)))
		c->flags |= client ? KG_CF_C_HUP : KG_CF_B_HUP;
	if (res > 0 && (res & POLLERR))
		c->flags |= client ? KG_CF_C_ERR : KG_CF_B_ERR;
	if (!(flags & IORING_CQE_F_MORE)) {
		/* The multishot poll ended (error or overflow): re-arm it. */
		if (client)
			c->cpoll_armed = false;
		else
			c->bpoll_armed = false;
		if (res != -ECANCELED)
			kg_poll_arm(w, c, client ? c->cfd : c->bfd, client ? KG_OP_CPOLL : KG_OP_BPOLL);
	}
	switch (c->state) {
	case KG_ST_HANDSHAKE:
		if (client)
			kg_handshake_event(w, c);
		break;
	case KG_ST_CONNECTING:
		if (!client)
			kg_connect_event(w, c);
		break;
	case KG_ST_PROXY:
		kg_pump(w, c);
		break;
	case KG_ST_LINGER:
		if (client)
			kg_linger_event(w, c);
		break;
	}
}

static void kg_tick_arm(struct kg_worker *w)
{
	struct io_uring_sqe *sqe = kg_sqe(w);

	io_uring_prep_timeout(sqe, &w->tick_ts, 0, 0);
	io_uring_sqe_set_data64(sqe, kg_cookie(KG_OP_TICK, 0, 0));
}

static void kg_tick(struct kg_worker *w)
{
	uint32_t i;

	for (i = 0; i < w->cap; i++) {
		struct kg_conn *c = w->conns[i];

		if (c && c->conf->max_lifetime_ms && c->state == KG_ST_PROXY &&
		    w->now_ms - c->start_ms >= c->conf->max_lifetime_ms) {
			snprintf(c->detail, sizeof(c->detail), "max_lifetime %u ms", c->conf->max_lifetime_ms);
			(void)kg_client_close_notify(c);
			kg_conn_linger(w, c, KG_CLOSE_MAX_LIFETIME);
			continue;
		}
		if (!c || c->deadline_ms > w->now_ms)
			continue;
		switch (c->state) {
		case KG_ST_HANDSHAKE:
			snprintf(c->detail, sizeof(c->detail), "no complete handshake within %u ms",
				 c->conf->handshake_timeout_ms);
			kg_log_reject(w, c, "handshake_timeout");
			kg_conn_close(w, c, KG_CLOSE_HANDSHAKE_TIMEOUT);
			break;
		case KG_ST_CONNECTING:
			snprintf(c->detail, sizeof(c->detail), "backend %s did not answer within %u ms",
				 c->conf->backend.text, c->conf->connect_timeout_ms);
			kg_err("conn=%llu listener=%s client=%s: %s", (unsigned long long)c->id,
			       c->conf->name, c->peer, c->detail);
			(void)kg_client_close_notify(c);
			kg_conn_linger(w, c, KG_CLOSE_BACKEND_CONNECT);
			break;
		case KG_ST_PROXY:
			kg_conn_close(w, c, KG_CLOSE_IDLE_TIMEOUT);
			break;
		case KG_ST_LINGER:
			kg_conn_close(w, c, c->reason);
			break;
		}
	}
}

static void kg_event_arm(struct kg_worker *w)
{
	struct io_uring_sqe *sqe = kg_sqe(w);

	io_uring_prep_read(sqe, w->efd, &w->efd_val, sizeof(w->efd_val), 0);
	io_uring_sqe_set_data64(sqe, kg_cookie(KG_OP_EVENT, 0, 0));
}

static void kg_stop_accepting(struct kg_worker *w)
{
	size_t i;

	for (i = 0; i < w->gw->n_lst; i++) {
		if (w->lfd[i] < 0)
			continue;
		if (w->accepting[i]) {
			struct io_uring_sqe *sqe = kg_sqe(w);

			io_uring_prep_cancel64(sqe, kg_cookie(KG_OP_ACCEPT, (uint32_t)i, 0), 0);
			io_uring_sqe_set_data64(sqe, kg_cookie(KG_OP_IGNORE, 0, 0));
		}
		close(w->lfd[i]);
		w->lfd[i] = -1;
	}
}

static void kg_close_all(struct kg_worker *w, enum kg_close_reason r)
{
	uint32_t i;

	for (i = 0; i < w->cap; i++)
		if (w->conns[i])
			kg_conn_close(w, w->conns[i], r);
}

/* Append every live connection of this worker to @r as JSON objects. */
static void kg_snapshot(struct kg_worker *w, struct kg_snap_req *r)
{
	static const char *const states[] = { "handshake", "connecting", "established", "closing" };
	char fp[KG_FP_HEX_LEN], cn[600], obj[1400];
	uint32_t i;
	int n;

	pthread_mutex_lock(&r->mu);
	for (i = 0; i < w->cap; i++) {
		struct kg_conn *c = w->conns[i];

		if (!c)
			continue;
		if (c->has_fp)
			kg_fp_format(c->fp, false, fp, sizeof(fp));
		else
			fp[0] = '\0';
		kg_json_escape(cn, sizeof(cn), c->cn);
		n = snprintf(obj, sizeof(obj),
			     "%s{\"id\":%llu,\"worker\":%u,\"listener\":\"%s\",\"server_name\":\"%s\","
			     "\"client\":\"%s\","
			     "\"subject\":\"%s\",\"sha256\":\"%s\",\"tls\":\"%s\",\"cipher\":\"%s\","
			     "\"path\":\"%s\",\"state\":\"%s\",\"bytes_in\":%llu,\"bytes_out\":%llu,"
			     "\"age_ms\":%llu}", r->len ? "," : "", (unsigned long long)c->id, w->idx,
			     c->conf->name, c->server_name, c->peer, cn, fp, c->tls_version, c->cipher, c->path,
			     states[c->state], (unsigned long long)c->bytes_in,
			     (unsigned long long)c->bytes_out, (unsigned long long)(w->now_ms - c->start_ms));
		if (n <= 0 || (size_t)n >= sizeof(obj))
			continue;
		if (r->len + (size_t)n + 1 > r->cap) {
			size_t ncap = (r->cap ? r->cap * 2 : 4096) + (size_t)n;
			char *nb = realloc(r->buf, ncap);

			if (!nb)
				break;
			r->buf = nb;
			r->cap = ncap;
		}
		memcpy(r->buf + r->len, obj, (size_t)n + 1);
		r->len += (size_t)n;
	}
	r->pending--;
	if (r->abandoned && !r->pending) {
		/* the requester gave up waiting: nobody else holds it now */
		pthread_mutex_unlock(&r->mu);
		pthread_mutex_destroy(&r->mu);
		pthread_cond_destroy(&r->cv);
		free(r->buf);
		free(r);
		return;
	}
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static void kg_mbox_run(struct kg_worker *w)
{
	struct kg_kill *k;
	size_t n, i;
	uint32_t j;

	struct kg_snap_req *snaps[8];
	unsigned ns, si;

	pthread_mutex_lock(&w->mbox_lock);
	k = w->mbox;
	n = w->mbox_n;
	w->mbox = NULL;
	w->mbox_n = w->mbox_cap = 0;
	ns = w->n_snaps;
	memcpy(snaps, w->snaps, ns * sizeof(snaps[0]));
	w->n_snaps = 0;
	pthread_mutex_unlock(&w->mbox_lock);
	for (si = 0; si < ns; si++)
		kg_snapshot(w, snaps[si]);
	for (i = 0; i < n; i++)
		for (j = 0; j < w->cap; j++) {
			struct kg_conn *c = w->conns[j];

			if (c && c->id == k[i].id) {
				if (k[i].reason == KG_CLOSE_REVOKED)
					snprintf(c->detail, sizeof(c->detail), "certificate revoked");
				kg_conn_close(w, c, (enum kg_close_reason)k[i].reason);
				break;
			}
		}
	free(k);
}

void kg_worker_post_snapshot(struct kg_worker *w, struct kg_snap_req *r)
{
	pthread_mutex_lock(&w->mbox_lock);
	if (w->n_snaps < 8) {
		w->snaps[w->n_snaps++] = r;
	} else {
		pthread_mutex_lock(&r->mu);	/* too many at once: answer empty */
		r->pending--;
		pthread_cond_signal(&r->cv);
		pthread_mutex_unlock(&r->mu);
	}
	pthread_mutex_unlock(&w->mbox_lock);
	kg_worker_kick(w);
}

void kg_worker_post_kill(struct kg_worker *w, uint64_t conn_id, int reason)
{
	pthread_mutex_lock(&w->mbox_lock);
	if (w->mbox_n == w->mbox_cap) {
		size_t ncap = w->mbox_cap ? w->mbox_cap * 2 : 16;
		struct kg_kill *nk = realloc(w->mbox, ncap * sizeof(*nk));

		if (!nk) {
			pthread_mutex_unlock(&w->mbox_lock);
			return;
		}
		w->mbox = nk;
		w->mbox_cap = ncap;
	}
	w->mbox[w->mbox_n].id = conn_id;
	w->mbox[w->mbox_n++].reason = reason;
	pthread_mutex_unlock(&w->mbox_lock);
	kg_worker_kick(w);
}

static void kg_dispatch(struct kg_worker *w, struct io_uring_cqe *cqe)
{
	uint64_t ck = io_uring_cqe_get_data64(cqe);
	struct kg_conn *c;

	switch (kg_cookie_op(ck)) {
	case KG_OP_ACCEPT:
		kg_accept_event(w, kg_cookie_idx(ck), cqe->res, cqe->flags);
		break;
	case KG_OP_ACCEPT_RETRY:
		if (!w->gw->stop)
			kg_accept_arm(w, kg_cookie_idx(ck));
		break;
	case KG_OP_CPOLL:
	case KG_OP_BPOLL:
		c = kg_conn_lookup(w, ck);
		if (c)
			kg_conn_event(w, c, kg_cookie_op(ck) == KG_OP_CPOLL, cqe->res, cqe->flags);
		break;
	case KG_OP_TICK:
		kg_tick(w);
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

static void *kg_worker_main(void *arg)
{
	struct kg_worker *w = arg;
	struct io_uring_cqe *cqe;
	unsigned head, n;
	size_t i;
	int stop_seen = 0;

	w->now_ms = kg_now_ms();
	for (i = 0; i < w->gw->n_lst; i++)
		kg_accept_arm(w, (unsigned)i);
	kg_tick_arm(w);
	kg_event_arm(w);
	for (;;) {
		int rc;

		if (w->n_ready) {
			rc = io_uring_submit(&w->ring);
		} else if (w->gw->wait_poll) {
			/* KTLSGW_WAIT_POLL=1: block in poll(2) on the ring, not in
			 * io_uring_enter(2). Valgrind does not treat the latter as
			 * blocking, so one idle worker would stall every thread. */
			rc = io_uring_submit(&w->ring);
			if (rc >= 0 && !io_uring_cq_ready(&w->ring)) {
				struct pollfd pfd = { .fd = w->ring.ring_fd, .events = POLLIN };

				(void)poll(&pfd, 1, -1);
			}
		} else {
			rc = io_uring_submit_and_wait(&w->ring, 1);
		}
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
			kg_err("worker %u: io_uring: %s", w->idx, strerror(-rc));
			break;
		}
		w->now_ms = kg_now_ms();
		n = 0;
		io_uring_for_each_cqe(&w->ring, head, cqe) {
			kg_dispatch(w, cqe);
			n++;
		}
		io_uring_cq_advance(&w->ring, n);

		if (w->n_ready) {
			uint32_t cnt = w->n_ready, j;

			/* Pumps may re-queue (appended past cnt) or close connections
			 * (their entries become NULL). */
			for (j = 0; j < cnt; j++) {
				struct kg_conn *c = w->ready[j];

				if (!c)
					continue;
				w->ready[j] = NULL;
				c->on_ready = false;
				if (c->state == KG_ST_PROXY)
					kg_pump(w, c);
			}
			memmove(w->ready, w->ready + cnt, (w->n_ready - cnt) * sizeof(*w->ready));
			w->n_ready -= cnt;
		}

		rc = __atomic_load_n(&w->gw->stop, __ATOMIC_ACQUIRE);
		if (rc && rc != stop_seen) {
			stop_seen = rc;
			kg_stop_accepting(w);
			if (rc >= 2) {
				kg_close_all(w, KG_CLOSE_SHUTDOWN);
			} else if (!w->draining) {
				w->draining = true;
				w->drain_deadline = w->now_ms + w->gw->drain_timeout_ms;
			}
		}
		if (w->draining && w->now_ms >= w->drain_deadline)
			kg_close_all(w, KG_CLOSE_SHUTDOWN);
		if (stop_seen && w->n_live == 0)
			break;
	}
	return NULL;
}

/* ---- setup -------------------------------------------------------------- */

static int kg_listen_socket(struct kg_listener *l, bool first, char *err, size_t errlen)
{
	const struct kg_addr *a = first ? &l->conf->listen : &l->bound;
	int fd, one = 1;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    bind(fd, (const struct sockaddr *)&a->ss, a->len) ||
	    listen(fd, l->conf->backlog)) {
		int e = errno;

		snprintf(err, errlen, "cannot listen on %s: %s%s", l->conf->listen.text, strerror(e),
			 e == EADDRINUSE ? "; another process holds the port" :
			 e == EACCES ? "; ports below 1024 need root or CAP_NET_BIND_SERVICE" : "");
		close(fd);
		return -e;
	}
	if (first) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char text[80];

		l->bound = l->conf->listen;
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
			memcpy(&l->bound.ss, &ss, sl);
			l->bound.len = sl;
		}
		kg_fmt_peer(&l->bound.ss, text, sizeof(text));
		snprintf(l->bound.text, sizeof(l->bound.text), "%s", text);
	}
	return fd;
}

int kg_worker_new(struct kg_gw *gw, unsigned idx, struct kg_worker **out)
{
	struct io_uring_params p = { 0 };
	struct kg_worker *w;
	char err[256];
	size_t i;
	int rc;

	*out = NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->gw = gw;
	w->idx = idx;
	w->efd = -1;
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
	p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
	rc = io_uring_queue_init_params(KG_RING_ENTRIES, &w->ring, &p);
	if (rc == -EINVAL) {	/* older kernels: plain ring */
		memset(&p, 0, sizeof(p));
		rc = io_uring_queue_init_params(KG_RING_ENTRIES, &w->ring, &p);
	}
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
		rc = kg_listen_socket(&gw->lst[i], idx == 0, err, sizeof(err));
		if (rc < 0) {
			kg_err("listener %s: %s", gw->lst[i].conf->name, err);
			goto fail;
		}
		w->lfd[i] = rc;
	}
	rc = kg_table_grow(w);
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
	if (w->started)
		pthread_join(w->th, NULL);
	for (i = 0; w->lfd && i < w->gw->n_lst; i++)
		if (w->lfd[i] >= 0)
			close(w->lfd[i]);
	for (i = 0; i < w->cap; i++)
		if (w->conns[i])
			kg_conn_close(w, w->conns[i], KG_CLOSE_SHUTDOWN);
	if (w->ring.ring_fd >= 0 && w->ring.ring_fd != 0)
		io_uring_queue_exit(&w->ring);
	if (w->efd >= 0)
		close(w->efd);
	while (w->n_pipes) {
		w->n_pipes--;
		close(w->pipes[w->n_pipes][0]);
		close(w->pipes[w->n_pipes][1]);
	}
	while (w->buf_cache) {
		struct kg_buf *b = w->buf_cache;

		w->buf_cache = b->next;
		free(b);
	}
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
