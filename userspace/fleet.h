/*
 * Fleet-wide revocation: the revocation list of many gateways shared in a
 * NATS JetStream key-value bucket. `revoke add|del` writes the bucket (or,
 * with NATS unreachable, a durable pending file the gateway publishes
 * later); every gateway watches the bucket and applies each change through
 * the same revoker as a local revocation, so the live cut runs. Format of
 * the bucket and of the pending file: docs/fleet.md.
 */
#ifndef KG_FLEET_H
#define KG_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "verify.h"

struct json_object;
struct kg_config;

#define KG_FLEET_BUCKET_DEFAULT "ktlsgw-revoked"
#define KG_FLEET_PATH_MAX 256

/* [fleet]; .enabled is false without the section, and then nothing of
 * this file runs. */
struct kg_fleet_conf {
	bool enabled;
	unsigned line;				/* of [fleet], for messages */
	char servers[1024];			/* "nats://h:p,tls://h:p" */
	char bucket[64];
	int replicas;				/* when the bucket is created */
	char node[64];				/* default: the hostname */
	char tls_ca[KG_FLEET_PATH_MAX], tls_cert[KG_FLEET_PATH_MAX], tls_key[KG_FLEET_PATH_MAX];
	char creds[KG_FLEET_PATH_MAX];		/* .creds file, or "user:password" file */
};

/* fleet_conf.c (no NATS here: config.c and the fuzzers use it). One key of
 * [fleet]: 0, or -EINVAL with what is wrong in @err. */
int kg_fleet_conf_key(struct kg_fleet_conf *f, const char *name, const char *value,
		      char *err, size_t errlen) __attribute__((warn_unused_result));
/* Defaults and required keys once the file is read: 0 or -EINVAL. */
int kg_fleet_conf_check(struct kg_fleet_conf *f, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* ---- CLI side ------------------------------------------------------------ */

/*
 * libnats builds its SSL_CTX with SSL_CTX_set_default_verify_paths(): with
 * tls_ca given it would still trust every CA of the system store as well,
 * and read that store (some 200 KB of PEM: tens of milliseconds on a busy
 * small machine) in every process. This points OpenSSL's default locations
 * (the environment that call reads) at tls_ca alone. Call it while the
 * process has one thread, before its first NATS connection; no-op without
 * tls_ca.
 */
void kg_fleet_trust_only_ca(const struct kg_fleet_conf *fc);

enum kg_fleet_pub {
	KG_FLEET_PUB_OK,		/* in the bucket */
	KG_FLEET_PUB_PENDING,		/* NATS unreachable: in the pending file */
};

/*
 * After a local revoke (@del false) or un-revoke (@del true) of @fp, write
 * the bucket of @cfg's [fleet]. NATS unreachable: the change goes to the
 * pending file (fsync'd) and KG_FLEET_PUB_PENDING is returned. -EACCES: NATS
 * refused the write (no writer permission); other -errno: not even the
 * pending file could be written. @msg gets one line for the operator.
 */
int kg_fleet_publish_one(const struct kg_config *cfg, const uint8_t fp[KG_FP_LEN], bool del,
			 uint32_t reason, const char *text, char *msg, size_t msglen)
	__attribute__((warn_unused_result));

/*
 * The bucket as NATS has it now, read with @cfg's [fleet] (a reader's
 * credentials suffice): *@out gets an array of {sha256, state ("revoked" or
 * "unrevoked": a delete marker), revision, written_at, node, reason}, the
 * caller's. -ENOENT: no such bucket; -EIO: NATS unreachable or refused,
 * with the reason in @msg.
 */
int kg_fleet_list(const struct kg_config *cfg, struct json_object **out, char *msg,
		  size_t msglen) __attribute__((warn_unused_result));

/*
 * Follow the bucket without a gateway (no map, no state): one line on @out
 * per entry, "initial|change REVISION SHA256 revoked|unrevoked WRITTEN_NS
 * RECEIVED_NS" (both CLOCK_REALTIME nanoseconds), and "synced N" once the
 * bucket's content has been read; until *@stop. 0, or -EIO with @msg.
 */
int kg_fleet_watch(const struct kg_config *cfg, FILE *out, const volatile int *stop, char *msg,
		   size_t msglen) __attribute__((warn_unused_result));

/* ---- gateway side -------------------------------------------------------- */

struct kg_fleet;

/*
 * Connect, publish what is pending, read the whole bucket and apply it to
 * the map and state file under @cfg's paths (kg_fleet_spawn then watches it).
 * Returns before the gateway accepts its first client. NATS
 * unreachable: 0, the gateway starts from its state file (logged), and the
 * thread catches up once NATS answers. -errno only for local failures.
 */
int kg_fleet_start(const struct kg_config *cfg, struct kg_fleet **out)
	__attribute__((warn_unused_result));
/* Start watching from a thread of its own; after any privilege drop, so
 * that the thread has only what the gateway kept. 0 or -errno. */
int kg_fleet_spawn(struct kg_fleet *f) __attribute__((warn_unused_result));
void kg_fleet_stop(struct kg_fleet *f);
/*
 * The admin socket's "fleet publish JSON" (main thread): write one change,
 * a pending-file line as JSON (docs/fleet.md) plus the "creds" and "bucket"
 * of the command's configuration, with this gateway's NATS connection. Only
 * when those are this gateway's own (-EPERM otherwise: the command must meet
 * NATS with its own credentials). 0 with *@rev the put's revision (0 for a
 * delete); -EINVAL, -ENOTCONN, -EIO with @msg. Blocks for at most one
 * JetStream request (2 s), as `conn kill` waits for a worker.
 */
int kg_fleet_publish_via(struct kg_fleet *f, const char *json, size_t len, uint64_t *rev,
			 char *msg, size_t msglen) __attribute__((warn_unused_result));
/* `fleet status` as the admin socket's "stats" carries it (caller owns). */
struct json_object *kg_fleet_status_json(struct kg_fleet *f);
/* The fleet's Prometheus lines (malloc'd text, caller frees; NULL if none). */
char *kg_fleet_metrics_text(struct kg_fleet *f);

#endif
