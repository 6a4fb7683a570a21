/*
 * libFuzzer target: the command line's front end, everything it does
 * before a command acts.
 *
 * The commands act for real (revoke add writes the BPF map and the state
 * file, run starts the gateway), so the program's own tables are mirrored
 * with every command replaced by a recorder: the option pass
 * (kg_cli_parse), the dispatch by unique prefix with its option and
 * operand checks (kg_cli_dispatch) and the commands' pure operand checks
 * (kg_rev_add_args, kg_rev_del_args, kg_conn_kill_args) all run as they
 * are, and nothing else does; what they could reach resolves to the
 * aborting stand-ins of unreachable.c.
 *
 * The input is split at NUL bytes. The first piece picks the case by name:
 * a command (run, fingerprint, pki-init, revoke-add, revoke-del,
 * revoke-list, conn-list, conn-kill, stats: its words go in front of the
 * other pieces), dispatch (the pieces alone), or json (the second piece is
 * a `conn list` answer); otherwise its first byte picks. The other pieces,
 * at most KG_MAX_ARGS, are arguments, each in an allocation of exactly its
 * size. The option pass runs twice on fresh argv arrays and must give the
 * same answer: that catches getopt state left over from the previous run.
 *
 * With KG_FUZZ_STRICT=1 in the environment, an ID that `conn kill`
 * accepts must also be one the gateway accepts in the request it sends.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "cli.h"
#include "json.h"
#include "verify.h"
#include "kg_fuzz.h"

#define KG_MAX_ARGS 24
#define KG_PROG "ktlsgw"
#define KG_MSG_MAX 2048

struct kg_case {
	const char *name;
	const char *words[2];	/* put in front of the arguments */
};

static const struct kg_case kg_cases[] = {
	{ "dispatch", { NULL } },
	{ "run", { "run" } },
	{ "fingerprint", { "fingerprint" } },
	{ "pki-init", { "pki", "init" } },
	{ "revoke-add", { "revoke", "add" } },
	{ "revoke-del", { "revoke", "del" } },
	{ "revoke-list", { "revoke", "list" } },
	{ "conn-list", { "conn", "list" } },
	{ "conn-kill", { "conn", "kill" } },
	{ "stats", { "stats" } },
	{ "json", { NULL } },
};
#define KG_NCASES (sizeof(kg_cases) / sizeof(kg_cases[0]))
#define KG_CASE_JSON (KG_NCASES - 1)

/* v[0] the program name, v[1..argc-1] the arguments, v[argc] NULL, as a real argv. */
struct kg_args {
	int argc;
	char *v[KG_MAX_ARGS + 4];
};

static bool kg_strict;
static const struct kg_args *kg_cur;	/* the arguments of this run, for the recorder */

/* Does @p point into one of the argument strings (as optarg may, after '=')? */
static bool kg_in_args(const char *p, const struct kg_args *a)
{
	int i;

	for (i = 1; i < a->argc; i++)
		if (p >= a->v[i] && p <= a->v[i] + strlen(a->v[i]))
			return true;
	return false;
}

static bool kg_is_arg(const char *p, const struct kg_args *a)
{
	int i;

	for (i = 1; i < a->argc; i++)
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

/* ---- the commands' own checks, run by the recorder ---------------------------- */

static void kg_fuzz_rev(const struct kg_cli *cli, int argc, char **argv, bool add)
{
	char err1[KG_MSG_MAX], err2[KG_MSG_MAX];
	struct kg_rev_args a1, a2;
	uint8_t fp[KG_FP_LEN];
	int rc1, rc2;

	rc1 = add ? kg_rev_add_args(cli, argc, argv, &a1, err1, sizeof(err1)) :
		    kg_rev_del_args(cli, argc, argv, &a1, err1, sizeof(err1));
	rc2 = add ? kg_rev_add_args(cli, argc, argv, &a2, err2, sizeof(err2)) :
		    kg_rev_del_args(cli, argc, argv, &a2, err2, sizeof(err2));
	kg_fuzz_check(rc1 == rc2 && !strcmp(err1, err2) && !memcmp(&a1, &a2, sizeof(a1)),
		      "not the same twice");
	kg_check_msg(rc1, err1, sizeof(err1));
	if (rc1)
		return;
	if (add) {
		kg_fuzz_check(!!cli->opt[KG_OPT_CERT] + argc == 1, "--cert and %d operands", argc);
		kg_fuzz_check(a1.code >= 0 && a1.code <= 10 && a1.code != 7, "reason %d", a1.code);
		kg_fuzz_check(cli->opt[KG_OPT_REASON] || !a1.code, "reason %d without --reason",
			      a1.code);
		if (cli->opt[KG_OPT_CERT]) {
			kg_fuzz_check(!a1.have_fp, "a fingerprint with --cert");
			return;
		}
	}
	kg_fuzz_check(argc == 1 && a1.have_fp, "%d operands", argc);
	kg_fuzz_check(!kg_fp_parse(argv[0], fp) && !memcmp(fp, a1.fp, KG_FP_LEN),
		      "fingerprint of '%s' not what kg_fp_parse gives", argv[0]);
}

static void kg_fuzz_kill(const struct kg_cli *cli, int argc, char **argv)
{
	char err[KG_MSG_MAX], req[64], *end;
	unsigned long long id, got = 0;
	int rc = kg_conn_kill_args(cli, argc, argv, &id, err, sizeof(err));

	kg_check_msg(rc, err, sizeof(err));
	if (rc) {
		kg_fuzz_check(!id, "ID %llu with an error", id);
		return;
	}
	kg_fuzz_check(argc == 1 && id == strtoull(argv[0], &end, 10) && id && !*end,
		      "ID '%s' read as %llu", argv[0], id);
	if (!kg_strict)
		return;
	/* the request kg_cmd_conn_kill sends, as the gateway reads it */
	snprintf(req, sizeof(req), "conn kill %llu", id);
	kg_fuzz_check(kg_admin_parse(req, strlen(req), &got) == KG_ADM_CONN_KILL && got == id,
		      "the CLI takes ID '%s' (%llu), the gateway refuses '%s' or reads %llu",
		      argv[0], id, req, got);
}

/* ---- the tables, mirrored with a recorder in every command ------------------------ */

static const struct kg_cmd *kg_find_real(const struct kg_cmd *t, const char *path);

static int kg_recorded;

static int kg_recorder(struct kg_cli *cli, int argc, char **argv)
{
	const struct kg_cmd *c = kg_find_real(kg_cli_objects, cli->cmd);
	int i;

	kg_fuzz_check(c && !c->sub, "ran '%s', not a command", cli->cmd);
	kg_fuzz_check(argc >= c->min_args && argc <= c->max_args, "%s with %d operands", cli->cmd,
		      argc);
	for (i = 0; i < KG_OPT__COUNT; i++)
		kg_fuzz_check(!cli->opt[i] || ((KG_OPTF_GLOBAL | c->opts) & KG_OPTF(i)),
			      "%s with option %d", cli->cmd, i);
	for (i = 0; i < argc; i++)
		kg_fuzz_check(kg_is_arg(argv[i], kg_cur) && !kg_cli_is_help(argv[i]),
			      "operand '%s'", argv[i]);
	if (!strcmp(cli->cmd, "revoke add") || !strcmp(cli->cmd, "revoke del"))
		kg_fuzz_rev(cli, argc, argv, cli->cmd[7] == 'a');
	else if (!strcmp(cli->cmd, "conn kill"))
		kg_fuzz_kill(cli, argc, argv);
	kg_recorded++;
	return 100;
}

/* The real entry for "OBJECT COMMAND" (or "COMMAND"). */
static const struct kg_cmd *kg_find_real(const struct kg_cmd *t, const char *path)
{
	size_t n = strcspn(path, " ");

	for (; t->name; t++)
		if (strlen(t->name) == n && !strncmp(t->name, path, n))
			return path[n] ? (t->sub ? kg_find_real(t->sub, path + n + 1) : NULL) : t;
	return NULL;
}

static struct kg_cmd kg_mirror[8][16];
static int kg_nmirror;

static struct kg_cmd *kg_mirror_table(const struct kg_cmd *src)
{
	struct kg_cmd *dst;
	int i;

	kg_fuzz_check(kg_nmirror < 8, "more tables than mirrors");
	dst = kg_mirror[kg_nmirror++];
	for (i = 0; src[i].name; i++) {
		kg_fuzz_check(i < 15, "more commands than mirror slots");
		dst[i] = src[i];
		if (src[i].sub)
			dst[i].sub = kg_mirror_table(src[i].sub);
		else
			dst[i].fn = kg_recorder;
	}
	return dst;
}

/* ---- the option pass and dispatch ------------------------------------------------- */

static void kg_fuzz_front(const struct kg_args *a)
{
	char err1[KG_MSG_MAX], err2[KG_MSG_MAX];
	struct kg_cli c1 = { .prog = KG_PROG }, c2 = { .prog = KG_PROG };
	struct kg_args b1 = *a, b2 = *a;	/* getopt permutes the array it is given */
	bool dashdash = false;
	int rc1, rc2, f1 = 0, f2 = 0, i, rc;

	rc1 = kg_cli_parse(&c1, b1.argc, b1.v, &f1, err1, sizeof(err1));
	rc2 = kg_cli_parse(&c2, b2.argc, b2.v, &f2, err2, sizeof(err2));
	kg_fuzz_check(rc1 == rc2 && !strcmp(err1, err2), "a second pass says %d '%s', the first "
		      "%d '%s'", rc2, err2, rc1, err1);
	kg_check_msg(rc1, err1, sizeof(err1));
	if (rc1)
		return;
	kg_fuzz_check(f1 == f2 && !memcmp(c1.opt, c2.opt, sizeof(c1.opt)) && c1.json == c2.json,
		      "a second pass gives other options");
	kg_fuzz_check(c1.json == !!c1.opt[KG_OPT_JSON], "-j and json disagree");
	for (i = 0; i < KG_OPT__COUNT; i++)
		kg_fuzz_check(!c1.opt[i] || !c1.opt[i][0] || kg_in_args(c1.opt[i], a),
			      "option %d value from nowhere", i);
	for (i = 1; i < a->argc; i++)
		dashdash |= !strcmp(a->v[i], "--");
	kg_fuzz_check(f1 >= 1 && f1 <= b1.argc, "first operand %d of %d", f1, b1.argc);
	for (i = f1; i < b1.argc; i++) {
		kg_fuzz_check(kg_is_arg(b1.v[i], a), "operand from nowhere");
		kg_fuzz_check(dashdash || b1.v[i][0] != '-' || !b1.v[i][1],
			      "option '%s' taken as an operand", b1.v[i]);
	}
	kg_cur = a;
	kg_recorded = 0;
	rc = kg_cli_dispatch(&c1, kg_mirror[0], "", b1.argc - f1, b1.v + f1);
	kg_fuzz_check(rc == 100 ? kg_recorded == 1 : !kg_recorded && rc >= 0 && rc <= 2,
		      "rc %d after %d commands", rc, kg_recorded);
}

/* ---- a `conn list` answer, read as the CLI reads it --------------------------------- */

static void kg_fuzz_json(const struct kg_args *a)
{
	const char *text = a->argc > 1 ? a->v[1] : "";
	struct json_object *all, *again;
	struct kg_conn_info ci, cj;
	char err[256], buf[8192];
	size_t i, n;
	int len;

	all = kg_json_parse(text, strlen(text), err, sizeof(err));
	if (!all) {
		kg_fuzz_check(err[0] && memchr(err, '\0', sizeof(err)), "no reason given");
		return;
	}
	n = json_object_is_type(all, json_type_array) ? json_object_array_length(all) : 0;
	for (i = 0; i < n; i++) {
		if (kg_json_conn_read(json_object_array_get_idx(all, i), &ci))
			continue;
		/* what the worker would write for it reads back the same */
		len = kg_json_conn_render(&ci, buf, sizeof(buf));
		if (len == -ENOSPC)
			continue;
		kg_fuzz_check(len > 0, "render: %d", len);
		again = kg_json_parse(buf, (size_t)len, err, sizeof(err));
		kg_fuzz_check(again, "own output does not parse: %s: %s", err, buf);
		kg_fuzz_check(!kg_json_conn_read(again, &cj) && cj.id == ci.id &&
			      cj.bytes_in == ci.bytes_in && !strcmp(cj.client, ci.client),
			      "round trip differs: %s", buf);
		/* valid UTF-8 was written as it came */
		kg_fuzz_check(!strcmp(cj.subject, ci.subject), "subject changed: %s", buf);
		json_object_put(again);
	}
	json_object_put(all);
}

/* ---- entry points ------------------------------------------------------------------ */

int LLVMFuzzerInitialize(int *argc, char **argv[])
{
	const char *s = getenv("KG_FUZZ_STRICT");

	kg_strict = s && *s && strcmp(s, "0");
	/* help and JSON errors go to stdout */
	kg_fuzz_check(freopen("/dev/null", "w", stdout), "stdout: %s", strerror(errno));
	kg_mirror_table(kg_cli_objects);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kg_args a = { 0 };
	const uint8_t *p = data, *end = data + size, *z;
	const struct kg_case *kc = NULL;
	char *first = NULL;
	size_t len, i;
	int n = 0;

	/* piece 0 picks the case */
	z = memchr(p, '\0', size);
	len = z ? (size_t)(z - p) : size;
	first = strndup((const char *)p, len);
	kg_fuzz_check(first, "out of memory");
	for (i = 0; i < KG_NCASES; i++)
		if (!strcmp(first, kg_cases[i].name))
			kc = &kg_cases[i];
	if (!kc)
		kc = &kg_cases[size ? data[0] % KG_NCASES : 0];
	a.v[n++] = strdup(KG_PROG);
	for (i = 0; i < 2 && kc->words[i]; i++)
		a.v[n++] = strdup(kc->words[i]);
	p = z ? z + 1 : end;
	/* the rest, split at NULs, each in an allocation of exactly its size */
	while (z && p <= end && n < KG_MAX_ARGS + 3) {
		z = memchr(p, '\0', (size_t)(end - p));
		len = z ? (size_t)(z - p) : (size_t)(end - p);
		a.v[n] = malloc(len + 1);
		kg_fuzz_check(a.v[n], "out of memory");
		memcpy(a.v[n], p, len);
		a.v[n][len] = '\0';
		n++;
		p = z ? z + 1 : end + 1;
	}
	a.argc = n;
	a.v[n] = NULL;
	if (kc == &kg_cases[KG_CASE_JSON])
		kg_fuzz_json(&a);
	else
		kg_fuzz_front(&a);
	for (i = 0; i < (size_t)n; i++)
		free(a.v[i]);
	free(first);
	return 0;
}
