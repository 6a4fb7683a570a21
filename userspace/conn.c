/*
 * Connections: the per-worker table, opening and ending a connection, its
 * access and reject lines, timeouts, and acting on what the pump reports.
 * Decides how each leg ends (close_notify, FIN or RST); moves no bytes
 * itself (pump.c) and reaches io_uring only through loop.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gateway.h"
#include "ktls.h"
#include "json.h"
#include "log.h"
#include "loop.h"
#include "revoke.h"
#include "stats.h"
#include "verify.h"

/* ---- the table ---------------------------------------------------------- */

int kg_conn_table_grow(struct kg_worker *w)
{
	uint32_t ncap = w->cap ? w->cap * 2 : 256, i;
	struct kg_conn **nc, **nr;
	uint32_t *ng, *nf;

	if (ncap > KG_ID_MAX_SLOTS)
		return -ENOSPC;
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
	/* a connection is on the ready list at most once, plus once more
	 * while the list is being run: twice the table always fits */
	nr = realloc(w->ready, 2 * (size_t)ncap * sizeof(*nr));
	if (!nr)
		return -ENOMEM;
	w->ready = nr;
	for (i = ncap; i > w->cap; i--) {
		w->conns[i - 1] = NULL;
		w->gens[i - 1] = 1;
		w->free_slots[w->n_free++] = i - 1;
	}
	w->cap = ncap;
	return 0;
}

struct kg_conn *kg_conn_lookup(struct kg_worker *w, uint64_t cookie)
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

struct kg_conn *kg_conn_by_id(struct kg_worker *w, uint64_t id)
{
	uint32_t slot = kg_conn_id_slot(id);

	if (kg_conn_id_worker(id) != w->idx || slot >= w->cap || !w->conns[slot] ||
	    w->conns[slot]->id != id)
		return NULL;
	return w->conns[slot];
}

void kg_fmt_peer(const struct sockaddr_storage *ss, char *out, size_t outsz)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(out, outsz, "%s:%u", host, ntohs(s4->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(out, outsz, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		snprintf(out, outsz, "?");
	}
}

int kg_conn_open(struct kg_worker *w, struct kg_listener *l, struct kg_lsnap *snap, int fd,
		 struct kg_conn **out)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct kg_conn *c;
	int rc;

	*out = NULL;
	if (!w->n_free && (rc = kg_conn_table_grow(w))) {
		close(fd);
		kg_lsnap_put(snap);
		return rc;
	}
	c = kg_slab_alloc(&w->conn_mem);
	if (!c) {
		close(fd);
		kg_lsnap_put(snap);
		return -ENOMEM;
	}
	c->cfd = fd;
	c->bfd = -1;
	c->pc2b[0] = c->pc2b[1] = c->pb2c[0] = c->pb2c[1] = -1;
	c->slot = w->free_slots[--w->n_free];
	c->gen = w->gens[c->slot];
	c->id = kg_conn_id_make(w->idx, c->slot, c->gen);
	c->lst = l;
	c->snap = snap;
	c->tls = snap->tls;
	c->conf = snap->conf;
	c->start_ms = w->now_ms;
	c->state = KG_ST_HANDSHAKE;
	c->path = "handshake";
	c->deadline_ms = w->now_ms + c->conf->handshake_timeout_ms;
	c->tls_version = c->cipher = c->origin_tls = c->origin_cipher = "-";
	c->server_name = "";
	w->conns[c->slot] = c;
	w->n_live++;
	__atomic_add_fetch(&l->active, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&w->gw->active, 1, __ATOMIC_RELAXED);
	KG_STAT_ADD(&w->stats, conns_total, 1);
	KG_STAT_ADD(&w->stats, conns_active, 1);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
		kg_fmt_peer(&ss, c->peer, sizeof(c->peer));
	else
		snprintf(c->peer, sizeof(c->peer), "?");
	*out = c;
	return 0;
}

int kg_conn_set_cn(struct kg_worker *w, struct kg_conn *c, const char *cn)
{
	size_t n = strlen(cn);

	c->cn_class = n < KG_CN_SLAB_SMALL ? 1 : n < KG_CN_SLAB ? 2 : 0;
	c->cn = c->cn_class ? kg_slab_alloc(&w->cn_mem[c->cn_class - 1]) : malloc(n + 1);
	if (!c->cn) {
		c->cn_class = 0;
		return -ENOMEM;
	}
	memcpy(c->cn, cn, n + 1);
	return 0;
}

void kg_conn_drop_cn(struct kg_worker *w, struct kg_conn *c)
{
	if (c->cn_class)
		kg_slab_free(&w->cn_mem[c->cn_class - 1], c->cn);
	else
		free(c->cn);
	c->cn = NULL;
	c->cn_class = 0;
}

/* Out of memory, c->detail borrows this, so the line that follows still
 * says why; one per worker thread, as every connection stays on its own. */
static __thread char kg_detail_scratch[KG_DETAIL_LEN];

char *kg_conn_detail_buf(struct kg_conn *c)
{
	if (!c->detail) {
		c->detail = malloc(KG_DETAIL_LEN);
		if (!c->detail) {
			c->detail = kg_detail_scratch;
			c->detail_scratch = true;
		}
		c->detail[0] = '\0';
	}
	return c->detail;
}

void kg_conn_detail_free(struct kg_conn *c)
{
	if (!c->detail_scratch)
		free(c->detail);
	c->detail = NULL;
	c->detail_scratch = false;
}

/* ---- log lines ---------------------------------------------------------- */

static void kg_access_log(struct kg_worker *w, struct kg_conn *c)
{
	char fp[KG_FP_HEX_LEN] = "-", subj[4 * (KG_CN_MAX + 1) + 8];
	char origin[128] = "";
	uint64_t dur = w->now_ms - c->start_ms;

	if (c->has_fp)
		kg_fp_format(c->fp, false, fp, sizeof(fp));
	if (kg_log_json()) {
		struct json_object *o = kg_json_obj("suusssssssuuuss", "event", "access",
			"conn", c->id, "worker", (uint64_t)w->idx, "listener", c->conf->name,
			"server_name", c->server_name, "client", c->peer, "subject", kg_conn_cn(c),
			"sha256", fp, "tls", c->tls_version, "cipher", c->cipher,
			"bytes_in", c->bytes_in, "bytes_out", c->bytes_out, "duration_ms", dur,
			"path", c->path, "reason", kg_close_reason_str(c->reason));
		const char *text;

		if (o && c->conf->origin.on &&
		    (kg_json_add_str(o, "origin_tls", c->origin_tls) ||
		     kg_json_add_str(o, "origin_cipher", c->origin_cipher)))
			kg_warn("conn=%llu: the access line lacks the origin's TLS (out of memory)",
				(unsigned long long)c->id);
		text = o ? kg_json_text(o) : NULL;
		if (text) {
			char *line = NULL;

			if (asprintf(&line, "%s\n", text) >= 0)
				kg_log_raw(line);
			free(line);
		}
		json_object_put(o);
		return;
	}
	kg_log_quote(subj, sizeof(subj), c->cn ? c->cn : "-");
	if (c->conf->origin.on)
		snprintf(origin, sizeof(origin), " origin_tls=%s origin_cipher=%s", c->origin_tls,
			 c->origin_cipher);
	kg_info("access conn=%llu worker=%u listener=%s%s%s client=%s subject=\"%s\" sha256=%s "
		"tls=%s cipher=%s%s bytes_in=%llu bytes_out=%llu duration_ms=%llu path=%s reason=%s%s%s",
		(unsigned long long)c->id, w->idx, c->conf->name,
		c->server_name[0] ? " server_name=" : "", c->server_name, c->peer, subj, fp,
		c->tls_version, c->cipher, origin, (unsigned long long)c->bytes_in,
		(unsigned long long)c->bytes_out, (unsigned long long)dur, c->path,
		kg_close_reason_str(c->reason), kg_conn_detail(c)[0] ? " detail=" : "",
		kg_conn_detail(c));
}

void kg_conn_log_reject(struct kg_worker *w, struct kg_conn *c, const char *reason)
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
		kg_conn_detail(c)[0] ? " detail=" : "", kg_conn_detail(c));
	c->logged_reject = true;
}

/* Byte counters follow the stream, not only the close: a long transfer
 * shows in the metrics while it runs. */
static void kg_conn_count_bytes(struct kg_worker *w, struct kg_conn *c)
{
	KG_STAT_ADD(&w->stats, bytes_in, c->bytes_in - c->bytes_in_counted);
	KG_STAT_ADD(&w->stats, bytes_out, c->bytes_out - c->bytes_out_counted);
	c->bytes_in_counted = c->bytes_in;
	c->bytes_out_counted = c->bytes_out;
	KG_STAT_ADD(&w->stats, rekeys_rx, c->rekeys[0] - c->rekeys_counted[0]);
	KG_STAT_ADD(&w->stats, rekeys_tx, c->rekeys[1] - c->rekeys_counted[1]);
	c->rekeys_counted[0] = c->rekeys[0];
	c->rekeys_counted[1] = c->rekeys[1];
}

/* ---- ending ------------------------------------------------------------- */

static void kg_conn_free(struct kg_worker *w, struct kg_conn *c)
{
	kg_loop_ready_drop(w, c);
	kg_loop_poll_cancel(w, c, true);
	kg_loop_poll_cancel(w, c, false);
	if (c->cfd >= 0)
		close(c->cfd);
	if (c->bfd >= 0)
		close(c->bfd);
	SSL_free(c->ssl);
	SSL_free(c->bssl);
	for (int i = 0; i < 2; i++)
		if (c->kk[i]) {
			kg_ktls_keys_wipe(c->kk[i]);
			kg_slab_free(&w->keys_mem, c->kk[i]);
		}
	X509_free(c->hs.leaf);
	if (c->bhs) {
		X509_free(c->bhs->leaf);
		kg_slab_free(&w->cn_mem[0], c->bhs);
	}
	free(c->pp);
	kg_conn_drop_cn(w, c);
	kg_conn_detail_free(c);
	kg_pool_put_conn(&w->pool, c);
	kg_lsnap_put(c->snap);
	KG_STAT_SUB(&w->stats, conns_active, 1);
	__atomic_sub_fetch(&c->lst->active, 1, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&w->gw->active, 1, __ATOMIC_RELAXED);
	w->conns[c->slot] = NULL;
	w->gens[c->slot]++;
	w->free_slots[w->n_free++] = c->slot;
	w->n_live--;
	kg_slab_free(&w->conn_mem, c);
}

/* A socket aborted by bpf_sock_destroy() shows up as an I/O error: name
 * the real cause. */
static enum kg_close_reason kg_conn_real_reason(struct kg_worker *w, struct kg_conn *c,
						enum kg_close_reason r)
{
	if ((r == KG_CLOSE_CLIENT_ERROR || r == KG_CLOSE_BACKEND_ERROR) && c->has_fp &&
	    w->gw->rev && kg_ebpf_revoked(w->gw->rev->bpf, c->fp, NULL) == 1)
		return KG_CLOSE_REVOKED;
	return r;
}

/* Bytes for the backend dropped, or the client's stream not ended by
 * close_notify: the backend must not see a clean end. */
static bool kg_conn_client_unfinished(const struct kg_conn *c)
{
	return c->state == KG_ST_PROXY &&
	       (kg_pump_pending_to_backend(c) || !(c->flags & KG_CF_C_RD_EOF) ||
		(c->flags & KG_CF_TRUNCATED));
}

static void kg_set_rst(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (fd >= 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

void kg_conn_close(struct kg_worker *w, struct kg_conn *c, enum kg_close_reason r)
{
	r = kg_conn_real_reason(w, c, r);
	/* idle timeout, shutdown: an unfinished client stream is no whole one */
	if (c->bfd >= 0 && r != KG_CLOSE_DONE && kg_conn_client_unfinished(c))
		kg_set_rst(c->bfd);
	if (c->reason == KG_CLOSE_NONE)
		c->reason = r;
	if (!c->logged_reject)
		kg_access_log(w, c);
	KG_STAT_ADD(&w->stats, closes[c->reason < KG_CLOSE__COUNT ? c->reason : KG_CLOSE_NONE], 1);
	kg_conn_count_bytes(w, c);
	if (c->reason == KG_CLOSE_REVOKED)
		KG_STAT_ADD(&w->stats, revoked_cuts, 1);
	else if (c->reason == KG_CLOSE_BACKEND_ERROR)
		KG_STAT_ADD(&w->stats, backend_errors, 1);
	kg_conn_free(w, c);
}

static void kg_linger_event(struct kg_worker *w, struct kg_conn *c);

void kg_conn_end(struct kg_worker *w, struct kg_conn *c, enum kg_close_reason r)
{
	bool broken;

	r = kg_conn_real_reason(w, c, r);
	if (r == KG_CLOSE_REVOKED || r == KG_CLOSE_KILLED) {
		/* Cutting is the point: both peers learn at once. */
		kg_set_rst(c->cfd);
		kg_set_rst(c->bfd);
		kg_conn_close(w, c, r);
		return;
	}
	if (c->state == KG_ST_LINGER)
		return;		/* already saying goodbye */
	if (c->reason == KG_CLOSE_NONE)
		c->reason = r;
	if (r == KG_CLOSE_BACKEND_CONNECT)
		KG_STAT_ADD(&w->stats, backend_connect_fail, 1);
	broken = r == KG_CLOSE_CLIENT_ERROR || r == KG_CLOSE_BACKEND_ERROR ||
		 r == KG_CLOSE_TRUNCATED || r == KG_CLOSE_INTERNAL;
	if (c->bfd >= 0) {
		/* The backend must not take a cut-short stream for a whole one. */
		if (broken || kg_conn_client_unfinished(c))
			kg_set_rst(c->bfd);
		kg_loop_poll_cancel(w, c, false);
		SSL_free(c->bssl);
		c->bssl = NULL;
		close(c->bfd);
		c->bfd = -1;
	}
	/* close_notify says "that was everything": never after dropping bytes
	 * meant for the client (kg_pump_close_notify refuses while any are
	 * pending), nor when its stream broke. OpenSSL has sent its own alert
	 * for a protocol error; the FIN below lets it arrive. */
	if (!broken && r != KG_CLOSE_REJECTED)
		(void)kg_pump_close_notify(&w->pool, c);
	kg_pool_put_conn(&w->pool, c);
	(void)shutdown(c->cfd, SHUT_WR);
	c->state = KG_ST_LINGER;
	c->deadline_ms = w->now_ms + KG_LINGER_MS;
	/* The client may have finished already (its FIN was read): then no
	 * event would come, so look now. @c may be freed here. */
	kg_linger_event(w, c);
}

/* Waiting for the client to read our last words: drain what it still
 * sends until its EOF (closing with unread input would send an RST that
 * can overtake the alert). */
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

/* ---- events -------------------------------------------------------------- */

void kg_conn_pump(struct kg_worker *w, struct kg_conn *c)
{
	enum kg_close_reason why = kg_pump_check_errors(c);
	enum kg_pump_verdict v;
	bool progress = false;

	if (why != KG_CLOSE_NONE) {
		kg_conn_end(w, c, why);
		return;
	}
	v = kg_pump_run(&w->pool, c, KG_PUMP_BUDGET, &progress, &why);
	kg_conn_count_bytes(w, c);
	if (progress)
		c->deadline_ms = w->now_ms + c->conf->idle_timeout_ms;
	switch (v) {
	case KG_PUMP_WAIT:
		break;
	case KG_PUMP_MORE:
		kg_loop_ready_push(w, c);	/* come back after the others */
		break;
	case KG_PUMP_FINISHED:
		kg_conn_close(w, c, KG_CLOSE_DONE);
		break;
	case KG_PUMP_FAILED:
		if (why == KG_CLOSE_BACKEND_ERROR && kg_origin_refused(w, c))
			break;
		if (why == KG_CLOSE_KEYUPDATE) {
			char subj[4 * (KG_CN_MAX + 1) + 8];

			KG_STAT_ADD(&w->stats, keyupdate_ends, 1);
			kg_warn("conn=%llu client=%s subject=\"%s\": KeyUpdate received; kernel TLS "
				"cannot rekey here, ending the connection cleanly", (unsigned long long)c->id,
				c->peer, kg_log_quote(subj, sizeof(subj), kg_conn_cn(c)));
		}
		kg_conn_end(w, c, why);
		break;
	}
}

void kg_conn_event(struct kg_worker *w, struct kg_conn *c, bool client, int res, unsigned flags)
{
	/* Remember a hang-up: a short read then no longer means "nothing more",
	 * the EOF itself is still to be read. */
	if (res > 0 && (res & (POLLRDHUP | POLLHUP | POLLERR)))
		c->flags |= client ? KG_CF_C_HUP : KG_CF_B_HUP;
	if (res > 0 && (res & POLLERR))
		c->flags |= client ? KG_CF_C_ERR : KG_CF_B_ERR;
	if (!(flags & IORING_CQE_F_MORE)) {
		/* The multishot poll ended (error or overflow): re-arm it, unless
		 * it was cancelled or its socket is gone. */
		if (client)
			c->cpoll_armed = false;
		else
			c->bpoll_armed = false;
		if (res != -ECANCELED)
			kg_loop_poll_arm(w, c, client);
	}
	switch (c->state) {
	case KG_ST_HANDSHAKE:
		if (client)
			kg_hs_event(w, c);
		break;
	case KG_ST_CONNECTING:
		if (!client)
			kg_hs_connect_event(w, c);
		break;
	case KG_ST_ORIGIN:
		if (!client)
			kg_origin_event(w, c);
		break;
	case KG_ST_PROXY:
		kg_conn_pump(w, c);
		break;
	case KG_ST_LINGER:
		if (client)
			kg_linger_event(w, c);
		break;
	}
}

static void kg_conn_expired(struct kg_worker *w, struct kg_conn *c)
{
	switch (c->state) {
	case KG_ST_HANDSHAKE:
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN, "no complete handshake within %u ms",
			 c->conf->handshake_timeout_ms);
		kg_conn_log_reject(w, c, "handshake_timeout");
		kg_conn_close(w, c, KG_CLOSE_HANDSHAKE_TIMEOUT);
		break;
	case KG_ST_CONNECTING:
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN,
			 "backend %s did not answer within %u ms",
			 c->conf->backend.text, c->conf->connect_timeout_ms);
		kg_err("conn=%llu listener=%s client=%s: %s", (unsigned long long)c->id,
		       c->conf->name, c->peer, kg_conn_detail(c));
		kg_conn_end(w, c, KG_CLOSE_BACKEND_CONNECT);
		break;
	case KG_ST_ORIGIN:
		snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN,
			 "origin handshake did not finish within %u ms",
			 c->conf->handshake_timeout_ms);
		kg_origin_failed(w, c);
		break;
	case KG_ST_PROXY:
		kg_conn_close(w, c, KG_CLOSE_IDLE_TIMEOUT);
		break;
	case KG_ST_LINGER:
		kg_conn_close(w, c, c->reason);
		break;
	}
}

void kg_conn_tick(struct kg_worker *w)
{
	for (uint32_t i = 0; i < w->cap; i++) {
		struct kg_conn *c = w->conns[i];

		if (!c)
			continue;
		if (c->conf->max_lifetime_ms && c->state == KG_ST_PROXY &&
		    w->now_ms - c->start_ms >= c->conf->max_lifetime_ms) {
			snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN, "max_lifetime %u ms",
				 c->conf->max_lifetime_ms);
			kg_conn_end(w, c, KG_CLOSE_MAX_LIFETIME);
			continue;
		}
		if (c->deadline_ms <= w->now_ms)
			kg_conn_expired(w, c);
	}
}

void kg_conn_close_all(struct kg_worker *w, enum kg_close_reason r)
{
	for (uint32_t i = 0; i < w->cap; i++)
		if (w->conns[i])
			kg_conn_close(w, w->conns[i], r);
}
