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
 * Pending file: STATE_DIR/fleet-pending, one JSON object per line, the
 * changes made while NATS was unreachable, newest per key. Written like the
 * state file (temp file, fsync, rename, fsync of the directory) under its
 * own flock, so a change the CLI acknowledged survives kill -9 and is
 * published by the next gateway (or CLI) that reaches NATS.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "admin.h"
#include "config.h"
#include "fleet.h"
#include "json.h"
#include "log.h"
#include "revoke.h"
#include "revstate.h"

#define KG_FLEET_CONNECT_MS 1500	/* per server, at connect */
#define KG_FLEET_JS_WAIT_MS 2000	/* a JetStream request (put, stream info) */
#define KG_FLEET_RECONNECT_MS 250	/* between reconnect rounds */
#define KG_FLEET_POLL_MS 250		/* the watcher's wake-up: pending file, stop */
#define KG_FLEET_BACKOFF_MAX 4		/* failed syncs retried after 250 ms .. 2 s */
#define KG_FLEET_HISTORY 5		/* values kept per key (audit) */
#define KG_FLEET_STALL_MS 2000		/* between checks for a stuck watch */

/* ---- pending file ---------------------------------------------------------- */

struct kg_pend {
	uint8_t fp[KG_FP_LEN];
	bool del;
	uint64_t revoked_at;
	uint32_t reason;
	char text[KG_REASON_TEXT_MAX];
	char node[64];
};

struct kg_pendset {
	struct kg_pend *e;
	size_t n;
};

static void kg_pendset_release(struct kg_pendset *s)
{
	free(s->e);
	s->e = NULL;
	s->n = 0;
}

static int kg_pend_lock(const char *state_dir)
{
	char path[400];
	int fd;

	snprintf(path, sizeof(path), "%s/fleet-pending.lock", state_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX))
		if (errno != EINTR) {
			int rc = -errno;

			close(fd);
			return rc;
		}
	return fd;
}

static void kg_pend_unlock(int fd)
{
	if (fd >= 0)
		close(fd);	/* releases the flock */
}

static struct json_object *kg_value_json(const struct kg_pend *p, bool with_op)
{
	char hex[KG_FP_HEX_LEN];

	kg_fp_format(p->fp, false, hex, sizeof(hex));
	if (with_op)
		return kg_json_obj("sssuusus", "op", p->del ? "del" : "add", "sha256", hex, "reason",
				   kg_reason_name(p->reason), "reason_code", (uint64_t)p->reason,
				   "revoked_at", p->revoked_at, "text", p->text, "v", (uint64_t)1,
				   "node", p->node);
	return kg_json_obj("suusus", "sha256", hex, "revoked_at", p->revoked_at, "reason_code",
			   (uint64_t)p->reason, "reason", kg_reason_name(p->reason), "v", (uint64_t)1,
			   "text", p->text);
}

/* Fill @p from a bucket value or a pending line @o (the "op" only in the latter). */
static int kg_pend_from_json(struct json_object *o, struct kg_pend *p)
{
	struct json_object *v;

	if (!json_object_is_type(o, json_type_object) ||
	    kg_fp_parse(kg_json_get_str(o, "sha256", ""), p->fp))
		return -EINVAL;
	p->del = !strcmp(kg_json_get_str(o, "op", "add"), "del");
	p->revoked_at = json_object_object_get_ex(o, "revoked_at", &v) ?
			(uint64_t)json_object_get_int64(v) : 0;
	p->reason = json_object_object_get_ex(o, "reason_code", &v) ?
		    (uint32_t)json_object_get_int(v) : 0;
	snprintf(p->text, sizeof(p->text), "%s", kg_json_get_str(o, "text", ""));
	snprintf(p->node, sizeof(p->node), "%s", kg_json_get_str(o, "node", ""));
	return 0;
}

/* Read the pending file (missing: empty). A damaged line is skipped with a
 * warning: the rest is still worth publishing. */
static int kg_pend_load(const char *state_dir, struct kg_pendset *s)
{
	char path[400], *line = NULL, err[128];
	size_t cap = 0;
	ssize_t len;
	FILE *f;
	int rc = 0;

	s->e = NULL;
	s->n = 0;
	snprintf(path, sizeof(path), "%s/fleet-pending", state_dir);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while ((len = getline(&line, &cap, f)) > 0) {
		struct json_object *o = kg_json_parse(line, (size_t)len, err, sizeof(err));
		struct kg_pend p = { 0 }, *ne;

		if (!o || kg_pend_from_json(o, &p)) {
			kg_warn("%s: a damaged line skipped (%s)", path, o ? "no sha256" : err);
			json_object_put(o);
			continue;
		}
		json_object_put(o);
		ne = realloc(s->e, (s->n + 1) * sizeof(*ne));
		if (!ne) {
			rc = -ENOMEM;
			break;
		}
		s->e = ne;
		s->e[s->n++] = p;
	}
	free(line);
	fclose(f);
	if (rc)
		kg_pendset_release(s);
	return rc;
}

/* Write @s as the pending file, atomically and durably (empty: removed). */
static int kg_pend_save(const char *state_dir, const struct kg_pendset *s)
{
	char path[400], tmp[420];
	size_t i;
	FILE *f;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/fleet-pending", state_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (!s->n) {
		if (unlink(path) && errno != ENOENT)
			return -errno;
		goto sync_dir;
	}
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	for (i = 0; i < s->n && !rc; i++) {
		struct json_object *o = kg_value_json(&s->e[i], true);
		const char *t = o ? kg_json_text(o) : NULL;

		if (!t || fprintf(f, "%s\n", t) < 0)
			rc = t ? -EIO : -ENOMEM;
		json_object_put(o);
	}
	if (!rc && (fflush(f) || fsync(fileno(f))))
		rc = -errno;
	if (fclose(f) && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path))
		rc = -errno;
	if (rc) {
		(void)unlink(tmp);
		return rc;
	}
sync_dir:
	/* the rename (or unlink) itself must survive a crash */
	fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd))
		rc = -errno;
	close(fd);
	return rc;
}

static struct kg_pend *kg_pend_find(struct kg_pendset *s, const uint8_t fp[KG_FP_LEN])
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (!memcmp(s->e[i].fp, fp, KG_FP_LEN))
			return &s->e[i];
	return NULL;
}

/* Field by field: two entries read from JSON are never compared as bytes
 * (padding). */
static bool kg_pend_same(const struct kg_pend *a, const struct kg_pend *b)
{
	return !memcmp(a->fp, b->fp, KG_FP_LEN) && a->del == b->del &&
	       a->revoked_at == b->revoked_at && a->reason == b->reason &&
	       !strcmp(a->text, b->text) && !strcmp(a->node, b->node);
}

/* Record @p as pending: it replaces an older change of the same key. */
static int kg_pend_add(const char *state_dir, const struct kg_pend *p, size_t *count)
{
	struct kg_pendset s = { 0 };
	struct kg_pend *old, *ne;
	int lfd, rc;

	lfd = kg_pend_lock(state_dir);
	if (lfd < 0)
		return lfd;
	rc = kg_pend_load(state_dir, &s);
	if (rc)
		goto out;
	old = kg_pend_find(&s, p->fp);
	if (old) {
		*old = *p;
	} else {
		ne = realloc(s.e, (s.n + 1) * sizeof(*ne));
		if (!ne) {
			rc = -ENOMEM;
			goto out;
		}
		s.e = ne;
		s.e[s.n++] = *p;
	}
	rc = kg_pend_save(state_dir, &s);
	*count = s.n;
out:
	kg_pendset_release(&s);
	kg_pend_unlock(lfd);
	return rc;
}

/* Drop @p from the pending file if it is still the change recorded there
 * (a newer change of the same key, made meanwhile, stays); with @any_of_key,
 * whatever change of its key is there (@p is newer than all of them). */
static int kg_pend_done(const char *state_dir, const struct kg_pend *p, bool any_of_key)
{
	struct kg_pendset s = { 0 };
	struct kg_pend *cur;
	int lfd, rc;

	lfd = kg_pend_lock(state_dir);
	if (lfd < 0)
		return lfd;
	rc = kg_pend_load(state_dir, &s);
	if (rc)
		goto out;
	cur = kg_pend_find(&s, p->fp);
	if (cur && (any_of_key || kg_pend_same(cur, p))) {
		*cur = s.e[--s.n];
		rc = kg_pend_save(state_dir, &s);
	}
out:
	kg_pendset_release(&s);
	kg_pend_unlock(lfd);
	return rc;
}

/* ---- NATS ------------------------------------------------------------------ */

struct kg_nats {
	natsConnection *nc;
	jsCtx *js;
	kvStore *kv;
};

static void kg_nats_close(struct kg_nats *n)
{
	kvStore_Destroy(n->kv);
	n->kv = NULL;
	jsCtx_Destroy(n->js);
	n->js = NULL;
	if (n->nc)
		natsConnection_Destroy(n->nc);
	n->nc = NULL;
}

/* "user:password" on the first line of @path, for servers with static
 * users; a .creds file (JWT and NKey seed) is handed to the library. */
static natsStatus kg_nats_creds(natsOptions *o, const char *path)
{
	char buf[512] = "", *colon;
	natsStatus s;
	FILE *f = fopen(path, "re");

	if (!f)
		return NATS_ERR;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	if (strstr(buf, "BEGIN NATS USER JWT") || !(colon = strchr(buf, ':')))
		return natsOptions_SetUserCredentialsFromFiles(o, path, NULL);
	*colon = '\0';
	colon[strcspn(colon + 1, "\r\n") + 1] = '\0';
	s = natsOptions_SetUserInfo(o, buf, colon + 1);
	memset(buf, 0, sizeof(buf));
	return s;
}

void kg_fleet_trust_only_ca(const struct kg_fleet_conf *fc)
{
	if (!fc->tls_ca[0])
		return;
	(void)setenv("SSL_CERT_FILE", fc->tls_ca, 1);
	/* a file where a directory is expected: every hashed-name lookup in
	 * it fails, so no system directory is searched either */
	(void)setenv("SSL_CERT_DIR", fc->tls_ca, 1);
}

/* The options toward @fc's servers. Hooks may be NULL. */
static natsStatus kg_nats_options(const struct kg_fleet_conf *fc, natsOptions **out,
				  bool keep_trying, natsConnectionHandler on_disc,
				  natsConnectionHandler on_conn, natsErrHandler on_err, void *arg)
{
	char urls[sizeof(fc->servers)], *save = NULL, *u;
	const char *list[32];
	int n = 0;
	natsOptions *o = NULL;
	natsStatus s;

	snprintf(urls, sizeof(urls), "%s", fc->servers);
	for (u = strtok_r(urls, ", ", &save); u && n < 32; u = strtok_r(NULL, ", ", &save))
		list[n++] = u;
	s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = natsOptions_SetServers(o, list, n);
	if (s == NATS_OK)
		s = natsOptions_SetName(o, fc->node);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(o, KG_FLEET_CONNECT_MS);
	if (s == NATS_OK && (fc->tls_ca[0] || fc->tls_cert[0] || strstr(fc->servers, "tls://")))
		s = natsOptions_SetSecure(o, true);
	if (s == NATS_OK && fc->tls_ca[0])
		s = natsOptions_LoadCATrustedCertificates(o, fc->tls_ca);
	if (s == NATS_OK && fc->tls_cert[0])
		s = natsOptions_LoadCertificatesChain(o, fc->tls_cert, fc->tls_key);
	if (s == NATS_OK && fc->creds[0])
		s = kg_nats_creds(o, fc->creds);
	if (s == NATS_OK && keep_trying) {
		/* a gateway never gives up on the fleet: it serves from its state
		 * file meanwhile, and catches up when a server answers */
		s = natsOptions_SetMaxReconnect(o, -1);
		if (s == NATS_OK)
			s = natsOptions_SetReconnectWait(o, KG_FLEET_RECONNECT_MS);
		if (s == NATS_OK)
			s = natsOptions_SetRetryOnFailedConnect(o, true, on_conn, arg);
		if (s == NATS_OK && on_disc)
			s = natsOptions_SetDisconnectedCB(o, on_disc, arg);
		if (s == NATS_OK && on_conn)
			s = natsOptions_SetReconnectedCB(o, on_conn, arg);
	} else if (s == NATS_OK) {
		s = natsOptions_SetAllowReconnect(o, false);
	}
	if (s == NATS_OK && on_err)
		s = natsOptions_SetErrorHandler(o, on_err, arg);
	if (s != NATS_OK) {
		natsOptions_Destroy(o);
		o = NULL;
	}
	*out = o;
	return s;
}

/* Bind the bucket, creating it (with @fc's replicas) where it is missing. */
static natsStatus kg_nats_bucket(const struct kg_fleet_conf *fc, struct kg_nats *n)
{
	jsOptions jo;
	kvConfig kc;
	natsStatus s;

	jsOptions_Init(&jo);
	jo.Wait = KG_FLEET_JS_WAIT_MS;
	s = natsConnection_JetStream(&n->js, n->nc, &jo);
	if (s != NATS_OK)
		return s;
	s = js_KeyValue(&n->kv, n->js, fc->bucket);
	if (s != NATS_NOT_FOUND)
		return s;
	kvConfig_Init(&kc);
	kc.Bucket = fc->bucket;
	kc.History = KG_FLEET_HISTORY;
	kc.Replicas = fc->replicas;
	kc.StorageType = js_FileStorage;
	kc.Description = "ktlsgw revoked client certificates: key sha256 hex";
	s = js_CreateKeyValue(&n->kv, n->js, &kc);
	if (s == NATS_OK)
		kg_info("fleet: created bucket %s with %d replica%s", fc->bucket, fc->replicas,
			fc->replicas == 1 ? "" : "s");
	return s;
}

static const char *kg_nats_why(natsStatus s)
{
	const char *t = nats_GetLastError(NULL);

	return t && *t ? t : natsStatus_GetText(s);
}

/* Write @p to the bucket: put of its value, or delete marker. @rev (may be
 * NULL) gets the put's revision (0 for a delete). */
static natsStatus kg_nats_write(struct kg_nats *n, const struct kg_pend *p, uint64_t *rev)
{
	char hex[KG_FP_HEX_LEN];
	struct json_object *o;
	const char *t;
	natsStatus s;

	if (rev)
		*rev = 0;
	kg_fp_format(p->fp, false, hex, sizeof(hex));
	if (p->del)
		return kvStore_Delete(n->kv, hex);
	o = kg_value_json(p, false);
	if (!o || kg_json_object_add(o, "node", kg_json_str(p->node)) || !(t = kg_json_text(o))) {
		json_object_put(o);
		return NATS_NO_MEMORY;
	}
	s = kvStore_PutString(rev, n->kv, hex, t);
	json_object_put(o);
	return s;
}

/* Publish everything in the pending file; stops at the first failure (the
 * rest stays pending). The number published, or -errno. */
static int kg_pend_flush(const char *state_dir, struct kg_nats *n)
{
	struct kg_pendset s = { 0 };
	size_t i;
	int lfd, rc, done = 0;

	lfd = kg_pend_lock(state_dir);
	if (lfd < 0)
		return lfd;
	rc = kg_pend_load(state_dir, &s);
	kg_pend_unlock(lfd);
	for (i = 0; !rc && i < s.n; i++) {
		char hex[KG_FP_HEX_LEN];
		natsStatus ns = kg_nats_write(n, &s.e[i], NULL);

		kg_fp_format(s.e[i].fp, false, hex, sizeof(hex));
		if (ns != NATS_OK) {
			kg_warn("fleet: publishing the pending %s of sha256=%s: %s; it stays pending",
				s.e[i].del ? "un-revocation" : "revocation", hex, kg_nats_why(ns));
			rc = -EIO;
			break;
		}
		kg_info("fleet: published the pending %s of sha256=%s (made on %s)",
			s.e[i].del ? "un-revocation" : "revocation", hex, s.e[i].node);
		rc = kg_pend_done(state_dir, &s.e[i], false);
		done++;
	}
	kg_pendset_release(&s);
	return rc ? rc : done;
}

static size_t kg_pend_count(const char *state_dir)
{
	struct kg_pendset s = { 0 };
	size_t n = 0;
	int lfd = kg_pend_lock(state_dir);

	if (lfd < 0)
		return 0;
	if (!kg_pend_load(state_dir, &s))
		n = s.n;
	kg_pendset_release(&s);
	kg_pend_unlock(lfd);
	return n;
}

/* ---- CLI side ------------------------------------------------------------ */

struct kg_cli_err {
	bool denied;
};

static void kg_cli_on_err(natsConnection *nc, natsSubscription *sub, natsStatus err, void *arg)
{
	struct kg_cli_err *e = arg;

	/* a publish without permission gets no answer, only this */
	if (err == NATS_NOT_PERMITTED)
		__atomic_store_n(&e->denied, true, __ATOMIC_RELEASE);
}

/*
 * The fast way out: this node's gateway holds a NATS connection already, so
 * hand it the change over the admin socket instead of connecting (process
 * start, TLS handshake and JetStream set-up of our own: most of a CLI's
 * time to the bucket). True when the gateway wrote the bucket; false, with
 * nothing changed, for anything else (no gateway, not connected, other
 * credentials, a failed write): the caller connects itself then.
 */
static bool kg_fleet_via_gateway(const struct kg_config *cfg, const struct kg_pend *p, char *msg,
				 size_t msglen)
{
	struct json_object *v = kg_value_json(p, true), *r = NULL, *rev;
	char err[256], *req = NULL, *resp = NULL;
	const char *t;
	bool ok = false;

	if (!cfg->admin_socket[0] || !v || kg_json_add_str(v, "creds", cfg->fleet.creds) ||
	    kg_json_add_str(v, "bucket", cfg->fleet.bucket) || !(t = kg_json_text(v)) ||
	    asprintf(&req, "fleet publish %s", t) < 0) {
		json_object_put(v);
		return false;
	}
	json_object_put(v);
	resp = kg_admin_call(cfg->admin_socket, req, err, sizeof(err));
	free(req);
	if (resp)
		r = kg_json_parse(resp, strlen(resp), err, sizeof(err));
	free(resp);
	if (r && json_object_object_get_ex(r, "revision", &rev)) {
		snprintf(msg, msglen, "fleet: %s in bucket %s (by this node's gateway%s%s)",
			 p->del ? "deleted" : "written", cfg->fleet.bucket,
			 p->del ? "" : ", revision ", p->del ? "" : json_object_get_string(rev));
		ok = true;
	}
	json_object_put(r);
	return ok;
}

int kg_fleet_publish_one(const struct kg_config *cfg, const uint8_t fp[KG_FP_LEN], bool del,
			 uint32_t reason, const char *text, char *msg, size_t msglen)
{
	const struct kg_fleet_conf *fc = &cfg->fleet;
	struct kg_nats n = { 0 };
	struct kg_cli_err ce = { 0 };
	struct kg_pend p = { .del = del, .reason = reason, .revoked_at = (uint64_t)time(NULL) };
	natsOptions *o = NULL;
	natsStatus s;
	size_t count = 0;
	int rc;

	memcpy(p.fp, fp, KG_FP_LEN);
	snprintf(p.text, sizeof(p.text), "%s", text ? text : "");
	snprintf(p.node, sizeof(p.node), "%s", fc->node);
	if (kg_fleet_via_gateway(cfg, &p, msg, msglen))
		return KG_FLEET_PUB_OK;
	s = kg_nats_options(fc, &o, false, NULL, NULL, kg_cli_on_err, &ce);
	if (s == NATS_OK)
		s = natsConnection_Connect(&n.nc, o);
	if (s == NATS_OK)
		s = kg_nats_bucket(fc, &n);
	if (s == NATS_OK)
		s = kg_nats_write(&n, &p, NULL);
	if (s == NATS_OK) {
		/* older changes waiting here go out too, after this one's key:
		 * a pending change of the same key is older, so drop it */
		(void)kg_pend_done(cfg->state_dir, &p, true);
		rc = kg_pend_flush(cfg->state_dir, &n);
		snprintf(msg, msglen, "fleet: %s in bucket %s%s", del ? "deleted" : "written",
			 fc->bucket, rc > 0 ? " (and the older pending changes)" : "");
		rc = KG_FLEET_PUB_OK;
		goto out;
	}
	if (ce.denied || s == NATS_NOT_PERMITTED ||
	    strstr(kg_nats_why(s), "ermission") || strstr(kg_nats_why(s), "uthorization")) {
		snprintf(msg, msglen, "fleet: NATS refused to change bucket %s (%s): these "
			 "credentials (%s) lack the writer permission; applied on this node only",
			 fc->bucket, ce.denied ? "permissions violation" : kg_nats_why(s),
			 fc->creds[0] ? fc->creds : "none");
		rc = -EACCES;
		goto out;
	}
	rc = kg_pend_add(cfg->state_dir, &p, &count);
	if (rc) {
		snprintf(msg, msglen, "fleet: NATS unreachable (%s) and the pending file in %s "
			 "cannot be written: %s; applied on this node only", kg_nats_why(s),
			 cfg->state_dir, strerror(-rc));
		goto out;
	}
	snprintf(msg, msglen, "fleet: NATS unreachable (%s); recorded as pending in "
		 "%s/fleet-pending (%zu pending), the gateway publishes it when NATS returns",
		 kg_nats_why(s), cfg->state_dir, count);
	rc = KG_FLEET_PUB_PENDING;
out:
	kg_nats_close(&n);
	natsOptions_Destroy(o);
	return rc;
}

int kg_fleet_list(const struct kg_config *cfg, struct json_object **out, char *msg,
		  size_t msglen)
{
	const struct kg_fleet_conf *fc = &cfg->fleet;
	struct json_object *arr = json_object_new_array();
	struct kg_nats n = { 0 };
	natsOptions *o = NULL;
	kvWatcher *w = NULL;
	kvWatchOptions wo;
	jsOptions jo;
	kvEntry *e = NULL;
	natsStatus s;
	int rc = 0;

	*out = NULL;
	if (!arr)
		return -ENOMEM;
	s = kg_nats_options(fc, &o, false, NULL, NULL, NULL, NULL);
	if (s == NATS_OK)
		s = natsConnection_Connect(&n.nc, o);
	if (s == NATS_OK) {
		jsOptions_Init(&jo);
		jo.Wait = KG_FLEET_JS_WAIT_MS;
		s = natsConnection_JetStream(&n.js, n.nc, &jo);
	}
	/* reading creates nothing: a missing bucket is an answer */
	if (s == NATS_OK)
		s = js_KeyValue(&n.kv, n.js, fc->bucket);
	if (s == NATS_OK) {
		kvWatchOptions_Init(&wo);
		wo.Timeout = KG_FLEET_JS_WAIT_MS;
		s = kvStore_WatchAll(&w, n.kv, &wo);
	}
	while (s == NATS_OK && (s = kvWatcher_Next(&e, w, KG_FLEET_JS_WAIT_MS)) == NATS_OK && e) {
		struct json_object *v = NULL, *row;
		char verr[64];
		bool del = kvEntry_Operation(e) != kvOp_Put;

		if (!del)
			v = kg_json_parse(kvEntry_ValueString(e), (size_t)kvEntry_ValueLen(e), verr,
					  sizeof(verr));
		row = kg_json_obj("ssuuss", "sha256", kvEntry_Key(e), "state",
				  del ? "unrevoked" : "revoked", "revision", kvEntry_Revision(e),
				  "written_at", (uint64_t)(kvEntry_Created(e) / 1000000000),
				  "node", v ? kg_json_get_str(v, "node", "") : "",
				  "reason", v ? kg_json_get_str(v, "reason", "") : "");
		json_object_put(v);
		kvEntry_Destroy(e);
		if (kg_json_array_add(arr, row)) {
			rc = -ENOMEM;
			break;
		}
	}
	if (!rc && s != NATS_OK) {
		snprintf(msg, msglen, "fleet: reading bucket %s on %s: %s", fc->bucket, fc->servers,
			 kg_nats_why(s));
		rc = s == NATS_NOT_FOUND ? -ENOENT : -EIO;
	}
	kvWatcher_Destroy(w);
	kg_nats_close(&n);
	natsOptions_Destroy(o);
	if (rc)
		json_object_put(arr);
	else
		*out = arr;
	return rc;
}

int kg_fleet_watch(const struct kg_config *cfg, FILE *out, const volatile int *stop, char *msg,
		   size_t msglen)
{
	const struct kg_fleet_conf *fc = &cfg->fleet;
	struct kg_nats n = { 0 };
	natsOptions *o = NULL;
	kvWatcher *w = NULL;
	kvWatchOptions wo;
	jsOptions jo;
	natsStatus s;
	bool initial = true;
	int nent = 0;

	s = kg_nats_options(fc, &o, false, NULL, NULL, NULL, NULL);
	if (s == NATS_OK)
		s = natsConnection_Connect(&n.nc, o);
	if (s == NATS_OK) {
		jsOptions_Init(&jo);
		jo.Wait = KG_FLEET_JS_WAIT_MS;
		s = natsConnection_JetStream(&n.js, n.nc, &jo);
	}
	if (s == NATS_OK)
		s = js_KeyValue(&n.kv, n.js, fc->bucket);
	if (s == NATS_OK) {
		kvWatchOptions_Init(&wo);
		wo.Timeout = KG_FLEET_JS_WAIT_MS;
		s = kvStore_WatchAll(&w, n.kv, &wo);
	}
	while (s == NATS_OK && !*stop) {
		kvEntry *e = NULL;
		struct timespec now;

		s = kvWatcher_Next(&e, w, KG_FLEET_POLL_MS);
		clock_gettime(CLOCK_REALTIME, &now);
		if (s == NATS_TIMEOUT) {
			s = NATS_OK;
			continue;
		}
		if (s != NATS_OK)
			break;
		if (!e) {
			fprintf(out, "synced %d\n", nent);
			initial = false;
		} else {
			fprintf(out, "%s %llu %s %s %lld %lld\n", initial ? "initial" : "change",
				(unsigned long long)kvEntry_Revision(e), kvEntry_Key(e),
				kvEntry_Operation(e) == kvOp_Put ? "revoked" : "unrevoked",
				(long long)kvEntry_Created(e),
				(long long)now.tv_sec * 1000000000LL + now.tv_nsec);
			kvEntry_Destroy(e);
			nent++;
		}
		fflush(out);
	}
	if (s != NATS_OK)
		snprintf(msg, msglen, "fleet: watching bucket %s on %s: %s", fc->bucket, fc->servers,
			 kg_nats_why(s));
	kvWatcher_Destroy(w);
	kg_nats_close(&n);
	natsOptions_Destroy(o);
	return s == NATS_OK ? 0 : -EIO;
}

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
