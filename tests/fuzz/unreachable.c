/*
 * The gateway runtime, made unreachable: linked into every fuzz target.
 *
 * admin.c and the cli*.c files refer to workers, the TLS layer, the revoker, the PKI
 * writer and the admin client. The fuzz targets call only parsers, so none
 * of these may ever run: each stand-in aborts, and a fuzzer that reaches
 * one reports it as a crash. They are weak so that a target which links
 * the real file (fuzz_admin links admin.c, which defines kg_admin_call)
 * gets the real symbol and no duplicate.
 */
#include <stdlib.h>

#include "admin.h"
#include "cli.h"
#include "fleet.h"
#include "gateway.h"
#include "pki.h"
#include "revoke.h"
#include "tls.h"
#include "worker.h"

#define KG_UNREACHABLE __attribute__((weak, noreturn))

/* loop.c, mailbox.c, gateway.c */
KG_UNREACHABLE int kg_gw_run(struct kg_config *cfg, const char *ready_file)
{
	abort();
}

KG_UNREACHABLE void kg_worker_post_kill(struct kg_worker *w, uint64_t conn_id, int reason)
{
	abort();
}

KG_UNREACHABLE void kg_worker_post_snapshot(struct kg_worker *w, struct kg_snap_req *r)
{
	abort();
}

KG_UNREACHABLE int kg_worker_kill_wait(struct kg_worker *w, uint64_t conn_id, int reason,
					unsigned timeout_ms)
{
	abort();
}

KG_UNREACHABLE struct kg_stats *kg_worker_stats(struct kg_worker *w)
{
	abort();
}

KG_UNREACHABLE unsigned kg_conn_id_worker(uint64_t conn_id)
{
	abort();
}

/* tls.c */
KG_UNREACHABLE int kg_tls_ctx_new(const struct kg_listener_conf *l, const char *cfgpath,
			   struct kg_tls_ctx **out, char *err, size_t errlen)
{
	abort();
}

KG_UNREACHABLE void kg_tls_ctx_put(struct kg_tls_ctx *t)
{
	abort();
}

/* pki.c */
KG_UNREACHABLE int kg_pki_init(const char *dir, bool test_set)
{
	abort();
}

/* revoke.c, ebpf.c */
KG_UNREACHABLE int kg_revoker_open(const char *pin_root, const char *state_dir, bool cli,
			    struct kg_revoker **out, char *err, size_t errlen)
{
	abort();
}

KG_UNREACHABLE void kg_revoker_close(struct kg_revoker *r)
{
	abort();
}

KG_UNREACHABLE int kg_revoker_add(struct kg_revoker *r, const uint8_t fp[KG_FP_LEN], uint32_t reason,
			   const char *text, int *cut, char *err, size_t errlen)
{
	abort();
}

KG_UNREACHABLE int kg_revoker_del(struct kg_revoker *r, const uint8_t fp[KG_FP_LEN], char *err,
			   size_t errlen)
{
	abort();
}

KG_UNREACHABLE int kg_revoker_list(struct kg_revoker *r, struct kg_revstate *st, char *err, size_t errlen)
{
	abort();
}

KG_UNREACHABLE bool kg_ebpf_can_destroy(const struct kg_ebpf *b)
{
	abort();
}

/* revoke.c: only after a revocation was made */
KG_UNREACHABLE void kg_revoke_print_added(FILE *f, const char *hex, uint32_t reason, int cut,
					  bool kernel, const char *fleet)
{
	abort();
}

KG_UNREACHABLE void kg_revoke_print_removed(FILE *f, const char *hex, const char *fleet)
{
	abort();
}

/* cli_features.c (it probes the kernel) */
KG_UNREACHABLE int kg_cmd_features(struct kg_cli *cli, int argc, char **argv)
{
	abort();
}

/* admin.c (the real one is in fuzz_admin) */
KG_UNREACHABLE char *kg_admin_call(const char *path, const char *req, char *err, size_t errlen)
{
	abort();
}

/* fleet.c (NATS): only the [fleet] keys (fleet_conf.c) are parsed */
KG_UNREACHABLE int kg_fleet_publish_one(const struct kg_config *cfg, const uint8_t fp[KG_FP_LEN],
					bool del, uint32_t reason, const char *text, char *msg,
					size_t msglen)
{
	abort();
}

KG_UNREACHABLE int kg_fleet_list(const struct kg_config *cfg, struct json_object **out, char *msg,
				 size_t msglen)
{
	abort();
}

KG_UNREACHABLE int kg_fleet_watch(const struct kg_config *cfg, FILE *out, const volatile int *stop,
				  char *msg, size_t msglen)
{
	abort();
}

KG_UNREACHABLE void kg_fleet_trust_only_ca(const struct kg_fleet_conf *fc)
{
	abort();
}

KG_UNREACHABLE struct json_object *kg_fleet_status_json(struct kg_fleet *f)
{
	abort();
}

KG_UNREACHABLE char *kg_fleet_metrics_text(struct kg_fleet *f)
{
	abort();
}

KG_UNREACHABLE int kg_fleet_publish_via(struct kg_fleet *f, const char *json, size_t len,
					uint64_t *rev, char *msg, size_t msglen)
{
	abort();
}
