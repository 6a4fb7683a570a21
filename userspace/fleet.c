/*
 * Fleet-wide revocation on a NATS JetStream key-value bucket.
 *
 * Bucket: key = the certificate's SHA-256 in lower-case hex; a put is a
 * revocation, its value one JSON object (docs/fleet.md); a delete marker is
 * an un-revocation. Every gateway watches the whole bucket and applies each
 * change through kg_revoker_add/del on a revoker of its own (the same calls
 * as `ktlsgw revoke`), so the state file, the pinned map and the live cut
 * behave exactly as for a local revocation.
 *
 * This file: the gateway's side, a watcher thread with a connection that
 * never gives up, start-up reconciliation, and status and metrics. The
 * pending file is fleet_pending.c; NATS set-up and the CLI are fleet_nats.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "config.h"
#include "fleet_int.h"
#include "json.h"
#include "log.h"
#include "revoke.h"

/* ---- gateway side -------------------------------------------------------- */

#define KG_LAG_BUCKETS 10
static const double kg_lag_le[KG_LAG_BUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10
};

struct kg_fleet {
	struct kg_fleet_conf conf;
	char state_dir[256];
	struct kg_revoker *rev;		/* own revoker: its own lock fd */
	struct kg_nats n;
	natsOptions *opts;
	pthread_t thread;
	bool thread_started;
	int stop;			/* atomic */
	int resync;			/* atomic: (re)connected, re-read the bucket */
	int kick;			/* atomic: (re)connected, end a back-off wait */
	/* guards f->n.js/kv being bound or dropped (watcher thread) against
	 * their use by kg_fleet_publish_via (main thread) */
	pthread_mutex_t nlock;
	pthread_mutex_t lock;		/* guards what status/metrics read below */
	bool connected;
	bool synced;			/* the bucket was read once since start */
	char server[256];
	uint64_t last_rev;
	uint64_t applied;		/* changes applied to map and state file */
	uint64_t reconnects;
	size_t pending;
	double last_lag_s;		/* of the last live update */
	uint64_t lag_count, lag_hist[KG_LAG_BUCKETS];
	double lag_sum;
	uint64_t stall_rev;		/* last_rev when the bucket was seen ahead */
	bool pend_failed;		/* the last publish of pending changes failed */
	kvWatcher *w;
};

static void kg_fleet_on_conn(natsConnection *nc, void *arg)
{
	struct kg_fleet *f = arg;

	__atomic_store_n(&f->resync, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&f->kick, 1, __ATOMIC_RELEASE);
	pthread_mutex_lock(&f->lock);
	f->connected = true;
	f->reconnects++;
	if (natsConnection_GetConnectedUrl(nc, f->server, sizeof(f->server)) != NATS_OK)
		f->server[0] = '\0';
	pthread_mutex_unlock(&f->lock);
}

static void kg_fleet_on_disc(natsConnection *nc, void *arg)
{
	struct kg_fleet *f = arg;

	pthread_mutex_lock(&f->lock);
	f->connected = false;
	pthread_mutex_unlock(&f->lock);
}

static void kg_fleet_on_err(natsConnection *nc, natsSubscription *sub, natsStatus err, void *arg)
{
	kg_warn("fleet: NATS: %s", natsStatus_GetText(err));
}

static double kg_now_realtime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* @applied: when the change took effect here (map written, cut run). */
static void kg_fleet_lag(struct kg_fleet *f, kvEntry *e, double applied)
{
	int64_t created = kvEntry_Created(e);	/* UTC, nanoseconds */
	double lag;
	int i;

	if (created <= 0)
		return;
	lag = applied - (double)created / 1e9;
	if (lag < 0)
		lag = 0;	/* clocks of server and node differ a little */
	pthread_mutex_lock(&f->lock);
	f->last_lag_s = lag;
	f->lag_count++;
	f->lag_sum += lag;
	for (i = 0; i < KG_LAG_BUCKETS; i++)
		if (lag <= kg_lag_le[i])
			f->lag_hist[i]++;
	pthread_mutex_unlock(&f->lock);
}

/* Apply one bucket entry to the map and the state file. A change of a key
 * with a pending local change is left alone: the local one is newer and
 * will overwrite the bucket once published. @initial: the entry is part of
 * the bucket's content read at (re)connect, not a change seen live. */
static void kg_fleet_apply(struct kg_fleet *f, kvEntry *e, bool initial)
{
	const char *key = kvEntry_Key(e);
	kvOperation op = kvEntry_Operation(e);
	struct kg_revoke_val cur = { 0 }, fast = { 0 };
	struct kg_ebpf_hit hits[64];
	struct kg_pendset ps = { 0 };
	struct kg_pend p = { 0 };
	char err[1024];
	int rc, cut = 0, early = 0, lfd;
	double applied = 0;
	bool present;

	pthread_mutex_lock(&f->lock);
	if (kvEntry_Revision(e) > f->last_rev)
		f->last_rev = kvEntry_Revision(e);
	pthread_mutex_unlock(&f->lock);
	if (kg_fp_parse(key, p.fp)) {
		kg_warn("fleet: key '%s' in bucket %s is not a SHA-256 fingerprint; ignored", key,
			f->conf.bucket);
		return;
	}
	lfd = kg_pend_lock(f->state_dir);
	if (lfd >= 0 && !kg_pend_load(f->state_dir, &ps) && kg_pend_find(&ps, p.fp)) {
		kg_pendset_release(&ps);
		kg_pend_unlock(lfd);
		kg_info("fleet: %s changed in the bucket but a local change is pending; the local "
			"one wins", key);
		return;
	}
	kg_pendset_release(&ps);
	kg_pend_unlock(lfd);
	present = kg_ebpf_revoked(f->rev->bpf, p.fp, &cur) == 1;
	if (op == kvOp_Put) {
		char verr[128];
		struct json_object *o = kg_json_parse(kvEntry_ValueString(e),
						      (size_t)kvEntry_ValueLen(e), verr, sizeof(verr));
		struct kg_pend q = { 0 };

		/* the key says what to revoke; the value only why, when, where */
		if (!o || kg_pend_from_json(o, &q))
			kg_warn("fleet: value of %s is not the documented JSON (%s); revoking anyway", key,
				o ? "fields" : verr);
		else
			memcpy(q.fp, p.fp, KG_FP_LEN), p = q;
		json_object_put(o);
		if (present)
			return;		/* ours, or already applied: nothing to do */
		if (!p.text[0])
			snprintf(p.text, sizeof(p.text), "fleet, from %s", p.node[0] ? p.node : "?");
		/* The bucket holds this revocation durably (a node that dies before
		 * its state file has it reads the bucket again at start), so the
		 * cut does not wait for the state file's fsyncs: map and cut first,
		 * then the local record through the revoker as for any revocation. */
		fast.revoked_at = (uint64_t)time(NULL);
		fast.reason = p.reason;
		if (!kg_ebpf_put(f->rev->bpf, p.fp, &fast)) {
			int n = kg_ebpf_scan(f->rev->bpf, hits, sizeof(hits) / sizeof(hits[0]));

			early = n > 0 ? n : 0;
			applied = kg_now_realtime();
		}
		rc = kg_revoker_add(f->rev, p.fp, p.reason, p.text, &cut, err, sizeof(err));
		if (rc) {
			kg_err("fleet: revocation of sha256=%s from the bucket: %s; enforced in the map "
			       "until the next start, which reads the bucket again", key, err);
			return;
		}
		if (!applied)
			applied = kg_now_realtime();
		if (early)
			kg_revoker_mark_cut(f->rev, p.fp);
		cut += early;
		kg_info("fleet: revoked sha256=%s (from %s, revision %llu); %d live socket%s cut", key,
			p.node[0] ? p.node : "?", (unsigned long long)kvEntry_Revision(e), cut,
			cut == 1 ? "" : "s");
	} else {
		int64_t marker_s = kvEntry_Created(e) / 1000000000;

		if (!present)
			return;
		/* In the content read at (re)connect, a delete marker older than the
		 * local entry is not about it: the entry was made here afterwards,
		 * by a raw bpftool edit or a revocation without [fleet], and such
		 * entries stay local (docs/fleet.md). A live marker is always new. */
		if (initial && marker_s > 0 && cur.revoked_at > (uint64_t)marker_s) {
			kg_info("fleet: sha256=%s was un-revoked in the bucket (revision %llu) before it "
				"was revoked on this node; the local revocation stays", key,
				(unsigned long long)kvEntry_Revision(e));
			return;
		}
		rc = kg_revoker_del(f->rev, p.fp, err, sizeof(err));
		applied = kg_now_realtime();
		if (rc && rc != -ENOENT) {
			kg_err("fleet: un-revocation of sha256=%s from the bucket: %s", key, err);
			return;
		}
		kg_info("fleet: un-revoked sha256=%s (revision %llu)", key,
			(unsigned long long)kvEntry_Revision(e));
	}
	if (!initial)
		kg_fleet_lag(f, e, applied);
	pthread_mutex_lock(&f->lock);
	f->applied++;
	pthread_mutex_unlock(&f->lock);
}

/* The bucket stream's last sequence (= the bucket's newest revision, delete
 * markers included), or 0 when it cannot be asked. */
static uint64_t kg_fleet_stream_last(struct kg_fleet *f)
{
	char stream[sizeof(f->conf.bucket) + 4];
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	uint64_t last = 0;

	snprintf(stream, sizeof(stream), "KV_%s", f->conf.bucket);
	if (f->n.js && js_GetStreamInfo(&si, f->n.js, stream, NULL, &jerr) == NATS_OK && si)
		last = si->State.LastSeq;
	jsStreamInfo_Destroy(si);
	return last;
}

/* Publish what is pending, then (re)start the watch: its first entries are
 * the bucket's whole current content, which is applied before this returns,
 * so a node that was away catches up on everything it missed. */
static int kg_fleet_sync(struct kg_fleet *f)
{
	kvWatchOptions wo;
	kvEntry *e = NULL;
	natsStatus s;
	uint64_t last;
	int rc, nent = 0;

	if (f->w) {
		kvWatcher_Destroy(f->w);
		f->w = NULL;
	}
	if (!f->n.kv) {
		pthread_mutex_lock(&f->nlock);
		s = kg_nats_bucket(&f->conf, &f->n);
		if (s != NATS_OK) {
			kvStore_Destroy(f->n.kv);
			f->n.kv = NULL;
			jsCtx_Destroy(f->n.js);
			f->n.js = NULL;
		}
		pthread_mutex_unlock(&f->nlock);
		if (s != NATS_OK) {
			kg_warn("fleet: bucket %s: %s", f->conf.bucket, kg_nats_why(s));
			return -EIO;
		}
	}
	/* a change that cannot be published (no writer permission, a stream
	 * without a leader) stays pending, and must not keep this node from
	 * following the bucket: the bucket's value of such a key is skipped
	 * while the local change waits (kg_fleet_apply) */
	rc = kg_pend_flush(f->state_dir, &f->n);
	f->pend_failed = rc < 0;
	/* asked before the watch starts: every revision up to it is in the
	 * content the watch delivers first (or was removed from the stream) */
	last = kg_fleet_stream_last(f);
	kvWatchOptions_Init(&wo);
	wo.Timeout = KG_FLEET_JS_WAIT_MS;
	s = kvStore_WatchAll(&f->w, f->n.kv, &wo);
	if (s != NATS_OK) {
		kg_warn("fleet: watching bucket %s: %s", f->conf.bucket, kg_nats_why(s));
		return -EIO;
	}
	for (;;) {
		s = kvWatcher_Next(&e, f->w, KG_FLEET_JS_WAIT_MS);
		if (s != NATS_OK) {
			kg_warn("fleet: reading bucket %s: %s", f->conf.bucket, kg_nats_why(s));
			kvWatcher_Destroy(f->w);
			f->w = NULL;
			return -EIO;
		}
		if (!e)
			break;		/* the initial content is all here */
		kg_fleet_apply(f, e, true);
		kvEntry_Destroy(e);
		nent++;
	}
	pthread_mutex_lock(&f->lock);
	f->synced = true;
	if (last > f->last_rev)
		f->last_rev = last;
	f->stall_rev = UINT64_MAX;
	f->pending = kg_pend_count(f->state_dir);
	pthread_mutex_unlock(&f->lock);
	kg_info("fleet: bucket %s read (%d key%s, revision %llu); watching it", f->conf.bucket, nent,
		nent == 1 ? "" : "s", (unsigned long long)f->last_rev);
	return 0;
}

/* The watch is an ordered consumer that the library re-creates when it
 * notices a gap or missing heartbeats; this is the belt to those braces: a
 * bucket newer than what arrived here, twice in a row with nothing new
 * arriving in between, means the watch is stuck, and the bucket is re-read. */
static bool kg_fleet_stalled(struct kg_fleet *f)
{
	uint64_t last = kg_fleet_stream_last(f), seen;
	bool stuck = false;

	pthread_mutex_lock(&f->lock);
	seen = f->last_rev;
	if (!last || last <= seen)
		f->stall_rev = UINT64_MAX;
	else if (f->stall_rev == seen)
		stuck = true;
	else
		f->stall_rev = seen;
	pthread_mutex_unlock(&f->lock);
	if (stuck)
		kg_warn("fleet: the watch of bucket %s stopped at revision %llu while the bucket is at "
			"%llu; re-reading the bucket", f->conf.bucket, (unsigned long long)seen,
			(unsigned long long)last);
	return stuck;
}

static uint64_t kg_fleet_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * The watcher thread. Each round: (re)read the bucket when it must and a
 * server is there; wait up to KG_FLEET_POLL_MS for a change and apply it;
 * then, by the clock whatever else happened, refresh (and publish) the
 * pending changes every second and look for a stuck watch every
 * KG_FLEET_STALL_MS.
 */
static void *kg_fleet_main(void *arg)
{
	struct kg_fleet *f = arg;
	uint64_t now, retry_at = 0, next_pending = 0, next_stall = 0;
	unsigned backoff = 0, pend_backoff = 0;

	while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
		bool up = natsConnection_Status(f->n.nc) == NATS_CONN_STATUS_CONNECTED;
		kvEntry *e = NULL;
		natsStatus s = NATS_TIMEOUT;

		if (__atomic_exchange_n(&f->kick, 0, __ATOMIC_ACQ_REL))
			retry_at = next_pending = 0;	/* (re)connected: no back-off */
		if (up && (__atomic_load_n(&f->resync, __ATOMIC_ACQUIRE) || !f->w) &&
		    kg_fleet_mono_ms() >= retry_at) {
			__atomic_store_n(&f->resync, 0, __ATOMIC_RELEASE);
			if (kg_fleet_sync(f)) {
				/* again later, less often while it keeps failing (a
				 * stream without a leader answers nothing for a while) */
				__atomic_store_n(&f->resync, 1, __ATOMIC_RELEASE);
				backoff = backoff < KG_FLEET_BACKOFF_MAX ? backoff + 1 : backoff;
				retry_at = kg_fleet_mono_ms() + ((uint64_t)KG_FLEET_POLL_MS << (backoff - 1));
			} else {
				backoff = 0;
			}
		}
		if (f->w)
			s = kvWatcher_Next(&e, f->w, KG_FLEET_POLL_MS);
		else
			usleep(KG_FLEET_POLL_MS * 1000);
		if (s == NATS_OK && e) {
			kg_fleet_apply(f, e, false);
			kvEntry_Destroy(e);
		} else if (s != NATS_OK && s != NATS_TIMEOUT) {
			/* the watch itself broke (not a quiet bucket): a new one
			 * re-reads the bucket once a server answers */
			kg_warn("fleet: the watch of bucket %s ended: %s; re-reading the bucket",
				f->conf.bucket, kg_nats_why(s));
			kvWatcher_Destroy(f->w);
			f->w = NULL;
		}
		now = kg_fleet_mono_ms();
		if (now >= next_pending) {
			/* changes the CLI could not publish (NATS was down for it);
			 * a publish that keeps failing is retried less often (up to
			 * every 32 s, at once after a reconnect), as each failure
			 * holds this thread for a request timeout */
			size_t np = kg_pend_count(f->state_dir);

			if (np && up && f->n.kv) {
				f->pend_failed = kg_pend_flush(f->state_dir, &f->n) < 0;
				np = kg_pend_count(f->state_dir);
			}
			pend_backoff = f->pend_failed && np ? (pend_backoff < 5 ? pend_backoff + 1 : 5) : 0;
			next_pending = now + (1000ULL << pend_backoff);
			pthread_mutex_lock(&f->lock);
			f->pending = np;
			pthread_mutex_unlock(&f->lock);
		}
		if (up && f->w && now >= next_stall) {
			next_stall = now + KG_FLEET_STALL_MS;
			if (kg_fleet_stalled(f))
				__atomic_store_n(&f->resync, 1, __ATOMIC_RELEASE);
		}
	}
	return NULL;
}

void kg_fleet_stop(struct kg_fleet *f)
{
	if (!f)
		return;
	/* the thread wakes up every KG_FLEET_POLL_MS and sees this */
	__atomic_store_n(&f->stop, 1, __ATOMIC_RELEASE);
	if (f->thread_started)
		pthread_join(f->thread, NULL);
	kvWatcher_Destroy(f->w);
	f->w = NULL;
	kg_nats_close(&f->n);
	natsOptions_Destroy(f->opts);
	kg_revoker_close(f->rev);
	pthread_mutex_destroy(&f->nlock);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

int kg_fleet_start(const struct kg_config *cfg, struct kg_fleet **out)
{
	struct kg_fleet *f;
	char err[1024];
	natsStatus s;
	int rc;

	*out = NULL;
	if (!cfg->fleet.enabled)
		return 0;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_init(&f->nlock, NULL);
	f->stall_rev = UINT64_MAX;
	f->conf = cfg->fleet;
	snprintf(f->state_dir, sizeof(f->state_dir), "%s", cfg->state_dir);
	/* a revoker of its own, on the objects the gateway pinned, like the
	 * CLI's: its flock excludes the main thread's state-file writes */
	rc = kg_revoker_open(cfg->pin_root, cfg->state_dir, true, &f->rev, err, sizeof(err));
	if (rc) {
		kg_err("fleet: %s", err);
		goto fail;
	}
	/* the gateway's other threads start after this */
	kg_fleet_trust_only_ca(&f->conf);
	s = kg_nats_options(&f->conf, &f->opts, true, kg_fleet_on_disc, kg_fleet_on_conn,
			    kg_fleet_on_err, f);
	if (s != NATS_OK) {
		kg_err("fleet: NATS options: %s; check tls_ca, tls_cert, tls_key and creds in [fleet]",
		       kg_nats_why(s));
		rc = -EINVAL;
		goto fail;
	}
	s = natsConnection_Connect(&f->n.nc, f->opts);
	__atomic_store_n(&f->resync, 0, __ATOMIC_RELEASE);
	if (s == NATS_OK) {
		pthread_mutex_lock(&f->lock);
		f->connected = true;
		if (natsConnection_GetConnectedUrl(f->n.nc, f->server, sizeof(f->server)) != NATS_OK)
			f->server[0] = '\0';
		pthread_mutex_unlock(&f->lock);
		/* reconcile before the first client: what the fleet revoked
		 * while this node was away is refused from its first handshake */
		if (kg_fleet_sync(f))
			kg_warn("fleet: could not read bucket %s at start; serving from the state file "
				"in %s, will catch up", f->conf.bucket, cfg->state_dir);
	} else if (s == NATS_NOT_YET_CONNECTED) {
		kg_warn("fleet: NATS unreachable (%s); starting from the state file in %s, will "
			"catch up with bucket %s when NATS answers", f->conf.servers, cfg->state_dir,
			f->conf.bucket);
	} else {
		kg_err("fleet: connecting to %s: %s", f->conf.servers, kg_nats_why(s));
		rc = -EIO;
		goto fail;
	}
	f->pending = kg_pend_count(f->state_dir);
	*out = f;
	return 0;
fail:
	kg_fleet_stop(f);
	return rc;
}

int kg_fleet_spawn(struct kg_fleet *f)
{
	int rc = -pthread_create(&f->thread, NULL, kg_fleet_main, f);

	if (!rc)
		f->thread_started = true;
	return rc;
}

int kg_fleet_publish_via(struct kg_fleet *f, const char *json, size_t len, uint64_t *rev,
			 char *msg, size_t msglen)
{
	struct json_object *o;
	struct kg_pend p = { 0 };
	char perr[128];
	natsStatus s;

	o = kg_json_parse(json, len, perr, sizeof(perr));
	if (!o || kg_pend_from_json(o, &p)) {
		snprintf(msg, msglen, "fleet publish: not a change (%s)", o ? "no sha256" : perr);
		json_object_put(o);
		return -EINVAL;
	}
	/* only for a writer with this gateway's own credentials: a command
	 * holding others (a reader's) goes to NATS itself and meets their
	 * permissions there */
	if (strcmp(kg_json_get_str(o, "creds", ""), f->conf.creds) ||
	    strcmp(kg_json_get_str(o, "bucket", ""), f->conf.bucket)) {
		json_object_put(o);
		snprintf(msg, msglen, "fleet publish: other credentials or bucket than this gateway's");
		return -EPERM;
	}
	json_object_put(o);
	pthread_mutex_lock(&f->nlock);
	if (!f->n.kv || natsConnection_Status(f->n.nc) != NATS_CONN_STATUS_CONNECTED) {
		pthread_mutex_unlock(&f->nlock);
		snprintf(msg, msglen, "fleet publish: this gateway is not connected to NATS");
		return -ENOTCONN;
	}
	s = kg_nats_write(&f->n, &p, rev);
	pthread_mutex_unlock(&f->nlock);
	if (s != NATS_OK) {
		snprintf(msg, msglen, "fleet publish: %s", kg_nats_why(s));
		return -EIO;
	}
	return 0;
}

struct json_object *kg_fleet_status_json(struct kg_fleet *f)
{
	struct json_object *o;

	pthread_mutex_lock(&f->lock);
	o = kg_json_obj("bsssuuuubu", "connected", f->connected, "server", f->server,
			"bucket", f->conf.bucket, "node", f->conf.node,
			"last_revision", f->last_rev, "updates_applied", f->applied,
			"pending", (uint64_t)f->pending, "reconnects", f->reconnects,
			"synced", f->synced, "lag_ms", (uint64_t)(f->last_lag_s * 1000 + 0.5));
	pthread_mutex_unlock(&f->lock);
	return o;
}

char *kg_fleet_metrics_text(struct kg_fleet *f)
{
	char *out = NULL, hist[1024];
	size_t len = 0;
	int i;

	pthread_mutex_lock(&f->lock);
	for (i = 0; i < KG_LAG_BUCKETS; i++)
		len += (size_t)snprintf(hist + len, sizeof(hist) - len,
					"ktlsgw_fleet_apply_lag_seconds_bucket{le=\"%g\"} %llu\n",
					kg_lag_le[i], (unsigned long long)f->lag_hist[i]);
	if (asprintf(&out,
		     "# HELP ktlsgw_fleet_connected 1 while connected to a NATS server of the fleet.\n"
		     "# TYPE ktlsgw_fleet_connected gauge\nktlsgw_fleet_connected %d\n"
		     "# HELP ktlsgw_fleet_updates_applied_total Bucket changes applied to the map and "
		     "state file.\n# TYPE ktlsgw_fleet_updates_applied_total counter\n"
		     "ktlsgw_fleet_updates_applied_total %llu\n"
		     "# HELP ktlsgw_fleet_pending Local changes waiting to be published.\n"
		     "# TYPE ktlsgw_fleet_pending gauge\nktlsgw_fleet_pending %zu\n"
		     "# HELP ktlsgw_fleet_last_revision Last bucket revision seen.\n"
		     "# TYPE ktlsgw_fleet_last_revision gauge\nktlsgw_fleet_last_revision %llu\n"
		     "# HELP ktlsgw_fleet_apply_lag_seconds From the bucket write to its application "
		     "here (live updates).\n# TYPE ktlsgw_fleet_apply_lag_seconds histogram\n"
		     "%sktlsgw_fleet_apply_lag_seconds_bucket{le=\"+Inf\"} %llu\n"
		     "ktlsgw_fleet_apply_lag_seconds_sum %.6f\nktlsgw_fleet_apply_lag_seconds_count %llu\n",
		     f->connected ? 1 : 0, (unsigned long long)f->applied, f->pending,
		     (unsigned long long)f->last_rev, hist, (unsigned long long)f->lag_count,
		     f->lag_sum, (unsigned long long)f->lag_count) < 0)
		out = NULL;
	pthread_mutex_unlock(&f->lock);
	return out;
}
