/*
 * The fleet's NATS side: options (servers, TLS, credentials), the bucket,
 * one write, the flush of the pending file, and the CLI's commands (`revoke`
 * writing the bucket, `fleet list`, `fleet watch`), each a short-lived
 * connection of its own. The gateway's long-lived watcher is in fleet.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "config.h"
#include "fleet_int.h"
#include "json.h"
#include "log.h"

void kg_nats_close(struct kg_nats *n)
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
natsStatus kg_nats_options(const struct kg_fleet_conf *fc, natsOptions **out,
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
natsStatus kg_nats_bucket(const struct kg_fleet_conf *fc, struct kg_nats *n)
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

const char *kg_nats_why(natsStatus s)
{
	const char *t = nats_GetLastError(NULL);

	return t && *t ? t : natsStatus_GetText(s);
}

/* Write @p to the bucket: put of its value, or delete marker. @rev (may be
 * NULL) gets the put's revision (0 for a delete). */
natsStatus kg_nats_write(struct kg_nats *n, const struct kg_pend *p, uint64_t *rev)
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
int kg_pend_flush(const char *state_dir, struct kg_nats *n)
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

/* ---- CLI side ------------------------------------------------------------ */

/* A reader's connection (one try, no reconnect) and a watch of the whole
 * bucket: its current content first, then each change. Reading creates
 * nothing: a missing bucket is an answer (NATS_NOT_FOUND). */
static natsStatus kg_nats_watch_all(const struct kg_fleet_conf *fc, struct kg_nats *n,
				    natsOptions **o, kvWatcher **w)
{
	kvWatchOptions wo;
	jsOptions jo;
	natsStatus s;

	s = kg_nats_options(fc, o, false, NULL, NULL, NULL, NULL);
	if (s == NATS_OK)
		s = natsConnection_Connect(&n->nc, *o);
	if (s == NATS_OK) {
		jsOptions_Init(&jo);
		jo.Wait = KG_FLEET_JS_WAIT_MS;
		s = natsConnection_JetStream(&n->js, n->nc, &jo);
	}
	if (s == NATS_OK)
		s = js_KeyValue(&n->kv, n->js, fc->bucket);
	if (s == NATS_OK) {
		kvWatchOptions_Init(&wo);
		wo.Timeout = KG_FLEET_JS_WAIT_MS;
		s = kvStore_WatchAll(w, n->kv, &wo);
	}
	return s;
}

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
	kvEntry *e = NULL;
	natsStatus s;
	int rc = 0;

	*out = NULL;
	if (!arr)
		return -ENOMEM;
	s = kg_nats_watch_all(fc, &n, &o, &w);
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
	natsStatus s;
	bool initial = true;
	int nent = 0;

	s = kg_nats_watch_all(fc, &n, &o, &w);
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
