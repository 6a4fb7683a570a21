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

/* 1 when a sanitizer, not glibc, is the process's malloc. glibc's own
 * calls (malloc_trim, mallinfo2) then set up glibc's unused heap on first
 * use, unlocked: two threads doing it at once both count as attached to
 * its main arena, and glibc aborts when the second exits ("malloc assertion
 * failure in __malloc_arena_thread_freeres"). Seen in the ASan soak. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define KG_SANITIZER_MALLOC 1
#else
#define KG_SANITIZER_MALLOC 0
#endif

struct kg_revoker;
struct kg_fleet;

struct kg_worker;

/* One loaded configuration, shared by the listener snapshots built from
 * it; freed with the last of them. */
struct kg_cfg_gen {
	int refs;
	struct kg_config *cfg;		/* owned */
};

/*
 * What a listener serves with under one configuration: its settings, the
 * [global] settings of the same file, and the TLS context. Immutable. A
 * connection holds a reference for its whole life, so a reload never
 * changes what it runs with, and the last connection frees the old one.
 */
struct kg_lsnap {
	int refs;
	struct kg_cfg_gen *gen;			/* reference */
	const struct kg_listener_conf *conf;	/* in gen->cfg */
	struct kg_tls_ctx *tls;			/* reference */
};

struct kg_listener {
	pthread_mutex_t lock;		/* guards snap against a reload */
	struct kg_lsnap *snap;		/* workers: only through kg_lsnap_get() */
	const struct kg_listener_conf *conf;	/* the main thread's view (it swaps it) */
	char name[KG_NAME_MAX];		/* fixed for the process's life */
	struct kg_addr bound;		/* the address actually bound (port 0 resolved) */
	unsigned active;		/* connections of this listener, all workers */
};

/* A reference to listener @l's current snapshot (any thread). */
struct kg_lsnap *kg_lsnap_get(struct kg_listener *l);
void kg_lsnap_put(struct kg_lsnap *s);

struct kg_gw {
	struct kg_config *cfg;		/* the main thread's: gen->cfg */
	struct kg_cfg_gen *gen;		/* reference to the running configuration */
	struct kg_listener *lst;
	size_t n_lst;
	unsigned n_workers;
	struct kg_worker **workers;
	int stop;			/* 0 run, 1 drain (SIGTERM), 2 stop now (SIGINT) */
	unsigned drain_timeout_ms;
	struct kg_revoker *rev;		/* NULL: no BPF revocation */
	struct kg_rev_hook hook;
	struct kg_revstate fallback;	/* best-effort without BPF: the file's list */
	struct kg_fleet *fleet;		/* [fleet]: the bucket's watcher, or NULL */
	bool ktls;			/* the kernel has the tls ULP */
	unsigned active;		/* connections, all listeners and workers */
	uint64_t keyupdate_ends;	/* connections ended by a KeyUpdate (no rekey) */
	bool wait_poll;			/* workers wait in poll(2) (KTLSGW_WAIT_POLL=1) */
	bool defer_taskrun;		/* rings with DEFER_TASKRUN (KTLSGW_DEFER_TASKRUN=1) */
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

/* Test seams: KTLSGW_FAULT is a comma-separated list of NAME or NAME:N.
 * Returns N for NAME (1 when given without a number), 0 when absent:
 *   ring:N       each worker's Nth submit fails with EIO (loop.c)
 *   sqfull:N     from each worker's Nth SQE request on, the submission
 *                queue stays full (loop.c)
 *   revtag       tagging a client socket fails with EIO (handshake-time
 *                revocation, tls_verify.c)
 *   revlookup    the revoked-map lookup fails with EIO (same)
 *   reload_alloc:N  the Nth allocation made by reloads fails (gateway.c) */
unsigned kg_fault(const char *name);

#endif
