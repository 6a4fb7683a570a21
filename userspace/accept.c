/*
 * Accepting clients: each worker's SO_REUSEPORT socket per listener, the
 * limits (max_connections global and per listener, handshake_rate) and the
 * refusals they cause. Hands every admitted socket to conn.c and the
 * handshake; never reads or writes client bytes.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gateway.h"
#include "log.h"
#include "loop.h"

void kg_accept_arm(struct kg_worker *w, unsigned li)
{
	struct io_uring_sqe *sqe;

	if (w->lfd[li] < 0 || w->accepting[li])
		return;
	sqe = kg_loop_sqe(w);
	io_uring_prep_multishot_accept(sqe, w->lfd[li], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, kg_cookie(KG_OP_ACCEPT, li, 0));
	w->accepting[li] = true;
}

static void kg_accept_retry_later(struct kg_worker *w, unsigned li)
{
	struct io_uring_sqe *sqe = kg_loop_sqe(w);

	io_uring_prep_timeout(sqe, &w->retry_ts, 0, 0);
	io_uring_sqe_set_data64(sqe, kg_cookie(KG_OP_ACCEPT_RETRY, li, 0));
}

void kg_accept_retry_event(struct kg_worker *w, unsigned li)
{
	if (!__atomic_load_n(&w->gw->stop, __ATOMIC_ACQUIRE))
		kg_accept_arm(w, li);
}

void kg_accept_stop(struct kg_worker *w)
{
	for (size_t i = 0; i < w->gw->n_lst; i++) {
		if (w->lfd[i] < 0)
			continue;
		if (w->accepting[i]) {
			struct io_uring_sqe *sqe = kg_loop_sqe(w);

			io_uring_prep_cancel64(sqe, kg_cookie(KG_OP_ACCEPT, (uint32_t)i, 0), 0);
			io_uring_sqe_set_data64(sqe, kg_cookie(KG_OP_IGNORE, 0, 0));
		}
		close(w->lfd[i]);
		w->lfd[i] = -1;
	}
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

/* An accept that failed: out of descriptors or memory pauses accepts on
 * this listener for a moment instead of spinning. */
static void kg_accept_failed(struct kg_worker *w, unsigned li, int res)
{
	struct kg_listener *l = &w->gw->lst[li];

	if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
		static __thread uint64_t last_warn;

		KG_STAT_ADD(&w->stats, accept_errors, 1);
		if (w->now_ms - last_warn > 5000) {
			kg_err("listener %s: accept: %s; raise the open-file limit (LimitNOFILE=) "
			       "or lower max_connections; pausing accepts for 100 ms",
			       l->name, strerror(-res));
			last_warn = w->now_ms;
		}
		if (!w->accepting[li])
			kg_accept_retry_later(w, li);
		return;
	}
	if (res != -ECANCELED && res != -EINTR && res != -EAGAIN && res != -ECONNABORTED)
		kg_warn("listener %s: accept: %s", l->name, strerror(-res));
	if (!w->accepting[li] && !__atomic_load_n(&w->gw->stop, __ATOMIC_ACQUIRE))
		kg_accept_arm(w, li);
}

/* Over a limit? Then the socket is closed, counted and (rate-limited) logged. */
static bool kg_accept_refused(struct kg_worker *w, unsigned li, const struct kg_lsnap *s, int fd)
{
	const struct kg_config *g = s->gen->cfg;
	const struct kg_listener_conf *lc = s->conf;
	struct kg_listener *l = &w->gw->lst[li];

	/* Limits count every worker's connections (atomics): full means close
	 * at once, never queue. */
	if (g->max_connections &&
	    __atomic_load_n(&w->gw->active, __ATOMIC_RELAXED) >= g->max_connections) {
		kg_refuse(w, fd, KG_REJ_MAX_CONN, "max_connections (%u, [global]) reached; closing "
			  "new connections on %s", g->max_connections, lc->name);
		return true;
	}
	if (lc->max_connections && __atomic_load_n(&l->active, __ATOMIC_RELAXED) >= lc->max_connections) {
		kg_refuse(w, fd, KG_REJ_MAX_CONN, "listener %s: max_connections (%u) reached; "
			  "closing new connections", lc->name, lc->max_connections);
		return true;
	}
	if (lc->handshake_rate && !kg_rate_take(w, li, lc->handshake_rate)) {
		kg_refuse(w, fd, KG_REJ_RATE, "listener %s: handshake_rate (%u/s) exceeded; closing "
			  "new connections until it recovers", lc->name, lc->handshake_rate);
		return true;
	}
	return false;
}

void kg_accept_event(struct kg_worker *w, unsigned li, int res, unsigned flags)
{
	struct kg_listener *l = &w->gw->lst[li];
	struct kg_lsnap *snap;
	struct kg_conn *c;
	int one = 1;

	if (!(flags & IORING_CQE_F_MORE))
		w->accepting[li] = false;
	if (res < 0) {
		kg_accept_failed(w, li, res);
		return;
	}
	if (!w->accepting[li] && !__atomic_load_n(&w->gw->stop, __ATOMIC_ACQUIRE))
		kg_accept_arm(w, li);
	if (__atomic_load_n(&w->gw->stop, __ATOMIC_ACQUIRE)) {
		close(res);
		return;
	}
	/* A reload may swap the listener's snapshot: this connection keeps
	 * the one it was accepted under. */
	snap = kg_lsnap_get(l);
	if (kg_accept_refused(w, li, snap, res)) {
		kg_lsnap_put(snap);
		return;
	}
	(void)setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (kg_conn_open(w, l, snap, res, &c))
		return;
	kg_hs_start(w, c);
}

int kg_accept_listen(struct kg_listener *l, bool first, char *err, size_t errlen)
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
