// SPDX-License-Identifier: GPL-2.0
/* Revocation maps and the scan iterator: walks every TCP socket and reports
 * the gateway connections whose certificate is revoked. Works on any kernel
 * with iter/tcp (5.9+); cut.bpf.c adds the in-kernel abort where the kernel
 * has bpf_sock_destroy() (6.5+). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "kg_maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

SEC("iter/tcp")
int kg_scan(struct bpf_iter__tcp *ctx)
{
	struct kg_sk_tag *tag = kg_revoked_tag(ctx->sk_common);

	if (tag)
		bpf_seq_write(ctx->meta->seq, tag, sizeof(*tag));
	return 0;
}
