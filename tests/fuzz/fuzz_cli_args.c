/*
 * libFuzzer target: the command line's argument parsers (userspace/cli.c).
 *
 * The commands act for real (revoke add writes the BPF map and the state
 * file, run starts the gateway), so only their parsers are fuzzed: each
 * command parses argv into a struct with a function that has no side
 * effects. Those functions are static, and cli.h is not ours to extend, so
 * this file includes cli.c itself: the parsers are reached as they are,
 * the ktlsgw binary keeps its symbols, and everything the commands would
 * do resolves to the aborting stand-ins of unreachable.c.
 *
 * The input is split at NUL bytes. The first piece picks the parser (by
 * name: run, fingerprint, pki-init, revoke-add, revoke-del, revoke-list,
 * conn-list, conn-kill, stats, dispatch, jfield; otherwise by its first
 * byte); the others, at most KG_MAX_ARGS, are the arguments, each in an
 * allocation of exactly its size. Each parser runs twice on fresh argv
 * arrays and must give the same answer: that catches getopt state left
 * over from the previous run. Then the answer must be consistent with the
 * arguments (below, per parser).
 *
 * With KG_FUZZ_STRICT=1 in the environment, an ID that `conn kill`
 * accepts must also be one the gateway accepts in the request it sends.
 */
#include "../../userspace/cli.c"

#include "kg_fuzz.h"

#define KG_MAX_ARGS 24
#define KG_PROG "ktlsgw"

enum kg_sel {
	KG_SEL_RUN, KG_SEL_FP, KG_SEL_PKI, KG_SEL_REV_ADD, KG_SEL_REV_DEL, KG_SEL_REV_LIST,
	KG_SEL_CONN_LIST, KG_SEL_CONN_KILL, KG_SEL_STATS, KG_SEL_DISPATCH, KG_SEL_JFIELD,
	KG_SEL__COUNT
};

static const char *const kg_sel_names[KG_SEL__COUNT] = {
	"run", "fingerprint", "pki-init", "revoke-add", "revoke-del", "revoke-list",
	"conn-list", "conn-kill", "stats", "dispatch", "jfield",
};

/* v[0] is the command name (getopt reads it as the program name), v[1..argc]
 * the arguments, v[argc + 1] NULL, as a real argv. */
struct kg_args {
	int argc;
	char *v[KG_MAX_ARGS + 2];
};

static bool kg_strict;

/* ---- helpers --------------------------------------------------------------- */

/* Does @p point into one of the argument strings (as optarg may, after '=')? */
static bool kg_in_args(const char *p, const struct kg_args *a)
{
	int i;

	for (i = 1; i <= a->argc; i++)
		if (p >= a->v[i] && p <= a->v[i] + strlen(a->v[i]))
			return true;
	return false;
}

static bool kg_is_arg(const char *p, const struct kg_args *a)
{
	int i;

	for (i = 1; i <= a->argc; i++)
		if (p == a->v[i])
			return true;
	return false;
}

static void kg_check_msg(int rc, const char *err, size_t errlen)
{
	kg_fuzz_check(rc == 0 || rc == KG_EXIT_USAGE, "rc %d", rc);
	kg_fuzz_check(memchr(err, '\0', errlen), "message not terminated");
	kg_fuzz_check(!rc == !err[0], "rc %d with message '%s'", rc, err);
}

/* A fresh copy of the pointer array: getopt permutes the one it is given. */
static void kg_copy_args(struct kg_args *dst, const struct kg_args *src)
{
	*dst = *src;
}

/* ---- the parsers --------------------------------------------------------- */

static void kg_fuzz_run(const struct kg_args *a)
{
	char err1[KG_CLI_MSG_MAX], err2[KG_CLI_MSG_MAX];
	struct kg_run_opts o1, o2;
	struct kg_args b1, b2;
	int rc1, rc2;

	kg_copy_args(&b1, a);
	kg_copy_args(&b2, a);
	rc1 = kg_run_parse(b1.argc, b1.v + 1, &o1, err1, sizeof(err1));
	rc2 = kg_run_parse(b2.argc, b2.v + 1, &o2, err2, sizeof(err2));
	kg_fuzz_check(rc1 == rc2 && !strcmp(err1, err2), "a second parse says %d '%s', the first "
		      "%d '%s'", rc2, err2, rc1, err1);
	kg_fuzz_check(rc1 == KG_EXIT_USAGE || rc1 == 0, "rc %d", rc1);
	kg_fuzz_check(memchr(err1, '\0', sizeof(err1)), "message not terminated");
	if (rc1) {
		/* empty only where getopt itself refused (it prints, opterr is 0 here) */
		kg_fuzz_check(!err1[0] || !strncmp(err1, "run: unexpected argument '", 26),
			      "message '%s'", err1);
		return;
	}
	kg_fuzz_check(o1.path == o2.path && o1.ready == o2.ready && o1.check == o2.check &&
		      o1.help == o2.help, "a second parse gives other options");
	kg_fuzz_check(!err1[0], "success with message '%s'", err1);
	kg_fuzz_check(o1.path && (!strcmp(o1.path, "/etc/ktlsgw/ktlsgw.conf") ||
				  kg_in_args(o1.path, a)), "config path from nowhere");
	kg_fuzz_check(!o1.ready || kg_in_args(o1.ready, a), "ready file from nowhere");
}

/* fingerprint and pki init: one operand, one flag, a help word stops. */
static void kg_check_one_operand(int rc, const char *err, const char *operand, bool flag,
				 bool help, const char *flagname, const struct kg_args *a,
				 const char *const msgs[2])
{
	const char *first = NULL;
	bool any_flag = false, any_help = false;
	int i, operands = 0;

	for (i = 1; i <= a->argc; i++) {
		if (!strcmp(a->v[i], flagname)) {
			any_flag = true;
		} else if (kg_cli_is_help(a->v[i])) {
			any_help = true;
		} else {
			if (!first)
				first = a->v[i];
			operands++;
		}
	}
	if (rc) {
		kg_fuzz_check(!strcmp(err, msgs[0]) || !strcmp(err, msgs[1]), "message '%s'", err);
		kg_fuzz_check(operands != 1, "one operand refused: '%s'", err);
		return;
	}
	if (help) {
		kg_fuzz_check(any_help, "help without a help word");
		return;
	}
	kg_fuzz_check(!any_help, "a help word ignored");
	kg_fuzz_check(operands == 1 && operand == first, "operand not the one given");
	kg_fuzz_check(flag == any_flag, "%s %s", flagname, flag ? "made up" : "lost");
}

static void kg_fuzz_fp(const struct kg_args *a)
{
	static const char *const msgs[2] = {
		"fingerprint: one CERT only",
		"fingerprint: give a certificate file: " KG_PROG " fingerprint CERT",
	};
	char err1[KG_CLI_MSG_MAX], err2[KG_CLI_MSG_MAX];
	struct kg_fp_opts o1, o2;
	int rc1, rc2;

	rc1 = kg_fp_args(KG_PROG, a->argc, (char **)a->v + 1, &o1, err1, sizeof(err1));
	rc2 = kg_fp_args(KG_PROG, a->argc, (char **)a->v + 1, &o2, err2, sizeof(err2));
	kg_fuzz_check(rc1 == rc2 && !strcmp(err1, err2) && !memcmp(&o1, &o2, sizeof(o1)),
		      "not the same twice");
	kg_check_msg(rc1, err1, sizeof(err1));
	kg_check_one_operand(rc1, err1, o1.path, o1.colons, o1.help, "--colons", a, msgs);
}

static void kg_fuzz_pki(const struct kg_args *a)
{
	static const char *const msgs[2] = {
		"pki init: one DIR only",
		"pki init: give a directory: " KG_PROG " pki init DIR",
	};
	char err1[KG_CLI_MSG_MAX], err2[KG_CLI_MSG_MAX];
	struct kg_pki_opts o1, o2;
	int rc1, rc2;

	rc1 = kg_pki_args(KG_PROG, a->argc, (char **)a->v + 1, &o1, err1, sizeof(err1));
	rc2 = kg_pki_args(KG_PROG, a->argc, (char **)a->v + 1, &o2, err2, sizeof(err2));
	kg_fuzz_check(rc1 == rc2 && !strcmp(err1, err2) && !memcmp(&o1, &o2, sizeof(o1)),
		      "not the same twice");
	kg_check_msg(rc1, err1, sizeof(err1));
	kg_check_one_operand(rc1, err1, o1.dir, o1.test, o1.help, "--test", a, msgs);
}

static bool kg_is_rev_option(const char *s)
{
	return !strcmp(s, "-c") || !strcmp(s, "--config") || !strcmp(s, "--state-dir") ||
	       !strcmp(s, "--pin-root") || !strcmp(s, "--cert") || !strcmp(s, "--reason");
}

/* What a successful parse of any revoke command must satisfy. */
static void kg_check_rev(const struct kg_rev_opts *o, const struct kg_args *a)
{
	const char *const vals[] = { o->config, o->state_dir, o->pin_root, o->cert, o->reason };
	size_t i;

	kg_fuzz_check(o->npos >= 0 && o->npos <= 4, "npos %d", o->npos);
	for (i = 0; i < (size_t)o->npos; i++) {
		const char *p = o->pos[i];

		kg_fuzz_check(kg_is_arg(p, a), "operand from nowhere");
		kg_fuzz_check(!(p[0] == '-' && p[1]) && !kg_is_rev_option(p) && !kg_cli_is_help(p),
			      "option '%s' taken as an operand", p);
	}
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
		kg_fuzz_check(!vals[i] || kg_is_arg(vals[i], a), "option value from nowhere");
}

static int kg_rev_call(enum kg_sel sel, const struct kg_args *a, struct kg_rev_opts *o, char *err)
{
	char **argv = (char **)a->v + 1;

	if (sel == KG_SEL_REV_ADD)
		return kg_rev_add_args(KG_PROG, a->argc, argv, o, err, KG_CLI_MSG_MAX);
	if (sel == KG_SEL_REV_DEL)
		return kg_rev_del_args(a->argc, argv, o, err, KG_CLI_MSG_MAX);
	return kg_rev_parse(a->argc, argv, o, err, KG_CLI_MSG_MAX);
}

static void kg_fuzz_rev(const struct kg_args *a, enum kg_sel sel)
{
	char err1[KG_CLI_MSG_MAX], err2[KG_CLI_MSG_MAX];
	struct kg_rev_opts o1, o2;
	uint8_t fp[KG_FP_LEN];
	int rc1, rc2;

	rc1 = kg_rev_call(sel, a, &o1, err1);
	rc2 = kg_rev_call(sel, a, &o2, err2);
	kg_fuzz_check(rc1 == rc2 && !strcmp(err1, err2) && !memcmp(&o1, &o2, sizeof(o1)),
		      "not the same twice");
	kg_check_msg(rc1, err1, sizeof(err1));
	if (rc1)
		return;
	kg_check_rev(&o1, a);
	if (sel == KG_SEL_REV_LIST || o1.help)
		return;
	if (sel == KG_SEL_REV_ADD) {
		kg_fuzz_check(!!o1.cert + o1.npos == 1, "--cert and %d operands", o1.npos);
		kg_fuzz_check(o1.code >= 0 && o1.code <= 10 && o1.code != 7, "reason %d", o1.code);
		kg_fuzz_check(o1.reason || !o1.code, "reason %d without --reason", o1.code);
		if (o1.cert)
			return;
	} else {
		kg_fuzz_check(o1.npos == 1 && !o1.cert, "del with %d operands", o1.npos);
	}
	kg_fuzz_check(!kg_fp_parse(o1.pos[0], fp) && !memcmp(fp, o1.fp, KG_FP_LEN),
		      "fingerprint of '%s' not what kg_fp_parse gives", o1.pos[0]);
}

/* The pure stand-in for reading -c CONFIG: a name starting with "bad" is a
 * broken file; any other gives "NAME.sock". */
static int kg_fuzz_conf_sock(const char *conf, char *sock, size_t socklen, char *err,
			     size_t errlen)
{
	if (!strncmp(conf, "bad", 3)) {
		snprintf(err, errlen, "%s:1: a broken configuration", conf);
		return KG_EXIT_USAGE;
	}
	snprintf(sock, socklen, "%s.sock", conf);
	return 0;
}

static void kg_fuzz_admin_args(const struct kg_args *a, bool kill)
{
	char err1[KG_CLI_MSG_MAX], err2[KG_CLI_MSG_MAX], req[64];
	struct kg_admin_opts o1, o2;
	unsigned long long id = 0;
	int rc1, rc2, i;
	char *end;

	if (kill) {
		rc1 = kg_conn_kill_args(KG_PROG, a->argc, (char **)a->v + 1, kg_fuzz_conf_sock, &o1,
					err1, sizeof(err1));
		rc2 = kg_conn_kill_args(KG_PROG, a->argc, (char **)a->v + 1, kg_fuzz_conf_sock, &o2,
					err2, sizeof(err2));
	} else {
		rc1 = kg_admin_args(a->argc, (char **)a->v + 1, kg_fuzz_conf_sock, &o1, err1,
				    sizeof(err1));
		rc2 = kg_admin_args(a->argc, (char **)a->v + 1, kg_fuzz_conf_sock, &o2, err2,
				    sizeof(err2));
	}
	kg_fuzz_check(rc1 == rc2 && !strcmp(err1, err2) && !memcmp(&o1, &o2, sizeof(o1)),
		      "not the same twice");
	kg_check_msg(rc1, err1, sizeof(err1));
	if (rc1)
		return;
	kg_fuzz_check(memchr(o1.sock, '\0', sizeof(o1.sock)), "socket path not terminated");
	kg_fuzz_check(o1.npos >= 0 && o1.npos <= 2, "npos %d", o1.npos);
	for (i = 0; i < o1.npos; i++)
		kg_fuzz_check(kg_is_arg(o1.pos[i], a) && o1.pos[i][0] != '-',
			      "operand '%s'", o1.pos[i]);
	if (!kill || o1.help)
		return;
	kg_fuzz_check(o1.npos == 1, "conn kill with %d operands", o1.npos);
	id = strtoull(o1.pos[0], &end, 10);
	kg_fuzz_check(id && !*end, "ID '%s'", o1.pos[0]);
	if (!kg_strict)
		return;
	/* the request kg_cmd_conn_kill sends, as the gateway reads it */
	snprintf(req, sizeof(req), "conn kill %s", o1.pos[0]);
	{
		unsigned long long got = 0;

		kg_fuzz_check(kg_admin_parse(req, strlen(req), &got) == KG_ADM_CONN_KILL && got == id,
			      "the CLI takes ID '%s' (%llu), the gateway refuses '%s' or reads "
			      "%llu", o1.pos[0], id, req, got);
	}
}

/* ---- dispatch: command names and unique prefixes --------------------------- */

static int kg_hit = -1, kg_hit_argc;
static char **kg_hit_argv;

static int kg_record(int i, int argc, char **argv)
{
	kg_hit = i;
	kg_hit_argc = argc;
	kg_hit_argv = argv;
	return 100 + i;
}

#define KG_REC(i)									\
	static int kg_rec##i(struct kg_cli *cli, int argc, char **argv)			\
	{										\
		return kg_record(i, argc, argv);					\
	}
KG_REC(0)
KG_REC(1)
KG_REC(2)
KG_REC(3)
KG_REC(4)
KG_REC(5)
KG_REC(6)
KG_REC(7)
KG_REC(8)

static int (*const kg_recs[])(struct kg_cli *, int, char **) = {
	kg_rec0, kg_rec1, kg_rec2, kg_rec3, kg_rec4, kg_rec5, kg_rec6, kg_rec7, kg_rec8,
};

#define KG_NREC ((int)(sizeof(kg_recs) / sizeof(kg_recs[0])))

/* cli.c's own tables, with each command replaced by a recorder: the real
 * names go through the real kg_cli_dispatch, and nothing runs. */
static struct kg_cmd kg_mirror[4][KG_NREC + 1];

static void kg_mirror_table(struct kg_cmd *dst, const struct kg_cmd *src)
{
	int i;

	for (i = 0; src[i].name; i++) {
		kg_fuzz_check(i < KG_NREC, "more commands than recorders");
		dst[i] = src[i];
		dst[i].fn = kg_recs[i];
	}
	dst[i] = src[i];
}

static void kg_fuzz_dispatch(const struct kg_args *a)
{
	struct kg_cli cli = { .json = true, .prog = KG_PROG };
	int t, i, rc, exact, prefix, nprefix, want;
	char **argv = (char **)a->v + 1;
	size_t n;

	if (a->argc < 1)
		return;		/* prints the usage on stderr: nothing to learn */
	n = strlen(argv[0]);
	for (t = 0; t < 4; t++) {
		exact = -1;
		prefix = -1;
		nprefix = 0;
		for (i = 0; kg_mirror[t][i].name; i++) {
			if (!strcmp(kg_mirror[t][i].name, argv[0]))
				exact = i;
			if (!strncmp(kg_mirror[t][i].name, argv[0], n)) {
				prefix = i;
				nprefix++;
			}
		}
		want = exact >= 0 ? exact : nprefix == 1 ? prefix : -1;
		kg_hit = -1;
		rc = kg_cli_dispatch(&cli, kg_mirror[t], "obj", a->argc, argv);
		if (kg_cli_is_help(argv[0])) {
			kg_fuzz_check(rc == KG_EXIT_OK && kg_hit < 0, "help: rc %d hit %d", rc,
				      kg_hit);
			continue;
		}
		kg_fuzz_check(kg_hit == want, "'%s' ran %d, want %d", argv[0], kg_hit, want);
		if (want < 0) {
			kg_fuzz_check(rc == KG_EXIT_USAGE, "rc %d", rc);
			continue;
		}
		kg_fuzz_check(rc == 100 + want && kg_hit_argc == a->argc - 1 &&
			      kg_hit_argv == argv + 1, "arguments not passed on");
	}
}

/* ---- kg_jfield: fields of the gateway's JSON answers -------------------------- */

static void kg_fuzz_jfield(const struct kg_args *a)
{
	const char *obj = a->argc >= 1 ? a->v[1] : "", *key = a->argc >= 2 ? a->v[2] : "id";
	size_t outsz = a->argc >= 3 ? 1 + strlen(a->v[3]) % 200 : 160;
	char *out = malloc(outsz);

	kg_fuzz_check(out, "out of memory");
	kg_jfield(obj, key, out, outsz);
	kg_fuzz_check(memchr(out, '\0', outsz), "not terminated");
	kg_fuzz_check(!out[0] || strstr(obj, out), "'%s' is not in '%s'", out, obj);
	free(out);
}

/* ---- entry points ------------------------------------------------------------ */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *s = getenv("KG_FUZZ_STRICT");

	kg_strict = s && *s && strcmp(s, "0");
	/* getopt must not print: an unknown option is an answer, not news */
	opterr = 0;
	/* kg_cli_dispatch prints usage and errors (as JSON, to stdout) */
	kg_fuzz_check(freopen("/dev/null", "w", stdout), "stdout: %s", strerror(errno));
	kg_mirror_table(kg_mirror[0], kg_objects);
	kg_mirror_table(kg_mirror[1], kg_revoke_cmds);
	kg_mirror_table(kg_mirror[2], kg_conn_cmds);
	kg_mirror_table(kg_mirror[3], kg_pki_cmds);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kg_args a = { 0 };
	const uint8_t *p = data, *end = data + size;
	enum kg_sel sel = KG_SEL__COUNT;
	int i, n = 0;

	/* split at NULs: piece 0 picks the parser, the rest are arguments */
	while (p <= end && n < KG_MAX_ARGS + 1) {
		const uint8_t *z = memchr(p, '\0', (size_t)(end - p));
		size_t len = z ? (size_t)(z - p) : (size_t)(end - p);

		a.v[n] = malloc(len + 1);
		kg_fuzz_check(a.v[n], "out of memory");
		memcpy(a.v[n], p, len);
		a.v[n][len] = '\0';
		n++;
		if (!z)
			break;
		p = z + 1;
	}
	a.argc = n - 1;
	a.v[n] = NULL;
	for (i = 0; i < KG_SEL__COUNT; i++)
		if (!strcmp(a.v[0], kg_sel_names[i]))
			sel = (enum kg_sel)i;
	if (sel == KG_SEL__COUNT)
		sel = (enum kg_sel)(size ? data[0] % KG_SEL__COUNT : 0);

	switch (sel) {
	case KG_SEL_RUN:
		kg_fuzz_run(&a);
		break;
	case KG_SEL_FP:
		kg_fuzz_fp(&a);
		break;
	case KG_SEL_PKI:
		kg_fuzz_pki(&a);
		break;
	case KG_SEL_REV_ADD:
	case KG_SEL_REV_DEL:
	case KG_SEL_REV_LIST:
		kg_fuzz_rev(&a, sel);
		break;
	case KG_SEL_CONN_LIST:
	case KG_SEL_STATS:
		kg_fuzz_admin_args(&a, false);
		break;
	case KG_SEL_CONN_KILL:
		kg_fuzz_admin_args(&a, true);
		break;
	case KG_SEL_DISPATCH:
		kg_fuzz_dispatch(&a);
		break;
	case KG_SEL_JFIELD:
	case KG_SEL__COUNT:
		kg_fuzz_jfield(&a);
		break;
	}
	for (i = 0; i < n; i++)
		free(a.v[i]);
	return 0;
}
