/* Between ebpf_pin.c (the pins, by raw bpf(2) calls) and ebpf.c (loading
 * the programs with libbpf). */
#ifndef KG_EBPF_INT_H
#define KG_EBPF_INT_H

#include <stdbool.h>

#include "ebpf.h"

struct bpf_link;
struct kg_revoke_bpf;
struct kg_cut_bpf;

struct kg_ebpf {
	struct kg_revoke_bpf *scan;
	struct kg_cut_bpf *cut;
	struct bpf_link *iter;		/* NULL when the pinned link is used */
	/* -1 until opened: a short-lived command on the pins opens the
	 * iterator only when it cuts, and never the tags. */
	int revoked_fd, tags_fd, iter_fd;
	bool destroy;
	bool on_pins;			/* the fds come from bpf_obj_get: ours to close */
	char pin_root[256];
	/* ebpf.c's, NULL in a binary without libbpf: load the programs when
	 * no pinned iterator checks the map (0 or -errno, logged), and free
	 * what was loaded */
	int (*load_iter)(struct kg_ebpf *b);
	void (*unload)(struct kg_ebpf *b);
};

/* Pinned by the gateway so that a command runs the cut without loading programs. */
#define KG_PIN_ITER_CUT "iter_cut"
#define KG_PIN_ITER_SCAN "iter_scan"

/* The pinned iterator that checks b->revoked_fd: 0, or -ENOENT (none, or
 * only a pin left from another map). */
int kg_ebpf_iter_pinned(struct kg_ebpf *b);

#endif
