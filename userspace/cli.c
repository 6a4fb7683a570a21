/*
 * The frame of the command line: one getopt_long pass (options anywhere on
 * the line, as bpftool takes them), dispatch through the OBJECT and COMMAND
 * tables by unique prefix, help text generated from those tables, errors
 * (JSON with -j) and exit codes. The commands live in cli_<object>.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "cli.h"
#include "config.h"
#include "json.h"

#define KG_VERSION "0.1.0"
/* Longest error message; longer ones are cut. */
#define KG_CLI_MSG_MAX 2048
/* Help: the synopsis column is at most this wide; a longer synopsis gets
 * its description on the next line. */
#define KG_HELP_COL 46

struct kg_cli_opt {
	const char *name;
	char short_name;		/* 0: long only */
	const char *arg;		/* the value's name; NULL for a flag */
	const char *help;
};

static const struct kg_cli_opt kg_cli_opts[KG_OPT__COUNT] = {
	[KG_OPT_JSON] = { "json", 'j', NULL, "JSON output (errors too)" },
	[KG_OPT_HELP] = { "help", 'h', NULL, "help of the OBJECT or COMMAND given" },
	[KG_OPT_VERSION] = { "version", 'V', NULL, "print the version" },
	[KG_OPT_CONFIG] = { "config", 'c', "FILE", "the gateway's configuration file (its paths, "
			    "its admin socket)" },
	[KG_OPT_SOCKET] = { "socket", 's', "SOCKET", "admin socket (default "
			    KG_ADMIN_SOCKET_DEFAULT ")" },
	[KG_OPT_STATE_DIR] = { "state-dir", 0, "DIR", "revocation state directory (instead of -c)" },
	[KG_OPT_PIN_ROOT] = { "pin-root", 0, "DIR", "bpffs directory of the pinned maps "
			      "(instead of -c)" },
	[KG_OPT_CERT] = { "cert", 0, "FILE", "the certificate to revoke" },
	[KG_OPT_REASON] = { "reason", 0, "TEXT", "why, may start with an RFC 5280 reason "
			    "(keyCompromise, ...)" },
	[KG_OPT_COLONS] = { "colons", 0, NULL, "AB:CD:... as openssl prints it" },
	[KG_OPT_TEST] = { "test", 0, NULL, "also the certificates the tests need" },
	[KG_OPT_CHECK] = { "check", 'C', NULL, "only validate the configuration, certificates "
			   "and keys" },
	[KG_OPT_READY] = { "ready-file", 'r', "FILE", "\"NAME ADDRESS\" per listener, once all are "
			   "bound" },
};

static int kg_cmd_version(struct kg_cli *cli, int argc, char **argv);

const struct kg_cmd kg_cli_objects[] = {
	{ "run", kg_cmd_run, NULL, "[-c FILE] [--check] [--ready-file FILE]", "run the gateway",
	  "Run the gateway with the INI configuration FILE (default /etc/ktlsgw/ktlsgw.conf).\n"
	  "--check only validates it: syntax, files, certificates and keys.\n",
	  KG_OPTF(KG_OPT_CONFIG) | KG_OPTF(KG_OPT_CHECK) | KG_OPTF(KG_OPT_READY), 0, 0 },
	{ "fingerprint", kg_cmd_fingerprint, NULL, "[--colons] CERT",
	  "SHA-256 fingerprint of a certificate",
	  "SHA-256 of the DER certificate (the first one of a PEM file, or DER): the bytes of\n"
	  "`openssl x509 -noout -fingerprint -sha256`, lower-case hex.\n",
	  KG_OPTF(KG_OPT_COLONS), 1, 1 },
	{ "revoke", NULL, kg_revoke_cmds, NULL, "revoke client certificates (live cut)", NULL, 0, 0, 0 },
	{ "conn", NULL, kg_conn_cmds, NULL, "live connections (admin socket)", NULL, 0, 0, 0 },
	{ "fleet", NULL, kg_fleet_cmds, NULL, "the fleet-wide revocation bucket (admin socket)", NULL,
	  0, 0, 0 },
	{ "stats", kg_cmd_stats, NULL, "[-s SOCKET | -c CONFIG]", "counters (admin socket)", NULL,
	  KG_ADMIN_OPTS, 0, 0 },
	{ "features", kg_cmd_features, NULL, "", "kTLS, io_uring and BPF capabilities here",
	  "What this kernel and OpenSSL offer: kTLS per version, cipher and direction, rekey,\n"
	  "io_uring operations, BPF hooks, each with the reason when it is missing.\n", 0, 0, 0 },
	{ "pki", NULL, kg_pki_cmds, NULL, "a demo PKI", NULL, 0, 0, 0 },
	{ "version", kg_cmd_version, NULL, "", "print the version", NULL, 0, 0, 0 },
	{ 0 }
};

bool kg_cli_is_help(const char *arg)
{
	return !strcmp(arg, "help") || !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

static void kg_cli_verror(struct kg_cli *cli, const char *fmt, va_list ap, int code)
{
	char msg[KG_CLI_MSG_MAX];
	struct json_object *o;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (!cli->json) {
		fprintf(stderr, "%s: %s\n", cli->prog, msg);
		return;
	}
	o = kg_json_obj("si", "error", msg, "exit", (int64_t)code);
	if (!o || kg_json_print(stdout, o))
		fprintf(stderr, "%s: %s\n", cli->prog, msg);	/* out of memory: text it is */
	json_object_put(o);
}

int kg_cli_error(struct kg_cli *cli, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kg_cli_verror(cli, fmt, ap, code);
	va_end(ap);
	return code;
}

int kg_cli_print_json(struct kg_cli *cli, struct json_object *o)
{
	int rc = o ? kg_json_print(stdout, o) : -ENOMEM;

	json_object_put(o);
	if (rc)
		return kg_cli_error(cli, KG_EXIT_RUNTIME, "writing the output: %s", strerror(-rc));
	return KG_EXIT_OK;
}

/* ---- options ------------------------------------------------------------- */

int kg_cli_parse(struct kg_cli *cli, int argc, char **argv, int *first, char *err, size_t errlen)
{
	struct option longs[KG_OPT__COUNT + 1];
	char shorts[2 * KG_OPT__COUNT + 2], *s = shorts;
	int c, i;

	memset(cli->opt, 0, sizeof(cli->opt));
	cli->json = false;
	err[0] = '\0';
	/* ':' first: a missing value is reported as ':', apart from an unknown option */
	*s++ = ':';
	for (i = 0; i < KG_OPT__COUNT; i++) {
		longs[i] = (struct option){ kg_cli_opts[i].name,
			kg_cli_opts[i].arg ? required_argument : no_argument, NULL, 256 + i };
		if (kg_cli_opts[i].short_name) {
			*s++ = kg_cli_opts[i].short_name;
			if (kg_cli_opts[i].arg)
				*s++ = ':';
		}
	}
	*s = '\0';
	memset(&longs[KG_OPT__COUNT], 0, sizeof(longs[0]));
	/* getopt keeps its place in globals; 0 starts it over, so each call stands alone */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		if (c == '?' || c == ':') {
			const char *what = argv[optind - 1];
			char o[3] = { '-', (char)optopt, '\0' };

			/* for a short option in a cluster (-jx), argv[optind - 1] is the cluster */
			if (optopt && optopt < 256)
				what = o;
			snprintf(err, errlen, c == ':' ? "option '%s' needs a value" :
				 "unknown option '%s'", what);
			return KG_EXIT_USAGE;
		}
		for (i = 0; i < KG_OPT__COUNT; i++)
			if (c == 256 + i || c == kg_cli_opts[i].short_name)
				break;
		if (i == KG_OPT__COUNT) {
			snprintf(err, errlen, "unknown option '%s'", argv[optind - 1]);
			return KG_EXIT_USAGE;
		}
		cli->opt[i] = optarg ? optarg : "";
	}
	cli->json = cli->opt[KG_OPT_JSON] != NULL;
	*first = optind;
	return 0;
}

/* ---- help, generated from the tables ---------------------------------------- */

/* One line per command under @t, "PREFIX NAME ARGS  help"; with @f NULL
 * only the widest synopsis is measured. Returns that width. */
static size_t kg_help_cmds(FILE *f, const struct kg_cmd *t, const char *prefix, size_t col)
{
	size_t w = 0, n;
	char syn[256];

	for (; t->name; t++) {
		if (t->sub) {
			snprintf(syn, sizeof(syn), "%s%s ", prefix, t->name);
			n = kg_help_cmds(f, t->sub, syn, col);
		} else {
			n = (size_t)snprintf(syn, sizeof(syn), "%s%s%s%s", prefix, t->name,
					     t->args[0] ? " " : "", t->args);
			if (f && n <= col)
				fprintf(f, "  %-*s  %s\n", (int)col, syn, t->help);
			else if (f)
				fprintf(f, "  %s\n  %-*s  %s\n", syn, (int)col, "", t->help);
		}
		if (n <= KG_HELP_COL && n > w)
			w = n;
	}
	return w;
}

static void kg_help_opts(FILE *f, unsigned mask)
{
	char syn[64];
	size_t w = 0, n;
	int pass, i;

	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < KG_OPT__COUNT; i++) {
			const struct kg_cli_opt *o = &kg_cli_opts[i];

			if (!(mask & KG_OPTF(i)))
				continue;
			n = (size_t)snprintf(syn, sizeof(syn), "%c%c%s--%s%s%s",
					     o->short_name ? '-' : ' ', o->short_name ? o->short_name : ' ',
					     o->short_name ? ", " : "  ", o->name, o->arg ? " " : "",
					     o->arg ? o->arg : "");
			if (!pass && n > w)
				w = n;
			else if (pass)
				fprintf(f, "  %-*s  %s\n", (int)w, syn, o->help);
		}
}

/* The options that commands under @t take. */
static unsigned kg_table_opts(const struct kg_cmd *t)
{
	unsigned m = 0;

	for (; t->name; t++)
		m |= t->sub ? kg_table_opts(t->sub) : t->opts;
	return m;
}

/* Help of a table: "" is the whole program, else one OBJECT. */
static void kg_help_table(struct kg_cli *cli, FILE *f, const struct kg_cmd *t, const char *object)
{
	char prefix[80];

	if (object[0]) {
		fprintf(f, "Usage: %s [OPTIONS] %s COMMAND [ARGS]\n\nCommands:\n", cli->prog, object);
		snprintf(prefix, sizeof(prefix), "%s ", object);
	} else {
		fprintf(f, "Usage: %s [OPTIONS] OBJECT COMMAND [ARGS]\n"
			"       %s OBJECT [COMMAND] help\n\nCommands:\n", cli->prog, cli->prog);
		prefix[0] = '\0';
	}
	kg_help_cmds(f, t, prefix, kg_help_cmds(NULL, t, prefix, 0));
	fprintf(f, "\nOptions (anywhere on the line; commands may be abbreviated):\n");
	kg_help_opts(f, KG_OPTF_GLOBAL | kg_table_opts(t));
	if (!object[0])
		fprintf(f, "\nExit status: 0 ok, 1 runtime error, 2 usage or configuration error.\n");
}

static void kg_help_cmd(struct kg_cli *cli, const struct kg_cmd *c)
{
	printf("Usage: %s %s%s%s\n  %s\n", cli->prog, cli->cmd, c->args[0] ? " " : "", c->args,
	       c->help);
	if (c->doc)
		printf("\n%s", c->doc);
	printf("\nOptions:\n");
	kg_help_opts(stdout, KG_OPTF_GLOBAL | c->opts);
}

/* ---- dispatch ----------------------------------------------------------------- */

int kg_cli_find(const struct kg_cmd *cmds, const char *word, const struct kg_cmd **hit)
{
	size_t n = strlen(word);
	const struct kg_cmd *c;

	*hit = NULL;
	for (c = cmds; c->name; c++) {
		if (strncmp(c->name, word, n))
			continue;
		if (strlen(c->name) == n) {
			*hit = c;
			return 0;
		}
		if (*hit) {
			/* an exact match later on still wins */
			for (c++; c->name; c++)
				if (!strcmp(c->name, word)) {
					*hit = c;
					return 0;
				}
			*hit = NULL;
			return -EAGAIN;
		}
		*hit = c;
	}
	return *hit ? 0 : -ENOENT;
}

/* Operands and options against what @c takes: 0 or a usage error. */
static int kg_cli_check(struct kg_cli *cli, const struct kg_cmd *c, int argc, char **argv)
{
	int i;

	for (i = 0; i < KG_OPT__COUNT; i++)
		if (cli->opt[i] && !((KG_OPTF_GLOBAL | c->opts) & KG_OPTF(i)))
			return kg_cli_error(cli, KG_EXIT_USAGE, "%s: option --%s does not apply; see "
					    "'%s %s help'", cli->cmd, kg_cli_opts[i].name, cli->prog,
					    cli->cmd);
	if (argc > c->max_args)
		return kg_cli_error(cli, KG_EXIT_USAGE, "%s: unexpected argument '%s'; usage: %s %s %s",
				    cli->cmd, argv[c->max_args], cli->prog, cli->cmd, c->args);
	if (argc < c->min_args)
		return kg_cli_error(cli, KG_EXIT_USAGE, "%s: missing argument; usage: %s %s %s",
				    cli->cmd, cli->prog, cli->cmd, c->args);
	return 0;
}

int kg_cli_dispatch(struct kg_cli *cli, const struct kg_cmd *cmds, const char *object,
		    int argc, char **argv)
{
	const struct kg_cmd *hit;
	int i, rc;

	if (argc < 1 || kg_cli_is_help(argv[0])) {
		bool asked = argc >= 1 || cli->opt[KG_OPT_HELP];

		if (asked || !cli->json)
			kg_help_table(cli, asked ? stdout : stderr, cmds, object);
		if (asked)
			return KG_EXIT_OK;
		return kg_cli_error(cli, KG_EXIT_USAGE, "missing %s", object[0] ? "COMMAND" : "OBJECT");
	}
	rc = kg_cli_find(cmds, argv[0], &hit);
	if (rc)
		return kg_cli_error(cli, KG_EXIT_USAGE, "%s '%s%s%s'; see '%s %s%shelp'",
				    rc == -EAGAIN ? "ambiguous command" : "unknown command", object,
				    object[0] ? " " : "", argv[0], cli->prog, object, object[0] ? " " : "");
	snprintf(cli->cmd, sizeof(cli->cmd), "%s%s%s", object, object[0] ? " " : "", hit->name);
	if (hit->sub) {
		char path[sizeof(cli->cmd)];

		snprintf(path, sizeof(path), "%s", cli->cmd);
		return kg_cli_dispatch(cli, hit->sub, path, argc - 1, argv + 1);
	}
	for (i = 1; i < argc && !cli->opt[KG_OPT_HELP]; i++)
		if (kg_cli_is_help(argv[i]))
			cli->opt[KG_OPT_HELP] = "";
	if (cli->opt[KG_OPT_HELP]) {
		kg_help_cmd(cli, hit);
		return KG_EXIT_OK;
	}
	rc = kg_cli_check(cli, hit, argc - 1, argv + 1);
	return rc ? rc : hit->fn(cli, argc - 1, argv + 1);
}

static int kg_cmd_version(struct kg_cli *cli, int argc, char **argv)
{
	if (cli->json)
		return kg_cli_print_json(cli, kg_json_obj("s", "version", KG_VERSION));
	printf("ktlsgw %s\n", KG_VERSION);
	return KG_EXIT_OK;
}

int kg_cli_main(int argc, char **argv)
{
	struct kg_cli cli = { .prog = "ktlsgw" };
	char err[KG_CLI_MSG_MAX];
	int first;

	if (kg_cli_parse(&cli, argc, argv, &first, err, sizeof(err))) {
		int i;

		/* the pass stopped early: a -j after the bad option still asks for JSON */
		for (i = 1; i < argc; i++)
			if (!strcmp(argv[i], "-j") || !strcmp(argv[i], "--json"))
				cli.json = true;
		return kg_cli_error(&cli, KG_EXIT_USAGE, "%s; see '%s help'", err, cli.prog);
	}
	if (cli.opt[KG_OPT_VERSION])
		return kg_cmd_version(&cli, 0, NULL);
	return kg_cli_dispatch(&cli, kg_cli_objects, "", argc - first, argv + first);
}

/* ---- the admin socket, for conn and stats ------------------------------------------ */

int kg_cli_admin(struct kg_cli *cli, const char *req, struct json_object **out)
{
	char sock[128] = KG_ADMIN_SOCKET_DEFAULT, err[1024], *resp;
	struct json_object *o, *e;

	*out = NULL;
	if (cli->opt[KG_OPT_SOCKET]) {
		snprintf(sock, sizeof(sock), "%s", cli->opt[KG_OPT_SOCKET]);
	} else if (cli->opt[KG_OPT_CONFIG]) {
		struct kg_config *cfg;

		if (kg_config_load(cli->opt[KG_OPT_CONFIG], &cfg, err, sizeof(err)))
			return kg_cli_error(cli, KG_EXIT_USAGE, "%s", err);
		snprintf(sock, sizeof(sock), "%s", cfg->admin_socket);
		kg_config_free(cfg);
	}
	resp = kg_admin_call(sock, req, err, sizeof(err));
	if (!resp)
		return kg_cli_error(cli, KG_EXIT_RUNTIME, "%s", err);
	o = kg_json_parse(resp, strlen(resp), err, sizeof(err));
	free(resp);
	if (!o)
		return kg_cli_error(cli, KG_EXIT_RUNTIME, "%s: the gateway's answer is not JSON: %s",
				    sock, err);
	if (json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, "error", &e)) {
		int rc = kg_cli_error(cli, KG_EXIT_RUNTIME, "%s", json_object_get_string(e));

		json_object_put(o);
		return rc;
	}
	*out = o;
	return KG_EXIT_OK;
}
