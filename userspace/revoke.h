/* Revocation as an operation: the durable state file, the pinned BPF map,
 * and the cut of live connections, kept consistent under one lock. */
#ifndef KG_REVOKER_H
#define KG_REVOKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ebpf.h"
#include "revstate.h"

struct kg_revoker {
	struct kg_ebpf *bpf;		/* owned */
	char state_dir[256];
	char state_path[300];
	char lock_path[300];
	int lock_fd;
	bool tidy_failed;		/* a rewrite for tidiness failed (said once) */
};

/*
 * Revocation at handshake time, as the listener's verify callback (tls.c)
 * sees it: tag the client socket, then look the fingerprint up in the BPF
 * map; or, in best-effort mode without BPF, in the state file's list.
 */
struct kg_rev_hook {
	struct kg_revoker *rev;			/* NULL: no BPF map */
	const struct kg_revstate *fallback;	/* best-effort without BPF */
	/* revocation = best-effort: a socket that cannot be tagged or a lookup
	 * that fails is let through with a warning. Otherwise (required, the
	 * zero value) such a client is refused: no certificate is let in
	 * whose revocation could not be checked or enforced. */
	bool best_effort;
	/* Seams for the unit tests; NULL: kg_ebpf_tag / kg_ebpf_revoked on
	 * rev->bpf. Same returns: 0 / -errno, and 1 revoked / 0 not / -errno. */
	int (*tag)(const struct kg_rev_hook *h, int fd, const uint8_t fp[KG_FP_LEN],
		   uint64_t conn_id);
	int (*lookup)(const struct kg_rev_hook *h, const uint8_t fp[KG_FP_LEN]);
};

/* Open the BPF side under @pin_root and the state in @state_dir (created).
 * (ebpf.c: it may load the programs.) */
int kg_revoker_open(const char *pin_root, const char *state_dir, bool cli,
		    struct kg_revoker **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* The state in @state_dir only (created); the caller sets @out->bpf. */
int kg_revoker_open_state(const char *state_dir, struct kg_revoker **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
void kg_revoker_close(struct kg_revoker *r);

/*
 * Start-up reconciliation: every entry of the state file goes (back) into the
 * map (pins lost to a reboot), every map entry missing from the file (raw
 * bpftool edits) is adopted into it. Returns the number of entries or -errno.
 */
int kg_revoker_sync(struct kg_revoker *r, bool adopt_only, char *err, size_t errlen);

/*
 * Revoke @fp: written durably to the state file first (a failure there
 * returns the error and changes nothing), then the map, then the cut.
 * *@cut gets the number of live sockets found (aborted where the kernel can).
 */
int kg_revoker_add(struct kg_revoker *r, const uint8_t fp[KG_FP_LEN], uint32_t reason,
		   const char *text, int *cut, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* -ENOENT if @fp was not revoked. */
int kg_revoker_del(struct kg_revoker *r, const uint8_t fp[KG_FP_LEN], char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* The current list (state file after sync), caller releases @st. */
int kg_revoker_list(struct kg_revoker *r, struct kg_revstate *st, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* What `revoke add` and `revoke del` say (text), @fleet the fleet's line or "". */
void kg_revoke_print_added(FILE *f, const char *hex, uint32_t reason, int cut, bool kernel,
			   const char *fleet);
void kg_revoke_print_removed(FILE *f, const char *hex, const char *fleet);

/* Mark @fp as having had live connections cut (map and state). */
void kg_revoker_mark_cut(struct kg_revoker *r, const uint8_t fp[KG_FP_LEN]);

#endif
