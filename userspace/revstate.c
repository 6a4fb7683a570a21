/*
 * The revocation state file: an append journal (one fdatasync per change),
 * replay, a damaged tail left out, compaction. Pure file code, no BPF.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "revstate.h"

static const char *const kg_reasons[] = {
	"unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
	"cessationOfOperation", "certificateHold", "unused", "removeFromCRL",
	"privilegeWithdrawn", "aACompromise",
};

int kg_reason_code(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(kg_reasons) / sizeof(kg_reasons[0]); i++)
		if (!strcasecmp(name, kg_reasons[i]) && i != 7)
			return (int)i;
	return -1;
}

uint32_t kg_reason_of_text(const char *text)
{
	char word[64];
	int code;

	if (!text)
		return 0;
	/* "keyCompromise: laptop stolen": the code is the first word */
	snprintf(word, sizeof(word), "%s", text);
	word[strcspn(word, " :;,")] = '\0';
	code = kg_reason_code(word);
	return code < 0 ? 0 : (uint32_t)code;
}

const char *kg_reason_name(uint32_t code)
{
	if (code < sizeof(kg_reasons) / sizeof(kg_reasons[0]) && code != 7)
		return kg_reasons[code];
	return "unspecified";
}

struct kg_rev_entry *kg_revstate_find(struct kg_revstate *st, const uint8_t fp[KG_FP_LEN])
{
	size_t i;

	for (i = 0; i < st->n; i++)
		if (!memcmp(st->e[i].fp, fp, KG_FP_LEN))
			return &st->e[i];
	return NULL;
}

int kg_revstate_put(struct kg_revstate *st, const struct kg_rev_entry *e)
{
	struct kg_rev_entry *old = kg_revstate_find(st, e->fp);

	if (old) {
		*old = *e;
		return 0;
	}
	if (st->n == st->cap) {
		size_t ncap = st->cap ? st->cap * 2 : 16;
		struct kg_rev_entry *ne = realloc(st->e, ncap * sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		st->e = ne;
		st->cap = ncap;
	}
	st->e[st->n++] = *e;
	return 0;
}

bool kg_revstate_del(struct kg_revstate *st, const uint8_t fp[KG_FP_LEN])
{
	struct kg_rev_entry *e = kg_revstate_find(st, fp);

	if (!e)
		return false;
	*e = st->e[--st->n];
	return true;
}

void kg_revstate_release(struct kg_revstate *st)
{
	free(st->e);
	st->e = NULL;
	st->n = st->cap = 0;
}

/* Lines: "HEX64 UNIX_TIME REASON_CODE FLAGS [text...]" (an entry; a later
 * one for the same fingerprint replaces it) or "-HEX64" (a removal). */
int kg_revstate_load(const char *path, struct kg_revstate *st, char *err, size_t errlen)
{
	char line[512], hex[80];
	unsigned lineno = 0, bad = 0;
	FILE *f;
	int rc = 0;

	st->n = 0;
	st->records = 0;
	st->torn = false;
	st->torn_line = 0;
	f = fopen(path, "r");
	if (!f) {
		if (errno == ENOENT)
			return 0;
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	while (fgets(line, sizeof(line), f)) {
		struct kg_rev_entry e = { 0 };
		unsigned long long t;
		unsigned reason, flags;
		int off = 0;
		size_t l = strlen(line);

		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		/* A damaged line is a crash's doing only at the end of the file
		 * (an append cut short, or the zeros some file systems leave
		 * after a crash): it was never acknowledged. Before a good line
		 * it is damage that someone must look at. */
		if (bad) {
			snprintf(err, errlen, "%s:%u: damaged revocation entry; fix or remove the line "
				 "(format: SHA256HEX UNIX_TIME REASON_CODE FLAGS [TEXT], or -SHA256HEX)",
				 path, bad);
			rc = -EINVAL;
			break;
		}
		if (line[0] == '-') {
			if (sscanf(line + 1, "%79s", hex) != 1 || kg_fp_parse(hex, e.fp)) {
				bad = lineno;
				continue;
			}
			kg_revstate_del(st, e.fp);
			st->records++;
			continue;
		}
		if (sscanf(line, "%79s %llu %u %u %n", hex, &t, &reason, &flags, &off) < 4 ||
		    kg_fp_parse(hex, e.fp)) {
			bad = lineno;
			continue;
		}
		e.revoked_at = t;
		e.reason = reason;
		e.flags = flags;
		if (off > 0) {
			snprintf(e.text, sizeof(e.text), "%s", line + off);
			l = strlen(e.text);
			while (l && (e.text[l - 1] == '\n' || e.text[l - 1] == '\r'))
				e.text[--l] = '\0';
		}
		st->records++;
		rc = kg_revstate_put(st, &e);
		if (rc)
			break;
	}
	if (ferror(f) && !rc) {
		rc = -EIO;
		snprintf(err, errlen, "%s: read error", path);
	}
	if (!rc && bad) {
		st->torn = true;
		st->torn_line = bad;
	}
	fclose(f);
	return rc;
}

bool kg_revstate_bloated(const struct kg_revstate *st)
{
	return st->torn || st->records > 2 * st->n + 256;
}

/* One line for @e (no newlines in the text) into @buf; its length. */
static size_t kg_revstate_line(const struct kg_rev_entry *e, bool removed, char *buf, size_t len)
{
	char hex[KG_FP_HEX_LEN], text[KG_REASON_TEXT_MAX];
	size_t j;
	int n;

	kg_fp_format(e->fp, false, hex, sizeof(hex));
	if (removed)
		n = snprintf(buf, len, "-%s\n", hex);
	else {
		for (j = 0; e->text[j] && j < sizeof(text) - 1; j++)
			text[j] = (e->text[j] == '\n' || e->text[j] == '\r') ? ' ' : e->text[j];
		text[j] = '\0';
		n = snprintf(buf, len, "%s %llu %u %u %s\n", hex, (unsigned long long)e->revoked_at,
			     e->reason, e->flags, text);
	}
	return n < 0 ? 0 : (size_t)n >= len ? len - 1 : (size_t)n;
}

static int kg_fsync_dir(const char *path)
{
	char *dup = strdup(path);
	int fd, rc = 0;

	if (!dup)
		return -ENOMEM;
	fd = open(dirname(dup), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd))
		rc = -errno;
	if (fd >= 0)
		close(fd);
	free(dup);
	return rc;
}

int kg_revstate_save(const char *path, const struct kg_revstate *st)
{
	char tmp[4096], line[KG_FP_HEX_LEN + KG_REASON_TEXT_MAX + 64];
	size_t i;
	FILE *f;
	int fd, rc = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	{
		/* Root (the CLI) writing into a gateway that runs as `user`: the
		 * file keeps the directory's owner so the gateway can still read
		 * and rewrite it. */
		struct stat ds;
		char *dup = strdup(path);

		if (dup && geteuid() == 0 && !stat(dirname(dup), &ds) && ds.st_uid != 0)
			(void)fchown(fd, ds.st_uid, ds.st_gid);
		free(dup);
	}
	f = fdopen(fd, "w");
	if (!f) {
		rc = -errno;
		close(fd);
		goto fail;
	}
	fprintf(f, "# ktlsgw revocations: SHA256 UNIX_TIME REASON_CODE FLAGS TEXT, or -SHA256 (removed)\n"
		"# Managed by `ktlsgw revoke`; reloaded into the BPF map at start.\n");
	for (i = 0; i < st->n; i++) {
		kg_revstate_line(&st->e[i], false, line, sizeof(line));
		fputs(line, f);
	}
	if (fflush(f) || ferror(f) || fsync(fileno(f))) {
		rc = errno ? -errno : -EIO;
		fclose(f);
		goto fail;
	}
	if (fclose(f)) {
		rc = -errno;
		goto fail;
	}
	if (rename(tmp, path)) {
		rc = -errno;
		goto fail;
	}
	return kg_fsync_dir(path);
fail:
	unlink(tmp);
	return rc;
}

int kg_revstate_append(const char *path, const struct kg_revstate *st,
		       const struct kg_rev_entry *e, bool removed)
{
	char buf[KG_FP_HEX_LEN + KG_REASON_TEXT_MAX + 64];
	struct stat sb;
	size_t len;
	ssize_t w;
	char last;
	int fd, rc = 0;

	fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
	/* Not there yet, or not ours to append to (a file left by another
	 * user in our directory): write a new one in its place. */
	if (fd < 0)
		return errno == ENOENT || errno == EACCES || errno == EPERM ?
		       kg_revstate_save(path, st) : -errno;
	if (fstat(fd, &sb)) {
		rc = -errno;
		close(fd);
		return rc;
	}
	/* A torn last line (a crash mid-append) must not run into this one:
	 * rewrite the whole file from @st, which left it out on load. */
	if (sb.st_size > 0 && (pread(fd, &last, 1, sb.st_size - 1) != 1 || last != '\n')) {
		close(fd);
		return kg_revstate_save(path, st);
	}
	len = kg_revstate_line(e, removed, buf, sizeof(buf));
	/* One write: O_APPEND puts it at the end whole, or fails. */
	w = write(fd, buf, len);
	if (w < 0)
		rc = -errno;
	else if ((size_t)w != len)
		rc = -ENOSPC;	/* a short write (disk full, file-size limit) */
	if (!rc && fdatasync(fd))
		rc = -errno;
	/* A line written but not known to be on disk, or written in part: take
	 * it back off, so that a failure leaves the file as it was. */
	if (rc && w > 0 && (ftruncate(fd, sb.st_size) || fdatasync(fd)))
		rc = -errno;
	close(fd);
	return rc;
}
