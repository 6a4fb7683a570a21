/* The pinned maps and the per-socket check shared by the iterators
 * (revoke.bpf.c reports, cut.bpf.c also aborts). Pinned by name, so every
 * object that includes this shares one `revoked` and one `sk_tags`. */
#ifndef KG_MAPS_BPF_H
#define KG_MAPS_BPF_H

#include "kg_revoke.h"

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

/* The tag of a TCP socket whose certificate is revoked, or NULL. Reading
 * skc_family also puts struct sock_common's full BTF in the object, which
 * libbpf needs to match the bpf_sock_destroy() prototype. */
static __always_inline struct kg_sk_tag *kg_revoked_tag(struct sock_common *skc)
{
	struct kg_sk_tag *tag;
	struct sock *sk;

	if (!skc || (skc->skc_family != 2 /* AF_INET */ && skc->skc_family != 10 /* AF_INET6 */))
		return 0;
	sk = bpf_skc_to_tcp_sock(skc) ? (struct sock *)skc : 0;
	if (!sk)
		return 0;
	tag = bpf_sk_storage_get(&sk_tags, sk, 0, 0);
	if (!tag || !bpf_map_lookup_elem(&revoked, tag->sha256))
		return 0;
	return tag;
}

#endif
