/*
 * Revocation as an operation: the state file first, then the pinned map,
 * then the cut of live connections, under one lock. The file format is
 * revstate.c's; the BPF objects are ebpf.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "revoke.h"

static int kg_lock(struct kg_revoker *r)
{
	while (flock(r->lock_fd, LOCK_EX))
		if (errno != EINTR)
			return -errno;
	return 0;
}

static void kg_unlock(struct kg_revoker *r)
{
	(void)flock(r->lock_fd, LOCK_UN);
}

/* Take the lock and read the state file; on failure nothing is held. */
static int kg_lock_load(struct kg_revoker *r, struct kg_revstate *st, char *err, size_t errlen)
{
	int rc = kg_lock(r);

	if (rc) {
		snprintf(err, errlen, "cannot lock %s: %s", r->lock_path, strerror(-rc));
		return rc;
	}
	rc = kg_revstate_load(r->state_path, st, err, errlen);
	if (rc) {
		kg_revstate_release(st);
		kg_unlock(r);
	}
	return rc;
}

/* Make one change, already applied to @st, durable: one appended line, or
 * the whole file rewritten when superseded lines have piled up. */
static int kg_record(struct kg_revoker *r, const struct kg_revstate *st,
		     const struct kg_rev_entry *e, bool removed)
{
	if (kg_revstate_bloated(st))
		return kg_revstate_save(r->state_path, st);
	return kg_revstate_append(r->state_path, st, e, removed);
}

static struct kg_revoke_val kg_val_of(const struct kg_rev_entry *e)
{
	struct kg_revoke_val v = { .revoked_at = e->revoked_at, .reason = e->reason, .flags = e->flags };

	return v;
}

void kg_revoker_close(struct kg_revoker *r)
{
	if (!r)
		return;
	kg_ebpf_close(r->bpf);
	if (r->lock_fd >= 0)
		close(r->lock_fd);
	free(r);
}

int kg_revoker_open_state(const char *state_dir, struct kg_revoker **out, char *err, size_t errlen)
{
	struct kg_revoker *r;
	int rc;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->lock_fd = -1;
	snprintf(r->state_dir, sizeof(r->state_dir), "%s", state_dir);
	snprintf(r->state_path, sizeof(r->state_path), "%s/revoked", state_dir);
	snprintf(r->lock_path, sizeof(r->lock_path), "%s/revoked.lock", state_dir);
	if (mkdir(state_dir, 0700) && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "cannot create the state directory %s: %s; set state_dir to a "
			 "writable directory", state_dir, strerror(errno));
		goto fail;
	}
	r->lock_fd = open(r->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (r->lock_fd < 0 && (errno == EROFS || errno == EACCES))
		/* Reading (list, start-up) works on a read-only state directory;
		 * writes will fail there and say so. */
		r->lock_fd = open(r->lock_path, O_RDONLY | O_CLOEXEC);
	if (r->lock_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open %s: %s; the state directory must be writable",
			 r->lock_path, strerror(errno));
		goto fail;
	}
	*out = r;
	return 0;
fail:
	kg_revoker_close(r);
	return rc;
}

struct kg_adopt {
	struct kg_revstate *st;
	int added;
	int rc;
};

static int kg_adopt_one(const uint8_t fp[KG_FP_LEN], const struct kg_revoke_val *v, void *arg)
{
	struct kg_adopt *a = arg;
	struct kg_rev_entry e = { 0 };
	char hex[KG_FP_HEX_LEN];

	if (kg_revstate_find(a->st, fp))
		return 0;
	memcpy(e.fp, fp, KG_FP_LEN);
	e.revoked_at = v->revoked_at ? v->revoked_at : (uint64_t)time(NULL);
	e.reason = v->reason;
	e.flags = v->flags;
	snprintf(e.text, sizeof(e.text), "added with bpftool");
	a->rc = kg_revstate_put(a->st, &e);
	if (a->rc)
		return a->rc;
	a->added++;
	kg_fp_format(fp, false, hex, sizeof(hex));
	kg_info("revocation sha256=%s found in the BPF map (bpftool?): adopted into %s", hex,
		"the state file");
	return 0;
}

int kg_revoker_sync(struct kg_revoker *r, bool adopt_only, char *err, size_t errlen)
{
	struct kg_revstate st = { 0 };
	struct kg_adopt a = { .st = &st };
	size_t i;
	int rc;

	rc = kg_lock_load(r, &st, err, errlen);
	if (rc)
		return rc;
	if (!adopt_only) {
		for (i = 0; i < st.n; i++) {
			struct kg_revoke_val v = kg_val_of(&st.e[i]);

			rc = kg_ebpf_put(r->bpf, st.e[i].fp, &v);
			if (rc) {
				snprintf(err, errlen, "cannot restore a revocation into the BPF map: %s%s",
					 strerror(-rc), rc == -E2BIG ? " (map full)" : "");
				goto out;
			}
		}
	}
	rc = kg_ebpf_foreach(r->bpf, kg_adopt_one, &a);
	if (rc || a.rc) {
		rc = rc ? rc : a.rc;
		snprintf(err, errlen, "cannot read the BPF map: %s", strerror(-rc));
		goto out;
	}
	if (a.added) {
		/* Complete the adopted entries' values (time) in the map too. */
		for (i = 0; i < st.n; i++) {
			struct kg_revoke_val v = kg_val_of(&st.e[i]);

			if (kg_ebpf_put(r->bpf, st.e[i].fp, &v))
				kg_warn("cannot complete an adopted revocation in the BPF map");
		}
		rc = kg_revstate_save(r->state_path, &st);
		if (rc) {
			snprintf(err, errlen, "cannot write %s: %s", r->state_path, strerror(-rc));
			goto out;
		}
	} else if (kg_revstate_bloated(&st)) {
		/* Tidying only (superseded lines, a damaged tail): the list in
		 * force is already durable, so a read-only or full state
		 * directory must not stop the gateway or a `revoke list`. */
		if (st.torn && !r->tidy_failed)
			kg_warn("%s:%u: the last lines are damaged (an append cut short by a crash?) and "
				"were never acknowledged: left out; rewriting the file without them",
				r->state_path, st.torn_line);
		rc = kg_revstate_save(r->state_path, &st);
		if (rc && !r->tidy_failed)
			kg_warn("cannot rewrite %s: %s; it stays as it is", r->state_path, strerror(-rc));
		r->tidy_failed = rc != 0;
	}
	rc = (int)st.n;
out:
	kg_unlock(r);
	kg_revstate_release(&st);
	return rc;
}

int kg_revoker_add(struct kg_revoker *r, const uint8_t fp[KG_FP_LEN], uint32_t reason,
		   const char *text, int *cut, char *err, size_t errlen)
{
	struct kg_revstate st = { 0 };
	struct kg_rev_entry e = { 0 };
	struct kg_revoke_val v;
	struct kg_ebpf_hit hits[256];
	int rc, n;

	*cut = 0;
	memcpy(e.fp, fp, KG_FP_LEN);
	e.revoked_at = (uint64_t)time(NULL);
	e.reason = reason;
	snprintf(e.text, sizeof(e.text), "%s", text ? text : "");
	rc = kg_lock_load(r, &st, err, errlen);
	if (rc)
		return rc;
	if (kg_revstate_find(&st, fp))
		e.flags = kg_revstate_find(&st, fp)->flags;
	rc = kg_revstate_put(&st, &e);
	if (rc) {
		snprintf(err, errlen, "%s; the revocation was NOT recorded", strerror(-rc));
		goto out;
	}
	/* Durable first: only a revocation on disk may be acknowledged. */
	rc = kg_record(r, &st, &e, false);
	if (rc) {
		snprintf(err, errlen, "cannot write %s: %s; the revocation was NOT recorded (free "
			 "space or make the state directory writable, then retry)", r->state_path,
			 strerror(-rc));
		goto out;
	}
	v = kg_val_of(&e);
	rc = kg_ebpf_put(r->bpf, fp, &v);
	if (rc) {
		snprintf(err, errlen, "recorded in %s but the BPF map update failed: %s; the gateway "
			 "will load it at its next start", r->state_path, strerror(-rc));
		goto out;
	}
out:
	kg_unlock(r);
	kg_revstate_release(&st);
	if (rc)
		return rc;
	n = kg_ebpf_scan(r->bpf, hits, sizeof(hits) / sizeof(hits[0]));
	if (n < 0)
		/* Recorded and enforced for new handshakes all the same: the
		 * revocation stands, only the immediate cut is missing. */
		kg_warn("cannot run the cut from here (%s); the gateway's periodic pass cuts the "
			"live connections", strerror(-n));
	if (n > 0) {
		*cut = n;
		kg_revoker_mark_cut(r, fp);
	}
	return 0;
}

void kg_revoker_mark_cut(struct kg_revoker *r, const uint8_t fp[KG_FP_LEN])
{
	struct kg_revstate st = { 0 };
	struct kg_rev_entry *e;
	struct kg_revoke_val v;
	char err[256];

	if (kg_ebpf_revoked(r->bpf, fp, &v) != 1 || (v.flags & KG_REV_F_CUT))
		return;		/* gone, or already marked */
	{
		v.flags |= KG_REV_F_CUT;
		if (kg_ebpf_put(r->bpf, fp, &v))
			kg_warn("cannot mark the revocation as cut in the BPF map");
	}
	if (kg_lock(r))
		return;
	if (!kg_revstate_load(r->state_path, &st, err, sizeof(err))) {
		e = kg_revstate_find(&st, fp);
		if (e && !(e->flags & KG_REV_F_CUT)) {
			e->flags |= KG_REV_F_CUT;
			if (kg_record(r, &st, e, false))
				kg_warn("cannot record the cut in %s", r->state_path);
		}
	}
	kg_unlock(r);
	kg_revstate_release(&st);
}

int kg_revoker_del(struct kg_revoker *r, const uint8_t fp[KG_FP_LEN], char *err, size_t errlen)
{
	struct kg_revstate st = { 0 };
	struct kg_rev_entry gone = { 0 };
	bool had_state, had_map;
	int rc;

	rc = kg_lock_load(r, &st, err, errlen);
	if (rc)
		return rc;
	{
		struct kg_rev_entry *e = kg_revstate_find(&st, fp);

		if (e)
			gone = *e;
	}
	had_state = kg_revstate_del(&st, fp);
	had_map = kg_ebpf_revoked(r->bpf, fp, NULL) == 1;
	if (!had_state && !had_map) {
		rc = -ENOENT;
		snprintf(err, errlen, "not revoked; see `ktlsgw revoke list`");
		goto out;
	}
	if (had_state) {
		rc = kg_record(r, &st, &gone, true);
		if (rc) {
			snprintf(err, errlen, "cannot write %s: %s; nothing changed", r->state_path,
				 strerror(-rc));
			goto out;
		}
	}
	rc = kg_ebpf_del(r->bpf, fp);
	if (rc)
		snprintf(err, errlen, "removed from %s but not from the BPF map: %s", r->state_path,
			 strerror(-rc));
out:
	kg_unlock(r);
	kg_revstate_release(&st);
	return rc;
}

int kg_revoker_list(struct kg_revoker *r, struct kg_revstate *st, char *err, size_t errlen)
{
	int rc = kg_revoker_sync(r, true, err, errlen);

	if (rc < 0)
		return rc;
	rc = kg_lock(r);
	if (rc)
		return rc;
	rc = kg_revstate_load(r->state_path, st, err, errlen);
	kg_unlock(r);
	return rc;
}

void kg_revoke_print_added(FILE *f, const char *hex, uint32_t reason, int cut, bool kernel,
			   const char *fleet)
{
	fprintf(f, "revoked %s (%s); %d live socket%s %s\n%s%s", hex, kg_reason_name(reason), cut,
		cut == 1 ? "" : "s",
		kernel ? "aborted by the kernel" : "found; the gateway closes them at its next scan",
		fleet, fleet[0] ? "\n" : "");
}

void kg_revoke_print_removed(FILE *f, const char *hex, const char *fleet)
{
	fprintf(f, "%s is no longer revoked (new handshakes are accepted)\n%s%s", hex, fleet,
		fleet[0] ? "\n" : "");
}
