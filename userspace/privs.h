/* Least privilege: after binding, loading BPF and reading keys as root, the
 * gateway becomes [global] `user` and keeps only the capabilities it still
 * uses. */
#ifndef KG_PRIVS_H
#define KG_PRIVS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Capability bits, as in <linux/capability.h>. */
#define KG_CAP_DAC_READ_SEARCH	2
#define KG_CAP_BPF		39

/*
 * Become @user (its primary group, no supplementary groups) keeping only the
 * capabilities in @keep (a mask of 1ULL << KG_CAP_*), in the effective,
 * permitted and bounding sets. @chown_paths (NULL-terminated) are given to
 * the user first, if they exist. Must run before any thread is created:
 * capabilities are per thread. Returns 0 or -errno with "cause; next step"
 * in @err.
 */
int kg_privs_drop(const char *user, uint64_t keep, const char *const *chown_paths,
		  char *err, size_t errlen) __attribute__((warn_unused_result));

/* Does the running kernel know capability @cap? */
bool kg_cap_known(int cap);

#endif
