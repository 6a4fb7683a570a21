/*
 * The only code that crosses threads: the main thread posts requests (kill
 * a connection, list the connections) under the worker's mailbox lock and
 * kicks its eventfd; the worker runs them on its own thread. Nothing here
 * may touch a connection from the posting thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway.h"
#include "json.h"
#include "log.h"
#include "loop.h"
#include "verify.h"

/* Append every live connection of this worker to @r as JSON objects,
 * rendered by json.c like every other JSON the program writes. */
static void kg_snapshot(struct kg_worker *w, struct kg_snap_req *r)
{
	static const char *const states[] = {
		"handshake", "connecting", "established", "closing", "origin_handshake",
	};
	char fp[KG_FP_HEX_LEN], obj[4096];
	uint32_t i;
	int n;

	/* counted before the answer, so a reader who has the list sees it;
	 * a kill or a revocation cut must never get here (tests count it) */
	KG_STAT_ADD(&w->stats, conn_snapshots, 1);
	pthread_mutex_lock(&r->mu);
	for (i = 0; i < w->cap; i++) {
		struct kg_conn *c = w->conns[i];
		struct kg_conn_info ci;

		if (!c)
			continue;
		if (c->has_fp)
			kg_fp_format(c->fp, false, fp, sizeof(fp));
		else
			fp[0] = '\0';
		ci = (struct kg_conn_info){
			.id = c->id, .worker = w->idx, .listener = c->conf->name,
			.server_name = c->server_name, .client = c->peer, .subject = kg_conn_cn(c),
			.sha256 = fp,
			.tls = c->tls_version, .cipher = c->cipher, .path = c->path,
			.state = states[c->state], .bytes_in = c->bytes_in, .bytes_out = c->bytes_out,
			.age_ms = w->now_ms - c->start_ms,
		};
		n = kg_json_conn_render(&ci, obj, sizeof(obj));
		if (n <= 0)
			continue;
		if (r->len + (size_t)n + 2 > r->cap) {
			size_t ncap = (r->cap ? r->cap * 2 : 4096) + (size_t)n + 2;
			char *nb = realloc(r->buf, ncap);

			if (!nb)
				break;
			r->buf = nb;
			r->cap = ncap;
		}
		if (r->len)
			r->buf[r->len++] = ',';
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

/* A kill whose poster waits for the answer. */
struct kg_kill_req {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t id;
	int reason;
	int found;			/* -1 until the worker answers */
	bool abandoned;			/* the poster gave up: the worker frees it */
};

static void kg_kill_req_free(struct kg_kill_req *r)
{
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r);
}

static void kg_kill_req_run(struct kg_worker *w, struct kg_kill_req *r)
{
	struct kg_conn *c = kg_conn_by_id(w, r->id);
	bool gone;

	if (c)
		kg_conn_end(w, c, (enum kg_close_reason)r->reason);
	pthread_mutex_lock(&r->mu);
	r->found = c != NULL;
	gone = r->abandoned;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	if (gone)
		kg_kill_req_free(r);
}

int kg_worker_kill_wait(struct kg_worker *w, uint64_t conn_id, int reason, unsigned timeout_ms)
{
	struct kg_kill_req *r = calloc(1, sizeof(*r));
	struct timespec until;
	int found, timedout = 0;

	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	r->id = conn_id;
	r->reason = reason;
	r->found = -1;
	pthread_mutex_lock(&w->mbox_lock);
	if (w->loop_done) {
		/* an ended worker has no connections */
		pthread_mutex_unlock(&w->mbox_lock);
		kg_kill_req_free(r);
		return 0;
	}
	if (w->n_kill_reqs == sizeof(w->kill_reqs) / sizeof(w->kill_reqs[0])) {
		pthread_mutex_unlock(&w->mbox_lock);
		kg_kill_req_free(r);
		return -EBUSY;
	}
	w->kill_reqs[w->n_kill_reqs++] = r;
	pthread_mutex_unlock(&w->mbox_lock);
	kg_worker_kick(w);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&r->mu);
	while (r->found < 0 && !timedout)
		timedout = pthread_cond_timedwait(&r->cv, &r->mu, &until) == ETIMEDOUT;
	found = r->found;
	if (found < 0) {
		r->abandoned = true;	/* the worker frees it when it gets there */
		pthread_mutex_unlock(&r->mu);
		return -ETIMEDOUT;
	}
	pthread_mutex_unlock(&r->mu);
	kg_kill_req_free(r);
	return found;
}

void kg_mbox_run(struct kg_worker *w)
{
	struct kg_snap_req *snaps[8];
	struct kg_kill_req *kreqs[8];
	struct kg_kill *k;
	unsigned ns, si, nk;
	size_t n, i;

	pthread_mutex_lock(&w->mbox_lock);
	k = w->mbox;
	n = w->mbox_n;
	w->mbox = NULL;
	w->mbox_n = w->mbox_cap = 0;
	ns = w->n_snaps;
	memcpy(snaps, w->snaps, ns * sizeof(snaps[0]));
	w->n_snaps = 0;
	nk = w->n_kill_reqs;
	memcpy(kreqs, w->kill_reqs, nk * sizeof(kreqs[0]));
	w->n_kill_reqs = 0;
	pthread_mutex_unlock(&w->mbox_lock);
	for (si = 0; si < ns; si++)
		kg_snapshot(w, snaps[si]);
	for (si = 0; si < nk; si++)
		kg_kill_req_run(w, kreqs[si]);
	for (i = 0; i < n; i++) {
		struct kg_conn *c = kg_conn_by_id(w, k[i].id);

		if (!c)
			continue;	/* gone meanwhile */
		if (k[i].reason == KG_CLOSE_REVOKED)
			snprintf(kg_conn_detail_buf(c), KG_DETAIL_LEN, "certificate revoked");
		kg_conn_end(w, c, (enum kg_close_reason)k[i].reason);
	}
	free(k);
}

void kg_worker_post_snapshot(struct kg_worker *w, struct kg_snap_req *r)
{
	pthread_mutex_lock(&w->mbox_lock);
	if (w->n_snaps < 8 && !w->loop_done) {
		w->snaps[w->n_snaps++] = r;
	} else {
		/* too many at once, or the worker has ended (it has no
		 * connections): answer empty */
		pthread_mutex_lock(&r->mu);
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
	if (w->loop_done) {
		pthread_mutex_unlock(&w->mbox_lock);
		return;		/* it has no connections left */
	}
	if (w->mbox_n == w->mbox_cap) {
		size_t ncap = w->mbox_cap ? w->mbox_cap * 2 : 16;
		struct kg_kill *nk = realloc(w->mbox, ncap * sizeof(*nk));

		if (!nk) {
			pthread_mutex_unlock(&w->mbox_lock);
			kg_err("worker %u: out of memory posting a close of conn=%llu",
			       w->idx, (unsigned long long)conn_id);
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
