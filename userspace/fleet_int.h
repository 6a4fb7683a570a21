/*
 * Inside the fleet client, shared by its three files and nothing else:
 * fleet_pending.c (the durable pending file), fleet_nats.c (the NATS
 * connection and bucket, and the CLI's commands) and fleet.c (the
 * gateway's watcher thread). Callers outside use fleet.h.
 */
#ifndef KG_FLEET_INT_H
#define KG_FLEET_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include "fleet.h"
#include "revstate.h"
#include "verify.h"

struct json_object;

#define KG_FLEET_CONNECT_MS 1500	/* per server, at connect */
#define KG_FLEET_JS_WAIT_MS 2000	/* a JetStream request (put, stream info) */
#define KG_FLEET_RECONNECT_MS 250	/* between reconnect rounds */
#define KG_FLEET_POLL_MS 250		/* the watcher's wake-up: pending file, stop */
#define KG_FLEET_BACKOFF_MAX 4		/* failed syncs retried after 250 ms .. 2 s */
#define KG_FLEET_HISTORY 5		/* values kept per key (audit) */
#define KG_FLEET_STALL_MS 2000		/* between checks for a stuck watch */

/* ---- fleet_pending.c: STATE_DIR/fleet-pending ------------------------------ */

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

void kg_pendset_release(struct kg_pendset *s);
/* flock of the pending file's companion lock: fd, or -errno */
int kg_pend_lock(const char *state_dir);
void kg_pend_unlock(int fd);
/* A change as the bucket's value (@with_op false) or a pending line. */
struct json_object *kg_value_json(const struct kg_pend *p, bool with_op);
int kg_pend_from_json(struct json_object *o, struct kg_pend *p);
/* Under the lock: read (missing: empty), find. */
int kg_pend_load(const char *state_dir, struct kg_pendset *s);
struct kg_pend *kg_pend_find(struct kg_pendset *s, const uint8_t fp[KG_FP_LEN]);
/* Each takes the lock itself. */
int kg_pend_add(const char *state_dir, const struct kg_pend *p, size_t *count);
int kg_pend_done(const char *state_dir, const struct kg_pend *p, bool any_of_key);
size_t kg_pend_count(const char *state_dir);

/* ---- fleet_nats.c: one connection to NATS and the bucket -------------------- */

struct kg_nats {
	natsConnection *nc;
	jsCtx *js;
	kvStore *kv;
};

void kg_nats_close(struct kg_nats *n);
/* The options toward @fc's servers; a gateway's (@keep_trying) never gives
 * up. Hooks may be NULL. */
natsStatus kg_nats_options(const struct kg_fleet_conf *fc, natsOptions **out, bool keep_trying,
			   natsConnectionHandler on_disc, natsConnectionHandler on_conn,
			   natsErrHandler on_err, void *arg);
/* Bind the bucket, creating it (with @fc's replicas) where it is missing. */
natsStatus kg_nats_bucket(const struct kg_fleet_conf *fc, struct kg_nats *n);
/* The library's last error text, or @s's. */
const char *kg_nats_why(natsStatus s);
natsStatus kg_nats_write(struct kg_nats *n, const struct kg_pend *p, uint64_t *rev);
/* Publish the pending file; the number published, or -errno. */
int kg_pend_flush(const char *state_dir, struct kg_nats *n);

#endif
