/* The durable revocation list: a text file, the source from which the
 * pinned BPF map is rebuilt after a reboot. Pure file code: unit-tested.
 *
 * One change is one appended line and one fdatasync (kg_revstate_append):
 * a revocation is acknowledged after a single flush, which is what keeps
 * `revoke add` short. A later line for the same fingerprint replaces an
 * earlier one; "-HEX" removes it. The whole file is rewritten atomically
 * (temp file, fsync, rename, fsync of the directory: kg_revstate_save) when
 * it is created and when superseded lines pile up (kg_revstate_bloated). A
 * torn last line (no newline: the write never completed, so it was never
 * acknowledged) is ignored on load and closed off by the next append. */
#ifndef KG_REVSTATE_H
#define KG_REVSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "verify.h"

#define KG_REASON_TEXT_MAX 128

struct kg_rev_entry {
	uint8_t fp[KG_FP_LEN];
	uint64_t revoked_at;		/* unix seconds */
	uint32_t reason;		/* RFC 5280 CRLReason code */
	uint32_t flags;			/* KG_REV_F_* */
	char text[KG_REASON_TEXT_MAX];	/* operator's words, may be empty */
};

struct kg_revstate {
	struct kg_rev_entry *e;
	size_t n, cap;
	size_t records;		/* entry and removal lines read by the last load */
	bool torn;		/* the last load left out a damaged tail (a crash mid-append) */
	unsigned torn_line;	/* its first line */
};

/* Load @path into @st (empty if the file does not exist). -errno on I/O
 * errors, -EINVAL with @err naming FILE:LINE for a damaged line. */
int kg_revstate_load(const char *path, struct kg_revstate *st, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Write @st to @path atomically and durably. Only when this returns 0 may a
 * revocation be acknowledged. */
int kg_revstate_save(const char *path, const struct kg_revstate *st)
	__attribute__((warn_unused_result));
/* Append @e (@removed: a removal of @e->fp) to @path with one fdatasync;
 * creates the file with kg_revstate_save(@st) when it does not exist yet
 * (@st must then already hold the change). 0 only once it is durable. */
int kg_revstate_append(const char *path, const struct kg_revstate *st,
		       const struct kg_rev_entry *e, bool removed)
	__attribute__((warn_unused_result));
/* True when the file behind @st (as last loaded) holds so many superseded
 * lines that it should be rewritten with kg_revstate_save. */
bool kg_revstate_bloated(const struct kg_revstate *st);
struct kg_rev_entry *kg_revstate_find(struct kg_revstate *st, const uint8_t fp[KG_FP_LEN]);
/* Add or update; -ENOMEM. */
int kg_revstate_put(struct kg_revstate *st, const struct kg_rev_entry *e)
	__attribute__((warn_unused_result));
bool kg_revstate_del(struct kg_revstate *st, const uint8_t fp[KG_FP_LEN]);
void kg_revstate_release(struct kg_revstate *st);

/* RFC 5280 CRLReason names: "keyCompromise" ↔ 1 …; -1 if unknown. */
int kg_reason_code(const char *name);
const char *kg_reason_name(uint32_t code);
/* The code of an operator's --reason: its first word if that is a reason's
 * name ("keyCompromise: laptop stolen"), else 0 (unspecified). */
uint32_t kg_reason_of_text(const char *text);

#endif
