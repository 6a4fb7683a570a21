/* The running gateway: listeners, workers, signals. */
#ifndef KG_GATEWAY_H
#define KG_GATEWAY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "revoke.h"
#include "revstate.h"
#include "tls.h"
#include "worker.h"

struct kg_revoker;

struct kg_worker;

struct kg_listener {
	pthread_mutex_t lock;		/* guards conf and tls against a reload */
	const struct kg_listener_conf *conf;
	struct kg_tls_ctx *tls;
	struct kg_addr bound;		/* the address actually bound (port 0 resolved) */
	unsigned active;		/* connections of this listener, all workers */
};

struct kg_gw {
	struct kg_config *cfg;
	struct kg_listener *lst;
	size_t n_lst;
	unsigned n_workers;
	struct kg_worker **workers;
	int stop;			/* 0 run, 1 drain (SIGTERM), 2 stop now (SIGINT) */
	unsigned drain_timeout_ms;
	struct kg_revoker *rev;		/* NULL: no BPF revocation */
	struct kg_rev_hook hook;
	struct kg_revstate fallback;	/* best-effort without BPF: the file's list */
	bool ktls;			/* the kernel has the tls ULP */
	unsigned active;		/* connections, all listeners and workers */
	struct kg_config **old_cfgs;	/* replaced by reloads; live connections may use them */
	size_t n_old_cfgs;
	uint64_t keyupdate_ends;	/* connections ended by a KeyUpdate (no rekey) */
	bool wait_poll;			/* workers wait in poll(2) (KTLSGW_WAIT_POLL=1) */
	unsigned workers_done;		/* workers whose loop has ended (atomic) */
	int done_fd;			/* eventfd: a worker ended */
};

/*
 * Run the gateway until SIGTERM/SIGINT. Takes ownership of @cfg.
 * @ready_file, if not NULL, gets one "NAME ADDRESS" line per listener once
 * every socket is bound. Returns 0 on a clean stop, -errno if start failed
 * (the cause is logged).
 */
int kg_gw_run(struct kg_config *cfg, const char *ready_file) __attribute__((warn_unused_result));

#endif
