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
#include "config.h"
#include "ebpf.h"
#include "ini.h"
#include "log.h"
#include "revoke.h"
#include "verify.h"

/* Not done here: the full binary does it (and says what is wrong, if anything). */
#define KG_FRONT_DECLINE (-1)

struct kg_front {
	bool add;
	const char *config, *state_dir, *pin_root, *reason, *fp_text;
	char state[256], pins[256];
	bool conf_ok;		/* the configuration read as the front expects */
};

/* "--name VALUE" or "--name=VALUE" at argv[*i]; false if not this option
 * or a value is missing. */
static bool kg_front_opt(int argc, char **argv, int *i, const char *name, char shortname,
			 const char **out)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (shortname && a[0] == '-' && a[1] == shortname && !a[2]) {
		if (*i + 1 >= argc)
			return false;
		*out = argv[++*i];
		return true;
	}
	if (strncmp(a, "--", 2) || strncmp(a + 2, name, n))
		return false;
	if (a[2 + n] == '=') {
		*out = a + 3 + n;
		return true;
	}
	if (a[2 + n] || *i + 1 >= argc)
		return false;
	*out = argv[++*i];
	return true;
}

/* The command line, as far as the front takes it: exactly
 * `revoke add|del FINGERPRINT` with -c/--config, --state-dir, --pin-root
 * and (add) --reason, each at most once, anywhere. */
static bool kg_front_args(int argc, char **argv, struct kg_front *f)
{
	const char *ops[3];
	int i, nops = 0;
	bool rest = false;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL, **dst;

		if (rest || a[0] != '-' || !a[1]) {
			if (nops == 3)
				return false;
			ops[nops++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			rest = true;
			continue;
		}
		if (kg_front_opt(argc, argv, &i, "config", 'c', &v))
			dst = &f->config;
		else if (kg_front_opt(argc, argv, &i, "state-dir", 0, &v))
			dst = &f->state_dir;
		else if (kg_front_opt(argc, argv, &i, "pin-root", 0, &v))
			dst = &f->pin_root;
		else if (kg_front_opt(argc, argv, &i, "reason", 0, &v))
			dst = &f->reason;
		else
			return false;
		if (*dst)
			return false;
		*dst = v;
	}
	if (nops != 3 || strcmp(ops[0], "revoke"))
		return false;
	if (!strcmp(ops[1], "add"))
		f->add = true;
	else if (strcmp(ops[1], "del") || f->reason)
		return false;
	f->fp_text = ops[2];
	return true;
}

struct kg_front_ini {
	struct kg_front *f;
	bool in_section, in_global, set_state, set_pins, ok;
};

/* [global] state_dir and bpf_pin_root. A [fleet] section (whose writes need
 * libnats), a section config.c does not know (a misspelt [Fleet] among
 * them), a key outside any section or a syntax error hands the command
 * over: the full binary then says what is wrong. */
static bool kg_front_ini_item(void *arg, enum kg_ini_item what, char *name, char *value)
{
	struct kg_front_ini *p = arg;
	char *dst;
	bool *seen;

	if (what == KG_INI_ERROR)
		return p->ok = false;
	if (what == KG_INI_SECTION) {
		p->in_section = true;
		p->in_global = !strcmp(name, "global");
		if (p->in_global || !strncmp(name, "sni ", 4) || !strcmp(name, "listener") ||
		    !strncmp(name, "listener ", 9))
			return true;
		return p->ok = false;
	}
	if (!p->in_section)
		return p->ok = false;
	if (!p->in_global || (strcmp(name, "state_dir") && strcmp(name, "bpf_pin_root")))
		return true;
	seen = name[0] == 's' ? &p->set_state : &p->set_pins;
	dst = name[0] == 's' ? p->f->state : p->f->pins;
	/* what config.c accepts: an absolute path with room for its files */
	if (*seen || value[0] != '/' || strlen(value) >= sizeof(p->f->state) - 16)
		return p->ok = false;
	*seen = true;
	snprintf(dst, sizeof(p->f->state), "%s", value);
	return true;
}

static bool kg_front_paths(struct kg_front *f)
{
	struct kg_front_ini p = { .f = f, .ok = true };
	unsigned line = 0;
	FILE *in;

	snprintf(f->state, sizeof(f->state), "%s", KG_STATE_DIR_DEFAULT);
	snprintf(f->pins, sizeof(f->pins), "%s", KG_PIN_ROOT_DEFAULT);
	if (f->config) {
		in = fopen(f->config, "re");
		if (!in)
			return false;
		if (kg_ini_read(in, &line, kg_front_ini_item, &p))
			p.ok = false;
		fclose(in);
		if (!p.ok)
			return false;
	}
	if (f->state_dir)
		snprintf(f->state, sizeof(f->state), "%s", f->state_dir);
	if (f->pin_root)
		snprintf(f->pins, sizeof(f->pins), "%s", f->pin_root);
	return true;
}

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
