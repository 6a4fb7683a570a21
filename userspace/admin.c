/*
 * The main thread's sockets: the admin socket (`conn`, `stats`, `fleet`
 * requests and their JSON replies) and the Prometheus endpoint, polled
 * without blocking. Reads workers' state only through mailbox.c and stats.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdarg.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "conn.h"
#include "fleet.h"
#include "json.h"
#include "log.h"
#include "worker.h"
#include "stats.h"

static int kg_write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int kg_admin_listen(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[sizeof(sun.sun_path)], *slash;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "admin_socket %s: path too long", path);
		return -ENAMETOOLONG;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		(void)mkdir(dir, 0700);
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	(void)unlink(path);
	/* 0600: only the gateway's user (root) may list or kill connections */
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) || chmod(path, 0600) || listen(fd, 16)) {
		int e = errno;

		snprintf(err, errlen, "admin socket %s: %s; set admin_socket in [global] to a "
			 "writable path", path, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

int kg_metrics_listen(const struct kg_addr *a, char *err, size_t errlen)
{
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;

	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) || listen(fd, 16)) {
		int e = errno;

		snprintf(err, errlen, "metrics %s: %s", a->text, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

/*
 * Every worker's live connections, parsed into a JSON array the caller
 * puts. The workers answer with text ("{…},{…}", see kg_json_conn_render)
 * because it crosses threads as one buffer; reading it back with the
 * parser means a reply is valid JSON whatever a worker wrote. Only `conn
 * list` builds one: `conn kill` and the revocation pass go to the owning
 * worker by the ID (ktlsgw_conn_snapshots_total counts these lists). NULL
 * when out of memory or when the workers' text does not parse (logged).
 */
static struct json_object *kg_conn_snapshot(struct kg_gw *gw)
{
	struct kg_snap_req *r = calloc(1, sizeof(*r));
	struct json_object *all = NULL;
	struct timespec until;
	char *text = NULL, err[160];
	unsigned i;
	int timedout = 0;

	if (!r)
		return NULL;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	r->pending = gw->n_workers;
	for (i = 0; i < gw->n_workers; i++)
		kg_worker_post_snapshot(gw->workers[i], r);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 2;
	pthread_mutex_lock(&r->mu);
	while (r->pending && !timedout)
		timedout = pthread_cond_timedwait(&r->cv, &r->mu, &until) == ETIMEDOUT;
	if (timedout && r->pending) {
		/* A worker may still write into r: the last one frees it. */
		r->abandoned = true;
		pthread_mutex_unlock(&r->mu);
		kg_warn("admin: a worker did not answer conn list within 2 s");
		return json_object_new_array();
	}
	pthread_mutex_unlock(&r->mu);
	if (asprintf(&text, "[%s]", r->buf ? r->buf : "") >= 0) {
		all = kg_json_parse(text, strlen(text), err, sizeof(err));
		if (!all)
			kg_err("admin: the workers' connection list does not parse: %s", err);
	}
	free(text);
	free(r->buf);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r);
	return all;
}

static void kg_sum(struct kg_gw *gw, struct kg_stats *st)
{
	struct kg_stats *sets[KG_WORKERS_MAX];
	unsigned i, n = gw->n_workers;

	for (i = 0; i < n; i++)
		sets[i] = kg_worker_stats(gw->workers[i]);
	kg_stats_sum(st, sets, n);
}

/* The counters of `ktlsgw stats`, a new object; NULL when out of memory. */
static struct json_object *kg_stats_obj(struct kg_gw *gw)
{
	struct json_object *o = json_object_new_object(), *rej = json_object_new_object();
	struct kg_stats st;
	int i, rc = 0;

	if (!o || !rej) {
		json_object_put(rej);
		json_object_put(o);
		return NULL;
	}
	kg_sum(gw, &st);
	for (i = 0; i < KG_REJ__COUNT; i++)
		rc |= kg_json_add_u64(rej, kg_rej_name((enum kg_rej)i), st.rejects[i]);
	rc |= kg_json_add_u64(o, "workers", gw->n_workers);
	rc |= kg_json_add_u64(o, "connections_active", st.conns_active);
	rc |= kg_json_add_u64(o, "connections_total", st.conns_total);
	rc |= kg_json_add_u64(o, "handshakes_ok", st.handshakes_ok);
	rc |= kg_json_object_add(o, "rejects", rej);
	rc |= kg_json_add_u64(o, "bytes_in", st.bytes_in);
	rc |= kg_json_add_u64(o, "bytes_out", st.bytes_out);
	rc |= kg_json_add_u64(o, "backend_connect_failures", st.backend_connect_fail);
	rc |= kg_json_add_u64(o, "backend_errors", st.backend_errors);
	rc |= kg_json_add_u64(o, "revocation_cuts", st.revoked_cuts);
	rc |= kg_json_add_u64(o, "keyupdate_ends", st.keyupdate_ends);
	rc |= kg_json_add_u64(o, "ktls_rekeys_rx", st.rekeys_rx);
	rc |= kg_json_add_u64(o, "ktls_rekeys_tx", st.rekeys_tx);
	rc |= kg_json_add_u64(o, "conn_snapshots", st.conn_snapshots);
	rc |= kg_json_add_u64(o, "heap_trims", st.heap_trims);
	rc |= kg_json_add_u64(o, "heap_trim_conns", st.heap_trim_conns);
	rc |= kg_json_add_u64(o, "heap_trim_live", st.heap_trim_live);
	if (!KG_SANITIZER_MALLOC) {
		/* malloc's own account, every arena: what is handed out
		 * (mmapped chunks included) and what it holds free */
		struct mallinfo2 mi = mallinfo2();

		rc |= kg_json_add_u64(o, "malloc_in_use_bytes", mi.uordblks + mi.hblkhd);
		rc |= kg_json_add_u64(o, "malloc_free_bytes", mi.fordblks);
	}
	rc |= kg_json_add_bool(o, "ktls", gw->ktls);
	if (gw->fleet)
		rc |= kg_json_object_add(o, "fleet", kg_fleet_status_json(gw->fleet));
	if (rc) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

#define KG_SNAP_FAILED "the connection list could not be built; see the gateway's log"

enum kg_admin_req kg_admin_parse(const char *buf, size_t len, unsigned long long *id)
{
	size_t n = 0;
	unsigned long long v = 0;
	const char *p;

	/* one line; a trailing "\n" or "\r\n" is optional */
	while (n < len && buf[n] != '\n' && buf[n] != '\r' && buf[n] != '\0')
		n++;
	if (n == 9 && !memcmp(buf, "conn list", 9))
		return KG_ADM_CONN_LIST;
	if (n == 5 && !memcmp(buf, "stats", 5))
		return KG_ADM_STATS;
	if (n <= 10 || memcmp(buf, "conn kill ", 10))
		return KG_ADM_BAD;
	for (p = buf + 10; p < buf + n; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (*p < '0' || *p > '9' || v > (~0ULL - d) / 10)
			return KG_ADM_BAD;
		v = v * 10 + d;
	}
	*id = v;
	return KG_ADM_CONN_KILL;
}

/* The answer to one admin request line, "...\n" (malloc'd; NULL when out
 * of memory). */
static char *kg_admin_reply(struct kg_gw *gw, const char *req, size_t got)
{
	struct json_object *resp = NULL;
	char msg[160], *out = NULL;
	const char *text;
	unsigned long long id = 0;

	/* "fleet publish JSON": a change for the fleet's bucket, written with
	 * this gateway's NATS connection (fleet.c says when) */
	if (got > 14 && !memcmp(req, "fleet publish ", 14)) {
		size_t len = strcspn(req + 14, "\r\n");
		uint64_t rev = 0;
		int rc = gw->fleet ? kg_fleet_publish_via(gw->fleet, req + 14, len, &rev, msg,
							  sizeof(msg)) : -ENOENT;

		if (!gw->fleet)
			snprintf(msg, sizeof(msg), "this gateway has no [fleet] section");
		resp = rc ? kg_json_obj("s", "error", msg) : kg_json_obj("u", "revision", rev);
		goto answer;
	}
	switch (kg_admin_parse(req, got, &id)) {
	case KG_ADM_CONN_LIST:
		resp = kg_conn_snapshot(gw);
		if (!resp)
			resp = kg_json_obj("s", "error", KG_SNAP_FAILED);
		break;
	case KG_ADM_STATS:
		resp = kg_stats_obj(gw);
		break;
	case KG_ADM_CONN_KILL: {
		/* The ID names its worker, and the worker finds it by slot. */
		unsigned wi = kg_conn_id_worker(id);
		int found = wi < gw->n_workers ?
			    kg_worker_kill_wait(gw->workers[wi], id, KG_CLOSE_KILLED, 2000) : 0;

		if (found > 0) {
			kg_info("admin: conn kill %llu", id);
			resp = kg_json_obj("u", "killed", (uint64_t)id);
		} else if (found == 0) {
			snprintf(msg, sizeof(msg), "no connection %llu; see `ktlsgw conn list`", id);
			resp = kg_json_obj("s", "error", msg);
		} else {
			snprintf(msg, sizeof(msg), "worker %u did not answer within 2 s", wi);
			resp = kg_json_obj("s", "error", msg);
		}
		break;
	}
	default:
		resp = kg_json_obj("s", "error", "unknown request; use: conn list, conn kill ID, stats");
		break;
	}
answer:
	text = resp ? kg_json_text(resp) : NULL;
	if (asprintf(&out, "%s\n", text ? text : "{\"error\":\"the gateway is out of memory\"}") < 0)
		out = NULL;
	json_object_put(resp);
	return out;
}

/* ---- Prometheus text format ------------------------------------------------- */

struct kg_buf_out {
	char *p;
	size_t len, cap;
};

static void kg_out(struct kg_buf_out *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void kg_out(struct kg_buf_out *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t ncap = (b->cap ? b->cap * 2 : 8192) + (size_t)n;
			char *np = realloc(b->p, ncap);

			if (!np)
				return;
			b->p = np;
			b->cap = ncap;
		}
	}
}

static void kg_metric_head(struct kg_buf_out *b, const char *name, const char *type, const char *help)
{
	kg_out(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static char *kg_metrics_text(struct kg_gw *gw)
{
	struct kg_buf_out b = { 0 };
	unsigned w;
	int i, p, v, c;

	kg_metric_head(&b, "ktlsgw_connections_active", "gauge", "Connections open now.");
	for (w = 0; w < gw->n_workers; w++)
		kg_out(&b, "ktlsgw_connections_active{worker=\"%u\"} %llu\n", w, (unsigned long long)
		       __atomic_load_n(&kg_worker_stats(gw->workers[w])->conns_active, __ATOMIC_RELAXED));
#define KG_COUNTER(name, help, field) do {							\
		kg_metric_head(&b, name, "counter", help);					\
		for (w = 0; w < gw->n_workers; w++)						\
			kg_out(&b, name "{worker=\"%u\"} %llu\n", w, (unsigned long long)		\
			       __atomic_load_n(&kg_worker_stats(gw->workers[w])->field,		\
					       __ATOMIC_RELAXED));				\
	} while (0)
	KG_COUNTER("ktlsgw_connections_total", "Connections accepted.", conns_total);
	KG_COUNTER("ktlsgw_handshakes_ok_total", "Handshakes that verified the client.", handshakes_ok);
	KG_COUNTER("ktlsgw_bytes_in_total", "Application bytes received from clients.", bytes_in);
	KG_COUNTER("ktlsgw_bytes_out_total", "Application bytes sent to clients.", bytes_out);
	KG_COUNTER("ktlsgw_backend_connect_failures_total", "Backend connections that failed or timed out.",
		   backend_connect_fail);
	KG_COUNTER("ktlsgw_backend_errors_total", "Backend connections that broke mid-stream.", backend_errors);
	KG_COUNTER("ktlsgw_backend_tls_failures_total", "TLS handshakes with the origin that failed "
		   "(its certificate, its name, its dates) or that it refused.", backend_tls_fail);
	KG_COUNTER("ktlsgw_revocation_cuts_total", "Live connections cut because their certificate was revoked.",
		   revoked_cuts);
	KG_COUNTER("ktlsgw_keyupdate_ends_total", "Connections ended by a KeyUpdate the kernel cannot follow "
		   "(before 6.14).",
		   keyupdate_ends);
	kg_metric_head(&b, "ktlsgw_ktls_rekeys_total", "counter",
		       "TLS 1.3 KeyUpdates followed on the kernel path (rekey, kernel 6.14+): rx, a peer's "
		       "new key installed; tx, our own KeyUpdate sent and our key changed.");
	for (w = 0; w < gw->n_workers; w++) {
		const struct kg_stats *ws = kg_worker_stats(gw->workers[w]);

		kg_out(&b, "ktlsgw_ktls_rekeys_total{worker=\"%u\",direction=\"rx\"} %llu\n", w,
		       (unsigned long long)__atomic_load_n(&ws->rekeys_rx, __ATOMIC_RELAXED));
		kg_out(&b, "ktlsgw_ktls_rekeys_total{worker=\"%u\",direction=\"tx\"} %llu\n", w,
		       (unsigned long long)__atomic_load_n(&ws->rekeys_tx, __ATOMIC_RELAXED));
	}
	KG_COUNTER("ktlsgw_accept_errors_total", "accept(2) failures for lack of descriptors or memory "
		   "(accepting pauses 100 ms each time).", accept_errors);
	KG_COUNTER("ktlsgw_conn_snapshots_total", "Connection lists a worker built for `conn list` "
		   "(a kill or a revocation cut finds its connection by ID and builds none).",
		   conn_snapshots);
	KG_COUNTER("ktlsgw_heap_trims_total", "Times a worker returned free heap to the kernel: "
		   "one second after at least 64 connection opens and closes stopped coming, or a "
		   "minute after the first open or close since the last trim.",
		   heap_trims);
	kg_metric_head(&b, "ktlsgw_connections_closed_total", "counter",
		       "Connections ended, by the reason the access log gives.");
	for (w = 0; w < gw->n_workers; w++)
		for (i = KG_CLOSE_DONE; i < KG_CLOSE__COUNT; i++)
			kg_out(&b, "ktlsgw_connections_closed_total{worker=\"%u\",reason=\"%s\"} %llu\n", w,
			       kg_close_reason_str((enum kg_close_reason)i), (unsigned long long)
			       __atomic_load_n(&kg_worker_stats(gw->workers[w])->closes[i], __ATOMIC_RELAXED));
	kg_metric_head(&b, "ktlsgw_handshake_rejects_total", "counter",
		       "Handshakes refused, by reason (the TLS alert sent).");
	for (w = 0; w < gw->n_workers; w++)
		for (i = 0; i < KG_REJ__COUNT; i++)
			kg_out(&b, "ktlsgw_handshake_rejects_total{worker=\"%u\",reason=\"%s\"} %llu\n", w,
			       kg_rej_name((enum kg_rej)i), (unsigned long long)__atomic_load_n(
				       &kg_worker_stats(gw->workers[w])->rejects[i], __ATOMIC_RELAXED));
	kg_metric_head(&b, "ktlsgw_data_path_total", "counter",
		       "Established connections by data path, TLS version and cipher.");
	for (w = 0; w < gw->n_workers; w++)
		for (p = 0; p < KG_PATH__COUNT; p++)
			for (v = 0; v < 2; v++)
				for (c = 0; c < KG_STAT_CIPHERS; c++) {
					uint64_t x = __atomic_load_n(&kg_worker_stats(gw->workers[w])->
								     paths[p][v][c], __ATOMIC_RELAXED);

					if (x)
						kg_out(&b, "ktlsgw_data_path_total{worker=\"%u\",path=\"%s\","
						       "tls=\"%s\",cipher=\"%s\"} %llu\n", w,
						       kg_path_name((enum kg_path_kind)p), v ? "1.3" : "1.2",
						       kg_stat_cipher_name(c), (unsigned long long)x);
				}
	kg_metric_head(&b, "ktlsgw_ktls_available", "gauge", "1 if the kernel offers the tls ULP.");
	kg_out(&b, "ktlsgw_ktls_available %d\n", gw->ktls ? 1 : 0);
	if (gw->fleet) {
		char *fleet = kg_fleet_metrics_text(gw->fleet);

		if (fleet)
			kg_out(&b, "%s", fleet);
		free(fleet);
	}
	return b.p;
}

/* The HTTP answer to one metrics request (malloc'd; NULL when out of memory). */
static char *kg_metrics_reply(struct kg_gw *gw, const char *req)
{
	char *body, *out = NULL;

	if (strncmp(req, "GET /metrics ", 13) && strncmp(req, "GET / ", 6))
		return strdup("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
	body = kg_metrics_text(gw);
	if (asprintf(&out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; "
		     "charset=utf-8\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
		     body ? strlen(body) : 0, body ? body : "") < 0)
		out = NULL;
	free(body);
	return out;
}

/* ---- serving without blocking ------------------------------------------- */

static void kg_client_drop(struct kg_srv *s, unsigned i)
{
	struct kg_srv_client *c = &s->cl[i];

	close(c->fd);
	free(c->out);
	s->cl[i] = s->cl[--s->n];
}

static void kg_srv_accept(struct kg_srv *s, int lfd, bool metrics, uint64_t now)
{
	while (s->n < KG_SRV_CLIENTS) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		struct kg_srv_client *c;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				kg_warn("%s: accept: %s", metrics ? "metrics" : "admin socket",
					strerror(errno));
			return;
		}
		c = &s->cl[s->n++];
		memset(c, 0, sizeof(*c));
		c->fd = fd;
		c->metrics = metrics;
		c->deadline_ms = now + KG_SRV_DEADLINE_MS;
	}
}

/* Read what the client sent; once the request is whole, build the answer.
 * Returns false when the client is done with (dropped). */
static bool kg_client_read(struct kg_srv *s, struct kg_gw *gw, unsigned i)
{
	struct kg_srv_client *c = &s->cl[i];
	const char *end = c->metrics ? "\r\n\r\n" : "\n";
	ssize_t n;

	while (c->got < sizeof(c->req) - 1) {
		n = recv(c->fd, c->req + c->got, sizeof(c->req) - 1 - c->got, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return true;
		if (n <= 0)
			break;
		c->got += (size_t)n;
		c->req[c->got] = '\0';
		/* memmem: a NUL from the client does not hide what follows it */
		if (memmem(c->req, c->got, end, strlen(end)))
			break;
	}
	if (!c->got) {
		kg_client_drop(s, i);
		return false;
	}
	c->out = c->metrics ? kg_metrics_reply(gw, c->req) : kg_admin_reply(gw, c->req, c->got);
	if (!c->out) {
		kg_client_drop(s, i);
		return false;
	}
	c->out_len = strlen(c->out);
	return true;
}

/* Write as much of the answer as the socket takes; false once dropped. */
static bool kg_client_write(struct kg_srv *s, unsigned i)
{
	struct kg_srv_client *c = &s->cl[i];

	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return true;
		if (n <= 0)
			break;
		c->out_off += (size_t)n;
	}
	kg_client_drop(s, i);
	return false;
}

size_t kg_srv_pollfds(const struct kg_srv *s, struct pollfd *pfd)
{
	size_t n = 0;

	/* a full table stops accepting until a slot frees */
	pfd[n++] = (struct pollfd){ .fd = s->n < KG_SRV_CLIENTS ? s->afd : -1, .events = POLLIN };
	pfd[n++] = (struct pollfd){ .fd = s->n < KG_SRV_CLIENTS ? s->mfd : -1, .events = POLLIN };
	for (unsigned i = 0; i < s->n; i++)
		pfd[n++] = (struct pollfd){ .fd = s->cl[i].fd,
					    .events = s->cl[i].out ? POLLOUT : POLLIN };
	return n;
}

int kg_srv_timeout_ms(const struct kg_srv *s, uint64_t now, int max)
{
	for (unsigned i = 0; i < s->n; i++) {
		uint64_t d = s->cl[i].deadline_ms;
		int left = d > now ? (int)(d - now) : 0;

		if (left < max)
			max = left;
	}
	return max;
}

void kg_srv_run(struct kg_srv *s, struct kg_gw *gw, const struct pollfd *pfd, size_t npfd,
		uint64_t now)
{
	unsigned i, nold = s->n;
	int ready[KG_SRV_CLIENTS], fds[KG_SRV_CLIENTS];

	/* Note who was ready before any slot moves (drops reorder the table). */
	for (i = 0; i < nold; i++) {
		ready[i] = 2 + i < npfd ? pfd[2 + i].revents : 0;
		fds[i] = s->cl[i].fd;
	}
	for (i = 0; i < nold; i++) {
		unsigned j;

		if (!ready[i])
			continue;
		for (j = 0; j < s->n && s->cl[j].fd != fds[i]; j++)
			;
		if (j == s->n)
			continue;
		if (!s->cl[j].out && !kg_client_read(s, gw, j))
			continue;
		if (s->cl[j].out)
			(void)kg_client_write(s, j);
	}
	/* A slow client gets its deadline, never the main thread. */
	for (i = 0; i < s->n;) {
		if (s->cl[i].deadline_ms <= now) {
			kg_client_drop(s, i);
			continue;
		}
		i++;
	}
	if (npfd > 0 && (pfd[0].revents & POLLIN))
		kg_srv_accept(s, s->afd, false, now);
	if (npfd > 1 && (pfd[1].revents & POLLIN))
		kg_srv_accept(s, s->mfd, true, now);
}

void kg_srv_close(struct kg_srv *s)
{
	while (s->n)
		kg_client_drop(s, s->n - 1);
}

char *kg_admin_call(const char *path, const char *req, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char *buf = NULL;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "%s: path too long", path);
		return NULL;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		snprintf(err, errlen, "cannot reach the gateway at %s: %s; is `ktlsgw run` up (and "
			 "are you root)? Use -s SOCKET or -c CONFIG for another instance", path,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	{
		struct timeval tv = { .tv_sec = 5 };

		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	if (kg_write_all(fd, req, strlen(req)) || kg_write_all(fd, "\n", 1)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	for (;;) {
		if (len + 4096 > cap) {
			char *nb = realloc(buf, cap = cap * 2 + 8192);

			if (!nb) {
				free(buf);
				close(fd);
				return NULL;
			}
			buf = nb;
		}
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (!buf || !len) {
		free(buf);
		snprintf(err, errlen, "%s: no answer from the gateway", path);
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}
