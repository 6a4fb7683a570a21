// SPDX-License-Identifier: GPL-2.0
/* Revocation maps and the scan iterator: walks every TCP socket and reports
 * the gateway connections whose certificate is revoked. Works on any kernel
 * with iter/tcp (5.9+); cut.bpf.c adds the in-kernel abort where the kernel
 * has bpf_sock_destroy() (6.5+). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "kg_revoke.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KG_REVOKED_MAX);
	__type(key, struct kg_fp_key);
	__type(value, struct kg_revoke_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} revoked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct kg_sk_tag);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sk_tags SEC(".maps");

SEC("iter/tcp")
int kg_scan(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct seq_file *seq = ctx->meta->seq;
	struct kg_sk_tag *tag;
	struct sock *sk;

	/* Reading skc_family also puts struct sock_common's full BTF in the
	 * object, which libbpf needs to match the kfunc prototype. */
	if (!skc || (skc->skc_family != 2 /* AF_INET */ && skc->skc_family != 10 /* AF_INET6 */))
		return 0;
	sk = bpf_skc_to_tcp_sock(skc) ? (struct sock *)skc : 0;
	if (!sk)
		return 0;
	tag = bpf_sk_storage_get(&sk_tags, sk, 0, 0);
	if (!tag)
		return 0;
	if (!bpf_map_lookup_elem(&revoked, tag->sha256))
		return 0;
	bpf_seq_write(seq, tag, sizeof(*tag));
	return 0;
}
