/*
 * The ktlsgw command: a small front that links libc only. It does one job
 * itself, `revoke add` and `revoke del` on a node whose gateway has pinned
 * its map and iterator, because that is the command an operator is waiting
 * on while a compromised client is still connected: starting the full
 * binary (OpenSSL, libbpf, libnats, json-c and what they pull in) costs
 * more than the revocation. Everything else, and these two whenever the
 * front is not sure (no pins, a [fleet] section, --cert, -j, an option or
 * a configuration it does not know), is handed to the full binary with the
 * same arguments (execv: the same process, so pids, ready files and
 * service managers see no difference). That binary is found next to this
 * one: BINDIR/libexec/ktlsgw (the build tree) or
 * BINDIR/../libexec/ktlsgw/ktlsgw (as installed).
 *
 * The revocation itself is the gateway's code (revoke.c, revstate.c,
 * ebpf_pin.c): the state file fsynced first, then the map, then the cut.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "cli.h"
#include "ebpf.h"
#include "front.h"
#include "log.h"
#include "revoke.h"
#include "verify.h"

/* Not done here: the full binary does it (and says what is wrong, if anything). */
#define KG_FRONT_DECLINE (-1)

/* The exit code, or KG_FRONT_DECLINE before anything has changed. */
static int kg_front_revoke(int argc, char **argv)
{
	struct kg_front f = { 0 };
	struct kg_revoker *r = NULL;
	struct kg_ebpf *b = NULL;
	uint8_t fp[KG_FP_LEN];
	char hex[KG_FP_HEX_LEN], err[1024];
	uint32_t code;
	int rc, cut = 0;

	/* POSIXLY_CORRECT: getopt_long stops at the first operand there */
	if (getenv("POSIXLY_CORRECT") || !kg_front_args(argc, argv, &f) || kg_fp_parse(f.fp_text, fp) ||
	    !kg_front_paths(&f))
		return KG_FRONT_DECLINE;
	kg_log_set_level(KG_LOG_WARN);
	/* both pins, the iterator checked against the map: nothing to load */
	if (kg_ebpf_open_pins(f.pins, true, &b))
		return KG_FRONT_DECLINE;
	if (kg_revoker_open_state(f.state, &r, err, sizeof(err))) {
		kg_ebpf_close(b);
		return KG_FRONT_DECLINE;
	}
	r->bpf = b;
	kg_fp_format(fp, false, hex, sizeof(hex));
	if (f.add) {
		code = kg_reason_of_text(f.reason);
		rc = kg_revoker_add(r, fp, code, f.reason, &cut, err, sizeof(err));
		if (!rc)
			kg_revoke_print_added(stdout, hex, code, cut, kg_ebpf_can_destroy(r->bpf), "");
		else
			fprintf(stderr, "ktlsgw: revoke %s: %s\n", hex, err);
	} else {
		rc = kg_revoker_del(r, fp, err, sizeof(err));
		if (!rc)
			kg_revoke_print_removed(stdout, hex, "");
		else
			fprintf(stderr, "ktlsgw: %s: %s\n", hex, err);
	}
	kg_revoker_close(r);
	if (fflush(stdout) && !rc) {
		fprintf(stderr, "ktlsgw: writing the output: %s\n", strerror(errno));
		return KG_EXIT_RUNTIME;
	}
	return rc ? KG_EXIT_RUNTIME : KG_EXIT_OK;
}

/* Ours to run: a regular file, and it and its directory owned by root or
 * by us and writable by no one else (group-writable only for root's group
 * or ours, as a umask of 002 leaves it): a build tree under /tmp must not
 * run a binary another user put at /tmp/libexec/ktlsgw/ktlsgw. */
static int kg_front_trusted(const char *path)
{
	char dir[PATH_MAX + 32], *slash;
	struct stat st;
	const char *p = path;
	int i;

	snprintf(dir, sizeof(dir), "%s", path);
	for (i = 0; i < 2; i++) {
		if (stat(p, &st))
			return -errno;
		if ((i == 0 && !S_ISREG(st.st_mode)) || (st.st_uid && st.st_uid != geteuid()) ||
		    (st.st_mode & S_IWOTH) ||
		    ((st.st_mode & S_IWGRP) && st.st_gid && st.st_gid != getegid()))
			return -EPERM;
		slash = strrchr(dir, '/');
		if (!slash)
			return 0;
		*slash = '\0';
		p = dir[0] ? dir : "/";
	}
	return 0;
}

static int kg_front_exec(char **argv)
{
	static const char *const where[] = { "libexec/ktlsgw", "../libexec/ktlsgw/ktlsgw" };
	char self[PATH_MAX], core[PATH_MAX + 32], *slash;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self));
	size_t i;
	int rc;

	if (n <= 0 || (size_t)n >= sizeof(self)) {
		fprintf(stderr, "ktlsgw: cannot find where this binary is (/proc/self/exe: %s); "
			"is /proc mounted?\n", n < 0 ? strerror(errno) : "path too long");
		return KG_EXIT_RUNTIME;
	}
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	/* the first candidate that exists is the one: never a fall-through to
	 * the next after it failed */
	for (i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		snprintf(core, sizeof(core), "%s/%s", self, where[i]);
		rc = kg_front_trusted(core);
		if (rc == -ENOENT)
			continue;
		if (rc == -EPERM) {
			fprintf(stderr, "ktlsgw: not running %s: it or its directory is owned by another "
				"user or writable by others; reinstall it (make install)\n", core);
			return KG_EXIT_RUNTIME;
		}
		if (!rc)
			execv(core, argv);
		fprintf(stderr, "ktlsgw: cannot run the gateway binary %s: %s\n", core,
			strerror(rc ? -rc : errno));
		return KG_EXIT_RUNTIME;
	}
	fprintf(stderr, "ktlsgw: cannot run the gateway binary %s/%s or %s/%s: %s; install both "
		"(make install puts them there)\n", self, where[0], self, where[1], strerror(ENOENT));
	return KG_EXIT_RUNTIME;
}

int main(int argc, char **argv)
{
	int rc = kg_front_revoke(argc, argv);

	return rc == KG_FRONT_DECLINE ? kg_front_exec(argv) : rc;
}
