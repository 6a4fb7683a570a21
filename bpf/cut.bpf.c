// SPDX-License-Identifier: GPL-2.0
/* The cut iterator: like kg_scan, but aborts each revoked socket in the
 * kernel with bpf_sock_destroy() (kernel 6.5+), which sends an RST to the
 * peer and wakes the gateway with ECONNABORTED. Shares the pinned maps. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "kg_maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

extern int bpf_sock_destroy(struct sock_common *sk) __ksym;

SEC("iter/tcp")
int kg_cut(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct kg_sk_tag *tag;

	if (!skc)
		return 0;
	tag = kg_revoked_tag(skc);
	if (!tag)
		return 0;
	bpf_sock_destroy(skc);
	bpf_seq_write(ctx->meta->seq, tag, sizeof(*tag));
	return 0;
}
