/*
 * The fleet's pending file: STATE_DIR/fleet-pending, one JSON object per
 * line, the changes made while NATS was unreachable, newest per key.
 * Written like the state file (temp file, fsync, rename, fsync of the
 * directory) under its own flock, so a change the CLI acknowledged survives
 * kill -9 and is published by the next gateway (or CLI) that reaches NATS.
 * Owns the file and its lock; knows nothing of NATS.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "fleet_int.h"
#include "json.h"
#include "log.h"

void kg_pendset_release(struct kg_pendset *s)
{
	free(s->e);
	s->e = NULL;
	s->n = 0;
}

int kg_pend_lock(const char *state_dir)
{
	char path[400];
	int fd;

	snprintf(path, sizeof(path), "%s/fleet-pending.lock", state_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX))
		if (errno != EINTR) {
			int rc = -errno;

			close(fd);
			return rc;
		}
	return fd;
}

void kg_pend_unlock(int fd)
{
	if (fd >= 0)
		close(fd);	/* releases the flock */
}

struct json_object *kg_value_json(const struct kg_pend *p, bool with_op)
{
	char hex[KG_FP_HEX_LEN];

	kg_fp_format(p->fp, false, hex, sizeof(hex));
	if (with_op)
		return kg_json_obj("sssuusus", "op", p->del ? "del" : "add", "sha256", hex, "reason",
				   kg_reason_name(p->reason), "reason_code", (uint64_t)p->reason,
				   "revoked_at", p->revoked_at, "text", p->text, "v", (uint64_t)1,
				   "node", p->node);
	return kg_json_obj("suusus", "sha256", hex, "revoked_at", p->revoked_at, "reason_code",
			   (uint64_t)p->reason, "reason", kg_reason_name(p->reason), "v", (uint64_t)1,
			   "text", p->text);
}

/* Fill @p from a bucket value or a pending line @o (the "op" only in the latter). */
int kg_pend_from_json(struct json_object *o, struct kg_pend *p)
{
	struct json_object *v;

	if (!json_object_is_type(o, json_type_object) ||
	    kg_fp_parse(kg_json_get_str(o, "sha256", ""), p->fp))
		return -EINVAL;
	p->del = !strcmp(kg_json_get_str(o, "op", "add"), "del");
	p->revoked_at = json_object_object_get_ex(o, "revoked_at", &v) ?
			(uint64_t)json_object_get_int64(v) : 0;
	p->reason = json_object_object_get_ex(o, "reason_code", &v) ?
		    (uint32_t)json_object_get_int(v) : 0;
	snprintf(p->text, sizeof(p->text), "%s", kg_json_get_str(o, "text", ""));
	snprintf(p->node, sizeof(p->node), "%s", kg_json_get_str(o, "node", ""));
	return 0;
}

/* Read the pending file (missing: empty). A damaged line is skipped with a
 * warning: the rest is still worth publishing. */
int kg_pend_load(const char *state_dir, struct kg_pendset *s)
{
	char path[400], *line = NULL, err[128];
	size_t cap = 0;
	ssize_t len;
	FILE *f;
	int rc = 0;

	s->e = NULL;
	s->n = 0;
	snprintf(path, sizeof(path), "%s/fleet-pending", state_dir);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while ((len = getline(&line, &cap, f)) > 0) {
		struct json_object *o = kg_json_parse(line, (size_t)len, err, sizeof(err));
		struct kg_pend p = { 0 }, *ne;

		if (!o || kg_pend_from_json(o, &p)) {
			kg_warn("%s: a damaged line skipped (%s)", path, o ? "no sha256" : err);
			json_object_put(o);
			continue;
		}
		json_object_put(o);
		ne = realloc(s->e, (s->n + 1) * sizeof(*ne));
		if (!ne) {
			rc = -ENOMEM;
			break;
		}
		s->e = ne;
		s->e[s->n++] = p;
	}
	free(line);
	fclose(f);
	if (rc)
		kg_pendset_release(s);
	return rc;
}

/* Write @s as the pending file, atomically and durably (empty: removed). */
static int kg_pend_save(const char *state_dir, const struct kg_pendset *s)
{
	char path[400], tmp[420];
	size_t i;
	FILE *f;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/fleet-pending", state_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (!s->n) {
		if (unlink(path) && errno != ENOENT)
			return -errno;
		goto sync_dir;
	}
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	for (i = 0; i < s->n && !rc; i++) {
		struct json_object *o = kg_value_json(&s->e[i], true);
		const char *t = o ? kg_json_text(o) : NULL;

		if (!t || fprintf(f, "%s\n", t) < 0)
			rc = t ? -EIO : -ENOMEM;
		json_object_put(o);
	}
	if (!rc && (fflush(f) || fsync(fileno(f))))
		rc = -errno;
	if (fclose(f) && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path))
		rc = -errno;
	if (rc) {
		(void)unlink(tmp);
		return rc;
	}
sync_dir:
	/* the rename (or unlink) itself must survive a crash */
	fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd))
		rc = -errno;
	close(fd);
	return rc;
}

struct kg_pend *kg_pend_find(struct kg_pendset *s, const uint8_t fp[KG_FP_LEN])
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (!memcmp(s->e[i].fp, fp, KG_FP_LEN))
			return &s->e[i];
	return NULL;
}

/* Field by field: two entries read from JSON are never compared as bytes
 * (padding). */
static bool kg_pend_same(const struct kg_pend *a, const struct kg_pend *b)
{
	return !memcmp(a->fp, b->fp, KG_FP_LEN) && a->del == b->del &&
	       a->revoked_at == b->revoked_at && a->reason == b->reason &&
	       !strcmp(a->text, b->text) && !strcmp(a->node, b->node);
}

enum kg_pend_op { KG_PEND_ADD, KG_PEND_DONE, KG_PEND_DONE_ANY };

/* One change to the pending file under its lock: read, change, save. */
static int kg_pend_update(const char *state_dir, const struct kg_pend *p, enum kg_pend_op op,
			  size_t *count)
{
	struct kg_pendset s = { 0 };
	struct kg_pend *cur, *ne;
	int lfd, rc;

	lfd = kg_pend_lock(state_dir);
	if (lfd < 0)
		return lfd;
	rc = kg_pend_load(state_dir, &s);
	if (rc)
		goto out;
	cur = kg_pend_find(&s, p->fp);
	if (op == KG_PEND_ADD && cur) {
		*cur = *p;
	} else if (op == KG_PEND_ADD) {
		ne = realloc(s.e, (s.n + 1) * sizeof(*ne));
		if (!ne) {
			rc = -ENOMEM;
			goto out;
		}
		s.e = ne;
		s.e[s.n++] = *p;
	} else if (cur && (op == KG_PEND_DONE_ANY || kg_pend_same(cur, p))) {
		*cur = s.e[--s.n];
	} else {
		goto out;	/* nothing to drop */
	}
	rc = kg_pend_save(state_dir, &s);
	if (count)
		*count = s.n;
out:
	kg_pendset_release(&s);
	kg_pend_unlock(lfd);
	return rc;
}

/* Record @p as pending: it replaces an older change of the same key. */
int kg_pend_add(const char *state_dir, const struct kg_pend *p, size_t *count)
{
	return kg_pend_update(state_dir, p, KG_PEND_ADD, count);
}

/* Drop @p from the pending file if it is still the change recorded there
 * (a newer change of the same key, made meanwhile, stays); with @any_of_key,
 * whatever change of its key is there (@p is newer than all of them). */
int kg_pend_done(const char *state_dir, const struct kg_pend *p, bool any_of_key)
{
	return kg_pend_update(state_dir, p, any_of_key ? KG_PEND_DONE_ANY : KG_PEND_DONE, NULL);
}

size_t kg_pend_count(const char *state_dir)
{
	struct kg_pendset s = { 0 };
	size_t n = 0;
	int lfd = kg_pend_lock(state_dir);

	if (lfd < 0)
		return 0;
	if (!kg_pend_load(state_dir, &s))
		n = s.n;
	kg_pendset_release(&s);
	kg_pend_unlock(lfd);
	return n;
}
