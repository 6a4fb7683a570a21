/* Types shared by the BPF programs and userspace. Named structs so that
 * `bpftool map dump` shows field names (BTF). */
#ifndef KG_BPF_REVOKE_H
#define KG_BPF_REVOKE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define KG_PIN_ROOT_DEFAULT "/sys/fs/bpf/ktlsgw"
#define KG_REVOKED_MAX 65536

/* Key of the pinned `revoked` map: SHA-256 of the DER client certificate,
 * the bytes `openssl x509 -noout -fingerprint -sha256` prints. */
struct kg_fp_key {
	__u8 sha256[32];
};

/* Value of `revoked`. All-zero is valid (a raw `bpftool map update` may
 * write zeros): the gateway fills in the time when it adopts the entry. */
struct kg_revoke_val {
	__u64 revoked_at;	/* unix seconds, 0 = unknown */
	__u32 reason;		/* RFC 5280 CRLReason code, 0 = unspecified */
	__u32 flags;		/* KG_REV_F_* */
};

#define KG_REV_F_CUT	1	/* live connections were cut */

/* Socket-local storage on both legs of every proxied session. */
struct kg_sk_tag {
	__u8 sha256[32];
	__u64 conn_id;
};

#endif
