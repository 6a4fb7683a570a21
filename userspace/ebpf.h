/* The BPF side of revocation: the pinned `revoked` map, socket tags
 * (SK_STORAGE) and the iterator that finds (and, on kernels with
 * bpf_sock_destroy, aborts) sockets whose certificate is revoked. */
#ifndef KG_EBPF_H
#define KG_EBPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kg_revoke.h"
#include "verify.h"

struct kg_ebpf;

struct kg_ebpf_hit {
	uint8_t fp[KG_FP_LEN];
	uint64_t conn_id;
};

/*
 * Load the programs and open (or create and pin) the maps under @pin_root,
 * mounting bpffs on /sys/fs/bpf if needed. -EPERM/-ENOSYS/… with @err
 * naming the missing capability or kernel option.
 * With @prefer_pinned (short-lived commands), a pinned `revoked` map is
 * opened as it is and nothing is loaded: kg_ebpf_scan then opens the pinned
 * iterator, loading the programs only if there is none for that map. When
 * nothing is pinned yet, the load also pins the iterator for the next call.
 */
int kg_ebpf_open(const char *pin_root, bool prefer_pinned, struct kg_ebpf **out, char *err,
		 size_t errlen) __attribute__((warn_unused_result));
/*
 * The pins only, never a load (ebpf_pin.c: no libbpf): the `revoked` map
 * under @pin_root and, with @with_iter, the pinned iterator that checks it.
 * -ENOENT (or another -errno from bpf(2)) when they are not there.
 */
int kg_ebpf_open_pins(const char *pin_root, bool with_iter, struct kg_ebpf **out)
	__attribute__((warn_unused_result));
/* Pin the iterator link under the pin root (the gateway does, for the CLI). */
int kg_ebpf_pin_iter(struct kg_ebpf *b) __attribute__((warn_unused_result));
void kg_ebpf_close(struct kg_ebpf *b);
/* True when the kernel aborts revoked sockets itself (bpf_sock_destroy);
 * on the pins, known once kg_ebpf_scan has run. */
bool kg_ebpf_can_destroy(const struct kg_ebpf *b);

/* Tag socket @fd with the certificate and connection it carries. */
int kg_ebpf_tag(struct kg_ebpf *b, int fd, const uint8_t fp[KG_FP_LEN], uint64_t conn_id)
	__attribute__((warn_unused_result));
/* 1 if @fp is in the revoked map (value copied to @val if not NULL), 0 if not, -errno. */
int kg_ebpf_revoked(struct kg_ebpf *b, const uint8_t fp[KG_FP_LEN], struct kg_revoke_val *val);
int kg_ebpf_put(struct kg_ebpf *b, const uint8_t fp[KG_FP_LEN], const struct kg_revoke_val *val)
	__attribute__((warn_unused_result));
int kg_ebpf_del(struct kg_ebpf *b, const uint8_t fp[KG_FP_LEN]);
/* Walk the map: @fn is called for each entry; stops early if it returns non-zero. */
int kg_ebpf_foreach(struct kg_ebpf *b,
		    int (*fn)(const uint8_t fp[KG_FP_LEN], const struct kg_revoke_val *v, void *arg),
		    void *arg);
/* Run the iterator over every TCP socket. Hits (sockets of revoked
 * certificates, aborted already where kg_ebpf_can_destroy) go to @hits.
 * Returns the number of hits (≤ @max), or -errno (the iterator could not be
 * opened or loaded: logged). */
int kg_ebpf_scan(struct kg_ebpf *b, struct kg_ebpf_hit *hits, size_t max);

#endif
